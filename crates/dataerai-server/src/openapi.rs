//! The OpenAPI 3.1 document served at `GET /api/v1/openapi.json`.
//!
//! Built by hand from a compact table rather than derived, so the wire types in
//! `dataerai-proto` stay free of documentation dependencies. Keep it in step
//! with `routes::router` (a test checks every route is listed) and with
//! `dataerai-proto/src/api.rs`.

use serde_json::{json, Map, Value};

/// A field type in the compact schema notation:
/// `string`, `integer`, `boolean`, `object` (free JSON object), `datetime`,
/// `[T]` (array of T), `Name` (a `$ref` to a component); a trailing `?` makes
/// the field nullable and optional.
fn field_schema(t: &str) -> Value {
    let (t, nullable) = match t.strip_suffix('?') {
        Some(t) => (t, true),
        None => (t, false),
    };
    let base = if let Some(inner) = t.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
        json!({"type": "array", "items": field_schema(inner)})
    } else {
        match t {
            "string" => json!({"type": "string"}),
            "integer" => json!({"type": "integer", "minimum": 0}),
            "boolean" => json!({"type": "boolean"}),
            "object" => json!({"type": "object", "additionalProperties": true}),
            "datetime" => json!({"type": "string", "format": "date-time"}),
            name => json!({"$ref": format!("#/components/schemas/{name}")}),
        }
    };
    if nullable {
        json!({"oneOf": [base, {"type": "null"}]})
    } else {
        base
    }
}

fn object(fields: &[(&str, &str)]) -> Value {
    let mut props = Map::new();
    let mut required = Vec::new();
    for (name, t) in fields {
        props.insert(name.to_string(), field_schema(t));
        if !t.ends_with('?') {
            required.push(json!(name));
        }
    }
    json!({"type": "object", "properties": props, "required": required})
}

fn page_of(item: &str) -> Value {
    object(&[
        ("items", &format!("[{item}]")),
        ("total", "integer"),
        ("limit", "integer"),
        ("offset", "integer"),
    ])
}

fn schemas() -> Value {
    let mut s = Map::new();
    let mut add = |name: &str, v: Value| {
        s.insert(name.to_string(), v);
    };
    add(
        "Member",
        object(&[
            ("user_id", "string"),
            ("email", "string"),
            ("role", "string"),
            ("added_at", "datetime"),
        ]),
    );
    add(
        "AddMember",
        object(&[("email", "string"), ("role", "string")]),
    );
    add(
        "AuditEvent",
        object(&[
            ("id", "string"),
            ("at", "datetime"),
            ("actor_user_id", "string?"),
            ("action", "string"),
            ("target_type", "string?"),
            ("target_id", "string?"),
            ("details", "object"),
            ("client_addr", "string?"),
        ]),
    );
    add(
        "DeviceCodeResponse",
        object(&[
            ("device_code", "string"),
            ("user_code", "string"),
            ("verification_uri", "string"),
            ("verification_uri_complete", "string"),
            ("expires_in", "integer"),
            ("interval", "integer"),
        ]),
    );
    add(
        "TokenResponse",
        object(&[
            ("access_token", "string"),
            ("token_type", "string"),
            ("expires_in", "integer"),
            ("refresh_token", "string"),
            ("scope", "string"),
        ]),
    );
    add(
        "OAuthError",
        object(&[("error", "string"), ("error_description", "string?")]),
    );
    add(
        "ErrorBody",
        json!({
            "type": "object", "required": ["error"],
            "properties": {"error": {"type": "object", "required": ["code", "message"], "properties": {
                "code": {"type": "string", "enum": ["ERR_AUTH_REQUIRED", "ERR_PERMISSION_DENIED", "ERR_NOT_FOUND",
                    "ERR_INVALID_INPUT", "ERR_QUOTA_EXCEEDED", "ERR_RELATIONSHIP_EXISTS", "ERR_CONFLICT", "ERR_INTEGRITY",
                    "ERR_SERVER_UNREACHABLE", "ERR_CANCELLED", "ERR_NO_SPACE", "ERR_INTERNAL"]},
                "message": {"type": "string"}}}}
        }),
    );
    add("Health", object(&[("status", "string")]));
    add(
        "Me",
        object(&[
            ("user_id", "string"),
            ("email", "string"),
            ("scopes", "[string]"),
            ("expires_at", "datetime?"),
        ]),
    );
    add(
        "CreateProject",
        object(&[("name", "string"), ("description", "string?")]),
    );
    add(
        "Allocation",
        object(&[
            ("allocation_id", "string"),
            ("quota_bytes", "integer"),
            ("used_bytes", "integer"),
            ("reserved_bytes", "integer"),
        ]),
    );
    add(
        "Project",
        object(&[
            ("project_id", "string"),
            ("name", "string"),
            ("description", "string"),
            ("root_collection_id", "string"),
            ("created_by", "string"),
            ("created_at", "datetime"),
            ("role", "string"),
            ("allocation", "Allocation"),
        ]),
    );
    add(
        "CreateCollection",
        object(&[("name", "string"), ("parent_id", "string?")]),
    );
    add(
        "Collection",
        object(&[
            ("collection_id", "string"),
            ("project_id", "string"),
            ("name", "string"),
            ("parent_id", "string?"),
            ("created_at", "datetime"),
        ]),
    );
    add(
        "CreateAsset",
        object(&[
            ("title", "string"),
            ("owner_type", "string"),
            ("owner_id", "string"),
            ("description", "string?"),
            ("alias", "string?"),
            ("tags", "[string]?"),
            ("metadata", "object?"),
            ("collection_id", "string?"),
        ]),
    );
    add(
        "UpdateAsset",
        object(&[
            ("title", "string?"),
            ("description", "string?"),
            ("alias", "string?"),
            ("tags", "[string]?"),
            ("metadata", "object?"),
        ]),
    );
    add(
        "Asset",
        object(&[
            ("asset_id", "string"),
            ("title", "string"),
            ("description", "string?"),
            ("alias", "string?"),
            ("tags", "[string]"),
            ("metadata", "object"),
            ("owner_type", "string"),
            ("owner_id", "string"),
            ("collection_ids", "[string]"),
            ("created_by", "string"),
            ("created_at", "datetime"),
            ("updated_at", "datetime"),
            ("latest_content", "ContentVersion?"),
        ]),
    );
    add(
        "ContentFile",
        object(&[
            ("file_index", "integer"),
            ("name", "string"),
            ("size", "integer"),
            ("checksum", "string?"),
        ]),
    );
    add(
        "ContentVersion",
        object(&[
            ("content_id", "string"),
            ("asset_id", "string"),
            ("status", "string"),
            ("total_bytes", "integer"),
            ("files", "[ContentFile]"),
            ("created_at", "datetime"),
            ("completed_at", "datetime?"),
        ]),
    );
    add(
        "UploadFileSpec",
        object(&[
            ("name", "string"),
            ("size", "integer"),
            ("checksum", "string?"),
        ]),
    );
    add(
        "CreateUpload",
        object(&[
            ("files", "[UploadFileSpec]"),
            ("chunk_size", "integer?"),
            ("probe_dedup", "boolean?"),
        ]),
    );
    add(
        "UploadFileState",
        object(&[
            ("file_index", "integer"),
            ("name", "string"),
            ("size", "integer"),
            ("chunk_count", "integer"),
            ("received_chunks", "[integer]"),
            ("deduplicated", "boolean"),
            ("dedup_candidate", "boolean?"),
        ]),
    );
    add(
        "UploadSession",
        object(&[
            ("upload_id", "string"),
            ("asset_id", "string"),
            ("content_id", "string"),
            ("chunk_size", "integer"),
            ("status", "string"),
            ("files", "[UploadFileState]"),
            ("created_at", "datetime"),
        ]),
    );
    add(
        "ChunkAck",
        object(&[
            ("file_index", "integer"),
            ("chunk_index", "integer"),
            ("size", "integer"),
            ("checksum", "string"),
        ]),
    );
    add(
        "CompleteFile",
        object(&[("file_index", "integer"), ("checksum", "string")]),
    );
    add("CompleteUpload", object(&[("files", "[CompleteFile]")]));
    add(
        "UploadBatchItem",
        object(&[
            ("asset", "CreateAsset?"),
            ("asset_id", "string?"),
            ("upload", "CreateUpload"),
        ]),
    );
    add(
        "CreateUploadBatch",
        object(&[("items", "[UploadBatchItem]")]),
    );
    add(
        "FinishItem",
        object(&[("upload_id", "string"), ("checksum", "string")]),
    );
    add("FinishManifest", object(&[("items", "[FinishItem]")]));
    add(
        "BatchError",
        object(&[("code", "string"), ("message", "string")]),
    );
    add(
        "BatchSession",
        object(&[("result", "UploadSession?"), ("error", "BatchError?")]),
    );
    add("BatchSessions", object(&[("items", "[BatchSession]")]));
    add(
        "BatchVersion",
        object(&[("result", "ContentVersion?"), ("error", "BatchError?")]),
    );
    add("BatchVersions", object(&[("items", "[BatchVersion]")]));
    add(
        "CreateRelationship",
        object(&[
            ("to_asset_id", "string"),
            ("type", "string"),
            ("analysis_mode", "string?"),
            ("qualifiers", "object?"),
        ]),
    );
    add(
        "AssetSummary",
        object(&[
            ("id", "string"),
            ("title", "string"),
            ("alias", "string?"),
            ("owner_type", "string"),
            ("owner_id", "string"),
        ]),
    );
    add(
        "Relationship",
        object(&[
            ("id", "string"),
            ("type", "string"),
            ("from_asset_id", "string"),
            ("to_asset_id", "string"),
            ("analysis_mode", "string?"),
            ("qualifiers", "object"),
            ("created_by", "string"),
            ("created_at", "datetime"),
            ("related_asset", "AssetSummary"),
        ]),
    );
    for item in [
        "Project",
        "Collection",
        "Asset",
        "ContentVersion",
        "Relationship",
        "Member",
        "AuditEvent",
    ] {
        add(&format!("Page{item}"), page_of(item));
    }
    Value::Object(s)
}

/// One operation: method, path, summary, request schema (`None`, a component
/// name, or `bytes`), success status and reply (`None` = no body, `bytes`).
struct Op {
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    request: Option<&'static str>,
    status: u16,
    reply: Option<&'static str>,
    auth: bool,
}

const OPS: &[Op] = &[
    Op {
        method: "get",
        path: "/healthz",
        summary: "Liveness check",
        request: None,
        status: 200,
        reply: Some("Health"),
        auth: false,
    },
    Op {
        method: "get",
        path: "/readyz",
        summary: "Readiness: the metadata store answers and the blob store accepts writes (503 + Retry-After otherwise, and while shutting down)",
        request: None,
        status: 200,
        reply: Some("Health"),
        auth: false,
    },
    Op {
        method: "get",
        path: "/metrics",
        summary: "Prometheus metrics (text exposition format)",
        request: None,
        status: 200,
        reply: Some("text"),
        auth: false,
    },
    Op {
        method: "get",
        path: "/api/v1/openapi.json",
        summary: "This document",
        request: None,
        status: 200,
        reply: Some("object"),
        auth: false,
    },
    Op {
        method: "get",
        path: "/api/v1/me",
        summary: "Who the token belongs to",
        request: None,
        status: 200,
        reply: Some("Me"),
        auth: true,
    },
    Op {
        method: "post",
        path: "/api/v1/projects",
        summary: "Create a project (root collection, owner membership, allocation)",
        request: Some("CreateProject"),
        status: 201,
        reply: Some("Project"),
        auth: true,
    },
    Op {
        method: "get",
        path: "/api/v1/projects",
        summary: "Projects the caller belongs to",
        request: None,
        status: 200,
        reply: Some("PageProject"),
        auth: true,
    },
    Op {
        method: "get",
        path: "/api/v1/projects/{project_id}",
        summary: "A project (members only)",
        request: None,
        status: 200,
        reply: Some("Project"),
        auth: true,
    },
    Op {
        method: "get",
        path: "/api/v1/projects/{project_id}/collections",
        summary: "Collections of a project",
        request: None,
        status: 200,
        reply: Some("PageCollection"),
        auth: true,
    },
    Op {
        method: "post",
        path: "/api/v1/projects/{project_id}/collections",
        summary: "Create a collection",
        request: Some("CreateCollection"),
        status: 201,
        reply: Some("Collection"),
        auth: true,
    },
    Op {
        method: "get",
        path: "/api/v1/collections/{collection_id}",
        summary: "A collection",
        request: None,
        status: 200,
        reply: Some("Collection"),
        auth: true,
    },
    Op {
        method: "get",
        path: "/api/v1/collections/{collection_id}/assets",
        summary: "Assets in a collection",
        request: None,
        status: 200,
        reply: Some("PageAsset"),
        auth: true,
    },
    Op {
        method: "post",
        path: "/api/v1/assets",
        summary: "Create an asset",
        request: Some("CreateAsset"),
        status: 201,
        reply: Some("Asset"),
        auth: true,
    },
    Op {
        method: "get",
        path: "/api/v1/assets",
        summary:
            "Assets of an owner (default: the caller's personal assets); query owner_type, owner_id",
        request: None,
        status: 200,
        reply: Some("PageAsset"),
        auth: true,
    },
    Op {
        method: "get",
        path: "/api/v1/assets/{asset_id}",
        summary: "An asset",
        request: None,
        status: 200,
        reply: Some("Asset"),
        auth: true,
    },
    Op {
        method: "patch",
        path: "/api/v1/assets/{asset_id}",
        summary: "Update an asset; metadata merged key by key (null deletes)",
        request: Some("UpdateAsset"),
        status: 200,
        reply: Some("Asset"),
        auth: true,
    },
    Op {
        method: "delete",
        path: "/api/v1/assets/{asset_id}",
        summary: "Delete an asset with its versions, relationships and blobs",
        request: None,
        status: 204,
        reply: None,
        auth: true,
    },
    Op {
        method: "get",
        path: "/api/v1/assets/{asset_id}/contents",
        summary: "Complete content versions, newest first",
        request: None,
        status: 200,
        reply: Some("PageContentVersion"),
        auth: true,
    },
    Op {
        method: "get",
        path: "/api/v1/assets/{asset_id}/contents/{content_id}",
        summary: "A complete content version (`latest` allowed)",
        request: None,
        status: 200,
        reply: Some("ContentVersion"),
        auth: true,
    },
    Op {
        method: "get",
        path: "/api/v1/assets/{asset_id}/contents/{content_id}/files/{file_index}",
        summary: "Download a file; single `Range` supported (206); `x-dataerai-checksum` header",
        request: None,
        status: 200,
        reply: Some("bytes"),
        auth: true,
    },
    Op {
        method: "post",
        path: "/api/v1/assets/{asset_id}/relationships",
        summary: "Create a relationship (write on source, read on target)",
        request: Some("CreateRelationship"),
        status: 201,
        reply: Some("Relationship"),
        auth: true,
    },
    Op {
        method: "get",
        path: "/api/v1/assets/{asset_id}/relationships",
        summary: "Outgoing relationships",
        request: None,
        status: 200,
        reply: Some("PageRelationship"),
        auth: true,
    },
    Op {
        method: "post",
        path: "/api/v1/assets/{asset_id}/uploads",
        summary: "Open an upload session (quota reserved)",
        request: Some("CreateUpload"),
        status: 201,
        reply: Some("UploadSession"),
        auth: true,
    },
    Op {
        method: "get",
        path: "/api/v1/uploads/{upload_id}",
        summary: "An upload session with its received chunks",
        request: None,
        status: 200,
        reply: Some("UploadSession"),
        auth: true,
    },
    Op {
        method: "delete",
        path: "/api/v1/uploads/{upload_id}",
        summary: "Abort an upload session",
        request: None,
        status: 204,
        reply: None,
        auth: true,
    },
    Op {
        method: "put",
        path: "/api/v1/uploads/{upload_id}/files/{file_index}/chunks/{chunk_index}",
        summary: "Send one chunk (header x-dataerai-chunk-blake3); idempotent",
        request: Some("bytes"),
        status: 200,
        reply: Some("ChunkAck"),
        auth: true,
    },
    Op {
        method: "post",
        path: "/api/v1/uploads/{upload_id}/complete",
        summary: "Verify every file and publish the content version",
        request: Some("CompleteUpload"),
        status: 200,
        reply: Some("ContentVersion"),
        auth: true,
    },
    Op {
        method: "post",
        path: "/api/v1/uploads/batch",
        summary: "Open many upload sessions (new assets or new versions) in one transaction; one outcome per item",
        request: Some("CreateUploadBatch"),
        status: 200,
        reply: Some("BatchSessions"),
        auth: true,
    },
    Op {
        method: "post",
        path: "/api/v1/uploads/finish",
        summary: "multipart: a `manifest` part (FinishManifest), then one `file` part per item; stores and completes one-chunk files in one transaction",
        request: Some("multipart"),
        status: 200,
        reply: Some("BatchVersions"),
        auth: true,
    },
    Op {
        method: "get",
        path: "/api/v1/projects/{project_id}/members",
        summary: "Members of a project (any member)",
        request: None,
        status: 200,
        reply: Some("PageMember"),
        auth: true,
    },
    Op {
        method: "post",
        path: "/api/v1/projects/{project_id}/members",
        summary: "Add a member (201) or change a member's role (200); owners and admins; only owners grant `owner`",
        request: Some("AddMember"),
        status: 201,
        reply: Some("Member"),
        auth: true,
    },
    Op {
        method: "delete",
        path: "/api/v1/projects/{project_id}/members/{user_id}",
        summary: "Remove a member (owners and admins; the last owner stays)",
        request: None,
        status: 204,
        reply: None,
        auth: true,
    },
    Op {
        method: "get",
        path: "/api/v1/audit",
        summary: "The audit log, newest first (server admins only)",
        request: None,
        status: 200,
        reply: Some("PageAuditEvent"),
        auth: true,
    },
    Op {
        method: "post",
        path: "/oauth/device/code",
        summary: "RFC 8628 device authorization request (form client_id, scope)",
        request: Some("form"),
        status: 200,
        reply: Some("DeviceCodeResponse"),
        auth: false,
    },
    Op {
        method: "post",
        path: "/oauth/token",
        summary: "RFC 8628 / RFC 6749 token request (device_code or refresh_token grant); errors are OAuthError with 400",
        request: Some("form"),
        status: 200,
        reply: Some("TokenResponse"),
        auth: false,
    },
    Op {
        method: "get",
        path: "/",
        summary: "Web: redirects to /tokens",
        request: None,
        status: 303,
        reply: None,
        auth: false,
    },
    Op {
        method: "get",
        path: "/login",
        summary: "Web: sign-in page (`?next=/path` to come back)",
        request: None,
        status: 200,
        reply: Some("html"),
        auth: false,
    },
    Op {
        method: "post",
        path: "/login",
        summary: "Web: sign in (form email, password, csrf_token, next); 429 + Retry-After after 5 failures in 15 min",
        request: Some("form"),
        status: 303,
        reply: None,
        auth: false,
    },
    Op {
        method: "post",
        path: "/logout",
        summary: "Web: sign out (form csrf_token)",
        request: Some("form"),
        status: 303,
        reply: None,
        auth: false,
    },
    Op {
        method: "get",
        path: "/device",
        summary: "Web: enter (or, with ?user_code=, confirm) a device login code; needs a session",
        request: None,
        status: 200,
        reply: Some("html"),
        auth: false,
    },
    Op {
        method: "post",
        path: "/device",
        summary: "Web: approve or deny a device code (form user_code, action=approve|deny, csrf_token)",
        request: Some("form"),
        status: 200,
        reply: Some("html"),
        auth: false,
    },
    Op {
        method: "get",
        path: "/tokens",
        summary: "Web: your personal access tokens; needs a session",
        request: None,
        status: 200,
        reply: Some("html"),
        auth: false,
    },
    Op {
        method: "post",
        path: "/tokens",
        summary: "Web: create a personal access token, shown once (form name, scope=read|write repeated, expires_in_days, csrf_token)",
        request: Some("form"),
        status: 200,
        reply: Some("html"),
        auth: false,
    },
    Op {
        method: "post",
        path: "/tokens/{token_id}/revoke",
        summary: "Web: revoke one of your tokens (form csrf_token)",
        request: Some("form"),
        status: 303,
        reply: None,
        auth: false,
    },
];

fn content(schema: &str) -> Value {
    match schema {
        "bytes" => {
            json!({"application/octet-stream": {"schema": {"type": "string", "contentMediaType": "application/octet-stream"}}})
        }
        "multipart" => json!({"multipart/form-data": {"schema": {
            "type": "object",
            "properties": {
                "manifest": {"$ref": "#/components/schemas/FinishManifest"},
                "file": {"type": "array", "items": {"type": "string", "contentMediaType": "application/octet-stream"}}
            },
            "required": ["manifest", "file"]
        }}}),
        "object" => json!({"application/json": {"schema": {"type": "object"}}}),
        "text" => json!({"text/plain": {"schema": {"type": "string"}}}),
        "html" => json!({"text/html": {"schema": {"type": "string"}}}),
        "form" => {
            json!({"application/x-www-form-urlencoded": {"schema": {"type": "object", "additionalProperties": {"type": "string"}}}})
        }
        name => {
            json!({"application/json": {"schema": {"$ref": format!("#/components/schemas/{name}")}}})
        }
    }
}

fn operation(op: &Op) -> Value {
    let mut params: Vec<Value> = op
        .path
        .split('/')
        .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| {
            let t = if name.ends_with("_index") {
                "integer"
            } else {
                "string"
            };
            json!({"name": name, "in": "path", "required": true, "schema": {"type": t}})
        })
        .collect();
    if op.method == "get" && op.reply.is_some_and(|r| r.starts_with("Page")) {
        for q in ["limit", "offset"] {
            params.push(json!({"name": q, "in": "query", "required": false, "schema": {"type": "integer", "minimum": 0}}));
        }
    }
    if op.path == "/api/v1/assets" && op.method == "get" {
        for q in ["owner_type", "owner_id"] {
            params.push(
                json!({"name": q, "in": "query", "required": false, "schema": {"type": "string"}}),
            );
        }
    }
    if op.path.ends_with("/chunks/{chunk_index}") {
        params.push(json!({"name": "x-dataerai-chunk-blake3", "in": "header", "required": true, "schema": {"type": "string"}}));
    }
    if op.path.ends_with("/files/{file_index}") {
        params.push(json!({"name": "Range", "in": "header", "required": false, "schema": {"type": "string"}}));
    }
    let mut ok = json!({"description": "Success"});
    if let Some(reply) = op.reply {
        ok["content"] = content(reply);
    }
    let mut responses = Map::new();
    responses.insert(op.status.to_string(), ok);
    if op.reply == Some("bytes") {
        responses.insert(
            "206".into(),
            json!({"description": "Partial content", "content": content("bytes")}),
        );
    }
    responses.insert(
        "default".into(),
        json!({"description": "Error", "content": content("ErrorBody")}),
    );
    let mut v = json!({"summary": op.summary, "parameters": params, "responses": responses});
    if let Some(req) = op.request {
        v["requestBody"] = json!({"required": true, "content": content(req)});
    }
    if !op.auth {
        v["security"] = json!([]);
    }
    v
}

pub fn document() -> Value {
    let mut paths = Map::new();
    for op in OPS {
        let entry = paths
            .entry(op.path.to_string())
            .or_insert_with(|| json!({}));
        entry[op.method] = operation(op);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Dataerai API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Projects, assets, content versions, relationships, chunked resumable uploads and ranged downloads. Errors are {\"error\": {\"code\": \"ERR_…\", \"message\": \"…\"}}."
        },
        "paths": paths,
        "components": {
            "schemas": schemas(),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}
        },
        "security": [{"bearer": []}]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `$ref` points at a defined schema.
    #[test]
    fn refs_resolve() {
        let doc = document();
        let text = doc.to_string();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        for piece in text.split("#/components/schemas/").skip(1) {
            let name: String = piece
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric())
                .collect();
            assert!(schemas.contains_key(&name), "undefined schema {name}");
        }
    }

    /// Every route of the router is documented, with each of its methods
    /// (the permission table test in `tests/permissions.rs` walks this
    /// document, so an undocumented route would escape it).
    #[test]
    fn all_routes_listed() {
        let src = include_str!("routes/mod.rs");
        let doc = document();
        for piece in src.split(".route(").skip(1) {
            let path: String = piece
                .trim_start()
                .trim_start_matches('"')
                .chars()
                .take_while(|c| *c != '"')
                .collect();
            assert!(
                doc["paths"].get(&path).is_some(),
                "route {path} missing from the OpenAPI document"
            );
            // The handler part of this `.route(…)`: up to the next route or layer.
            let handlers = piece.split(".layer(").next().unwrap_or(piece);
            for method in ["get", "post", "put", "patch", "delete"] {
                let used = handlers.contains(&format!("{method}("))
                    || handlers.contains(&format!(".{method}("));
                if used {
                    assert!(
                        doc["paths"][&path].get(method).is_some(),
                        "{} {path} missing from the OpenAPI document",
                        method.to_uppercase()
                    );
                }
            }
        }
    }
}
