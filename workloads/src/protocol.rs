//! The HTTP/JSON protocol of leasehold's own nodes (see docs/protocol.md).
//!
//! Reference lock service: `POST /v1/acquire`, `POST /v1/renew`,
//! `POST /v1/release`, `GET /v1/health`. Fenced storage: `POST /v1/write`,
//! `GET /v1/read?key=…`, `GET /v1/health`. A refusal is HTTP 409 with an
//! [`ErrorReply`] (or a [`WriteReply`] for a rejected write); anything else that
//! is not 200 is a server error.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcquireRequest {
    pub lock: String,
    /// Who asks; the service records it as the holder.
    pub client: String,
    pub ttl_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenewRequest {
    pub lock: String,
    pub client: String,
    pub token: u64,
    pub ttl_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseRequest {
    pub lock: String,
    pub client: String,
    pub token: u64,
}

/// Reply to a successful acquire or renew.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantReply {
    pub token: u64,
    pub lease_ms: u64,
}

/// Reply to a refused request (HTTP 409): `busy`, `lease lost`, `not held`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorReply {
    pub error: String,
    /// For `busy`: the client that holds the lock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holder: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteRequest {
    pub key: String,
    pub data: String,
    pub token: u64,
    /// The node that writes.
    pub from: String,
}

/// Reply to a write: 200 when accepted, 409 when rejected by fencing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteReply {
    pub decision: leasehold_checker::Decision,
    pub high_water: u64,
}

/// Reply to a read: the last accepted value of the key, if any.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadReply {
    pub key: String,
    #[serde(default)]
    pub value: Option<StoredValueWire>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredValueWire {
    pub token: u64,
    pub data: String,
    pub from: String,
}
