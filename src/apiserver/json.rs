//! JSON bytes as Go's `encoding/json` writes them, which is what `k8s.io/apimachinery` serves.
//!
//! serde_json and Go agree on everything we emit except string escaping: Go escapes `<`, `>`
//! and `&` (HTML-safe output, on by default) and the line separators U+2028 and U+2029. The
//! apiserver's encoder also ends every document with a newline (`json.Encoder.Encode`); use
//! [`to_vec_line`] for bodies and [`to_vec`] where the caller wants the bare document. Field
//! order is the caller's: declare struct fields in Go's order.

use std::io;

use serde::Serialize;

/// Serializes `value` compactly with Go's string escaping, without a trailing newline.
pub fn to_vec<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(128);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, GoFormatter);
    value.serialize(&mut ser)?;
    Ok(out)
}

/// Like [`to_vec`], followed by `\n` as the apiserver's encoder writes it.
pub fn to_vec_line<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<Vec<u8>> {
    let mut out = to_vec(value)?;
    out.push(b'\n');
    Ok(out)
}

/// serde_json's compact formatter plus Go's extra escapes.
#[derive(Debug, Clone, Copy)]
struct GoFormatter;

impl serde_json::ser::Formatter for GoFormatter {
    fn write_string_fragment<W: ?Sized + io::Write>(&mut self, writer: &mut W, fragment: &str) -> io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            let escaped = match c {
                '<' => "\\u003c",
                '>' => "\\u003e",
                '&' => "\\u0026",
                '\u{2028}' => "\\u2028",
                '\u{2029}' => "\\u2029",
                _ => continue,
            };
            writer.write_all(&fragment.as_bytes()[start..i])?;
            writer.write_all(escaped.as_bytes())?;
            start = i + c.len_utf8();
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_characters_and_line_separators_are_escaped_like_go() {
        let got = to_vec("a<b>&c\u{2028}d\u{2029}é\"\n").unwrap();
        assert_eq!(
            std::str::from_utf8(&got).unwrap(),
            r#""a\u003cb\u003e\u0026c\u2028d\u2029é\"\n""#
        );
    }

    #[test]
    fn line_variant_appends_one_newline() {
        let got = to_vec_line(&serde_json::json!({"k": [1, "x"]})).unwrap();
        assert_eq!(got, b"{\"k\":[1,\"x\"]}\n");
    }
}
