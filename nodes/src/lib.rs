//! Programs that run inside a node: the reference lock service, the fenced
//! storage, and the worker loop. The `leasehold node …` subcommands call these.

mod clock;
mod lock_service;
mod storage;
mod worker;

pub use clock::RunClock;
pub use lock_service::{LockServiceConfig, run_lock_service, serve_lock_service};
pub use storage::{StorageConfig, run_storage, serve_storage};
pub use worker::{RenewTimeout, WorkerConfig, run_worker};

/// Errors of a node program.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("server failed: {0}")]
    Serve(#[source] std::io::Error),
    #[error(transparent)]
    Client(#[from] leasehold_workloads::ClientError),
}
