//! A real `dataerai-server` process on a data directory, and the `admin`
//! commands that bootstrap it.
//!
//! Every server and admin command gets the scale-out flags of
//! [`crate::backends::backend_args`], so the same tests run on SQLite + a
//! directory and on PostgreSQL + S3. The server's stderr goes to a log file
//! that is printed when a test fails (or the server does not start).

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::backends::backend_args;
use crate::bins::bin_path;
use crate::metrics::metric_value;

/// How long a server may take to print its address (a debug build on a
/// busy two-core machine, running migrations on PostgreSQL).
pub const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The server binary built for this test run.
pub fn server_bin() -> PathBuf {
    bin_path("dataerai-server")
}

fn admin_command(data_dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(server_bin());
    cmd.arg("admin")
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .args(backend_args(data_dir))
        .env_remove("DATAERAI_DATA_DIR");
    cmd
}

/// Run `dataerai-server admin ARGS… --data-dir DIR` (plus the scale-out flags).
pub fn admin_raw(data_dir: &Path, args: &[&str]) -> Output {
    admin_command(data_dir, args).output().unwrap()
}

/// [`admin_raw`] that must succeed; answers its trimmed stdout.
#[track_caller]
pub fn admin(data_dir: &Path, args: &[&str]) -> String {
    let out = admin_raw(data_dir, args);
    assert!(
        out.status.success(),
        "admin {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Run an admin command with `stdin` as standard input (`--password-stdin`).
pub fn admin_stdin(data_dir: &Path, args: &[&str], stdin: &str) -> Output {
    output_with_stdin(admin_command(data_dir, args), stdin)
}

/// Run `cmd` to its end with `stdin` as its standard input (a password or
/// token for `--…-stdin`); answers its output.
pub fn output_with_stdin(mut cmd: Command, stdin: &str) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// The last non-empty line of an admin command's output (the token of
/// `create-token`, the id of `create-user`).
fn last_line(out: &str) -> String {
    out.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// Create a user and a token; answers (user_id, token).
pub fn make_user(data_dir: &Path, email: &str, scope: &str) -> (String, String) {
    let user_id = last_line(&admin(data_dir, &["create-user", "--email", email]));
    (user_id, create_token(data_dir, email, scope))
}

/// A new token for `email` with the given scopes (e.g. `read,write`).
#[track_caller]
pub fn create_token(data_dir: &Path, email: &str, scopes: &str) -> String {
    let token = last_line(&admin(
        data_dir,
        &["create-token", "--email", email, "--scope", scopes],
    ));
    assert!(!token.is_empty(), "create-token printed no token");
    token
}

/// Create a user with a web password (optionally a server admin); answers the user id.
#[track_caller]
pub fn make_user_with_password(
    data_dir: &Path,
    email: &str,
    password: &str,
    is_admin: bool,
) -> String {
    let mut args = vec!["create-user", "--email", email, "--password-stdin"];
    if is_admin {
        args.push("--admin");
    }
    let out = admin_stdin(data_dir, &args, &format!("{password}\n"));
    assert!(
        out.status.success(),
        "create-user --password-stdin failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    last_line(&String::from_utf8(out.stdout).unwrap())
}

/// `admin set-password EMAIL` with `password` on standard input; must succeed.
#[track_caller]
pub fn set_password(data_dir: &Path, email: &str, password: &str) {
    let out = admin_stdin(data_dir, &["set-password", email], &format!("{password}\n"));
    assert!(
        out.status.success(),
        "set-password {email} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// How to start a server: see [`TestServer::builder`].
#[derive(Clone)]
pub struct ServerBuilder {
    data_dir: PathBuf,
    listen: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
    backends: bool,
}

impl ServerBuilder {
    /// Listen on `addr` (default `127.0.0.1:0`, a spare port).
    pub fn listen(mut self, addr: &str) -> Self {
        self.listen = addr.to_string();
        self
    }

    /// Extra `serve` flags.
    pub fn args(mut self, args: &[&str]) -> Self {
        self.args.extend(args.iter().map(|s| s.to_string()));
        self
    }

    /// A config file holding `toml`, written into the data directory and
    /// passed as `--config`.
    pub fn config(self, toml: &str) -> Self {
        let path = self.data_dir.join("server.toml");
        std::fs::create_dir_all(&self.data_dir).unwrap();
        std::fs::write(&path, toml).unwrap();
        let arg = path.to_str().expect("a UTF-8 temp path").to_string();
        self.args(&["--config", &arg])
    }

    /// An environment variable for the server (`DATAERAI_FAULTS` is never
    /// inherited from the test's own environment, only set here).
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.retain(|(k, _)| k != name);
        self.env.push((name.to_string(), value.to_string()));
        self
    }

    /// `DATAERAI_FAULTS` (needs the server's `fault-injection` feature).
    pub fn faults(self, faults: &str) -> Self {
        self.env("DATAERAI_FAULTS", faults)
    }

    /// Without the scale-out flags of `DATAERAI_TEST_SERVER_ARGS` (the test
    /// names its backends itself).
    pub fn without_backend_args(mut self) -> Self {
        self.backends = false;
        self
    }

    pub fn start(self) -> TestServer {
        TestServer::spawn(self, None)
    }
}

/// A running server process; killed when dropped (its log is printed if the
/// test is failing).
pub struct TestServer {
    pub child: Child,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    pub data_dir: PathBuf,
    spec: ServerBuilder,
    log: PathBuf,
    _log_dir: tempfile::TempDir,
    /// The data directory, when the server made it itself ([`TestServer::start_temp`]).
    owned_dir: Option<tempfile::TempDir>,
}

impl TestServer {
    /// A server on `data_dir`, to be configured and started.
    pub fn builder(data_dir: &Path) -> ServerBuilder {
        ServerBuilder {
            data_dir: data_dir.to_path_buf(),
            listen: "127.0.0.1:0".into(),
            args: Vec::new(),
            env: Vec::new(),
            backends: true,
        }
    }

    pub fn start(data_dir: &Path) -> TestServer {
        Self::builder(data_dir).start()
    }

    /// A server on a fresh temporary data directory it owns (kept for
    /// restarts, removed when the server is dropped).
    pub fn start_temp() -> TestServer {
        Self::start_temp_with(|b| b)
    }

    /// [`TestServer::start_temp`] configured by `configure`.
    pub fn start_temp_with(configure: impl FnOnce(ServerBuilder) -> ServerBuilder) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let spec = configure(Self::builder(dir.path()));
        Self::spawn(spec, Some(dir))
    }

    pub fn start_with(data_dir: &Path, extra: &[&str]) -> TestServer {
        Self::builder(data_dir).args(extra).start()
    }

    /// Start with extra flags and environment (e.g. `DATAERAI_FAULTS`).
    pub fn start_env(data_dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> TestServer {
        let mut b = Self::builder(data_dir).args(extra);
        for (k, v) in env {
            b = b.env(k, v);
        }
        b.start()
    }

    /// Start with exactly these flags besides `--data-dir` and `--listen` (no
    /// `DATAERAI_TEST_SERVER_ARGS`).
    pub fn start_exact(data_dir: &Path, args: &[String], env: &[(&str, &str)]) -> TestServer {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut b = Self::builder(data_dir).without_backend_args().args(&args);
        for (k, v) in env {
            b = b.env(k, v);
        }
        b.start()
    }

    fn spawn(spec: ServerBuilder, owned_dir: Option<tempfile::TempDir>) -> TestServer {
        let log_dir = tempfile::tempdir().unwrap();
        let log = log_dir.path().join("server.log");
        let log_file = std::fs::File::create(&log).unwrap();
        let mut cmd = Command::new(server_bin());
        cmd.arg("serve")
            .arg("--data-dir")
            .arg(&spec.data_dir)
            .args(["--listen", &spec.listen]);
        if spec.backends {
            cmd.args(backend_args(&spec.data_dir));
        }
        let mut child = cmd
            .args(&spec.args)
            .env("RUST_LOG", "warn")
            .env_remove("DATAERAI_FAULTS")
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", server_bin().display()));
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        // Keeps reading stdout for the server's whole life: a pipe nobody
        // reads could fill up and stall it.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(i) = line.find("listening on ") {
                    let _ = tx.send(line[i + "listening on ".len()..].trim().to_string());
                }
            }
        });
        let started = Instant::now();
        let base = loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(base) => break base,
                Err(mpsc::RecvTimeoutError::Timeout) if started.elapsed() < START_TIMEOUT => {
                    if let Some(status) = child.try_wait().unwrap() {
                        panic!(
                            "dataerai-server exited with {status} before listening; its log:\n{}",
                            std::fs::read_to_string(&log).unwrap_or_default()
                        );
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "dataerai-server did not print its address within {START_TIMEOUT:?}; \
                         its log:\n{}",
                        std::fs::read_to_string(&log).unwrap_or_default()
                    );
                }
            }
        };
        TestServer {
            child,
            base,
            data_dir: spec.data_dir.clone(),
            spec,
            log,
            _log_dir: log_dir,
            owned_dir,
        }
    }

    /// `host:port` the server listens on.
    pub fn addr(&self) -> String {
        self.base.trim_start_matches("http://").to_string()
    }

    /// What the server wrote to stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `GET /metrics` as text.
    pub fn metrics(&self) -> String {
        let addr = self.addr();
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        write!(
            s,
            "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "GET /metrics: {answer}");
        answer
    }

    /// The value of one sample of `/metrics`, e.g. `dataerai_upload_bytes_total`
    /// or `dataerai_errors_total{code="ERR_NO_SPACE"}` (0 when absent).
    pub fn metric(&self, sample: &str) -> u64 {
        metric_value(&self.metrics(), sample)
    }

    /// Kill the server (SIGKILL); its data directory and port stay for
    /// [`TestServer::restart`].
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM: the server drains and exits on its own.
    pub fn terminate(&self) {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    }

    /// Wait for the process to exit on its own; `None` after `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM and wait for a clean exit.
    #[track_caller]
    pub fn stop(mut self) {
        self.terminate();
        let status = self.wait_exit(Duration::from_secs(10));
        let status = status.unwrap_or_else(|| panic!("server did not stop on SIGTERM"));
        assert!(status.success(), "server exited with {status}");
    }

    /// Stop the server (SIGKILL unless it already exited) and start it again
    /// on the same port, data directory and flags, with `DATAERAI_FAULTS`
    /// set to `faults` (or unset).
    pub fn restart(&mut self, faults: Option<&str>) {
        self.kill();
        let addr = self.addr();
        // The port may take a moment to be free again.
        crate::wait::wait_until("the old server's port to be free", START_TIMEOUT, || {
            std::net::TcpListener::bind(&addr).ok().map(drop)
        });
        let mut spec = self.spec.clone().listen(&addr);
        spec.env.retain(|(k, _)| k != "DATAERAI_FAULTS");
        if let Some(f) = faults {
            spec = spec.faults(f);
        }
        let owned = self.owned_dir.take();
        let fresh = TestServer::spawn(spec, owned);
        // The old process is dead already; its log directory goes with it.
        drop(std::mem::replace(self, fresh));
    }

    /// `dataerai-server admin ARGS` on this server's data directory and backends.
    #[track_caller]
    pub fn admin(&self, args: &[&str]) -> String {
        admin(&self.data_dir, args)
    }

    /// Create a user; answers its id.
    pub fn create_user(&self, email: &str) -> String {
        last_line(&self.admin(&["create-user", "--email", email]))
    }

    /// A user who can sign in on the web pages with `password`; answers its id.
    pub fn create_user_with_password(&self, email: &str, password: &str) -> String {
        make_user_with_password(&self.data_dir, email, password, false)
    }

    /// Set the quota of a user's personal allocation.
    pub fn set_user_quota(&self, email: &str, bytes: u64) {
        self.admin(&["set-quota", "--user", email, "--bytes", &bytes.to_string()]);
    }

    /// A token for `email` with the given scopes (e.g. `read,write`).
    pub fn create_token(&self, email: &str, scopes: &str) -> String {
        create_token(&self.data_dir, email, scopes)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = self.log();
            let start = log.len().saturating_sub(8000);
            let start = (start..log.len())
                .find(|&i| log.is_char_boundary(i))
                .unwrap_or(log.len());
            let tail = &log[start..];
            eprintln!("---- dataerai-server log ({}) ----\n{tail}", self.base);
        }
    }
}
