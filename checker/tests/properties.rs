//! Property tests: any correct sequential lock history is valid, and one zombie
//! write injected into it is caught as exactly one certain stale write.

use leasehold_checker::{
    Anomaly, Certainty, CheckInput, Decision, Event, EventType, History, LedgerEntry, Process,
    Validity, check,
};
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{Value, json};

const MS: u64 = 1_000_000;

/// One turn of one worker holding the lock.
#[derive(Clone, Debug)]
struct Turn {
    worker: u64,
    lease_ms: u64,
    latency_ms: u64,
    token_step: u64,
    failed_attempt: bool,
    /// (gap before the write in ms, second key?)
    writes: Vec<(u64, bool)>,
    renew: bool,
    /// 0: lease left to expire, 1: released ok, 2: release ended info.
    release: u8,
    pause: bool,
    zombie_rejected: bool,
}

fn turn() -> impl Strategy<Value = Turn> {
    (
        (0u64..4, 100u64..2000, 1u64..5, 1u64..3, any::<bool>()),
        prop::collection::vec((0u64..10, any::<bool>()), 0..5),
        (any::<bool>(), 0u8..3, any::<bool>(), any::<bool>()),
    )
        .prop_map(
            |(
                (worker, lease_ms, latency_ms, token_step, failed_attempt),
                writes,
                (renew, release, pause, zombie_rejected),
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
            },
        )
}

/// What the generator knows of each grant, to aim the injected zombie write.
struct Grant {
    token: u64,
    node: String,
    complete_time: u64,
    /// The lease deadline, and the invoke index of the op that set it.
    deadline: u64,
    deadline_op: u64,
}

#[derive(Default)]
struct Gen {
    events: Vec<Event>,
    ledger: Vec<LedgerEntry>,
    grants: Vec<Grant>,
    /// Current process number of each worker (a worker whose op ended `info`
    /// continues under a new one).
    process: Vec<u64>,
    next_process: u64,
    /// Every event gets a strictly larger time.
    now: u64,
}

impl Gen {
    fn tick(&mut self, ms: u64) -> u64 {
        self.now += ms.max(1) * MS;
        self.now
    }

    fn push(
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

    fn client(&mut self, worker: u64, kind: EventType, f: &str, value: Value) -> u64 {
        let p = self.process[worker as usize];
        let node = format!("w{worker}");
        let index = self.push(Process::Client(p), Some(&node), kind, f, value);
        if kind == EventType::Info {
            self.process[worker as usize] = self.next_process;
            self.next_process += 1;
        }
        index
    }

    fn high_water(&self, key: &str) -> u64 {
        self.ledger
            .iter()
            .filter(|e| e.key == key)
            .map(|e| e.high_water)
            .max()
            .unwrap_or(0)
    }

    fn decide(
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

    /// A correct run: one holder at a time, every write accepted within the
    /// lease, the next grant only after a release or after the lease ran out.
    fn run(turns: &[Turn]) -> Gen {
        let mut g = Gen {
            process: (0..4).collect(),
            next_process: 4,
            ..Gen::default()
        };
        let mut token = 0;
        for (i, t) in turns.iter().enumerate() {
            let w = t.worker;
            let node = format!("w{w}");
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
            let complete_time = g.tick(t.latency_ms);
            g.client(
                w,
                EventType::Ok,
                "acquire",
                json!({"lock": "L", "token": token, "lease_ms": t.lease_ms}),
            );
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

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn correct_history_is_valid_and_an_injected_zombie_write_is_caught(
        turns in prop::collection::vec(turn(), 2..16),
        pick in any::<Index>(),
        delay_ms in 1u64..5000,
        with_history_op in any::<bool>(),
    ) {
        let mut g = Gen::run(&turns);
        let ops = History::new(g.events.clone()).ops();
        for ledger in [Some(g.ledger.as_slice()), None] {
            let checked = check(CheckInput { ops: &ops, ledger });
            prop_assert_eq!(checked.validity, Validity::Valid, "{:#?}", checked);
        }

        // The holder of turn j writes after turn j+1's grant completed.
        let j = pick.index(g.grants.len() - 1);
        let (old, next) = (&g.grants[j], &g.grants[j + 1]);
        let at = next.complete_time + delay_ms * MS;
        let (token, node, deadline, deadline_op) =
            (old.token, old.node.clone(), old.deadline, old.deadline_op);
        let (next_token, next_node) = (next.token, next.node.clone());
        let entry = LedgerEntry {
            time: at,
            key: "zombie".into(),
            token,
            data: "zombie".into(),
            from: node.clone(),
            decision: Decision::Accepted,
            high_water: token,
            node: None,
        };
        let pos = g.ledger.partition_point(|e| e.time <= at);
        g.ledger.insert(pos, entry);
        let mut write_index = None;
        if with_history_op {
            // A process of its own, so its events may come last in the file.
            let value = json!({"key": "zombie", "token": token, "data": "zombie"});
            let p = Process::Client(10_000);
            g.now = at;
            write_index = Some(g.push(p.clone(), Some(&node), EventType::Invoke, "write", value.clone()));
            g.now = at + MS;
            g.push(p, Some(&node), EventType::Ok, "write", value);
        }
        let ops = History::new(g.events.clone()).ops();
        let checked = check(CheckInput { ops: &ops, ledger: Some(&g.ledger) });
        prop_assert_eq!(checked.validity, Validity::Invalid);
        let anomalies: Vec<&Anomaly> = checked.checks.iter().flat_map(|c| &c.anomalies).collect();
        prop_assert_eq!(anomalies.len(), 1, "{:#?}", anomalies);
        let next_grant = ops
            .iter()
            .find(|o| matches!(o.call, leasehold_checker::Call::Acquire { token: Some(t), .. } if t == next_token))
            .map(|o| o.invoke_index)
            .unwrap();
        let expected_ops: Vec<u64> = [Some(deadline_op), write_index, Some(next_grant)]
            .into_iter()
            .flatten()
            .collect();
        prop_assert_eq!(
            anomalies[0],
            &Anomaly::StaleWrite {
                certainty: Certainty::Certain,
                writer: node,
                key: "zombie".into(),
                token,
                data: "zombie".into(),
                accepted_at: at,
                lease_deadline: deadline,
                late_by_ns: at.saturating_sub(deadline),
                superseded_by: Some(next_token),
                superseded_holder: Some(next_node),
                ops: expected_ops,
                ledger: vec![pos],
            }
        );
    }
}
