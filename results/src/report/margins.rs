//! The "Near misses" section: how close each accepted write came to its
//! holder's lease deadline, in a valid run too, because a fenced run that
//! passed with writes landing 3 ms before their deadline is a warning.

use leasehold_checker::Margins;
use maud::{Markup, html};

use super::text::Text;
use crate::results::duration_text;

pub(super) fn margins_section(margins: Option<&Margins>) -> Markup {
    let Some(m) = margins else {
        return html! {};
    };
    let basis = if m.basis == "ledger" {
        "storage's decision time, from its ledger"
    } else {
        "the write's reply, the latest it may have landed"
    };
    let most = m
        .histogram
        .iter()
        .map(|b| b.count)
        .max()
        .unwrap_or(0)
        .max(1);
    html! {
        section id="margins" {
            h2 { "Near misses" }
            @if m.writes == 0 {
                p {
                    "No accepted write had a lease deadline to measure ("
                    (m.without_deadline) " without one)."
                }
            } @else {
                p {
                    "How long before its holder's lease deadline each of the " (m.writes)
                    " accepted writes landed (" (basis) "); negative: after it. Smallest "
                    (m.min_ms.map_or_else(|| "–".to_owned(), signed)) ", median "
                    (m.median_ms.map_or_else(|| "–".to_owned(), signed)) "."
                }
                table class="list" {
                    tr { th { "margin" } th { "writes" } th {} }
                    @for b in &m.histogram {
                        tr {
                            td { (Text(&b.label)) }
                            td class="num" { (b.count) }
                            td {
                                div class={ "bar " (if b.from_ms.is_none() { "late" } else { "ontime" }) }
                                    style={ "width:" (b.count * 100 / most) "%" } {}
                            }
                        }
                    }
                }
                h3 { "The closest calls" }
                table class="list" {
                    tr {
                        th { "margin" } th { "writer" } th { "key" } th { "data" }
                        th { "token" } th { "landed" } th { "deadline" }
                    }
                    @for c in &m.closest {
                        tr class=(if c.margin_ms < 0.0 { "late" } else { "ontime" }) {
                            td class="num" { (signed(c.margin_ms)) }
                            td { (Text(&c.writer)) }
                            td { (Text(&c.key)) }
                            td {
                                @if let Some(op) = c.op {
                                    a href={ "#e" (op) } { (Text(&c.data)) }
                                } @else {
                                    (Text(&c.data))
                                }
                            }
                            td class="num" { (c.token) }
                            td class="num" { (duration_text(c.landed_ns as f64 / 1e6)) }
                            td class="num" { (duration_text(c.deadline_ns as f64 / 1e6)) }
                        }
                    }
                }
            }
        }
    }
}

/// `3.1 ms before`, `1.5 s after`.
fn signed(ms: f64) -> String {
    if ms < 0.0 {
        format!("{} after", duration_text(-ms))
    } else {
        format!("{} before", duration_text(ms))
    }
}
