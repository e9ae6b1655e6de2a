//! From histories to partitions of [`Operation`]s.
//!
//! Two families of histories:
//!
//! - **leasehold's own**, from paired [`Op`]s: the storage register per key
//!   (`write {key, token, data}`; `read {key}` returning `{key, token, data}`,
//!   or `{key}` when empty; the register holds the `(token, data)` pair), and
//!   the lock per lock name (`acquire` granting `{lock, token, lease_ms}`,
//!   `renew {lock, token}`, `release {lock, token}`), owned by the node.
//! - **Jepsen-style** events, as the EDN reader converts them: `read`, `write`
//!   and `cas` with value `v` (int or null) or `[old new]` for cas, or
//!   jepsen.independent tuples `[key v]` (split per key); `acquire` and `release`
//!   with value null (one lock) or `{lock}`; tokens, when a lock hands them out,
//!   as the `ok` value of `acquire` (a number, or `{token}`); `txn` of
//!   micro-operations `[f k v]` for the multi-register, split into the groups
//!   of keys no transaction spans.
//!
//! Everywhere: `fail` operations are left out (they certainly did not happen),
//! except a failed `cas` for the strict cas register, which is kept with the
//! output [`CasReply::CompareFailed`] and its interval up to the `fail` event;
//! `info` ones, and invocations never completed, get an unknown output;
//! operations of other functions are ignored, and the nemesis is not a client.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde_json::Value;

use super::models::{CasOp, CasReply, LockOp, MutexOp, RegisterOp, Stored};
use super::multi_register::{Micro, TxnReads};
use super::types::{Operation, Partition};
use crate::event::{Event, EventType, Process};
use crate::lease::{Lease, Leases};
use crate::op::{Call, Op, Outcome};

const MS: u64 = 1_000_000;

/// Partitions and what did not make it into them.
pub(crate) struct Converted<I, O> {
    pub partitions: Vec<Partition<I, O>>,
    /// Client names by number (fenced mutex only).
    pub clients: Vec<String>,
    /// Key names by number (multi-register only).
    pub keys: Vec<String>,
    /// `fail` operations left out.
    pub failed: usize,
    /// Operations of functions the model does not know, by function.
    pub ignored: BTreeMap<String, usize>,
    /// Operations that may have happened but could not be read (invocation
    /// indexes): left out, so the verdict can only be as good as unknown.
    pub unreadable: Vec<u64>,
}

impl<I, O> Default for Converted<I, O> {
    fn default() -> Self {
        Converted {
            partitions: Vec::new(),
            clients: Vec::new(),
            keys: Vec::new(),
            failed: 0,
            ignored: BTreeMap::new(),
            unreadable: Vec::new(),
        }
    }
}

/// Collects operations per key, in a stable order of keys.
struct Sorter<I, O> {
    by_key: BTreeMap<String, Vec<Operation<I, O>>>,
    out: Converted<I, O>,
}

impl<I, O> Sorter<I, O> {
    fn new() -> Self {
        Sorter {
            by_key: BTreeMap::new(),
            out: Converted::default(),
        }
    }

    fn ignore(&mut self, f: &str) {
        *self.out.ignored.entry(f.to_owned()).or_default() += 1;
    }

    fn push(&mut self, key: String, op: Operation<I, O>) {
        self.by_key.entry(key).or_default().push(op);
    }

    fn finish(mut self) -> Converted<I, O> {
        self.out.partitions = self
            .by_key
            .into_iter()
            .map(|(key, ops)| Partition { key, ops })
            .collect();
        self.out
    }
}

/// Numbers clients (or keys) by name.
#[derive(Default)]
struct Clients {
    names: Vec<String>,
    index: HashMap<String, u32>,
}

impl Clients {
    fn of(&mut self, name: String) -> u32 {
        if let Some(&i) = self.index.get(&name) {
            return i;
        }
        let i = self.names.len() as u32;
        self.names.push(name.clone());
        self.index.insert(name, i);
        i
    }
}

// ---------------------------------------------------------------------------
// leasehold's own histories, from paired ops

/// The op's interval and whether it may have happened: `None` for `fail`.
fn interval(op: &Op) -> Option<(u64, u64, bool)> {
    match op.outcome {
        Outcome::Fail => None,
        Outcome::Ok => Some((op.invoke_time, op.complete_time.unwrap_or(u64::MAX), true)),
        Outcome::Info => Some((op.invoke_time, u64::MAX, false)),
    }
}

fn owner(op: &Op) -> String {
    op.node.clone().unwrap_or_else(|| op.process.to_string())
}

/// The storage register per key: values are `(token, data)` pairs.
pub(crate) fn leasehold_storage(ops: &[Op]) -> Converted<RegisterOp<Stored>, Option<Stored>> {
    let mut s = Sorter::new();
    let stored = |token: u64, data: &str| Stored {
        token,
        data: Arc::from(data),
    };
    for op in ops {
        let (key, input, output) = match &op.call {
            Call::Write { key, token, data } => {
                (key, RegisterOp::Write(stored(*token, data)), None)
            }
            Call::Read { key, value } => (
                key,
                RegisterOp::Read,
                Some(value.as_ref().map(|(token, data)| stored(*token, data))),
            ),
            other => {
                s.ignore(other.f());
                continue;
            }
        };
        let Some((call, ret, known)) = interval(op) else {
            s.out.failed += 1;
            continue;
        };
        s.push(
            key.clone(),
            Operation {
                id: op.invoke_index,
                process: op.process.clone(),
                call,
                ret,
                input,
                output: if known { Some(output.flatten()) } else { None },
            },
        );
    }
    s.finish()
}

/// The lock per lock name, owned by the node, with leases. `ttl_ms_of` gives the
/// lease an invocation asked for (from the `ttl_ms` of the invoke event), when
/// known: it is the only source for operations whose reply is unknown.
///
/// An `info` acquire whose lease is unknown is given a lease of zero (it cannot
/// keep anyone else from the lock), and an `info` renew whose lease is unknown
/// extends nothing: the lenient choices. An `ok` renew without `lease_ms`
/// extends by the lease length of its lease (see [`Leases`]).
pub(crate) fn leasehold_lock(
    ops: &[Op],
    ttl_ms_of: &dyn Fn(u64) -> Option<u64>,
) -> Converted<LockOp, Option<u64>> {
    let mut s = Sorter::new();
    let mut clients = Clients::default();
    let leases = Leases::from_ops(ops);
    for op in ops {
        let lock = match &op.call {
            Call::Acquire { lock, .. } | Call::Renew { lock, .. } | Call::Release { lock, .. } => {
                lock
            }
            other => {
                s.ignore(other.f());
                continue;
            }
        };
        let Some((call, ret, known)) = interval(op) else {
            s.out.failed += 1;
            continue;
        };
        let client = clients.of(owner(op));
        let asked = || ttl_ms_of(op.invoke_index);
        let (input, output) = match op.call {
            Call::Acquire {
                token, lease_ms, ..
            } => {
                let ttl_ms = if known {
                    lease_ms.or_else(asked)
                } else {
                    Some(asked().unwrap_or(0))
                };
                (
                    LockOp::Acquire {
                        client,
                        sent: call,
                        done: ret,
                        ttl: ttl_ms.map(|l| l.saturating_mul(MS)),
                    },
                    token,
                )
            }
            Call::Renew {
                token, lease_ms, ..
            } => {
                let ttl_ms = if known {
                    lease_ms
                        .or_else(asked)
                        .or_else(|| leases.for_call(lock, token).and_then(Lease::lease_ms))
                } else {
                    asked()
                };
                (
                    LockOp::Renew {
                        client,
                        token: Some(token),
                        sent: call,
                        ttl: ttl_ms.map(|l| l.saturating_mul(MS)),
                    },
                    Some(token),
                )
            }
            Call::Release { token, .. } => (
                LockOp::Release {
                    client,
                    token: Some(token),
                },
                None,
            ),
            _ => unreachable!("filtered above"),
        };
        s.push(
            lock.clone(),
            Operation {
                id: op.invoke_index,
                process: op.process.clone(),
                call,
                ret,
                input,
                output: known.then_some(output),
            },
        );
    }
    let mut out = s.finish();
    out.clients = clients.names;
    out
}

/// `ttl_ms` of each invoke event, by index.
pub(crate) fn asked_ttls(events: &[Event]) -> HashMap<u64, u64> {
    events
        .iter()
        .filter(|e| e.kind == EventType::Invoke)
        .filter_map(|e| Some((e.index, e.value.get("ttl_ms")?.as_u64()?)))
        .collect()
}

// ---------------------------------------------------------------------------
// Jepsen-style events

/// An invocation and its completion, with times.
pub(crate) struct Paired<'a> {
    pub invoke: &'a Event,
    pub done: Option<&'a Event>,
    pub call: u64,
    /// When it completed `ok` or `fail`; `u64::MAX` otherwise.
    pub ret: u64,
}

impl Paired<'_> {
    /// Ok, fail, or unknown (`info`, never completed).
    fn kind(&self) -> EventType {
        match self.done {
            Some(d) if d.kind == EventType::Ok || d.kind == EventType::Fail => d.kind,
            _ => EventType::Info,
        }
    }

    /// The completion's value, for an ok op.
    fn ok_value(&self) -> Option<&Value> {
        self.done
            .filter(|d| d.kind == EventType::Ok)
            .map(|d| &d.value)
    }
}

/// Which clock orders the operations: the events' `time` (ns) when it is
/// usable, else their positions in the history (as Knossos does).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Clock {
    Time,
    Position,
}

impl Clock {
    /// `time` when it never goes backwards along the history and is not the same
    /// everywhere (a history without times); positions otherwise.
    pub fn choose(events: &[Event]) -> Clock {
        let monotone = events.windows(2).all(|w| w[0].time <= w[1].time);
        let varies = events.first().map(|e| e.time) != events.last().map(|e| e.time);
        if monotone && varies {
            Clock::Time
        } else {
            Clock::Position
        }
    }
}

fn is_nemesis(p: &Process) -> bool {
    matches!(p, Process::Named(n) if n == "nemesis")
}

/// Pairs each invocation with the next event of its process.
pub(crate) fn pair(events: &[Event], clock: Clock) -> Vec<Paired<'_>> {
    let at = |pos: usize, e: &Event| match clock {
        Clock::Time => e.time,
        Clock::Position => pos as u64,
    };
    let mut open: HashMap<&Process, usize> = HashMap::new();
    let mut out: Vec<Paired<'_>> = Vec::new();
    for (pos, e) in events.iter().enumerate() {
        if is_nemesis(&e.process) {
            continue;
        }
        if e.kind == EventType::Invoke {
            open.insert(&e.process, out.len());
            out.push(Paired {
                invoke: e,
                done: None,
                call: at(pos, e),
                ret: u64::MAX,
            });
        } else if let Some(i) = open.remove(&e.process) {
            out[i].done = Some(e);
            // A failed op has an end too: only the strict cas register keeps
            // failed ops (its cas), and it needs their interval.
            out[i].ret = if e.kind == EventType::Ok || e.kind == EventType::Fail {
                at(pos, e)
            } else {
                u64::MAX
            };
        }
    }
    out
}

fn key_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn pair_of(v: &Value) -> Option<(&Value, &Value)> {
    match v.as_array()?.as_slice() {
        [a, b] => Some((a, b)),
        _ => None,
    }
}

/// A cas-register operation from a Jepsen op: its key (`""` unless
/// independent), input, and for an ok read the value read.
fn jepsen_register(p: &Paired<'_>) -> Result<(String, CasOp<Value>, Option<Value>), ()> {
    let f = p.invoke.f.as_str();
    let invoke = &p.invoke.value;
    let non_null = |v: &Value| (!v.is_null()).then(|| v.clone()).ok_or(());
    match f {
        "read" => {
            let (key, read) = match pair_of(invoke) {
                Some((k, _)) => {
                    let read = p.ok_value().map(|v| pair_of(v).map_or(v, |(_, v)| v));
                    (key_string(k), read)
                }
                None => (String::new(), p.ok_value()),
            };
            Ok((key, CasOp::Read, read.filter(|v| !v.is_null()).cloned()))
        }
        "write" => match pair_of(invoke) {
            Some((k, v)) => Ok((key_string(k), CasOp::Write(non_null(v)?), None)),
            None => Ok((String::new(), CasOp::Write(non_null(invoke)?), None)),
        },
        "cas" => {
            let (a, b) = pair_of(invoke).ok_or(())?;
            let (key, (old, new)) = match pair_of(b) {
                Some(old_new) => (key_string(a), old_new),
                None => (String::new(), (a, b)),
            };
            let cas = CasOp::Cas {
                expected: non_null(old)?,
                new: non_null(new)?,
            };
            Ok((key, cas, None))
        }
        _ => Err(()),
    }
}

/// Registers (`cas: false`: cas is not an operation of the model, and a history
/// with one cannot be read) and cas registers, per key; every `fail` is left
/// out. `nil_unknown`: an `ok` read of `nil` read some unknown value (Knossos's
/// reading) rather than an empty register.
pub(crate) fn jepsen_registers(
    events: &[Event],
    cas: bool,
    nil_unknown: bool,
) -> Converted<CasOp<Value>, Option<Value>> {
    registers(events, cas, nil_unknown, |read| read, None)
}

/// Strict cas registers, per key: as [`jepsen_registers`] with cas, but a
/// failed cas is kept, with the output [`CasReply::CompareFailed`]. One that
/// cannot be read is unreadable (its observation is lost), not left out.
pub(crate) fn jepsen_strict_cas_registers(
    events: &[Event],
    nil_unknown: bool,
) -> Converted<CasOp<Value>, CasReply<Value>> {
    registers(
        events,
        true,
        nil_unknown,
        CasReply::Done,
        Some(CasReply::CompareFailed),
    )
}

/// The register converters: `done` makes the output of an `ok` op from the
/// value it read (`None` but for reads); `failed_cas` is the output of a cas
/// that ended `fail`, or `None` to leave it out like every other `fail`.
fn registers<O: Clone>(
    events: &[Event],
    cas: bool,
    nil_unknown: bool,
    done: impl Fn(Option<Value>) -> O,
    failed_cas: Option<O>,
) -> Converted<CasOp<Value>, O> {
    let mut s = Sorter::new();
    for p in pair(events, Clock::choose(events)) {
        let f = p.invoke.f.as_str();
        if !matches!(f, "read" | "write" | "cas") {
            s.ignore(f);
            continue;
        }
        let kind = p.kind();
        let failed = match &failed_cas {
            Some(output) if kind == EventType::Fail && f == "cas" => Some(output.clone()),
            _ if kind == EventType::Fail => {
                s.out.failed += 1;
                continue;
            }
            _ => None,
        };
        let parsed = jepsen_register(&p)
            .ok()
            .filter(|(_, op, _)| cas || !matches!(op, CasOp::Cas { .. }));
        let Some((key, input, read)) = parsed else {
            s.out.unreadable.push(p.invoke.index);
            continue;
        };
        let output = match kind {
            // A read of nil whose value is unknown constrains nothing.
            EventType::Ok if nil_unknown && input == CasOp::Read && read.is_none() => None,
            EventType::Ok => Some(done(read)),
            EventType::Fail => failed,
            _ => None,
        };
        s.push(
            key,
            Operation {
                id: p.invoke.index,
                process: p.invoke.process.clone(),
                call: p.call,
                ret: p.ret,
                input,
                output,
            },
        );
    }
    s.finish()
}

/// A transaction, as the multi-register reads it.
type Txn = Vec<Micro<Value>>;

/// A transaction of a history.
type TxnOperation = Operation<Txn, TxnReads<Value>>;

/// A micro-operation `[f k v]`: `f` the function (`r`/`read` or
/// `w`/`write`), `k` the key and `v` the value.
fn micro_op(v: &Value) -> Option<(&str, &Value, &Value)> {
    match v.as_array()?.as_slice() {
        [f, k, v] => Some((f.as_str()?, k, v)),
        _ => None,
    }
}

/// A transaction as the multi-register reads it: from the completion's value
/// when it completed `ok` (its reads filled in), else from the invocation's;
/// with, for an `ok` one, what each read returned (`nil_unknown`: a read of
/// `nil` read an unknown value, else an empty register).
fn txn_of(
    p: &Paired<'_>,
    keys: &mut Clients,
    nil_unknown: bool,
) -> Option<(Txn, Option<TxnReads<Value>>)> {
    let invoked = p.invoke.value.as_array()?;
    let ok = p.ok_value().filter(|v| !v.is_null());
    let micros = match ok {
        Some(v) => v.as_array()?,
        None => invoked,
    };
    // The completion must be the transaction invoked, reads filled in.
    if micros.len() != invoked.len() {
        return None;
    }
    let mut txn = Vec::with_capacity(micros.len());
    let mut reads = Vec::with_capacity(micros.len());
    for (m, asked) in micros.iter().zip(invoked) {
        let (f, k, v) = micro_op(m)?;
        let (f_asked, k_asked, _) = micro_op(asked)?;
        if f != f_asked || k != k_asked {
            return None;
        }
        let key = keys.of(key_string(k));
        match f {
            // Jepsen's txn tests write :r and :w, Knossos's own model :read
            // and :write.
            "r" | "read" => {
                txn.push(Micro::Read(key));
                reads.push(match v {
                    Value::Null if nil_unknown => None,
                    Value::Null => Some(None),
                    v => Some(Some(v.clone())),
                });
            }
            "w" | "write" if !v.is_null() => {
                txn.push(Micro::Write(key, v.clone()));
                reads.push(None);
            }
            _ => return None,
        }
    }
    Some((txn, ok.is_some().then_some(reads)))
}

/// Finds the class of `k`, halving paths on the way.
fn root(parent: &mut [u32], mut k: u32) -> u32 {
    while parent[k as usize] != k {
        let up = parent[parent[k as usize] as usize];
        parent[k as usize] = up;
        k = up;
    }
    k
}

/// Knossos's multi-register: `txn` operations over several registers.
///
/// A history is split into the smallest groups of keys no transaction spans:
/// per key when every transaction touches one key, one partition for all the
/// keys when transactions tie them all together. Splitting there is sound:
/// the keys of a group are one object, touched by no operation of another
/// group, and linearizability is local. A partition is named by its keys,
/// joined with `+`.
pub(crate) fn jepsen_multi_registers(
    events: &[Event],
    nil_unknown: bool,
) -> Converted<Txn, TxnReads<Value>> {
    let mut out = Converted::default();
    let mut keys = Clients::default();
    let mut ops = Vec::new();
    for p in pair(events, Clock::choose(events)) {
        let f = p.invoke.f.as_str();
        if f != "txn" {
            *out.ignored.entry(f.to_owned()).or_default() += 1;
            continue;
        }
        let kind = p.kind();
        if kind == EventType::Fail {
            out.failed += 1;
            continue;
        }
        let Some((input, reads)) = txn_of(&p, &mut keys, nil_unknown) else {
            out.unreadable.push(p.invoke.index);
            continue;
        };
        if input.is_empty() {
            // An empty transaction says nothing.
            continue;
        }
        ops.push(Operation {
            id: p.invoke.index,
            process: p.invoke.process.clone(),
            call: p.call,
            ret: p.ret,
            input,
            output: if kind == EventType::Ok { reads } else { None },
        });
    }
    // Keys a transaction touches together are one object.
    let mut parent: Vec<u32> = (0..keys.names.len() as u32).collect();
    for op in &ops {
        let first = op.input[0].key();
        for m in &op.input[1..] {
            let (a, b) = (root(&mut parent, first), root(&mut parent, m.key()));
            if a != b {
                parent[a.max(b) as usize] = a.min(b);
            }
        }
    }
    let mut groups: BTreeMap<u32, Vec<TxnOperation>> = BTreeMap::new();
    for op in ops {
        let group = root(&mut parent, op.input[0].key());
        groups.entry(group).or_default().push(op);
    }
    let mut members: BTreeMap<u32, Vec<&str>> = BTreeMap::new();
    for k in 0..keys.names.len() as u32 {
        let group = root(&mut parent, k);
        members
            .entry(group)
            .or_default()
            .push(&keys.names[k as usize]);
    }
    let mut partitions: Vec<Partition<_, _>> = groups
        .into_iter()
        .map(|(group, ops)| {
            let mut names = members[&group].clone();
            names.sort_unstable();
            Partition {
                key: names.join("+"),
                ops,
            }
        })
        .collect();
    partitions.sort_by(|a, b| a.key.cmp(&b.key));
    out.partitions = partitions;
    out.keys = keys.names;
    out
}

/// The lock an event names: `{lock}` or `[lock v]`, else `""`.
fn lock_of(v: &Value) -> String {
    match v {
        Value::Object(m) => m.get("lock").map(key_string).unwrap_or_default(),
        Value::Array(_) => pair_of(v).map(|(k, _)| key_string(k)).unwrap_or_default(),
        _ => String::new(),
    }
}

/// Plain mutexes (Knossos's), per lock.
pub(crate) fn jepsen_mutexes(events: &[Event]) -> Converted<MutexOp, ()> {
    let mut s = Sorter::new();
    for p in pair(events, Clock::choose(events)) {
        let input = match p.invoke.f.as_str() {
            "acquire" => MutexOp::Acquire,
            "release" => MutexOp::Release,
            f => {
                s.ignore(f);
                continue;
            }
        };
        let kind = p.kind();
        if kind == EventType::Fail {
            s.out.failed += 1;
            continue;
        }
        s.push(
            lock_of(&p.invoke.value),
            Operation {
                id: p.invoke.index,
                process: p.invoke.process.clone(),
                call: p.call,
                ret: p.ret,
                input,
                output: (kind == EventType::Ok).then_some(()),
            },
        );
    }
    s.finish()
}

fn token_in(v: Option<&Value>) -> Option<u64> {
    let v = v?;
    v.as_u64().or_else(|| v.get("token")?.as_u64())
}

fn ms_in(v: Option<&Value>, names: &[&str]) -> Option<u64> {
    let v = v?;
    names.iter().find_map(|n| v.get(*n)?.as_u64())
}

/// Fenced mutexes per lock from events: owners are nodes (the process when an
/// event names no node); tokens come from the values (a number or `{token}`);
/// leases from `lease_ms` (ok replies) or `ttl_ms` (invocations), counted in ns
/// of the events' `time`. `clock` is forced to [`Clock::Time`] for leasehold's
/// histories; with positions, leases are ignored.
pub(crate) fn fenced_mutexes(events: &[Event], clock: Clock) -> Converted<LockOp, Option<u64>> {
    let mut s = Sorter::new();
    let mut clients = Clients::default();
    let paired = pair(events, clock);
    let leases = clock == Clock::Time;
    let mut lease_of: HashMap<(String, u64), u64> = HashMap::new();
    for p in &paired {
        if p.invoke.f == "acquire"
            && let (Some(t), Some(l)) = (
                token_in(p.ok_value()),
                ms_in(p.ok_value(), &["lease_ms"]).or(ms_in(Some(&p.invoke.value), &["ttl_ms"])),
            )
        {
            lease_of.insert((lock_of(&p.invoke.value), t), l);
        }
    }
    for p in &paired {
        let f = p.invoke.f.as_str();
        if !matches!(f, "acquire" | "renew" | "release") {
            s.ignore(f);
            continue;
        }
        let kind = p.kind();
        if kind == EventType::Fail {
            s.out.failed += 1;
            continue;
        }
        let known = kind == EventType::Ok;
        let mut lock = lock_of(&p.invoke.value);
        if lock.is_empty() {
            lock = p.ok_value().map(lock_of).unwrap_or_default();
        }
        let node = p.invoke.node.clone();
        let client = clients.of(node.unwrap_or_else(|| p.invoke.process.to_string()));
        let ok = p.ok_value();
        let invoke = Some(&p.invoke.value);
        let ttl_ns = |ms: Option<u64>| ms.filter(|_| leases).map(|l| l.saturating_mul(MS));
        let (input, output) = match f {
            "acquire" => {
                let ttl = ms_in(ok, &["lease_ms"]).or(ms_in(invoke, &["ttl_ms", "lease_ms"]));
                let ttl = if known || !leases {
                    ttl
                } else {
                    Some(ttl.unwrap_or(0))
                };
                (
                    LockOp::Acquire {
                        client,
                        sent: p.call,
                        done: p.ret,
                        ttl: ttl_ns(ttl),
                    },
                    token_in(ok),
                )
            }
            "renew" => {
                let token = token_in(invoke).or(token_in(ok));
                let mut ttl = ms_in(ok, &["lease_ms"]).or(ms_in(invoke, &["ttl_ms", "lease_ms"]));
                if known && ttl.is_none() {
                    ttl = token.and_then(|t| lease_of.get(&(lock.clone(), t)).copied());
                }
                (
                    LockOp::Renew {
                        client,
                        token,
                        sent: p.call,
                        ttl: ttl_ns(ttl),
                    },
                    token,
                )
            }
            _ => (
                LockOp::Release {
                    client,
                    token: token_in(invoke),
                },
                None,
            ),
        };
        s.push(
            lock,
            Operation {
                id: p.invoke.index,
                process: p.invoke.process.clone(),
                call: p.call,
                ret: p.ret,
                input,
                output: known.then_some(output),
            },
        );
    }
    let mut out = s.finish();
    out.clients = clients.names;
    out
}
