//! What clients do: the lock-client trait with one adapter per lock
//! implementation, the storage client, and the wire protocol of leasehold's own
//! nodes.
//!
//! Adapters for real lock services (etcd, Redis, Redlock, PostgreSQL) and the
//! `exec` protocol plug in behind [`LockClient`].

mod completion;
mod lock_client;
pub mod protocol;
mod reference;
mod storage_client;

pub use completion::Completion;
pub use lock_client::{Grant, LockClient};
pub use reference::ReferenceLockClient;
pub use storage_client::{StorageClient, StoredValue, WriteOutcome};

/// Errors building a client (bad address, HTTP client setup).
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("bad address {addr:?}: {reason}")]
    BadAddress { addr: String, reason: String },
    #[error("cannot build HTTP client: {0}")]
    Http(#[from] reqwest::Error),
}
