//! The history, indexed for the story and the table.

use std::collections::{HashMap, HashSet};

use leasehold_checker::{Event, Leases, Op};
use maud::{Markup, html};

/// The history table shows at most this many events (half from the start, half
/// from the end): a browser stays usable, and `history.jsonl` has them all.
pub(super) const MAX_HISTORY_ROWS: usize = 2000;

/// The history, indexed for the story and the table.
pub(super) struct Ctx<'a> {
    pub(super) events: &'a [Event],
    pub(super) ops: &'a [Op],
    pub(super) leases: &'a Leases<'a>,
    pub(super) by_index: HashMap<u64, &'a Event>,
    /// History index of an invocation or completion → the invocation's index,
    /// which names the operation on the timeline.
    op_of: HashMap<u64, u64>,
    /// History indexes that the table shows, so links never dangle.
    shown: HashSet<u64>,
}

impl<'a> Ctx<'a> {
    pub(super) fn new(events: &'a [Event], ops: &'a [Op], leases: &'a Leases<'a>) -> Ctx<'a> {
        let by_index = events.iter().map(|e| (e.index, e)).collect();
        let shown = shown_rows(events)
            .into_iter()
            .flatten()
            .map(|e| e.index)
            .collect();
        let op_of = ops
            .iter()
            .flat_map(|op| {
                std::iter::once(op.invoke_index)
                    .chain(op.complete_index)
                    .map(|i| (i, op.invoke_index))
            })
            .collect();
        Ctx {
            events,
            ops,
            leases,
            by_index,
            op_of,
            shown,
        }
    }

    /// `#12` linking to the history row when it is shown.
    pub(super) fn link(&self, index: u64) -> Markup {
        html! {
            @if self.shown.contains(&index) {
                a class="ev" href={ "#e" (index) } { "#" (index) }
            } @else {
                span class="ev" { "#" (index) }
            }
        }
    }

    /// The invocation index of the operation that history event `index` is
    /// part of; `None` for an event of no operation (a nemesis event).
    pub(super) fn op_invoke(&self, index: u64) -> Option<u64> {
        self.op_of.get(&index).copied()
    }

    /// The invocation indexes of the operations these history events belong to,
    /// ascending, each once.
    pub(super) fn ops_of(&self, indexes: &[u64]) -> Vec<u64> {
        let mut ops: Vec<u64> = indexes.iter().filter_map(|&i| self.op_invoke(i)).collect();
        ops.sort_unstable();
        ops.dedup();
        ops
    }
}

/// A link showing operation `op` (an invocation index) on the timeline.
pub(super) fn timeline_link(op: u64) -> Markup {
    html! {
        a class="ev op" href={ "#op-" (op) } title="show this operation on the timeline" {
            "op " (op)
        }
    }
}

/// The first and last rows of the table; `None` between them marks the cut.
pub(super) fn shown_rows(events: &[Event]) -> Vec<Option<&Event>> {
    if events.len() <= MAX_HISTORY_ROWS {
        return events.iter().map(Some).collect();
    }
    let half = MAX_HISTORY_ROWS / 2;
    let mut rows: Vec<Option<&Event>> = events[..half].iter().map(Some).collect();
    rows.push(None);
    rows.extend(events[events.len() - half..].iter().map(Some));
    rows
}
