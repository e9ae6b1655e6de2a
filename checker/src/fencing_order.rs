//! Fencing order: storage accepted token t after it had accepted t' > t.
//!
//! # The property
//!
//! For each storage node and key, walking the ledger in decision order, every
//! accepted entry must carry a token no smaller than every token accepted before
//! it. Equal tokens are fine (one holder writes several times). Each violating
//! entry is reported once, against the largest token accepted before it, with
//! both ledger positions and, when the history has them, both writes.
//!
//! Order is per storage node because each fenced store keeps its own high-water
//! mark: two stores disagreeing is a question for the register's linearizability,
//! not for fencing. With one storage node (entries naming none) this is per key.
//!
//! Rejected entries are not judged: refusing a write is always safe. The
//! report counts as judged the accepted entries it compared.
//!
//! The property is about the ledger only: the history does not say which
//! storage node decided a write, so it cannot tell one store's order from two
//! stores' interleaving. Without a ledger (`ledger: None`, e.g. a Jepsen
//! history) there is nothing to check, and a ledger without an accepted entry
//! gives nothing to compare: either way the check judged nothing and is
//! `unknown`, never `valid` (without a ledger `stats.checked = false`). O(n) in
//! ledger entries.

use std::collections::HashMap;

use crate::input::CheckInput;
use crate::ledger::{Decision, WriteOps};
use crate::verdict::{
    Anomaly, CheckReport, Judged, Validity, judged_nothing, plural, unless_vacuous,
};

const UNIT: &str = "accepted writes";

/// The fencing-order check (`fencing-order`); see the module documentation.
pub fn check_fencing_order(input: CheckInput<'_>) -> CheckReport {
    let name = "fencing-order".to_owned();
    let Some(ledger) = input.ledger else {
        let mut stats = serde_json::Map::new();
        stats.insert("checked".to_owned(), false.into());
        return CheckReport {
            name,
            validity: Validity::Unknown,
            summary: judged_nothing("no ledger, so storage's decisions are not known"),
            judged: Judged::new(0, UNIT),
            anomalies: Vec::new(),
            stats,
        };
    };

    // (storage node, key) -> (largest accepted token, its ledger position).
    let mut highest: HashMap<(Option<&str>, &str), (u64, usize)> = HashMap::new();
    let mut accepted = 0u64;
    let mut violations: Vec<(usize, usize)> = Vec::new();
    for (pos, e) in ledger.iter().enumerate() {
        if e.decision != Decision::Accepted {
            continue;
        }
        accepted += 1;
        let slot = highest
            .entry((e.node.as_deref(), e.key.as_str()))
            .or_insert((e.token, pos));
        if e.token < slot.0 {
            violations.push((slot.1, pos));
        } else if e.token > slot.0 {
            *slot = (e.token, pos);
        }
    }

    // Only anomalies need the history's writes, so they are matched only then.
    let matching = (!violations.is_empty()).then(|| WriteOps::new(input.ops));
    let anomalies: Vec<Anomaly> = violations
        .iter()
        .map(|&(earlier, later)| {
            let ops = match &matching {
                Some(m) => [earlier, later]
                    .iter()
                    .filter_map(|&p| m.find(&ledger[p]))
                    .map(|o| input.ops[o].invoke_index)
                    .collect(),
                None => Vec::new(),
            };
            Anomaly::FencingOrder {
                key: ledger[later].key.clone(),
                token: ledger[later].token,
                after_token: ledger[earlier].token,
                ops,
                ledger: vec![earlier, later],
            }
        })
        .collect();

    let keys = highest.len();
    let summary = if accepted == 0 {
        judged_nothing(format!(
            "the ledger holds no accepted write ({})",
            plural(ledger.len() as u64, "entry", "entries")
        ))
    } else if anomalies.is_empty() {
        format!(
            "{} to {}, all in fencing order",
            plural(accepted, "accepted write", "accepted writes"),
            plural(keys as u64, "key", "keys"),
        )
    } else {
        format!(
            "{} of {accepted} accepted writes came after a larger token",
            anomalies.len()
        )
    };
    let mut stats = serde_json::Map::new();
    stats.insert("checked".to_owned(), true.into());
    stats.insert("entries".to_owned(), ledger.len().into());
    stats.insert("accepted".to_owned(), accepted.into());
    stats.insert("keys".to_owned(), keys.into());
    stats.insert("violations".to_owned(), anomalies.len().into());
    CheckReport {
        name,
        validity: if anomalies.is_empty() {
            unless_vacuous(Validity::Valid, accepted)
        } else {
            Validity::Invalid
        },
        summary,
        judged: Judged::new(accepted, UNIT),
        anomalies,
        stats,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::event::EventType;
    use crate::test_support::{Builder, input, seed_scenario};

    #[test]
    fn accepting_a_smaller_token_after_a_larger_is_flagged_once_against_the_largest() {
        let ops = seed_scenario(false).ops();
        let mut b = seed_scenario(false);
        // Another zombie write with 32 on the same key, and 34 again (equal: fine).
        b.ledger(3100, "k", 32, "w0-1", "w0", Decision::Accepted);
        b.ledger(3200, "k", 34, "w2-9", "w2", Decision::Accepted);
        // Another key has its own order.
        b.ledger(3300, "other", 1, "w1-3", "w1", Decision::Accepted);
        let report = check_fencing_order(input(&ops, &b.ledger, true));
        assert_eq!(report.name, "fencing-order");
        assert_eq!(report.validity, Validity::Invalid);
        assert_eq!(
            report.anomalies,
            vec![
                Anomaly::FencingOrder {
                    key: "k".into(),
                    token: 33,
                    after_token: 34,
                    ops: vec![7, 12],
                    ledger: vec![1, 2],
                },
                Anomaly::FencingOrder {
                    key: "k".into(),
                    token: 32,
                    after_token: 34,
                    ops: vec![7],
                    ledger: vec![1, 3],
                },
            ]
        );
        assert_eq!(report.stats["violations"], json!(2));
        assert_eq!(report.stats["keys"], json!(2));
        assert_eq!(report.judged, Judged::new(6, UNIT));
        assert_eq!(
            report.summary,
            "2 of 6 accepted writes came after a larger token"
        );
    }

    #[test]
    fn fenced_storage_is_in_order() {
        let b = seed_scenario(true);
        let ops = b.ops();
        let report = check_fencing_order(input(&ops, &b.ledger, true));
        assert_eq!(report.validity, Validity::Valid, "{:?}", report.anomalies);
        assert_eq!(report.stats["accepted"], json!(2));
        assert_eq!(report.stats["checked"], json!(true));
        assert_eq!(report.judged, Judged::new(2, UNIT));
        assert_eq!(
            report.summary,
            "2 accepted writes to 1 key, all in fencing order"
        );
    }

    #[test]
    fn stores_are_ordered_separately() {
        let mut b = Builder::new();
        b.ledger(1, "k", 5, "a", "w1", Decision::Accepted);
        b.ledger(2, "k", 4, "b", "w2", Decision::Accepted);
        b.ledger[1].node = Some("store2".into());
        let report = check_fencing_order(input(&[], &b.ledger, true));
        assert_eq!(report.validity, Validity::Valid);
    }

    #[test]
    fn without_ledger_nothing_is_checked() {
        let mut b = Builder::new();
        b.write(1, "k", 5, "a", 0, 1, EventType::Ok);
        b.write(1, "k", 4, "b", 2, 3, EventType::Ok);
        let ops = b.ops();
        let report = check_fencing_order(input(&ops, &[], false));
        assert_eq!(report.validity, Validity::Unknown);
        assert_eq!(
            report.summary,
            "judged nothing: no ledger, so storage's decisions are not known"
        );
        assert_eq!(report.stats["checked"], json!(false));
        assert!(report.judged_nothing());
        assert_eq!(report.judged.unit, UNIT);
    }

    #[test]
    fn a_ledger_without_accepted_writes_judges_nothing() {
        let check = |b: &Builder| check_fencing_order(input(&[], &b.ledger, true));
        let report = check(&Builder::new());
        assert_eq!(report.validity, Validity::Unknown);
        assert_eq!(
            report.summary,
            "judged nothing: the ledger holds no accepted write (0 entries)"
        );
        assert_eq!(report.judged, Judged::new(0, UNIT));
        // Refusals are not judged: refusing is always safe.
        let mut b = Builder::new();
        b.ledger(1, "k", 5, "a", "w1", Decision::Rejected);
        let report = check(&b);
        assert_eq!(report.validity, Validity::Unknown);
        assert_eq!(
            report.summary,
            "judged nothing: the ledger holds no accepted write (1 entry)"
        );
        // One accepted write is a verdict.
        b.ledger(2, "k", 6, "b", "w2", Decision::Accepted);
        let report = check(&b);
        assert_eq!(report.validity, Validity::Valid);
        assert_eq!(report.judged, Judged::new(1, UNIT));
        assert_eq!(
            report.summary,
            "1 accepted write to 1 key, all in fencing order"
        );
    }
}
