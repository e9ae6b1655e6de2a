//! `storage: { service: exec }`: a store the user brings, driven over JSON
//! lines by an adapter the worker starts, exactly as a lock adapter
//! ([`crate::exec`], docs/protocol.md, "exec: bring your own storage").
//!
//! ```text
//! {"id":1,"op":"init","node":"w1","storage_nodes":["10.77.0.31:7400"],"timeout_ms":500}
//! {"id":1,"type":"ok"}
//! {"id":2,"op":"write","key":"k0","data":"w1-0","token":34,"from":"w1"}
//! {"id":2,"type":"ok","high_water":34}
//! {"id":3,"op":"write","key":"k0","data":"w3-0","token":33,"from":"w3"}
//! {"id":3,"type":"fail","error":"rejected","high_water":34}
//! {"id":4,"op":"read","key":"k0"}
//! {"id":4,"type":"ok","data":"w1-0","token":34,"from":"w1"}
//! ```
//!
//! - **Nodes**: `storage.server.command` per storage node, with the lock
//!   server's placeholders and `{fencing}` (`on` or `off`, from
//!   `storage.fencing`) replaced ([`recipe`]); ready when its port accepts a
//!   TCP connection; its stdout and stderr are its node log. Without
//!   `storage.server` the adapter is given `storage.addresses` of a store the
//!   user runs.
//! - **Replies**: `ok` is accepted (`high_water`, optional, the key's mark
//!   after it), `fail` certainly not applied (fencing refused it: say
//!   `rejected`, and give `high_water` when known), `info` unknown. An `ok` to
//!   `read` carries `data` and `token` (and optionally `from`), or neither for
//!   a key never written. Anything else is a protocol error: the op ends
//!   `info`, the adapter is killed and restarted, the reason goes to the
//!   worker's log.
//! - **Ledger**: none; the checks judge the writes by their replies.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Map, Value, json};

use crate::completion::Completion;
use crate::exec::{AdapterLog, AdapterProcess, AdapterSpec, ExecError};
use crate::storage::Written;
use crate::storage_client::StoredValue;
use crate::system::{NodeAddrs, Program, ServerRecipe, exec as lock_exec};

/// The port of an exec storage node when `storage.server.port` is not given.
pub const PORT: u16 = 7400;

/// The config field that names the server command.
pub const SERVER_FIELD: &str = "storage.server.command";

/// The placeholder replaced by `on` or `off` (`storage.fencing`), besides the
/// lock server's [`PLACEHOLDERS`](crate::system::exec::PLACEHOLDERS).
pub const FENCING_PLACEHOLDER: &str = "{fencing}";

/// How the user's storage nodes start: the config's `storage.server`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct ExecStorageServer {
    /// The program and its arguments, placeholders not yet replaced.
    pub command: Vec<String>,
    /// The port each node listens on (with an address of its own).
    pub port: u16,
    /// Replaces [`FENCING_PLACEHOLDER`]: `on` when true.
    pub fencing: bool,
}

/// The first placeholder-like `{word}` of `arg` that a storage server command
/// does not know, if any.
pub fn unknown_placeholder(arg: &str) -> Option<String> {
    let without = arg.replace(FENCING_PLACEHOLDER, "");
    lock_exec::unknown_placeholder(&without).map(str::to_owned)
}

/// The program of the server command: its first word, as the user wrote it.
pub fn program(server: &ExecStorageServer) -> Program {
    lock_exec::user_program(&server.command, SERVER_FIELD)
}

/// Storage node `i` (0-based): the user's command with the lock server's
/// placeholders and `{fencing}` replaced ([`lock_exec::user_recipe`]).
pub fn recipe(server: &ExecStorageServer, i: usize, node: &NodeAddrs) -> ServerRecipe {
    let fencing = if server.fencing { "on" } else { "off" };
    lock_exec::user_recipe(&server.command, SERVER_FIELD, node.addr.port(), |a| {
        // `{fencing}` first: the lock placeholders' values are never
        // scanned again, and neither is this one.
        a.split(FENCING_PLACEHOLDER)
            .map(|part| lock_exec::substitute(part, i, node))
            .collect::<Vec<_>>()
            .join(fencing)
    })
}

/// How to start an exec storage adapter and talk to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecStorageConfig {
    /// The adapter's program and arguments (`[python3, store_client.py]`).
    pub command: Vec<String>,
    /// The writing node's name, sent in `init` and as `from` of each write.
    pub node: String,
    /// `host:port` of every storage node, sent in `init`.
    pub storage_nodes: Vec<String>,
    /// How long the worker waits for the reply to one op; sent in `init` as
    /// `timeout_ms`.
    pub timeout: Duration,
    /// How long starting the adapter and its reply to `init` may take.
    pub init_timeout: Duration,
    /// The adapter's working directory; None for the caller's.
    pub cwd: Option<PathBuf>,
}

impl ExecStorageConfig {
    /// A config with the default `init_timeout` (10 s) and the caller's
    /// working directory.
    pub fn new(
        command: Vec<String>,
        node: impl Into<String>,
        storage_nodes: Vec<String>,
        timeout: Duration,
    ) -> Self {
        ExecStorageConfig {
            command,
            node: node.into(),
            storage_nodes,
            timeout,
            init_timeout: Duration::from_secs(10),
            cwd: None,
        }
    }
}

/// A storage client that drives the user's adapter over JSON lines; one
/// adapter process at a time, restarted after a protocol error.
#[derive(Debug)]
pub struct ExecStorageClient {
    node: String,
    process: AdapterProcess,
}

impl ExecStorageClient {
    /// Starts the adapter and initialises it (inside a Tokio runtime with I/O
    /// enabled). An error means the writer cannot work: the command is empty,
    /// cannot be started, or its `init` failed.
    pub async fn start(config: ExecStorageConfig, log: AdapterLog) -> Result<Self, ExecError> {
        let mut init = Map::new();
        init.insert("storage_nodes".to_owned(), json!(config.storage_nodes));
        let spec = AdapterSpec {
            command: config.command,
            node: config.node.clone(),
            init,
            timeout: config.timeout,
            init_timeout: config.init_timeout,
            cwd: config.cwd,
        };
        Ok(ExecStorageClient {
            node: config.node,
            process: AdapterProcess::start(spec, log).await?,
        })
    }

    /// How many times an adapter was started (1 until the first restart).
    pub fn starts(&self) -> u64 {
        self.process.starts()
    }

    /// The process id of the running adapter, if one is running.
    pub fn adapter_pid(&self) -> Option<u32> {
        self.process.adapter_pid()
    }

    /// Writes `data` under `key` fenced by `token`.
    pub async fn write(&mut self, key: &str, data: &str, token: u64) -> Completion<Written> {
        let fields = json!({ "key": key, "data": data, "token": token, "from": self.node });
        match self.process.call("write", fields).await {
            Completion::Ok(reply) => match written(&reply) {
                Ok(w) => Completion::Ok(w),
                Err(e) => self.process.malformed("write", e),
            },
            Completion::Fail(e) => Completion::Fail(e),
            Completion::Info(e) => Completion::Info(e),
        }
    }

    /// Reads the last accepted value of `key`; `Ok(None)` when it has none.
    pub async fn read(&mut self, key: &str) -> Completion<Option<StoredValue>> {
        match self.process.call("read", json!({ "key": key })).await {
            Completion::Ok(reply) => match stored_value(&reply) {
                Ok(v) => Completion::Ok(v),
                Err(e) => self.process.malformed("read", e),
            },
            Completion::Fail(e) => Completion::Fail(e),
            Completion::Info(e) => Completion::Info(e),
        }
    }
}

/// The fields of a write's `ok`: `high_water`, if any, is an unsigned integer.
fn written(reply: &Map<String, Value>) -> Result<Written, String> {
    match reply.get("high_water") {
        None | Some(Value::Null) => Ok(Written { high_water: None }),
        Some(v) => match v.as_u64() {
            Some(h) => Ok(Written {
                high_water: Some(h),
            }),
            None => Err(format!(
                "write ok with a high_water that is not an unsigned integer: {v}"
            )),
        },
    }
}

/// The fields of a read's `ok`: `data` (a string) and `token` (an unsigned
/// integer) together, or neither for a key never written; `from` optional.
fn stored_value(reply: &Map<String, Value>) -> Result<Option<StoredValue>, String> {
    let field = |name: &str| reply.get(name).filter(|v| !v.is_null());
    match (field("data"), field("token")) {
        (None, None) => Ok(None),
        (Some(Value::String(data)), Some(token)) => {
            let token = token.as_u64().ok_or_else(|| {
                format!("read ok with a token that is not an unsigned integer: {token}")
            })?;
            let from = match field("from") {
                None => String::new(),
                Some(Value::String(f)) => f.clone(),
                Some(other) => {
                    return Err(format!("read ok with a from that is not a string: {other}"));
                }
            };
            Ok(Some(StoredValue {
                token,
                data: data.clone(),
                from,
            }))
        }
        _ => Err(
            "read ok needs data (a string) and token (an unsigned integer), or neither \
                  for a key never written"
                .to_owned(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn write_replies() {
        assert_eq!(
            written(&map(json!({ "high_water": 34 }))),
            Ok(Written {
                high_water: Some(34)
            })
        );
        assert_eq!(written(&map(json!({}))), Ok(Written { high_water: None }));
        for bad in [json!({ "high_water": -1 }), json!({ "high_water": "34" })] {
            assert!(written(&map(bad.clone())).is_err(), "{bad}");
        }
    }

    #[test]
    fn read_replies() {
        assert_eq!(
            stored_value(&map(json!({ "data": "w1-0", "token": 34, "from": "w1" }))),
            Ok(Some(StoredValue {
                token: 34,
                data: "w1-0".into(),
                from: "w1".into()
            }))
        );
        assert_eq!(
            stored_value(&map(json!({ "data": "w1-0", "token": 34 }))),
            Ok(Some(StoredValue {
                token: 34,
                data: "w1-0".into(),
                from: String::new()
            }))
        );
        assert_eq!(stored_value(&map(json!({}))), Ok(None));
        assert_eq!(
            stored_value(&map(json!({ "data": null, "token": null }))),
            Ok(None)
        );
        for bad in [
            json!({ "data": "x" }),
            json!({ "token": 3 }),
            json!({ "data": 3, "token": 3 }),
            json!({ "data": "x", "token": -3 }),
            json!({ "data": "x", "token": 3, "from": 1 }),
        ] {
            assert!(stored_value(&map(bad.clone())).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_recipe_replaces_fencing_too() {
        let node = NodeAddrs {
            name: "store1".into(),
            addr: "10.0.0.31:7400".parse().unwrap(),
            peers: vec!["10.0.0.31:7400".parse().unwrap()],
            cluster: Vec::new(),
            data_dir: "/d/{fencing}".into(),
        };
        let server = ExecStorageServer {
            command: vec![
                "python3".into(),
                "store.py".into(),
                "--port={port}".into(),
                "--fencing".into(),
                "{fencing}".into(),
                "{data_dir}".into(),
            ],
            port: 7400,
            fencing: true,
        };
        let r = recipe(&server, 0, &node);
        assert_eq!(
            r.program,
            Program::User {
                command: "python3".into(),
                field: SERVER_FIELD
            }
        );
        // A value is not scanned again: the data dir keeps its braces.
        assert_eq!(
            r.args,
            ["store.py", "--port=7400", "--fencing", "on", "/d/{fencing}"]
        );
        assert!(!r.events_on_stdout);
        assert_eq!(unknown_placeholder("{fencing}-{host}"), None);
        assert_eq!(unknown_placeholder("{fence}").as_deref(), Some("{fence}"));
    }
}
