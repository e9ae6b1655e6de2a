//! The mini timeline under an anomaly's story: only the operations it names,
//! on the lanes of their processes, with their holders' leases and the faults
//! in force around them.
//!
//! It is a small static SVG (no script), so the story reads on its own, in
//! print and with scripts off; each bar links to the same operation on the
//! interactive timeline (`#op-N`) for the context around it.

use std::collections::{HashMap, HashSet};

use leasehold_checker::{Call, Event, Leases, Op};
use maud::{Markup, html};

use super::plots::{ms_label, ticks};
use super::text::Text;
use super::timeline::{
    LaneKey, history_end, kind_of, lanes, ms_text, nemesis_periods, outcome_class,
};

const W: f64 = 720.0;
const LEFT: f64 = 96.0;
const RIGHT: f64 = W - 14.0;
const TOP: f64 = 6.0;
const LANE_H: f64 = 24.0;
const BAR_H: f64 = 12.0;
const LEASE_Y: f64 = 16.0;
const LEASE_H: f64 = 4.0;
const AXIS_H: f64 = 30.0;

fn fill(outcome: &str) -> &'static str {
    match outcome {
        "ok" => "#2da44e",
        "fail" => "#e16f24",
        _ => "#8c959f",
    }
}

fn f1(v: f64) -> String {
    format!("{v:.1}")
}

/// The token an operation names, if any.
fn token_of(op: &Op) -> Option<u64> {
    match &op.call {
        Call::Acquire { token, .. } => *token,
        Call::Renew { token, .. } | Call::Release { token, .. } | Call::Write { token, .. } => {
            Some(*token)
        }
        Call::Read { value, .. } => value.as_ref().map(|(t, _)| *t),
        Call::Other { .. } => None,
    }
}

/// The few words next to a bar: "write t3", "acquire → t4".
fn short(op: &Op) -> String {
    match &op.call {
        Call::Acquire { token: Some(t), .. } => format!("acquire → t{t}"),
        Call::Read { .. } | Call::Other { .. } | Call::Acquire { .. } => kind_of(op).to_owned(),
        _ => match token_of(op) {
            Some(t) => format!("{} t{t}", kind_of(op)),
            None => kind_of(op).to_owned(),
        },
    }
}

/// What the bar's tooltip says about an operation.
fn describe(op: &Op) -> String {
    let what = match &op.call {
        Call::Acquire { lock, token, .. } => match token {
            Some(t) => format!("acquire {lock:?} → token {t}"),
            None => format!("acquire {lock:?}"),
        },
        Call::Renew { lock, token, .. } => format!("renew {lock:?} token {token}"),
        Call::Release { lock, token } => format!("release {lock:?} token {token}"),
        Call::Write { key, token, data } => format!("write {data:?} to {key:?} with token {token}"),
        Call::Read { key, value } => match value {
            Some((t, d)) => format!("read {key:?} → {d:?} (token {t})"),
            None => format!("read {key:?}"),
        },
        Call::Other { f } => f.clone(),
    };
    let when = match op.complete_time {
        Some(c) => format!("{} → {}", ms_text(op.invoke_time), ms_text(c)),
        None => format!("{}, never completed", ms_text(op.invoke_time)),
    };
    format!(
        "op {}: {} {} ({}), {when}",
        op.invoke_index,
        op.actor(),
        super::timeline::truncate(&what),
        outcome_class(op.outcome)
    )
}

/// A small SVG of the `involved` ops (invocation indexes); nothing when none
/// of them is an op of `ops`.
pub(super) fn mini_timeline(
    events: &[Event],
    ops: &[Op],
    leases: &Leases,
    involved: &[u64],
) -> Markup {
    let wanted: HashSet<u64> = involved.iter().copied().collect();
    let mine: Vec<&Op> = ops
        .iter()
        .filter(|o| wanted.contains(&o.invoke_index))
        .collect();
    if mine.is_empty() {
        return html! {};
    }
    let end = history_end(events, ops);
    let (lane_keys, lane_of) = lanes(mine.iter().copied());
    let lane_of_invoke: HashMap<u64, usize> = ops
        .iter()
        .filter_map(|o| Some((o.invoke_index, *lane_of.get(&LaneKey::of(o))?)))
        .collect();
    let first_lane_of_node = |node: &str| {
        mine.iter()
            .find(|o| o.node.as_deref() == Some(node))
            .map(|o| lane_of[&LaneKey::of(o)])
    };

    // The leases of the tokens these ops name, when their holder has a lane.
    let tokens: HashSet<u64> = mine.iter().filter_map(|o| token_of(o)).collect();
    let mut bands = Vec::new();
    for lease in leases.iter().filter(|l| tokens.contains(&l.token())) {
        for iv in lease.possible() {
            let lane = lane_of_invoke
                .get(&iv.start_op)
                .copied()
                .or_else(|| lease.holder().and_then(first_lane_of_node));
            if let Some(lane) = lane {
                let title = format!(
                    "lease of {:?}, token {}, held by {}: granted from {}, deadline {}",
                    lease.lock(),
                    lease.token(),
                    lease.holder().unwrap_or("?"),
                    ms_text(iv.start),
                    if iv.end == u64::MAX {
                        "none".to_owned()
                    } else {
                        ms_text(iv.deadline())
                    }
                );
                bands.push((lane, iv.start, iv.end.min(end.max(iv.start)), title));
            }
        }
    }

    // The window: the ops and their leases, with a margin.
    let op_end = |o: &Op| o.complete_time.unwrap_or(end).max(o.invoke_time);
    let lo = mine
        .iter()
        .map(|o| o.invoke_time)
        .chain(bands.iter().map(|b| b.1))
        .min()
        .unwrap_or(0);
    let hi = mine
        .iter()
        .map(|o| op_end(o))
        .chain(bands.iter().map(|b| b.2))
        .max()
        .unwrap_or(lo)
        .max(lo + 1_000);
    let margin = (hi - lo) / 25;
    let (t0, t1) = (lo.saturating_sub(margin), hi + margin);
    let x = |t: u64| LEFT + (RIGHT - LEFT) * (t.clamp(t0, t1) - t0) as f64 / (t1 - t0) as f64;

    let periods: Vec<_> = nemesis_periods(events)
        .into_iter()
        .filter(|p| p.start <= t1 && p.end_or(end) >= t0)
        .collect();
    let bottom = TOP + lane_keys.len() as f64 * LANE_H;
    let height = bottom + AXIS_H;
    let tick_list = ticks(t0 as f64, t1 as f64, 6);
    let step = match tick_list.as_slice() {
        [a, b, ..] => b - a,
        _ => (t1 - t0) as f64,
    };
    let lane_y = |l: usize| TOP + l as f64 * LANE_H;
    html! {
        svg class="mini-timeline" viewBox={ "0 0 " (W) " " (height) } width=(W) height=(height)
            style="max-width:100%;height:auto" font-size="11"
            role="img" aria-label="the operations of this anomaly in time" {
            @for p in &periods {
                @let (x0, x1) = (x(p.start), x(p.end_or(end)));
                rect x=(f1(x0)) y=(TOP) width=(f1((x1 - x0).max(2.0))) height=(f1(bottom - TOP))
                    fill="#bf3989" fill-opacity="0.13" { title { (Text(&p.label())) } }
            }
            @for (l, key) in lane_keys.iter().enumerate() {
                line x1="0" x2=(W) y1=(f1(lane_y(l) + LANE_H)) y2=(f1(lane_y(l) + LANE_H)) stroke="#eaeef2" {}
                text x="4" y=(f1(lane_y(l) + 11.0)) fill="#57606a" { (Text(&key.label())) }
            }
            @for (lane, s, e, title) in &bands {
                rect x=(f1(x(*s))) y=(f1(lane_y(*lane) + LEASE_Y)) width=(f1((x(*e) - x(*s)).max(1.0)))
                    height=(LEASE_H) fill="#6e9fdc" { title { (Text(title)) } }
            }
            @for op in &mine {
                @let (x0, x1) = (x(op.invoke_time), x(op_end(op)));
                a href={ "#op-" (op.invoke_index) } {
                    rect class={ "mini-op " (outcome_class(op.outcome)) }
                        x=(f1(x0)) y=(f1(lane_y(lane_of[&LaneKey::of(op)]) + 2.0))
                        width=(f1((x1 - x0).max(3.0))) height=(BAR_H)
                        fill=(fill(outcome_class(op.outcome))) stroke="#a40e26" stroke-width="1.5" {
                        title { (Text(&describe(op))) }
                    }
                }
                @let label = short(op);
                // Right of the bar, or left of it where the right edge is near.
                @let right = x1.max(x0 + 3.0) + 3.0;
                @let (lx, anchor) = if right + label.chars().count() as f64 * 5.6 > W {
                    (x0 - 3.0, "end")
                } else {
                    (right, "start")
                };
                text x=(f1(lx)) y=(f1(lane_y(lane_of[&LaneKey::of(op)]) + 12.0)) text-anchor=(anchor)
                    font-size="10" fill="#1f2328" { (Text(&label)) }
            }
            line x1=(LEFT) x2=(RIGHT) y1=(f1(bottom)) y2=(f1(bottom)) stroke="#8c959f" {}
            @for t in &tick_list {
                @let tx = x(*t as u64);
                line x1=(f1(tx)) x2=(f1(tx)) y1=(f1(bottom)) y2=(f1(bottom + 4.0)) stroke="#8c959f" {}
                text x=(f1(tx)) y=(f1(bottom + 16.0)) text-anchor="middle" fill="#57606a" { (ms_label(*t, step)) }
            }
            text x=(RIGHT) y=(f1(bottom + 28.0)) text-anchor="end" fill="#57606a" {
                "since the start of the run · " (Text(&kinds_summary(&mine)))
            }
        }
    }
}

/// "2 write, 1 acquire": what the picture shows.
fn kinds_summary(ops: &[&Op]) -> String {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for op in ops {
        match counts.iter_mut().find(|(k, _)| *k == kind_of(op)) {
            Some((_, n)) => *n += 1,
            None => counts.push((kind_of(op), 1)),
        }
    }
    counts
        .iter()
        .map(|(k, n)| format!("{n} {k}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::seed_history;
    use leasehold_checker::History;

    fn mini(involved: &[u64]) -> String {
        let h = seed_history(false);
        let ops = History::new(h.clone()).ops();
        let leases = Leases::from_ops(&ops);
        mini_timeline(&h, &ops, &leases, involved).into_string()
    }

    #[test]
    fn only_the_involved_ops_each_linked() {
        // The seed anomaly: w1's acquire (0), its stale write (10), w2's acquire (5).
        let html = mini(&[0, 10, 5]);
        assert_eq!(html.matches("<rect class=\"mini-op ").count(), 3);
        for op in [0, 10, 5] {
            assert!(
                html.contains(&format!("<a href=\"#op-{op}\"><rect class=\"mini-op ok\"")),
                "op {op}"
            );
        }
        // w1's first write (op 2) and w2's write (op 7) are not involved.
        assert!(!html.contains("#op-2\"") && !html.contains("#op-7\""));
        // Lanes of the two processes only.
        assert!(html.contains(">w1 · p1</text>") && html.contains(">w2 · p2</text>"));
        // Both leases, and the pause between them.
        assert!(html.contains("<title>lease of &quot;L&quot;, token 33, held by w1: granted from 0.0 ms, deadline 2000.0 ms</title>"));
        assert!(html.contains("token 34, held by w2"));
        assert!(html.contains("<title>pause of w1, 500.0 ms → 3500.0 ms"));
        assert!(html.contains("<title>op 10: w1 write &quot;w1-2&quot; to &quot;k&quot; with token 33 (ok), 3501.0 ms → 3503.0 ms</title>"));
        // The axis is in ms since the start.
        assert!(html.contains(" ms</text>"));
    }

    #[test]
    fn one_process_only() {
        let html = mini(&[7]);
        assert_eq!(html.matches("<rect class=\"mini-op ").count(), 1);
        assert!(html.contains(">w2 · p2</text>") && !html.contains(">w1 · p1</text>"));
        // The pause overlaps w2's lease, so it is shown; the links name op 7 only.
        assert!(html.contains("pause of w1"));
        assert_eq!(html.matches("href=\"#op-").count(), 1);
    }

    #[test]
    fn nothing_involved_nothing_drawn() {
        assert_eq!(mini(&[]), "");
        // Indexes of no op (a nemesis event, an unknown index) draw nothing either.
        assert_eq!(mini(&[4, 999]), "");
    }

    #[test]
    fn hostile_text_is_escaped() {
        let mut h = seed_history(false);
        h[10].value =
            serde_json::json!({"key": "</text><script>", "token": 33, "data": "<b>http://x"});
        let ops = History::new(h.clone()).ops();
        let leases = Leases::from_ops(&ops);
        let html = mini_timeline(&h, &ops, &leases, &[10]).into_string();
        assert!(!html.contains("<script>") && !html.contains("<b>") && !html.contains("://"));
        assert!(html.contains("&lt;/text&gt;&lt;script&gt;"));
    }
}
