//! The sign-in tables' millisecond columns became times (SQLite migration
//! 0005, PostgreSQL 0004): a database at the schema before, with a row in
//! every such column, upgrades in place and answers the same instants.

use std::path::Path;

use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::migrate::Migrator;

use super::db::{Arg, AuthBackend};
use super::{AuthStore, IssuedTokens, RefreshOutcome};
use crate::meta::postgres::PgStore;
use crate::meta::sqlite::SqliteStore;
use crate::meta::Window;

/// An instant with milliseconds, as the old columns held them.
const MS: i64 = 1_765_000_000_123;
/// 2100-01-01T00:00:00.456Z: still in the future when the test runs.
const FUTURE_MS: i64 = 4_102_444_800_456;

fn at(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap()
}

/// Rows at the old schema, in plain SQL both backends accept.
fn old_rows() -> String {
    format!(
        "INSERT INTO users (id, email, created_at) VALUES
             ('u1', 'a@x.org', '2025-01-01T00:00:00.000000Z'),
             ('u2', 'b@x.org', '2025-01-01T00:00:00.000000Z');
         INSERT INTO projects (id, name, description, root_collection_id, created_by, created_at)
             VALUES ('p1', 'P', '', 'c1', 'u1', '2025-01-01T00:00:00.000000Z');
         INSERT INTO memberships (project_id, user_id, role, added_at_ms) VALUES ('p1', 'u1', 'owner', {MS});
         INSERT INTO memberships (project_id, user_id, role) VALUES ('p1', 'u2', 'viewer');
         INSERT INTO tokens (id, user_id, name, token_hash, scopes, created_at, expires_at, kind,
                 family_id, revoked_at_ms) VALUES
             ('t1', 'u1', 'old', 'h1', 'read', '2025-01-01T00:00:00.000000Z', NULL, 'pat', NULL, {revoked}),
             ('t2', 'u1', 'new', 'h2', 'read', '2025-01-02T00:00:00.000000Z', NULL, 'pat', NULL, NULL);
         INSERT INTO web_sessions (id_hash, user_id, csrf_token, created_at_ms, expires_at_ms)
             VALUES ('s1', 'u1', 'csrf', {MS}, {FUTURE_MS});
         INSERT INTO device_codes (device_hash, user_code, client_id, scopes, status, user_id,
                 interval_s, last_poll_ms, created_at_ms, expires_at_ms)
             VALUES ('d1', 'AAAA-BBBB', 'cli', 'read,write', 'pending', NULL, 5, {polled}, {MS}, {FUTURE_MS});
         INSERT INTO refresh_tokens (token_hash, family_id, user_id, scopes, created_at_ms,
                 expires_at_ms, used_at_ms, revoked_at_ms) VALUES
             ('r1', 'f1', 'u1', 'read', {MS}, {FUTURE_MS}, NULL, NULL),
             ('r2', 'f2', 'u1', 'read', {MS}, {FUTURE_MS}, {used}, {revoked_family});
         INSERT INTO login_failures (email, client_addr, at_ms) VALUES ('a@x.org', '1.2.3.4', {failed});
         INSERT INTO audit_events (id, at_ms, actor_user_id, action, target_type, target_id,
                 details, client_addr)
             VALUES ('e1', {audited}, 'u1', 'x', NULL, NULL, '{{\"k\":1}}', '127.0.0.1');",
        revoked = MS + 1,
        polled = MS + 2,
        used = MS + 3,
        revoked_family = MS + 4,
        failed = MS + 5,
        audited = MS + 6,
    )
}

/// Bring the empty database behind `pool` to the schema of `backend` before
/// version `first_new`, and insert `rows` ([`old_rows`]).
async fn fill_old_schema<'p, P>(pool: P, rows: &'p str, backend: &str, first_new: i64)
where
    P: sqlx::Acquire<'p> + sqlx::Executor<'p> + Copy,
    <P::Connection as std::ops::Deref>::Target: sqlx::migrate::Migrate,
{
    let all = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(backend);
    let copy = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(all).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap();
        let version: i64 = name.split('_').next().unwrap().parse().unwrap();
        if version < first_new {
            std::fs::copy(&path, copy.path().join(name)).unwrap();
        }
    }
    let old = Migrator::new(copy.path()).await.unwrap();
    old.run(pool).await.unwrap();
    sqlx::raw_sql(rows).execute(pool).await.unwrap();
}

/// Every converted column holds the instant its milliseconds meant, and the
/// store answers with it.
async fn upgraded_values_are_the_same_instants<S: AuthBackend + AuthStore>(s: &S) {
    let mut db = s.auth_db().reader().await.unwrap();
    let mut conn = db.conn();
    let expected: &[(&str, Option<i64>)] = &[
        (
            "SELECT revoked_at FROM tokens WHERE id = 't1'",
            Some(MS + 1),
        ),
        ("SELECT revoked_at FROM tokens WHERE id = 't2'", None),
        (
            "SELECT added_at FROM memberships WHERE user_id = 'u1'",
            Some(MS),
        ),
        (
            "SELECT added_at FROM memberships WHERE user_id = 'u2'",
            Some(0),
        ),
        ("SELECT created_at FROM web_sessions", Some(MS)),
        ("SELECT expires_at FROM web_sessions", Some(FUTURE_MS)),
        ("SELECT last_poll_at FROM device_codes", Some(MS + 2)),
        ("SELECT created_at FROM device_codes", Some(MS)),
        ("SELECT expires_at FROM device_codes", Some(FUTURE_MS)),
        (
            "SELECT created_at FROM refresh_tokens WHERE token_hash = 'r1'",
            Some(MS),
        ),
        (
            "SELECT expires_at FROM refresh_tokens WHERE token_hash = 'r1'",
            Some(FUTURE_MS),
        ),
        (
            "SELECT used_at FROM refresh_tokens WHERE token_hash = 'r1'",
            None,
        ),
        (
            "SELECT revoked_at FROM refresh_tokens WHERE token_hash = 'r1'",
            None,
        ),
        (
            "SELECT used_at FROM refresh_tokens WHERE token_hash = 'r2'",
            Some(MS + 3),
        ),
        (
            "SELECT revoked_at FROM refresh_tokens WHERE token_hash = 'r2'",
            Some(MS + 4),
        ),
        ("SELECT at FROM login_failures", Some(MS + 5)),
        ("SELECT at FROM audit_events", Some(MS + 6)),
    ];
    for (sql, ms) in expected {
        let (got,): (Option<DateTime<Utc>>,) = conn.fetch_one(sql, &[]).await.unwrap();
        assert_eq!(got, ms.map(at), "{sql}");
    }
    let (n,): (i64,) = conn
        .fetch_one(
            "SELECT COUNT(*) FROM audit_events WHERE at > $1",
            &[Arg::Time(at(MS))],
        )
        .await
        .unwrap();
    assert_eq!(n, 1, "converted times compare with bound ones");
    drop(db);

    let now = Utc::now();
    let session = s.session("s1", now).await.unwrap().unwrap();
    assert_eq!(session.expires_at, at(FUTURE_MS));
    let device = s.device_by_user_code("AAAA-BBBB").await.unwrap().unwrap();
    assert_eq!(device.expires_at, at(FUTURE_MS));
    assert!(device.awaits_decision(now));
    let failures = s
        .login_failures_since("a@x.org", "1.2.3.4", at(MS))
        .await
        .unwrap();
    assert_eq!(
        (failures.by_email, failures.oldest_by_email),
        (1, Some(at(MS + 5)))
    );
    let tokens = s.list_tokens("u1").await.unwrap();
    let revoked: Vec<_> = tokens
        .iter()
        .map(|t| (t.name.as_str(), t.revoked))
        .collect();
    assert_eq!(revoked, [("new", false), ("old", true)]);
    let all = Window {
        limit: 10,
        offset: 0,
    };
    let (members, _) = s.list_members("p1", all).await.unwrap();
    let added: Vec<_> = members
        .iter()
        .map(|m| (m.user_id.as_str(), m.added_at))
        .collect();
    assert_eq!(added, [("u2", at(0)), ("u1", at(MS))]);
    let (events, _) = s.list_audit(all).await.unwrap();
    assert_eq!(events[0].at, at(MS + 6));
    assert_eq!(
        serde_json::Value::Object(events[0].details.clone()),
        json!({"k": 1})
    );

    let issue = IssuedTokens {
        access_hash: "a".into(),
        access_expires_at: now + chrono::Duration::hours(1),
        refresh_hash: "r3".into(),
        refresh_expires_at: now + chrono::Duration::days(1),
        name: "device login".into(),
    };
    assert!(matches!(
        s.rotate_refresh("r1", now, &issue).await.unwrap(),
        RefreshOutcome::Rotated { .. }
    ));
    assert_eq!(
        s.rotate_refresh("r2", now, &issue).await.unwrap(),
        RefreshOutcome::Invalid
    );
}

#[tokio::test]
async fn sqlite_upgrades_millisecond_columns_to_fixed_width_text() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let rows = old_rows();
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true);
    let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
    fill_old_schema(&pool, &rows, "sqlite", 5).await;
    pool.close().await;
    let s = SqliteStore::open(&path).await.unwrap();
    let texts: Vec<(String,)> = sqlx::query_as(
        "SELECT revoked_at FROM tokens WHERE id = 't1'
         UNION ALL SELECT added_at FROM memberships WHERE user_id = 'u2'",
    )
    .fetch_all(&s.pool)
    .await
    .unwrap();
    assert_eq!(
        texts,
        [
            ("2025-12-06T05:46:40.124000Z".to_string(),),
            ("1970-01-01T00:00:00.000000Z".to_string(),)
        ]
    );
    upgraded_values_are_the_same_instants(&s).await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL: run by make test-scaleout"]
async fn postgres_upgrades_millisecond_columns_to_timestamptz() {
    let Some(url) = crate::meta::conformance::scratch_pg_url("upgrade") else {
        return;
    };
    use sqlx::migrate::MigrateDatabase;
    let rows = old_rows();
    sqlx::Postgres::create_database(&url).await.unwrap();
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    fill_old_schema(&pool, &rows, "postgres", 4).await;
    pool.close().await;
    let s = PgStore::open(&url).await.unwrap();
    upgraded_values_are_the_same_instants(&s).await;
}

/// Audit details that are not a JSON object are an error, not `{}`.
async fn corrupt_audit_details_are_an_error<S: AuthBackend + AuthStore>(s: &S, details: &str) {
    let mut db = s.auth_db().reader().await.unwrap();
    db.conn()
        .execute(
            "INSERT INTO audit_events (id, at, action, details) VALUES ('bad', $1, 'x', $2)",
            &[Arg::Time(Utc::now()), Arg::Text(details)],
        )
        .await
        .unwrap();
    drop(db);
    let all = Window {
        limit: 10,
        offset: 0,
    };
    assert!(s.list_audit(all).await.is_err());
}

#[tokio::test]
async fn sqlite_corrupt_audit_details_are_an_error() {
    for details in ["{not json", "[1]"] {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(&dir.path().join("t.db")).await.unwrap();
        corrupt_audit_details_are_an_error(&s, details).await;
    }
}
