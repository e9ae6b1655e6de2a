//! Storage systems: what the lock guards, one module each, in the shape of
//! the lock systems ([`crate::system`]): how its nodes start, a client that
//! writes with a fencing token and reads, and whether it fences.
//!
//! | system | nodes | client | fencing | ledger |
//! |---|---|---|---|---|
//! | `reference` | `leasehold node storage` per storage node | [`StorageClient`], HTTP | high water per key, `storage.fencing` | yes: every decision, written by the node |
//! | [`exec`] | the user's `storage.server.command`, or the user's own `storage.addresses` | the user's adapter over JSON lines ([`ExecStorageClient`]) | the user's store's business | no |
//! | [`etcd_txn`] | none: the lock's etcd members store the data | a transaction through etcd's JSON gateway ([`EtcdTxnStorageClient`]) | the writer's lock key must still exist with its create revision | no |
//! | [`postgres`] | `leasehold node postgres` (one PostgreSQL 15 server of the run's own) | one transaction per write through `tokio-postgres` ([`PostgresStorageClient`]) | the upsert's `WHERE token <= new token`, `storage.fencing` | yes: a ledger table written in the write's transaction, saved as the node's `ledger.jsonl` at the end of the run |
//!
//! Without a ledger the checks judge the writes by their replies in the
//! history alone (`ok` accepted, `fail` rejected, `info` not judged).

pub mod etcd_txn;
pub mod exec;
pub mod postgres;

use std::time::Duration;

use crate::ClientError;
use crate::completion::Completion;
use crate::storage_client::{StorageClient, StoredValue};

pub use etcd_txn::EtcdTxnStorageClient;
pub use exec::{ExecStorageClient, ExecStorageConfig};
pub use postgres::PostgresStorageClient;

/// The storage systems leasehold knows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum StorageSystem {
    /// leasehold's own fenced storage (`leasehold node storage`).
    #[default]
    Reference,
    /// The user's own store and adapter (`storage.server`, `storage.client`).
    Exec,
    /// The lock's etcd cluster, written in transactions guarded by the lock
    /// key (needs `lock.service: etcd`).
    EtcdTxn,
    /// A PostgreSQL 15 server of the run's own, written with the fenced
    /// upsert people use with a relational database ([`postgres`]).
    Postgres,
}

impl StorageSystem {
    /// Every system, in the order of the docs.
    pub const ALL: [StorageSystem; 4] = [
        StorageSystem::Reference,
        StorageSystem::Exec,
        StorageSystem::EtcdTxn,
        StorageSystem::Postgres,
    ];

    /// Its name as the config and the worker's `--storage-system` flag spell it.
    pub fn name(self) -> &'static str {
        match self {
            StorageSystem::Reference => "reference",
            StorageSystem::Exec => "exec",
            StorageSystem::EtcdTxn => "etcd-txn",
            StorageSystem::Postgres => "postgres",
        }
    }

    /// The system of that name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Whether it keeps a ledger of its decisions that the checks can read:
    /// the reference nodes' `ledger.jsonl` files, PostgreSQL's ledger table.
    pub fn has_ledger(self) -> bool {
        matches!(self, StorageSystem::Reference | StorageSystem::Postgres)
    }
}

impl std::fmt::Display for StorageSystem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A write storage accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Written {
    /// The key's high water after the write, when the storage says.
    pub high_water: Option<u64>,
}

/// The client of whichever storage system a run writes to.
#[derive(Debug)]
pub enum StorageSystemClient {
    /// One client per reference storage node; key `slot` goes to node
    /// `slot mod n`.
    Reference(Vec<StorageClient>),
    /// The user's adapter, which routes keys to its nodes itself.
    Exec(Box<ExecStorageClient>),
    /// etcd transactions through the gateway of the lock's cluster.
    EtcdTxn(Box<EtcdTxnStorageClient>),
    /// Fenced upserts into PostgreSQL.
    Postgres(Box<PostgresStorageClient>),
}

impl StorageSystemClient {
    /// Clients of reference storage nodes at `addrs` (`host:port`), writing as
    /// `from`, each request bounded by `timeout`.
    pub fn reference<S: AsRef<str>>(
        addrs: &[S],
        from: &str,
        timeout: Duration,
    ) -> Result<Self, ClientError> {
        if addrs.is_empty() {
            return Err(ClientError::BadAddress {
                addr: String::new(),
                reason: "no storage node address".into(),
            });
        }
        let clients = addrs
            .iter()
            .map(|a| StorageClient::new(a.as_ref(), from, timeout))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(StorageSystemClient::Reference(clients))
    }

    /// Which system it writes to.
    pub fn system(&self) -> StorageSystem {
        match self {
            StorageSystemClient::Reference(_) => StorageSystem::Reference,
            StorageSystemClient::Exec(_) => StorageSystem::Exec,
            StorageSystemClient::EtcdTxn(_) => StorageSystem::EtcdTxn,
            StorageSystemClient::Postgres(_) => StorageSystem::Postgres,
        }
    }

    /// Writes `data` under `key` fenced by `token`; `slot` is the key's index
    /// among the run's keys (it picks the reference storage node). A write
    /// that storage refused is `Fail` with `rejected…` in its error.
    pub async fn write(
        &mut self,
        slot: usize,
        key: &str,
        data: &str,
        token: u64,
    ) -> Completion<Written> {
        match self {
            StorageSystemClient::Reference(clients) => clients[slot % clients.len()]
                .write(key, data, token)
                .await
                .map(|w| Written {
                    high_water: Some(w.high_water),
                }),
            StorageSystemClient::Exec(c) => c.write(key, data, token).await,
            StorageSystemClient::EtcdTxn(c) => c.write(key, data, token).await,
            StorageSystemClient::Postgres(c) => c.write(key, data, token).await,
        }
    }

    /// Reads the last accepted value of `key` (`slot` as for
    /// [`write`](Self::write)); `Ok(None)` when it has none.
    pub async fn read(&mut self, slot: usize, key: &str) -> Completion<Option<StoredValue>> {
        match self {
            StorageSystemClient::Reference(clients) => {
                clients[slot % clients.len()].read(key).await
            }
            StorageSystemClient::Exec(c) => c.read(key).await,
            StorageSystemClient::EtcdTxn(c) => c.read(key).await,
            StorageSystemClient::Postgres(c) => c.read(key).await,
        }
    }
}
