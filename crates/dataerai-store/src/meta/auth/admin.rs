//! The server administrator's reads: users (paged, filtered by email, with
//! their last sign-in), the audit log filtered by action, actor and project,
//! and storage usage over every allocation. Written once for both backends
//! like the rest of [`super::store`].

use chrono::{DateTime, Utc};
use dataerai_proto::api::{AuditEvent, OwnerType};
use serde_json::{Map, Value};
use sqlx::types::Json;

use super::db::{Arg, AuthRow, Conn, Db};
use super::store::window_args;
use super::{AllocationUsage, AuditEntry, AuditFilter, StorageUsage, UserListing};
use crate::error::Result;
use crate::meta::rows::AllocationRow;
use crate::meta::Window;
use crate::rules::unsigned;

#[derive(sqlx::FromRow)]
struct AuditRow {
    id: String,
    at: DateTime<Utc>,
    actor_user_id: Option<String>,
    actor_email: Option<String>,
    action: String,
    target_type: Option<String>,
    target_id: Option<String>,
    /// Corrupt JSON here is an error, never an empty object.
    details: Json<Map<String, Value>>,
    client_addr: Option<String>,
}

impl From<AuditRow> for AuditEntry {
    fn from(r: AuditRow) -> Self {
        AuditEntry {
            actor_email: r.actor_email,
            event: AuditEvent {
                id: r.id,
                at: r.at,
                actor_user_id: r.actor_user_id,
                action: r.action,
                target_type: r.target_type,
                target_id: r.target_id,
                details: r.details.0,
                client_addr: r.client_addr,
            },
        }
    }
}

#[derive(sqlx::FromRow)]
struct TotalsRow {
    allocations: i64,
    used_bytes: i64,
    reserved_bytes: i64,
    file_count: i64,
}

#[derive(sqlx::FromRow)]
struct AllocationUsageRow {
    owner_type: OwnerType,
    owner_id: String,
    owner_name: String,
    #[sqlx(flatten)]
    allocation: AllocationRow,
}

impl AllocationUsageRow {
    fn into_usage(self) -> Result<AllocationUsage> {
        Ok(AllocationUsage {
            owner_type: self.owner_type,
            owner_id: self.owner_id,
            owner_name: self.owner_name,
            allocation: self.allocation.into_api()?,
        })
    }
}

/// `text` as a `LIKE` pattern matching any string that contains it.
fn contains_pattern(text: &str) -> String {
    let escaped = text
        .to_lowercase()
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

pub(super) async fn find_users(
    db: Db<'_>,
    email_contains: Option<&str>,
    window: Window,
) -> Result<(Vec<UserListing>, u64)> {
    let mut reader = db.reader().await?;
    let mut conn = reader.conn();
    let pattern = email_contains
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(contains_pattern);
    let mut args = Vec::new();
    let filter = match &pattern {
        Some(p) => {
            args.push(Arg::Text(p));
            "WHERE LOWER(u.email) LIKE $1 ESCAPE '\\'"
        }
        None => "",
    };
    // The last sign-in is the newest `auth.sign_in` of the user
    // (index `audit_events_actor`).
    filtered_page::<UserListing, _>(
        &mut conn,
        &format!("FROM users u {filter}"),
        &format!(
            "SELECT u.id AS user_id, u.email, u.created_at, u.is_admin,
                    u.password_hash IS NOT NULL AS has_password, u.invited, u.disabled_at,
                    (SELECT MAX(e.at) FROM audit_events e
                     WHERE e.actor_user_id = u.id AND e.action = 'auth.sign_in') AS last_sign_in_at
             FROM users u {filter}
             ORDER BY u.created_at, u.email"
        ),
        args,
        window,
    )
    .await
}

pub(super) async fn find_audit(
    db: Db<'_>,
    filter: &AuditFilter,
    window: Window,
) -> Result<(Vec<AuditEntry>, u64)> {
    let mut reader = db.reader().await?;
    let mut conn = reader.conn();
    let given = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_string)
    };
    let (action, actor, project) = (
        given(&filter.action),
        given(&filter.actor_email).map(|e| e.to_lowercase()),
        given(&filter.project_id),
    );
    let mut clauses = Vec::new();
    let mut args = Vec::new();
    if let Some(a) = &action {
        args.push(Arg::Text(a));
        clauses.push(format!("e.action = ${}", args.len()));
    }
    if let Some(a) = &actor {
        args.push(Arg::Text(a));
        clauses.push(format!(
            "e.actor_user_id IN (SELECT id FROM users WHERE LOWER(email) = ${})",
            args.len()
        ));
    }
    if let Some(p) = &project {
        args.push(Arg::Text(p));
        let n = args.len();
        // `->>` reads a JSON field as text on both backends.
        clauses.push(format!(
            "(e.target_type = 'project' AND e.target_id = ${n}
              OR e.details ->> 'project_id' = ${n}
              OR e.details ->> 'owner_type' = 'project' AND e.details ->> 'owner_id' = ${n})"
        ));
    }
    let filter = if clauses.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", clauses.join(" AND "))
    };
    filtered_page::<AuditRow, _>(
        &mut conn,
        &format!("FROM audit_events e {filter}"),
        &format!(
            "SELECT e.id, e.at, e.actor_user_id, u.email AS actor_email, e.action, e.target_type,
                    e.target_id, e.details, e.client_addr
             FROM audit_events e LEFT JOIN users u ON u.id = e.actor_user_id
             {filter} ORDER BY e.seq DESC"
        ),
        args,
        window,
    )
    .await
}

/// One page of a filtered listing, each row as a `T`, and how many rows the
/// filter matches in all: `SELECT COUNT(*) {from_where}`, then `select`
/// (ordered, without `LIMIT`) over `window`. `args` are the filter's
/// parameters (`$1`…).
async fn filtered_page<R: AuthRow, T: From<R>>(
    conn: &mut Conn<'_>,
    from_where: &str,
    select: &str,
    mut args: Vec<Arg<'_>>,
    window: Window,
) -> Result<(Vec<T>, u64)> {
    let (total,): (i64,) = conn
        .fetch_one(&format!("SELECT COUNT(*) {from_where}"), &args)
        .await?;
    let sql = format!(
        "{select} LIMIT ${} OFFSET ${}",
        args.len() + 1,
        args.len() + 2
    );
    args.extend(window_args(window));
    let rows: Vec<R> = conn.fetch_all(&sql, &args).await?;
    Ok((
        rows.into_iter().map(T::from).collect(),
        unsigned("total", total)?,
    ))
}

pub(super) async fn storage_usage(db: Db<'_>, top: u64) -> Result<StorageUsage> {
    let mut reader = db.reader().await?;
    let mut conn = reader.conn();
    // PostgreSQL sums BIGINTs as NUMERIC: cast back.
    let totals: TotalsRow = conn
        .fetch_one(
            "SELECT COUNT(*) AS allocations,
                    CAST(COALESCE(SUM(used_bytes), 0) AS BIGINT) AS used_bytes,
                    CAST(COALESCE(SUM(reserved_bytes), 0) AS BIGINT) AS reserved_bytes,
                    CAST(COALESCE(SUM(file_count), 0) AS BIGINT) AS file_count
             FROM allocations",
            &[],
        )
        .await?;
    let rows: Vec<AllocationUsageRow> = conn
        .fetch_all(
            "SELECT a.id, a.owner_type, a.owner_id,
                    COALESCE(p.name, u.email, a.owner_id) AS owner_name,
                    a.quota_bytes, a.used_bytes, a.reserved_bytes, a.file_count, a.max_files
             FROM allocations a
             LEFT JOIN projects p ON a.owner_type = 'project' AND p.id = a.owner_id
             LEFT JOIN users u ON a.owner_type = 'user' AND u.id = a.owner_id
             ORDER BY a.used_bytes + a.reserved_bytes DESC, a.id
             LIMIT $1",
            &[Arg::Int(i64::try_from(top).unwrap_or(i64::MAX))],
        )
        .await?;
    Ok(StorageUsage {
        allocations: unsigned("allocations", totals.allocations)?,
        used_bytes: unsigned("used_bytes", totals.used_bytes)?,
        reserved_bytes: unsigned("reserved_bytes", totals.reserved_bytes)?,
        file_count: unsigned("file_count", totals.file_count)?,
        top: rows
            .into_iter()
            .map(AllocationUsageRow::into_usage)
            .collect::<Result<_>>()?,
    })
}

#[cfg(test)]
mod tests {
    use super::contains_pattern;

    #[test]
    fn email_filters_match_literally() {
        assert_eq!(contains_pattern("Ada"), "%ada%");
        assert_eq!(contains_pattern("a_b%c\\"), "%a\\_b\\%c\\\\%");
    }
}
