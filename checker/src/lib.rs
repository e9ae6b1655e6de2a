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
mod fencing_order;
mod history;
mod ledger;
mod op;
mod stale_write;
#[cfg(test)]
mod test_support;
mod token_order;
mod verdict;

pub use check::{CheckInput, Checked, check};
pub use fencing_order::check_fencing_order;
pub use history::{Event, EventType, History, HistoryError, Process, read_history};
pub use ledger::{Decision, LedgerEntry, read_ledger};
pub use op::{Call, Op, Outcome};
pub use stale_write::{StaleWriteStats, check_stale_writes, check_stale_writes_with_stats};
pub use token_order::check_token_order;
pub use verdict::{Anomaly, Certainty, CheckReport, Validity};
