//! The "What happened" section: each anomaly told with the events that prove
//! it, and what fencing prevented.

use std::collections::HashSet;

use leasehold_checker::{Anomaly, Call, Event, Op, Outcome};
use maud::{Markup, html};

use super::context::{Ctx, timeline_link};
use super::counterexample::counterexample;
use super::mini::mini_timeline;
use super::stale_write::{op_time, stale_write_story};
use super::text::{Text, actor, compact, kind_str};
use crate::results::{Results, is_rejected_write};
use crate::summary::{ms, plural};

/// Stories told in full; further anomalies are listed by their explanation only.
pub(super) const MAX_STORIES: usize = 20;

/// Anomalies listed at all per check.
pub(super) const MAX_ANOMALIES: usize = 1000;

/// Rejected writes listed for a fenced run.
pub(super) const MAX_REJECTED_LISTED: usize = 200;

/// Tells every anomaly; returns the section and the history indexes cited, to
/// highlight them in the history table.
pub(super) fn story_section(r: &Results, ctx: &Ctx<'_>) -> (Markup, HashSet<u64>) {
    let mut evidence = HashSet::new();
    let mut told = 0usize;
    let any_anomaly = r.checks.iter().any(|c| !c.anomalies.is_empty());
    let mut checks = Vec::new();
    for check in r.checks.iter().filter(|c| !c.anomalies.is_empty()) {
        let mut anomalies = Vec::new();
        for anomaly in check.anomalies.iter().take(MAX_ANOMALIES) {
            anomalies.push(if told < MAX_STORIES {
                told += 1;
                tell(anomaly, ctx, &mut evidence)
            } else {
                html! { p class="explain brief" { (Text(&anomaly.explain())) } }
            });
        }
        checks.push(html! {
            h3 {
                (Text(&check.name)) " "
                span class={ "badge small " (check.validity.as_str()) } { (check.validity.as_str()) }
            }
            @for a in &anomalies { (a) }
            @if check.anomalies.len() > MAX_ANOMALIES {
                p class="note" {
                    "… and " (check.anomalies.len() - MAX_ANOMALIES)
                    " more anomalies, not listed here; see results.json."
                }
            }
        });
    }
    let section = html! {
        section id="story" {
            h2 { "What happened" }
            @if r.error.is_some() && r.checks.is_empty() {
                p { "The run failed before it could be checked; see the error above." }
            } @else if !any_anomaly {
                p {
                    "No check found an anomaly"
                    @if r.checks.is_empty() { " (no check ran)" }
                    "."
                }
            }
            @for c in &checks { (c) }
            (fenced_paragraph(r, ctx))
        }
    };
    (section, evidence)
}

/// The history indexes an anomaly names as its operations.
pub(super) fn anomaly_indexes(anomaly: &Anomaly) -> &[u64] {
    match anomaly {
        Anomaly::StaleWrite { ops, .. }
        | Anomaly::FencingOrder { ops, .. }
        | Anomaly::NonMonotonicToken { ops, .. }
        | Anomaly::DuplicateToken { ops, .. }
        | Anomaly::MutualExclusion { ops, .. }
        | Anomaly::LostWrite { ops, .. }
        | Anomaly::NonLinearizable { ops, .. } => ops,
    }
}

/// One anomaly: its explanation, the events that prove it, the operations
/// drawn on a small timeline, then any notes.
pub(super) fn tell(anomaly: &Anomaly, ctx: &Ctx<'_>, evidence: &mut HashSet<u64>) -> Markup {
    let class = if anomaly.is_certain() {
        "certain"
    } else {
        "possible"
    };
    let involved = ctx.ops_of(anomaly_indexes(anomaly));
    let mini = mini_timeline(ctx.events, ctx.ops, ctx.leases, &involved);
    let (steps, ledger): (Markup, &[usize]) = match anomaly {
        Anomaly::StaleWrite { ledger, .. } => (stale_write_story(anomaly, ctx, evidence), ledger),
        Anomaly::FencingOrder { ops, ledger, .. } | Anomaly::LostWrite { ops, ledger, .. } => {
            (evidence_list(ops, ctx, evidence), ledger)
        }
        Anomaly::NonMonotonicToken { ops, .. }
        | Anomaly::DuplicateToken { ops, .. }
        | Anomaly::MutualExclusion { ops, .. } => (evidence_list(ops, ctx, evidence), &[]),
        Anomaly::NonLinearizable {
            linearized,
            state,
            stuck_described,
            ops,
            ..
        } => (
            html! {
                (counterexample(linearized.len(), state, stuck_described))
                (evidence_list(ops, ctx, evidence))
            },
            &[],
        ),
    };
    html! {
        div class={ "anomaly " (class) } {
            p class="explain" { (Text(&anomaly.explain())) }
            (steps)
            (mini)
            (ledger_note(ledger))
        }
    }
}

/// Links to the history rows `indexes` and to their operations on the
/// timeline, each operation once.
pub(super) fn links(indexes: &[u64], ctx: &Ctx<'_>) -> Markup {
    html! {
        @for (n, &i) in indexes.iter().enumerate() {
            @if n > 0 { " " }
            (ctx.link(i))
        }
        @for op in ctx.ops_of(indexes) {
            " " (timeline_link(op))
        }
    }
}

/// The events an anomaly cites, one per line.
pub(super) fn evidence_list(indexes: &[u64], ctx: &Ctx<'_>, evidence: &mut HashSet<u64>) -> Markup {
    if indexes.is_empty() {
        return html! {};
    }
    evidence.extend(indexes.iter().copied());
    html! {
        ul class="evidence" {
            @for &i in indexes {
                @if let Some(e) = ctx.by_index.get(&i) {
                    li {
                        span class="t" { (ms(e.time)) } " " (describe(e)) " " (links(&[i], ctx))
                    }
                } @else {
                    li { "event #" (i) " (not in this history)" }
                }
            }
        }
    }
}

pub(super) fn ledger_note(ledger: &[usize]) -> Markup {
    if ledger.is_empty() {
        return html! {};
    }
    let lines: Vec<String> = ledger.iter().map(|l| (l + 1).to_string()).collect();
    html! {
        p class="note" { "Storage ledger: ledger.jsonl line " (lines.join(", ")) "." }
    }
}

/// `w3 ok write {"key":"k",…}` for an evidence line.
pub(super) fn describe(e: &Event) -> Markup {
    html! {
        b { (Text(&actor(e))) } " " (kind_str(e.kind)) " " (Text(&e.f))
        @if !e.value.is_null() {
            " " code { (Text(&compact(&e.value))) }
        }
        @if let Some(err) = &e.error {
            " — " (Text(err))
        }
    }
}

/// What fencing prevented: writes from expired holders that storage refused.
pub(super) fn fenced_paragraph(r: &Results, ctx: &Ctx<'_>) -> Markup {
    if r.counts.stale_rejected == 0 {
        return html! {};
    }
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
    html! {
        h3 { "Fencing" }
        p class="fenced" {
            "Storage rejected " (plural(r.counts.stale_rejected, "write"))
            " from expired holders: it had already seen a newer token, so the zombie writes did no harm."
        }
        @if !rejected.is_empty() {
            table class="list" {
                tr {
                    th { "time" } th { "writer" } th { "key" } th { "token" }
                    th { "data" } th { "storage said" } th { "event" }
                }
                @for op in rejected.iter().take(MAX_REJECTED_LISTED) {
                    @let (key, token, data) = match &op.call {
                        Call::Write { key, token, data } => (key.as_str(), token.to_string(), data.as_str()),
                        _ => ("", String::new(), ""),
                    };
                    @let error = op
                        .complete_index
                        .and_then(|i| ctx.by_index.get(&i))
                        .and_then(|e| e.error.as_deref())
                        .unwrap_or("");
                    tr {
                        td class="num" { (ms(op_time(op))) }
                        td { (Text(&op.actor())) }
                        td { (Text(key)) }
                        td class="num" { (token) }
                        td { (Text(data)) }
                        td { (Text(error)) }
                        td { (links(&[op.complete_index.unwrap_or(op.invoke_index)], ctx)) }
                    }
                }
            }
            @if rejected.len() > MAX_REJECTED_LISTED {
                p class="note" {
                    "… and " (rejected.len() - MAX_REJECTED_LISTED) " more rejected writes in the history."
                }
            }
        }
    }
}
