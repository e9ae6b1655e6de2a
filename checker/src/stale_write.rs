//! Stale writes: storage accepted a write whose holder had lost the lease.
//!
//! # The property
//!
//! **Leases.** The leases are those of [`Leases`](crate::Leases) (see
//! `lease.rs`): an `ok` `acquire` gives fencing token `t` of lock `L` to its
//! node, each `ok` acquire or renew of `t` is a grant covering
//! `[send time, send time + lease]`, and the *lease deadline* of `t` at time `x`
//! is
//!
//! ```text
//! deadline_at(x) = max over ok acquire/renew of t sent no later than x of (invoke_time + lease_ms · 10⁶)
//! ```
//!
//! It is computed from the *send* (invoke) time, not the reply time, on purpose: the
//! lock service starts a lease no earlier than it receives the request, so send
//! time plus TTL is the earliest moment the lease may end. It is the only deadline a correct
//! client can know without trusting the server's clock, and so the deadline a
//! correct client must respect: a holder acting after it has no right to act, even
//! if the server's lease happens to last a little longer. An ok renew without
//! `lease_ms` extends by the acquire's lease; a grant whose lease length is not
//! known at all has no deadline (only the superseding rule below applies to it).
//!
//! Only grants sent by `x` count at `x`: a renew sent after the lease ran out
//! (which a lenient, buggy service may still answer `ok`) does not reach back.
//! The holder of `t` has *lost the lease* at `x` when `x > deadline_at(x)`, or
//! no grant of `t` was sent by `x` at all: between a lapse and a later renew
//! there is a gap in which it holds nothing. Writes name no lock, so the leases
//! of `t` on every lock that granted it count together.
//!
//! A renew of `t` that ended `info` or never completed, sent no later than the
//! write was accepted, may have extended the lease by an unknown amount: the
//! deadline is then *unknown*, and passing the deadline of the ok grants alone
//! proves nothing (it makes the write at most `possible`).
//!
//! **Superseding grant.** An ok `acquire` of a token `t' > t` for the same lock
//! (the lock of `t` is the lock of the first ok acquire that granted it: writes
//! name no lock) whose reply arrived before the write was accepted. Once a later token has
//! been granted, the holder of `t` has lost the lock whatever its deadline says.
//!
//! **Accepted writes.** With a ledger, every ledger entry with decision `accepted`
//! is a write accepted at `entry.time` (lower = upper = that time); it is matched to
//! its history write by `(from, data, token)` for the evidence, and counts even when
//! the history has no such op. Without a ledger, every `ok` `write` op is a write
//! accepted somewhere in `[invoke_time, complete_time]` (lower, upper). Writes that
//! ended `info` are not judged without a ledger: when, or whether, they landed is
//! unknown.
//!
//! **Verdict for a write with token `t`**
//!
//! - *certain* stale if the holder had lost the lease at every moment of
//!   `[lower, upper]` (that is, `lower > deadline_at(upper)`, or no grant of `t`
//!   was sent by `upper`) and no renew of `t` is pending, or `lower` is after
//!   the reply of a superseding grant;
//! - otherwise *possible* if the holder had lost the lease at some moment of
//!   `[lower, upper]` (for a write straddling the deadline, `upper >
//!   deadline_at(upper)`; a pending renew does not count as a grant), or
//!   `upper` is after the reply of a superseding grant;
//! - otherwise fine.
//!
//! The anomaly's `lease_deadline` is the deadline that ran out: the end of the
//! stretch of lease holding `lower` when there is one, else the deadline at
//! `lower`, else (a write before any grant of `t` was sent) the end of the first
//! stretch; `late_by_ns` is how far `lower` is past it.
//!
//! A write whose token no ok acquire granted (the acquire ended `info`, or the
//! token is garbage) is not judged and is counted as `unjudged`.
//!
//! Stale writes that storage *rejected* (ledger decision `rejected`, or without a
//! ledger a write that failed) are not anomalies: that is fencing doing its job.
//! They are counted as `stale_rejected`.
//!
//! The check is invalid if any stale write is certain, unknown if some are only
//! possible, valid otherwise, except that it is unknown when it judged no
//! accepted write at all (none was accepted, or none carries a token an ok
//! acquire granted): a run without writes proves nothing about stale ones. The
//! report counts as judged the accepted writes it judged.
//!
//! It runs in O(n log n): the leases once, then one sweep over grants
//! ordered by reply time, answering every write's "smallest later token
//! granted before this moment" ([`Leases::superseding`](crate::Leases::superseding)).

use crate::input::CheckInput;
use crate::lease::{Grant, Leases, TokenLeases};
use crate::ledger::WriteOps;
use crate::verdict::{
    Anomaly, Certainty, CheckReport, Judged, Validity, judged_nothing, plural, unless_vacuous,
};
use crate::writes::{Write, accepted_and_rejected_writes};

/// Counts gathered by the stale-write check (also put in the report's `stats`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StaleWriteStats {
    /// Writes storage accepted: ledger entries `accepted`, or without a ledger
    /// `ok` writes.
    pub writes_accepted: u64,
    /// Writes storage rejected: ledger entries `rejected`, or without a ledger
    /// failed writes.
    pub writes_rejected: u64,
    /// Accepted writes that are stale, certainly or possibly (one anomaly each).
    pub stale_accepted: u64,
    /// Of `stale_accepted`, those only possibly stale.
    pub stale_possible: u64,
    /// Writes from expired holders that storage rejected: fencing at work.
    pub stale_rejected: u64,
    /// Accepted writes not judged because no ok acquire granted their token.
    pub unjudged: u64,
}

impl StaleWriteStats {
    /// Accepted writes judged: those whose token an ok acquire granted.
    pub fn judged(&self) -> u64 {
        self.writes_accepted - self.unjudged
    }

    /// The counts as the report's `stats` map.
    pub fn to_map(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut m = serde_json::Map::new();
        for (name, n) in [
            ("writes_accepted", self.writes_accepted),
            ("writes_rejected", self.writes_rejected),
            ("stale_accepted", self.stale_accepted),
            ("stale_possible", self.stale_possible),
            ("stale_rejected", self.stale_rejected),
            ("unjudged", self.unjudged),
        ] {
            m.insert(name.to_owned(), n.into());
        }
        m
    }
}

/// The stale-write check (`stale-write`); see the module documentation.
pub fn check_stale_writes(input: CheckInput<'_>) -> CheckReport {
    check_stale_writes_with_stats(input).0
}

/// [`check_stale_writes`], also returning the counts typed.
pub fn check_stale_writes_with_stats(input: CheckInput<'_>) -> (CheckReport, StaleWriteStats) {
    let leases = Leases::from_ops(input.ops);
    let writes = accepted_and_rejected_writes(input);

    // Writes we can judge, and the moments at which to ask for a superseding
    // grant: at the lower bound, and at the upper one when it differs.
    let mut stats = StaleWriteStats::default();
    let mut judged: Vec<(usize, TokenLeases<'_, '_>)> = Vec::with_capacity(writes.len());
    let mut asks = Vec::with_capacity(writes.len() * 2);
    for (w, write) in writes.iter().enumerate() {
        if write.accepted {
            stats.writes_accepted += 1;
        } else {
            stats.writes_rejected += 1;
        }
        let Some(token) = leases.token(write.token) else {
            if write.accepted {
                stats.unjudged += 1;
            }
            continue;
        };
        judged.push((w, token));
        asks.push((token.first(), write.lower));
        asks.push((token.first(), write.upper));
    }
    let superseding = leases.superseding(&asks);

    // Matching ledger entries to history ops costs a pass over every write; only
    // anomalies need it, so it is built on the first one.
    let mut matching: Option<WriteOps<'_>> = None;
    let mut anomalies = Vec::new();
    for (n, &(w, token)) in judged.iter().enumerate() {
        let write = &writes[w];
        let (before_lower, before_upper) = (superseding[2 * n], superseding[2 * n + 1]);
        let Some(certainty) = judge(write, token, before_lower.is_some(), before_upper.is_some())
        else {
            continue;
        };
        if !write.accepted {
            stats.stale_rejected += 1;
            continue;
        }
        stats.stale_accepted += 1;
        if certainty == Certainty::Possible {
            stats.stale_possible += 1;
        }
        let later = match certainty {
            Certainty::Certain => before_lower,
            Certainty::Possible => before_upper,
        };
        let write_op = match (write.op, write.entry) {
            (Some(o), _) => Some(o),
            (None, Some(entry)) => matching
                .get_or_insert_with(|| WriteOps::new(input.ops))
                .find(entry),
            (None, None) => None,
        };
        anomalies.push(anomaly(input, write, write_op, token, certainty, later));
    }

    let validity = if stats.stale_accepted > stats.stale_possible {
        Validity::Invalid
    } else if stats.stale_possible > 0 {
        Validity::Unknown
    } else {
        unless_vacuous(Validity::Valid, stats.judged())
    };
    let report = CheckReport {
        name: "stale-write".to_owned(),
        validity,
        summary: summary(&stats),
        judged: Judged::new(stats.judged(), "accepted writes"),
        anomalies,
        stats: stats.to_map(),
    };
    (report, stats)
}

/// Whether `write` is stale, and how surely, given whether a superseding grant
/// was answered before its lower and its upper bound; `None` when it is fine.
fn judge(
    write: &Write<'_>,
    token: TokenLeases<'_, '_>,
    superseded_before_lower: bool,
    superseded_before_upper: bool,
) -> Option<Certainty> {
    let deadline_known = token
        .first_pending_renew()
        .is_none_or(|sent| sent > write.upper);
    let lost_throughout = token
        .deadline_grant_at(write.upper)
        .is_none_or(|g| g.deadline().is_some_and(|d| d < write.lower));
    if (deadline_known && lost_throughout) || superseded_before_lower {
        Some(Certainty::Certain)
    } else if token.first_lapse(write.lower, write.upper).is_some() || superseded_before_upper {
        Some(Certainty::Possible)
    } else {
        None
    }
}

/// The deadline that ran out on a write accepted from `lower` on, and the
/// invocation index of the grant that set it (see the module documentation).
fn deadline_for(token: TokenLeases<'_, '_>, lower: u64) -> (u64, u64) {
    if let Some(stretch) = token.possible_at(lower) {
        return (stretch.deadline(), stretch.end_op);
    }
    if let Some(g) = token.deadline_grant_at(lower) {
        return (g.deadline().unwrap_or(u64::MAX), g.op.invoke_index);
    }
    // Before any grant of the token was sent: the first stretch it had.
    token
        .possible_after(lower)
        .and_then(|i| token.possible_at(i.start))
        .map_or(
            (u64::MAX, token.first().first_acquire().invoke_index),
            |i| (i.deadline(), i.end_op),
        )
}

fn anomaly(
    input: CheckInput<'_>,
    write: &Write<'_>,
    write_op: Option<usize>,
    token: TokenLeases<'_, '_>,
    certainty: Certainty,
    later: Option<&Grant<'_>>,
) -> Anomaly {
    let (lease_deadline, deadline_op) = deadline_for(token, write.lower);
    let mut ops = vec![deadline_op];
    ops.extend(write_op.map(|o| input.ops[o].invoke_index));
    ops.extend(later.map(|g| g.op.invoke_index));
    Anomaly::StaleWrite {
        certainty,
        writer: match (write.entry, write_op) {
            (Some(entry), _) => entry.from.clone(),
            (None, Some(o)) => input.ops[o].actor(),
            (None, None) => "an unknown writer".to_owned(),
        },
        key: write.key.to_owned(),
        token: write.token,
        data: write.data.to_owned(),
        accepted_at: write.lower,
        lease_deadline,
        late_by_ns: write.lower.saturating_sub(lease_deadline),
        superseded_by: later.map(Grant::token),
        superseded_holder: later.and_then(|g| g.op.node.clone()),
        ops,
        ledger: write.ledger.into_iter().collect(),
    }
}

fn summary(s: &StaleWriteStats) -> String {
    let judged = plural(s.judged(), "accepted write", "accepted writes");
    let rejected = plural(s.stale_rejected, "stale write", "stale writes");
    let mut line = if s.stale_accepted > 0 {
        format!(
            "{} among {judged} ({} certain), {} rejected by fencing",
            plural(s.stale_accepted, "stale write", "stale writes"),
            s.stale_accepted - s.stale_possible,
            s.stale_rejected
        )
    } else if s.writes_accepted == 0 {
        let mut why = judged_nothing("no write was accepted");
        if s.stale_rejected > 0 {
            why += &format!("; storage rejected {rejected}");
        }
        return why;
    } else if s.judged() == 0 {
        // Every accepted write is unjudged: say so once, not twice.
        let what = match s.writes_accepted {
            1 => "the token of the accepted write".to_owned(),
            n => format!("the tokens of the {n} accepted writes"),
        };
        let mut why = judged_nothing(format!("no ok acquire granted {what}"));
        if s.stale_rejected > 0 {
            why += &format!("; storage rejected {rejected}");
        }
        return why;
    } else if s.stale_rejected > 0 {
        format!("no stale write among {judged}; storage rejected {rejected}")
    } else {
        format!("no stale write among {judged}")
    };
    if s.unjudged > 0 {
        line += &format!(
            "; {} not judged (token never granted ok)",
            plural(s.unjudged, "write", "writes")
        );
    }
    line
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::event::EventType;
    use crate::test_support::{Builder, input, ms, seed_scenario};

    fn run(b: &Builder, with_ledger: bool) -> (CheckReport, StaleWriteStats) {
        let ops = b.ops();
        check_stale_writes_with_stats(input(&ops, &b.ledger, with_ledger))
    }

    #[test]
    fn seed_scenario_without_fencing_is_a_certain_stale_write_for_both_reasons() {
        let (report, stats) = run(&seed_scenario(false), true);
        assert_eq!(report.name, "stale-write");
        assert_eq!(report.validity, Validity::Invalid);
        assert_eq!(
            report.anomalies,
            vec![Anomaly::StaleWrite {
                certainty: Certainty::Certain,
                writer: "w1".into(),
                key: "k".into(),
                token: 33,
                data: "w1-2".into(),
                accepted_at: ms(3002),
                lease_deadline: ms(2000),
                late_by_ns: ms(1002),
                superseded_by: Some(34),
                superseded_holder: Some("w2".into()),
                ops: vec![0, 12, 5],
                ledger: vec![2],
            }]
        );
        assert_eq!(
            stats,
            StaleWriteStats {
                writes_accepted: 3,
                writes_rejected: 0,
                stale_accepted: 1,
                stale_possible: 0,
                stale_rejected: 0,
                unjudged: 0,
            }
        );
        assert_eq!(
            report.summary,
            "1 stale write among 3 accepted writes (1 certain), 0 rejected by fencing"
        );
        assert_eq!(report.judged, Judged::new(3, "accepted writes"));
        assert_eq!(report.stats["stale_accepted"], json!(1));
        assert!(
            report.anomalies[0]
                .explain()
                .contains("1002.0 ms after its lease expired")
        );
    }

    #[test]
    fn seed_scenario_without_ledger_is_judged_from_the_replies() {
        let (report, _) = run(&seed_scenario(false), false);
        assert_eq!(report.validity, Validity::Invalid);
        let [
            Anomaly::StaleWrite {
                certainty,
                accepted_at,
                ops,
                ledger,
                ..
            },
        ] = report.anomalies.as_slice()
        else {
            panic!("{:?}", report.anomalies)
        };
        assert_eq!(*certainty, Certainty::Certain);
        assert_eq!(*accepted_at, ms(3001));
        assert_eq!(ops, &[0, 12, 5]);
        assert!(ledger.is_empty());
    }

    #[test]
    fn fenced_rejection_is_counted_not_flagged() {
        let (report, stats) = run(&seed_scenario(true), true);
        assert_eq!(report.validity, Validity::Valid);
        assert!(report.anomalies.is_empty());
        assert_eq!(stats.stale_rejected, 1);
        assert_eq!(stats.writes_rejected, 1);
        assert_eq!(stats.writes_accepted, 2);
        assert_eq!(
            report.summary,
            "no stale write among 2 accepted writes; storage rejected 1 stale write"
        );
        assert_eq!(report.judged, Judged::new(2, "accepted writes"));
        // Without the ledger, the failed write is the rejection.
        let (report, stats) = run(&seed_scenario(true), false);
        assert_eq!(report.validity, Validity::Valid);
        assert_eq!(stats.stale_rejected, 1);
        assert_eq!(report.judged, Judged::new(2, "accepted writes"));
    }

    #[test]
    fn write_straddling_the_deadline_without_ledger_is_possible() {
        let mut b = Builder::new();
        b.acquire(1, "L", 1, 100, 0, 1);
        b.write(1, "k", 1, "a", 50, 150, EventType::Ok);
        let (report, stats) = run(&b, false);
        assert_eq!(report.validity, Validity::Unknown);
        assert_eq!(stats.stale_accepted, 1);
        assert_eq!(stats.stale_possible, 1);
        let [
            Anomaly::StaleWrite {
                certainty,
                late_by_ns,
                superseded_by,
                ops,
                ..
            },
        ] = report.anomalies.as_slice()
        else {
            panic!("{:?}", report.anomalies)
        };
        assert_eq!(*certainty, Certainty::Possible);
        assert_eq!(*late_by_ns, 0);
        assert_eq!(*superseded_by, None);
        assert_eq!(ops, &[0, 2]);
        assert_eq!(
            report.summary,
            "1 stale write among 1 accepted write (0 certain), 0 rejected by fencing"
        );
    }

    #[test]
    fn pending_renew_makes_a_late_write_only_possible() {
        // Accepted at 150 ms, 50 ms after the ok deadline (100 ms).
        let late = |renew: Option<EventType>| {
            let mut b = Builder::new();
            b.acquire(1, "L", 1, 100, 0, 1);
            if let Some(kind) = renew {
                b.renew(1, "L", 1, 100, 80, Some((90, kind)));
                b.write(1, "k", 1, "a", 140, 160, EventType::Ok);
            } else {
                b.write(1, "k", 1, "a", 140, 160, EventType::Ok);
                // Never completes, but was sent before storage accepted.
                b.renew(2, "L", 1, 100, 120, None);
            }
            b.ledger(150, "k", 1, "a", "w1", crate::ledger::Decision::Accepted);
            run(&b, true).0
        };
        for pending in [Some(EventType::Info), None] {
            let report = late(pending);
            assert_eq!(report.validity, Validity::Unknown, "{pending:?}");
            let [
                Anomaly::StaleWrite {
                    certainty,
                    late_by_ns,
                    ..
                },
            ] = report.anomalies.as_slice()
            else {
                panic!("{:?}", report.anomalies)
            };
            assert_eq!(*certainty, Certainty::Possible);
            assert_eq!(*late_by_ns, ms(50));
        }
        // A failed renew certainly did not extend the lease.
        assert_eq!(late(Some(EventType::Fail)).validity, Validity::Invalid);
        // An ok renew did: deadline 80 + 100 = 180 ms.
        let report = late(Some(EventType::Ok));
        assert_eq!(report.validity, Validity::Valid, "{:?}", report.anomalies);
    }

    #[test]
    fn renew_sent_after_the_write_landed_changes_nothing() {
        let mut b = Builder::new();
        b.acquire(1, "L", 1, 100, 0, 1);
        b.write(1, "k", 1, "a", 140, 160, EventType::Ok);
        b.ledger(150, "k", 1, "a", "w1", crate::ledger::Decision::Accepted);
        b.renew(1, "L", 1, 100, 170, Some((171, EventType::Info)));
        assert_eq!(run(&b, true).0.validity, Validity::Invalid);
    }

    /// The (data, certainty, lease deadline, lateness, ops) of each anomaly.
    fn stale(report: &CheckReport) -> Vec<(String, Certainty, u64, u64, Vec<u64>)> {
        report
            .anomalies
            .iter()
            .map(|a| match a {
                Anomaly::StaleWrite {
                    data,
                    certainty,
                    lease_deadline,
                    late_by_ns,
                    ops,
                    ..
                } => (
                    data.clone(),
                    *certainty,
                    *lease_deadline,
                    *late_by_ns,
                    ops.clone(),
                ),
                other => panic!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn a_renew_sent_after_the_write_does_not_make_it_fresh() {
        // A zombie wakes after its 1 s lease ran out, writes at 1.5 s, then
        // renews at 2 s, and a lenient service says ok.
        let mut b = Builder::new();
        b.acquire(1, "L", 1, 1000, 0, 1); // 0
        b.write(1, "k", 1, "late", 1490, 1510, EventType::Ok); // 2
        b.ledger(
            1500,
            "k",
            1,
            "late",
            "w1",
            crate::ledger::Decision::Accepted,
        );
        b.renew(1, "L", 1, 1000, 2000, Some((2001, EventType::Ok))); // 4
        for with_ledger in [true, false] {
            let (report, stats) = run(&b, with_ledger);
            assert_eq!(report.validity, Validity::Invalid, "{with_ledger}");
            let accepted = if with_ledger { 1500 } else { 1490 };
            assert_eq!(
                stale(&report),
                [(
                    "late".to_owned(),
                    Certainty::Certain,
                    ms(1000),
                    ms(accepted - 1000),
                    vec![0, 2]
                )],
                "{with_ledger}"
            );
            assert_eq!(stats.stale_possible, 0);
        }
    }

    #[test]
    fn a_lapsed_lease_renewed_later_leaves_a_gap() {
        // Lapsed at 1 s, renewed at 2 s: the write in the gap is stale, the
        // one after the renew was sent is not.
        let mut b = Builder::new();
        b.acquire(1, "L", 1, 1000, 0, 1); // 0
        b.write(1, "k", 1, "gap", 1490, 1510, EventType::Ok); // 2
        b.ledger(1500, "k", 1, "gap", "w1", crate::ledger::Decision::Accepted);
        b.renew(1, "L", 1, 1000, 2000, Some((2001, EventType::Ok))); // 4
        b.write(1, "k", 1, "renewed", 2490, 2510, EventType::Ok); // 6
        b.ledger(
            2500,
            "k",
            1,
            "renewed",
            "w1",
            crate::ledger::Decision::Accepted,
        );
        let (report, stats) = run(&b, true);
        assert_eq!(report.validity, Validity::Invalid);
        assert_eq!(
            stale(&report),
            [(
                "gap".to_owned(),
                Certainty::Certain,
                ms(1000),
                ms(500),
                vec![0, 2]
            )]
        );
        assert_eq!(stats.writes_accepted, 2);
    }

    #[test]
    fn a_renew_sent_in_time_extends_the_lease_without_a_gap() {
        // Renewed at 0.8 s, before the lease ran out: held until 1.8 s, then a
        // gap until the renew sent at 3 s. Judged from the replies (no ledger).
        let mut b = Builder::new();
        b.acquire(1, "L", 1, 1000, 0, 1); // 0
        b.renew(1, "L", 1, 1000, 800, Some((810, EventType::Ok))); // 2
        b.write(1, "k", 1, "a", 1500, 1510, EventType::Ok); // 4: within
        b.write(1, "k", 1, "b", 1700, 1900, EventType::Ok); // 6: straddles 1.8 s
        b.write(1, "k", 1, "c", 2000, 2010, EventType::Ok); // 8: in the gap
        b.renew(1, "L", 1, 1000, 3000, Some((3010, EventType::Ok))); // 10
        b.write(1, "k", 1, "d", 3500, 3510, EventType::Ok); // 12: within again
        let (report, stats) = run(&b, false);
        assert_eq!(report.validity, Validity::Invalid);
        assert_eq!(
            stale(&report),
            [
                ("b".to_owned(), Certainty::Possible, ms(1800), 0, vec![2, 6]),
                (
                    "c".to_owned(),
                    Certainty::Certain,
                    ms(1800),
                    ms(200),
                    vec![2, 8]
                ),
            ]
        );
        assert_eq!((stats.stale_accepted, stats.stale_possible), (2, 1));
    }

    #[test]
    fn superseded_holder_within_its_lease_is_certainly_stale() {
        // w1 releases early, w2 gets the lock, w1 writes within its own lease.
        let mut b = Builder::new();
        b.acquire(1, "L", 7, 10_000, 0, 1);
        b.release(1, "L", 7, 10, 11);
        b.acquire(2, "L", 9, 10_000, 20, 21);
        b.acquire(3, "L", 8, 10_000, 12, 22); // concurrent grant of 8: smaller, chosen
        b.write(1, "k", 7, "late", 30, 32, EventType::Ok);
        b.ledger(31, "k", 7, "late", "w1", crate::ledger::Decision::Accepted);
        let (report, _) = run(&b, true);
        assert_eq!(report.validity, Validity::Invalid);
        let [
            Anomaly::StaleWrite {
                certainty,
                late_by_ns,
                superseded_by,
                superseded_holder,
                ops,
                ..
            },
        ] = report.anomalies.as_slice()
        else {
            panic!("{:?}", report.anomalies)
        };
        assert_eq!(*certainty, Certainty::Certain);
        assert_eq!(*late_by_ns, 0);
        assert_eq!(*superseded_by, Some(8));
        assert_eq!(superseded_holder.as_deref(), Some("w3"));
        assert_eq!(ops, &[0, 8, 6]);
    }

    #[test]
    fn grant_completing_during_the_write_makes_it_possible() {
        let mut b = Builder::new();
        b.acquire(1, "L", 1, 10_000, 0, 1);
        b.invoke(2, 5, "acquire", json!({"lock": "L"}));
        b.write(1, "k", 1, "a", 10, 30, EventType::Ok);
        b.complete(
            2,
            20,
            EventType::Ok,
            "acquire",
            json!({"token": 2, "lease_ms": 1000}),
        );
        let (report, _) = run(&b, false);
        assert_eq!(report.validity, Validity::Unknown);
        let [
            Anomaly::StaleWrite {
                certainty,
                superseded_by,
                ops,
                ..
            },
        ] = report.anomalies.as_slice()
        else {
            panic!("{:?}", report.anomalies)
        };
        assert_eq!(*certainty, Certainty::Possible);
        assert_eq!(*superseded_by, Some(2));
        assert_eq!(ops, &[0, 3, 2]);
    }

    #[test]
    fn grants_of_other_locks_do_not_supersede() {
        let mut b = Builder::new();
        b.acquire(1, "A", 1, 10_000, 0, 1);
        b.acquire(2, "B", 2, 10_000, 2, 3);
        b.write(1, "k", 1, "a", 10, 12, EventType::Ok);
        b.ledger(11, "k", 1, "a", "w1", crate::ledger::Decision::Accepted);
        assert_eq!(run(&b, true).0.validity, Validity::Valid);
    }

    #[test]
    fn writes_with_a_token_never_granted_ok_are_unjudged() {
        let mut b = Builder::new();
        b.invoke(1, 0, "acquire", json!({"lock": "L"}));
        b.complete(1, 5, EventType::Info, "acquire", json!({"token": 3}));
        b.write(2, "k", 3, "a", 10_000, 10_001, EventType::Ok);
        b.ledger(10_000, "k", 3, "a", "w2", crate::ledger::Decision::Accepted);
        // The only accepted write was not judged: the check judged nothing.
        let (report, stats) = run(&b, true);
        assert_eq!(report.validity, Validity::Unknown);
        assert_eq!(stats.unjudged, 1);
        assert_eq!(report.stats["unjudged"], json!(1));
        assert_eq!(report.judged, Judged::new(0, "accepted writes"));
        assert!(report.judged_nothing());
        assert_eq!(
            report.summary,
            "judged nothing: no ok acquire granted the token of the accepted write"
        );
        b.write(2, "k", 3, "b", 10_002, 10_003, EventType::Ok);
        b.ledger(10_002, "k", 3, "b", "w2", crate::ledger::Decision::Accepted);
        assert_eq!(
            run(&b, true).0.summary,
            "judged nothing: no ok acquire granted the tokens of the 2 accepted writes"
        );

        // One judged write beside it is enough for a verdict.
        b.acquire(3, "L", 4, 1000, 20_000, 20_001);
        b.write(3, "k", 4, "c", 20_002, 20_003, EventType::Ok);
        b.ledger(20_002, "k", 4, "c", "w3", crate::ledger::Decision::Accepted);
        let (report, stats) = run(&b, true);
        assert_eq!(report.validity, Validity::Valid);
        assert_eq!(stats.unjudged, 2);
        assert_eq!(report.judged, Judged::new(1, "accepted writes"));
        assert_eq!(
            report.summary,
            "no stale write among 1 accepted write; 2 writes not judged (token never granted ok)"
        );
    }

    #[test]
    fn no_accepted_write_is_unknown_not_valid() {
        for with_ledger in [true, false] {
            let (report, _) = run(&Builder::new(), with_ledger);
            assert_eq!(report.validity, Validity::Unknown, "{with_ledger}");
            assert_eq!(report.judged, Judged::new(0, "accepted writes"));
            assert_eq!(report.summary, "judged nothing: no write was accepted");
        }

        // Grants, a write that timed out (not judged without a ledger) and a
        // stale write storage turned away: still nothing accepted.
        let mut b = Builder::new();
        b.acquire(1, "L", 1, 100, 0, 1);
        b.write(1, "k", 1, "a", 10, 20, EventType::Info);
        b.acquire(2, "L", 2, 100, 200, 201);
        b.write(1, "k", 1, "late", 300, 302, EventType::Fail);
        b.ledger(301, "k", 1, "late", "w1", crate::ledger::Decision::Rejected);
        for with_ledger in [true, false] {
            let (report, stats) = run(&b, with_ledger);
            assert_eq!(report.validity, Validity::Unknown, "{with_ledger}");
            assert_eq!(stats.stale_rejected, 1);
            assert!(report.judged_nothing());
            assert_eq!(
                report.summary,
                "judged nothing: no write was accepted; storage rejected 1 stale write"
            );
        }
    }

    #[test]
    fn ledger_entry_without_a_history_write_still_counts() {
        let mut b = seed_scenario(false);
        b.ledger.push(crate::ledger::LedgerEntry {
            data: "ghost".into(),
            ..b.ledger[2].clone()
        });
        let (report, stats) = run(&b, true);
        assert_eq!(stats.stale_accepted, 2);
        let Anomaly::StaleWrite { ops, ledger, .. } = &report.anomalies[1] else {
            panic!()
        };
        assert_eq!(ops, &[0, 5]);
        assert_eq!(ledger, &[3]);
    }
}
