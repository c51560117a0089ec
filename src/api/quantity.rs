//! Canonical Kubernetes `Quantity` strings for the two usages we serve: CPU in nanocores
//! (DecimalSI at scale −9) and memory in bytes (BinarySI at scale 0).
//!
//! This module only formats; it never parses, and it handles non-negative integers only,
//! which is all the store produces. The rules are apimachinery's `CanonicalizeBytes` (see
//! spec §3.3), restated here in integer arithmetic:
//!
//! * **DecimalSI**: strip every trailing decimal zero of the mantissa into the exponent, then
//!   lower the exponent to the nearest multiple of 3 at or below it (multiplying the mantissa
//!   back), and spell the exponent as `n u m "" k M G T P E`. Zero is `0`.
//! * **BinarySI**: a value below 1024 is printed as DecimalSI (so 1000 bytes is `1k`).
//!   Otherwise the value, which is an integer, has every factor of 1024 moved into the suffix
//!   `Ki Mi Gi Ti Pi Ei`. When no factor of 1024 divides it, the suffix is empty and the plain
//!   integer is printed: 1500 → `1500`, 1025 → `1025`, **1000000 → `1000000`** (never `1M`).
//!   apimachinery falls back to DecimalSI only for values that are not whole at scale 0
//!   (fractional bytes), which integer byte counts never are; its base-1024 suffix table has no
//!   entry for 1024⁰, so the suffix is simply left off.
//! * **Beyond `i64::MAX`**: upstream builds quantities from `int64`, so a `u64` above
//!   `i64::MAX` loses its last decimal digit: the value becomes `v / 10` at a scale one higher
//!   (spec §2.4). We format exactly that quantity, so such a CPU or memory value prints as
//!   `(v / 10) × 10`, with the same canonical rules applied.

/// DecimalSI suffixes for exponents −9, −6, …, 18 (index = (exponent + 9) / 3).
const DECIMAL_SUFFIXES: [&str; 10] = ["n", "u", "m", "", "k", "M", "G", "T", "P", "E"];

/// BinarySI suffixes for 1024⁰ … 1024⁶.
const BINARY_SUFFIXES: [&str; 7] = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];

/// Appends the canonical quantity for `nanocores` (DecimalSI, scale −9): `123456789n`, `20u`,
/// `500m`, `1`, `2500m`, `0`.
pub fn write_cpu(nanocores: u64, out: &mut String) {
    let (mantissa, scale) = as_int64_quantity(nanocores, -9);
    write_decimal_si(mantissa, scale, out);
}

/// [`write_cpu`] into a new string.
pub fn cpu_string(nanocores: u64) -> String {
    let mut s = String::with_capacity(24);
    write_cpu(nanocores, &mut s);
    s
}

/// Appends the canonical quantity for `bytes` (BinarySI): `600`, `1k`, `1500`, `12240Ki`,
/// `5Mi`, `0`. See the module docs for values ≥ 1024 that 1024 does not divide.
pub fn write_memory(bytes: u64, out: &mut String) {
    if bytes < 1024 {
        write_decimal_si(bytes, 0, out);
        return;
    }
    let (mantissa, scale) = as_int64_quantity(bytes, 0);
    // A quantity at scale ≥ 0 is whole at scale 0, so the BinarySI path always applies.
    // `mantissa × 10^scale` is `bytes` with at most its last digit zeroed: it fits a u64.
    let mut value = if scale == 0 { mantissa } else { mantissa * 10 };
    let mut power = 0;
    while value % 1024 == 0 {
        value /= 1024;
        power += 1;
    }
    push_u64(value, out);
    // value < 2^64 = 1024^6.4, so power ≤ 6 and the lookup always succeeds.
    out.push_str(BINARY_SUFFIXES.get(power).copied().unwrap_or_default());
}

/// [`write_memory`] into a new string.
pub fn memory_string(bytes: u64) -> String {
    let mut s = String::with_capacity(24);
    write_memory(bytes, &mut s);
    s
}

/// The `(mantissa, scale)` upstream's `int64`-based quantity holds for `value × 10^scale`: a
/// value above `i64::MAX` is divided by 10 and its scale raised by one.
fn as_int64_quantity(value: u64, scale: i32) -> (u64, i32) {
    if value > i64::MAX as u64 {
        (value / 10, scale + 1)
    } else {
        (value, scale)
    }
}

/// Appends `mantissa × 10^scale` in canonical DecimalSI form.
fn write_decimal_si(mantissa: u64, scale: i32, out: &mut String) {
    if mantissa == 0 {
        out.push('0');
        return;
    }
    // u64 arithmetic: u128 division is a library call, and this runs twice per container
    // of every listed pod. Stripping zeros only shrinks the mantissa; lowering the exponent
    // multiplies it back by at most 100, which can overflow only for values near u64::MAX.
    let mut amount = mantissa;
    let mut exponent = scale;
    while amount % 10 == 0 {
        amount /= 10;
        exponent += 1;
    }
    let lower_by = exponent.rem_euclid(3);
    exponent -= lower_by;
    match amount.checked_mul(10u64.pow(lower_by.unsigned_abs())) {
        Some(amount) => push_u64(amount, out),
        None => push_u128(u128::from(amount) * 10u128.pow(lower_by.unsigned_abs()), out),
    }
    // Our inputs keep the exponent within −9..=9 (a u64 at scale −9 or −8, or < 1024 at
    // scale 0). apimachinery prints no suffix for an exponent outside its table; so do we.
    let suffix = usize::try_from((exponent + 9) / 3)
        .ok()
        .and_then(|i| DECIMAL_SUFFIXES.get(i));
    out.push_str(suffix.copied().unwrap_or_default());
}

fn push_u64(value: u64, out: &mut String) {
    out.push_str(itoa::Buffer::new().format(value));
}

fn push_u128(value: u128, out: &mut String) {
    out.push_str(itoa::Buffer::new().format(value));
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use proptest::test_runner::{Config, RngSeed};

    const MAX_I64: u64 = i64::MAX as u64;

    #[test]
    fn cpu_uses_the_largest_exact_decimal_suffix() {
        for (nanocores, want) in [
            (0, "0"),
            (1, "1n"),
            (1500, "1500n"),
            (1000, "1u"),
            (20_000, "20u"),
            (123_456_789, "123456789n"),
            (500_000_000, "500m"),
            (1_000_000_000, "1"),
            (2_500_000_000, "2500m"),
            (5_000_000_000, "5"),
            (10_000_000_000, "10"),
            (1_000_000_000_000, "1k"),
            (1_500_000_000_000, "1500"),
        ] {
            assert_eq!(cpu_string(nanocores), want, "{nanocores} nanocores");
        }
    }

    #[test]
    fn cpu_above_i64_max_loses_its_last_digit() {
        // Spec §2.4: MaxInt64+10 → (MaxInt64/10 + 1) × 10^1 at scale −9.
        assert_eq!(cpu_string(MAX_I64 + 10), "9223372036854775810n");
        assert_eq!(cpu_string(MAX_I64 + 20), "9223372036854775820n");
        assert_eq!(cpu_string(MAX_I64 + 1), "9223372036854775800n");
        assert_eq!(cpu_string(MAX_I64), "9223372036854775807n");
        assert_eq!(cpu_string(MAX_I64 - 100), "9223372036854775707n");
        assert_eq!(cpu_string(10_000_000_000_000_000_000), "10G");
        assert_eq!(cpu_string(u64::MAX), "18446744073709551610n");
    }

    #[test]
    fn memory_below_1024_is_decimal_si() {
        for (bytes, want) in [(0, "0"), (1, "1"), (600, "600"), (1000, "1k"), (1023, "1023")] {
            assert_eq!(memory_string(bytes), want, "{bytes} bytes");
        }
    }

    #[test]
    fn memory_from_1024_moves_factors_of_1024_into_the_suffix() {
        for (bytes, want) in [
            (1024, "1Ki"),
            (12_533_760, "12240Ki"),
            (1_616_273_408, "1578392Ki"),
            (5_242_880, "5Mi"),
            (3_145_728, "3Mi"),
            (1 << 30, "1Gi"),
            (1 << 40, "1Ti"),
            (1 << 50, "1Pi"),
            (1 << 60, "1Ei"),
            (1 << 62, "4Ei"),
        ] {
            assert_eq!(memory_string(bytes), want, "{bytes} bytes");
        }
    }

    #[test]
    fn memory_not_divisible_by_1024_prints_the_plain_integer() {
        for (bytes, want) in [
            (1025, "1025"),
            (1500, "1500"),
            (1536, "1536"),
            (2000, "2000"),
            (1_000_000, "1000000"),
            (1_000_000_000, "1000000000"),
        ] {
            assert_eq!(memory_string(bytes), want, "{bytes} bytes");
        }
    }

    #[test]
    fn memory_above_i64_max_loses_its_last_digit() {
        assert_eq!(memory_string(MAX_I64 + 1), "9223372036854775800");
        assert_eq!(memory_string(u64::MAX), "18446744073709551610");
        // 10 × 2^60 is above i64::MAX and survives the lost digit exactly.
        assert_eq!(memory_string(10 << 60), "10Ei");
        assert_eq!(memory_string((10 << 60) + 7), "10Ei");
    }

    #[test]
    fn write_appends_to_what_is_already_there() {
        let mut s = String::from("cpu=");
        write_cpu(500_000_000, &mut s);
        s.push_str(" mem=");
        write_memory(5_242_880, &mut s);
        assert_eq!(s, "cpu=500m mem=5Mi");
    }

    /// Parses what we print back into an integer of the base unit (nanocores or bytes).
    fn parse(s: &str, base_exponent: i32) -> u128 {
        let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (number, suffix) = s.split_at(digits);
        let number: u128 = number.parse().unwrap();
        if let Some(i) = BINARY_SUFFIXES.iter().skip(1).position(|&b| b == suffix) {
            return number << (10 * (i + 1));
        }
        let i = DECIMAL_SUFFIXES.iter().position(|&d| d == suffix).unwrap();
        let exponent = i32::try_from(i).unwrap() * 3 - 9 - base_exponent;
        number * 10u128.pow(exponent.unsigned_abs())
    }

    fn expected_after_int64_conversion(v: u64) -> u128 {
        let (m, s) = as_int64_quantity(v, 0);
        u128::from(m) * 10u128.pow(s.unsigned_abs())
    }

    fn config() -> Config {
        Config {
            cases: 2000,
            rng_seed: RngSeed::Fixed(0x5eed_0001),
            failure_persistence: None,
            ..Config::default()
        }
    }

    fn interesting_u64() -> impl Strategy<Value = u64> {
        prop_oneof![
            any::<u64>(),
            0u64..1_000_000,
            (0u64..1_000_000, 0u32..16).prop_map(|(m, e)| m.saturating_mul(10u64.pow(e))),
            (0u64..1_000_000, 0u32..6).prop_map(|(m, e)| m.saturating_mul(1u64 << (10 * e))),
        ]
    }

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn cpu_string_parses_back_to_the_same_nanocores(v in interesting_u64()) {
            let s = cpu_string(v);
            prop_assert_eq!(parse(&s, -9), expected_after_int64_conversion(v), "{}", s);
            // Canonical: a larger suffix would have been chosen for three more zeros.
            let digits = s.trim_end_matches(|c: char| !c.is_ascii_digit());
            prop_assert!(v == 0 || !digits.ends_with("000") || s.ends_with('E'), "{}", s);
        }

        #[test]
        fn memory_string_parses_back_to_the_same_bytes(v in interesting_u64()) {
            let s = memory_string(v);
            prop_assert_eq!(parse(&s, 0), expected_after_int64_conversion(v), "{}", s);
            let digits = s.trim_end_matches(|c: char| !c.is_ascii_digit());
            let mantissa: u64 = digits.parse().unwrap();
            if v >= 1024 {
                prop_assert!(mantissa % 1024 != 0 || s.ends_with("Ei"), "{}", s);
            }
        }
    }
}
