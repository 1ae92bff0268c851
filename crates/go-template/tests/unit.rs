//! Small checks of the public API.

use go_template::{FuncMap, MissingKey, Template, Value, json, types};

#[test]
fn missing_keys_follow_the_option() {
    let data = json::decode(r#"{"a":{"b":1}}"#, json::Numbers::UseNumber).expect("json");
    let t = Template::parse("", "{{.a.c}}", &FuncMap::new()).expect("parses");
    assert_eq!(t.execute(&data).expect("runs"), "<no value>");
    let e = t
        .with_missing_key(MissingKey::Error)
        .execute(&data)
        .expect_err("fails");
    assert_eq!(
        e.message,
        "template: :1:4: executing \"\" at <.a.c>: map has no entry for key \"c\""
    );
    let t = Template::parse("", "x{{.a.b}}{{.a.c.d}}", &FuncMap::new()).expect("parses");
    let e = t
        .with_missing_key(MissingKey::Error)
        .execute(&data)
        .expect_err("fails");
    assert_eq!(e.output, "x1");
}

#[test]
fn json_encodes_like_go() {
    let v = json::decode(r#"{"b":[1,2.5,"<x>"],"a":null}"#, json::Numbers::Float64).expect("json");
    assert_eq!(
        json::marshal(&v, true).expect("marshal"),
        r#"{"a":null,"b":[1,2.5,"\u003cx\u003e"]}"#
    );
    assert_eq!(
        json::marshal(&v, false).expect("marshal"),
        r#"{"a":null,"b":[1,2.5,"<x>"]}"#
    );
    assert_eq!(
        json::marshal(&Value::float64(1e21), false).expect("marshal"),
        "1e+21"
    );
    assert_eq!(
        json::marshal(&Value::float64(1e-7), false).expect("marshal"),
        "1e-7"
    );
    assert_eq!(
        json::marshal(&Value::float64(123_456_789.0), false).expect("marshal"),
        "123456789"
    );
    assert!(json::marshal(&Value::float64(f64::NAN), false).is_err());
    assert_eq!(
        json::marshal(&Value::slice(&types::string_slice(), None), false).expect("marshal"),
        "null"
    );
}

#[test]
fn header_functions_replace_parsed_ones() {
    let mut f = FuncMap::new();
    f.insert(
        "shout".to_owned(),
        go_template::Func::new(vec![types::string()], types::string(), |a| {
            Value::string(&a[0].as_str().unwrap_or("").to_uppercase())
        }),
    );
    let t = Template::parse("", "{{shout .}}", &f).expect("parses");
    assert_eq!(t.execute(&Value::string("a")).expect("runs"), "A");
    let mut g = FuncMap::new();
    g.insert(
        "shout".to_owned(),
        go_template::Func::new(vec![types::string()], types::string(), |a| a[0].clone()),
    );
    assert_eq!(
        t.with_funcs(&g).execute(&Value::string("a")).expect("runs"),
        "a"
    );
}
