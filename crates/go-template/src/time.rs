//! Go's `time.Time` (in UTC) and `time.Duration` as template values: `String`, `Format`
//! (Go's reference-time layouts), `Unix`, `UnixNano`, `IsZero`, `Year`, `YearDay`, `Day`,
//! `Hour`, `Minute`, `Second`, `Nanosecond`, `Month`, `Weekday`, `UTC`, and `MarshalJSON`
//! (RFC 3339 with nanoseconds), so `{{.Metadata.LastTagTime}}` and `{{json .Metadata}}`
//! print as they do in Go.

use std::fmt::Write as _;
use std::sync::{Arc, LazyLock};

use crate::value::{Field, Func, Method, Type, TypeRef, Value, types};

/// Seconds from 0001-01-01 to 1970-01-01.
const UNIX_TO_INTERNAL: i64 = 62_135_596_800;

/// Civil date and time of Unix seconds in UTC: (year, month, day, hour, minute, second,
/// day of the year (1-based), weekday (0 = Sunday)).
fn civil(secs: i64) -> (i64, u32, u32, u32, u32, u32, u32, u32) {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (h, mi, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let mut y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    if m <= 2 {
        y += 1;
    }
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let cum = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
    let mut yday = cum[(m - 1) as usize] + d;
    if leap && m > 2 {
        yday += 1;
    }
    let wd = (days + 4).rem_euclid(7);
    (
        y,
        m as u32,
        d as u32,
        h as u32,
        mi as u32,
        s as u32,
        yday as u32,
        wd as u32,
    )
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

/// Go's `Time.Format(layout)` for a UTC time.
pub fn format(secs: i64, nanos: u32, layout: &str) -> String {
    let (y, mo, d, h, mi, s, yday, wd) = civil(secs);
    let mut out = String::new();
    let mut rest = layout;
    while !rest.is_empty() {
        macro_rules! tok {
            ($t:expr, $body:expr) => {
                if let Some(r) = rest.strip_prefix($t) {
                    let f: &dyn Fn(&mut String) = &$body;
                    f(&mut out);
                    rest = r;
                    continue;
                }
            };
        }
        tok!("January", |o: &mut String| o
            .push_str(MONTHS[(mo - 1) as usize]));
        tok!("Jan", |o: &mut String| o
            .push_str(&MONTHS[(mo - 1) as usize][..3]));
        tok!("Monday", |o: &mut String| o.push_str(DAYS[wd as usize]));
        tok!("Mon", |o: &mut String| o.push_str(&DAYS[wd as usize][..3]));
        tok!("MST", |o: &mut String| o.push_str("UTC"));
        tok!("2006", |o: &mut String| {
            let _ = write!(o, "{y:04}");
        });
        tok!("-07:00:00", |o: &mut String| o.push_str("+00:00:00"));
        tok!("-0700", |o: &mut String| o.push_str("+0000"));
        tok!("-07:00", |o: &mut String| o.push_str("+00:00"));
        tok!("-07", |o: &mut String| o.push_str("+00"));
        tok!("Z07:00:00", |o: &mut String| o.push('Z'));
        tok!("Z0700", |o: &mut String| o.push('Z'));
        tok!("Z07:00", |o: &mut String| o.push('Z'));
        tok!("Z07", |o: &mut String| o.push('Z'));
        tok!("002", |o: &mut String| {
            let _ = write!(o, "{yday:03}");
        });
        tok!("__2", |o: &mut String| {
            let _ = write!(o, "{yday:>3}");
        });
        tok!("01", |o: &mut String| {
            let _ = write!(o, "{mo:02}");
        });
        tok!("02", |o: &mut String| {
            let _ = write!(o, "{d:02}");
        });
        tok!("03", |o: &mut String| {
            let hh = if h % 12 == 0 { 12 } else { h % 12 };
            let _ = write!(o, "{hh:02}");
        });
        tok!("04", |o: &mut String| {
            let _ = write!(o, "{mi:02}");
        });
        tok!("05", |o: &mut String| {
            let _ = write!(o, "{s:02}");
        });
        tok!("06", |o: &mut String| {
            let _ = write!(o, "{:02}", y.rem_euclid(100));
        });
        tok!("15", |o: &mut String| {
            let _ = write!(o, "{h:02}");
        });
        tok!("_2", |o: &mut String| {
            let _ = write!(o, "{d:>2}");
        });
        tok!("PM", |o: &mut String| o.push_str(if h >= 12 {
            "PM"
        } else {
            "AM"
        }));
        tok!("pm", |o: &mut String| o.push_str(if h >= 12 {
            "pm"
        } else {
            "am"
        }));
        // Fractional seconds: .000 (fixed) or .999 (trailing zeros dropped).
        if let Some(r) = rest.strip_prefix(['.', ','])
            && let Some(c) = r.chars().next()
            && (c == '0' || c == '9')
        {
            let n = r.chars().take_while(|&x| x == c).count();
            let after = &r[n..];
            if !after.starts_with(|x: char| x.is_ascii_digit()) {
                let sep = &rest[..1];
                let digits = format!("{nanos:09}");
                let mut frac = digits[..n.min(9)].to_owned();
                if c == '9' {
                    frac = frac.trim_end_matches('0').to_owned();
                    if !frac.is_empty() {
                        out.push_str(sep);
                        out.push_str(&frac);
                    }
                } else {
                    out.push_str(sep);
                    out.push_str(&frac);
                }
                rest = after;
                continue;
            }
        }
        tok!("1", |o: &mut String| {
            let _ = write!(o, "{mo}");
        });
        tok!("2", |o: &mut String| {
            let _ = write!(o, "{d}");
        });
        tok!("3", |o: &mut String| {
            let hh = if h % 12 == 0 { 12 } else { h % 12 };
            let _ = write!(o, "{hh}");
        });
        tok!("4", |o: &mut String| {
            let _ = write!(o, "{mi}");
        });
        tok!("5", |o: &mut String| {
            let _ = write!(o, "{s}");
        });
        let c = rest.chars().next().unwrap_or(' ');
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// (Unix seconds, nanoseconds) of a `time.Time` value, whose fields are Go's: `wall` (the
/// nanoseconds, without a monotonic reading), `ext` (seconds since year 1), `loc` (nil: UTC).
fn parts(v: &Value) -> (i64, u32) {
    let f = v.fields();
    let nanos = f.first().and_then(Value::as_uint).unwrap_or(0);
    let ext = f.get(1).and_then(Value::as_int).unwrap_or(0);
    (ext - UNIX_TO_INTERNAL, u32::try_from(nanos).unwrap_or(0))
}

fn m0(
    name: &str,
    result: TypeRef,
    f: impl Fn(i64, u32) -> Value + Send + Sync + 'static,
) -> Method {
    Method {
        name: name.to_owned(),
        func: Func::new(Vec::new(), result, move |a| {
            let (s, n) = parts(a.first().unwrap_or(&Value::Invalid));
            f(s, n)
        }),
    }
}

/// `time.Month` (an `int` with a `String` method).
pub fn month_type() -> TypeRef {
    static T: LazyLock<TypeRef> = LazyLock::new(|| {
        let string = Method {
            name: "String".to_owned(),
            func: Func::new(Vec::new(), types::string(), |a| {
                let m = a.first().and_then(Value::as_int).unwrap_or(0);
                Value::string(
                    usize::try_from(m - 1)
                        .ok()
                        .and_then(|i| MONTHS.get(i))
                        .copied()
                        .unwrap_or("%!Month"),
                )
            }),
        };
        Type::named("time.Month", &types::int(), vec![string])
    });
    T.clone()
}

/// `time.Weekday`.
pub fn weekday_type() -> TypeRef {
    static T: LazyLock<TypeRef> = LazyLock::new(|| {
        let string = Method {
            name: "String".to_owned(),
            func: Func::new(Vec::new(), types::string(), |a| {
                let d = a.first().and_then(Value::as_int).unwrap_or(0);
                Value::string(
                    usize::try_from(d)
                        .ok()
                        .and_then(|i| DAYS.get(i))
                        .copied()
                        .unwrap_or("%!Weekday"),
                )
            }),
        };
        Type::named("time.Weekday", &types::int(), vec![string])
    });
    T.clone()
}

/// `time.Time`.
pub fn time_type() -> TypeRef {
    static T: LazyLock<TypeRef> = LazyLock::new(|| {
        let fields = vec![
            Field::new("wall", types::uint64()),
            Field::new("ext", types::int64()),
            Field::new("loc", location_ptr()),
        ];
        let fmt_method = Method {
            name: "Format".to_owned(),
            func: Func::new(vec![types::string()], types::string(), |a| {
                let (s, n) = parts(a.first().unwrap_or(&Value::Invalid));
                let layout = a.get(1).and_then(Value::as_str).unwrap_or_default();
                Value::string(&format(s, n, layout))
            }),
        };
        let mut methods = vec![
            m0("String", types::string(), |s, n| {
                Value::string(&format(s, n, "2006-01-02 15:04:05.999999999 -0700 MST"))
            }),
            fmt_method,
            m0("Unix", types::int64(), |s, _| Value::int64(s)),
            m0("UnixNano", types::int64(), |s, n| {
                Value::int64(s.wrapping_mul(1_000_000_000).wrapping_add(i64::from(n)))
            }),
            m0("UnixMilli", types::int64(), |s, n| {
                Value::int64(s.wrapping_mul(1000).wrapping_add(i64::from(n / 1_000_000)))
            }),
            m0("IsZero", types::bool(), |s, n| {
                Value::bool(s == -UNIX_TO_INTERNAL && n == 0)
            }),
            m0("Year", types::int(), |s, _| Value::int(civil(s).0)),
            m0("Month", month_type(), |s, _| {
                Value::int_of(&month_type(), i64::from(civil(s).1))
            }),
            m0("Day", types::int(), |s, _| {
                Value::int(i64::from(civil(s).2))
            }),
            m0("Hour", types::int(), |s, _| {
                Value::int(i64::from(civil(s).3))
            }),
            m0("Minute", types::int(), |s, _| {
                Value::int(i64::from(civil(s).4))
            }),
            m0("Second", types::int(), |s, _| {
                Value::int(i64::from(civil(s).5))
            }),
            m0("Nanosecond", types::int(), |_, n| Value::int(i64::from(n))),
            m0("YearDay", types::int(), |s, _| {
                Value::int(i64::from(civil(s).6))
            }),
            m0("Weekday", weekday_type(), |s, _| {
                Value::int_of(&weekday_type(), i64::from(civil(s).7))
            }),
        ];
        methods.push(m0("UTC", types::any(), time));
        let t = Type::structure("time.Time", fields, methods);
        t.with_marshal_json(Arc::new(|v| {
            let (s, n) = parts(v);
            let text = format(s, n, "2006-01-02T15:04:05.999999999Z07:00");
            Ok(go_json::string(&text))
        }))
    });
    T.clone()
}

/// A `time.Time` in UTC: `secs` since the Unix epoch and `nanos`.
pub fn time(secs: i64, nanos: u32) -> Value {
    Value::structure(
        &time_type(),
        vec![
            Value::uint_of(&types::uint64(), u64::from(nanos)),
            Value::int64(secs.wrapping_add(UNIX_TO_INTERNAL)),
            Value::pointer(&location_ptr(), None),
        ],
    )
}

/// `*time.Location` (always nil here: UTC).
fn location_ptr() -> TypeRef {
    static T: LazyLock<TypeRef> =
        LazyLock::new(|| Type::pointer(&Type::structure("time.Location", Vec::new(), Vec::new())));
    T.clone()
}

/// The zero `time.Time` (`0001-01-01 00:00:00 +0000 UTC`).
pub fn zero_time() -> Value {
    time(-UNIX_TO_INTERNAL, 0)
}

/// Go's `Duration.String()`.
pub fn duration_string(d: i64) -> String {
    if d == 0 {
        return "0s".to_owned();
    }
    let neg = d < 0;
    let u = d.unsigned_abs();
    let mut out = String::new();
    if u < 1_000_000_000 {
        let (unit, div, prec) = if u < 1000 {
            ("ns", 1u64, 0)
        } else if u < 1_000_000 {
            ("µs", 1000, 3)
        } else {
            ("ms", 1_000_000, 6)
        };
        out.push_str(&frac(u, div, prec));
        out.push_str(unit);
    } else {
        let secs = u / 1_000_000_000;
        let ns = u % 1_000_000_000;
        let h = secs / 3600;
        let m = secs % 3600 / 60;
        let s = secs % 60;
        if h > 0 {
            let _ = write!(out, "{h}h");
        }
        if h > 0 || m > 0 {
            let _ = write!(out, "{m}m");
        }
        out.push_str(&frac(s * 1_000_000_000 + ns, 1_000_000_000, 9));
        out.push('s');
    }
    if neg {
        out.insert(0, '-');
    }
    out
}

fn frac(v: u64, div: u64, prec: usize) -> String {
    let whole = v / div;
    let f = v % div;
    if f == 0 || prec == 0 {
        return whole.to_string();
    }
    let digits = format!("{f:0prec$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// `time.Duration` (an `int64` of nanoseconds with a `String` method).
pub fn duration_type() -> TypeRef {
    static T: LazyLock<TypeRef> = LazyLock::new(|| {
        let string = Method {
            name: "String".to_owned(),
            func: Func::new(Vec::new(), types::string(), |a| {
                Value::string(&duration_string(
                    a.first().and_then(Value::as_int).unwrap_or(0),
                ))
            }),
        };
        Type::named("time.Duration", &types::int64(), vec![string])
    });
    T.clone()
}

/// A `time.Duration` of `nanos` nanoseconds.
pub fn duration(nanos: i64) -> Value {
    Value::int_of(&duration_type(), nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_format_like_go() {
        assert_eq!(
            format(
                1_796_005_080,
                977_599,
                "2006-01-02 15:04:05.999999999 -0700 MST"
            ),
            "2026-11-30 02:18:00.000977599 +0000 UTC"
        );
        assert_eq!(
            format(
                -UNIX_TO_INTERNAL,
                0,
                "2006-01-02 15:04:05.999999999 -0700 MST"
            ),
            "0001-01-01 00:00:00 +0000 UTC"
        );
        assert_eq!(
            format(0, 0, "Mon Jan _2 3:04PM 06"),
            "Thu Jan  1 12:00AM 70"
        );
        assert_eq!(duration_string(90 * 1_000_000_000), "1m30s");
        assert_eq!(duration_string(1500), "1.5µs");
        assert_eq!(duration_string(3_600_000_000_000), "1h0m0s");
    }
}
