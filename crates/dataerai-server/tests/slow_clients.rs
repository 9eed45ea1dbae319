//! Slow and idle clients cannot hold the server: a request header that never
//! completes, an idle kept-alive connection and a body that stops arriving are
//! closed after their timeouts, and connections over the cap are closed at
//! once while the server goes on answering.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use dataerai_testkit::{wait_until, TestServer};

/// A server whose config file's `[http]` table is `http` (timeouts in whole
/// seconds); the file sits in its data directory.
fn server_with(http: &str) -> (tempfile::TempDir, TestServer) {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::builder(dir.path())
        .config(&format!("[http]\n{http}\n"))
        .start();
    (dir, server)
}

fn connect(server: &TestServer) -> TcpStream {
    let stream = TcpStream::connect(server.addr()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream
}

/// Read until the server closes the connection; what it sent, and how long
/// that took. Panics if it is still open after the stream's read timeout.
fn read_until_closed(stream: &mut TcpStream) -> (String, Duration) {
    let started = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
            Err(e) => panic!(
                "the connection is still open after {:?} ({e}); got {:?}",
                started.elapsed(),
                String::from_utf8_lossy(&got)
            ),
        }
    }
    (
        String::from_utf8_lossy(&got).into_owned(),
        started.elapsed(),
    )
}

fn healthz(server: &TestServer) -> Result<String, std::io::Error> {
    let mut s = TcpStream::connect(server.addr())?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        s,
        "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )?;
    let mut answer = String::new();
    s.read_to_string(&mut answer)?;
    Ok(answer)
}

#[test]
fn half_sent_headers_are_closed_after_the_header_timeout() {
    let (_dir, server) = server_with("header_read_timeout_s = 1");
    let mut held: Vec<TcpStream> = (0..40)
        .map(|_| {
            let mut s = connect(&server);
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                .unwrap();
            s
        })
        .collect();
    for s in &mut held {
        let (_, took) = read_until_closed(s);
        assert!(took < Duration::from_secs(10), "closed only after {took:?}");
    }
    assert!(healthz(&server).unwrap().starts_with("HTTP/1.1 200"));
}

#[test]
fn idle_connections_are_closed_before_and_between_requests() {
    let (_dir, server) = server_with("header_read_timeout_s = 1");
    // Connected, never a byte sent.
    let mut silent = connect(&server);
    let (sent, _) = read_until_closed(&mut silent);
    assert_eq!(sent, "", "nothing is answered to a request never sent");
    // One answered request, then idle on a kept-alive connection.
    let mut kept = connect(&server);
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let (sent, took) = read_until_closed(&mut kept);
    assert!(sent.starts_with("HTTP/1.1 200"), "{sent}");
    assert!(took < Duration::from_secs(10), "closed only after {took:?}");
}

#[test]
fn a_body_that_stops_arriving_ends_the_request() {
    let (_dir, server) = server_with("body_read_timeout_s = 1");
    let mut s = connect(&server);
    // The unauthenticated device-code request: a form body announced as 100
    // bytes of which 10 arrive.
    s.write_all(
        b"POST /oauth/device/code HTTP/1.1\r\nHost: x\r\n\
          Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\n\
          client_id=",
    )
    .unwrap();
    let (sent, took) = read_until_closed(&mut s);
    assert!(took < Duration::from_secs(10), "closed only after {took:?}");
    assert!(
        sent.starts_with("HTTP/1.1 4"),
        "a stalled body gets a client error, not a success or a 5xx: {sent}"
    );
    assert!(healthz(&server).unwrap().starts_with("HTTP/1.1 200"));
}

#[test]
fn connections_over_the_cap_are_closed_and_the_server_recovers() {
    let (_dir, server) = server_with("max_connections = 8\nheader_read_timeout_s = 3");
    let held: Vec<TcpStream> = (0..8).map(|_| connect(&server)).collect();
    // The server accepts the held ones in order; give it the moment to.
    std::thread::sleep(Duration::from_millis(300));
    let mut over = connect(&server);
    let (sent, took) = read_until_closed(&mut over);
    assert_eq!(sent, "");
    assert!(
        took < Duration::from_secs(2),
        "the connection over the cap was held for {took:?}"
    );
    // Once the idle ones time out, the server answers again.
    let answer = wait_until(
        "healthz after the idle connections close",
        Duration::from_secs(20),
        || {
            healthz(&server)
                .ok()
                .filter(|a| a.starts_with("HTTP/1.1 200"))
        },
    );
    assert!(answer.contains("\"ok\""), "{answer}");
    assert!(server.metric("dataerai_refused_connections_total") >= 1);
    drop(held);
}
