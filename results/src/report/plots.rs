//! The "Plots" section: latency of every kind of operation over time, and
//! throughput per second, both with the nemesis periods shaded, so a person
//! sees at a glance what each fault did to the system.
//!
//! The SVG is written here with maud rather than by a plotting crate: it is
//! small, has no dependencies, and stays a pure function of the operations.
//! A run of a million operations must not make the page heavy, so the scatter
//! is downsampled deterministically: beyond a few points per pixel column,
//! only the fastest and the slowest of each kind and outcome in each column
//! are kept, and every series is one `<path>` of dots.

use std::collections::BTreeMap;
use std::fmt::Write;

use leasehold_checker::{Event, Op, Outcome};
use maud::{Markup, html};

use super::text::Text;
use super::timeline::{history_end, kind_of, nemesis_periods};

/// Width of both plots (SVG units; they scale to the page).
const W: f64 = 900.0;
/// Left edge of the plotting area (room for the y labels).
const LEFT: f64 = 64.0;
/// Right edge of the plotting area.
const RIGHT: f64 = W - 12.0;
/// Pixel columns of the plotting area: the unit of downsampling.
const COLUMNS: usize = (RIGHT - LEFT) as usize;
/// Up to this many points per column on average, every point is drawn.
const ALL_POINTS_PER_COLUMN: usize = 4;
/// Top and bottom of the plotting area of each plot.
const TOP: f64 = 10.0;
const LATENCY_BOTTOM: f64 = 250.0;
const THROUGHPUT_BOTTOM: f64 = 170.0;
/// Room under the plotting area for the time axis.
const AXIS_ROOM: f64 = 34.0;

const NS_PER_S: u64 = 1_000_000_000;

/// Colour of each well-known kind; others take [`OTHER`].
fn colour(kind: &str) -> &'static str {
    match kind {
        "acquire" => "#0969da",
        "renew" => "#8250df",
        "release" => "#1b7c83",
        "write" => "#d4a72c",
        "read" => "#cf222e",
        _ => OTHER,
    }
}
const OTHER: &str = "#57606a";

/// Colour of each outcome in the throughput plot.
fn outcome_colour(o: usize) -> &'static str {
    ["#2da44e", "#e16f24", "#8c959f"][o]
}
const OUTCOME_NAMES: [&str; 3] = ["ok", "failed", "unknown (info)"];

fn outcome_slot(o: Outcome) -> usize {
    match o {
        Outcome::Ok => 0,
        Outcome::Fail => 1,
        Outcome::Info => 2,
    }
}

/// One series of the scatter: a kind, and whether its ops completed `ok`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Series {
    kind: String,
    ok: bool,
}

/// The points of the scatter in plot coordinates, per series: every point
/// when there are few, else per pixel column the lowest and the highest of
/// each series. At most `2 × COLUMNS` points per series either way once
/// downsampled; identical points are drawn once.
fn scatter(
    ops: &[Op],
    x: impl Fn(u64) -> f64,
    y: impl Fn(u64) -> f64,
) -> BTreeMap<Series, Vec<(i32, i32)>> {
    let completed: Vec<(&Op, u64)> = ops
        .iter()
        .filter_map(|o| Some((o, o.complete_time?.saturating_sub(o.invoke_time))))
        .collect();
    let all = completed.len() <= ALL_POINTS_PER_COLUMN * COLUMNS;
    // (series, column) → (min y, max y) in plot coordinates.
    let mut cells: BTreeMap<(Series, i32), (i32, i32)> = BTreeMap::new();
    let mut points: BTreeMap<Series, Vec<(i32, i32)>> = BTreeMap::new();
    for (op, latency) in completed {
        let series = Series {
            kind: kind_of(op).to_owned(),
            ok: op.is_ok(),
        };
        let (px, py) = (x(op.invoke_time).round() as i32, y(latency).round() as i32);
        if all {
            points.entry(series).or_default().push((px, py));
        } else {
            let cell = cells.entry((series, px)).or_insert((py, py));
            cell.0 = cell.0.min(py);
            cell.1 = cell.1.max(py);
        }
    }
    for ((series, px), (lo, hi)) in cells {
        let p = points.entry(series).or_default();
        p.push((px, lo));
        p.push((px, hi));
    }
    for p in points.values_mut() {
        p.sort_unstable();
        p.dedup();
    }
    points
}

/// Round ticks covering `[lo, hi]`: steps of 1, 2 or 5 × 10ⁿ, about `n` of them.
pub(super) fn ticks(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    let span = (hi - lo).max(f64::MIN_POSITIVE);
    let raw = span / n.max(1) as f64;
    let p = 10f64.powf(raw.log10().floor());
    let step = match raw / p {
        m if m <= 1.0 => p,
        m if m <= 2.0 => 2.0 * p,
        m if m <= 5.0 => 5.0 * p,
        _ => 10.0 * p,
    };
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    (first..=last).map(|i| i as f64 * step).collect()
}

/// A time tick in ns since the start, in the unit its step calls for.
pub(super) fn time_label(ns: f64, step_ns: f64) -> String {
    if step_ns >= 1e9 {
        let digits = (-(step_ns / 1e9).log10().floor()).max(0.0) as usize;
        format!("{:.*} s", digits, ns / 1e9)
    } else {
        ms_label(ns, step_ns)
    }
}

/// A time tick in ms, with as many decimals as its step needs.
pub(super) fn ms_label(ns: f64, step_ns: f64) -> String {
    let digits = (-(step_ns / 1e6).log10()).ceil().max(0.0) as usize;
    format!("{:.*} ms", digits, ns / 1e6)
}

/// "1 ms", "100 µs", "10 s": a power of ten of nanoseconds.
fn decade_label(exp: i32) -> String {
    let (unit, base) = match exp {
        e if e >= 9 => ("s", 9),
        e if e >= 6 => ("ms", 6),
        e if e >= 3 => ("µs", 3),
        _ => ("ns", 0),
    };
    format!("{} {unit}", 10u64.pow((exp - base) as u32))
}

fn f1(v: f64) -> String {
    format!("{v:.1}")
}

/// The time axis under a plot, and the nemesis periods shaded over it.
fn time_frame(events: &[Event], end: u64, bottom: f64, x: &dyn Fn(u64) -> f64) -> Markup {
    let tick_list = ticks(0.0, end as f64, 8);
    let step = match tick_list.as_slice() {
        [a, b, ..] => b - a,
        _ => end.max(1) as f64,
    };
    html! {
        @for p in nemesis_periods(events) {
            @let (x0, x1) = (x(p.start), x(p.end_or(end)));
            rect x=(f1(x0)) y=(TOP) width=(f1((x1 - x0).max(1.5))) height=(f1(bottom - TOP))
                fill="#bf3989" fill-opacity="0.13" { title { (Text(&p.label())) } }
        }
        line x1=(LEFT) x2=(RIGHT) y1=(bottom) y2=(bottom) stroke="#8c959f" {}
        @for t in &tick_list {
            @let tx = x(*t as u64);
            line x1=(f1(tx)) x2=(f1(tx)) y1=(bottom) y2=(bottom + 5.0) stroke="#8c959f" {}
            text x=(f1(tx)) y=(bottom + 17.0) text-anchor="middle" { (time_label(*t, step)) }
        }
        text x=(f1((LEFT + RIGHT) / 2.0)) y=(bottom + 31.0) text-anchor="middle" fill="#57606a" {
            "time since the start of the run"
        }
    }
}

/// The latency scatter: x the invocation time, y the latency on a log scale.
fn latency_plot(events: &[Event], ops: &[Op], end: u64) -> Markup {
    let latencies = ops
        .iter()
        .filter_map(|o| Some(o.complete_time?.saturating_sub(o.invoke_time).max(1)));
    let (lo, hi) = latencies.fold((u64::MAX, 1), |(lo, hi), l| (lo.min(l), hi.max(l)));
    let lo_exp = (lo.max(1) as f64).log10().floor() as i32;
    let hi_exp = ((hi as f64).log10().ceil() as i32).max(lo_exp + 1);
    let x = |t: u64| LEFT + (RIGHT - LEFT) * t as f64 / end.max(1) as f64;
    let y = |l: u64| {
        let f = ((l.max(1) as f64).log10() - f64::from(lo_exp)) / f64::from(hi_exp - lo_exp);
        LATENCY_BOTTOM - (LATENCY_BOTTOM - TOP) * f
    };
    let points = scatter(ops, x, y);
    let height = LATENCY_BOTTOM + AXIS_ROOM;
    html! {
        svg class="plot" viewBox={ "0 0 " (W) " " (height) } width=(W) height=(height)
            font-size="11" role="img"
            aria-label="latency of each operation over time" {
            @for e in lo_exp..=hi_exp {
                @let ty = y(10u64.saturating_pow(e as u32));
                line x1=(LEFT) x2=(RIGHT) y1=(f1(ty)) y2=(f1(ty)) stroke="#eaeef2" {}
                text x=(LEFT - 6.0) y=(f1(ty + 4.0)) text-anchor="end" fill="#57606a" { (decade_label(e)) }
            }
            text x="4" y=(f1(TOP + 4.0)) fill="#57606a" { "latency" }
            (time_frame(events, end, LATENCY_BOTTOM, &x))
            @for (series, pts) in &points {
                path fill="none" stroke=(colour(&series.kind))
                    stroke-width=(if series.ok { "4" } else { "3.5" })
                    stroke-linecap=(if series.ok { "round" } else { "square" })
                    stroke-opacity=(if series.ok { "0.75" } else { "0.9" })
                    d=(dots(pts)) {
                    title { (Text(&series.kind)) (if series.ok { " ok" } else { " failed or unknown" }) }
                }
            }
        }
    }
}

/// `M x y h0` per point: with round or square caps, each is a dot.
fn dots(points: &[(i32, i32)]) -> String {
    let mut d = String::with_capacity(points.len() * 10);
    for (x, y) in points {
        let _ = write!(d, "M{x} {y}h0");
    }
    d
}

/// Completed operations per bucket (1 s, or more so that a bucket is at
/// least a pixel wide), stacked by outcome.
fn throughput_plot(events: &[Event], ops: &[Op], end: u64) -> Markup {
    let min_bucket = (end / COLUMNS as u64).div_ceil(NS_PER_S).max(1) * NS_PER_S;
    let buckets = (end / min_bucket + 1) as usize;
    let mut counts = vec![[0u64; 3]; buckets];
    for op in ops {
        if let Some(t) = op.complete_time {
            let b = ((t / min_bucket) as usize).min(buckets - 1);
            counts[b][outcome_slot(op.outcome)] += 1;
        }
    }
    let secs = (min_bucket / NS_PER_S) as f64;
    let peak = counts
        .iter()
        .map(|c| c.iter().sum::<u64>())
        .max()
        .unwrap_or(0) as f64
        / secs;
    let y_ticks = ticks(0.0, peak.max(1.0), 4);
    let top_value = y_ticks.last().copied().unwrap_or(1.0).max(peak).max(1.0);
    let y = |rate: f64| THROUGHPUT_BOTTOM - (THROUGHPUT_BOTTOM - TOP) * rate / top_value;
    let x = |t: u64| LEFT + (RIGHT - LEFT) * t as f64 / end.max(1) as f64;
    // One path per outcome: a closed box per bucket, stacked ok, fail, info.
    let mut paths = [String::new(), String::new(), String::new()];
    for (b, c) in counts.iter().enumerate() {
        let (x0, x1) = (
            x(b as u64 * min_bucket),
            x(((b + 1) as u64 * min_bucket).min(end.max(1))),
        );
        let mut below = 0.0;
        for (o, path) in paths.iter_mut().enumerate() {
            if c[o] == 0 {
                continue;
            }
            let above = below + c[o] as f64 / secs;
            let _ = write!(
                path,
                "M{} {}H{}V{}H{}Z",
                f1(x0),
                f1(y(below)),
                f1((x1 - 0.5).max(x0 + 0.5)),
                f1(y(above)),
                f1(x0)
            );
            below = above;
        }
    }
    let height = THROUGHPUT_BOTTOM + AXIS_ROOM;
    html! {
        svg class="plot" viewBox={ "0 0 " (W) " " (height) } width=(W) height=(height)
            font-size="11" role="img"
            aria-label="completed operations per second" {
            @for v in &y_ticks {
                line x1=(LEFT) x2=(RIGHT) y1=(f1(y(*v))) y2=(f1(y(*v))) stroke="#eaeef2" {}
                text x=(LEFT - 6.0) y=(f1(y(*v) + 4.0)) text-anchor="end" fill="#57606a" { (v) }
            }
            text x="4" y=(f1(TOP + 4.0)) fill="#57606a" { "ops/s" }
            (time_frame(events, end, THROUGHPUT_BOTTOM, &x))
            @for (o, d) in paths.iter().enumerate() {
                @if !d.is_empty() {
                    path fill=(outcome_colour(o)) d=(d) { title { (OUTCOME_NAMES[o]) } }
                }
            }
        }
    }
}

/// The `#plots` section; a sentence instead of plots when no operation
/// completed.
pub(super) fn plots_section(events: &[Event], ops: &[Op]) -> Markup {
    let completed = ops.iter().filter(|o| o.complete_time.is_some()).count();
    let end = history_end(events, ops).max(1);
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    for op in ops.iter().filter(|o| o.complete_time.is_some()) {
        *kinds.entry(kind_of(op)).or_default() += 1;
    }
    let bucket_s = (end / COLUMNS as u64).div_ceil(NS_PER_S).max(1);
    html! {
        section id="plots" {
            h2 { "Plots" }
            @if completed == 0 {
                p { "No operation completed, so there is no latency or throughput to plot." }
            } @else {
                h3 { "Latency" }
                p class="note" {
                    "Each completed operation at the time it was invoked, by how long it took (logarithmic scale). "
                    "Dots: ok; squares: failed or unknown. Shaded: a fault in force."
                    @if completed > ALL_POINTS_PER_COLUMN * COLUMNS {
                        " " (completed) " operations: per pixel column, only the fastest and the slowest of each kind are drawn."
                    }
                    @if completed < ops.len() {
                        " " (ops.len() - completed) " operations never completed and are not shown."
                    }
                }
                p class="plot-legend" {
                    @for (kind, n) in &kinds {
                        span style={ "display:inline-block;margin-right:1rem" } {
                            svg width="12" height="12" viewBox="0 0 12 12" {
                                circle cx="6" cy="6" r="5" fill=(colour(kind)) {}
                            }
                            " " (Text(kind)) " (" (n) ")"
                        }
                    }
                }
                (latency_plot(events, ops, end))
                h3 { "Throughput" }
                p class="note" {
                    "Completed operations per second"
                    @if bucket_s > 1 { " (averaged over " (bucket_s) " s)" }
                    ", stacked by outcome: "
                    @for (o, name) in OUTCOME_NAMES.iter().enumerate() {
                        @if o > 0 { ", " }
                        span style={ "color:" (outcome_colour(o)) ";font-weight:600" } { (name) }
                    }
                    "."
                }
                (throughput_plot(events, ops, end))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::seed_history;
    use leasehold_checker::{Call, History, Process};

    fn op(i: u64, t: u64, latency: u64, kind: usize, ok: bool) -> Op {
        let call = match kind {
            0 => Call::Acquire {
                lock: "L".into(),
                token: None,
                lease_ms: None,
            },
            1 => Call::Write {
                key: "k".into(),
                token: 1,
                data: format!("d{i}"),
            },
            _ => Call::Release {
                lock: "L".into(),
                token: 1,
            },
        };
        Op {
            process: Process::Client(i % 7),
            node: Some(format!("w{}", i % 7)),
            invoke_index: 2 * i,
            invoke_time: t,
            complete_index: Some(2 * i + 1),
            complete_time: Some(t + latency),
            outcome: if ok { Outcome::Ok } else { Outcome::Fail },
            call,
        }
    }

    #[test]
    fn a_million_ops_stay_a_bounded_number_of_points() {
        // Deterministic pseudo-random latencies over 100 s.
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let ops: Vec<Op> = (0..1_000_000u64)
            .map(|i| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                op(
                    i,
                    i * 100_000,
                    50_000 + seed % 2_000_000_000,
                    (seed % 3) as usize,
                    !seed.is_multiple_of(5),
                )
            })
            .collect();
        let end = history_end(&[], &ops);
        let x = |t: u64| LEFT + (RIGHT - LEFT) * t as f64 / end as f64;
        let y = |l: u64| (l as f64).log10();
        let points = scatter(&ops, x, y);
        // 3 kinds × ok/not ok, at most two points per column each.
        assert_eq!(points.len(), 6);
        let total: usize = points.values().map(Vec::len).sum();
        assert!(total <= 6 * 2 * (COLUMNS + 1), "{total} points");
        assert!(total > COLUMNS, "the plot is not empty: {total}");
        // The whole section stays small.
        let html = plots_section(&[], &ops).into_string();
        assert!(html.len() < 400_000, "{} bytes", html.len());
        assert!(html.contains(" operations: per pixel column, only the fastest and the slowest"));
    }

    #[test]
    fn few_ops_are_all_drawn() {
        let ops: Vec<Op> = (0..100)
            .map(|i| op(i, i * 1_000_000, 1_000_000 + i * 1000, 1, true))
            .collect();
        let points = scatter(&ops, |t| t as f64 / 1e6, |l| l as f64 / 1000.0);
        assert_eq!(points.values().map(Vec::len).sum::<usize>(), 100);
    }

    #[test]
    fn plots_of_the_seed_history_shade_the_pause() {
        let h = seed_history(false);
        let ops = History::new(h.clone()).ops();
        let html = plots_section(&h, &ops).into_string();
        assert!(html.starts_with("<section id=\"plots\"><h2>Plots</h2>"));
        assert_eq!(html.matches("<svg class=\"plot\"").count(), 2);
        // The pause of w1, in both plots.
        assert_eq!(html.matches("<title>pause of w1, 500.0 ms").count(), 2);
        for kind in ["acquire", "write"] {
            assert!(html.contains(&format!(" {kind} (")), "{kind} in the legend");
        }
        assert!(html.contains("<title>write ok</title>"));
    }

    #[test]
    fn no_ops_no_svg() {
        let html = plots_section(&[], &[]).into_string();
        assert!(html.contains("<h2>Plots</h2>"));
        assert!(html.contains("No operation completed"));
        assert!(!html.contains("<svg"));
    }

    #[test]
    fn ticks_and_labels_are_round() {
        assert_eq!(ticks(0.0, 10.0, 5), [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        assert_eq!(time_label(2e9, 1e9), "2 s");
        assert_eq!(time_label(2.5e8, 5e7), "250 ms");
        assert_eq!(time_label(2.5e6, 5e5), "2.5 ms");
        assert_eq!(ms_label(3e9, 1e9), "3000 ms");
        assert_eq!(
            (decade_label(5), decade_label(6), decade_label(10)),
            ("100 µs".into(), "1 ms".into(), "10 s".into())
        );
    }
}
