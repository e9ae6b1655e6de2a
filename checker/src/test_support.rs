//! A tiny builder for hand-written histories in unit tests.
//!
//! Tests build [`Event`]s and pair them with [`History::ops`], so every check test
//! also exercises pairing. Times are given in milliseconds for readability.

use serde_json::{Value, json};

use crate::event::{Event, EventType, Process};
use crate::history::History;
use crate::input::CheckInput;
use crate::ledger::{Decision, LedgerEntry};
use crate::op::Op;

/// Milliseconds to the history's nanoseconds.
pub fn ms(ms: u64) -> u64 {
    ms * 1_000_000
}

#[derive(Default)]
pub struct Builder {
    pub events: Vec<Event>,
    pub ledger: Vec<LedgerEntry>,
}

impl Builder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends one event; returns its index. `time` is in ms.
    pub fn event(
        &mut self,
        process: Process,
        node: Option<&str>,
        time_ms: u64,
        kind: EventType,
        f: &str,
        value: Value,
    ) -> u64 {
        let index = self.events.len() as u64;
        self.events.push(Event {
            index,
            time: ms(time_ms),
            process,
            node: node.map(str::to_owned),
            kind,
            f: f.to_owned(),
            value,
            error: None,
        });
        index
    }

    /// Client process `p` on node `w{p}` invokes `f`.
    pub fn invoke(&mut self, p: u64, time_ms: u64, f: &str, value: Value) -> u64 {
        let node = format!("w{p}");
        self.event(
            Process::Client(p),
            Some(&node),
            time_ms,
            EventType::Invoke,
            f,
            value,
        )
    }

    /// Client process `p` completes its open operation.
    pub fn complete(
        &mut self,
        p: u64,
        time_ms: u64,
        kind: EventType,
        f: &str,
        value: Value,
    ) -> u64 {
        let node = format!("w{p}");
        self.event(Process::Client(p), Some(&node), time_ms, kind, f, value)
    }

    pub fn nemesis(&mut self, time_ms: u64, f: &str, nodes: &[&str]) -> u64 {
        self.event(
            Process::nemesis(),
            None,
            time_ms,
            EventType::Info,
            f,
            json!({ "nodes": nodes }),
        )
    }

    /// A successful acquire of `lock` by `w{p}`; returns the invoke index.
    pub fn acquire(
        &mut self,
        p: u64,
        lock: &str,
        token: u64,
        lease_ms: u64,
        t0: u64,
        t1: u64,
    ) -> u64 {
        let i = self.invoke(
            p,
            t0,
            "acquire",
            json!({ "lock": lock, "ttl_ms": lease_ms }),
        );
        self.complete(
            p,
            t1,
            EventType::Ok,
            "acquire",
            json!({ "lock": lock, "token": token, "lease_ms": lease_ms }),
        );
        i
    }

    /// A renew of `token` completing with `kind` (`None`: never completes).
    pub fn renew(
        &mut self,
        p: u64,
        lock: &str,
        token: u64,
        lease_ms: u64,
        t0: u64,
        end: Option<(u64, EventType)>,
    ) -> u64 {
        let i = self.invoke(p, t0, "renew", json!({ "lock": lock, "token": token }));
        if let Some((t1, kind)) = end {
            self.complete(
                p,
                t1,
                kind,
                "renew",
                json!({ "lock": lock, "token": token, "lease_ms": lease_ms }),
            );
        }
        i
    }

    /// A write by `w{p}` completing with `kind`; returns the invoke index.
    #[allow(clippy::too_many_arguments)]
    pub fn write(
        &mut self,
        p: u64,
        key: &str,
        token: u64,
        data: &str,
        t0: u64,
        t1: u64,
        kind: EventType,
    ) -> u64 {
        let value = json!({ "key": key, "token": token, "data": data });
        let i = self.invoke(p, t0, "write", value.clone());
        self.complete(p, t1, kind, "write", value);
        i
    }

    /// The controller's final read of `key` (process `final`), sent at
    /// `time_ms` and answered ok 1 ms later with `(token, data)`, or empty;
    /// returns the invoke index.
    pub fn final_read(&mut self, time_ms: u64, key: &str, value: Option<(u64, &str)>) -> u64 {
        let fin = || Process::Named("final".into());
        let i = self.event(
            fin(),
            None,
            time_ms,
            EventType::Invoke,
            "read",
            json!({ "key": key }),
        );
        let reply = match value {
            Some((token, data)) => json!({ "key": key, "token": token, "data": data }),
            None => json!({ "key": key }),
        };
        self.event(fin(), None, time_ms + 1, EventType::Ok, "read", reply);
        i
    }

    pub fn release(&mut self, p: u64, lock: &str, token: u64, t0: u64, t1: u64) -> u64 {
        let value = json!({ "lock": lock, "token": token });
        let i = self.invoke(p, t0, "release", value.clone());
        self.complete(p, t1, EventType::Ok, "release", value);
        i
    }

    /// A storage decision by the single storage node; `high_water` is worked out.
    pub fn ledger(
        &mut self,
        time_ms: u64,
        key: &str,
        token: u64,
        data: &str,
        from: &str,
        decision: Decision,
    ) {
        let before = self
            .ledger
            .iter()
            .filter(|e| e.key == key)
            .map(|e| e.high_water)
            .max()
            .unwrap_or(0);
        let high_water = match decision {
            Decision::Accepted => before.max(token),
            Decision::Rejected => before,
        };
        self.ledger.push(LedgerEntry {
            time: ms(time_ms),
            key: key.to_owned(),
            token,
            data: data.to_owned(),
            from: from.to_owned(),
            decision,
            high_water,
            node: None,
        });
    }

    pub fn ops(&self) -> Vec<Op> {
        History::new(self.events.clone()).ops()
    }
}

/// Input with the ledger, or without (`None`) when `with_ledger` is false.
pub fn input<'a>(ops: &'a [Op], ledger: &'a [LedgerEntry], with_ledger: bool) -> CheckInput<'a> {
    CheckInput {
        ops,
        ledger: with_ledger.then_some(ledger),
    }
}

/// The seed scenario of DESIGN.md, times in ms: w1 gets token 33 (lease 2 s) and
/// writes; it is paused; w2 gets 34 when the lease ran out and writes; w1 resumes
/// and writes with 33. With `fencing` storage rejects that write, else accepts it.
///
/// History indexes: 0 acquire 33, 2 first write, 5 acquire 34, 7 w2's write,
/// 12 the zombie write. Ledger positions: 0, 1, 2 (the zombie write).
pub fn seed_scenario(fencing: bool) -> Builder {
    let mut b = Builder::new();
    b.acquire(1, "L", 33, 2000, 0, 1);
    b.write(1, "k", 33, "w1-1", 2, 4, EventType::Ok);
    b.ledger(3, "k", 33, "w1-1", "w1", Decision::Accepted);
    b.nemesis(5, "pause", &["w1"]);
    // Sent after the lease of 33 ran out: a lease counts from the send time, so
    // an acquire that blocked for the whole 2 s would leave w2 no time at all.
    b.acquire(2, "L", 34, 2000, 2050, 2100);
    b.write(2, "k", 34, "w2-1", 2200, 2202, EventType::Ok);
    b.ledger(2201, "k", 34, "w2-1", "w2", Decision::Accepted);
    b.release(2, "L", 34, 2300, 2301);
    b.nemesis(3000, "resume", &["w1"]);
    let (decision, reply) = if fencing {
        (Decision::Rejected, EventType::Fail)
    } else {
        (Decision::Accepted, EventType::Ok)
    };
    b.write(1, "k", 33, "w1-2", 3001, 3003, reply);
    b.ledger(3002, "k", 33, "w1-2", "w1", decision);
    b
}
