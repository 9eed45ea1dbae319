//! The table-driven permission test: every operation of the
//! server's own OpenAPI document × {owner, admin, member, viewer, outsider,
//! read-scope token, expired token, revoked token, no token}, checked against
//! the rules of docs/api.md.
//!
//! The operations come from `GET /api/v1/openapi.json` of the running server
//! (and a unit test checks the router against that document), so a new
//! endpoint without a row in [`TABLE`] fails this test.
//!
//! Allow = a 2xx answer. Deny = 401 `ERR_AUTH_REQUIRED` for the expired,
//! revoked and missing tokens; for signed-in callers, 404 `ERR_NOT_FOUND`
//! when they may not even read the thing (the answer an unknown id gets) and
//! 403 `ERR_PERMISSION_DENIED` when they may read it but not do this (or
//! their token lacks the scope).

mod common;

use std::collections::BTreeSet;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const PW: &str = "permission table password";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Owner,
    Admin,
    Member,
    Viewer,
    Outsider,
    /// A `read`-scope token of the member.
    ReadToken,
    /// An expired device-login access token of the member.
    Expired,
    /// A revoked personal access token of the member.
    Revoked,
    NoToken,
}

const EVERYONE: [Who; 9] = [
    Who::Owner,
    Who::Admin,
    Who::Member,
    Who::Viewer,
    Who::Outsider,
    Who::ReadToken,
    Who::Expired,
    Who::Revoked,
    Who::NoToken,
];

/// Who may call an operation (on the fixture the variant sets up).
#[derive(Debug, Clone, Copy)]
enum Rule {
    /// No bearer token needed (health, metrics, OAuth, web pages).
    Public,
    /// Any signed-in user (subject to the token scope).
    AnyUser,
    /// Members of the project, any role.
    ProjectRead,
    /// Owners, admins and members of the project.
    ProjectWrite,
    /// Owners and admins of the project.
    ProjectManage,
    /// Only the user who opened the upload session (the member).
    UploadOpener,
    /// The user who opened the upload session, or an owner or admin of the
    /// project owning its asset.
    UploadOpenerOrManager,
    /// Server admins (the project owner is one in this test).
    ServerAdmin,
    /// Only the owner of a personal asset (the project owner's).
    PersonalOwner,
    /// A relationship from the caller's own personal asset to a project asset:
    /// write on the source, read on the target.
    FromOwnToProject,
}

/// The variants of an operation: (name, rule). The name picks the fixture the
/// request works on (see `prepare`): `personal` and `to-personal` the project
/// owner's personal asset, any other the project's asset.
type Variants = &'static [(&'static str, Rule)];

const PUBLIC: Variants = &[("", Rule::Public)];
const ANY_USER: Variants = &[("", Rule::AnyUser)];
const PROJECT_READ: Variants = &[("", Rule::ProjectRead)];
const PROJECT_WRITE: Variants = &[("", Rule::ProjectWrite)];
const PROJECT_MANAGE: Variants = &[("", Rule::ProjectManage)];
const UPLOAD_OPENER: Variants = &[("", Rule::UploadOpener)];
const UPLOAD_ABORT: Variants = &[("", Rule::UploadOpenerOrManager)];
const SERVER_ADMIN: Variants = &[("", Rule::ServerAdmin)];
/// Reading an asset: a project asset by any member, a personal asset by its owner.
const ASSET_READ: Variants = &[
    ("project", Rule::ProjectRead),
    ("personal", Rule::PersonalOwner),
];
/// Changing an asset: a project asset by its writers, a personal asset by its owner.
const ASSET_WRITE: Variants = &[
    ("project", Rule::ProjectWrite),
    ("personal", Rule::PersonalOwner),
];

/// Creating a relationship (`/api/v1` and its compatibility twin): between a
/// project's assets, from the caller's own personal asset to a project asset,
/// and at a personal asset.
const RELATIONSHIP_CREATE: Variants = &[
    ("project", Rule::ProjectWrite),
    ("own-to-project", Rule::FromOwnToProject),
    ("to-personal", Rule::PersonalOwner),
];

/// Rows: `METHOD path-template` → variants.
const TABLE: &[(&str, Variants)] = &[
    ("GET /healthz", PUBLIC),
    ("GET /readyz", PUBLIC),
    ("GET /metrics", PUBLIC),
    ("GET /api/v1/openapi.json", PUBLIC),
    ("GET /api/v1/me", ANY_USER),
    ("GET /api/v1/search", ANY_USER),
    ("POST /api/v1/projects", ANY_USER),
    ("GET /api/v1/projects", ANY_USER),
    ("GET /api/v1/projects/{project_id}", PROJECT_READ),
    (
        "GET /api/v1/projects/{project_id}/collections",
        PROJECT_READ,
    ),
    (
        "POST /api/v1/projects/{project_id}/collections",
        PROJECT_WRITE,
    ),
    ("GET /api/v1/projects/{project_id}/members", PROJECT_READ),
    ("POST /api/v1/projects/{project_id}/members", PROJECT_MANAGE),
    (
        "DELETE /api/v1/projects/{project_id}/members/{user_id}",
        PROJECT_MANAGE,
    ),
    ("GET /api/v1/collections/{collection_id}", PROJECT_READ),
    // The collection tree.
    ("PATCH /api/v1/collections/{collection_id}", PROJECT_WRITE),
    ("DELETE /api/v1/collections/{collection_id}", PROJECT_WRITE),
    (
        "GET /api/v1/collections/{collection_id}/children",
        PROJECT_READ,
    ),
    // Resolves the path "lab/c": members read it (the project is found by
    // name among the caller's projects, so an outsider gets a 404).
    ("POST /api/v1/collections/ensure", PROJECT_READ),
    (
        "PUT /api/v1/assets/{asset_id}/collection",
        &[("project", Rule::ProjectWrite)],
    ),
    (
        "GET /api/v1/collections/{collection_id}/assets",
        PROJECT_READ,
    ),
    (
        "POST /api/v1/assets",
        &[("project", Rule::ProjectWrite), ("personal", Rule::AnyUser)],
    ),
    (
        "GET /api/v1/assets",
        &[("project", Rule::ProjectRead), ("own", Rule::AnyUser)],
    ),
    ("GET /api/v1/assets/{asset_id}", ASSET_READ),
    ("PATCH /api/v1/assets/{asset_id}", ASSET_WRITE),
    ("DELETE /api/v1/assets/{asset_id}", ASSET_WRITE),
    ("GET /api/v1/assets/{asset_id}/contents", ASSET_READ),
    (
        "GET /api/v1/assets/{asset_id}/contents/{content_id}",
        ASSET_READ,
    ),
    (
        "DELETE /api/v1/assets/{asset_id}/contents/{content_id}",
        ASSET_WRITE,
    ),
    (
        "GET /api/v1/assets/{asset_id}/contents/{content_id}/files/{file_index}",
        ASSET_READ,
    ),
    (
        "POST /api/v1/assets/{asset_id}/relationships",
        RELATIONSHIP_CREATE,
    ),
    ("GET /api/v1/assets/{asset_id}/relationships", ASSET_READ),
    ("GET /api/v1/assets/{asset_id}/lineage", ASSET_READ),
    ("GET /api/v1/assets/{asset_id}/provenance", ASSET_READ),
    (
        "GET /api/v1/ro-crate",
        &[
            ("collection", Rule::ProjectRead),
            ("search", Rule::AnyUser),
            ("project", Rule::ProjectRead),
            ("personal", Rule::PersonalOwner),
        ],
    ),
    ("POST /api/v1/assets/{asset_id}/uploads", ASSET_WRITE),
    ("GET /api/v1/uploads/{upload_id}", UPLOAD_OPENER),
    // Batches answer 200 with one outcome per item: the item's error is
    // what is checked (see `send`).
    ("POST /api/v1/uploads/batch", ASSET_WRITE),
    ("POST /api/v1/uploads/finish", UPLOAD_OPENER),
    ("POST /api/v1/uploads/single", ASSET_WRITE),
    // The caller's own key: each user reads the upload they made.
    ("GET /api/v1/uploads/single/{key}", ANY_USER),
    ("DELETE /api/v1/uploads/{upload_id}", UPLOAD_ABORT),
    (
        "PUT /api/v1/uploads/{upload_id}/files/{file_index}/chunks/{chunk_index}",
        UPLOAD_OPENER,
    ),
    ("POST /api/v1/uploads/{upload_id}/complete", UPLOAD_OPENER),
    ("GET /api/v1/audit", SERVER_ADMIN),
    // Compatibility routes: the same rules as their `/api/v1` twins (see `compat_twin`).
    (
        "POST /api/assets/{asset_id}/relationships/",
        RELATIONSHIP_CREATE,
    ),
    ("GET /api/assets/{asset_id}/", ASSET_READ),
    ("PATCH /api/assets/{asset_id}/", ASSET_WRITE),
    ("GET /api/projects/", ANY_USER),
    ("GET /api/collections/", PROJECT_READ),
    ("POST /api/collections/", PROJECT_WRITE),
    ("POST /api/transfers/{upload_id}/complete/", UPLOAD_OPENER),
    ("POST /oauth/device/code", PUBLIC),
    ("POST /oauth/token", PUBLIC),
    ("GET /", PUBLIC),
    // The data pages answer HTML (or a redirect to sign in), never a 401.
    ("GET /projects/{project_id}", PUBLIC),
    ("POST /projects/{project_id}/members", PUBLIC),
    (
        "POST /projects/{project_id}/members/{user_id}/remove",
        PUBLIC,
    ),
    ("GET /assets/{asset_id}", PUBLIC),
    ("POST /assets/{asset_id}/edit", PUBLIC),
    ("POST /assets/{asset_id}/delete", PUBLIC),
    ("GET /search", PUBLIC),
    ("GET /static/{name}", PUBLIC),
    ("GET /login", PUBLIC),
    ("POST /login", PUBLIC),
    ("POST /logout", PUBLIC),
    ("GET /device", PUBLIC),
    ("POST /device", PUBLIC),
    ("GET /tokens", PUBLIC),
    ("POST /tokens", PUBLIC),
    ("POST /tokens/{token_id}/revoke", PUBLIC),
    // The admin area: HTML for everyone (the 404 page for non-admins, the
    // sign-in redirect without a session; admin_pages.rs checks who may).
    ("GET /admin", PUBLIC),
    ("GET /admin/users", PUBLIC),
    ("POST /admin/users", PUBLIC),
    ("POST /admin/users/password", PUBLIC),
    ("POST /admin/users/disable", PUBLIC),
    ("POST /admin/users/enable", PUBLIC),
    ("GET /admin/audit", PUBLIC),
];

/// Whether `who` may call `method` under `rule`; `None` for public routes.
fn allowed(rule: Rule, who: Who, method: &Method) -> Option<bool> {
    if matches!(rule, Rule::Public) {
        return None;
    }
    // As whom the caller acts: the read token is the member's.
    let who = match who {
        Who::Expired | Who::Revoked | Who::NoToken => return Some(false),
        Who::ReadToken if method != Method::GET => return Some(false),
        Who::ReadToken => Who::Member,
        w => w,
    };
    Some(match rule {
        Rule::Public => unreachable!(),
        Rule::AnyUser => true,
        Rule::ProjectRead => who != Who::Outsider,
        Rule::ProjectWrite => matches!(who, Who::Owner | Who::Admin | Who::Member),
        Rule::ProjectManage => matches!(who, Who::Owner | Who::Admin),
        Rule::UploadOpener => who == Who::Member,
        Rule::UploadOpenerOrManager => matches!(who, Who::Owner | Who::Admin | Who::Member),
        Rule::ServerAdmin | Rule::PersonalOwner => who == Who::Owner,
        Rule::FromOwnToProject => who != Who::Outsider,
    })
}

/// The refusal a signed-in caller denied under `rule` gets: 403 when they
/// may read what the operation is about (or their token lacks the write
/// scope), 404 — as for an unknown id — when they may not.
fn refusal(rule: Rule, variant: &str, who: Who, method: &Method) -> StatusCode {
    if who == Who::ReadToken && method != Method::GET {
        return StatusCode::FORBIDDEN;
    }
    let who = if who == Who::ReadToken {
        Who::Member
    } else {
        who
    };
    let may_read = match rule {
        Rule::Public | Rule::AnyUser | Rule::ServerAdmin => true,
        Rule::ProjectRead | Rule::ProjectWrite | Rule::ProjectManage | Rule::FromOwnToProject => {
            who != Who::Outsider
        }
        // Someone else's upload session is as unknown as a missing one.
        // Refused to a viewer or outsider alike: someone else's session, unknown.
        Rule::UploadOpener | Rule::UploadOpenerOrManager => false,
        // From the project asset to the owner's personal one: a viewer is
        // refused write on the (readable) source before the target is looked at.
        Rule::PersonalOwner if variant == "to-personal" => who == Who::Viewer,
        Rule::PersonalOwner => false,
    };
    if may_read {
        StatusCode::FORBIDDEN
    } else {
        StatusCode::NOT_FOUND
    }
}

struct Ctx {
    server: TestServer,
    tokens: Vec<(Who, Option<String>)>,
    user_ids: Vec<(Who, String)>,
    project_id: String,
    collection_id: String,
    /// A project asset with one complete version (one file).
    asset_id: String,
    content_id: String,
    /// The project owner's personal asset with one complete version.
    personal_id: String,
    personal_content_id: String,
    /// Each user's own personal asset (relationship sources).
    own_assets: Vec<(Who, String)>,
}

impl Ctx {
    fn token(&self, who: Who) -> Option<&str> {
        self.tokens
            .iter()
            .find(|t| t.0 == who)
            .and_then(|t| t.1.as_deref())
    }
    fn api(&self, who: Who) -> Api {
        self.server.api(self.token(who).unwrap())
    }
    fn user_id(&self, who: Who) -> &str {
        &self.user_ids.iter().find(|u| u.0 == who).unwrap().1
    }
}

struct Req {
    method: Method,
    path: String,
    json: Option<Value>,
    /// Raw body and its BLAKE3 header (chunk PUT).
    chunk: Option<Vec<u8>>,
    form: Option<Vec<(&'static str, &'static str)>>,
    /// A `multipart/form-data` body: the manifest, then one file part.
    multipart: Option<(Value, Vec<u8>)>,
}

fn req(method: Method, path: String) -> Req {
    Req {
        method,
        path,
        json: None,
        chunk: None,
        form: None,
        multipart: None,
    }
}

const FILE: &[u8] = b"0123456789";

/// A name no earlier call used (collection siblings must differ).
fn fresh_name(prefix: &str) -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{prefix}-{n}")
}

async fn new_project_asset(ctx: &Ctx, title: &str) -> String {
    ctx.api(Who::Owner)
        .project_asset(&ctx.project_id, title)
        .await
}

/// A fresh upload session opened by the member on the project asset.
/// The manifest of `POST /api/v1/uploads/single`: [`FILE`] as a new
/// version of `asset`, under `key`.
fn single_manifest(key: &str, asset: &str) -> Value {
    json!({"key": key, "asset_id": asset, "upload": {"chunk_size": 1024, "files": [
        {"name": "x.bin", "size": FILE.len(), "checksum": format!("blake3:{}", hex_blake3(FILE))}]}})
}

async fn member_upload(ctx: &Ctx) -> String {
    let files = json!([{"name": "f.bin", "size": FILE.len()}]);
    let member = ctx.api(Who::Member);
    let u = created(member.open_upload(&ctx.asset_id, files, 1024).await);
    u["upload_id"].as_str().unwrap().to_string()
}

/// The `/api/v1` operation a compatibility route adapts.
fn compat_twin(template: &str) -> Option<&'static str> {
    Some(match template {
        "/api/assets/{asset_id}/relationships/" => "/api/v1/assets/{asset_id}/relationships",
        "/api/assets/{asset_id}/" => "/api/v1/assets/{asset_id}",
        "/api/projects/" => "/api/v1/projects",
        "/api/collections/" => "/api/v1/projects/{project_id}/collections",
        "/api/transfers/{upload_id}/complete/" => "/api/v1/uploads/{upload_id}/complete",
        _ => return None,
    })
}

/// The request of a `/api/v1` operation, sent to its compatibility route.
fn compat_request(mut r: Req, project_id: &str) -> Req {
    let v1 = r.path.clone();
    r.path = if v1.ends_with("/collections") {
        if let Some(body) = &r.json {
            r.json = Some(
                json!({"title": body["name"], "owner_type": "project", "owner_id": project_id}),
            );
            "/api/collections/".to_string()
        } else {
            format!("/api/collections/?owner_type=project&owner_id={project_id}")
        }
    } else if let Some(rest) = v1.strip_prefix("/api/v1/uploads/") {
        format!("/api/transfers/{rest}/")
    } else {
        format!("{}/", v1.replacen("/api/v1/", "/api/", 1))
    };
    r
}

/// Build the request of one (operation, variant) for `who`, creating
/// whatever fixture it consumes.
async fn prepare(ctx: &Ctx, op: &str, variant: &str, who: Who) -> Req {
    if let Some((method, twin)) = op
        .split_once(' ')
        .and_then(|(m, t)| Some((m, compat_twin(t)?)))
    {
        let r = Box::pin(prepare(ctx, &format!("{method} {twin}"), variant, who)).await;
        return compat_request(r, &ctx.project_id);
    }
    let p = &ctx.project_id;
    let (asset, content) = match variant {
        "personal" | "to-personal" => (ctx.personal_id.clone(), ctx.personal_content_id.clone()),
        _ => (ctx.asset_id.clone(), ctx.content_id.clone()),
    };
    let (method, template) = op.split_once(' ').unwrap();
    let method = Method::from_bytes(method.as_bytes()).unwrap();
    match template {
        "/healthz"
        | "/readyz"
        | "/metrics"
        | "/api/v1/openapi.json"
        | "/api/v1/me"
        | "/api/v1/projects"
            if method == Method::GET =>
        {
            req(method, template.to_string())
        }
        "/api/v1/projects" => Req {
            json: Some(json!({"name": "another"})),
            ..req(method, template.into())
        },
        "/api/v1/projects/{project_id}" => req(method, format!("/api/v1/projects/{p}")),
        "/api/v1/projects/{project_id}/collections" => Req {
            // Sibling names are unique: a fresh one per call.
            json: (method == Method::POST).then(|| json!({"name": fresh_name("sub")})),
            ..req(method, format!("/api/v1/projects/{p}/collections"))
        },
        "/api/v1/collections/{collection_id}" if method != Method::GET => {
            // Renaming or deleting works on a fresh (empty) collection per call.
            let (s, c) = ctx
                .api(Who::Owner)
                .post(
                    &format!("/api/v1/projects/{p}/collections"),
                    json!({"name": fresh_name("victim")}),
                )
                .await;
            assert_eq!(s, StatusCode::CREATED, "{c}");
            let id = c["collection_id"].as_str().unwrap();
            Req {
                json: (method == Method::PATCH).then(|| json!({"name": fresh_name("renamed")})),
                ..req(method, format!("/api/v1/collections/{id}"))
            }
        }
        "/api/v1/collections/{collection_id}/children" => req(
            method,
            format!("/api/v1/collections/{}/children", ctx.collection_id),
        ),
        "/api/v1/collections/ensure" => Req {
            json: Some(json!({"path": "lab / c"})),
            ..req(method, template.into())
        },
        "/api/v1/assets/{asset_id}/collection" => Req {
            json: Some(json!({"collection_id": ctx.collection_id})),
            ..req(method, format!("/api/v1/assets/{asset}/collection"))
        },
        "/api/v1/projects/{project_id}/members" => Req {
            json: (method == Method::POST)
                .then(|| json!({"email": "extra@lab.org", "role": "viewer"})),
            ..req(method, format!("/api/v1/projects/{p}/members"))
        },
        "/api/v1/projects/{project_id}/members/{user_id}" => {
            // Make sure there is someone to remove.
            let (s, m) = ctx
                .api(Who::Owner)
                .set_role(p, "extra@lab.org", "viewer")
                .await;
            assert!(s.is_success(), "{m}");
            req(
                method,
                format!(
                    "/api/v1/projects/{p}/members/{}",
                    m["user_id"].as_str().unwrap()
                ),
            )
        }
        "/api/v1/collections/{collection_id}" => {
            req(method, format!("/api/v1/collections/{}", ctx.collection_id))
        }
        "/api/v1/collections/{collection_id}/assets" => req(
            method,
            format!("/api/v1/collections/{}/assets", ctx.collection_id),
        ),
        "/api/v1/assets" if method == Method::POST => {
            let body = match variant {
                "project" => json!({"title": "new", "owner_type": "project", "owner_id": p}),
                _ => {
                    // Your own personal asset (the member's id for its read token).
                    let me = match who {
                        Who::Owner | Who::Admin | Who::Viewer | Who::Outsider => ctx.user_id(who),
                        _ => ctx.user_id(Who::Member),
                    };
                    json!({"title": "mine", "owner_type": "user", "owner_id": me})
                }
            };
            Req {
                json: Some(body),
                ..req(method, template.into())
            }
        }
        "/api/v1/assets" => match variant {
            "project" => req(
                method,
                format!("/api/v1/assets?owner_type=project&owner_id={p}"),
            ),
            _ => req(method, "/api/v1/assets".into()),
        },
        "/api/v1/assets/{asset_id}" => match method {
            Method::PATCH => Req {
                json: Some(json!({"metadata": {"touched": true}})),
                ..req(method, format!("/api/v1/assets/{asset}"))
            },
            Method::DELETE => {
                // Deleting consumes the asset: a fresh one per call.
                let victim = match variant {
                    "project" => new_project_asset(ctx, "victim").await,
                    _ => {
                        ctx.api(Who::Owner)
                            .personal_asset(ctx.user_id(Who::Owner), "victim")
                            .await
                    }
                };
                req(method, format!("/api/v1/assets/{victim}"))
            }
            _ => req(method, format!("/api/v1/assets/{asset}")),
        },
        "/api/v1/assets/{asset_id}/contents" => {
            req(method, format!("/api/v1/assets/{asset}/contents"))
        }
        "/api/v1/assets/{asset_id}/contents/{content_id}" if method == Method::DELETE => {
            // Deleting consumes a version: a fresh second one per call.
            let v = ctx
                .api(Who::Owner)
                .upload(&asset, &[("f.bin", FILE)], 1024)
                .await;
            let victim = v["content_id"].as_str().unwrap();
            req(method, format!("/api/v1/assets/{asset}/contents/{victim}"))
        }
        "/api/v1/assets/{asset_id}/contents/{content_id}" => {
            req(method, format!("/api/v1/assets/{asset}/contents/{content}"))
        }
        "/api/v1/assets/{asset_id}/contents/{content_id}/files/{file_index}" => req(
            method,
            format!("/api/v1/assets/{asset}/contents/{content}/files/0"),
        ),
        "/api/v1/assets/{asset_id}/relationships" if method == Method::POST => {
            // A fresh target each time, so no duplicate edge is refused.
            let (from, to) = match variant {
                "project" => (asset, new_project_asset(ctx, "target").await),
                "to-personal" => {
                    // From a project asset the caller may write to the owner's
                    // personal asset: only its owner may read the target.
                    (
                        ctx.asset_id.clone(),
                        ctx.api(Who::Owner)
                            .personal_asset(ctx.user_id(Who::Owner), "t")
                            .await,
                    )
                }
                _ => {
                    let me = match who {
                        Who::Owner | Who::Admin | Who::Viewer | Who::Outsider => who,
                        _ => Who::Member,
                    };
                    let own = ctx.own_assets.iter().find(|a| a.0 == me).unwrap().1.clone();
                    (own, new_project_asset(ctx, "target").await)
                }
            };
            Req {
                json: Some(json!({"to_asset_id": to, "type": "derived_from"})),
                ..req(method, format!("/api/v1/assets/{from}/relationships"))
            }
        }
        "/api/v1/assets/{asset_id}/relationships" => {
            req(method, format!("/api/v1/assets/{asset}/relationships"))
        }
        "/api/v1/assets/{asset_id}/lineage" => {
            req(method, format!("/api/v1/assets/{asset}/lineage"))
        }
        "/api/v1/assets/{asset_id}/provenance" => {
            req(method, format!("/api/v1/assets/{asset}/provenance"))
        }
        "/api/v1/ro-crate" => match variant {
            "collection" => req(
                method,
                format!("/api/v1/ro-crate?collection_id={}", ctx.collection_id),
            ),
            // An asset's lineage: the project's asset or the owner's personal one.
            "project" | "personal" => req(method, format!("/api/v1/ro-crate?asset_id={asset}")),
            _ => req(method, "/api/v1/ro-crate?q=tag:x".into()),
        },
        "/api/v1/assets/{asset_id}/uploads" => Req {
            json: Some(json!({"files": [{"name": "x.bin", "size": 3}], "chunk_size": 1024})),
            ..req(method, format!("/api/v1/assets/{asset}/uploads"))
        },
        "/api/v1/uploads/batch" => Req {
            json: Some(json!({"items": [{"asset_id": asset,
                "upload": {"files": [{"name": "x.bin", "size": 3}], "chunk_size": 1024}}]})),
            ..req(method, template.into())
        },
        "/api/v1/uploads/finish" => {
            let upload = member_upload(ctx).await;
            let manifest = json!({"items": [{"upload_id": upload,
                "checksum": format!("blake3:{}", hex_blake3(FILE))}]});
            Req {
                multipart: Some((manifest, FILE.to_vec())),
                ..req(method, template.into())
            }
        }
        "/api/v1/uploads/single" => Req {
            multipart: Some((single_manifest(&fresh_name("key"), &asset), FILE.to_vec())),
            ..req(method, template.into())
        },
        "/api/v1/uploads/single/{key}" => {
            let key = fresh_name("key");
            // A read-only token reads what its user (the member) made.
            let maker = if who == Who::ReadToken {
                Who::Member
            } else {
                who
            };
            let own = ctx.own_assets.iter().find(|a| a.0 == maker);
            if let (Some(token), Some((_, asset))) = (ctx.token(maker), own) {
                // Made by the caller first (refused for a token that no longer works).
                let form = reqwest::multipart::Form::new()
                    .text("manifest", single_manifest(&key, asset).to_string())
                    .part("file", reqwest::multipart::Part::bytes(FILE.to_vec()));
                let api = ctx.server.api(token);
                let url = api.url("/api/v1/uploads/single");
                let made = api.client.post(url).bearer_auth(token).multipart(form);
                made.send().await.unwrap();
            }
            req(method, format!("/api/v1/uploads/single/{key}"))
        }
        "/api/v1/uploads/{upload_id}" => req(
            method,
            format!("/api/v1/uploads/{}", member_upload(ctx).await),
        ),
        "/api/v1/uploads/{upload_id}/files/{file_index}/chunks/{chunk_index}" => Req {
            chunk: Some(FILE.to_vec()),
            ..req(
                method,
                format!(
                    "/api/v1/uploads/{}/files/0/chunks/0",
                    member_upload(ctx).await
                ),
            )
        },
        "/api/v1/uploads/{upload_id}/complete" => {
            let upload = member_upload(ctx).await;
            let (s, v) = ctx.api(Who::Member).put_chunk(&upload, 0, 0, FILE).await;
            assert_eq!(s, StatusCode::OK, "{v}");
            Req {
                json: Some(completion(&[FILE])),
                ..req(method, format!("/api/v1/uploads/{upload}/complete"))
            }
        }
        "/api/v1/audit" => req(method, "/api/v1/audit".into()),
        "/api/v1/search" => req(method, "/api/v1/search?q=tag:x".into()),
        "/oauth/device/code" => Req {
            form: Some(vec![("client_id", "dataerai-cli"), ("scope", "read")]),
            ..req(method, template.into())
        },
        "/oauth/token" => Req {
            form: Some(vec![
                ("grant_type", "refresh_token"),
                ("refresh_token", "dtr_rt_unknown"),
            ]),
            ..req(method, template.into())
        },
        "/tokens/{token_id}/revoke" => Req {
            form: Some(vec![]),
            ..req(method, "/tokens/x/revoke".into())
        },
        "/projects/{project_id}" => req(method, format!("/projects/{p}")),
        // Forms without their CSRF token: the 403 page, never a 401.
        "/projects/{project_id}/members" => Req {
            form: Some(vec![]),
            ..req(method, format!("/projects/{p}/members"))
        },
        "/projects/{project_id}/members/{user_id}/remove" => Req {
            form: Some(vec![]),
            ..req(method, format!("/projects/{p}/members/x/remove"))
        },
        "/assets/{asset_id}" => req(method, format!("/assets/{asset}")),
        "/assets/{asset_id}/edit" | "/assets/{asset_id}/delete" => Req {
            form: Some(vec![]),
            ..req(method, template.replace("{asset_id}", &asset))
        },
        "/search" => req(method, "/search?q=tag:x".into()),
        "/static/{name}" => req(method, "/static/api.js".into()),
        "/"
        | "/login"
        | "/logout"
        | "/device"
        | "/tokens"
        | "/admin"
        | "/admin/users"
        | "/admin/users/password"
        | "/admin/users/disable"
        | "/admin/users/enable"
        | "/admin/audit" => Req {
            form: Some(vec![]),
            ..req(method, template.into())
        },
        other => {
            panic!("the permission table has a row for {op} but prepare() cannot build {other}")
        }
    }
}

async fn send(ctx: &Ctx, r: Req, token: Option<&str>) -> (StatusCode, Value) {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut b = client.request(r.method.clone(), format!("{}{}", ctx.server.base, r.path));
    if let Some(t) = token {
        b = b.bearer_auth(t);
    }
    if let Some(j) = r.json {
        b = b.json(&j);
    }
    if let Some(c) = r.chunk {
        b = b.header("x-dataerai-chunk-blake3", hex_blake3(&c)).body(c);
    }
    if let Some(f) = r.form {
        if r.method != Method::GET {
            b = b.form(&f);
        }
    }
    if let Some((manifest, file)) = r.multipart {
        let form = reqwest::multipart::Form::new()
            .text("manifest", manifest.to_string())
            .part("file", reqwest::multipart::Part::bytes(file));
        b = b.multipart(form);
    }
    let resp = b.send().await.unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    let body =
        serde_json::from_str(&text).unwrap_or(Value::String(text.chars().take(200).collect()));
    // A batch of one: its item's outcome stands for the whole request.
    if let (true, Some([item])) = (
        status.is_success(),
        body["items"].as_array().map(Vec::as_slice),
    ) {
        return match item["error"]["code"].as_str() {
            None => (status, item["result"].clone()),
            Some(code) => {
                let status = match code {
                    "ERR_PERMISSION_DENIED" => StatusCode::FORBIDDEN,
                    "ERR_NOT_FOUND" => StatusCode::NOT_FOUND,
                    _ => StatusCode::BAD_REQUEST,
                };
                (status, json!({"error": item["error"]}))
            }
        };
    }
    (status, body)
}

async fn setup() -> (tempfile::TempDir, Ctx) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut user_ids = Vec::new();
    let mut tokens = Vec::new();
    for (who, email, is_admin) in [
        (Who::Owner, "owner@lab.org", true),
        (Who::Admin, "admin@lab.org", false),
        (Who::Member, "member@lab.org", false),
        (Who::Viewer, "viewer@lab.org", false),
        (Who::Outsider, "outsider@lab.org", false),
    ] {
        user_ids.push((who, make_user_with_password(d, email, PW, is_admin)));
        tokens.push((
            who,
            Some(admin(
                d,
                &["create-token", "--email", email, "--scope", "read,write"],
            )),
        ));
    }
    make_user(d, "extra@lab.org", "read");
    tokens.push((
        Who::ReadToken,
        Some(admin(
            d,
            &[
                "create-token",
                "--email",
                "member@lab.org",
                "--scope",
                "read",
            ],
        )),
    ));
    tokens.push((Who::NoToken, None));
    let server = TestServer::start_with(
        d,
        &["--access-token-ttl-s", "1", "--device-poll-interval-s", "1"],
    );

    // Expired: a device-login access token living 1 s (checked after setup).
    let login = device_login(&server.base, "member@lab.org", PW).await;
    tokens.push((
        Who::Expired,
        Some(login["access_token"].as_str().unwrap().to_string()),
    ));
    // Revoked: a personal access token made and revoked on the web page.
    let mut b = Browser::new(&server.base);
    b.sign_in("member@lab.org", PW).await;
    let (created, revoked) = b.create_token("soon revoked", &["read", "write"]).await;
    assert_eq!(
        server.api(&revoked).get("/api/v1/me").await.0,
        StatusCode::OK
    );
    let p = b.revoke_token(&created.first_token_id()).await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    tokens.push((Who::Revoked, Some(revoked)));

    let owner = server.api(tokens[0].1.as_deref().unwrap());
    let project_id = owner.create_project("lab").await;
    for (email, role) in [
        ("admin@lab.org", "admin"),
        ("member@lab.org", "member"),
        ("viewer@lab.org", "viewer"),
    ] {
        let (s, m) = owner.set_role(&project_id, email, role).await;
        assert_eq!(s, StatusCode::CREATED, "{m}");
    }
    let (_, c) = owner
        .post(
            &format!("/api/v1/projects/{project_id}/collections"),
            json!({"name": "c"}),
        )
        .await;
    let mut ctx = Ctx {
        server,
        tokens,
        user_ids,
        project_id,
        collection_id: c["collection_id"].as_str().unwrap().to_string(),
        asset_id: String::new(),
        content_id: String::new(),
        personal_id: String::new(),
        personal_content_id: String::new(),
        own_assets: Vec::new(),
    };
    ctx.asset_id = new_project_asset(&ctx, "data").await;
    let v = owner.upload(&ctx.asset_id, &[("f.bin", FILE)], 1024).await;
    ctx.content_id = v["content_id"].as_str().unwrap().to_string();
    ctx.personal_id = owner
        .personal_asset(ctx.user_id(Who::Owner), "private")
        .await;
    let v = owner
        .upload(&ctx.personal_id, &[("p.bin", FILE)], 1024)
        .await;
    ctx.personal_content_id = v["content_id"].as_str().unwrap().to_string();
    for who in [
        Who::Owner,
        Who::Admin,
        Who::Member,
        Who::Viewer,
        Who::Outsider,
    ] {
        let id = ctx.api(who).personal_asset(ctx.user_id(who), "own").await;
        ctx.own_assets.push((who, id));
    }
    (dir, ctx)
}

#[tokio::test]
async fn every_route_times_every_principal() {
    let (_dir, ctx) = setup().await;
    // Wait until the 1 s access token has expired.
    let expired = ctx.api(Who::Expired);
    wait_until_async(
        "the 1 s access token to expire",
        std::time::Duration::from_secs(30),
        || async { (expired.get("/api/v1/me").await.0 == StatusCode::UNAUTHORIZED).then_some(()) },
    )
    .await;

    // The operations the server documents (= its routes, by the unit test).
    let (_, doc) = reqwest::get(format!("{}/api/v1/openapi.json", ctx.server.base))
        .await
        .unwrap()
        .json::<Value>()
        .await
        .map(|d| ((), d))
        .unwrap();
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.insert(format!("{} {path}", method.to_uppercase()));
        }
    }
    let tabled: BTreeSet<String> = TABLE.iter().map(|r| r.0.to_string()).collect();
    let missing: Vec<_> = documented.difference(&tabled).collect();
    assert!(
        missing.is_empty(),
        "operations without a row in the permission table: {missing:?}"
    );
    let stale: Vec<_> = tabled.difference(&documented).collect();
    assert!(
        stale.is_empty(),
        "permission table rows for undocumented operations: {stale:?}"
    );

    let mut failures = Vec::new();
    let mut checked = 0;
    for (op, variants) in TABLE {
        for (variant, rule) in *variants {
            for who in EVERYONE {
                let r = prepare(&ctx, op, variant, who).await;
                let method = r.method.clone();
                let (status, body) = send(&ctx, r, ctx.token(who)).await;
                checked += 1;
                let code = body["error"]["code"].as_str().unwrap_or("");
                let ok = match allowed(*rule, who, &method) {
                    // Public: never asks for a bearer token.
                    None => status != StatusCode::UNAUTHORIZED && status.as_u16() < 500,
                    Some(true) => status.is_success(),
                    Some(false) if matches!(who, Who::Expired | Who::Revoked | Who::NoToken) => {
                        status == StatusCode::UNAUTHORIZED && code == "ERR_AUTH_REQUIRED"
                    }
                    Some(false) => match refusal(*rule, variant, who, &method) {
                        StatusCode::FORBIDDEN => {
                            status == StatusCode::FORBIDDEN && code == "ERR_PERMISSION_DENIED"
                        }
                        _ => status == StatusCode::NOT_FOUND && code == "ERR_NOT_FOUND",
                    },
                };
                if !ok {
                    failures.push(format!(
                        "{op} [{variant}] as {who:?}: expected {}, got {status} {body}",
                        match allowed(*rule, who, &method) {
                            None => "no bearer needed",
                            Some(true) => "allow",
                            Some(false) => match refusal(*rule, variant, who, &method) {
                                StatusCode::FORBIDDEN => "deny 403",
                                _ => "deny 404",
                            },
                        }
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {checked} checks failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(checked > 400, "{checked}");
}

/// Role changes take effect at once: a member demoted to viewer can no longer
/// write, not even through an upload session opened before; the last owner
/// stays; only owners grant `owner`; unknown emails are invited.
#[tokio::test]
async fn member_management_rules() {
    let (_dir, ctx) = setup().await;
    let p = &ctx.project_id;
    let owner = ctx.api(Who::Owner);
    let admin_api = ctx.api(Who::Admin);
    let member = ctx.api(Who::Member);
    let members = format!("/api/v1/projects/{p}/members");

    let upload = member_upload(&ctx).await;
    let (s, m) = admin_api.set_role(p, "member@lab.org", "viewer").await;
    assert_eq!((s, m["role"].as_str()), (StatusCode::OK, Some("viewer")));
    let asset = format!("/api/v1/assets/{}", ctx.asset_id);
    let put = member.put_chunk(&upload, 0, 0, FILE).await;
    assert_err_for("a chunk of the demoted member", &put, PERMISSION_DENIED);
    let patch = member.patch(&asset, json!({"title": "x"})).await;
    assert_err_for("a change by the demoted member", &patch, PERMISSION_DENIED);
    assert_eq!(member.get(&asset).await.0, StatusCode::OK);

    // Admins cannot touch owners; the last owner cannot leave or be demoted.
    let owner_path = format!("{members}/{}", ctx.user_id(Who::Owner));
    let grant = admin_api.set_role(p, "viewer@lab.org", "owner").await;
    assert_err_for("an admin grants owner", &grant, PERMISSION_DENIED);
    let removal = admin_api.delete(&owner_path).await;
    assert_err_for("an admin removes an owner", &removal, PERMISSION_DENIED);
    let leaving = owner.delete(&owner_path).await;
    assert_err_for("the last owner leaves", &leaving, INVALID_INPUT);
    let stepping_down = owner.set_role(p, "owner@lab.org", "admin").await;
    assert_err_for("the last owner steps down", &stepping_down, INVALID_INPUT);
    // With a second owner, the first may step down.
    let (s, _) = owner.set_role(p, "admin@lab.org", "owner").await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = owner.set_role(p, "owner@lab.org", "admin").await;
    assert_eq!(s, StatusCode::OK);
    // Bad input.
    let (s, ghost) = admin_api.set_role(p, "ghost@lab.org", "viewer").await;
    assert_eq!(
        s,
        StatusCode::CREATED,
        "an unknown email is invited: {ghost}"
    );
    let superuser = admin_api.set_role(p, "viewer@lab.org", "superuser").await;
    assert_err_for("an unknown role", &superuser, INVALID_INPUT);
    let outsider = format!("{members}/{}", ctx.user_id(Who::Outsider));
    let removed = admin_api.delete(&outsider).await;
    assert_err_for("removing a non-member", &removed, NOT_FOUND);
    // Removing a member: they lose access.
    let (s, _) = admin_api
        .delete(&format!("{members}/{}", ctx.user_id(Who::Viewer)))
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let viewer = ctx.api(Who::Viewer);
    let gone = viewer.get(&format!("/api/v1/projects/{p}")).await;
    assert_err_for("a removed member reads the project", &gone, NOT_FOUND);
    let (_, list) = admin_api.get(&members).await;
    let roles: Vec<(&str, &str)> = item_strs(&list, "email")
        .into_iter()
        .zip(item_strs(&list, "role"))
        .collect();
    assert_eq!(list["total"], 4, "{roles:?}");
    assert!(roles.contains(&("ghost@lab.org", "viewer")), "{roles:?}");
    assert!(roles.contains(&("admin@lab.org", "owner")), "{roles:?}");

    assert_audited(
        &owner,
        &[
            "member.added",
            "member.role_changed",
            "member.removed",
            "auth.device_approved",
        ],
    )
    .await;
}
