//! The parts of Go's `strconv` that templates and `fmt` need: quoting and unquoting,
//! number parsing with Go's literal syntax, and `FormatFloat`.

use std::fmt::Write as _;

/// Go's `unicode.IsPrint`, approximated without Unicode tables: not a control character,
/// not a format or separator character, and the only space is U+0020.
pub(crate) fn is_print(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    !matches!(u32::from(c),
        0xAD | 0x34F | 0x61C | 0x115F | 0x1160 | 0x17B4 | 0x17B5 | 0x180B..=0x180F
        | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x206F | 0x3164 | 0xFE00..=0xFE0F
        | 0xFEFF | 0xFFA0 | 0xFFF0..=0xFFFB | 0xE000..=0xF8FF | 0xF0000..=0x10FFFF
        | 0xE0000..=0xE0FFF)
}

fn append_quoted_rune(out: &mut String, r: char, quote: char, ascii_only: bool) {
    if r == quote || r == '\\' {
        out.push('\\');
        out.push(r);
        return;
    }
    if ascii_only {
        if r.is_ascii() && is_print(r) {
            out.push(r);
            return;
        }
    } else if is_print(r) {
        out.push(r);
        return;
    }
    match r {
        '\u{7}' => out.push_str("\\a"),
        '\u{8}' => out.push_str("\\b"),
        '\u{c}' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\u{b}' => out.push_str("\\v"),
        r if u32::from(r) < 0x20 || r == '\u{7f}' => {
            let _ = write!(out, "\\x{:02x}", u32::from(r));
        }
        r if u32::from(r) < 0x10000 => {
            let _ = write!(out, "\\u{:04x}", u32::from(r));
        }
        r => {
            let _ = write!(out, "\\U{:08x}", u32::from(r));
        }
    }
}

/// Go's `strconv.Quote`.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        append_quoted_rune(&mut out, c, '"', false);
    }
    out.push('"');
    out
}

/// Go's `strconv.QuoteToASCII`.
pub(crate) fn quote_to_ascii(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        append_quoted_rune(&mut out, c, '"', true);
    }
    out.push('"');
    out
}

/// Go's `strconv.QuoteRune` (and `QuoteRuneToASCII` with `ascii_only`).
pub(crate) fn quote_rune(r: char, ascii_only: bool) -> String {
    let mut out = String::from("'");
    append_quoted_rune(&mut out, r, '\'', ascii_only);
    out.push('\'');
    out
}

/// Go's `strconv.CanBackquote`.
pub(crate) fn can_backquote(s: &str) -> bool {
    s.chars()
        .all(|c| c != '`' && c != '\u{FEFF}' && (c == '\t' || !(c < ' ' || c == '\u{7f}')))
}

/// Go's `%#U` of a rune: `U+0041 'A'`, or `U+0007` when not printable.
pub(crate) fn quote_rune_u(r: char) -> String {
    if is_print(r) {
        format!("U+{:04X} '{r}'", u32::from(r))
    } else {
        format!("U+{:04X}", u32::from(r))
    }
}

fn unhex(c: char) -> Option<u32> {
    c.to_digit(16)
}

/// Go's `strconv.UnquoteChar`: the first character of `s` (escapes decoded) and the rest.
pub(crate) fn unquote_char(s: &str, quote: char) -> Result<(char, &str), String> {
    let syntax = || "invalid syntax".to_owned();
    let mut it = s.chars();
    let c = it.next().ok_or_else(syntax)?;
    if c == quote && (quote == '\'' || quote == '"') {
        return Err(syntax());
    }
    if c != '\\' {
        return Ok((c, it.as_str()));
    }
    let c = it.next().ok_or_else(syntax)?;
    let simple = match c {
        'a' => Some('\u{7}'),
        'b' => Some('\u{8}'),
        'f' => Some('\u{c}'),
        'n' => Some('\n'),
        'r' => Some('\r'),
        't' => Some('\t'),
        'v' => Some('\u{b}'),
        '\\' => Some('\\'),
        '\'' | '"' => {
            if c != quote {
                return Err(syntax());
            }
            Some(c)
        }
        _ => None,
    };
    if let Some(v) = simple {
        return Ok((v, it.as_str()));
    }
    match c {
        'x' | 'u' | 'U' => {
            let n = match c {
                'x' => 2,
                'u' => 4,
                _ => 8,
            };
            let mut v = 0u32;
            for _ in 0..n {
                let d = it.next().and_then(unhex).ok_or_else(syntax)?;
                v = v << 4 | d;
            }
            if c == 'x' {
                // A byte; only valid as a whole character for bytes < 0x80 here (Go
                // strings may hold invalid UTF-8; ours cannot).
                return char::from_u32(v)
                    .map(|r| (r, it.as_str()))
                    .ok_or_else(syntax);
            }
            char::from_u32(v)
                .map(|r| (r, it.as_str()))
                .ok_or_else(syntax)
        }
        '0'..='7' => {
            let mut v = c.to_digit(8).unwrap_or(0);
            for _ in 0..2 {
                let d = it.next().and_then(|c| c.to_digit(8)).ok_or_else(syntax)?;
                v = (v << 3) | d;
            }
            if v > 255 {
                return Err(syntax());
            }
            char::from_u32(v)
                .map(|r| (r, it.as_str()))
                .ok_or_else(syntax)
        }
        _ => Err(syntax()),
    }
}

/// Go's `strconv.Unquote` for `"..."`, `` `...` `` and `'.'`.
pub(crate) fn unquote(s: &str) -> Result<String, String> {
    let syntax = || "invalid syntax".to_owned();
    let mut chars = s.chars();
    let q = chars.next().ok_or_else(syntax)?;
    if s.len() < 2 || !s.ends_with(q) {
        return Err(syntax());
    }
    let body = &s[1..s.len() - 1];
    match q {
        '`' => {
            if body.contains('`') {
                return Err(syntax());
            }
            Ok(body.replace('\r', ""))
        }
        '"' | '\'' => {
            if body.contains('\n') {
                return Err(syntax());
            }
            let mut out = String::new();
            let mut rest = body;
            while !rest.is_empty() {
                let (c, tail) = unquote_char(rest, q)?;
                out.push(c);
                rest = tail;
                if q == '\'' && !rest.is_empty() {
                    return Err(syntax());
                }
            }
            if q == '\'' && out.is_empty() {
                return Err(syntax());
            }
            Ok(out)
        }
        _ => Err(syntax()),
    }
}

/// Go's `underscoreOK`: underscores only between digits (or after a base prefix).
fn underscore_ok(s: &str) -> bool {
    let b = s.as_bytes();
    let mut saw = b'^';
    let mut i = 0;
    if !b.is_empty() && (b[0] == b'-' || b[0] == b'+') {
        i = 1;
    }
    let mut hex = false;
    if b.len() - i >= 2
        && b[i] == b'0'
        && matches!(b[i + 1].to_ascii_lowercase(), b'b' | b'o' | b'x')
    {
        hex = b[i + 1].eq_ignore_ascii_case(&b'x');
        i += 2;
        saw = b'0';
    }
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_digit() || (hex && c.is_ascii_hexdigit()) {
            saw = b'0';
        } else if c == b'_' {
            if saw != b'0' {
                return false;
            }
            saw = b'_';
        } else {
            if saw == b'_' {
                return false;
            }
            saw = b'!';
        }
        i += 1;
    }
    saw != b'_'
}

fn parse_uint_base0(s: &str) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    let (base, digits, prefixed) = if let Some(r) = s.strip_prefix("0x").or(s.strip_prefix("0X")) {
        (16, r, true)
    } else if let Some(r) = s.strip_prefix("0o").or(s.strip_prefix("0O")) {
        (8, r, true)
    } else if let Some(r) = s.strip_prefix("0b").or(s.strip_prefix("0B")) {
        (2, r, true)
    } else if s.len() > 1 && s.starts_with('0') {
        (8, &s[1..], true)
    } else {
        (10, s, false)
    };
    let _ = prefixed;
    if s.contains('_') && !underscore_ok(s) {
        return None;
    }
    let clean: String = digits.chars().filter(|&c| c != '_').collect();
    if clean.is_empty() {
        return None;
    }
    u64::from_str_radix(&clean, base).ok()
}

/// Go's `strconv.ParseUint(s, 0, 64)`.
pub(crate) fn parse_uint(s: &str) -> Option<u64> {
    if s.starts_with(['+', '-']) {
        return None;
    }
    parse_uint_base0(s)
}

/// Go's `strconv.ParseInt(s, 0, 64)`.
pub(crate) fn parse_int(s: &str) -> Option<i64> {
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let u = parse_uint_base0(body)?;
    if neg {
        if u <= 1u64 << 63 {
            Some((u as i64).wrapping_neg())
        } else {
            None
        }
    } else {
        i64::try_from(u).ok()
    }
}

/// Go's `strconv.ParseFloat(s, 64)` (decimal and hexadecimal forms, underscores, `Inf`,
/// `NaN`); `None` where Go fails (out of range included).
pub(crate) fn parse_float(s: &str) -> Option<f64> {
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = body.to_ascii_lowercase();
    let sign = if neg { -1.0 } else { 1.0 };
    if lower == "inf" || lower == "infinity" {
        return Some(sign * f64::INFINITY);
    }
    if lower == "nan" {
        return Some(f64::NAN);
    }
    if body.contains('_') && !underscore_ok(s) {
        return None;
    }
    let clean: String = lower.chars().filter(|&c| c != '_').collect();
    if let Some(hex) = clean.strip_prefix("0x") {
        let (mant, exp) = hex.split_once('p')?;
        let exp: i32 = exp.parse().ok()?;
        let (ip, fp) = mant.split_once('.').unwrap_or((mant, ""));
        if ip.is_empty() && fp.is_empty() {
            return None;
        }
        let mut v = 0f64;
        for c in ip.chars() {
            v = v * 16.0 + f64::from(unhex(c)?);
        }
        let mut scale = 1.0 / 16.0;
        for c in fp.chars() {
            v += f64::from(unhex(c)?) * scale;
            scale /= 16.0;
        }
        let r = sign * v * 2f64.powi(exp);
        return r.is_finite().then_some(r);
    }
    if !clean
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | '+' | '-'))
    {
        return None;
    }
    let v: f64 = clean.parse().ok()?;
    if v.is_infinite() {
        return None;
    }
    Some(sign * v)
}

/// `fmt.Sscan` of a complex constant such as `1+2i`.
pub(crate) fn parse_complex(s: &str) -> Option<(f64, f64)> {
    let body = s.strip_suffix('i')?;
    let bytes = body.as_bytes();
    let mut split = None;
    for i in (1..bytes.len()).rev() {
        if (bytes[i] == b'+' || bytes[i] == b'-')
            && !matches!(bytes[i - 1], b'e' | b'E' | b'p' | b'P')
        {
            split = Some(i);
            break;
        }
    }
    let i = split?;
    Some((parse_float(&body[..i])?, parse_float(&body[i..])?))
}

/// Decimal digits of a float: `digits` (no leading zeros, trailing zeros trimmed),
/// decimal point position `dp` (value = 0.digits × 10^dp).
struct Decimal {
    d: Vec<u8>,
    dp: i32,
}

/// From Rust's `{:e}` output (`1.234e5`, `0e0`).
fn decimal_from_sci(s: &str) -> Decimal {
    let (m, e) = s.split_once('e').unwrap_or((s, "0"));
    let e: i32 = e.parse().unwrap_or(0);
    let mut d: Vec<u8> = m.bytes().filter(u8::is_ascii_digit).collect();
    while d.last() == Some(&b'0') {
        d.pop();
    }
    if d.is_empty() {
        return Decimal { d, dp: 0 };
    }
    Decimal { d, dp: e + 1 }
}

fn shortest(v: f64, bits: u32) -> Decimal {
    if bits == 32 {
        decimal_from_sci(&format!("{:e}", v.abs() as f32))
    } else {
        decimal_from_sci(&format!("{:e}", v.abs()))
    }
}

fn fixed_sig(v: f64, digits: usize, bits: u32) -> Decimal {
    let digits = digits.max(1);
    if bits == 32 {
        decimal_from_sci(&format!("{:.*e}", digits - 1, v.abs() as f32))
    } else {
        decimal_from_sci(&format!("{:.*e}", digits - 1, v.abs()))
    }
}

fn fixed_frac(v: f64, prec: usize, bits: u32) -> Decimal {
    let s = if bits == 32 {
        format!("{:.*}", prec, v.abs() as f32)
    } else {
        format!("{:.*}", prec, v.abs())
    };
    let (ip, fp) = s.split_once('.').unwrap_or((&s, ""));
    let mut all: Vec<u8> = ip.bytes().chain(fp.bytes()).collect();
    let mut dp = i32::try_from(ip.len()).unwrap_or(0);
    while all.first() == Some(&b'0') {
        all.remove(0);
        dp -= 1;
    }
    while all.last() == Some(&b'0') {
        all.pop();
    }
    if all.is_empty() {
        dp = 0;
    }
    Decimal { d: all, dp }
}

fn fmt_e(out: &mut String, neg: bool, d: &Decimal, prec: i32, fmt: char) {
    if neg {
        out.push('-');
    }
    out.push(d.d.first().map_or('0', |&c| char::from(c)));
    if prec > 0 {
        out.push('.');
        let prec = usize::try_from(prec).unwrap_or(0);
        for i in 1..=prec {
            out.push(d.d.get(i).map_or('0', |&c| char::from(c)));
        }
    }
    out.push(fmt);
    let mut exp = d.dp - 1;
    if d.d.is_empty() {
        exp = 0;
    }
    out.push(if exp < 0 { '-' } else { '+' });
    let exp = exp.unsigned_abs();
    if exp < 10 {
        let _ = write!(out, "0{exp}");
    } else {
        let _ = write!(out, "{exp}");
    }
}

fn fmt_f(out: &mut String, neg: bool, d: &Decimal, prec: i32) {
    if neg {
        out.push('-');
    }
    if d.dp > 0 {
        let dp = usize::try_from(d.dp).unwrap_or(0);
        for i in 0..dp {
            out.push(d.d.get(i).map_or('0', |&c| char::from(c)));
        }
    } else {
        out.push('0');
    }
    if prec > 0 {
        out.push('.');
        for i in 0..prec {
            let j = d.dp + i;
            let c = usize::try_from(j)
                .ok()
                .and_then(|j| d.d.get(j))
                .map_or('0', |&c| char::from(c));
            out.push(c);
        }
    }
}

/// Go's `strconv.FormatFloat(v, fmt, prec, bits)` for `fmt` in `e E f g G` (`prec` -1:
/// shortest).
pub(crate) fn format_float(v: f64, fmt: char, prec: i32, bits: u32) -> String {
    if v.is_nan() {
        return "NaN".to_owned();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.to_owned();
    }
    let neg = v.is_sign_negative();
    let shortest_mode = prec < 0;
    let mut prec = prec;
    let digs = if shortest_mode {
        let d = shortest(v, bits);
        let nd = i32::try_from(d.d.len()).unwrap_or(0);
        prec = match fmt {
            'e' | 'E' => (nd - 1).max(0),
            'f' => (nd - d.dp).max(0),
            _ => nd,
        };
        d
    } else {
        match fmt {
            'e' | 'E' => fixed_sig(v, usize::try_from(prec + 1).unwrap_or(1), bits),
            'g' | 'G' => {
                if prec == 0 {
                    prec = 1;
                }
                fixed_sig(v, usize::try_from(prec).unwrap_or(1), bits)
            }
            _ => fixed_frac(v, usize::try_from(prec).unwrap_or(0), bits),
        }
    };
    let mut out = String::new();
    let nd = i32::try_from(digs.d.len()).unwrap_or(0);
    match fmt {
        'e' | 'E' => fmt_e(&mut out, neg, &digs, prec, fmt),
        'f' => fmt_f(&mut out, neg, &digs, prec),
        _ => {
            let mut eprec = prec;
            if eprec > nd && nd >= digs.dp {
                eprec = nd;
            }
            if shortest_mode {
                eprec = 6;
            }
            let exp = digs.dp - 1;
            if exp < -4 || exp >= eprec {
                if prec > nd {
                    prec = nd;
                }
                let e = if fmt == 'G' { 'E' } else { 'e' };
                fmt_e(&mut out, neg, &digs, prec - 1, e);
            } else {
                if prec > digs.dp {
                    prec = nd;
                }
                fmt_f(&mut out, neg, &digs, (prec - digs.dp).max(0));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_format_like_go() {
        assert_eq!(format_float(1_982_256.0, 'g', -1, 64), "1.982256e+06");
        assert_eq!(format_float(123_456.0, 'g', -1, 64), "123456");
        assert_eq!(format_float(0.0001, 'g', -1, 64), "0.0001");
        assert_eq!(format_float(0.00001, 'g', -1, 64), "1e-05");
        assert_eq!(format_float(1.23456, 'f', 2, 64), "1.23");
        assert_eq!(format_float(1.23456, 'e', 6, 64), "1.234560e+00");
        assert_eq!(format_float(0.0, 'g', -1, 64), "0");
        assert_eq!(format_float(-0.0, 'g', -1, 64), "-0");
        assert_eq!(format_float(100.0, 'g', 2, 64), "1e+02");
        assert_eq!(format_float(1e21, 'g', -1, 64), "1e+21");
        assert_eq!(format_float(2.5, 'f', 0, 64), "2");
        assert_eq!(format_float(123.456, 'g', 4, 64), "123.5");
    }

    #[test]
    fn quoting_like_go() {
        assert_eq!(quote("a\"b\\\n\u{1}é"), "\"a\\\"b\\\\\\n\\x01é\"");
        assert_eq!(quote_to_ascii("é"), "\"\\u00e9\"");
        assert_eq!(unquote("\"a\\tb\\u00e9\"").as_deref(), Ok("a\tbé"));
        assert_eq!(unquote("`a\\n`").as_deref(), Ok("a\\n"));
        assert!(unquote("\"a").is_err());
        assert_eq!(quote_rune_u('A'), "U+0041 'A'");
    }

    #[test]
    fn numbers_parse_like_go() {
        assert_eq!(parse_int("0x1F"), Some(31));
        assert_eq!(parse_int("017"), Some(15));
        assert_eq!(parse_int("1_000"), Some(1000));
        assert_eq!(parse_int("_1"), None);
        assert_eq!(parse_int("-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_uint("18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_float("1e3"), Some(1000.0));
        assert_eq!(parse_float("0x1p-2"), Some(0.25));
        assert_eq!(parse_complex("1+2i"), Some((1.0, 2.0)));
    }
}
