//! Helpers for the sign-in tests: a device-flow `dataerai auth login` run as
//! a child process, approved by a person in the server's web pages
//! (`dataerai_testkit::web::WebUser`), and the credentials it saves.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub use dataerai_testkit::web::WebUser;

use serde_json::{json, Value};

use super::{TestServer, UserEnv};

pub const PASSWORD: &str = "correct horse battery staple";

/// A server whose access tokens live `ttl_s` seconds.
pub fn server_with_ttl(ttl_s: u64) -> TestServer {
    TestServer::start_temp_with(|b| b.args(&["--access-token-ttl-s", &ttl_s.to_string()]))
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
        Self::start_with(user, &["auth", "login", "--server", server, "--no-browser"])
    }

    /// [`DeviceLogin::start`] with the command line `args`.
    pub fn start_with(user: &UserEnv, args: &[&str]) -> DeviceLogin {
        let mut child = user
            .cmd()
            .args(args)
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

    /// Sign in to the web pages of `server` as `email` (who must exist with
    /// [`PASSWORD`]), answer this login's code with `decision` (`approve` or
    /// `deny`), then [`DeviceLogin::finish`].
    pub fn decide_in_browser(
        self,
        server: &str,
        email: &str,
        decision: &str,
    ) -> (Option<i32>, String, String) {
        let web = WebUser::new(server);
        web.sign_in(email, PASSWORD);
        let (status, html) = web.answer_device(&self.user_code, decision);
        assert!(status < 400, "{decision} failed with HTTP {status}: {html}");
        self.finish()
    }
}

/// Sign `user` in to `server` with the device flow, approving in the browser
/// pages as `email` (who must exist with [`PASSWORD`]).
pub fn device_login(server: &TestServer, user: &UserEnv, email: &str) {
    let login = DeviceLogin::start(user, &server.base);
    let (code, stdout, stderr) = login.decide_in_browser(&server.base, email, "approve");
    assert_eq!(code, Some(0), "login failed: {stdout}\n{stderr}");
    assert!(stdout.contains(email), "{stdout}");
}

/// A new user with [`PASSWORD`] on `server`, signed in there with the device flow.
pub fn device_signed_in_user(server: &TestServer, email: &str) -> UserEnv {
    server.create_user_with_password(email, PASSWORD);
    let user = UserEnv::new();
    device_login(server, &user, email);
    user
}

/// The saved credentials (as JSON).
pub fn credentials(user: &UserEnv) -> serde_json::Value {
    let text = std::fs::read_to_string(user.config_dir.path().join("credentials")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Pretend the saved access token lives for another day (as with a skewed
/// clock): no early refresh, so the server's 401 has to trigger it. Answers
/// when the token really expires.
pub fn hide_expiry(user: &UserEnv) -> chrono::DateTime<chrono::Utc> {
    let path = user.config_dir.path().join("credentials");
    let mut c = credentials(user);
    let real = expires_at(&c);
    c["expires_at"] = json!((chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339());
    std::fs::write(&path, serde_json::to_vec(&c).unwrap()).unwrap();
    real
}

/// The expiry of the access token of saved credentials.
pub fn expires_at(creds: &Value) -> chrono::DateTime<chrono::Utc> {
    creds["expires_at"]
        .as_str()
        .unwrap_or_else(|| panic!("no expires_at in {creds}"))
        .parse()
        .unwrap()
}

/// Sleep until `expiry` has passed on the server too (a little slack for
/// its clock reading), not a fixed guess.
pub fn wait_past_expiry(expiry: chrono::DateTime<chrono::Utc>) {
    let until = expiry + chrono::Duration::milliseconds(250);
    if let Ok(left) = (until - chrono::Utc::now()).to_std() {
        std::thread::sleep(left);
    }
}

/// Every token value in a credentials JSON.
pub fn secrets(creds: &Value) -> Vec<String> {
    ["access_token", "refresh_token"]
        .iter()
        .filter_map(|k| creds[k].as_str().map(str::to_string))
        .collect()
}
