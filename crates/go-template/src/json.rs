//! Go's `encoding/json` for [`Value`]s: [`marshal`] (struct tags, `omitempty`, sorted map
//! keys, `null` for nil, `[]byte` as base64, custom `MarshalJSON`) and [`decode`] into
//! `interface {}` values as `json.Decoder` does (objects as `map[string]interface {}`,
//! arrays as `[]interface {}`, numbers as `float64` or, with `UseNumber`, `json.Number`).

use std::fmt::Write as _;

use crate::strconv::format_float;
use crate::value::{Data, Kind, Value, types};

/// Why a value cannot be encoded (Go's `json: unsupported value: NaN`, ...).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("json: {0}")]
pub struct JsonError(pub String);

/// Go's `json.Marshal` of `v` (with `escape_html`: as `Marshal` does; without: as an
/// `Encoder` after `SetEscapeHTML(false)`), without the `Encoder`'s trailing newline.
pub fn marshal(v: &Value, escape_html: bool) -> Result<String, JsonError> {
    let mut out = String::new();
    encode(&mut out, v, escape_html)?;
    Ok(out)
}

fn write_str(out: &mut String, s: &str, escape_html: bool) {
    let mut buf = Vec::with_capacity(s.len() + 2);
    go_json::write_string_with(&mut buf, s, escape_html);
    out.push_str(&String::from_utf8_lossy(&buf));
}

/// Go's float encoding: like `%g` shortest but in `f` form from 1e-6 up to 1e21.
fn float_json(f: f64, bits: u32) -> Result<String, JsonError> {
    if !f.is_finite() {
        return Err(JsonError(format!(
            "unsupported value: {}",
            format_float(f, 'g', -1, bits)
        )));
    }
    let abs = f.abs();
    let mut fmt = 'f';
    if abs != 0.0 {
        let (lo, hi) = if bits == 64 {
            (1e-6, 1e21)
        } else {
            (f64::from(1e-6f32), f64::from(1e21f32))
        };
        if abs < lo || abs >= hi {
            fmt = 'e';
        }
    }
    let mut s = format_float(f, fmt, -1, bits);
    if fmt == 'e' {
        // clean up e-09 to e-9
        let n = s.len();
        let b = s.as_bytes();
        if n >= 4 && b[n - 4] == b'e' && b[n - 3] == b'-' && b[n - 2] == b'0' {
            s.remove(n - 2);
        }
    }
    Ok(s)
}

fn is_empty_value(v: &Value) -> bool {
    match v.data() {
        None => true,
        Some(Data::Bool(b)) => !b,
        Some(Data::Int(i)) => *i == 0,
        Some(Data::Uint(u)) => *u == 0,
        Some(Data::Float(f)) => *f == 0.0,
        Some(Data::Complex(re, im)) => *re == 0.0 && *im == 0.0,
        Some(Data::Str(s)) => s.is_empty(),
        Some(Data::List(_) | Data::Map(_)) => v.is_empty(),
        Some(Data::Ref(r)) => r.is_none(),
        Some(Data::Struct(_) | Data::Func(_)) => false,
    }
}

/// The fields a struct encodes, in order, with Go's embedding rules (simplified: promoted
/// fields of untagged embedded structs come in their place; a name seen twice keeps the
/// shallower one).
fn struct_fields(v: &Value, out: &mut Vec<(String, Value, bool)>, depth: usize) {
    let Some(t) = v.ty() else { return };
    for (fd, fv) in t.fields().iter().zip(v.fields()) {
        if fd.json.skip {
            continue;
        }
        if fd.embedded && fd.json.name.is_none() {
            let inner = fv.indirect().0;
            if inner.kind() == Some(Kind::Struct) {
                if depth < 8 {
                    struct_fields(&inner, out, depth + 1);
                }
                continue;
            }
        }
        if !fd.is_exported() {
            continue;
        }
        let name = fd.json.name.clone().unwrap_or_else(|| fd.name.clone());
        if out.iter().any(|(n, _, _)| *n == name) {
            continue;
        }
        out.push((name, fv.clone(), fd.json.omit_empty));
    }
}

fn encode(out: &mut String, v: &Value, escape_html: bool) -> Result<(), JsonError> {
    let (Some(t), Some(data)) = (v.ty(), v.data()) else {
        out.push_str("null");
        return Ok(());
    };
    if let Some(m) = &t.marshal_json {
        if v.kind() == Some(Kind::Pointer) && v.is_nil() {
            out.push_str("null");
            return Ok(());
        }
        let text = m(v).map_err(|e| {
            JsonError(format!(
                "error calling MarshalJSON for type {}: {e}",
                t.name()
            ))
        })?;
        out.push_str(&text);
        return Ok(());
    }
    match data {
        Data::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Data::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Data::Uint(u) => {
            let _ = write!(out, "{u}");
        }
        Data::Float(f) => {
            let bits = if t.kind() == Kind::Float32 { 32 } else { 64 };
            out.push_str(&float_json(*f, bits)?);
        }
        Data::Complex(..) => {
            return Err(JsonError(format!("unsupported type: {}", t.name())));
        }
        Data::Str(s) => {
            if t.identical(&types::json_number()) {
                out.push_str(if s.is_empty() { "0" } else { s });
            } else {
                write_str(out, s, escape_html);
            }
        }
        Data::List(l) => {
            if t.kind() == Kind::Slice && l.is_none() {
                out.push_str("null");
                return Ok(());
            }
            if t.kind() == Kind::Slice && t.elem().is_some_and(|e| e.kind() == Kind::Uint8) {
                let bytes: Vec<u8> = v
                    .elems()
                    .iter()
                    .map(|e| e.as_uint().unwrap_or(0) as u8)
                    .collect();
                out.push('"');
                out.push_str(&base64(&bytes));
                out.push('"');
                return Ok(());
            }
            out.push('[');
            for (i, e) in v.elems().iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                encode(out, e, escape_html)?;
            }
            out.push(']');
        }
        Data::Map(m) => {
            if m.is_none() {
                out.push_str("null");
                return Ok(());
            }
            let mut entries: Vec<(String, &Value)> = Vec::new();
            for (k, val) in v.entries() {
                let key = match k.data() {
                    Some(Data::Str(s)) => s.to_string(),
                    Some(Data::Int(i)) => i.to_string(),
                    Some(Data::Uint(u)) => u.to_string(),
                    _ => {
                        return Err(JsonError(format!("unsupported type: {}", t.name())));
                    }
                };
                entries.push((key, val));
            }
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            out.push('{');
            for (i, (k, val)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_str(out, k, escape_html);
                out.push(':');
                encode(out, val, escape_html)?;
            }
            out.push('}');
        }
        Data::Struct(_) => {
            let mut fields = Vec::new();
            struct_fields(v, &mut fields, 0);
            out.push('{');
            let mut first = true;
            for (name, fv, omit) in fields {
                if omit && is_empty_value(&fv) {
                    continue;
                }
                if !first {
                    out.push(',');
                }
                first = false;
                write_str(out, &name, escape_html);
                out.push(':');
                encode(out, &fv, escape_html)?;
            }
            out.push('}');
        }
        Data::Ref(r) => match r {
            None => out.push_str("null"),
            Some(inner) => encode(out, inner, escape_html)?,
        },
        Data::Func(_) => {
            return Err(JsonError(format!("unsupported type: {}", t.name())));
        }
    }
    Ok(())
}

fn base64(b: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in b.chunks(3) {
        let n = chunk.len();
        let x = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= n {
                out.push(char::from(A[((x >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// How [`decode`] represents numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Numbers {
    /// `float64` (Go's default).
    Float64,
    /// `json.Number` (`Decoder.UseNumber`): the literal text.
    UseNumber,
}

/// Go's `json.Decoder.Decode` into an `interface {}`: the decoded value (objects become
/// `map[string]interface {}` with their elements in interfaces, arrays `[]interface {}`,
/// `null` a nil interface, i.e. [`Value::Invalid`] at the top).
pub fn decode(text: &str, numbers: Numbers) -> Result<Value, JsonError> {
    let mut p = Decoder {
        s: text.as_bytes(),
        i: 0,
        numbers,
    };
    p.ws();
    let v = p.value(0)?;
    Ok(v)
}

struct Decoder<'a> {
    s: &'a [u8],
    i: usize,
    numbers: Numbers,
}

impl Decoder<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn err<T>(&self, what: &str) -> Result<T, JsonError> {
        Err(JsonError(format!("{what} at offset {}", self.i)))
    }

    fn lit(&mut self, word: &[u8]) -> bool {
        if self.s[self.i..].starts_with(word) {
            self.i += word.len();
            true
        } else {
            false
        }
    }

    /// A value; elements inside containers are wrapped in `interface {}`.
    fn value(&mut self, depth: usize) -> Result<Value, JsonError> {
        if depth > 10_000 {
            return self.err("exceeded max depth");
        }
        self.ws();
        let Some(&c) = self.s.get(self.i) else {
            return self.err("unexpected end of JSON input");
        };
        match c {
            b'{' => {
                self.i += 1;
                let mut entries = Vec::new();
                self.ws();
                if self.s.get(self.i) == Some(&b'}') {
                    self.i += 1;
                } else {
                    loop {
                        self.ws();
                        if self.s.get(self.i) != Some(&b'"') {
                            return self.err("invalid character looking for object key");
                        }
                        let k = self.string()?;
                        self.ws();
                        if self.s.get(self.i) != Some(&b':') {
                            return self.err("invalid character after object key");
                        }
                        self.i += 1;
                        let v = self.value(depth + 1)?;
                        entries.push((Value::string(&k), Value::interface(&types::any(), Some(v))));
                        self.ws();
                        match self.s.get(self.i) {
                            Some(b',') => self.i += 1,
                            Some(b'}') => {
                                self.i += 1;
                                break;
                            }
                            _ => return self.err("invalid character after object value"),
                        }
                    }
                }
                Ok(Value::map(&types::any_map(), Some(entries)))
            }
            b'[' => {
                self.i += 1;
                let mut items = Vec::new();
                self.ws();
                if self.s.get(self.i) == Some(&b']') {
                    self.i += 1;
                } else {
                    loop {
                        let v = self.value(depth + 1)?;
                        items.push(Value::interface(&types::any(), Some(v)));
                        self.ws();
                        match self.s.get(self.i) {
                            Some(b',') => self.i += 1,
                            Some(b']') => {
                                self.i += 1;
                                break;
                            }
                            _ => return self.err("invalid character after array element"),
                        }
                    }
                }
                Ok(Value::slice(&types::any_slice(), Some(items)))
            }
            b'"' => Ok(Value::string(&self.string()?)),
            b't' if self.lit(b"true") => Ok(Value::bool(true)),
            b'f' if self.lit(b"false") => Ok(Value::bool(false)),
            b'n' if self.lit(b"null") => Ok(Value::Invalid),
            b'-' | b'0'..=b'9' => {
                let start = self.i;
                while self.i < self.s.len()
                    && matches!(
                        self.s[self.i],
                        b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9'
                    )
                {
                    self.i += 1;
                }
                let text = String::from_utf8_lossy(&self.s[start..self.i]).into_owned();
                match self.numbers {
                    Numbers::UseNumber => Ok(Value::string_of(&types::json_number(), &text)),
                    Numbers::Float64 => match text.parse::<f64>() {
                        Ok(f) => Ok(Value::float64(f)),
                        Err(_) => self.err("invalid number"),
                    },
                }
            }
            _ => self.err("invalid character looking for beginning of value"),
        }
    }

    fn hex4(&mut self) -> Result<u32, JsonError> {
        let Some(h) = self.s.get(self.i..self.i + 4) else {
            return self.err("invalid escape");
        };
        let h = std::str::from_utf8(h).unwrap_or("");
        let v = u32::from_str_radix(h, 16).or_else(|_| self.err("invalid escape"))?;
        self.i += 4;
        Ok(v)
    }

    fn string(&mut self) -> Result<String, JsonError> {
        self.i += 1;
        let mut out: Vec<u8> = Vec::new();
        loop {
            let Some(&c) = self.s.get(self.i) else {
                return self.err("unexpected end of string");
            };
            self.i += 1;
            match c {
                b'"' => break,
                b'\\' => {
                    let Some(&e) = self.s.get(self.i) else {
                        return self.err("unexpected end of string");
                    };
                    self.i += 1;
                    let ch = match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let mut u = self.hex4()?;
                            if (0xD800..0xDC00).contains(&u)
                                && self.s.get(self.i..self.i + 2) == Some(b"\\u")
                            {
                                let save = self.i;
                                self.i += 2;
                                let lo = self.hex4()?;
                                if (0xDC00..0xE000).contains(&lo) {
                                    u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
                                } else {
                                    self.i = save;
                                }
                            }
                            char::from_u32(u).unwrap_or('\u{FFFD}')
                        }
                        _ => return self.err("invalid escape"),
                    };
                    let mut b = [0u8; 4];
                    out.extend_from_slice(ch.encode_utf8(&mut b).as_bytes());
                }
                c => out.push(c),
            }
        }
        Ok(String::from_utf8_lossy(&out).into_owned())
    }
}
