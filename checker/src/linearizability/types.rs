//! The vocabulary of the search: operations, partitions, limits and answers.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::event::Process;
use crate::verdict::Validity;

/// One operation of a history, as the search sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation<I, O> {
    /// History index of the invocation; counterexamples name operations by it.
    pub id: u64,
    /// The process that performed it.
    pub process: Process,
    /// When it was invoked (ns, or any unit shared by the whole history).
    pub call: u64,
    /// When it completed; `u64::MAX` when it ended `info` or never completed.
    /// Ignored when `output` is `None`.
    pub ret: u64,
    /// What it asked for, as the model reads it.
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
    /// Wall-clock time the check may take from its start, shared by all the
    /// partitions of [`check_partitions`](crate::check_partitions); `None`: no limit.
    pub deadline: Option<Duration>,
    /// Search points each partition may visit; `None`: no limit.
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum LimitHit {
    /// [`Limits::deadline`] passed.
    Deadline,
    /// The partition visited [`Limits::max_states`] search points.
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
    /// Some order that real time allows is a legal run of the model.
    Linearizable,
    /// No order is: the search tried them all, and this is how far it got.
    NotLinearizable(Counterexample),
    /// The search stopped at a limit before it had an answer.
    Unknown(LimitHit),
}

impl Linearizability {
    /// The answer as a verdict: valid, invalid or unknown.
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
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
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
    /// The key or lock (`""` for [`check_operations`](crate::check_operations)).
    pub partition: String,
    /// The answer.
    pub result: Linearizability,
    /// Operations searched (after leaving out unknown reads).
    pub ops: usize,
    /// Distinct (linearized set, state) points visited.
    pub states: usize,
    /// Wall-clock time the search of this partition took.
    pub elapsed: Duration,
}

/// A partition of a history: the operations on one key or lock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Partition<I, O> {
    /// The key or lock; it names the partition in analyses and counterexamples.
    pub key: String,
    /// The operations on it, in any order.
    pub ops: Vec<Operation<I, O>>,
}
