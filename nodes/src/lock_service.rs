//! The reference lock service: named leases with fencing tokens over HTTP/JSON
//! (see docs/protocol.md).
//!
//! It is deliberately simple and correct, so that a run against it is the
//! baseline: whatever goes wrong with fencing off comes from the client side
//! (a paused holder), not from the lock service. Its guarantees:
//!
//! - a lease is held until `ttl_ms` after it was granted or last renewed, on the
//!   service's own monotonic clock ([`Instant`]), so wall-clock jumps cannot
//!   shorten or extend it;
//! - fencing tokens strictly increase over all grants of all locks, and across
//!   restarts: the counter is on disk before a grant is answered;
//! - after a restart it refuses acquires for as long as the longest lease it
//!   ever granted, so that a lease granted before a crash has run out before any
//!   lease is granted after it.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use leasehold_workloads::protocol::{
    AcquireRequest, ErrorReply, GrantReply, ReleaseRequest, RenewRequest,
};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use crate::NodeError;

/// Name of the state file in the data directory.
const STATE_FILE: &str = "lock-state.json";
/// Written, synced and then renamed over [`STATE_FILE`], so a crash leaves
/// either the old or the new state, never a torn one.
const STATE_TMP: &str = "lock-state.json.tmp";

/// The longest lease the service grants. The recovery wait after a restart is
/// as long as the longest lease ever granted, so an unbounded TTL could make
/// a restarted node refuse every acquire for days.
const MAX_TTL_MS: u64 = 3_600_000;

/// Holder reported in a `busy` refusal while the service waits out leases
/// granted before it restarted.
const RECOVERING_HOLDER: &str = "recovering";

/// Where and as whom a lock-service node runs.
#[derive(Clone, Debug)]
pub struct LockServiceConfig {
    /// The node's name, reported by `/v1/health` and in logs.
    pub name: String,
    /// The address it serves on.
    pub listen: SocketAddr,
    /// Holds the token counter and the longest lease granted; must survive a
    /// restart of the node for tokens to stay monotonic.
    pub data_dir: PathBuf,
}

/// Runs the lock service on `cfg.listen` until `shutdown` is cancelled.
pub async fn run_lock_service(
    cfg: LockServiceConfig,
    shutdown: CancellationToken,
) -> Result<(), NodeError> {
    let listener = TcpListener::bind(cfg.listen)
        .await
        .map_err(|source| NodeError::Listen {
            addr: cfg.listen,
            source,
        })?;
    serve_lock_service(listener, cfg, shutdown).await
}

/// Runs the lock service on an already bound listener (`cfg.listen` is then
/// only informative). Lets tests and the harness bind port 0 and learn the
/// port without a race.
pub async fn serve_lock_service(
    listener: TcpListener,
    cfg: LockServiceConfig,
    shutdown: CancellationToken,
) -> Result<(), NodeError> {
    std::fs::create_dir_all(&cfg.data_dir).map_err(|source| NodeError::Io {
        what: "cannot create data directory",
        path: cfg.data_dir.clone(),
        source,
    })?;
    let state_path = cfg.data_dir.join(STATE_FILE);
    let restored = load_state(&state_path)?;
    let started = Instant::now();
    let recovering_until = match restored {
        Some(p) if p.max_lease_ms > 0 => {
            let wait = Duration::from_millis(p.max_lease_ms);
            info!(
                node = %cfg.name,
                last_token = p.last_token,
                recovery_wait_ms = p.max_lease_ms,
                "restored lock state; refusing acquires until leases granted before the restart have expired"
            );
            Some(started + wait)
        }
        _ => None,
    };
    let local = listener.local_addr().ok();
    let service = Arc::new(Service {
        name: cfg.name.clone(),
        data_dir: cfg.data_dir.clone(),
        recovering_until,
        inner: tokio::sync::Mutex::new(Inner {
            persisted: restored.unwrap_or_default(),
            locks: HashMap::new(),
        }),
    });
    let app = Router::new()
        .route("/v1/acquire", post(acquire))
        .route("/v1/renew", post(renew))
        .route("/v1/release", post(release))
        .route("/v1/health", get(health))
        .with_state(service);
    info!(node = %cfg.name, addr = ?local, data_dir = %cfg.data_dir.display(), "lock service listening");
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
        .map_err(NodeError::Serve)?;
    info!(node = %cfg.name, "lock service stopped");
    Ok(())
}

/// What must survive a restart.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Persisted {
    /// The largest token ever granted; the next grant gets a larger one.
    last_token: u64,
    /// The longest lease ever granted or renewed, in milliseconds: how long a
    /// restarted service must wait before leases granted before it are over.
    max_lease_ms: u64,
}

struct Service {
    name: String,
    data_dir: PathBuf,
    /// While `Instant::now()` is before this, acquires are refused.
    recovering_until: Option<Instant>,
    /// One async mutex over all locks: decisions are serialized and the state
    /// file is written while it is held, so what is on disk never lags a
    /// grant that was answered.
    inner: tokio::sync::Mutex<Inner>,
}

struct Inner {
    persisted: Persisted,
    locks: HashMap<String, Lease>,
}

struct Lease {
    holder: String,
    token: u64,
    expires: Instant,
}

impl Lease {
    fn live(&self, now: Instant) -> bool {
        now < self.expires
    }
}

impl Service {
    /// Writes `next` to disk durably, off the async threads.
    async fn persist(&self, next: Persisted) -> io::Result<()> {
        let dir = self.data_dir.clone();
        tokio::task::spawn_blocking(move || write_state(&dir, &next))
            .await
            .map_err(io::Error::other)?
    }
}

async fn acquire(State(svc): State<Arc<Service>>, Json(req): Json<AcquireRequest>) -> Response {
    to_completion(decide_acquire(svc, req)).await
}

async fn renew(State(svc): State<Arc<Service>>, Json(req): Json<RenewRequest>) -> Response {
    to_completion(decide_renew(svc, req)).await
}

/// Runs a decision that persists state in its own task. hyper drops a
/// handler whose client went away; dropped halfway, a decision would leave the
/// state on disk ahead of memory and, worse, release the mutex while its
/// blocking write still runs, letting a second write race it on the temp file.
async fn to_completion(decision: impl Future<Output = Response> + Send + 'static) -> Response {
    match tokio::spawn(decision).await {
        Ok(response) => response,
        Err(e) => {
            error!(error = %e, "decision task failed");
            let reply = ErrorReply {
                error: format!("internal error: {e}"),
                holder: None,
            };
            (StatusCode::INTERNAL_SERVER_ERROR, Json(reply)).into_response()
        }
    }
}

async fn decide_acquire(svc: Arc<Service>, req: AcquireRequest) -> Response {
    if let Some(refusal) = check_ttl(req.ttl_ms) {
        return refusal;
    }
    let mut inner = svc.inner.lock().await;
    let now = Instant::now();
    if svc.recovering_until.is_some_and(|until| now < until) {
        debug!(node = %svc.name, lock = %req.lock, client = %req.client, "acquire refused: recovering");
        return busy(RECOVERING_HOLDER);
    }
    if let Some(lease) = inner.locks.get(&req.lock).filter(|l| l.live(now)) {
        debug!(
            node = %svc.name,
            lock = %req.lock,
            client = %req.client,
            holder = %lease.holder,
            holder_token = lease.token,
            "acquire refused: busy"
        );
        return busy(&lease.holder);
    }
    let next = Persisted {
        last_token: inner.persisted.last_token + 1,
        max_lease_ms: inner.persisted.max_lease_ms.max(req.ttl_ms),
    };
    if let Err(e) = svc.persist(next).await {
        error!(node = %svc.name, lock = %req.lock, error = %e, "cannot persist token; grant refused");
        return server_error(&e);
    }
    inner.persisted = next;
    let token = next.last_token;
    // The lease runs from after the state is durable: the server's end of the
    // lease is then never earlier than the end the client computes from its
    // send time.
    let expires = Instant::now() + Duration::from_millis(req.ttl_ms);
    inner.locks.insert(
        req.lock.clone(),
        Lease {
            holder: req.client.clone(),
            token,
            expires,
        },
    );
    info!(node = %svc.name, lock = %req.lock, client = %req.client, token, lease_ms = req.ttl_ms, "granted");
    Json(GrantReply {
        token,
        lease_ms: req.ttl_ms,
    })
    .into_response()
}

async fn decide_renew(svc: Arc<Service>, req: RenewRequest) -> Response {
    if let Some(refusal) = check_ttl(req.ttl_ms) {
        return refusal;
    }
    let mut inner = svc.inner.lock().await;
    let now = Instant::now();
    let held = inner
        .locks
        .get(&req.lock)
        .is_some_and(|l| l.live(now) && l.token == req.token && l.holder == req.client);
    if !held {
        debug!(node = %svc.name, lock = %req.lock, client = %req.client, token = req.token, "renew refused: lease lost");
        return refuse("lease lost", None);
    }
    if req.ttl_ms > inner.persisted.max_lease_ms {
        // A longer lease than ever before lengthens the recovery wait; it must
        // be on disk before the lease is promised.
        let next = Persisted {
            max_lease_ms: req.ttl_ms,
            ..inner.persisted
        };
        if let Err(e) = svc.persist(next).await {
            error!(node = %svc.name, lock = %req.lock, error = %e, "cannot persist lease length; renew refused");
            return server_error(&e);
        }
        inner.persisted = next;
    }
    let expires = Instant::now() + Duration::from_millis(req.ttl_ms);
    if let Some(lease) = inner.locks.get_mut(&req.lock) {
        lease.expires = expires;
    }
    info!(node = %svc.name, lock = %req.lock, client = %req.client, token = req.token, lease_ms = req.ttl_ms, "renewed");
    Json(GrantReply {
        token: req.token,
        lease_ms: req.ttl_ms,
    })
    .into_response()
}

async fn release(State(svc): State<Arc<Service>>, Json(req): Json<ReleaseRequest>) -> Response {
    let mut inner = svc.inner.lock().await;
    let now = Instant::now();
    let held = inner
        .locks
        .get(&req.lock)
        .is_some_and(|l| l.live(now) && l.token == req.token && l.holder == req.client);
    if !held {
        debug!(node = %svc.name, lock = %req.lock, client = %req.client, token = req.token, "release refused: not held");
        return refuse("not held", None);
    }
    inner.locks.remove(&req.lock);
    info!(node = %svc.name, lock = %req.lock, client = %req.client, token = req.token, "released");
    Json(serde_json::json!({})).into_response()
}

async fn health(State(svc): State<Arc<Service>>) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "ok": true, "node": svc.name }))
}

/// Rejects a TTL of zero (a lease that is over before it is answered) and one
/// above [`MAX_TTL_MS`] with 400: the request is malformed, not refused.
fn check_ttl(ttl_ms: u64) -> Option<Response> {
    if (1..=MAX_TTL_MS).contains(&ttl_ms) {
        return None;
    }
    let reply = ErrorReply {
        error: format!("ttl_ms must be between 1 and {MAX_TTL_MS}, got {ttl_ms}"),
        holder: None,
    };
    Some((StatusCode::BAD_REQUEST, Json(reply)).into_response())
}

fn busy(holder: &str) -> Response {
    refuse("busy", Some(holder.to_owned()))
}

fn refuse(error: &str, holder: Option<String>) -> Response {
    let reply = ErrorReply {
        error: error.to_owned(),
        holder,
    };
    (StatusCode::CONFLICT, Json(reply)).into_response()
}

/// A 500: the client cannot know more than "maybe", and nothing was granted.
fn server_error(e: &io::Error) -> Response {
    let reply = ErrorReply {
        error: format!("cannot persist state: {e}"),
        holder: None,
    };
    (StatusCode::INTERNAL_SERVER_ERROR, Json(reply)).into_response()
}

/// Reads the state file; `None` when the node has never granted anything.
fn load_state(path: &Path) -> Result<Option<Persisted>, NodeError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(NodeError::Io {
                what: "cannot read lock state",
                path: path.to_owned(),
                source,
            });
        }
    };
    let state = serde_json::from_slice(&bytes).map_err(|e| NodeError::Io {
        what: "corrupt lock state",
        path: path.to_owned(),
        source: io::Error::new(io::ErrorKind::InvalidData, e),
    })?;
    Ok(Some(state))
}

/// Replaces the state file atomically and durably: temp file, fsync, rename,
/// fsync of the directory (without the last step the rename itself may be
/// lost in a crash, bringing back an older, smaller counter).
fn write_state(dir: &Path, state: &Persisted) -> io::Result<()> {
    let tmp = dir.join(STATE_TMP);
    let mut file = File::create(&tmp)?;
    file.write_all(&serde_json::to_vec(state).map_err(io::Error::other)?)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, dir.join(STATE_FILE))?;
    if let Err(e) = File::open(dir).and_then(|d| d.sync_all()) {
        warn!(dir = %dir.display(), error = %e, "cannot fsync data directory");
        return Err(e);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_through_the_file() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load_state(&dir.path().join(STATE_FILE)).unwrap(), None);
        let state = Persisted {
            last_token: 41,
            max_lease_ms: 2000,
        };
        write_state(dir.path(), &state).unwrap();
        assert_eq!(
            load_state(&dir.path().join(STATE_FILE)).unwrap(),
            Some(state)
        );
        assert!(!dir.path().join(STATE_TMP).exists());
    }

    #[test]
    fn ttl_bounds() {
        assert!(check_ttl(0).is_some());
        assert!(check_ttl(1).is_none());
        assert!(check_ttl(MAX_TTL_MS).is_none());
        assert!(check_ttl(MAX_TTL_MS + 1).is_some());
    }
}
