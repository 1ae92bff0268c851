//! Go's builtin template functions (`funcs.go`, Go 1.19): `and or not len index slice
//! print printf println eq ne lt le gt ge html js urlquery call`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, LazyLock};

use crate::fmt::{sprint, sprintf, sprintln};
use crate::value::{Data, Func, Kind, TypeRef, Value, compare_keys, types};

/// Go's `isTrue` of a value (invalid is false).
pub(crate) fn truth(v: &Value) -> bool {
    let v = v.indirect_interface();
    let (Some(t), Some(d)) = (v.ty(), v.data()) else {
        return false;
    };
    match d {
        Data::Bool(b) => *b,
        Data::Int(i) => *i != 0,
        Data::Uint(u) => *u != 0,
        Data::Float(f) => *f != 0.0,
        Data::Complex(re, im) => *re != 0.0 || *im != 0.0,
        Data::Str(s) => !s.is_empty(),
        Data::List(_) | Data::Map(_) => !v.is_empty(),
        Data::Struct(_) => true,
        Data::Ref(r) => r.is_some(),
        Data::Func(_) => t.kind() == Kind::Func,
    }
}

#[derive(PartialEq, Eq, Clone, Copy)]
enum BasicKind {
    Invalid,
    Bool,
    Complex,
    Int,
    Float,
    Str,
    Uint,
}

fn basic_kind(v: &Value) -> BasicKind {
    match v.kind() {
        Some(Kind::Bool) => BasicKind::Bool,
        Some(k) if k.is_int() => BasicKind::Int,
        Some(k) if k.is_uint() => BasicKind::Uint,
        Some(k) if k.is_float() => BasicKind::Float,
        Some(k) if k.is_complex() => BasicKind::Complex,
        Some(Kind::String) => BasicKind::Str,
        _ => BasicKind::Invalid,
    }
}

const ERR_BAD_COMPARISON_TYPE: &str = "invalid type for comparison";
const ERR_BAD_COMPARISON: &str = "incompatible types for comparison";
const ERR_NO_COMPARISON: &str = "missing argument for comparison";

fn comparable(t: &TypeRef) -> bool {
    match t.kind() {
        Kind::Slice | Kind::Map | Kind::Func => false,
        Kind::Struct => t.fields().iter().all(|f| comparable(&f.ty)),
        Kind::Array => t.elem().is_none_or(comparable),
        _ => true,
    }
}

/// Go's `==` on two values of comparable types.
fn deep_equal(a: &Value, b: &Value) -> bool {
    if let (Some(ta), Some(tb)) = (a.ty(), b.ty())
        && !ta.identical(tb)
    {
        return false;
    }
    match (a.data(), b.data()) {
        (None, None) => true,
        (Some(Data::Bool(x)), Some(Data::Bool(y))) => x == y,
        (Some(Data::Int(x)), Some(Data::Int(y))) => x == y,
        (Some(Data::Uint(x)), Some(Data::Uint(y))) => x == y,
        (Some(Data::Float(x)), Some(Data::Float(y))) => x == y,
        (Some(Data::Complex(a1, b1)), Some(Data::Complex(a2, b2))) => a1 == a2 && b1 == b2,
        (Some(Data::Str(x)), Some(Data::Str(y))) => x == y,
        (Some(Data::Struct(x)), Some(Data::Struct(y))) => {
            x.len() == y.len() && x.iter().zip(y.iter()).all(|(p, q)| deep_equal(p, q))
        }
        (Some(Data::List(Some(x))), Some(Data::List(Some(y)))) => {
            x.len() == y.len() && x.iter().zip(y.iter()).all(|(p, q)| deep_equal(p, q))
        }
        (Some(Data::Ref(x)), Some(Data::Ref(y))) => match (x, y) {
            (None, None) => true,
            (Some(p), Some(q)) => {
                if a.kind() == Some(Kind::Interface) {
                    deep_equal(p, q)
                } else {
                    Arc::ptr_eq(p, q)
                }
            }
            _ => false,
        },
        _ => false,
    }
}

fn eq(args: &[Value]) -> Result<Value, String> {
    let arg1 = args
        .first()
        .map(Value::indirect_interface)
        .unwrap_or_default();
    if args.len() < 2 {
        return Err(ERR_NO_COMPARISON.to_owned());
    }
    let k1 = basic_kind(&arg1);
    for arg in &args[1..] {
        let arg = arg.indirect_interface();
        let k2 = basic_kind(&arg);
        let truth = if k1 != k2 {
            match (k1, k2) {
                (BasicKind::Int, BasicKind::Uint) => {
                    let i = arg1.as_int().unwrap_or(0);
                    i >= 0 && i as u64 == arg.as_uint().unwrap_or(0)
                }
                (BasicKind::Uint, BasicKind::Int) => {
                    let i = arg.as_int().unwrap_or(0);
                    i >= 0 && arg1.as_uint().unwrap_or(0) == i as u64
                }
                _ => {
                    if arg1.is_valid() && arg.is_valid() {
                        return Err(ERR_BAD_COMPARISON.to_owned());
                    }
                    false
                }
            }
        } else {
            match k1 {
                BasicKind::Bool => arg1.as_bool() == arg.as_bool(),
                BasicKind::Float => arg1.as_float() == arg.as_float(),
                BasicKind::Int => arg1.as_int() == arg.as_int(),
                BasicKind::Str => arg1.as_str() == arg.as_str(),
                BasicKind::Uint => arg1.as_uint() == arg.as_uint(),
                BasicKind::Complex => deep_equal(
                    &arg1.convert(&types::complex128()),
                    &arg.convert(&types::complex128()),
                ),
                BasicKind::Invalid => {
                    let can_compare =
                        arg1.kind() == arg.kind() || !arg1.is_valid() || !arg.is_valid();
                    if !can_compare {
                        return Err(format!(
                            "non-comparable types {}: {}, {}: {}",
                            crate::fmt::sprintf("%s", std::slice::from_ref(&arg1)),
                            arg1.ty().map_or("<nil>", |t| t.name()),
                            arg.ty().map_or("<nil>", |t| t.name()),
                            crate::fmt::sprintf("%v", std::slice::from_ref(&arg)),
                        ));
                    }
                    let nil1 = arg1.is_nil();
                    let nil2 = arg.is_nil();
                    if nil1 || nil2 {
                        nil1 == nil2
                    } else {
                        let t = arg.ty().cloned().unwrap_or_else(types::any);
                        if !comparable(&t) {
                            return Err(format!(
                                "non-comparable type {}: {}",
                                crate::fmt::sprintf("%s", std::slice::from_ref(&arg)),
                                t.name()
                            ));
                        }
                        deep_equal(&arg1, &arg)
                    }
                }
            }
        };
        if truth {
            return Ok(Value::bool(true));
        }
    }
    Ok(Value::bool(false))
}

fn lt_raw(a: &Value, b: &Value) -> Result<bool, String> {
    let arg1 = a.indirect_interface();
    let k1 = basic_kind(&arg1);
    if k1 == BasicKind::Invalid {
        return Err(ERR_BAD_COMPARISON_TYPE.to_owned());
    }
    let arg2 = b.indirect_interface();
    let k2 = basic_kind(&arg2);
    if k2 == BasicKind::Invalid {
        return Err(ERR_BAD_COMPARISON_TYPE.to_owned());
    }
    if k1 != k2 {
        return match (k1, k2) {
            (BasicKind::Int, BasicKind::Uint) => {
                let i = arg1.as_int().unwrap_or(0);
                Ok(i < 0 || (i as u64) < arg2.as_uint().unwrap_or(0))
            }
            (BasicKind::Uint, BasicKind::Int) => {
                let i = arg2.as_int().unwrap_or(0);
                Ok(i >= 0 && arg1.as_uint().unwrap_or(0) < i as u64)
            }
            _ => Err(ERR_BAD_COMPARISON.to_owned()),
        };
    }
    match k1 {
        BasicKind::Bool | BasicKind::Complex => Err(ERR_BAD_COMPARISON_TYPE.to_owned()),
        BasicKind::Float => Ok(arg1.as_float() < arg2.as_float()),
        BasicKind::Int => Ok(arg1.as_int() < arg2.as_int()),
        BasicKind::Str => Ok(arg1.as_str() < arg2.as_str()),
        BasicKind::Uint => Ok(arg1.as_uint() < arg2.as_uint()),
        BasicKind::Invalid => Err(ERR_BAD_COMPARISON_TYPE.to_owned()),
    }
}

fn eq_raw(a: &Value, b: &Value) -> Result<bool, String> {
    eq(&[a.clone(), b.clone()]).map(|v| v.as_bool() == Some(true))
}

fn le_raw(a: &Value, b: &Value) -> Result<bool, String> {
    if lt_raw(a, b)? {
        return Ok(true);
    }
    eq_raw(a, b)
}

fn index_arg(index: &Value, cap: usize) -> Result<usize, String> {
    let x: i64 = match index.kind() {
        Some(k) if k.is_int() => index.as_int().unwrap_or(0),
        Some(k) if k.is_uint() => index.as_uint().unwrap_or(0) as i64,
        None => return Err("cannot index slice/array with nil".to_owned()),
        Some(_) => {
            return Err(format!(
                "cannot index slice/array with type {}",
                index.ty().map_or("", |t| t.name())
            ));
        }
    };
    if x < 0 || x as u64 > cap as u64 {
        return Err(format!("index out of range: {x}"));
    }
    Ok(usize::try_from(x).unwrap_or(usize::MAX))
}

fn int_like(k: Option<Kind>) -> bool {
    k.is_some_and(|k| k.is_int() || k.is_uint())
}

/// Go's `prepareArg`.
fn prepare_arg(value: &Value, arg_type: &TypeRef) -> Result<Value, String> {
    let Some(vt) = value.ty() else {
        if !arg_type.can_be_nil() {
            return Err(format!(
                "value is nil; should be of type {}",
                arg_type.name()
            ));
        }
        return Ok(Value::zero(arg_type));
    };
    if vt.assignable_to(arg_type) {
        return Ok(value.clone());
    }
    if int_like(Some(vt.kind())) && int_like(Some(arg_type.kind())) {
        let v = match (value.as_int(), value.as_uint(), arg_type.kind().is_int()) {
            (Some(i), _, true) => Value::int_of(arg_type, i),
            (Some(i), _, false) => Value::uint_of(arg_type, i as u64),
            (_, Some(u), true) => Value::int_of(arg_type, u as i64),
            (_, Some(u), false) => Value::uint_of(arg_type, u),
            _ => Value::zero(arg_type),
        };
        return Ok(v);
    }
    Err(format!(
        "value has type {}; should be {}",
        vt.name(),
        arg_type.name()
    ))
}

fn index(args: &[Value]) -> Result<Value, String> {
    let mut item = args
        .first()
        .map(Value::indirect_interface)
        .unwrap_or_default();
    if !item.is_valid() {
        return Err("index of untyped nil".to_owned());
    }
    for index in &args[1..] {
        let index = index.indirect_interface();
        let (it, is_nil) = item.indirect();
        if is_nil {
            return Err("index of nil pointer".to_owned());
        }
        item = it;
        let t = item.ty().cloned().unwrap_or_else(types::any);
        match t.kind() {
            Kind::Array | Kind::Slice | Kind::String => {
                let len = item.len().unwrap_or(0);
                let x = index_arg(&index, len)?;
                if x >= len {
                    let what = match t.kind() {
                        Kind::String => "string",
                        Kind::Array => "array",
                        _ => "slice",
                    };
                    return Err(format!("reflect: {what} index out of range"));
                }
                item = match item.as_str() {
                    Some(s) => Value::uint_of(&types::uint8(), u64::from(s.as_bytes()[x])),
                    None => item.elems()[x].clone(),
                };
            }
            Kind::Map => {
                let key_t = t.key().cloned().unwrap_or_else(types::any);
                let key = prepare_arg(&index, &key_t)?;
                let found = item
                    .entries()
                    .iter()
                    .find(|(k, _)| {
                        let (a, b) = (k.indirect_interface(), key.indirect_interface());
                        a.kind() == b.kind() && compare_keys(&a, &b).is_eq()
                    })
                    .map(|(_, v)| v.clone());
                item = match found {
                    Some(v) => v,
                    None => t.elem().map_or(Value::Invalid, Value::zero),
                };
            }
            _ => return Err(format!("can't index item of type {}", t.name())),
        }
    }
    Ok(item)
}

fn slice(args: &[Value]) -> Result<Value, String> {
    let item = args
        .first()
        .map(Value::indirect_interface)
        .unwrap_or_default();
    let Some(t) = item.ty().cloned() else {
        return Err("slice of untyped nil".to_owned());
    };
    let indexes = &args[1..];
    if indexes.len() > 3 {
        return Err(format!("too many slice indexes: {}", indexes.len()));
    }
    let cap = match t.kind() {
        Kind::String => {
            if indexes.len() == 3 {
                return Err("cannot 3-index slice a string".to_owned());
            }
            item.len().unwrap_or(0)
        }
        Kind::Array | Kind::Slice => item.len().unwrap_or(0),
        _ => return Err(format!("can't slice item of type {}", t.name())),
    };
    let mut idx = [0, item.len().unwrap_or(0), cap];
    for (i, index) in indexes.iter().enumerate() {
        idx[i] = index_arg(&index.indirect_interface(), cap)?;
    }
    if idx[0] > idx[1] {
        return Err(format!("invalid slice index: {} > {}", idx[0], idx[1]));
    }
    if indexes.len() == 3 && idx[1] > idx[2] {
        return Err(format!("invalid slice index: {} > {}", idx[1], idx[2]));
    }
    if let Some(s) = item.as_str() {
        let b = &s.as_bytes()[idx[0]..idx[1]];
        return Ok(Value::string_of(&t, &String::from_utf8_lossy(b)));
    }
    let elems = item.elems()[idx[0]..idx[1]].to_vec();
    let st = if t.kind() == Kind::Array {
        crate::value::Type::slice(t.elem().unwrap_or(&types::any()))
    } else {
        t
    };
    Ok(Value::slice(&st, Some(elems)))
}

fn length(args: &[Value]) -> Result<Value, String> {
    if !args.first().is_some_and(Value::is_valid) {
        // Go's `length` asks the zero reflect.Value for its type and panics.
        return Err("reflect: call of reflect.Value.Type on zero Value".to_owned());
    }
    let (item, is_nil) = args.first().cloned().unwrap_or_default().indirect();
    if is_nil {
        return Err("len of nil pointer".to_owned());
    }
    match item.kind() {
        Some(Kind::Array | Kind::Map | Kind::Slice | Kind::String) => {
            Ok(Value::int(item.len().unwrap_or(0) as i64))
        }
        _ => Err(format!(
            "len of type {}",
            item.ty().map_or("<nil>", |t| t.name())
        )),
    }
}

fn call(args: &[Value]) -> Result<Value, String> {
    let f = args
        .first()
        .map(Value::indirect_interface)
        .unwrap_or_default();
    let Some(t) = f.ty() else {
        return Err("call of nil".to_owned());
    };
    let Some(func) = f.func_ref() else {
        return Err(format!("non-function of type {}", t.name()));
    };
    let args = &args[1..];
    let num_in = func.params.len();
    if func.variadic {
        if args.len() < num_in - 1 {
            return Err(format!(
                "wrong number of args: got {} want at least {}",
                args.len(),
                num_in - 1
            ));
        }
    } else if args.len() != num_in {
        return Err(format!(
            "wrong number of args: got {} want {}",
            args.len(),
            num_in
        ));
    }
    let mut argv = Vec::with_capacity(args.len());
    for (i, a) in args.iter().enumerate() {
        let a = a.indirect_interface();
        let t = func.params[i.min(num_in.saturating_sub(1))].clone();
        argv.push(prepare_arg(&a, &t).map_err(|e| format!("arg {i}: {e}"))?);
    }
    (func.call)(&argv)
}

/// What `html`, `js` and `urlquery` print: a lone string as it is, else `fmt.Sprint`.
fn eval_args(args: &[Value]) -> String {
    let args: Vec<Value> = args.iter().map(Value::indirect_interface).collect();
    if args.len() == 1
        && let Some(t) = args[0].ty()
        && t.name() == "string"
    {
        return args[0].as_str().unwrap_or_default().to_owned();
    }
    sprint(&args)
}

fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\0' => out.push('\u{FFFD}'),
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

fn js_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' => out.push_str("\\u003C"),
            '>' => out.push_str("\\u003E"),
            '&' => out.push_str("\\u0026"),
            '=' => out.push_str("\\u003D"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c if !c.is_ascii() && !crate::strconv::is_print(c) => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b));
            }
            b' ' => out.push('+'),
            b => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

fn unwrap_all(args: &[Value]) -> Vec<Value> {
    args.iter().map(Value::indirect_interface).collect()
}

/// The builtin functions.
pub(crate) fn builtins() -> &'static BTreeMap<&'static str, Func> {
    static B: LazyLock<BTreeMap<&'static str, Func>> = LazyLock::new(|| {
        let rv = types::reflect_value;
        let unreachable = |_: &[Value]| Ok(Value::Invalid);
        let mut m = BTreeMap::new();
        m.insert(
            "and",
            Func::fallible(vec![rv(), rv()], rv(), unreachable).variadic(),
        );
        m.insert(
            "or",
            Func::fallible(vec![rv(), rv()], rv(), unreachable).variadic(),
        );
        m.insert(
            "not",
            Func::new(vec![rv()], types::bool(), |a| {
                Value::bool(!truth(a.first().unwrap_or(&Value::Invalid)))
            }),
        );
        m.insert("len", Func::fallible(vec![rv()], types::int(), length));
        m.insert(
            "index",
            Func::fallible(vec![rv(), rv()], rv(), index).variadic(),
        );
        m.insert(
            "slice",
            Func::fallible(vec![rv(), rv()], rv(), slice).variadic(),
        );
        m.insert(
            "call",
            Func::fallible(vec![rv(), rv()], rv(), call).variadic(),
        );
        m.insert(
            "print",
            Func::new(vec![types::any()], types::string(), |a| {
                Value::string(&sprint(&unwrap_all(a)))
            })
            .variadic(),
        );
        m.insert(
            "println",
            Func::new(vec![types::any()], types::string(), |a| {
                Value::string(&sprintln(&unwrap_all(a)))
            })
            .variadic(),
        );
        m.insert(
            "printf",
            Func::new(vec![types::string(), types::any()], types::string(), |a| {
                let format = a.first().and_then(Value::as_str).unwrap_or_default();
                Value::string(&sprintf(format, &unwrap_all(&a[1..])))
            })
            .variadic(),
        );
        m.insert(
            "html",
            Func::new(vec![types::any()], types::string(), |a| {
                Value::string(&html_escape(&eval_args(a)))
            })
            .variadic(),
        );
        m.insert(
            "js",
            Func::new(vec![types::any()], types::string(), |a| {
                Value::string(&js_escape(&eval_args(a)))
            })
            .variadic(),
        );
        m.insert(
            "urlquery",
            Func::new(vec![types::any()], types::string(), |a| {
                Value::string(&query_escape(&eval_args(a)))
            })
            .variadic(),
        );
        m.insert(
            "eq",
            Func::fallible(vec![rv(), rv()], types::bool(), eq).variadic(),
        );
        let cmp = |f: fn(&Value, &Value) -> Result<bool, String>| {
            Func::fallible(vec![rv(), rv()], types::bool(), move |a| {
                f(&a[0], &a[1]).map(Value::bool)
            })
        };
        m.insert("ne", cmp(|a, b| eq_raw(a, b).map(|e| !e)));
        m.insert("lt", cmp(lt_raw));
        m.insert("le", cmp(le_raw));
        m.insert("gt", cmp(|a, b| le_raw(a, b).map(|x| !x)));
        m.insert("ge", cmp(|a, b| lt_raw(a, b).map(|x| !x)));
        m
    });
    &B
}
