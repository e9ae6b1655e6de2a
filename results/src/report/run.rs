//! The "Run" section: seed, timings, counts, and how the run ended.

use maud::{Markup, html};

use super::text::Text;
use crate::results::Results;
use crate::summary::plural;

pub(super) fn run_section(r: &Results) -> Markup {
    let t = &r.timings;
    let c = &r.counts;
    let rows: [(&str, String); 7] = [
        ("seed", r.seed.to_string()),
        ("run id", r.run_id.clone()),
        ("started", r.started_at.clone()),
        ("runtime", r.runtime.clone()),
        ("timings", t.describe()),
        (
            "history",
            format!(
                "{} · {} · {}",
                plural(c.events, "event"),
                plural(c.ops, "operation"),
                plural(c.acquires_ok, "successful acquire")
            ),
        ),
        (
            "writes",
            format!(
                "{} accepted ({} stale) · {} rejected ({} stale)",
                c.writes_accepted, c.stale_accepted, c.writes_rejected, c.stale_rejected
            ),
        ),
    ];
    html! {
        section id="run" {
            h2 { "Run" }
            table class="kv" {
                @for (k, v) in &rows {
                    tr { th { (k) } td { (Text(v)) } }
                }
            }
            @if let Some(error) = &r.error {
                div class="box error" {
                    strong { "The run failed:" }
                    pre { (Text(error)) }
                }
            }
            @if r.interrupted {
                div class="box interrupted" {
                    "The run was interrupted: the checks cover only the part of the history recorded before it stopped."
                }
            }
        }
    }
}
