//! The scripts the pages load, embedded in the binary and served from
//! `/static/{name}` (the Content-Security-Policy allows scripts from this
//! origin only). Pages work without them: scripts add the lineage graph,
//! in-place editing and browser uploads on top of plain HTML.
//!
//! A new file goes into `web/static/` and gets a line in [`FILES`]; a page
//! loads it with [`crate::web::Page::script`].

use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// Name, content type and bytes of every served file.
const FILES: &[(&str, &str, &[u8])] = &[
    (
        "api.js",
        "text/javascript; charset=utf-8",
        include_bytes!("static/api.js"),
    ),
    (
        "blake3.js",
        "text/javascript; charset=utf-8",
        include_bytes!("static/blake3.js"),
    ),
    (
        "upload.js",
        "text/javascript; charset=utf-8",
        include_bytes!("static/upload.js"),
    ),
    (
        "upload-worker.js",
        "text/javascript; charset=utf-8",
        include_bytes!("static/upload-worker.js"),
    ),
    (
        "lineage.js",
        "text/javascript; charset=utf-8",
        include_bytes!("static/lineage.js"),
    ),
    (
        "asset-edit.js",
        "text/javascript; charset=utf-8",
        include_bytes!("static/asset-edit.js"),
    ),
];

/// A file's bytes, content type and entity tag (its BLAKE3, computed once).
struct StaticFile {
    content_type: &'static str,
    bytes: &'static [u8],
    etag: String,
}

fn lookup(name: &str) -> Option<&'static StaticFile> {
    static TABLE: OnceLock<Vec<(&'static str, StaticFile)>> = OnceLock::new();
    let table = TABLE.get_or_init(|| {
        FILES
            .iter()
            .map(|&(name, content_type, bytes)| {
                let hash = blake3::hash(bytes).to_hex();
                let etag = format!("\"{}\"", &hash[..32]);
                (
                    name,
                    StaticFile {
                        content_type,
                        bytes,
                        etag,
                    },
                )
            })
            .collect()
    });
    table.iter().find(|(n, _)| *n == name).map(|(_, f)| f)
}

/// A script of the web pages (embedded in the server)
// Revalidated by its entity tag (304 when unchanged).
#[utoipa::path(get, operation_id = "web_static_file", path = "/static/{name}", tag = "web",
    security(()), params(("name" = String, Path, description = "File name, e.g. api.js")),
    responses((status = 200, description = "The file"), (status = 304, description = "Unchanged"), (status = 404, description = "No such file")))]
pub async fn static_file(Path(name): Path<String>, headers: HeaderMap) -> Response {
    let Some(file) = lookup(&name) else {
        return (StatusCode::NOT_FOUND, "no such file\n").into_response();
    };
    let unchanged = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|tag| tag.trim() == file.etag));
    let mut response = if unchanged {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        file.bytes.into_response()
    };
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(file.content_type),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Ok(v) = HeaderValue::from_str(&file.etag) {
        h.insert(header::ETAG, v);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_is_found_with_its_type_and_a_stable_tag() {
        for (name, content_type, bytes) in FILES {
            let f = lookup(name).expect(name);
            assert_eq!(f.content_type, *content_type);
            assert_eq!(f.bytes, *bytes);
            assert_eq!(f.etag.len(), 34, "{}", f.etag);
            assert!(std::ptr::eq(f, lookup(name).unwrap()));
        }
        assert!(lookup("../Cargo.toml").is_none());
        assert!(lookup("").is_none());
    }

    #[tokio::test]
    async fn a_known_tag_is_answered_with_not_modified() {
        let etag = lookup("api.js").unwrap().etag.clone();
        let mut headers = HeaderMap::new();
        let fresh = static_file(Path("api.js".into()), headers.clone()).await;
        assert_eq!(fresh.status(), StatusCode::OK);
        assert_eq!(fresh.headers()[header::ETAG], etag.as_str());
        headers.insert(header::IF_NONE_MATCH, etag.parse().unwrap());
        let again = static_file(Path("api.js".into()), headers).await;
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        let missing = static_file(Path("nope.js".into()), HeaderMap::new()).await;
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    }
}
