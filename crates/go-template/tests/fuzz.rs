//! Random input never panics the parser or the executor.

use go_template::{FuncMap, Template};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_text_never_panics(s in "\\PC{0,40}") {
        if let Ok(t) = Template::parse("", &s, &FuncMap::new()) {
            let _ = t.execute(&crate::go_exec::data());
        }
    }

    #[test]
    fn template_like_text_never_panics(
        parts in proptest::collection::vec(
            prop_oneof![
                Just("{{".to_owned()), Just("}}".to_owned()), Just("{{-".to_owned()),
                Just("-}}".to_owned()), Just(" ".to_owned()), Just(".".to_owned()),
                Just("$x".to_owned()), Just(":=".to_owned()), Just("=".to_owned()),
                Just("|".to_owned()), Just("(".to_owned()), Just(")".to_owned()),
                Just("if".to_owned()), Just("else".to_owned()), Just("end".to_owned()),
                Just("range".to_owned()), Just("with".to_owned()), Just("break".to_owned()),
                Just("define".to_owned()), Just("template".to_owned()), Just("\"x\"".to_owned()),
                Just("printf".to_owned()), Just("\"%5.2f %d %s %v %q\"".to_owned()),
                Just("index".to_owned()), Just("slice".to_owned()), Just("len".to_owned()),
                Just("eq".to_owned()), Just("and".to_owned()), Just("1".to_owned()),
                Just("-1".to_owned()), Just("1.5".to_owned()), Just("nil".to_owned()),
                Just(".SI".to_owned()), Just(".MSI".to_owned()), Just(".Raw".to_owned()),
                Just(".Tm".to_owned()), Just("/*".to_owned()), Just("*/".to_owned()),
                Just("'a'".to_owned()), Just("`r`".to_owned()), Just(",".to_owned()),
                "[a-z]{1,3}",
            ],
            0..24,
        )
    ) {
        let s = parts.concat();
        if let Ok(t) = Template::parse("", &s, &crate::go_exec::funcs()) {
            let _ = t.execute(&crate::go_exec::data());
        }
    }
}
