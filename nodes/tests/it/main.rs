//! Integration tests of the node programs and the clients that talk to them,
//! over real loopback sockets.

mod clients;
mod lock_service;
mod storage;
mod worker;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use leasehold_nodes::{
    LockServiceConfig, NodeError, RunClock, StorageConfig, serve_lock_service, serve_storage,
};
use leasehold_workloads::{ReferenceLockClient, StorageClient};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Per-request timeout of test clients: long enough for a loaded CI machine,
/// short enough to keep the timeout tests quick.
const TIMEOUT: Duration = Duration::from_secs(5);

/// A node served in the test's runtime.
pub struct Running {
    /// Where it listens, on loopback.
    pub addr: SocketAddr,
    shutdown: CancellationToken,
    task: JoinHandle<Result<(), NodeError>>,
}

impl Running {
    /// `host:port`, as the clients take it.
    pub fn host_port(&self) -> String {
        self.addr.to_string()
    }

    /// Stops the node and waits until it has let go of its files.
    pub async fn stop(self) {
        self.shutdown.cancel();
        self.task
            .await
            .expect("node task panicked")
            .expect("node failed");
    }
}

async fn loopback() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

/// Serves the reference lock service as `lock1` on a free loopback port.
pub async fn start_lock(data_dir: &Path) -> Running {
    let (listener, addr) = loopback().await;
    let cfg = LockServiceConfig {
        name: "lock1".into(),
        listen: addr,
        data_dir: data_dir.to_owned(),
    };
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(serve_lock_service(listener, cfg, shutdown.clone()));
    Running {
        addr,
        shutdown,
        task,
    }
}

/// Serves the storage as `store1` on a free loopback port, fenced or not.
pub async fn start_storage(data_dir: &Path, fencing: bool, clock: RunClock) -> Running {
    let (listener, addr) = loopback().await;
    let cfg = StorageConfig {
        name: "store1".into(),
        listen: addr,
        data_dir: data_dir.to_owned(),
        fencing,
        clock,
    };
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(serve_storage(listener, cfg, shutdown.clone()));
    Running {
        addr,
        shutdown,
        task,
    }
}

/// A lock client for `node`, as the worker named `name`.
pub fn lock_client(node: &Running, name: &str) -> ReferenceLockClient {
    ReferenceLockClient::new(&node.host_port(), name, TIMEOUT).unwrap()
}

/// A storage client for `node`, writing as `from`.
pub fn storage_client(node: &Running, from: &str) -> StorageClient {
    StorageClient::new(&node.host_port(), from, TIMEOUT).unwrap()
}

/// Unwraps an `Ok`, showing the completion otherwise.
#[track_caller]
pub fn ok<T: std::fmt::Debug>(c: leasehold_workloads::Completion<T>) -> T {
    match c {
        leasehold_workloads::Completion::Ok(v) => v,
        other => panic!("expected ok, got {other:?}"),
    }
}

/// The text of a `Fail`, showing the completion otherwise.
#[track_caller]
pub fn fail<T: std::fmt::Debug>(c: leasehold_workloads::Completion<T>) -> String {
    match c {
        leasehold_workloads::Completion::Fail(e) => e,
        other => panic!("expected fail, got {other:?}"),
    }
}

/// The text of an `Info`, showing the completion otherwise.
#[track_caller]
pub fn info<T: std::fmt::Debug>(c: leasehold_workloads::Completion<T>) -> String {
    match c {
        leasehold_workloads::Completion::Info(e) => e,
        other => panic!("expected info, got {other:?}"),
    }
}
