//! Go's `time.Duration.String()`, which is how the Metrics API spells `window`: `0s`, `1ns`,
//! `1.5µs`, `500ms`, `15.027s`, `1m0s`, `1h2m3.5s`.
//!
//! Only non-negative durations exist here (a `std::time::Duration`); Go's duration is an `i64`
//! of nanoseconds, so anything longer than `i64::MAX` ns (about 292 years) prints as that
//! maximum, `2562047h47m16.854775807s`.

use std::time::Duration;

const MICRO: u64 = 1_000;
const MILLI: u64 = 1_000_000;
const SECOND: u64 = 1_000_000_000;

/// Appends `d` as Go prints a `time.Duration`.
pub fn write_go_duration(d: Duration, out: &mut String) {
    let ns = u64::try_from(d.as_nanos()).map_or(i64::MAX as u64, |n| n.min(i64::MAX as u64));
    let mut digits = itoa::Buffer::new();
    if ns == 0 {
        out.push_str("0s");
    } else if ns < MICRO {
        out.push_str(digits.format(ns));
        out.push_str("ns");
    } else if ns < MILLI {
        push_decimal(ns, MICRO, 3, out);
        // U+00B5 MICRO SIGN, as Go writes it (not U+03BC GREEK SMALL LETTER MU).
        out.push_str("\u{b5}s");
    } else if ns < SECOND {
        push_decimal(ns, MILLI, 6, out);
        out.push_str("ms");
    } else {
        let total_secs = ns / SECOND;
        let (hours, minutes) = (total_secs / 3600, total_secs / 60 % 60);
        if hours > 0 {
            out.push_str(digits.format(hours));
            out.push('h');
        }
        if total_secs >= 60 {
            out.push_str(digits.format(minutes));
            out.push('m');
        }
        push_decimal(ns % (60 * SECOND), SECOND, 9, out);
        out.push('s');
    }
}

/// [`write_go_duration`] into a new string.
pub fn go_duration_string(d: Duration) -> String {
    let mut s = String::with_capacity(16);
    write_go_duration(d, &mut s);
    s
}

/// Appends `value / unit` with up to `places` fractional digits, trailing zeros (and a bare
/// point) removed. `unit` is `10^places`.
fn push_decimal(value: u64, unit: u64, places: usize, out: &mut String) {
    let mut digits = itoa::Buffer::new();
    out.push_str(digits.format(value / unit));
    let fraction = value % unit;
    if fraction != 0 {
        let mut padded = [b'0'; 9];
        let text = digits.format(fraction).as_bytes();
        padded[places - text.len()..places].copy_from_slice(text);
        let kept = padded[..places].iter().rposition(|&b| b != b'0').map_or(0, |i| i + 1);
        out.push('.');
        // Only ASCII digits were written into `padded`, so this never falls back; one copy
        // instead of a push per digit (this runs for every item of a list).
        out.push_str(std::str::from_utf8(&padded[..kept]).unwrap_or_default());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use proptest::test_runner::{Config, RngSeed};

    fn ns(n: u64) -> Duration {
        Duration::from_nanos(n)
    }

    #[test]
    fn prints_the_spec_examples() {
        for (d, want) in [
            (Duration::ZERO, "0s"),
            (ns(1), "1ns"),
            (ns(999), "999ns"),
            (Duration::from_micros(1), "1µs"),
            (ns(1_500), "1.5µs"),
            (ns(1_001), "1.001µs"),
            (Duration::from_micros(1_500), "1.5ms"),
            (Duration::from_millis(500), "500ms"),
            (Duration::from_millis(10), "10ms"),
            (Duration::from_secs(1), "1s"),
            (Duration::from_secs(10), "10s"),
            (Duration::from_millis(15_027), "15.027s"),
            (ns(SECOND + 1), "1.000000001s"),
            (Duration::from_secs(59), "59s"),
            (Duration::from_secs(60), "1m0s"),
            (Duration::from_millis(90_500), "1m30.5s"),
            (Duration::from_secs(3600), "1h0m0s"),
            (Duration::from_millis(3_723_500), "1h2m3.5s"),
            (Duration::from_secs(100 * 3600 + 1), "100h0m1s"),
            (ns(i64::MAX as u64), "2562047h47m16.854775807s"),
        ] {
            assert_eq!(go_duration_string(d), want, "{d:?}");
        }
    }

    #[test]
    fn the_micro_sign_is_u00b5() {
        assert_eq!(go_duration_string(ns(1_000)).as_bytes(), b"1\xc2\xb5s");
    }

    #[test]
    fn durations_beyond_i64_nanoseconds_saturate() {
        assert_eq!(go_duration_string(ns(u64::MAX)), "2562047h47m16.854775807s");
        assert_eq!(go_duration_string(Duration::MAX), "2562047h47m16.854775807s");
    }

    /// A plain reference: pick the unit by magnitude, print an exact decimal with
    /// `format!`, trim zeros.
    fn reference(n: u64) -> String {
        fn decimal(value: u64, places: u32) -> String {
            let unit = 10u64.pow(places);
            let width = places as usize;
            let s = format!("{}.{:0width$}", value / unit, value % unit);
            s.trim_end_matches('0').trim_end_matches('.').to_owned()
        }
        let n = n.min(i64::MAX as u64);
        match n {
            0 => "0s".to_owned(),
            1..1_000 => format!("{n}ns"),
            1_000..1_000_000 => format!("{}µs", decimal(n, 3)),
            1_000_000..1_000_000_000 => format!("{}ms", decimal(n, 6)),
            _ => {
                let s = n / SECOND;
                let secs = decimal(n % (60 * SECOND), 9);
                match (s / 3600, s / 60 % 60) {
                    (0, 0) => format!("{secs}s"),
                    (0, m) => format!("{m}m{secs}s"),
                    (h, m) => format!("{h}h{m}m{secs}s"),
                }
            }
        }
    }

    proptest! {
        #![proptest_config(Config {
            cases: 4000,
            rng_seed: RngSeed::Fixed(0x5eed_0002),
            failure_persistence: None,
            ..Config::default()
        })]

        #[test]
        fn matches_a_straightforward_reference(n in prop_oneof![
            any::<u64>(),
            0u64..2_000_000_000,
            (0u64..100_000, 0u32..15).prop_map(|(m, e)| m * 10u64.pow(e)),
        ]) {
            prop_assert_eq!(go_duration_string(ns(n)), reference(n));
        }
    }
}
