//! Adapter for leasehold's reference lock service (see docs/protocol.md).
//!
//! Replies map to completions as for the storage client: 200 is `Ok`, 409
//! (`busy`, `lease lost`, `not held`) is `Fail`, a connection that could not be
//! established is `Fail`, a timeout, a broken connection or a 5xx is `Info`.

use std::time::Duration;

use crate::ClientError;
use crate::completion::Completion;
use crate::lock_client::{Grant, LockClient};
use crate::protocol::{AcquireRequest, GrantReply, ReleaseRequest, RenewRequest};
use crate::storage_client::{NodeHttp, generic_refusal};

/// A client of one reference lock-service node, acting as `client`.
#[derive(Clone, Debug)]
pub struct ReferenceLockClient {
    http: NodeHttp,
    client: String,
}

impl ReferenceLockClient {
    /// `addr` is `host:port` of the lock node; `client` is the name the service
    /// records as holder; `timeout` bounds each request from connect to the
    /// last byte.
    pub fn new(addr: &str, client: &str, timeout: Duration) -> Result<Self, ClientError> {
        Ok(ReferenceLockClient {
            http: NodeHttp::new(addr, timeout)?,
            client: client.to_owned(),
        })
    }

    /// Whether the node answers `/v1/health` with 200 within the timeout.
    pub async fn health(&self) -> bool {
        self.http.health().await
    }

    async fn grant<B: serde::Serialize>(&self, path: &str, body: &B) -> Completion<Grant> {
        let request = self.http.client.post(self.http.url(path)).json(body);
        match self
            .http
            .exchange::<GrantReply>(request, generic_refusal)
            .await
        {
            Completion::Ok(r) => Completion::Ok(Grant {
                token: r.token,
                lease_ms: r.lease_ms,
            }),
            Completion::Fail(e) => Completion::Fail(e),
            Completion::Info(e) => Completion::Info(e),
        }
    }
}

/// Milliseconds of a TTL, at least 1: the service refuses a zero TTL, and a
/// sub-millisecond lease is a caller's mistake best rounded up, not refused.
fn ttl_ms(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

impl LockClient for ReferenceLockClient {
    fn service(&self) -> &'static str {
        "reference"
    }

    async fn acquire(&mut self, lock: &str, ttl: Duration) -> Completion<Grant> {
        let body = AcquireRequest {
            lock: lock.to_owned(),
            client: self.client.clone(),
            ttl_ms: ttl_ms(ttl),
        };
        self.grant("v1/acquire", &body).await
    }

    async fn renew(&mut self, lock: &str, token: u64, ttl: Duration) -> Completion<Grant> {
        let body = RenewRequest {
            lock: lock.to_owned(),
            client: self.client.clone(),
            token,
            ttl_ms: ttl_ms(ttl),
        };
        self.grant("v1/renew", &body).await
    }

    async fn release(&mut self, lock: &str, token: u64) -> Completion<()> {
        let body = ReleaseRequest {
            lock: lock.to_owned(),
            client: self.client.clone(),
            token,
        };
        let request = self
            .http
            .client
            .post(self.http.url("v1/release"))
            .json(&body);
        match self
            .http
            .exchange::<serde::de::IgnoredAny>(request, generic_refusal)
            .await
        {
            Completion::Ok(_) => Completion::Ok(()),
            Completion::Fail(e) => Completion::Fail(e),
            Completion::Info(e) => Completion::Info(e),
        }
    }
}
