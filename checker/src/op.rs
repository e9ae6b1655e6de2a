//! Operations: an invocation paired with its completion, with a typed call.

use std::collections::HashMap;

use serde_json::Value;

use crate::event::{Event, EventType, Process};

/// How an operation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// It happened (`ok`).
    Ok,
    /// It certainly did not happen (`fail`).
    Fail,
    /// Unknown: `info`, or never completed before the history ended.
    Info,
}

/// What an operation asked for, and for `ok` completions what it got back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Call {
    /// `token` and `lease_ms` are known only when the acquire completed `ok`.
    Acquire {
        /// The lock asked for (`""` when neither the invocation nor the reply
        /// names one).
        lock: String,
        /// The fencing token granted; `None` unless it completed `ok` with one.
        token: Option<u64>,
        /// The lease granted, in ms; `None` unless it completed `ok` with one.
        lease_ms: Option<u64>,
    },
    /// A renewal of the lease of `token`.
    Renew {
        /// The lock (`""` when the history names none).
        lock: String,
        /// The token renewed: the `ok` reply's, else the invocation's (0 when
        /// neither says).
        token: u64,
        /// The lease the renew granted, in ms; `None` unless it completed `ok`
        /// with one (the lease length of its acquire then applies).
        lease_ms: Option<u64>,
    },
    /// A release of the lease of `token`.
    Release {
        /// The lock (`""` when the history names none).
        lock: String,
        /// The token released, from the invocation (0 when it names none).
        token: u64,
    },
    /// A write to storage, fenced with `token`; the fields are the invocation's.
    Write {
        /// The key written (`""` when the invocation names none).
        key: String,
        /// The fencing token the write carried (0 when it names none).
        token: u64,
        /// The data written, unique per write of one writer.
        data: String,
    },
    /// `value` is the `(token, data)` read back, when the read completed `ok` and
    /// the key held something.
    Read {
        /// The key read.
        key: String,
        /// `(token, data)` of the value read; `None` for an empty key or a read
        /// that did not complete `ok`.
        value: Option<(u64, String)>,
    },
    /// Any other function, kept so indexes still line up.
    Other {
        /// The function's name, as the history spells it.
        f: String,
    },
}

impl Call {
    /// The operation's function as histories spell it: `acquire`, `write`, …
    pub fn f(&self) -> &str {
        match self {
            Call::Acquire { .. } => "acquire",
            Call::Renew { .. } => "renew",
            Call::Release { .. } => "release",
            Call::Write { .. } => "write",
            Call::Read { .. } => "read",
            Call::Other { f } => f,
        }
    }
}

/// A client operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Op {
    /// The process that performed it.
    pub process: Process,
    /// The node of the invocation (`w3`); `None` when the history names none.
    pub node: Option<String>,
    /// History index of the invocation; anomalies name operations by it.
    pub invoke_index: u64,
    /// Nanoseconds since the run started, when the operation was sent.
    pub invoke_time: u64,
    /// History index of the completion; `None` if it never completed.
    pub complete_index: Option<u64>,
    /// When the reply arrived; `None` if it never did.
    pub complete_time: Option<u64>,
    /// How it ended; `Info` when it never completed.
    pub outcome: Outcome,
    /// What it asked for and, if `ok`, what it got.
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

    /// Whether it completed `ok`.
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
