//! What the server hands out cannot be bent by a client: every answer says
//! `nosniff`, device-login links never come from the request's `Host`
//! header, and the sign-in CSRF cookie is host-only (`__Host-`).

use std::io::{Read, Write};
use std::net::TcpStream;

use dataerai_testkit::web::Browser;
use dataerai_testkit::TestServer;

/// One raw HTTP/1.1 exchange, so the `Host` header is exactly `host`.
fn raw(server: &TestServer, request: &str) -> String {
    let mut s = TcpStream::connect(server.addr()).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    answer
}

#[test]
fn every_kind_of_answer_says_nosniff() {
    let server = TestServer::start_temp();
    for (what, path) in [
        ("health", "/healthz"),
        ("an API error", "/api/v1/projects"),
        ("an unknown path", "/no/such/page"),
        ("a web page", "/login"),
        ("metrics", "/metrics"),
        ("the API document", "/api/v1/openapi.json"),
    ] {
        let answer = raw(
            &server,
            &format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
        );
        assert!(
            answer
                .to_ascii_lowercase()
                .contains("\r\nx-content-type-options: nosniff\r\n"),
            "{what} ({path}): {answer}"
        );
    }
}

/// The `verification_uri` a device-code request with `Host: evil.example`
/// gets, and the whole raw answer.
fn device_link_for_a_forged_host(server: &TestServer) -> (String, String) {
    let body = "client_id=dataerai-cli&scope=read";
    let answer = raw(
        server,
        &format!(
            "POST /oauth/device/code HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    );
    let json: serde_json::Value =
        serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    (
        json["verification_uri"].as_str().unwrap().to_string(),
        answer,
    )
}

#[test]
fn device_links_point_at_the_server_whatever_the_host_header_says() {
    let server = TestServer::start_temp();
    let (link, answer) = device_link_for_a_forged_host(&server);
    assert_eq!(link, format!("{}/device", server.base));
    assert!(!answer.contains("evil.example"), "{answer}");
    // With a public URL configured, links use it.
    let server =
        TestServer::start_temp_with(|b| b.args(&["--public-url", "https://data.lab.org/"]));
    let (link, _) = device_link_for_a_forged_host(&server);
    assert_eq!(link, "https://data.lab.org/device");
}

#[tokio::test]
async fn the_sign_in_csrf_cookie_is_host_only() {
    let server = TestServer::start_temp();
    let mut browser = Browser::new(&server.base);
    browser.get("/login").await;
    let cookie = browser
        .last_set_cookie
        .iter()
        .find(|c| c.contains("login_csrf"))
        .expect("the sign-in form sets its CSRF cookie");
    assert!(
        cookie.starts_with("__Host-dataerai_login_csrf="),
        "{cookie}"
    );
    for attribute in ["; Secure", "; Path=/;", "; HttpOnly"] {
        assert!(cookie.contains(attribute), "{cookie} lacks {attribute}");
    }
    assert!(!cookie.to_ascii_lowercase().contains("domain="), "{cookie}");
}
