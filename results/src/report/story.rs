//! The "What happened" section: each anomaly told with the events that prove
//! it, and what fencing prevented.

use std::collections::HashSet;
use std::fmt::Write;

use leasehold_checker::{Anomaly, Call, Event, Op, Outcome};

use super::context::Ctx;
use super::counterexample::counterexample;
use super::stale_write::{op_time, stale_write_story};
use super::text::{actor, compact, esc, kind_str};
use crate::results::{Results, is_rejected_write};
use crate::summary::{ms, plural};

/// Stories told in full; further anomalies are listed by their explanation only.
pub(super) const MAX_STORIES: usize = 20;

/// Anomalies listed at all per check.
pub(super) const MAX_ANOMALIES: usize = 1000;

/// Rejected writes listed for a fenced run.
pub(super) const MAX_REJECTED_LISTED: usize = 200;

/// Tells every anomaly; returns the history indexes cited, to highlight them in
/// the history table.
pub(super) fn story_section(h: &mut String, r: &Results, ctx: &Ctx<'_>) -> HashSet<u64> {
    h.push_str("<section id=\"story\">\n<h2>What happened</h2>\n");
    let mut evidence = HashSet::new();
    let mut told = 0usize;
    let any_anomaly = r.checks.iter().any(|c| !c.anomalies.is_empty());

    if r.error.is_some() && r.checks.is_empty() {
        h.push_str("<p>The run failed before it could be checked; see the error above.</p>\n");
    } else if !any_anomaly {
        let _ = writeln!(
            h,
            "<p>No check found an anomaly{}.</p>",
            if r.checks.is_empty() {
                " (no check ran)"
            } else {
                ""
            }
        );
    }

    for check in r.checks.iter().filter(|c| !c.anomalies.is_empty()) {
        let _ = writeln!(
            h,
            "<h3>{} <span class=\"badge small {}\">{}</span></h3>",
            esc(&check.name),
            check.validity.as_str(),
            check.validity.as_str()
        );
        for anomaly in check.anomalies.iter().take(MAX_ANOMALIES) {
            if told < MAX_STORIES {
                told += 1;
                tell(h, anomaly, ctx, &mut evidence);
            } else {
                let _ = writeln!(
                    h,
                    "<p class=\"explain brief\">{}</p>",
                    esc(&anomaly.explain())
                );
            }
        }
        if check.anomalies.len() > MAX_ANOMALIES {
            let _ = writeln!(
                h,
                "<p class=\"note\">… and {} more anomalies, not listed here; see results.json.</p>",
                check.anomalies.len() - MAX_ANOMALIES
            );
        }
    }

    fenced_paragraph(h, r, ctx);
    h.push_str("</section>\n");
    evidence
}

/// One anomaly: its explanation, then the events that prove it.
pub(super) fn tell(h: &mut String, anomaly: &Anomaly, ctx: &Ctx<'_>, evidence: &mut HashSet<u64>) {
    let class = if anomaly.is_certain() {
        "certain"
    } else {
        "possible"
    };
    let _ = writeln!(
        h,
        "<div class=\"anomaly {class}\">\n<p class=\"explain\">{}</p>",
        esc(&anomaly.explain())
    );
    match anomaly {
        Anomaly::StaleWrite { .. } => stale_write_story(h, anomaly, ctx, evidence),
        Anomaly::FencingOrder { ops, ledger, .. } => {
            evidence_list(h, ops, ctx, evidence);
            ledger_note(h, ledger);
        }
        Anomaly::NonMonotonicToken { ops, .. } | Anomaly::DuplicateToken { ops, .. } => {
            evidence_list(h, ops, ctx, evidence);
        }
        Anomaly::MutualExclusion { ops, .. } => evidence_list(h, ops, ctx, evidence),
        Anomaly::NonLinearizable {
            linearized,
            state,
            stuck_described,
            ops,
            ..
        } => {
            counterexample(h, linearized.len(), state, stuck_described);
            evidence_list(h, ops, ctx, evidence);
        }
        Anomaly::LostWrite { ops, ledger, .. } => {
            evidence_list(h, ops, ctx, evidence);
            ledger_note(h, ledger);
        }
    }
    h.push_str("</div>\n");
}

/// The events an anomaly cites, one per line.
pub(super) fn evidence_list(
    h: &mut String,
    indexes: &[u64],
    ctx: &Ctx<'_>,
    evidence: &mut HashSet<u64>,
) {
    if indexes.is_empty() {
        return;
    }
    h.push_str("<ul class=\"evidence\">\n");
    for &i in indexes {
        evidence.insert(i);
        match ctx.by_index.get(&i) {
            Some(e) => {
                let _ = writeln!(
                    h,
                    "<li><span class=\"t\">{}</span> {} {}</li>",
                    ms(e.time),
                    describe(e),
                    ctx.link(i)
                );
            }
            None => {
                let _ = writeln!(h, "<li>event #{i} (not in this history)</li>");
            }
        }
    }
    h.push_str("</ul>\n");
}

pub(super) fn ledger_note(h: &mut String, ledger: &[usize]) {
    if !ledger.is_empty() {
        let lines: Vec<String> = ledger.iter().map(|l| (l + 1).to_string()).collect();
        let _ = writeln!(
            h,
            "<p class=\"note\">Storage ledger: ledger.jsonl line {}.</p>",
            lines.join(", ")
        );
    }
}

/// `w3 ok write {"key":"k",…}` for an evidence line.
pub(super) fn describe(e: &Event) -> String {
    let mut s = format!(
        "<b>{}</b> {} {}",
        esc(&actor(e)),
        kind_str(e.kind),
        esc(&e.f)
    );
    if !e.value.is_null() {
        s += &format!(" <code>{}</code>", esc(&compact(&e.value)));
    }
    if let Some(err) = &e.error {
        s += &format!(" — {}", esc(err));
    }
    s
}

/// What fencing prevented: writes from expired holders that storage refused.
pub(super) fn fenced_paragraph(h: &mut String, r: &Results, ctx: &Ctx<'_>) {
    if r.counts.stale_rejected == 0 {
        return;
    }
    let _ = writeln!(
        h,
        "<h3>Fencing</h3>\n<p class=\"fenced\">Storage rejected {} from expired holders: \
         it had already seen a newer token, so the zombie writes did no harm.</p>",
        plural(r.counts.stale_rejected, "write")
    );
    let rejected: Vec<&Op> = ctx
        .ops
        .iter()
        .filter(|op| {
            op.outcome == Outcome::Fail
                && op
                    .complete_index
                    .and_then(|i| ctx.by_index.get(&i))
                    .is_some_and(|e| is_rejected_write(e))
        })
        .collect();
    if rejected.is_empty() {
        return;
    }
    h.push_str(
        "<table class=\"list\">\n<tr><th>time</th><th>writer</th><th>key</th><th>token</th><th>data</th><th>storage said</th><th>event</th></tr>\n",
    );
    for op in rejected.iter().take(MAX_REJECTED_LISTED) {
        let (key, token, data) = match &op.call {
            Call::Write { key, token, data } => (key.as_str(), token.to_string(), data.as_str()),
            _ => ("", String::new(), ""),
        };
        let error = op
            .complete_index
            .and_then(|i| ctx.by_index.get(&i))
            .and_then(|e| e.error.as_deref())
            .unwrap_or("");
        let index = op.complete_index.unwrap_or(op.invoke_index);
        let _ = writeln!(
            h,
            "<tr><td class=\"num\">{}</td><td>{}</td><td>{}</td><td class=\"num\">{token}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            ms(op_time(op)),
            esc(&op.actor()),
            esc(key),
            esc(data),
            esc(error),
            ctx.link(index)
        );
    }
    h.push_str("</table>\n");
    if rejected.len() > MAX_REJECTED_LISTED {
        let _ = writeln!(
            h,
            "<p class=\"note\">… and {} more rejected writes in the history.</p>",
            rejected.len() - MAX_REJECTED_LISTED
        );
    }
}
