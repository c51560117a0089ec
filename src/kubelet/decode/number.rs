//! Numbers in the text format: sample values as Go's `strconv.ParseFloat` reads them and
//! millisecond timestamps, parsed straight from the bytes.

use super::error::SyntaxError;

/// Where a value or timestamp token ends: a blank, the end of the line or of the body.
fn is_blank(byte: Option<&u8>) -> bool {
    matches!(byte, None | Some(b' ' | b'\t' | b'\n'))
}

/// Reads the value token at the start of `rest`, which runs to the next blank or newline:
/// the value and the token's length. Decimals are read in one pass; anything else (`NaN`,
/// `+Inf`, errors) goes through [`parse_float`].
#[inline(always)]
pub(super) fn read_float(rest: &[u8]) -> Result<(f64, usize), SyntaxError> {
    if let Some(plain) = plain_decimal(rest) {
        return Ok(plain);
    }
    let (negative, sign) = match rest.first() {
        Some(b'-') => (true, 1),
        Some(b'+') => (false, 1),
        _ => (false, 0),
    };
    let unsigned = rest.get(sign..).unwrap_or_default();
    let (decimal, len) = decimal(unsigned);
    if is_blank(unsigned.get(len)) {
        let value = match decimal {
            Decimal::Exact(value) => Some(value),
            // Valid to its end but not exact in one operation (17-digit counters): the
            // standard library's correctly rounded parse, without reading the token again.
            Decimal::NeedsFullParse => Some(full_parse(unsigned.get(..len).unwrap_or_default())?),
            Decimal::Invalid => None,
        };
        if let Some(value) = value {
            return Ok((if negative { -value } else { value }, sign + len));
        }
    }
    let len = rest.iter().position(|b| is_blank(Some(b))).unwrap_or(rest.len());
    let token = rest.get(..len).unwrap_or_default();
    if token.is_empty() {
        return Err(SyntaxError::MissingValue);
    }
    parse_float(token).map(|value| (value, len))
}

/// The common kubelet value, `digits[.digits]` up to a blank (`0`, `79345379.0`,
/// `477.5476601510002`, `1154.6055502749202`) with at most 19 digits, at most 22 of them after
/// the point. A mantissa of at most 2^53 is exact in an f64, so `mantissa / 10^fraction` is
/// one correctly rounded division (Clinger's fast path); a longer one (the 17-digit counters
/// of a busy node) is divided in integers, see [`exact_quotient`]. `None` sends everything
/// else down the general path.
#[inline(always)]
fn plain_decimal(rest: &[u8]) -> Option<(f64, usize)> {
    let (whole, mut mantissa) = digits(rest);
    let mut len = whole;
    let mut fraction = 0;
    if rest.get(len) == Some(&b'.') {
        let (n, m) = digits(rest.get(len + 1..).unwrap_or_default());
        mantissa = mantissa.wrapping_mul(pow10_u64(n)).wrapping_add(m);
        fraction = n;
        len += 1 + n;
    }
    let count = whole + fraction;
    if count == 0 || count > 19 || !is_blank(rest.get(len)) {
        return None;
    }
    let scale = POW10.get(fraction)?;
    if mantissa > 1 << 53 {
        return Some((exact_quotient(mantissa, fraction)?, len));
    }
    Some((mantissa as f64 / scale, len))
}

/// `mantissa / 10^fraction` correctly rounded (to nearest, ties to even) for any mantissa and
/// a fraction of at most 22 digits, as the standard library's parse rounds it, without its
/// general machinery: the quotient is taken in integers with 54 significant bits (the last
/// one the rounding bit) and a remainder that says whether anything is below it.
fn exact_quotient(mantissa: u64, fraction: usize) -> Option<f64> {
    if mantissa == 0 {
        return Some(0.0);
    }
    let divisor = POW10_U128.get(fraction).copied()?;
    let mantissa_bits = 64 - mantissa.leading_zeros() as i32;
    let divisor_bits = 128 - divisor.leading_zeros() as i32;
    // With this shift the quotient lies strictly between 2^53 and 2^55. Both operands fit:
    // the dividend has 54 + divisor_bits <= 128 bits, the divisor is shifted by at most 9.
    let mut shift = 54 + divisor_bits - mantissa_bits;
    let (dividend, divisor) = if shift >= 0 {
        (u128::from(mantissa).checked_shl(shift.unsigned_abs())?, divisor)
    } else {
        (u128::from(mantissa), divisor.checked_shl(shift.unsigned_abs())?)
    };
    let mut quotient = dividend / divisor;
    let mut inexact = quotient * divisor != dividend;
    if quotient >= 1 << 54 {
        inexact |= quotient & 1 != 0;
        quotient >>= 1;
        shift -= 1;
    }
    // quotient = 2 * kept + round bit, kept in [2^52, 2^53).
    let round = quotient & 1 != 0;
    let mut kept = u64::try_from(quotient >> 1).ok()?;
    if round && (inexact || kept & 1 != 0) {
        kept += 1;
    }
    // kept * 2^(1 - shift); the value lies in 1e-22..1e19, so the power is a normal float.
    let exponent = 1 - shift;
    let biased = u64::try_from(exponent + 1023)
        .ok()
        .filter(|&e| (1..2047).contains(&e))?;
    Some(kept as f64 * f64::from_bits(biased << 52))
}

/// 10^n as integers, for [`exact_quotient`].
const POW10_U128: [u128; 23] = {
    let mut table = [1u128; 23];
    let mut i = 1;
    while i < 23 {
        table[i] = table[i - 1] * 10;
        i += 1;
    }
    table
};

/// The powers of ten an f64 holds exactly.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20,
    1e21, 1e22,
];

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
        (_, len) if len != unsigned.len() => return Err(SyntaxError::Value),
        (Decimal::Exact(v), _) => v,
        (Decimal::Invalid, _) => return Err(SyntaxError::Value),
        (Decimal::NeedsFullParse, _) => full_parse(unsigned)?,
    };
    Ok(if negative { -value } else { value })
}

/// An unsigned decimal text [`decimal`] found valid but could not compute exactly. A finite
/// text that overflows is an error, as in Go.
fn full_parse(unsigned: &[u8]) -> Result<f64, SyntaxError> {
    let value = std::str::from_utf8(unsigned)
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .ok_or(SyntaxError::Value)?;
    if value.is_infinite() {
        return Err(SyntaxError::ValueOutOfRange);
    }
    Ok(value)
}

enum Decimal {
    Exact(f64),
    NeedsFullParse,
    Invalid,
}

/// Reads the unsigned decimal at the start of `text` and says how many bytes it took. When
/// the mantissa fits in 53 bits and the power of ten is exact in an f64 (|e| ≤ 22), the value
/// comes from one correctly rounded operation (Clinger's fast path); other valid texts need
/// the standard library.
fn decimal(text: &[u8]) -> (Decimal, usize) {
    // 19 digits cannot overflow a u64; more (even leading zeros) go to the slow path.
    let (whole, whole_mantissa) = digits(text);
    let mut i = whole;
    let mut fraction = 0;
    let mut mantissa = whole_mantissa;
    if text.get(i) == Some(&b'.') {
        let after = text.get(i + 1..).unwrap_or_default();
        let (n, m) = digits(after);
        fraction = n;
        mantissa = mantissa.wrapping_mul(pow10_u64(n)).wrapping_add(m);
        i += 1 + n;
    }
    if whole + fraction == 0 {
        return (Decimal::Invalid, i);
    }
    let mut scale = -(fraction as i64);
    if let Some(b'e' | b'E') = text.get(i) {
        let sign = match text.get(i + 1) {
            Some(b'-') => -1,
            Some(b'+') => 1,
            _ => 0,
        };
        let start = i + 1 + usize::from(sign != 0);
        let (n, _) = digits(text.get(start..).unwrap_or_default());
        if n == 0 {
            return (Decimal::Invalid, start);
        }
        let exponent = text
            .get(start..start + n)
            .unwrap_or_default()
            .iter()
            .fold(0i64, |e, &d| e.saturating_mul(10).saturating_add(i64::from(d - b'0')));
        scale = scale.saturating_add(if sign < 0 { -exponent } else { exponent });
        i = start + n;
    }
    if whole + fraction > 19 || mantissa > 1 << 53 {
        return (Decimal::NeedsFullParse, i);
    }
    let m = mantissa as f64;
    let value = match usize::try_from(scale.unsigned_abs()).ok().and_then(|e| POW10.get(e)) {
        Some(&p) if scale >= 0 => Decimal::Exact(m * p),
        Some(&p) => Decimal::Exact(m / p),
        None if mantissa == 0 => Decimal::Exact(0.0),
        None => Decimal::NeedsFullParse,
    };
    (value, i)
}

/// The run of ASCII digits at the start of `text`: its length and, if it has at most 19
/// digits, its value (wrapped otherwise; callers check the length). Eight bytes at a time:
/// timestamps have 13 digits and counters often 10 to 17, so a run takes two or three words.
#[inline]
fn digits(text: &[u8]) -> (usize, u64) {
    let mut value: u64 = 0;
    let mut n = 0;
    loop {
        let word = word_at(text, n);
        let run = leading_digits(word);
        value = value
            .wrapping_mul(pow10_u64(run))
            .wrapping_add(value_of_leading(word, run));
        n += run;
        if run < 8 {
            return (n, value);
        }
    }
}

/// The eight bytes of `text` from `at` as a little-endian word (first byte in the low byte),
/// padded with zero bytes, which are not digits, past the end.
fn word_at(text: &[u8], at: usize) -> u64 {
    match text.get(at..at + 8).and_then(|chunk| <[u8; 8]>::try_from(chunk).ok()) {
        Some(chunk) => u64::from_le_bytes(chunk),
        // Byte by byte: a copy into a buffer would be a call to memcpy on the hot path.
        None => text
            .get(at..)
            .unwrap_or_default()
            .iter()
            .rev()
            .fold(0, |word, &b| (word << 8) | u64::from(b)),
    }
}

const ZEROS: u64 = 0x3030_3030_3030_3030;
const HIGH_NIBBLES: u64 = 0xf0f0_f0f0_f0f0_f0f0;

/// How many bytes of `word`, from the low one up, are ASCII digits (0 to 8).
fn leading_digits(word: u64) -> usize {
    // A digit is 0x30..=0x39: high nibble 3, and still 3 after adding 6. A byte of 0xfa or
    // more carries into the next one, which can spoil the test of the bytes above it but
    // never of the first byte that fails: the digits below it do not carry.
    let plus_six = word.wrapping_add(0x0606_0606_0606_0606);
    let failed = ((word & HIGH_NIBBLES) ^ ZEROS) | ((plus_six & HIGH_NIBBLES) ^ ZEROS);
    (failed.trailing_zeros() / 8) as usize
}

/// The value of the first `run` (0 to 8) bytes of `word`, all ASCII digits.
fn value_of_leading(word: u64, run: usize) -> u64 {
    if run == 0 {
        return 0;
    }
    // Digit values, shifted so the run ends in the top byte: the bytes shifted in are zeros,
    // leading zeros of an eight-digit number. The bytes above the run (borrows included)
    // fall off the top.
    let ones = word.wrapping_sub(ZEROS) << (8 * (8 - run));
    eight_values(ones)
}

/// The value of eight ASCII digits read as a little-endian word (first digit in the low
/// byte), or `None` when any byte is not a digit.
#[cfg(test)]
fn eight_digits(word: u64) -> Option<u64> {
    (leading_digits(word) == 8).then(|| eight_values(word - ZEROS))
}

/// The number whose eight decimal digits (0 to 9 each) are the bytes of `ones`, most
/// significant in the low byte.
fn eight_values(ones: u64) -> u64 {
    // Combine neighbours into 2-digit, then 4-digit, then the 8-digit value.
    let pairs = ones.wrapping_mul(10).wrapping_add(ones >> 8);
    let low = pairs & 0x0000_00ff_0000_00ff;
    let high = (pairs >> 16) & 0x0000_00ff_0000_00ff;
    let combined = low
        .wrapping_mul(100 + (1_000_000 << 32))
        .wrapping_add(high.wrapping_mul(1 + (10_000 << 32)));
    combined >> 32
}

/// 10^n for n up to 19; 0 past that (callers only use it for runs they then refuse).
fn pow10_u64(n: usize) -> u64 {
    const POW10: [u64; 20] = {
        let mut table = [1u64; 20];
        let mut i = 1;
        while i < 20 {
            table[i] = table[i - 1] * 10;
            i += 1;
        }
        table
    };
    POW10.get(n).copied().unwrap_or(0)
}

/// Reads an optional timestamp at the start of `rest`: milliseconds since the epoch, ASCII
/// digits only, fitting an `i64`. Returns it and the token's length.
#[inline(always)]
pub(super) fn read_timestamp(rest: &[u8]) -> Result<(Option<i64>, usize), SyntaxError> {
    let (n, value) = digits(rest);
    if is_blank(rest.get(n)) {
        return match n {
            0 => Ok((None, 0)),
            1..=18 => Ok((i64::try_from(value).ok(), n)),
            _ => {
                let token = rest.get(..n).unwrap_or_default();
                parse_timestamp(token).map(|ts| (Some(ts), n))
            }
        };
    }
    Err(match rest.first() {
        Some(b'-') => SyntaxError::NegativeTimestamp,
        _ => SyntaxError::Timestamp,
    })
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
    fn digits_reads_the_leading_run() {
        assert_eq!(digits(b"1633253812125 x"), (13, 1_633_253_812_125));
        assert_eq!(digits(b"x1"), (0, 0));
        assert_eq!(digits(b"12345678901234567890").0, 20);
        assert_eq!(digits(b"1234567890123456789"), (19, 1_234_567_890_123_456_789));
        assert_eq!(digits(b"00000000"), (8, 0));
        assert_eq!(digits(b"99999999"), (8, 99_999_999));
        assert_eq!(digits(b"1234567/"), (7, 1_234_567));
        assert_eq!(digits(b"1234567:9"), (7, 1_234_567));
        assert_eq!(digits(b"12345678\xfa9"), (8, 12_345_678));
    }

    #[test]
    fn eight_digits_takes_only_ascii_digits() {
        let value = |text: &[u8; 8]| eight_digits(u64::from_le_bytes(*text));
        assert_eq!(value(b"01234567"), Some(1_234_567));
        assert_eq!(value(b"87654321"), Some(87_654_321));
        // Every byte that is not a digit, in every position, fails the word.
        for at in 0..8 {
            for byte in (0..=255u8).filter(|b| !b.is_ascii_digit()) {
                let mut text = *b"55555555";
                text[at] = byte;
                assert_eq!(value(&text), None, "{byte:#x} at {at}");
            }
        }
    }

    #[test]
    fn read_timestamp_takes_an_optional_token() {
        assert_eq!(read_timestamp(b"1633253812125\n"), Ok((Some(1_633_253_812_125), 13)));
        assert_eq!(read_timestamp(b""), Ok((None, 0)));
        assert_eq!(read_timestamp(b"\nnext"), Ok((None, 0)));
        assert_eq!(read_timestamp(b"9223372036854775807"), Ok((Some(i64::MAX), 19)));
        assert_eq!(read_timestamp(b"9223372036854775808"), Err(SyntaxError::Timestamp));
        assert_eq!(read_timestamp(b"-62135596800000"), Err(SyntaxError::NegativeTimestamp));
        assert_eq!(read_timestamp(b"12x"), Err(SyntaxError::Timestamp));
    }

    #[test]
    fn read_float_takes_long_and_odd_numbers_like_parse_float() {
        for text in [
            "1234.5678901234567",
            "-1234.5678901234567",
            "1795341292.2380102",
            "12345678901234567890123",
            "0.000012345678901234567",
            "1e-05",
            "1.2345e+06",
            "4.2e-320",
            "1e308",
            "0x10",
            "1e400",
            "-1e400",
            "+Inf",
            "-inf",
            "NaN",
            "0.",
            "-",
            "+",
            ".",
            "1e",
            "",
        ] {
            let want = parse_float(text.as_bytes()).map(|v| (v.to_bits(), text.len()));
            let want = if text.is_empty() {
                Err(SyntaxError::MissingValue)
            } else {
                want
            };
            for end in ["", " 1633253812125", "\n"] {
                let line = format!("{text}{end}");
                let ours = read_float(line.as_bytes()).map(|(v, n)| (v.to_bits(), n));
                assert_eq!(ours, want, "{line:?}");
            }
        }
        assert_eq!(read_float(b"1234.5678901234567 1"), Ok((1_234.567_890_123_456_7, 18)));
        assert_eq!(read_float(b"0x10 1"), Err(SyntaxError::Value));
        assert_eq!(read_float(b"1e400 1"), Err(SyntaxError::ValueOutOfRange));
    }

    #[test]
    fn plain_decimals_take_the_fast_path_only_when_exact() {
        for (text, want) in [
            ("0", 0.0),
            ("79345379.0", 79_345_379.0),
            ("477.5476601510002", 477.547_660_151_000_2),
            ("0.000012345", 0.000_012_345),
            ("9007199254740992", 9_007_199_254_740_992.0),
            ("1234567890123456789", 1_234_567_890_123_456_789.0),
        ] {
            let line = format!("{text} 1");
            let fast = plain_decimal(line.as_bytes()).map(|(v, n)| (v.to_bits(), n));
            let std = text.parse::<f64>().unwrap();
            assert_eq!(std.to_bits(), f64::to_bits(want), "{text}");
            if text.len() <= 17 {
                assert_eq!(fast, Some((std.to_bits(), text.len())), "{text}");
            }
        }
        // Past 2^53, the integer division: still exact.
        for text in ["9007199254740993", "1154.6055502749202", "9999999999999999999"] {
            let line = format!("{text}\t");
            let want = text.parse::<f64>().unwrap().to_bits();
            let fast = plain_decimal(line.as_bytes()).map(|(v, n)| (v.to_bits(), n));
            assert_eq!(fast, Some((want, text.len())), "{text}");
        }
        // Handed to the general path: signs, exponents, specials, more than 19 digits, more
        // than 22 digits after the point, and anything not ending in a blank.
        for text in [
            "-0",
            "+1",
            "-1.5",
            "1e9",
            "1.795e+09",
            "NaN",
            "+Inf",
            "Inf",
            "12345678901234567890",
            "0.00000000000000000000001",
            ".",
            "",
            "1.5x",
            "1.5\r",
            "0x10",
        ] {
            assert_eq!(plain_decimal(text.as_bytes()), None, "{text:?}");
        }
        // Whatever path a value takes, the line reader agrees with the standard library.
        for text in [
            "-0",
            "9007199254740993",
            "1154.6055502749202",
            "0.1",
            "0.3",
            "123456789.123456789",
            "99999999999999999999",
            "4.2e-320",
        ] {
            let line = format!("{text}\n");
            let want = text.parse::<f64>().unwrap().to_bits();
            assert_eq!(
                read_float(line.as_bytes()).map(|(v, n)| (v.to_bits(), n)),
                Ok((want, text.len())),
                "{text}"
            );
        }
    }

    #[test]
    fn long_mantissas_round_like_the_standard_library() {
        // 17 to 19 digits with the point anywhere (also past leading zeros), and integers
        // above 2^53, where every odd one is a tie between two floats.
        let mut state = 0x5eed_u64;
        let mut next = move || {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        let mut texts = vec![
            "9007199254740993".to_owned(),
            "9007199254740995".to_owned(),
            "18446744073709551615".to_owned(),
            "9999999999999999999".to_owned(),
            "1000000000000000001".to_owned(),
            "0.0000009007199254740993".to_owned(),
            "1154.6055502749202".to_owned(),
        ];
        for _ in 0..CASES {
            let digits = 17 + (next() % 3) as usize;
            let mut text: String = (0..digits).map(|_| char::from(b'0' + (next() % 10) as u8)).collect();
            match next() % 4 {
                0 => {}
                1 => {
                    let zeros = (next() % 4) as usize;
                    text = format!("0.{}{text}", "0".repeat(zeros));
                }
                _ => text.insert(1 + (next() % digits as u64) as usize, '.'),
            }
            texts.push(text);
        }
        for text in texts {
            let line = format!("{text} 1");
            let want = text.parse::<f64>().unwrap().to_bits();
            let read = read_float(line.as_bytes()).map(|(v, n)| (v.to_bits(), n));
            assert_eq!(read, Ok((want, text.len())), "{text}");
        }
    }

    const CASES: usize = 20_000;

    #[test]
    fn leading_digits_counts_from_the_low_byte() {
        let word = |text: &[u8; 8]| u64::from_le_bytes(*text);
        assert_eq!(leading_digits(word(b"12345678")), 8);
        assert_eq!(leading_digits(word(b"123 4567")), 3);
        assert_eq!(leading_digits(word(b"x2345678")), 0);
        // A byte that carries when 6 is added must not hide a non-digit below it or count a
        // digit above it.
        assert_eq!(leading_digits(word(b"12\xff45678")), 2);
        assert_eq!(leading_digits(word(b"1/\xfa9\xfa999")), 1);
        for run in 0..=8 {
            let mut text = *b"98765432";
            if let Some(b) = text.get_mut(run) {
                *b = b'.';
            }
            let value = value_of_leading(word(&text), leading_digits(word(&text)));
            let want = std::str::from_utf8(&text[..run]).unwrap().parse::<u64>().unwrap_or(0);
            assert_eq!(value, want, "{run}");
        }
        assert_eq!(word_at(b"12", 0), word(b"12\0\0\0\0\0\0"));
        assert_eq!(word_at(b"12", 5), 0);
    }

    #[test]
    fn read_float_stops_at_the_token_end() {
        assert_eq!(read_float(b"1.5 1000"), Ok((1.5, 3)));
        assert_eq!(read_float(b"-2e3\n"), Ok((-2000.0, 4)));
        assert_eq!(read_float(b"+Inf 1"), Ok((f64::INFINITY, 4)));
        assert!(read_float(b"NaN").is_ok_and(|(v, n)| v.is_nan() && n == 3));
        assert_eq!(read_float(b"1.5x 1"), Err(SyntaxError::Value));
        assert_eq!(read_float(b" 1"), Err(SyntaxError::MissingValue));
        assert_eq!(read_float(b""), Err(SyntaxError::MissingValue));
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
                // The one-pass reader of a sample line agrees with the token parser.
                let line = format!("{text} 1633253812125");
                let read = read_float(line.as_bytes()).map(|(v, n)| (v.to_bits(), n));
                prop_assert_eq!(read, ours.map(|v| (v.to_bits(), text.len())), "{}", text);
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
