//! The "Run" section: seed, timings, counts, and how the run ended.

use std::fmt::Write;

use super::text::esc;
use crate::results::Results;
use crate::summary::plural;

pub(super) fn run_section(h: &mut String, r: &Results) {
    let t = &r.timings;
    let c = &r.counts;
    h.push_str("<section id=\"run\">\n<h2>Run</h2>\n<table class=\"kv\">\n");
    let rows: [(&str, String); 7] = [
        ("seed", r.seed.to_string()),
        ("run id", esc(&r.run_id)),
        ("started", esc(&r.started_at)),
        ("runtime", esc(&r.runtime)),
        ("timings", esc(&t.describe())),
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
    for (k, v) in rows {
        let _ = writeln!(h, "<tr><th>{k}</th><td>{v}</td></tr>");
    }
    h.push_str("</table>\n");
    if let Some(error) = &r.error {
        let _ = writeln!(
            h,
            "<div class=\"box error\"><strong>The run failed:</strong><pre>{}</pre></div>",
            esc(error)
        );
    }
    if r.interrupted {
        h.push_str(
            "<div class=\"box interrupted\">The run was interrupted: the checks cover only the part of the history recorded before it stopped.</div>\n",
        );
    }
    h.push_str("</section>\n");
}
