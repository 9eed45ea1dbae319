//! The saved credentials: `credentials` (JSON, mode 0600) in the config
//! directory ([`crate::paths::config_dir`], mode 0700), and the lock file that
//! serialises token refreshes across processes.
//!
//! Credentials are read from disk on every use (never cached) so that the daemon
//! picks up `dataerai auth login` / `logout` without a restart.
//!
//! - `DATAERAI_TOKEN` in the environment (with `DATAERAI_SERVER`, or the saved
//!   login's server) replaces the saved login for this process and whatever it
//!   starts; it is never written to disk and never refreshed.
//! - The file's fields are `access_token, refresh_token, server_url,
//!   user_email` and the rest of [`Credentials`]. The file of earlier versions,
//!   `credentials.json` (`token`, `server`), is moved to the new name and
//!   format the first time it is read.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use chrono::{DateTime, Utc};
use dataerai_proto::{ApiError, ErrorCode};
use serde::{Deserialize, Serialize};

use crate::paths::{ensure_private_dir, non_empty_env};

/// Name of the credential file inside the config directory.
pub const CREDENTIALS_FILE: &str = "credentials";
/// The credential file of earlier versions, migrated on first read.
pub const LEGACY_CREDENTIALS_FILE: &str = "credentials.json";
/// A bearer token that replaces the saved login (never saved).
pub const TOKEN_ENV: &str = "DATAERAI_TOKEN";
/// The server of [`TOKEN_ENV`] (and the default of `auth login --server`).
pub const SERVER_ENV: &str = "DATAERAI_SERVER";

/// Name of the lock file beside the credentials: whoever refreshes an OAuth
/// token holds an exclusive `flock` on it, so two processes never both spend
/// the same (single-use) refresh token.
pub const CREDENTIALS_LOCK_FILE: &str = "credentials.lock";

/// `token_kind` of a personal access token (pasted with `--token-stdin`).
pub const TOKEN_KIND_PAT: &str = "pat";
/// `token_kind` of a device-flow login (access + rotating refresh token).
pub const TOKEN_KIND_OAUTH: &str = "oauth";
/// `token_kind` of a token from [`TOKEN_ENV`] (never on disk).
pub const TOKEN_KIND_ENV: &str = "env";

/// Contents of the credential file. Files written before device sign-in
/// existed have only the first five fields; they are personal access tokens.
/// `server` and `token` are written as `server_url` and `access_token` (the
/// names of earlier files, `server` and `token`, are read too).
#[derive(Clone, Serialize, Deserialize)]
pub struct Credentials {
    #[serde(rename = "server_url", alias = "server")]
    pub server: String,
    /// The bearer token: a PAT, or the current OAuth access token.
    #[serde(rename = "access_token", alias = "token")]
    pub token: String,
    pub user_id: String,
    pub user_email: String,
    /// When `token` expires (`None`: never).
    pub expires_at: Option<DateTime<Utc>>,
    /// [`TOKEN_KIND_PAT`] or [`TOKEN_KIND_OAUTH`]; absent means a PAT.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_kind: Option<String>,
    /// The OAuth refresh token (single use: each refresh rotates it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_expires_at: Option<DateTime<Utc>>,
    /// When the access token was issued; with `expires_at` it gives the
    /// token's lifetime, which decides how early to refresh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_at: Option<DateTime<Utc>>,
}

impl Credentials {
    /// A personal access token as `--token-stdin` saves it.
    pub fn pat(
        server: String,
        token: String,
        user_id: String,
        user_email: String,
        expires_at: Option<DateTime<Utc>>,
    ) -> Credentials {
        Credentials {
            server,
            token,
            user_id,
            user_email,
            expires_at,
            token_kind: Some(TOKEN_KIND_PAT.into()),
            refresh_token: None,
            refresh_expires_at: None,
            issued_at: None,
        }
    }

    /// `"pat"`, `"oauth"` or `"env"`.
    pub fn kind(&self) -> &str {
        match self.token_kind.as_deref() {
            Some(TOKEN_KIND_OAUTH) => TOKEN_KIND_OAUTH,
            Some(TOKEN_KIND_ENV) => TOKEN_KIND_ENV,
            _ => TOKEN_KIND_PAT,
        }
    }

    pub fn is_oauth(&self) -> bool {
        self.kind() == TOKEN_KIND_OAUTH
    }
}

// Hand-written so the token never ends up in a log line or a panic message.
impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("server", &self.server)
            .field("token", &"<redacted>")
            .field("token_kind", &self.token_kind)
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "<redacted>"),
            )
            .field("refresh_expires_at", &self.refresh_expires_at)
            .field("user_id", &self.user_id)
            .field("user_email", &self.user_email)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Error returned whenever an operation needs credentials and there are none.
pub fn auth_required() -> ApiError {
    ApiError::new(
        ErrorCode::AuthRequired,
        "not signed in: run `dataerai auth login --server URL`",
    )
}

/// The credentials to use: [`TOKEN_ENV`] when set, else the saved login in
/// `dir` (migrated from [`LEGACY_CREDENTIALS_FILE`] on first read). None →
/// `ERR_AUTH_REQUIRED`.
pub fn load_credentials(dir: &Path) -> Result<Credentials, ApiError> {
    match non_empty_env(TOKEN_ENV) {
        Some(token) => environment_credentials(dir, token),
        None => load_saved_credentials(dir),
    }
}

/// A login from the environment: the token, for `DATAERAI_SERVER` or the
/// saved login's server. Who it belongs to is the server's to say (`/me`).
fn environment_credentials(dir: &Path, token: String) -> Result<Credentials, ApiError> {
    let server = match non_empty_env(SERVER_ENV) {
        Some(server) => server,
        None => load_saved_credentials(dir).map(|c| c.server).map_err(|_| {
            ApiError::new(
                ErrorCode::AuthRequired,
                format!("{TOKEN_ENV} is set but no server is known: set {SERVER_ENV} too"),
            )
        })?,
    };
    Ok(Credentials {
        server,
        token,
        user_id: String::new(),
        user_email: String::new(),
        expires_at: None,
        token_kind: Some(TOKEN_KIND_ENV.into()),
        refresh_token: None,
        refresh_expires_at: None,
        issued_at: None,
    })
}

/// The saved login in `dir`, ignoring the environment.
pub fn load_saved_credentials(dir: &Path) -> Result<Credentials, ApiError> {
    let path = dir.join(CREDENTIALS_FILE);
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return migrate_legacy(dir),
        Err(e) => {
            return Err(ApiError::internal(format!(
                "cannot read {}: {e}",
                path.display()
            )))
        }
    };
    parse_credentials(&path, &text)
}

fn parse_credentials(path: &Path, text: &str) -> Result<Credentials, ApiError> {
    serde_json::from_str(text).map_err(|e| {
        ApiError::new(
            ErrorCode::AuthRequired,
            format!(
                "credential file {} is damaged ({e}): run `dataerai auth login --server URL`",
                path.display()
            ),
        )
    })
}

/// Move `credentials.json` of earlier versions to [`CREDENTIALS_FILE`] in the
/// new format (written 0600 like every save, then the old file removed).
/// Two processes migrating at once both write the same login atomically.
fn migrate_legacy(dir: &Path) -> Result<Credentials, ApiError> {
    let legacy = dir.join(LEGACY_CREDENTIALS_FILE);
    let text = match fs::read_to_string(&legacy) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(auth_required()),
        Err(e) => {
            return Err(ApiError::internal(format!(
                "cannot read {}: {e}",
                legacy.display()
            )))
        }
    };
    let creds = parse_credentials(&legacy, &text)?;
    save_credentials(dir, &creds).map_err(|e| {
        ApiError::internal(format!(
            "cannot move {} to {}: {e}",
            legacy.display(),
            dir.join(CREDENTIALS_FILE).display()
        ))
    })?;
    if let Err(e) = fs::remove_file(&legacy) {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!("cannot remove {}: {e}", legacy.display());
        }
    }
    Ok(creds)
}

/// Save the credentials atomically (temp file + rename) with mode 0600 in a
/// 0700 directory. A login from the environment is never saved.
pub fn save_credentials(dir: &Path, creds: &Credentials) -> std::io::Result<()> {
    if creds.kind() == TOKEN_KIND_ENV {
        return Err(std::io::Error::other(format!(
            "a token from {TOKEN_ENV} is never saved"
        )));
    }
    ensure_private_dir(dir)?;
    let path = dir.join(CREDENTIALS_FILE);
    let tmp = dir.join(format!(".{CREDENTIALS_FILE}.{}.tmp", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        // The mode given to open() is filtered by umask and ignored for an existing file.
        f.set_permissions(fs::Permissions::from_mode(0o600))?;
        let body = serde_json::to_vec_pretty(creds).map_err(std::io::Error::other)?;
        f.write_all(&body)?;
        f.sync_all()?;
        fs::rename(&tmp, &path)
    };
    let res = write();
    if res.is_err() {
        // The write's own error is what the caller needs; a temp file we
        // cannot remove either is only litter, so it is logged.
        if let Err(e) = fs::remove_file(&tmp) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!("cannot remove {}: {e}", tmp.display());
            }
        }
    }
    res
}

/// An exclusive `flock` on [`CREDENTIALS_LOCK_FILE`]; released on drop (when
/// the file is closed). Blocks until the lock is free: call it off the async
/// runtime's worker threads (`spawn_blocking`).
pub struct CredentialsLock {
    _file: fs::File,
}

pub fn lock_credentials(dir: &Path) -> std::io::Result<CredentialsLock> {
    ensure_private_dir(dir)?;
    let file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(dir.join(CREDENTIALS_LOCK_FILE))?;
    loop {
        // SAFETY: flock on a descriptor we own; no memory is involved.
        let rc = unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&file), libc::LOCK_EX) };
        if rc == 0 {
            return Ok(CredentialsLock { _file: file });
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// Remove the saved credentials (and a not yet migrated file of an earlier
/// version). Returns whether there were any.
pub fn remove_credentials(dir: &Path) -> std::io::Result<bool> {
    let mut had = false;
    for name in [CREDENTIALS_FILE, LEGACY_CREDENTIALS_FILE] {
        match fs::remove_file(dir.join(name)) {
            Ok(()) => had = true,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(had)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Credentials {
        Credentials {
            server: "http://127.0.0.1:1".into(),
            token: "secret-token".into(),
            user_id: "u1".into(),
            user_email: "a@b.c".into(),
            expires_at: None,
            token_kind: Some(TOKEN_KIND_OAUTH.into()),
            refresh_token: Some("secret-refresh".into()),
            refresh_expires_at: None,
            issued_at: None,
        }
    }

    #[test]
    fn credentials_are_private_and_round_trip() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("cfg");
        save_credentials(&dir, &sample()).unwrap();
        let mode = fs::metadata(dir.join(CREDENTIALS_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let dmode = fs::metadata(&dir).unwrap().permissions().mode();
        assert_eq!(dmode & 0o777, 0o700);
        let back = load_credentials(&dir).unwrap();
        assert_eq!(back.token, "secret-token");
        assert_eq!(back.user_email, "a@b.c");
        // Overwriting keeps the mode and leaves no temp file behind.
        save_credentials(&dir, &sample()).unwrap();
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
        assert!(remove_credentials(&dir).unwrap());
        assert_eq!(
            load_credentials(&dir).unwrap_err().code,
            ErrorCode::AuthRequired
        );
    }

    #[test]
    fn files_of_earlier_versions_are_migrated_on_first_read() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("cfg");
        ensure_private_dir(&dir).unwrap();
        let legacy = dir.join(LEGACY_CREDENTIALS_FILE);
        fs::write(
            &legacy,
            r#"{"server":"http://x","token":"t","user_id":"u","user_email":"e@x","expires_at":null,
                "token_kind":"oauth","refresh_token":"r"}"#,
        )
        .unwrap();
        let c = load_saved_credentials(&dir).unwrap();
        assert_eq!((c.server.as_str(), c.token.as_str()), ("http://x", "t"));
        assert!(!legacy.exists());
        let path = dir.join(CREDENTIALS_FILE);
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let saved: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
        for key in ["access_token", "refresh_token", "server_url", "user_email"] {
            assert!(saved[key].is_string(), "{key} missing from {saved}");
        }
        assert!(saved.get("token").is_none() && saved.get("server").is_none());
        assert_eq!(
            load_saved_credentials(&dir)
                .unwrap()
                .refresh_token
                .as_deref(),
            Some("r")
        );
    }

    #[test]
    fn debug_hides_token() {
        let d = format!("{:?}", sample());
        assert!(!d.contains("secret-token"), "{d}");
        assert!(!d.contains("secret-refresh"), "{d}");
    }

    #[test]
    fn old_credential_files_are_pats() {
        let c: Credentials = serde_json::from_str(
            r#"{"server":"http://x","token":"t","user_id":"u","user_email":"e","expires_at":null}"#,
        )
        .unwrap();
        assert_eq!(c.kind(), TOKEN_KIND_PAT);
        assert!(c.refresh_token.is_none());
        assert!(sample().is_oauth());
    }

    #[test]
    fn lock_is_exclusive_across_open_files() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let held = lock_credentials(&dir).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let d2 = dir.clone();
        let t = std::thread::spawn(move || {
            let _l = lock_credentials(&d2).unwrap();
            tx.send(()).unwrap();
        });
        // The second locker must wait while the first one holds the lock.
        assert!(rx
            .recv_timeout(std::time::Duration::from_millis(200))
            .is_err());
        drop(held);
        rx.recv_timeout(std::time::Duration::from_secs(5)).unwrap();
        t.join().unwrap();
        let mode = fs::metadata(dir.join(CREDENTIALS_LOCK_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
