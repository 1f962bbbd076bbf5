//! Calendar arithmetic over unix seconds: the `time` field of TISJWT error bodies and licence dates.
//!
//! The core never reads a clock; callers pass `now` in. Algorithms from Howard Hinnant's
//! "chrono-Compatible Low-Level Date Algorithms" (days_from_civil / civil_from_days).

/// Seconds since 1970-01-01T00:00:00Z.
pub type UnixSeconds = i64;

const SECONDS_PER_DAY: i64 = 86_400;

/// Formats `now` as the TISJWT plugin does: `2022-06-15 10:50:58 +0000` (UTC).
pub fn format_tis_time(now: UnixSeconds) -> String {
    let days = now.div_euclid(SECONDS_PER_DAY);
    let secs = now.rem_euclid(SECONDS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} +0000",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// Parses `YYYY-MM-DD` and returns the first second of the day after it, so that a licence
/// "valid until 2027-06-30" is valid through the whole of that day (UTC).
pub fn end_of_day(date: &str) -> Option<UnixSeconds> {
    let bytes = date.as_bytes();
    if bytes.len() != 10 || bytes.get(4) != Some(&b'-') || bytes.get(7) != Some(&b'-') {
        return None;
    }
    let year: i64 = digits(date.get(0..4)?)?;
    let month: i64 = digits(date.get(5..7)?)?;
    let day: i64 = digits(date.get(8..10)?)?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    Some((days_from_civil(year, month, day) + 1) * SECONDS_PER_DAY)
}

fn digits(s: &str) -> Option<i64> {
    if s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse().ok()
    } else {
        None
    }
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_the_seed_example_time() {
        // 2022-06-15 10:50:58 UTC, the time in seed 000's "No TisJwt" body.
        assert_eq!(format_tis_time(1_655_290_258), "2022-06-15 10:50:58 +0000");
    }

    #[test]
    fn formats_the_epoch_and_a_leap_day() {
        assert_eq!(format_tis_time(0), "1970-01-01 00:00:00 +0000");
        assert_eq!(format_tis_time(951_782_400), "2000-02-29 00:00:00 +0000");
    }

    #[test]
    fn licence_date_covers_the_whole_day() {
        // 2027-06-30 ends at 2027-07-01T00:00:00Z.
        let end = end_of_day("2027-06-30").unwrap();
        assert_eq!(format_tis_time(end), "2027-07-01 00:00:00 +0000");
        assert_eq!(format_tis_time(end - 1), "2027-06-30 23:59:59 +0000");
    }

    #[test]
    fn malformed_dates_are_refused() {
        for bad in [
            "",
            "2027-6-30",
            "2027-02-29",
            "2027-13-01",
            "2027-00-10",
            "2027/06/30",
            "+027-06-30",
            "2027-06-3a",
        ] {
            assert_eq!(end_of_day(bad), None, "{bad}");
        }
        assert!(end_of_day("2028-02-29").is_some());
    }
}
