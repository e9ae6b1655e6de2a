//! How long `render_report` takes, and how big the page gets, for synthetic
//! histories of 10k, 100k and 1M operations: eight workers taking turns at a
//! lock (acquire, write, renew, write, release; the others' acquires fail
//! busy), the holder paused for a second every five.
//!
//! Targets (not asserted): 100k ops render in ≤ 1 s into ≤ 10 MB.
//!
//! Run with `cargo bench -p leasehold-results --bench report`.

use std::hint::black_box;
use std::time::{Duration, UNIX_EPOCH};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use leasehold_checker::{
    Anomaly, Certainty, CheckReport, Event, EventType, Judged, Process, Validity,
};
use leasehold_results::{Results, render_report};
use serde_json::{Value, json};

const WORKERS: u64 = 8;
/// A new operation starts every 250 µs, each worker's every 2 ms.
const SLOT_NS: u64 = 250_000;
const MS: u64 = 1_000_000;

/// A deterministic pseudo-random sequence (xorshift), so every run of the
/// bench renders the same pages.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

struct Raw {
    time: u64,
    process: Process,
    node: Option<String>,
    kind: EventType,
    f: &'static str,
    value: Value,
    error: Option<String>,
}

/// A history of `ops` operations plus the nemesis's pauses and resumes.
fn history(ops: u64) -> Vec<Event> {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut raw: Vec<Raw> = Vec::with_capacity(ops as usize * 2 + 64);
    let cycle = [
        "acquire", "write", "write", "write", "renew", "write", "write", "release",
    ];
    let (mut holder, mut step, mut token, mut written) = (0u64, 0usize, 0u64, 0u64);
    let mut pause_due = 5_000 * MS;
    for k in 0..ops {
        let w = k % WORKERS;
        let t = 10 * MS + k * SLOT_NS;
        let latency = 150_000 + rng.next() % 1_700_000;
        if t >= pause_due {
            let holder_node = format!("w{}", holder + 1);
            for (at, f) in [(pause_due, "pause"), (pause_due + 1_000 * MS, "resume")] {
                raw.push(Raw {
                    time: at,
                    process: Process::nemesis(),
                    node: None,
                    kind: EventType::Info,
                    f,
                    value: json!({"nodes": [holder_node], "target": "holder", "latency_us": 300}),
                    error: None,
                });
            }
            pause_due += 5_000 * MS;
        }
        let node = format!("w{}", w + 1);
        let mut push = |time, kind, f, value, error| {
            raw.push(Raw {
                time,
                process: Process::Client(w),
                node: Some(node.clone()),
                kind,
                f,
                value,
                error,
            })
        };
        let lock = json!({"lock": "L", "ttl_ms": 1000});
        if w != holder {
            if rng.next().is_multiple_of(10) {
                push(t, EventType::Invoke, "read", json!({"key": "k0"}), None);
                let got = json!({"key": "k0", "token": token, "data": format!("w{}-{written}", holder + 1)});
                push(t + latency, EventType::Ok, "read", got, None);
            } else {
                push(t, EventType::Invoke, "acquire", lock.clone(), None);
                let busy = format!("busy (holder w{})", holder + 1);
                push(t + latency, EventType::Fail, "acquire", lock, Some(busy));
            }
            continue;
        }
        let f = cycle[step];
        match f {
            "acquire" => {
                token += 1;
                push(t, EventType::Invoke, f, lock, None);
                let granted = json!({"lock": "L", "token": token, "lease_ms": 1000});
                push(t + latency, EventType::Ok, f, granted, None);
            }
            "write" => {
                written += 1;
                let v =
                    json!({"key": "k0", "token": token, "data": format!("w{}-{written}", w + 1)});
                push(t, EventType::Invoke, f, v.clone(), None);
                push(t + latency, EventType::Ok, f, v, None);
            }
            _ => {
                let v = json!({"lock": "L", "token": token});
                push(t, EventType::Invoke, f, v.clone(), None);
                let reply = if f == "renew" {
                    json!({"lock": "L", "token": token, "lease_ms": 1000})
                } else {
                    v
                };
                push(t + latency, EventType::Ok, f, reply, None);
            }
        }
        step += 1;
        if step == cycle.len() {
            step = 0;
            holder = (holder + 1) % WORKERS;
        }
    }
    raw.sort_by_key(|r| r.time);
    raw.into_iter()
        .enumerate()
        .map(|(i, r)| Event {
            index: i as u64,
            time: r.time,
            process: r.process,
            node: r.node,
            kind: r.kind,
            f: r.f.to_owned(),
            value: r.value,
            error: r.error,
        })
        .collect()
}

/// An invalid run with one stale write naming a few ops, so the story and
/// its mini timeline are drawn too.
fn results(history: &[Event]) -> Results {
    let mut r = Results::new("bench", "20261201T000000.000Z", 1, UNIX_EPOCH, "local");
    r.verdict = Validity::Invalid;
    let named: Vec<u64> = history
        .iter()
        .filter(|e| e.kind == EventType::Invoke && e.f == "write")
        .take(3)
        .map(|e| e.index)
        .collect();
    r.checks = vec![CheckReport {
        judged: Judged::new(1, "writes"),
        name: "stale-write".into(),
        validity: Validity::Invalid,
        summary: "1 stale write".into(),
        anomalies: vec![Anomaly::StaleWrite {
            certainty: Certainty::Certain,
            writer: "w1".into(),
            key: "k0".into(),
            token: 1,
            data: "w1-1".into(),
            accepted_at: 20 * MS,
            lease_deadline: 15 * MS,
            late_by_ns: 5 * MS,
            superseded_by: Some(2),
            superseded_holder: Some("w2".into()),
            ops: named,
            ledger: vec![],
        }],
        stats: Default::default(),
    }];
    r
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("render_report");
    group.sample_size(10);
    for ops in [10_000u64, 100_000, 1_000_000] {
        let h = history(ops);
        let r = results(&h);
        let page = render_report(&r, &h);
        eprintln!(
            "report of {ops} ops ({} events): {:.2} MB",
            h.len(),
            page.len() as f64 / 1e6
        );
        drop(page);
        if ops >= 1_000_000 {
            group.warm_up_time(Duration::from_secs(1));
            group.measurement_time(Duration::from_secs(30));
        } else {
            group.warm_up_time(Duration::from_secs(2));
            group.measurement_time(Duration::from_secs(10));
        }
        group.bench_with_input(BenchmarkId::from_parameter(ops), &h, |b, h| {
            b.iter(|| black_box(render_report(&r, h)).len())
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
