//! Linearizability: a Wing–Gong–Lowe search with memoization, split per key.
//!
//! A history is *linearizable* under a [`Model`] when every operation can be
//! given an instant between its invocation and its completion such that, taken in
//! the order of those instants, the operations are a legal run of the model.
//!
//! # The search
//!
//! [`check_operations`] runs the search of Wing and Gong as improved by Lowe
//! ("Testing for linearizability"): operations are tried in every order real time
//! allows, depth first, and a point already visited — the same set of linearized
//! operations with the same model state — is never explored twice. Two additions
//! tame operations whose outcome is unknown, which otherwise make the search try
//! every subset of them: a point is also skipped when a visited one had the same
//! known operations and state and a subset of the unknown ones; and when the
//! depth-first search runs long (a history that is probably not linearizable),
//! it starts over in order of the number of unknown operations used, so that
//! each point is reached first with as few as possible. See `search.rs` for the
//! details. It stops at the [`Limits`] it is given and then answers
//! [`Linearizability::Unknown`] rather than running away.
//!
//! Real-time order: operation `a` precedes `b` when `a.ret < b.call`; operations
//! whose intervals only touch (`a.ret == b.call`) count as concurrent.
//!
//! # What happened, what did not, what may have
//!
//! - `ok` operations happened: their output is known and they must be
//!   linearized between invocation and completion.
//! - `fail` operations certainly did not happen: the converters leave them out
//!   before the search, except a failed cas under `cas-register-strict`, kept
//!   as a read of a value other than the expected one.
//! - `info` operations, and those never completed, *may* have happened at any
//!   moment after their invocation: their output is `None`, their `ret` is
//!   ignored, and the search may linearize them anywhere after their invocation
//!   or not at all. An unknown operation that never changes the state (a read)
//!   constrains nothing and is left out.
//!
//! # P-compositionality
//!
//! Linearizability is local: a history is linearizable if and only if each
//! object's sub-history is. [`check_partitions`] checks one partition per key
//! (registers) or per lock (mutexes) on a pool of threads and combines: any
//! partition not linearizable makes the whole invalid, else any unknown makes it
//! unknown, else it is valid.
//!
//! # Leases
//!
//! Real locks are leases: the lock frees itself when the holder stops renewing.
//! [`FencedMutex`] treats an acquire that may have been granted after the
//! holder's lease deadline (send time of its last acquire or renew plus the
//! lease) as an implicit release; without leases it is a strict owner-aware
//! mutex. A plain [`Mutex`] has no leases: on a history of lease locks it reports
//! a violation whenever a lease expired and someone else took the lock.
//!
//! # Histories
//!
//! [`check_linearizability`] reads leasehold's own events or Jepsen-style ones
//! (as the EDN reader converts them) under a [`ModelKind`];
//! [`check_leasehold_linearizability`] checks leasehold's storage registers and
//! locks from paired operations. Their reports count as judged the operations
//! searched; one that searched nothing (no operation, or none known to have
//! happened) is unknown, never valid.

mod convert;
mod model;
mod models;
mod report;
mod search;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::history::Process;
use crate::verdict::Validity;

pub use model::Model;
pub use models::{
    CasOp, CasRegister, CasReply, FencedMutex, Holder, LockOp, LockState, Mutex, MutexOp, Register,
    RegisterOp, Stored, StrictCasRegister,
};
pub use report::{ModelKind, UnknownModel, check_leasehold_linearizability, check_linearizability};

/// One operation of a history, as the search sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation<I, O> {
    /// History index of the invocation; counterexamples name operations by it.
    pub id: u64,
    pub process: Process,
    /// When it was invoked (ns, or any unit shared by the whole history).
    pub call: u64,
    /// When it completed; `u64::MAX` when it ended `info` or never completed.
    /// Ignored when `output` is `None`.
    pub ret: u64,
    pub input: I,
    /// What it returned; `None` when unknown (`info`, never completed): it may
    /// have taken effect at any moment after `call`, or never.
    pub output: Option<O>,
}

/// When to give up. `max_states` bounds the search points each partition may
/// visit (its memory, roughly 50 bytes plus a bit per operation each);
/// `deadline` bounds the wall-clock time of the whole check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub deadline: Option<Duration>,
    pub max_states: Option<usize>,
}

impl Limits {
    /// No limit at all: the search runs until it has an answer.
    pub const fn none() -> Self {
        Limits {
            deadline: None,
            max_states: None,
        }
    }
}

impl Default for Limits {
    /// Two minutes, and five million search points per partition (about a
    /// gigabyte for a partition of a thousand operations).
    fn default() -> Self {
        Limits {
            deadline: Some(Duration::from_secs(120)),
            max_states: Some(5_000_000),
        }
    }
}

/// Which limit stopped a search.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LimitHit {
    Deadline,
    MaxStates,
}

impl std::fmt::Display for LimitHit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LimitHit::Deadline => "time limit reached",
            LimitHit::MaxStates => "state limit reached",
        })
    }
}

/// The answer for one partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Linearizability {
    Linearizable,
    NotLinearizable(Counterexample),
    Unknown(LimitHit),
}

impl Linearizability {
    pub fn validity(&self) -> Validity {
        match self {
            Linearizability::Linearizable => Validity::Valid,
            Linearizability::NotLinearizable(_) => Validity::Invalid,
            Linearizability::Unknown(_) => Validity::Unknown,
        }
    }
}

/// Why a partition is not linearizable: the deepest point the search reached.
///
/// `linearized` is a linearization of part of the history — the longest the
/// search found, first reached — and `stuck` the operations that might have come
/// next by real time but that the model refuses after it. Every operation of
/// the partition not in `linearized` had to come after one of `stuck`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counterexample {
    /// The key or lock of the partition (`""` when the history was not split).
    pub partition: String,
    /// Operation ids (history indexes of invocations) in linearization order.
    pub linearized: Vec<u64>,
    /// The model's state after `linearized`.
    pub state: String,
    /// Operation ids that could not come next.
    pub stuck: Vec<u64>,
    /// One line per `stuck` operation, as the model describes it.
    pub stuck_described: Vec<String>,
}

/// The answer for one partition, with what the search cost.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Analysis {
    /// The key or lock (`""` for [`check_operations`]).
    pub partition: String,
    pub result: Linearizability,
    /// Operations searched (after leaving out unknown reads).
    pub ops: usize,
    /// Distinct (linearized set, state) points visited.
    pub states: usize,
    pub elapsed: Duration,
}

/// A partition of a history: the operations on one key or lock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Partition<I, O> {
    pub key: String,
    pub ops: Vec<Operation<I, O>>,
}

/// Checks one history (one object) against `model`.
pub fn check_operations<M: Model>(
    model: &M,
    ops: &[Operation<M::Input, M::Output>],
    limits: Limits,
) -> Analysis {
    let start = Instant::now();
    let deadline = limits.deadline.map(|d| start + d);
    analyse(model, "", ops, &limits, deadline, start)
}

fn analyse<M: Model>(
    model: &M,
    key: &str,
    ops: &[Operation<M::Input, M::Output>],
    limits: &Limits,
    deadline: Option<Instant>,
    start: Instant,
) -> Analysis {
    let searched = search::search(model, ops, limits, deadline, key);
    Analysis {
        partition: key.to_owned(),
        result: searched.result,
        ops: searched.ops,
        states: searched.states,
        elapsed: start.elapsed(),
    }
}

/// How many threads a search may use, asked once per process.
fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Checks each partition against `model`, in parallel on
/// min(partitions, available parallelism) threads; the analyses come back in the
/// order of `partitions`. The deadline of `limits` is shared by all partitions;
/// `max_states` applies to each.
pub fn check_partitions<M>(
    model: &M,
    partitions: &[Partition<M::Input, M::Output>],
    limits: Limits,
) -> Vec<Analysis>
where
    M: Model + Sync,
    M::Input: Sync,
    M::Output: Sync,
{
    let start = Instant::now();
    let deadline = limits.deadline.map(|d| start + d);
    // One partition needs no threads, and asking the system how many cores
    // there are (it reads cgroup files) costs more than a small search.
    let workers = if partitions.len() <= 1 {
        1
    } else {
        cores().min(partitions.len())
    };
    let run = |p: &Partition<M::Input, M::Output>| {
        analyse(model, &p.key, &p.ops, &limits, deadline, Instant::now())
    };
    if workers <= 1 {
        return partitions.iter().map(run).collect();
    }
    // Largest partitions first, so that one big partition does not start last.
    let mut order: Vec<usize> = (0..partitions.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(partitions[i].ops.len()));
    let next = AtomicUsize::new(0);
    let mut done: Vec<(usize, Analysis)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let k = next.fetch_add(1, Ordering::Relaxed);
                        let Some(&i) = order.get(k) else { break };
                        mine.push((i, run(&partitions[i])));
                    }
                    mine
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a linearizability worker panicked"))
            .collect()
    });
    done.sort_by_key(|&(i, _)| i);
    done.into_iter().map(|(_, a)| a).collect()
}

/// Invalid if any partition is not linearizable, else unknown if any search hit
/// a limit, else valid.
pub fn combine_analyses(analyses: &[Analysis]) -> Validity {
    analyses
        .iter()
        .fold(Validity::Valid, |v, a| v.combine(a.result.validity()))
}

#[cfg(test)]
mod tests;
