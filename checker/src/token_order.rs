//! Token monotonicity and uniqueness.
//!
//! # The property
//!
//! Over the `ok` acquires of each lock (a token is what a fencing store compares,
//! so it must order grants the way real time does):
//!
//! - **uniqueness**: no token is granted by two ok acquires. All the acquires that
//!   got it are reported in one `duplicate-token` anomaly.
//! - **monotonicity**: if acquire A's reply arrived before acquire B was sent
//!   (`A.complete_time < B.invoke_time`), then `token(A) < token(B)`. Overlapping
//!   acquires may be granted in either order, so they are not compared. Each
//!   violating B is reported once, against the A with the largest token among
//!   those that completed before B was sent. A pair with equal tokens is a
//!   duplicate, reported as such and not also as non-monotonic.
//!
//! Acquires that failed or ended `info` granted no token we know of and are not
//! judged. The report counts as judged the grants (ok acquires with a token);
//! without any the check judged nothing and is `unknown`, never `valid`.
//! O(n log n): sort by reply time, sort by send time, and sweep keeping the
//! largest token completed so far.

use std::collections::HashMap;

use crate::input::CheckInput;
use crate::op::{Call, Outcome};
use crate::verdict::{
    Anomaly, CheckReport, Judged, Validity, judged_nothing, plural, unless_vacuous,
};

struct Grant {
    lock: usize,
    token: u64,
    invoke_time: u64,
    complete_time: u64,
    invoke_index: u64,
}

/// The token-order check (`token-order`); see the module documentation.
pub fn check_token_order(input: CheckInput<'_>) -> CheckReport {
    let mut lock_ids: HashMap<&str, usize> = HashMap::new();
    let mut grants: Vec<Grant> = Vec::new();
    for op in input.ops {
        let Call::Acquire {
            lock,
            token: Some(token),
            ..
        } = &op.call
        else {
            continue;
        };
        let (Outcome::Ok, Some(complete_time)) = (op.outcome, op.complete_time) else {
            continue;
        };
        let next_id = lock_ids.len();
        grants.push(Grant {
            lock: *lock_ids.entry(lock.as_str()).or_insert(next_id),
            token: *token,
            invoke_time: op.invoke_time,
            complete_time,
            invoke_index: op.invoke_index,
        });
    }
    let n = grants.len();
    let mut anomalies = Vec::new();

    // Uniqueness: equal (lock, token) are adjacent once sorted.
    let mut by_token: Vec<usize> = (0..n).collect();
    by_token.sort_unstable_by_key(|&i| (grants[i].lock, grants[i].token, grants[i].invoke_index));
    let mut duplicates = 0usize;
    for group in by_token
        .chunk_by(|&a, &b| (grants[a].lock, grants[a].token) == (grants[b].lock, grants[b].token))
    {
        if group.len() > 1 {
            duplicates += 1;
            anomalies.push(Anomaly::DuplicateToken {
                token: grants[group[0]].token,
                ops: group.iter().map(|&i| grants[i].invoke_index).collect(),
            });
        }
    }

    // Monotonicity: walk sends in time order per lock; before each send, fold in
    // every grant of that lock whose reply arrived strictly earlier.
    let mut by_complete: Vec<usize> = (0..n).collect();
    by_complete.sort_unstable_by_key(|&i| {
        (
            grants[i].lock,
            grants[i].complete_time,
            grants[i].invoke_index,
        )
    });
    let mut by_invoke: Vec<usize> = (0..n).collect();
    by_invoke.sort_unstable_by_key(|&i| {
        (
            grants[i].lock,
            grants[i].invoke_time,
            grants[i].invoke_index,
        )
    });
    let mut non_monotonic = 0usize;
    let mut next = 0;
    let mut lock = usize::MAX;
    // The grant with the largest token completed so far in this lock.
    let mut max: Option<usize> = None;
    for &b in &by_invoke {
        let later = &grants[b];
        if later.lock != lock {
            lock = later.lock;
            max = None;
            while next < n && grants[by_complete[next]].lock < lock {
                next += 1;
            }
        }
        while let Some(&a) = by_complete.get(next) {
            let earlier = &grants[a];
            if earlier.lock != lock || earlier.complete_time >= later.invoke_time {
                break;
            }
            if max.is_none_or(|m| earlier.token > grants[m].token) {
                max = Some(a);
            }
            next += 1;
        }
        if let Some(a) = max {
            let earlier = &grants[a];
            // Equal tokens are a duplicate, already reported.
            if earlier.token > later.token {
                non_monotonic += 1;
                anomalies.push(Anomaly::NonMonotonicToken {
                    earlier_token: earlier.token,
                    later_token: later.token,
                    ops: vec![earlier.invoke_index, later.invoke_index],
                });
            }
        }
    }

    let locks = lock_ids.len();
    let summary = if n == 0 {
        judged_nothing("no grant in the history")
    } else if anomalies.is_empty() {
        format!(
            "{} of {}: tokens unique and increasing",
            plural(n as u64, "grant", "grants"),
            plural(locks as u64, "lock", "locks"),
        )
    } else {
        format!(
            "{}: {} granted more than once, {} went backwards",
            plural(n as u64, "grant", "grants"),
            plural(duplicates as u64, "token", "tokens"),
            plural(non_monotonic as u64, "grant", "grants"),
        )
    };
    let mut stats = serde_json::Map::new();
    stats.insert("grants".to_owned(), n.into());
    stats.insert("locks".to_owned(), locks.into());
    stats.insert("duplicate_tokens".to_owned(), duplicates.into());
    stats.insert("non_monotonic".to_owned(), non_monotonic.into());
    CheckReport {
        name: "token-order".to_owned(),
        validity: if anomalies.is_empty() {
            unless_vacuous(Validity::Valid, n as u64)
        } else {
            Validity::Invalid
        },
        summary,
        judged: Judged::new(n as u64, "grants"),
        anomalies,
        stats,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::event::EventType;
    use crate::test_support::{Builder, input};

    fn run(b: &Builder) -> CheckReport {
        let ops = b.ops();
        check_token_order(input(&ops, &[], false))
    }

    #[test]
    fn token_going_backwards_is_flagged_against_the_largest_earlier_token() {
        let mut b = Builder::new();
        b.acquire(1, "L", 10, 1000, 0, 5); // 0
        b.acquire(2, "L", 12, 1000, 6, 7); // 2
        b.acquire(3, "L", 11, 1000, 8, 9); // 4: after 12 completed
        b.acquire(4, "L", 13, 1000, 10, 11); // 6: fine
        let report = run(&b);
        assert_eq!(report.name, "token-order");
        assert_eq!(report.validity, Validity::Invalid);
        assert_eq!(
            report.anomalies,
            vec![Anomaly::NonMonotonicToken {
                earlier_token: 12,
                later_token: 11,
                ops: vec![2, 4],
            }]
        );
        assert_eq!(report.stats["non_monotonic"], json!(1));
    }

    #[test]
    fn overlapping_acquires_may_complete_in_either_order() {
        let mut b = Builder::new();
        b.invoke(1, 0, "acquire", json!({"lock": "L"}));
        b.invoke(2, 1, "acquire", json!({"lock": "L"}));
        b.complete(
            2,
            2,
            EventType::Ok,
            "acquire",
            json!({"token": 2, "lease_ms": 10}),
        );
        b.complete(
            1,
            3,
            EventType::Ok,
            "acquire",
            json!({"token": 1, "lease_ms": 10}),
        );
        // Failed and unknown acquires granted nothing we know of.
        b.invoke(3, 4, "acquire", json!({"lock": "L"}));
        b.complete(3, 5, EventType::Info, "acquire", json!({"token": 0}));
        b.invoke(4, 6, "acquire", json!({"lock": "L"}));
        b.complete(4, 7, EventType::Fail, "acquire", json!({"token": 0}));
        // Another lock counts from scratch.
        b.acquire(5, "M", 1, 10, 8, 9);
        let report = run(&b);
        assert_eq!(report.validity, Validity::Valid, "{:?}", report.anomalies);
        assert_eq!(report.stats["grants"], json!(3));
        assert_eq!(report.stats["locks"], json!(2));
        assert_eq!(report.judged, Judged::new(3, "grants"));
        assert_eq!(
            report.summary,
            "3 grants of 2 locks: tokens unique and increasing"
        );
    }

    #[test]
    fn no_grant_is_unknown_not_valid() {
        let report = run(&Builder::new());
        assert_eq!(report.validity, Validity::Unknown);
        assert_eq!(report.judged, Judged::new(0, "grants"));
        assert_eq!(report.summary, "judged nothing: no grant in the history");
        // Acquires that failed or ended info granted nothing we know of, and a
        // write is not a grant.
        let mut b = Builder::new();
        b.invoke(1, 0, "acquire", json!({"lock": "L"}));
        b.complete(1, 1, EventType::Info, "acquire", json!({"token": 3}));
        b.invoke(2, 2, "acquire", json!({"lock": "L"}));
        b.complete(2, 3, EventType::Fail, "acquire", json!({"token": 4}));
        b.write(3, "k", 3, "a", 4, 5, EventType::Ok);
        let report = run(&b);
        assert_eq!(report.validity, Validity::Unknown);
        assert!(report.judged_nothing());
        // One grant is a verdict.
        b.acquire(4, "L", 5, 1000, 10, 11);
        let report = run(&b);
        assert_eq!(report.validity, Validity::Valid);
        assert_eq!(report.judged, Judged::new(1, "grants"));
    }

    #[test]
    fn duplicate_token_is_flagged_once_and_not_as_non_monotonic() {
        let mut b = Builder::new();
        b.acquire(1, "L", 7, 1000, 0, 1); // 0
        b.acquire(2, "L", 7, 1000, 2, 3); // 2
        b.acquire(3, "L", 7, 1000, 4, 5); // 4
        b.acquire(4, "L", 8, 1000, 6, 7); // 6
        let report = run(&b);
        assert_eq!(report.validity, Validity::Invalid);
        assert_eq!(
            report.anomalies,
            vec![Anomaly::DuplicateToken {
                token: 7,
                ops: vec![0, 2, 4],
            }]
        );
        assert_eq!(
            report.summary,
            "4 grants: 1 token granted more than once, 0 grants went backwards"
        );
    }
}
