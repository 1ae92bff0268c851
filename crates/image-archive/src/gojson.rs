//! JSON as Go's `encoding/json` writes it: serde_json with Go's string escaping.
//!
//! Go escapes `<`, `>`, `&`, U+2028 and U+2029 (HTML-safe) and writes the control
//! characters backspace and form feed as `\u0008` and `\u000c` (Go before 1.22, which built
//! dockerd 20.10); serde_json writes the first five as they are and the last two as `\b`
//! and `\f`. Everything else is the same, so a serde model whose fields follow the Go
//! struct's order and `omitempty` rules serializes byte for byte as `json.Marshal`.

use std::io::{self, Write};

use serde::Serialize;
use serde_json::ser::{CharEscape, Formatter};

/// serde_json's compact formatter with Go's string escaping.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct GoFormatter;

impl Formatter for GoFormatter {
    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let bytes = fragment.as_bytes();
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            let escaped: &[u8] = match c {
                '<' => b"\\u003c",
                '>' => b"\\u003e",
                '&' => b"\\u0026",
                '\u{2028}' => b"\\u2028",
                '\u{2029}' => b"\\u2029",
                _ => continue,
            };
            writer.write_all(&bytes[start..i])?;
            writer.write_all(escaped)?;
            start = i + c.len_utf8();
        }
        writer.write_all(&bytes[start..])
    }

    fn write_char_escape<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        char_escape: CharEscape,
    ) -> io::Result<()> {
        let short: &[u8] = match char_escape {
            CharEscape::Quote => b"\\\"",
            CharEscape::ReverseSolidus => b"\\\\",
            CharEscape::Solidus => b"\\/",
            CharEscape::LineFeed => b"\\n",
            CharEscape::CarriageReturn => b"\\r",
            CharEscape::Tab => b"\\t",
            CharEscape::Backspace => b"\\u0008",
            CharEscape::FormFeed => b"\\u000c",
            CharEscape::AsciiControl(byte) => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                let esc = [
                    b'\\',
                    b'u',
                    b'0',
                    b'0',
                    HEX[usize::from(byte >> 4)],
                    HEX[usize::from(byte & 0xf)],
                ];
                return writer.write_all(&esc);
            }
        };
        writer.write_all(short)
    }
}

/// `value` as Go's `json.Marshal` writes it.
pub(crate) fn to_vec<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, serde_json::Error> {
    let mut out = Vec::with_capacity(256);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, GoFormatter);
    value.serialize(&mut ser)?;
    Ok(out)
}

/// `value` as Go's `json.NewEncoder(w).Encode` writes it: [`to_vec`] and a newline.
pub(crate) fn to_line<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, serde_json::Error> {
    let mut out = to_vec(value)?;
    out.push(b'\n');
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_escape_as_go() {
        let s = "a<b>&\"\\/\n\r\t\u{8}\u{c}\u{1}\u{1f}\u{7f}\u{2028}\u{2029}é";
        let ours = to_vec(&s).expect("json");
        let mut go = Vec::new();
        go_json::write_string(&mut go, s);
        assert_eq!(String::from_utf8_lossy(&ours), String::from_utf8_lossy(&go));
    }
}
