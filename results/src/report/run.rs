//! The "Run" section: seed, timings, counts, and how the run ended.

use maud::{Markup, html};

use super::text::Text;
use crate::results::Results;
use crate::summary::plural;

pub(super) fn run_section(r: &Results, config: Option<&str>) -> Markup {
    let t = &r.timings;
    let c = &r.counts;
    let mut rows: Vec<(&str, String)> = vec![
        ("seed", r.seed.to_string()),
        ("run id", r.run_id.clone()),
        ("started", r.started_at.clone()),
        ("runtime", r.runtime.clone()),
    ];
    if let Some(l) = &r.lock_system {
        rows.push((
            "lock system",
            format!("{} {} · fencing token: {}", l.name, l.version, l.token),
        ));
    }
    if let Some(s) = &r.storage {
        let fencing = if s.fencing { "fenced" } else { "not fenced" };
        rows.push(("storage", format!("{} · {fencing}", s.service)));
    }
    rows.extend([
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
    ]);
    html! {
        section id="run" {
            h2 { "Run" }
            table class="kv" {
                @for (k, v) in &rows {
                    tr { th { (k) } td { (Text(v)) } }
                }
            }
            @if let Some(config) = config {
                details class="config" {
                    summary { "The config as run (config.yaml)" }
                    pre { (Text(config)) }
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
