//! Issue 4 state: passwords, personal access tokens, browser sessions, device
//! codes (RFC 8628), rotating refresh tokens, sign-in failures, project members
//! and the audit log.
//!
//! Everything lives in the database so that any number of server replicas can
//! answer any request (a device code approved on one replica is redeemed on
//! another; sign-in failures are counted across replicas).
//!
//! The new tables keep their times as integer milliseconds since the epoch in
//! both backends, so one SQL text (with `$n` placeholders, which SQLite also
//! understands) serves both: [`impl_auth_store!`] expands the same method bodies
//! for `SqliteStore` and `PgStore`, differing only in how a write transaction
//! starts and whether rows are locked with `FOR UPDATE`.

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use dataerai_proto::api::{AuditEvent, Member};
use serde_json::{Map, Value};

use super::Window;
use crate::error::Result;

/// A user's sign-in data.
#[derive(Debug, Clone)]
pub struct UserAuth {
    pub user_id: String,
    pub email: String,
    /// Argon2id PHC string; `None` until a password is set.
    pub password_hash: Option<String>,
    pub is_admin: bool,
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
#[derive(Debug, Clone)]
pub struct SessionRecord {
    pub user_id: String,
    pub email: String,
    pub is_admin: bool,
    /// Bound to the session; every form must echo it.
    pub csrf_token: String,
    pub expires_at_ms: i64,
}

/// Sign-in failures inside a window, per email and per client address, with
/// the oldest failure of each (to compute `Retry-After`).
#[derive(Debug, Clone, Copy, Default)]
pub struct FailureCounts {
    pub by_email: u64,
    pub oldest_by_email_ms: Option<i64>,
    pub by_addr: u64,
    pub oldest_by_addr_ms: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct NewDeviceCode {
    /// BLAKE3 hex of the device code (the code itself is never stored).
    pub device_hash: String,
    pub user_code: String,
    pub client_id: String,
    pub scopes: Vec<String>,
    pub interval_s: i64,
    pub now_ms: i64,
    pub expires_at_ms: i64,
}

/// A device authorization as the `/device` page shows it.
#[derive(Debug, Clone)]
pub struct DeviceRecord {
    pub user_code: String,
    pub client_id: String,
    pub scopes: Vec<String>,
    /// `pending`, `approved`, `denied`, `consumed`.
    pub status: String,
    pub expires_at_ms: i64,
}

/// Tokens the server minted for a grant; stored (hashed) only if the grant
/// succeeds.
#[derive(Debug, Clone)]
pub struct IssuedTokens {
    pub access_hash: String,
    pub access_expires_at: DateTime<Utc>,
    pub refresh_hash: String,
    pub refresh_expires_at_ms: i64,
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

/// Issue 4 part of the metadata store (see the module docs).
#[async_trait]
pub trait AuthStore: Send + Sync {
    async fn user_auth_by_email(&self, email: &str) -> Result<Option<UserAuth>>;
    async fn user_auth_by_id(&self, user_id: &str) -> Result<Option<UserAuth>>;
    /// `NotFound` for an unknown user.
    async fn set_password(&self, user_id: &str, password_hash: &str) -> Result<()>;
    async fn set_admin(&self, user_id: &str, is_admin: bool) -> Result<()>;

    /// The user's personal access tokens, newest first (revoked ones included).
    async fn list_tokens(&self, user_id: &str) -> Result<Vec<TokenInfo>>;
    /// Revoke one of the user's tokens; `false` when it is not theirs or unknown.
    async fn revoke_token(&self, user_id: &str, token_id: &str, now_ms: i64) -> Result<bool>;

    async fn create_session(
        &self,
        id_hash: &str,
        user_id: &str,
        csrf_token: &str,
        now_ms: i64,
        expires_at_ms: i64,
    ) -> Result<()>;
    /// A live session (expired ones are answered `None`).
    async fn session(&self, id_hash: &str, now_ms: i64) -> Result<Option<SessionRecord>>;
    async fn delete_session(&self, id_hash: &str) -> Result<()>;

    async fn record_login_failure(&self, email: &str, client_addr: &str, at_ms: i64) -> Result<()>;
    async fn login_failures_since(
        &self,
        email: &str,
        client_addr: &str,
        since_ms: i64,
    ) -> Result<FailureCounts>;
    /// Forget an email's failures (after a successful sign-in).
    async fn clear_login_failures(&self, email: &str) -> Result<()>;

    /// A taken user code → `Conflict` (the caller draws another).
    async fn create_device_code(&self, code: NewDeviceCode) -> Result<()>;
    async fn device_by_user_code(&self, user_code: &str) -> Result<Option<DeviceRecord>>;
    /// Approve or deny a pending, unexpired code; `false` otherwise.
    async fn decide_device(
        &self,
        user_code: &str,
        user_id: &str,
        approve: bool,
        now_ms: i64,
    ) -> Result<bool>;
    /// One poll of `/oauth/token`; stores `issue` when the code is approved.
    async fn poll_device(
        &self,
        device_hash: &str,
        now_ms: i64,
        issue: &IssuedTokens,
    ) -> Result<DevicePoll>;
    /// Rotate a refresh token: the old one is used up, `issue` is stored in
    /// the same family.
    async fn rotate_refresh(
        &self,
        refresh_hash: &str,
        now_ms: i64,
        issue: &IssuedTokens,
    ) -> Result<RefreshOutcome>;

    async fn list_members(&self, project_id: &str, window: Window) -> Result<(Vec<Member>, u64)>;
    /// Add a member or change their role; answers the member and whether they
    /// were added (`true`) or changed. Demoting the last owner → `Invalid`.
    async fn set_member(
        &self,
        project_id: &str,
        user_id: &str,
        role: &str,
        now_ms: i64,
    ) -> Result<(Member, bool)>;
    /// `NotFound` when not a member; removing the last owner → `Invalid`.
    async fn remove_member(&self, project_id: &str, user_id: &str) -> Result<()>;

    async fn append_audit(&self, event: NewAuditEvent) -> Result<()>;
    /// Newest first.
    async fn list_audit(&self, window: Window) -> Result<(Vec<AuditEvent>, u64)>;
}

/// Milliseconds since the epoch → a timestamp (out-of-range values clamp to 0).
pub fn from_ms(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or_else(|| Utc.timestamp_millis_opt(0).unwrap())
}

pub(crate) fn split_scopes(s: &str) -> Vec<String> {
    s.split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// Expands [`AuthStore`] for a store type with a `pool` field.
/// `$begin`: the method opening a write transaction; `$lock`: the row-lock
/// suffix of a `SELECT` (`" FOR UPDATE"` on PostgreSQL, `""` on SQLite, whose
/// write transactions already hold the one write lock); `$db`/`$row`: the
/// sqlx database and row types; `$ts`: how a
/// timestamp is bound to the pre-issue-4 `TEXT`/`TIMESTAMPTZ` columns.
macro_rules! impl_auth_store {
    ($store:ty, $db:ty, $row:ty, $begin:ident, $lock:literal, $ts:path) => {
        #[async_trait::async_trait]
        impl $crate::meta::auth::AuthStore for $store {
            async fn user_auth_by_email(
                &self,
                email: &str,
            ) -> $crate::error::Result<Option<$crate::meta::auth::UserAuth>> {
                let row = sqlx::query(
                    "SELECT id, email, password_hash, is_admin FROM users WHERE email = $1",
                )
                .bind(email)
                .fetch_optional(&self.pool)
                .await?;
                row.map(|r| {
                    Ok($crate::meta::auth::UserAuth {
                        user_id: r.try_get("id")?,
                        email: r.try_get("email")?,
                        password_hash: r.try_get("password_hash")?,
                        is_admin: r.try_get("is_admin")?,
                    })
                })
                .transpose()
            }

            async fn user_auth_by_id(
                &self,
                user_id: &str,
            ) -> $crate::error::Result<Option<$crate::meta::auth::UserAuth>> {
                let row = sqlx::query(
                    "SELECT id, email, password_hash, is_admin FROM users WHERE id = $1",
                )
                .bind(user_id)
                .fetch_optional(&self.pool)
                .await?;
                row.map(|r| {
                    Ok($crate::meta::auth::UserAuth {
                        user_id: r.try_get("id")?,
                        email: r.try_get("email")?,
                        password_hash: r.try_get("password_hash")?,
                        is_admin: r.try_get("is_admin")?,
                    })
                })
                .transpose()
            }

            async fn set_password(
                &self,
                user_id: &str,
                password_hash: &str,
            ) -> $crate::error::Result<()> {
                let done = sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
                    .bind(password_hash)
                    .bind(user_id)
                    .execute(&self.pool)
                    .await?;
                if done.rows_affected() == 0 {
                    return Err($crate::error::StoreError::NotFound(format!("user {user_id}")));
                }
                Ok(())
            }

            async fn set_admin(&self, user_id: &str, is_admin: bool) -> $crate::error::Result<()> {
                let done = sqlx::query("UPDATE users SET is_admin = $1 WHERE id = $2")
                    .bind(is_admin)
                    .bind(user_id)
                    .execute(&self.pool)
                    .await?;
                if done.rows_affected() == 0 {
                    return Err($crate::error::StoreError::NotFound(format!("user {user_id}")));
                }
                Ok(())
            }

            async fn list_tokens(
                &self,
                user_id: &str,
            ) -> $crate::error::Result<Vec<$crate::meta::auth::TokenInfo>> {
                let rows = sqlx::query(
                    "SELECT id, name, scopes, created_at, expires_at, revoked_at_ms FROM tokens
                     WHERE user_id = $1 AND kind = 'pat' ORDER BY created_at DESC, id",
                )
                .bind(user_id)
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|r| {
                        Ok($crate::meta::auth::TokenInfo {
                            token_id: r.try_get("id")?,
                            name: r.try_get("name")?,
                            scopes: $crate::meta::auth::split_scopes(
                                &r.try_get::<String, _>("scopes")?,
                            ),
                            created_at: r.try_get("created_at")?,
                            expires_at: r.try_get("expires_at")?,
                            revoked: r.try_get::<Option<i64>, _>("revoked_at_ms")?.is_some(),
                        })
                    })
                    .collect()
            }

            async fn revoke_token(
                &self,
                user_id: &str,
                token_id: &str,
                now_ms: i64,
            ) -> $crate::error::Result<bool> {
                let done = sqlx::query(
                    "UPDATE tokens SET revoked_at_ms = $1
                     WHERE id = $2 AND user_id = $3 AND revoked_at_ms IS NULL",
                )
                .bind(now_ms)
                .bind(token_id)
                .bind(user_id)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn create_session(
                &self,
                id_hash: &str,
                user_id: &str,
                csrf_token: &str,
                now_ms: i64,
                expires_at_ms: i64,
            ) -> $crate::error::Result<()> {
                // Drop long-expired sessions on the way (keeps the table small
                // without a background job).
                sqlx::query("DELETE FROM web_sessions WHERE expires_at_ms < $1")
                    .bind(now_ms)
                    .execute(&self.pool)
                    .await?;
                sqlx::query(
                    "INSERT INTO web_sessions (id_hash, user_id, csrf_token, created_at_ms, expires_at_ms)
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(id_hash)
                .bind(user_id)
                .bind(csrf_token)
                .bind(now_ms)
                .bind(expires_at_ms)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn session(
                &self,
                id_hash: &str,
                now_ms: i64,
            ) -> $crate::error::Result<Option<$crate::meta::auth::SessionRecord>> {
                let row = sqlx::query(
                    "SELECT s.user_id, u.email, u.is_admin, s.csrf_token, s.expires_at_ms
                     FROM web_sessions s JOIN users u ON u.id = s.user_id
                     WHERE s.id_hash = $1 AND s.expires_at_ms > $2",
                )
                .bind(id_hash)
                .bind(now_ms)
                .fetch_optional(&self.pool)
                .await?;
                row.map(|r| {
                    Ok($crate::meta::auth::SessionRecord {
                        user_id: r.try_get("user_id")?,
                        email: r.try_get("email")?,
                        is_admin: r.try_get("is_admin")?,
                        csrf_token: r.try_get("csrf_token")?,
                        expires_at_ms: r.try_get("expires_at_ms")?,
                    })
                })
                .transpose()
            }

            async fn delete_session(&self, id_hash: &str) -> $crate::error::Result<()> {
                sqlx::query("DELETE FROM web_sessions WHERE id_hash = $1")
                    .bind(id_hash)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn record_login_failure(
                &self,
                email: &str,
                client_addr: &str,
                at_ms: i64,
            ) -> $crate::error::Result<()> {
                sqlx::query(
                    "INSERT INTO login_failures (email, client_addr, at_ms) VALUES ($1, $2, $3)",
                )
                .bind(email)
                .bind(client_addr)
                .bind(at_ms)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn login_failures_since(
                &self,
                email: &str,
                client_addr: &str,
                since_ms: i64,
            ) -> $crate::error::Result<$crate::meta::auth::FailureCounts> {
                let by_email = sqlx::query(
                    "SELECT COUNT(*) AS n, MIN(at_ms) AS oldest FROM login_failures
                     WHERE email = $1 AND at_ms > $2",
                )
                .bind(email)
                .bind(since_ms)
                .fetch_one(&self.pool)
                .await?;
                let by_addr = sqlx::query(
                    "SELECT COUNT(*) AS n, MIN(at_ms) AS oldest FROM login_failures
                     WHERE client_addr = $1 AND at_ms > $2",
                )
                .bind(client_addr)
                .bind(since_ms)
                .fetch_one(&self.pool)
                .await?;
                Ok($crate::meta::auth::FailureCounts {
                    by_email: by_email.try_get::<i64, _>("n")? as u64,
                    oldest_by_email_ms: by_email.try_get("oldest")?,
                    by_addr: by_addr.try_get::<i64, _>("n")? as u64,
                    oldest_by_addr_ms: by_addr.try_get("oldest")?,
                })
            }

            async fn clear_login_failures(&self, email: &str) -> $crate::error::Result<()> {
                sqlx::query("DELETE FROM login_failures WHERE email = $1")
                    .bind(email)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn create_device_code(
                &self,
                code: $crate::meta::auth::NewDeviceCode,
            ) -> $crate::error::Result<()> {
                // Expired codes are useless; dropping them frees their user codes.
                sqlx::query("DELETE FROM device_codes WHERE expires_at_ms < $1")
                    .bind(code.now_ms - 3_600_000)
                    .execute(&self.pool)
                    .await?;
                let inserted = sqlx::query(
                    "INSERT INTO device_codes (device_hash, user_code, client_id, scopes, status,
                         user_id, interval_s, last_poll_ms, created_at_ms, expires_at_ms)
                     VALUES ($1, $2, $3, $4, 'pending', NULL, $5, NULL, $6, $7)",
                )
                .bind(&code.device_hash)
                .bind(&code.user_code)
                .bind(&code.client_id)
                .bind(code.scopes.join(","))
                .bind(code.interval_s)
                .bind(code.now_ms)
                .bind(code.expires_at_ms)
                .execute(&self.pool)
                .await;
                match inserted {
                    Ok(_) => Ok(()),
                    Err(e) if is_unique_violation(&e) => Err($crate::error::StoreError::Conflict(
                        "user code already in use".into(),
                    )),
                    Err(e) => Err(e.into()),
                }
            }

            async fn device_by_user_code(
                &self,
                user_code: &str,
            ) -> $crate::error::Result<Option<$crate::meta::auth::DeviceRecord>> {
                let row = sqlx::query(
                    "SELECT user_code, client_id, scopes, status, expires_at_ms FROM device_codes
                     WHERE user_code = $1",
                )
                .bind(user_code)
                .fetch_optional(&self.pool)
                .await?;
                row.map(|r| {
                    Ok($crate::meta::auth::DeviceRecord {
                        user_code: r.try_get("user_code")?,
                        client_id: r.try_get("client_id")?,
                        scopes: $crate::meta::auth::split_scopes(
                            &r.try_get::<String, _>("scopes")?,
                        ),
                        status: r.try_get("status")?,
                        expires_at_ms: r.try_get("expires_at_ms")?,
                    })
                })
                .transpose()
            }

            async fn decide_device(
                &self,
                user_code: &str,
                user_id: &str,
                approve: bool,
                now_ms: i64,
            ) -> $crate::error::Result<bool> {
                let done = sqlx::query(
                    "UPDATE device_codes SET status = $1, user_id = $2
                     WHERE user_code = $3 AND status = 'pending' AND expires_at_ms > $4",
                )
                .bind(if approve { "approved" } else { "denied" })
                .bind(user_id)
                .bind(user_code)
                .bind(now_ms)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn poll_device(
                &self,
                device_hash: &str,
                now_ms: i64,
                issue: &$crate::meta::auth::IssuedTokens,
            ) -> $crate::error::Result<$crate::meta::auth::DevicePoll> {
                use $crate::meta::auth::DevicePoll;
                let mut tx = self.$begin().await?;
                let Some(row) = sqlx::query(&format!(
                    "SELECT status, user_id, scopes, interval_s, last_poll_ms, expires_at_ms, client_id
                     FROM device_codes WHERE device_hash = $1{}",
                    $lock
                ))
                .bind(device_hash)
                .fetch_optional(&mut *tx)
                .await?
                else {
                    return Ok(DevicePoll::Invalid);
                };
                let status: String = row.try_get("status")?;
                let interval_s: i64 = row.try_get("interval_s")?;
                let last_poll: Option<i64> = row.try_get("last_poll_ms")?;
                let expires_at_ms: i64 = row.try_get("expires_at_ms")?;
                if status == "consumed" {
                    return Ok(DevicePoll::Invalid);
                }
                if now_ms >= expires_at_ms {
                    return Ok(DevicePoll::Expired);
                }
                // RFC 8628 §3.5: too fast → slow_down and 5 s more interval.
                // A little slack, because the client's sleep and the network
                // are never exact.
                let interval_ms = interval_s * 1000;
                let min_gap = (interval_ms - 1000).max(interval_ms / 2);
                let too_fast = last_poll.is_some_and(|t| now_ms - t < min_gap);
                sqlx::query(
                    "UPDATE device_codes SET last_poll_ms = $1, interval_s = $2 WHERE device_hash = $3",
                )
                .bind(now_ms)
                .bind(if too_fast && status == "pending" { interval_s + 5 } else { interval_s })
                .bind(device_hash)
                .execute(&mut *tx)
                .await?;
                let outcome = match status.as_str() {
                    "denied" => DevicePoll::Denied,
                    "approved" => {
                        let user_id: String = row.try_get::<Option<String>, _>("user_id")?.ok_or_else(
                            || $crate::error::StoreError::Invalid("approved device code without a user".into()),
                        )?;
                        let scopes: String = row.try_get("scopes")?;
                        let family_id = uuid::Uuid::new_v4().to_string();
                        sqlx::query("UPDATE device_codes SET status = 'consumed' WHERE device_hash = $1")
                            .bind(device_hash)
                            .execute(&mut *tx)
                            .await?;
                        insert_issued(&mut tx, &user_id, &scopes, &family_id, now_ms, issue).await?;
                        DevicePoll::Issued {
                            user_id,
                            scopes: $crate::meta::auth::split_scopes(&scopes),
                        }
                    }
                    _ if too_fast => DevicePoll::SlowDown,
                    _ => DevicePoll::Pending,
                };
                tx.commit().await?;
                Ok(outcome)
            }

            async fn rotate_refresh(
                &self,
                refresh_hash: &str,
                now_ms: i64,
                issue: &$crate::meta::auth::IssuedTokens,
            ) -> $crate::error::Result<$crate::meta::auth::RefreshOutcome> {
                use $crate::meta::auth::RefreshOutcome;
                let mut tx = self.$begin().await?;
                let Some(row) = sqlx::query(&format!(
                    "SELECT family_id, user_id, scopes, expires_at_ms, used_at_ms, revoked_at_ms
                     FROM refresh_tokens WHERE token_hash = $1{}",
                    $lock
                ))
                .bind(refresh_hash)
                .fetch_optional(&mut *tx)
                .await?
                else {
                    return Ok(RefreshOutcome::Invalid);
                };
                let family_id: String = row.try_get("family_id")?;
                let user_id: String = row.try_get("user_id")?;
                let scopes: String = row.try_get("scopes")?;
                if row.try_get::<Option<i64>, _>("revoked_at_ms")?.is_some()
                    || row.try_get::<i64, _>("expires_at_ms")? <= now_ms
                {
                    return Ok(RefreshOutcome::Invalid);
                }
                if row.try_get::<Option<i64>, _>("used_at_ms")?.is_some() {
                    // Someone holds a copy of a rotated token: revoke the family
                    // (every refresh token and the access tokens it issued).
                    sqlx::query(
                        "UPDATE refresh_tokens SET revoked_at_ms = $1
                         WHERE family_id = $2 AND revoked_at_ms IS NULL",
                    )
                    .bind(now_ms)
                    .bind(&family_id)
                    .execute(&mut *tx)
                    .await?;
                    sqlx::query(
                        "UPDATE tokens SET revoked_at_ms = $1
                         WHERE family_id = $2 AND revoked_at_ms IS NULL",
                    )
                    .bind(now_ms)
                    .bind(&family_id)
                    .execute(&mut *tx)
                    .await?;
                    tx.commit().await?;
                    return Ok(RefreshOutcome::Reused);
                }
                sqlx::query("UPDATE refresh_tokens SET used_at_ms = $1 WHERE token_hash = $2")
                    .bind(now_ms)
                    .bind(refresh_hash)
                    .execute(&mut *tx)
                    .await?;
                insert_issued(&mut tx, &user_id, &scopes, &family_id, now_ms, issue).await?;
                tx.commit().await?;
                Ok(RefreshOutcome::Rotated {
                    user_id,
                    scopes: $crate::meta::auth::split_scopes(&scopes),
                })
            }

            async fn list_members(
                &self,
                project_id: &str,
                window: $crate::meta::Window,
            ) -> $crate::error::Result<(Vec<dataerai_proto::api::Member>, u64)> {
                let total: i64 =
                    sqlx::query_scalar("SELECT COUNT(*) FROM memberships WHERE project_id = $1")
                        .bind(project_id)
                        .fetch_one(&self.pool)
                        .await?;
                let rows = sqlx::query(
                    "SELECT m.user_id, u.email, m.role, m.added_at_ms
                     FROM memberships m JOIN users u ON u.id = m.user_id
                     WHERE m.project_id = $1
                     ORDER BY m.added_at_ms, u.email LIMIT $2 OFFSET $3",
                )
                .bind(project_id)
                .bind(window.limit as i64)
                .bind(window.offset as i64)
                .fetch_all(&self.pool)
                .await?;
                let items = rows
                    .iter()
                    .map(member_from_row)
                    .collect::<$crate::error::Result<Vec<_>>>()?;
                Ok((items, total as u64))
            }

            async fn set_member(
                &self,
                project_id: &str,
                user_id: &str,
                role: &str,
                now_ms: i64,
            ) -> $crate::error::Result<(dataerai_proto::api::Member, bool)> {
                let mut tx = self.$begin().await?;
                // Lock every membership row of the project: the last-owner
                // check must not race another change.
                let owners: Vec<String> = sqlx::query_scalar(&format!(
                    "SELECT user_id FROM memberships WHERE project_id = $1 AND role = 'owner'{}",
                    $lock
                ))
                .bind(project_id)
                .fetch_all(&mut *tx)
                .await?;
                let current: Option<String> = sqlx::query_scalar(&format!(
                    "SELECT role FROM memberships WHERE project_id = $1 AND user_id = $2{}",
                    $lock
                ))
                .bind(project_id)
                .bind(user_id)
                .fetch_optional(&mut *tx)
                .await?;
                let added = current.is_none();
                if current.as_deref() == Some("owner") && role != "owner" && owners.len() <= 1 {
                    return Err($crate::error::StoreError::Invalid(
                        "the last owner of a project cannot be demoted; make someone else owner first".into(),
                    ));
                }
                if added {
                    sqlx::query(
                        "INSERT INTO memberships (project_id, user_id, role, added_at_ms)
                         VALUES ($1, $2, $3, $4)",
                    )
                    .bind(project_id)
                    .bind(user_id)
                    .bind(role)
                    .bind(now_ms)
                    .execute(&mut *tx)
                    .await?;
                } else {
                    sqlx::query(
                        "UPDATE memberships SET role = $1 WHERE project_id = $2 AND user_id = $3",
                    )
                    .bind(role)
                    .bind(project_id)
                    .bind(user_id)
                    .execute(&mut *tx)
                    .await?;
                }
                let row = sqlx::query(
                    "SELECT m.user_id, u.email, m.role, m.added_at_ms
                     FROM memberships m JOIN users u ON u.id = m.user_id
                     WHERE m.project_id = $1 AND m.user_id = $2",
                )
                .bind(project_id)
                .bind(user_id)
                .fetch_one(&mut *tx)
                .await?;
                let member = member_from_row(&row)?;
                tx.commit().await?;
                Ok((member, added))
            }

            async fn remove_member(
                &self,
                project_id: &str,
                user_id: &str,
            ) -> $crate::error::Result<()> {
                let mut tx = self.$begin().await?;
                let owners: Vec<String> = sqlx::query_scalar(&format!(
                    "SELECT user_id FROM memberships WHERE project_id = $1 AND role = 'owner'{}",
                    $lock
                ))
                .bind(project_id)
                .fetch_all(&mut *tx)
                .await?;
                if owners.len() <= 1 && owners.iter().any(|o| o == user_id) {
                    return Err($crate::error::StoreError::Invalid(
                        "the last owner of a project cannot be removed; make someone else owner first".into(),
                    ));
                }
                let done =
                    sqlx::query("DELETE FROM memberships WHERE project_id = $1 AND user_id = $2")
                        .bind(project_id)
                        .bind(user_id)
                        .execute(&mut *tx)
                        .await?;
                if done.rows_affected() == 0 {
                    return Err($crate::error::StoreError::NotFound(format!(
                        "member {user_id} of project {project_id}"
                    )));
                }
                tx.commit().await?;
                Ok(())
            }

            async fn append_audit(
                &self,
                event: $crate::meta::auth::NewAuditEvent,
            ) -> $crate::error::Result<()> {
                sqlx::query(
                    "INSERT INTO audit_events (id, at_ms, actor_user_id, action, target_type,
                         target_id, details, client_addr)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(uuid::Uuid::new_v4().to_string())
                .bind(chrono::Utc::now().timestamp_millis())
                .bind(&event.actor_user_id)
                .bind(&event.action)
                .bind(&event.target_type)
                .bind(&event.target_id)
                .bind(serde_json::Value::Object(event.details).to_string())
                .bind(&event.client_addr)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn list_audit(
                &self,
                window: $crate::meta::Window,
            ) -> $crate::error::Result<(Vec<dataerai_proto::api::AuditEvent>, u64)> {
                let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_events")
                    .fetch_one(&self.pool)
                    .await?;
                let rows = sqlx::query(
                    "SELECT id, at_ms, actor_user_id, action, target_type, target_id, details,
                         client_addr
                     FROM audit_events ORDER BY seq DESC LIMIT $1 OFFSET $2",
                )
                .bind(window.limit as i64)
                .bind(window.offset as i64)
                .fetch_all(&self.pool)
                .await?;
                let items = rows
                    .iter()
                    .map(|r| {
                        Ok(dataerai_proto::api::AuditEvent {
                            id: r.try_get("id")?,
                            at: $crate::meta::auth::from_ms(r.try_get("at_ms")?),
                            actor_user_id: r.try_get("actor_user_id")?,
                            action: r.try_get("action")?,
                            target_type: r.try_get("target_type")?,
                            target_id: r.try_get("target_id")?,
                            details: serde_json::from_str(&r.try_get::<String, _>("details")?)
                                .unwrap_or_default(),
                            client_addr: r.try_get("client_addr")?,
                        })
                    })
                    .collect::<$crate::error::Result<Vec<_>>>()?;
                Ok((items, total as u64))
            }
        }

        fn member_from_row(r: &$row) -> $crate::error::Result<dataerai_proto::api::Member> {
            Ok(dataerai_proto::api::Member {
                user_id: r.try_get("user_id")?,
                email: r.try_get("email")?,
                role: r.try_get("role")?,
                added_at: $crate::meta::auth::from_ms(r.try_get("added_at_ms")?),
            })
        }

        /// Store the access token and the refresh token of a grant, both in
        /// `family_id`.
        async fn insert_issued(
            tx: &mut <$db as sqlx::Database>::Connection,
            user_id: &str,
            scopes: &str,
            family_id: &str,
            now_ms: i64,
            issue: &$crate::meta::auth::IssuedTokens,
        ) -> $crate::error::Result<()> {
            sqlx::query(
                "INSERT INTO tokens (id, user_id, name, token_hash, scopes, created_at, expires_at,
                     kind, family_id, revoked_at_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, 'access', $8, NULL)",
            )
            .bind(uuid::Uuid::new_v4().to_string())
            .bind(user_id.to_string())
            .bind(issue.name.clone())
            .bind(issue.access_hash.clone())
            .bind(scopes.to_string())
            .bind($ts(chrono::Utc::now()))
            .bind($ts(issue.access_expires_at))
            .bind(family_id.to_string())
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO refresh_tokens (token_hash, family_id, user_id, scopes, created_at_ms,
                     expires_at_ms, used_at_ms, revoked_at_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, NULL, NULL)",
            )
            .bind(issue.refresh_hash.clone())
            .bind(family_id.to_string())
            .bind(user_id.to_string())
            .bind(scopes.to_string())
            .bind(now_ms)
            .bind(issue.refresh_expires_at_ms)
            .execute(&mut *tx)
            .await?;
            Ok(())
        }
    };
}
pub(crate) use impl_auth_store;
