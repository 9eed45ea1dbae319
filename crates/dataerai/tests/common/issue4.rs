//! Helpers for the issue 4 tests: users with passwords, a person in the
//! server's web pages (reqwest with a cookie store: the login form, the device
//! page), and a device-flow `dataerai auth login` run as a child process.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use super::{server_bin, TestServer, UserEnv};

pub const PASSWORD: &str = "correct horse battery staple";

impl TestServer {
    /// A user who can sign in on the web pages with [`PASSWORD`].
    pub fn create_user_with_password(&self, email: &str) {
        let mut child = Command::new(server_bin())
            .args(["admin", "create-user", "--data-dir"])
            .arg(self.data_dir.path())
            .args(["--email", email, "--password-stdin"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{PASSWORD}\n").as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "admin create-user --password-stdin failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// A server whose access tokens live `ttl_s` seconds.
pub fn server_with_ttl(ttl_s: u64, faults: Option<&str>) -> TestServer {
    TestServer::start_args(
        tempfile::tempdir().unwrap(),
        "127.0.0.1:0",
        faults,
        &["--access-token-ttl-s", &ttl_s.to_string()],
    )
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

    /// Sign in on `/login`.
    pub fn sign_in(&self, email: &str) {
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
            &[(&email_field, email), ("password", PASSWORD)],
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

/// A running `dataerai auth login --no-browser` and the code it printed.
pub struct DeviceLogin {
    pub child: Child,
    pub user_code: String,
    pub verification_uri: String,
    /// Every stderr line so far (and the rest, once the child ends).
    pub stderr: mpsc::Receiver<String>,
}

impl DeviceLogin {
    pub fn start(user: &UserEnv, server: &str) -> DeviceLogin {
        let mut child = user
            .cmd()
            .args(["auth", "login", "--server", server, "--no-browser"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let err = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut seen = Vec::new();
        let mut user_code = None;
        let mut verification_uri = None;
        while user_code.is_none() || verification_uri.is_none() {
            let line = rx
                .recv_timeout(Duration::from_secs(30))
                .unwrap_or_else(|_| {
                    let _ = child.kill();
                    panic!("login printed no code; stderr so far: {seen:#?}")
                });
            if let Some(code) = line.split("enter the code:").nth(1) {
                user_code = Some(code.trim().to_string());
            }
            let t = line.trim();
            if verification_uri.is_none() && t.starts_with("http") && t.ends_with("/device") {
                verification_uri = Some(t.to_string());
            }
            seen.push(line);
        }
        DeviceLogin {
            child,
            user_code: user_code.unwrap(),
            verification_uri: verification_uri.unwrap(),
            stderr: rx,
        }
    }

    /// Wait for the CLI to end: (exit code, stdout, rest of stderr).
    pub fn finish(self) -> (Option<i32>, String, String) {
        let out: Output = self.child.wait_with_output().unwrap();
        // Until the reader thread hits end of file: lines the CLI wrote just
        // before it exited may still be on their way through the channel.
        let rest: Vec<String> = self.stderr.iter().collect();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            rest.join("\n"),
        )
    }
}

/// Sign `user` in to `server` with the device flow, approving in the browser
/// pages as `email` (who must exist with [`PASSWORD`]).
pub fn device_login(server: &TestServer, user: &UserEnv, email: &str) {
    let login = DeviceLogin::start(user, &server.url);
    let web = WebUser::new(&server.url);
    web.sign_in(email);
    let (status, html) = web.answer_device(&login.user_code, "approve");
    assert!(status < 400, "approve failed with HTTP {status}: {html}");
    let (code, stdout, stderr) = login.finish();
    assert_eq!(code, Some(0), "login failed: {stdout}\n{stderr}");
    assert!(stdout.contains(email), "{stdout}");
}

/// The saved credentials (as JSON).
pub fn credentials(user: &UserEnv) -> serde_json::Value {
    let text = std::fs::read_to_string(user.config_dir.path().join("credentials.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}
