//! The history, indexed for the story and the table.

use std::collections::{HashMap, HashSet};

use leasehold_checker::{Event, Leases, Op};

/// The history table shows at most this many events (half from the start, half
/// from the end): a browser stays usable, and `history.jsonl` has them all.
pub(super) const MAX_HISTORY_ROWS: usize = 2000;

/// The history, indexed for the story and the table.
pub(super) struct Ctx<'a> {
    pub(super) events: &'a [Event],
    pub(super) ops: &'a [Op],
    pub(super) leases: &'a Leases<'a>,
    pub(super) by_index: HashMap<u64, &'a Event>,
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
        Ctx {
            events,
            ops,
            leases,
            by_index,
            shown,
        }
    }

    /// `#12` linking to the history row when it is shown.
    pub(super) fn link(&self, index: u64) -> String {
        if self.shown.contains(&index) {
            format!("<a class=\"ev\" href=\"#e{index}\">#{index}</a>")
        } else {
            format!("<span class=\"ev\">#{index}</span>")
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
