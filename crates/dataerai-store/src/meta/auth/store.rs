//! [`AuthStore`], written once for every store with an [`AuthBackend`]. The
//! SQL uses `$n` placeholders (SQLite accepts them too) and rows arrive as
//! `#[derive(sqlx::FromRow)]` structs; [`super::rules`] makes the decisions.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use dataerai_proto::api::{Member, ProjectRole};

use super::db::{Arg, AuthBackend, Conn};
use super::rules::{self, MemberChange, PollVerdict, RefreshVerdict};
use super::{
    AuditEntry, AuditFilter, AuthStore, DevicePoll, DeviceRecord, FailureCounts, IssuedTokens,
    NewAuditEvent, NewDeviceCode, RefreshOutcome, SessionRecord, StorageUsage, TokenInfo, UserAuth,
    UserListing,
};
use crate::error::{Result, StoreError};
use crate::meta::Window;
use crate::rules::unsigned;

#[derive(sqlx::FromRow)]
struct TokenRow {
    id: String,
    name: String,
    scopes: String,
    created_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
}

impl From<TokenRow> for TokenInfo {
    fn from(r: TokenRow) -> Self {
        TokenInfo {
            token_id: r.id,
            name: r.name,
            scopes: rules::split_scopes(&r.scopes),
            created_at: r.created_at,
            expires_at: r.expires_at,
            revoked: r.revoked_at.is_some(),
        }
    }
}

/// Sign-in failures of one email or one address.
#[derive(sqlx::FromRow)]
struct FailureRow {
    n: i64,
    oldest: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct DeviceRow {
    user_code: String,
    client_id: String,
    scopes: String,
    status: String,
    expires_at: DateTime<Utc>,
}

impl From<DeviceRow> for DeviceRecord {
    fn from(r: DeviceRow) -> Self {
        DeviceRecord {
            user_code: r.user_code,
            client_id: r.client_id,
            scopes: rules::split_scopes(&r.scopes),
            status: r.status,
            expires_at: r.expires_at,
        }
    }
}

/// What a poll of a device code needs.
#[derive(sqlx::FromRow)]
struct DevicePollRow {
    status: String,
    user_id: Option<String>,
    scopes: String,
    interval_s: i64,
    last_poll_at: Option<DateTime<Utc>>,
    expires_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct RefreshRow {
    family_id: String,
    user_id: String,
    scopes: String,
    expires_at: DateTime<Utc>,
    used_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
}

const USER_COLUMNS: &str =
    "SELECT id, email, password_hash, is_admin, disabled_at IS NOT NULL AS disabled FROM users";
const MEMBER_COLUMNS: &str = "SELECT m.user_id, u.email, m.role, m.added_at
     FROM memberships m JOIN users u ON u.id = m.user_id";

/// `NotFound(what)` when a statement changed no row.
fn changed(rows: u64, what: impl FnOnce() -> String) -> Result<()> {
    if rows == 0 {
        return Err(StoreError::NotFound(what()));
    }
    Ok(())
}

fn is_unique_violation(e: &StoreError) -> bool {
    matches!(e, StoreError::Db(sqlx::Error::Database(d)) if d.is_unique_violation())
}

pub(super) fn window_args(window: Window) -> [Arg<'static>; 2] {
    [
        Arg::Int(window.limit as i64),
        Arg::Int(window.offset as i64),
    ]
}

#[async_trait]
impl<S: AuthBackend> AuthStore for S {
    async fn user_auth_by_email(&self, email: &str) -> Result<Option<UserAuth>> {
        let sql = format!("{USER_COLUMNS} WHERE email = $1");
        self.auth_db()
            .fetch_optional(&sql, &[Arg::Text(email)])
            .await
    }

    async fn user_auth_by_id(&self, user_id: &str) -> Result<Option<UserAuth>> {
        let sql = format!("{USER_COLUMNS} WHERE id = $1");
        self.auth_db()
            .fetch_optional(&sql, &[Arg::Text(user_id)])
            .await
    }

    async fn set_password(&self, user_id: &str, password_hash: &str) -> Result<()> {
        let sql = "UPDATE users SET password_hash = $1 WHERE id = $2";
        let args = [Arg::Text(password_hash), Arg::Text(user_id)];
        changed(self.auth_db().execute(sql, &args).await?, || {
            format!("user {user_id}")
        })
    }

    async fn set_admin(&self, user_id: &str, is_admin: bool) -> Result<()> {
        let sql = "UPDATE users SET is_admin = $1 WHERE id = $2";
        let args = [Arg::Bool(is_admin), Arg::Text(user_id)];
        changed(self.auth_db().execute(sql, &args).await?, || {
            format!("user {user_id}")
        })
    }

    async fn find_users(
        &self,
        email_contains: Option<&str>,
        window: Window,
    ) -> Result<(Vec<UserListing>, u64)> {
        super::admin::find_users(self.auth_db(), email_contains, window).await
    }

    async fn set_disabled(&self, user_id: &str, disabled: bool, now: DateTime<Utc>) -> Result<()> {
        let db = self.auth_db();
        let mut tx = db.writer().await?;
        let mut conn = tx.conn();
        let found = if disabled {
            // Keep the first time it was disabled.
            conn.execute(
                "UPDATE users SET disabled_at = COALESCE(disabled_at, $1) WHERE id = $2",
                &[Arg::Time(now), Arg::Text(user_id)],
            )
            .await?
        } else {
            conn.execute(
                "UPDATE users SET disabled_at = NULL WHERE id = $1",
                &[Arg::Text(user_id)],
            )
            .await?
        };
        changed(found, || format!("user {user_id}"))?;
        if disabled {
            conn.execute(
                "DELETE FROM web_sessions WHERE user_id = $1",
                &[Arg::Text(user_id)],
            )
            .await?;
            conn.execute(
                "UPDATE refresh_tokens SET revoked_at = $1
                 WHERE user_id = $2 AND revoked_at IS NULL",
                &[Arg::Time(now), Arg::Text(user_id)],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn list_tokens(&self, user_id: &str) -> Result<Vec<TokenInfo>> {
        let rows: Vec<TokenRow> = self
            .auth_db()
            .fetch_all(
                "SELECT id, name, scopes, created_at, expires_at, revoked_at FROM tokens
                 WHERE user_id = $1 AND kind = 'pat' ORDER BY created_at DESC, id",
                &[Arg::Text(user_id)],
            )
            .await?;
        Ok(rows.into_iter().map(TokenInfo::from).collect())
    }

    async fn revoke_token(
        &self,
        user_id: &str,
        token_id: &str,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let revoked = self
            .auth_db()
            .execute(
                "UPDATE tokens SET revoked_at = $1
                 WHERE id = $2 AND user_id = $3 AND revoked_at IS NULL",
                &[Arg::Time(now), Arg::Text(token_id), Arg::Text(user_id)],
            )
            .await?;
        Ok(revoked > 0)
    }

    async fn create_session(
        &self,
        id_hash: &str,
        user_id: &str,
        csrf_token: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<()> {
        let mut db = self.auth_db().reader().await?;
        let mut conn = db.conn();
        // Drop expired sessions on the way (keeps the table small without a
        // background job).
        conn.execute(
            "DELETE FROM web_sessions WHERE expires_at < $1",
            &[Arg::Time(now)],
        )
        .await?;
        conn.execute(
            "INSERT INTO web_sessions (id_hash, user_id, csrf_token, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5)",
            &[
                Arg::Text(id_hash),
                Arg::Text(user_id),
                Arg::Text(csrf_token),
                Arg::Time(now),
                Arg::Time(expires_at),
            ],
        )
        .await?;
        Ok(())
    }

    async fn session(&self, id_hash: &str, now: DateTime<Utc>) -> Result<Option<SessionRecord>> {
        let row: Option<SessionRecord> = self
            .auth_db()
            .fetch_optional(
                "SELECT s.user_id, u.email, u.is_admin, s.csrf_token, s.expires_at
                 FROM web_sessions s JOIN users u ON u.id = s.user_id
                 WHERE s.id_hash = $1 AND u.disabled_at IS NULL",
                &[Arg::Text(id_hash)],
            )
            .await?;
        Ok(row.filter(|s| rules::is_live(s.expires_at, now)))
    }

    async fn delete_session(&self, id_hash: &str) -> Result<()> {
        self.auth_db()
            .execute(
                "DELETE FROM web_sessions WHERE id_hash = $1",
                &[Arg::Text(id_hash)],
            )
            .await?;
        Ok(())
    }

    async fn record_login_failure(
        &self,
        email: &str,
        client_addr: &str,
        at: DateTime<Utc>,
    ) -> Result<()> {
        self.auth_db()
            .execute(
                "INSERT INTO login_failures (email, client_addr, at) VALUES ($1, $2, $3)",
                &[Arg::Text(email), Arg::Text(client_addr), Arg::Time(at)],
            )
            .await?;
        Ok(())
    }

    async fn login_failures_since(
        &self,
        email: &str,
        client_addr: &str,
        since: DateTime<Utc>,
    ) -> Result<FailureCounts> {
        let mut db = self.auth_db().reader().await?;
        let mut conn = db.conn();
        let (by_email, oldest_by_email) = failures(&mut conn, "email", email, since).await?;
        let (by_addr, oldest_by_addr) =
            failures(&mut conn, "client_addr", client_addr, since).await?;
        Ok(FailureCounts {
            by_email,
            oldest_by_email,
            by_addr,
            oldest_by_addr,
        })
    }

    async fn clear_login_failures(&self, email: &str) -> Result<()> {
        self.auth_db()
            .execute(
                "DELETE FROM login_failures WHERE email = $1",
                &[Arg::Text(email)],
            )
            .await?;
        Ok(())
    }

    async fn create_device_code(&self, code: NewDeviceCode) -> Result<()> {
        let mut db = self.auth_db().reader().await?;
        let mut conn = db.conn();
        // Long-expired codes are useless; dropping them frees their user codes.
        conn.execute(
            "DELETE FROM device_codes WHERE expires_at < $1",
            &[Arg::Time(code.now - rules::EXPIRED_DEVICE_CODES_KEPT)],
        )
        .await?;
        let scopes = rules::join_scopes(&code.scopes);
        let inserted = conn
            .execute(
                "INSERT INTO device_codes (device_hash, user_code, client_id, scopes, status,
                     user_id, interval_s, last_poll_at, created_at, expires_at)
                 VALUES ($1, $2, $3, $4, 'pending', NULL, $5, NULL, $6, $7)",
                &[
                    Arg::Text(&code.device_hash),
                    Arg::Text(&code.user_code),
                    Arg::Text(&code.client_id),
                    Arg::Text(&scopes),
                    Arg::Int(code.interval_s),
                    Arg::Time(code.now),
                    Arg::Time(code.expires_at),
                ],
            )
            .await;
        match inserted {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => {
                Err(StoreError::Conflict("user code already in use".into()))
            }
            Err(e) => Err(e),
        }
    }

    async fn pending_device_codes(&self, now: DateTime<Utc>) -> Result<u64> {
        let (n,): (i64,) = self
            .auth_db()
            .fetch_one(
                "SELECT COUNT(*) FROM device_codes WHERE status = 'pending' AND expires_at > $1",
                &[Arg::Time(now)],
            )
            .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn device_by_user_code(&self, user_code: &str) -> Result<Option<DeviceRecord>> {
        let row: Option<DeviceRow> = self
            .auth_db()
            .fetch_optional(
                "SELECT user_code, client_id, scopes, status, expires_at FROM device_codes
                 WHERE user_code = $1",
                &[Arg::Text(user_code)],
            )
            .await?;
        Ok(row.map(DeviceRecord::from))
    }

    async fn decide_device(
        &self,
        user_code: &str,
        user_id: &str,
        approve: bool,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let (mut tx, row) = self
            .auth_db()
            .writer_with_row::<DeviceRow>(
                "SELECT user_code, client_id, scopes, status, expires_at FROM device_codes
                 WHERE user_code = $1",
                user_code,
            )
            .await?;
        if !row.is_some_and(|r| rules::awaits_decision(&r.status, r.expires_at, now)) {
            return Ok(false);
        }
        tx.conn()
            .execute(
                "UPDATE device_codes SET status = $1, user_id = $2 WHERE user_code = $3",
                &[
                    Arg::Text(if approve { "approved" } else { "denied" }),
                    Arg::Text(user_id),
                    Arg::Text(user_code),
                ],
            )
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn poll_device(
        &self,
        device_hash: &str,
        now: DateTime<Utc>,
        issue: &IssuedTokens,
    ) -> Result<DevicePoll> {
        let (mut tx, row) = self
            .auth_db()
            .writer_with_row::<DevicePollRow>(
                "SELECT status, user_id, scopes, interval_s, last_poll_at, expires_at
                 FROM device_codes WHERE device_hash = $1",
                device_hash,
            )
            .await?;
        let Some(row) = row else {
            return Ok(DevicePoll::Invalid);
        };
        let step = rules::device_poll(
            &row.status,
            row.interval_s,
            row.last_poll_at,
            row.expires_at,
            now,
        );
        if let Some(interval_s) = step.record_interval_s {
            tx.conn()
                .execute(
                    "UPDATE device_codes SET last_poll_at = $1, interval_s = $2
                     WHERE device_hash = $3",
                    &[Arg::Time(now), Arg::Int(interval_s), Arg::Text(device_hash)],
                )
                .await?;
        }
        let outcome = match step.verdict {
            PollVerdict::Invalid => DevicePoll::Invalid,
            PollVerdict::Expired => DevicePoll::Expired,
            PollVerdict::Pending => DevicePoll::Pending,
            PollVerdict::SlowDown => DevicePoll::SlowDown,
            PollVerdict::Denied => DevicePoll::Denied,
            PollVerdict::Issue => {
                let user_id = row.user_id.ok_or_else(|| {
                    StoreError::Invalid("approved device code without a user".into())
                })?;
                let mut conn = tx.conn();
                conn.execute(
                    "UPDATE device_codes SET status = 'consumed' WHERE device_hash = $1",
                    &[Arg::Text(device_hash)],
                )
                .await?;
                let family_id = uuid::Uuid::new_v4().to_string();
                insert_issued(&mut conn, &user_id, &row.scopes, &family_id, now, issue).await?;
                DevicePoll::Issued {
                    user_id,
                    scopes: rules::split_scopes(&row.scopes),
                }
            }
        };
        tx.commit().await?;
        Ok(outcome)
    }

    async fn rotate_refresh(
        &self,
        refresh_hash: &str,
        now: DateTime<Utc>,
        issue: &IssuedTokens,
    ) -> Result<RefreshOutcome> {
        let (mut tx, row) = self
            .auth_db()
            .writer_with_row::<RefreshRow>(
                "SELECT family_id, user_id, scopes, expires_at, used_at, revoked_at
                 FROM refresh_tokens WHERE token_hash = $1",
                refresh_hash,
            )
            .await?;
        let Some(row) = row else {
            return Ok(RefreshOutcome::Invalid);
        };
        let verdict = rules::refresh_verdict(row.expires_at, row.used_at, row.revoked_at, now);
        let mut conn = tx.conn();
        let outcome = match verdict {
            RefreshVerdict::Invalid => return Ok(RefreshOutcome::Invalid),
            RefreshVerdict::Reused => {
                for table in ["refresh_tokens", "tokens"] {
                    let sql = format!(
                        "UPDATE {table} SET revoked_at = $1
                         WHERE family_id = $2 AND revoked_at IS NULL"
                    );
                    conn.execute(&sql, &[Arg::Time(now), Arg::Text(&row.family_id)])
                        .await?;
                }
                RefreshOutcome::Reused
            }
            RefreshVerdict::Rotate => {
                conn.execute(
                    "UPDATE refresh_tokens SET used_at = $1 WHERE token_hash = $2",
                    &[Arg::Time(now), Arg::Text(refresh_hash)],
                )
                .await?;
                insert_issued(
                    &mut conn,
                    &row.user_id,
                    &row.scopes,
                    &row.family_id,
                    now,
                    issue,
                )
                .await?;
                RefreshOutcome::Rotated {
                    scopes: rules::split_scopes(&row.scopes),
                    user_id: row.user_id,
                }
            }
        };
        tx.commit().await?;
        Ok(outcome)
    }

    async fn list_members(&self, project_id: &str, window: Window) -> Result<(Vec<Member>, u64)> {
        let mut db = self.auth_db().reader().await?;
        let mut conn = db.conn();
        let (total,): (i64,) = conn
            .fetch_one(
                "SELECT COUNT(*) FROM memberships WHERE project_id = $1",
                &[Arg::Text(project_id)],
            )
            .await?;
        let sql = format!(
            "{MEMBER_COLUMNS} WHERE m.project_id = $1
             ORDER BY m.added_at, u.email LIMIT $2 OFFSET $3"
        );
        let [limit, offset] = window_args(window);
        let rows: Vec<Member> = conn
            .fetch_all(&sql, &[Arg::Text(project_id), limit, offset])
            .await?;
        Ok((rows, unsigned("total", total)?))
    }

    async fn set_member(
        &self,
        project_id: &str,
        user_id: &str,
        role: ProjectRole,
        now: DateTime<Utc>,
    ) -> Result<(Member, bool)> {
        let db = self.auth_db();
        let mut tx = db.writer().await?;
        let mut conn = tx.conn();
        let owners = project_owners(&mut conn, project_id, db.row_lock()).await?;
        let current: Option<(String,)> = conn
            .fetch_optional(
                &format!(
                    "SELECT role FROM memberships WHERE project_id = $1 AND user_id = $2{}",
                    db.row_lock()
                ),
                &[Arg::Text(project_id), Arg::Text(user_id)],
            )
            .await?;
        rules::keeps_an_owner(&owners, user_id, MemberChange::SetRole(role))?;
        let added = current.is_none();
        if added {
            conn.execute(
                "INSERT INTO memberships (project_id, user_id, role, added_at)
                 VALUES ($1, $2, $3, $4)",
                &[
                    Arg::Text(project_id),
                    Arg::Text(user_id),
                    Arg::Text(role.as_str()),
                    Arg::Time(now),
                ],
            )
            .await?;
        } else {
            conn.execute(
                "UPDATE memberships SET role = $1 WHERE project_id = $2 AND user_id = $3",
                &[
                    Arg::Text(role.as_str()),
                    Arg::Text(project_id),
                    Arg::Text(user_id),
                ],
            )
            .await?;
        }
        let member: Member = conn
            .fetch_one(
                &format!("{MEMBER_COLUMNS} WHERE m.project_id = $1 AND m.user_id = $2"),
                &[Arg::Text(project_id), Arg::Text(user_id)],
            )
            .await?;
        tx.commit().await?;
        Ok((member, added))
    }

    async fn remove_member(&self, project_id: &str, user_id: &str) -> Result<()> {
        let db = self.auth_db();
        let mut tx = db.writer().await?;
        let mut conn = tx.conn();
        let owners = project_owners(&mut conn, project_id, db.row_lock()).await?;
        rules::keeps_an_owner(&owners, user_id, MemberChange::Remove)?;
        let removed = conn
            .execute(
                "DELETE FROM memberships WHERE project_id = $1 AND user_id = $2",
                &[Arg::Text(project_id), Arg::Text(user_id)],
            )
            .await?;
        changed(removed, || {
            format!("member {user_id} of project {project_id}")
        })?;
        tx.commit().await?;
        Ok(())
    }

    async fn append_audit(&self, event: NewAuditEvent) -> Result<()> {
        let id = uuid::Uuid::new_v4().to_string();
        self.auth_db()
            .execute(
                "INSERT INTO audit_events (id, at, actor_user_id, action, target_type,
                     target_id, details, client_addr)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                &[
                    Arg::Text(&id),
                    Arg::Time(Utc::now()),
                    Arg::OptText(event.actor_user_id.as_deref()),
                    Arg::Text(&event.action),
                    Arg::OptText(event.target_type.as_deref()),
                    Arg::OptText(event.target_id.as_deref()),
                    Arg::Json(&event.details),
                    Arg::OptText(event.client_addr.as_deref()),
                ],
            )
            .await?;
        Ok(())
    }

    async fn find_audit(
        &self,
        filter: &AuditFilter,
        window: Window,
    ) -> Result<(Vec<AuditEntry>, u64)> {
        super::admin::find_audit(self.auth_db(), filter, window).await
    }

    async fn storage_usage(&self, top: u64) -> Result<StorageUsage> {
        super::admin::storage_usage(self.auth_db(), top).await
    }
}

/// How many sign-in failures `column` (`email` or `client_addr`) has after
/// `since`, and the oldest of them.
async fn failures(
    conn: &mut Conn<'_>,
    column: &str,
    value: &str,
    since: DateTime<Utc>,
) -> Result<(u64, Option<DateTime<Utc>>)> {
    let sql = format!(
        "SELECT COUNT(*) AS n, MIN(at) AS oldest FROM login_failures
         WHERE {column} = $1 AND at > $2"
    );
    let row: FailureRow = conn
        .fetch_one(&sql, &[Arg::Text(value), Arg::Time(since)])
        .await?;
    Ok((unsigned("n", row.n)?, row.oldest))
}

/// The user ids of a project's owners, locking every owner row (`row_lock`)
/// so the last-owner rule cannot race another change.
async fn project_owners(
    conn: &mut Conn<'_>,
    project_id: &str,
    row_lock: &str,
) -> Result<Vec<String>> {
    let sql = format!(
        "SELECT user_id FROM memberships WHERE project_id = $1 AND role = 'owner'{row_lock}"
    );
    let owners: Vec<(String,)> = conn.fetch_all(&sql, &[Arg::Text(project_id)]).await?;
    Ok(owners.into_iter().map(|(o,)| o).collect())
}

/// Store the access token and the refresh token of a grant, both in
/// `family_id`.
async fn insert_issued(
    conn: &mut Conn<'_>,
    user_id: &str,
    scopes: &str,
    family_id: &str,
    now: DateTime<Utc>,
    issue: &IssuedTokens,
) -> Result<()> {
    let access_id = uuid::Uuid::new_v4().to_string();
    conn.execute(
        "INSERT INTO tokens (id, user_id, name, token_hash, scopes, created_at, expires_at,
             kind, family_id, revoked_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'access', $8, NULL)",
        &[
            Arg::Text(&access_id),
            Arg::Text(user_id),
            Arg::Text(&issue.name),
            Arg::Text(&issue.access_hash),
            Arg::Text(scopes),
            Arg::Time(now),
            Arg::Time(issue.access_expires_at),
            Arg::Text(family_id),
        ],
    )
    .await?;
    conn.execute(
        "INSERT INTO refresh_tokens (token_hash, family_id, user_id, scopes, created_at,
             expires_at, used_at, revoked_at)
         VALUES ($1, $2, $3, $4, $5, $6, NULL, NULL)",
        &[
            Arg::Text(&issue.refresh_hash),
            Arg::Text(family_id),
            Arg::Text(user_id),
            Arg::Text(scopes),
            Arg::Time(now),
            Arg::Time(issue.refresh_expires_at),
        ],
    )
    .await?;
    Ok(())
}
