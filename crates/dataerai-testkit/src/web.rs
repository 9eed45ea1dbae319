//! A person in the server's web pages: the HTML form client (cookies, CSRF
//! fields, buttons) and the OAuth device login played over HTTP.
//!
//! [`Browser`] is async and keeps cookies by hand, never following redirects,
//! so the server tests can check every `Set-Cookie` and `Location`;
//! [`WebUser`] is blocking with a cookie store and submits the forms it finds,
//! for tests that drive the CLI in child processes meanwhile.

use reqwest::StatusCode;
use serde_json::Value;
use std::time::Duration;

/// A minimal browser: keeps cookies by hand, never follows redirects.
pub struct Browser {
    pub base: String,
    pub client: reqwest::Client,
    pub cookies: std::collections::BTreeMap<String, String>,
    /// `Set-Cookie` lines of the last answer (to check their attributes).
    pub last_set_cookie: Vec<String>,
}

pub struct Page {
    pub status: StatusCode,
    pub location: Option<String>,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Page {
    /// This page answered `status` and says `words` (a flash, a refusal).
    #[track_caller]
    pub fn assert_says(&self, status: StatusCode, words: &str) {
        assert_eq!(self.status, status, "{}", self.body);
        assert!(self.body.contains(words), "{words:?} not in {}", self.body);
    }

    /// The value of the first `name="csrf_token"` field.
    pub fn csrf(&self) -> String {
        hidden_field(&self.body, "csrf_token").expect("a csrf_token field")
    }

    /// The id of the first token listed on a `/tokens` page (`data-token-id`).
    pub fn first_token_id(&self) -> String {
        let at = self
            .body
            .find("data-token-id=\"")
            .unwrap_or_else(|| panic!("no token listed: {}", self.body))
            + 15;
        self.body[at..at + 36].to_string()
    }
}

/// The `value` of the first input named `name`.
pub fn hidden_field(html: &str, name: &str) -> Option<String> {
    let at = html.find(&format!("name=\"{name}\" value=\""))?;
    let rest = &html[at + name.len() + 15..];
    Some(rest[..rest.find('"')?].to_string())
}

impl Browser {
    pub fn new(base: &str) -> Browser {
        Browser {
            base: base.to_string(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: Default::default(),
            last_set_cookie: Vec::new(),
        }
    }

    async fn send(&mut self, req: reqwest::RequestBuilder) -> Page {
        let cookie: Vec<String> = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let req = if cookie.is_empty() {
            req
        } else {
            req.header("cookie", cookie.join("; "))
        };
        let resp = req.send().await.unwrap();
        self.last_set_cookie.clear();
        for v in resp.headers().get_all("set-cookie") {
            let line = v.to_str().unwrap().to_string();
            let (kv, _) = line.split_once(';').unwrap_or((&line, ""));
            let (k, v) = kv.split_once('=').unwrap();
            if v.is_empty() {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_string(), v.to_string());
            }
            self.last_set_cookie.push(line);
        }
        Page {
            status: resp.status(),
            location: resp
                .headers()
                .get("location")
                .map(|l| l.to_str().unwrap().to_string()),
            headers: resp.headers().clone(),
            body: resp.text().await.unwrap(),
        }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let req = self.client.get(format!("{}{path}", self.base));
        self.send(req).await
    }

    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let req = self.client.post(format!("{}{path}", self.base)).form(form);
        self.send(req).await
    }

    /// POST a signed-in form: `fields` after the CSRF token `csrf`, as the
    /// page's form sends them.
    pub async fn submit(&mut self, path: &str, csrf: &str, fields: &[(&str, &str)]) -> Page {
        let mut form = vec![("csrf_token", csrf)];
        form.extend_from_slice(fields);
        self.post(path, &form).await
    }

    /// Sign in through the form; answers the final answer of `POST /login`.
    pub async fn sign_in(&mut self, email: &str, password: &str) -> Page {
        self.sign_in_then(email, password, "/tokens").await
    }

    /// [`Browser::sign_in`] asking to be sent to `next` afterwards.
    pub async fn sign_in_then(&mut self, email: &str, password: &str, next: &str) -> Page {
        let form = self.get("/login").await;
        assert_eq!(form.status, StatusCode::OK, "{}", form.body);
        let csrf = form.csrf();
        self.post(
            "/login",
            &[
                ("csrf_token", &csrf),
                ("email", email),
                ("password", password),
                ("next", next),
            ],
        )
        .await
    }

    /// Make a personal access token on the `/tokens` page as the signed-in
    /// user; answers the page that shows it and the token (shown only there).
    pub async fn create_token(&mut self, name: &str, scopes: &[&str]) -> (Page, String) {
        let page = self.get("/tokens").await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        let csrf = page.csrf();
        let mut form = vec![("csrf_token", csrf.as_str()), ("name", name)];
        form.extend(scopes.iter().map(|s| ("scope", *s)));
        let created = self.post("/tokens", &form).await;
        assert_eq!(created.status, StatusCode::OK, "{}", created.body);
        let at = created
            .body
            .find("id=\"new-token\">")
            .expect("the new token")
            + 15;
        let token = created.body[at..at + created.body[at..].find('<').unwrap()].to_string();
        (created, token)
    }

    /// Press "Revoke" on token `token_id` with the CSRF token of the
    /// signed-in user's `/tokens` page; answers the answer of the POST.
    pub async fn revoke_token(&mut self, token_id: &str) -> Page {
        let page = self.get("/tokens").await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        self.post(
            &format!("/tokens/{token_id}/revoke"),
            &[("csrf_token", &page.csrf())],
        )
        .await
    }

    /// Approve (or deny) a device code as the signed-in user.
    pub async fn decide_device(&mut self, user_code: &str, approve: bool) -> Page {
        let confirm = self.get(&format!("/device?user_code={user_code}")).await;
        assert_eq!(confirm.status, StatusCode::OK, "{}", confirm.body);
        let csrf = confirm.csrf();
        let action = if approve { "approve" } else { "deny" };
        self.post(
            "/device",
            &[
                ("csrf_token", &csrf),
                ("user_code", user_code),
                ("action", action),
            ],
        )
        .await
    }
}

/// `POST` a form to an OAuth endpoint; answers status and JSON.
pub async fn oauth(base: &str, path: &str, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let resp = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap())
}

pub const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// Start a device login as the CLI does (`POST /oauth/device/code`); answers
/// the code response (`user_code`, `device_code`, …).
pub async fn request_device_code(base: &str, scope: &str) -> Value {
    let (status, code) = oauth(
        base,
        "/oauth/device/code",
        &[("client_id", "dataerai-cli"), ("scope", scope)],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{code}");
    code
}

/// Poll `POST /oauth/token` once for `device_code`, as the CLI does.
pub async fn poll_device_token(base: &str, device_code: &str) -> (StatusCode, Value) {
    oauth(
        base,
        "/oauth/token",
        &[
            ("grant_type", DEVICE_GRANT),
            ("device_code", device_code),
            ("client_id", "dataerai-cli"),
        ],
    )
    .await
}

/// Run the whole device login for a user with a password (server started
/// with `--device-poll-interval-s 1`); answers the token response.
pub async fn device_login(base: &str, email: &str, password: &str) -> Value {
    device_login_with_scope(base, email, password, "read write").await
}

/// [`device_login`] asking for `scope` (e.g. `read`).
pub async fn device_login_with_scope(
    base: &str,
    email: &str,
    password: &str,
    scope: &str,
) -> Value {
    let code = request_device_code(base, scope).await;
    let mut browser = Browser::new(base);
    let signed = browser.sign_in(email, password).await;
    assert_eq!(signed.status, StatusCode::SEE_OTHER, "{}", signed.body);
    let done = browser
        .decide_device(code["user_code"].as_str().unwrap(), true)
        .await;
    assert!(done.body.contains("Device approved"), "{}", done.body);
    let (status, tokens) = poll_device_token(base, code["device_code"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    tokens
}

/// An HTML form: where it posts and its fields (hidden inputs and buttons).
#[derive(Debug, Clone)]
pub struct Form {
    pub action: String,
    pub inputs: Vec<(String, String)>,
    pub buttons: Vec<(String, String, String)>,
}

fn attr(tag: &str, name: &str) -> Option<String> {
    for quote in ['"', '\''] {
        let key = format!("{name}={quote}");
        let lower = tag.to_ascii_lowercase();
        if let Some(i) = lower.find(&key) {
            // Only a whole attribute name (not `data-name=`).
            if i > 0 && !tag.as_bytes()[i - 1].is_ascii_whitespace() {
                continue;
            }
            let rest = &tag[i + key.len()..];
            let end = rest.find(quote)?;
            return Some(html_unescape(&rest[..end]));
        }
    }
    None
}

fn html_unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// Every `<form>` of a page, parsed just enough to submit it.
pub fn forms(html: &str) -> Vec<Form> {
    let mut out = Vec::new();
    let lower = html.to_ascii_lowercase();
    let mut pos = 0;
    while let Some(start) = lower[pos..].find("<form") {
        let start = pos + start;
        let end = lower[start..]
            .find("</form>")
            .map_or(html.len(), |e| start + e);
        let body = &html[start..end];
        let open_end = body.find('>').unwrap_or(body.len());
        let action = attr(&body[..open_end], "action").unwrap_or_default();
        let mut inputs = Vec::new();
        let mut buttons = Vec::new();
        let bl = body.to_ascii_lowercase();
        let mut p = 0;
        while let Some(i) = bl[p..].find('<') {
            let i = p + i;
            let close = bl[i..].find('>').map_or(bl.len(), |e| i + e);
            let tag = &body[i..close];
            let tl = tag.to_ascii_lowercase();
            if tl.starts_with("<input") {
                if let Some(name) = attr(tag, "name") {
                    inputs.push((name, attr(tag, "value").unwrap_or_default()));
                }
            } else if tl.starts_with("<button") {
                let text_end = bl[close..].find("</button>").map_or(close, |e| close + e);
                let text = body[(close + 1).min(text_end)..text_end].trim().to_string();
                buttons.push((
                    attr(tag, "name").unwrap_or_default(),
                    attr(tag, "value").unwrap_or_default(),
                    text,
                ));
            }
            p = close.max(i + 1);
        }
        out.push(Form {
            action,
            inputs,
            buttons,
        });
        pos = end.max(start + 5);
    }
    out
}

/// A person using the server's web pages.
pub struct WebUser {
    pub http: reqwest::blocking::Client,
    pub base: String,
}

impl WebUser {
    pub fn new(base: &str) -> WebUser {
        WebUser {
            http: reqwest::blocking::Client::builder()
                .cookie_store(true)
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            base: base.trim_end_matches('/').to_string(),
        }
    }

    fn url(&self, action: &str, page: &str) -> String {
        if action.starts_with("http") {
            action.to_string()
        } else if action.is_empty() {
            format!("{}{page}", self.base)
        } else {
            format!("{}{action}", self.base)
        }
    }

    pub fn get(&self, path: &str) -> (u16, String) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .unwrap();
        let status = r.status().as_u16();
        (status, r.text().unwrap())
    }

    /// Submit `form` (found on `page`) with its fields, overridden/extended by `set`.
    pub fn submit(&self, page: &str, form: &Form, set: &[(&str, &str)]) -> (u16, String) {
        let mut fields: Vec<(String, String)> = form
            .inputs
            .iter()
            .filter(|(k, _)| !set.iter().any(|(s, _)| s == k))
            .cloned()
            .collect();
        for (k, v) in set {
            fields.push((k.to_string(), v.to_string()));
        }
        let r = self
            .http
            .post(self.url(&form.action, page))
            .form(&fields)
            .send()
            .unwrap();
        let status = r.status().as_u16();
        (status, r.text().unwrap())
    }

    /// Sign in on `/login` with `password`.
    pub fn sign_in(&self, email: &str, password: &str) {
        let (status, html) = self.get("/login");
        assert_eq!(status, 200, "GET /login: {html}");
        let form = forms(&html)
            .into_iter()
            .find(|f| f.inputs.iter().any(|(k, _)| k.contains("password")))
            .unwrap_or_else(|| panic!("no login form on /login: {html}"));
        let email_field = form
            .inputs
            .iter()
            .map(|(k, _)| k.clone())
            .find(|k| k.contains("email"))
            .unwrap_or_else(|| "email".into());
        let (status, html) = self.submit(
            "/login",
            &form,
            &[(&email_field, email), ("password", password)],
        );
        assert!(status < 400, "sign-in failed with HTTP {status}: {html}");
        assert!(
            !html
                .to_ascii_lowercase()
                .contains("invalid email or password"),
            "{html}"
        );
    }

    /// Open the device page for `user_code` and press the button whose label
    /// or value contains `choice` ("approve" or "deny").
    pub fn answer_device(&self, user_code: &str, choice: &str) -> (u16, String) {
        let page = format!("/device?user_code={user_code}");
        let (status, html) = self.get(&page);
        assert_eq!(status, 200, "GET {page}: {html}");
        let form = forms(&html)
            .into_iter()
            .find(|f| {
                f.buttons.iter().any(|(_, v, t)| {
                    v.to_ascii_lowercase().contains(choice)
                        || t.to_ascii_lowercase().contains(choice)
                })
            })
            .unwrap_or_else(|| panic!("no {choice} button on {page}: {html}"));
        let (name, value, _) = form
            .buttons
            .iter()
            .find(|(_, v, t)| {
                v.to_ascii_lowercase().contains(choice) || t.to_ascii_lowercase().contains(choice)
            })
            .cloned()
            .unwrap();
        let mut set = vec![];
        if !name.is_empty() {
            set.push((name.as_str(), value.as_str()));
        }
        if !form.inputs.iter().any(|(k, _)| k == "user_code") {
            set.push(("user_code", user_code));
        }
        self.submit("/device", &form, &set)
    }
}
