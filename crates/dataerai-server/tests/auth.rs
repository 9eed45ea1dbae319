//! Sign-in, against the real server binary: the OAuth device flow
//! (pending, slow_down, approve, deny, refresh rotation and reuse detection),
//! the web pages (sessions, CSRF, rate limiting, tokens), and the audit log.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::Value;

const PW: &str = "correct horse battery staple";

fn start(dir: &std::path::Path) -> TestServer {
    TestServer::start_with(dir, &["--device-poll-interval-s", "1"])
}

async fn refresh(base: &str, rt: &str) -> (StatusCode, Value) {
    oauth(
        base,
        "/oauth/token",
        &[("grant_type", "refresh_token"), ("refresh_token", rt)],
    )
    .await
}

#[tokio::test]
async fn device_flow_end_to_end_with_rotation_and_reuse_detection() {
    let dir = tempfile::tempdir().unwrap();
    make_user_with_password(dir.path(), "alice@lab.org", PW, false);
    let server = start(dir.path());
    let base = &server.base;

    let code = request_device_code(base, "read write").await;
    let user_code = code["user_code"].as_str().unwrap();
    let device_code = code["device_code"].as_str().unwrap();
    assert_eq!(user_code.len(), 9);
    assert_eq!(&user_code[4..5], "-");
    assert_eq!(code["verification_uri"], format!("{base}/device"));
    assert_eq!(
        code["verification_uri_complete"],
        format!("{base}/device?user_code={user_code}")
    );
    assert_eq!(code["expires_in"], 600);
    assert_eq!(code["interval"], 1);

    // Not approved yet; polling again at once is too fast.
    let (s, e) = poll_device_token(base, device_code).await;
    assert_eq!(
        (s, e["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("authorization_pending"))
    );
    let (s, e) = poll_device_token(base, device_code).await;
    assert_eq!(
        (s, e["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("slow_down"))
    );
    let (_, e) = poll_device_token(base, "forged-device-code").await;
    assert_eq!(e["error"], "invalid_grant");

    // The browser: /device without a session goes to /login and comes back.
    let mut browser = Browser::new(base);
    let p = browser.get(&format!("/device?user_code={user_code}")).await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    let next = p.location.unwrap();
    assert!(next.starts_with("/login?next="), "{next}");
    let login = browser.get(&next).await;
    let signed = browser
        .post(
            "/login",
            &[
                ("csrf_token", &login.csrf()),
                ("email", "alice@lab.org"),
                ("password", PW),
                (
                    "next",
                    &hidden_field(&login.body, "next")
                        .unwrap()
                        .replace("&amp;", "&"),
                ),
            ],
        )
        .await;
    assert_eq!(signed.status, StatusCode::SEE_OTHER, "{}", signed.body);
    assert_eq!(
        signed.location.as_deref(),
        Some(format!("/device?user_code={user_code}").as_str())
    );
    let cookie = browser
        .last_set_cookie
        .iter()
        .find(|c| c.starts_with("dataerai_session="))
        .unwrap();
    for attr in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(attr), "{cookie}");
    }
    let done = browser.decide_device(user_code, true).await;
    assert!(done.body.contains("Device approved"), "{}", done.body);

    std::thread::sleep(std::time::Duration::from_millis(1100));
    let (s, tokens) = poll_device_token(base, device_code).await;
    assert_eq!(s, StatusCode::OK, "{tokens}");
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["scope"], "read write");
    assert_eq!(tokens["expires_in"], 3600);
    assert_eq!(tokens["refresh_token_expires_in"], 30 * 86_400);
    let at = tokens["access_token"].as_str().unwrap();
    let rt = tokens["refresh_token"].as_str().unwrap();
    assert!(at.starts_with("dtr_at_") && rt.starts_with("dtr_rt_"));
    // The device code is used up.
    let (_, e) = poll_device_token(base, device_code).await;
    assert_eq!(e["error"], "invalid_grant");

    let (s, me) = server.api(at).get("/api/v1/me").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(me["email"], "alice@lab.org");
    let exp = chrono::DateTime::parse_from_rfc3339(me["expires_at"].as_str().unwrap()).unwrap();
    let left = exp.signed_duration_since(chrono::Utc::now()).num_seconds();
    assert!((3500..=3600).contains(&left), "{left}");

    // Rotation: a new pair; the old refresh token is spent.
    let (s, t2) = refresh(base, rt).await;
    assert_eq!(s, StatusCode::OK, "{t2}");
    let rt2 = t2["refresh_token"].as_str().unwrap();
    let at2 = t2["access_token"].as_str().unwrap();
    assert_ne!(rt2, rt);
    assert_eq!(server.api(at2).get("/api/v1/me").await.0, StatusCode::OK);
    // Reuse of the rotated token: theft → the whole family is revoked.
    let (s, e) = refresh(base, rt).await;
    assert_eq!(
        (s, e["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    for token in [at, at2] {
        assert_err(&server.api(token).get("/api/v1/me").await, AUTH_REQUIRED);
    }
    assert_eq!(refresh(base, rt2).await.1["error"], "invalid_grant");
    // Bad requests get RFC errors, not ERR_*.
    assert_eq!(
        oauth(base, "/oauth/token", &[("grant_type", "password")])
            .await
            .1["error"],
        "unsupported_grant_type"
    );
    assert_eq!(
        oauth(base, "/oauth/device/code", &[("scope", "read")])
            .await
            .1["error"],
        "invalid_request"
    );
    assert_eq!(
        oauth(
            base,
            "/oauth/device/code",
            &[("client_id", "x"), ("scope", "admin")]
        )
        .await
        .1["error"],
        "invalid_scope"
    );
}

#[tokio::test]
async fn denied_device_and_short_lived_access_tokens() {
    let dir = tempfile::tempdir().unwrap();
    make_user_with_password(dir.path(), "bob@lab.org", PW, false);
    let server = TestServer::start_with(
        dir.path(),
        &["--device-poll-interval-s", "1", "--access-token-ttl-s", "1"],
    );
    let base = &server.base;
    let code = request_device_code(base, "read").await;
    let mut browser = Browser::new(base);
    browser.sign_in("bob@lab.org", PW).await;
    let denied = browser
        .decide_device(code["user_code"].as_str().unwrap(), false)
        .await;
    assert!(denied.body.contains("Device denied"), "{}", denied.body);
    let (_, e) = poll_device_token(base, code["device_code"].as_str().unwrap()).await;
    assert_eq!(e["error"], "access_denied");
    // An unknown code on the page is refused cleanly.
    let p = browser.get("/device?user_code=BCDF-GHJK").await;
    assert_eq!(p.status, StatusCode::NOT_FOUND);
    let p = browser.get("/device?user_code=%3Cscript%3E").await;
    assert!(!p.body.contains("<script>"));

    // A read-scope login with a 1 s access token: it expires, refresh works.
    let tokens = device_login_with_scope(base, "bob@lab.org", PW, "read").await;
    assert_eq!(tokens["scope"], "read");
    let at = tokens["access_token"].as_str().unwrap();
    let api = server.api(at);
    assert_eq!(api.get("/api/v1/me").await.0, StatusCode::OK);
    assert_err(
        &api.post("/api/v1/projects", serde_json::json!({"name": "p"}))
            .await,
        PERMISSION_DENIED,
    );
    wait_until_async(
        "the 1 s access token to expire",
        std::time::Duration::from_secs(30),
        || async { (api.get("/api/v1/me").await.0 == StatusCode::UNAUTHORIZED).then_some(()) },
    )
    .await;
    assert_err(&api.get("/api/v1/me").await, AUTH_REQUIRED);
    let (s, t2) = refresh(base, tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(s, StatusCode::OK, "{t2}");
    assert_eq!(t2["scope"], "read");
    assert_eq!(
        server
            .api(t2["access_token"].as_str().unwrap())
            .get("/api/v1/me")
            .await
            .0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn passwords_set_later_must_be_long_enough() {
    let dir = tempfile::tempdir().unwrap();
    // A password can be set later, and must be long enough.
    make_user(dir.path(), "dave@lab.org", "read");
    let out = set_password(dir.path(), "dave@lab.org", "short");
    assert!(!out.status.success());
    let out = set_password(dir.path(), "dave@lab.org", "dave's long password");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `admin set-password` for `email`.
fn set_password(dir: &std::path::Path, email: &str, password: &str) -> std::process::Output {
    admin_stdin(
        dir,
        &["set-password", "--email", email, "--password-stdin"],
        &format!("{password}\n"),
    )
}

/// A server with a signed-up admin (root), carol and dave (whose password
/// was set after the account was made); answers it and the admin's id.
fn web_lab() -> (Lab, String) {
    let dir = tempfile::tempdir().unwrap();
    let admin_id = make_user_with_password(dir.path(), "root@lab.org", PW, true);
    make_user_with_password(dir.path(), "carol@lab.org", PW, false);
    make_user(dir.path(), "dave@lab.org", "read");
    let out = set_password(dir.path(), "dave@lab.org", "dave's long password");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let server = start(dir.path());
    (Lab { server, dir }, admin_id)
}

#[tokio::test]
async fn sign_in_needs_its_csrf_token_and_never_redirects_off_site() {
    let (lab, _) = web_lab();
    let base = &lab.server.base;

    // CSRF: a sign-in without the token, or with a wrong one, is refused.
    let mut b = Browser::new(base);
    let login = b.get("/login").await;
    assert!(
        login.body.contains("name=\"email\"")
            && login.body.contains("name=\"password\"")
            && login.body.contains("Sign in")
    );
    // Every page: HTML, never cached, never framed, scripts only from this origin.
    for (name, value) in [
        ("content-type", "text/html; charset=utf-8"),
        ("cache-control", "no-store"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
        (
            "content-security-policy",
            "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self'; \
             connect-src 'self'; img-src 'self' data:; style-src 'unsafe-inline'; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    ] {
        assert_eq!(login.headers[name], value, "{name}");
    }
    // The pages' scripts are embedded and served from this origin.
    let js = b.get("/static/api.js").await;
    assert_eq!(js.status, StatusCode::OK);
    assert_eq!(js.headers["content-type"], "text/javascript; charset=utf-8");
    assert!(js.body.contains("x-csrf-token"), "{}", js.body);
    assert_eq!(b.get("/static/nope.js").await.status, StatusCode::NOT_FOUND);
    let p = b
        .post("/login", &[("email", "carol@lab.org"), ("password", PW)])
        .await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    let p = b
        .post(
            "/login",
            &[
                ("csrf_token", "0000"),
                ("email", "carol@lab.org"),
                ("password", PW),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    // An open redirect is not followed.
    let p = b
        .sign_in_then("dave@lab.org", "dave's long password", "//evil.example")
        .await;
    assert_eq!(
        (p.status, p.location.as_deref()),
        (StatusCode::SEE_OTHER, Some("/"))
    );
}

#[tokio::test]
async fn failed_sign_ins_slow_an_email_and_refuse_an_address() {
    let (lab, _) = web_lab();
    let (server, base) = (&lab.server, &lab.server.base);

    // Per email: after 5 failures attempts are slowed down, not refused:
    // the right password still signs in.
    let mut m = Browser::new(base);
    for _ in 0..5 {
        let p = m.sign_in("carol@lab.org", "wrong password!").await;
        assert_eq!(p.status, StatusCode::UNAUTHORIZED);
        assert!(p.body.contains("Wrong email or password"));
    }
    assert_eq!(server.metric("dataerai_sign_ins_slowed_total"), 0);
    let p = m.sign_in("carol@lab.org", PW).await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    assert_eq!(server.metric("dataerai_sign_ins_slowed_total"), 1);
    // Unknown users fail the same way.
    assert_eq!(
        Browser::new(base)
            .sign_in("nobody@lab.org", PW)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );

    // Per address: after 20 failures (carol's were forgotten when she signed
    // in; 1 so far) every email from it is refused.
    for i in 0..19 {
        let p = Browser::new(base)
            .sign_in(&format!("guess{i}@lab.org"), "nope nope")
            .await;
        assert_eq!(p.status, StatusCode::UNAUTHORIZED);
    }
    let p = Browser::new(base).sign_in("root@lab.org", PW).await;
    assert_eq!(p.status, StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = p.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=900).contains(&retry), "{retry}");
}

#[tokio::test]
async fn tokens_page_sign_out_and_the_audit_log() {
    let (lab, admin_id) = web_lab();
    let (server, base) = (&lab.server, &lab.server.base);
    // One failed sign-in, for the audit log below.
    let p = Browser::new(base)
        .sign_in("carol@lab.org", "wrong password!")
        .await;
    assert_eq!(p.status, StatusCode::UNAUTHORIZED);

    // Tokens page: create (shown once), use, revoke.
    let mut r = Browser::new(base);
    assert_eq!(
        r.sign_in("root@lab.org", PW).await.status,
        StatusCode::SEE_OTHER
    );
    let (created, token) = r.create_token("ci <script>", &["read", "write"]).await;
    assert!(created.body.contains("ci &lt;script&gt;") && !created.body.contains("ci <script>"));
    let token = token.as_str();
    assert!(token.starts_with("dtr_pat_"), "{token}");
    let (_, me) = server.api(token).get("/api/v1/me").await;
    assert_eq!(me["scopes"], serde_json::json!(["read", "write"]));
    // The token is not shown again.
    assert!(!r.get("/tokens").await.body.contains(token));
    // Without the CSRF token nothing happens.
    let p = r.post("/tokens", &[("name", "x"), ("scope", "read")]).await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    let page = r.get("/tokens").await;
    let token_id = &page.first_token_id();
    assert!(page.body.contains("Revoke"));
    assert_eq!(r.revoke_token(token_id).await.status, StatusCode::SEE_OTHER);
    assert_err(&server.api(token).get("/api/v1/me").await, AUTH_REQUIRED);
    // Another user's session cannot revoke it (nor see it).
    let mut d = Browser::new(base);
    d.sign_in("dave@lab.org", "dave's long password").await;
    assert!(!d.get("/tokens").await.body.contains(token_id.as_str()));
    assert_eq!(d.revoke_token(token_id).await.status, StatusCode::NOT_FOUND);
    // A CSRF token of another session does not work.
    let p = d
        .post(
            "/tokens",
            &[
                ("csrf_token", &page.csrf()),
                ("name", "x"),
                ("scope", "read"),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);

    // Sign out: the session is gone server-side.
    let old_cookie = r.cookies.clone();
    let p = r.post("/logout", &[("csrf_token", &page.csrf())]).await;
    assert_eq!(
        (p.status, p.location.as_deref()),
        (StatusCode::SEE_OTHER, Some("/login"))
    );
    r.cookies = old_cookie;
    assert_eq!(r.get("/tokens").await.status, StatusCode::SEE_OTHER);

    // The audit log: admins only.
    let admin_pat = server.create_token("root@lab.org", "read");
    let log = assert_audited(
        &server.api(&admin_pat),
        &[
            "auth.sign_in",
            "auth.sign_in_failed",
            "auth.sign_out",
            "token.created",
            "token.revoked",
        ],
    )
    .await;
    let signin = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "auth.sign_in" && e["actor_user_id"] == admin_id.as_str())
        .unwrap();
    assert_eq!(signin["client_addr"], "127.0.0.1");
    let dave_pat = server.create_token("dave@lab.org", "read");
    assert_err(
        &server.api(&dave_pat).get("/api/v1/audit").await,
        PERMISSION_DENIED,
    );
}

#[tokio::test]
async fn forged_and_truncated_tokens_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (_, token) = make_user(dir.path(), "eve@lab.org", "read,write");
    let server = TestServer::start(dir.path());
    assert_eq!(server.api(&token).get("/api/v1/me").await.0, StatusCode::OK);
    let forged = [
        token[..token.len() - 1].to_string(),
        format!("{token}0"),
        token.replace("dtr_pat_", "dtr_at_"),
        "dtr_pat_".to_string(),
        "' OR '1'='1".to_string(),
        "x".repeat(10_000),
    ];
    for t in &forged {
        assert_err(&server.api(t).get("/api/v1/me").await, AUTH_REQUIRED);
    }
    // Not a bearer header at all.
    let resp = reqwest::Client::new()
        .get(format!("{}/api/v1/me", server.base))
        .header("authorization", format!("Basic {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}
