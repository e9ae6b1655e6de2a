//! The writes storage decided on, as the checks that judge storage's
//! decisions see them: from the ledger when there is one (decided at one
//! instant), else from the writes' replies in the history (decided somewhere
//! between invoke and reply; `info` writes left out).

use crate::input::CheckInput;
use crate::ledger::{Decision, LedgerEntry};
use crate::op::{Call, Outcome};

/// A write storage decided on (or, without a ledger, one whose reply says so).
pub(crate) struct Write<'a> {
    pub(crate) token: u64,
    pub(crate) key: &'a str,
    pub(crate) data: &'a str,
    /// Bounds of the moment storage decided.
    pub(crate) lower: u64,
    pub(crate) upper: u64,
    pub(crate) accepted: bool,
    /// Position in `ops` of a write judged by its reply (no ledger).
    pub(crate) op: Option<usize>,
    /// Position in the ledger, and the entry.
    pub(crate) ledger: Option<usize>,
    pub(crate) entry: Option<&'a LedgerEntry>,
}

pub(crate) fn accepted_and_rejected_writes<'a>(input: CheckInput<'a>) -> Vec<Write<'a>> {
    match input.ledger {
        Some(ledger) => ledger_writes(ledger),
        None => input
            .ops
            .iter()
            .enumerate()
            .filter_map(|(i, op)| {
                let Call::Write { key, token, data } = &op.call else {
                    return None;
                };
                let accepted = match op.outcome {
                    Outcome::Ok => true,
                    Outcome::Fail => false,
                    Outcome::Info => return None,
                };
                Some(Write {
                    token: *token,
                    key,
                    data,
                    lower: op.invoke_time,
                    upper: op.complete_time.unwrap_or(u64::MAX),
                    accepted,
                    op: Some(i),
                    ledger: None,
                    entry: None,
                })
            })
            .collect(),
    }
}

fn ledger_writes(ledger: &[LedgerEntry]) -> Vec<Write<'_>> {
    ledger
        .iter()
        .enumerate()
        .map(|(pos, e)| Write {
            token: e.token,
            key: &e.key,
            data: &e.data,
            lower: e.time,
            upper: e.time,
            accepted: e.decision == Decision::Accepted,
            op: None,
            ledger: Some(pos),
            entry: Some(e),
        })
        .collect()
}
