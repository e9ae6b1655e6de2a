//! `report.html`: the page a person opens after a run.
//!
//! One self-contained file: inline CSS, no JavaScript, no external URL of any kind,
//! so it opens from disk, from a CI artifact or on an air-gapped machine, and
//! cannot leak anything by loading a resource. Every string that came from the
//! history, the config or a node is escaped.
//!
//! Its heart is "What happened": each anomaly told as the story of the run in time
//! order (grant, pause, expiry, the next grant, resume, the stale write), because a
//! verdict alone does not convince anyone that a lock is broken.

use std::collections::{HashMap, HashSet};
use std::fmt::Write;

use leasehold_checker::{
    Anomaly, Call, Certainty, CheckReport, Event, EventType, History, Op, Outcome, Process,
    Validity,
};

use crate::results::{Results, is_rejected_write};
use crate::summary::{ms, plural};

/// The history table shows at most this many events (half from the start, half
/// from the end): a browser stays usable, and `history.jsonl` has them all.
const MAX_HISTORY_ROWS: usize = 2000;
/// Stories told in full; further anomalies are listed by their explanation only.
const MAX_STORIES: usize = 20;
/// Anomalies listed at all per check.
const MAX_ANOMALIES: usize = 1000;
/// Rejected writes listed for a fenced run.
const MAX_REJECTED_LISTED: usize = 200;
/// A value cell longer than this is cut, to keep the table compact.
const MAX_VALUE_CHARS: usize = 240;

/// Renders the whole report. `history` may be empty (a run that failed early, or a
/// report rebuilt without its history): the sections that need it then say so.
pub fn render_report(results: &Results, history: &[Event]) -> String {
    let ctx = Ctx::new(history);
    let mut h = String::with_capacity(64 * 1024 + history.len().min(MAX_HISTORY_ROWS) * 200);
    let badge = verdict_badge(results);

    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{} — {} — leasehold</title>\n<style>{CSS}</style>\n</head>\n<body>\n",
        esc(&results.test),
        badge.0
    );

    // Header: what was tested and the verdict, big.
    let _ = write!(
        h,
        "<header>\n<h1>{}</h1>\n<div class=\"badges\"><span class=\"badge {}\">{}</span>",
        esc(&results.test),
        badge.1,
        badge.0
    );
    if results.interrupted {
        h.push_str("<span class=\"badge interrupted\">INTERRUPTED</span>");
    }
    // The badge already says the verdict; the line under it says why.
    let headline = results.headline();
    let reason = headline.split_once(": ").map_or(&*headline, |(_, why)| why);
    let _ = write!(
        h,
        "</div>\n<p class=\"headline\">{}</p>\n</header>\n",
        esc(reason)
    );

    run_section(&mut h, results);
    let evidence = story_section(&mut h, results, &ctx);
    checks_section(&mut h, &results.checks);
    nemesis_section(&mut h, results);
    nodes_section(&mut h, results);
    history_section(&mut h, &ctx, &evidence);

    let _ = write!(
        h,
        "<footer>leasehold report · results schema {} · all times are since the start of the run</footer>\n</body>\n</html>\n",
        results.schema_version
    );
    h
}

/// The history, indexed for the story and the table.
struct Ctx<'a> {
    events: &'a [Event],
    ops: Vec<Op>,
    by_index: HashMap<u64, &'a Event>,
    /// History indexes that the table shows, so links never dangle.
    shown: HashSet<u64>,
}

impl<'a> Ctx<'a> {
    fn new(events: &'a [Event]) -> Ctx<'a> {
        let ops = History::new(events.to_vec()).ops();
        let by_index = events.iter().map(|e| (e.index, e)).collect();
        let shown = shown_rows(events)
            .into_iter()
            .flatten()
            .map(|e| e.index)
            .collect();
        Ctx {
            events,
            ops,
            by_index,
            shown,
        }
    }

    /// `#12` linking to the history row when it is shown.
    fn link(&self, index: u64) -> String {
        if self.shown.contains(&index) {
            format!("<a class=\"ev\" href=\"#e{index}\">#{index}</a>")
        } else {
            format!("<span class=\"ev\">#{index}</span>")
        }
    }
}

/// The first and last rows of the table; `None` between them marks the cut.
fn shown_rows(events: &[Event]) -> Vec<Option<&Event>> {
    if events.len() <= MAX_HISTORY_ROWS {
        return events.iter().map(Some).collect();
    }
    let half = MAX_HISTORY_ROWS / 2;
    let mut rows: Vec<Option<&Event>> = events[..half].iter().map(Some).collect();
    rows.push(None);
    rows.extend(events[events.len() - half..].iter().map(Some));
    rows
}

/// The badge text and its CSS class.
fn verdict_badge(results: &Results) -> (&'static str, &'static str) {
    if results.error.is_some() {
        return ("ERROR", "error");
    }
    match results.verdict {
        Validity::Valid => ("VALID", "valid"),
        Validity::Invalid => ("INVALID", "invalid"),
        Validity::Unknown => ("UNKNOWN", "unknown"),
    }
}

fn run_section(h: &mut String, r: &Results) {
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

/// Tells every anomaly; returns the history indexes cited, to highlight them in
/// the history table.
fn story_section(h: &mut String, r: &Results, ctx: &Ctx<'_>) -> HashSet<u64> {
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
fn tell(h: &mut String, anomaly: &Anomaly, ctx: &Ctx<'_>, evidence: &mut HashSet<u64>) {
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
        // Minimal arm so the workspace builds; the linearizability work may tell
        // a fuller story (prefix, state, stuck operations).
        Anomaly::NonLinearizable {
            linearized,
            state,
            stuck_described,
            ops,
            ..
        } => {
            // The counterexample: how far a legal order got, and what could
            // not come next from there.
            let _ = writeln!(
                h,
                "<p>The longest linearizable prefix has {} operation(s) and leaves the model in state <code>{}</code>. None of the operations that could come next fits:</p>\n<ul>",
                linearized.len(),
                esc(state)
            );
            for d in stuck_described {
                let _ = writeln!(h, "<li><code>{}</code></li>", esc(d));
            }
            h.push_str("</ul>\n");
            evidence_list(h, ops, ctx, evidence);
        }
        Anomaly::LostWrite { ops, ledger, .. } => {
            evidence_list(h, ops, ctx, evidence);
            ledger_note(h, ledger);
        }
    }
    h.push_str("</div>\n");
}

/// A line of a story: when, what (already HTML), and the events behind it.
struct Step {
    time: u64,
    /// Keeps steps at the same instant in the order of the story.
    order: u8,
    class: &'static str,
    html: String,
    indexes: Vec<u64>,
}

/// The seed scenario, told from the history: who got the stale token, who froze
/// it, when the lease ran out, who got the next token and wrote, the resume, and
/// the write storage should have refused.
fn stale_write_story(
    h: &mut String,
    anomaly: &Anomaly,
    ctx: &Ctx<'_>,
    evidence: &mut HashSet<u64>,
) {
    let Anomaly::StaleWrite {
        certainty,
        writer,
        key,
        token,
        data,
        accepted_at,
        lease_deadline,
        late_by_ns,
        superseded_by,
        superseded_holder,
        ops: cited,
        ledger,
    } = anomaly
    else {
        return;
    };
    let (writer, key, token, data, accepted_at) = (writer, key, *token, data, *accepted_at);
    let cited: HashSet<u64> = cited.iter().copied().collect();
    let mut steps: Vec<Step> = Vec::new();

    // 1. The grant of the stale token: prefer the op the checker cited, else the
    // writer's last grant of that token before storage accepted.
    let grants_of = |t: u64| {
        ctx.ops.iter().filter(move |op| {
            op.is_ok()
                && matches!(op.call,
                    Call::Acquire { token: Some(g), .. } | Call::Renew { token: g, .. } if g == t)
        })
    };
    let stale_grant = grants_of(token)
        .rfind(|op| op_indexes(op).iter().any(|i| cited.contains(i)))
        .or_else(|| {
            grants_of(token).rfind(|op| op.actor() == *writer && op_time(op) <= accepted_at)
        })
        .or_else(|| grants_of(token).next_back());
    if let Some(op) = stale_grant {
        steps.push(Step {
            time: op_time(op),
            order: 0,
            class: "grant",
            html: grant_text(op),
            indexes: op_indexes(op),
        });
    }
    let after = stale_grant.map_or(0, op_time);

    // 2. The fault that held the writer back (a pause that froze it, or a
    //    partition that cut it off from the lock service), and its end.
    let fault = ctx.events.iter().rfind(|e| {
        (is_nemesis(e, "pause") || is_nemesis(e, "partition"))
            && e.time >= after
            && e.time <= accepted_at
            && nemesis_nodes(e).is_some_and(|n| n.iter().any(|n| n == writer))
    });
    if let Some(p) = fault {
        let paused = p.f == "pause";
        let cut_from: Vec<String> = p
            .value
            .get("grudge")
            .and_then(|g| g.get(writer.as_str()))
            .and_then(|d| d.as_array())
            .map(|d| {
                d.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        let html = if paused {
            format!(
                "the nemesis pauses <b>{}</b> (SIGSTOP): it cannot act nor notice time passing",
                esc(writer)
            )
        } else if cut_from.is_empty() {
            format!(
                "the nemesis partitions the network around <b>{}</b>",
                esc(writer)
            )
        } else {
            format!(
                "the nemesis cuts <b>{}</b> off from {}: its renewals go unanswered, but it can still reach storage",
                esc(writer),
                esc(&cut_from.join(", "))
            )
        };
        steps.push(Step {
            time: p.time,
            order: 1,
            class: "fault",
            html,
            indexes: vec![p.index],
        });
        let end_f = if paused { "resume" } else { "heal" };
        let end = ctx.events.iter().find(|e| {
            is_nemesis(e, end_f)
                && e.time >= p.time
                && nemesis_nodes(e).is_none_or(|n| n.is_empty() || n.iter().any(|n| n == writer))
        });
        if let Some(r) = end {
            let html = if paused {
                format!(
                    "the nemesis resumes <b>{}</b> (SIGCONT): it still believes it holds token {token}",
                    esc(writer)
                )
            } else {
                format!(
                    "the nemesis heals the partition around <b>{}</b>",
                    esc(writer)
                )
            };
            steps.push(Step {
                time: r.time,
                order: 4,
                class: "fault",
                html,
                indexes: vec![r.index],
            });
        }
    }

    // 3. The lease runs out.
    if *lease_deadline > 0 && *lease_deadline < accepted_at {
        steps.push(Step {
            time: *lease_deadline,
            order: 2,
            class: "expiry",
            html: format!("<b>{}</b>'s lease on token {token} expires", esc(writer)),
            indexes: vec![],
        });
    }

    // 4. The next holder gets its token and writes.
    if let Some(next) = *superseded_by {
        if let Some(op) = grants_of(next).next() {
            steps.push(Step {
                time: op_time(op),
                order: 3,
                class: "grant",
                html: grant_text(op),
                indexes: op_indexes(op),
            });
            let next_write = ctx.ops.iter().find(|w| {
                w.is_ok()
                    && w.invoke_time >= op.invoke_time
                    && matches!(&w.call, Call::Write { token: t, .. } if *t == next)
            });
            if let Some(w) = next_write {
                steps.push(Step {
                    time: op_time(w),
                    order: 3,
                    class: "write",
                    html: format!("{} (accepted)", write_text(w)),
                    indexes: op_indexes(w),
                });
            }
        } else {
            let who = superseded_holder.as_deref().unwrap_or("another client");
            steps.push(Step {
                time: accepted_at,
                order: 3,
                class: "grant",
                html: format!(
                    "token {next} had been granted to <b>{}</b> (its grant is not in the history)",
                    esc(who)
                ),
                indexes: vec![],
            });
        }
    }

    // 5. The stale write: sent by the resumed writer, accepted by storage.
    let stale_write = ctx
        .ops
        .iter()
        .filter(|w| {
            w.actor() == *writer
                && matches!(&w.call, Call::Write { key: k, token: t, data: d }
                    if *t == token && k == key && d == data)
        })
        .find(|w| w.invoke_time <= accepted_at)
        .or_else(|| {
            ctx.ops.iter().find(|w| {
                matches!(&w.call, Call::Write { token: t, data: d, .. } if *t == token && d == data)
            })
        });
    if let Some(w) = stale_write {
        steps.push(Step {
            time: w.invoke_time,
            order: 5,
            class: "write",
            html: format!("{} (sent)", write_text(w)),
            indexes: vec![w.invoke_index],
        });
    }
    let verb = match certainty {
        Certainty::Certain => "accepts",
        Certainty::Possible => "may have accepted",
    };
    let mut accepted = format!(
        "storage {verb} <b>{}</b>'s write {} to {} with token {token}",
        esc(writer),
        esc(&format!("{data:?}")),
        esc(&format!("{key:?}"))
    );
    if *late_by_ns > 0 {
        accepted += &format!(", {} after its lease expired", ms(*late_by_ns));
    }
    if let Some(next) = superseded_by {
        accepted += &format!(", after token {next} had been granted");
    }
    steps.push(Step {
        time: accepted_at,
        order: 6,
        class: "stale",
        html: accepted,
        indexes: stale_write
            .and_then(|w| w.complete_index)
            .into_iter()
            .collect(),
    });

    steps.sort_by_key(|s| (s.time, s.order));
    h.push_str("<ol class=\"timeline\">\n");
    for s in &steps {
        let links: Vec<String> = s.indexes.iter().map(|&i| ctx.link(i)).collect();
        evidence.extend(s.indexes.iter().copied());
        let _ = writeln!(
            h,
            "<li class=\"{}\"><span class=\"t\">{}</span> {} {}</li>",
            s.class,
            ms(s.time),
            s.html,
            links.join(" ")
        );
    }
    h.push_str("</ol>\n");
    evidence.extend(cited.iter().copied());
    ledger_note(h, ledger);
}

/// `w1 acquires lock "L": token 33, lease 2000 ms (requested at 0.0 ms)`.
fn grant_text(op: &Op) -> String {
    let (verb, lock, token, lease) = match &op.call {
        Call::Acquire {
            lock,
            token,
            lease_ms,
        } => ("acquires", lock, token.unwrap_or_default(), *lease_ms),
        Call::Renew {
            lock,
            token,
            lease_ms,
        } => ("renews", lock, *token, *lease_ms),
        _ => ("is granted", &String::new(), 0, None),
    };
    let mut s = format!(
        "<b>{}</b> {verb} lock {}: token <b>{token}</b>",
        esc(&op.actor()),
        esc(&format!("{lock:?}"))
    );
    if let Some(lease) = lease {
        s += &format!(", lease {lease} ms");
    }
    s += &format!(" (requested at {})", ms(op.invoke_time));
    s
}

/// `w2 writes "w2-1" to "k" with token 34`.
fn write_text(op: &Op) -> String {
    match &op.call {
        Call::Write { key, token, data } => format!(
            "<b>{}</b> writes {} to {} with token {token}",
            esc(&op.actor()),
            esc(&format!("{data:?}")),
            esc(&format!("{key:?}"))
        ),
        _ => format!("<b>{}</b> writes", esc(&op.actor())),
    }
}

/// When an operation's outcome was known: its completion, or its invocation.
fn op_time(op: &Op) -> u64 {
    op.complete_time.unwrap_or(op.invoke_time)
}

fn op_indexes(op: &Op) -> Vec<u64> {
    std::iter::once(op.invoke_index)
        .chain(op.complete_index)
        .collect()
}

fn is_nemesis(e: &Event, f: &str) -> bool {
    e.f == f && matches!(&e.process, Process::Named(n) if n == "nemesis")
}

/// The nodes a nemesis event names: `{"nodes": [...]}` or a bare list.
fn nemesis_nodes(e: &Event) -> Option<Vec<String>> {
    let list = e.value.get("nodes").unwrap_or(&e.value).as_array()?;
    Some(
        list.iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
    )
}

/// The events an anomaly cites, one per line.
fn evidence_list(h: &mut String, indexes: &[u64], ctx: &Ctx<'_>, evidence: &mut HashSet<u64>) {
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

fn ledger_note(h: &mut String, ledger: &[usize]) {
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
fn describe(e: &Event) -> String {
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
fn fenced_paragraph(h: &mut String, r: &Results, ctx: &Ctx<'_>) {
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

fn checks_section(h: &mut String, checks: &[CheckReport]) {
    h.push_str("<section id=\"checks\">\n<h2>Checks</h2>\n");
    if checks.is_empty() {
        h.push_str("<p>No check ran.</p>\n</section>\n");
        return;
    }
    h.push_str(
        "<table class=\"list\">\n<tr><th>check</th><th>verdict</th><th>summary</th><th>anomalies</th><th>stats</th></tr>\n",
    );
    for c in checks {
        let stats: Vec<String> = c
            .stats
            .iter()
            .map(|(k, v)| format!("{}&nbsp;=&nbsp;{}", esc(k), esc(&compact(v))))
            .collect();
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td><span class=\"badge small {}\">{}</span></td><td>{}</td><td class=\"num\">{}</td><td class=\"stats\">{}</td></tr>",
            esc(&c.name),
            c.validity.as_str(),
            c.validity.as_str(),
            esc(&c.summary),
            c.anomalies.len(),
            stats.join("<br>")
        );
    }
    h.push_str("</table>\n</section>\n");
}

fn nemesis_section(h: &mut String, r: &Results) {
    let n = &r.nemesis;
    h.push_str("<section id=\"nemesis\">\n<h2>Nemesis</h2>\n<h3>Schedule</h3>\n");
    if n.schedule.is_empty() {
        h.push_str("<p>No faults were scheduled.</p>\n");
    } else {
        h.push_str(
            "<table class=\"list\">\n<tr><th>at</th><th>fault</th><th>target</th><th>duration</th></tr>\n",
        );
        for s in &n.schedule {
            let _ = writeln!(
                h,
                "<tr><td class=\"num\">{} ms</td><td>{}</td><td>{}</td><td class=\"num\">{} ms</td></tr>",
                s.at_ms,
                esc(&s.f),
                esc(&s.target),
                s.duration_ms
            );
        }
        h.push_str("</table>\n");
    }
    h.push_str("<h3>Faults injected</h3>\n");
    if n.faults.is_empty() {
        h.push_str("<p>No fault was injected.</p>\n");
    } else {
        h.push_str(
            "<table class=\"list\">\n<tr><th>start</th><th>fault</th><th>target</th><th>nodes</th>\
             <th>took effect after</th><th>ended</th><th>lasted</th><th>note</th></tr>\n",
        );
        for f in &n.faults {
            let latency = f.effective_ns.map_or("—".to_owned(), |e| {
                format!("{:.0} µs", e.saturating_sub(f.start_ns) as f64 / 1e3)
            });
            let (ended, lasted) = match f.end_ns {
                Some(end) => (ms(end), ms(end.saturating_sub(f.start_ns))),
                None => ("not recorded".to_owned(), "—".to_owned()),
            };
            let _ = writeln!(
                h,
                "<tr><td class=\"num\">{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{latency}</td>\
                 <td class=\"num\">{ended}</td><td class=\"num\">{lasted}</td><td>{}</td></tr>",
                ms(f.start_ns),
                esc(&f.f),
                esc(&f.target),
                esc(&f.nodes.join(", ")),
                esc(f.note.as_deref().unwrap_or(""))
            );
        }
        h.push_str("</table>\n");
    }
    h.push_str("</section>\n");
}

fn nodes_section(h: &mut String, r: &Results) {
    if r.nodes.is_empty() {
        return;
    }
    h.push_str(
        "<section id=\"nodes\">\n<h2>Nodes</h2>\n<table class=\"list\">\n<tr><th>node</th><th>role</th><th>address</th></tr>\n",
    );
    for n in &r.nodes {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&n.name),
            esc(&n.role),
            esc(&n.addr)
        );
    }
    h.push_str("</table>\n</section>\n");
}

fn history_section(h: &mut String, ctx: &Ctx<'_>, evidence: &HashSet<u64>) {
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

fn kind_str(k: EventType) -> &'static str {
    match k {
        EventType::Invoke => "invoke",
        EventType::Ok => "ok",
        EventType::Fail => "fail",
        EventType::Info => "info",
    }
}

fn actor(e: &Event) -> String {
    e.node
        .clone()
        .unwrap_or_else(|| format!("process {}", e.process))
}

fn compact(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s.to_owned(),
    }
}

/// Escapes text for HTML. `://` is broken up with a character reference (it renders
/// the same) so that no string from a node can ever form a URL in the file: the
/// report promises to hold no external address, whatever the history says.
fn esc(s: &str) -> String {
    html_escape::encode_text(s).replace("://", ":&#47;&#47;")
}

/// Print-friendly, readable without any external font or script.
const CSS: &str = r#"
:root { --valid: #1a7f37; --invalid: #cf222e; --unknown: #9a6700; --error: #6e40c9; --muted: #57606a; --line: #d0d7de; }
* { box-sizing: border-box; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0 auto; max-width: 80rem; padding: 1.5rem; color: #1f2328; line-height: 1.45; }
header { border-bottom: 2px solid var(--line); margin-bottom: 1rem; padding-bottom: 1rem; }
h1 { margin: 0 0 .5rem; font-size: 1.8rem; word-break: break-all; }
h2 { border-bottom: 1px solid var(--line); padding-bottom: .2rem; margin-top: 2rem; }
.badges { display: flex; gap: .6rem; align-items: center; }
.badge { display: inline-block; color: #fff; font-weight: 700; border-radius: .4rem; padding: .35rem 1.1rem; font-size: 1.6rem; letter-spacing: .05em; }
.badge.small { font-size: .75rem; padding: .1rem .5rem; text-transform: uppercase; vertical-align: middle; }
.badge.valid { background: var(--valid); } .badge.invalid { background: var(--invalid); }
.badge.unknown { background: var(--unknown); } .badge.error { background: var(--error); }
.badge.interrupted { background: var(--muted); font-size: 1rem; }
.headline { font-size: 1.15rem; margin: .6rem 0 0; }
table { border-collapse: collapse; margin: .5rem 0; }
th, td { border: 1px solid var(--line); padding: .25rem .5rem; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
table.kv th { width: 8rem; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.stats { font-size: .85rem; color: var(--muted); }
.box { border-radius: .4rem; padding: .6rem 1rem; margin: .8rem 0; }
.box.error { background: #fbefff; border: 1px solid var(--error); }
.box.interrupted { background: #f6f8fa; border: 1px solid var(--muted); }
pre { white-space: pre-wrap; margin: .3rem 0 0; }
.anomaly { border-left: 4px solid var(--invalid); padding: .2rem 1rem; margin: 1rem 0; background: #fff8f8; }
.anomaly.possible { border-left-color: var(--unknown); background: #fffbeb; }
.explain { font-weight: 600; }
.explain.brief { font-weight: normal; margin: .2rem 0; }
ol.timeline { list-style: none; padding-left: 0; }
ol.timeline li { padding: .15rem 0 .15rem .6rem; border-left: 3px solid var(--line); margin-left: .2rem; }
ol.timeline li.fault { border-left-color: var(--error); }
ol.timeline li.expiry { border-left-color: var(--unknown); }
ol.timeline li.stale { border-left-color: var(--invalid); font-weight: 600; }
.t { display: inline-block; min-width: 7rem; font-variant-numeric: tabular-nums; color: var(--muted); }
.ev { font-size: .8rem; color: var(--muted); }
.fenced { border-left: 4px solid var(--valid); padding: .4rem 1rem; background: #f0fff4; }
.note { color: var(--muted); font-size: .9rem; }
table.history { font-size: .8rem; width: 100%; }
table.history code { word-break: break-all; }
tr.fail td { color: #8c1d18; } tr.info td { color: var(--unknown); } tr.invoke td { color: var(--muted); }
tr.evidence td { background: #fff1b8; }
tr.cut td { text-align: center; font-style: italic; color: var(--muted); }
tr:target td { outline: 2px solid var(--invalid); }
footer { margin-top: 2rem; color: var(--muted); font-size: .8rem; }
"#;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::NodeSummary;
    use crate::test_support::{sample_results, seed_anomaly, seed_history, stale};
    use leasehold_checker::{Anomaly, CheckReport};

    fn invalid_run() -> Results {
        let mut r = sample_results(Validity::Invalid);
        r.counts.stale_accepted = 1;
        r.checks = vec![
            CheckReport {
                judged: leasehold_checker::Judged::new(1, "ops"),
                name: "stale-write".into(),
                validity: Validity::Invalid,
                summary: "1 of 3 accepted writes came from an expired holder".into(),
                anomalies: vec![seed_anomaly()],
                stats: Default::default(),
            },
            CheckReport {
                judged: leasehold_checker::Judged::new(1, "ops"),
                name: "fencing-order".into(),
                validity: Validity::Invalid,
                summary: "storage accepted 33 after 34".into(),
                anomalies: vec![Anomaly::FencingOrder {
                    key: "k".into(),
                    token: 33,
                    after_token: 34,
                    ops: vec![8, 11],
                    ledger: vec![1, 2],
                }],
                stats: Default::default(),
            },
        ];
        r.nodes = vec![NodeSummary {
            name: "w1".into(),
            role: "worker".into(),
            addr: "127.0.0.1:7001".into(),
        }];
        r
    }

    #[test]
    fn tells_the_seed_scenario() {
        let r = invalid_run();
        let html = render_report(&r, &seed_history(false));
        assert!(html.contains("<span class=\"badge invalid\">INVALID</span>"));
        for check in &r.checks {
            for a in &check.anomalies {
                assert!(html.contains(&esc(&a.explain())), "missing {}", a.explain());
            }
        }
        // The story, in time order.
        let story = &html[html.find("id=\"story\"").unwrap()..html.find("id=\"checks\"").unwrap()];
        let steps = [
            "<b>w1</b> acquires lock \"L\": token <b>33</b>, lease 2000 ms",
            "pauses <b>w1</b>",
            "<b>w1</b>'s lease on token 33 expires",
            "<b>w2</b> acquires lock \"L\": token <b>34</b>",
            "<b>w2</b> writes \"w2-1\" to \"k\" with token 34 (accepted)",
            "resumes <b>w1</b>",
            "<b>w1</b> writes \"w1-2\" to \"k\" with token 33 (sent)",
            "storage accepts <b>w1</b>'s write \"w1-2\" to \"k\" with token 33, 1502.0 ms after its lease expired",
        ];
        let mut at = 0;
        for step in steps {
            let found = story[at..]
                .find(step)
                .unwrap_or_else(|| panic!("{step:?} not after {at} in\n{story}"));
            at += found + step.len();
        }
        assert!(story.contains("<span class=\"t\">500.0 ms</span>"));
        assert!(story.contains("href=\"#e11\""));
        // Cited rows are highlighted.
        assert!(html.contains("<tr id=\"e11\" class=\"ok evidence\">"));
        assert!(html.contains("took effect after"));
        assert!(html.contains("85 µs"));
    }

    #[test]
    fn fenced_run_lists_rejected_writes() {
        let mut r = sample_results(Validity::Valid);
        r.counts.stale_rejected = 1;
        r.counts.writes_rejected = 1;
        r.checks = vec![CheckReport {
            judged: leasehold_checker::Judged::new(1, "ops"),
            name: "stale-write".into(),
            validity: Validity::Valid,
            summary: "no stale write accepted".into(),
            anomalies: vec![],
            stats: Default::default(),
        }];
        let html = render_report(&r, &seed_history(true));
        assert!(html.contains("<span class=\"badge valid\">VALID</span>"));
        assert!(html.contains("Storage rejected 1 write from expired holders"));
        assert!(html.contains("rejected: token 33 &lt; high water 34"));
        assert!(html.contains("<td>w1-2</td>"));
    }

    #[test]
    fn escapes_and_stays_offline() {
        let mut r = invalid_run();
        r.test = "t<i>".into();
        r.nodes[0].name = "<script>alert(1)</script>".into();
        r.error = Some("see https://example.com/x".into());
        let mut history = seed_history(false);
        history[2].node = Some("<script>x</script>".into());
        history[3].error = Some("dial http://10.0.0.1:2379 failed".into());
        r.checks[0]
            .anomalies
            .push(stale("<script>", 9, "</td>", 4000));
        let html = render_report(&r, &history);
        assert!(!html.contains("<script"), "unescaped script");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(html.contains("t&lt;i&gt;"));
        assert!(!html.contains("http://") && !html.contains("https://"));
        assert!(!html.contains("url("));
        assert!(html.contains("<span class=\"badge error\">ERROR</span>"));
    }

    #[test]
    fn long_histories_are_cut() {
        let base = seed_history(false);
        let history: Vec<Event> = (0..5000u64)
            .map(|i| {
                let mut e = base[(i % 12) as usize].clone();
                e.index = i;
                e.time = i * 1000;
                e
            })
            .collect();
        let html = render_report(&sample_results(Validity::Valid), &history);
        assert!(html.contains("Showing the first 1000 and the last 1000 of 5000 events"));
        assert!(html.contains("… 3000 events not shown …"));
        assert!(html.contains("id=\"e999\"") && !html.contains("id=\"e1000\""));
        assert!(html.contains("id=\"e4999\"") && html.contains("id=\"e4000\""));
    }

    #[test]
    fn renders_without_history_or_checks() {
        let html = render_report(&sample_results(Validity::Unknown), &[]);
        assert!(html.contains("No history was recorded."));
        assert!(html.contains("No check ran."));
        assert!(html.ends_with("</html>\n"));
    }
}
