//! The checker of leasehold: the history model and every safety check.
//!
//! Everything here is pure and synchronous. The only I/O is reading a history or
//! ledger from a reader the caller opens, so checks can be property-tested fast and
//! reused by anyone holding a history.
//!
//! The flow is: [`read_history`] / [`read_ledger`] parse the files, [`History::ops`]
//! pairs invocations with completions into [`Op`]s, and [`check`] runs every property
//! and combines their verdicts.

mod check;
mod edn;
mod event;
mod fencing_order;
mod history;
mod input;
mod lease;
mod ledger;
mod linearizability;
mod lost_write;
mod margins;
mod mutual_exclusion;
mod op;
mod stale_write;
#[cfg(test)]
mod test_support;
mod token_order;
mod verdict;
mod writes;

pub use check::{CheckOptions, Checked, check, check_with};
pub use edn::{Edn, MAX_DEPTH as EDN_MAX_DEPTH, parse_edn, parse_edn_history, read_edn_history};
pub use event::{Event, EventType, Process};
pub use fencing_order::check_fencing_order;
pub use history::{History, HistoryError, read_history};
pub use input::CheckInput;
pub use lease::{Grant, Interval, Lease, Leases, TokenLeases};
pub use ledger::{Decision, LedgerEntry, read_ledger};
pub use linearizability::{
    Analysis, CasOp, CasRegister, CasReply, Counterexample, FencedMutex, Holder,
    IGNORED_SHARE_PERCENT, LimitHit, Limits, Linearizability, LockOp, LockState, Micro, Model,
    ModelKind, ModelOptions, MultiRegister, Mutex, MutexOp, NilRead, Operation, Partition,
    Register, RegisterOp, Registers, Stored, StrictCasRegister, TxnReads, UnknownModel,
    check_leasehold_linearizability, check_linearizability, check_linearizability_with,
    check_operations, check_partitions, combine_analyses,
};
pub use lost_write::{check_lost_writes, check_lost_writes_with_fencing};
pub use margins::{CLOSEST, Margin, MarginBucket, Margins, lease_margins};
pub use mutual_exclusion::check_mutual_exclusion;
pub use op::{Call, Op, Outcome};
pub use stale_write::{StaleWriteStats, check_stale_writes, check_stale_writes_with_stats};
pub use token_order::check_token_order;
pub use verdict::{Anomaly, Certainty, CheckReport, Judged, Validity};
