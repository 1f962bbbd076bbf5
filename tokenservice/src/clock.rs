//! Time as epoch milliseconds (the REST API's unit), and adding calendar months to it.
//!
//! Handlers never read the clock: `main` and the server pass `now` in, so expiry and paging
//! are tested with fixed times.

use std::time::{SystemTime, UNIX_EPOCH};

const MILLIS_PER_DAY: i64 = 86_400_000;

/// The wall clock, in milliseconds since the Unix epoch (0 if the clock is before 1970).
pub fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// `millis` plus `months` calendar months in UTC, keeping the time of day. A day that does not
/// exist in the target month becomes that month's last day (31 January + 1 month = 28 or 29
/// February), as `java.time`'s `plusMonths` does, which the application's plugin uses.
pub fn add_months(millis: i64, months: u32) -> i64 {
    let days = millis.div_euclid(MILLIS_PER_DAY);
    let time_of_day = millis.rem_euclid(MILLIS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    let total = year * 12 + i64::from(month - 1) + i64::from(months);
    let (year, month) = (
        total.div_euclid(12),
        u32::try_from(total.rem_euclid(12)).unwrap_or(0) + 1,
    );
    let day = day.min(days_in_month(year, month));
    days_from_civil(year, month, day)
        .saturating_mul(MILLIS_PER_DAY)
        .saturating_add(time_of_day)
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 to (year, month 1..=12, day 1..=31); H. Hinnant's `civil_from_days`.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let month = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The inverse of [`civil_from_days`]; H. Hinnant's `days_from_civil`.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let month = i64::from(month);
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2020-02-04T16:01:02.985Z, the `created` of token 64 in seed 004.
    const SEED_CREATED: i64 = 1_580_832_062_985;

    #[test]
    fn six_months_after_the_seed_token_is_its_valid_until() {
        // Seed 004's token 64: created 1580832062985, validUntil 1596556862985 (2020-08-04).
        assert_eq!(add_months(SEED_CREATED, 6), 1_596_556_862_985);
    }

    #[test]
    fn twelve_months_after_the_seed_token_is_a_year_later() {
        // Token 63 in seed 004: created 1580832051168, validUntil 1612454451168 (2021-02-04).
        assert_eq!(add_months(1_580_832_051_168, 12), 1_612_454_451_168);
    }

    #[test]
    fn a_missing_day_becomes_the_last_day_of_the_month() {
        let jan_31_2024 = days_from_civil(2024, 1, 31) * MILLIS_PER_DAY + 1234;
        assert_eq!(
            add_months(jan_31_2024, 1),
            days_from_civil(2024, 2, 29) * MILLIS_PER_DAY + 1234
        );
        let jan_31_2023 = days_from_civil(2023, 1, 31) * MILLIS_PER_DAY;
        assert_eq!(
            add_months(jan_31_2023, 1),
            days_from_civil(2023, 2, 28) * MILLIS_PER_DAY
        );
    }

    #[test]
    fn months_carry_into_the_next_year() {
        let nov_15 = days_from_civil(2025, 11, 15) * MILLIS_PER_DAY;
        assert_eq!(
            add_months(nov_15, 3),
            days_from_civil(2026, 2, 15) * MILLIS_PER_DAY
        );
        assert_eq!(add_months(nov_15, 0), nov_15);
    }

    #[test]
    fn civil_dates_round_trip() {
        for days in [-1_000_000, -1, 0, 1, 18_000, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
    }
}
