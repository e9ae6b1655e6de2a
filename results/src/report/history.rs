//! The "History" section: the events, cut in the middle when there are many.

use std::collections::HashSet;

use maud::{Markup, html};

use super::context::{Ctx, MAX_HISTORY_ROWS, shown_rows};
use super::text::{Text, compact, kind_str, truncate};
use crate::summary::plural;

/// A value cell longer than this is cut, to keep the table compact.
pub(super) const MAX_VALUE_CHARS: usize = 240;

pub(super) fn history_section(ctx: &Ctx<'_>, evidence: &HashSet<u64>) -> Markup {
    let total = ctx.events.len();
    html! {
        section id="history" {
            h2 { "History" }
            @if total == 0 {
                p { "No history was recorded." }
            } @else {
                @if total > MAX_HISTORY_ROWS {
                    p class="note" {
                        "Showing the first " (MAX_HISTORY_ROWS / 2) " and the last " (MAX_HISTORY_ROWS / 2)
                        " of " (total) " events; history.jsonl has them all."
                    }
                } @else {
                    p class="note" {
                        "All " (plural(total as u64, "event")) "; highlighted rows are cited above."
                    }
                }
                table class="history" {
                    tr {
                        th { "#" } th { "time (ms)" } th { "process" } th { "node" }
                        th { "type" } th { "f" } th { "value" } th { "error" }
                    }
                    @for row in shown_rows(ctx.events) {
                        @if let Some(e) = row {
                            tr id={ "e" (e.index) }
                                class={ (kind_str(e.kind)) @if evidence.contains(&e.index) { " evidence" } } {
                                td class="num" { (e.index) }
                                td class="num" { (format!("{:.3}", e.time as f64 / 1e6)) }
                                td { (Text(&e.process.to_string())) }
                                td { (Text(e.node.as_deref().unwrap_or(""))) }
                                td { (kind_str(e.kind)) }
                                td { (Text(&e.f)) }
                                td {
                                    code {
                                        @if !e.value.is_null() {
                                            (Text(&truncate(&compact(&e.value), MAX_VALUE_CHARS)))
                                        }
                                    }
                                }
                                td { (Text(e.error.as_deref().unwrap_or(""))) }
                            }
                        } @else {
                            tr class="cut" {
                                td colspan="8" { "… " (total - MAX_HISTORY_ROWS) " events not shown …" }
                            }
                        }
                    }
                }
            }
        }
    }
}
