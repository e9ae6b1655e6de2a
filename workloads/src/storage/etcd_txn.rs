//! `storage: { service: etcd-txn }`: the data lives in the lock's own etcd
//! cluster, and a fenced write is the transaction etcd documents as the safe
//! use of its locks (the `concurrency` package's `Mutex.IsOwner()` compare).
//!
//! # The write
//!
//! With `lock.service: etcd` a holder's fencing token is the create revision
//! of its lock key `<lock>/<lease id in hex>` ([`crate::EtcdLockClient`]).
//! The key lives as long as the holder's lease: when the lease expires (the
//! holder was paused past it) etcd deletes the key, and the next holder's key
//! is created at a larger revision. So "my lock key still exists with
//! `create_revision == token`" holds exactly while the holder still holds the
//! lock, and a transaction guarded on it cannot be applied by a zombie:
//!
//! ```json
//! POST /v3/kv/txn
//! {"compare":[{"key":"<lock key>","target":"CREATE","result":"EQUAL","create_revision":"33"}],
//!  "success":[{"request_put":{"key":"<data key>","value":"<data, token, from>"}}],
//!  "failure":[{"request_range":{"key":"<lock>/","range_end":"<lock>0"}}]}
//! ```
//!
//! (keys and values base64, as the gateway wants them). The writer knows its
//! token, not its lock key: the client first finds the key under `<lock>/`
//! whose create revision is the token (one range read, remembered per token).
//! No such key means the lease is gone, and a create revision is never given
//! to another key: the write is `Fail` ("rejected before sending") without
//! being sent. Otherwise `succeeded: true` is `Ok`, `succeeded: false` is
//! `Fail` ("rejected by the transaction's compare": the key went after it was
//! found, or its token's key is remembered from an earlier write), and the failure branch's range names the current holder's
//! token (the smallest create revision under `<lock>/`) as the high water.
//!
//! **Unfenced** (`storage.fencing: false`): a plain `PUT` of the data key, the
//! naive use of a lock that the stale-write check catches.
//!
//! # Keys, values, reads
//!
//! The data of key `k` is stored under `leasehold/data/k` as the JSON object
//! `{"data":…,"token":…,"from":…}`; a read is a range of that key.
//!
//! # Outcomes and faults
//!
//! Each op is bounded by the timeout, the lookup included. A lookup that does
//! not succeed sends nothing: `Fail`. Otherwise as the lock client maps
//! gateway calls: no connection is `Fail`, a timeout, a broken connection or
//! a 5xx is `Info`. There is no ledger: the checks judge the writes by their
//! replies. A pause or partition of an etcd member affects the writes as it
//! affects the lock calls (a minority member cannot commit: `Info`).

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::ClientError;
use crate::completion::Completion;
use crate::etcd::{EtcdGateway, int};
use crate::storage::Written;
use crate::storage_client::StoredValue;

/// The prefix of the data keys in etcd.
pub const DATA_PREFIX: &str = "leasehold/data/";

/// A storage client writing to an etcd 3.4 cluster through its JSON gateway,
/// fenced by the lock key of the writer's token (see the module
/// documentation).
#[derive(Debug)]
pub struct EtcdTxnStorageClient {
    gateway: EtcdGateway,
    /// The lock whose keys fence the writes.
    lock: String,
    /// The writing node, stored with the data.
    from: String,
    /// Guard writes on the lock key; false: plain puts.
    fencing: bool,
    timeout: Duration,
    /// Lock keys found, base64, by token.
    lock_keys: HashMap<u64, String>,
}

impl EtcdTxnStorageClient {
    /// `endpoints` are `host:port` client addresses of the cluster's members;
    /// `lock` is the lock the writers hold (its keys are `<lock>/…`); `from`
    /// names the writer; `timeout` bounds each op.
    pub fn new<S: AsRef<str>>(
        endpoints: &[S],
        lock: &str,
        from: &str,
        fencing: bool,
        timeout: Duration,
    ) -> Result<Self, ClientError> {
        Ok(EtcdTxnStorageClient {
            gateway: EtcdGateway::new(endpoints, timeout)?,
            lock: lock.to_owned(),
            from: from.to_owned(),
            fencing,
            timeout,
            lock_keys: HashMap::new(),
        })
    }

    /// Writes `data` under `key` with `token`: guarded by the lock key when
    /// fencing, a plain put otherwise.
    pub async fn write(&mut self, key: &str, data: &str, token: u64) -> Completion<Written> {
        let deadline = Instant::now() + self.timeout;
        let value = stored_json(data, token, &self.from);
        if !self.fencing {
            let body =
                json!({ "key": BASE64.encode(data_key(key)), "value": BASE64.encode(value) });
            return self
                .gateway
                .call("v3/kv/put", &body, deadline)
                .await
                .map(|_| Written { high_water: None });
        }
        let lock_key = match self.lock_key(token, deadline).await {
            Ok(k) => k,
            Err(e) => return Completion::Fail(e),
        };
        let body = txn_body(&self.lock, &lock_key, token, key, &value);
        match self.gateway.call("v3/kv/txn", &body, deadline).await {
            Completion::Ok(reply) => match txn_outcome(&reply) {
                TxnOutcome::Applied => Completion::Ok(Written {
                    high_water: Some(token),
                }),
                TxnOutcome::Refused { holder } => {
                    self.lock_keys.remove(&token);
                    Completion::Fail(rejection(token, holder, Refusal::Compare))
                }
                TxnOutcome::Unreadable => {
                    Completion::Info(format!("v3/kv/txn: unexpected reply {reply}"))
                }
            },
            other => other.map(|_| Written { high_water: None }),
        }
    }

    /// Reads the last value written under `key`; `Ok(None)` when it has none.
    pub async fn read(&mut self, key: &str) -> Completion<Option<StoredValue>> {
        let deadline = Instant::now() + self.timeout;
        let body = json!({ "key": BASE64.encode(data_key(key)) });
        let reply = match self.gateway.call("v3/kv/range", &body, deadline).await {
            Completion::Ok(v) => v,
            Completion::Fail(e) => return Completion::Fail(e),
            Completion::Info(e) => return Completion::Info(e),
        };
        let kv = &reply["kvs"][0];
        if kv.is_null() {
            return Completion::Ok(None);
        }
        match parse_stored(kv) {
            Some(v) => Completion::Ok(Some(v)),
            None => Completion::Info(format!("v3/kv/range: unreadable value {kv}")),
        }
    }

    /// The lock key (base64) whose create revision is `token`; the error,
    /// when there is none or it cannot be found, says why nothing was sent.
    async fn lock_key(&mut self, token: u64, deadline: Instant) -> Result<String, String> {
        if let Some(k) = self.lock_keys.get(&token) {
            return Ok(k.clone());
        }
        let body = lock_range(&self.lock);
        let reply = match self.gateway.call("v3/kv/range", &body, deadline).await {
            Completion::Ok(v) => v,
            Completion::Fail(e) | Completion::Info(e) => {
                return Err(format!(
                    "not sent: finding the lock key of token {token}: {e}"
                ));
            }
        };
        let kvs = reply["kvs"].as_array().cloned().unwrap_or_default();
        let mine = kvs.iter().find(|kv| create_revision(kv) == Some(token));
        match mine.and_then(|kv| kv["key"].as_str()) {
            Some(k) => {
                self.lock_keys.insert(token, k.to_owned());
                Ok(k.to_owned())
            }
            None => Err(rejection(token, holder_of(&kvs), Refusal::NotSent)),
        }
    }
}

/// `leasehold/data/<key>`.
fn data_key(key: &str) -> String {
    format!("{DATA_PREFIX}{key}")
}

/// The value stored for a write.
fn stored_json(data: &str, token: u64, from: &str) -> String {
    json!({ "data": data, "token": token, "from": from }).to_string()
}

/// A stored value read back: its JSON, base64 in the gateway's `value`.
fn parse_stored(kv: &Value) -> Option<StoredValue> {
    let bytes = BASE64.decode(kv["value"].as_str()?).ok()?;
    let v: Value = serde_json::from_slice(&bytes).ok()?;
    Some(StoredValue {
        token: v["token"].as_u64()?,
        data: v["data"].as_str()?.to_owned(),
        from: v["from"].as_str().unwrap_or_default().to_owned(),
    })
}

/// The range of every key of `lock`: `<lock>/` up to `<lock>0`.
fn lock_range(lock: &str) -> Value {
    let prefix = format!("{lock}/");
    // '/' + 1 is '0': the end of the prefix range.
    let end = format!("{lock}0");
    json!({ "key": BASE64.encode(prefix), "range_end": BASE64.encode(end) })
}

/// The transaction of a fenced write (see the module documentation).
/// `lock_key` is base64 already, as the gateway gave it.
fn txn_body(lock: &str, lock_key: &str, token: u64, key: &str, value: &str) -> Value {
    json!({
        "compare": [{
            "key": lock_key,
            "target": "CREATE",
            "result": "EQUAL",
            "create_revision": token.to_string(),
        }],
        "success": [{
            "request_put": { "key": BASE64.encode(data_key(key)), "value": BASE64.encode(value) },
        }],
        "failure": [{ "request_range": lock_range(lock) }],
    })
}

/// What a transaction's reply says.
#[derive(Debug, PartialEq, Eq)]
enum TxnOutcome {
    Applied,
    /// The compare failed: nothing was written. `holder`: the current holder's
    /// token, when some key of the lock exists.
    Refused {
        holder: Option<u64>,
    },
    Unreadable,
}

fn txn_outcome(reply: &Value) -> TxnOutcome {
    if !reply.is_object() || reply.get("header").is_none() {
        return TxnOutcome::Unreadable;
    }
    // The gateway leaves `succeeded` out when it is false.
    match reply.get("succeeded") {
        Some(Value::Bool(true)) => TxnOutcome::Applied,
        None | Some(Value::Bool(false)) => {
            let kvs = reply["responses"][0]["response_range"]["kvs"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            TxnOutcome::Refused {
                holder: holder_of(&kvs),
            }
        }
        Some(_) => TxnOutcome::Unreadable,
    }
}

fn create_revision(kv: &Value) -> Option<u64> {
    int(kv, "create_revision").and_then(|r| u64::try_from(r).ok())
}

/// The holder's token among a lock's keys: the oldest key's create revision.
fn holder_of(kvs: &[Value]) -> Option<u64> {
    kvs.iter()
        .filter_map(create_revision)
        .filter(|&r| r > 0)
        .min()
}

/// Who refused a fenced write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Refusal {
    /// The lookup of the lock key found none: nothing was sent.
    NotSent,
    /// etcd applied the transaction's failure branch.
    Compare,
}

fn rejection(token: u64, holder: Option<u64>, by: Refusal) -> String {
    let by = match by {
        Refusal::NotSent => "rejected before sending",
        Refusal::Compare => "rejected by the transaction's compare",
    };
    match holder {
        Some(h) => {
            format!("{by}: the lock key of token {token} is gone (lease ended): high water {h}")
        }
        None => format!("{by}: the lock key of token {token} is gone (lease ended)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        BASE64.encode(s)
    }

    #[test]
    fn the_fenced_write_is_guarded_on_the_lock_keys_create_revision() {
        let lock_key = b64("L/694d8a2f1c0b4e05");
        let body = txn_body("L", &lock_key, 33, "k0", r#"{"data":"w1-0"}"#);
        assert_eq!(
            body["compare"],
            json!([{
                "key": lock_key,
                "target": "CREATE",
                "result": "EQUAL",
                "create_revision": "33",
            }])
        );
        let put = &body["success"][0]["request_put"];
        assert_eq!(put["key"], b64("leasehold/data/k0"));
        assert_eq!(put["value"], b64(r#"{"data":"w1-0"}"#));
        let range = &body["failure"][0]["request_range"];
        assert_eq!(range["key"], b64("L/"));
        assert_eq!(range["range_end"], b64("L0"));
    }

    #[test]
    fn transaction_replies() {
        let header = json!({ "revision": "40" });
        assert_eq!(
            txn_outcome(&json!({ "header": header, "succeeded": true })),
            TxnOutcome::Applied
        );
        let refused = json!({
            "header": header,
            "responses": [{ "response_range": { "kvs": [
                { "key": b64("L/2"), "create_revision": "36" },
                { "key": b64("L/1"), "create_revision": "35" },
            ] } }],
        });
        assert_eq!(
            txn_outcome(&refused),
            TxnOutcome::Refused { holder: Some(35) }
        );
        assert_eq!(
            txn_outcome(&json!({ "header": header, "responses": [{ "response_range": {} }] })),
            TxnOutcome::Refused { holder: None }
        );
        assert_eq!(
            txn_outcome(&json!({ "error": "x" })),
            TxnOutcome::Unreadable
        );
        assert_eq!(
            rejection(33, Some(35), Refusal::Compare),
            "rejected by the transaction's compare: the lock key of token 33 is gone (lease \
             ended): high water 35"
        );
        assert_eq!(
            rejection(33, None, Refusal::NotSent),
            "rejected before sending: the lock key of token 33 is gone (lease ended)"
        );
    }

    #[test]
    fn stored_values_round_trip() {
        let kv = json!({ "value": b64(&stored_json("w1-0", 34, "w1")) });
        assert_eq!(
            parse_stored(&kv),
            Some(StoredValue {
                token: 34,
                data: "w1-0".into(),
                from: "w1".into()
            })
        );
        assert_eq!(parse_stored(&json!({ "value": b64("nope") })), None);
    }
}
