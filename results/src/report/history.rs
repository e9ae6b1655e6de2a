//! The "History" section: the events, cut in the middle when there are many.

use std::collections::HashSet;
use std::fmt::Write;

use super::context::{Ctx, MAX_HISTORY_ROWS, shown_rows};
use super::text::{compact, esc, kind_str, truncate};
use crate::summary::plural;

/// A value cell longer than this is cut, to keep the table compact.
pub(super) const MAX_VALUE_CHARS: usize = 240;

pub(super) fn history_section(h: &mut String, ctx: &Ctx<'_>, evidence: &HashSet<u64>) {
    h.push_str("<section id=\"history\">\n<h2>History</h2>\n");
    let total = ctx.events.len();
    if total == 0 {
        h.push_str("<p>No history was recorded.</p>\n</section>\n");
        return;
    }
    if total > MAX_HISTORY_ROWS {
        let _ = writeln!(
            h,
            "<p class=\"note\">Showing the first {half} and the last {half} of {total} events; history.jsonl has them all.</p>",
            half = MAX_HISTORY_ROWS / 2
        );
    } else {
        let _ = writeln!(
            h,
            "<p class=\"note\">All {}; highlighted rows are cited above.</p>",
            plural(total as u64, "event")
        );
    }
    h.push_str(
        "<table class=\"history\">\n<tr><th>#</th><th>time (ms)</th><th>process</th><th>node</th><th>type</th><th>f</th><th>value</th><th>error</th></tr>\n",
    );
    for row in shown_rows(ctx.events) {
        let Some(e) = row else {
            let _ = writeln!(
                h,
                "<tr class=\"cut\"><td colspan=\"8\">… {} events not shown …</td></tr>",
                total - MAX_HISTORY_ROWS
            );
            continue;
        };
        let mark = if evidence.contains(&e.index) {
            " evidence"
        } else {
            ""
        };
        let value = if e.value.is_null() {
            String::new()
        } else {
            truncate(&compact(&e.value), MAX_VALUE_CHARS)
        };
        let _ = writeln!(
            h,
            "<tr id=\"e{}\" class=\"{}{mark}\"><td class=\"num\">{}</td><td class=\"num\">{:.3}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td></tr>",
            e.index,
            kind_str(e.kind),
            e.index,
            e.time as f64 / 1e6,
            esc(&e.process.to_string()),
            esc(e.node.as_deref().unwrap_or("")),
            kind_str(e.kind),
            esc(&e.f),
            esc(&value),
            esc(e.error.as_deref().unwrap_or(""))
        );
    }
    h.push_str("</table>\n</section>\n");
}
