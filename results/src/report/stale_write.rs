//! A stale write told as the story of the run, in time order: the grant, the
//! fault, the expiry, the next grant, the resume, the write.

use std::collections::HashSet;

use leasehold_checker::{Anomaly, Call, Certainty, Event, Op, Process};
use maud::{Markup, html};

use super::context::Ctx;
use super::story::links;
use super::text::Text;
use crate::summary::ms;

/// A line of a story: when, what, and the events behind it.
struct Step {
    time: u64,
    /// Keeps steps at the same instant in the order of the story.
    order: u8,
    class: &'static str,
    html: Markup,
    indexes: Vec<u64>,
}

/// The seed scenario, told from the history: who got the stale token, who froze
/// it, when the lease ran out, who got the next token and wrote, the resume, and
/// the write storage should have refused.
pub(super) fn stale_write_story(
    anomaly: &Anomaly,
    ctx: &Ctx<'_>,
    evidence: &mut HashSet<u64>,
) -> Markup {
    let Anomaly::StaleWrite {
        writer,
        token,
        accepted_at,
        lease_deadline,
        ops: cited,
        ..
    } = anomaly
    else {
        return html! {};
    };
    let (token, accepted_at) = (*token, *accepted_at);
    let cited: HashSet<u64> = cited.iter().copied().collect();
    let mut steps: Vec<Step> = Vec::new();

    // 1. The grant of the stale token.
    let stale_grant = stale_grant(ctx, token, writer, accepted_at, &cited);
    if let Some(op) = stale_grant {
        steps.push(grant_step(op, 0));
    }
    // 2. The fault that held the writer back, and its end.
    fault_steps(
        &mut steps,
        ctx,
        writer,
        token,
        stale_grant.map_or(0, op_time),
        accepted_at,
    );
    // 3. The lease runs out.
    if *lease_deadline > 0 && *lease_deadline < accepted_at {
        steps.push(Step {
            time: *lease_deadline,
            order: 2,
            class: "expiry",
            html: html! { b { (Text(writer)) } "'s lease on token " (token) " expires" },
            indexes: vec![],
        });
    }
    // 4. The next holder gets its token and writes.
    next_holder_steps(&mut steps, ctx, anomaly);
    // 5. The stale write: sent by the resumed writer, accepted by storage.
    stale_write_steps(&mut steps, ctx, anomaly);

    steps.sort_by_key(|s| (s.time, s.order));
    evidence.extend(cited.iter().copied());
    timeline(&steps, ctx, evidence)
}

/// The ok acquires and renews of `token`, in invocation order, from the leases.
fn grants_of<'c>(ctx: &Ctx<'c>, token: u64) -> Vec<&'c Op> {
    ctx.leases
        .token(token)
        .map(|t| t.grants().into_iter().map(|g| g.op).collect())
        .unwrap_or_default()
}

/// The grant of the stale token: the one the checker cited, else the writer's
/// last grant of that token before storage accepted, else the last grant.
fn stale_grant<'c>(
    ctx: &Ctx<'c>,
    token: u64,
    writer: &str,
    accepted_at: u64,
    cited: &HashSet<u64>,
) -> Option<&'c Op> {
    let grants = grants_of(ctx, token);
    let last = |f: &dyn Fn(&Op) -> bool| grants.iter().rev().find(|op| f(op)).copied();
    last(&|op| op_indexes(op).iter().any(|i| cited.contains(i)))
        .or_else(|| last(&|op| op.actor() == writer && op_time(op) <= accepted_at))
        .or_else(|| grants.last().copied())
}

fn grant_step(op: &Op, order: u8) -> Step {
    Step {
        time: op_time(op),
        order,
        class: "grant",
        html: grant_text(op),
        indexes: op_indexes(op),
    }
}

/// The fault that held the writer back after `after` (a pause that froze it,
/// a partition that cut it off from the lock service, or a packet fault that
/// held its write on the way), and its end.
fn fault_steps(
    steps: &mut Vec<Step>,
    ctx: &Ctx<'_>,
    writer: &String,
    token: u64,
    after: u64,
    accepted_at: u64,
) {
    let fault = ctx.events.iter().rfind(|e| {
        (is_nemesis(e, "pause") || is_nemesis(e, "partition") || is_nemesis(e, "packet"))
            && e.time >= after
            && e.time <= accepted_at
            && nemesis_nodes(e).is_some_and(|n| n.iter().any(|n| n == writer))
    });
    if let Some(p) = fault {
        let paused = p.f == "pause";
        let delayed = p.f == "packet";
        let cut_from: Vec<String> = p
            .value
            .get(if delayed { "links" } else { "grudge" })
            .and_then(|g| g.get(writer.as_str()))
            .and_then(|d| d.as_array())
            .map(|d| {
                d.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        let shape = p
            .value
            .get("shape")
            .and_then(|s| s.get("delay"))
            .and_then(|d| d.as_str())
            .unwrap_or("some time");
        let html = if paused {
            html! {
                "the nemesis pauses " b { (Text(writer)) }
                " (SIGSTOP): it cannot act nor notice time passing"
            }
        } else if delayed {
            html! {
                "the nemesis holds every packet between " b { (Text(writer)) } " and "
                (Text(&cut_from.join(", "))) " for " (Text(shape))
                " on the way: what it writes now lands that much later"
            }
        } else if cut_from.is_empty() {
            html! { "the nemesis partitions the network around " b { (Text(writer)) } }
        } else {
            html! {
                "the nemesis cuts " b { (Text(writer)) } " off from " (Text(&cut_from.join(", ")))
                ": its renewals go unanswered, but it can still reach storage"
            }
        };
        steps.push(Step {
            time: p.time,
            order: 1,
            class: "fault",
            html,
            indexes: vec![p.index],
        });
        let end_f = if paused {
            "resume"
        } else if delayed {
            "unpacket"
        } else {
            "heal"
        };
        let end = ctx.events.iter().find(|e| {
            is_nemesis(e, end_f)
                && e.time >= p.time
                && nemesis_nodes(e).is_none_or(|n| n.is_empty() || n.iter().any(|n| n == writer))
        });
        if let Some(r) = end {
            let html = if paused {
                html! {
                    "the nemesis resumes " b { (Text(writer)) }
                    " (SIGCONT): it still believes it holds token " (token)
                }
            } else if delayed {
                html! { "the nemesis stops holding the packets of " b { (Text(writer)) } }
            } else {
                html! { "the nemesis heals the partition around " b { (Text(writer)) } }
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
}

/// The next holder's grant and its first write with the new token.
fn next_holder_steps(steps: &mut Vec<Step>, ctx: &Ctx<'_>, anomaly: &Anomaly) {
    let Anomaly::StaleWrite {
        accepted_at,
        superseded_by,
        superseded_holder,
        ..
    } = anomaly
    else {
        return;
    };
    let accepted_at = *accepted_at;
    if let Some(next) = *superseded_by {
        if let Some(&op) = grants_of(ctx, next).first() {
            steps.push(grant_step(op, 3));
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
                    html: html! { (write_text(w)) " (accepted)" },
                    indexes: op_indexes(w),
                });
            }
        } else {
            let who = superseded_holder.as_deref().unwrap_or("another client");
            steps.push(Step {
                time: accepted_at,
                order: 3,
                class: "grant",
                html: html! {
                    "token " (next) " had been granted to " b { (Text(who)) }
                    " (its grant is not in the history)"
                },
                indexes: vec![],
            });
        }
    }
}

/// The stale write as the writer sent it, and storage's acceptance.
fn stale_write_steps(steps: &mut Vec<Step>, ctx: &Ctx<'_>, anomaly: &Anomaly) {
    let Anomaly::StaleWrite {
        certainty,
        writer,
        key,
        token,
        data,
        accepted_at,
        late_by_ns,
        superseded_by,
        ..
    } = anomaly
    else {
        return;
    };
    let (token, accepted_at) = (*token, *accepted_at);
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
            html: html! { (write_text(w)) " (sent)" },
            indexes: vec![w.invoke_index],
        });
    }
    let verb = match certainty {
        Certainty::Certain => "accepts",
        Certainty::Possible => "may have accepted",
    };
    let accepted = html! {
        "storage " (verb) " " b { (Text(writer)) } "'s write " (Text(&format!("{data:?}")))
        " to " (Text(&format!("{key:?}"))) " with token " (token)
        @if *late_by_ns > 0 {
            ", " (ms(*late_by_ns)) " after its lease expired"
        }
        @if let Some(next) = superseded_by {
            ", after token " (next) " had been granted"
        }
    };
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
}

/// The steps as an ordered list, each with links to its events and to their
/// operations on the timeline.
fn timeline(steps: &[Step], ctx: &Ctx<'_>, evidence: &mut HashSet<u64>) -> Markup {
    for s in steps {
        evidence.extend(s.indexes.iter().copied());
    }
    html! {
        ol class="timeline" {
            @for s in steps {
                li class=(s.class) {
                    span class="t" { (ms(s.time)) } " " (s.html)
                    @if !s.indexes.is_empty() { " " (links(&s.indexes, ctx)) }
                }
            }
        }
    }
}

/// `w1 acquires lock "L": token 33, lease 2000 ms (requested at 0.0 ms)`.
pub(super) fn grant_text(op: &Op) -> Markup {
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
    html! {
        b { (Text(&op.actor())) } " " (verb) " lock " (Text(&format!("{lock:?}")))
        ": token " b { (token) }
        @if let Some(lease) = lease {
            ", lease " (lease) " ms"
        }
        " (requested at " (ms(op.invoke_time)) ")"
    }
}

/// `w2 writes "w2-1" to "k" with token 34`.
pub(super) fn write_text(op: &Op) -> Markup {
    html! {
        b { (Text(&op.actor())) } " writes"
        @if let Call::Write { key, token, data } = &op.call {
            " " (Text(&format!("{data:?}"))) " to " (Text(&format!("{key:?}"))) " with token " (token)
        }
    }
}

/// When an operation's outcome was known: its completion, or its invocation.
pub(super) fn op_time(op: &Op) -> u64 {
    op.complete_time.unwrap_or(op.invoke_time)
}

pub(super) fn op_indexes(op: &Op) -> Vec<u64> {
    std::iter::once(op.invoke_index)
        .chain(op.complete_index)
        .collect()
}

pub(super) fn is_nemesis(e: &Event, f: &str) -> bool {
    e.f == f && matches!(&e.process, Process::Named(n) if n == "nemesis")
}

/// The nodes a nemesis event names: `{"nodes": [...]}` or a bare list.
pub(super) fn nemesis_nodes(e: &Event) -> Option<Vec<String>> {
    let list = e.value.get("nodes").unwrap_or(&e.value).as_array()?;
    Some(
        list.iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
    )
}
