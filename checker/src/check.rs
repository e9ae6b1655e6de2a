//! Runs every check and combines the verdicts.

use serde::{Deserialize, Serialize};

use crate::input::CheckInput;
use crate::linearizability::Limits;
use crate::verdict::{CheckReport, Validity};

/// The combined verdict and each check's report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Checked {
    /// The run's verdict: the checks' verdicts combined (invalid beats unknown
    /// beats valid).
    pub validity: Validity,
    /// One report per check that ran, in the order [`check_with`] runs them.
    pub checks: Vec<CheckReport>,
    /// How close each accepted write came to its holder's lease deadline
    /// ([`lease_margins`](crate::lease_margins)); `None` when not measured
    /// (a Jepsen history, which has no leases).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub margins: Option<crate::margins::Margins>,
}

/// What a caller may know about a run beyond its history and ledger, and how
/// far the checks may go. Build it with `..Default::default()`: fields may be
/// added.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckOptions {
    /// Whether storage was fenced (from the run's config), for the lost-write
    /// check; `None` (the default) lets it guess from the ledger.
    pub fencing: Option<bool>,
    /// Limits of the linearizability search of the storage registers and the
    /// locks; `None` skips it. Default: [`Limits::default`].
    pub linearizability: Option<Limits>,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            fencing: None,
            linearizability: Some(Limits::default()),
        }
    }
}

/// Runs every property with default options: see [`check_with`].
pub fn check(input: CheckInput<'_>) -> Checked {
    check_with(input, &CheckOptions::default())
}

/// Runs stale write, fencing order (only with a ledger), token order, mutual
/// exclusion, lost write and (unless `options` skip it) the linearizability of storage and locks, in
/// that order; invalid beats unknown beats valid. A check that judged nothing
/// is unknown, so a history in which nothing happened is never valid.
pub fn check_with(input: CheckInput<'_>, options: &CheckOptions) -> Checked {
    let mut checks = vec![crate::stale_write::check_stale_writes(input)];
    // Fencing order is a property of storage's decisions: without a ledger (a
    // history from elsewhere) there is nothing it could judge, so it is not run
    // rather than making every such history unknown.
    if input.ledger.is_some() {
        checks.push(crate::fencing_order::check_fencing_order(input));
    }
    checks.extend([
        crate::token_order::check_token_order(input),
        crate::mutual_exclusion::check_mutual_exclusion(input),
        crate::lost_write::check_lost_writes_with_fencing(input, options.fencing),
    ]);
    if let Some(limits) = options.linearizability {
        checks.extend(crate::linearizability::check_leasehold_linearizability(
            input.ops, limits,
        ));
    }
    let validity = checks
        .iter()
        .fold(Validity::Valid, |v, c| v.combine(c.validity));
    Checked {
        validity,
        checks,
        margins: Some(crate::margins::lease_margins(input)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EventType;
    use crate::ledger::Decision;
    use crate::test_support::{Builder, input, seed_scenario};
    use crate::verdict::Judged;

    const NAMES: [&str; 7] = [
        "stale-write",
        "fencing-order",
        "token-order",
        "mutual-exclusion",
        "lost-write",
        "linearizability-storage",
        "linearizability-lock",
    ];

    /// Each check's (name, validity, judged count), in order.
    fn verdicts(checked: &Checked) -> Vec<(&str, Validity, u64)> {
        checked
            .checks
            .iter()
            .map(|c| (c.name.as_str(), c.validity, c.judged.count))
            .collect()
    }

    /// What every report must honour: it records what it judged, and one that
    /// judged nothing is unknown and says so.
    fn assert_honest(checked: &Checked) {
        for c in &checked.checks {
            assert!(c.judged.is_recorded(), "{c:#?}");
            assert_eq!(c.judged_nothing(), c.judged.count == 0, "{c:#?}");
            if c.judged_nothing() {
                assert_eq!(c.validity, Validity::Unknown, "{c:#?}");
                assert!(c.summary.contains("judged nothing"), "{c:#?}");
            } else {
                assert!(!c.summary.contains("judged nothing"), "{c:#?}");
            }
        }
    }

    /// Two holders taking turns, renewing, writing within their leases, behind
    /// fenced storage that turns a late zombie away, and the final read; plus
    /// noise that must not count (a failed acquire, an unknown release, a
    /// nemesis pause).
    fn valid_history() -> Builder {
        let mut b = Builder::new();
        b.acquire(1, "L", 1, 1000, 0, 2);
        b.write(1, "k", 1, "w1-1", 10, 14, EventType::Ok);
        b.ledger(12, "k", 1, "w1-1", "w1", Decision::Accepted);
        b.renew(1, "L", 1, 1000, 900, Some((905, EventType::Ok)));
        b.write(1, "k", 1, "w1-2", 1500, 1520, EventType::Ok);
        b.ledger(1510, "k", 1, "w1-2", "w1", Decision::Accepted);
        b.invoke(2, 1600, "acquire", serde_json::json!({"lock": "L"}));
        b.complete(2, 1601, EventType::Fail, "acquire", serde_json::Value::Null);
        b.release(1, "L", 1, 1700, 1702);
        b.nemesis(1710, "pause", &["w1"]);
        b.acquire(2, "L", 2, 1000, 1800, 1805);
        b.write(2, "k", 2, "w2-1", 1810, 1820, EventType::Ok);
        b.ledger(1815, "k", 2, "w2-1", "w2", Decision::Accepted);
        b.write(1, "k", 1, "w1-3", 1900, 1910, EventType::Fail);
        b.ledger(1905, "k", 1, "w1-3", "w1", Decision::Rejected);
        b.invoke(
            2,
            2000,
            "release",
            serde_json::json!({"lock": "L", "token": 2}),
        );
        b.complete(2, 2100, EventType::Info, "release", serde_json::Value::Null);
        b.final_read(5000, "k", Some((2, "w2-1")));
        b
    }

    #[test]
    fn valid_history_passes_every_check_with_a_ledger() {
        use Validity::Valid;
        let b = valid_history();
        let ops = b.ops();
        let checked = check(input(&ops, &b.ledger, true));
        assert_honest(&checked);
        assert_eq!(checked.validity, Valid, "{checked:#?}");
        // Storage: 3 ok writes (the failed one left out) and the final read.
        // Lock: 2 ok acquires, the renew, the ok release and the unknown one
        // (the failed acquire left out).
        assert_eq!(
            verdicts(&checked),
            [
                ("stale-write", Valid, 3),
                ("fencing-order", Valid, 3),
                ("token-order", Valid, 2),
                ("mutual-exclusion", Valid, 2),
                ("lost-write", Valid, 3),
                ("linearizability-storage", Valid, 4),
                ("linearizability-lock", Valid, 5),
            ]
        );
        let units: Vec<_> = checked
            .checks
            .iter()
            .map(|c| c.judged.unit.as_str())
            .collect();
        assert_eq!(
            units,
            [
                "accepted writes",
                "accepted writes",
                "grants",
                "leases",
                "acknowledged writes",
                "ops",
                "ops"
            ]
        );
        assert_eq!(checked.checks[0].stats["stale_rejected"], 1);
        assert_eq!(
            checked.checks[0].summary,
            "no stale write among 3 accepted writes; storage rejected 1 stale write"
        );
        let skipped = check_with(
            input(&ops, &b.ledger, true),
            &CheckOptions {
                linearizability: None,
                ..CheckOptions::default()
            },
        );
        assert_eq!(skipped.checks.len(), 5);
        assert_eq!(skipped.validity, Valid);
    }

    #[test]
    fn without_a_ledger_fencing_order_is_not_run_and_the_rest_passes() {
        use Validity::Valid;
        let b = valid_history();
        let ops = b.ops();
        let checked = check(input(&ops, &b.ledger, false));
        assert_honest(&checked);
        assert_eq!(checked.validity, Valid, "{checked:#?}");
        // Without a ledger the accepted writes are the ok ones, and fencing
        // order, a property of storage's decisions, has nothing to read.
        assert_eq!(
            verdicts(&checked),
            [
                ("stale-write", Valid, 3),
                ("token-order", Valid, 2),
                ("mutual-exclusion", Valid, 2),
                ("lost-write", Valid, 3),
                ("linearizability-storage", Valid, 4),
                ("linearizability-lock", Valid, 5),
            ]
        );
    }

    #[test]
    fn an_empty_history_is_unknown_in_every_check() {
        for with_ledger in [true, false] {
            let checked = check(input(&[], &[], with_ledger));
            assert_honest(&checked);
            assert_eq!(checked.validity, Validity::Unknown, "{checked:#?}");
            let names: Vec<_> = checked.checks.iter().map(|c| c.name.as_str()).collect();
            let expected: Vec<_> = NAMES
                .into_iter()
                .filter(|n| with_ledger || *n != "fencing-order")
                .collect();
            assert_eq!(names, expected);
            for c in &checked.checks {
                assert_eq!(c.validity, Validity::Unknown, "{c:#?}");
                assert!(c.judged_nothing(), "{c:#?}");
                assert!(c.anomalies.is_empty());
            }
            let summaries: Vec<_> = checked.checks.iter().map(|c| c.summary.as_str()).collect();
            let mut expected = vec!["judged nothing: no write was accepted"];
            if with_ledger {
                expected.push("judged nothing: the ledger holds no accepted write (0 entries)");
            }
            expected.extend([
                "judged nothing: no grant in the history",
                "judged nothing: no grant in the history",
                "judged nothing: no final read",
                "judged nothing: no operation to check under the leasehold-storage model",
                "judged nothing: no operation to check under the leasehold-lock model",
            ]);
            assert_eq!(summaries, expected);
        }
    }

    #[test]
    fn grants_without_writes_judge_the_lock_only() {
        use Validity::{Unknown, Valid};
        let mut b = Builder::new();
        b.acquire(1, "L", 1, 1000, 0, 2);
        b.renew(1, "L", 1, 1000, 500, Some((505, EventType::Ok)));
        b.release(1, "L", 1, 900, 901);
        b.acquire(2, "L", 2, 1000, 1000, 1002);
        // The controller read the key nobody wrote: empty, as it should be.
        b.final_read(3000, "k", None);
        let ops = b.ops();
        let checked = check(input(&ops, &b.ledger, true));
        assert_honest(&checked);
        assert_eq!(checked.validity, Unknown);
        assert_eq!(
            verdicts(&checked),
            [
                ("stale-write", Unknown, 0),
                ("fencing-order", Unknown, 0),
                ("token-order", Valid, 2),
                ("mutual-exclusion", Valid, 2),
                ("lost-write", Unknown, 0),
                // The final read of an empty register is something to judge.
                ("linearizability-storage", Valid, 1),
                ("linearizability-lock", Valid, 4),
            ]
        );
        assert_eq!(
            checked.checks[4].summary,
            "judged nothing: the final read of 1 key had no acknowledged write to reflect"
        );
    }

    #[test]
    fn only_unknown_operations_judge_nothing() {
        // Every operation timed out: none is known to have happened.
        let mut b = Builder::new();
        b.invoke(
            1,
            0,
            "acquire",
            serde_json::json!({"lock": "L", "ttl_ms": 1000}),
        );
        b.complete(1, 10, EventType::Info, "acquire", serde_json::Value::Null);
        b.write(2, "k", 1, "a", 20, 30, EventType::Info);
        let ops = b.ops();
        let checked = check(input(&ops, &b.ledger, false));
        assert_honest(&checked);
        assert_eq!(checked.validity, Validity::Unknown);
        for c in &checked.checks {
            assert_eq!(c.validity, Validity::Unknown, "{c:#?}");
        }
        let storage = checked
            .checks
            .iter()
            .find(|c| c.name == "linearizability-storage")
            .unwrap();
        assert_eq!(storage.stats["ops"], 1);
        assert_eq!(
            storage.summary,
            "judged nothing: no operation under the leasehold-storage model is known to have happened (1 key, 1 operation of unknown outcome)"
        );
    }

    #[test]
    fn the_fenced_seed_scenario_is_valid_with_the_right_counts() {
        use Validity::Valid;
        let mut b = seed_scenario(true);
        b.final_read(5000, "k", Some((34, "w2-1")));
        let ops = b.ops();
        let checked = check(input(&ops, &b.ledger, true));
        assert_honest(&checked);
        assert_eq!(checked.validity, Valid, "{checked:#?}");
        // Storage: the two ok writes and the final read (the rejected write is
        // left out). Lock: two acquires and the release.
        assert_eq!(
            verdicts(&checked),
            [
                ("stale-write", Valid, 2),
                ("fencing-order", Valid, 2),
                ("token-order", Valid, 2),
                ("mutual-exclusion", Valid, 2),
                ("lost-write", Valid, 2),
                ("linearizability-storage", Valid, 3),
                ("linearizability-lock", Valid, 3),
            ]
        );
        let summaries: Vec<_> = checked.checks[..5]
            .iter()
            .map(|c| c.summary.as_str())
            .collect();
        assert_eq!(
            summaries,
            [
                "no stale write among 2 accepted writes; storage rejected 1 stale write",
                "2 accepted writes to 1 key, all in fencing order",
                "2 grants of 1 lock: tokens unique and increasing",
                "2 grants of 1 lock, 2 leases vouched for: no two certainly held at once",
                "the final reads of 1 key reflect all 2 acknowledged writes",
            ]
        );
    }

    #[test]
    fn seed_scenario_is_invalid_without_fencing_and_valid_with_it() {
        let zombie = seed_scenario(false);
        let ops = zombie.ops();
        let checked = check(input(&ops, &zombie.ledger, true));
        assert_eq!(checked.validity, Validity::Invalid);
        let kinds: Vec<_> = checked
            .checks
            .iter()
            .flat_map(|c| c.anomalies.iter().map(|a| a.kind()))
            .collect();
        assert_eq!(kinds, ["stale-write", "fencing-order"]);

        // Without the final read the lost-write check judges nothing.
        let mut fenced = seed_scenario(true);
        let ops = fenced.ops();
        assert_eq!(
            check(input(&ops, &fenced.ledger, true)).validity,
            Validity::Unknown
        );
        fenced.final_read(5000, "k", Some((34, "w2-1")));
        let ops = fenced.ops();
        assert_eq!(
            check(input(&ops, &fenced.ledger, true)).validity,
            Validity::Valid
        );
    }

    #[test]
    fn verdict_serializes_as_documented() {
        let zombie = seed_scenario(false);
        let ops = zombie.ops();
        let checked = check(input(&ops, &zombie.ledger, true));
        let v = serde_json::to_value(&checked).unwrap();
        assert_eq!(v["validity"], "invalid");
        let anomaly = &v["checks"][0]["anomalies"][0];
        assert_eq!(anomaly["kind"], "stale-write");
        assert_eq!(anomaly["certainty"], "certain");
        assert_eq!(anomaly["superseded_by"], 34);
        assert_eq!(
            v["checks"][0]["judged"],
            serde_json::json!({"count": 3, "unit": "accepted writes"})
        );
        let back: Checked = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(back, checked);

        // A results file from before `judged` still reads, as not recorded.
        let mut old = v;
        for c in old["checks"].as_array_mut().unwrap() {
            c.as_object_mut().unwrap().remove("judged");
        }
        let back: Checked = serde_json::from_value(old).unwrap();
        assert_eq!(back.checks[0].judged, Judged::default());
        assert!(!back.checks[0].judged.is_recorded());
        assert!(!back.checks[0].judged_nothing());
        assert_eq!(back.validity, Validity::Invalid);
    }
}
