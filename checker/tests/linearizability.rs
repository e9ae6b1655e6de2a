//! Linearizability: properties of the search on generated histories.
//!
//! - A history generated from a sequential run of the model, then made
//!   concurrent by widening every interval around its linearization point, is
//!   always linearizable — through the `Operation` API and through events.
//! - A violation injected into such a history is caught, and the counterexample
//!   is sound: its prefix replays through the model in real-time order, and no
//!   stuck operation can come next.
//! - Checking per key gives the same verdict as one search over all keys.
//! - On small concurrent histories shaped like Jepsen's etcd tests (failed cas
//!   included), `cas-register-strict` and `cas-register` give the verdicts of
//!   a brute-force search over every real-time order and every choice of which
//!   unknown operations took effect; without failed cas they agree.

use std::collections::BTreeMap;
use std::time::Duration;

use leasehold_checker::{
    Anomaly, CasOp, CasRegister, Event, EventType, FencedMutex, IGNORED_SHARE_PERCENT, LimitHit,
    Limits, Linearizability, LockOp, Model, ModelKind, Mutex, MutexOp, Operation, Partition,
    Process, Validity, check_linearizability, check_operations, check_partitions, combine_analyses,
};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestRunner;
use serde_json::{Value, json};

const INFO: u64 = u64::MAX;

type CasOperation = Operation<CasOp<i64>, Option<i64>>;
type KeyedOp = Operation<(u8, CasOp<i64>), Option<i64>>;

/// How an operation of a sequential run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    Ok,
    /// Unknown to the client, but it took effect.
    InfoApplied,
    /// Unknown to the client, and it did not take effect.
    InfoLost,
    /// It did not take effect, and the client knows (a cas that did not apply).
    Fail,
}

fn end() -> impl Strategy<Value = End> {
    prop_oneof![
        6 => Just(End::Ok),
        1 => Just(End::InfoApplied),
        1 => Just(End::InfoLost),
    ]
}

/// One step of a sequential cas-register run: kind (0 read, 1 write, 2 cas),
/// values, how it ended, and how far its interval reaches before and after its
/// linearization point.
type Step = (u8, i64, i64, End, u64, u64);

fn steps(max: usize) -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec(
        (0u8..3, 0i64..4, 0i64..4, end(), 0u64..400, 0u64..400),
        1..max,
    )
}

/// A generated operation with its linearization point.
#[derive(Clone, Debug)]
struct Gen {
    op: CasOperation,
    end: End,
}

/// Runs the steps on a cas register, one every 100 time units, and widens each
/// interval. Cas ops that find another value end `Fail`; reads that end `info`
/// are kept (they constrain nothing).
fn cas_history(steps: &[Step]) -> Vec<Gen> {
    let mut state: Option<i64> = None;
    steps
        .iter()
        .enumerate()
        .map(|(i, &(kind, a, b, end, before, after))| {
            let at = 1000 + 100 * i as u64;
            let input = match kind {
                0 => CasOp::Read,
                1 => CasOp::Write(a),
                _ => CasOp::Cas {
                    expected: a,
                    new: b,
                },
            };
            let applies = match &input {
                CasOp::Cas { expected, .. } => state == Some(*expected),
                _ => true,
            };
            let end = if !applies { End::Fail } else { end };
            let read = state;
            if matches!(end, End::Ok | End::InfoApplied) {
                match input {
                    CasOp::Write(v) | CasOp::Cas { new: v, .. } => state = Some(v),
                    CasOp::Read => {}
                }
            }
            let known = end == End::Ok || end == End::Fail;
            let output = match input {
                CasOp::Read => Some(read),
                _ => Some(None),
            };
            Gen {
                op: Operation {
                    id: i as u64,
                    process: Process::Client(i as u64),
                    call: at - before,
                    ret: if known { at + after } else { INFO },
                    input,
                    output: if known { output } else { None },
                },
                end,
            }
        })
        .collect()
}

/// The operations that may have happened.
fn searchable(generated: &[Gen]) -> Vec<CasOperation> {
    generated
        .iter()
        .filter(|g| g.end != End::Fail)
        .map(|g| g.op.clone())
        .collect()
}

/// Replays a counterexample: the prefix must be legal in real-time order, and
/// no stuck operation may come next.
fn assert_sound<M: Model>(
    model: &M,
    ops: &[Operation<M::Input, M::Output>],
    linearized: &[u64],
    stuck: &[u64],
) where
    M::State: std::fmt::Debug,
{
    let by_id = |id: u64| {
        ops.iter()
            .find(|o| o.id == id)
            .expect("an op of the history")
    };
    let mut state = model.init();
    for (k, &id) in linearized.iter().enumerate() {
        let op = by_id(id);
        state = model
            .step(&state, &op.input, op.output.as_ref())
            .unwrap_or_else(|| panic!("prefix op {id} is illegal in {state:?}"));
        // Nothing later in the prefix completed before this one was invoked.
        for &later in &linearized[k + 1..] {
            let l = by_id(later);
            assert!(
                l.output.is_none() || l.ret >= op.call,
                "{later} precedes {id} in real time"
            );
        }
    }
    assert!(!stuck.is_empty());
    for &id in stuck {
        assert!(!linearized.contains(&id));
        let op = by_id(id);
        assert!(
            model.step(&state, &op.input, op.output.as_ref()).is_none(),
            "stuck op {id} could come next"
        );
    }
}

/// Events for a generated history: processes are reused when free (one
/// operation at a time each; retired after `info`), times in ns.
fn events_of(generated: &[Gen]) -> Vec<Event> {
    let mut timed: Vec<(u64, u8, usize)> = Vec::new();
    for (i, g) in generated.iter().enumerate() {
        timed.push((g.op.call, 0, i));
        let done = if g.op.ret == INFO {
            // The info reply arrives some time after the call (the op may
            // still take effect later).
            g.op.call + 50
        } else {
            g.op.ret
        };
        timed.push((done, 1, i));
    }
    timed.sort();
    // Assign processes: free ones first.
    let mut process_of = vec![0u64; generated.len()];
    let mut free: Vec<u64> = Vec::new();
    let mut next = 0u64;
    let mut events = Vec::new();
    for (time, phase, i) in timed {
        let g = &generated[i];
        let (f, invoke_value, done_value) = match &g.op.input {
            CasOp::Read => ("read", Value::Null, json!(g.op.output.flatten())),
            CasOp::Write(v) => ("write", json!(v), json!(v)),
            CasOp::Cas { expected, new } => ("cas", json!([expected, new]), json!([expected, new])),
        };
        let (kind, value) = if phase == 0 {
            process_of[i] = free.pop().unwrap_or_else(|| {
                next += 1;
                next
            });
            (EventType::Invoke, invoke_value)
        } else {
            let kind = match g.end {
                End::Ok => EventType::Ok,
                End::Fail => EventType::Fail,
                End::InfoApplied | End::InfoLost => EventType::Info,
            };
            if kind != EventType::Info {
                free.push(process_of[i]);
            }
            (
                kind,
                if kind == EventType::Ok {
                    done_value
                } else {
                    invoke_value
                },
            )
        };
        events.push(Event {
            index: events.len() as u64,
            time: time * 1000,
            process: Process::Client(process_of[i]),
            node: None,
            kind,
            f: f.to_owned(),
            value,
            error: None,
        });
    }
    events
}

fn cas_model() -> CasRegister<i64> {
    CasRegister::new()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn widened_sequential_cas_histories_are_linearizable(steps in steps(40)) {
        let generated = cas_history(&steps);
        let ops = searchable(&generated);
        let a = check_operations(&cas_model(), &ops, Limits::none());
        prop_assert_eq!(a.result, Linearizability::Linearizable);

        let events = events_of(&generated);
        let r = check_linearizability(&events, ModelKind::CasRegister, Limits::none());
        // With no op known to have happened, there is nothing to judge.
        let judged = generated.iter().any(|g| g.end == End::Ok);
        let expected = if judged { Validity::Valid } else { Validity::Unknown };
        prop_assert_eq!(r.validity, expected, "{:#?}", r);
        prop_assert_eq!(r.stats["unreadable_ops"].clone(), json!(0));
    }

    #[test]
    fn an_impossible_read_is_caught(steps in steps(40), pick in any::<prop::sample::Index>()) {
        let generated = cas_history(&steps);
        let mut ops = searchable(&generated);
        let reads: Vec<usize> = (0..ops.len())
            .filter(|&i| ops[i].input == CasOp::Read && ops[i].output.is_some())
            .collect();
        prop_assume!(!reads.is_empty());
        let victim = reads[pick.index(reads.len())];
        ops[victim].output = Some(Some(99));
        let a = check_operations(&cas_model(), &ops, Limits::none());
        let Linearizability::NotLinearizable(cex) = a.result else {
            panic!("not caught: {:?}", a.result)
        };
        assert_sound(&cas_model(), &ops, &cex.linearized, &cex.stuck);
        prop_assert!(!cex.linearized.contains(&ops[victim].id));
    }

    #[test]
    fn a_stale_read_is_caught(steps in steps(40)) {
        // After everything, a completed write of a fresh value, then a read of
        // a value an ok op wrote before, that no unknown op could write again.
        let generated = cas_history(&steps);
        let mut ops = searchable(&generated);
        let end = ops.iter().filter(|o| o.ret != INFO).map(|o| o.ret).max().unwrap_or(0);
        let fresh = 7;
        let written = |o: &CasOperation| match o.input {
            CasOp::Write(v) | CasOp::Cas { new: v, .. } => Some(v),
            CasOp::Read => None,
        };
        let rewritable: Vec<i64> = ops.iter().filter(|o| o.output.is_none()).filter_map(written).collect();
        let prior = ops
            .iter()
            .filter(|o| o.output.is_some())
            .filter_map(written)
            .find(|v| !rewritable.contains(v));
        let Some(prior) = prior else {
            return Ok(());
        };
        let n = 1_000_000;
        ops.push(Operation { id: n, process: Process::Client(n), call: end + 10, ret: end + 20, input: CasOp::Write(fresh), output: Some(None) });
        ops.push(Operation { id: n + 1, process: Process::Client(n + 1), call: end + 30, ret: end + 40, input: CasOp::Read, output: Some(Some(prior)) });
        let a = check_operations(&cas_model(), &ops, Limits::none());
        let Linearizability::NotLinearizable(cex) = a.result else {
            panic!("not caught: {:?}", a.result)
        };
        assert_sound(&cas_model(), &ops, &cex.linearized, &cex.stuck);
    }

    #[test]
    fn splitting_per_key_gives_the_same_verdict(
        ops in prop::collection::vec(
            (0u8..3, 0u8..2, 0i64..3, 0i64..3, 0u64..60, 1u64..30, 0u8..8),
            1..9,
        )
    ) {
        // Random (often not linearizable) histories on two keys.
        let ops: Vec<KeyedOp> = ops
            .iter()
            .enumerate()
            .map(|(i, &(kind, key, a, b, call, len, fate))| {
                let input = match kind {
                    0 => CasOp::Read,
                    1 => CasOp::Write(a),
                    _ => CasOp::Cas { expected: a, new: b },
                };
                let output = if fate == 0 {
                    None
                } else if input == CasOp::Read {
                    Some((fate > 2).then_some(b))
                } else {
                    Some(None)
                };
                Operation {
                    id: i as u64,
                    process: Process::Client(i as u64),
                    call,
                    ret: if output.is_some() { call + len } else { INFO },
                    input: (key, input),
                    output,
                }
            })
            .collect();
        let whole = check_operations(&Keyed(cas_model()), &ops, Limits::none());
        let mut by_key: BTreeMap<u8, Vec<CasOperation>> = BTreeMap::new();
        for op in &ops {
            by_key.entry(op.input.0).or_default().push(Operation {
                id: op.id,
                process: op.process.clone(),
                call: op.call,
                ret: op.ret,
                input: op.input.1.clone(),
                output: op.output,
            });
        }
        let partitions: Vec<_> = by_key
            .into_iter()
            .map(|(k, ops)| Partition { key: k.to_string(), ops })
            .collect();
        let split = check_partitions(&cas_model(), &partitions, Limits::none());
        prop_assert_eq!(combine_analyses(&split), whole.result.validity());
    }

    #[test]
    fn widened_sequential_mutex_histories_are_linearizable(
        steps in prop::collection::vec((0u32..4, 1u64..3, end(), 0u64..300, 0u64..300), 1..30)
    ) {
        let fenced = FencedMutex::new();
        let mut plain: Vec<Operation<MutexOp, ()>> = Vec::new();
        let mut owned: Vec<Operation<LockOp, Option<u64>>> = Vec::new();
        // Sequential: acquire and release alternate; the holder releases.
        let mut holder: Option<(u32, u64)> = None;
        let mut token = 0;
        for (i, &(client, step, end, before, after)) in steps.iter().enumerate() {
            let at = 1000 + 100 * i as u64;
            let (call, ret) = (at - before, at + after);
            let known = end == End::Ok;
            let applied = end != End::InfoLost;
            let ret = if known { ret } else { INFO };
            let id = i as u64;
            let process = Process::Client(id);
            match holder {
                None => {
                    token += step;
                    plain.push(Operation { id, process: process.clone(), call, ret, input: MutexOp::Acquire, output: known.then_some(()) });
                    owned.push(Operation {
                        id, process, call, ret,
                        input: LockOp::Acquire { client, sent: call, done: ret, ttl: None },
                        output: known.then_some(Some(token)),
                    });
                    if applied {
                        holder = Some((client, token));
                    }
                }
                Some((c, t)) => {
                    plain.push(Operation { id, process: process.clone(), call, ret, input: MutexOp::Release, output: known.then_some(()) });
                    owned.push(Operation {
                        id, process, call, ret,
                        input: LockOp::Release { client: c, token: Some(t) },
                        output: known.then_some(None),
                    });
                    if applied {
                        holder = None;
                    }
                }
            }
        }
        prop_assert_eq!(check_operations(&Mutex, &plain, Limits::none()).result, Linearizability::Linearizable);
        prop_assert_eq!(check_operations(&fenced, &owned, Limits::none()).result, Linearizability::Linearizable);

        // A grant in the middle of a holder's turn, after everything: caught.
        if let Some(last) = owned.iter().filter(|o| o.output.is_some()).map(|o| o.ret).max() {
            let n = 1_000;
            let grant = |id, call| Operation {
                id, process: Process::Client(id), call, ret: call + 5,
                input: LockOp::Acquire { client: 9, sent: call, done: call + 5, ttl: None },
                output: Some(Some(token + id)),
            };
            owned.push(grant(n, last + 10));
            owned.push(grant(n + 1, last + 20));
            let r = check_operations(&fenced, &owned, Limits::none()).result;
            let Linearizability::NotLinearizable(cex) = r else { panic!("{r:?}") };
            assert_sound(&fenced, &owned, &cex.linearized, &cex.stuck);
        }
    }

    #[test]
    fn lease_locks_with_expiries_are_linearizable(
        turns in prop::collection::vec((0u64..4, 100u64..2000, any::<bool>(), 1u64..50, 0u64..3), 1..25)
    ) {
        // Leasehold events: each turn a worker acquires with a lease, maybe
        // renews, and either releases or lets the lease run out (the next
        // acquire is sent after the deadline). Valid under leasehold-lock;
        // under the plain mutex only if every lease was released.
        const MS: u64 = 1_000_000;
        let mut events: Vec<Event> = Vec::new();
        let mut now = 0u64;
        let mut token = 0u64;
        let mut expired_then_taken = false;
        let push = |events: &mut Vec<Event>, t: u64, w: u64, kind: EventType, f: &str, value: Value| {
            events.push(Event {
                index: events.len() as u64,
                time: t,
                process: Process::Client(w),
                node: Some(format!("w{w}")),
                kind,
                f: f.to_owned(),
                value,
                error: None,
            });
        };
        for (turn, &(w, lease_ms, release, latency_ms, renewals)) in turns.iter().enumerate() {
            token += 1;
            let sent = now;
            push(&mut events, sent, w, EventType::Invoke, "acquire", json!({"lock": "L", "ttl_ms": lease_ms}));
            now += latency_ms * MS;
            push(&mut events, now, w, EventType::Ok, "acquire", json!({"lock": "L", "token": token, "lease_ms": lease_ms}));
            let mut deadline = sent + lease_ms * MS;
            for _ in 0..renewals {
                let sent = now + 1;
                push(&mut events, sent, w, EventType::Invoke, "renew", json!({"lock": "L", "token": token, "ttl_ms": lease_ms}));
                now = sent + latency_ms * MS;
                push(&mut events, now, w, EventType::Ok, "renew", json!({"lock": "L", "token": token, "lease_ms": lease_ms}));
                deadline = sent + lease_ms * MS;
            }
            if release {
                push(&mut events, now + 1, w, EventType::Invoke, "release", json!({"lock": "L", "token": token}));
                now += 2;
                push(&mut events, now, w, EventType::Ok, "release", json!({"lock": "L", "token": token}));
            } else {
                expired_then_taken |= turn + 1 < turns.len();
                // The next acquire is sent once the lease has run out.
                now = now.max(deadline) + 1;
            }
            now += 1;
        }
        let r = check_linearizability(&events, ModelKind::LeaseholdLock, Limits::none());
        prop_assert_eq!(r.validity, Validity::Valid, "{:#?}", r);
        let r = check_linearizability(&events, ModelKind::FencedMutex, Limits::none());
        prop_assert_eq!(r.validity, Validity::Valid, "{:#?}", r);
        // The plain mutex knows no renew: it ignores them, and when they are
        // more than a tenth of the operations a valid verdict is unknown.
        let r = check_linearizability(&events, ModelKind::Mutex, Limits::none());
        let renews: u64 = turns.iter().map(|t| t.4).sum();
        let ops = events.len() as u64 / 2;
        let expected = if expired_then_taken {
            Validity::Invalid
        } else if renews * 100 > IGNORED_SHARE_PERCENT as u64 * ops {
            Validity::Unknown
        } else {
            Validity::Valid
        };
        prop_assert_eq!(r.validity, expected, "{}", r.summary);
        prop_assert_eq!(r.summary.contains(":renew"), renews > 0, "{}", r.summary);
    }
}

/// A model over several keys at once, for comparing with the split search.
struct Keyed<M>(M);

impl<M: Model> Model for Keyed<M>
where
    M::State: Ord,
{
    type State = BTreeMap<u8, M::State>;
    type Input = (u8, M::Input);
    type Output = M::Output;

    fn init(&self) -> Self::State {
        BTreeMap::new()
    }

    fn step(
        &self,
        state: &Self::State,
        (key, input): &Self::Input,
        output: Option<&M::Output>,
    ) -> Option<Self::State> {
        let current = state.get(key).cloned().unwrap_or_else(|| self.0.init());
        let next = self.0.step(&current, input, output)?;
        let mut state = state.clone();
        state.insert(*key, next);
        Some(state)
    }

    fn is_read_only(&self, (_, input): &Self::Input) -> bool {
        self.0.is_read_only(input)
    }

    fn describe_op(&self, (key, input): &Self::Input, output: Option<&M::Output>) -> String {
        format!("{key}: {}", self.0.describe_op(input, output))
    }

    fn describe_state(&self, state: &Self::State) -> String {
        format!("{} keys", state.len())
    }
}

#[test]
fn limits_turn_a_hard_search_into_unknown() {
    // Twenty concurrent writes, then a read none of them explains: the search
    // must try every order of every subset before it can say no.
    let mut ops: Vec<CasOperation> = (0..20)
        .map(|i| Operation {
            id: i,
            process: Process::Client(i),
            call: i,
            ret: 50 + i,
            input: CasOp::Write(i as i64),
            output: Some(None),
        })
        .collect();
    ops.push(Operation {
        id: 20,
        process: Process::Client(20),
        call: 100,
        ret: 110,
        input: CasOp::Read,
        output: Some(Some(-1)),
    });
    let a = check_operations(
        &cas_model(),
        &ops,
        Limits {
            deadline: Some(Duration::from_millis(50)),
            max_states: None,
        },
    );
    assert_eq!(a.result, Linearizability::Unknown(LimitHit::Deadline));
    let a = check_operations(
        &cas_model(),
        &ops,
        Limits {
            deadline: None,
            max_states: Some(10_000),
        },
    );
    assert_eq!(a.result, Linearizability::Unknown(LimitHit::MaxStates));

    // Through the check: an unknown report, with the reason and no anomaly.
    let events: Vec<Event> = ops
        .iter()
        .flat_map(|o| {
            let (f, value) = match o.input {
                CasOp::Write(v) => ("write", json!(v)),
                _ => ("read", Value::Null),
            };
            let invoke = Event {
                index: 0,
                time: o.call,
                process: o.process.clone(),
                node: None,
                kind: EventType::Invoke,
                f: f.into(),
                value,
                error: None,
            };
            let done = (o.output.is_some()).then(|| Event {
                time: o.ret,
                kind: EventType::Ok,
                value: if f == "read" {
                    json!(-1)
                } else {
                    invoke.value.clone()
                },
                ..invoke.clone()
            });
            std::iter::once(invoke).chain(done)
        })
        .collect();
    let mut events = events;
    events.sort_by_key(|e| e.time);
    for (i, e) in events.iter_mut().enumerate() {
        e.index = i as u64;
    }
    let r = check_linearizability(
        &events,
        ModelKind::CasRegister,
        Limits {
            deadline: None,
            max_states: Some(1_000),
        },
    );
    assert_eq!(r.validity, Validity::Unknown);
    assert!(r.anomalies.is_empty());
    assert!(r.summary.contains("state limit reached"), "{}", r.summary);
    assert_eq!(r.stats["unknown_partitions"], json!([""]));
}

#[test]
fn the_counterexample_is_ready_for_a_report() {
    let events: Vec<Event> = [
        (0, EventType::Invoke, "write", json!(["x", 1])),
        (0, EventType::Ok, "write", json!(["x", 1])),
        (1, EventType::Invoke, "write", json!(["x", 2])),
        (1, EventType::Ok, "write", json!(["x", 2])),
        (2, EventType::Invoke, "read", json!(["x", null])),
        (2, EventType::Ok, "read", json!(["x", 1])),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, (p, kind, f, value))| Event {
        index: i as u64,
        time: i as u64 * 10,
        process: Process::Client(p),
        node: None,
        kind,
        f: f.into(),
        value,
        error: None,
    })
    .collect();
    let r = check_linearizability(&events, ModelKind::Register, Limits::default());
    assert_eq!(r.validity, Validity::Invalid);
    let json = serde_json::to_value(&r.anomalies[0]).unwrap();
    assert_eq!(
        json,
        json!({
            "kind": "non-linearizable",
            "model": "register",
            "partition": "x",
            "linearized": [0, 2],
            "state": "2",
            "stuck": [4],
            "stuck_described": ["read -> 1"],
            "ops": [0, 2, 4],
        })
    );
    let Anomaly::NonLinearizable { .. } = &r.anomalies[0] else {
        panic!()
    };
    assert_eq!(
        r.anomalies[0].explain(),
        "the history of \"x\" is not linearizable under the register model: after 2 operations with the state 2, none of the operations that may come next fits: read -> 1 (#4)"
    );
    assert!(
        r.summary
            .starts_with("not linearizable under the register model: key \"x\""),
        "{}",
        r.summary
    );
}

// ---------------------------------------------------------------------------
// The strict cas register against a brute-force search

/// One op of an etcd-shaped history: the client (0..3) issuing it, kind (0
/// read, 1 write, 2 cas), values, the gap before it and how long it takes,
/// its fate (0: `info` and applied, 1: `info` and lost, 2: `fail` without
/// effect; for a cas, 2 to 4 mean refused although its compare held, which
/// only the lenient model allows; else it completes), and where in its
/// interval it takes effect (per mille).
type EtcdStep = (usize, u8, i64, i64, u64, u64, u8, u64);

/// A change to one op of a correct history: which op, and a value (0..5,
/// 5 meaning empty) a read returns instead, or, for a cas, that the client
/// was told the other outcome.
type Corruption = Option<(Index, i64)>;

fn etcd_steps() -> impl Strategy<Value = (Vec<EtcdStep>, Corruption)> {
    (
        prop::collection::vec(
            (
                0usize..3,
                0u8..3,
                0i64..5,
                0i64..5,
                0u64..30,
                1u64..60,
                0u8..12,
                0u64..=1000,
            ),
            2..=8,
        ),
        prop::option::weighted(0.6, (any::<Index>(), 0i64..6)),
    )
}

/// Runs the steps on a cas register, each client one op at a time, every op
/// taking effect at a point of its interval (an `info` one anywhere after its
/// invocation, or never); a cas that finds another value ends `fail`, and a
/// refused one expects the value it found. Then applies the corruption. Either
/// may or may not make the history non-linearizable.
fn etcd_history(steps: &[EtcdStep], corruption: Corruption) -> Vec<Gen> {
    let mut free_at = [0u64; 3];
    let mut ops: Vec<Gen> = Vec::new();
    let mut effects: Vec<(u64, usize)> = Vec::new();
    for (i, &(client, kind, a, b, gap, len, fate, at)) in steps.iter().enumerate() {
        let call = free_at[client] + gap;
        let input = match kind {
            0 => CasOp::Read,
            1 => CasOp::Write(a),
            _ => CasOp::Cas {
                expected: a,
                new: b,
            },
        };
        let end = match fate {
            0 => End::InfoApplied,
            1 => End::InfoLost,
            2 => End::Fail,
            3 | 4 if kind == 2 => End::Fail,
            _ => End::Ok,
        };
        let refused = end == End::Fail && kind == 2;
        let (ret, effect) = match end {
            // The info reply comes 50 after the call (see `events_of`); the
            // effect may come before or after it.
            End::InfoApplied => (INFO, Some(call + at * 3 / 20)),
            End::InfoLost => (INFO, None),
            End::Fail if !refused => (call + len, None),
            _ => (call + len, Some(call + len * at / 1000)),
        };
        free_at[client] = if ret == INFO { call + 51 } else { ret };
        if let Some(t) = effect {
            effects.push((t, i));
        }
        ops.push(Gen {
            op: Operation {
                id: i as u64,
                process: Process::Client(client as u64),
                call,
                ret,
                input,
                output: (ret != INFO).then_some(None),
            },
            end,
        });
    }
    effects.sort();
    let mut register: Option<i64> = None;
    for (_, i) in effects {
        let g = &mut ops[i];
        match g.op.input {
            CasOp::Read => {
                if g.end == End::Ok {
                    g.op.output = Some(register);
                }
            }
            CasOp::Write(v) => register = Some(v),
            CasOp::Cas { expected, new } => {
                if g.end == End::Fail {
                    // Refused: it looked, found this, and changed nothing.
                    let expected = register.unwrap_or(expected);
                    g.op.input = CasOp::Cas { expected, new };
                } else if register == Some(expected) {
                    register = Some(new);
                } else if g.end == End::Ok {
                    // Compare failed, and the client was told.
                    g.end = End::Fail;
                }
            }
        }
    }
    if let Some((pick, v)) = corruption {
        let g = &mut ops[pick.index(steps.len())];
        match (&g.op.input, g.end) {
            (CasOp::Read, End::Ok) => g.op.output = Some((v < 5).then_some(v)),
            (CasOp::Cas { .. }, End::Ok) => g.end = End::Fail,
            (CasOp::Cas { .. }, End::Fail) => g.end = End::Ok,
            _ => {}
        }
    }
    ops
}

/// Whether the history is linearizable, by trying every order of its ops that
/// real time allows and every choice of which unknown ops took effect.
/// `strict`: a failed cas is an op that saw a value other than `expected`;
/// else it is left out, as are failed reads and writes.
fn brute_force(ops: &[Gen], strict: bool) -> bool {
    let is_cas = |g: &Gen| matches!(g.op.input, CasOp::Cas { .. });
    let required: Vec<usize> = (0..ops.len())
        .filter(|&i| {
            ops[i].end == End::Ok || (strict && ops[i].end == End::Fail && is_cas(&ops[i]))
        })
        .collect();
    // An unknown read constrains nothing.
    let optional: Vec<usize> = (0..ops.len())
        .filter(|&i| !known(&ops[i]) && ops[i].op.input != CasOp::Read)
        .collect();
    (0..1u32 << optional.len()).any(|mask| {
        let mut chosen = required.clone();
        chosen.extend(
            (0..optional.len())
                .filter(|b| mask & (1 << b) != 0)
                .map(|b| optional[b]),
        );
        let mut placed = vec![false; chosen.len()];
        some_order(ops, &chosen, &mut placed, None)
    })
}

/// Whether the client learned how `g` ended.
fn known(g: &Gen) -> bool {
    matches!(g.end, End::Ok | End::Fail)
}

/// The register after `g` in `state`, if `g` can happen there; a failed cas
/// is one that saw another value than `expected`.
fn apply(state: Option<i64>, g: &Gen) -> Option<Option<i64>> {
    match (&g.op.input, g.end) {
        (CasOp::Read, _) => (g.op.output == Some(state)).then_some(state),
        (CasOp::Write(v), _) => Some(Some(*v)),
        (CasOp::Cas { expected, .. }, End::Fail) => (state != Some(*expected)).then_some(state),
        (CasOp::Cas { expected, new }, _) => (state == Some(*expected)).then_some(Some(*new)),
    }
}

/// Whether the ops of `chosen` (positions in `ops`) not yet `placed` can all
/// happen, from `state`, in some order that real time allows: none before an
/// op that completed before it was invoked.
fn some_order(ops: &[Gen], chosen: &[usize], placed: &mut [bool], state: Option<i64>) -> bool {
    if placed.iter().all(|&p| p) {
        return true;
    }
    let precedes = |a: usize, b: usize| known(&ops[a]) && ops[a].op.ret < ops[b].op.call;
    for k in 0..chosen.len() {
        let c = chosen[k];
        let ready = !placed[k] && (0..chosen.len()).all(|j| placed[j] || !precedes(chosen[j], c));
        if !ready {
            continue;
        }
        let Some(next) = apply(state, &ops[c]) else {
            continue;
        };
        placed[k] = true;
        let found = some_order(ops, chosen, placed, next);
        placed[k] = false;
        if found {
            return true;
        }
    }
    false
}

/// Whether the check finds the history linearizable. Without limits and with
/// every op readable it is unknown only when there is nothing to judge (every
/// op it keeps may never have happened): that is no violation.
fn verdict(events: &[Event], model: ModelKind) -> bool {
    let r = check_linearizability(events, model, Limits::none());
    assert_eq!(r.stats["unreadable_ops"], json!(0), "{model}: {r:#?}");
    r.validity != Validity::Invalid
}

#[test]
fn strict_cas_register_verdicts_match_a_brute_force_search() {
    // Verdicts over the generated set: (strict valid, strict invalid, only
    // the strict model invalid).
    let seen = std::cell::Cell::new((0usize, 0usize, 0usize));
    let mut runner = TestRunner::new(ProptestConfig::with_cases(1000));
    let outcome = runner.run(&etcd_steps(), |(steps, corruption)| {
        let ops = etcd_history(&steps, corruption);
        let events = events_of(&ops);
        let strict = verdict(&events, ModelKind::CasRegisterStrict);
        let lenient = verdict(&events, ModelKind::CasRegister);
        prop_assert_eq!(strict, brute_force(&ops, true), "strict, {:#?}", events);
        prop_assert_eq!(lenient, brute_force(&ops, false), "lenient, {:#?}", events);
        // Whatever the strict model accepts, the lenient one does.
        prop_assert!(lenient || !strict);
        let (valid, invalid, only_strict) = seen.get();
        seen.set((
            valid + strict as usize,
            invalid + !strict as usize,
            only_strict + (lenient && !strict) as usize,
        ));
        Ok(())
    });
    if let Err(e) = outcome {
        panic!("{e}");
    }
    let (valid, invalid, only_strict) = seen.get();
    let cases = runner.config().cases as usize;
    // Each kind of verdict is common, not a fluke (about 70%, 30% and 6% of
    // the histories).
    for (what, n, percent) in [
        ("linearizable", valid, 10),
        ("not linearizable", invalid, 10),
        ("only strictly not linearizable", only_strict, 2),
    ] {
        assert!(
            n * 100 >= cases * percent,
            "{n} of {cases} histories {what}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn strict_and_lenient_cas_registers_agree_without_failed_cas(
        (steps, corruption) in etcd_steps()
    ) {
        let mut ops = etcd_history(&steps, corruption);
        ops.retain(|g| !(g.end == End::Fail && matches!(g.op.input, CasOp::Cas { .. })));
        let events = events_of(&ops);
        let strict = verdict(&events, ModelKind::CasRegisterStrict);
        prop_assert_eq!(strict, verdict(&events, ModelKind::CasRegister));
        prop_assert_eq!(strict, brute_force(&ops, false));
    }
}
