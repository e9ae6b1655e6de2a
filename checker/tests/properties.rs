//! Property tests: any correct sequential lock history is valid, and one zombie
//! write injected into it is caught as exactly one certain stale write.

mod common;

use common::{Gen, MS, turn};
use leasehold_checker::{
    Anomaly, Certainty, CheckInput, Decision, EventType, History, LedgerEntry, Process, Validity,
    check,
};
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::json;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn correct_history_is_valid_and_an_injected_zombie_write_is_caught(
        turns in prop::collection::vec(turn(), 2..16),
        pick in any::<Index>(),
        delay_ms in 1u64..5000,
        with_history_op in any::<bool>(),
    ) {
        let mut g = Gen::run(&turns);
        let ops = History::new(g.events.clone()).ops();
        for ledger in [Some(g.ledger.as_slice()), None] {
            let checked = check(CheckInput { ops: &ops, ledger });
            prop_assert_eq!(checked.validity, Validity::Valid, "{:#?}", checked);
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
