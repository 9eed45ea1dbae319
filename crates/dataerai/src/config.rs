//! Where the daemon's socket lives (rules from `docs/ipc.md`). The config
//! directory and the credentials are `dataerai_client`'s
//! ([`dataerai_client::paths`], [`dataerai_client::credentials`]); the state
//! directory is the journal's ([`dataerai_transfer::journal::default_state_dir`]).

use std::path::PathBuf;

use dataerai_client::paths::{home_dir, non_empty_env};

/// File name of the daemon socket inside its directory.
pub const SOCKET_NAME: &str = "dataerai-transfer.sock";

/// Default daemon socket: `$DATAERAI_SOCKET`, else `$XDG_RUNTIME_DIR/…`, else
/// `/run/user/<uid>/…` when that directory exists, else a private directory under
/// `$HOME/.local/state/dataerai/run/` (never a world-writable one such as /tmp).
pub fn default_socket_path() -> PathBuf {
    if let Some(p) = non_empty_env("DATAERAI_SOCKET") {
        return PathBuf::from(p);
    }
    if let Some(dir) = non_empty_env("XDG_RUNTIME_DIR") {
        return PathBuf::from(dir).join(SOCKET_NAME);
    }
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    let run = PathBuf::from(format!("/run/user/{uid}"));
    if run.is_dir() {
        return run.join(SOCKET_NAME);
    }
    home_dir()
        .join(".local/state/dataerai/run")
        .join(SOCKET_NAME)
}
