//! Near misses: for every write storage accepted, how long before (or after)
//! its holder's lease deadline it landed.
//!
//! A fenced run can pass with writes landing 3 ms before their deadline; the
//! next run, on a slower machine, may not. The verdict cannot show that; the
//! margins do.
//!
//! # The margin
//!
//! For an accepted write with token `t`, landed at the latest at `upper` (the
//! ledger's decision time, or without a ledger the write's reply: the last
//! moment it may have landed, so the margin errs small), the deadline is the
//! lease deadline of `t` at that moment (`deadline_at(upper)`, as the
//! stale-write check defines it: the largest send time + lease of an ok
//! acquire or renew of `t` sent by then), and
//!
//! ```text
//! margin = deadline_at(upper) - upper
//! ```
//!
//! Positive: it landed that long before the lease ran out; negative: that long
//! after (a stale write, which the stale-write check judges). A write whose
//! token no ok acquire granted, or whose lease has no known length, has no
//! margin and is only counted.
//!
//! # What is reported
//!
//! A histogram over fixed, decade-wide buckets (after the deadline, 0–1 ms,
//! 1–10 ms, 10–100 ms, 100 ms–1 s, 1 s or more before it), the smallest
//! margin, the median, and the ten closest calls, closest first. Pure and
//! O(n log n), like the checks.
//!
//! ```
//! use leasehold_checker::{CheckInput, Event, History, lease_margins};
//! use serde_json::json;
//!
//! let ms = 1_000_000;
//! let e = |index, time, process, kind: &str, f: &str, value| {
//!     serde_json::from_value::<Event>(json!({
//!         "index": index, "time": time, "process": process, "type": kind, "f": f,
//!         "value": value, "node": "w1"
//!     }))
//!     .unwrap()
//! };
//! let events = vec![
//!     e(0, 0, 0, "invoke", "acquire", json!({"lock": "L", "ttl_ms": 1000})),
//!     e(1, ms, 0, "ok", "acquire", json!({"lock": "L", "token": 1, "lease_ms": 1000})),
//!     e(2, 990 * ms, 0, "invoke", "write", json!({"key": "k", "token": 1, "data": "a"})),
//!     e(3, 997 * ms, 0, "ok", "write", json!({"key": "k", "token": 1, "data": "a"})),
//! ];
//! let ops = History::new(events).ops();
//! let m = lease_margins(CheckInput { ops: &ops, ledger: None });
//! assert_eq!(m.writes, 1);
//! assert_eq!(m.closest[0].margin_ms, 3.0); // replied 3 ms before the deadline
//! ```

use serde::{Deserialize, Serialize};

use crate::input::CheckInput;
use crate::lease::Leases;
use crate::writes::accepted_and_rejected_writes;

/// How many closest calls are listed.
pub const CLOSEST: usize = 10;

/// The near misses of a history (see the module documentation).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Margins {
    /// Where the landing times come from: `"ledger"` (storage's decision
    /// times) or `"replies"` (the writes' replies: the latest they may have
    /// landed).
    pub basis: String,
    /// Accepted writes with a margin.
    pub writes: u64,
    /// Accepted writes without one (token never granted ok, or a lease of
    /// unknown length).
    pub without_deadline: u64,
    /// The smallest margin, in milliseconds (negative: after the deadline).
    pub min_ms: Option<f64>,
    /// The median margin, in milliseconds.
    pub median_ms: Option<f64>,
    /// Accepted writes that landed after their lease deadline.
    pub after_deadline: u64,
    /// How many margins fall in each bucket, in order.
    pub histogram: Vec<MarginBucket>,
    /// The [`CLOSEST`] smallest margins, smallest first.
    pub closest: Vec<Margin>,
}

/// One bucket of [`Margins::histogram`]: margins in `[from_ms, to_ms)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MarginBucket {
    /// How the bucket reads (`1–10 ms before`).
    pub label: String,
    /// Its lower bound in milliseconds; `None`: unbounded.
    pub from_ms: Option<f64>,
    /// Its upper bound in milliseconds (exclusive); `None`: unbounded.
    pub to_ms: Option<f64>,
    /// Margins in it.
    pub count: u64,
}

/// One accepted write's margin.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Margin {
    /// The node that wrote.
    pub writer: String,
    /// The key written.
    pub key: String,
    /// Its fencing token.
    pub token: u64,
    /// The data written.
    pub data: String,
    /// When it landed at the latest, in nanoseconds since the run started.
    pub landed_ns: u64,
    /// Its holder's lease deadline at that moment.
    pub deadline_ns: u64,
    /// `deadline - landed`, in milliseconds: positive before the deadline.
    pub margin_ms: f64,
    /// History index of the write's invocation, when the history has it.
    pub op: Option<u64>,
}

/// The buckets' bounds in milliseconds, and their labels.
const BUCKETS: [(Option<f64>, Option<f64>, &str); 6] = [
    (None, Some(0.0), "after the deadline"),
    (Some(0.0), Some(1.0), "0–1 ms before"),
    (Some(1.0), Some(10.0), "1–10 ms before"),
    (Some(10.0), Some(100.0), "10–100 ms before"),
    (Some(100.0), Some(1000.0), "100 ms–1 s before"),
    (Some(1000.0), None, "1 s or more before"),
];

/// The margins of every accepted write of `input` (see the module
/// documentation).
pub fn lease_margins(input: CheckInput<'_>) -> Margins {
    let leases = Leases::from_ops(input.ops);
    let mut margins = Vec::new();
    let mut without_deadline = 0;
    for w in accepted_and_rejected_writes(input) {
        if !w.accepted {
            continue;
        }
        let deadline = leases
            .token(w.token)
            .and_then(|t| t.deadline_grant_at(w.upper))
            .and_then(|g| g.deadline());
        let Some(deadline) = deadline.filter(|_| w.upper != u64::MAX) else {
            without_deadline += 1;
            continue;
        };
        let writer = match (w.entry, w.op) {
            (Some(e), _) => e.from.clone(),
            (None, Some(o)) => input.ops[o].actor(),
            (None, None) => "an unknown writer".to_owned(),
        };
        margins.push(Margin {
            writer,
            key: w.key.to_owned(),
            token: w.token,
            data: w.data.to_owned(),
            landed_ns: w.upper,
            deadline_ns: deadline,
            margin_ms: (deadline as f64 - w.upper as f64) / 1e6,
            op: w.op.map(|o| input.ops[o].invoke_index),
        });
    }
    margins.sort_by(|a, b| a.margin_ms.total_cmp(&b.margin_ms));
    let histogram = BUCKETS
        .iter()
        .map(|&(from, to, label)| MarginBucket {
            label: label.to_owned(),
            from_ms: from,
            to_ms: to,
            count: margins
                .iter()
                .filter(|m| from.is_none_or(|f| m.margin_ms >= f))
                .filter(|m| to.is_none_or(|t| m.margin_ms < t))
                .count() as u64,
        })
        .collect();
    Margins {
        basis: if input.ledger.is_some() {
            "ledger"
        } else {
            "replies"
        }
        .to_owned(),
        writes: margins.len() as u64,
        without_deadline,
        min_ms: margins.first().map(|m| m.margin_ms),
        median_ms: margins.get(margins.len() / 2).map(|m| m.margin_ms),
        after_deadline: margins.iter().filter(|m| m.margin_ms < 0.0).count() as u64,
        histogram,
        closest: margins.into_iter().take(CLOSEST).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EventType;
    use crate::ledger::Decision;
    use crate::test_support::{Builder, input, ms, seed_scenario};

    #[test]
    fn each_accepted_write_is_measured_against_its_deadline_from_the_ledger() {
        let b = seed_scenario(false);
        let ops = b.ops();
        let m = lease_margins(input(&ops, &b.ledger, true));
        assert_eq!(m.basis, "ledger");
        let accepted = b
            .ledger
            .iter()
            .filter(|e| e.decision == Decision::Accepted)
            .count() as u64;
        assert_eq!(m.writes + m.without_deadline, accepted);
        // The seed scenario's zombie write lands after its lease: the smallest
        // margin is negative, and it is the first closest call.
        assert!(m.min_ms.unwrap() < 0.0, "{m:?}");
        assert_eq!(m.after_deadline, 1);
        assert_eq!(m.closest[0].margin_ms, m.min_ms.unwrap());
        assert_eq!(m.histogram[0].count, 1);
        let total: u64 = m.histogram.iter().map(|b| b.count).sum();
        assert_eq!(total, m.writes, "every margin is in one bucket");
        assert!(
            m.closest
                .windows(2)
                .all(|w| w[0].margin_ms <= w[1].margin_ms)
        );
    }

    #[test]
    fn a_write_just_before_its_deadline_is_a_close_call_in_a_valid_history() {
        let mut b = Builder::new();
        b.acquire(1, "L", 1, 1000, 0, 1);
        // Replied 3 ms before the lease (sent at 0, 1000 ms) runs out.
        b.write(1, "k", 1, "close", 990, 997, EventType::Ok);
        b.write(1, "k", 1, "early", 100, 120, EventType::Ok);
        let ops = b.ops();
        let m = lease_margins(input(&ops, &b.ledger, false));
        assert_eq!(m.basis, "replies");
        assert_eq!(m.writes, 2);
        assert_eq!(m.closest[0].data, "close");
        assert!((m.closest[0].margin_ms - 3.0).abs() < 1e-9);
        assert_eq!(m.closest[0].deadline_ns, ms(1000));
        assert!((m.closest[1].margin_ms - 880.0).abs() < 1e-9);
        assert_eq!(m.after_deadline, 0);
        let count = |label: &str| m.histogram.iter().find(|b| b.label == label).unwrap().count;
        assert_eq!(count("1–10 ms before"), 1);
        assert_eq!(count("100 ms–1 s before"), 1);
    }

    #[test]
    fn a_write_whose_token_was_never_granted_has_no_margin() {
        let mut b = Builder::new();
        b.write(1, "k", 9, "orphan", 10, 20, EventType::Ok);
        let ops = b.ops();
        let m = lease_margins(input(&ops, &b.ledger, false));
        assert_eq!((m.writes, m.without_deadline), (0, 1));
        assert_eq!(m.min_ms, None);
        assert!(m.closest.is_empty());
    }
}
