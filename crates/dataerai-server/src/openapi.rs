//! The OpenAPI 3.1 document served at `GET /api/v1/openapi.json`, generated.
//!
//! Each operation comes from the `#[utoipa::path]` attribute on its handler,
//! and `routes::router` routes handlers through `utoipa_axum::routes!`, which
//! takes the path and method from that same attribute: an endpoint is written
//! in one place and cannot be routed without being documented. Schemas are
//! derived from the wire types of `dataerai-proto` (its `openapi` feature).
//!
//! A handler's declaration: the first line of its doc comment is the
//! operation's summary (utoipa reads it; one line, since a wrapped one would
//! carry its line break into the summary), its path parameters are the shared
//! types of `routes::path_params` (`params(AssetIdPath)`), then the request
//! body and the answers.
//!
//! This module holds only what every operation shares ([`finish`]: the bearer
//! scheme, the error response, public operations needing no token); the web
//! pages' handlers (`web/`) carry their own attributes like the API's, with
//! the answers many pages give named once here ([`HtmlPage`],
//! [`SignInFirst`], [`FormRefused`]).

use std::collections::BTreeMap;
use std::sync::OnceLock;

use dataerai_proto::ErrorBody;
use serde_json::{json, Value};
use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::RefOr;
use utoipa::{IntoResponses, OpenApi};

/// The document as served (built once per process).
pub fn document() -> &'static Value {
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        let (_, doc) = crate::routes::documented_routes();
        finish(doc)
    })
}

/// The part of the document no handler carries: title and the shared
/// schemas. `routes::documented_routes` adds the handlers' operations.
pub fn base() -> utoipa::openapi::OpenApi {
    Base::openapi()
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Dataerai API",
        description = "Projects, assets, content versions, relationships, chunked resumable uploads and ranged downloads. Errors are {\"error\": {\"code\": \"ERR_…\", \"message\": \"…\"}}."
    ),
    components(schemas(ErrorBody))
)]
struct Base;

/// What every operation shares, added to the generated document:
/// - the `bearer` security scheme, required by default;
/// - operations marked `security(())` need no token: their requirement list
///   becomes empty (`[]`) rather than one empty requirement;
/// - every operation answers errors as [`ErrorBody`] (`default` response).
fn finish(doc: utoipa::openapi::OpenApi) -> Value {
    let mut doc = serde_json::to_value(doc).expect("the OpenAPI document serialises");
    doc["components"]["securitySchemes"] = json!({"bearer": {"type": "http", "scheme": "bearer"}});
    doc["security"] = json!([{"bearer": []}]);
    let error = json!({
        "description": "Error: a stable `ERR_*` code and a message saying what to do next",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    });
    if let Some(paths) = doc["paths"].as_object_mut() {
        for item in paths.values_mut() {
            let Some(item) = item.as_object_mut() else {
                continue;
            };
            for (_, operation) in item.iter_mut() {
                if operation["security"] == json!([{}]) {
                    operation["security"] = json!([]);
                }
                if let Some(responses) = operation["responses"].as_object_mut() {
                    responses.entry("default").or_insert_with(|| error.clone());
                }
            }
        }
    }
    doc
}

// ---------------------------------------------------------------- schemas no wire type carries

/// Raw bytes: a chunk, a file, or a range of one.
pub struct RawBytes;

impl utoipa::PartialSchema for RawBytes {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .content_media_type("application/octet-stream")
            .into()
    }
}

impl utoipa::ToSchema for RawBytes {}

/// An `application/x-www-form-urlencoded` body: fields named in the summary.
pub struct Form;

impl utoipa::PartialSchema for Form {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .additional_properties(Some(ObjectBuilder::new().schema_type(Type::String)))
            .into()
    }
}

impl utoipa::ToSchema for Form {}

// ---------------------------------------------------------------- answers the web pages share

/// An HTML answer (`text/html`, a string) with this description.
pub fn html_response(description: &str) -> RefOr<Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "text/html",
            ContentBuilder::new()
                .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
                .build(),
        )
        .into()
}

/// Names an HTML answer many handlers give (`status`, `description`) as a
/// type their `responses(…)` can list. A macro because each is a unit struct
/// with the same three-line `IntoResponses` impl and only the two values differ.
macro_rules! html_answer {
    ($(#[$doc:meta])* $vis:vis $name:ident, $status:literal, $description:literal) => {
        $(#[$doc])*
        $vis struct $name;

        impl utoipa::IntoResponses for $name {
            fn responses() -> std::collections::BTreeMap<
                String,
                utoipa::openapi::RefOr<utoipa::openapi::response::Response>,
            > {
                let answer = $crate::openapi::html_response($description);
                std::collections::BTreeMap::from([($status.to_string(), answer)])
            }
        }
    };
}
pub(crate) use html_answer;

html_answer!(
    /// `200`: the page.
    pub HtmlPage, "200", "The page"
);

/// `303` to `/login`: a signed-out visitor of a page that needs a session.
pub struct SignInFirst;

impl IntoResponses for SignInFirst {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        let to_login = ResponseBuilder::new().description("Not signed in: to /login");
        BTreeMap::from([("303".to_string(), to_login.into())])
    }
}

html_answer!(
    /// `400`: a form refused by a rule; the page says which.
    pub FormRefused, "400", "Refused (the page says why)"
);

html_answer!(
    /// `404`: an asset that does not exist or that the visitor may not read
    /// (the same page for both, as the API's 404).
    pub NoSuchAsset, "404", "No such asset, or not readable"
);

html_answer!(
    /// `403`: an asset form from a reader who may not write, or without the
    /// CSRF token.
    pub MayNotWrite, "403", "A reader who may not write, or no CSRF token"
);

html_answer!(
    /// `200`: the users page again, with what an admin form did on top.
    pub UsersPageAfterForm, "200", "Done: the users page"
);

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
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            assert!(schemas.contains_key(&name), "undefined schema {name}");
        }
    }

    /// Every route of the router is documented, with each of its methods (the
    /// permission table test in `tests/permissions.rs` walks this document, so
    /// an undocumented route would escape it).
    ///
    /// Routes added with `routes!(handler)` take their path and method from
    /// the handler's `#[utoipa::path]`, so they are documented by construction.
    /// This checks that `routes/mod.rs` has no plain `.route(…)` call (which
    /// would bypass the document), and that the document has exactly one
    /// operation per routed handler (no stub without a route).
    #[test]
    fn all_routes_listed() {
        let src: String = include_str!("routes/mod.rs")
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        assert!(
            !src.contains(".route("),
            "routes/mod.rs routes something with a plain .route(…): use routes!(handler) so it is documented"
        );
        let routed_handlers: usize = src
            .split("routes!(")
            .skip(1)
            .map(|piece| {
                piece
                    .split(')')
                    .next()
                    .unwrap_or("")
                    .split(',')
                    .filter(|h| !h.trim().is_empty())
                    .count()
            })
            .sum();
        let doc = document();
        let documented: usize = doc["paths"]
            .as_object()
            .unwrap()
            .values()
            .map(|item| item.as_object().unwrap().len())
            .sum();
        assert!(
            routed_handlers > 40,
            "found only {routed_handlers} routed handlers: has the router moved?"
        );
        assert_eq!(
            documented, routed_handlers,
            "documented operations vs handlers routed with routes!(…)"
        );
    }

    /// Operation ids are unique (OpenAPI requires it), and the wire enums
    /// list their wire strings.
    #[test]
    fn operation_ids_unique_and_enums_as_on_the_wire() {
        let doc = document();
        let mut seen = std::collections::BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let id = op["operationId"].as_str().unwrap_or_default();
                assert!(!id.is_empty(), "{method} {path} has no operationId");
                assert!(seen.insert(id.to_string()), "operationId {id} used twice");
            }
        }
        let schemas = &doc["components"]["schemas"];
        assert_eq!(
            schemas["ProjectRole"]["enum"],
            json!(["owner", "admin", "member", "viewer"])
        );
        assert_eq!(schemas["OwnerType"]["enum"], json!(["user", "project"]));
        assert_eq!(
            schemas["UploadStatus"]["enum"],
            json!(["open", "complete", "aborted"])
        );
        assert_eq!(
            schemas["ContentStatus"]["enum"],
            json!(["pending", "complete", "aborted"])
        );
        assert!(schemas["ErrorCode"]["enum"]
            .as_array()
            .unwrap()
            .contains(&json!("ERR_QUOTA_EXCEEDED")));
    }

    /// Every operation has a one-line summary (the first line of its
    /// handler's doc comment: a wrapped line would put a line break into it)
    /// and documents each `{name}` of its path as a path parameter (the
    /// shared types of `routes::path_params`).
    #[test]
    fn summaries_and_path_parameters() {
        let doc = document();
        for (path, item) in doc["paths"].as_object().unwrap() {
            let mut in_path: Vec<&str> = path
                .split('{')
                .skip(1)
                .filter_map(|piece| piece.split('}').next())
                .collect();
            in_path.sort();
            for (method, op) in item.as_object().unwrap() {
                let summary = op["summary"].as_str().unwrap_or_default();
                assert!(
                    !summary.is_empty() && !summary.contains('\n'),
                    "{method} {path}: the summary {summary:?} should be one line"
                );
                let mut documented: Vec<&str> = op["parameters"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|p| p["in"] == "path")
                    .filter_map(|p| p["name"].as_str())
                    .collect();
                documented.sort();
                assert_eq!(documented, in_path, "{method} {path}: path parameters");
            }
        }
    }

    /// Public operations say so with an empty requirement list, the others
    /// inherit the bearer requirement; every operation documents the error body.
    #[test]
    fn security_and_errors_on_every_operation() {
        let doc = document();
        assert_eq!(doc["security"], json!([{"bearer": []}]));
        let public = [
            "/healthz",
            "/readyz",
            "/metrics",
            "/api/v1/openapi.json",
            "/oauth/token",
        ];
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                assert!(
                    op["responses"]["default"]["content"]["application/json"].is_object(),
                    "{method} {path} lacks the error response"
                );
                if public.contains(&path.as_str()) || !path.starts_with("/api/") {
                    assert_eq!(
                        op["security"],
                        json!([]),
                        "{method} {path} should be public"
                    );
                } else {
                    assert!(
                        op.get("security").is_none(),
                        "{method} {path} should need a token"
                    );
                }
            }
        }
    }
}
