//! Go-compatible formatting helpers, so output matches the docker CLI byte for byte.
//!
//! - [`human_size_with_precision`] / [`human_size`]: go-units `HumanSizeWithPrecision` (decimal units).
//! - [`human_duration`]: go-units `HumanDuration`.
//! - [`go_time_string`]: Go's `time.Time.String()` for a Unix time in UTC.
//! - [`escape_go_json`]: Go's `encoding/json` HTML escaping of `<`, `>`, `&`, U+2028, U+2029.
//! - [`Rfc3339`]: RFC 3339 timestamps parsed and printed the way Go's `time` package does.
//! - [`tabwrite`]: Go's `text/tabwriter` as the docker CLI configures it.

use std::fmt::Write as _;

/// go-units `HumanSizeWithPrecision`: decimal units (B, kB, MB, ...) and `%.*g` formatting.
///
/// ```
/// assert_eq!(imgstore::gofmt::human_size_with_precision(80.0, 3), "80B");
/// assert_eq!(imgstore::gofmt::human_size_with_precision(45_300_000.0, 3), "45.3MB");
/// ```
pub fn human_size_with_precision(size: f64, precision: usize) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let mut size = size;
    let mut i = 0;
    while size >= 1000.0 && i < UNITS.len() - 1 {
        size /= 1000.0;
        i += 1;
    }
    format!("{}{}", format_g(size, precision), UNITS[i])
}

/// go-units `HumanSize`: [`human_size_with_precision`] with precision 4.
pub fn human_size(size: f64) -> String {
    human_size_with_precision(size, 4)
}

/// Go's `%.*g`: at most `precision` significant digits, trailing zeros removed, exponent form
/// (`1e+03`) when the exponent is below -4 or at least `precision`.
pub fn format_g(value: f64, precision: usize) -> String {
    let precision = precision.max(1);
    if value == 0.0 {
        return "0".to_owned();
    }
    if !value.is_finite() {
        return if value.is_nan() {
            "NaN".to_owned()
        } else if value > 0.0 {
            "+Inf".to_owned()
        } else {
            "-Inf".to_owned()
        };
    }
    let sci = format!("{:.*e}", precision - 1, value);
    let (mantissa, exp) = match sci.split_once('e') {
        Some((m, e)) => (m.to_owned(), e.parse::<i32>().unwrap_or(0)),
        None => (sci.clone(), 0),
    };
    let p = i32::try_from(precision).unwrap_or(i32::MAX);
    if exp < -4 || exp >= p {
        let m = trim_zeros(&mantissa);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{m}e{sign}{:02}", exp.unsigned_abs())
    } else {
        let decimals = usize::try_from(p - 1 - exp).unwrap_or(0);
        trim_zeros(&format!("{value:.decimals$}"))
    }
}

fn trim_zeros(s: &str) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s.to_owned()
    }
}

/// go-units `HumanDuration` for a number of seconds (negative counts as less than a second).
///
/// ```
/// assert_eq!(imgstore::gofmt::human_duration(9 * 60 + 5), "9 minutes");
/// assert_eq!(imgstore::gofmt::human_duration(3 * 86400), "3 days");
/// ```
pub fn human_duration(seconds: i64) -> String {
    let secs = seconds;
    if secs < 1 {
        return "Less than a second".to_owned();
    }
    if secs == 1 {
        return "1 second".to_owned();
    }
    if secs < 60 {
        return format!("{secs} seconds");
    }
    let minutes = secs / 60;
    if minutes == 1 {
        return "About a minute".to_owned();
    }
    if minutes < 60 {
        return format!("{minutes} minutes");
    }
    // Go: int(d.Hours() + 0.5)
    let hours = ((secs as f64) / 3600.0 + 0.5) as i64;
    if hours == 1 {
        return "About an hour".to_owned();
    }
    if hours < 48 {
        return format!("{hours} hours");
    }
    if hours < 24 * 7 * 2 {
        return format!("{} days", hours / 24);
    }
    if hours < 24 * 30 * 2 {
        return format!("{} weeks", hours / 24 / 7);
    }
    if hours < 24 * 365 * 2 {
        return format!("{} months", hours / 24 / 30);
    }
    format!("{} years", secs / 3600 / 24 / 365)
}

/// Days since 1970-01-01 to a civil date (proleptic Gregorian).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// A civil date to days since 1970-01-01.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Go's `time.Unix(secs, 0).UTC().String()`: `2026-11-30 02:16:58 +0000 UTC`.
pub fn go_time_string(unix_seconds: i64) -> String {
    let (y, mo, d, h, mi, s) = split_unix(unix_seconds);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02} +0000 UTC")
}

fn split_unix(unix_seconds: i64) -> (i64, u32, u32, i64, i64, i64) {
    let days = unix_seconds.div_euclid(86_400);
    let rem = unix_seconds.rem_euclid(86_400);
    let (y, mo, d) = civil_from_days(days);
    (y, mo, d, rem / 3600, (rem % 3600) / 60, rem % 60)
}

/// Go's `time.Unix(secs, 0).UTC().Format(time.RFC3339)`: `2026-11-30T02:16:58Z`.
pub fn rfc3339_utc(unix_seconds: i64) -> String {
    let (y, mo, d, h, mi, s) = split_unix(unix_seconds);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// A timestamp as Go's `time.Time` keeps one parsed from RFC 3339: the instant plus the
/// offset it was written with (which Go prints back).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Rfc3339 {
    /// Seconds since the Unix epoch (UTC).
    pub unix: i64,
    /// Nanoseconds within the second.
    pub nanos: u32,
    /// The UTC offset it was written with, in seconds (0 prints as `Z`).
    pub offset: i32,
    /// True for Go's zero time (`0001-01-01T00:00:00Z`).
    pub zero: bool,
}

/// Unix seconds of Go's zero time, 0001-01-01T00:00:00Z.
const GO_ZERO_UNIX: i64 = -62_135_596_800;

impl Rfc3339 {
    /// Go's zero `time.Time`.
    pub fn zero() -> Self {
        Rfc3339 {
            unix: GO_ZERO_UNIX,
            nanos: 0,
            offset: 0,
            zero: true,
        }
    }

    /// True when this is Go's zero time.
    pub fn is_zero(&self) -> bool {
        self.zero || (self.unix == GO_ZERO_UNIX && self.nanos == 0)
    }

    /// Parses RFC 3339 the way Go's `time.Parse(time.RFC3339Nano, s)` accepts it
    /// (`YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`); `None` when it does not parse.
    pub fn parse(s: &str) -> Option<Self> {
        let b = s.as_bytes();
        if b.len() < 20 {
            return None;
        }
        let num = |r: std::ops::Range<usize>| -> Option<i64> {
            let part = s.get(r)?;
            if part.bytes().all(|c| c.is_ascii_digit()) {
                part.parse().ok()
            } else {
                None
            }
        };
        let y = num(0..4)?;
        let mo = num(5..7)?;
        let d = num(8..10)?;
        let h = num(11..13)?;
        let mi = num(14..16)?;
        let sec = num(17..19)?;
        if b[4] != b'-' || b[7] != b'-' || !(b[10] == b'T' || b[10] == b't') {
            return None;
        }
        if b[13] != b':' || b[16] != b':' {
            return None;
        }
        if !(1..=12).contains(&mo) || d < 1 || h > 23 || mi > 59 || sec > 59 {
            return None;
        }
        let mo = mo as u32;
        let d = d as u32;
        let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        let mdays = [
            31,
            if leap { 29 } else { 28 },
            31,
            30,
            31,
            30,
            31,
            31,
            30,
            31,
            30,
            31,
        ];
        if d > mdays[(mo - 1) as usize] {
            return None;
        }
        let mut i = 19;
        let mut nanos: u32 = 0;
        if b.get(i) == Some(&b'.') || b.get(i) == Some(&b',') {
            i += 1;
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            if i == start {
                return None;
            }
            let digits = &s[start..i];
            let mut n: u64 = 0;
            for (k, c) in digits.bytes().enumerate() {
                if k < 9 {
                    n = n * 10 + u64::from(c - b'0');
                }
            }
            for _ in digits.len()..9 {
                n *= 10;
            }
            nanos = u32::try_from(n).ok()?;
        }
        let rest = &s[i..];
        let offset: i32 = if rest == "Z" || rest == "z" {
            0
        } else {
            let rb = rest.as_bytes();
            if rb.len() != 6 || !(rb[0] == b'+' || rb[0] == b'-') || rb[3] != b':' {
                return None;
            }
            let oh: i32 = rest.get(1..3)?.parse().ok()?;
            let om: i32 = rest.get(4..6)?.parse().ok()?;
            if oh > 23 || om > 59 {
                return None;
            }
            let o = oh * 3600 + om * 60;
            if rb[0] == b'-' { -o } else { o }
        };
        let local = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + sec;
        let unix = local - i64::from(offset);
        Some(Rfc3339 {
            unix,
            nanos,
            offset,
            zero: unix == GO_ZERO_UNIX && nanos == 0,
        })
    }

    /// Go's `Format(time.RFC3339Nano)`: fraction without trailing zeros, `Z` for UTC.
    pub fn format_nano(&self) -> String {
        let local = self.unix + i64::from(self.offset);
        let (y, mo, d, h, mi, s) = split_unix(local);
        let mut out = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}");
        if self.nanos != 0 {
            let frac = format!("{:09}", self.nanos);
            out.push('.');
            out.push_str(frac.trim_end_matches('0'));
        }
        if self.offset == 0 {
            out.push('Z');
        } else {
            let sign = if self.offset < 0 { '-' } else { '+' };
            let o = self.offset.unsigned_abs();
            let _ = write!(out, "{sign}{:02}:{:02}", o / 3600, (o % 3600) / 60);
        }
        out
    }
}

/// Go's `encoding/json` HTML-safe escaping applied to serde_json output: `<`, `>`, `&`,
/// U+2028 and U+2029 become `\u003c`, `\u003e`, `\u0026`, `\u2028`, `\u2029`. Safe on
/// any JSON text (these characters only occur inside strings).
pub fn escape_go_json(json: &str) -> String {
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

/// Go's `text/tabwriter` as the docker 20.10 CLI sets it up (`minwidth 10, tabwidth 1,
/// padding 3, padchar ' '`): every cell but the last of a row is padded to its column's width. Widths
/// count characters, as Go does.
pub fn tabwrite(rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = Vec::new();
    for row in rows {
        for (i, cell) in row.iter().enumerate().take(row.len().saturating_sub(1)) {
            let w = (cell.chars().count() + 3).max(10);
            if widths.len() <= i {
                widths.push(w);
            } else if widths[i] < w {
                widths[i] = w;
            }
        }
    }
    let mut out = String::with_capacity(rows.len() * (widths.iter().sum::<usize>() + 16));
    for row in rows {
        let last = row.len().saturating_sub(1);
        for (i, cell) in row.iter().enumerate() {
            out.push_str(cell);
            if i < last {
                let pad = widths[i].saturating_sub(cell.chars().count());
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        // Go's tabwriter drops trailing padding only for the last cell, which we never pad.
        out.push('\n');
    }
    out
}

/// The docker CLI's `Ellipsis`: cut to `max` characters, the last one replaced by `…`.
pub fn ellipsis(s: &str, max: usize) -> String {
    if max == 0 {
        return String::new();
    }
    let count = s.chars().count();
    if count <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_match_go_units() {
        assert_eq!(human_size_with_precision(0.0, 3), "0B");
        assert_eq!(human_size_with_precision(80.0, 3), "80B");
        assert_eq!(human_size_with_precision(1234.0, 3), "1.23kB");
        assert_eq!(human_size_with_precision(1200.0, 3), "1.2kB");
        assert_eq!(human_size_with_precision(999_999.0, 3), "1e+03kB");
        assert_eq!(human_size_with_precision(45_300_000.0, 3), "45.3MB");
        assert_eq!(human_size_with_precision(1e9, 3), "1GB");
        assert_eq!(human_size(123_456_789.0), "123.5MB");
        assert_eq!(format_g(0.0001, 3), "0.0001");
        assert_eq!(format_g(0.00001, 3), "1e-05");
    }

    #[test]
    fn durations_match_go_units() {
        assert_eq!(human_duration(0), "Less than a second");
        assert_eq!(human_duration(1), "1 second");
        assert_eq!(human_duration(59), "59 seconds");
        assert_eq!(human_duration(60), "About a minute");
        assert_eq!(human_duration(600), "10 minutes");
        assert_eq!(human_duration(3600), "About an hour");
        assert_eq!(human_duration(5 * 3600), "5 hours");
        assert_eq!(human_duration(47 * 3600), "47 hours");
        assert_eq!(human_duration(48 * 3600), "2 days");
        assert_eq!(human_duration(15 * 86400), "2 weeks");
        assert_eq!(human_duration(90 * 86400), "3 months");
        assert_eq!(human_duration(800 * 86400), "2 years");
    }

    #[test]
    fn times_round_trip() {
        let t = Rfc3339::parse("2026-11-30T02:16:58.953127377Z").expect("parses");
        assert_eq!(t.format_nano(), "2026-11-30T02:16:58.953127377Z");
        assert_eq!(go_time_string(t.unix), "2026-11-30 02:16:58 +0000 UTC");
        let t = Rfc3339::parse("2026-11-30T03:16:58.5+01:00").expect("parses");
        assert_eq!(t.format_nano(), "2026-11-30T03:16:58.5+01:00");
        assert_eq!(go_time_string(t.unix), "2026-11-30 02:16:58 +0000 UTC");
        assert_eq!(Rfc3339::zero().format_nano(), "0001-01-01T00:00:00Z");
        assert!(
            Rfc3339::parse("0001-01-01T00:00:00Z")
                .expect("zero")
                .is_zero()
        );
        assert!(Rfc3339::parse("garbage").is_none());
        assert!(Rfc3339::parse("2026-02-30T00:00:00Z").is_none());
    }

    #[test]
    fn escapes_like_go() {
        assert_eq!(
            escape_go_json(r#"{"a":"<none>&"}"#),
            r#"{"a":"\u003cnone\u003e\u0026"}"#
        );
    }

    #[test]
    fn tabwriter_pads_like_go() {
        let rows = vec![
            vec!["REPOSITORY".to_owned(), "TAG".to_owned(), "SIZE".to_owned()],
            vec!["base".to_owned(), "latest".to_owned(), "80B".to_owned()],
        ];
        let out = tabwrite(&rows);
        assert_eq!(
            out,
            "REPOSITORY   TAG       SIZE\nbase         latest    80B\n"
        );
        assert_eq!(ellipsis("abcdef", 4), "abc…");
    }
}
