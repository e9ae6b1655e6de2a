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
//! (as the EDN reader converts them) under a [`ModelKind`] — Knossos's
//! `multi-register` ([`MultiRegister`], Jepsen `txn` ops) included — and
//! [`check_linearizability_with`] with the registers' initial value and Knossos's
//! reading of a `nil` read ([`ModelOptions`]). Operations of functions the
//! model does not know are named in the summary, and past
//! [`IGNORED_SHARE_PERCENT`] of the history they make a valid verdict unknown;
//! [`check_leasehold_linearizability`] checks leasehold's storage registers and
//! locks from paired operations. Their reports count as judged the operations
//! searched; one that searched nothing (no operation, or none known to have
//! happened) is unknown, never valid.

mod convert;
mod model;
mod models;
mod multi_register;
mod report;
mod run;
mod search;
mod types;

pub use model::Model;
pub use models::{
    CasOp, CasRegister, CasReply, FencedMutex, Holder, LockOp, LockState, Mutex, MutexOp, Register,
    RegisterOp, Stored, StrictCasRegister,
};
pub use multi_register::{Micro, MultiRegister, Registers, TxnReads};
pub use report::{
    IGNORED_SHARE_PERCENT, ModelKind, ModelOptions, NilRead, UnknownModel,
    check_leasehold_linearizability, check_linearizability, check_linearizability_with,
};
pub use run::{check_operations, check_partitions, combine_analyses};
pub use types::{
    Analysis, Counterexample, LimitHit, Limits, Linearizability, Operation, Partition,
};

#[cfg(test)]
mod tests;
