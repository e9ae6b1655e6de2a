//! The linearizability search on simulated cas-register and multi-register
//! histories.
//!
//! `cargo bench -p leasehold-checker --bench linearizability`
//!
//! Every history here is simulated: none is a recorded log (in particular,
//! not Porcupine's etcd logs, which are not shipped). They come from a seeded
//! simulator of a cas register in the spirit of Jepsen's etcd tests: clients
//! issue reads, writes and cas of small values with random latencies; some ops
//! time out (`info`: they take effect later or never) and some clients crash
//! (the op never completes; the client comes back under a new process). Cas
//! ops that find another value fail. The invalid variants change one read in
//! the middle of the history to a value the search must prove impossible.
//! Generation is not timed.
//!
//! Groups:
//! - `cas-register`: one key, 5 and 10 clients × 1,000 ops, valid and invalid,
//!   through the `Operation` API;
//! - `simulated-etcd`: 102 simulated histories of 85 ops with 5 clients (the
//!   size and count of Porcupine's etcd set, not its data), every third one
//!   made invalid, checked from events under `cas-register` (failed cas left
//!   out) and `cas-register-strict` (failed cas kept as observations): one
//!   valid history, one invalid, and the whole set, for each model
//!   (`simulated-etcd/<model>/<one|one-invalid|all-102>`);
//! - `events`: the full path from events (pairing, conversion, split per key,
//!   parallel search) on a jepsen.independent history of 4 keys × 1,000 ops;
//! - `multi-register`: Jepsen `:txn` histories, 5 and 10 clients × 1,000
//!   transactions of one to three reads and writes over 3 keys (transactions
//!   span keys, so the three are one partition), valid and invalid (one read
//!   changed), through the `Operation` API.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use leasehold_checker::{
    CasOp, CasRegister, Event, EventType, Limits, Linearizability, Micro, ModelKind, MultiRegister,
    Operation, Process, TxnReads, Validity, check_linearizability, check_operations,
};
use serde_json::{Value, json};

type CasOperation = Operation<CasOp<i64>, Option<i64>>;

/// splitmix64.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
}

#[derive(Clone, Copy)]
struct Sim {
    clients: usize,
    ops: usize,
    /// Share of ops that time out (`info`).
    timeouts: f64,
    /// Share of ops whose client crashes (never completes).
    crashes: f64,
    seed: u64,
}

/// One simulated op.
struct SimOp {
    process: u64,
    call: u64,
    /// When the reply arrived (ok or fail), or when the client gave up (info).
    reply: Option<u64>,
    /// Whether the client learned the result.
    known: bool,
    /// When it took effect on the register, if it did.
    effect: Option<u64>,
    input: CasOp<i64>,
    /// Read: the value read. Cas: whether it applied.
    read: Option<i64>,
    applied: bool,
}

const US: u64 = 1_000;

fn simulate(sim: Sim) -> Vec<SimOp> {
    let mut rng = Rng(sim.seed);
    let mut clients: Vec<(u64, u64)> = (0..sim.clients as u64).map(|p| (0, p)).collect();
    let mut next_process = sim.clients as u64;
    let mut ops: Vec<SimOp> = Vec::with_capacity(sim.ops);
    while ops.len() < sim.ops {
        let c = (0..clients.len()).min_by_key(|&i| clients[i].0).unwrap();
        let (free_at, process) = clients[c];
        let call = free_at + rng.below(20 * US);
        // 0.1 to 5 ms, mostly short.
        let latency = 100 * US + (rng.unit().powi(3) * 4_900.0) as u64 * US;
        let input = match rng.below(4) {
            0 | 1 => CasOp::Read,
            2 => CasOp::Write(rng.below(5) as i64),
            _ => CasOp::Cas {
                expected: rng.below(5) as i64,
                new: rng.below(5) as i64,
            },
        };
        let fate = rng.unit();
        let (reply, known, effect) = if fate < sim.crashes {
            let effect = rng.chance(0.5).then(|| call + rng.below(2 * latency));
            clients[c] = (call + latency + 10_000 * US, next_process);
            next_process += 1;
            (None, false, effect)
        } else if fate < sim.crashes + sim.timeouts {
            let effect = rng.chance(0.5).then(|| call + rng.below(3 * latency));
            clients[c] = (call + latency, next_process);
            next_process += 1;
            (Some(call + latency), false, effect)
        } else {
            let effect = call + 1 + rng.below(latency - 1);
            clients[c] = (call + latency, process);
            (Some(call + latency), true, Some(effect))
        };
        ops.push(SimOp {
            process,
            call,
            reply,
            known,
            effect,
            input,
            read: None,
            applied: false,
        });
    }
    // Apply the effects in time order.
    let mut order: Vec<usize> = (0..ops.len())
        .filter(|&i| ops[i].effect.is_some())
        .collect();
    order.sort_by_key(|&i| ops[i].effect);
    let mut register: Option<i64> = None;
    for i in order {
        let op = &mut ops[i];
        match op.input {
            CasOp::Read => op.read = register,
            CasOp::Write(v) => {
                register = Some(v);
                op.applied = true;
            }
            CasOp::Cas { expected, new } => {
                if register == Some(expected) {
                    register = Some(new);
                    op.applied = true;
                }
            }
        }
    }
    ops
}

/// Whether the client saw the op fail: a cas that did not apply.
fn failed(op: &SimOp) -> bool {
    op.known && matches!(op.input, CasOp::Cas { .. }) && !op.applied
}

/// The ops that may have happened, ids by position.
fn operations(ops: &[SimOp]) -> Vec<CasOperation> {
    ops.iter()
        .enumerate()
        .filter(|(_, op)| !failed(op))
        .map(|(i, op)| Operation {
            id: i as u64,
            process: Process::Client(op.process),
            call: op.call,
            ret: if op.known {
                op.reply.unwrap()
            } else {
                u64::MAX
            },
            input: op.input.clone(),
            output: op.known.then_some(op.read),
        })
        .collect()
}

/// Jepsen-style events, independent tuples `[key v]` when `key` is given.
fn events(ops: &[SimOp], key: Option<&str>, out: &mut Vec<(u64, u8, Event)>) {
    let wrap = |v: Value| match key {
        Some(k) => json!([k, v]),
        None => v,
    };
    for op in ops {
        let (f, invoke) = match op.input {
            CasOp::Read => ("read", Value::Null),
            CasOp::Write(v) => ("write", json!(v)),
            CasOp::Cas { expected, new } => ("cas", json!([expected, new])),
        };
        let event = |time, kind, value| Event {
            index: 0,
            time,
            process: Process::Client(op.process),
            node: None,
            kind,
            f: f.to_owned(),
            value: wrap(value),
            error: None,
        };
        out.push((
            op.call,
            0,
            event(op.call, EventType::Invoke, invoke.clone()),
        ));
        if let Some(t) = op.reply {
            let (kind, value) = if !op.known {
                (EventType::Info, invoke)
            } else if failed(op) {
                (EventType::Fail, invoke)
            } else if let CasOp::Read = op.input {
                (EventType::Ok, json!(op.read))
            } else {
                (EventType::Ok, invoke)
            };
            out.push((t, 1, event(t, kind, value)));
        }
    }
}

fn history(mut timed: Vec<(u64, u8, Event)>) -> Vec<Event> {
    timed.sort_by_key(|(t, phase, _)| (*t, *phase));
    timed
        .into_iter()
        .enumerate()
        .map(|(i, (_, _, mut e))| {
            e.index = i as u64;
            e
        })
        .collect()
}

fn check(ops: &[CasOperation]) -> Linearizability {
    check_operations(&CasRegister::<i64>::new(), ops, Limits::none()).result
}

/// Makes a valid simulated history invalid by changing what one read near the
/// middle returned.
fn break_history(ops: &mut [SimOp], seed: u64) -> bool {
    let mut rng = Rng(seed ^ 0xdead_beef);
    let n = ops.len();
    for _ in 0..200 {
        let i = n / 3 + rng.below((n / 3).max(1) as u64) as usize;
        if ops[i].input != CasOp::Read || !ops[i].known {
            continue;
        }
        let before = ops[i].read;
        let new = Some(rng.below(5) as i64);
        if new == before {
            continue;
        }
        ops[i].read = new;
        if matches!(check(&operations(ops)), Linearizability::NotLinearizable(_)) {
            return true;
        }
        ops[i].read = before;
    }
    false
}

fn sim(clients: usize, ops: usize, seed: u64) -> Sim {
    Sim {
        clients,
        ops,
        timeouts: 0.02,
        crashes: 0.005,
        seed,
    }
}

fn describe(name: &str, ops: &[CasOperation]) {
    let a = check_operations(&CasRegister::<i64>::new(), ops, Limits::none());
    let unknown = ops.iter().filter(|o| o.output.is_none()).count();
    eprintln!(
        "{name}: {} ops ({unknown} unknown), {} states, {:?}, verdict {:?}",
        ops.len(),
        a.states,
        a.elapsed,
        a.result.validity()
    );
}

fn cas_register(c: &mut Criterion) {
    let mut group = c.benchmark_group("cas-register");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    for clients in [5, 10] {
        let mut simulated = simulate(sim(clients, 1000, clients as u64));
        let valid = operations(&simulated);
        assert!(break_history(&mut simulated, clients as u64));
        let invalid = operations(&simulated);
        for (name, ops, expect) in [
            ("valid", &valid, Validity::Valid),
            ("invalid", &invalid, Validity::Invalid),
        ] {
            let id = format!("{clients}-clients-1000-ops/{name}");
            describe(&id, ops);
            assert_eq!(check(ops).validity(), expect);
            group.throughput(Throughput::Elements(ops.len() as u64));
            group.bench_function(&id, |b| b.iter(|| check(black_box(ops))));
        }
    }
    group.finish();
}

fn simulated_etcd(c: &mut Criterion) {
    // 102 simulated histories of 85 ops, 5 clients; every third one made
    // invalid. As events, so that both models read the same failed cas.
    let set: Vec<Vec<Event>> = (0..102u64)
        .map(|seed| {
            let mut ops = simulate(sim(5, 85, 1000 + seed));
            if seed % 3 == 2 {
                break_history(&mut ops, seed);
            }
            let mut timed = Vec::new();
            events(&ops, None, &mut timed);
            history(timed)
        })
        .collect();
    let models = [ModelKind::CasRegister, ModelKind::CasRegisterStrict];
    let verdicts: Vec<Validity> = set
        .iter()
        .map(|events| {
            let [lenient, strict] =
                models.map(|m| check_linearizability(events, m, Limits::none()).validity);
            // The simulated register is a real one: failed cas did see
            // another value, so the strict model agrees.
            assert_eq!(lenient, strict);
            lenient
        })
        .collect();
    let invalid = verdicts.iter().filter(|&&v| v == Validity::Invalid).count();
    let total: usize = set.iter().map(|events| events.len() / 2).sum();
    let failed_cas: usize = set
        .iter()
        .flatten()
        .filter(|e| e.kind == EventType::Fail && e.f == "cas")
        .count();
    eprintln!(
        "simulated-etcd: {} simulated histories, about {total} ops in all ({failed_cas} failed cas), {invalid} invalid",
        set.len()
    );
    let bad = verdicts
        .iter()
        .position(|&v| v == Validity::Invalid)
        .expect("an invalid history in the set");
    assert_eq!(verdicts[0], Validity::Valid);
    let mut group = c.benchmark_group("simulated-etcd");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    for model in models {
        let check = |events: &[Event]| check_linearizability(events, model, Limits::none());
        for (name, events) in [("one", &set[0]), ("one-invalid", &set[bad])] {
            let id = format!("{model}/{name}");
            eprintln!("simulated-etcd/{id}: {}", check(events).summary);
            group.throughput(Throughput::Elements(events.len() as u64 / 2));
            group.bench_function(&id, |b| b.iter(|| check(black_box(events))));
        }
        group.throughput(Throughput::Elements(total as u64));
        group.bench_function(format!("{model}/all-102"), |b| {
            b.iter(|| {
                for events in &set {
                    black_box(check(black_box(events)));
                }
            })
        });
    }
    group.finish();
}

fn from_events(c: &mut Criterion) {
    let mut timed = Vec::new();
    for (k, key) in ["a", "b", "c", "d"].into_iter().enumerate() {
        let mut ops = simulate(sim(5, 1000, 77 + k as u64));
        // Distinct processes per key, as jepsen.independent gives.
        for op in &mut ops {
            op.process += 1000 * k as u64;
        }
        events(&ops, Some(key), &mut timed);
    }
    let events = history(timed);
    let r = check_linearizability(&events, ModelKind::CasRegister, Limits::none());
    assert_eq!(r.validity, Validity::Valid, "{}", r.summary);
    eprintln!("events/4-keys-1000-ops: {}", r.summary);
    let mut group = c.benchmark_group("events");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    group.throughput(Throughput::Elements(events.len() as u64 / 2));
    group.bench_function("4-keys-1000-ops-per-key", |b| {
        b.iter(|| check_linearizability(black_box(&events), ModelKind::CasRegister, Limits::none()))
    });
    group.finish();
}

type TxnOperation = Operation<Vec<Micro<i64>>, TxnReads<i64>>;

const TXN_KEYS: u32 = 3;

/// A simulated Jepsen `:txn` history over 3 keys: the timing, timeouts and
/// crashes of [`simulate`], each op a transaction of one to three reads and
/// writes applied atomically at its effect time.
fn simulate_txns(sim: Sim) -> Vec<TxnOperation> {
    let ops = simulate(sim);
    let mut rng = Rng(sim.seed ^ 0x7478_6e73);
    let txns: Vec<Vec<Micro<i64>>> = ops
        .iter()
        .map(|_| {
            (0..1 + rng.below(3))
                .map(|_| {
                    let key = rng.below(TXN_KEYS as u64) as u32;
                    if rng.chance(0.5) {
                        Micro::Read(key)
                    } else {
                        Micro::Write(key, rng.below(5) as i64)
                    }
                })
                .collect()
        })
        .collect();
    let mut reads: Vec<TxnReads<i64>> = txns.iter().map(|t| vec![None; t.len()]).collect();
    let mut order: Vec<usize> = (0..ops.len())
        .filter(|&i| ops[i].effect.is_some())
        .collect();
    order.sort_by_key(|&i| ops[i].effect);
    let mut registers = [None; TXN_KEYS as usize];
    for i in order {
        for (m, micro) in txns[i].iter().enumerate() {
            match *micro {
                Micro::Read(k) => reads[i][m] = Some(registers[k as usize]),
                Micro::Write(k, v) => registers[k as usize] = Some(v),
            }
        }
    }
    ops.iter()
        .zip(txns)
        .zip(reads)
        .enumerate()
        .map(|(i, ((op, input), read))| Operation {
            id: i as u64,
            process: Process::Client(op.process),
            call: op.call,
            ret: if op.known {
                op.reply.unwrap()
            } else {
                u64::MAX
            },
            input,
            output: op.known.then_some(read),
        })
        .collect()
}

fn txn_model() -> MultiRegister<i64> {
    MultiRegister::new(vec!["x".into(), "y".into(), "z".into()])
}

fn check_txns(ops: &[TxnOperation]) -> Linearizability {
    check_operations(&txn_model(), ops, Limits::none()).result
}

/// Changes what one read near the middle returned until the history is not
/// linearizable.
fn break_txns(ops: &mut [TxnOperation], seed: u64) -> bool {
    let mut rng = Rng(seed ^ 0xdead_beef);
    let n = ops.len();
    for _ in 0..200 {
        let i = n / 3 + rng.below((n / 3).max(1) as u64) as usize;
        let Some(m) = ops[i]
            .input
            .iter()
            .position(|m| matches!(m, Micro::Read(_)))
        else {
            continue;
        };
        let Some(output) = ops[i].output.as_mut() else {
            continue;
        };
        let before = output[m];
        let new = Some(Some(rng.below(5) as i64));
        if new == before {
            continue;
        }
        output[m] = new;
        if matches!(check_txns(ops), Linearizability::NotLinearizable(_)) {
            return true;
        }
        ops[i].output.as_mut().unwrap()[m] = before;
    }
    false
}

fn multi_register(c: &mut Criterion) {
    let mut group = c.benchmark_group("multi-register");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    for clients in [5, 10] {
        let valid = simulate_txns(sim(clients, 1000, 500 + clients as u64));
        let mut invalid = valid.clone();
        assert!(break_txns(&mut invalid, clients as u64));
        for (name, ops, expect) in [
            ("valid", &valid, Validity::Valid),
            ("invalid", &invalid, Validity::Invalid),
        ] {
            let id = format!("{clients}-clients-1000-txns-3-keys/{name}");
            let a = check_operations(&txn_model(), ops, Limits::none());
            let unknown = ops.iter().filter(|o| o.output.is_none()).count();
            eprintln!(
                "multi-register/{id}: {} ops ({unknown} unknown), {} states, {:?}, verdict {:?}",
                ops.len(),
                a.states,
                a.elapsed,
                a.result.validity()
            );
            assert_eq!(a.result.validity(), expect);
            group.throughput(Throughput::Elements(ops.len() as u64));
            group.bench_function(&id, |b| b.iter(|| check_txns(black_box(ops))));
        }
    }
    group.finish();
}

criterion_group!(
    benches,
    cas_register,
    simulated_etcd,
    from_events,
    multi_register
);
criterion_main!(benches);
