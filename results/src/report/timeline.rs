//! The interactive timeline: one lane per process, every operation as a bar from
//! its invocation to its completion, the leases under their holders' lanes and
//! the nemesis periods shaded across all lanes.
//!
//! The page stays one self-contained file that must open fast with 100,000
//! operations, so nothing is drawn here: this module embeds the history as
//! compact JSON (integer arrays plus string tables, the hover text reduced to
//! what a tooltip shows) and `timeline.js` draws only what is in view. The DOM
//! both produce is a contract that browser tests assert on: `#timeline`,
//! `#timeline-svg`, `#timeline-data`, `rect.op[data-op]`, `rect.lease`,
//! `rect.nemesis`, `#tl-tip`, `window.leaseholdTimeline`.
//!
//! The nemesis periods are derived here too ([`nemesis_periods`]) and shared
//! with the plots and the mini timelines, so every picture agrees on when a
//! fault was in force.

use std::collections::{BTreeMap, HashMap, HashSet};

use leasehold_checker::{Event, Leases, Op, Outcome, Process};
use maud::{Markup, PreEscaped, html};
use serde::Serialize;
use serde_json::Value;

use super::text::Text;

/// The script that draws the timeline from `#timeline-data`.
const SCRIPT: &str = include_str!("timeline.js");

/// Longest value or error text kept for a tooltip, in characters.
const TEXT_MAX: usize = 80;

/// Nanoseconds per microsecond: the data is in µs, which keeps the numbers
/// short and is finer than any bar a screen can show.
const NS_PER_US: u64 = 1_000;

/// A fault in force: from the nemesis event that started it to the one that
/// healed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Period {
    /// The fault's `f`: `pause`, `partition`, `kill`, `start-partition`, …
    pub(super) f: String,
    /// The nodes it hit, as the starting event names them.
    pub(super) nodes: Vec<String>,
    /// The target it was asked for (`holder`), when the event names one.
    pub(super) target: Option<String>,
    /// When it started, in ns since the run started.
    pub(super) start: u64,
    /// When it was healed; `None` if no heal was recorded.
    pub(super) end: Option<u64>,
}

impl Period {
    /// "pause of w3 (holder)": what a person calls the fault.
    pub(super) fn name(&self) -> String {
        let mut s = self.f.clone();
        if !self.nodes.is_empty() {
            s.push_str(" of ");
            s.push_str(&self.nodes.join(", "));
        }
        if let Some(t) = self
            .target
            .as_deref()
            .filter(|t| !self.nodes.iter().any(|n| n == t))
        {
            s.push_str(&format!(" ({t})"));
        }
        s
    }

    /// The name with its span: "pause of w3 (holder), 1145.0 ms → 3649.0 ms".
    pub(super) fn label(&self) -> String {
        let end = match self.end {
            Some(e) => format!(
                "{} (lasted {})",
                ms_text(e),
                ms_text(e.saturating_sub(self.start))
            ),
            None => "end of history (no heal recorded)".to_owned(),
        };
        format!("{}, {} → {end}", self.name(), ms_text(self.start))
    }

    /// The end, or `history_end` when it was never healed.
    pub(super) fn end_or(&self, history_end: u64) -> u64 {
        self.end.unwrap_or(history_end).max(self.start)
    }
}

/// "1145.0 ms": a time or a duration in ns, in ms with one decimal.
pub(super) fn ms_text(ns: u64) -> String {
    format!("{:.1} ms", ns as f64 / 1e6)
}

/// The heal names that end a fault of kind `f`; `None` when `f` starts no
/// fault. A `heal` (the nemesis's heal-everything) also resumes pauses.
fn heals(f: &str) -> Option<Vec<String>> {
    let names: Vec<String> = match f {
        "pause" => vec!["resume".into(), "heal".into()],
        "partition" => vec!["heal".into()],
        "kill" => vec!["restart".into()],
        "clock" => vec!["reset".into()],
        "packet" => vec!["unpacket".into()],
        // Jepsen's nemeses: `start-partition` … `stop-partition`, `start` … `stop`.
        _ => match f.strip_prefix("start") {
            Some(rest) if rest.is_empty() || rest.starts_with('-') => vec![format!("stop{rest}")],
            _ => return None,
        },
    };
    Some(names)
}

fn is_nemesis(e: &Event) -> bool {
    matches!(&e.process, Process::Named(n) if n == "nemesis")
}

/// The nodes a nemesis event names: `value.nodes` (strings), or `value` itself
/// when it is an array of strings (as Jepsen writes it).
fn event_nodes(v: &Value) -> Vec<String> {
    let list = match v {
        Value::Array(a) => Some(a),
        Value::Object(_) => v.get("nodes").and_then(Value::as_array),
        _ => None,
    };
    list.into_iter()
        .flatten()
        .filter_map(|n| match n {
            Value::String(s) => Some(s.clone()),
            Value::Number(x) => Some(x.to_string()),
            _ => None,
        })
        .collect()
}

/// The faults of a history, in start order. A fault starts at its nemesis
/// event (`pause`, `partition`, `kill`, `start…`) and ends at the first later
/// heal of its kind (`resume`, `heal`, `restart`, `stop…`) that names one of its
/// nodes or names none. A start repeated while the same fault is open (Jepsen
/// records a nemesis action's invocation and completion, both `info`) is the
/// same fault. Nemesis events that are neither (`reapply`) start nothing.
pub(super) fn nemesis_periods(events: &[Event]) -> Vec<Period> {
    let mut periods: Vec<Period> = Vec::new();
    let mut open: Vec<usize> = Vec::new();
    for e in events.iter().filter(|e| is_nemesis(e)) {
        let nodes = event_nodes(&e.value);
        if heals(&e.f).is_some() {
            // Jepsen's invocation may name no nodes and its completion some.
            let repeated = open.iter().copied().find(|&p| {
                let open = &periods[p];
                open.f == e.f && (open.nodes == nodes || open.nodes.is_empty() || nodes.is_empty())
            });
            if let Some(p) = repeated {
                if periods[p].nodes.is_empty() {
                    periods[p].nodes = nodes;
                }
            } else {
                open.push(periods.len());
                periods.push(Period {
                    f: e.f.clone(),
                    nodes,
                    target: e
                        .value
                        .get("target")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                    start: e.time,
                    end: None,
                });
            }
            continue;
        }
        open.retain(|&p| {
            let period = &mut periods[p];
            let heals_it = heals(&period.f).is_some_and(|h| h.contains(&e.f))
                && e.time >= period.start
                && (nodes.is_empty()
                    || period.nodes.is_empty()
                    || period.nodes.iter().any(|n| nodes.contains(n)));
            if heals_it {
                period.end = Some(e.time);
            }
            !heals_it
        });
    }
    periods
}

/// The nemesis events that start and heal nothing (`reapply`): drawn as marks.
fn nemesis_marks(events: &[Event]) -> Vec<(u64, String)> {
    events
        .iter()
        .filter(|e| is_nemesis(e) && heals(&e.f).is_none() && !is_heal_name(&e.f))
        .map(|e| {
            let nodes = event_nodes(&e.value);
            let mut label = e.f.clone();
            if !nodes.is_empty() {
                label.push(' ');
                label.push_str(&nodes.join(", "));
            }
            if let Some(err) = &e.error {
                label.push_str(": ");
                label.push_str(err);
            }
            (e.time, format!("{label} at {}", ms_text(e.time)))
        })
        .collect()
}

/// A heal that found nothing open to heal is not worth a mark of its own.
fn is_heal_name(f: &str) -> bool {
    matches!(f, "resume" | "heal" | "restart" | "reset" | "unpacket") || f.starts_with("stop")
}

/// The last moment of the history, in ns: where the view ends and where
/// operations that never completed stop.
pub(super) fn history_end(events: &[Event], ops: &[Op]) -> u64 {
    let events_end = events.iter().map(|e| e.time).max().unwrap_or(0);
    let ops_end = ops
        .iter()
        .map(|o| o.complete_time.unwrap_or(o.invoke_time))
        .max()
        .unwrap_or(0);
    events_end.max(ops_end)
}

/// The name of an operation's function, as the history spells it.
pub(super) fn kind_of(op: &Op) -> &str {
    op.call.f()
}

/// `ok`, `fail` or `info`: the CSS class and the word of an outcome.
pub(super) fn outcome_class(o: Outcome) -> &'static str {
    match o {
        Outcome::Ok => "ok",
        Outcome::Fail => "fail",
        Outcome::Info => "info",
    }
}

/// The lane of an operation: its node and process.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) struct LaneKey {
    node: Option<String>,
    process: Process,
}

impl LaneKey {
    pub(super) fn of(op: &Op) -> LaneKey {
        LaneKey {
            node: op.node.clone(),
            process: op.process.clone(),
        }
    }

    /// "w1 · p0", "final": the lane's label.
    pub(super) fn label(&self) -> String {
        match (&self.node, &self.process) {
            (Some(n), Process::Client(p)) => format!("{n} · p{p}"),
            (Some(n), Process::Named(p)) => format!("{n} · {p}"),
            (None, Process::Client(p)) => format!("process {p}"),
            (None, Process::Named(p)) => p.clone(),
        }
    }

    /// Sorts lanes by node, numbers within names compared as numbers (`w2`
    /// before `w10`), then by process; lanes without a node go last.
    fn sort_key(&self) -> (bool, Vec<(String, u64)>, Process) {
        (
            self.node.is_none(),
            natural(self.node.as_deref().unwrap_or("")),
            self.process.clone(),
        )
    }
}

/// "w10" → [("w", 10)]: a key that sorts names with numbers naturally.
fn natural(s: &str) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let mut text = String::new();
    let mut num: Option<u64> = None;
    for c in s.chars() {
        if let Some(d) = c.to_digit(10) {
            num = Some(
                num.unwrap_or(0)
                    .saturating_mul(10)
                    .saturating_add(u64::from(d)),
            );
        } else {
            if let Some(n) = num.take() {
                out.push((std::mem::take(&mut text), n));
            }
            text.push(c);
        }
    }
    out.push((text, num.unwrap_or(0)));
    out
}

/// The lanes of `ops`, in display order, and each op's lane number.
pub(super) fn lanes<'o>(
    ops: impl Iterator<Item = &'o Op>,
) -> (Vec<LaneKey>, HashMap<LaneKey, usize>) {
    let mut keys: Vec<LaneKey> = ops
        .map(LaneKey::of)
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    keys.sort_by_cached_key(LaneKey::sort_key);
    let index = keys
        .iter()
        .enumerate()
        .map(|(i, k)| (k.clone(), i))
        .collect();
    (keys, index)
}

/// Finds events by history index: positional when the history is numbered
/// from 0 without gaps (what the harness writes), else through a map.
pub(super) struct EventIndex<'a> {
    events: &'a [Event],
    map: Option<HashMap<u64, &'a Event>>,
}

impl<'a> EventIndex<'a> {
    pub(super) fn new(events: &'a [Event]) -> EventIndex<'a> {
        let positional = events.iter().enumerate().all(|(i, e)| e.index == i as u64);
        EventIndex {
            events,
            map: (!positional).then(|| events.iter().map(|e| (e.index, e)).collect()),
        }
    }

    pub(super) fn get(&self, index: u64) -> Option<&'a Event> {
        match &self.map {
            Some(m) => m.get(&index).copied(),
            None => usize::try_from(index).ok().and_then(|i| self.events.get(i)),
        }
    }
}

/// A value as a short line: `lock=L token=3` for an object, the JSON of
/// anything else, cut at [`TEXT_MAX`] characters.
pub(super) fn value_text(v: &Value) -> String {
    let s = match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => format!("{k}={s}"),
                other => format!("{k}={other}"),
            })
            .collect::<Vec<_>>()
            .join(" "),
        other => other.to_string(),
    };
    truncate(&s)
}

/// `s` cut at [`TEXT_MAX`] characters, with an ellipsis when cut.
pub(super) fn truncate(s: &str) -> String {
    match s.char_indices().nth(TEXT_MAX) {
        Some((at, _)) => format!("{}…", &s[..at]),
        None => s.to_owned(),
    }
}

/// Strings stored once, named by their position.
#[derive(Default)]
struct Table {
    strings: Vec<String>,
    index: HashMap<String, i64>,
}

impl Table {
    fn id(&mut self, s: String) -> i64 {
        if let Some(&i) = self.index.get(&s) {
            return i;
        }
        let i = self.strings.len() as i64;
        self.index.insert(s.clone(), i);
        self.strings.push(s);
        i
    }
}

/// Integers per operation in [`Data::ops`].
const OP_STRIDE: usize = 9;

/// What `timeline.js` reads. Times are µs since the run started; lists of
/// records are flat integer arrays (fixed stride) to stay small.
#[derive(Serialize)]
struct Data {
    /// Format version, so a later script can refuse an older page.
    v: u32,
    /// The end of the history (µs).
    end: u64,
    /// Lane labels, in display order.
    lanes: Vec<String>,
    /// The node of each lane (`""` for none), so lanes can be grouped.
    nodes: Vec<String>,
    /// Function names (`acquire`, …).
    kinds: Vec<String>,
    /// Value and error texts of events.
    text: Vec<String>,
    /// Per op, [`OP_STRIDE`] integers, in invocation time order:
    /// invoke time − previous op's (µs), duration (µs, −1: never completed),
    /// lane, kind × 3 + outcome (0 ok, 1 fail, 2 info), invoke index − previous
    /// op's, completion index − invoke index (−1: none), invoke value text,
    /// completion value text, error text (text indexes, −1: none).
    ops: Vec<i64>,
    /// Invocation indexes of the ops an anomaly names.
    anomalies: Vec<u64>,
    /// Lock names.
    locks: Vec<String>,
    /// Per lease interval (possibly held: grant sent → deadline), by lane then
    /// start: lane, start, deadline (µs, −1: none), lock, token.
    leases: Vec<i64>,
    /// Per nemesis period: start, end (µs, −1: never healed), label, name.
    nemesis: Vec<i64>,
    /// Per other nemesis event: time (µs), label.
    marks: Vec<i64>,
    /// Nemesis labels.
    labels: Vec<String>,
}

fn us(ns: u64) -> i64 {
    i64::try_from(ns / NS_PER_US).unwrap_or(i64::MAX)
}

fn build_data(events: &[Event], ops: &[Op], leases: &Leases, anomaly_ops: &HashSet<u64>) -> Data {
    let by_index = EventIndex::new(events);
    let (lane_keys, lane_of) = lanes(ops.iter());
    let mut kinds = Table::default();
    let mut text = Table::default();
    let mut sorted: Vec<&Op> = ops.iter().collect();
    sorted.sort_by_key(|o| (o.invoke_time, o.invoke_index));

    let mut data_ops = Vec::with_capacity(sorted.len() * OP_STRIDE);
    let (mut prev_t, mut prev_i) = (0i64, 0i64);
    let mut text_of = |e: Option<&Event>, pick: fn(&Event) -> Option<String>| {
        e.and_then(pick)
            .filter(|s| !s.is_empty())
            .map_or(-1, |s| text.id(s))
    };
    for op in &sorted {
        let t = us(op.invoke_time);
        let i = op.invoke_index as i64;
        let dur = op
            .complete_time
            .map_or(-1, |c| us(c).saturating_sub(t).max(0));
        let outcome = match op.outcome {
            Outcome::Ok => 0,
            Outcome::Fail => 1,
            Outcome::Info => 2,
        };
        let invoke = by_index.get(op.invoke_index);
        let complete = op.complete_index.and_then(|c| by_index.get(c));
        data_ops.extend_from_slice(&[
            t - prev_t,
            dur,
            lane_of[&LaneKey::of(op)] as i64,
            kinds.id(kind_of(op).to_owned()) * 3 + outcome,
            i - prev_i,
            op.complete_index.map_or(-1, |c| c as i64 - i),
            text_of(invoke, |e| Some(value_text(&e.value))),
            text_of(complete, |e| Some(value_text(&e.value))),
            text_of(complete, |e| e.error.as_deref().map(truncate)),
        ]);
        prev_t = t;
        prev_i = i;
    }
    let present: HashSet<u64> = ops.iter().map(|o| o.invoke_index).collect();
    let mut anomalies: Vec<u64> = anomaly_ops
        .iter()
        .copied()
        .filter(|i| present.contains(i))
        .collect();
    anomalies.sort_unstable();

    // Each lease interval goes under the lane of the grant that starts it, so a
    // node whose process was retired shows its lease where it acted.
    let lane_of_invoke: HashMap<u64, usize> = ops
        .iter()
        .map(|o| (o.invoke_index, lane_of[&LaneKey::of(o)]))
        .collect();
    let mut locks = Table::default();
    let mut records: Vec<[i64; 5]> = Vec::new();
    for lease in leases.iter() {
        for iv in lease.possible() {
            let Some(&lane) = lane_of_invoke.get(&iv.start_op) else {
                continue;
            };
            let end = if iv.end == u64::MAX {
                -1
            } else {
                us(iv.deadline())
            };
            records.push([
                lane as i64,
                us(iv.start),
                end,
                locks.id(lease.lock().to_owned()),
                i64::try_from(lease.token()).unwrap_or(i64::MAX),
            ]);
        }
    }
    // By lane, then start: the script merges neighbours in one pass.
    records.sort_unstable();
    let data_leases: Vec<i64> = records.into_iter().flatten().collect();

    let periods = nemesis_periods(events);
    let mut labels = Table::default();
    let mut nemesis = Vec::new();
    for p in &periods {
        nemesis.extend_from_slice(&[
            us(p.start),
            p.end.map_or(-1, us),
            labels.id(p.label()),
            labels.id(p.name()),
        ]);
    }
    let mut marks = Vec::new();
    for (t, label) in nemesis_marks(events) {
        marks.extend_from_slice(&[us(t), labels.id(label)]);
    }

    Data {
        v: 1,
        end: history_end(events, ops).div_ceil(NS_PER_US),
        nodes: lane_keys
            .iter()
            .map(|k| k.node.clone().unwrap_or_default())
            .collect(),
        lanes: lane_keys.iter().map(LaneKey::label).collect(),
        kinds: kinds.strings,
        text: text.strings,
        ops: data_ops,
        anomalies,
        locks: locks.strings,
        leases: data_leases,
        nemesis,
        marks,
        labels: labels.strings,
    }
}

/// JSON that can sit inside a `<script>` element: no string in it can close
/// the element or start a comment, no line separator breaks old parsers, and
/// no `://` appears (the page holds no address).
pub(super) fn script_json<T: Serialize>(value: &T) -> String {
    let json = serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned());
    let mut out = String::with_capacity(json.len() + json.len() / 16);
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            // Outside strings JSON has no `/`; inside, `\/` reads the same and
            // no `://` can form an address in the page.
            '/' => out.push_str("\\/"),
            c => out.push(c),
        }
    }
    out
}

/// The timeline's own style: scoped to `#timeline`, inline because the page
/// loads nothing.
const STYLE: &str = r#"
#timeline .tl-bar { display: flex; flex-wrap: wrap; gap: .4rem; align-items: center; margin: .4rem 0; }
#timeline .tl-bar button { font: inherit; padding: .1rem .6rem; border: 1px solid #d0d7de; border-radius: .3rem; background: #f6f8fa; cursor: pointer; }
#timeline .tl-bar button:hover { background: #eaeef2; }
#timeline .tl-status { color: #57606a; font-size: .85rem; font-variant-numeric: tabular-nums; }
#timeline .tl-legend { display: flex; flex-wrap: wrap; gap: .9rem; font-size: .8rem; color: #57606a; margin: .2rem 0 .4rem; }
#timeline .tl-legend span { white-space: nowrap; }
#timeline .tl-legend i { display: inline-block; width: 1.4em; height: .8em; vertical-align: middle; margin-right: .3em; border: 1px solid transparent; }
#timeline .tl-wrap { position: relative; border: 1px solid #d0d7de; border-radius: .3rem; overflow: hidden; }
#timeline-svg { display: block; width: 100%; user-select: none; cursor: grab; font-size: 11px; }
#timeline-svg.dragging { cursor: grabbing; }
#timeline-svg text { fill: #57606a; }
#timeline-svg .lane-bg { fill: #f6f8fa; }
#timeline-svg .lane-sep { stroke: #d0d7de; }
#timeline-svg .grid { stroke: #eaeef2; }
#timeline-svg .axis { stroke: #8c959f; }
#timeline-svg rect.op { stroke-width: 0; }
#timeline-svg rect.op.ok, #timeline .tl-legend i.ok { fill: #2da44e; background: #2da44e; }
#timeline-svg rect.op.fail, #timeline .tl-legend i.fail { fill: #e16f24; background: #e16f24; }
#timeline-svg rect.op.info, #timeline .tl-legend i.info { fill: #8c959f; background: #8c959f; }
#timeline-svg rect.op.anomaly { stroke: #a40e26; stroke-width: 2.5px; }
#timeline .tl-legend i.anomaly { border: 2.5px solid #a40e26; background: #fff; }
#timeline-svg rect.op.selected { stroke: #0969da; stroke-width: 3px; }
#timeline .tl-legend i.selected { border: 3px solid #0969da; background: #fff; }
#timeline-svg rect.dense { opacity: .55; }
#timeline-svg rect.dense.ok { fill: #2da44e; } #timeline-svg rect.dense.fail { fill: #e16f24; } #timeline-svg rect.dense.info { fill: #8c959f; }
#timeline .tl-legend i.dense { background: repeating-linear-gradient(90deg, #2da44e 0 2px, transparent 2px 4px); }
#timeline-svg rect.lease, #timeline .tl-legend i.lease { fill: #6e9fdc; background: #6e9fdc; }
#timeline-svg rect.nemesis, #timeline .tl-legend i.nemesis { fill: #bf3989; fill-opacity: .12; background: rgba(191,57,137,.18); }
#timeline-svg rect.anomaly-mark { fill: #a40e26; }
#timeline-svg line.sel-mark { stroke: #0969da; stroke-dasharray: 2 3; }
#timeline-svg line.nem-mark { stroke: #bf3989; stroke-dasharray: 3 3; }
#timeline-svg text.nem-name { fill: #8a2a64; font-size: 10px; }
#timeline-svg .tl-empty { fill: #57606a; font-size: 13px; }
#tl-tip { position: absolute; pointer-events: none; z-index: 10; background: #fff; border: 1px solid #8c959f; border-radius: .3rem; box-shadow: 0 2px 8px rgba(0,0,0,.15); padding: .35rem .55rem; font: 12px/1.35 ui-monospace, SFMono-Regular, Menlo, monospace; white-space: pre; max-width: 46rem; overflow: hidden; }
"#;

/// The `#timeline` section: controls, an empty SVG, the data and the script.
pub(super) fn timeline_section(
    events: &[Event],
    ops: &[Op],
    leases: &Leases,
    anomaly_ops: &HashSet<u64>,
) -> Markup {
    let data = build_data(events, ops, leases, anomaly_ops);
    let end_ns = data.end * NS_PER_US;
    let kinds: BTreeMap<&str, usize> = ops.iter().fold(BTreeMap::new(), |mut m, o| {
        *m.entry(kind_of(o)).or_default() += 1;
        m
    });
    html! {
        section id="timeline" data-ops=(ops.len()) data-t0="0" data-t1=(end_ns) data-drawn="0" {
            style { (PreEscaped(STYLE)) }
            h2 { "Timeline" }
            p class="note" {
                "Every operation of every process, from its invocation to its completion. "
                "Scroll over it to zoom around the pointer, drag to pan, hover an operation for its events, "
                "click it for a link to it."
                @if !kinds.is_empty() {
                    " Operations: "
                    @for (i, (k, n)) in kinds.iter().enumerate() {
                        @if i > 0 { ", " }
                        (n) " " (Text(k))
                    }
                    "."
                }
            }
            div class="tl-bar" {
                button type="button" id="tl-zoom-in" title="zoom in" { "+ zoom in" }
                button type="button" id="tl-zoom-out" title="zoom out" { "− zoom out" }
                button type="button" id="tl-reset" title="show the whole run" { "reset" }
                button type="button" id="tl-story" hidden title="the story of the anomaly that names the selected operation" { "↓ its story" }
                span class="tl-status" id="tl-status" {}
            }
            div class="tl-legend" {
                span { i class="ok" {} "ok" }
                span { i class="fail" {} "failed" }
                span { i class="info" {} "unknown (info, or never completed)" }
                span { i class="anomaly" {} "named by an anomaly" }
                span { i class="selected" {} "selected" }
                span { i class="lease" {} "lease: grant sent → deadline" }
                span { i class="nemesis" {} "fault in force" }
                span { i class="dense" {} "many short ops (density)" }
            }
            noscript {
                p class="note" { "The timeline is drawn by a script, which is off: the history table lists every event." }
            }
            div class="tl-wrap" {
                svg id="timeline-svg" role="img" aria-label="timeline of the run" {}
                div id="tl-tip" hidden {}
            }
            script type="application/json" id="timeline-data" { (PreEscaped(script_json(&data))) }
            script { (PreEscaped(SCRIPT)) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::seed_history;
    use leasehold_checker::EventType;
    use leasehold_checker::History;
    use serde_json::json;

    fn ops_of(events: &[Event]) -> Vec<Op> {
        History::new(events.to_vec()).ops()
    }

    fn section(events: &[Event], anomalies: &[u64]) -> String {
        let ops = ops_of(events);
        let leases = Leases::from_ops(&ops);
        timeline_section(events, &ops, &leases, &anomalies.iter().copied().collect()).into_string()
    }

    fn data_of(html: &str) -> Value {
        let open = "<script type=\"application/json\" id=\"timeline-data\">";
        let start = html.find(open).expect("data script") + open.len();
        let len = html[start..].find("</script>").expect("end of data");
        serde_json::from_str(&html[start..start + len]).expect("valid JSON")
    }

    fn nemesis(index: u64, ms: u64, f: &str, nodes: &[&str]) -> Event {
        Event {
            index,
            time: ms * 1_000_000,
            process: Process::nemesis(),
            node: None,
            kind: EventType::Info,
            f: f.into(),
            value: json!({"nodes": nodes, "target": "holder"}),
            error: None,
        }
    }

    #[test]
    fn hostile_strings_never_appear_raw() {
        let mut h = seed_history(false);
        let evil = "</script><script>alert(1)</script>&\u{2028}http://evil";
        h[0].value = json!({"lock": evil});
        h[1].value = json!({"lock": evil, "token": 33, "lease_ms": 2000});
        h[2].value = json!({"key": "k", "token": 33, "data": evil});
        h[3].error = Some(evil.into());
        h[4].value = json!({"nodes": [evil]});
        h[0].node = Some(evil.into());
        let html = section(&h, &[]);
        // The only `</script>` are the two our own elements close with.
        assert_eq!(html.matches("</script>").count(), 2);
        assert_eq!(html.matches("<script").count(), 2);
        assert!(!html.contains("alert(1)</"));
        assert!(!html.contains('\u{2028}'));
        assert!(!html.contains("://"), "no address in the page");
        let data = data_of(&html);
        // Nothing was lost: the hostile text is still there once decoded.
        assert!(data["locks"][0].as_str().unwrap().starts_with("</script>"));
        assert!(
            data["text"]
                .as_array()
                .unwrap()
                .iter()
                .any(|t| t.as_str().unwrap().contains("</script>"))
        );
        assert!(
            data["lanes"]
                .as_array()
                .unwrap()
                .iter()
                .any(|l| l.as_str().unwrap().starts_with("</script>"))
        );
    }

    #[test]
    fn one_record_per_op_with_its_indexes() {
        let h = seed_history(false);
        let ops = ops_of(&h);
        let html = section(&h, &[10, 999]);
        assert!(html.contains(&format!("data-ops=\"{}\"", ops.len())));
        let data = data_of(&html);
        let flat: Vec<i64> = data["ops"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect();
        assert_eq!(flat.len(), ops.len() * OP_STRIDE);
        // Decoding the deltas gives back every op's invoke time and indexes.
        let (mut t, mut i) = (0, 0);
        let mut decoded = Vec::new();
        for rec in flat.chunks(OP_STRIDE) {
            t += rec[0];
            i += rec[4];
            let complete = (rec[5] >= 0).then(|| (i + rec[5]) as u64);
            decoded.push(((t * 1000) as u64, i as u64, complete));
        }
        let mut want: Vec<_> = ops
            .iter()
            .map(|o| (o.invoke_time, o.invoke_index, o.complete_index))
            .collect();
        want.sort();
        assert_eq!(decoded, want);
        // Only anomaly ops that exist are flagged.
        assert_eq!(data["anomalies"], json!([10]));
        // Two processes, each its own lane, labelled node and process.
        assert_eq!(data["lanes"], json!(["w1 · p1", "w2 · p2"]));
        // Two leases (tokens 33 and 34), each under its holder's lane.
        let leases: Vec<i64> = data["leases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect();
        assert_eq!(leases.len(), 2 * 5);
        assert_eq!((leases[0], leases[4]), (0, 33));
        assert_eq!((leases[5], leases[9]), (1, 34));
        // Deadline: the acquire was sent at 0 with a 2000 ms lease.
        assert_eq!(leases[2], 2_000_000);
    }

    #[test]
    fn nemesis_periods_from_starts_and_heals() {
        let h = vec![
            nemesis(0, 100, "pause", &["w1"]),
            nemesis(1, 150, "partition", &["w2", "w3"]),
            nemesis(2, 200, "reapply", &["w2"]),
            nemesis(3, 300, "resume", &["w1"]),
            nemesis(4, 400, "kill", &["lock1"]),
            nemesis(5, 450, "heal", &["w2", "w3"]),
            nemesis(6, 500, "pause", &["w4"]),
            nemesis(7, 600, "resume", &["w9"]),
            nemesis(8, 700, "clock", &["lock1"]),
            nemesis(9, 800, "reset", &["lock1"]),
        ];
        let p = nemesis_periods(&h);
        let got: Vec<(&str, u64, Option<u64>)> = p
            .iter()
            .map(|p| {
                (
                    p.f.as_str(),
                    p.start / 1_000_000,
                    p.end.map(|e| e / 1_000_000),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("pause", 100, Some(300)),
                ("partition", 150, Some(450)),
                ("kill", 400, None),
                ("pause", 500, None),
                ("clock", 700, Some(800)),
            ]
        );
        assert_eq!(p[0].name(), "pause of w1 (holder)");
        assert!(p[2].label().contains("no heal recorded"));
        // The reapply is a mark; the resume of w9 healed nothing and is none.
        let marks = nemesis_marks(&h);
        assert_eq!(marks.len(), 1);
        assert!(marks[0].1.starts_with("reapply w2"));
        // Jepsen: invocation and completion of the same action are one fault.
        let mut j = vec![
            nemesis(0, 10, "start-partition", &[]),
            nemesis(1, 11, "start-partition", &[]),
            nemesis(2, 50, "stop-partition", &[]),
            nemesis(3, 51, "stop-partition", &[]),
        ];
        j[0].value = Value::Null;
        j[1].value = json!(["n1", "n2"]);
        let p = nemesis_periods(&j);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].nodes, ["n1", "n2"]);
        assert_eq!((p[0].start, p[0].end), (10_000_000, Some(50_000_000)));
    }

    #[test]
    fn nemesis_periods_reach_the_data() {
        let html = section(&seed_history(false), &[]);
        let data = data_of(&html);
        assert_eq!(data["nemesis"], json!([500_000, 3_500_000, 0, 1]));
        assert_eq!(data["labels"][1], "pause of w1");
        assert!(
            data["labels"][0]
                .as_str()
                .unwrap()
                .starts_with("pause of w1, 500.0 ms → 3500.0 ms")
        );
    }

    #[test]
    fn empty_history_still_draws_a_section() {
        let html = section(&[], &[]);
        assert!(
            html.contains("<section id=\"timeline\" data-ops=\"0\" data-t0=\"0\" data-t1=\"0\"")
        );
        assert!(html.contains("id=\"timeline-svg\""));
        assert!(html.contains("id=\"tl-zoom-in\"") && html.contains("id=\"tl-reset\""));
        let data = data_of(&html);
        assert_eq!(data["ops"], json!([]));
        assert_eq!(data["lanes"], json!([]));
    }

    #[test]
    fn texts_are_short_and_shared() {
        let long = "x".repeat(500);
        assert_eq!(truncate(&long).chars().count(), TEXT_MAX + 1);
        assert_eq!(
            value_text(&json!({"lock": "L", "token": 3})),
            "lock=L token=3"
        );
        let mut t = Table::default();
        assert_eq!(
            (t.id("a".into()), t.id("b".into()), t.id("a".into())),
            (0, 1, 0)
        );
    }

    #[test]
    fn lanes_sort_naturally() {
        let mut keys = [
            LaneKey {
                node: Some("w10".into()),
                process: Process::Client(1),
            },
            LaneKey {
                node: None,
                process: Process::Named("final".into()),
            },
            LaneKey {
                node: Some("w2".into()),
                process: Process::Client(7),
            },
            LaneKey {
                node: Some("w2".into()),
                process: Process::Client(3),
            },
        ];
        keys.sort_by_cached_key(LaneKey::sort_key);
        let labels: Vec<String> = keys.iter().map(LaneKey::label).collect();
        assert_eq!(labels, ["w2 · p3", "w2 · p7", "w10 · p1", "final"]);
    }
}
