use std::future::Future;
use std::time::Duration;

use crate::completion::Completion;

/// A lease granted by a lock service: its fencing token and how long the service
/// promises it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grant {
    /// The fencing token.
    pub token: u64,
    /// The lease, from the moment the request was sent.
    pub lease_ms: u64,
}

/// A client of one lock implementation, as a worker uses it.
///
/// Every method reports its outcome as a [`Completion`]: `Ok` when the service
/// confirmed it, `Fail` when it certainly did not happen, `Info` when it cannot
/// tell (timeout). Implementations never retry an operation whose first attempt
/// may have taken effect; the worker records exactly what happened.
///
/// ```
/// use std::time::Duration;
/// use leasehold_workloads::{Completion, Grant, LockClient};
///
/// /// Holds the lease for `hold`, then lets it go, as a worker does.
/// async fn hold_once<C: LockClient>(client: &mut C, hold: Duration) -> Option<u64> {
///     let Completion::Ok(Grant { token, .. }) =
///         client.acquire("L", Duration::from_secs(1)).await
///     else {
///         return None;
///     };
///     tokio::time::sleep(hold).await;
///     let _ = client.release("L", token).await;
///     Some(token)
/// }
/// ```
pub trait LockClient: Send {
    /// The service's name, for logs (`reference`, `etcd`, …).
    fn service(&self) -> &'static str;

    /// Acquire `lock` with a lease of `ttl`.
    fn acquire(
        &mut self,
        lock: &str,
        ttl: Duration,
    ) -> impl Future<Output = Completion<Grant>> + Send;

    /// Extend the lease of `token` by `ttl` from now.
    fn renew(
        &mut self,
        lock: &str,
        token: u64,
        ttl: Duration,
    ) -> impl Future<Output = Completion<Grant>> + Send;

    /// Give the lock up.
    fn release(&mut self, lock: &str, token: u64) -> impl Future<Output = Completion<()>> + Send;
}
