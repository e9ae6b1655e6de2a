//! etcd 3.4 as a lock system: its server recipe and a [`LockClient`] adapter
//! with the semantics of etcd's `concurrency` package.
//!
//! # Why the JSON gateway
//!
//! The adapter speaks etcd's v3 gRPC API through the JSON gateway every etcd
//! 3.4 server serves on its client port (`/v3/…`), over plain HTTP/1.1 with
//! the `reqwest` client the other adapters use. The `etcd-client` crate would
//! generate its gRPC stubs at build time with `protoc`, which a fresh machine
//! does not have: `cargo build` must need nothing outside cargo. The gateway
//! costs a little: `bytes` fields travel as base64, 64-bit integers as JSON
//! strings, fields with their zero value are left out of replies, and a
//! keep-alive is a one-message stream per renew.
//!
//! # The lock
//!
//! | operation | gateway calls |
//! |---|---|
//! | acquire | `POST /v3/lease/grant {TTL}` → `POST /v3/lock/lock {name, lease}` (blocks until held) → `POST /v3/kv/range {key}` |
//! | renew | `POST /v3/lease/keepalive {ID}`, once |
//! | release | `POST /v3/lock/unlock {key}` + `POST /v3/lease/revoke {ID}` |
//!
//! **Fencing token**: the `create_revision` of the lock key. `lock/lock`
//! creates the key `<name>/<lease id in hex>` attached to the lease and returns
//! once every key under `<name>/` with a smaller create revision is gone, so
//! the holder is the owner of the oldest key and each new holder's key was
//! created later, at a larger revision of the cluster's single revision
//! counter. Storage that remembers the largest revision it has seen rejects a
//! zombie's write (`storage: etcd-txn` compares it in an etcd transaction).
//!
//! **Lease**: an etcd lease. The TTL is whole seconds, `ttl` rounded up (at
//! least 1 s): a sub-second lease cannot be asked for, and a lease of 300 ms
//! is granted as 1 s. etcd also raises every TTL to its minimum of 1.5 ×
//! the election timeout (1 s with [`etcd_server_args`], 2 s with etcd's
//! defaults), and checks for expired leases every 500 ms, so a lease ends up
//! to half a second after its TTL. The lease reported is the TTL etcd granted,
//! from the moment the acquire was sent; the lease was granted after that, so
//! it really ends no earlier. Nothing keeps the lease alive while `lock/lock`
//! waits (etcd's lock service does not): a wait longer than the TTL loses the
//! lease, and the acquire fails. A renew is one keep-alive, which restarts the
//! lease's TTL as granted: the `ttl` of a renew cannot change it, and the
//! reported lease is again the granted TTL. A keep-alive that answers TTL 0
//! means the lease is gone: the renew fails.
//!
//! # Outcomes
//!
//! Each call is bounded by the operation's timeout (acquire: all three calls
//! together). A call that got no connection (refused, or not established in
//! half the timeout) certainly did not apply, and only such a call goes on to
//! the next endpoint; anything else that is not a reply is `Info`: a timeout,
//! a broken connection, a 5xx. A 4xx and an error naming a lease that does not
//! exist are `Fail`. When `lock/lock` (or the read of the lock key after it)
//! does not end `Ok`, the adapter revokes the lease, so that a lock granted
//! after the client gave up is let go at once, and reports `Info`: the lock
//! may have been held for a moment. A release whose revoke succeeded is `Ok`;
//! one that finds the lease already gone is `Fail` (the lease had run out:
//! nothing was held to release).
//!
//! # Faults
//!
//! - **Pause of the holder**: etcd does not know about it. Nobody renews, the
//!   lease expires after its TTL (and up to 500 ms more), etcd deletes the lock
//!   key, and the next waiter gets the lock with a larger revision. When the
//!   zombie wakes it still believes it holds the lock: its next renew fails,
//!   but a write it sends first reaches storage with the old revision, and
//!   storage that does not fence accepts it. etcd's lock is safe only with a
//!   fenced write (Jepsen's etcd 3.4.3 analysis found the same).
//! - **Pause of a lock node**: a follower's pause costs the clients connected
//!   to it timeouts (`Info`); the others go on. A pause of the leader
//!   (`target: lock-leader`, found with [`etcd_leader`]) stops every write and
//!   keep-alive until the followers elect a new leader after the election
//!   timeout (500 ms with [`etcd_server_args`]). A new leader restarts every
//!   lease's TTL (plus an election timeout) from the moment it takes over, so
//!   an election extends leases, never cuts them short: a lease can outlive
//!   the deadline its holder was told by up to the pause plus the election, and
//!   a holder that paused along with the leader may find its lease alive on
//!   waking. The old leader, resumed, sees the newer term and steps down.
//! - **Partition**: a member cut off from the majority cannot commit, so the
//!   clients that reach only that member time out (`Info`) and cannot renew;
//!   their leases expire on the majority side, which grants the lock to the
//!   next waiter. A holder partitioned from all members is a pause that keeps
//!   running: it may write to storage it can still reach after its lease has
//!   expired. A minority member never grants the lock on its own.
//!
//! # The server
//!
//! [`etcd_server_args`] is the command line of member i of n ([`ETCD_PROGRAM`],
//! from the Debian package [`ETCD_PACKAGE`], environment from
//! [`etcd_server_env`]); a member is ready when `GET` [`ETCD_READY_PATH`] on its
//! client address answers what [`etcd_ready`] accepts (`{"health":"true"}`, which
//! a member says only once the cluster has a leader). [`etcd_leader`] finds the Raft
//! leader through `POST /v3/maintenance/status`; [`etcd_server_version`] reads
//! `GET /version`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::ClientError;
use crate::completion::{Completion, error_chain};
use crate::lock_client::{Grant, LockClient};
use crate::storage_client::NodeHttp;

/// The etcd server program.
pub const ETCD_PROGRAM: &str = "etcd";

/// The Debian package that installs [`ETCD_PROGRAM`] (etcd 3.4).
pub const ETCD_PACKAGE: &str = "etcd-server";

/// etcd's usual client port.
pub const ETCD_CLIENT_PORT: u16 = 2379;

/// etcd's usual peer (Raft) port.
pub const ETCD_PEER_PORT: u16 = 2380;

/// The readiness probe: an HTTP `GET` of this path on a member's client
/// address, ready when [`etcd_ready`] accepts the body of a 200 reply.
pub const ETCD_READY_PATH: &str = "/health";

/// Milliseconds between Raft heartbeats in [`etcd_server_args`] (etcd's default
/// is 100).
pub const ETCD_HEARTBEAT_MS: u64 = 50;

/// Milliseconds a follower waits for a heartbeat before it calls an election,
/// in [`etcd_server_args`] (etcd's default is 1000).
pub const ETCD_ELECTION_TIMEOUT_MS: u64 = 500;

/// One member of an etcd cluster, as the recipe needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EtcdMember {
    /// The member's name (`--name`), unique in the cluster: the node's name.
    pub name: String,
    /// Where it serves clients, the gateway included.
    pub client: SocketAddr,
    /// Where it talks Raft with its peers.
    pub peer: SocketAddr,
}

/// The command-line arguments (after [`ETCD_PROGRAM`]) of member `index` of
/// `members`, a new cluster whose every member is started the same way.
///
/// `cluster_token` must be unique to the run (e.g. the run's folder name), so
/// that members of another run's cluster never join this one. The member
/// stores its data in `data_dir`, which must be empty or absent. Raft runs
/// with [`ETCD_HEARTBEAT_MS`] and [`ETCD_ELECTION_TIMEOUT_MS`]: elections after
/// a leader's pause take half a second rather than etcd's usual second, and
/// leases can be as short as 1 s.
///
/// # Panics
///
/// If `index` is not an index of `members`.
pub fn etcd_server_args(
    index: usize,
    members: &[EtcdMember],
    data_dir: &Path,
    cluster_token: &str,
) -> Vec<String> {
    let me = &members[index];
    let initial_cluster = members
        .iter()
        .map(|m| format!("{}=http://{}", m.name, m.peer))
        .collect::<Vec<_>>()
        .join(",");
    let client_url = format!("http://{}", me.client);
    let peer_url = format!("http://{}", me.peer);
    [
        "--name",
        &me.name,
        "--data-dir",
        &data_dir.display().to_string(),
        "--listen-client-urls",
        &client_url,
        "--advertise-client-urls",
        &client_url,
        "--listen-peer-urls",
        &peer_url,
        "--initial-advertise-peer-urls",
        &peer_url,
        "--initial-cluster",
        &initial_cluster,
        "--initial-cluster-state",
        "new",
        "--initial-cluster-token",
        cluster_token,
        "--heartbeat-interval",
        &ETCD_HEARTBEAT_MS.to_string(),
        "--election-timeout",
        &ETCD_ELECTION_TIMEOUT_MS.to_string(),
        // 3.4's default logger is deprecated and says so on every start.
        "--logger",
        "zap",
        "--log-outputs",
        "stderr",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

/// Environment for [`ETCD_PROGRAM`]: empty on x86-64; elsewhere the variable
/// without which etcd 3.4 refuses to start on an architecture it does not
/// officially support (`ETCD_UNSUPPORTED_ARCH`).
pub fn etcd_server_env() -> Vec<(String, String)> {
    let arch = match std::env::consts::ARCH {
        "x86_64" => return Vec::new(),
        "aarch64" => "arm64",
        "powerpc64" => "ppc64le",
        other => other,
    };
    vec![("ETCD_UNSUPPORTED_ARCH".to_owned(), arch.to_owned())]
}

/// Whether the body of a 200 reply to [`ETCD_READY_PATH`] says the member is
/// healthy (`{"health":"true"}`).
pub fn etcd_ready(body: &[u8]) -> bool {
    serde_json::from_slice::<Value>(body)
        .is_ok_and(|v| v.get("health").and_then(Value::as_str) == Some("true"))
}

/// Which of `endpoints` (`host:port` client addresses of one cluster's
/// members) is the Raft leader, asking each for its status
/// (`POST /v3/maintenance/status`), each bounded by `timeout`.
///
/// The leader is the member whose own id is the leader id it reports; should
/// two say so (an old leader cut off from the others has not stepped down yet),
/// the one in the larger Raft term. `None` when no member that answers is the
/// leader: there is none (an election), or it does not answer (paused).
pub async fn etcd_leader<S: AsRef<str>>(endpoints: &[S], timeout: Duration) -> Option<usize> {
    let mut best: Option<(u64, usize)> = None;
    for (i, endpoint) in endpoints.iter().enumerate() {
        let Ok(http) = NodeHttp::new(endpoint.as_ref(), timeout) else {
            continue;
        };
        let request = http
            .client
            .post(http.url("v3/maintenance/status"))
            .json(&json!({}));
        let Ok(response) = request.send().await else {
            continue;
        };
        if response.status() != StatusCode::OK {
            continue;
        }
        let Ok(status) = response.json::<Value>().await else {
            continue;
        };
        let member = uint(&status["header"], "member_id");
        let leader = uint(&status, "leader");
        let term = uint(&status["header"], "raft_term").unwrap_or(0);
        if member.is_some() && member == leader && best.is_none_or(|(t, _)| term > t) {
            best = Some((term, i));
        }
    }
    best.map(|(_, i)| i)
}

/// The version the etcd server at `endpoint` (`host:port`) reports
/// (`GET /version`, its `etcdserver` field, e.g. `3.4.23`), within `timeout`;
/// the error says why there is none.
pub async fn etcd_server_version(endpoint: &str, timeout: Duration) -> Result<String, String> {
    let http = NodeHttp::new(endpoint, timeout).map_err(|e| e.to_string())?;
    let response = http
        .client
        .get(http.url("version"))
        .send()
        .await
        .map_err(|e| format!("GET /version at {endpoint}: {}", error_chain(&e)))?;
    let status = response.status();
    if status != StatusCode::OK {
        return Err(format!("GET /version at {endpoint}: HTTP {status}"));
    }
    let version = response
        .json::<Value>()
        .await
        .map_err(|e| format!("GET /version at {endpoint}: {}", error_chain(&e)))?;
    version
        .get("etcdserver")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| format!("GET /version at {endpoint}: no etcdserver in {version}"))
}

/// What the client knows about a lock it holds.
#[derive(Clone, Debug)]
struct Held {
    /// The lock's name.
    lock: String,
    /// The lease the lock key is attached to.
    lease: i64,
    /// The lock key, base64 as the gateway gave it.
    key: String,
}

/// A client of an etcd 3.4 cluster's Lock API, through the JSON gateway, with
/// the semantics of etcd's `concurrency` package.
///
/// Acquire grants a lease of the TTL rounded up to whole seconds, waits for
/// the lock on it, and reports as fencing token the create revision of the
/// lock key, as lease the TTL etcd granted; renew is one keep-alive of that
/// lease; release unlocks and revokes it. It remembers, per fencing token it
/// was granted, the lease and the lock key, until the lock is released or
/// known lost. What the token and the lease mean, how outcomes are mapped and
/// what faults do are told in the documentation of `workloads/src/etcd.rs`.
#[derive(Debug)]
pub struct EtcdLockClient {
    /// The cluster's JSON gateway.
    gateway: EtcdGateway,
    /// Bounds each operation.
    timeout: Duration,
    /// Locks held, by fencing token.
    held: HashMap<u64, Held>,
}

impl EtcdLockClient {
    /// `endpoints` are `host:port` client addresses of the cluster's members,
    /// tried in order; `timeout` bounds each operation, from the first request
    /// to the last byte of the last reply (an acquire's wait for the lock
    /// included).
    pub fn new<S: AsRef<str>>(endpoints: &[S], timeout: Duration) -> Result<Self, ClientError> {
        Ok(EtcdLockClient {
            gateway: EtcdGateway::new(endpoints, timeout)?,
            timeout,
            held: HashMap::new(),
        })
    }

    /// One gateway call (see [`EtcdGateway::call`]).
    async fn call(&mut self, path: &str, body: &Value, deadline: Instant) -> Completion<Value> {
        self.gateway.call(path, body, deadline).await
    }

    /// Revokes `lease`, bounded by a timeout of its own.
    async fn revoke(&mut self, lease: i64) -> Completion<Value> {
        let deadline = Instant::now() + self.timeout;
        self.call(
            "v3/lease/revoke",
            &json!({ "ID": lease.to_string() }),
            deadline,
        )
        .await
    }

    /// Revokes `lease` after a failed acquire and says so in `error`.
    async fn give_up(&mut self, lease: i64, error: String) -> String {
        match self.revoke(lease).await {
            Completion::Ok(_) => format!("{error} (lease {lease:x} revoked)"),
            Completion::Fail(e) | Completion::Info(e) => {
                format!("{error} (revoking lease {lease:x}: {e})")
            }
        }
    }
}

impl LockClient for EtcdLockClient {
    fn service(&self) -> &'static str {
        "etcd"
    }

    async fn acquire(&mut self, lock: &str, ttl: Duration) -> Completion<Grant> {
        let deadline = Instant::now() + self.timeout;
        let grant = json!({ "TTL": ttl_seconds(ttl) });
        let granted = match self.call("v3/lease/grant", &grant, deadline).await {
            Completion::Ok(v) => v,
            Completion::Fail(e) => return Completion::Fail(e),
            Completion::Info(e) => return Completion::Info(e),
        };
        let (Some(lease @ 1..), Some(granted_ttl @ 1..)) =
            (int(&granted, "ID"), int(&granted, "TTL"))
        else {
            // Granted, perhaps, but we cannot tell which lease: it expires.
            return Completion::Info(format!("v3/lease/grant: unexpected reply {granted}"));
        };
        let lease_ms = u64::try_from(granted_ttl).unwrap_or(0).saturating_mul(1000);

        let request = json!({ "name": BASE64.encode(lock), "lease": lease.to_string() });
        let locked = match self.call("v3/lock/lock", &request, deadline).await {
            Completion::Ok(v) => v,
            Completion::Fail(e) => return Completion::Fail(self.give_up(lease, e).await),
            // The lock may be granted after we stopped waiting.
            Completion::Info(e) => return Completion::Info(self.give_up(lease, e).await),
        };
        let Some(key) = locked.get("key").and_then(Value::as_str).map(str::to_owned) else {
            let error = format!("v3/lock/lock: reply without key: {locked}");
            return Completion::Info(self.give_up(lease, error).await);
        };

        let range = match self
            .call("v3/kv/range", &json!({ "key": key }), deadline)
            .await
        {
            Completion::Ok(v) => v,
            // Held, but with a token we do not know: let it go.
            Completion::Fail(e) | Completion::Info(e) => {
                let error = format!("lock granted, reading its key: {e}");
                return Completion::Info(self.give_up(lease, error).await);
            }
        };
        let kv = &range["kvs"][0];
        if kv.is_null() {
            // The key is gone: the lease expired while we waited.
            let error = "lease expired before the lock was granted".to_owned();
            return Completion::Fail(self.give_up(lease, error).await);
        }
        let token = int(kv, "create_revision")
            .and_then(|r| u64::try_from(r).ok())
            .filter(|&t| t > 0);
        let (Some(token), Some(true)) = (token, int(kv, "lease").map(|l| l == lease)) else {
            let error = format!("lock granted, its key is unexpected: {kv}");
            return Completion::Info(self.give_up(lease, error).await);
        };
        self.held.insert(
            token,
            Held {
                lock: lock.to_owned(),
                lease,
                key,
            },
        );
        Completion::Ok(Grant { token, lease_ms })
    }

    async fn renew(&mut self, lock: &str, token: u64, _ttl: Duration) -> Completion<Grant> {
        let Some(held) = self.held.get(&token).filter(|h| h.lock == lock) else {
            return Completion::Fail(format!("{lock} token {token} is not held by this client"));
        };
        let lease = held.lease;
        let deadline = Instant::now() + self.timeout;
        let body = json!({ "ID": lease.to_string() });
        let reply = match self.call("v3/lease/keepalive", &body, deadline).await {
            Completion::Ok(v) => v,
            Completion::Fail(e) => return Completion::Fail(e),
            Completion::Info(e) => return Completion::Info(e),
        };
        // A stream of one message: `{"result": …}` or `{"error": …}`.
        if let Some(result) = reply.get("result") {
            let ttl = int(result, "TTL").unwrap_or(0);
            if ttl <= 0 {
                self.held.remove(&token);
                return Completion::Fail(format!("lease lost: lease {lease:x} has expired"));
            }
            let lease_ms = u64::try_from(ttl).unwrap_or(0).saturating_mul(1000);
            return Completion::Ok(Grant { token, lease_ms });
        }
        match stream_error(&reply) {
            Completion::Fail(e) => {
                self.held.remove(&token);
                Completion::Fail(format!("v3/lease/keepalive: {e}"))
            }
            _ => Completion::Info(format!("v3/lease/keepalive: unexpected reply {reply}")),
        }
    }

    async fn release(&mut self, lock: &str, token: u64) -> Completion<()> {
        let Some(held) = self.held.get(&token).filter(|h| h.lock == lock).cloned() else {
            return Completion::Fail(format!("{lock} token {token} is not held by this client"));
        };
        let deadline = Instant::now() + self.timeout;
        let unlock = self
            .call("v3/lock/unlock", &json!({ "key": held.key }), deadline)
            .await;
        let revoke = self.revoke(held.lease).await;
        let outcome = match (unlock, revoke) {
            // Revoking the lease deletes the key, if unlocking did not.
            (_, Completion::Ok(_)) => Completion::Ok(()),
            (_, Completion::Fail(e)) if is_lease_gone(&e) => {
                Completion::Fail(format!("lease lost before release: {e}"))
            }
            (Completion::Fail(u), Completion::Fail(r)) => {
                Completion::Fail(format!("unlock: {u}; revoke: {r}"))
            }
            (Completion::Ok(_), Completion::Fail(r) | Completion::Info(r)) => {
                Completion::Info(format!("unlocked, but revoke: {r}"))
            }
            (
                Completion::Fail(u) | Completion::Info(u),
                Completion::Fail(r) | Completion::Info(r),
            ) => Completion::Info(format!("unlock: {u}; revoke: {r}")),
        };
        if !matches!(outcome, Completion::Info(_)) {
            self.held.remove(&token);
        }
        outcome
    }
}

/// The JSON gateway of one etcd cluster: an HTTP client per member, and which
/// member answered last. Shared by the lock client and the `etcd-txn`
/// storage client ([`crate::storage::etcd_txn`]).
#[derive(Debug)]
pub(crate) struct EtcdGateway {
    /// One HTTP client per endpoint, in the order given.
    endpoints: Vec<NodeHttp>,
    /// The endpoints as given, for messages.
    addrs: Vec<String>,
    /// The endpoint to try first: the last one that answered.
    preferred: usize,
}

impl EtcdGateway {
    /// `endpoints` are `host:port` client addresses of the cluster's members;
    /// `timeout` bounds each request.
    pub(crate) fn new<S: AsRef<str>>(
        endpoints: &[S],
        timeout: Duration,
    ) -> Result<Self, ClientError> {
        if endpoints.is_empty() {
            return Err(ClientError::BadAddress {
                addr: String::new(),
                reason: "no etcd endpoints".to_owned(),
            });
        }
        let addrs: Vec<String> = endpoints.iter().map(|e| e.as_ref().to_owned()).collect();
        let endpoints = addrs
            .iter()
            .map(|a| NodeHttp::new(a, timeout))
            .collect::<Result<_, _>>()?;
        Ok(EtcdGateway {
            endpoints,
            addrs,
            preferred: 0,
        })
    }

    /// Sends one gateway call, trying the endpoints from the preferred one on
    /// only as long as they refuse the connection (nothing was sent); a reply
    /// makes its endpoint the preferred one.
    pub(crate) async fn call(
        &mut self,
        path: &str,
        body: &Value,
        deadline: Instant,
    ) -> Completion<Value> {
        let n = self.endpoints.len();
        let mut refused = Vec::new();
        for step in 0..n {
            let i = (self.preferred + step) % n;
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Completion::Fail(format!("{path}: out of time before sending"));
            }
            let http = &self.endpoints[i];
            let request = http
                .client
                .post(http.url(path))
                .timeout(remaining)
                .json(body);
            match request.send().await {
                Ok(response) => {
                    self.preferred = i;
                    return read_reply(path, response).await;
                }
                Err(e) if e.is_connect() || e.is_builder() => {
                    refused.push(format!("{}: {}", self.addrs[i], error_chain(&e)));
                }
                Err(e) if e.is_timeout() => {
                    return Completion::Info(format!("{path}: timeout at {}", self.addrs[i]));
                }
                Err(e) => {
                    return Completion::Info(format!(
                        "{path}: connection to {} broken: {}",
                        self.addrs[i],
                        error_chain(&e)
                    ));
                }
            }
        }
        Completion::Fail(format!("{path}: cannot connect: {}", refused.join("; ")))
    }
}

/// Whole seconds of a TTL, rounded up, at least 1: etcd grants leases in
/// seconds and refuses a TTL of 0.
fn ttl_seconds(ttl: Duration) -> u64 {
    let whole = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
    whole.max(1)
}

/// Maps a gateway reply: a 200 is `Ok` with its (first) JSON message; an error
/// naming a lease that does not exist, and any 4xx, are `Fail`; the rest (5xx,
/// an unreadable reply) is `Info`.
async fn read_reply(path: &str, response: reqwest::Response) -> Completion<Value> {
    let status = response.status();
    let body = match response.bytes().await {
        Ok(body) => body,
        Err(e) => {
            return Completion::Info(format!("{path}: reply broken off: {}", error_chain(&e)));
        }
    };
    if status == StatusCode::OK {
        // A streaming call's reply is a sequence of JSON messages.
        return match serde_json::Deserializer::from_slice(&body)
            .into_iter::<Value>()
            .next()
        {
            Some(Ok(value)) => Completion::Ok(value),
            Some(Err(e)) => Completion::Info(format!("{path}: unreadable reply: {e}")),
            None => Completion::Info(format!("{path}: empty reply")),
        };
    }
    let message = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_else(|| String::from_utf8_lossy(&body).trim().to_owned());
    let error = format!("{path}: HTTP {status}: {message}");
    // etcd checks the lease before it writes anything; the gateway reports a
    // missing lease as 404 from the lease service, as 500 from the lock service.
    if status.is_client_error() || is_lease_gone(&message) {
        Completion::Fail(error)
    } else {
        Completion::Info(error)
    }
}

/// The `{"error": {"code", "message"}}` of a streaming reply: `Fail` for gRPC's
/// NOT_FOUND (5) and INVALID_ARGUMENT (3), which etcd returns before doing
/// anything, `Info` for the rest.
fn stream_error(reply: &Value) -> Completion<()> {
    let error = &reply["error"];
    let message = error["message"]
        .as_str()
        .unwrap_or("unknown error")
        .to_owned();
    match error["code"].as_i64() {
        Some(3 | 5) => Completion::Fail(message),
        _ => Completion::Info(message),
    }
}

/// Whether an error message is etcd's for a lease that does not exist.
fn is_lease_gone(message: &str) -> bool {
    message.contains("requested lease not found")
}

/// A signed 64-bit field: the gateway writes them as strings, leaves them out
/// when 0.
pub(crate) fn int(v: &Value, field: &str) -> Option<i64> {
    match v.get(field) {
        None if v.is_object() => Some(0),
        Some(Value::String(s)) => s.parse().ok(),
        Some(n) => n.as_i64(),
        None => None,
    }
}

/// An unsigned 64-bit field, as [`int`].
fn uint(v: &Value, field: &str) -> Option<u64> {
    match v.get(field) {
        None if v.is_object() => Some(0),
        Some(Value::String(s)) => s.parse().ok(),
        Some(n) => n.as_u64(),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls_round_up_to_whole_seconds() {
        assert_eq!(ttl_seconds(Duration::ZERO), 1);
        assert_eq!(ttl_seconds(Duration::from_millis(300)), 1);
        assert_eq!(ttl_seconds(Duration::from_millis(1000)), 1);
        assert_eq!(ttl_seconds(Duration::from_millis(1001)), 2);
        assert_eq!(ttl_seconds(Duration::from_secs(5)), 5);
    }

    #[test]
    fn gateway_integers() {
        let v = json!({ "ID": "7587848786541410053", "TTL": "10", "n": 3 });
        assert_eq!(int(&v, "ID"), Some(7_587_848_786_541_410_053));
        assert_eq!(int(&v, "TTL"), Some(10));
        assert_eq!(int(&v, "n"), Some(3));
        // Zero values are left out.
        assert_eq!(int(&v, "missing"), Some(0));
        assert_eq!(int(&Value::Null, "ID"), None);
        assert_eq!(int(&json!({ "ID": "x" }), "ID"), None);
        let s = json!({ "leader": "13510015062231200447" });
        assert_eq!(uint(&s, "leader"), Some(13_510_015_062_231_200_447));
    }

    #[test]
    fn readiness() {
        assert!(etcd_ready(br#"{"health":"true"}"#));
        assert!(etcd_ready(br#"{"health":"true","reason":""}"#));
        assert!(!etcd_ready(br#"{"health":"false"}"#));
        assert!(!etcd_ready(b"ok"));
    }

    #[test]
    fn stream_errors() {
        let gone = json!({ "error": { "code": 5, "message": "lease not found" } });
        assert_eq!(
            stream_error(&gone),
            Completion::Fail("lease not found".into())
        );
        let down = json!({ "error": { "code": 14, "message": "unavailable" } });
        assert_eq!(stream_error(&down), Completion::Info("unavailable".into()));
    }

    #[test]
    fn server_arguments() {
        let member = |i: u16| EtcdMember {
            name: format!("lock{i}"),
            client: SocketAddr::from(([10, 77, 0, 10 + i as u8], ETCD_CLIENT_PORT)),
            peer: SocketAddr::from(([10, 77, 0, 10 + i as u8], ETCD_PEER_PORT)),
        };
        let members = [member(1), member(2), member(3)];
        let args = etcd_server_args(1, &members, Path::new("/d/lock2"), "run-42");
        let value = |flag: &str| {
            let i = args.iter().position(|a| a == flag).expect(flag);
            args[i + 1].clone()
        };
        assert_eq!(value("--name"), "lock2");
        assert_eq!(value("--data-dir"), "/d/lock2");
        assert_eq!(value("--listen-client-urls"), "http://10.77.0.12:2379");
        assert_eq!(value("--advertise-client-urls"), "http://10.77.0.12:2379");
        assert_eq!(value("--listen-peer-urls"), "http://10.77.0.12:2380");
        assert_eq!(
            value("--initial-advertise-peer-urls"),
            "http://10.77.0.12:2380"
        );
        assert_eq!(
            value("--initial-cluster"),
            "lock1=http://10.77.0.11:2380,lock2=http://10.77.0.12:2380,lock3=http://10.77.0.13:2380"
        );
        assert_eq!(value("--initial-cluster-state"), "new");
        assert_eq!(value("--initial-cluster-token"), "run-42");
        assert_eq!(value("--heartbeat-interval"), "50");
        assert_eq!(value("--election-timeout"), "500");
    }

    #[test]
    fn no_endpoints_is_an_error() {
        let none: [&str; 0] = [];
        assert!(EtcdLockClient::new(&none, Duration::from_secs(1)).is_err());
        assert!(EtcdLockClient::new(&["etcd1"], Duration::from_secs(1)).is_err());
    }
}
