//! Linearizability: properties of the search on generated histories.
//!
//! - A history generated from a sequential run of the model, then made
//!   concurrent by widening every interval around its linearization point, is
//!   always linearizable — through the `Operation` API and through events.
//! - A violation injected into such a history is caught, and the counterexample
//!   is sound: its prefix replays through the model in real-time order, and no
//!   stuck operation can come next.
//! - Checking per key gives the same verdict as one search over all keys.

use std::collections::BTreeMap;
use std::time::Duration;

use leasehold_checker::{
    Anomaly, CasOp, CasRegister, Event, EventType, FencedMutex, LimitHit, Limits, Linearizability,
    LockOp, Model, ModelKind, Mutex, MutexOp, Operation, Partition, Process, Validity,
    check_linearizability, check_operations, check_partitions, combine_analyses,
};
use proptest::prelude::*;
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
        prop_assert_eq!(r.validity, Validity::Valid, "{:#?}", r);
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
        let r = check_linearizability(&events, ModelKind::Mutex, Limits::none());
        let expected = if expired_then_taken { Validity::Invalid } else { Validity::Valid };
        prop_assert_eq!(r.validity, expected);
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
