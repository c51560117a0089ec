//! Numbers in the text format: sample values as Go's `strconv.ParseFloat` reads them and
//! millisecond timestamps, parsed straight from the bytes.

use super::text::SyntaxError;

/// A float as Go's `strconv.ParseFloat` reads it, minus hex floats and `_` separators, which
/// the Prometheus parser refuses: `[+-]digits[.digits][(e|E)[+-]digits]`, or `[+-]Inf`,
/// `[+-]Infinity` and `NaN` in any case. A finite text that overflows is an error, as in Go.
pub(super) fn parse_float(token: &[u8]) -> Result<f64, SyntaxError> {
    let (negative, unsigned) = match token.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, token),
    };
    if unsigned.eq_ignore_ascii_case(b"inf") || unsigned.eq_ignore_ascii_case(b"infinity") {
        return Ok(if negative { f64::NEG_INFINITY } else { f64::INFINITY });
    }
    if token.eq_ignore_ascii_case(b"nan") {
        return Ok(f64::NAN);
    }
    let value = match decimal(unsigned) {
        Decimal::Exact(v) => v,
        Decimal::Invalid => return Err(SyntaxError::Value),
        Decimal::NeedsFullParse => std::str::from_utf8(unsigned)
            .ok()
            .and_then(|s| s.parse::<f64>().ok())
            .ok_or(SyntaxError::Value)?,
    };
    if value.is_infinite() {
        return Err(SyntaxError::ValueOutOfRange);
    }
    Ok(if negative { -value } else { value })
}

enum Decimal {
    Exact(f64),
    NeedsFullParse,
    Invalid,
}

/// Checks the syntax of an unsigned decimal and, when the mantissa fits in 53 bits and the
/// power of ten is exact in an f64 (|e| ≤ 22), computes it with one correctly rounded
/// operation (Clinger's fast path); other valid texts go to the standard library.
fn decimal(text: &[u8]) -> Decimal {
    const POW10: [f64; 23] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19,
        1e20, 1e21, 1e22,
    ];
    let mut mantissa: u64 = 0;
    let mut exact = true;
    let mut digits = 0usize;
    let mut scale: i64 = 0;
    let mut i = 0;
    let mut seen_point = false;
    while let Some(&b) = text.get(i) {
        match b {
            b'0'..=b'9' => {
                digits += 1;
                match mantissa
                    .checked_mul(10)
                    .and_then(|m| m.checked_add(u64::from(b - b'0')))
                {
                    Some(m) => mantissa = m,
                    None => exact = false,
                }
                scale -= i64::from(seen_point);
            }
            b'.' if !seen_point => seen_point = true,
            _ => break,
        }
        i += 1;
    }
    if digits == 0 {
        return Decimal::Invalid;
    }
    if let Some(b'e' | b'E') = text.get(i) {
        i += 1;
        let negative = match text.get(i) {
            Some(b'-') => {
                i += 1;
                true
            }
            Some(b'+') => {
                i += 1;
                false
            }
            _ => false,
        };
        let start = i;
        let mut exponent: i64 = 0;
        while let Some(&b @ b'0'..=b'9') = text.get(i) {
            exponent = exponent.saturating_mul(10).saturating_add(i64::from(b - b'0'));
            i += 1;
        }
        if i == start {
            return Decimal::Invalid;
        }
        scale = scale.saturating_add(if negative { -exponent } else { exponent });
    }
    if i != text.len() {
        return Decimal::Invalid;
    }
    if !exact || mantissa > 1 << 53 {
        return Decimal::NeedsFullParse;
    }
    let m = mantissa as f64;
    match usize::try_from(scale.unsigned_abs()).ok().and_then(|e| POW10.get(e)) {
        Some(&p) if scale >= 0 => Decimal::Exact(m * p),
        Some(&p) => Decimal::Exact(m / p),
        None if mantissa == 0 => Decimal::Exact(0.0),
        None => Decimal::NeedsFullParse,
    }
}

/// Milliseconds since the epoch: ASCII digits only, fitting an `i64`.
pub(super) fn parse_timestamp(token: &[u8]) -> Result<i64, SyntaxError> {
    if token.first() == Some(&b'-') {
        return Err(SyntaxError::NegativeTimestamp);
    }
    token.iter().try_fold(0i64, |acc, &b| {
        let digit = b.checked_sub(b'0').filter(|d| *d <= 9).ok_or(SyntaxError::Timestamp)?;
        acc.checked_mul(10)
            .and_then(|acc| acc.checked_add(i64::from(digit)))
            .ok_or(SyntaxError::Timestamp)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn float(text: &str) -> Result<f64, SyntaxError> {
        parse_float(text.as_bytes())
    }

    #[test]
    fn floats_read_like_go_parse_float() {
        for (text, want) in [
            ("4.710169", 4.710169),
            ("1.253376e+07", 12_533_760.0),
            ("1.633252712e+9", 1_633_252_712.0),
            ("1e9", 1e9),
            ("1E9", 1e9),
            ("+1.5", 1.5),
            ("-2", -2.0),
            (".5", 0.5),
            ("5.", 5.0),
            ("0.009000000000000001", 0.009000000000000001),
            ("1795341292.2380102", 1795341292.2380102),
            ("123456789012345678901234567890", 123456789012345678901234567890.0),
            ("1e-400", 0.0),
            ("0e999", 0.0),
        ] {
            assert_eq!(float(text), Ok(want), "{text}");
        }
        assert_eq!(float("+Inf"), Ok(f64::INFINITY));
        assert_eq!(float("-inf"), Ok(f64::NEG_INFINITY));
        assert_eq!(float("INFINITY"), Ok(f64::INFINITY));
        assert!(float("NaN").is_ok_and(f64::is_nan));
        assert!(float("nan").is_ok_and(f64::is_nan));
    }

    #[test]
    fn fast_path_agrees_with_the_standard_library() {
        for text in [
            "0.1",
            "0.3",
            "9007199254740993",
            "2.2250738585072014e-308",
            "1e22",
            "1e23",
        ] {
            assert_eq!(float(text), Ok(text.parse::<f64>().unwrap()), "{text}");
        }
    }

    #[test]
    fn floats_go_rejects_are_errors() {
        for text in [
            "", ".", "e5", "1e", "1e+", "1.2.3", "0x1p-2", "1_000", "+nan", "infinit", "1 ",
        ] {
            assert_eq!(float(text), Err(SyntaxError::Value), "{text:?}");
        }
        assert_eq!(float("1e400"), Err(SyntaxError::ValueOutOfRange));
    }

    #[test]
    fn timestamps_are_non_negative_decimal_integers() {
        assert_eq!(parse_timestamp(b"1633253812125"), Ok(1_633_253_812_125));
        assert_eq!(parse_timestamp(b"-1"), Err(SyntaxError::NegativeTimestamp));
        assert_eq!(parse_timestamp(b"+1"), Err(SyntaxError::Timestamp));
        assert_eq!(parse_timestamp(b"1.5"), Err(SyntaxError::Timestamp));
        assert_eq!(parse_timestamp(b"9223372036854775808"), Err(SyntaxError::Timestamp));
    }

    #[test]
    fn any_decimal_text_reads_like_the_standard_library() {
        use proptest::prelude::*;
        use proptest::test_runner::{Config, RngAlgorithm, RngSeed, TestRunner};
        let config = Config {
            cases: 2048,
            rng_algorithm: RngAlgorithm::ChaCha,
            rng_seed: RngSeed::Fixed(7),
            failure_persistence: None,
            ..Config::default()
        };
        let written = any::<f64>().prop_map(|x| format!("{x:?}"));
        let exponent = any::<f64>().prop_map(|x| format!("{x:e}"));
        let digits = "[0-9]{1,24}(\\.[0-9]{0,24})?([eE][+-]?[0-9]{1,3})?";
        let text = prop_oneof![written, exponent, digits];
        TestRunner::new(config)
            .run(&text, |text| {
                let ours = float(&text);
                match text.parse::<f64>().unwrap() {
                    x if x.is_nan() => prop_assert!(ours.unwrap().is_nan()),
                    x if x.is_infinite() && text.contains(['e', 'E']) => {
                        prop_assert_eq!(ours, Err(SyntaxError::ValueOutOfRange))
                    }
                    x => prop_assert_eq!(ours.map(f64::to_bits), Ok(x.to_bits()), "{}", text),
                }
                Ok(())
            })
            .unwrap();
    }
}
