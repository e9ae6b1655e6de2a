//! Client of leasehold's fenced storage, and the HTTP plumbing it shares with
//! the reference lock client.
//!
//! The mapping of a reply to a [`Completion`] is what the history records, so it
//! errs toward `Info`: only a request that certainly had no effect is `Fail`.
//!
//! | what happened | completion |
//! |---|---|
//! | 200 | `Ok` |
//! | 409 (refused) or another 4xx (malformed, never applied) | `Fail` |
//! | connection could not be established | `Fail` |
//! | timeout, connection broken after sending, 5xx, unreadable 200 | `Info` |

use std::time::Duration;

use reqwest::{StatusCode, Url};
use serde::de::DeserializeOwned;

use crate::ClientError;
use crate::completion::{Completion, error_chain};
use crate::protocol::{ReadReply, WriteReply, WriteRequest};

/// A write storage accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriteOutcome {
    /// The key's high water after the write.
    pub high_water: u64,
}

/// The last accepted value of a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredValue {
    /// The fencing token the write carried.
    pub token: u64,
    /// What was written.
    pub data: String,
    /// The node that wrote it.
    pub from: String,
}

/// A client of one fenced-storage node, writing as `from`.
#[derive(Clone, Debug)]
pub struct StorageClient {
    http: NodeHttp,
    from: String,
}

impl StorageClient {
    /// `addr` is `host:port`; `from` is the writing node's name, recorded in the
    /// ledger; `timeout` bounds each request from connect to the last byte.
    pub fn new(addr: &str, from: &str, timeout: Duration) -> Result<Self, ClientError> {
        Ok(StorageClient {
            http: NodeHttp::new(addr, timeout)?,
            from: from.to_owned(),
        })
    }

    /// Writes `data` under `key` fenced by `token`. A fencing rejection is
    /// `Fail("rejected: high water N")`.
    pub async fn write(&self, key: &str, data: &str, token: u64) -> Completion<WriteOutcome> {
        let body = WriteRequest {
            key: key.to_owned(),
            data: data.to_owned(),
            token,
            from: self.from.clone(),
        };
        let request = self.http.client.post(self.http.url("v1/write")).json(&body);
        let reply: Completion<WriteReply> = self.http.exchange(request, write_refusal).await;
        match reply {
            Completion::Ok(r) => Completion::Ok(WriteOutcome {
                high_water: r.high_water,
            }),
            Completion::Fail(e) => Completion::Fail(e),
            Completion::Info(e) => Completion::Info(e),
        }
    }

    /// Reads the last accepted value of `key`; `Ok(None)` when it has none.
    pub async fn read(&self, key: &str) -> Completion<Option<StoredValue>> {
        let mut url = self.http.url("v1/read");
        url.query_pairs_mut().append_pair("key", key);
        let request = self.http.client.get(url);
        let reply: Completion<ReadReply> = self.http.exchange(request, generic_refusal).await;
        match reply {
            Completion::Ok(r) => Completion::Ok(r.value.map(|v| StoredValue {
                token: v.token,
                data: v.data,
                from: v.from,
            })),
            Completion::Fail(e) => Completion::Fail(e),
            Completion::Info(e) => Completion::Info(e),
        }
    }

    /// Whether the node answers `/v1/health` with 200 within the timeout.
    pub async fn health(&self) -> bool {
        self.http.health().await
    }
}

/// `rejected: high water N` from a 409 [`WriteReply`].
fn write_refusal(body: &[u8]) -> String {
    match serde_json::from_slice::<WriteReply>(body) {
        Ok(r) => format!("rejected: high water {}", r.high_water),
        Err(_) => generic_refusal(body),
    }
}

/// The `error` of a 409 [`ErrorReply`](crate::protocol::ErrorReply), with the
/// holder when there is one; the raw body when it is not one.
pub(crate) fn generic_refusal(body: &[u8]) -> String {
    match serde_json::from_slice::<crate::protocol::ErrorReply>(body) {
        Ok(crate::protocol::ErrorReply {
            error,
            holder: Some(holder),
        }) => format!("{error} (holder {holder})"),
        Ok(r) => r.error,
        Err(_) => format!("refused: {}", String::from_utf8_lossy(body).trim()),
    }
}

/// One HTTP/1.1 client bound to one node: keep-alive, no proxy, no retries,
/// one total timeout per request.
#[derive(Clone, Debug)]
pub(crate) struct NodeHttp {
    pub(crate) client: reqwest::Client,
    base: Url,
}

impl NodeHttp {
    pub(crate) fn new(addr: &str, timeout: Duration) -> Result<Self, ClientError> {
        let base = base_url(addr)?;
        let client = reqwest::Client::builder()
            .http1_only()
            // A proxy from the environment would make partitions meaningless and
            // turn "connection refused" into a proxy's 502.
            .no_proxy()
            // A retried request may be applied twice; the history must record
            // exactly one attempt.
            .retry(reqwest::retry::never())
            // A connection not established in time is a certain `Fail` (e.g.
            // SYNs dropped by a partition). It must fire before the total
            // timeout, which makes anything later an `Info`.
            .connect_timeout(timeout / 2)
            .timeout(timeout)
            .build()?;
        Ok(NodeHttp { client, base })
    }

    pub(crate) fn url(&self, path: &str) -> Url {
        self.base.join(path).expect("endpoint paths are valid")
    }

    /// Sends `request` and maps the outcome (see the module table); `refusal`
    /// turns a 409 body into the failure text.
    pub(crate) async fn exchange<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
        refusal: fn(&[u8]) -> String,
    ) -> Completion<T> {
        let response = match request.send().await {
            Ok(response) => response,
            Err(e) => return send_error(&e),
        };
        let status = response.status();
        let body = response.bytes().await;
        match status {
            StatusCode::OK => match body {
                Ok(body) => match serde_json::from_slice(&body) {
                    Ok(value) => Completion::Ok(value),
                    // Processed, but we cannot tell what the outcome was.
                    Err(e) => Completion::Info(format!("unreadable reply: {e}")),
                },
                Err(e) => Completion::Info(format!("reply broken off: {}", error_chain(&e))),
            },
            StatusCode::CONFLICT => Completion::Fail(refusal(body.as_deref().unwrap_or_default())),
            s if s.is_client_error() => Completion::Fail(format!(
                "HTTP {s}: {}",
                body_text(body.as_deref().unwrap_or_default())
            )),
            s => Completion::Info(format!(
                "HTTP {s}: {}",
                body_text(body.as_deref().unwrap_or_default())
            )),
        }
    }

    pub(crate) async fn health(&self) -> bool {
        match self.client.get(self.url("v1/health")).send().await {
            Ok(response) => response.status() == StatusCode::OK,
            Err(_) => false,
        }
    }
}

/// A request that never got a connection certainly had no effect: `Fail`. Any
/// other failure (timeout, reset after sending) may have: `Info`.
fn send_error<T>(e: &reqwest::Error) -> Completion<T> {
    if e.is_connect() || e.is_builder() {
        Completion::Fail(format!("cannot connect: {}", error_chain(e)))
    } else if e.is_timeout() {
        Completion::Info(format!("timeout: {}", error_chain(e)))
    } else {
        Completion::Info(format!("connection broken: {}", error_chain(e)))
    }
}

/// A reply body for an error message, cut short.
fn body_text(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    match text.char_indices().nth(200) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_owned(),
    }
}

/// `http://host:port/` from `host:port`; anything else (a scheme, a path, no
/// port) is a bad address, caught when the client is built rather than on
/// every request.
fn base_url(addr: &str) -> Result<Url, ClientError> {
    let bad = |reason: &str| ClientError::BadAddress {
        addr: addr.to_owned(),
        reason: reason.to_owned(),
    };
    let (host, port) = addr
        .rsplit_once(':')
        .ok_or_else(|| bad("expected host:port"))?;
    if host.is_empty() || host.contains(['/', '@', '?', '#']) {
        return Err(bad("expected host:port"));
    }
    port.parse::<u16>().map_err(|_| bad("bad port"))?;
    let url = Url::parse(&format!("http://{addr}/")).map_err(|e| bad(&e.to_string()))?;
    if url.path() != "/" || url.host().is_none() {
        return Err(bad("expected host:port"));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(
            base_url("127.0.0.1:7000").unwrap().as_str(),
            "http://127.0.0.1:7000/"
        );
        assert_eq!(
            base_url("[::1]:8080").unwrap().as_str(),
            "http://[::1]:8080/"
        );
        assert_eq!(
            base_url("store1:8080").unwrap().as_str(),
            "http://store1:8080/"
        );
        for bad in [
            "",
            "store1",
            "http://a:1",
            "a:1/x",
            "a:port",
            ":80",
            "a:70000",
        ] {
            assert!(base_url(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn refusal_texts() {
        assert_eq!(
            write_refusal(br#"{"decision":"rejected","high_water":34}"#),
            "rejected: high water 34"
        );
        assert_eq!(
            generic_refusal(br#"{"error":"busy","holder":"w3"}"#),
            "busy (holder w3)"
        );
        assert_eq!(generic_refusal(br#"{"error":"lease lost"}"#), "lease lost");
        assert_eq!(generic_refusal(b"nope"), "refused: nope");
    }
}
