//! The history generator shared by the property tests: a correct run of one
//! lock `L` taken in turns by four workers (the sequential truth), perturbed with
//! concurrency (other workers' busy acquires overlapping a hold), nemesis pauses
//! and indeterminate (`info`) acquires and releases, with the ledger of a fenced
//! store that accepted every write of a holder within its lease.

// Each test crate uses only part of the generator.
#![allow(dead_code)]

use leasehold_checker::{Decision, Event, EventType, LedgerEntry, Process};
use proptest::prelude::*;
use serde_json::{Value, json};

pub const MS: u64 = 1_000_000;

/// One turn of one worker holding the lock.
#[derive(Clone, Debug)]
pub struct Turn {
    pub worker: u64,
    pub lease_ms: u64,
    pub latency_ms: u64,
    pub token_step: u64,
    pub failed_attempt: bool,
    /// (gap before the write in ms, second key?)
    pub writes: Vec<(u64, bool)>,
    pub renew: bool,
    /// 0: lease left to expire, 1: released ok, 2: release ended info.
    pub release: u8,
    pub pause: bool,
    pub zombie_rejected: bool,
    /// Another worker's acquire overlapping this hold: 0 none, 1 turned away
    /// (`fail`), 2 timed out (`info`: it never took effect).
    pub busy: u8,
    /// Which other worker (1..=3 after the holder) tries.
    pub busy_worker: u64,
    /// Whether the busy acquire is sent before the holder's grant completes.
    pub busy_early: bool,
}

pub fn turn() -> impl Strategy<Value = Turn> {
    (
        (0u64..4, 100u64..2000, 1u64..5, 1u64..3, any::<bool>()),
        prop::collection::vec((0u64..10, any::<bool>()), 0..5),
        (any::<bool>(), 0u8..3, any::<bool>(), any::<bool>()),
        (0u8..3, 1u64..4, any::<bool>()),
    )
        .prop_map(
            |(
                (worker, lease_ms, latency_ms, token_step, failed_attempt),
                writes,
                (renew, release, pause, zombie_rejected),
                (busy, busy_worker, busy_early),
            )| Turn {
                worker,
                lease_ms,
                latency_ms,
                token_step,
                failed_attempt,
                writes,
                renew,
                release,
                pause,
                zombie_rejected,
                busy,
                busy_worker,
                busy_early,
            },
        )
}

/// What the generator knows of each grant, to aim injected violations.
pub struct Grant {
    pub token: u64,
    pub node: String,
    pub complete_time: u64,
    /// The lease deadline, and the invoke index of the op that set it.
    pub deadline: u64,
    pub deadline_op: u64,
}

#[derive(Default)]
pub struct Gen {
    pub events: Vec<Event>,
    pub ledger: Vec<LedgerEntry>,
    pub grants: Vec<Grant>,
    /// Current process number of each worker (a worker whose op ended `info`
    /// continues under a new one).
    pub process: Vec<u64>,
    pub next_process: u64,
    /// Every event gets a strictly larger time.
    pub now: u64,
}

impl Gen {
    pub fn tick(&mut self, ms: u64) -> u64 {
        self.now += ms.max(1) * MS;
        self.now
    }

    pub fn push(
        &mut self,
        process: Process,
        node: Option<&str>,
        kind: EventType,
        f: &str,
        value: Value,
    ) -> u64 {
        let index = self.events.len() as u64;
        self.events.push(Event {
            index,
            time: self.now,
            process,
            node: node.map(str::to_owned),
            kind,
            f: f.to_owned(),
            value,
            error: None,
        });
        index
    }

    pub fn client(&mut self, worker: u64, kind: EventType, f: &str, value: Value) -> u64 {
        let p = self.process[worker as usize];
        let node = format!("w{worker}");
        let index = self.push(Process::Client(p), Some(&node), kind, f, value);
        if kind == EventType::Info {
            self.process[worker as usize] = self.next_process;
            self.next_process += 1;
        }
        index
    }

    pub fn high_water(&self, key: &str) -> u64 {
        self.ledger
            .iter()
            .filter(|e| e.key == key)
            .map(|e| e.high_water)
            .max()
            .unwrap_or(0)
    }

    pub fn decide(
        &mut self,
        time: u64,
        key: &str,
        token: u64,
        data: &str,
        from: &str,
        decision: Decision,
    ) {
        let high_water = self.high_water(key).max(match decision {
            Decision::Accepted => token,
            Decision::Rejected => 0,
        });
        self.ledger.push(LedgerEntry {
            time,
            key: key.to_owned(),
            token,
            data: data.to_owned(),
            from: from.to_owned(),
            decision,
            high_water,
            node: None,
        });
    }

    /// The largest token granted so far (0 before any grant).
    pub fn last_token(&self) -> u64 {
        self.grants.last().map_or(0, |g| g.token)
    }

    /// Moves the clock past every lease granted so far: the lock is free.
    pub fn wait_until_free(&mut self) {
        let deadline = self.grants.iter().map(|g| g.deadline).max().unwrap_or(0);
        self.now = self.now.max(deadline);
        self.tick(1);
    }

    /// An ok acquire of `lock` by `worker` granting `token` for `lease_ms`;
    /// returns (invoke index, send time, reply time).
    pub fn grant(&mut self, worker: u64, lock: &str, token: u64, lease_ms: u64) -> (u64, u64, u64) {
        let sent = self.tick(1);
        let index = self.client(
            worker,
            EventType::Invoke,
            "acquire",
            json!({"lock": lock, "ttl_ms": lease_ms}),
        );
        let done = self.tick(1);
        self.client(
            worker,
            EventType::Ok,
            "acquire",
            json!({"lock": lock, "token": token, "lease_ms": lease_ms}),
        );
        (index, sent, done)
    }

    /// An ok write by `worker` that storage accepted; returns its invoke index
    /// and ledger position.
    pub fn accepted_write(
        &mut self,
        worker: u64,
        key: &str,
        token: u64,
        data: &str,
    ) -> (u64, usize) {
        let value = json!({"key": key, "token": token, "data": data});
        self.tick(1);
        let index = self.client(worker, EventType::Invoke, "write", value.clone());
        let at = self.tick(1);
        let pos = self.ledger.len();
        self.decide(
            at,
            key,
            token,
            data,
            &format!("w{worker}"),
            Decision::Accepted,
        );
        self.tick(1);
        self.client(worker, EventType::Ok, "write", value);
        (index, pos)
    }

    /// What a correct fenced store holds for `key`: the last accepted entry
    /// with the highest token, as (token, data).
    pub fn stored(&self, key: &str) -> Option<(u64, String)> {
        let mut best: Option<&LedgerEntry> = None;
        for e in &self.ledger {
            if e.key == key
                && e.decision == Decision::Accepted
                && best.is_none_or(|b| e.token >= b.token)
            {
                best = Some(e);
            }
        }
        best.map(|e| (e.token, e.data.clone()))
    }

    /// The controller's final read of `key` (process `final`) returning
    /// `value`; returns its invoke index.
    pub fn final_read(&mut self, key: &str, value: Option<(u64, String)>) -> u64 {
        let p = Process::Named("final".to_owned());
        self.tick(1);
        let index = self.push(
            p.clone(),
            None,
            EventType::Invoke,
            "read",
            json!({"key": key}),
        );
        self.tick(1);
        let reply = match value {
            Some((token, data)) => json!({"key": key, "token": token, "data": data}),
            None => json!({"key": key}),
        };
        self.push(p, None, EventType::Ok, "read", reply);
        index
    }

    /// Correct final reads of both keys, once every lease ran out.
    pub fn final_reads(&mut self) {
        self.wait_until_free();
        for key in ["k0", "k1"] {
            let value = self.stored(key);
            self.final_read(key, value);
        }
    }

    /// A correct run: one holder at a time, every write accepted within the
    /// lease, the next grant only after a release or after the lease ran out;
    /// other workers' acquires during a hold are turned away or time out.
    pub fn run(turns: &[Turn]) -> Gen {
        let mut g = Gen {
            process: (0..4).collect(),
            next_process: 4,
            ..Gen::default()
        };
        let mut token = 0;
        for (i, t) in turns.iter().enumerate() {
            let w = t.worker;
            let node = format!("w{w}");
            let busy = (t.busy != 0).then_some((w + t.busy_worker) % 4);
            if t.pause {
                g.tick(1);
                g.push(
                    Process::nemesis(),
                    None,
                    EventType::Info,
                    "pause",
                    json!({"nodes": [node]}),
                );
            }
            if t.failed_attempt {
                g.tick(1);
                g.client(w, EventType::Invoke, "acquire", json!({"lock": "L"}));
                g.tick(1);
                g.client(w, EventType::Fail, "acquire", json!({"error": "held"}));
            }
            token += t.token_step;
            let sent = g.tick(1);
            let acquire = g.client(
                w,
                EventType::Invoke,
                "acquire",
                json!({"lock": "L", "ttl_ms": t.lease_ms}),
            );
            let busy_acquire = json!({"lock": "L", "ttl_ms": t.lease_ms});
            if let Some(b) = busy.filter(|_| t.busy_early) {
                g.tick(1);
                g.client(b, EventType::Invoke, "acquire", busy_acquire.clone());
            }
            let complete_time = g.tick(t.latency_ms);
            g.client(
                w,
                EventType::Ok,
                "acquire",
                json!({"lock": "L", "token": token, "lease_ms": t.lease_ms}),
            );
            if let Some(b) = busy.filter(|_| !t.busy_early) {
                g.tick(1);
                g.client(b, EventType::Invoke, "acquire", busy_acquire);
            }
            let mut deadline = sent + t.lease_ms * MS;
            let mut deadline_op = acquire;
            for (n, &(gap, second)) in t.writes.iter().enumerate() {
                if t.renew && n == t.writes.len() / 2 {
                    let sent = g.tick(1);
                    let renew = g.client(
                        w,
                        EventType::Invoke,
                        "renew",
                        json!({"lock": "L", "token": token}),
                    );
                    g.tick(1);
                    g.client(
                        w,
                        EventType::Ok,
                        "renew",
                        json!({"lock": "L", "token": token, "lease_ms": t.lease_ms}),
                    );
                    deadline = sent + t.lease_ms * MS;
                    deadline_op = renew;
                }
                let key = if second { "k1" } else { "k0" };
                let data = format!("{node}-{i}-{n}");
                let value = json!({"key": key, "token": token, "data": data});
                g.tick(gap);
                g.client(w, EventType::Invoke, "write", value.clone());
                let at = g.tick(1);
                g.decide(at, key, token, &data, &node, Decision::Accepted);
                g.tick(1);
                g.client(w, EventType::Ok, "write", value);
                assert!(g.now < deadline, "generator: write outside the lease");
            }
            if let Some(b) = busy {
                // Still within the hold: the service turned it away, or the
                // client gave up waiting.
                g.tick(1);
                if t.busy == 1 {
                    g.client(b, EventType::Fail, "acquire", json!({"error": "held"}));
                } else {
                    g.client(b, EventType::Info, "acquire", json!({"error": "timeout"}));
                }
            }
            if t.zombie_rejected && i > 0 {
                // The previous holder's late write, turned away by fencing.
                let old = &g.grants[i - 1];
                let (old_token, old_node) = (old.token, old.node.clone());
                if g.high_water("k0") > old_token {
                    let at = g.tick(1);
                    g.decide(
                        at,
                        "k0",
                        old_token,
                        &format!("zombie-{i}"),
                        &old_node,
                        Decision::Rejected,
                    );
                }
            }
            let released = t.release != 0;
            if released {
                let value = json!({"lock": "L", "token": token});
                g.tick(1);
                g.client(w, EventType::Invoke, "release", value.clone());
                g.tick(1);
                let end = if t.release == 1 {
                    EventType::Ok
                } else {
                    EventType::Info
                };
                g.client(w, end, "release", value);
            }
            if t.release != 1 {
                // Nobody may be granted the lock before this lease runs out.
                g.now = g.now.max(deadline);
            }
            if t.pause {
                g.tick(1);
                g.push(
                    Process::nemesis(),
                    None,
                    EventType::Info,
                    "resume",
                    json!({"nodes": [node]}),
                );
            }
            g.grants.push(Grant {
                token,
                node,
                complete_time,
                deadline,
                deadline_op,
            });
        }
        g
    }
}
