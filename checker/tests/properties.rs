//! Property tests: any correct sequential lock history is valid in every check
//! that had something to judge, and unknown in exactly those that had nothing
//! (no ledger, no writes, no final read); one zombie write injected into it is
//! caught as exactly one certain stale write.

mod common;

use std::collections::BTreeMap;

use common::{Gen, MS, Turn, turn};
use leasehold_checker::{
    Anomaly, Certainty, CheckInput, Checked, Decision, EventType, History, LedgerEntry, Process,
    Validity, check,
};
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::json;

/// Each check's (validity, judged count), by name.
fn verdicts(checked: &Checked) -> BTreeMap<&str, (Validity, u64)> {
    checked
        .checks
        .iter()
        .map(|c| (c.name.as_str(), (c.validity, c.judged.count)))
        .collect()
}

/// What every check of the correct history `g` generated from `turns` must
/// say: valid with what it judged, or unknown having judged nothing when there
/// was nothing to judge.
fn expected(
    g: &Gen,
    turns: &[Turn],
    with_ledger: bool,
    final_reads: bool,
) -> BTreeMap<&'static str, (Validity, u64)> {
    // The generated writes are all ok and accepted, to k0 and k1.
    let writes = g
        .ledger
        .iter()
        .filter(|e| e.decision == Decision::Accepted)
        .count() as u64;
    // Every grant has its own token and a lease longer than its reply took.
    let grants = g.grants.len() as u64;
    // The lock search sees the grants, the renews (one amid a turn's writes),
    // the releases and the busy acquires that timed out (unknown, so they may
    // have happened); failed acquires are left out.
    let count = |f: fn(&Turn) -> bool| turns.iter().filter(|t| f(t)).count() as u64;
    let lock = grants
        + count(|t| t.renew && !t.writes.is_empty())
        + count(|t| t.release != 0)
        + count(|t| t.busy == 2);
    let judged = |n: u64| {
        if n == 0 {
            (Validity::Unknown, 0)
        } else {
            (Validity::Valid, n)
        }
    };
    let reads = if final_reads { 2 } else { 0 };
    let mut expected = BTreeMap::from([
        ("stale-write", judged(writes)),
        ("fencing-order", judged(writes)),
        ("token-order", judged(grants)),
        ("mutual-exclusion", judged(grants)),
        ("lost-write", judged(if final_reads { writes } else { 0 })),
        ("linearizability-storage", judged(writes + reads)),
        ("linearizability-lock", judged(lock)),
    ]);
    // Fencing order reads storage's decisions: without a ledger it is not run.
    if !with_ledger {
        expected.remove("fencing-order");
    }
    expected
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
        // With the controller's final reads, every check judges something
        // unless the history has no write (or the check no ledger).
        let mut g = Gen::run(&turns);
        g.final_reads();
        let ops = History::new(g.events.clone()).ops();
        for ledger in [Some(g.ledger.as_slice()), None] {
            let checked = check(CheckInput { ops: &ops, ledger });
            let want = expected(&g, &turns, ledger.is_some(), true);
            prop_assert_eq!(verdicts(&checked), want.clone(), "{:#?}", checked);
            let vacuous = want.values().any(|&(v, _)| v == Validity::Unknown);
            prop_assert_eq!(
                checked.validity,
                if vacuous { Validity::Unknown } else { Validity::Valid },
                "{:#?}",
                checked
            );
            for c in &checked.checks {
                prop_assert_eq!(c.judged_nothing(), c.validity == Validity::Unknown, "{:#?}", c);
            }
        }

        // Without them, lost-write has nothing to compare with.
        let mut g = Gen::run(&turns);
        let ops = History::new(g.events.clone()).ops();
        for ledger in [Some(g.ledger.as_slice()), None] {
            let checked = check(CheckInput { ops: &ops, ledger });
            prop_assert_eq!(
                verdicts(&checked),
                expected(&g, &turns, ledger.is_some(), false),
                "{:#?}",
                checked
            );
            prop_assert_eq!(checked.validity, Validity::Unknown);
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
