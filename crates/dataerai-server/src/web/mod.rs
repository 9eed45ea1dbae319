//! The server's web pages, rendered on the server from maud templates:
//! the data pages — home (`/`: projects, personal space, recent uploads),
//! a project (`/projects/{id}`), an asset (`/assets/{id}`) and search
//! (`/search`) — and sign in (`/login`), sign out (`/logout`), approve a
//! device login (`/device`) and manage personal access tokens (`/tokens`).
//! Every page works as plain HTML, without JavaScript.
//!
//! - [`layout`]: the one page layout (header, navigation, flash messages,
//!   footer, the inline stylesheet `style.css`) and the security headers.
//!   Pages are `maud::html!` templates: checked when the crate compiles,
//!   every spliced value escaped unless wrapped in `PreEscaped`.
//! - [`csrf`]: the form extractors [`CsrfForm`] (signed in) and
//!   [`SignInForm`] (double-submit cookie), which refuse a missing or wrong
//!   CSRF token with the 403 page before a handler runs. Every POST uses one.
//! - [`static_files`]: the embedded scripts (`/static/{name}`), loaded
//!   with [`Page::script`]; every page works without them.
//! - [`admin`]: the server administrators' area (`/admin`: health and
//!   storage, users, the audit log).
//! - [`session`]: the session cookie and its lookup; [`login`] (sign in and
//!   out, rate limits), [`device`], [`tokens`]: one module per area.
//!
//! Input names, button labels, the `new-token` id and the `.err`/`.code`
//! classes are stable: browser tests drive them.

pub mod admin;
pub mod assets;
pub mod csrf;
pub mod device;
pub mod home;
pub mod layout;
pub mod login;
pub mod members;
pub mod projects;
pub mod search;
pub mod session;
pub mod static_files;
pub mod tokens;
mod view;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::html;

pub use csrf::{CsrfForm, SignInForm};
pub use device::{device_get, device_post};
pub use layout::{Flash, Page};
pub use login::{
    login_get, login_post, logout, FAILURE_WINDOW_S, MAX_FAILURES_PER_ADDR, MAX_FAILURES_PER_EMAIL,
};
pub use tokens::{token_revoke, tokens_get, tokens_post};

/// `303 See Other` to a local path.
fn redirect(to: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

/// 403: the form's CSRF token is missing or wrong.
fn forbidden_csrf() -> Response {
    Page::new("Request refused")
        .status(StatusCode::FORBIDDEN)
        .narrow()
        .flash(Flash::error(
            "This form has expired or did not come from this site (missing or wrong CSRF token). \
             Go back, reload the page and try again.",
        ))
        .render(html! {
            p { a href="/" { "Back to Dataerai" } }
        })
}

/// 400: a form whose fields cannot be read (a field given twice, say).
fn bad_form() -> Response {
    Page::new("Request refused")
        .status(StatusCode::BAD_REQUEST)
        .narrow()
        .flash(Flash::error(
            "This form could not be read. Go back, reload the page and try again.",
        ))
        .render(html! {
            p { a href="/" { "Back to Dataerai" } }
        })
}

/// 503 + `Retry-After`: the metadata store is unreachable.
fn unavailable() -> Response {
    try_again_shortly(
        "The server cannot reach its database right now. Please retry in a few seconds.",
    )
}

/// The 503 page (with `Retry-After: 5`) saying why.
fn try_again_shortly(why: &str) -> Response {
    let mut r = Page::new("Try again shortly")
        .status(StatusCode::SERVICE_UNAVAILABLE)
        .narrow()
        .flash(Flash::error(why))
        .render(html! {});
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(5));
    r
}
