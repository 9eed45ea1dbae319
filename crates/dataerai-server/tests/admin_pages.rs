//! The administrators' area in a browser (`/admin`, `/admin/users`,
//! `/admin/audit`): only server administrators see it (anyone else signed in
//! gets the 404 page, a signed-out visitor the sign-in redirect); its forms
//! create users, set passwords, disable and enable — the rules and audit
//! events of the `admin` commands — and refuse a missing CSRF token; a user
//! disabled there can neither sign in nor use a token they already hold.

mod common;

use common::*;
use reqwest::StatusCode;

const PW: &str = "a long enough password";

/// A form's fields (after its CSRF token).
type Fields<'a> = &'a [(&'a str, &'a str)];

/// A lab with administrator root (signed in) and ordinary user alice (with a
/// password and a token).
async fn lab_with_admin() -> (Lab, User, Browser) {
    let (lab, [alice]) = Lab::start(["alice@lab.org"]);
    make_user_with_password(lab.path(), "root@lab.org", PW, true);
    set_password(lab.path(), "alice@lab.org", PW);
    let mut root = Browser::new(&lab.server.base);
    let signed = root.sign_in("root@lab.org", PW).await;
    assert_eq!(signed.status, StatusCode::SEE_OTHER, "{}", signed.body);
    (lab, alice, root)
}

#[tokio::test]
async fn only_administrators_see_the_admin_area() {
    let (lab, _alice, mut root) = lab_with_admin().await;
    for path in ["/admin", "/admin/users", "/admin/audit"] {
        let page = root.get(path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}: {}", page.body);
        assert!(page
            .body
            .contains("<a href=\"/admin\" aria-current=\"page\">Admin</a>"));
    }
    let health = root.get("/admin").await.body;
    for words in [
        "Database",
        "Blob store",
        "accepts writes",
        "Up for",
        "Fullest allocations",
    ] {
        assert!(health.contains(words), "{words}: {health}");
    }
    assert!(health.contains(env!("CARGO_PKG_VERSION")));

    // An ordinary user: no Admin entry, and the 404 page for every admin URL.
    let mut alice = Browser::new(&lab.server.base);
    alice.sign_in("alice@lab.org", PW).await;
    let home = alice.get("/").await;
    assert!(!home.body.contains("href=\"/admin\""), "{}", home.body);
    for path in ["/admin", "/admin/users?q=root", "/admin/audit"] {
        let page = alice.get(path).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{path}");
        assert!(!page.body.contains("root@lab.org"), "{}", page.body);
    }
    let csrf = alice.get("/tokens").await.csrf();
    let post = alice
        .submit(
            "/admin/users",
            &csrf,
            &[
                ("email", "mallory@lab.org"),
                ("password", PW),
                ("admin", "yes"),
            ],
        )
        .await;
    assert_eq!(post.status, StatusCode::NOT_FOUND);
    let disable = alice
        .submit("/admin/users/disable", &csrf, &[("email", "root@lab.org")])
        .await;
    assert_eq!(disable.status, StatusCode::NOT_FOUND);
    assert!(!admin(lab.path(), &["list-users"]).contains("mallory@lab.org"));

    // Signed out: to the sign-in page, coming back here.
    let mut anonymous = Browser::new(&lab.server.base);
    let page = anonymous.get("/admin/audit").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(
        page.location.as_deref(),
        Some("/login?next=%2Fadmin%2Faudit")
    );
}

#[tokio::test]
async fn an_administrator_manages_users_from_the_page() {
    let (lab, alice, mut root) = lab_with_admin().await;
    let csrf = root.get("/admin/users").await.csrf();

    // Without (or with a wrong) CSRF token nothing happens.
    for token in ["", "0000"] {
        let refused = root
            .post(
                "/admin/users",
                &[
                    ("csrf_token", token),
                    ("email", "x@lab.org"),
                    ("password", PW),
                ],
            )
            .await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN);
    }
    assert!(!admin(lab.path(), &["list-users"]).contains("x@lab.org"));

    // Create dora (with a password), then she signs in.
    let created = root
        .submit(
            "/admin/users",
            &csrf,
            &[("email", "dora@lab.org"), ("password", PW)],
        )
        .await;
    created.assert_says(StatusCode::OK, "User dora@lab.org created.");
    let mut dora = Browser::new(&lab.server.base);
    assert_eq!(
        dora.sign_in("dora@lab.org", PW).await.status,
        StatusCode::SEE_OTHER
    );
    // The same rules as the command: a second one, a short password, an
    // unknown user.
    let refusals: [(&str, Fields, &str); 3] = [
        ("/admin/users", &[("email", "dora@lab.org")], "already"),
        (
            "/admin/users/password",
            &[("email", "dora@lab.org"), ("password", "short")],
            "at least 8 characters",
        ),
        (
            "/admin/users/password",
            &[("email", "ghost@lab.org"), ("password", PW)],
            "no user with email ghost@lab.org",
        ),
    ];
    for (path, fields, words) in refusals {
        let refused = root.submit(path, &csrf, fields).await;
        refused.assert_says(StatusCode::BAD_REQUEST, words);
    }

    // A new password: the old one no longer works.
    let new_pw = "another long password";
    let set = root
        .submit(
            "/admin/users/password",
            &csrf,
            &[("email", "dora@lab.org"), ("password", new_pw)],
        )
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    let mut old = Browser::new(&lab.server.base);
    assert_eq!(
        old.sign_in("dora@lab.org", PW).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        old.sign_in("dora@lab.org", new_pw).await.status,
        StatusCode::SEE_OTHER
    );

    // Disable alice: her token and her session stop working, sign-in is refused.
    let mut alice_web = Browser::new(&lab.server.base);
    alice_web.sign_in("alice@lab.org", PW).await;
    assert_eq!(alice.api.get("/api/v1/me").await.0, StatusCode::OK);
    let disabled = root
        .submit("/admin/users/disable", &csrf, &[("email", "alice@lab.org")])
        .await;
    disabled.assert_says(StatusCode::OK, "alice@lab.org is disabled");
    assert_err_for(
        "a disabled user's token",
        &alice.api.get("/api/v1/me").await,
        AUTH_REQUIRED,
    );
    assert_ne!(alice_web.get("/tokens").await.status, StatusCode::OK);
    let mut again = Browser::new(&lab.server.base);
    assert_eq!(
        again.sign_in("alice@lab.org", PW).await.status,
        StatusCode::FORBIDDEN
    );
    let listed = root.get("/admin/users?q=alice").await.body;
    assert!(listed.contains("Enable alice@lab.org"), "{listed}");
    assert!(
        !listed.contains("dora@lab.org"),
        "filtered by email: {listed}"
    );

    // Not oneself; enabling undoes it.
    let own = root
        .submit("/admin/users/disable", &csrf, &[("email", "root@lab.org")])
        .await;
    own.assert_says(StatusCode::BAD_REQUEST, "cannot disable your own account");
    assert_eq!(root.get("/admin").await.status, StatusCode::OK);
    let enabled = root
        .submit("/admin/users/enable", &csrf, &[("email", "alice@lab.org")])
        .await;
    assert_eq!(enabled.status, StatusCode::OK, "{}", enabled.body);
    assert_eq!(alice.api.get("/api/v1/me").await.0, StatusCode::OK);

    // Every change is in the audit log with the administrator as the actor,
    // and the log filters by action and actor.
    let log = root.get("/admin/audit?action=user.disabled").await.body;
    assert!(
        log.contains("Events <span class=\"muted small\">(1)</span>"),
        "{log}"
    );
    assert!(log.contains("root@lab.org"), "{log}");
    let by_root = root.get("/admin/audit?actor=root%40lab.org").await.body;
    for action in [
        "user.created",
        "user.password_set",
        "user.disabled",
        "user.enabled",
        "auth.sign_in",
    ] {
        assert!(
            by_root.contains(&format!("<code>{action}</code>")),
            "{action}: {by_root}"
        );
    }
    let by_alice = root
        .get("/admin/audit?actor=alice%40lab.org&action=user.created")
        .await
        .body;
    assert!(by_alice.contains("No event matches."), "{by_alice}");
    // The command line writes the same events (no actor).
    admin(lab.path(), &["disable-user", "dora@lab.org"]);
    let cli = root.get("/admin/audit?action=user.disabled").await.body;
    assert!(
        cli.contains("Events <span class=\"muted small\">(2)</span>"),
        "{cli}"
    );
}
