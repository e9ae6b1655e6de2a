//! What clients do: the lock-client trait with one adapter per lock
//! implementation, the storage client, and the wire protocol of leasehold's own
//! nodes.
//!
//! Adapters for real lock services (etcd, Redis, Redlock, PostgreSQL) and the
//! `exec` protocol plug in behind [`LockClient`].

mod completion;
mod etcd;
mod exec;
mod lock_client;
pub mod protocol;
mod reference;
pub mod storage;
mod storage_client;
pub mod system;

pub use completion::Completion;
pub use etcd::{
    ETCD_CLIENT_PORT, ETCD_ELECTION_TIMEOUT_MS, ETCD_HEARTBEAT_MS, ETCD_PACKAGE, ETCD_PEER_PORT,
    ETCD_PROGRAM, ETCD_READY_PATH, EtcdLockClient, EtcdMember, etcd_leader, etcd_ready,
    etcd_server_args, etcd_server_env, etcd_server_version,
};
pub use exec::{AdapterLog, ExecConfig, ExecError, ExecLockClient};
pub use lock_client::{Grant, LockClient};
pub use reference::ReferenceLockClient;
pub use storage::{
    EtcdTxnStorageClient, ExecStorageClient, ExecStorageConfig, PostgresStorageClient,
    StorageSystem, StorageSystemClient, Written,
};
pub use storage_client::{StorageClient, StoredValue, WriteOutcome};
pub use system::{LockOptions, LockSystem, NodeAddrs, Probe, Program, ServerRecipe, SystemClient};

/// Errors building a client (bad address, HTTP client setup).
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The address is not a usable `host:port`.
    #[error("bad address {addr:?}: {reason}")]
    BadAddress {
        /// The address as given.
        addr: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The HTTP client could not be set up.
    #[error("cannot build HTTP client: {0}")]
    Http(#[from] reqwest::Error),
    /// The source of random values (`/dev/urandom`) cannot be opened: Redlock
    /// needs a fresh random value per acquisition.
    #[error("cannot open the source of random values: {0}")]
    Random(#[source] std::io::Error),
    /// The system's client is a program to start with its command (`exec`):
    /// see [`system::exec::client`].
    #[error("the {system} client is started from its command, not from addresses alone")]
    NeedsCommand {
        /// The system's name.
        system: &'static str,
    },
}
