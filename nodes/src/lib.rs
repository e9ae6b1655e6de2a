//! Programs that run inside a node: the reference lock service, the fenced
//! storage, and the worker loop. The `leasehold node …` subcommands call these.

mod clock;
mod lock_service;
mod storage;
mod worker;

pub use clock::RunClock;
pub use lock_service::{LockServiceConfig, run_lock_service, serve_lock_service};
pub use storage::{StorageConfig, run_storage, serve_storage};
pub use worker::{RenewTimeout, WorkerConfig, process_number, run_worker, run_worker_with_storage};

/// Errors of a node program.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The node's listening address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address asked for.
        addr: std::net::SocketAddr,
        /// Why binding failed.
        #[source]
        source: std::io::Error,
    },
    /// A file of the node's data folder could not be read or written.
    #[error("{what} {path}: {source}")]
    Io {
        /// What the node was doing, e.g. `cannot read`.
        what: &'static str,
        /// The file.
        path: std::path::PathBuf,
        /// The failure.
        #[source]
        source: std::io::Error,
    },
    /// The HTTP server stopped with an error.
    #[error("server failed: {0}")]
    Serve(#[source] std::io::Error),
    /// A client of the worker could not be made (a bad address).
    #[error(transparent)]
    Client(#[from] leasehold_workloads::ClientError),
    /// A worker ran out of process numbers that no other life of any worker
    /// can have (see [`process_number`]).
    #[error(
        "worker {index} of {workers} has no process number left after {retirements} \
         retirements in incarnation {incarnation}"
    )]
    ProcessNumbers {
        /// The worker's index.
        index: u64,
        /// How many workers the run has.
        workers: u64,
        /// The worker's life.
        incarnation: u64,
        /// Processes it retired in that life.
        retirements: u64,
    },
}
