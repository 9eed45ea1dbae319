//! Test harness: real `dataerai-server` and `dataerai` processes on temp dirs,
//! plus a tiny line-based JSON-RPC client for the daemon socket.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub mod issue3;
pub mod issue4;

pub fn dataerai_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_dataerai"))
}

pub fn server_bin() -> PathBuf {
    if let Ok(p) = std::env::var("DATAERAI_SERVER_BIN") {
        return PathBuf::from(p);
    }
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/debug/dataerai-server");
    assert!(
        p.exists(),
        "{} not found: run `cargo build -p dataerai-server` first (or set DATAERAI_SERVER_BIN)",
        p.display()
    );
    p
}

/// A running `dataerai-server` on a temp data dir; killed on drop.
pub struct TestServer {
    child: Child,
    pub url: String,
    pub data_dir: tempfile::TempDir,
}

impl TestServer {
    pub fn start() -> TestServer {
        TestServer::start_with(tempfile::tempdir().unwrap(), "127.0.0.1:0", None)
    }

    /// Start on `listen` with a data dir (possibly of an earlier server) and an
    /// optional `DATAERAI_FAULTS` value (needs the server's `fault-injection`).
    pub fn start_with(
        data_dir: tempfile::TempDir,
        listen: &str,
        faults: Option<&str>,
    ) -> TestServer {
        TestServer::start_args(data_dir, listen, faults, &[])
    }

    /// Like [`TestServer::start_with`], with extra `serve` arguments.
    pub fn start_args(
        data_dir: tempfile::TempDir,
        listen: &str,
        faults: Option<&str>,
        extra: &[&str],
    ) -> TestServer {
        let mut cmd = Command::new(server_bin());
        cmd.args(["serve", "--data-dir"])
            .arg(data_dir.path())
            .args(["--listen", listen])
            .args(extra)
            .env_remove("DATAERAI_FAULTS")
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if let Some(f) = faults {
            cmd.env("DATAERAI_FAULTS", f);
        }
        let mut child = cmd.spawn().expect("start dataerai-server");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(i) = line.find("listening on ") {
                    let _ = tx.send(line[i + "listening on ".len()..].trim().to_string());
                }
            }
        });
        let url = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("server did not report its address");
        TestServer {
            child,
            url,
            data_dir,
        }
    }

    /// `host:port` the server listens on.
    pub fn addr(&self) -> String {
        self.url.trim_start_matches("http://").to_string()
    }

    /// Kill the server (SIGKILL) and start it again on the same port and data
    /// dir, with `faults` (or none).
    pub fn restart(&mut self, faults: Option<&str>) {
        self.kill();
        let addr = self.addr();
        let deadline = Instant::now() + Duration::from_secs(20);
        // The port may take a moment to be free again.
        while std::net::TcpListener::bind(&addr).is_err() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let data_dir = std::mem::replace(&mut self.data_dir, tempfile::tempdir().unwrap());
        let fresh = TestServer::start_with(data_dir, &addr, faults);
        let old = std::mem::replace(self, fresh);
        drop(old); // its child is already dead; its temp dir is the unused placeholder
    }

    /// Stop the server (SIGKILL) but keep its data dir and port for [`TestServer::start_with`].
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Value of a counter of `GET /metrics` (0 when absent).
    pub fn metric(&self, name: &str) -> u64 {
        let mut s = std::net::TcpStream::connect(self.addr()).unwrap();
        write!(
            s,
            "GET /metrics HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.addr()
        )
        .unwrap();
        let mut body = String::new();
        s.read_to_string(&mut body).unwrap();
        body.lines()
            .find_map(|l| {
                let (k, v) = l.split_once(' ')?;
                (k == name).then(|| v.trim().parse::<f64>().ok())?
            })
            .map(|v| v as u64)
            .unwrap_or(0)
    }

    fn admin(&self, args: &[&str]) -> String {
        let out = Command::new(server_bin())
            .arg("admin")
            .arg(args[0])
            .arg("--data-dir")
            .arg(self.data_dir.path())
            .args(&args[1..])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "admin {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn create_user(&self, email: &str) {
        self.admin(&["create-user", "--email", email]);
    }

    /// Set the quota of a user's personal allocation.
    pub fn set_user_quota(&self, email: &str, bytes: u64) {
        self.admin(&["set-quota", "--user", email, "--bytes", &bytes.to_string()]);
    }

    /// A token for `email` with the given scopes (e.g. `read,write`).
    pub fn create_token(&self, email: &str, scopes: &str) -> String {
        let out = self.admin(&["create-token", "--email", email, "--scope", scopes]);
        out.lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .expect("token printed")
            .trim()
            .to_string()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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

    pub fn cmd(&self) -> Command {
        let mut c = Command::new(dataerai_bin());
        c.env("DATAERAI_CONFIG_DIR", self.config_dir.path())
            .env_remove("DATAERAI_SOCKET")
            .env_remove("DATAERAI_LOG")
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

    pub fn run_json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.run_ok(&all);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
    }

    pub fn login_with(&self, server: &str, token: &str) -> Output {
        let mut child = self
            .cmd()
            .args(["auth", "login", "--server", server, "--token-stdin"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{token}\n").as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
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

/// A signed-in user on a fresh server.
pub fn signed_in_user(server: &TestServer, email: &str) -> UserEnv {
    server.create_user(email);
    let token = server.create_token(email, "read,write");
    let user = UserEnv::new();
    user.login(&server.url, &token);
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
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("run").join("d.sock");
        TestDaemon::start_at(user, dir, socket)
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

    /// Send a request and return the whole response object.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let req = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        self.send_raw(format!("{req}\n").as_bytes());
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
