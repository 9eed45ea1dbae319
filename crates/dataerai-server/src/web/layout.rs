//! The one layout of every web page: head with the inline stylesheet, a
//! header (brand; once signed in, the navigation, the user and "Sign out"),
//! the page's `<h1>`, its flash messages, its body, and a footer.
//!
//! A page handler builds its body with [`maud::html!`] (which escapes every
//! spliced value) and hands it to [`Page::render`]:
//!
//! ```text
//! Page::new("Personal access tokens")
//!     .signed_in(&session)
//!     .current("/tokens")
//!     .flash(Flash::error("No such active token of yours."))
//!     .status(StatusCode::NOT_FOUND)
//!     .render(html! { p { "…" } })
//! ```
//!
//! A new area adds its entry to [`NAV`]; browser tests rely on the header
//! being the only `<nav>` and the `<h1>` being the only one of a page.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use dataerai_store::meta::auth::SessionRecord;
use maud::{html, Markup, PreEscaped, Render, DOCTYPE};

/// The stylesheet, inlined into every page (no second request).
const STYLESHEET: &str = include_str!("style.css");

/// Nothing from other origins: scripts, workers and API calls only from this
/// one (scripts are the embedded files of `static_files.rs`, never inline;
/// `wasm-unsafe-eval` lets them compile WebAssembly), inline styles, forms
/// only to this origin, no framing.
pub const CONTENT_SECURITY_POLICY: &str =
    "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; \
     worker-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'unsafe-inline'; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// One entry of the signed-in navigation.
pub struct NavLink {
    pub href: &'static str,
    pub label: &'static str,
    /// Shown only to server administrators (`SessionRecord::is_admin`).
    pub admin_only: bool,
}

/// The signed-in navigation, in order.
pub const NAV: &[NavLink] = &[
    NavLink {
        href: "/",
        label: "Projects",
        admin_only: false,
    },
    NavLink {
        href: "/search",
        label: "Search",
        admin_only: false,
    },
    NavLink {
        href: "/tokens",
        label: "Access tokens",
        admin_only: false,
    },
    NavLink {
        href: "/device",
        label: "Device login",
        admin_only: false,
    },
    NavLink {
        href: "/admin",
        label: "Admin",
        admin_only: true,
    },
];

/// A message at the top of a page: the outcome of what the user just did.
pub struct Flash {
    kind: FlashKind,
    content: Markup,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FlashKind {
    Success,
    Error,
}

impl Flash {
    /// Something went wrong (text is escaped; pass `html!` for markup).
    pub fn error(content: impl Render) -> Flash {
        Flash {
            kind: FlashKind::Error,
            content: content.render(),
        }
    }

    /// Something was done.
    pub fn success(content: impl Render) -> Flash {
        Flash {
            kind: FlashKind::Success,
            content: content.render(),
        }
    }
}

impl Render for Flash {
    fn render(&self) -> Markup {
        // `err` / `ok`: the class names browser tests look for.
        let (class, role) = match self.kind {
            FlashKind::Error => ("flash err", "alert"),
            FlashKind::Success => ("flash ok", "status"),
        };
        html! { div class=(class) role=(role) { (self.content) } }
    }
}

/// A page on the layout, built step by step and rendered once.
#[must_use]
pub struct Page<'a> {
    title: &'a str,
    status: StatusCode,
    session: Option<&'a SessionRecord>,
    current: Option<&'a str>,
    flashes: Vec<Flash>,
    narrow: bool,
    query: &'a str,
    scripts: Vec<&'a str>,
}

impl<'a> Page<'a> {
    /// A `200 OK` page titled `title` (the `<h1>` and the window title).
    pub fn new(title: &'a str) -> Page<'a> {
        Page {
            title,
            status: StatusCode::OK,
            session: None,
            current: None,
            flashes: Vec::new(),
            narrow: false,
            query: "",
            scripts: Vec::new(),
        }
    }

    pub fn status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    /// Show the navigation, the user and the sign-out form of `session`.
    pub fn signed_in(mut self, session: &'a SessionRecord) -> Self {
        self.session = Some(session);
        self
    }

    /// Mark the [`NAV`] entry whose `href` is `href` as the current page.
    pub fn current(mut self, href: &'a str) -> Self {
        self.current = Some(href);
        self
    }

    /// Add a message (`None` adds nothing).
    pub fn flash(mut self, flash: impl Into<Option<Flash>>) -> Self {
        self.flashes.extend(flash.into());
        self
    }

    /// The text of the header's search box (the search page's query).
    pub fn query(mut self, q: &'a str) -> Self {
        self.query = q;
        self
    }

    /// A single narrow column (forms such as sign-in).
    pub fn narrow(mut self) -> Self {
        self.narrow = true;
        self
    }

    /// Load the embedded module script `name` (see `static_files.rs`).
    pub fn script(mut self, name: &'a str) -> Self {
        self.scripts.push(name);
        self
    }

    /// The whole document around `body`.
    pub fn document(&self, body: Markup) -> Markup {
        html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width,initial-scale=1";
                    title { (self.title) " · Dataerai" }
                    @if let Some(s) = self.session {
                        // For the scripts' API calls (`x-csrf-token`).
                        meta name="csrf-token" content=(s.csrf_token);
                    }
                    style { (PreEscaped(STYLESHEET)) }
                    @for name in &self.scripts {
                        script type="module" src={ "/static/" (name) } {}
                    }
                }
                body {
                    header class="site-header" {
                        div class="wrap bar" {
                            a class="brand" href="/" {
                                span class="brand-mark" aria-hidden="true" {}
                                "Dataerai"
                            }
                            @if let Some(s) = self.session {
                                form class="site-search" method="get" action="/search" role="search" {
                                    label class="visually-hidden" for="site-q" { "Search assets" }
                                    input id="site-q" type="search" name="q" value=(self.query)
                                        placeholder="Search assets, e.g. tag:raw type:figure";
                                    button type="submit" class="btn btn-small" { "Search" }
                                }
                                (self.navigation(s))
                            }
                        }
                    }
                    main class=(if self.narrow { "wrap narrow" } else { "wrap" }) {
                        h1 { (self.title) }
                        @for flash in &self.flashes {
                            (flash)
                        }
                        (body)
                    }
                    footer class="site-footer" {
                        div class="wrap" {
                            span { "Dataerai " (env!("CARGO_PKG_VERSION")) }
                            a href="/api/v1/openapi.json" { "REST API reference (OpenAPI)" }
                        }
                    }
                }
            }
        }
    }

    fn navigation(&self, session: &SessionRecord) -> Markup {
        html! {
            nav class="site-nav" aria-label="Main" {
                ul class="nav-links" {
                    @for link in NAV.iter().filter(|l| session.is_admin || !l.admin_only) {
                        li {
                            a href=(link.href)
                                aria-current=[(self.current == Some(link.href)).then_some("page")]
                            { (link.label) }
                        }
                    }
                }
                div class="account" {
                    span { "Signed in as " strong { (session.email) } }
                    form method="post" action="/logout" {
                        (csrf_field(&session.csrf_token))
                        button type="submit" class="btn btn-small" { "Sign out" }
                    }
                }
            }
        }
    }

    /// The page as an HTML response with the security headers.
    pub fn render(self, body: Markup) -> Response {
        html_response(self.status, self.document(body))
    }
}

/// The hidden CSRF field every form posts (`csrf.rs` checks it).
pub fn csrf_field(token: &str) -> Markup {
    html! { input type="hidden" name="csrf_token" value=(token); }
}

/// `markup` as an uncacheable, unframeable HTML answer.
fn html_response(status: StatusCode, markup: Markup) -> Response {
    let mut response = (status, markup.into_string()).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The layout of `page` around an empty body.
    fn layout_of(page: Page) -> String {
        page.document(html! {}).into_string()
    }

    fn session(email: &str) -> SessionRecord {
        SessionRecord {
            user_id: "u1".into(),
            email: email.into(),
            is_admin: false,
            csrf_token: "c\"sr<f".into(),
            expires_at: chrono::DateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn signed_out_pages_have_no_navigation() {
        let html = layout_of(Page::new("Sign in"));
        assert!(html.starts_with("<!DOCTYPE html>"), "{html}");
        assert!(!html.contains("<nav"), "{html}");
        assert_eq!(html.matches("<h1>").count(), 1);
        assert!(html.contains("<title>Sign in · Dataerai</title>"));
        // The stylesheet is inlined unescaped (selectors use `>` and quotes).
        assert!(html.contains("a[aria-current=\"page\"]"));
    }

    #[test]
    fn user_strings_are_escaped_everywhere_in_the_layout() {
        let s = session("<script>alert(1)</script>@lab.org");
        let html = Page::new("<b>title</b>")
            .signed_in(&s)
            .flash(Flash::error("<img src=x onerror=alert(1)>"))
            .document(html! { p { ("<i>body</i>") } })
            .into_string();
        for raw in ["<script>", "<b>title", "<img", "<i>body"] {
            assert!(!html.contains(raw), "{raw} unescaped in {html}");
        }
        assert!(html.contains(
            "Signed in as <strong>&lt;script&gt;alert(1)&lt;/script&gt;@lab.org</strong>"
        ));
        assert!(html.contains("&lt;b&gt;title&lt;/b&gt;"));
        // The CSRF value stays inside its attribute.
        assert!(html.contains("name=\"csrf_token\" value=\"c&quot;sr&lt;f\""));
    }

    #[test]
    fn navigation_marks_the_current_page_and_signs_out_with_the_session_token() {
        let s = session("ada@lab.org");
        let html = layout_of(
            Page::new("Personal access tokens")
                .signed_in(&s)
                .current("/tokens")
                .flash(None)
                .flash(Flash::success("Done.")),
        );
        assert_eq!(html.matches("<nav").count(), 1);
        assert!(html.contains("<a href=\"/tokens\" aria-current=\"page\">Access tokens</a>"));
        assert!(html.contains("<a href=\"/device\">Device login</a>"));
        assert!(html.contains("<form method=\"post\" action=\"/logout\">"));
        assert!(html.contains("<div class=\"flash ok\" role=\"status\">Done.</div>"));
        assert!(!html.contains("flash err"));
        assert!(!html.contains("href=\"/admin\""), "{html}");
    }

    #[test]
    fn only_administrators_see_the_admin_entry() {
        let mut s = session("root@lab.org");
        s.is_admin = true;
        let html = layout_of(Page::new("Administration").signed_in(&s).current("/admin"));
        assert!(html.contains("<a href=\"/admin\" aria-current=\"page\">Admin</a>"));
    }

    #[test]
    fn responses_carry_status_and_security_headers() {
        let r = Page::new("x")
            .status(StatusCode::NOT_FOUND)
            .render(html! {});
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        let h = r.headers();
        assert_eq!(h[header::CONTENT_TYPE], "text/html; charset=utf-8");
        assert_eq!(h[header::CACHE_CONTROL], "no-store");
        assert_eq!(h[header::X_FRAME_OPTIONS], "DENY");
        assert_eq!(h[header::REFERRER_POLICY], "no-referrer");
        let csp = h[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(
            csp.starts_with("default-src 'none'; script-src 'self'"),
            "{csp}"
        );
        let script_src = csp
            .split(';')
            .find(|d| d.trim().starts_with("script-src"))
            .unwrap();
        assert!(!script_src.contains("unsafe-inline"), "{csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    }

    #[test]
    fn scripts_load_from_this_origin_and_signed_in_pages_carry_the_csrf_token() {
        let s = session("ada@lab.org");
        let html = layout_of(Page::new("x").signed_in(&s).script("api.js"));
        assert!(html.contains("<script type=\"module\" src=\"/static/api.js\"></script>"));
        assert!(html.contains("<meta name=\"csrf-token\" content=\"c&quot;sr&lt;f\">"));
        let anonymous = layout_of(Page::new("x"));
        assert!(!anonymous.contains("csrf-token"), "{anonymous}");
    }
}
