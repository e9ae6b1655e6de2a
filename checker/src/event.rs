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
    Client(u64),
    Named(String),
}

impl Process {
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
    Invoke,
    Ok,
    Fail,
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
    pub process: Process,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    #[serde(rename = "type")]
    pub kind: EventType,
    /// `acquire`, `renew`, `release`, `write`, `read`, or a nemesis function.
    pub f: String,
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub value: serde_json::Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}
