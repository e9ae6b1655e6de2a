//! Knossos parity: the multi-register model on Jepsen `:txn` histories (hand
//! written, and random ones against a brute-force search), ops a model cannot
//! judge, registers' initial values and the two readings of a `nil` read.

use std::collections::BTreeMap;

use leasehold_checker::{
    CheckReport, Event, EventType, Limits, Linearizability, Micro, Model, ModelKind, ModelOptions,
    MultiRegister, NilRead, Operation, Process, TxnReads, Validity, check_linearizability,
    check_linearizability_with, check_operations, parse_edn_history,
};
use proptest::prelude::*;
use serde_json::{Value, json};

/// Checks an EDN history (one op per line, no times: the order of the lines
/// is real time).
fn check_edn(text: &str, model: ModelKind, options: &ModelOptions) -> CheckReport {
    let history = parse_edn_history(text).unwrap();
    check_linearizability_with(&history.events, model, options, Limits::none())
}

fn multi(text: &str) -> CheckReport {
    check_edn(text, ModelKind::MultiRegister, &ModelOptions::default())
}

/// Two clients over keys x and y; process 1's read of x after process 0's txn
/// completed sees `x_read`.
fn two_clients(x_read: &str) -> String {
    format!(
        r#"{{:type :invoke, :f :txn, :value [[:w :x 1] [:w :y 2]], :process 0}}
{{:type :invoke, :f :txn, :value [[:r :y nil]], :process 1}}
{{:type :ok, :f :txn, :value [[:w :x 1] [:w :y 2]], :process 0}}
{{:type :ok, :f :txn, :value [[:r :y 2]], :process 1}}
{{:type :invoke, :f :txn, :value [[:r :x nil] [:w :x 3] [:r :x nil]], :process 1}}
{{:type :ok, :f :txn, :value [[:r :x {x_read}] [:w :x 3] [:r :x 3]], :process 1}}
{{:type :invoke, :f :txn, :value [[:w :y 4]], :process 2}}
{{:type :info, :f :txn, :value [[:w :y 4]], :process 2}}
{{:type :invoke, :f :txn, :value [[:r :y nil]], :process 0}}
{{:type :ok, :f :txn, :value [[:r :y 4]], :process 0}}
{{:type :invoke, :f :txn, :value [[:w :x 9]], :process 0}}
{{:type :fail, :f :txn, :value [[:w :x 9]], :process 0}}
{{:type :invoke, :f :txn, :value [[:r :x nil]], :process 0}}
{{:type :ok, :f :txn, :value [[:r :x 3]], :process 0}}
"#
    )
}

#[test]
fn hand_written_txn_histories() {
    // Valid: the read of y sees the txn it overlaps; the info write of y took
    // effect; the failed write of x did not.
    let r = multi(&two_clients("1"));
    assert_eq!(r.validity, Validity::Valid, "{r:#?}");
    assert_eq!(r.stats["model"], "multi-register");
    // The txns tie x and y together: one partition.
    assert_eq!(r.stats["partitions"], 1, "{r:#?}");
    assert_eq!(r.stats["failed_ops"], 1);
    assert!(
        r.summary
            .starts_with("linearizable under the multi-register model"),
        "{}",
        r.summary
    );

    // Invalid: after the txn wrote x = 1 completed, x cannot read empty.
    let r = multi(&two_clients("nil"));
    assert_eq!(r.validity, Validity::Invalid, "{r:#?}");
    let leasehold_checker::Anomaly::NonLinearizable {
        partition,
        stuck_described,
        ..
    } = &r.anomalies[0]
    else {
        panic!("{r:#?}")
    };
    assert_eq!(partition, "x+y");
    assert_eq!(stuck_described, &["txn [r x empty, w x 3, r x 3]"]);
    // Knossos's reading of a nil read (value unknown) accepts it.
    let unknown = ModelOptions {
        nil_read: NilRead::Unknown,
        ..ModelOptions::default()
    };
    let r = check_edn(&two_clients("nil"), ModelKind::MultiRegister, &unknown);
    assert_eq!(r.validity, Validity::Valid, "{r:#?}");

    // Invalid: a stale read of another value.
    let r = multi(&two_clients("7"));
    assert_eq!(r.validity, Validity::Invalid, "{r:#?}");

    // Knossos's own spelling of micro-ops reads the same.
    for (x_read, want) in [("1", Validity::Valid), ("7", Validity::Invalid)] {
        let spelled = two_clients(x_read)
            .replace("[:r ", "[:read ")
            .replace("[:w ", "[:write ");
        let r = multi(&spelled);
        assert_eq!(r.validity, want, "{r:#?}");
        assert_eq!(r.stats["unreadable_ops"], 0);
    }
    // A completion that is not the transaction invoked cannot be read.
    let other = two_clients("1").replace(
        "{:type :ok, :f :txn, :value [[:r :y 4]], :process 0}",
        "{:type :ok, :f :txn, :value [[:r :x 4]], :process 0}",
    );
    let r = multi(&other);
    assert_eq!(r.validity, Validity::Unknown, "{r:#?}");
    assert_eq!(r.stats["unreadable_ops"], 1);
}

#[test]
fn single_key_txns_are_split_per_key() {
    let text = r#"{:type :invoke, :f :txn, :value [[:w :x 1]], :process 0}
{:type :ok, :f :txn, :value [[:w :x 1]], :process 0}
{:type :invoke, :f :txn, :value [[:w :y 1]], :process 1}
{:type :ok, :f :txn, :value [[:w :y 1]], :process 1}
{:type :invoke, :f :txn, :value [[:r :x nil] [:r :x nil]], :process 0}
{:type :ok, :f :txn, :value [[:r :x 1] [:r :x 1]], :process 0}
{:type :invoke, :f :txn, :value [[:r :y nil]], :process 1}
{:type :ok, :f :txn, :value [[:r :y 2]], :process 1}
{:type :invoke, :f :txn, :value [[:w :z 5]], :process 2}
{:type :ok, :f :txn, :value [[:w :z 5]], :process 2}
"#;
    let r = multi(text);
    assert_eq!(r.validity, Validity::Invalid, "{r:#?}");
    assert_eq!(r.stats["partitions"], 3, "{r:#?}");
    assert_eq!(r.stats["invalid_partitions"], json!(["y"]), "{r:#?}");
    assert!(r.summary.contains("group of keys \"y\""), "{}", r.summary);
}

/// Writes x and y together; a reader sees x's new value but y's old one. Each
/// key's history on its own is linearizable; the transactions are not atomic.
const TORN: &str = r#"{:type :invoke, :f :txn, :value [[:w :x 1] [:w :y 1]], :process 0}
{:type :invoke, :f :txn, :value [[:r :x nil] [:r :y nil]], :process 1}
{:type :ok, :f :txn, :value [[:r :x 1] [:r :y nil]], :process 1}
{:type :ok, :f :txn, :value [[:w :x 1] [:w :y 1]], :process 0}
"#;

#[test]
fn a_torn_cross_key_transaction_only_the_whole_search_rejects() {
    let r = multi(TORN);
    assert_eq!(r.validity, Validity::Invalid, "{r:#?}");
    assert_eq!(r.stats["partitions"], 1);

    // Split per key (each txn cut down to its micro-op on that key), as a
    // per-key search would have it, every key is linearizable.
    let history = parse_edn_history(TORN).unwrap();
    let ops = history.ops();
    for key in 0..2u32 {
        let model = MultiRegister::<i64>::new(vec!["x".into(), "y".into()]);
        let projected: Vec<Operation<Vec<Micro<i64>>, TxnReads<i64>>> = ops
            .iter()
            .enumerate()
            .map(|(i, op)| {
                let (input, output) = if i == 0 {
                    (vec![Micro::Write(key, 1)], vec![None])
                } else {
                    let read = if key == 0 { Some(1) } else { None };
                    (vec![Micro::Read(key)], vec![Some(read)])
                };
                Operation {
                    id: op.invoke_index,
                    process: op.process.clone(),
                    call: op.invoke_index,
                    ret: op.complete_index.unwrap(),
                    input,
                    output: Some(output),
                }
            })
            .collect();
        let a = check_operations(&model, &projected, Limits::none());
        assert_eq!(a.result, Linearizability::Linearizable, "key {key}");
    }
}

#[test]
fn ops_the_model_cannot_judge_are_named_and_make_valid_unknown() {
    // Only txns under the register model: nothing judged, and it says why.
    let txns: String = (0..123)
        .map(|i| {
            format!(
                "{{:type :invoke, :f :txn, :value [[:w :x {i}]], :process 0}}\n{{:type :ok, :f :txn, :value [[:w :x {i}]], :process 0}}\n"
            )
        })
        .collect();
    let r = check_edn(&txns, ModelKind::Register, &ModelOptions::default());
    assert_eq!(r.validity, Validity::Unknown, "{r:#?}");
    assert!(
        r.summary
            .contains("123 :txn ops ignored: the register model reads :read, :write"),
        "{}",
        r.summary
    );
    assert_eq!(r.stats["ignored_ops"], 123);
    assert_eq!(r.stats["ignored_functions"], json!({"txn": 123}));

    // A valid register history with a txn or two is still valid; with more
    // than a tenth of txns, unknown. Invalid stays invalid.
    let register = |ops: usize, txns: usize, read: u64| {
        let mut text = String::from(
            "{:type :invoke, :f :write, :value 1, :process 0}\n{:type :ok, :f :write, :value 1, :process 0}\n",
        );
        for _ in 1..ops {
            text += &format!(
                "{{:type :invoke, :f :read, :value nil, :process 1}}\n{{:type :ok, :f :read, :value {read}, :process 1}}\n"
            );
        }
        for _ in 0..txns {
            text += "{:type :invoke, :f :txn, :value [[:r :x nil]], :process 2}\n{:type :ok, :f :txn, :value [[:r :x 1]], :process 2}\n";
        }
        check_edn(&text, ModelKind::Register, &ModelOptions::default())
    };
    let r = register(18, 2, 1);
    assert_eq!(r.validity, Validity::Valid, "{r:#?}");
    assert!(r.summary.contains("2 :txn ops ignored"), "{}", r.summary);
    let r = register(18, 3, 1);
    assert_eq!(r.validity, Validity::Unknown, "{r:#?}");
    assert!(r.summary.contains("more than 10 %"), "{}", r.summary);
    let r = register(18, 30, 2);
    assert_eq!(r.validity, Validity::Invalid, "{r:#?}");

    // And the other way round: the multi-register does not read :read.
    let r = multi(&format!(
        "{}{}",
        two_clients("1"),
        "{:type :invoke, :f :read, :value nil, :process 5}\n{:type :ok, :f :read, :value 3, :process 5}\n"
    ));
    assert_eq!(r.validity, Validity::Unknown, "{r:#?}");
    assert!(
        r.summary
            .contains("1 :read op ignored: the multi-register model reads :txn"),
        "{}",
        r.summary
    );
}

#[test]
fn the_initial_value_and_the_nil_read_change_the_verdict() {
    // Knossos's tests start registers at 0: a first read of 0.
    let zero = r#"{:type :invoke, :f :read, :value nil, :process 0}
{:type :ok, :f :read, :value 0, :process 0}
{:type :invoke, :f :cas, :value [0 1], :process 1}
{:type :ok, :f :cas, :value [0 1], :process 1}
"#;
    let at_zero = ModelOptions {
        initial_value: Some(json!(0)),
        ..ModelOptions::default()
    };
    for kind in [ModelKind::CasRegister, ModelKind::CasRegisterStrict] {
        let r = check_edn(zero, kind, &ModelOptions::default());
        assert_eq!(r.validity, Validity::Invalid, "{kind}: {r:#?}");
        let r = check_edn(zero, kind, &at_zero);
        assert_eq!(r.validity, Validity::Valid, "{kind}: {r:#?}");
    }
    let read_zero = &zero[..zero.find("{:type :invoke, :f :cas").unwrap()];
    let r = check_edn(read_zero, ModelKind::Register, &ModelOptions::default());
    assert_eq!(r.validity, Validity::Invalid);
    let r = check_edn(read_zero, ModelKind::Register, &at_zero);
    assert_eq!(r.validity, Validity::Valid);
    let txn = "{:type :invoke, :f :txn, :value [[:r :x nil]], :process 0}\n{:type :ok, :f :txn, :value [[:r :x 0]], :process 0}\n";
    assert_eq!(multi(txn).validity, Validity::Invalid);
    let r = check_edn(txn, ModelKind::MultiRegister, &at_zero);
    assert_eq!(r.validity, Validity::Valid, "{r:#?}");

    // A read of nil after a write completed: empty (leasehold's reading) is
    // impossible; an unknown value (Knossos's) is fine.
    let nil = r#"{:type :invoke, :f :write, :value 1, :process 0}
{:type :ok, :f :write, :value 1, :process 0}
{:type :invoke, :f :read, :value nil, :process 1}
{:type :ok, :f :read, :value nil, :process 1}
"#;
    let unknown = ModelOptions {
        nil_read: NilRead::Unknown,
        ..ModelOptions::default()
    };
    for kind in [
        ModelKind::Register,
        ModelKind::CasRegister,
        ModelKind::CasRegisterStrict,
    ] {
        let r = check_edn(nil, kind, &ModelOptions::default());
        assert_eq!(r.validity, Validity::Invalid, "{kind}: {r:#?}");
        let r = check_edn(nil, kind, &unknown);
        assert_eq!(r.validity, Validity::Valid, "{kind}: {r:#?}");
    }
    // The default is leasehold's.
    let r = check_linearizability(
        &parse_edn_history(nil).unwrap().events,
        ModelKind::Register,
        Limits::none(),
    );
    assert_eq!(r.validity, Validity::Invalid);
}

// ---------------------------------------------------------------------------
// Random histories against a brute-force search

/// One generated transaction: micro-ops (`true`: write), its key (0..3) and
/// value (a write's, or the value an ok read returned; 0: nil), its interval
/// and how it ended (0 ok, 1 info, 2 fail).
#[derive(Clone, Debug)]
struct Txn {
    micros: Vec<(bool, u8, u8)>,
    start: u8,
    len: u8,
    end: u8,
}

fn txn() -> impl Strategy<Value = Txn> {
    (
        prop::collection::vec((any::<bool>(), 0u8..3, 0u8..3), 1..4),
        0u8..12,
        1u8..6,
        prop::sample::select(vec![0u8, 0, 0, 0, 1, 2]),
    )
        .prop_map(|(micros, start, len, end)| Txn {
            micros: micros
                .into_iter()
                .map(|(w, k, v)| (w, k, if w { v.max(1) } else { v }))
                .collect(),
            start,
            len,
            end,
        })
}

const KEYS: [&str; 3] = ["a", "b", "c"];

fn micro_json(w: bool, k: u8, v: Option<u8>) -> Value {
    json!([if w { "w" } else { "r" }, KEYS[k as usize], v])
}

/// The events of `txns`, one process each, in time order; and per txn its
/// (call, return) positions (`u32::MAX`: no return).
fn events_of(txns: &[Txn]) -> (Vec<Event>, Vec<(u32, u32)>) {
    let mut marks: Vec<(u8, bool, usize)> = Vec::new();
    for (i, t) in txns.iter().enumerate() {
        marks.push((t.start, false, i));
        marks.push((t.start.saturating_add(t.len), true, i));
    }
    marks.sort();
    let mut events = Vec::new();
    let mut at = vec![(0u32, u32::MAX); txns.len()];
    for (pos, &(_, done, i)) in marks.iter().enumerate() {
        let t = &txns[i];
        let (kind, value) = if !done {
            at[i].0 = pos as u32;
            let v: Vec<Value> = t
                .micros
                .iter()
                .map(|&(w, k, v)| micro_json(w, k, w.then_some(v)))
                .collect();
            (EventType::Invoke, Value::Array(v))
        } else {
            let kind = [EventType::Ok, EventType::Info, EventType::Fail][t.end as usize];
            if kind == EventType::Ok {
                at[i].1 = pos as u32;
            }
            let v: Vec<Value> = t
                .micros
                .iter()
                .map(|&(w, k, v)| {
                    let read = (kind == EventType::Ok && v > 0).then_some(v);
                    micro_json(w, k, if w { Some(v) } else { read })
                })
                .collect();
            (kind, Value::Array(v))
        };
        events.push(Event {
            index: pos as u64,
            time: pos as u64 + 1,
            process: Process::Client(i as u64),
            node: None,
            kind,
            f: "txn".to_owned(),
            value,
            error: None,
        });
    }
    (events, at)
}

/// Applies a txn to the registers the simple way: in order, reads of their own
/// writes included; `None` when a read does not match.
fn apply(state: &BTreeMap<u8, u8>, t: &Txn, known: bool) -> Option<BTreeMap<u8, u8>> {
    let mut next = state.clone();
    for &(w, k, v) in &t.micros {
        if w {
            next.insert(k, v);
        } else if known && next.get(&k).copied().unwrap_or(0) != v {
            return None;
        }
    }
    Some(next)
}

/// Whether some order real time allows, of every ok txn and any of the info
/// ones, is a legal run: tries them all.
fn brute_force(txns: &[Txn], at: &[(u32, u32)]) -> bool {
    fn go(
        txns: &[Txn],
        at: &[(u32, u32)],
        placed: &mut Vec<bool>,
        state: &BTreeMap<u8, u8>,
    ) -> bool {
        let pending: Vec<usize> = (0..txns.len())
            .filter(|&i| !placed[i] && txns[i].end == 0)
            .collect();
        if pending.is_empty() {
            return true;
        }
        for i in 0..txns.len() {
            if placed[i] || txns[i].end == 2 {
                continue;
            }
            // It may come next unless some unplaced ok txn returned before it
            // was called.
            if pending.iter().any(|&j| j != i && at[j].1 < at[i].0) {
                continue;
            }
            let Some(next) = apply(state, &txns[i], txns[i].end == 0) else {
                continue;
            };
            placed[i] = true;
            let found = go(txns, at, placed, &next);
            placed[i] = false;
            if found {
                return true;
            }
        }
        false
    }
    go(txns, at, &mut vec![false; txns.len()], &BTreeMap::new())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn multi_register_verdicts_match_a_brute_force_search(
        txns in prop::collection::vec(txn(), 1..7)
    ) {
        prop_assume!(txns.iter().any(|t| t.end == 0));
        let (events, at) = events_of(&txns);
        let r = check_linearizability(&events, ModelKind::MultiRegister, Limits::none());
        let want = if brute_force(&txns, &at) { Validity::Valid } else { Validity::Invalid };
        prop_assert_eq!(r.validity, want, "{:#?}\n{:#?}", events, r);
    }
}

/// The model itself, on a txn whose read follows its own write.
#[test]
fn the_model_reads_a_transaction_s_own_writes() {
    let m = MultiRegister::<i64>::new(vec!["x".into()]);
    let txn = vec![Micro::Write(0, 2), Micro::Read(0)];
    assert!(
        m.step(&m.init(), &txn, Some(&vec![None, Some(Some(2))]))
            .is_some()
    );
    assert!(
        m.step(&m.init(), &txn, Some(&vec![None, Some(None)]))
            .is_none()
    );
}
