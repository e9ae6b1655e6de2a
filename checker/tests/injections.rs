//! Property tests: a correct lock history (sequential truth perturbed with
//! concurrent busy acquires, pauses and `info` acquires and releases, see
//! `common`) stays valid with correct final reads, and each kind of injected
//! violation is found as exactly that violation: the set of failing checks and
//! of anomaly kinds is exactly the expected one. A check with nothing to judge
//! (no accepted write, no ledger, no final read) is unknown, not failing, and
//! the set of those is exactly the expected one too.
//!
//! Some injections legitimately fail a second check as well; each such case
//! says why next to its expectation.

mod common;

use std::collections::BTreeSet;

use common::{Gen, Grant, MS, turn};
use leasehold_checker::{
    Anomaly, CheckInput, CheckOptions, Checked, Decision, EventType, History, Limits, Process,
    Validity, check_with,
};
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::json;

const CASES: u32 = 100;

fn options() -> CheckOptions {
    CheckOptions {
        fencing: Some(true),
        linearizability: Some(Limits::default()),
    }
}

fn run(g: &Gen, with_ledger: bool) -> Checked {
    let ops = History::new(g.events.clone()).ops();
    let ledger = with_ledger.then_some(g.ledger.as_slice());
    check_with(CheckInput { ops: &ops, ledger }, &options())
}

/// (check name, anomaly kind) of every anomaly, and the names of the checks
/// that did not pass though they judged something.
fn failing(checked: &Checked) -> (BTreeSet<(String, String)>, BTreeSet<String>) {
    let anomalies = checked
        .checks
        .iter()
        .flat_map(|c| {
            c.anomalies
                .iter()
                .map(|a| (c.name.clone(), a.kind().to_owned()))
        })
        .collect();
    let names = checked
        .checks
        .iter()
        .filter(|c| c.validity != Validity::Valid && !c.judged_nothing())
        .map(|c| c.name.clone())
        .collect();
    (anomalies, names)
}

/// The names of the checks that judged nothing; each must be unknown.
fn vacuous(checked: &Checked) -> BTreeSet<String> {
    checked
        .checks
        .iter()
        .filter(|c| c.judged_nothing())
        .inspect(|c| assert_eq!(c.validity, Validity::Unknown, "{c:#?}"))
        .map(|c| c.name.clone())
        .collect()
}

/// The checks that have nothing to judge in `g`: the write checks when no
/// write was accepted (fencing-order only runs with a ledger), lost-write
/// without final reads, and the storage search when there is neither a write
/// nor a final read.
fn nothing_to_judge(g: &Gen, with_ledger: bool) -> BTreeSet<String> {
    let writes = g.ledger.iter().any(|e| e.decision == Decision::Accepted);
    let final_reads = g
        .events
        .iter()
        .any(|e| e.process == Process::Named("final".to_owned()));
    let mut names = BTreeSet::new();
    if !writes {
        names.extend(["stale-write", "lost-write"]);
        if with_ledger {
            names.insert("fencing-order");
        }
    }
    if !final_reads {
        names.insert("lost-write");
        if !writes {
            names.insert("linearizability-storage");
        }
    }
    names.into_iter().map(str::to_owned).collect()
}

fn expected(pairs: &[(&str, &str)]) -> (BTreeSet<(String, String)>, BTreeSet<String>) {
    (
        pairs
            .iter()
            .map(|&(n, k)| (n.to_owned(), k.to_owned()))
            .collect(),
        pairs.iter().map(|&(n, _)| n.to_owned()).collect(),
    )
}

/// Records an injected grant, so that waiting for the lock to be free and the
/// final reads come after its lease too.
fn record(g: &mut Gen, token: u64, worker: u64, sent: u64, done: u64, index: u64, lease_ms: u64) {
    g.grants.push(Grant {
        token,
        node: format!("w{worker}"),
        complete_time: done,
        deadline: sent + lease_ms * MS,
        deadline_op: index,
    });
}

fn all_anomalies(checked: &Checked) -> Vec<&Anomaly> {
    checked.checks.iter().flat_map(|c| &c.anomalies).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    /// The generated history, with the controller's correct final reads of
    /// both keys, passes every check, with and without the ledger.
    #[test]
    fn correct_history_with_final_reads_is_valid(turns in prop::collection::vec(turn(), 1..12)) {
        let mut g = Gen::run(&turns);
        g.final_reads();
        for with_ledger in [true, false] {
            let checked = run(&g, with_ledger);
            let nothing = nothing_to_judge(&g, with_ledger);
            prop_assert_eq!(vacuous(&checked), nothing.clone(), "{:#?}", checked);
            prop_assert_eq!(failing(&checked), expected(&[]), "{:#?}", checked);
            prop_assert_eq!(
                checked.validity,
                if nothing.is_empty() { Validity::Valid } else { Validity::Unknown },
                "{:#?}",
                checked
            );
        }
    }

    /// Once the lock is free, another worker is granted the token of the last
    /// grant again.
    #[test]
    fn injected_duplicate_token_is_found(
        turns in prop::collection::vec(turn(), 1..12),
        worker in 0u64..4,
        lease_ms in 100u64..2000,
    ) {
        let mut g = Gen::run(&turns);
        g.wait_until_free();
        let token = g.last_token();
        let (index, sent, done) = g.grant(worker, "L", token, lease_ms);
        record(&mut g, token, worker, sent, done, index, lease_ms);
        g.final_reads();
        let checked = run(&g, true);
        prop_assert_eq!(checked.validity, Validity::Invalid);
        prop_assert_eq!(vacuous(&checked), nothing_to_judge(&g, true), "{:#?}", checked);
        // The lease-aware fenced mutex of linearizability-lock hands out strictly
        // increasing tokens, so no linearization grants `token` twice. No other
        // check objects: the lock was free (no two tokens overlap) and the
        // duplicate is the largest token, so tokens never went backwards.
        prop_assert_eq!(
            failing(&checked),
            expected(&[
                ("token-order", "duplicate-token"),
                ("linearizability-lock", "non-linearizable"),
            ]),
            "{:#?}",
            checked
        );
        let dup = all_anomalies(&checked)
            .into_iter()
            .find(|a| a.kind() == "duplicate-token")
            .cloned();
        let Some(Anomaly::DuplicateToken { token: t, ops }) = dup else {
            unreachable!()
        };
        prop_assert_eq!(t, token);
        prop_assert_eq!(ops.len(), 2);
        prop_assert_eq!(ops[1], index);
    }

    /// Once the lock is free, another worker is granted a token smaller than
    /// the last one, which no acquire got before.
    #[test]
    fn injected_non_monotonic_token_is_found(
        turns in prop::collection::vec(turn(), 1..12),
        worker in 0u64..4,
        lease_ms in 100u64..2000,
        pick in any::<Index>(),
    ) {
        let mut g = Gen::run(&turns);
        let granted: BTreeSet<u64> = g.grants.iter().map(|gr| gr.token).collect();
        let free: Vec<u64> = (0..g.last_token()).filter(|t| !granted.contains(t)).collect();
        let token = free[pick.index(free.len())];
        let last = g.last_token();
        g.wait_until_free();
        let (index, _, _) = g.grant(worker, "L", token, lease_ms);
        // Not `record`ed: `last_token` stays the largest.
        g.now += lease_ms * MS;
        g.final_reads();
        let checked = run(&g, true);
        prop_assert_eq!(checked.validity, Validity::Invalid);
        prop_assert_eq!(vacuous(&checked), nothing_to_judge(&g, true), "{:#?}", checked);
        // linearizability-lock: the fenced mutex refuses a token not larger than
        // the last one granted (it is not a duplicate, so token-order reports it
        // as non-monotonic only).
        prop_assert_eq!(
            failing(&checked),
            expected(&[
                ("token-order", "non-monotonic-token"),
                ("linearizability-lock", "non-linearizable"),
            ]),
            "{:#?}",
            checked
        );
        let nm = all_anomalies(&checked)
            .into_iter()
            .find(|a| a.kind() == "non-monotonic-token")
            .cloned();
        let Some(Anomaly::NonMonotonicToken { earlier_token, later_token, ops }) = nm else {
            unreachable!()
        };
        prop_assert_eq!((earlier_token, later_token), (last, token));
        prop_assert_eq!(ops.last().copied(), Some(index));
    }

    /// Storage accepts a lower token after a higher one, each from a holder
    /// whose lease is valid and not superseded: not a stale write.
    ///
    /// With the one lock `L` this cannot happen: a write with the higher token
    /// is sent after that token's grant completed, so a later write with the
    /// lower token is superseded, i.e. stale. So two locks share key `k0`: a
    /// worker holds `L` (token `last + 1`), another holds `M` (a larger token,
    /// of `M`'s own sequence); the `M` holder writes first, then the `L` holder,
    /// and the store accepts both.
    #[test]
    fn injected_fencing_order_violation_is_found(
        turns in prop::collection::vec(turn(), 1..12),
        worker in 0u64..4,
        other in 1u64..4,
        extra in 1u64..100,
        lease_ms in 100u64..2000,
    ) {
        let mut g = Gen::run(&turns);
        g.wait_until_free();
        let (a, b) = (worker, (worker + other) % 4);
        let (low, high) = (g.last_token() + 1, g.last_token() + extra + 1);
        // Concurrent acquires of the two locks.
        g.tick(1);
        g.client(a, EventType::Invoke, "acquire", json!({"lock": "L", "ttl_ms": lease_ms}));
        g.tick(1);
        g.client(b, EventType::Invoke, "acquire", json!({"lock": "M", "ttl_ms": lease_ms}));
        g.tick(1);
        g.client(a, EventType::Ok, "acquire", json!({"lock": "L", "token": low, "lease_ms": lease_ms}));
        g.tick(1);
        g.client(b, EventType::Ok, "acquire", json!({"lock": "M", "token": high, "lease_ms": lease_ms}));
        let (_, first) = g.accepted_write(b, "k0", high, "m-high");
        let (_, second) = g.accepted_write(a, "k0", low, "l-low");
        // No final read: what a store that broke fencing holds is not defined.
        let checked = run(&g, true);
        prop_assert_eq!(checked.validity, Validity::Invalid);
        prop_assert_eq!(vacuous(&checked), nothing_to_judge(&g, true), "{:#?}", checked);
        prop_assert_eq!(
            failing(&checked),
            expected(&[("fencing-order", "fencing-order")]),
            "{:#?}",
            checked
        );
        let fo = all_anomalies(&checked)[0].clone();
        let Anomaly::FencingOrder { key, token, after_token, ledger, .. } = fo else {
            unreachable!()
        };
        prop_assert_eq!(key, "k0");
        prop_assert_eq!((token, after_token), (low, high));
        prop_assert_eq!(ledger, vec![first, second]);
        prop_assert_eq!(g.ledger[second].decision, Decision::Accepted);
    }

    /// Once the lock is free, a worker is granted it, and another worker is
    /// granted the next token while the first lease certainly still runs.
    #[test]
    fn injected_mutual_exclusion_violation_is_found(
        turns in prop::collection::vec(turn(), 1..12),
        worker in 0u64..4,
        other in 1u64..4,
        writes in 0usize..3,
        lease_ms in 100u64..2000,
    ) {
        let mut g = Gen::run(&turns);
        g.wait_until_free();
        let (a, b) = (worker, (worker + other) % 4);
        let first = g.last_token() + 1;
        let (ia, sa, da) = g.grant(a, "L", first, lease_ms);
        for n in 0..writes {
            g.accepted_write(a, "k0", first, &format!("a-{n}"));
        }
        let (ib, sb, db) = g.grant(b, "L", first + 1, lease_ms);
        prop_assert!(db < sa + lease_ms * MS);
        record(&mut g, first, a, sa, da, ia, lease_ms);
        record(&mut g, first + 1, b, sb, db, ib, lease_ms);
        g.final_reads();
        let checked = run(&g, true);
        prop_assert_eq!(checked.validity, Validity::Invalid);
        prop_assert_eq!(vacuous(&checked), nothing_to_judge(&g, true), "{:#?}", checked);
        // linearizability-lock: the fenced mutex refuses an acquire answered
        // before the holder's lease deadline. Stale-write does not object: the
        // first holder wrote only before the second grant completed.
        prop_assert_eq!(
            failing(&checked),
            expected(&[
                ("mutual-exclusion", "mutual-exclusion"),
                ("linearizability-lock", "non-linearizable"),
            ]),
            "{:#?}",
            checked
        );
        let me = all_anomalies(&checked)
            .into_iter()
            .find(|a| a.kind() == "mutual-exclusion")
            .cloned();
        let Some(Anomaly::MutualExclusion { token, other_token, overlap_from, overlap_to, .. }) = me else {
            unreachable!()
        };
        prop_assert_eq!((token, other_token), (first, first + 1));
        prop_assert_eq!((overlap_from, overlap_to), (db, sa + lease_ms * MS));
    }

    /// The final read of a written key returns an older accepted write, or
    /// nothing, instead of what the store holds.
    #[test]
    fn injected_lost_write_is_found(
        turns in prop::collection::vec(turn(), 1..12),
        second_key in any::<bool>(),
        pick in any::<Index>(),
    ) {
        let mut g = Gen::run(&turns);
        let key = if second_key { "k1" } else { "k0" };
        let Some(stored) = g.stored(key) else {
            return Ok(());
        };
        let mut older: Vec<Option<(u64, String)>> = g
            .ledger
            .iter()
            .filter(|e| e.key == key && e.decision == Decision::Accepted)
            .map(|e| Some((e.token, e.data.clone())))
            .filter(|v| v.as_ref() != Some(&stored))
            .collect();
        older.push(None);
        let read = older[pick.index(older.len())].clone();
        g.wait_until_free();
        for k in ["k0", "k1"] {
            let value = if k == key { read.clone() } else { g.stored(k) };
            g.final_read(k, value);
        }
        for with_ledger in [true, false] {
            let checked = run(&g, with_ledger);
            prop_assert_eq!(checked.validity, Validity::Invalid);
            prop_assert_eq!(vacuous(&checked), nothing_to_judge(&g, with_ledger), "{:#?}", checked);
            // linearizability-storage: every write to the key completed before
            // the final read was sent, so a register must return the last one.
            prop_assert_eq!(
                failing(&checked),
                expected(&[
                    ("lost-write", "lost-write"),
                    ("linearizability-storage", "non-linearizable"),
                ]),
                "{:#?}",
                checked
            );
            let lw = all_anomalies(&checked)
                .into_iter()
                .find(|a| a.kind() == "lost-write")
                .cloned();
            let Some(Anomaly::LostWrite { key: k, token, data, read_token, read_data, .. }) = lw else {
                unreachable!()
            };
            prop_assert_eq!(k, key);
            prop_assert_eq!((token, data), stored.clone());
            prop_assert_eq!(read_token, read.as_ref().map(|v| v.0));
            prop_assert_eq!(read_data, read.as_ref().map(|v| v.1.clone()));
        }
    }
}
