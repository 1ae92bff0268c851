//! Go's `fmt` printing (`Sprint`, `Sprintf`, `Sprintln`) of [`Value`]s, verbs, flags, width,
//! precision, argument indexes and the `%!v(...)` error forms included.
//!
//! Not reproduced: pointer addresses (a non-nil pointer below the top level prints as the
//! fixed `0xc000010000`, Go prints a real address), `%b`/`%x` of floats, and Go's Unicode
//! tables for `%q` (printable runes are approximated).

use std::fmt::Write as _;

use crate::strconv::{self, format_float};
use crate::value::{Data, Kind, Value};

/// The address printed for non-nil pointers (Go prints the real one).
const FAKE_ADDRESS: u64 = 0xc000010000;

#[derive(Default, Clone, Copy)]
struct Flags {
    plus: bool,
    minus: bool,
    sharp: bool,
    space: bool,
    zero: bool,
    plus_v: bool,
    sharp_v: bool,
    wid: Option<usize>,
    prec: Option<usize>,
}

#[derive(Default)]
struct Printer {
    buf: String,
    f: Flags,
    erroring: bool,
}

const LDIGITS: &[u8; 17] = b"0123456789abcdefx";
const UDIGITS: &[u8; 17] = b"0123456789ABCDEFX";

/// Go's `fmt.Sprint`: operands printed with `%v`, a space between two operands when
/// neither is a string. [`Value::Invalid`] is a nil interface (`<nil>`).
pub fn sprint(args: &[Value]) -> String {
    let mut p = Printer::default();
    let mut prev_string = false;
    for (i, a) in args.iter().enumerate() {
        let is_string = a.kind() == Some(Kind::String);
        if i > 0 && !is_string && !prev_string {
            p.buf.push(' ');
        }
        p.print_arg(a, 'v');
        prev_string = is_string;
    }
    p.buf
}

/// Go's `fmt.Sprintln`: operands with spaces between them, and a newline.
pub fn sprintln(args: &[Value]) -> String {
    let mut p = Printer::default();
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            p.buf.push(' ');
        }
        p.print_arg(a, 'v');
    }
    p.buf.push('\n');
    p.buf
}

/// Go's `fmt.Sprintf`.
pub fn sprintf(format: &str, args: &[Value]) -> String {
    let mut p = Printer::default();
    p.do_printf(format, args);
    p.buf
}

/// Go's `%v` of one value (what a template action prints).
pub fn sprint_value(v: &Value) -> String {
    sprint(std::slice::from_ref(v))
}

fn parsenum(s: &[u8], mut start: usize, end: usize) -> (Option<usize>, usize) {
    if start >= end {
        return (None, start);
    }
    let mut num: usize = 0;
    let mut found = false;
    while start < end && s[start].is_ascii_digit() {
        if num > 1_000_000 {
            return (None, end);
        }
        num = num * 10 + usize::from(s[start] - b'0');
        found = true;
        start += 1;
    }
    (found.then_some(num), start)
}

impl Printer {
    fn write_padding(&mut self, n: usize) {
        let c = if self.f.zero { '0' } else { ' ' };
        self.buf.extend(std::iter::repeat_n(c, n));
    }

    fn pad(&mut self, s: &str) {
        let Some(wid) = self.f.wid.filter(|&w| w > 0) else {
            self.buf.push_str(s);
            return;
        };
        let width = wid.saturating_sub(s.chars().count());
        if self.f.minus {
            self.buf.push_str(s);
            self.write_padding(width);
        } else {
            self.write_padding(width);
            self.buf.push_str(s);
        }
    }

    fn bad_verb(&mut self, verb: char, arg: &Value) {
        self.erroring = true;
        self.buf.push_str("%!");
        self.buf.push(verb);
        self.buf.push('(');
        match arg.ty() {
            Some(t) => {
                self.buf.push_str(t.name());
                self.buf.push('=');
                self.print_arg(arg, 'v');
            }
            None => self.buf.push_str("<nil>"),
        }
        self.buf.push(')');
        self.erroring = false;
    }

    fn fmt_bool(&mut self, b: bool, verb: char, arg: &Value) {
        match verb {
            't' | 'v' => self.pad(if b { "true" } else { "false" }),
            _ => self.bad_verb(verb, arg),
        }
    }

    fn fmt_integer_base(&mut self, u: u64, base: u32, signed: bool, verb: char, digits: &[u8; 17]) {
        let negative = signed && (u as i64) < 0;
        let mut u = if negative {
            (u as i64).unsigned_abs()
        } else {
            u
        };
        let mut prec = 0usize;
        if let Some(p) = self.f.prec {
            prec = p;
            if p == 0 && u == 0 {
                let old = self.f.zero;
                self.f.zero = false;
                self.write_padding(self.f.wid.unwrap_or(0));
                self.f.zero = old;
                return;
            }
        } else if self.f.zero
            && let Some(w) = self.f.wid
        {
            prec = w;
            if negative || self.f.plus || self.f.space {
                prec = prec.saturating_sub(1);
            }
        }
        let mut buf: Vec<u8> = Vec::new();
        let b = u64::from(base);
        loop {
            buf.push(digits[(u % b) as usize]);
            u /= b;
            if u == 0 {
                break;
            }
        }
        while buf.len() < prec {
            buf.push(b'0');
        }
        if self.f.sharp {
            match base {
                2 => buf.extend_from_slice(b"b0"),
                8 if buf.last() != Some(&b'0') => buf.push(b'0'),
                16 => {
                    buf.push(digits[16]);
                    buf.push(b'0');
                }
                _ => {}
            }
        }
        if verb == 'O' {
            buf.extend_from_slice(b"o0");
        }
        if negative {
            buf.push(b'-');
        } else if self.f.plus {
            buf.push(b'+');
        } else if self.f.space {
            buf.push(b' ');
        }
        buf.reverse();
        let s = String::from_utf8(buf).unwrap_or_default();
        let old = self.f.zero;
        self.f.zero = false;
        self.pad(&s);
        self.f.zero = old;
    }

    fn fmt_unicode(&mut self, u: u64) {
        let mut prec = 4;
        if let Some(p) = self.f.prec
            && p > 4
        {
            prec = p;
        }
        let mut s = format!("U+{u:0prec$X}");
        if self.f.sharp
            && let Some(r) = u32::try_from(u).ok().and_then(char::from_u32)
            && strconv::is_print(r)
        {
            let _ = write!(s, " '{r}'");
        }
        let old = self.f.zero;
        self.f.zero = false;
        self.pad(&s);
        self.f.zero = old;
    }

    fn rune_of(u: u64) -> char {
        u32::try_from(u)
            .ok()
            .and_then(char::from_u32)
            .unwrap_or('\u{FFFD}')
    }

    fn fmt_integer(&mut self, u: u64, signed: bool, verb: char, arg: &Value) {
        match verb {
            'v' => {
                if self.f.sharp_v && !signed {
                    let sharp = self.f.sharp;
                    self.f.sharp = true;
                    self.fmt_integer_base(u, 16, false, 'v', LDIGITS);
                    self.f.sharp = sharp;
                } else {
                    self.fmt_integer_base(u, 10, signed, verb, LDIGITS);
                }
            }
            'd' => self.fmt_integer_base(u, 10, signed, verb, LDIGITS),
            'b' => self.fmt_integer_base(u, 2, signed, verb, LDIGITS),
            'o' | 'O' => self.fmt_integer_base(u, 8, signed, verb, LDIGITS),
            'x' => self.fmt_integer_base(u, 16, signed, verb, LDIGITS),
            'X' => self.fmt_integer_base(u, 16, signed, verb, UDIGITS),
            'c' => {
                let s = Self::rune_of(u).to_string();
                self.pad(&s);
            }
            'q' => {
                let s = strconv::quote_rune(Self::rune_of(u), self.f.plus);
                self.pad(&s);
            }
            'U' => self.fmt_unicode(u),
            _ => self.bad_verb(verb, arg),
        }
    }

    fn fmt_float_raw(&mut self, v: f64, size: u32, verb: char, prec: i32) {
        let prec = self
            .f
            .prec
            .map_or(prec, |p| i32::try_from(p).unwrap_or(i32::MAX));
        let conv = match verb {
            'F' => 'f',
            'v' => 'g',
            c => c,
        };
        let mut num = format_float(v, conv, prec, size);
        if !num.starts_with(['-', '+']) {
            num.insert(0, '+');
        }
        if self.f.space && num.starts_with('+') && !self.f.plus {
            num.replace_range(0..1, " ");
        }
        let second = num.as_bytes().get(1).copied();
        if second == Some(b'I') || second == Some(b'N') {
            let old = self.f.zero;
            self.f.zero = false;
            if second == Some(b'N') && !self.f.space && !self.f.plus {
                num.remove(0);
            }
            self.pad(&num);
            self.f.zero = old;
            return;
        }
        if self.f.sharp && verb != 'b' {
            let mut digits: i32 = 0;
            if matches!(verb, 'v' | 'g' | 'G' | 'x') {
                digits = if prec == -1 { 6 } else { prec };
            }
            let mut tail = String::new();
            let mut has_point = false;
            let mut saw_nonzero = false;
            let bytes: Vec<u8> = num.bytes().collect();
            let mut cut = bytes.len();
            for (i, &c) in bytes.iter().enumerate().skip(1) {
                match c {
                    b'.' => has_point = true,
                    b'p' | b'P' | b'e' | b'E'
                        if !(matches!(c, b'e' | b'E') && matches!(verb, 'x' | 'X')) =>
                    {
                        tail = num[i..].to_owned();
                        cut = i;
                        break;
                    }
                    _ => {
                        if c != b'0' {
                            saw_nonzero = true;
                        }
                        if saw_nonzero {
                            digits -= 1;
                        }
                    }
                }
            }
            num.truncate(cut);
            if !has_point {
                if num.len() == 2 && num.ends_with('0') {
                    digits -= 1;
                }
                num.push('.');
            }
            while digits > 0 {
                num.push('0');
                digits -= 1;
            }
            num.push_str(&tail);
        }
        if self.f.plus || !num.starts_with('+') {
            if self.f.zero
                && let Some(w) = self.f.wid
                && w > num.len()
            {
                let (sign, rest) = num.split_at(1);
                self.buf.push_str(sign);
                self.write_padding(w - num.len());
                self.buf.push_str(rest);
                return;
            }
            self.pad(&num);
            return;
        }
        let rest = num[1..].to_owned();
        self.pad(&rest);
    }

    fn fmt_float(&mut self, v: f64, size: u32, verb: char, arg: &Value) {
        match verb {
            'v' => self.fmt_float_raw(v, size, 'g', -1),
            'g' | 'G' => self.fmt_float_raw(v, size, verb, -1),
            'f' | 'e' | 'E' => self.fmt_float_raw(v, size, verb, 6),
            'F' => self.fmt_float_raw(v, size, 'f', 6),
            _ => self.bad_verb(verb, arg),
        }
    }

    fn fmt_complex(&mut self, re: f64, im: f64, size: u32, verb: char, arg: &Value) {
        match verb {
            'v' | 'g' | 'G' | 'f' | 'F' | 'e' | 'E' => {
                let old_plus = self.f.plus;
                self.buf.push('(');
                self.fmt_float(re, size / 2, verb, arg);
                self.f.plus = true;
                self.fmt_float(im, size / 2, verb, arg);
                self.buf.push_str("i)");
                self.f.plus = old_plus;
            }
            _ => self.bad_verb(verb, arg),
        }
    }

    fn truncate<'s>(&self, s: &'s str) -> &'s str {
        if let Some(p) = self.f.prec {
            match s.char_indices().nth(p) {
                Some((i, _)) => &s[..i],
                None => s,
            }
        } else {
            s
        }
    }

    fn fmt_s(&mut self, s: &str) {
        let s = self.truncate(s).to_owned();
        self.pad(&s);
    }

    fn fmt_sx(&mut self, b: &[u8], digits: &[u8; 17]) {
        let mut length = b.len();
        if let Some(p) = self.f.prec
            && p < length
        {
            length = p;
        }
        let mut width = 2 * length;
        if width > 0 {
            if self.f.space {
                if self.f.sharp {
                    width *= 2;
                }
                width += length - 1;
            } else if self.f.sharp {
                width += 2;
            }
        } else {
            if let Some(w) = self.f.wid {
                self.write_padding(w);
            }
            return;
        }
        if let Some(w) = self.f.wid
            && w > width
            && !self.f.minus
        {
            self.write_padding(w - width);
        }
        if self.f.sharp {
            self.buf.push('0');
            self.buf.push(char::from(digits[16]));
        }
        for (i, &c) in b.iter().take(length).enumerate() {
            if self.f.space && i > 0 {
                self.buf.push(' ');
                if self.f.sharp {
                    self.buf.push('0');
                    self.buf.push(char::from(digits[16]));
                }
            }
            self.buf.push(char::from(digits[usize::from(c >> 4)]));
            self.buf.push(char::from(digits[usize::from(c & 0xF)]));
        }
        if let Some(w) = self.f.wid
            && w > width
            && self.f.minus
        {
            self.write_padding(w - width);
        }
    }

    fn fmt_q(&mut self, s: &str) {
        let s = self.truncate(s).to_owned();
        if self.f.sharp && strconv::can_backquote(&s) {
            self.pad(&format!("`{s}`"));
            return;
        }
        let q = if self.f.plus {
            strconv::quote_to_ascii(&s)
        } else {
            strconv::quote(&s)
        };
        self.pad(&q);
    }

    fn fmt_string(&mut self, s: &str, verb: char, arg: &Value) {
        match verb {
            'v' => {
                if self.f.sharp_v {
                    self.fmt_q(s);
                } else {
                    self.fmt_s(s);
                }
            }
            's' => self.fmt_s(s),
            'x' => self.fmt_sx(s.as_bytes(), LDIGITS),
            'X' => self.fmt_sx(s.as_bytes(), UDIGITS),
            'q' => self.fmt_q(s),
            _ => self.bad_verb(verb, arg),
        }
    }

    fn fmt_bytes(&mut self, v: &[u8], nil: bool, verb: char, type_string: &str, arg: &Value) {
        match verb {
            'v' | 'd' => {
                if self.f.sharp_v {
                    self.buf.push_str(type_string);
                    if nil {
                        self.buf.push_str("(nil)");
                        return;
                    }
                    self.buf.push('{');
                    for (i, c) in v.iter().enumerate() {
                        if i > 0 {
                            self.buf.push_str(", ");
                        }
                        let _ = write!(self.buf, "0x{c:x}");
                    }
                    self.buf.push('}');
                } else {
                    self.buf.push('[');
                    for (i, &c) in v.iter().enumerate() {
                        if i > 0 {
                            self.buf.push(' ');
                        }
                        self.fmt_integer_base(u64::from(c), 10, false, verb, LDIGITS);
                    }
                    self.buf.push(']');
                }
            }
            's' => {
                let s = String::from_utf8_lossy(v).into_owned();
                self.fmt_s(&s);
            }
            'x' => self.fmt_sx(v, LDIGITS),
            'X' => self.fmt_sx(v, UDIGITS),
            'q' => {
                let s = String::from_utf8_lossy(v).into_owned();
                self.fmt_q(&s);
            }
            _ => self.print_value(arg, verb, 0, true),
        }
    }

    fn fmt_pointer(&mut self, v: &Value, verb: char) {
        let u = if v.is_nil() { 0 } else { FAKE_ADDRESS };
        match verb {
            'v' => {
                if self.f.sharp_v {
                    self.buf.push('(');
                    self.buf.push_str(v.ty().map_or("", |t| t.name()));
                    self.buf.push_str(")(");
                    if u == 0 {
                        self.buf.push_str("nil");
                    } else {
                        let _ = write!(self.buf, "0x{u:x}");
                    }
                    self.buf.push(')');
                } else if u == 0 {
                    self.pad("<nil>");
                } else {
                    let sharp = self.f.sharp;
                    self.f.sharp = !sharp;
                    self.fmt_integer_base(u, 16, false, 'v', LDIGITS);
                    self.f.sharp = sharp;
                }
            }
            'p' => {
                let sharp = self.f.sharp;
                self.f.sharp = !sharp;
                self.fmt_integer_base(u, 16, false, 'v', LDIGITS);
                self.f.sharp = sharp;
            }
            'b' | 'o' | 'd' | 'x' | 'X' => self.fmt_integer(u, false, verb, v),
            _ => self.bad_verb(verb, v),
        }
    }

    /// `handleMethods`: `error` and `Stringer` for `%v %s %x %X %q`.
    fn handle_methods(&mut self, arg: &Value, verb: char) -> bool {
        if self.erroring || self.f.sharp_v {
            return false;
        }
        if !matches!(verb, 'v' | 's' | 'x' | 'X' | 'q') {
            return false;
        }
        let Some(t) = arg.ty() else { return false };
        for name in ["Error", "String"] {
            if let Some(m) = t.method_by_name(name)
                && m.func.params.is_empty()
                && m.func.result.kind() == Kind::String
            {
                match (m.func.call)(std::slice::from_ref(arg)) {
                    Ok(v) => {
                        let s = v.as_str().unwrap_or_default().to_owned();
                        self.fmt_string(&s, verb, arg);
                    }
                    Err(e) => {
                        if arg.kind() == Some(Kind::Pointer) && arg.is_nil() {
                            self.buf.push_str("<nil>");
                        } else {
                            let _ = write!(self.buf, "%!{verb}(PANIC={name} method: {e})");
                        }
                    }
                }
                return true;
            }
        }
        false
    }

    fn print_arg(&mut self, arg: &Value, verb: char) {
        let Some(t) = arg.ty() else {
            match verb {
                'T' | 'v' => self.pad("<nil>"),
                _ => self.bad_verb(verb, arg),
            }
            return;
        };
        match verb {
            'T' => {
                let name = t.name().to_owned();
                self.fmt_s(&name);
                return;
            }
            'p' => {
                match t.kind() {
                    Kind::Pointer | Kind::Map | Kind::Slice | Kind::Func => {
                        self.fmt_pointer(arg, 'p');
                    }
                    _ => self.bad_verb(verb, arg),
                }
                return;
            }
            _ => {}
        }
        // The predeclared types are printed directly (Go's type switch); others may have
        // methods.
        let predeclared = t.name() == t.kind().name();
        if predeclared || (t.kind() == Kind::Slice && t.name() == "[]uint8") {
            self.print_value(arg, verb, 0, true);
            return;
        }
        if !self.handle_methods(arg, verb) {
            self.print_value(arg, verb, 0, true);
        }
    }

    fn print_value(&mut self, value: &Value, verb: char, depth: usize, can_iface: bool) {
        if depth > 0 && value.is_valid() && can_iface && self.handle_methods(value, verb) {
            return;
        }
        let (Some(t), Some(data)) = (value.ty(), value.data()) else {
            if depth == 0 {
                self.buf.push_str("<invalid reflect.Value>");
            } else if verb == 'v' {
                self.buf.push_str("<nil>");
            } else {
                self.bad_verb(verb, value);
            }
            return;
        };
        let kind = t.kind();
        match data {
            Data::Bool(b) => self.fmt_bool(*b, verb, value),
            Data::Int(i) => self.fmt_integer(*i as u64, true, verb, value),
            Data::Uint(u) => self.fmt_integer(*u, false, verb, value),
            Data::Float(f) => {
                let size = if kind == Kind::Float32 { 32 } else { 64 };
                self.fmt_float(*f, size, verb, value);
            }
            Data::Complex(re, im) => {
                let size = if kind == Kind::Complex64 { 64 } else { 128 };
                self.fmt_complex(*re, *im, size, verb, value);
            }
            Data::Str(s) => self.fmt_string(s, verb, value),
            Data::Map(m) => {
                if self.f.sharp_v {
                    self.buf.push_str(t.name());
                    if m.is_none() {
                        self.buf.push_str("(nil)");
                        return;
                    }
                    self.buf.push('{');
                } else {
                    self.buf.push_str("map[");
                }
                for (i, (k, v)) in value.entries().iter().enumerate() {
                    if i > 0 {
                        if self.f.sharp_v {
                            self.buf.push_str(", ");
                        } else {
                            self.buf.push(' ');
                        }
                    }
                    self.print_value(k, verb, depth + 1, can_iface);
                    self.buf.push(':');
                    self.print_value(v, verb, depth + 1, can_iface);
                }
                self.buf.push(if self.f.sharp_v { '}' } else { ']' });
            }
            Data::Struct(fields) => {
                if self.f.sharp_v {
                    self.buf.push_str(t.name());
                }
                self.buf.push('{');
                for (i, (fv, fd)) in fields.iter().zip(t.fields()).enumerate() {
                    if i > 0 {
                        if self.f.sharp_v {
                            self.buf.push_str(", ");
                        } else {
                            self.buf.push(' ');
                        }
                    }
                    if self.f.plus_v || self.f.sharp_v {
                        self.buf.push_str(&fd.name);
                        self.buf.push(':');
                    }
                    // getField: an interface field prints its dynamic value.
                    let shown = if fv.kind() == Some(Kind::Interface) && !fv.is_nil() {
                        fv.indirect_interface()
                    } else {
                        fv.clone()
                    };
                    self.print_value(&shown, verb, depth + 1, can_iface && fd.is_exported());
                }
                self.buf.push('}');
            }
            Data::Ref(r) if kind == Kind::Interface => match r {
                None => {
                    if self.f.sharp_v {
                        self.buf.push_str(t.name());
                        self.buf.push_str("(nil)");
                    } else {
                        self.buf.push_str("<nil>");
                    }
                }
                Some(inner) => self.print_value(inner, verb, depth + 1, can_iface),
            },
            Data::List(l) => {
                let elem_kind = t.elem().map(|e| e.kind());
                if matches!(verb, 's' | 'q' | 'x' | 'X') && elem_kind == Some(Kind::Uint8) {
                    let bytes: Vec<u8> = value
                        .elems()
                        .iter()
                        .map(|e| e.as_uint().unwrap_or(0) as u8)
                        .collect();
                    let name = t.name().to_owned();
                    self.fmt_bytes(&bytes, l.is_none(), verb, &name, value);
                    return;
                }
                if self.f.sharp_v {
                    self.buf.push_str(t.name());
                    if kind == Kind::Slice && l.is_none() {
                        self.buf.push_str("(nil)");
                        return;
                    }
                    self.buf.push('{');
                    for (i, e) in value.elems().iter().enumerate() {
                        if i > 0 {
                            self.buf.push_str(", ");
                        }
                        self.print_value(e, verb, depth + 1, can_iface);
                    }
                    self.buf.push('}');
                } else {
                    self.buf.push('[');
                    for (i, e) in value.elems().iter().enumerate() {
                        if i > 0 {
                            self.buf.push(' ');
                        }
                        self.print_value(e, verb, depth + 1, can_iface);
                    }
                    self.buf.push(']');
                }
            }
            Data::Ref(r) => {
                if depth == 0
                    && let Some(inner) = r
                    && matches!(
                        inner.kind(),
                        Some(Kind::Array | Kind::Slice | Kind::Struct | Kind::Map)
                    )
                {
                    self.buf.push('&');
                    self.print_value(inner, verb, depth + 1, can_iface);
                    return;
                }
                self.fmt_pointer(value, verb);
            }
            Data::Func(_) => self.fmt_pointer(value, verb),
        }
    }

    fn int_from_arg(args: &[Value], arg_num: usize) -> (Option<i64>, usize) {
        let Some(a) = args.get(arg_num) else {
            return (None, arg_num);
        };
        let n = match (a.as_int(), a.as_uint()) {
            (Some(i), _) => Some(i),
            (None, Some(u)) => i64::try_from(u).ok(),
            _ => None,
        };
        let n = n.filter(|n| n.unsigned_abs() <= 1_000_000);
        (n, arg_num + 1)
    }

    fn arg_number(
        &mut self,
        arg_num: usize,
        format: &[u8],
        i: usize,
        num_args: usize,
        reordered: &mut bool,
        good: &mut bool,
    ) -> (usize, usize, bool) {
        if format.len() <= i || format[i] != b'[' {
            return (arg_num, i, false);
        }
        *reordered = true;
        // parseArgNumber
        let f = &format[i..];
        let (index, wid, ok) = {
            if f.len() < 3 {
                (0usize, 1usize, false)
            } else {
                let mut res = (0, 1, false);
                for j in 1..f.len() {
                    if f[j] == b']' {
                        let (w, newi) = parsenum(f, 1, j);
                        res = match w {
                            Some(w) if newi == j && w >= 1 => (w - 1, j + 1, true),
                            Some(0) if newi == j => (usize::MAX, j + 1, true),
                            _ => (0, j + 1, false),
                        };
                        break;
                    }
                }
                res
            }
        };
        if ok && index < num_args {
            return (index, i + wid, true);
        }
        *good = false;
        (arg_num, i + wid, ok)
    }

    fn do_printf(&mut self, format: &str, args: &[Value]) {
        let fb = format.as_bytes();
        let end = fb.len();
        let mut arg_num = 0usize;
        let mut after_index;
        let mut reordered = false;
        let mut i = 0;
        'format: while i < end {
            let mut good = true;
            let lasti = i;
            while i < end && fb[i] != b'%' {
                i += 1;
            }
            if i > lasti {
                self.buf.push_str(&format[lasti..i]);
            }
            if i >= end {
                break;
            }
            i += 1;
            self.f = Flags::default();
            while i < end {
                let c = fb[i];
                match c {
                    b'#' => self.f.sharp = true,
                    b'0' => self.f.zero = !self.f.minus,
                    b'+' => self.f.plus = true,
                    b'-' => {
                        self.f.minus = true;
                        self.f.zero = false;
                    }
                    b' ' => self.f.space = true,
                    _ => {
                        if c.is_ascii_lowercase() && arg_num < args.len() {
                            if c == b'v' {
                                self.f.sharp_v = self.f.sharp;
                                self.f.sharp = false;
                                self.f.plus_v = self.f.plus;
                                self.f.plus = false;
                            }
                            self.print_arg(&args[arg_num], char::from(c));
                            arg_num += 1;
                            i += 1;
                            continue 'format;
                        }
                        break;
                    }
                }
                i += 1;
            }
            (arg_num, i, after_index) =
                self.arg_number(arg_num, fb, i, args.len(), &mut reordered, &mut good);
            if i < end && fb[i] == b'*' {
                i += 1;
                let (n, an) = Self::int_from_arg(args, arg_num);
                arg_num = an;
                match n {
                    Some(n) => {
                        if n < 0 {
                            self.f.minus = true;
                            self.f.zero = false;
                        }
                        self.f.wid = Some(usize::try_from(n.unsigned_abs()).unwrap_or(0));
                    }
                    None => {
                        self.f.wid = None;
                        self.buf.push_str("%!(BADWIDTH)");
                    }
                }
                after_index = false;
            } else {
                let (w, ni) = parsenum(fb, i, end);
                self.f.wid = w;
                i = ni;
                if after_index && w.is_some() {
                    good = false;
                }
            }
            if i + 1 < end && fb[i] == b'.' {
                i += 1;
                if after_index {
                    good = false;
                }
                (arg_num, i, after_index) =
                    self.arg_number(arg_num, fb, i, args.len(), &mut reordered, &mut good);
                if i < end && fb[i] == b'*' {
                    i += 1;
                    let (n, an) = Self::int_from_arg(args, arg_num);
                    arg_num = an;
                    match n {
                        Some(n) if n >= 0 => self.f.prec = Some(usize::try_from(n).unwrap_or(0)),
                        Some(_) => self.f.prec = None,
                        None => {
                            self.f.prec = None;
                            self.buf.push_str("%!(BADPREC)");
                        }
                    }
                    after_index = false;
                } else {
                    let (p, ni) = parsenum(fb, i, end);
                    i = ni;
                    self.f.prec = Some(p.unwrap_or(0));
                }
            }
            if !after_index {
                (arg_num, i, after_index) =
                    self.arg_number(arg_num, fb, i, args.len(), &mut reordered, &mut good);
            }
            let _ = after_index;
            if i >= end {
                self.buf.push_str("%!(NOVERB)");
                break;
            }
            let verb = format[i..].chars().next().unwrap_or('?');
            i += verb.len_utf8();
            if verb == '%' {
                self.buf.push('%');
            } else if !good {
                let _ = write!(self.buf, "%!{verb}(BADINDEX)");
            } else if arg_num >= args.len() {
                let _ = write!(self.buf, "%!{verb}(MISSING)");
            } else {
                if verb == 'v' {
                    self.f.sharp_v = self.f.sharp;
                    self.f.sharp = false;
                    self.f.plus_v = self.f.plus;
                    self.f.plus = false;
                }
                self.print_arg(&args[arg_num], verb);
                arg_num += 1;
            }
        }
        if !reordered && arg_num < args.len() {
            self.f = Flags::default();
            self.buf.push_str("%!(EXTRA ");
            for (k, a) in args[arg_num..].iter().enumerate() {
                if k > 0 {
                    self.buf.push_str(", ");
                }
                match a.ty() {
                    None => self.buf.push_str("<nil>"),
                    Some(t) => {
                        self.buf.push_str(t.name());
                        self.buf.push('=');
                        self.print_arg(a, 'v');
                    }
                }
            }
            self.buf.push(')');
        }
    }
}
