//! The HTTP/JSON protocol of leasehold's own nodes (see docs/protocol.md).
//!
//! Reference lock service: `POST /v1/acquire`, `POST /v1/renew`,
//! `POST /v1/release`, `GET /v1/health`. Fenced storage: `POST /v1/write`,
//! `GET /v1/read?key=…`, `GET /v1/health`. A refusal is HTTP 409 with an
//! [`ErrorReply`] (or a [`WriteReply`] for a rejected write); anything else that
//! is not 200 is a server error.

use serde::{Deserialize, Serialize};

/// `POST /v1/acquire`: take the lock if it is free.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcquireRequest {
    /// The lock's name.
    pub lock: String,
    /// Who asks; the service records it as the holder.
    pub client: String,
    /// The lease asked for.
    pub ttl_ms: u64,
}

/// `POST /v1/renew`: extend a lease still held.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenewRequest {
    /// The lock's name.
    pub lock: String,
    /// The holder.
    pub client: String,
    /// The token of the lease to extend.
    pub token: u64,
    /// The new lease, from now.
    pub ttl_ms: u64,
}

/// `POST /v1/release`: give the lock up.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseRequest {
    /// The lock's name.
    pub lock: String,
    /// The holder.
    pub client: String,
    /// The token of the lease to end.
    pub token: u64,
}

/// Reply to a successful acquire or renew.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantReply {
    /// The fencing token of the lease.
    pub token: u64,
    /// The lease granted.
    pub lease_ms: u64,
}

/// Reply to a refused request (HTTP 409): `busy`, `lease lost`, `not held`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorReply {
    /// Why it was refused.
    pub error: String,
    /// For `busy`: the client that holds the lock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holder: Option<String>,
}

/// `POST /v1/write`: store `data` under `key`, fenced by `token`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteRequest {
    /// The key.
    pub key: String,
    /// The value.
    pub data: String,
    /// The writer's fencing token.
    pub token: u64,
    /// The node that writes.
    pub from: String,
}

/// Reply to a write: 200 when accepted, 409 when rejected by fencing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteReply {
    /// Accepted or rejected.
    pub decision: leasehold_checker::Decision,
    /// The largest token the key has accepted, after this write.
    pub high_water: u64,
}

/// Reply to a read: the last accepted value of the key, if any.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadReply {
    /// The key read.
    pub key: String,
    /// Its value; None if nothing was accepted for it.
    #[serde(default)]
    pub value: Option<StoredValueWire>,
}

/// A stored value as the read reply carries it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredValueWire {
    /// The fencing token the write carried.
    pub token: u64,
    /// What was written.
    pub data: String,
    /// The node that wrote it.
    pub from: String,
}
