//! Templates run through Go 1.19's `text/template` (`oracle/main.go` over
//! `fixtures/cases.jsonl`, recorded in `fixtures/go1.19-exec.jsonl`) and through this crate,
//! on the same data: the same output and the same error.

use go_template::{
    Field, Func, FuncMap, Method, Template, Type, TypeRef, Value, json, time, types,
};

fn u_type() -> TypeRef {
    Type::structure("main.U", vec![Field::new("V", types::string())], Vec::new())
}

fn method(name: &str, f: Func) -> Method {
    Method {
        name: name.to_owned(),
        func: f,
    }
}

fn int_slice(v: &[i64]) -> Value {
    Value::slice(
        &Type::slice(&types::int()),
        Some(v.iter().map(|&i| Value::int(i)).collect()),
    )
}

fn string_int_map(entries: &[(&str, i64)]) -> Value {
    Value::map(
        &Type::map(&types::string(), &types::int()),
        Some(
            entries
                .iter()
                .map(|(k, v)| (Value::string(k), Value::int(*v)))
                .collect(),
        ),
    )
}

/// The oracle's `*T`.
pub fn data() -> Value {
    let u = u_type();
    let pu = Type::pointer(&u);
    let si = Type::slice(&types::int());
    let msi = Type::map(&types::string(), &types::int());
    let methods = vec![
        method(
            "Method0",
            Func::new(Vec::new(), types::string(), |_| Value::string("M0")),
        ),
        method(
            "Method1",
            Func::new(vec![types::int()], types::int(), |a| a[1].clone()),
        ),
        method(
            "Method2",
            Func::new(
                vec![types::uint16(), types::string()],
                types::string(),
                |a| {
                    Value::string(&format!(
                        "Method2: {} {}",
                        a[1].as_uint().unwrap_or(0),
                        a[2].as_str().unwrap_or("")
                    ))
                },
            ),
        ),
        method("MAdd", {
            let si = si.clone();
            Func::new(vec![types::int(), si.clone()], si.clone(), move |a| {
                let add = a[1].as_int().unwrap_or(0);
                Value::slice(
                    &si,
                    Some(
                        a[2].elems()
                            .iter()
                            .map(|x| Value::int(x.as_int().unwrap_or(0) + add))
                            .collect(),
                    ),
                )
            })
        }),
        method(
            "MyError",
            Func::fallible(vec![types::bool()], types::bool(), |a| {
                if a[1].as_bool() == Some(true) {
                    Err("my error".to_owned())
                } else {
                    Ok(Value::bool(false))
                }
            }),
        ),
        method("GetU", {
            Func::new(Vec::new(), pu.clone(), |a| a[0].fields()[7].clone())
        }),
    ];
    let fields = vec![
        Field::new("True", types::bool()),
        Field::new("I", types::int()),
        Field::new("U16", types::uint16()),
        Field::new("X", types::string()),
        Field::new("S", types::string()),
        Field::new("FloatZero", types::float64()),
        Field::new("F", types::float64()),
        Field::new("U", pu.clone()),
        Field::new("SI", si.clone()),
        Field::new("SIEmpty", si.clone()),
        Field::new("SB", Type::slice(&types::bool())),
        Field::new("AI", Type::array(&types::int(), 3)),
        Field::new("MSI", msi.clone()),
        Field::new("MSIone", msi.clone()),
        Field::new("MSIEmpty", msi.clone()),
        Field::new("MXI", Type::map(&types::any(), &types::int())),
        Field::new("MII", Type::map(&types::int(), &types::int())),
        Field::new("SMSI", Type::slice(&msi)),
        Field::new("Empty0", types::any()),
        Field::new("Empty1", types::any()),
        Field::new("Empty2", types::any()),
        Field::new("Empty3", types::any()),
        Field::new("Empty4", types::any()),
        Field::new("PI", Type::pointer(&types::int())),
        Field::new("PS", Type::pointer(&types::string())),
        Field::new("PSI", Type::pointer(&si)),
        Field::new("NIL", Type::pointer(&types::int())),
        Field::new("Tm", time::time_type()),
        Field::new("Dur", time::duration_type()),
        Field::new("Labels", types::string_map()),
        Field::new("Tags", types::string_slice()),
        Field::new("Num", types::json_number()),
        Field::new("Raw", types::any()),
        Field::new("unexported", types::int()),
    ];
    let t = Type::structure("main.T", fields, methods);
    let raw = json::decode(
        r#"{"a":1,"b":[1,"x",null,true],"c":{"z":1.5,"y":null},"big":1982256,"s":"<&>"}"#,
        json::Numbers::UseNumber,
    )
    .expect("decodes");
    let any = |v: Value| Value::interface(&types::any(), Some(v));
    let u_val = |s: &str| Value::pointer(&pu, Some(Value::structure(&u, vec![Value::string(s)])));
    let fields = vec![
        Value::bool(true),
        Value::int(17),
        Value::uint_of(&types::uint16(), 16),
        Value::string("x"),
        Value::string("xyz"),
        Value::float64(0.0),
        Value::float64(1_982_256.5),
        u_val("v"),
        int_slice(&[3, 4, 5]),
        Value::slice(&si, None),
        Value::slice(
            &Type::slice(&types::bool()),
            Some(vec![Value::bool(true), Value::bool(false)]),
        ),
        Value::array(
            &Type::array(&types::int(), 3),
            vec![Value::int(3), Value::int(4), Value::int(5)],
        ),
        string_int_map(&[("one", 1), ("two", 2), ("three", 3)]),
        string_int_map(&[("one", 1)]),
        Value::map(&msi, None),
        Value::map(
            &Type::map(&types::any(), &types::int()),
            Some(vec![(any(Value::string("one")), Value::int(1))]),
        ),
        Value::map(
            &Type::map(&types::int(), &types::int()),
            Some(vec![(Value::int(1), Value::int(1))]),
        ),
        Value::slice(
            &Type::slice(&msi),
            Some(vec![
                string_int_map(&[("one", 1), ("two", 2)]),
                string_int_map(&[("eleven", 11), ("twelve", 12)]),
            ]),
        ),
        Value::interface(&types::any(), None),
        any(Value::int(3)),
        any(Value::string("empty2")),
        any(int_slice(&[7, 8])),
        any(u_val("UinEmpty")),
        Value::pointer(&Type::pointer(&types::int()), Some(Value::int(23))),
        Value::pointer(
            &Type::pointer(&types::string()),
            Some(Value::string("a string")),
        ),
        Value::pointer(&Type::pointer(&si), Some(int_slice(&[21, 22, 23]))),
        Value::pointer(&Type::pointer(&types::int()), None),
        time::time(1_796_005_080, 977_599),
        time::duration(90_000_000_000),
        Value::map(
            &types::string_map(),
            Some(vec![
                (Value::string("org.example"), Value::string("peer")),
                (Value::string("stage"), Value::string("child")),
                (Value::string("a b"), Value::string("c")),
            ]),
        ),
        Value::strings(&["base:latest", "peer/base:v1"]),
        Value::string_of(&types::json_number(), "97"),
        any(raw),
        Value::int(0),
    ];
    Value::pointer(&Type::pointer(&t), Some(Value::structure(&t, fields)))
}

/// The oracle's functions.
pub fn funcs() -> FuncMap {
    let mut m = FuncMap::new();
    m.insert(
        "typeOf".to_owned(),
        Func::new(vec![types::any()], types::string(), |a| {
            Value::string(&go_template::fmt::sprintf(
                "%T",
                &[a[0].indirect_interface()],
            ))
        }),
    );
    m.insert(
        "zeroArgs".to_owned(),
        Func::new(Vec::new(), types::string(), |_| Value::string("zeroArgs")),
    );
    m.insert(
        "oneArg".to_owned(),
        Func::new(vec![types::string()], types::string(), |a| {
            Value::string(&format!("oneArg={}", a[0].as_str().unwrap_or("")))
        }),
    );
    m.insert(
        "dddArg".to_owned(),
        Func::new(vec![types::int(), types::string()], types::string(), |a| {
            let rest: Vec<&str> = a[1..].iter().filter_map(Value::as_str).collect();
            Value::string(&format!(
                "{}=<{}>",
                a[0].as_int().unwrap_or(0),
                rest.join("+")
            ))
        })
        .variadic(),
    );
    m.insert(
        "echo".to_owned(),
        Func::new(vec![types::any()], types::any(), |a| {
            Value::interface(&types::any(), Some(a[0].indirect_interface()))
        }),
    );
    m.insert(
        "upper".to_owned(),
        Func::new(vec![types::string()], types::string(), |a| {
            Value::string(&a[0].as_str().unwrap_or("").to_uppercase())
        }),
    );
    m.insert(
        "join".to_owned(),
        Func::new(
            vec![types::string_slice(), types::string()],
            types::string(),
            |a| {
                let parts: Vec<&str> = a[0].elems().iter().filter_map(Value::as_str).collect();
                Value::string(&parts.join(a[1].as_str().unwrap_or("")))
            },
        ),
    );
    m.insert(
        "fail".to_owned(),
        Func::fallible(Vec::new(), types::string(), |_| Err("it failed".to_owned())),
    );
    m
}

/// Cases where Go prints a pointer's address, which no other program can reproduce.
fn prints_an_address(template: &str, out: &str) -> bool {
    out.contains("0xc0") || template == "{{printf \"%d\" .PI}}"
}

#[test]
fn same_output_and_errors_as_go_1_19() {
    let text = include_str!("fixtures/go1.19-exec.jsonl");
    let data = data();
    let funcs = funcs();
    let mut failures = Vec::new();
    let mut checked = 0;
    for line in text.lines() {
        let case = json::decode(line, json::Numbers::UseNumber).expect("fixture line");
        let get = |k: &str| {
            case.entries()
                .iter()
                .find(|(key, _)| key.as_str() == Some(k))
                .map(|(_, v)| v.indirect_interface())
                .unwrap_or_default()
        };
        let t = get("t").as_str().unwrap_or_default().to_owned();
        let want_out = get("out").as_str().unwrap_or_default().to_owned();
        let want_err = get("err").as_str().unwrap_or_default().to_owned();
        if prints_an_address(&t, &want_out) {
            continue;
        }
        checked += 1;
        let (out, err) = match Template::parse("", &t, &funcs) {
            Err(e) => (String::new(), e.message),
            Ok(tmpl) => match tmpl.execute(&data) {
                Ok(o) => (o, String::new()),
                Err(e) => (e.output, e.message),
            },
        };
        if out != want_out || err != want_err {
            failures.push(format!(
                "template {t:?}\n   go:   {want_out:?} / {want_err:?}\n   ours: {out:?} / {err:?}"
            ));
        }
    }
    assert!(checked > 450, "only {checked} cases checked");
    assert!(
        failures.is_empty(),
        "{} of {checked} differ from Go:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
