//! The "Nemesis" and "Nodes" sections: the schedule, the faults injected, the
//! nodes of the run.

use maud::{Markup, html};

use super::text::Text;
use crate::results::Results;
use crate::summary::ms;

pub(super) fn nemesis_section(r: &Results) -> Markup {
    let n = &r.nemesis;
    html! {
        section id="nemesis" {
            h2 { "Nemesis" }
            h3 { "Schedule" }
            @if n.schedule.is_empty() {
                p { "No faults were scheduled." }
            } @else {
                table class="list" {
                    tr { th { "at" } th { "fault" } th { "target" } th { "duration" } }
                    @for s in &n.schedule {
                        tr {
                            td class="num" { (s.at_ms) " ms" }
                            td { (Text(&s.f)) }
                            td { (Text(&s.target)) }
                            td class="num" { (s.duration_ms) " ms" }
                        }
                    }
                }
            }
            h3 { "Faults injected" }
            @if n.faults.is_empty() {
                p { "No fault was injected." }
            } @else {
                table class="list" {
                    tr {
                        th { "start" } th { "fault" } th { "target" } th { "nodes" }
                        th { "took effect after" } th { "ended" } th { "lasted" } th { "note" }
                    }
                    @for f in &n.faults {
                        @let latency = f.effective_ns.map_or("—".to_owned(), |e| {
                            format!("{:.0} µs", e.saturating_sub(f.start_ns) as f64 / 1e3)
                        });
                        @let (ended, lasted) = match f.end_ns {
                            Some(end) => (ms(end), ms(end.saturating_sub(f.start_ns))),
                            None => ("not recorded".to_owned(), "—".to_owned()),
                        };
                        tr {
                            td class="num" { (ms(f.start_ns)) }
                            td { (Text(&f.f)) }
                            td { (Text(&f.target)) }
                            td { (Text(&f.nodes.join(", "))) }
                            td class="num" { (latency) }
                            td class="num" { (ended) }
                            td class="num" { (lasted) }
                            td { (Text(f.note.as_deref().unwrap_or(""))) }
                        }
                    }
                }
            }
        }
    }
}

pub(super) fn nodes_section(r: &Results) -> Markup {
    if r.nodes.is_empty() {
        return html! {};
    }
    html! {
        section id="nodes" {
            h2 { "Nodes" }
            table class="list" {
                tr { th { "node" } th { "role" } th { "address" } }
                @for n in &r.nodes {
                    tr { td { (Text(&n.name)) } td { (Text(&n.role)) } td { (Text(&n.addr)) } }
                }
            }
        }
    }
}
