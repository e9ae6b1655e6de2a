//! Mutual exclusion: two leases the lock service vouched for overlap.
//!
//! # The property
//!
//! A lock service must never let two fencing tokens of one lock be held at the
//! same moment. This check looks only at what the service *certainly* vouched
//! for, so that a violation is a lock-service bug, never a client's fault: a
//! paused holder that writes after its lease ran out (a zombie) is the
//! stale-write check's business and is not judged here.
//!
//! **What one reply vouches for.** An `ok` acquire of lock `L` that got token `t`
//! and `lease_ms`, sent at `invoke_time` and answered at `complete_time`, proves
//! that the service granted `t` at some unknown moment `g` in
//! `[invoke_time, complete_time]` and let it run until `g + lease` on its clock
//! (the history's clock: one host, one CLOCK_MONOTONIC). Whatever `g` was, the
//! lease certainly covered
//!
//! ```text
//! [complete_time, invoke_time + lease_ms · 10⁶)
//! ```
//!
//! It starts at the *completion*, not the invocation: before the reply the grant
//! may not have happened yet (an acquire that waits for the previous holder to
//! let go is sent while the lock is still held), so counting from the send
//! would accuse every blocking acquire. It ends at the *send* time plus the
//! lease, the earliest moment the lease may run out, which is the lease
//! deadline the stale-write check uses. An `ok` renew of `t` vouches the same
//! way for `[complete_time, invoke_time + lease)`; a renew whose reply does not
//! say `lease_ms` uses the acquire's. A reply that arrives after its own
//! deadline vouches for nothing.
//!
//! These are the certain intervals of [`Leases`](crate::Leases) (`lease.rs`),
//! which derives them for every check.
//!
//! **A token's certain interval** is the union of what its ok acquires and
//! renews vouched for. Touching or overlapping pieces are merged; a gap between
//! them (a renew answered after the previous deadline) stays a gap, since the
//! lease may have lapsed there.
//!
//! **Releases.** A release of `t` that did not fail (`ok`, `info`, or never
//! answered) may have taken effect any time after it was sent, so it ends every
//! piece of `t` that started before it at its send time. A failed release
//! certainly did not release and changes nothing.
//!
//! **Unknown outcomes.** Acquires that failed or ended `info` granted no token we
//! know of, and renews that failed or ended `info` extended nothing certainly:
//! they vouch for nothing (an `info` renew may only have made a lease longer,
//! which cannot make a certain interval wrong). Writes and reads are not looked
//! at. A renew or release naming no lock belongs to the lock of the first ok
//! acquire of its token; one whose token no ok acquire granted is ignored.
//!
//! **Verdict.** The check is invalid if the certain intervals of two different
//! tokens of the same lock overlap (share a moment: intervals that only touch,
//! one ending exactly when the next starts, are back to back and fine), valid
//! otherwise. Each pair of tokens is reported once, with the overlap and the
//! history indexes of the acquires and renews whose replies vouched for both
//! intervals.
//!
//! The report counts as judged the leases (`(lock, token)`s) with a certain
//! interval. When there is none (no grant, or every grant answered after its
//! lease ran out or naming no lease length) the check judged nothing and is
//! `unknown`, never `valid`; that is the only way it says unknown.
//!
//! O(n log n): sort each token's pieces to merge them, then sort each lock's
//! intervals by start and sweep, keeping the interval that reaches furthest.

use std::collections::HashSet;

use crate::input::CheckInput;
use crate::lease::{Interval, Lease, Leases};
use crate::verdict::{
    Anomaly, CheckReport, Judged, Validity, judged_nothing, plural, unless_vacuous,
};

/// The mutual-exclusion check (`mutual-exclusion`); see the module
/// documentation.
pub fn check_mutual_exclusion(input: CheckInput<'_>) -> CheckReport {
    let leases = Leases::from_ops(input.ops);
    let grants = leases.acquires().count() as u64;
    let locks = leases.locks().len() as u64;
    let intervals: u64 = leases.iter().map(|l| l.certain().len() as u64).sum();
    // Leases with at least one certain interval: what the sweep compares.
    let judged = leases.iter().filter(|l| !l.certain().is_empty()).count() as u64;
    let anomalies: Vec<Anomaly> = leases
        .locks()
        .iter()
        .flat_map(|lock| overlaps(&leases, lock))
        .collect();

    let mut stats = serde_json::Map::new();
    stats.insert("grants".to_owned(), grants.into());
    stats.insert("locks".to_owned(), locks.into());
    stats.insert("intervals".to_owned(), intervals.into());
    stats.insert("overlaps".to_owned(), anomalies.len().into());
    CheckReport {
        name: "mutual-exclusion".to_owned(),
        validity: if anomalies.is_empty() {
            unless_vacuous(Validity::Valid, judged)
        } else {
            Validity::Invalid
        },
        summary: summary(grants, locks, judged, anomalies.len() as u64),
        judged: Judged::new(judged, "leases"),
        anomalies,
        stats,
    }
}

/// The sweep over one lock's certain intervals, ordered by start: each pair of
/// tokens whose intervals overlap, once.
fn overlaps(leases: &Leases<'_>, lock: &str) -> Vec<Anomaly> {
    let mut list: Vec<(&Lease<'_>, &Interval)> = leases
        .of_lock(lock)
        .flat_map(|l| l.certain().iter().map(move |i| (l, i)))
        .collect();
    list.sort_unstable_by_key(|(l, i)| (i.start, i.end, l.token()));
    let mut anomalies = Vec::new();
    let mut reported: HashSet<(u64, u64)> = HashSet::new();
    // The interval seen so far that reaches furthest. Intervals of one token
    // are merged, so an interval overlapping the next is another token's.
    let mut reach: Option<usize> = None;
    for (i, &(lease, cur)) in list.iter().enumerate() {
        let Some(r) = reach else {
            reach = Some(i);
            continue;
        };
        let (prev_lease, prev) = list[r];
        if prev.end > cur.start && prev_lease.token() != lease.token() {
            let pair = (
                prev_lease.token().min(lease.token()),
                prev_lease.token().max(lease.token()),
            );
            if reported.insert(pair) {
                anomalies.push(overlap(lock, (prev_lease, prev), (lease, cur)));
            }
        }
        if cur.end > prev.end {
            reach = Some(i);
        }
    }
    anomalies
}

/// The anomaly of two overlapping intervals, `a` starting first.
fn overlap(lock: &str, a: (&Lease<'_>, &Interval), b: (&Lease<'_>, &Interval)) -> Anomaly {
    let mut ops = vec![a.1.start_op, a.1.end_op, b.1.start_op, b.1.end_op];
    ops.sort_unstable();
    ops.dedup();
    Anomaly::MutualExclusion {
        lock: lock.to_owned(),
        token: a.0.token(),
        holder: a.0.first_acquire().actor(),
        other_token: b.0.token(),
        other_holder: b.0.first_acquire().actor(),
        overlap_from: b.1.start,
        overlap_to: a.1.end.min(b.1.end),
        ops,
    }
}

fn summary(grants: u64, locks: u64, judged: u64, overlaps: u64) -> String {
    if grants == 0 {
        judged_nothing("no grant in the history")
    } else if judged == 0 {
        let none = match grants {
            1 => "the grant vouched for no moment of its lease".to_owned(),
            n => format!("none of the {n} grants vouched for a moment of its lease"),
        };
        judged_nothing(format!(
            "{none} (answered after it ran out, or without a lease length)"
        ))
    } else if overlaps == 0 {
        format!(
            "{} of {}, {} vouched for: no two certainly held at once",
            plural(grants, "grant", "grants"),
            plural(locks, "lock", "locks"),
            plural(judged, "lease", "leases"),
        )
    } else {
        format!(
            "{} of {} certainly held at the same time: the lock service broke mutual exclusion",
            plural(overlaps, "pair", "pairs"),
            plural(judged, "lease", "leases"),
        )
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::event::EventType;
    use crate::test_support::{Builder, input, ms};

    fn run(b: &Builder) -> CheckReport {
        let ops = b.ops();
        check_mutual_exclusion(input(&ops, &[], false))
    }

    #[test]
    fn overlapping_leases_are_found() {
        let mut b = Builder::new();
        b.acquire(1, "L", 1, 1000, 0, 10); // 0: certain [10, 1000)
        b.renew(1, "L", 1, 1000, 800, Some((810, EventType::Ok))); // 2: [810, 1800)
        b.acquire(2, "L", 2, 1000, 1200, 1300); // 4: [1300, 2200): overlaps 1's renewal
        let report = run(&b);
        assert_eq!(report.name, "mutual-exclusion");
        assert_eq!(report.validity, Validity::Invalid);
        assert_eq!(
            report.anomalies,
            vec![Anomaly::MutualExclusion {
                lock: "L".into(),
                token: 1,
                holder: "w1".into(),
                other_token: 2,
                other_holder: "w2".into(),
                overlap_from: ms(1300),
                overlap_to: ms(1800),
                ops: vec![0, 2, 4],
            }]
        );
        assert!(
            report.anomalies[0]
                .explain()
                .contains("granted \"L\" to w2 (token 2) at 1300.0 ms while w1"),
            "{}",
            report.anomalies[0].explain()
        );
        assert_eq!(report.stats["overlaps"], json!(1));
        assert!(report.anomalies[0].is_certain());
        assert_eq!(report.judged, Judged::new(2, "leases"));
        assert_eq!(
            report.summary,
            "1 pair of 2 leases certainly held at the same time: the lock service broke mutual exclusion"
        );
    }

    #[test]
    fn back_to_back_and_released_leases_are_fine() {
        let mut b = Builder::new();
        // Token 1's lease ends at 1000 exactly when token 2's reply arrives.
        b.acquire(1, "L", 1, 1000, 0, 5);
        b.acquire(2, "L", 2, 1000, 900, 1000);
        // Token 3 is granted while token 2's lease runs, but 2 sent its release
        // (unknown outcome) before: the release may have happened.
        b.invoke(2, 1200, "release", json!({"lock": "L", "token": 2}));
        b.complete(2, 1300, EventType::Info, "release", json!(null));
        b.acquire(3, "L", 3, 1000, 1210, 1250);
        // An acquire that blocked while 3 held the lock, granted once 3 released.
        b.invoke(4, 1400, "acquire", json!({"lock": "L"}));
        b.release(3, "L", 3, 1500, 1501);
        b.complete(
            4,
            1502,
            EventType::Ok,
            "acquire",
            json!({"token": 4, "lease_ms": 1000}),
        );
        // Another lock is independent.
        b.acquire(5, "M", 5, 1000, 1400, 1410);
        let report = run(&b);
        assert_eq!(report.validity, Validity::Valid, "{:#?}", report.anomalies);
        assert_eq!(report.stats["grants"], json!(5));
        assert_eq!(
            report.summary,
            "5 grants of 2 locks, 5 leases vouched for: no two certainly held at once"
        );
        assert_eq!(report.judged, Judged::new(5, "leases"));
    }

    #[test]
    fn an_expired_lease_followed_by_a_new_grant_is_fine() {
        let mut b = Builder::new();
        b.acquire(1, "L", 1, 1000, 0, 2);
        // A renew answered after the lease ran out vouches for nothing; an
        // unknown renew may have extended it, but not certainly.
        b.renew(1, "L", 1, 1000, 100, Some((1500, EventType::Ok)));
        b.renew(1, "L", 1, 1000, 900, Some((950, EventType::Info)));
        b.acquire(2, "L", 2, 1000, 1000, 1001);
        // A zombie write by 1 is not this check's business.
        b.write(1, "k", 1, "late", 1600, 1601, EventType::Ok);
        // A failed release does not end 2's lease, so a third grant overlaps.
        b.invoke(2, 1700, "release", json!({"lock": "L", "token": 2}));
        b.complete(2, 1701, EventType::Fail, "release", json!(null));
        let report = run(&b);
        assert_eq!(report.validity, Validity::Valid, "{:#?}", report.anomalies);

        b.acquire(3, "L", 3, 1000, 1800, 1801);
        let report = run(&b);
        assert_eq!(report.validity, Validity::Invalid);
        assert!(matches!(
            report.anomalies[..],
            [Anomaly::MutualExclusion {
                token: 2,
                other_token: 3,
                ..
            }]
        ));
    }

    #[test]
    fn a_pair_is_reported_once_and_renewals_without_lock_are_attributed() {
        let mut b = Builder::new();
        b.acquire(1, "L", 1, 1000, 0, 1);
        b.acquire(2, "L", 2, 100, 10, 11);
        b.acquire(2, "L", 2, 100, 200, 201); // the same token again: one lease
        // A renew naming no lock (another tool's history).
        b.invoke(1, 500, "renew", json!({"token": 1}));
        b.complete(1, 501, EventType::Ok, "renew", json!({"lease_ms": 1000}));
        b.acquire(3, "L", 3, 100, 600, 601);
        let report = run(&b);
        let pairs: Vec<(u64, u64)> = report
            .anomalies
            .iter()
            .map(|a| match a {
                Anomaly::MutualExclusion {
                    token, other_token, ..
                } => (*token, *other_token),
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(pairs, vec![(1, 2), (1, 3)]);
    }

    #[test]
    fn no_lease_certainly_held_is_unknown_not_valid() {
        let report = run(&Builder::new());
        assert_eq!(report.validity, Validity::Unknown);
        assert_eq!(report.judged, Judged::new(0, "leases"));
        assert_eq!(report.summary, "judged nothing: no grant in the history");

        // A grant answered after its lease ran out vouches for nothing, nor
        // does one without a lease length.
        let mut b = Builder::new();
        b.acquire(1, "L", 1, 100, 0, 150);
        let report = run(&b);
        assert_eq!(report.validity, Validity::Unknown);
        assert_eq!(report.stats["grants"], json!(1));
        assert_eq!(
            report.summary,
            "judged nothing: the grant vouched for no moment of its lease (answered after it ran out, or without a lease length)"
        );
        b.invoke(2, 200, "acquire", json!({"lock": "L"}));
        b.complete(2, 201, EventType::Ok, "acquire", json!({"token": 2}));
        let report = run(&b);
        assert_eq!(report.validity, Validity::Unknown);
        assert!(report.judged_nothing());
        assert!(
            report
                .summary
                .starts_with("judged nothing: none of the 2 grants vouched for a moment"),
            "{}",
            report.summary
        );

        // One lease vouched for is a verdict.
        b.acquire(3, "L", 3, 100, 300, 301);
        let report = run(&b);
        assert_eq!(report.validity, Validity::Valid);
        assert_eq!(report.judged, Judged::new(1, "leases"));
    }
}
