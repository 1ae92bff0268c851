//! Go-compatible formatting helpers, so output matches the docker CLI byte for byte.
//!
//! - [`human_size_with_precision`] / [`human_size`]: go-units `HumanSizeWithPrecision` (decimal units).
//! - [`human_duration`]: go-units `HumanDuration`.
//! - [`go_time_string`]: Go's `time.Time.String()` for a Unix time in UTC.
//! - [`escape_go_json`]: Go's `encoding/json` HTML escaping of `<`, `>`, `&`, U+2028, U+2029.
//! - [`rfc3339_utc`]: Go's `time.RFC3339` for a Unix time in UTC (parsing and RFC3339Nano are
//!   `image_store::time`'s).
//! - [`tabwrite`]: Go's `text/tabwriter` as the docker CLI configures it.

use image_store::time::Timestamp;
use std::borrow::Cow;

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

/// Go's `time.Unix(secs, 0).UTC().String()`: `2026-11-30 02:16:58 +0000 UTC`.
pub fn go_time_string(unix_seconds: i64) -> String {
    let (y, mo, d, h, mi, s) = Timestamp::from_unix(unix_seconds, 0).civil();
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02} +0000 UTC")
}

/// Go's `time.Unix(secs, 0).UTC().Format(time.RFC3339)`: `2026-11-30T02:16:58Z`.
pub fn rfc3339_utc(unix_seconds: i64) -> String {
    Timestamp::from_unix(unix_seconds, 0).format_rfc3339()
}

/// Go's `encoding/json` HTML-safe escaping applied to serde_json output: `<`, `>`, `&`,
/// U+2028 and U+2029 become `\u003c`, `\u003e`, `\u0026`, `\u2028`, `\u2029`
/// ([`go_json::escape_html`]).
pub use go_json::escape_html as escape_go_json;

/// Go's `text/tabwriter` as the docker 20.10 CLI sets it up (`minwidth 10, tabwidth 1,
/// padding 3, padchar ' '`), for rows of cells: [`tabwriter`] of the cells joined with tabs.
pub fn tabwrite(rows: &[Vec<String>]) -> String {
    let mut text = String::new();
    for row in rows {
        text.push_str(&row.join("\t"));
        text.push('\n');
    }
    tabwriter(&text)
}

/// [`tabwrite`] of `lines` rows of `columns` cells each, without holding the table: `cells(i,
/// line)` fills `line` with the cells of row `i`, and is called twice a row (to measure the
/// columns, then to write). With every row as wide, Go's tabwriter aligns the rows as one
/// block: each column but the last as wide as its widest cell (in characters) plus 3, at
/// least 10.
pub fn tabwrite_uniform<'a>(
    lines: usize,
    columns: usize,
    cells: impl Fn(usize, &mut Vec<Cow<'a, str>>),
) -> String {
    const MIN_WIDTH: usize = 10;
    const PADDING: usize = 3;
    let mut line: Vec<Cow<'a, str>> = Vec::with_capacity(columns);
    let mut widths = vec![MIN_WIDTH; columns.saturating_sub(1)];
    let mut last = 0;
    for i in 0..lines {
        cells(i, &mut line);
        for (j, cell) in line.iter().enumerate() {
            match widths.get_mut(j) {
                Some(w) => *w = (*w).max(cell.chars().count() + PADDING),
                None => last = last.max(cell.len()),
            }
        }
    }
    let row_len: usize = widths.iter().sum::<usize>() + last + 1;
    let mut out = String::with_capacity(lines.saturating_mul(row_len));
    for i in 0..lines {
        cells(i, &mut line);
        for (j, cell) in line.iter().enumerate() {
            out.push_str(cell);
            if let Some(w) = widths.get(j)
                && j + 1 < line.len()
            {
                let pad = w.saturating_sub(cell.chars().count());
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push('\n');
    }
    out
}

/// Go's `text/tabwriter` (`minwidth 10, tabwidth 1, padding 3, padchar ' '`, no flags) over
/// `text` written at once and flushed: cells end at tabs, a line's last cell is not
/// aligned, and each column is as wide as its widest cell (in characters) plus 3, at least
/// 10, over each block of consecutive lines that have a cell in that column.
pub fn tabwriter(text: &str) -> String {
    const MIN_WIDTH: usize = 10;
    const PADDING: usize = 3;
    let lines: Vec<Vec<&str>> = text.split('\n').map(|l| l.split('\t').collect()).collect();
    let mut out = String::with_capacity(text.len() * 2);
    let mut widths: Vec<usize> = Vec::new();
    fn write_lines(
        out: &mut String,
        lines: &[Vec<&str>],
        widths: &[usize],
        from: usize,
        to: usize,
        total: usize,
    ) {
        for (i, line) in lines.iter().enumerate().take(to).skip(from) {
            for (j, cell) in line.iter().enumerate() {
                out.push_str(cell);
                if j < widths.len() && j + 1 < line.len() {
                    let w = cell.chars().count();
                    out.extend(std::iter::repeat_n(' ', widths[j].saturating_sub(w)));
                }
            }
            if i + 1 < total {
                out.push('\n');
            }
        }
    }
    fn format(
        out: &mut String,
        lines: &[Vec<&str>],
        widths: &mut Vec<usize>,
        mut line0: usize,
        line1: usize,
    ) {
        let column = widths.len();
        let mut this = line0;
        while this < line1 {
            if column + 1 >= lines[this].len() {
                this += 1;
                continue;
            }
            write_lines(out, lines, widths, line0, this, lines.len());
            line0 = this;
            let mut width = MIN_WIDTH;
            while this < line1 {
                let line = &lines[this];
                if column + 1 >= line.len() {
                    break;
                }
                let w = line[column].chars().count() + PADDING;
                if w > width {
                    width = w;
                }
                this += 1;
            }
            widths.push(width);
            format(out, lines, widths, line0, this);
            widths.pop();
            line0 = this;
        }
        write_lines(out, lines, widths, line0, line1, lines.len());
    }
    format(&mut out, &lines, &mut widths, 0, lines.len());
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
    fn times_print_like_go() {
        assert_eq!(
            go_time_string(1_796_005_018),
            "2026-11-30 02:16:58 +0000 UTC"
        );
        assert_eq!(rfc3339_utc(1_796_005_018), "2026-11-30T02:16:58Z");
        assert_eq!(
            go_time_string(image_store::time::GO_ZERO_UNIX),
            "0001-01-01 00:00:00 +0000 UTC"
        );
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
        // Uniform tables: the same bytes as through the general writer.
        let table: Vec<Vec<String>> = (0..40)
            .map(|i| {
                (0..4)
                    .map(|j| "xé".repeat((i * 7 + j * 3) % 9))
                    .collect::<Vec<_>>()
            })
            .collect();
        for columns in 1..=4 {
            let rows: Vec<Vec<String>> = table.iter().map(|r| r[..columns].to_vec()).collect();
            let uniform = tabwrite_uniform(rows.len(), columns, |i, line| {
                line.clear();
                line.extend(rows[i].iter().map(|c| Cow::Borrowed(c.as_str())));
            });
            assert_eq!(uniform, tabwrite(&rows));
        }
        assert_eq!(tabwrite_uniform(0, 3, |_, _| {}), tabwrite(&[]));
        // Column blocks (what Go 1.19's tabwriter printed): a line without the column
        // ends the block.
        assert_eq!(
            tabwriter("a\tb\tc\nlonger-than-ten\tx\nno tabs\nz\ty\n"),
            "a                 b         c\nlonger-than-ten   x\nno tabs\nz         y\n"
        );
    }
}
