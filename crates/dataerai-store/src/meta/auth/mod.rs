//! Sign-in state: passwords, personal access tokens, browser sessions, device
//! codes (RFC 8628), rotating refresh tokens, sign-in failures, project members
//! and the audit log.
//!
//! Everything lives in the database so that any number of server replicas can
//! answer any request (a device code approved on one replica is redeemed on
//! another; sign-in failures are counted across replicas).
//!
//! The parts, each written once for both backends:
//! - this file: the [`AuthStore`] trait and its records;
//! - [`rules`]: the decisions (device-poll pacing, refresh-token reuse,
//!   last-owner protection, the sign-in rate limit), plain functions that
//!   never touch a database;
//! - `store`: the one implementation of [`AuthStore`], its SQL (with `$n`
//!   placeholders, which SQLite understands too) and its row structs;
//! - `db`: the only place that tells the backends apart: how a write
//!   transaction starts, whether `SELECT`s lock rows, and how a query is sent;
//! - `timestamp`: times are `DateTime<Utc>` in Rust, `TIMESTAMPTZ` in
//!   PostgreSQL and fixed-width RFC 3339 text in SQLite (text order = time order).

mod admin;
mod db;
pub mod rules;
mod store;

#[cfg(test)]
mod migration_tests;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use dataerai_proto::api::{Allocation, AuditEvent, Member, OwnerType, ProjectRole};
use serde_json::{Map, Value};

use super::Window;
use crate::error::Result;

pub use rules::SignInLimit;

/// A user's sign-in data.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserAuth {
    #[sqlx(rename = "id")]
    pub user_id: String,
    pub email: String,
    /// Argon2id PHC string; `None` until a password is set.
    pub password_hash: Option<String>,
    pub is_admin: bool,
    /// Disabled by a server administrator: may not sign in.
    pub disabled: bool,
}

/// A user as `dataerai-server admin list-users` shows them.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserListing {
    pub user_id: String,
    pub email: String,
    pub created_at: DateTime<Utc>,
    pub is_admin: bool,
    /// Whether a web sign-in password is set.
    pub has_password: bool,
    /// Added to a project before an account existed for the email; becomes
    /// an ordinary account when an administrator creates the user.
    pub invited: bool,
    pub disabled_at: Option<DateTime<Utc>>,
    /// The newest web sign-in (`auth.sign_in` in the audit log), if any.
    pub last_sign_in_at: Option<DateTime<Utc>>,
}

/// Which audit events [`AuthStore::find_audit`] answers; every field given
/// must match (`None`: any).
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// The exact action, e.g. `user.disabled`.
    pub action: Option<String>,
    /// The acting user's email (exact, case-insensitive).
    pub actor_email: Option<String>,
    /// Events about this project: its own (`target_type = project`) and those
    /// whose details name it (`project_id`, or `owner_type`/`owner_id`).
    pub project_id: Option<String>,
}

/// An audit event with the acting user's email (when the user still exists).
#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub event: AuditEvent,
    pub actor_email: Option<String>,
}

/// What the server's allocations hold, as counted against quotas.
#[derive(Debug, Clone, Default)]
pub struct StorageUsage {
    pub allocations: u64,
    pub used_bytes: u64,
    pub reserved_bytes: u64,
    pub file_count: u64,
    /// The fullest allocations (used + reserved bytes), largest first.
    pub top: Vec<AllocationUsage>,
}

/// One allocation with whom it belongs to.
#[derive(Debug, Clone)]
pub struct AllocationUsage {
    pub owner_type: OwnerType,
    pub owner_id: String,
    /// The project's name or the user's email.
    pub owner_name: String,
    pub allocation: Allocation,
}

/// A personal access token as listed on the `/tokens` page (never the token).
#[derive(Debug, Clone)]
pub struct TokenInfo {
    pub token_id: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked: bool,
}

/// A browser session.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionRecord {
    pub user_id: String,
    pub email: String,
    pub is_admin: bool,
    /// Bound to the session; every form must echo it.
    pub csrf_token: String,
    pub expires_at: DateTime<Utc>,
}

/// Sign-in failures inside a window, per email and per client address, with
/// the oldest failure of each (to compute `Retry-After`).
#[derive(Debug, Clone, Copy, Default)]
pub struct FailureCounts {
    pub by_email: u64,
    pub oldest_by_email: Option<DateTime<Utc>>,
    pub by_addr: u64,
    pub oldest_by_addr: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
pub struct NewDeviceCode {
    /// BLAKE3 hex of the device code (the code itself is never stored).
    pub device_hash: String,
    pub user_code: String,
    pub client_id: String,
    pub scopes: Vec<String>,
    pub interval_s: i64,
    pub now: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// A device authorization as the `/device` page shows it.
#[derive(Debug, Clone)]
pub struct DeviceRecord {
    pub user_code: String,
    pub client_id: String,
    pub scopes: Vec<String>,
    /// `pending`, `approved`, `denied`, `consumed`.
    pub status: String,
    pub expires_at: DateTime<Utc>,
}

impl DeviceRecord {
    /// Whether the code can still be approved or denied at `now` (the same
    /// rule [`AuthStore::decide_device`] applies).
    pub fn awaits_decision(&self, now: DateTime<Utc>) -> bool {
        rules::awaits_decision(&self.status, self.expires_at, now)
    }
}

/// Tokens the server minted for a grant; stored (hashed) only if the grant
/// succeeds.
#[derive(Debug, Clone)]
pub struct IssuedTokens {
    pub access_hash: String,
    pub access_expires_at: DateTime<Utc>,
    pub refresh_hash: String,
    pub refresh_expires_at: DateTime<Utc>,
    /// Name of the access token row (e.g. `device login (dataerai-cli)`).
    pub name: String,
}

/// Outcome of polling `/oauth/token` with a device code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DevicePoll {
    /// Unknown or already redeemed device code.
    Invalid,
    Pending,
    /// Polled faster than the interval (which has now grown by 5 s).
    SlowDown,
    Denied,
    Expired,
    /// Approved: the tokens were stored; these are the granted scopes.
    Issued {
        user_id: String,
        scopes: Vec<String>,
    },
}

/// Outcome of presenting a refresh token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// Unknown, expired or revoked.
    Invalid,
    /// Already rotated: the whole family (refresh and access tokens) is now revoked.
    Reused,
    Rotated {
        user_id: String,
        scopes: Vec<String>,
    },
}

#[derive(Debug, Clone, Default)]
pub struct NewAuditEvent {
    pub actor_user_id: Option<String>,
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub details: Map<String, Value>,
    pub client_addr: Option<String>,
}

/// The sign-in part of the metadata store (see the module docs). Times are
/// the caller's clock (`now`), so tests can move it.
#[async_trait]
pub trait AuthStore: Send + Sync {
    async fn user_auth_by_email(&self, email: &str) -> Result<Option<UserAuth>>;
    async fn user_auth_by_id(&self, user_id: &str) -> Result<Option<UserAuth>>;
    /// `NotFound` for an unknown user.
    async fn set_password(&self, user_id: &str, password_hash: &str) -> Result<()>;
    async fn set_admin(&self, user_id: &str, is_admin: bool) -> Result<()>;
    /// Every user, oldest first (`admin list-users`).
    async fn list_users(&self) -> Result<Vec<UserListing>> {
        let all = Window {
            limit: i64::MAX as u64,
            offset: 0,
        };
        Ok(self.find_users(None, all).await?.0)
    }
    /// A page of users, oldest first, whose email contains `email_contains`
    /// (case-insensitive), and how many match.
    async fn find_users(
        &self,
        email_contains: Option<&str>,
        window: Window,
    ) -> Result<(Vec<UserListing>, u64)>;
    /// Disable (`disabled = true`) or enable a user; `NotFound` for an
    /// unknown user. Disabling also ends the user's web sessions and revokes
    /// their refresh tokens; their access tokens stop working because token
    /// lookups skip disabled users.
    async fn set_disabled(&self, user_id: &str, disabled: bool, now: DateTime<Utc>) -> Result<()>;

    /// The user's personal access tokens, newest first (revoked ones included).
    async fn list_tokens(&self, user_id: &str) -> Result<Vec<TokenInfo>>;
    /// Revoke one of the user's tokens; `false` when it is not theirs or unknown.
    async fn revoke_token(&self, user_id: &str, token_id: &str, now: DateTime<Utc>)
        -> Result<bool>;

    async fn create_session(
        &self,
        id_hash: &str,
        user_id: &str,
        csrf_token: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<()>;
    /// A live session (expired ones are answered `None`).
    async fn session(&self, id_hash: &str, now: DateTime<Utc>) -> Result<Option<SessionRecord>>;
    async fn delete_session(&self, id_hash: &str) -> Result<()>;

    async fn record_login_failure(
        &self,
        email: &str,
        client_addr: &str,
        at: DateTime<Utc>,
    ) -> Result<()>;
    async fn login_failures_since(
        &self,
        email: &str,
        client_addr: &str,
        since: DateTime<Utc>,
    ) -> Result<FailureCounts>;
    /// Forget an email's failures (after a successful sign-in).
    async fn clear_login_failures(&self, email: &str) -> Result<()>;

    /// A taken user code → `Conflict` (the caller draws another).
    async fn create_device_code(&self, code: NewDeviceCode) -> Result<()>;
    async fn device_by_user_code(&self, user_code: &str) -> Result<Option<DeviceRecord>>;
    /// Device codes still awaiting a decision at `now` (the pending-code cap).
    async fn pending_device_codes(&self, now: DateTime<Utc>) -> Result<u64>;
    /// Approve or deny a pending, unexpired code; `false` otherwise.
    async fn decide_device(
        &self,
        user_code: &str,
        user_id: &str,
        approve: bool,
        now: DateTime<Utc>,
    ) -> Result<bool>;
    /// One poll of `/oauth/token`; stores `issue` when the code is approved.
    async fn poll_device(
        &self,
        device_hash: &str,
        now: DateTime<Utc>,
        issue: &IssuedTokens,
    ) -> Result<DevicePoll>;
    /// Rotate a refresh token: the old one is used up, `issue` is stored in
    /// the same family.
    async fn rotate_refresh(
        &self,
        refresh_hash: &str,
        now: DateTime<Utc>,
        issue: &IssuedTokens,
    ) -> Result<RefreshOutcome>;

    async fn list_members(&self, project_id: &str, window: Window) -> Result<(Vec<Member>, u64)>;
    /// Add a member or change their role; answers the member and whether they
    /// were added (`true`) or changed. Demoting the last owner → `Invalid`.
    async fn set_member(
        &self,
        project_id: &str,
        user_id: &str,
        role: ProjectRole,
        now: DateTime<Utc>,
    ) -> Result<(Member, bool)>;
    /// `NotFound` when not a member; removing the last owner → `Invalid`.
    async fn remove_member(&self, project_id: &str, user_id: &str) -> Result<()>;

    async fn append_audit(&self, event: NewAuditEvent) -> Result<()>;
    /// Newest first.
    async fn list_audit(&self, window: Window) -> Result<(Vec<AuditEvent>, u64)> {
        let (entries, total) = self.find_audit(&AuditFilter::default(), window).await?;
        Ok((entries.into_iter().map(|e| e.event).collect(), total))
    }
    /// The audit events matching `filter`, newest first, and how many match.
    async fn find_audit(
        &self,
        filter: &AuditFilter,
        window: Window,
    ) -> Result<(Vec<AuditEntry>, u64)>;

    /// Totals over every allocation and the `top` fullest ones.
    async fn storage_usage(&self, top: u64) -> Result<StorageUsage>;
}
