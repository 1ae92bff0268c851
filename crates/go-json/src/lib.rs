//! Go's `encoding/json` string encoding, byte for byte: the one JSON string writer of the
//! workspace (tar-split's JSON lines, `docker` output, generated configs).
//!
//! Go escapes `"` and `\`, writes `\n`, `\r` and `\t` short, every other control character
//! as `\u00XX`, and, being HTML-safe, `<`, `>`, `&`, U+2028 and U+2029 as `\u003c`,
//! `\u003e`, `\u0026`, `\u2028`, `\u2029`. Each byte that is not part of valid UTF-8 becomes
//! `\ufffd`. Everything else is written as is.
//!
//! ```
//! let mut out = Vec::new();
//! go_json::write_bytes(&mut out, b"a<b\n\xff");
//! assert_eq!(out, br#""a\u003cb\n\ufffd""#);
//! ```

use std::io::Write as _;

/// Appends `s` as a JSON string (with its quotes), as Go's `json.Marshal` writes a string.
pub fn write_string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    write_escaped(out, s);
    out.push(b'"');
}

/// Appends `bytes` as a JSON string (with its quotes), as Go's `json.Marshal` writes a
/// string holding them: each byte that is not part of valid UTF-8 becomes `\ufffd`.
pub fn write_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'"');
    for chunk in bytes.utf8_chunks() {
        write_escaped(out, chunk.valid());
        for _ in chunk.invalid() {
            out.extend_from_slice(b"\\ufffd");
        }
    }
    out.push(b'"');
}

/// Appends `s` as a JSON string (with its quotes), as a Go `json.Encoder` writes it after
/// `SetEscapeHTML(escape_html)`: with `false`, `<`, `>` and `&` are written as they are
/// (U+2028 and U+2029 are escaped either way, as Go does).
///
/// ```
/// let mut out = Vec::new();
/// go_json::write_string_with(&mut out, "<a>&\u{2028}", false);
/// assert_eq!(out, br#""<a>&\u2028""#);
/// ```
pub fn write_string_with(out: &mut Vec<u8>, s: &str, escape_html: bool) {
    out.push(b'"');
    write_escaped_with(out, s, escape_html);
    out.push(b'"');
}

/// `s` as a JSON string (with its quotes), as Go's `json.Marshal` writes a string.
pub fn string(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len() + 2);
    write_string(&mut out, s);
    // Valid UTF-8 in, and only ASCII escapes added.
    String::from_utf8(out).unwrap_or_default()
}

/// Go's HTML-safe escaping applied to JSON text that is otherwise already encoded (e.g.
/// serde_json output): `<`, `>`, `&`, U+2028 and U+2029 become `\u003c`, `\u003e`,
/// `\u0026`, `\u2028`, `\u2029`. Safe on any JSON text (these characters only occur inside
/// strings).
pub fn escape_html(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            _ => out.push(c),
        }
    }
    out
}

/// The inside of a JSON string: `s` escaped, without quotes.
fn write_escaped(out: &mut Vec<u8>, s: &str) {
    write_escaped_with(out, s, true);
}

/// The inside of a JSON string, HTML characters escaped or not.
fn write_escaped_with(out: &mut Vec<u8>, s: &str, escape_html: bool) {
    for c in s.chars() {
        match c {
            '<' | '>' | '&' if !escape_html => out.push(c as u8),
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' | '\0'..='\u{1f}' => {
                // Writing to a Vec cannot fail.
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            _ => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_like_go() {
        let mut out = Vec::new();
        write_string(&mut out, "a<b>&\"\\\n\u{1}\u{2028}é");
        assert_eq!(
            String::from_utf8(out).expect("utf8"),
            "\"a\\u003cb\\u003e\\u0026\\\"\\\\\\n\\u0001\\u2028é\""
        );
        assert_eq!(
            string("\u{8}\u{c}\t\r\u{2029}"),
            r#""\u0008\u000c\t\r\u2029""#
        );
    }

    #[test]
    fn invalid_utf8_is_one_replacement_per_byte() {
        let mut out = Vec::new();
        // A truncated three-byte sequence: Go decodes each byte as RuneError of size 1.
        write_bytes(&mut out, b"x\xe2\x82y\xff\xef\xbf\xbd");
        assert_eq!(out, "\"x\\ufffd\\ufffdy\\ufffd\u{fffd}\"".as_bytes());
    }

    #[test]
    fn html_escaping_can_be_turned_off() {
        let mut out = Vec::new();
        write_string_with(&mut out, "<&>\u{2029}\n", false);
        assert_eq!(out, br#""<&>\u2029\n""#);
        let mut out = Vec::new();
        write_string_with(&mut out, "<", true);
        assert_eq!(out, br#""\u003c""#);
    }

    #[test]
    fn html_escape_of_json_text() {
        assert_eq!(
            escape_html(r#"{"a":"<none>&"}"#),
            r#"{"a":"\u003cnone\u003e\u0026"}"#
        );
    }
}
