//! Fuzzing the history readers: whatever the bytes, the JSON-lines reader and the
//! EDN reader return a history or an error that names a line (and column) inside
//! the input, and never panic. Below the properties, named tests pin the edge
//! cases the parser was built to survive; a fuzzing finding goes there too, as
//! a `regression_…` test with the input that broke a reader.

use leasehold_checker::{
    EDN_MAX_DEPTH, Edn, EventType, HistoryError, Process, parse_edn, parse_edn_history,
    read_edn_history, read_history, read_ledger,
};
use proptest::prelude::*;
use proptest::sample::Index;

/// A leasehold history in the documented shape.
const JSONL: &str = r#"{"index":0,"time":0,"process":1,"node":"w1","type":"invoke","f":"acquire","value":{"lock":"L","ttl_ms":2000}}
{"index":1,"time":1000000,"process":1,"node":"w1","type":"ok","f":"acquire","value":{"lock":"L","token":33,"lease_ms":2000}}
{"index":2,"time":2000000,"process":1,"node":"w1","type":"invoke","f":"write","value":{"key":"k","token":33,"data":"w1-1"}}
{"index":3,"time":2500000,"process":"nemesis","type":"info","f":"pause","value":{"nodes":["w1"]}}
{"index":4,"time":4000000,"process":1,"node":"w1","type":"ok","f":"write","value":{"key":"k","token":33,"data":"w1-1"}}
{"index":5,"time":9000000,"process":"final","type":"invoke","f":"read","value":{"key":"k"}}
{"index":6,"time":9500000,"process":"final","type":"ok","f":"read","value":{"key":"k","token":33,"data":"w1-1","from":"w1"}}
"#;

/// A Jepsen cas-register history, written for these tests.
const EDN: &str = r#"; a cas register, three clients and a nemesis
{:type :invoke, :f :write, :value 1, :process 0, :time 1000, :index 0}
{:type :ok, :f :write, :value 1, :process 0, :time 2000, :index 1}
{:type :invoke, :f :cas, :value [1 2], :process 1, :time 3000, :index 2}
{:type :info, :f :start-partition, :value [:isolated {"n1" #{"n2" "n3"}}], :process :nemesis, :time 3500, :index 3}
#jepsen.history.Op{:index 4, :time 4000, :type :ok, :process 1, :f :cas, :value [1 2]}
{:type :invoke, :f :read, :value nil, :process 2, :time 5000, :index 5}
{:type :ok, :f :read, :value 2, :process 2, :time 6000, :index 6, :note "r\u00e9ad \"two\"\n", :c \space}
{:type :fail, :f :cas, :value [5 3], :process 0, :time 8000, :index 7, :error :mismatch, :x 1.5e3, :y 7N, :z 1/2}
#_ {:discarded true}
{:type :info, :f :write, :value 4, :process 1, :time 10000, :index 8, :error [:timeout "no reply"]}
"#;

/// The error's position, checked to lie inside `text`.
fn assert_located(err: &HistoryError, text: &[u8]) {
    let lines = 1 + text.iter().filter(|&&b| b == b'\n').count();
    match err {
        HistoryError::Parse { line, column, .. } => {
            assert!(
                *line >= 1 && *line <= lines,
                "line {line} of {lines}: {err}"
            );
            assert!(*column >= 1, "column {column}: {err}");
        }
        HistoryError::Io { line, .. } => {
            assert!(
                *line >= 1 && *line <= lines,
                "line {line} of {lines}: {err}"
            );
        }
    }
    let shown = err.to_string();
    assert!(shown.starts_with("line "), "{shown}");
}

fn read_all(bytes: &[u8]) {
    if let Err(e) = read_history(bytes) {
        assert_located(&e, bytes);
    }
    if let Err(e) = read_ledger(bytes) {
        assert_located(&e, bytes);
    }
    match read_edn_history(bytes) {
        Ok(h) => {
            // Whatever was read pairs into ops without trouble.
            let _ = h.ops();
        }
        Err(e) => {
            assert_located(&e, bytes);
            // The column is in characters of the line the error names.
            if let (HistoryError::Parse { line, column, .. }, Ok(text)) =
                (&e, std::str::from_utf8(bytes))
            {
                let width = text
                    .split('\n')
                    .nth(line - 1)
                    .map_or(0, |l| l.chars().count());
                assert!(*column <= width + 1, "column {column} past {width}: {e}");
            }
        }
    }
}

/// One way to damage a valid input.
#[derive(Clone, Debug)]
enum Mutation {
    Delete(Index, u8),
    Insert(Index, Vec<u8>),
    Replace(Index, u8),
    Duplicate(Index, u8),
    Truncate(Index),
    Swap(Index, Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    // Bytes EDN and JSON care about, and a few that break UTF-8.
    let interesting = prop::sample::select(
        b"{}[]()#\"\\:;,_ \n0123456789-+.eENM/abnuxtf\xc3\xa9\xff\x80".to_vec(),
    );
    prop_oneof![
        (any::<Index>(), 1u8..16).prop_map(|(i, n)| Mutation::Delete(i, n)),
        (
            any::<Index>(),
            prop::collection::vec(prop_oneof![interesting.clone(), any::<u8>()], 1..6)
        )
            .prop_map(|(i, b)| Mutation::Insert(i, b)),
        (any::<Index>(), interesting).prop_map(|(i, b)| Mutation::Replace(i, b)),
        (any::<Index>(), 1u8..32).prop_map(|(i, n)| Mutation::Duplicate(i, n)),
        any::<Index>().prop_map(Mutation::Truncate),
        (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Mutation::Swap(a, b)),
    ]
}

fn mutate(input: &[u8], mutations: &[Mutation]) -> Vec<u8> {
    let mut v = input.to_vec();
    for m in mutations {
        if v.is_empty() {
            break;
        }
        let len = v.len();
        match m {
            Mutation::Delete(i, n) => {
                let at = i.index(len);
                let end = (at + *n as usize).min(len);
                v.drain(at..end);
            }
            Mutation::Insert(i, bytes) => {
                let at = i.index(len + 1);
                v.splice(at..at, bytes.iter().copied());
            }
            Mutation::Replace(i, b) => {
                let at = i.index(len);
                v[at] = *b;
            }
            Mutation::Duplicate(i, n) => {
                let at = i.index(len);
                let end = (at + *n as usize).min(len);
                let copy = v[at..end].to_vec();
                v.splice(end..end, copy);
            }
            Mutation::Truncate(i) => v.truncate(i.index(len)),
            Mutation::Swap(a, b) => v.swap(a.index(len), b.index(len)),
        }
    }
    v
}

/// EDN forms whose text round-trips (no NaN: it is not equal to itself).
fn edn() -> impl Strategy<Value = Edn> {
    let name = "[a-z][a-z0-9*!_?<>=-]{0,6}(/[a-z][a-z0-9.]{0,4})?";
    let leaf = prop_oneof![
        Just(Edn::Nil),
        any::<bool>().prop_map(Edn::Bool),
        any::<i64>().prop_map(Edn::Int),
        "[1-9][0-9]{19,30}".prop_map(Edn::BigInt),
        any::<f64>()
            .prop_filter("NaN is not equal to itself", |x| !x.is_nan())
            .prop_map(Edn::Float),
        any::<char>().prop_map(Edn::Char),
        any::<String>().prop_map(Edn::String),
        name.prop_map(Edn::Keyword),
        name.prop_filter("reserved", |s| !matches!(
            s.as_str(),
            "nil" | "true" | "false"
        ))
        .prop_map(Edn::Symbol),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Edn::List),
            prop::collection::vec(inner.clone(), 0..6).prop_map(Edn::Vector),
            prop::collection::vec(inner.clone(), 0..6).prop_map(Edn::Set),
            prop::collection::vec((inner.clone(), inner.clone()), 0..4).prop_map(Edn::Map),
            ("[a-z][a-z.]{0,8}[a-zA-Z]", inner)
                .prop_map(|(tag, form)| Edn::Tagged(tag, Box::new(form))),
        ]
    })
}

/// 2000 cases each, or `PROPTEST_CASES` for a longer fuzzing session.
fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2000);
    ProptestConfig::with_cases(cases)
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        read_all(&bytes);
    }

    #[test]
    fn arbitrary_text_never_panics(text in any::<String>()) {
        read_all(text.as_bytes());
    }

    #[test]
    fn edn_like_text_never_panics(text in r#"[{}\[\]()#"\\:;,_ \n0-9a-zA-Z+./\-é]{0,120}"#) {
        read_all(text.as_bytes());
    }

    #[test]
    fn mutated_jsonl_never_panics(mutations in prop::collection::vec(mutation(), 1..6)) {
        read_all(&mutate(JSONL.as_bytes(), &mutations));
    }

    #[test]
    fn mutated_edn_never_panics(mutations in prop::collection::vec(mutation(), 1..6)) {
        read_all(&mutate(EDN.as_bytes(), &mutations));
    }

    #[test]
    fn edn_text_round_trips(form in edn()) {
        let text = form.to_string();
        let back = parse_edn(&text).map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
        prop_assert_eq!(back, vec![form], "{}", text);
    }
}

#[test]
fn the_samples_are_valid() {
    let h = read_history(JSONL.as_bytes()).unwrap();
    assert_eq!(h.events.len(), 7);
    assert_eq!(h.ops().len(), 3);
    let h = read_edn_history(EDN.as_bytes()).unwrap();
    assert_eq!(h.events.len(), 9);
    assert_eq!(h.events[3].process, Process::nemesis());
    assert_eq!(h.events[7].kind, EventType::Fail);
    assert_eq!(h.events[7].error.as_deref(), Some("mismatch"));
    assert_eq!(h.events[6].value, serde_json::json!(2));
}

// Named edge cases (and, when fuzzing finds one, regressions).

/// Deep nesting must be refused, not overflow the stack, however it nests:
/// collections, tags, discards.
#[test]
fn regression_deep_nesting_is_an_error_not_a_stack_overflow() {
    for text in [
        "[".repeat(100_000),
        "(".repeat(100_000) + &")".repeat(100_000),
        "#{".repeat(100_000),
        "{:a ".repeat(100_000),
        "#t ".repeat(100_000) + "1",
        "#_".repeat(100_000) + "1",
        "#_ ".repeat(100_000),
    ] {
        let err = parse_edn_history(&text).unwrap_err();
        assert!(err.to_string().contains("nest deeper"), "{err}");
    }
    let ok = "[".repeat(EDN_MAX_DEPTH) + &"]".repeat(EDN_MAX_DEPTH);
    assert!(parse_edn(&ok).is_ok());
}

/// A multi-byte character right before an error: the column counts
/// characters, and slicing never splits one.
#[test]
fn regression_multibyte_characters_before_errors() {
    for (text, line, column) in [
        ("é\u{2603}\"", 1, 3),
        ("{:a \"é\"}\n\u{1F600} ]", 2, 3),
        ("\\é\\", 1, 3),
    ] {
        match parse_edn(text) {
            Err(HistoryError::Parse {
                line: l, column: c, ..
            }) => assert_eq!((l, c), (line, column), "{text:?}"),
            other => panic!("{text:?}: {other:?}"),
        }
    }
}

/// A lone backslash, `#`, `:` or quote at the very end of the input.
#[test]
fn regression_truncated_dispatches() {
    for text in [
        "\\",
        "#",
        ":",
        "\"",
        "#:",
        "#:ns",
        "##",
        "{:a \"\\u00",
        "\"\\",
    ] {
        let err = parse_edn_history(text).unwrap_err();
        assert_located(&err, text.as_bytes());
    }
}

/// A JSON line with invalid UTF-8 names its line.
#[test]
fn regression_invalid_utf8_in_jsonl() {
    let bytes = b"{\"index\":0}\n\xff\n";
    let err = read_history(&bytes[..]).unwrap_err();
    assert!(err.to_string().starts_with("line "), "{err}");
    assert_located(&err, bytes);
}
