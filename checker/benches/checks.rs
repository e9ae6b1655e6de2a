//! Throughput of the checks on a valid 1,000,000-op history, and of parsing.
//!
//! `cargo bench -p leasehold-checker`. Generation is not timed. Sample counts and
//! times are small so the whole run takes a few minutes on two cores; criterion
//! prints elements/s (ops per second) for every benchmark.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use leasehold_checker::{
    Call, CheckInput, CheckOptions, Decision, Event, EventType, History, LedgerEntry, Op, Outcome,
    Process, check_fencing_order, check_lost_writes, check_mutual_exclusion, check_stale_writes,
    check_token_order, check_with, read_history,
};
use serde_json::json;

const MS: u64 = 1_000_000;
const WORKERS: u64 = 8;
const KEYS: u64 = 16;
const LEASE_MS: u64 = 1000;

/// A valid run of `n` ops: workers take turns on one lock; each turn is an
/// acquire, a competing acquire by another worker that fails, a renew, two writes
/// and a release. Storage accepts the writes, and every 50th turn rejects a
/// zombie write of the previous holder. Indexes are assigned in time order, as in
/// a real history.
fn generate(n: usize) -> (Vec<Op>, Vec<LedgerEntry>) {
    let mut ops: Vec<Op> = Vec::with_capacity(n);
    let mut ledger = Vec::new();
    let mut now = 0u64;
    let mut tick = |ms: u64| {
        now += ms * MS;
        now
    };
    let op = |worker: u64, t0: u64, t1: u64, outcome: Outcome, call: Call| Op {
        process: Process::Client(worker),
        node: Some(format!("w{worker}")),
        invoke_index: 0,
        invoke_time: t0,
        complete_index: None,
        complete_time: Some(t1),
        outcome,
        call,
    };
    let mut turn = 0u64;
    while ops.len() < n {
        let w = turn % WORKERS;
        let rival = (turn + 3) % WORKERS;
        let token = turn + 1;
        let lock = || "L".to_owned();
        let t0 = tick(1);
        let rival_t0 = t0 + MS / 2;
        let t1 = tick(2);
        ops.push(op(
            w,
            t0,
            t1,
            Outcome::Ok,
            Call::Acquire {
                lock: lock(),
                token: Some(token),
                lease_ms: Some(LEASE_MS),
            },
        ));
        ops.push(op(
            rival,
            rival_t0,
            tick(1),
            Outcome::Fail,
            Call::Acquire {
                lock: lock(),
                token: None,
                lease_ms: None,
            },
        ));
        let r0 = tick(1);
        ops.push(op(
            w,
            r0,
            tick(1),
            Outcome::Ok,
            Call::Renew {
                lock: lock(),
                token,
                lease_ms: Some(LEASE_MS),
            },
        ));
        for i in 0..2 {
            let key = format!("k{}", (turn * 2 + i) % KEYS);
            let data = format!("w{w}-{turn}-{i}");
            let w0 = tick(1);
            let at = tick(1);
            ledger.push(LedgerEntry {
                time: at,
                key: key.clone(),
                token,
                data: data.clone(),
                from: format!("w{w}"),
                decision: Decision::Accepted,
                high_water: token,
                node: None,
            });
            ops.push(op(
                w,
                w0,
                tick(1),
                Outcome::Ok,
                Call::Write { key, token, data },
            ));
        }
        if turn % 50 == 1 {
            let at = tick(1);
            let key = format!("k{}", (turn * 2) % KEYS);
            ledger.push(LedgerEntry {
                time: at,
                key,
                token: token - 1,
                data: format!("zombie-{turn}"),
                from: format!("w{}", (turn - 1) % WORKERS),
                decision: Decision::Rejected,
                high_water: token,
                node: None,
            });
        }
        let r0 = tick(1);
        ops.push(op(
            w,
            r0,
            tick(1),
            Outcome::Ok,
            Call::Release {
                lock: lock(),
                token,
            },
        ));
        turn += 1;
    }
    ops.truncate(n);
    // History indexes in time order of every invocation and completion.
    let mut stamps: Vec<(u64, usize, bool)> = Vec::with_capacity(2 * ops.len());
    for (i, o) in ops.iter().enumerate() {
        stamps.push((o.invoke_time, i, false));
        stamps.push((o.complete_time.unwrap(), i, true));
    }
    stamps.sort_unstable();
    for (index, &(_, i, completion)) in stamps.iter().enumerate() {
        if completion {
            ops[i].complete_index = Some(index as u64);
        } else {
            ops[i].invoke_index = index as u64;
        }
    }
    ops.sort_by_key(|o| o.invoke_index);
    (ops, ledger)
}

/// The events of `ops`, as `history.jsonl` would hold them.
fn events_of(ops: &[Op]) -> Vec<Event> {
    let mut events = Vec::with_capacity(2 * ops.len());
    for o in ops {
        let node = o.node.clone();
        let (f, invoke, reply) = match &o.call {
            Call::Acquire {
                lock,
                token,
                lease_ms,
            } => (
                "acquire",
                json!({"lock": lock, "ttl_ms": LEASE_MS}),
                json!({"lock": lock, "token": token, "lease_ms": lease_ms}),
            ),
            Call::Renew { lock, token, .. } => (
                "renew",
                json!({"lock": lock, "token": token}),
                json!({"lock": lock, "token": token, "lease_ms": LEASE_MS}),
            ),
            Call::Release { lock, token } => {
                let v = json!({"lock": lock, "token": token});
                ("release", v.clone(), v)
            }
            Call::Write { key, token, data } => {
                let v = json!({"key": key, "token": token, "data": data});
                ("write", v.clone(), v)
            }
            other => unreachable!("{other:?}"),
        };
        let kind = match o.outcome {
            Outcome::Ok => EventType::Ok,
            Outcome::Fail => EventType::Fail,
            Outcome::Info => EventType::Info,
        };
        for (index, time, kind, value) in [
            (o.invoke_index, o.invoke_time, EventType::Invoke, invoke),
            (
                o.complete_index.unwrap(),
                o.complete_time.unwrap(),
                kind,
                reply,
            ),
        ] {
            events.push(Event {
                index,
                time,
                process: o.process.clone(),
                node: node.clone(),
                kind,
                f: f.to_owned(),
                value,
                error: None,
            });
        }
    }
    events.sort_by_key(|e| e.index);
    events
}

fn checks(c: &mut Criterion) {
    let (ops, ledger) = generate(1_000_000);
    let input = CheckInput {
        ops: &ops,
        ledger: Some(&ledger),
    };
    // The linearizability search is benchmarked on its own (benches/linearizability.rs).
    let checked = check_with(
        input,
        &CheckOptions {
            fencing: Some(true),
            linearizability: None,
        },
    );
    // The generated history has no final reads, so lost-write judges nothing
    // (unknown); every other check must pass.
    for c in &checked.checks {
        let want = if c.name == "lost-write" {
            leasehold_checker::Validity::Unknown
        } else {
            leasehold_checker::Validity::Valid
        };
        assert_eq!(c.validity, want, "{}: {}", c.name, c.summary);
    }
    assert!(checked.checks[0].stats["stale_rejected"].as_u64().unwrap() > 0);

    let mut group = c.benchmark_group("checks-1M-ops");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(6))
        .throughput(Throughput::Elements(ops.len() as u64));
    group.bench_function("stale-write", |b| {
        b.iter(|| check_stale_writes(black_box(input)))
    });
    group.bench_function("fencing-order", |b| {
        b.iter(|| check_fencing_order(black_box(input)))
    });
    group.bench_function("token-order", |b| {
        b.iter(|| check_token_order(black_box(input)))
    });
    group.bench_function("mutual-exclusion", |b| {
        b.iter(|| check_mutual_exclusion(black_box(input)))
    });
    group.bench_function("lost-write", |b| {
        b.iter(|| check_lost_writes(black_box(input)))
    });
    // Every property but the linearizability search, which has its own bench.
    let no_search = CheckOptions {
        fencing: Some(true),
        linearizability: None,
    };
    group.bench_function("check-without-search", |b| {
        b.iter(|| check_with(black_box(input), &no_search))
    });
    group.finish();
}

fn parsing(c: &mut Criterion) {
    let (ops, _) = generate(50_000);
    let events = events_of(&ops);
    assert_eq!(events.len(), 100_000);
    let mut jsonl = Vec::new();
    for e in &events {
        serde_json::to_writer(&mut jsonl, e).unwrap();
        jsonl.push(b'\n');
    }
    assert_eq!(History::new(events).ops(), ops, "pairing round trip");

    let mut group = c.benchmark_group("parse-100k-events");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .throughput(Throughput::Elements(100_000));
    group.bench_function("read_history", |b| {
        b.iter(|| read_history(black_box(jsonl.as_slice())).unwrap())
    });
    let history = read_history(jsonl.as_slice()).unwrap();
    group.bench_function("History::ops", |b| b.iter(|| black_box(&history).ops()));
    group.bench_function("read_history+ops", |b| {
        b.iter(|| read_history(black_box(jsonl.as_slice())).unwrap().ops())
    });
    group.finish();
}

criterion_group!(benches, checks, parsing);
criterion_main!(benches);
