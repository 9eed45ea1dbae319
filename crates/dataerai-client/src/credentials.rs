//! The saved credentials: `credentials.json` (mode 0600) in the config
//! directory ([`crate::paths::config_dir`], mode 0700), and the lock file that
//! serialises token refreshes across processes.
//!
//! Credentials are read from disk on every use (never cached) so that the daemon
//! picks up `dataerai auth login` / `logout` without a restart.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use chrono::{DateTime, Utc};
use dataerai_proto::{ApiError, ErrorCode};
use serde::{Deserialize, Serialize};

use crate::paths::ensure_private_dir;

/// Name of the credential file inside the config directory.
pub const CREDENTIALS_FILE: &str = "credentials.json";

/// Name of the lock file beside the credentials: whoever refreshes an OAuth
/// token holds an exclusive `flock` on it, so two processes never both spend
/// the same (single-use) refresh token.
pub const CREDENTIALS_LOCK_FILE: &str = "credentials.lock";

/// `token_kind` of a personal access token (pasted with `--token-stdin`).
pub const TOKEN_KIND_PAT: &str = "pat";
/// `token_kind` of a device-flow login (access + rotating refresh token).
pub const TOKEN_KIND_OAUTH: &str = "oauth";

/// Contents of `credentials.json`. Files written before device sign-in existed
/// have only the first five fields; they are personal access tokens.
#[derive(Clone, Serialize, Deserialize)]
pub struct Credentials {
    pub server: String,
    /// The bearer token: a PAT, or the current OAuth access token.
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

    /// `"pat"` or `"oauth"`.
    pub fn kind(&self) -> &str {
        match self.token_kind.as_deref() {
            Some(TOKEN_KIND_OAUTH) => TOKEN_KIND_OAUTH,
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

/// Load the credentials from `dir`. Missing file → `ERR_AUTH_REQUIRED`.
pub fn load_credentials(dir: &Path) -> Result<Credentials, ApiError> {
    let path = dir.join(CREDENTIALS_FILE);
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(auth_required()),
        Err(e) => {
            return Err(ApiError::internal(format!(
                "cannot read {}: {e}",
                path.display()
            )))
        }
    };
    serde_json::from_str(&text).map_err(|e| {
        ApiError::new(
            ErrorCode::AuthRequired,
            format!(
                "credential file {} is damaged ({e}): run `dataerai auth login --server URL`",
                path.display()
            ),
        )
    })
}

/// Save the credentials atomically (temp file + rename) with mode 0600 in a 0700 directory.
pub fn save_credentials(dir: &Path, creds: &Credentials) -> std::io::Result<()> {
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

/// Remove the credentials. Returns whether there were any.
pub fn remove_credentials(dir: &Path) -> std::io::Result<bool> {
    match fs::remove_file(dir.join(CREDENTIALS_FILE)) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
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
