//! Events: one line of `history.jsonl` each, and who performed it.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Who performed an event: a client process number, or a named actor such as
/// `"nemesis"` or `"final"` (the controller's final reads).
///
/// A worker whose operation ended `info` is retired and continues under a new
/// number, so one node may appear as several processes.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Process {
    /// A client process number (a JSON number in the history).
    Client(u64),
    /// A named actor (a JSON string in the history): `"nemesis"`, `"final"`,
    /// or any name a Jepsen history uses.
    Named(String),
}

impl Process {
    /// The nemesis, which performs the fault actions: `Named("nemesis")`.
    pub fn nemesis() -> Self {
        Process::Named("nemesis".to_owned())
    }
}

impl fmt::Display for Process {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Process::Client(n) => write!(f, "{n}"),
            Process::Named(s) => f.write_str(s),
        }
    }
}

/// `invoke`, then exactly one of `ok` (it happened), `fail` (it certainly did not)
/// or `info` (unknown: it may take effect at any later time).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventType {
    /// The operation was sent; its completion is the next event of the same
    /// process.
    Invoke,
    /// It happened.
    Ok,
    /// It certainly did not happen.
    Fail,
    /// Unknown: it may take effect at any later time, or never; the process is
    /// retired. Nemesis actions are recorded as `info` too.
    Info,
}

/// One line of `history.jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Position in the history; assigned by the controller as it writes.
    pub index: u64,
    /// Nanoseconds since the run started, on the host's CLOCK_MONOTONIC, stamped
    /// where the event happened.
    pub time: u64,
    /// Who performed it.
    pub process: Process,
    /// The node it happened on (`w3`); `None` when the line names none, as for
    /// nemesis actions and the final reads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// The invocation, or how the operation ended (`type` in the file).
    #[serde(rename = "type")]
    pub kind: EventType,
    /// `acquire`, `renew`, `release`, `write`, `read`, or a nemesis function.
    pub f: String,
    /// The arguments of an invocation, the result of a completion (for an `ok`
    /// acquire `{"lock", "token", "lease_ms"}`), the nodes of a nemesis action;
    /// `null` when absent.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub value: serde_json::Value,
    /// Why an operation failed or is unknown (`"timeout"`), as its performer
    /// reported it; `None` when the line says nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}
