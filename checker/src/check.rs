//! Runs every check and combines the verdicts.

use serde::{Deserialize, Serialize};

use crate::ledger::LedgerEntry;
use crate::linearizability::Limits;
use crate::op::Op;
use crate::verdict::{CheckReport, Validity};

/// What the checks read: the paired operations and, when storage kept one, the
/// ledger. `None` for the ledger means "not available" (an external history),
/// which is not the same as an empty ledger.
#[derive(Clone, Copy, Debug)]
pub struct CheckInput<'a> {
    pub ops: &'a [Op],
    pub ledger: Option<&'a [LedgerEntry]>,
}

/// The combined verdict and each check's report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Checked {
    pub validity: Validity,
    pub checks: Vec<CheckReport>,
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

/// Runs stale write, fencing order, token order, mutual exclusion, lost write
/// and (unless `options` skip it) the linearizability of storage and locks, in
/// that order; invalid beats unknown beats valid.
pub fn check_with(input: CheckInput<'_>, options: &CheckOptions) -> Checked {
    let mut checks = vec![
        crate::stale_write::check_stale_writes(input),
        crate::fencing_order::check_fencing_order(input),
        crate::token_order::check_token_order(input),
        crate::mutual_exclusion::check_mutual_exclusion(input),
        crate::lost_write::check_lost_writes_with_fencing(input, options.fencing),
    ];
    if let Some(limits) = options.linearizability {
        checks.extend(crate::linearizability::check_leasehold_linearizability(
            input.ops, limits,
        ));
    }
    let validity = checks
        .iter()
        .fold(Validity::Valid, |v, c| v.combine(c.validity));
    Checked { validity, checks }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::EventType;
    use crate::ledger::Decision;
    use crate::test_support::{Builder, input, seed_scenario};

    /// Two holders taking turns, renewing, writing within their leases, behind
    /// fenced storage that turns a late zombie away; plus noise that must not
    /// count (a failed acquire, an unknown release, a nemesis pause).
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
        b
    }

    #[test]
    fn valid_history_passes_every_check_with_and_without_ledger() {
        let b = valid_history();
        let ops = b.ops();
        for with_ledger in [true, false] {
            let checked = check(input(&ops, &b.ledger, with_ledger));
            assert_eq!(checked.validity, Validity::Valid, "{checked:#?}");
            let names: Vec<_> = checked.checks.iter().map(|c| c.name.as_str()).collect();
            assert_eq!(
                names,
                [
                    "stale-write",
                    "fencing-order",
                    "token-order",
                    "mutual-exclusion",
                    "lost-write",
                    "linearizability-storage",
                    "linearizability-lock"
                ]
            );
            let skipped = check_with(
                input(&ops, &b.ledger, with_ledger),
                &CheckOptions {
                    linearizability: None,
                    ..CheckOptions::default()
                },
            );
            assert_eq!(skipped.checks.len(), 5);
            assert_eq!(skipped.validity, Validity::Valid);
        }
        let checked = check(input(&ops, &b.ledger, true));
        assert_eq!(checked.checks[0].stats["stale_rejected"], 1);
        assert_eq!(
            checked.checks[0].summary,
            "no stale write accepted; storage rejected 1 stale write"
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

        let fenced = seed_scenario(true);
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
        let back: Checked = serde_json::from_value(v).unwrap();
        assert_eq!(back, checked);
    }
}
