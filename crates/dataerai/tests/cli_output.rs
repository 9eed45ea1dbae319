//! What the CLI prints is safe to read: a closed pipe ends it quietly, names
//! that would drive the terminal are refused (and never echoed raw), and
//! `--json` errors are JSON. Other people's text in human output is shown
//! with control characters escaped (`output::printable`, unit-tested).

mod common;

use std::io::Read;
use std::process::Stdio;

use common::signed_in_user;
use dataerai_testkit::TestServer;

#[test]
fn a_closed_stdout_ends_the_command_quietly() {
    let server = TestServer::start_temp();
    let user = signed_in_user(&server, "ada@lab.org");
    for i in 0..3 {
        user.run_ok(&["project", "create", &format!("p{i}")]);
    }
    // The reader is gone before the first line is written (`| head -0`).
    let mut child = user
        .cmd()
        .args(["list", "projects"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn names_with_terminal_escapes_are_refused_and_never_echoed_raw() {
    let server = TestServer::start_temp();
    let user = signed_in_user(&server, "ada@lab.org");
    // An OSC title change and a screen clear in a project name.
    let name = "x\u{1b}]0;owned\u{7}\u{1b}[2J";
    let stderr = user.run_err(&["project", "create", name]);
    assert!(
        stderr.contains("ERR_INVALID_INPUT") && stderr.contains("control characters"),
        "{stderr}"
    );
    assert!(
        !stderr.contains('\u{1b}') && !stderr.contains('\u{7}'),
        "{stderr:?}"
    );
    // Nothing was created.
    let listed = user.run_json(&["list", "projects"]);
    assert_eq!(listed["total"], 0, "{listed}");
}

#[test]
fn json_errors_are_json() {
    let server = TestServer::start_temp();
    let user = signed_in_user(&server, "ada@lab.org");
    let stderr = user.run_err(&["--json", "versions", "no-such-asset"]);
    let error: serde_json::Value = serde_json::from_str(stderr.trim())
        .unwrap_or_else(|e| panic!("stderr is not one JSON value ({e}): {stderr}"));
    assert_eq!(error["error"]["code"], "ERR_NOT_FOUND", "{error}");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no-such-asset"),
        "{error}"
    );
    // Without --json the same error is one line for a person.
    let out = user.run(&["versions", "no-such-asset"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("error: ") && stderr.contains("(ERR_NOT_FOUND)"),
        "{stderr}"
    );
}
