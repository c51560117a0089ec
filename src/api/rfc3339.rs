//! RFC 3339 timestamps as the Metrics API prints them: UTC, whole seconds, `Z` suffix
//! (`2021-10-03T09:36:52Z`), like apimachinery's `metav1.Time`.
//!
//! The sub-second part is dropped by rounding down, so an instant just before the epoch prints
//! as `1969-12-31T23:59:59Z`. Every [`Timestamp`] (1677–2262) has a four-digit year. A zero
//! timestamp means "unknown" and is printed by callers as JSON `null`; this module does not
//! decide that.

use crate::kubelet::Timestamp;

const SECONDS_PER_DAY: i64 = 86_400;

/// Appends `t` as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn write_rfc3339_seconds(t: Timestamp, out: &mut String) {
    let seconds = t.unix_seconds();
    let (year, month, day) = civil_from_days(seconds.div_euclid(SECONDS_PER_DAY));
    let second_of_day = seconds.rem_euclid(SECONDS_PER_DAY);
    push_digits(year, 4, out);
    out.push('-');
    push_digits(month, 2, out);
    out.push('-');
    push_digits(day, 2, out);
    out.push('T');
    push_digits(second_of_day / 3600, 2, out);
    out.push(':');
    push_digits(second_of_day / 60 % 60, 2, out);
    out.push(':');
    push_digits(second_of_day % 60, 2, out);
    out.push('Z');
}

/// [`write_rfc3339_seconds`] into a new string.
pub fn rfc3339_seconds_string(t: Timestamp) -> String {
    let mut s = String::with_capacity(20);
    write_rfc3339_seconds(t, &mut s);
    s
}

/// The proleptic Gregorian (year, month 1–12, day 1–31) of a day counted from 1970-01-01.
///
/// Works in 400-year eras that start on March 1st, so the leap day is the last day of its
/// year and month lengths follow a fixed 153-days-per-5-months pattern.
fn civil_from_days(days_since_epoch: i64) -> (i64, i64, i64) {
    // 400 years; 0000-03-01 is 719 468 days before 1970-01-01.
    const DAYS_PER_ERA: i64 = 146_097;
    let days = days_since_epoch + 719_468;
    let era = days.div_euclid(DAYS_PER_ERA);
    let day_of_era = days.rem_euclid(DAYS_PER_ERA);
    // Leap days fall every 4 years, except every 100th, except every 400th (the era's last).
    let year_of_era = (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153; // 0 = March … 11 = February
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = era * 400 + year_of_era + i64::from(month <= 2);
    (year, month, day)
}

/// Appends a non-negative `value` zero-padded to `width` digits.
fn push_digits(value: i64, width: usize, out: &mut String) {
    let mut digits = itoa::Buffer::new();
    let text = digits.format(value);
    for _ in text.len()..width {
        out.push('0');
    }
    out.push_str(text);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use proptest::test_runner::{Config, RngSeed};

    fn at(seconds: i64) -> String {
        rfc3339_seconds_string(Timestamp::from_unix_seconds(seconds))
    }

    #[test]
    fn prints_utc_whole_seconds() {
        assert_eq!(at(0), "1970-01-01T00:00:00Z");
        assert_eq!(at(1_633_253_812), "2021-10-03T09:36:52Z");
        assert_eq!(at(1_633_251_725), "2021-10-03T09:02:05Z");
    }

    #[test]
    fn drops_the_sub_second_part_rounding_down() {
        let t = Timestamp::from_unix_millis(1_633_253_812_999);
        assert_eq!(rfc3339_seconds_string(t), "2021-10-03T09:36:52Z");
        let just_before_epoch = Timestamp::from_unix_nanos(-1);
        assert_eq!(rfc3339_seconds_string(just_before_epoch), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn handles_leap_days_centuries_and_2038() {
        assert_eq!(at(-1), "1969-12-31T23:59:59Z");
        assert_eq!(at(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(at(4_107_542_400), "2100-03-01T00:00:00Z");
        assert_eq!(at(1 << 31), "2038-01-19T03:14:08Z");
    }

    #[test]
    fn covers_the_whole_timestamp_range() {
        let min = Timestamp::from_unix_nanos(i64::MIN);
        let max = Timestamp::from_unix_nanos(i64::MAX);
        assert_eq!(rfc3339_seconds_string(min), "1677-09-21T00:12:43Z");
        assert_eq!(rfc3339_seconds_string(max), "2262-04-11T23:47:16Z");
    }

    /// A plain reference: walk years, then months, from 1970.
    fn reference(seconds: i64) -> String {
        let is_leap = |y: i64| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        let year_days = |y: i64| if is_leap(y) { 366 } else { 365 };
        let mut days = seconds.div_euclid(86_400);
        let mut year = 1970;
        while days < 0 {
            year -= 1;
            days += year_days(year);
        }
        while days >= year_days(year) {
            days -= year_days(year);
            year += 1;
        }
        let feb = if is_leap(year) { 29 } else { 28 };
        let mut month = 1;
        for len in [31, feb, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31] {
            if days < len {
                break;
            }
            days -= len;
            month += 1;
        }
        let s = seconds.rem_euclid(86_400);
        format!(
            "{year:04}-{month:02}-{:02}T{:02}:{:02}:{:02}Z",
            days + 1,
            s / 3600,
            s / 60 % 60,
            s % 60
        )
    }

    proptest! {
        #![proptest_config(Config {
            cases: 3000,
            rng_seed: RngSeed::Fixed(0x5eed_0003),
            failure_persistence: None,
            ..Config::default()
        })]

        #[test]
        fn matches_a_year_by_year_reference(ns in any::<i64>()) {
            let t = Timestamp::from_unix_nanos(ns);
            prop_assert_eq!(rfc3339_seconds_string(t), reference(t.unix_seconds()));
        }
    }
}
