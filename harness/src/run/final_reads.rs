//! The end of a run's story: reading every key once everything is quiet, and
//! merging the storage nodes' ledgers (where the storage system keeps one).

use leasehold_checker::{Event, EventType, LedgerEntry, Process};
use leasehold_nodes::RunClock;
use leasehold_results::RunDir;
use leasehold_workloads::{
    AdapterLog, Completion, EtcdTxnStorageClient, ExecStorageClient, ExecStorageConfig,
    PostgresStorageClient, StorageSystemClient,
};
use serde_json::json;
use tokio::sync::mpsc::UnboundedSender;

use anyhow::Context;

use crate::config::{Config, StorageService};
use crate::run::plan::storage_addrs;
use crate::runtime::NodeSpec;

/// Reads every key once everything is quiet, as the history's `final` process,
/// through the run's storage system (the exec adapter, started here, logs to
/// the controller's log).
pub(crate) async fn final_reads(
    config: &Config,
    events: UnboundedSender<Event>,
    clock: RunClock,
    specs: &[NodeSpec],
) {
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
    let mut client = match final_client(config, specs).await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "final read client");
            return;
        }
    };
    for (i, key) in config.workload.key_names().into_iter().enumerate() {
        emit(EventType::Invoke, json!({"key": key}), None);
        match client.read(i, &key).await {
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

/// The storage client of the final reads, reading as `final`.
async fn final_client(config: &Config, specs: &[NodeSpec]) -> anyhow::Result<StorageSystemClient> {
    let addrs = storage_addrs(config, specs);
    let timeout = config.workload.timeout;
    Ok(match config.storage.service {
        StorageService::Reference => StorageSystemClient::reference(&addrs, "final", timeout)?,
        StorageService::Exec => {
            let command = config
                .storage
                .client
                .as_ref()
                .map(|c| c.command.clone())
                .unwrap_or_default();
            let mut exec = ExecStorageConfig::new(command, "final", addrs, timeout);
            exec.cwd = Some(std::env::current_dir().context("the working directory")?);
            let client = ExecStorageClient::start(exec, AdapterLog::tracing())
                .await
                .context("exec storage adapter")?;
            StorageSystemClient::Exec(Box::new(client))
        }
        StorageService::EtcdTxn => {
            StorageSystemClient::EtcdTxn(Box::new(EtcdTxnStorageClient::new(
                &addrs,
                &config.workload.lock,
                "final",
                config.storage.fencing,
                timeout,
            )?))
        }
        StorageService::Postgres => {
            let first = addrs.first().context("no storage address")?;
            StorageSystemClient::Postgres(Box::new(PostgresStorageClient::new(
                first,
                "final",
                config.storage.fencing,
                timeout,
            )?))
        }
    })
}

/// Saves the ledger of a storage system whose server keeps it (PostgreSQL's
/// ledger table) as the storage node's `ledger.jsonl`, where
/// [`merge_ledgers`] finds it: once the workers stopped, before the server
/// does. Other systems have nothing to save.
pub(crate) async fn save_server_ledger(
    config: &Config,
    clock: RunClock,
    specs: &[NodeSpec],
    run_dir: &RunDir,
) -> anyhow::Result<()> {
    if config.storage.service != StorageService::Postgres {
        return Ok(());
    }
    let addrs = storage_addrs(config, specs);
    let first = addrs.first().context("no storage address")?;
    let timeout = config.workload.timeout;
    let mut client = PostgresStorageClient::new(first, "final", config.storage.fencing, timeout)?;
    // The run's zero on the wall clock, which the server stamps its rows by
    // (the nodes share this kernel's clock).
    let wall_zero = std::time::SystemTime::now() - std::time::Duration::from_nanos(clock.now());
    let entries =
        tokio::time::timeout(std::time::Duration::from_secs(30), client.ledger(wall_zero))
            .await
            .map_err(|_| anyhow::anyhow!("reading the ledger table of {first} timed out"))?
            .map_err(|e| anyhow::anyhow!("reading the ledger table of {first}: {e}"))?;
    let mut text = String::new();
    for e in &entries {
        text.push_str(&serde_json::to_string(e)?);
        text.push('\n');
    }
    let path = run_dir.node_data_dir("store1").join("ledger.jsonl");
    std::fs::write(&path, text).with_context(|| format!("write {}", path.display()))?;
    Ok(())
}

/// Merges the storage nodes' ledgers by decision time into the run's
/// `ledger.jsonl`; `None` (and no file) when the storage system keeps no
/// ledger: then the checks judge writes by their replies alone.
pub(crate) fn merge_ledgers(
    config: &Config,
    run_dir: &RunDir,
) -> anyhow::Result<Option<Vec<LedgerEntry>>> {
    if !config.storage.service.system().has_ledger() {
        return Ok(None);
    }
    let mut all = Vec::new();
    for i in 1..=config.storage.started_nodes() {
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
    Ok(Some(all))
}
