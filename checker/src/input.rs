//! What every check reads: the operations and, when storage kept one, the ledger.

use crate::ledger::LedgerEntry;
use crate::op::Op;

/// What the checks read: the paired operations and, when storage kept one, the
/// ledger. `None` for the ledger means "not available" (an external history),
/// which is not the same as an empty ledger.
#[derive(Clone, Copy, Debug)]
pub struct CheckInput<'a> {
    /// The client operations, in invocation order, as
    /// [`History::ops`](crate::History::ops) pairs them.
    pub ops: &'a [Op],
    /// Storage's decisions in decision order (`ledger.jsonl`); `None` when
    /// storage kept no ledger.
    pub ledger: Option<&'a [LedgerEntry]>,
}
