//! Where the user side keeps things on this machine, and how it makes a
//! private directory.
//!
//! - Config directory ([`config_dir`]): `$DATAERAI_CONFIG_DIR`, else
//!   `$XDG_CONFIG_HOME/dataerai`, else `~/.config/dataerai`. It holds
//!   `credentials` (see [`crate::credentials`]).
//!
//! Empty environment variables count as unset everywhere.

use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The user's config directory (not created here).
pub fn config_dir() -> PathBuf {
    if let Some(dir) = non_empty_env("DATAERAI_CONFIG_DIR") {
        return PathBuf::from(dir);
    }
    if let Some(dir) = non_empty_env("XDG_CONFIG_HOME") {
        return PathBuf::from(dir).join("dataerai");
    }
    home_dir().join(".config").join("dataerai")
}

/// The value of environment variable `name`, unless it is unset or empty.
pub fn non_empty_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// `$HOME`, else `/`.
pub fn home_dir() -> PathBuf {
    non_empty_env("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/"))
}

/// Create `dir` (and parents) if missing; the leaf gets mode 0700.
pub fn ensure_private_dir(dir: &Path) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    // `recursive` applies the mode only subject to umask; make the leaf exact.
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
}
