//! The one way the metadata store writes a point in time.
//!
//! In Rust every stored time is a `DateTime<Utc>`; PostgreSQL keeps it as
//! `TIMESTAMPTZ`, SQLite as `TEXT` in one fixed RFC 3339 shape:
//! `2026-12-06T12:41:04.123456Z` (UTC, `Z`, always six fractional digits), so
//! that comparing or sorting the text compares or sorts the times.
//!
//! Bind through [`db_time`]: the resulting [`DbTime`] encodes as that text on
//! SQLite and as a native timestamp on PostgreSQL. Both keep microseconds, so
//! times are truncated to microseconds first: what a caller is answered is
//! exactly what a later read returns. Reading needs no helper: a row field of
//! type `DateTime<Utc>` decodes from either column type.

use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::{Database, Decode, Encode, Postgres, Sqlite, Type};

/// A time as the metadata store binds it (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct DbTime(DateTime<Utc>);

/// `t`, truncated to microseconds, ready to bind.
pub fn db_time(t: DateTime<Utc>) -> DbTime {
    DbTime(t.trunc_subsecs(6))
}

/// The current time as the database will keep it (microseconds).
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

impl DbTime {
    /// The stored time.
    pub fn get(self) -> DateTime<Utc> {
        self.0
    }

    /// The fixed text shape SQLite stores (`…T…​.uuuuuuZ`).
    pub fn text(self) -> String {
        self.0.to_rfc3339_opts(SecondsFormat::Micros, true)
    }
}

impl From<DbTime> for DateTime<Utc> {
    fn from(t: DbTime) -> Self {
        t.0
    }
}

impl Type<Sqlite> for DbTime {
    fn type_info() -> <Sqlite as Database>::TypeInfo {
        <String as Type<Sqlite>>::type_info()
    }
    fn compatible(ty: &<Sqlite as Database>::TypeInfo) -> bool {
        <DateTime<Utc> as Type<Sqlite>>::compatible(ty)
    }
}

impl<'q> Encode<'q, Sqlite> for DbTime {
    fn encode_by_ref(
        &self,
        buf: &mut <Sqlite as Database>::ArgumentBuffer<'q>,
    ) -> Result<IsNull, BoxDynError> {
        <String as Encode<'q, Sqlite>>::encode(self.text(), buf)
    }
}

impl<'r> Decode<'r, Sqlite> for DbTime {
    fn decode(value: <Sqlite as Database>::ValueRef<'r>) -> Result<Self, BoxDynError> {
        Ok(DbTime(<DateTime<Utc> as Decode<'r, Sqlite>>::decode(
            value,
        )?))
    }
}

impl Type<Postgres> for DbTime {
    fn type_info() -> <Postgres as Database>::TypeInfo {
        <DateTime<Utc> as Type<Postgres>>::type_info()
    }
}

impl<'q> Encode<'q, Postgres> for DbTime {
    fn encode_by_ref(
        &self,
        buf: &mut <Postgres as Database>::ArgumentBuffer<'q>,
    ) -> Result<IsNull, BoxDynError> {
        <DateTime<Utc> as Encode<'q, Postgres>>::encode_by_ref(&self.0, buf)
    }
}

impl<'r> Decode<'r, Postgres> for DbTime {
    fn decode(value: <Postgres as Database>::ValueRef<'r>) -> Result<Self, BoxDynError> {
        Ok(DbTime(<DateTime<Utc> as Decode<'r, Postgres>>::decode(
            value,
        )?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn text_is_fixed_width_utc_with_microseconds() {
        let t = Utc.with_ymd_and_hms(2026, 12, 6, 12, 41, 4).unwrap();
        assert_eq!(db_time(t).text(), "2026-12-06T12:41:04.000000Z");
        let t = t + chrono::Duration::nanoseconds(123_456_789);
        assert_eq!(db_time(t).text(), "2026-12-06T12:41:04.123456Z");
        assert_eq!(db_time(t).get().timestamp_subsec_nanos(), 123_456_000);
    }

    #[test]
    fn text_order_is_time_order() {
        let base = Utc.with_ymd_and_hms(1999, 12, 31, 23, 59, 59).unwrap();
        let times = [0i64, 1, 999_999, 1_000_000, 86_400_000_000]
            .map(|us| db_time(base + chrono::Duration::microseconds(us)));
        for pair in times.windows(2) {
            assert!(pair[0] < pair[1]);
            assert!(pair[0].text() < pair[1].text());
        }
    }

    #[tokio::test]
    async fn sqlite_round_trip_keeps_the_instant_and_the_text() {
        let pool = sqlx::SqlitePool::connect("sqlite::memory:").await.unwrap();
        let t = db_time(Utc::now());
        let (text, back): (String, DateTime<Utc>) = sqlx::query_as("SELECT $1, $1")
            .bind(t)
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(text, t.text());
        assert_eq!(back, t.get());
    }
}
