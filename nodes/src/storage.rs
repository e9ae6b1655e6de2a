//! The fenced storage: a key-value register that checks fencing tokens, over
//! HTTP/JSON (see docs/protocol.md).
//!
//! It is the resource the lock protects. With fencing on it rejects a write
//! whose token is below the highest token it has seen for the key, which is
//! what makes a paused, expired holder harmless; with fencing off it accepts
//! everything, which is how the seed scenario shows the corruption.
//!
//! Every decision is appended to `ledger.jsonl` before it is answered, in
//! decision order, so the checker sees exactly what storage did, including
//! writes whose reply never reached the client.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use leasehold_checker::{Decision, LedgerEntry};
use leasehold_workloads::protocol::{
    ErrorReply, ReadReply, StoredValueWire, WriteReply, WriteRequest,
};
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use crate::NodeError;
use crate::clock::RunClock;

/// Name of the ledger in the data directory.
const LEDGER_FILE: &str = "ledger.jsonl";

/// Where and how a storage node runs.
#[derive(Clone, Debug)]
pub struct StorageConfig {
    /// The node's name: `node` of every ledger line, reported by `/v1/health`.
    pub name: String,
    /// The address it serves on.
    pub listen: SocketAddr,
    /// Holds `ledger.jsonl`, which is also the node's state across restarts.
    pub data_dir: PathBuf,
    /// Reject writes whose token is below the key's high water.
    pub fencing: bool,
    /// Stamps ledger lines on the run's clock, comparable with the history.
    pub clock: RunClock,
}

/// Runs the storage on `cfg.listen` until `shutdown` is cancelled.
pub async fn run_storage(cfg: StorageConfig, shutdown: CancellationToken) -> Result<(), NodeError> {
    let listener = TcpListener::bind(cfg.listen)
        .await
        .map_err(|source| NodeError::Listen {
            addr: cfg.listen,
            source,
        })?;
    serve_storage(listener, cfg, shutdown).await
}

/// Runs the storage on an already bound listener (`cfg.listen` is then only
/// informative). Lets tests and the harness bind port 0 and learn the port
/// without a race.
pub async fn serve_storage(
    listener: TcpListener,
    cfg: StorageConfig,
    shutdown: CancellationToken,
) -> Result<(), NodeError> {
    std::fs::create_dir_all(&cfg.data_dir).map_err(|source| NodeError::Io {
        what: "cannot create data directory",
        path: cfg.data_dir.clone(),
        source,
    })?;
    let ledger_path = cfg.data_dir.join(LEDGER_FILE);
    let keys = replay_ledger(&ledger_path)?;
    if !keys.is_empty() {
        info!(node = %cfg.name, keys = keys.len(), "replayed ledger");
    }
    let ledger = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&ledger_path)
        .map_err(|source| NodeError::Io {
            what: "cannot open ledger",
            path: ledger_path.clone(),
            source,
        })?;
    let local = listener.local_addr().ok();
    let store = Arc::new(Store {
        name: cfg.name.clone(),
        fencing: cfg.fencing,
        clock: cfg.clock,
        inner: Mutex::new(Inner { ledger, keys }),
    });
    let app = Router::new()
        .route("/v1/write", post(write))
        .route("/v1/read", get(read))
        .route("/v1/health", get(health))
        .with_state(store);
    info!(node = %cfg.name, addr = ?local, fencing = cfg.fencing, ledger = %ledger_path.display(), "storage listening");
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
        .map_err(NodeError::Serve)?;
    info!(node = %cfg.name, "storage stopped");
    Ok(())
}

struct Store {
    name: String,
    fencing: bool,
    clock: RunClock,
    /// One mutex over decisions and the ledger, so the ledger order is the
    /// decision order. It is a blocking mutex because nothing awaits while it
    /// is held; the ledger append is a small write to the page cache.
    inner: Mutex<Inner>,
}

struct Inner {
    ledger: File,
    keys: HashMap<String, KeyState>,
}

#[derive(Debug, Default, PartialEq, Eq)]
struct KeyState {
    /// The highest token seen for the key (accepted ones, and with fencing off
    /// any).
    high_water: u64,
    /// The last accepted write.
    value: Option<StoredValueWire>,
}

impl KeyState {
    /// Folds one decision into the state, live or from the ledger.
    fn apply(&mut self, entry: &LedgerEntry) {
        self.high_water = self.high_water.max(entry.high_water);
        if entry.decision == Decision::Accepted {
            self.value = Some(StoredValueWire {
                token: entry.token,
                data: entry.data.clone(),
                from: entry.from.clone(),
            });
        }
    }
}

async fn write(State(store): State<Arc<Store>>, Json(req): Json<WriteRequest>) -> Response {
    let mut inner = store.inner.lock().unwrap_or_else(PoisonError::into_inner);
    let high_water = inner.keys.get(&req.key).map_or(0, |k| k.high_water);
    let accept = !store.fencing || req.token >= high_water;
    let (decision, high_water) = if accept {
        (Decision::Accepted, high_water.max(req.token))
    } else {
        (Decision::Rejected, high_water)
    };
    let entry = LedgerEntry {
        // Stamped under the mutex, so ledger times follow ledger order.
        time: store.clock.now(),
        key: req.key,
        token: req.token,
        data: req.data,
        from: req.from,
        decision,
        high_water,
        node: Some(store.name.clone()),
    };
    if let Err(e) = append(&mut inner.ledger, &entry) {
        // Not applied: the state follows the ledger, never runs ahead of it.
        error!(node = %store.name, key = %entry.key, token = entry.token, error = %e, "cannot append to ledger");
        let reply = ErrorReply {
            error: format!("cannot append to ledger: {e}"),
            holder: None,
        };
        return (StatusCode::INTERNAL_SERVER_ERROR, Json(reply)).into_response();
    }
    inner
        .keys
        .entry(entry.key.clone())
        .or_default()
        .apply(&entry);
    drop(inner);
    let reply = WriteReply {
        decision,
        high_water,
    };
    match decision {
        Decision::Accepted => {
            debug!(node = %store.name, key = %entry.key, token = entry.token, from = %entry.from, high_water, "write accepted");
            (StatusCode::OK, Json(reply)).into_response()
        }
        Decision::Rejected => {
            info!(node = %store.name, key = %entry.key, token = entry.token, from = %entry.from, high_water, "write rejected by fencing");
            (StatusCode::CONFLICT, Json(reply)).into_response()
        }
    }
}

#[derive(Deserialize)]
struct ReadQuery {
    key: String,
}

async fn read(State(store): State<Arc<Store>>, Query(q): Query<ReadQuery>) -> Json<ReadReply> {
    let inner = store.inner.lock().unwrap_or_else(PoisonError::into_inner);
    let value = inner.keys.get(&q.key).and_then(|k| k.value.clone());
    Json(ReadReply { key: q.key, value })
}

async fn health(State(store): State<Arc<Store>>) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "ok": true, "node": store.name, "fencing": store.fencing }))
}

/// Appends one ledger line with a single `write()`, so a crash leaves whole
/// lines (the page cache keeps them even when the process is killed; the
/// ledger is not fsynced per write, a machine crash is not a fault leasehold
/// injects).
fn append(ledger: &mut File, entry: &LedgerEntry) -> io::Result<()> {
    let mut line = serde_json::to_vec(entry).map_err(io::Error::other)?;
    line.push(b'\n');
    ledger.write_all(&line)?;
    ledger.flush()
}

/// Rebuilds values and high waters from an existing ledger, so a restarted
/// node keeps fencing at the level it had reached. A torn last line (no
/// newline) is cut off so that new lines start on a line of their own.
fn replay_ledger(path: &Path) -> Result<HashMap<String, KeyState>, NodeError> {
    let io_err = |what, source| NodeError::Io {
        what,
        path: path.to_owned(),
        source,
    };
    let mut text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(HashMap::new()),
        Err(e) => return Err(io_err("cannot read ledger", e)),
    };
    if !text.is_empty() && !text.ends_with('\n') {
        let keep = text.rfind('\n').map_or(0, |i| i + 1);
        warn!(ledger = %path.display(), dropped = %&text[keep..], "cutting off a torn last ledger line");
        OpenOptions::new()
            .write(true)
            .open(path)
            .and_then(|f| f.set_len(keep as u64))
            .map_err(|e| io_err("cannot truncate ledger", e))?;
        text.truncate(keep);
    }
    let mut keys: HashMap<String, KeyState> = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let entry: LedgerEntry = serde_json::from_str(line).map_err(|e| {
            let source = io::Error::new(io::ErrorKind::InvalidData, format!("line {}: {e}", n + 1));
            io_err("corrupt ledger", source)
        })?;
        keys.entry(entry.key.clone()).or_default().apply(&entry);
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &str, token: u64, decision: Decision, high_water: u64) -> LedgerEntry {
        LedgerEntry {
            time: 0,
            key: key.into(),
            token,
            data: format!("d{token}"),
            from: "w1".into(),
            decision,
            high_water,
            node: Some("s1".into()),
        }
    }

    #[test]
    fn replay_rebuilds_state_and_cuts_a_torn_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LEDGER_FILE);
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .unwrap();
        append(&mut file, &entry("k", 5, Decision::Accepted, 5)).unwrap();
        append(&mut file, &entry("k", 3, Decision::Rejected, 5)).unwrap();
        file.write_all(b"{\"time\":1,\"ke").unwrap();
        let keys = replay_ledger(&path).unwrap();
        let k = &keys["k"];
        assert_eq!(k.high_water, 5);
        assert_eq!(k.value.as_ref().unwrap().token, 5);
        assert!(std::fs::read_to_string(&path).unwrap().ends_with("}\n"));
    }

    #[test]
    fn replay_refuses_a_corrupt_middle_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LEDGER_FILE);
        std::fs::write(&path, "not json\n").unwrap();
        assert!(replay_ledger(&path).is_err());
    }
}
