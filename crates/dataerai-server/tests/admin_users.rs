//! What a server administrator does with accounts: `admin list-users`,
//! `admin set-password EMAIL` (password from standard input, never argv),
//! `admin disable-user` / `enable-user` (a disabled user cannot sign in and
//! their tokens and web sessions stop working at once); and the messages
//! users meet: quota errors in readable sizes, a missing scope pointing at
//! the `/tokens` page, which preselects `read` and `write`.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

const PW: &str = "a long enough password";

fn list_users(lab: &Lab) -> Vec<Value> {
    admin(lab.path(), &["list-users", "--json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn status_of(users: &[Value], email: &str) -> String {
    users
        .iter()
        .find(|u| u["email"] == email)
        .map(|u| u["status"].as_str().unwrap().to_string())
        .unwrap_or_else(|| panic!("{email} not listed: {users:?}"))
}

#[tokio::test]
async fn the_deployment_guide_steps_make_a_user_who_can_sign_in() {
    let (lab, [alice]) = Lab::start(["alice@lab.org"]);
    // The guide's step 3: create the user, then set a password for the web.
    let users = list_users(&lab);
    assert_eq!(status_of(&users, "alice@lab.org"), "no password");
    set_password(lab.path(), "alice@lab.org", PW);
    assert_eq!(status_of(&list_users(&lab), "alice@lab.org"), "active");
    let mut b = Browser::new(&lab.server.base);
    let page = b.sign_in("alice@lab.org", PW).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    // The table form lists the same users.
    let table = admin(lab.path(), &["list-users"]);
    assert!(table.starts_with("EMAIL"), "{table}");
    assert!(table.contains(&alice.id), "{table}");
    // A short password is refused; an unknown email says what to do.
    let short = admin_stdin(lab.path(), &["set-password", "alice@lab.org"], "short\n");
    assert!(!short.status.success());
    let ghost = admin_stdin(
        lab.path(),
        &["set-password", "ghost@lab.org"],
        &format!("{PW}\n"),
    );
    assert!(String::from_utf8_lossy(&ghost.stderr).contains("admin create-user"));
}

#[tokio::test]
async fn a_disabled_user_is_locked_out_at_once_and_enabling_undoes_it() {
    let (lab, [alice]) = Lab::start(["alice@lab.org"]);
    let out = admin_stdin(
        lab.path(),
        &["set-password", "--email", "alice@lab.org"],
        &format!("{PW}\n"),
    );
    assert!(out.status.success());
    let mut b = Browser::new(&lab.server.base);
    b.sign_in("alice@lab.org", PW).await;
    assert_eq!(b.get("/tokens").await.status, StatusCode::OK);
    let login = device_login(&lab.server.base, "alice@lab.org", PW).await;
    let device_token = login["access_token"].as_str().unwrap().to_string();
    assert_eq!(alice.api.get("/api/v1/me").await.0, StatusCode::OK);

    admin(lab.path(), &["disable-user", "alice@lab.org"]);
    assert_eq!(status_of(&list_users(&lab), "alice@lab.org"), "disabled");
    let me = alice.api.get("/api/v1/me").await;
    assert_err_for("a disabled user's token", &me, AUTH_REQUIRED);
    let device = lab.server.api(&device_token).get("/api/v1/me").await;
    assert_err_for("a disabled user's device login", &device, AUTH_REQUIRED);
    let refreshed = oauth(
        &lab.server.base,
        "/oauth/token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", login["refresh_token"].as_str().unwrap()),
            ("client_id", "dataerai-cli"),
        ],
    )
    .await;
    assert_eq!(refreshed.0, StatusCode::BAD_REQUEST, "{}", refreshed.1);
    // The browser session is gone, and signing in again is refused.
    assert_ne!(b.get("/tokens").await.status, StatusCode::OK);
    let mut again = Browser::new(&lab.server.base);
    let page = again.sign_in("alice@lab.org", PW).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.body);
    assert!(page.body.contains("disabled"));
    // No new token for a disabled user either.
    let token = admin_raw(lab.path(), &["create-token", "--email", "alice@lab.org"]);
    assert!(!token.status.success());

    admin(lab.path(), &["enable-user", "alice@lab.org"]);
    assert_eq!(status_of(&list_users(&lab), "alice@lab.org"), "active");
    assert_eq!(alice.api.get("/api/v1/me").await.0, StatusCode::OK);
    let page = again.sign_in("alice@lab.org", PW).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let audit = admin(lab.path(), &["list-users"]);
    assert!(audit.contains("alice@lab.org"));
}

#[tokio::test]
async fn users_read_quota_sizes_and_where_to_get_a_scope() {
    let (lab, [alice]) = Lab::start(["alice@lab.org"]);
    lab.server
        .set_user_quota("alice@lab.org", 10 * 1024 * 1024 * 1024);
    let asset = alice.personal_asset("big").await;
    let big = alice
        .api
        .open_upload(
            &asset,
            json!([{"name": "big.bin", "size": 12u64 * 1024 * 1024 * 1024}]),
            None,
        )
        .await;
    assert_err_mentions(&big, QUOTA_EXCEEDED, "12.0 GiB of 10.0 GiB");

    let read_only = lab
        .server
        .api(&create_token(lab.path(), "alice@lab.org", "read"));
    let write = read_only
        .post("/api/v1/projects", json!({"name": "p"}))
        .await;
    assert_err_mentions(&write, PERMISSION_DENIED, "/tokens");

    set_password(lab.path(), "alice@lab.org", PW);
    let mut b = Browser::new(&lab.server.base);
    b.sign_in("alice@lab.org", PW).await;
    let page = b.get("/tokens").await;
    for scope in ["read", "write"] {
        let checked = format!(r#"value="{scope}" checked"#);
        assert!(page.body.contains(&checked), "{scope} not preselected");
    }
}
