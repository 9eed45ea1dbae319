//! The unauthenticated device login cannot be flooded or guessed: device
//! codes are limited per client address and in total, and user codes looked
//! up at `/device` are limited per address.

use dataerai_testkit::web::{oauth, Browser};
use dataerai_testkit::TestServer;
use reqwest::StatusCode;

const PW: &str = "correct horse battery";

fn server(config: &str) -> (tempfile::TempDir, TestServer) {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::builder(dir.path()).config(config).start();
    (dir, server)
}

async fn device_code(
    base: &str,
    forwarded_for: &str,
) -> (StatusCode, serde_json::Value, Option<String>) {
    let resp = reqwest::Client::new()
        .post(format!("{base}/oauth/device/code"))
        .header("x-forwarded-for", forwarded_for)
        .form(&[("client_id", "dataerai-cli"), ("scope", "read")])
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let retry = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    (status, resp.json().await.unwrap(), retry)
}

#[tokio::test]
async fn device_codes_are_limited_per_address() {
    let (_dir, server) = server("[http]\ntrusted_proxies = [\"127.0.0.1\"]\n");
    let base = &server.base;
    for i in 0..10 {
        let (status, body, _) = device_code(base, "203.0.113.5").await;
        assert_eq!(status, StatusCode::OK, "code {i}: {body}");
    }
    let (status, body, retry) = device_code(base, "203.0.113.5").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["error"], "slow_down", "{body}");
    let retry: u64 = retry.expect("Retry-After").parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    // Another client is not affected.
    let (status, body, _) = device_code(base, "198.51.100.7").await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn pending_device_codes_are_capped() {
    let (_dir, server) = server("max_pending_device_codes = 3\n");
    let form = [("client_id", "c"), ("scope", "read")];
    let mut answers = Vec::new();
    for _ in 0..4 {
        answers.push(oauth(&server.base, "/oauth/device/code", &form).await);
    }
    let statuses: Vec<StatusCode> = answers.iter().map(|(s, _)| *s).collect();
    assert_eq!(statuses[..3], [StatusCode::OK; 3], "{answers:?}");
    assert_eq!(statuses[3], StatusCode::SERVICE_UNAVAILABLE, "{answers:?}");
    assert_eq!(answers[3].1["error"], "temporarily_unavailable");
}

#[tokio::test]
async fn user_codes_cannot_be_guessed_at_the_device_page() {
    let (_dir, server) = server("");
    server.create_user_with_password("carol@lab.org", PW);
    let mut browser = Browser::new(&server.base);
    browser.sign_in("carol@lab.org", PW).await;
    for i in 0..20 {
        let page = browser
            .get(&format!("/device?user_code=BCDF-GH{:02}", i))
            .await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "guess {i}");
    }
    let page = browser.get("/device?user_code=BCDF-GHJK").await;
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(page.body.contains("Too many codes"), "{}", page.body);
    assert!(page.headers.contains_key("retry-after"));
}
