//! The pages, in maud: every value from the store is escaped by maud, links
//! are built from percent-encoded names, and the style sheet is inline, so a
//! page loads nothing from anywhere.

use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::safety::{encode, run_href};
use super::store::{Entry, Outcome, Run, VerdictFilter};

/// At most this many cells in a test's trend row: the newest runs.
pub(super) const TREND_CELLS: usize = 120;

const CSS: &str = "
body{font:14px/1.45 system-ui,sans-serif;margin:1.5em;color:#1d2125;background:#fff}
h1{font-size:1.4em;margin:0 0 .2em}h2{font-size:1.1em;margin:1.4em 0 .4em}
a{color:#0b57d0}small,.muted{color:#5f6368}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:.3em .6em;border-bottom:1px solid #e2e5e9;vertical-align:top}
th{background:#f4f6f8;font-weight:600}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.badge{display:inline-block;padding:0 .5em;border-radius:.6em;font-weight:600;color:#fff}
.valid{background:#1e8e3e}.invalid{background:#d93025}.unknown{background:#e37400}
.error{background:#7b1fa2}.none{background:#80868b}
table.trend{width:auto}.trend td{border:0;padding:.15em .6em}
.trend td:nth-child(-n+2){white-space:nowrap}
.cells{display:flex;flex-wrap:wrap;gap:2px;max-width:64em}
.cell{display:inline-block;width:11px;height:18px;border-radius:2px}
.cell:hover{outline:2px solid #1d2125}
form{margin:.6em 0;display:flex;gap:.6em;align-items:center;flex-wrap:wrap}
.msg{padding:.6em;background:#fdecea;border-left:4px solid #d93025}
code{background:#f4f6f8;padding:0 .2em}
";

/// The document around `body`.
fn layout(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " — leasehold" }
                // Our own constant style sheet: nothing in it comes from a run.
                style { (PreEscaped(CSS)) }
            }
            body { (body) }
        }
    }
}

/// A verdict badge: `valid`, `invalid (interrupted)`, `no results`.
fn badge(run: &Run) -> Markup {
    let s = &run.summary;
    let word = if s.interrupted {
        format!("{} (interrupted)", s.outcome.word())
    } else {
        s.outcome.word().to_owned()
    };
    html! {
        span class={"badge " (s.outcome.class())} title=[s.detail.as_deref()] { (word) }
    }
}

/// `2026-12-01 17:34:33.788Z`, from results.json or else the folder's name.
pub(super) fn run_time(run: &Run) -> String {
    match &run.summary.started_at {
        Some(t) => t.replacen('T', " ", 1),
        None => stamp_time(&run.stamp).unwrap_or_else(|| run.stamp.clone()),
    }
}

/// `20261201T173433.788Z` → `2026-12-01 17:34:33.788Z`.
fn stamp_time(stamp: &str) -> Option<String> {
    let b = stamp.as_bytes();
    let digits = |r: std::ops::Range<usize>| {
        b.get(r.clone())
            .filter(|d| d.iter().all(u8::is_ascii_digit))
            .map(|_| &stamp[r])
    };
    if b.get(8) != Some(&b'T') {
        return None;
    }
    Some(format!(
        "{}-{}-{} {}:{}:{}{}",
        digits(0..4)?,
        digits(4..6)?,
        digits(6..8)?,
        digits(9..11)?,
        digits(11..13)?,
        digits(13..15)?,
        &stamp[15..]
    ))
}

/// `0.214 ms`, `45.2 ms`, `10.3 s`, `4 min 12 s`.
fn duration(ms: f64) -> String {
    if ms < 1.0 {
        format!("{ms:.3} ms")
    } else if ms < 1000.0 {
        format!("{ms:.1} ms")
    } else if ms < 120_000.0 {
        format!("{:.1} s", ms / 1e3)
    } else {
        let s = (ms / 1e3).round() as u64;
        format!("{} min {} s", s / 60, s % 60)
    }
}

/// `1 run`, `2 runs`.
fn count(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// `812 B`, `12.4 KiB`, `3.1 MiB`.
fn size(len: u64) -> String {
    match len {
        0..1024 => format!("{len} B"),
        1024..1_048_576 => format!("{:.1} KiB", len as f64 / 1024.0),
        _ => format!("{:.1} MiB", len as f64 / 1_048_576.0),
    }
}

/// What the index shows: the runs that pass the filter, every test's trend.
pub(super) struct Index<'a> {
    pub store: &'a str,
    /// Every test of the store, sorted.
    pub tests: Vec<&'a str>,
    /// Every run of the trend's tests, newest first.
    pub trend_runs: Vec<&'a Run>,
    /// The runs that pass the filter, newest first.
    pub rows: Vec<&'a Run>,
    pub total: usize,
    pub test: Option<&'a str>,
    pub verdict: Option<&'a str>,
}

/// `/`: the filter form, the per-test trend and the table of runs.
pub(super) fn index(ix: &Index) -> Markup {
    let mut trend_tests: Vec<&str> = ix.tests.clone();
    if let Some(t) = ix.test {
        trend_tests.retain(|x| *x == t);
    }
    let body = html! {
        h1 { "leasehold runs" }
        p.muted { "Store " code { (ix.store) } ": " (count(ix.total, "run")) " of " (count(ix.tests.len(), "test")) "." }
        form method="get" action="/" {
            label { "Test "
                select name="test" {
                    option value="" { "all tests" }
                    @for t in &ix.tests {
                        option value=(t) selected[ix.test == Some(*t)] { (t) }
                    }
                }
            }
            label { "Verdict "
                select name="verdict" {
                    option value="" { "any verdict" }
                    @for (w, _) in VerdictFilter::ALL {
                        option value=(w) selected[ix.verdict == Some(w)] { (w) }
                    }
                }
            }
            button type="submit" { "Filter" }
            @if ix.test.is_some() || ix.verdict.is_some() { a href="/" { "show all" } }
        }
        @if let Some(t) = ix.test && !ix.tests.contains(&t) {
            p.msg { "No test named " code { (t) } " in this store." }
        }
        h2 { "Trend" small { " — each run of a test, oldest to newest" } }
        @if trend_tests.is_empty() {
            p.muted { "No runs yet." }
        } @else {
            table.trend {
                @for t in &trend_tests {
                    (trend_row(t, &ix.trend_runs))
                }
            }
        }
        h2 { "Runs" small { " — newest first" } }
        @if ix.rows.is_empty() {
            p.muted { "No run matches." }
        } @else {
            table #runs {
                thead { tr {
                    th { "test" } th { "time (UTC)" } th { "lock system" } th { "verdict" }
                    th { "seed" } th { "duration" } th { "faults" } th { "files" }
                } }
                tbody {
                    @for r in &ix.rows { (run_row(r)) }
                }
            }
        }
    };
    layout("runs", body)
}

fn trend_row(test: &str, runs: &[&Run]) -> Markup {
    // `runs` is newest first; the row reads oldest to newest.
    let mine: Vec<&Run> = runs.iter().filter(|r| r.test == test).copied().collect();
    let shown = &mine[..mine.len().min(TREND_CELLS)];
    let tally = |o: Outcome| mine.iter().filter(|r| r.summary.outcome == o).count();
    html! {
        tr {
            td { a href={"/?test=" (encode(test))} { (test) } }
            td.muted {
                (count(mine.len(), "run")) ": " (tally(Outcome::Valid)) " valid, "
                (tally(Outcome::Invalid)) " invalid"
                @if mine.len() > shown.len() { ", last " (shown.len()) " shown" }
            }
            td { div.cells {
                @for r in shown.iter().rev() {
                    @let label = format!("{} — {}", run_time(r), r.summary.outcome.word());
                    a class={"cell " (r.summary.outcome.class())}
                        href=(run_href(&r.test, &r.stamp, &[]))
                        title=(label) aria-label=(label) {}
                }
            } }
        }
    }
}

fn run_row(r: &Run) -> Markup {
    let s = &r.summary;
    html! {
        tr {
            td { (r.test) }
            td { a href=(run_href(&r.test, &r.stamp, &[])) { (run_time(r)) } }
            td { (s.lock.as_deref().unwrap_or("—")) }
            td { (badge(r)) }
            td.num { @if let Some(seed) = s.seed { (seed) } @else { "—" } }
            td.num { @if let Some(ms) = s.total_ms { (duration(ms)) } @else { "—" } }
            td title=(s.asked) { (s.faults) }
            td {
                @if r.has_report {
                    a href=(run_href(&r.test, &r.stamp, &["report.html"])) { "report" } " · "
                }
                a href=(run_href(&r.test, &r.stamp, &[])) { "files" }
            }
        }
    }
}

/// `/runs/<test>/<stamp>/[<folder>/]`: the run's summary and its files.
pub(super) fn listing(run: &Run, under: &[String], files: &[Entry], cut: bool) -> Markup {
    let s = &run.summary;
    let title = format!("{} / {}", run.test, run.stamp);
    let body = html! {
        p { a href="/" { "← all runs" } " · "
            a href={"/?test=" (encode(&run.test))} { "runs of " (run.test) } }
        h1 { (run.test) " " small { (run.stamp) } }
        p {
            (badge(run))
            " " (run_time(run))
            " · seed " (s.seed.map_or_else(|| "—".to_owned(), |x| x.to_string()))
            " · " (s.lock.as_deref().unwrap_or("no lock system recorded"))
            " · " (s.total_ms.map_or_else(|| "not timed".to_owned(), duration))
            " · faults: " (s.faults)
            @if run.has_report {
                " · " a href=(run_href(&run.test, &run.stamp, &["report.html"])) { "report" }
            }
        }
        @if let Some(d) = &s.detail { p.msg { (d) } }
        h2 {
            "Files"
            @if !under.is_empty() { " in " code { (under.join("/")) } }
        }
        @if files.is_empty() {
            p.muted { "No files." }
        } @else {
            table #files {
                thead { tr { th { "file" } th.num { "size" } } }
                tbody {
                    @for f in files {
                        @let parts: Vec<&str> = f.path.iter().map(String::as_str).collect();
                        tr {
                            td { a href=(run_href(&run.test, &run.stamp, &parts)) { (parts.join("/")) } }
                            td.num { (size(f.len)) }
                        }
                    }
                }
            }
            @if cut { p.muted { "Only the first " (super::store::MAX_ENTRIES) " files are listed." } }
        }
    };
    layout(&title, body)
}

/// An error page: its status line as the heading, what went wrong, a way back.
pub(super) fn error(status: axum::http::StatusCode, message: &str) -> Markup {
    let heading = format!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("error")
    );
    let body = html! {
        h1 { (heading) }
        p.msg { (message) }
        p { a href="/" { "← all runs" } }
    };
    layout(&heading, body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::serve::store::Summary;
    use std::sync::Arc;

    fn run(test: &str, stamp: &str, json: &str) -> Run {
        Run {
            test: test.into(),
            stamp: stamp.into(),
            summary: Arc::new(Summary::parse(json)),
            has_report: true,
        }
    }

    #[test]
    fn everything_from_the_store_is_escaped() {
        let evil = "<script>alert(1)</script>";
        let r = run(
            evil,
            "20260101T000000.000Z",
            r#"{"verdict":"unknown","error":"<img src=x onerror=alert(1)>",
               "lock_system":{"name":"<b>","version":"\"x"}}"#,
        );
        let ix = Index {
            store: "/s<tore>",
            tests: vec![evil],
            trend_runs: vec![&r],
            rows: vec![&r],
            total: 1,
            test: None,
            verdict: None,
        };
        let html = index(&ix).into_string();
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(!html.contains("<b>"), "{html}");
        assert!(html.contains("&lt;script&gt;"));
        assert!(html.contains("/runs/%3Cscript%3Ealert%281%29%3C%2Fscript%3E/"));
        let page = listing(&r, &[], &[], false).into_string();
        assert!(!page.contains("<img"), "{page}");
        assert!(page.contains("&lt;img"));
    }

    #[test]
    fn the_trend_reads_oldest_to_newest() {
        let old = run("t", "20260101T000000.000Z", r#"{"verdict":"invalid"}"#);
        let new = run("t", "20260102T000000.000Z", r#"{"verdict":"valid"}"#);
        let ix = Index {
            store: "s",
            tests: vec!["t"],
            trend_runs: vec![&new, &old],
            rows: vec![&new, &old],
            total: 2,
            test: None,
            verdict: None,
        };
        let html = index(&ix).into_string();
        let trend = &html[html.find("Trend").unwrap()..html.find("id=\"runs\"").unwrap()];
        let a = trend.find("2026-01-01 00:00:00.000Z — invalid").unwrap();
        let b = trend.find("2026-01-02 00:00:00.000Z — valid").unwrap();
        assert!(a < b, "{trend}");
        assert!(trend.contains("2 runs: 1 valid, 1 invalid"), "{trend}");
    }

    #[test]
    fn formats() {
        assert_eq!(
            stamp_time("20261201T173433.788Z-1").unwrap(),
            "2026-12-01 17:34:33.788Z-1"
        );
        assert_eq!(stamp_time("notastamp"), None);
        assert_eq!(stamp_time("x"), None);
        assert_eq!(duration(5292.5), "5.3 s");
        assert_eq!(duration(252_000.0), "4 min 12 s");
        assert_eq!(size(2048), "2.0 KiB");
    }
}
