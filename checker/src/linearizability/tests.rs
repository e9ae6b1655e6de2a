use std::time::Duration;

use serde_json::{Value, json};

use super::*;
use crate::event::{Event, EventType, Process};
use crate::test_support::{Builder, seed_scenario};
use crate::verdict::{Anomaly, CheckReport, Validity};

const INFO: u64 = u64::MAX;

fn op<I, O>(id: u64, call: u64, ret: u64, input: I, output: Option<O>) -> Operation<I, O> {
    Operation {
        id,
        process: Process::Client(id),
        call,
        ret,
        input,
        output,
    }
}

fn read(id: u64, call: u64, ret: u64, v: Option<i64>) -> Operation<CasOp<i64>, Option<i64>> {
    op(id, call, ret, CasOp::Read, Some(v))
}

fn write(id: u64, call: u64, ret: u64, v: i64) -> Operation<CasOp<i64>, Option<i64>> {
    op(id, call, ret, CasOp::Write(v), Some(None))
}

fn write_info(id: u64, call: u64, v: i64) -> Operation<CasOp<i64>, Option<i64>> {
    op(id, call, INFO, CasOp::Write(v), None)
}

fn cas(
    id: u64,
    call: u64,
    ret: u64,
    expected: i64,
    new: i64,
) -> Operation<CasOp<i64>, Option<i64>> {
    op(id, call, ret, CasOp::Cas { expected, new }, Some(None))
}

fn result(ops: &[Operation<CasOp<i64>, Option<i64>>]) -> Linearizability {
    check_operations(&CasRegister::<i64>::new(), ops, Limits::none()).result
}

fn valid(ops: &[Operation<CasOp<i64>, Option<i64>>]) -> bool {
    match result(ops) {
        Linearizability::Linearizable => true,
        Linearizability::NotLinearizable(_) => false,
        Linearizability::Unknown(hit) => panic!("{hit}"),
    }
}

#[test]
fn a_stale_read_is_not_linearizable() {
    let ops = [
        write(0, 0, 10, 1),
        write(1, 20, 30, 2),
        read(2, 40, 50, Some(1)),
    ];
    let Linearizability::NotLinearizable(cex) = result(&ops) else {
        panic!()
    };
    assert_eq!(cex.linearized, [0, 1]);
    assert_eq!(cex.state, "2");
    assert_eq!(cex.stuck, [2]);
    assert_eq!(cex.stuck_described, ["read -> 1"]);
    assert_eq!(cex.partition, "");
}

#[test]
fn a_read_concurrent_with_a_write_may_see_either_value() {
    for seen in [Some(1), Some(2)] {
        let ops = [
            write(0, 0, 10, 1),
            write(1, 20, 40, 2),
            read(2, 25, 35, seen),
        ];
        assert!(valid(&ops), "{seen:?}");
    }
    // Not a value never written, nor the empty register after a write.
    assert!(!valid(&[
        write(0, 0, 10, 1),
        write(1, 20, 40, 2),
        read(2, 25, 35, Some(3))
    ]));
    assert!(!valid(&[write(0, 0, 10, 1), read(2, 25, 35, None)]));
    // Intervals that only touch are concurrent.
    assert!(valid(&[write(0, 0, 10, 1), read(1, 10, 20, None)]));
    assert!(!valid(&[write(0, 0, 10, 1), read(1, 11, 20, None)]));
}

#[test]
fn an_unknown_write_may_or_may_not_have_happened_but_not_both() {
    let base = || vec![write(0, 0, 10, 1), write_info(1, 20, 2)];
    for seen in [1, 2] {
        let mut ops = base();
        ops.push(read(2, 100, 110, Some(seen)));
        assert!(valid(&ops), "read {seen}");
    }
    // Seen, then gone: it happened, and nothing wrote 1 again.
    let mut ops = base();
    ops.push(read(2, 100, 110, Some(2)));
    ops.push(read(3, 120, 130, Some(1)));
    let Linearizability::NotLinearizable(cex) = result(&ops) else {
        panic!()
    };
    assert_eq!(cex.linearized, [0, 1, 2]);
    assert_eq!(cex.stuck, [3]);
    // Still fine if the read of 1 came first.
    let mut ops = base();
    ops.push(read(2, 100, 110, Some(1)));
    ops.push(read(3, 120, 130, Some(2)));
    assert!(valid(&ops));
    // An unknown write cannot take effect before it was invoked.
    let ops = [
        write(0, 0, 10, 1),
        read(1, 12, 18, Some(2)),
        write_info(2, 20, 2),
    ];
    assert!(!valid(&ops));
}

#[test]
fn unknown_operations_alone_are_linearizable() {
    let ops = [
        write_info(0, 0, 1),
        op(1, 5, INFO, CasOp::Read, None),
        op(
            2,
            5,
            INFO,
            CasOp::Cas {
                expected: 7,
                new: 8,
            },
            None,
        ),
    ];
    let a = check_operations(&CasRegister::<i64>::new(), &ops, Limits::none());
    assert_eq!(a.result, Linearizability::Linearizable);
    // The unknown read is left out.
    assert_eq!(a.ops, 2);
}

#[test]
fn cas_succeeds_only_on_the_expected_value() {
    assert!(valid(&[
        write(0, 0, 10, 1),
        cas(1, 20, 30, 1, 2),
        read(2, 40, 50, Some(2))
    ]));
    assert!(!valid(&[write(0, 0, 10, 1), cas(1, 20, 30, 3, 2)]));
    // Two concurrent cas from the same value cannot both succeed...
    assert!(!valid(&[
        write(0, 0, 10, 1),
        cas(1, 20, 30, 1, 2),
        cas(2, 20, 30, 1, 3)
    ]));
    // ...but they can chain.
    assert!(valid(&[
        write(0, 0, 10, 1),
        cas(1, 20, 30, 1, 2),
        cas(2, 20, 30, 2, 3)
    ]));
    // An unknown cas may explain a later read.
    let ops = [
        write(0, 0, 10, 1),
        op(
            1,
            20,
            INFO,
            CasOp::Cas {
                expected: 1,
                new: 5,
            },
            None,
        ),
        read(2, 40, 50, Some(5)),
    ];
    assert!(valid(&ops));
}

#[test]
fn a_plain_mutex_cannot_be_acquired_twice() {
    let m = |id, call, ret, input| op(id, call, ret, input, Some(()));
    let ok = [
        m(0, 0, 10, MutexOp::Acquire),
        m(1, 5, 30, MutexOp::Acquire),
        m(2, 12, 20, MutexOp::Release),
    ];
    let a = check_operations(&Mutex, &ok, Limits::none());
    assert_eq!(a.result, Linearizability::Linearizable);
    let twice = [
        m(0, 0, 10, MutexOp::Acquire),
        m(1, 15, 30, MutexOp::Acquire),
    ];
    let Linearizability::NotLinearizable(cex) =
        check_operations(&Mutex, &twice, Limits::none()).result
    else {
        panic!()
    };
    assert_eq!(cex.state, "held");
    assert_eq!(cex.stuck_described, ["acquire"]);
    // An unknown release may explain the second acquire.
    let released = [
        m(0, 0, 10, MutexOp::Acquire),
        op(2, 11, INFO, MutexOp::Release, None),
        m(1, 15, 30, MutexOp::Acquire),
    ];
    let a = check_operations(&Mutex, &released, Limits::none());
    assert_eq!(a.result, Linearizability::Linearizable);
}

fn acquire(
    id: u64,
    client: u32,
    call: u64,
    ret: u64,
    token: Option<u64>,
) -> Operation<LockOp, Option<u64>> {
    op(
        id,
        call,
        ret,
        LockOp::Acquire {
            client,
            sent: call,
            done: ret,
            ttl: None,
        },
        Some(token),
    )
}

fn release(
    id: u64,
    client: u32,
    call: u64,
    ret: u64,
    token: u64,
) -> Operation<LockOp, Option<u64>> {
    op(
        id,
        call,
        ret,
        LockOp::Release {
            client,
            token: Some(token),
        },
        Some(None),
    )
}

#[test]
fn a_fenced_mutex_token_must_not_go_back() {
    let m = FencedMutex::with_clients(vec!["w0".into(), "w1".into()]);
    let ok = [
        acquire(0, 0, 0, 10, Some(3)),
        release(1, 0, 20, 30, 3),
        acquire(2, 1, 40, 50, Some(4)),
    ];
    assert_eq!(
        check_operations(&m, &ok, Limits::none()).result,
        Linearizability::Linearizable
    );
    let back = [
        acquire(0, 0, 0, 10, Some(3)),
        release(1, 0, 20, 30, 3),
        acquire(2, 1, 40, 50, Some(2)),
    ];
    let Linearizability::NotLinearizable(cex) = check_operations(&m, &back, Limits::none()).result
    else {
        panic!()
    };
    assert_eq!(cex.linearized, [0, 1]);
    assert_eq!(cex.state, "free, last token 3");
    assert_eq!(cex.stuck_described, ["acquire by w1 -> token 2"]);
    // Someone else's release does not free it.
    let stolen = [
        acquire(0, 0, 0, 10, Some(3)),
        release(1, 1, 20, 30, 3),
        acquire(2, 1, 40, 50, Some(4)),
    ];
    assert!(matches!(
        check_operations(&m, &stolen, Limits::none()).result,
        Linearizability::NotLinearizable(_)
    ));
}

/// A history that needs a wide search: concurrent writes, then a read none of
/// them explains. Every subset of the writes, with each of them last, is a
/// point of its own.
fn hard_history(n: u64) -> Vec<Operation<CasOp<i64>, Option<i64>>> {
    let mut ops: Vec<_> = (0..n).map(|i| write(i, i, 1000 + i, i as i64)).collect();
    ops.push(read(n, 2000, 2010, Some(-1)));
    ops
}

#[test]
fn limits_give_unknown() {
    let ops = hard_history(14);
    let limited = Limits {
        deadline: None,
        max_states: Some(100),
    };
    let a = check_operations(&CasRegister::<i64>::new(), &ops, limited);
    assert_eq!(a.result, Linearizability::Unknown(LimitHit::MaxStates));
    assert!(a.states <= 101);
    let limited = Limits {
        deadline: Some(Duration::ZERO),
        max_states: None,
    };
    let a = check_operations(&CasRegister::<i64>::new(), &ops, limited);
    assert_eq!(a.result, Linearizability::Unknown(LimitHit::Deadline));
    // Without limits it finishes, and visits each (set, state) once.
    let a = check_operations(
        &CasRegister::<i64>::new(),
        &hard_history(10),
        Limits::none(),
    );
    assert!(matches!(a.result, Linearizability::NotLinearizable(_)));
    assert!(a.states <= 1 << (10 + 4), "{}", a.states);
}

#[test]
fn partitions_are_checked_apart_and_combined() {
    let model = CasRegister::<i64>::new();
    let good = || vec![write(0, 0, 10, 1), read(1, 20, 30, Some(1))];
    let bad = vec![write(2, 0, 10, 1), read(3, 20, 30, Some(2))];
    let partitions = vec![
        Partition {
            key: "a".into(),
            ops: good(),
        },
        Partition {
            key: "b".into(),
            ops: bad,
        },
        Partition {
            key: "c".into(),
            ops: hard_history(12),
        },
        Partition {
            key: "d".into(),
            ops: good(),
        },
    ];
    let limits = Limits {
        deadline: None,
        max_states: Some(50),
    };
    let analyses = check_partitions(&model, &partitions, limits);
    let keys: Vec<_> = analyses.iter().map(|a| a.partition.as_str()).collect();
    assert_eq!(keys, ["a", "b", "c", "d"]);
    let verdicts: Vec<_> = analyses.iter().map(|a| a.result.validity()).collect();
    assert_eq!(
        verdicts,
        [
            Validity::Valid,
            Validity::Invalid,
            Validity::Unknown,
            Validity::Valid
        ]
    );
    let Linearizability::NotLinearizable(cex) = &analyses[1].result else {
        panic!()
    };
    assert_eq!(cex.partition, "b");
    assert_eq!(combine_analyses(&analyses), Validity::Invalid);
    assert_eq!(
        combine_analyses(&[analyses[0].clone(), analyses[2].clone()]),
        Validity::Unknown
    );
    assert_eq!(
        combine_analyses(&[analyses[0].clone(), analyses[3].clone()]),
        Validity::Valid
    );
    assert_eq!(combine_analyses(&[]), Validity::Valid);
}

// ---------------------------------------------------------------------------
// Histories

fn ev(index: u64, process: u64, kind: EventType, f: &str, value: Value) -> Event {
    Event {
        index,
        time: 0,
        process: Process::Client(process),
        node: None,
        kind,
        f: f.into(),
        value,
        error: None,
    }
}

/// Jepsen-style events: (process, type, f, value), indexes in order, no times.
fn jepsen(events: &[(u64, EventType, &str, Value)]) -> Vec<Event> {
    events
        .iter()
        .enumerate()
        .map(|(i, (p, k, f, v))| ev(i as u64, *p, *k, f, v.clone()))
        .collect()
}

use EventType::{Fail, Info, Invoke, Ok as Done};

#[test]
fn jepsen_cas_register_history() {
    let events = jepsen(&[
        (0, Invoke, "write", json!(1)),
        (0, Done, "write", json!(1)),
        (1, Invoke, "cas", json!([1, 2])),
        (2, Invoke, "read", Value::Null),
        (1, Done, "cas", json!([1, 2])),
        (2, Done, "read", json!(2)),
        (0, Invoke, "cas", json!([4, 0])),
        (0, Fail, "cas", json!([4, 0])),
        (3, Invoke, "write", json!(3)),
        (3, Info, "write", json!(3)),
        (4, Invoke, "read", Value::Null),
        (4, Info, "read", Value::Null),
    ]);
    let r = check_linearizability(&events, ModelKind::CasRegister, Limits::none());
    assert_eq!(r.validity, Validity::Valid, "{r:#?}");
    assert_eq!(r.name, "linearizability");
    assert_eq!(r.stats["partitions"], 1);
    assert_eq!(r.stats["ops"], 4);
    assert_eq!(r.stats["failed_ops"], 1);
    assert_eq!(r.stats["unknown_ops"], 2);
    assert!(
        r.summary
            .starts_with("linearizable under the cas-register model (1 key, 4 operations"),
        "{}",
        r.summary
    );

    // The register model has no cas: it cannot vouch for this history.
    let r = check_linearizability(&events, ModelKind::Register, Limits::none());
    assert_eq!(r.validity, Validity::Unknown, "{r:#?}");
    assert_eq!(r.stats["unreadable_ops"], 1);

    // A read that flips back.
    let mut events = events;
    let n = events.len() as u64;
    events.push(ev(n, 5, Invoke, "read", Value::Null));
    events.push(ev(n + 1, 5, Done, "read", json!(1)));
    let r = check_linearizability(&events, ModelKind::CasRegister, Limits::none());
    assert_eq!(r.validity, Validity::Invalid);
    let Anomaly::NonLinearizable {
        model,
        partition,
        stuck,
        ops,
        ..
    } = &r.anomalies[0]
    else {
        panic!("{r:#?}")
    };
    assert_eq!(model, "cas-register");
    assert_eq!(partition, "");
    assert!(stuck.contains(&n), "{stuck:?}");
    assert!(ops.contains(&n));
    let explained = r.anomalies[0].explain();
    assert!(
        explained.contains(&format!("read -> 1 (#{n})")),
        "{explained}"
    );
    assert_eq!(r.anomalies[0].kind(), "non-linearizable");
    assert!(r.anomalies[0].is_certain());
}

#[test]
fn jepsen_independent_histories_split_per_key() {
    let events = jepsen(&[
        (0, Invoke, "write", json!(["a", 1])),
        (1, Invoke, "write", json!(["b", 1])),
        (0, Done, "write", json!(["a", 1])),
        (1, Done, "write", json!(["b", 1])),
        (0, Invoke, "cas", json!(["a", [1, 2]])),
        (0, Done, "cas", json!(["a", [1, 2]])),
        (1, Invoke, "read", json!(["b", null])),
        (1, Done, "read", json!(["b", 1])),
        (2, Invoke, "read", json!(["a", null])),
        (2, Done, "read", json!(["a", 1])),
    ]);
    let r = check_linearizability(&events, ModelKind::CasRegister, Limits::none());
    assert_eq!(r.validity, Validity::Invalid, "{r:#?}");
    assert_eq!(r.stats["partitions"], 2);
    assert_eq!(r.stats["invalid_partitions"], json!(["a"]));
    assert!(r.summary.contains("key \"a\""), "{}", r.summary);
    let Anomaly::NonLinearizable {
        partition,
        linearized,
        ..
    } = &r.anomalies[0]
    else {
        panic!()
    };
    assert_eq!(partition, "a");
    assert_eq!(linearized, &[0, 4]);
}

/// The verdicts of `cas-register` and `cas-register-strict` on `events`.
fn lenient_and_strict(events: &[Event]) -> (CheckReport, CheckReport) {
    (
        check_linearizability(events, ModelKind::CasRegister, Limits::none()),
        check_linearizability(events, ModelKind::CasRegisterStrict, Limits::none()),
    )
}

#[test]
fn a_cas_that_failed_on_its_expected_value_is_caught_only_by_the_strict_model() {
    // The register holds 1 throughout; a cas [1 2] fails while nothing else
    // happens.
    let events = jepsen(&[
        (0, Invoke, "write", json!(1)),
        (0, Done, "write", json!(1)),
        (1, Invoke, "cas", json!([1, 2])),
        (1, Fail, "cas", json!([1, 2])),
        (2, Invoke, "read", Value::Null),
        (2, Done, "read", json!(1)),
    ]);
    let (lenient, strict) = lenient_and_strict(&events);
    assert_eq!(lenient.validity, Validity::Valid, "{lenient:#?}");
    assert_eq!(lenient.stats["failed_ops"], 1);
    assert_eq!(lenient.stats["ops"], 2);
    assert_eq!(strict.validity, Validity::Invalid, "{strict:#?}");
    assert_eq!(strict.stats["failed_ops"], 0);
    assert_eq!(strict.stats["ops"], 3);
    assert_eq!(strict.stats["model"], "cas-register-strict");
    let Anomaly::NonLinearizable {
        model,
        linearized,
        state,
        stuck,
        stuck_described,
        ..
    } = &strict.anomalies[0]
    else {
        panic!("{strict:#?}")
    };
    assert_eq!(model, "cas-register-strict");
    assert_eq!(linearized, &[0]);
    assert_eq!(state, "1");
    assert_eq!(stuck, &[2]);
    assert_eq!(
        stuck_described,
        &["cas 1 -> 2 failed (the value was not 1)"]
    );
    assert!(
        strict
            .summary
            .starts_with("not linearizable under the cas-register-strict model: key \"\""),
        "{}",
        strict.summary
    );
}

#[test]
fn a_cas_that_failed_on_another_value_is_linearizable_under_both_models() {
    let events = jepsen(&[
        (0, Invoke, "write", json!(1)),
        (0, Done, "write", json!(1)),
        (1, Invoke, "cas", json!([2, 3])),
        (1, Fail, "cas", json!([2, 3])),
        (2, Invoke, "read", Value::Null),
        (2, Done, "read", json!(1)),
        // On an empty key too: it holds no value, so not 5.
        (0, Invoke, "cas", json!(["fresh", [5, 6]])),
        (0, Fail, "cas", json!(["fresh", [5, 6]])),
    ]);
    let (lenient, strict) = lenient_and_strict(&events);
    assert_eq!(lenient.validity, Validity::Valid, "{lenient:#?}");
    assert_eq!(strict.validity, Validity::Valid, "{strict:#?}");
    assert_eq!(strict.stats["partitions"], 2);
    assert_eq!(strict.stats["ops"], 4);
}

#[test]
fn a_failed_cas_may_come_anywhere_within_its_interval_and_only_there() {
    // Concurrent with a write of 3: the cas [1 2] may have compared after it.
    let concurrent = jepsen(&[
        (0, Invoke, "write", json!(1)),
        (0, Done, "write", json!(1)),
        (1, Invoke, "cas", json!([1, 2])),
        (0, Invoke, "write", json!(3)),
        (0, Done, "write", json!(3)),
        (1, Fail, "cas", json!([1, 2])),
    ]);
    let (lenient, strict) = lenient_and_strict(&concurrent);
    assert_eq!(lenient.validity, Validity::Valid);
    assert_eq!(strict.validity, Validity::Valid, "{strict:#?}");

    // The same write after the cas failed: the cas saw 1, which is no failure.
    let mut before = concurrent.clone();
    before.swap(3, 5);
    before.swap(4, 5);
    for (i, e) in before.iter_mut().enumerate() {
        e.index = i as u64;
    }
    assert_eq!(before[3].kind, Fail);
    let (lenient, strict) = lenient_and_strict(&before);
    assert_eq!(lenient.validity, Validity::Valid);
    assert_eq!(strict.validity, Validity::Invalid, "{strict:#?}");

    // With times, the same: the fail event ends its interval.
    let mut timed = before;
    for e in &mut timed {
        e.time = 1_000 * (e.index + 1);
    }
    let (_, strict) = lenient_and_strict(&timed);
    assert_eq!(strict.validity, Validity::Invalid, "{strict:#?}");
}

#[test]
fn unknown_cas_may_or_may_not_have_applied_under_the_strict_model_too() {
    let events = jepsen(&[
        (0, Invoke, "write", json!(1)),
        (0, Done, "write", json!(1)),
        (1, Invoke, "cas", json!([1, 2])),
        (1, Info, "cas", json!([1, 2])),
        (2, Invoke, "read", Value::Null),
        (2, Done, "read", json!(1)),
        (2, Invoke, "read", Value::Null),
        (2, Done, "read", json!(2)),
    ]);
    let (lenient, strict) = lenient_and_strict(&events);
    assert_eq!(lenient.validity, Validity::Valid);
    assert_eq!(strict.validity, Validity::Valid, "{strict:#?}");
    assert_eq!(strict.stats["unknown_ops"], 1);
    // It cannot undo itself: 2, then 1 again.
    let mut events = events;
    events[5].value = json!(2);
    events[7].value = json!(1);
    let (lenient, strict) = lenient_and_strict(&events);
    assert_eq!(lenient.validity, Validity::Invalid);
    assert_eq!(strict.validity, Validity::Invalid);
}

#[test]
fn an_unreadable_failed_cas_makes_the_strict_verdict_unknown() {
    // A failed cas from nothing: the lenient model drops it like any fail;
    // the strict one cannot read what it observed.
    let events = jepsen(&[
        (0, Invoke, "write", json!(1)),
        (0, Done, "write", json!(1)),
        (1, Invoke, "cas", json!([null, 2])),
        (1, Fail, "cas", json!([null, 2])),
    ]);
    let (lenient, strict) = lenient_and_strict(&events);
    assert_eq!(lenient.validity, Validity::Valid);
    assert_eq!(lenient.stats["unreadable_ops"], 0);
    assert_eq!(strict.validity, Validity::Unknown, "{strict:#?}");
    assert_eq!(strict.stats["unreadable_ops"], 1);
}

#[test]
fn jepsen_mutex_histories() {
    let events = jepsen(&[
        (0, Invoke, "acquire", Value::Null),
        (0, Done, "acquire", Value::Null),
        (1, Invoke, "acquire", Value::Null),
        (0, Invoke, "release", Value::Null),
        (0, Done, "release", Value::Null),
        (1, Done, "acquire", Value::Null),
        (2, Invoke, "acquire", Value::Null),
        (2, Fail, "acquire", Value::Null),
    ]);
    for kind in [ModelKind::Mutex, ModelKind::FencedMutex] {
        let r = check_linearizability(&events, kind, Limits::none());
        assert_eq!(r.validity, Validity::Valid, "{kind}: {r:#?}");
    }
    let events = jepsen(&[
        (0, Invoke, "acquire", Value::Null),
        (0, Done, "acquire", Value::Null),
        (1, Invoke, "acquire", Value::Null),
        (1, Done, "acquire", Value::Null),
    ]);
    for kind in [ModelKind::Mutex, ModelKind::FencedMutex] {
        let r = check_linearizability(&events, kind, Limits::none());
        assert_eq!(r.validity, Validity::Invalid, "{kind}: {r:#?}");
    }
    // The plain mutex does not care who releases; the fenced one does.
    let events = jepsen(&[
        (0, Invoke, "acquire", Value::Null),
        (0, Done, "acquire", Value::Null),
        (1, Invoke, "release", Value::Null),
        (1, Done, "release", Value::Null),
    ]);
    let r = check_linearizability(&events, ModelKind::Mutex, Limits::none());
    assert_eq!(r.validity, Validity::Valid);
    let r = check_linearizability(&events, ModelKind::FencedMutex, Limits::none());
    assert_eq!(r.validity, Validity::Invalid);
}

#[test]
fn model_kinds_parse_from_their_names() {
    for kind in ModelKind::ALL {
        assert_eq!(kind.name().parse::<ModelKind>(), Ok(kind));
        assert_eq!(kind.to_string(), kind.name());
    }
    let err = "knossos".parse::<ModelKind>().unwrap_err();
    assert!(err.to_string().contains("cas-register"), "{err}");
}

#[test]
fn seed_scenario_lock_is_linearizable_because_the_lease_expired() {
    for fencing in [false, true] {
        let b = seed_scenario(fencing);
        let reports = check_leasehold_linearizability(&b.ops(), Limits::none());
        let names: Vec<_> = reports.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["linearizability-storage", "linearizability-lock"]);
        for r in &reports {
            assert_eq!(r.validity, Validity::Valid, "{r:#?}");
        }
        // As a plain mutex (no leases, no releases of 33) it is not.
        let r = check_linearizability(&b.events, ModelKind::Mutex, Limits::none());
        assert_eq!(r.validity, Validity::Invalid, "{r:#?}");
        let r = check_linearizability(&b.events, ModelKind::LeaseholdLock, Limits::none());
        assert_eq!(r.validity, Validity::Valid, "{r:#?}");
    }
}

#[test]
fn leasehold_lock_grant_before_the_lease_ran_out_is_caught() {
    let mut b = Builder::new();
    b.acquire(1, "L", 33, 2000, 0, 1);
    // Granted and answered 1.5 s into a 2 s lease.
    b.acquire(2, "L", 34, 2000, 1000, 1500);
    let reports = check_leasehold_linearizability(&b.ops(), Limits::none());
    // No storage operation: nothing judged there.
    assert_eq!(reports[0].validity, Validity::Unknown);
    assert_eq!(reports[0].stats["partitions"], 0);
    let lock = &reports[1];
    assert_eq!(lock.validity, Validity::Invalid, "{lock:#?}");
    let Anomaly::NonLinearizable {
        model,
        partition,
        linearized,
        state,
        stuck,
        stuck_described,
        ..
    } = &lock.anomalies[0]
    else {
        panic!()
    };
    assert_eq!(model, "leasehold-lock");
    assert_eq!(partition, "L");
    assert_eq!(linearized, &[0]);
    assert_eq!(
        state,
        "held by w1 with token 33 until 2000000000, last token 33"
    );
    assert_eq!(stuck, &[2]);
    assert_eq!(stuck_described, &["acquire by w2 -> token 34"]);
    // A renew by the old holder after the new grant is a violation too, and a
    // renew before it keeps the lease.
    let mut b = Builder::new();
    b.acquire(1, "L", 33, 2000, 0, 1);
    b.renew(1, "L", 33, 2000, 1500, Some((1510, EventType::Ok)));
    b.acquire(2, "L", 34, 2000, 2100, 2200);
    let r = check_linearizability(&b.events, ModelKind::LeaseholdLock, Limits::none());
    assert_eq!(r.validity, Validity::Invalid, "{r:#?}");
    let mut b = Builder::new();
    b.acquire(1, "L", 33, 2000, 0, 1);
    b.acquire(2, "L", 34, 2000, 2100, 2200);
    b.renew(1, "L", 33, 2000, 2300, Some((2310, EventType::Ok)));
    let r = check_linearizability(&b.events, ModelKind::LeaseholdLock, Limits::none());
    assert_eq!(r.validity, Validity::Invalid, "{r:#?}");
}

#[test]
fn leasehold_lock_unknown_acquire_uses_the_lease_it_asked_for() {
    // w1's acquire times out but was granted with a 2 s lease; w2 gets the
    // lock 1 s later. From the events (ttl_ms of the invocation) that is a
    // violation only if w1's acquire took effect, which it need not have.
    let mut b = Builder::new();
    b.invoke(1, 0, "acquire", json!({"lock": "L", "ttl_ms": 2000}));
    b.complete(1, 500, EventType::Info, "acquire", Value::Null);
    b.acquire(2, "L", 34, 2000, 1000, 1100);
    b.release(2, "L", 34, 1200, 1300);
    let r = check_linearizability(&b.events, ModelKind::LeaseholdLock, Limits::none());
    assert_eq!(r.validity, Validity::Valid, "{r:#?}");
    assert_eq!(r.stats["unknown_ops"], 1);
    // But w1 then renewing 33 says it did take effect, with token 33 < 34.
    b.renew(1, "L", 33, 2000, 1400, Some((1410, EventType::Ok)));
    let r = check_linearizability(&b.events, ModelKind::LeaseholdLock, Limits::none());
    assert_eq!(r.validity, Validity::Invalid, "{r:#?}");
    // With token 35 it may have been granted after w2's release.
    let mut b2 = Builder::new();
    b2.events = b.events[..b.events.len() - 2].to_vec();
    b2.renew(1, "L", 35, 2000, 1400, Some((1410, EventType::Ok)));
    let r = check_linearizability(&b2.events, ModelKind::LeaseholdLock, Limits::none());
    assert_eq!(r.validity, Validity::Valid, "{r:#?}");
}

#[test]
fn leasehold_storage_reads_must_see_the_last_accepted_write() {
    let mut b = Builder::new();
    b.write(1, "k", 33, "w1-1", 0, 10, EventType::Ok);
    b.write(2, "k", 34, "w2-1", 20, 30, EventType::Ok);
    // Rejected: certainly not there.
    b.write(1, "k", 33, "w1-2", 40, 50, EventType::Fail);
    b.invoke(3, 60, "read", json!({"key": "k"}));
    b.complete(
        3,
        70,
        EventType::Ok,
        "read",
        json!({"key": "k", "token": 34, "data": "w2-1"}),
    );
    b.invoke(3, 60, "read", json!({"key": "j"}));
    b.complete(3, 70, EventType::Ok, "read", json!({"key": "j"}));
    let r = &check_leasehold_linearizability(&b.ops(), Limits::none())[0];
    assert_eq!(r.validity, Validity::Valid, "{r:#?}");
    assert_eq!(r.stats["partitions"], 2);
    assert_eq!(r.stats["failed_ops"], 1);

    b.invoke(3, 80, "read", json!({"key": "k"}));
    b.complete(
        3,
        90,
        EventType::Ok,
        "read",
        json!({"key": "k", "token": 33, "data": "w1-2"}),
    );
    let r = check_linearizability(&b.events, ModelKind::LeaseholdStorage, Limits::none());
    assert_eq!(r.validity, Validity::Invalid, "{r:#?}");
    let Anomaly::NonLinearizable {
        state,
        stuck_described,
        ..
    } = &r.anomalies[0]
    else {
        panic!()
    };
    assert_eq!(state, "\"w2-1\" (token 34)");
    assert_eq!(stuck_described, &["read -> \"w1-2\" (token 33)"]);
}

#[test]
fn times_fall_back_to_positions() {
    // Events without times: the order of the history is real time.
    let events = jepsen(&[
        (0, Invoke, "write", json!(1)),
        (0, Done, "write", json!(1)),
        (1, Invoke, "read", Value::Null),
        (1, Done, "read", Value::Null),
    ]);
    let r = check_linearizability(&events, ModelKind::Register, Limits::none());
    assert_eq!(r.validity, Validity::Invalid, "{r:#?}");
}

mod phases {
    use proptest::prelude::*;

    use super::*;
    use crate::linearizability::search::search_with_budget;

    type KeyedOp = Operation<CasOp<i64>, Option<i64>>;

    /// Random small histories, often not linearizable, many unknown ops.
    fn history() -> impl Strategy<Value = Vec<KeyedOp>> {
        prop::collection::vec(
            (0u8..3, 0i64..3, 0i64..3, 0u64..80, 1u64..40, 0u8..6),
            1..14,
        )
        .prop_map(|ops| {
            ops.into_iter()
                .enumerate()
                .map(|(i, (kind, a, b, call, len, fate))| {
                    let input = match kind {
                        0 => CasOp::Read,
                        1 => CasOp::Write(a),
                        _ => CasOp::Cas {
                            expected: a,
                            new: b,
                        },
                    };
                    let output = match (fate, &input) {
                        (0 | 1, _) => None,
                        (_, CasOp::Read) => Some((fate > 2).then_some(b)),
                        _ => Some(None),
                    };
                    let ret = if output.is_some() { call + len } else { INFO };
                    op(i as u64, call, ret, input, output)
                })
                .collect()
        })
    }

    /// The prefix replays in real-time order and every stuck op is refused.
    fn sound(ops: &[KeyedOp], cex: &Counterexample) {
        let m = CasRegister::<i64>::new();
        let by_id = |id: u64| ops.iter().find(|o| o.id == id).unwrap();
        let mut state = m.init();
        for (k, &id) in cex.linearized.iter().enumerate() {
            let o = by_id(id);
            state = m
                .step(&state, &o.input, o.output.as_ref())
                .expect("legal prefix");
            for &later in &cex.linearized[k + 1..] {
                let l = by_id(later);
                assert!(l.output.is_none() || l.ret >= o.call, "real-time order");
            }
        }
        assert_eq!(m.describe_state(&state), cex.state);
        assert!(!cex.stuck.is_empty());
        for &id in &cex.stuck {
            let o = by_id(id);
            assert!(m.step(&state, &o.input, o.output.as_ref()).is_none());
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// The second phase (by number of unknown ops) and the first (depth
        /// first) agree, and both give sound counterexamples.
        #[test]
        fn both_phases_agree(ops in history()) {
            let m = CasRegister::<i64>::new();
            let limits = Limits::none();
            let first = search_with_budget(&m, &ops, &limits, None, "", usize::MAX);
            let second = search_with_budget(&m, &ops, &limits, None, "", 0);
            prop_assert_eq!(first.result.validity(), second.result.validity());
            for r in [&first.result, &second.result] {
                if let Linearizability::NotLinearizable(cex) = r {
                    sound(&ops, cex);
                }
            }
        }
    }
}

mod lock_phases {
    use proptest::prelude::*;

    use super::*;
    use crate::linearizability::search::search_with_budget;

    /// Random small fenced-mutex histories, often not linearizable.
    fn history() -> impl Strategy<Value = Vec<Operation<LockOp, Option<u64>>>> {
        prop::collection::vec(
            (0u8..3, 0u32..3, 1u64..5, 0u64..80, 1u64..40, 0u8..5),
            1..12,
        )
        .prop_map(|ops| {
            ops.into_iter()
                .enumerate()
                .map(|(i, (kind, client, token, call, len, fate))| {
                    let known = fate > 1;
                    let ret = if known { call + len } else { INFO };
                    let ttl = (fate == 4).then_some(30);
                    let input = match kind {
                        0 => LockOp::Acquire {
                            client,
                            sent: call,
                            done: ret,
                            ttl,
                        },
                        1 => LockOp::Renew {
                            client,
                            token: Some(token),
                            sent: call,
                            ttl,
                        },
                        _ => LockOp::Release {
                            client,
                            token: Some(token),
                        },
                    };
                    op(i as u64, call, ret, input, known.then_some(Some(token)))
                })
                .collect()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        #[test]
        fn both_phases_agree_on_locks(ops in history()) {
            let m = FencedMutex::new();
            let limits = Limits::none();
            let first = search_with_budget(&m, &ops, &limits, None, "", usize::MAX);
            let second = search_with_budget(&m, &ops, &limits, None, "", 0);
            prop_assert_eq!(first.result.validity(), second.result.validity());
            for r in [&first.result, &second.result] {
                if let Linearizability::NotLinearizable(cex) = r {
                    let mut state = m.init();
                    for id in &cex.linearized {
                        let o = &ops[*id as usize];
                        state = m.step(&state, &o.input, o.output.as_ref()).expect("legal prefix");
                    }
                    for id in &cex.stuck {
                        let o = &ops[*id as usize];
                        prop_assert!(m.step(&state, &o.input, o.output.as_ref()).is_none());
                    }
                }
            }
        }
    }
}
