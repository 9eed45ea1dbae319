//! Sign-in limits hold under concurrency and cannot be turned against other
//! users: every attempt counts before its password is checked, a much-guessed
//! email slows down instead of locking its owner out, password checks run a
//! few at a time, and the per-address limit keys on the real client behind a
//! trusted proxy (and on the peer otherwise, whatever the client claims).

use dataerai_testkit::web::Browser;
use dataerai_testkit::TestServer;
use futures::future::join_all;
use reqwest::StatusCode;

const PW: &str = "correct horse battery";

fn server(config: Option<&str>) -> (tempfile::TempDir, TestServer) {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::builder(dir.path())
        .config(config.unwrap_or(""))
        .start();
    server.create_user_with_password("carol@lab.org", PW);
    (dir, server)
}

/// A browser whose requests carry `X-Forwarded-For: ip` (as a proxy would add).
fn forwarded_for(base: &str, ip: &str) -> Browser {
    let mut browser = Browser::new(base);
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("x-forwarded-for", ip.parse().unwrap());
    browser.client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(headers)
        .build()
        .unwrap();
    browser
}

/// `n` sign-ins at once, the `i`th as `email(i)` with `password`; all must
/// answer 401.
async fn wrong_sign_ins_at_once(
    base: &str,
    n: usize,
    email: impl Fn(usize) -> String,
    password: &str,
) {
    let attempts = (0..n).map(|i| {
        let email = email(i);
        async move { Browser::new(base).sign_in(&email, password).await }
    });
    for page in join_all(attempts).await {
        assert_eq!(page.status, StatusCode::UNAUTHORIZED, "{}", page.body);
    }
}

#[tokio::test]
async fn concurrent_guesses_are_slowed_and_the_owner_still_signs_in() {
    let (_dir, server) = server(None);
    let base = server.base.clone();
    // Eight wrong guesses at once: at most five fit the email's allowance,
    // the others wait (1, 2, 4 s…) — each attempt is counted before it is
    // decided, so running them at once lets none slip past (an attempt may
    // see later ones counted already and wait too: never fewer than three).
    wrong_sign_ins_at_once(&base, 8, |_| "carol@lab.org".into(), "wrong").await;
    let slowed = server.metric("dataerai_sign_ins_slowed_total");
    assert!((3..=8).contains(&slowed), "{slowed} of 8 guesses slowed");
    // The owner, with the right password, is slowed too (8 s) but signs in.
    let page = Browser::new(&base).sign_in("carol@lab.org", PW).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(server.metric("dataerai_sign_ins_slowed_total"), slowed + 1);
    assert_eq!(server.metric("dataerai_sign_ins_refused_total"), 0);
    // A success forgets the email's failures: the next try is not slowed.
    let page = Browser::new(&base).sign_in("carol@lab.org", PW).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(server.metric("dataerai_sign_ins_slowed_total"), slowed + 1);
}

#[tokio::test]
async fn password_checks_run_a_few_at_a_time() {
    let (_dir, server) = server(None);
    let base = server.base.clone();
    // Nineteen anonymous sign-ins at once (unknown emails still cost a hash).
    wrong_sign_ins_at_once(&base, 19, |i| format!("nobody{i}@lab.org"), "guess").await;
    let peak = server.metric("dataerai_password_checks_peak");
    assert!(
        (1..=4).contains(&peak),
        "{peak} password checks ran at once"
    );
}

/// Twenty failed sign-ins (different emails), the `i`th claiming to be
/// forwarded for `claimed(i)`; then carol's right password as `last`: its answer.
async fn twenty_failures_then(
    base: &str,
    claimed: impl Fn(usize) -> String,
    last: &str,
) -> dataerai_testkit::web::Page {
    for i in 0..20 {
        let page = forwarded_for(base, &claimed(i))
            .sign_in(&format!("guess{i}@lab.org"), "nope")
            .await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED, "failure {i}");
    }
    forwarded_for(base, last).sign_in("carol@lab.org", PW).await
}

#[tokio::test]
async fn behind_a_trusted_proxy_one_client_cannot_lock_out_the_others() {
    let (_dir, server) = server(Some("[http]\ntrusted_proxies = [\"127.0.0.1\"]\n"));
    let base = &server.base;
    // One client behind the proxy fails 20 times, and is refused from then
    // on, even with a right password…
    let page = twenty_failures_then(base, |_| "203.0.113.5".into(), "203.0.113.5").await;
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = page.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=900).contains(&retry), "{retry}");
    // …while another client behind the same proxy signs in.
    let page = forwarded_for(base, "198.51.100.7")
        .sign_in("carol@lab.org", PW)
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
}

#[tokio::test]
async fn without_a_trusted_proxy_a_forged_forwarded_for_changes_nothing() {
    let (_dir, server) = server(None);
    let base = &server.base;
    // Each failure claims another address: all count against the peer's.
    let page = twenty_failures_then(base, |i| format!("192.0.2.{i}"), "192.0.2.99").await;
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(server.metric("dataerai_sign_ins_refused_total"), 1);
}
