//! Operations: an invocation paired with its completion, with a typed call.

use std::collections::HashMap;

use serde_json::Value;

use crate::event::{Event, EventType, Process};

/// How an operation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    Ok,
    Fail,
    /// Unknown: `info`, or never completed before the history ended.
    Info,
}

/// What an operation asked for, and for `ok` completions what it got back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Call {
    /// `token` and `lease_ms` are known only when the acquire completed `ok`.
    Acquire {
        lock: String,
        token: Option<u64>,
        lease_ms: Option<u64>,
    },
    Renew {
        lock: String,
        token: u64,
        lease_ms: Option<u64>,
    },
    Release {
        lock: String,
        token: u64,
    },
    Write {
        key: String,
        token: u64,
        data: String,
    },
    /// `value` is the `(token, data)` read back, when the read completed `ok` and
    /// the key held something.
    Read {
        key: String,
        value: Option<(u64, String)>,
    },
    /// Any other function, kept so indexes still line up.
    Other {
        f: String,
    },
}

/// A client operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Op {
    pub process: Process,
    pub node: Option<String>,
    pub invoke_index: u64,
    /// Nanoseconds since the run started, when the operation was sent.
    pub invoke_time: u64,
    pub complete_index: Option<u64>,
    /// When the reply arrived; `None` if it never did.
    pub complete_time: Option<u64>,
    pub outcome: Outcome,
    pub call: Call,
}

impl Op {
    /// The latest moment the operation could have taken effect, as far as the
    /// history tells: its completion, or never (`u64::MAX`) for one that did not
    /// complete or ended `info`.
    pub fn effect_deadline(&self) -> u64 {
        match (self.outcome, self.complete_time) {
            (Outcome::Ok | Outcome::Fail, Some(t)) => t,
            _ => u64::MAX,
        }
    }

    pub fn is_ok(&self) -> bool {
        self.outcome == Outcome::Ok
    }

    /// The node's name, or the process number when the event named no node.
    pub fn actor(&self) -> String {
        self.node
            .clone()
            .unwrap_or_else(|| format!("process {}", self.process))
    }
}

fn str_field(v: &Value, name: &str) -> Option<String> {
    match v.get(name)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn u64_field(v: &Value, name: &str) -> Option<u64> {
    v.get(name)?.as_u64()
}

/// Builds the typed call from the invocation's value, completed by the reply's.
fn call_of(f: &str, invoke: &Value, reply: Option<&Value>, ok: bool) -> Call {
    let either = |name: &str| {
        reply
            .filter(|_| ok)
            .and_then(|r| u64_field(r, name))
            .or_else(|| u64_field(invoke, name))
    };
    // The invocation names the lock; an ok reply may repeat it (or be the only
    // place it appears, in histories from other tools).
    let lock = || {
        str_field(invoke, "lock")
            .or_else(|| reply.filter(|_| ok).and_then(|r| str_field(r, "lock")))
            .unwrap_or_default()
    };
    match f {
        "acquire" => Call::Acquire {
            lock: lock(),
            token: if ok { either("token") } else { None },
            lease_ms: if ok { either("lease_ms") } else { None },
        },
        "renew" => Call::Renew {
            lock: lock(),
            token: either("token").unwrap_or_default(),
            lease_ms: if ok { either("lease_ms") } else { None },
        },
        "release" => Call::Release {
            lock: lock(),
            token: u64_field(invoke, "token").unwrap_or_default(),
        },
        "write" => Call::Write {
            key: str_field(invoke, "key").unwrap_or_default(),
            token: u64_field(invoke, "token").unwrap_or_default(),
            data: str_field(invoke, "data").unwrap_or_default(),
        },
        "read" => {
            let value = reply.filter(|_| ok).and_then(|r| {
                let token = u64_field(r, "token")?;
                Some((token, str_field(r, "data").unwrap_or_default()))
            });
            Call::Read {
                key: str_field(invoke, "key").unwrap_or_default(),
                value,
            }
        }
        other => Call::Other {
            f: other.to_owned(),
        },
    }
}

pub(crate) fn pair(events: &[Event]) -> Vec<Op> {
    // Open invocations by process -> position in `ops`.
    let mut open: HashMap<&Process, usize> = HashMap::new();
    let mut ops: Vec<Op> = Vec::new();
    let mut invoke_values: Vec<Option<&Value>> = Vec::new();
    for e in events {
        if matches!(e.process, Process::Named(ref n) if n == "nemesis") {
            continue;
        }
        match e.kind {
            EventType::Invoke => {
                open.insert(&e.process, ops.len());
                invoke_values.push(Some(&e.value));
                ops.push(Op {
                    process: e.process.clone(),
                    node: e.node.clone(),
                    invoke_index: e.index,
                    invoke_time: e.time,
                    complete_index: None,
                    complete_time: None,
                    outcome: Outcome::Info,
                    call: call_of(&e.f, &e.value, None, false),
                });
            }
            kind => {
                let Some(at) = open.remove(&e.process) else {
                    continue;
                };
                let ok = kind == EventType::Ok;
                let op = &mut ops[at];
                op.complete_index = Some(e.index);
                op.complete_time = Some(e.time);
                op.outcome = match kind {
                    EventType::Ok => Outcome::Ok,
                    EventType::Fail => Outcome::Fail,
                    _ => Outcome::Info,
                };
                let invoke = invoke_values[at].take().unwrap_or(&Value::Null);
                op.call = call_of(&e.f, invoke, Some(&e.value), ok);
            }
        }
    }
    ops
}
