//! The two date-time shapes DocSpace writes.
//!
//! * `ApiDateTime`: 7 fraction digits and an offset, `Z` for UTC: `2026-05-05T08:21:18.0000000Z`.
//! * plain UTC (`expires` of a sign-in, backup history): `2026-05-05T08:21:18`, with
//!   [`NEVER`] = `0001-01-01T00:00:00` for "no date".
//!
//! Times are carried as Unix milliseconds everywhere else in the project.

use time::OffsetDateTime;

/// DocSpace's "no date" value.
pub const NEVER: &str = "0001-01-01T00:00:00";

fn to_datetime(unix_ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(unix_ms) * 1_000_000).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// `ApiDateTime` in UTC: `YYYY-MM-DDTHH:MM:SS.fffffffZ`.
pub fn api_datetime(unix_ms: i64) -> String {
    let t = to_datetime(unix_ms);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:07}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.nanosecond() / 100
    )
}

/// A plain UTC date-time without fraction or zone, as DocSpace writes database dates.
pub fn plain_utc(unix_ms: i64) -> String {
    let t = to_datetime(unix_ms);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Now, in Unix milliseconds.
pub fn now_ms() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_match_docspace() {
        // 2026-05-05T08:21:18.123Z
        let ms = 1_777_969_278_123;
        assert_eq!(api_datetime(ms), "2026-05-05T08:21:18.1230000Z");
        assert_eq!(plain_utc(ms), "2026-05-05T08:21:18");
    }
}
