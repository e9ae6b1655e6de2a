//! What every check reads: the operations and, when storage kept one, the ledger.

use crate::ledger::LedgerEntry;
use crate::op::Op;

/// What the checks read: the paired operations and, when storage kept one, the
/// ledger. `None` for the ledger means "not available" (an external history),
/// which is not the same as an empty ledger.
#[derive(Clone, Copy, Debug)]
pub struct CheckInput<'a> {
    pub ops: &'a [Op],
    pub ledger: Option<&'a [LedgerEntry]>,
}
