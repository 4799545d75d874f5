//! Unit tests of the function table and of marks (unknown, sensitive),
//! calling functions directly with values. Documentation examples per
//! group are in `crates/engine/tests/funcs_*.rs`, through expressions.

use super::*;

fn s(text: &str) -> Value {
    Value::String(text.into())
}

fn n(number: f64) -> Value {
    Value::from(number)
}

fn list(items: &[Value]) -> Value {
    Value::List(items.to_vec())
}

fn map(pairs: &[(&str, Value)]) -> Value {
    Value::Map(pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect())
}

fn ok(name: &str, args: &[Value]) -> Value {
    match call(name, args.to_vec()) {
        Ok(v) => v,
        Err(err) => panic!("{name} failed: {err}"),
    }
}

fn err(name: &str, args: &[Value]) -> String {
    match call(name, args.to_vec()) {
        Ok(v) => panic!("{name} unexpectedly returned {v}"),
        Err(err) => err,
    }
}

fn secret(v: Value) -> Value {
    v.into_sensitive()
}

#[test]
fn unknown_function_is_named_in_the_error() {
    // A typo in a function name says which name was not found.
    assert_eq!(err("foo", &[]), "unknown function \"foo\"");
    assert!(!is_known_function("foo"));
    assert!(functions().all(|(f, _)| is_known_function(f)));
}

#[test]
fn length_counts_chars_elements_and_keys() {
    // Strings count characters, not bytes; collections count entries.
    assert_eq!(ok("length", &[s("héllo")]), n(5.0));
    assert_eq!(ok("length", &[list(&[n(1.0), n(2.0)])]), n(2.0));
    assert_eq!(ok("length", &[map(&[("a", n(1.0))])]), n(1.0));
    assert_eq!(err("length", &[n(3.0)]), "length: first argument must be a string, list or map, got number");
    assert_eq!(err("length", &[]), "length: expected 1 argument, got 0");
}

#[test]
fn length_of_unknowns() {
    // Unknown elements still have a known count; an unknown list does not.
    assert_eq!(ok("length", &[list(&[Value::Unknown, Value::Unknown])]), n(2.0));
    assert_eq!(ok("length", &[Value::Unknown]), Value::Unknown);
}

#[test]
fn concat_and_merge_combine_and_keep_unknown_elements() {
    // Combining functions pass unknown elements through untouched.
    assert_eq!(ok("concat", &[list(&[n(1.0)]), list(&[Value::Unknown, n(3.0)])]), list(&[n(1.0), Value::Unknown, n(3.0)]));
    assert_eq!(ok("concat", &[list(&[]), Value::Unknown]), Value::Unknown);
    assert_eq!(err("concat", &[list(&[]), s("x")]), "concat: second argument must be a list, got string");
    assert_eq!(
        ok("merge", &[map(&[("a", n(1.0)), ("b", n(1.0))]), Value::Null, map(&[("b", Value::Unknown)])]),
        map(&[("a", n(1.0)), ("b", Value::Unknown)])
    );
    assert_eq!(err("merge", &[list(&[])]), "merge: first argument must be a map, got list");
}

#[test]
fn lookup_uses_default_only_when_key_missing() {
    // A missing key without a default is an error, not null.
    let m = map(&[("a", s("x"))]);
    assert_eq!(ok("lookup", &[m.clone(), s("a")]), s("x"));
    assert_eq!(ok("lookup", &[m.clone(), s("b"), s("d")]), s("d"));
    assert_eq!(err("lookup", &[m, s("b")]), "lookup: key \"b\" not found in the map and no default given");
}

#[test]
fn keys_and_values_follow_key_order() {
    // Keys are sorted and values come in the same order.
    let m = map(&[("b", n(2.0)), ("a", n(1.0))]);
    assert_eq!(ok("keys", std::slice::from_ref(&m)), list(&[s("a"), s("b")]));
    assert_eq!(ok("values", &[m]), list(&[n(1.0), n(2.0)]));
    assert_eq!(err("keys", &[list(&[])]), "keys: first argument must be a map, got list");
}

#[test]
fn range_follows_terraform() {
    // One, two and three argument forms, including counting down.
    assert_eq!(ok("range", &[n(3.0)]), list(&[n(0.0), n(1.0), n(2.0)]));
    assert_eq!(ok("range", &[n(1.0), n(4.0)]), list(&[n(1.0), n(2.0), n(3.0)]));
    assert_eq!(ok("range", &[n(4.0), n(1.0)]), list(&[n(4.0), n(3.0), n(2.0)]));
    assert_eq!(ok("range", &[n(0.0), n(1.0), n(0.25)]), list(&[n(0.0), n(0.25), n(0.5), n(0.75)]));
    assert_eq!(ok("range", &[n(0.0)]), list(&[]));
    assert_eq!(err("range", &[n(0.0), n(3.0), n(0.0)]), "range: step must not be zero");
    assert!(err("range", &[n(0.0), n(3.0), n(-1.0)]).contains("positive"));
}

#[test]
fn huge_range_is_an_error_not_an_allocation() {
    // A range of more than a million elements is refused up front.
    assert!(err("range", &[n(1e12)]).contains("1000000"));
    assert!(err("range", &[n(0.0), n(1.0), n(1e-300)]).contains("1000000"));
    // No number is infinite any more; the largest there is still refuses.
    assert!(err("range", &[n(1e300)]).contains("1000000"));
}

#[test]
fn min_and_max_take_numbers() {
    // Numeric strings convert like Terraform; other types do not.
    assert_eq!(ok("min", &[n(3.0), n(-1.0), s("2")]), n(-1.0));
    assert_eq!(ok("max", &[n(3.0), n(7.5)]), n(7.5));
    assert_eq!(err("max", &[]), "max: must pass at least one number");
    assert_eq!(err("min", &[n(1.0), s("x")]), "min: second argument must be a number, got string");
}

#[test]
fn format_verbs() {
    // The common verbs, widths, precision and the literal percent.
    let f = |spec: &str, args: &[Value]| {
        let mut all = vec![s(spec)];
        all.extend_from_slice(args);
        ok("format", &all)
    };
    assert_eq!(f("Hello, %s!", &[s("Ander")]), s("Hello, Ander!"));
    assert_eq!(f("%d items, 100%%", &[n(3.0)]), s("3 items, 100%"));
    assert_eq!(f("%5d|%-5d|%05d", &[n(42.0), n(42.0), n(-42.0)]), s("   42|42   |-0042"));
    assert_eq!(f("%.2f %f", &[n(2.345), n(1.5)]), s("2.35 1.500000"));
    assert_eq!(f("%q", &[s("a \"b\"")]), s("\"a \\\"b\\\"\""));
    assert_eq!(f("%v %v %v", &[s("x"), n(2.0), list(&[n(1.0), s("a")])]), s("x 2 [1,\"a\"]"));
    assert_eq!(f("%#v", &[s("x")]), s("\"x\""));
    assert_eq!(f("%t %x %X %o %b", &[Value::Bool(true), n(255.0), n(255.0), n(8.0), n(5.0)]), s("true ff FF 10 101"));
    assert_eq!(f("%e", &[n(1500.0)]), s("1.500000e+03"));
    assert_eq!(f("%+d %[1]d", &[n(7.0)]), s("+7 7"));
    assert_eq!(f("%.3s", &[s("abcdef")]), s("abc"));
}

#[test]
fn format_errors() {
    // Argument count and type mismatches are reported, never guessed.
    assert_eq!(err("format", &[s("%s %s"), s("a")]), "format: not enough arguments for %s (verb #2)");
    assert_eq!(err("format", &[s("%s"), s("a"), s("b")]), "format: too many arguments; no verb for argument 2");
    assert!(err("format", &[s("%d"), n(1.5)]).contains("whole number"));
    assert!(err("format", &[s("%s"), list(&[])]).contains("unsupported value"));
    assert!(err("format", &[s("%s"), Value::Null]).contains("null"));
    assert!(err("format", &[s("%"), s("a")]).contains("middle of a verb"));
    assert!(err("format", &[s("%y"), s("a")]).contains("unsupported format verb"));
    assert!(err("format", &[s("%99999999999999999999d"), n(1.0)]).contains("larger than"));
}

#[test]
fn formatlist_iterates_lists_together() {
    // List arguments advance together; scalars repeat.
    assert_eq!(ok("formatlist", &[s("%s-%s"), list(&[s("a"), s("b")]), s("x")]), list(&[s("a-x"), s("b-x")]));
    assert!(err("formatlist", &[s("%s%s"), list(&[s("a")]), list(&[])]).contains("same length"));
}

#[test]
fn join_and_split() {
    // join takes one or more lists; split on "" splits characters.
    assert_eq!(ok("join", &[s(","), list(&[s("a"), n(1.0)])]), s("a,1"));
    assert_eq!(ok("join", &[s("-"), list(&[s("a")]), list(&[s("b")])]), s("a-b"));
    assert_eq!(err("join", &[s(","), n(1.0)]), "join: second argument must be a list of strings, got number");
    assert!(err("join", &[s(","), list(&[list(&[])])]).contains("element of type list"));
    assert_eq!(ok("split", &[s(","), s("a,b,")]), list(&[s("a"), s("b"), s("")]));
    assert_eq!(ok("split", &[s(""), s("ab")]), list(&[s("a"), s("b")]));
}

#[test]
fn string_functions() {
    // Case, trimming, replacing, prefixes and substrings by character.
    assert_eq!(ok("lower", &[s("AbC")]), s("abc"));
    assert_eq!(ok("upper", &[s("AbC")]), s("ABC"));
    assert_eq!(ok("trimspace", &[s("  a b \n")]), s("a b"));
    assert_eq!(ok("replace", &[s("a-b-c"), s("-"), s("+")]), s("a+b+c"));
    assert_eq!(ok("replace", &[s("abc"), s("/b/"), s("x")]), s("axc"));
    assert_eq!(ok("startswith", &[s("hello"), s("he")]), Value::Bool(true));
    assert_eq!(ok("endswith", &[s("hello"), s("he")]), Value::Bool(false));
    assert_eq!(ok("substr", &[s("héllo"), n(1.0), n(3.0)]), s("éll"));
    assert_eq!(ok("substr", &[s("hello"), n(-3.0), n(-1.0)]), s("llo"));
    assert_eq!(ok("substr", &[s("hello"), n(2.0), n(100.0)]), s("llo"));
    assert_eq!(ok("substr", &[s("hello"), n(9.0), n(1.0)]), s(""));
    assert!(err("substr", &[s("hello"), n(0.0), n(-2.0)]).contains("length"));
    assert!(err("substr", &[s("hello"), n(0.5), n(1.0)]).contains("whole number"));
}

#[test]
fn tostring_and_tonumber_convert_primitives_only() {
    // Collections are not strings; only numeric strings are numbers.
    assert_eq!(ok("tostring", &[n(3.0)]), s("3"));
    assert_eq!(ok("tostring", &[Value::Bool(true)]), s("true"));
    assert_eq!(ok("tostring", &[Value::Null]), Value::Null);
    assert_eq!(err("tostring", &[list(&[])]), "tostring: cannot convert list to string");
    assert_eq!(ok("tonumber", &[s("1.5")]), n(1.5));
    assert_eq!(ok("tonumber", &[n(2.0)]), n(2.0));
    assert_eq!(
        err("tonumber", &[s("abc")]),
        "tonumber: cannot convert \"abc\" to number; given string must be a decimal representation of a number"
    );
    assert!(err("tonumber", &[s("inf")]).contains("cannot convert"));
    assert!(err("tonumber", &[Value::Bool(true)]).contains("cannot convert bool"));
}

#[test]
fn coalesce_skips_null_and_empty_strings() {
    // The first meaningful argument wins.
    assert_eq!(ok("coalesce", &[Value::Null, s(""), s("b"), s("c")]), s("b"));
    assert_eq!(ok("coalesce", &[Value::Null, n(0.0)]), n(0.0));
    assert!(err("coalesce", &[Value::Null, s("")]).contains("no non-null"));
}

#[test]
fn element_wraps_around() {
    // Indexes past the end wrap modulo the length.
    let l = list(&[s("a"), s("b"), s("c")]);
    assert_eq!(ok("element", &[l.clone(), n(4.0)]), s("b"));
    assert!(err("element", &[list(&[]), n(0.0)]).contains("empty list"));
    assert!(err("element", &[l, n(-1.0)]).contains("negative"));
}

#[test]
fn jsonencode_writes_integers_without_fraction() {
    // Numbers that are whole print as integers.
    let v = map(&[("n", n(3.0)), ("f", n(1.5)), ("l", list(&[Value::Bool(true), Value::Null]))]);
    assert_eq!(ok("jsonencode", &[v]), s("{\"f\":1.5,\"l\":[true,null],\"n\":3}"));
}

#[test]
fn collection_functions() {
    // contains, distinct, flatten, toset, tolist, tomap, zipmap, sort, reverse.
    let l = list(&[s("b"), s("a"), s("b")]);
    assert_eq!(ok("contains", &[l.clone(), s("a")]), Value::Bool(true));
    assert_eq!(ok("contains", &[l.clone(), s("z")]), Value::Bool(false));
    assert_eq!(ok("distinct", std::slice::from_ref(&l)), list(&[s("b"), s("a")]));
    assert_eq!(ok("toset", std::slice::from_ref(&l)), list(&[s("a"), s("b")]));
    assert_eq!(ok("toset", &[list(&[n(10.0), n(9.0), n(10.0)])]), list(&[n(9.0), n(10.0)]));
    assert_eq!(ok("flatten", &[list(&[list(&[n(1.0), list(&[n(2.0)])]), n(3.0)])]), list(&[n(1.0), n(2.0), n(3.0)]));
    assert_eq!(ok("tolist", &[list(&[Value::Unknown])]), list(&[Value::Unknown]));
    assert_eq!(err("tolist", &[s("x")]), "tolist: cannot convert string to list");
    assert_eq!(ok("tomap", &[map(&[("a", n(1.0))])]), map(&[("a", n(1.0))]));
    assert_eq!(err("tomap", &[list(&[])]), "tomap: cannot convert list to map");
    assert_eq!(ok("zipmap", &[list(&[s("a"), s("b")]), list(&[n(1.0), n(2.0)])]), map(&[("a", n(1.0)), ("b", n(2.0))]));
    assert!(err("zipmap", &[list(&[s("a")]), list(&[])]).contains("does not match"));
    assert_eq!(ok("sort", &[list(&[s("b"), s("a"), n(10.0), n(9.0)])]), list(&[s("10"), s("9"), s("a"), s("b")]));
    assert_eq!(ok("reverse", &[l]), list(&[s("b"), s("a"), s("b")]));
}

#[test]
fn number_functions() {
    // abs, ceil, floor and sum.
    assert_eq!(ok("abs", &[n(-2.5)]), n(2.5));
    assert_eq!(ok("ceil", &[n(1.2)]), n(2.0));
    assert_eq!(ok("floor", &[n(-1.2)]), n(-2.0));
    assert_eq!(ok("sum", &[list(&[n(1.0), n(2.5)])]), n(3.5));
    assert!(err("sum", &[list(&[])]).contains("empty"));
    assert!(err("sum", &[list(&[s("x")])]).contains("must be numbers"));
    assert_eq!(err("abs", &[s("x")]), "abs: first argument must be a number, got string");
}

#[test]
fn unknown_arguments_make_unknown_results() {
    // A function that needs a value it does not have cannot guess.
    assert_eq!(ok("upper", &[Value::Unknown]), Value::Unknown);
    assert_eq!(ok("join", &[s(","), list(&[s("a"), Value::Unknown])]), Value::Unknown);
    assert_eq!(ok("lookup", &[Value::Unknown, s("a")]), Value::Unknown);
    assert_eq!(ok("format", &[s("%s"), Value::Unknown]), Value::Unknown);
}

#[test]
fn sensitive_arguments_make_sensitive_results() {
    // The result is computed on plain values and marked once, at the top.
    assert_eq!(ok("upper", &[secret(s("pw"))]), secret(s("PW")));
    assert_eq!(ok("join", &[s("-"), list(&[s("a"), secret(s("b"))])]), secret(s("a-b")));
    assert_eq!(ok("length", &[secret(s("abc"))]), secret(n(3.0)));
    assert_eq!(ok("upper", &[secret(Value::Unknown)]), secret(Value::Unknown));
    assert_eq!(ok("lower", &[s("A")]), s("a"));
    assert!(err("upper", &[secret(list(&[]))]).contains("got list"));
}

#[test]
fn table_is_sorted_and_unique() {
    // Binary search needs the table in strict name order.
    let names: Vec<&str> = functions().map(|(n, _)| n).collect();
    assert!(names.windows(2).all(|w| w[0] < w[1]), "table out of order");
}

#[test]
fn hostile_sizes_are_errors_not_allocations() {
    // Widths, counts and products that would exhaust memory are refused.
    assert!(err("indent", &[n(1e9), s("a\nb")]).contains("at most"));
    assert!(err("format", &[s("%999999999d"), n(1.0)]).contains("larger than"));
    assert!(err("range", &[n(0.0), n(1e15)]).contains("1000000"));
    let big = list(&(0..1000).map(|i| n(i as f64)).collect::<Vec<_>>());
    assert!(err("setproduct", &[big.clone(), big.clone(), big]).contains("more than"));
    assert_eq!(ok("chunklist", &[list(&[n(1.0), n(2.0)]), n(0.0)]), list(&[list(&[n(1.0), n(2.0)])]));
    assert!(err("chunklist", &[list(&[n(1.0)]), n(-1.0)]).contains("positive"));
    assert!(err("regex", &[s(&"(a{1000}){1000}".repeat(10)), s("a")]).contains("invalid regexp"));
    assert!(err("parseint", &[s(&"1".repeat(5000)), n(10.0)]).contains("longer"));
}

#[test]
fn marks_in_sensitivity_functions() {
    // sensitive/nonsensitive/issensitive see and set the marks themselves.
    assert_eq!(ok("sensitive", &[s("a")]), secret(s("a")));
    assert_eq!(ok("nonsensitive", &[secret(s("a"))]), s("a"));
    assert_eq!(ok("nonsensitive", &[s("a")]), s("a"));
    assert_eq!(ok("issensitive", &[secret(s("a"))]), Value::Bool(true));
    assert_eq!(ok("issensitive", &[s("a")]), Value::Bool(false));
    assert_eq!(ok("timestamp", &[]), Value::Unknown);
    assert_eq!(ok("uuid", &[]), Value::Unknown);
    assert_eq!(ok("keys", &[map(&[("a", Value::Unknown)])]), list(&[s("a")]));
    assert_eq!(ok("flatten", &[list(&[list(&[Value::Unknown])])]), Value::Unknown);
    assert_eq!(ok("sha256", &[secret(s(""))]), secret(s("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")));
}
