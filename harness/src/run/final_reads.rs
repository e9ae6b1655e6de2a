//! The end of a run's story: reading every key once everything is quiet, and
//! merging the storage nodes' ledgers.

use leasehold_checker::{Event, EventType, LedgerEntry, Process};
use leasehold_nemesis::Role;
use leasehold_nodes::RunClock;
use leasehold_results::RunDir;
use leasehold_workloads::{Completion, StorageClient};
use serde_json::json;
use tokio::sync::mpsc::UnboundedSender;

use anyhow::Context;

use crate::config::Config;
use crate::runtime::NodeSpec;

/// Reads every key once everything is quiet, as the history's `final` process.
pub(crate) async fn final_reads(
    config: &Config,
    events: UnboundedSender<Event>,
    clock: RunClock,
    specs: &[NodeSpec],
) {
    let stores: Vec<&NodeSpec> = specs.iter().filter(|s| s.role == Role::Storage).collect();
    let emit = |kind: EventType, value: serde_json::Value, error: Option<String>| {
        let _ = events.send(Event {
            index: 0,
            time: clock.now(),
            process: Process::Named("final".into()),
            node: None,
            kind,
            f: "read".into(),
            value,
            error,
        });
    };
    for (i, key) in config.workload.key_names().into_iter().enumerate() {
        let store = stores[i % stores.len()];
        let client =
            match StorageClient::new(&store.addr.to_string(), "final", config.workload.timeout) {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(error = %e, "final read client");
                    continue;
                }
            };
        emit(EventType::Invoke, json!({"key": key}), None);
        match client.read(&key).await {
            Completion::Ok(Some(v)) => emit(
                EventType::Ok,
                json!({"key": key, "token": v.token, "data": v.data, "from": v.from}),
                None,
            ),
            Completion::Ok(None) => emit(EventType::Ok, json!({"key": key}), None),
            Completion::Fail(e) => emit(EventType::Fail, json!({"key": key}), Some(e)),
            Completion::Info(e) => emit(EventType::Info, json!({"key": key}), Some(e)),
        }
    }
}

/// Merges the storage nodes' ledgers by decision time into the run's
/// `ledger.jsonl`.
pub(crate) fn merge_ledgers(config: &Config, run_dir: &RunDir) -> anyhow::Result<Vec<LedgerEntry>> {
    let mut all = Vec::new();
    for i in 1..=config.storage.nodes.get() {
        let path = run_dir
            .node_data_dir(&format!("store{i}"))
            .join("ledger.jsonl");
        let file = match std::fs::File::open(&path) {
            Ok(f) => f,
            // A storage node that never started has no ledger.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("open {}", path.display())),
        };
        let entries = leasehold_checker::read_ledger(std::io::BufReader::new(file))
            .with_context(|| format!("read {}", path.display()))?;
        all.extend(entries);
    }
    all.sort_by_key(|e| e.time);
    let mut text = String::new();
    for e in &all {
        text.push_str(&serde_json::to_string(e)?);
        text.push('\n');
    }
    std::fs::write(run_dir.ledger_path(), text).context("write ledger.jsonl")?;
    Ok(all)
}
