//! Wall-clock timestamps for lines that scripts and people read later (`events`, `member
//! --json`), so a line can be matched with logs from elsewhere.
//!
//! Formatted by hand from [`SystemTime`]: one format, UTC, whole seconds, is all the tool
//! prints, and no date crate is among its dependencies.

use std::time::{SystemTime, UNIX_EPOCH};

/// `at` as RFC 3339 in UTC to the second, `2026-12-01T06:20:01Z`. A time before 1970 (a
/// clock set wrong) prints as the epoch rather than failing the line.
pub fn rfc3339(at: SystemTime) -> String {
    let secs = at.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let (year, month, day) = civil_from_days(secs / 86_400);
    let in_day = secs % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        in_day / 3600,
        in_day / 60 % 60,
        in_day % 60
    )
}

/// The current time as [`rfc3339`] formats it.
pub fn now() -> String {
    rfc3339(SystemTime::now())
}

/// The proleptic Gregorian (year, month, day) of `days` since 1970-01-01: counted in
/// 400-year eras of 146 097 days from 0000-03-01, with years starting in March so that the
/// leap day ends a year.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let from_march_0000 = days + 719_468;
    let era = from_march_0000 / 146_097;
    let day_of_era = from_march_0000 % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = era * 400 + year_of_era + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn at(secs: u64) -> String {
        rfc3339(UNIX_EPOCH + Duration::from_secs(secs))
    }

    #[test]
    fn dates_and_times_come_out_in_utc() {
        assert_eq!(at(0), "1970-01-01T00:00:00Z");
        assert_eq!(at(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(at(951_868_799), "2000-02-29T23:59:59Z");
        assert_eq!(at(1_798_957_201), "2027-01-03T06:20:01Z");
        assert_eq!(at(4_107_542_400), "2100-03-01T00:00:00Z");
        assert_eq!(at(1_709_164_799), "2024-02-28T23:59:59Z");
        assert_eq!(at(1_796_106_001), "2026-12-01T06:20:01Z");
    }

    #[test]
    fn a_time_before_the_epoch_prints_as_the_epoch() {
        assert_eq!(
            rfc3339(UNIX_EPOCH - Duration::from_secs(5)),
            "1970-01-01T00:00:00Z"
        );
    }
}
