//! Form extractors that check the CSRF token before a handler runs.
//!
//! Every form carries a `csrf_token` field, compared in constant time:
//! - [`CsrfForm`]: signed-in forms; the token must be the session's own
//!   (stored with it, see `SessionRecord::csrf_token`);
//! - [`SignInForm`]: the sign-in form (there is no session yet): a random
//!   value that must equal the `__Host-dataerai_login_csrf` cookie (double submit).
//!
//! A missing or wrong token is the 403 "Request refused" page, and the
//! handler never runs. The rest of the urlencoded body is deserialised into
//! `T` with `serde_html_form` (a repeated field such as a checkbox group
//! fills a `Vec<String>`); a body that does not fit `T` is a 400 page.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use dataerai_store::meta::auth::SessionRecord;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::session::{cookie, session, LOGIN_CSRF_COOKIE};
use super::{bad_form, forbidden_csrf};
use crate::auth::{client_addr, secrets_match, Caller};
use crate::state::AppState;

const CSRF_FIELD: &str = "csrf_token";

/// A signed-in user's form post with a valid CSRF token: the session (for
/// the page answered), the same person as the [`Caller`] the REST handlers
/// and the audit log take (from the client's address), and the fields.
pub struct CsrfForm<T = NoFields> {
    pub session: SessionRecord,
    pub caller: Caller,
    pub form: T,
}

/// The sign-in form's fields, its double-submit CSRF token checked.
pub struct SignInForm<T>(pub T);

/// A form with nothing but its CSRF token (sign out, revoke).
#[derive(Debug, Deserialize)]
pub struct NoFields {}

impl<T: DeserializeOwned> FromRequest<AppState> for CsrfForm<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Response> {
        let addr = client_addr(req.extensions());
        let (headers, body) = read(req, state).await?;
        let Some(session) = session(state, &headers).await? else {
            return Err(forbidden_csrf());
        };
        match posted_token(&body) {
            Some(t) if secrets_match(&t, &session.csrf_token) => Ok(CsrfForm {
                caller: Caller::of_session(&session, addr),
                session,
                form: fields(&body).ok_or_else(bad_form)?,
            }),
            _ => Err(forbidden_csrf()),
        }
    }
}

impl<T: DeserializeOwned> FromRequest<AppState> for SignInForm<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Response> {
        let (headers, body) = read(req, state).await?;
        match (posted_token(&body), cookie(&headers, LOGIN_CSRF_COOKIE)) {
            (Some(f), Some(c)) if !c.is_empty() && secrets_match(&f, &c) => {
                Ok(SignInForm(fields(&body).ok_or_else(bad_form)?))
            }
            _ => Err(forbidden_csrf()),
        }
    }
}

/// The headers and the whole body (within the router's body limit).
async fn read(req: Request, state: &AppState) -> Result<(HeaderMap, Bytes), Response> {
    let headers = req.headers().clone();
    let body = Bytes::from_request(req, state)
        .await
        .map_err(IntoResponse::into_response)?;
    Ok((headers, body))
}

/// The posted CSRF token (the last one, should there be several).
fn posted_token(body: &[u8]) -> Option<String> {
    form_urlencoded::parse(body)
        .filter(|(k, _)| k == CSRF_FIELD)
        .last()
        .map(|(_, v)| v.into_owned())
}

/// The form's fields; `None` (the 400 page) when they do not fit `T`.
fn fields<T: DeserializeOwned>(body: &[u8]) -> Option<T> {
    serde_html_form::from_bytes(body)
        .inspect_err(|e| tracing::debug!(error = %e, "unreadable form"))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{hash_token, random_hex};
    use axum::body::Body;
    use axum::http::{header, StatusCode};
    use dataerai_store::meta::auth::AuthStore;
    use dataerai_store::{FsBlobStore, MetadataStore, SqliteStore};
    use std::sync::Arc;

    #[derive(Debug, Deserialize)]
    struct Fields {
        name: Option<String>,
        #[serde(default)]
        scope: Vec<String>,
    }

    struct Fixture {
        state: AppState,
        session_cookie: String,
        csrf: String,
        _dir: tempfile::TempDir,
    }

    /// A real SQLite store with one signed-in user.
    async fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let meta = SqliteStore::open(&dir.path().join("meta.db"))
            .await
            .unwrap();
        let blobs = FsBlobStore::open(&dir.path().join("blobs")).await.unwrap();
        let user = meta.create_user("ada@lab.org", 1 << 20).await.unwrap();
        let (session_id, csrf) = (random_hex(), random_hex());
        meta.create_session(
            &hash_token(&session_id),
            &user.user_id,
            &csrf,
            chrono::Utc::now(),
            chrono::Utc::now() + chrono::Duration::hours(1),
        )
        .await
        .unwrap();
        Fixture {
            state: AppState::new(Arc::new(meta), Arc::new(blobs), 1 << 20),
            session_cookie: format!("dataerai_session={session_id}"),
            csrf,
            _dir: dir,
        }
    }

    fn post(cookie: &str, body: String) -> Request {
        Request::post("/tokens")
            .header(header::COOKIE, cookie)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .unwrap()
    }

    async fn status_of<T: DeserializeOwned>(
        f: &Fixture,
        cookie: &str,
        body: String,
    ) -> Result<CsrfForm<T>, StatusCode> {
        CsrfForm::<T>::from_request(post(cookie, body), &f.state)
            .await
            .map_err(|r| r.status())
    }

    #[tokio::test]
    async fn the_session_token_lets_the_form_through_parsed() {
        let f = fixture().await;
        let body = format!(
            "csrf_token={}&name=ci+%3Cx%3E&scope=read&scope=write",
            f.csrf
        );
        let ok = status_of::<Fields>(&f, &f.session_cookie, body)
            .await
            .unwrap();
        assert_eq!(ok.session.email, "ada@lab.org");
        assert_eq!(ok.form.name.as_deref(), Some("ci <x>"));
        assert_eq!(ok.form.scope, ["read", "write"]);
        // A form of nothing but the token.
        let body = format!("csrf_token={}", f.csrf);
        assert!(status_of::<NoFields>(&f, &f.session_cookie, body)
            .await
            .is_ok());
    }

    #[tokio::test]
    async fn a_missing_wrong_or_sessionless_token_is_refused() {
        let f = fixture().await;
        let forbidden = Err(StatusCode::FORBIDDEN);
        let missing = status_of::<Fields>(&f, &f.session_cookie, "name=x".into()).await;
        assert_eq!(missing.map(|_| ()), forbidden);
        let wrong = format!("csrf_token={}&name=x", "0".repeat(64));
        let wrong = status_of::<Fields>(&f, &f.session_cookie, wrong).await;
        assert_eq!(wrong.map(|_| ()), forbidden);
        // The right token without the session cookie, or with a stale one.
        let body = format!("csrf_token={}", f.csrf);
        let no_session = status_of::<NoFields>(&f, "other=1", body.clone()).await;
        assert_eq!(no_session.map(|_| ()), forbidden);
        let stale = status_of::<NoFields>(&f, "dataerai_session=feed", body).await;
        assert_eq!(stale.map(|_| ()), forbidden);
    }

    #[tokio::test]
    async fn a_form_that_does_not_fit_its_fields_is_a_400_page() {
        let f = fixture().await;
        // A single-valued field given twice is ambiguous: refused, not guessed.
        let body = format!("csrf_token={}&name=a&name=b", f.csrf);
        let twice = status_of::<Fields>(&f, &f.session_cookie, body).await;
        assert_eq!(twice.map(|_| ()), Err(StatusCode::BAD_REQUEST));
        // The token is checked first: without it, the same body is a 403.
        let twice = status_of::<Fields>(&f, &f.session_cookie, "name=a&name=b".into()).await;
        assert_eq!(twice.map(|_| ()), Err(StatusCode::FORBIDDEN));
    }

    #[tokio::test]
    async fn the_sign_in_form_checks_its_cookie() {
        let f = fixture().await;
        let sign_in = |cookie: &str, body: &str| {
            let req = post(cookie, body.to_string());
            let state = f.state.clone();
            async move {
                SignInForm::<Fields>::from_request(req, &state)
                    .await
                    .map(|SignInForm(form)| form.name)
                    .map_err(|r| r.status())
            }
        };
        assert_eq!(
            sign_in("__Host-dataerai_login_csrf=abc", "csrf_token=abc&name=n").await,
            Ok(Some("n".to_string()))
        );
        for (cookie, body) in [
            ("__Host-dataerai_login_csrf=abc", "csrf_token=abd&name=n"),
            ("__Host-dataerai_login_csrf=abc", "name=n"),
            ("__Host-dataerai_login_csrf=", "csrf_token=&name=n"),
            ("other=abc", "csrf_token=abc&name=n"),
        ] {
            assert_eq!(
                sign_in(cookie, body).await,
                Err(StatusCode::FORBIDDEN),
                "{cookie} {body}"
            );
        }
    }
}
