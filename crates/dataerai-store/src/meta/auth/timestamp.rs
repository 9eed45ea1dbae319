//! How a `DateTime<Utc>` is stored: `TIMESTAMPTZ` in PostgreSQL; in SQLite,
//! RFC 3339 text in one fixed width (`2026-12-06T12:41:03.123456Z`: always six
//! fractional digits and `Z`), so that comparing and sorting the text compares
//! and sorts the times. Both keep microseconds; finer digits are cut.
//!
//! sqlx's own SQLite encoding of `DateTime` varies its width (`+00:00`,
//! trimmed fractions), which breaks text order, hence this type.

use chrono::{DateTime, SecondsFormat, Utc};
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArgumentBuffer, PgTypeInfo, PgValueRef};
use sqlx::sqlite::{SqliteArgumentValue, SqliteTypeInfo, SqliteValueRef};
use sqlx::{Decode, Encode, Postgres, Sqlite, Type};

/// A point in time as a column value of either backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp(pub DateTime<Utc>);

impl From<Timestamp> for DateTime<Utc> {
    fn from(t: Timestamp) -> Self {
        t.0
    }
}

/// The SQLite text of `t`.
pub fn to_text(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

impl Type<Sqlite> for Timestamp {
    fn type_info() -> SqliteTypeInfo {
        <String as Type<Sqlite>>::type_info()
    }

    fn compatible(ty: &SqliteTypeInfo) -> bool {
        <String as Type<Sqlite>>::compatible(ty)
    }
}

impl<'q> Encode<'q, Sqlite> for Timestamp {
    fn encode_by_ref(&self, buf: &mut Vec<SqliteArgumentValue<'q>>) -> Result<IsNull, BoxDynError> {
        Encode::<Sqlite>::encode(to_text(self.0), buf)
    }
}

impl<'r> Decode<'r, Sqlite> for Timestamp {
    fn decode(value: SqliteValueRef<'r>) -> Result<Self, BoxDynError> {
        let text = <&str as Decode<Sqlite>>::decode(value)?;
        let t = DateTime::parse_from_rfc3339(text)
            .map_err(|e| format!("bad timestamp {text:?} in the database: {e}"))?;
        Ok(Timestamp(t.with_timezone(&Utc)))
    }
}

impl Type<Postgres> for Timestamp {
    fn type_info() -> PgTypeInfo {
        <DateTime<Utc> as Type<Postgres>>::type_info()
    }

    fn compatible(ty: &PgTypeInfo) -> bool {
        <DateTime<Utc> as Type<Postgres>>::compatible(ty)
    }
}

impl Encode<'_, Postgres> for Timestamp {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        Encode::<Postgres>::encode_by_ref(&self.0, buf)
    }
}

impl<'r> Decode<'r, Postgres> for Timestamp {
    fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
        Ok(Timestamp(<DateTime<Utc> as Decode<Postgres>>::decode(
            value,
        )?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_has_one_width_and_sorts_like_time() {
        let times = [
            DateTime::from_timestamp_micros(0).unwrap(),
            DateTime::from_timestamp_micros(1).unwrap(),
            DateTime::from_timestamp_micros(999_999).unwrap(),
            DateTime::from_timestamp_micros(1_000_000).unwrap(),
            DateTime::from_timestamp_micros(1_765_000_000_123_000).unwrap(),
            DateTime::from_timestamp_micros(1_765_000_000_123_456).unwrap(),
        ];
        let texts: Vec<String> = times.iter().map(|t| to_text(*t)).collect();
        assert_eq!(texts[0], "1970-01-01T00:00:00.000000Z");
        assert_eq!(texts[4], "2025-12-06T05:46:40.123000Z");
        assert!(texts.iter().all(|t| t.len() == texts[0].len()));
        assert!(texts.windows(2).all(|w| w[0] < w[1]), "{texts:?}");
        // Nanoseconds are cut, as PostgreSQL cuts them.
        let t = DateTime::from_timestamp_nanos(1_765_000_000_123_456_789);
        assert_eq!(to_text(t), "2025-12-06T05:46:40.123456Z");
    }
}
