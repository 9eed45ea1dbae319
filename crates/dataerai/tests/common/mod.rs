//! Test harness of the CLI and daemon: real `dataerai` processes (the CLI
//! with its own config dir, the daemon on a temp socket with its own journal)
//! and a tiny line-based JSON-RPC client for the daemon socket. Servers, admin
//! commands, metrics and the web pages come from `dataerai-testkit`, so these
//! tests run on PostgreSQL + S3 too when `DATAERAI_TEST_SERVER_ARGS` is set.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub mod sign_in;
pub mod transfers;

// Each test binary uses its own part of these.
#[allow(unused_imports)]
pub use dataerai_testkit::{wait_until, TestServer};

/// The CLI/daemon binary under test.
pub fn dataerai_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_dataerai"))
}

/// A user's side: its own config dir for the `dataerai` binary.
pub struct UserEnv {
    pub config_dir: tempfile::TempDir,
}

impl UserEnv {
    pub fn new() -> UserEnv {
        UserEnv {
            config_dir: tempfile::tempdir().unwrap(),
        }
    }

    /// The socket of the daemon `dataerai upload`/`download` start for this
    /// user (the CLI hands transfers to a daemon); its journal is
    /// [`UserEnv::state_dir`].
    pub fn socket(&self) -> PathBuf {
        self.config_dir.path().join("run").join("d.sock")
    }

    pub fn state_dir(&self) -> PathBuf {
        self.config_dir.path().join("state")
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new(dataerai_bin());
        c.env("DATAERAI_CONFIG_DIR", self.config_dir.path())
            .env("DATAERAI_SOCKET", self.socket())
            .env("DATAERAI_STATE_DIR", self.state_dir())
            .env_remove("DATAERAI_LOG")
            .env_remove("DATAERAI_TOKEN")
            .env_remove("DATAERAI_SERVER")
            .stdin(Stdio::null());
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }

    pub fn run_ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "dataerai {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Run a command that must fail (exit code 1); answers its stderr.
    pub fn run_err(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(
            out.status.code(),
            Some(1),
            "dataerai {args:?} did not fail: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    pub fn run_json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.run_ok(&all);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
    }

    /// `dataerai upload PATH --title TITLE --user EXTRA…`: a personal asset.
    pub fn upload(&self, path: &Path, title: &str, extra: &[&str]) -> Output {
        self.run(&upload_args(path, title, extra))
    }

    /// [`UserEnv::upload`] that must succeed; returns its `--json` answer.
    pub fn upload_json(&self, path: &Path, title: &str, extra: &[&str]) -> Value {
        self.run_json(&upload_args(path, title, extra))
    }

    /// `dataerai upload PATH --title TITLE --project PROJECT EXTRA…` that must
    /// succeed; returns its `--json` answer.
    pub fn upload_to_project(
        &self,
        path: &Path,
        title: &str,
        project: &str,
        extra: &[&str],
    ) -> Value {
        let mut args = vec![
            "upload",
            path.to_str().unwrap(),
            "--title",
            title,
            "--project",
            project,
        ];
        args.extend_from_slice(extra);
        self.run_json(&args)
    }

    /// Upload one small personal file per title (`dir/f0.csv` holding `0`,
    /// `f1.csv`…) with `extra` flags; returns the new assets' ids in order.
    pub fn upload_titled(&self, dir: &Path, titles: &[&str], extra: &[&str]) -> Vec<String> {
        let files = titles.iter().enumerate();
        files
            .map(|(i, title)| {
                let f = write_file(dir, &format!("f{i}.csv"), format!("{i}\n"));
                asset_id(&self.upload_json(&f, title, extra))
            })
            .collect()
    }

    /// Write `data` to `dir/name` and upload it as a personal asset titled
    /// `name`; returns the `--json` answer.
    pub fn upload_new_file(&self, dir: &Path, name: &str, data: &[u8]) -> Value {
        self.upload_json(&write_file(dir, name, data), name, &[])
    }

    /// `dataerai download ASSET_ID -o DEST EXTRA…`.
    pub fn download(&self, asset_id: &str, dest: &Path, extra: &[&str]) -> Output {
        self.run(&download_args(asset_id, dest, extra))
    }

    /// [`UserEnv::download`] that must succeed; returns its `--json` answer.
    pub fn download_json(&self, asset_id: &str, dest: &Path, extra: &[&str]) -> Value {
        self.run_json(&download_args(asset_id, dest, extra))
    }

    pub fn login_with(&self, server: &str, token: &str) -> Output {
        let mut cmd = self.cmd();
        cmd.args(["auth", "login", "--server", server, "--token-stdin"]);
        dataerai_testkit::output_with_stdin(cmd, &format!("{token}\n"))
    }

    pub fn login(&self, server: &str, token: &str) {
        let out = self.login_with(server, token);
        assert!(
            out.status.success(),
            "login failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for UserEnv {
    /// Stop a daemon the CLI left running for this user (one whose CLI was
    /// killed keeps going until its transfers end).
    fn drop(&mut self) {
        let Ok(mut stream) = UnixStream::connect(self.socket()) else {
            return;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
        let req = r#"{"jsonrpc":"2.0","id":1,"method":"daemon.shutdown","params":{"force":true}}"#;
        if stream.write_all(format!("{req}\n").as_bytes()).is_ok() {
            let mut line = String::new();
            let _ = BufReader::new(stream).read_line(&mut line);
        }
    }
}

fn upload_args<'a>(path: &'a Path, title: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["upload", path.to_str().unwrap(), "--title", title, "--user"];
    args.extend_from_slice(extra);
    args
}

fn download_args<'a>(asset_id: &'a str, dest: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["download", asset_id, "-o", dest.to_str().unwrap()];
    args.extend_from_slice(extra);
    args
}

/// Where most tests start: a fresh server, `email` signed in to it from a
/// fresh user environment, and a scratch folder for the files they upload.
pub fn fresh_user(email: &str) -> (TestServer, UserEnv, tempfile::TempDir) {
    let server = TestServer::start_temp();
    let user = signed_in_user(&server, email);
    (server, user, tempfile::tempdir().unwrap())
}

/// The asset id in an upload's `--json` answer.
pub fn asset_id(answer: &Value) -> String {
    answer["asset_id"].as_str().unwrap().to_string()
}

/// Write `data` to `dir/name`; returns the path.
pub fn write_file(dir: &Path, name: &str, data: impl AsRef<[u8]>) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, data).unwrap();
    path
}

/// A new user on `server` and a token of `scopes` for them.
pub fn new_user_token(server: &TestServer, email: &str, scopes: &str) -> String {
    server.create_user(email);
    server.create_token(email, scopes)
}

/// A signed-in user on a fresh server.
pub fn signed_in_user(server: &TestServer, email: &str) -> UserEnv {
    signed_in_user_with_scopes(server, email, "read,write")
}

/// A new user on `server`, signed in with a token of `scopes` (`read,write`).
pub fn signed_in_user_with_scopes(server: &TestServer, email: &str, scopes: &str) -> UserEnv {
    let token = new_user_token(server, email, scopes);
    let user = UserEnv::new();
    user.login(&server.base, &token);
    user
}

/// Deterministic, non-repeating-ish bytes.
pub fn test_bytes(len: usize, seed: u8) -> Vec<u8> {
    let mut x: u32 = 0x9E37_79B9 ^ seed as u32;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// A running daemon on a temp socket; shut down (SIGKILL as a last resort) on drop.
pub struct TestDaemon {
    pub child: Child,
    pub socket: PathBuf,
    pub dir: tempfile::TempDir,
}

impl TestDaemon {
    pub fn start(user: &UserEnv) -> TestDaemon {
        TestDaemon::start_with_env(user, &[])
    }

    /// Start on a temp socket with extra environment (`DATAERAI_FAULTS`,
    /// `DATAERAI_LOG`, …).
    pub fn start_with_env(user: &UserEnv, env: &[(&str, &str)]) -> TestDaemon {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("run").join("d.sock");
        TestDaemon::start_full(user, dir, socket, &[], env)
    }

    pub fn start_at(user: &UserEnv, dir: tempfile::TempDir, socket: PathBuf) -> TestDaemon {
        TestDaemon::start_full(user, dir, socket, &[], &[])
    }

    /// Start with extra `dataerai daemon` arguments and environment. The journal
    /// lives in `dir/state`, so a daemon started again on the same `dir` resumes.
    pub fn start_full(
        user: &UserEnv,
        dir: tempfile::TempDir,
        socket: PathBuf,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> TestDaemon {
        let mut cmd = user.cmd();
        cmd.arg("daemon")
            .arg("--socket")
            .arg(&socket)
            .args(args)
            .env("DATAERAI_STATE_DIR", dir.path().join("state"))
            .env_remove("DATAERAI_FAULTS")
            .env("DATAERAI_LOG", "info");
        // Logs go to a file (a pipe nobody reads could fill up and stall the daemon).
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.path().join("daemon.log"))
            .unwrap();
        cmd.stderr(log);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while UnixStream::connect(&socket).is_err() {
            assert!(
                Instant::now() < deadline,
                "daemon did not start on {}",
                socket.display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        TestDaemon { child, socket, dir }
    }

    pub fn connect(&self) -> RpcClient {
        RpcClient::connect(&self.socket)
    }

    /// Wait for the process to exit; returns its exit code.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st.code();
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl TestDaemon {
    /// SIGTERM: the daemon shuts down on its own (see [`TestDaemon::wait_exit`]).
    pub fn terminate(&self) {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    }

    /// `kill -9` the daemon, leaving its socket file and journal behind.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Start a new daemon on the same socket and journal (after [`TestDaemon::kill9`]).
    pub fn restart(&mut self, user: &UserEnv, args: &[&str], env: &[(&str, &str)]) {
        self.kill9();
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap());
        let fresh = TestDaemon::start_full(user, dir, self.socket.clone(), args, env);
        let old = std::mem::replace(self, fresh);
        drop(old);
    }
}

impl Drop for TestDaemon {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // Show what the daemon saw when a test fails.
            let log =
                std::fs::read_to_string(self.dir.path().join("daemon.log")).unwrap_or_default();
            eprintln!("---- daemon log ----\n{log}");
        }
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Minimal JSON-RPC client: sends requests, collects notifications.
pub struct RpcClient {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    next_id: u64,
    /// Notifications received while waiting for responses, in order.
    pub notifications: Vec<Value>,
    /// Every message received, in order (responses and notifications).
    pub log: Vec<Value>,
}

impl RpcClient {
    pub fn connect(path: &Path) -> RpcClient {
        let s = UnixStream::connect(path).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        RpcClient {
            reader: BufReader::new(s.try_clone().unwrap()),
            writer: s,
            next_id: 1,
            notifications: Vec::new(),
            log: Vec::new(),
        }
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).unwrap();
    }

    /// Read one message (a line) from the daemon.
    pub fn read_message(&mut self) -> Value {
        let mut line = String::new();
        let n = self.reader.read_line(&mut line).expect("read from daemon");
        assert!(n > 0, "daemon closed the connection");
        let v: Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("bad line ({e}): {line}"));
        self.log.push(v.clone());
        v
    }

    /// Read until a response (a message with an `id`) arrives.
    pub fn read_response(&mut self) -> Value {
        loop {
            let v = self.read_message();
            if v.get("method").is_some() && v.get("id").is_none() {
                self.notifications.push(v);
            } else {
                return v;
            }
        }
    }

    /// Send a request without waiting for its answer (for a daemon that is
    /// meant to die first); returns its id.
    pub fn send(&mut self, method: &str, params: Value) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        let req = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        self.send_raw(format!("{req}\n").as_bytes());
        id
    }

    /// Send a request and return the whole response object.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.send(method, params);
        loop {
            let v = self.read_response();
            if v["id"] == json!(id) {
                return v;
            }
        }
    }

    /// `call` that must succeed; returns `result`.
    pub fn ok(&mut self, method: &str, params: Value) -> Value {
        let v = self.call(method, params);
        assert!(v.get("error").is_none(), "{method} failed: {v}");
        v["result"].clone()
    }

    /// `call` that must fail; returns (`error.code`, `error.data.code`).
    pub fn err(&mut self, method: &str, params: Value) -> (i64, String) {
        let v = self.call(method, params);
        let e = &v["error"];
        assert!(e.is_object(), "{method} should have failed: {v}");
        (
            e["code"].as_i64().unwrap(),
            e["data"]["code"].as_str().unwrap().to_string(),
        )
    }

    /// `call` that must fail; returns (`error.message`, `error.data.code`).
    pub fn err_msg(&mut self, method: &str, params: Value) -> (String, String) {
        let v = self.call(method, params);
        let e = &v["error"];
        assert!(e.is_object(), "{method} should have failed: {v}");
        (
            e["message"].as_str().unwrap_or_default().to_string(),
            e["data"]["code"].as_str().unwrap().to_string(),
        )
    }

    /// Wait for the first notification matching `pred` (already received ones count).
    pub fn wait_for(&mut self, pred: impl Fn(&Value) -> bool) -> Value {
        loop {
            if let Some(n) = self.notifications.iter().find(|n| pred(n)) {
                return n.clone();
            }
            let v = self.read_message();
            if v.get("id").is_none() {
                self.notifications.push(v);
            }
        }
    }

    /// Wait until a `transfer.completed`/`transfer.failed` for `transfer_id` has arrived.
    pub fn wait_transfer_end(&mut self, transfer_id: &str) -> Value {
        loop {
            if let Some(n) = self.notifications.iter().find(|n| {
                n["params"]["transfer_id"] == transfer_id
                    && (n["method"] == "transfer.completed" || n["method"] == "transfer.failed")
            }) {
                return n.clone();
            }
            let v = self.read_message();
            if v.get("id").is_none() {
                self.notifications.push(v);
            }
        }
    }
}

/// Read a whole file, for comparisons.
pub fn read(path: impl AsRef<Path>) -> Vec<u8> {
    let mut v = Vec::new();
    std::fs::File::open(path)
        .unwrap()
        .read_to_end(&mut v)
        .unwrap();
    v
}

/// Start a daemon whose log is at debug level (to check what it logs).
pub fn debug_daemon(user: &UserEnv) -> TestDaemon {
    TestDaemon::start_with_env(user, &[("DATAERAI_LOG", "debug")])
}

/// What the daemon logged so far.
pub fn daemon_log(d: &TestDaemon) -> String {
    std::fs::read_to_string(d.dir.path().join("daemon.log")).unwrap_or_default()
}

/// The temporary files of downloads in progress directly in `dir`
/// (`.dataerai-partial-<random>`), sorted.
pub fn partial_files(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .map(|e| e.unwrap().path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(".dataerai-partial-"))
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    found.sort();
    found
}
