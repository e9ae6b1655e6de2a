//! The storage ledger: every decision the fenced storage made, in decision order.

use std::collections::HashMap;
use std::io::BufRead;

use serde::{Deserialize, Serialize};

use crate::history::{HistoryError, read_json_lines};
use crate::op::{Call, Op};

/// What the fenced storage did with a write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// It stored the write (with fencing: its token was at least the high-water
    /// token of the key).
    Accepted,
    /// Fencing refused it: its token was below the key's high-water token.
    Rejected,
}

/// One line of `ledger.jsonl`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    /// When storage decided, in nanoseconds since the run started (same clock as
    /// the history).
    pub time: u64,
    /// The key written.
    pub key: String,
    /// The fencing token the write carried.
    pub token: u64,
    /// The data written; unique per write of one writer.
    pub data: String,
    /// The node that sent the write.
    pub from: String,
    /// Whether storage accepted or rejected the write.
    pub decision: Decision,
    /// The highest token storage had seen for this key after this decision.
    pub high_water: u64,
    /// The storage node that decided, when a run has several.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

/// Reads `ledger.jsonl`; an error names the 1-based line.
pub fn read_ledger(reader: impl BufRead) -> Result<Vec<LedgerEntry>, HistoryError> {
    read_json_lines(reader)
}

/// Finds the history write behind a ledger entry, by `(from, data, token)`: the
/// ledger does not know history indexes, and a writer's data is unique per write.
/// When several ops match, the first invoked wins.
pub(crate) struct WriteOps<'a> {
    by_write: HashMap<(&'a str, &'a str, u64), usize>,
}

impl<'a> WriteOps<'a> {
    pub(crate) fn new(ops: &'a [Op]) -> Self {
        let mut by_write = HashMap::new();
        for (i, op) in ops.iter().enumerate() {
            if let (Some(node), Call::Write { token, data, .. }) = (&op.node, &op.call) {
                by_write
                    .entry((node.as_str(), data.as_str(), *token))
                    .or_insert(i);
            }
        }
        WriteOps { by_write }
    }

    /// Position in `ops` of the write that produced `entry`, if the history has it.
    pub(crate) fn find(&self, entry: &LedgerEntry) -> Option<usize> {
        self.by_write
            .get(&(entry.from.as_str(), entry.data.as_str(), entry.token))
            .copied()
    }
}
