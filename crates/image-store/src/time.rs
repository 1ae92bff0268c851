//! RFC 3339 timestamps as Go writes and reads them (`time.RFC3339Nano`), with std only.
//!
//! dockerd writes `lastUpdated` metadata as `time.Now().UTC().Format(time.RFC3339Nano)`: the
//! fraction of a second has its trailing zeros trimmed (and disappears with its dot when it is
//! zero) and UTC is spelled `Z`. Image configs carry `created` timestamps that may have an
//! offset (`+02:00`); Go keeps that offset when it prints the time again, so [`Timestamp`]
//! keeps it too.
//!
//! ```
//! use std::time::{Duration, UNIX_EPOCH};
//! use image_store::time::{Timestamp, format_rfc3339_nano, parse_rfc3339};
//!
//! let t = UNIX_EPOCH + Duration::new(1_796_005_080, 10_528_136_0);
//! assert_eq!(format_rfc3339_nano(t), "2026-11-30T02:18:00.10528136Z");
//!
//! let created: Timestamp = parse_rfc3339("2026-11-30T04:18:00.5+02:00").expect("valid");
//! assert_eq!(created.to_string(), "2026-11-30T04:18:00.5+02:00");
//! assert_eq!(created.to_utc().to_string(), "2026-11-30T02:18:00.5Z");
//! ```

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Unix seconds of Go's zero `time.Time` (`0001-01-01T00:00:00Z`, [`Timestamp::go_zero`]).
pub const GO_ZERO_UNIX: i64 = -62_135_596_800;

/// A point in time with the UTC offset it was written with, to the nanosecond.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Timestamp {
    /// Seconds since 1970-01-01T00:00:00Z (negative before).
    unix_secs: i64,
    /// Nanoseconds within the second, `0..1_000_000_000`.
    nanos: u32,
    /// The offset from UTC, in seconds, used when printing (`0` prints as `Z`).
    offset_secs: i32,
}

/// Why a string is not an RFC 3339 timestamp.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid RFC 3339 timestamp {input:?}: {reason}")]
pub struct ParseTimeError {
    /// The string that was parsed.
    pub input: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl Timestamp {
    /// A UTC timestamp from seconds and nanoseconds since the Unix epoch.
    ///
    /// Nanoseconds of one second or more carry into the seconds.
    pub fn from_unix(unix_secs: i64, nanos: u32) -> Self {
        Timestamp {
            unix_secs: unix_secs.saturating_add(i64::from(nanos / 1_000_000_000)),
            nanos: nanos % 1_000_000_000,
            offset_secs: 0,
        }
    }

    /// A UTC timestamp from a [`SystemTime`].
    pub fn from_system_time(t: SystemTime) -> Self {
        match t.duration_since(UNIX_EPOCH) {
            Ok(d) => Timestamp::from_unix(
                i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
                d.subsec_nanos(),
            ),
            Err(e) => {
                let d = e.duration();
                let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
                if d.subsec_nanos() == 0 {
                    Timestamp::from_unix(-secs, 0)
                } else {
                    Timestamp::from_unix(-secs - 1, 1_000_000_000 - d.subsec_nanos())
                }
            }
        }
    }

    /// The current time, in UTC.
    pub fn now() -> Self {
        Timestamp::from_system_time(SystemTime::now())
    }

    /// Seconds since the Unix epoch.
    pub fn unix_secs(&self) -> i64 {
        self.unix_secs
    }

    /// Nanoseconds within the second.
    pub fn nanos(&self) -> u32 {
        self.nanos
    }

    /// The UTC offset this timestamp prints with, in seconds east of UTC.
    pub fn offset_secs(&self) -> i32 {
        self.offset_secs
    }

    /// The same instant, printed in UTC.
    pub fn to_utc(&self) -> Self {
        Timestamp {
            offset_secs: 0,
            ..*self
        }
    }

    /// The same instant, printed with offset `offset_secs` (seconds east of UTC).
    pub fn with_offset(&self, offset_secs: i32) -> Self {
        Timestamp {
            offset_secs,
            ..*self
        }
    }

    /// The instant as a [`SystemTime`].
    pub fn to_system_time(&self) -> SystemTime {
        if self.unix_secs >= 0 {
            UNIX_EPOCH + Duration::new(self.unix_secs.unsigned_abs(), self.nanos)
        } else {
            UNIX_EPOCH - Duration::from_secs(self.unix_secs.unsigned_abs())
                + Duration::from_nanos(u64::from(self.nanos))
        }
    }

    /// Go's zero `time.Time`, `0001-01-01T00:00:00Z`, which dockerd prints for "never".
    pub fn go_zero() -> Self {
        Timestamp::from_unix(GO_ZERO_UNIX, 0)
    }

    /// Whether this is Go's zero time ([`Timestamp::go_zero`]).
    pub fn is_go_zero(&self) -> bool {
        self.unix_secs == GO_ZERO_UNIX && self.nanos == 0
    }

    /// The civil date and time in this timestamp's own offset:
    /// `(year, month, day, hour, minute, second)`.
    pub fn civil(&self) -> (i64, u32, u32, u32, u32, u32) {
        let local = self.unix_secs + i64::from(self.offset_secs);
        let days = local.div_euclid(86_400);
        let secs = local.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        // `secs` is in 0..86_400, so these casts cannot truncate.
        let secs = secs as u32;
        (y, m, d, secs / 3600, secs / 60 % 60, secs % 60)
    }

    /// Formats like Go's `time.RFC3339Nano` ([`fmt::Display`] does the same).
    pub fn format_rfc3339_nano(&self) -> String {
        self.to_string()
    }

    /// Formats like Go's `time.RFC3339` (whole seconds, no fraction).
    pub fn format_rfc3339(&self) -> String {
        let mut s = String::new();
        self.write(&mut s, false);
        s
    }

    fn write(&self, out: &mut String, fraction: bool) {
        use fmt::Write as _;
        let (y, mo, d, h, mi, s) = self.civil();
        // Writing to a String cannot fail.
        let _ = write!(out, "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}");
        if fraction && self.nanos != 0 {
            let digits = format!("{:09}", self.nanos);
            let _ = write!(out, ".{}", digits.trim_end_matches('0'));
        }
        if self.offset_secs == 0 {
            out.push('Z');
        } else {
            let sign = if self.offset_secs < 0 { '-' } else { '+' };
            let abs = self.offset_secs.unsigned_abs();
            let _ = write!(out, "{sign}{:02}:{:02}", abs / 3600, abs / 60 % 60);
        }
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::with_capacity(35);
        self.write(&mut s, true);
        f.write_str(&s)
    }
}

impl PartialOrd for Timestamp {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// Ordered by instant; equal instants with different offsets are ordered by offset.
impl Ord for Timestamp {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.unix_secs, self.nanos, self.offset_secs).cmp(&(
            other.unix_secs,
            other.nanos,
            other.offset_secs,
        ))
    }
}

impl std::str::FromStr for Timestamp {
    type Err = ParseTimeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_rfc3339(s)
    }
}

/// Formats `t` in UTC like Go's `t.UTC().Format(time.RFC3339Nano)`, e.g.
/// `2026-11-30T02:18:02.010528136Z`.
pub fn format_rfc3339_nano(t: SystemTime) -> String {
    Timestamp::from_system_time(t).to_string()
}

/// Parses an RFC 3339 timestamp as Go's `time.Parse(time.RFC3339Nano, s)` accepts it:
/// `YYYY-MM-DDTHH:MM:SS`, an optional fraction of 1 to 9 digits, then `Z` or `±hh:mm`.
pub fn parse_rfc3339(s: &str) -> Result<Timestamp, ParseTimeError> {
    let err = |reason| ParseTimeError {
        input: s.to_owned(),
        reason,
    };
    let b = s.as_bytes();
    if b.len() < 20 {
        return Err(err("too short"));
    }
    let num = |range: std::ops::Range<usize>| -> Result<u32, ParseTimeError> {
        let part = &b[range];
        if part.iter().all(u8::is_ascii_digit) {
            Ok(part
                .iter()
                .fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0')))
        } else {
            Err(err("expected digits"))
        }
    };
    let year = num(0..4)?;
    if b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return Err(err("expected YYYY-MM-DDTHH:MM:SS"));
    }
    let (month, day) = (num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) {
        return Err(err("month out of range"));
    }
    if day < 1 || day > days_in_month(i64::from(year), month) {
        return Err(err("day out of range"));
    }
    if hour > 23 {
        return Err(err("hour out of range"));
    }
    if minute > 59 {
        return Err(err("minute out of range"));
    }
    if second > 59 {
        return Err(err("second out of range"));
    }
    let mut i = 19;
    let mut nanos = 0u32;
    if b[i] == b'.' || b[i] == b',' {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let digits = i - start;
        if digits == 0 {
            return Err(err("empty fraction of a second"));
        }
        if digits > 9 {
            return Err(err("fraction of a second longer than 9 digits"));
        }
        nanos = num(start..i)? * 10u32.pow(9 - digits as u32);
    }
    let offset_secs = match &b[i..] {
        b"Z" => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let digits = [*h1, *h2, *m1, *m2];
            if !digits.iter().all(u8::is_ascii_digit) {
                return Err(err("invalid UTC offset"));
            }
            let h = i32::from(h1 - b'0') * 10 + i32::from(h2 - b'0');
            let m = i32::from(m1 - b'0') * 10 + i32::from(m2 - b'0');
            if h > 23 || m > 59 {
                return Err(err("UTC offset out of range"));
            }
            let off = h * 3600 + m * 60;
            if *sign == b'-' { -off } else { off }
        }
        _ => return Err(err("expected Z or ±hh:mm after the time")),
    };
    let days = days_from_civil(i64::from(year), month, day);
    let local = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second);
    Ok(Timestamp {
        unix_secs: local - i64::from(offset_secs),
        nanos,
        offset_secs,
    })
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap(y) => 29,
        _ => 28,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian date of a day count since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    // d in 1..=31, m in 1..=12: the casts cannot truncate.
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_zero_is_year_one() {
        assert_eq!(GO_ZERO_UNIX, days_from_civil(1, 1, 1) * 86_400);
        assert_eq!(Timestamp::go_zero().to_string(), "0001-01-01T00:00:00Z");
        assert!(Timestamp::go_zero().is_go_zero());
    }

    #[test]
    fn round_trips_fixture_values() {
        for s in [
            "2026-11-30T02:18:02.010528136Z",
            "2026-11-30T02:17:59.543160661Z",
            "2026-11-30T02:16:58.98784626Z",
            "0001-01-01T00:00:00Z",
            "2000-02-29T23:59:59.1-07:30",
            "1969-12-31T23:59:59.999999999Z",
        ] {
            let t = parse_rfc3339(s).expect("parses");
            assert_eq!(t.to_string(), s);
        }
        assert!(
            parse_rfc3339("0001-01-01T00:00:00Z")
                .expect("ok")
                .is_go_zero()
        );
    }

    #[test]
    fn trims_fraction() {
        let t = Timestamp::from_unix(0, 500_000_000);
        assert_eq!(t.to_string(), "1970-01-01T00:00:00.5Z");
        assert_eq!(
            Timestamp::from_unix(0, 0).to_string(),
            "1970-01-01T00:00:00Z"
        );
    }

    #[test]
    fn offsets_and_system_time() {
        let t = parse_rfc3339("2026-11-30T04:18:00+02:00").expect("ok");
        assert_eq!(t.to_utc().to_string(), "2026-11-30T02:18:00Z");
        let st = t.to_system_time();
        assert_eq!(Timestamp::from_system_time(st), t.to_utc());
        let before = UNIX_EPOCH - Duration::new(1, 250_000_000);
        assert_eq!(
            Timestamp::from_system_time(before).to_string(),
            "1969-12-31T23:59:58.75Z"
        );
        assert_eq!(
            Timestamp::from_system_time(Timestamp::from_system_time(before).to_system_time()),
            Timestamp::from_system_time(before)
        );
    }

    #[test]
    fn rejects_bad_input() {
        for s in [
            "",
            "2026-11-30",
            "2026-11-30 02:18:02Z",
            "2026-13-30T02:18:02Z",
            "2026-02-29T02:18:02Z",
            "2026-11-30T24:00:00Z",
            "2026-11-30T02:18:02.Z",
            "2026-11-30T02:18:02.1234567890Z",
            "2026-11-30T02:18:02",
            "2026-11-30T02:18:02+0200",
            "2026-11-30T02:18:02z",
        ] {
            assert!(parse_rfc3339(s).is_err(), "{s}");
        }
    }

    #[test]
    fn civil_round_trip() {
        for days in -800_000..800_000i64 {
            if days % 997 != 0 {
                continue;
            }
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
