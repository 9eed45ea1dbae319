//! `dataerai-client`: how the user side talks to a Dataerai server.
//!
//! - [`api`]: [`ApiClient`], the one client of the REST API (`docs/api.md`):
//!   every call, its bearer token, and every failure turned into an
//!   [`dataerai_proto::ApiError`] with a stable `ERR_*` code.
//! - [`auth`]: the device sign-in (RFC 8628) and [`auth::TokenSource`], which
//!   hands the client the saved login's token and refreshes it under a file
//!   lock shared by every process of the user.
//! - [`credentials`]: `credentials` (0600; `DATAERAI_TOKEN` overrides it) and its lock file.
//! - [`paths`]: the config directory and private (0700) directories.
//! - [`status`]: HTTP status and transport failures → `ERR_*` codes.
//!
//! Dependencies point one way: `auth` → `api` (through the [`TokenProvider`]
//! trait the client defines) → `status`; the client never reaches into the
//! credential file itself.
//!
//! This crate must not know about transfers, the journal, the daemon or the
//! terminal: it prints nothing, keeps no state beyond the credential file,
//! and never logs a token (`Credentials` and `TokenResponse` redact them in
//! `Debug`).

pub mod api;
pub mod auth;
pub mod credentials;
pub mod paths;
pub mod status;

pub use api::{ApiClient, TokenProvider};
