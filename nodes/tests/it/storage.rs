//! The fenced storage: the fencing rule, the ledger, replay after restart.

use std::io::BufReader;
use std::path::Path;

use leasehold_checker::{Decision, LedgerEntry, read_ledger};
use leasehold_nodes::RunClock;
use leasehold_workloads::StoredValue;

use crate::{fail, ok, start_storage, storage_client};

fn ledger(dir: &Path) -> Vec<LedgerEntry> {
    let file = std::fs::File::open(dir.join("ledger.jsonl")).unwrap();
    read_ledger(BufReader::new(file)).unwrap()
}

fn summary(entries: &[LedgerEntry]) -> Vec<(&str, u64, Decision, u64)> {
    entries
        .iter()
        .map(|e| (e.key.as_str(), e.token, e.decision, e.high_water))
        .collect()
}

#[tokio::test]
async fn fencing_rejects_a_lower_token_and_the_ledger_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let clock = RunClock::starting_now();
    let node = start_storage(dir.path(), true, clock).await;
    let w1 = storage_client(&node, "w1");
    let w2 = storage_client(&node, "w2");
    assert!(w1.health().await);
    assert_eq!(ok(w1.read("k").await), None);

    assert_eq!(ok(w2.write("k", "w2-1", 34).await).high_water, 34);
    assert_eq!(
        fail(w1.write("k", "w1-1", 33).await),
        "rejected: high water 34"
    );
    // The same token again is the same holder: accepted.
    assert_eq!(ok(w2.write("k", "w2-2", 34).await).high_water, 34);
    // High water is per key.
    assert_eq!(ok(w1.write("j", "w1-2", 1).await).high_water, 1);
    assert_eq!(
        ok(w1.read("k").await),
        Some(StoredValue {
            token: 34,
            data: "w2-2".into(),
            from: "w2".into()
        })
    );
    node.stop().await;

    let entries = ledger(dir.path());
    assert_eq!(
        summary(&entries),
        [
            ("k", 34, Decision::Accepted, 34),
            ("k", 33, Decision::Rejected, 34),
            ("k", 34, Decision::Accepted, 34),
            ("j", 1, Decision::Accepted, 1),
        ]
    );
    assert_eq!(entries[1].from, "w1");
    assert_eq!(entries[1].data, "w1-1");
    assert!(entries.iter().all(|e| e.node.as_deref() == Some("store1")));
    assert!(entries.windows(2).all(|w| w[0].time <= w[1].time));
    assert!(entries.last().unwrap().time <= clock.now());
}

#[tokio::test]
async fn without_fencing_a_lower_token_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let node = start_storage(dir.path(), false, RunClock::starting_now()).await;
    let w1 = storage_client(&node, "w1");
    let w2 = storage_client(&node, "w2");

    assert_eq!(ok(w2.write("k", "new", 34).await).high_water, 34);
    assert_eq!(ok(w1.write("k", "stale", 33).await).high_water, 34);
    assert_eq!(ok(w1.read("k").await).unwrap().data, "stale");
    node.stop().await;

    assert_eq!(
        summary(&ledger(dir.path())),
        [
            ("k", 34, Decision::Accepted, 34),
            ("k", 33, Decision::Accepted, 34),
        ]
    );
}

#[tokio::test]
async fn a_restarted_node_keeps_its_values_and_fencing() {
    let dir = tempfile::tempdir().unwrap();
    let clock = RunClock::starting_now();
    let node = start_storage(dir.path(), true, clock).await;
    let w2 = storage_client(&node, "w2");
    ok(w2.write("k", "kept", 34).await);
    ok(w2.write("other", "x", 2).await);
    node.stop().await;

    let node = start_storage(dir.path(), true, clock).await;
    let w1 = storage_client(&node, "w1");
    assert_eq!(ok(w1.read("k").await).unwrap().data, "kept");
    assert_eq!(
        fail(w1.write("k", "stale", 33).await),
        "rejected: high water 34"
    );
    assert_eq!(ok(w1.write("other", "y", 3).await).high_water, 3);
    node.stop().await;

    // The ledger goes on where it was.
    assert_eq!(
        summary(&ledger(dir.path())),
        [
            ("k", 34, Decision::Accepted, 34),
            ("other", 2, Decision::Accepted, 2),
            ("k", 33, Decision::Rejected, 34),
            ("other", 3, Decision::Accepted, 3),
        ]
    );
}
