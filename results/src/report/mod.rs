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

mod checks;
mod context;
mod counterexample;
mod css;
mod header;
mod history;
mod margins;
mod nemesis;
mod run;
mod stale_write;
mod story;
mod text;

use std::fmt::Write;

use leasehold_checker::{Event, History, Leases};

use crate::results::Results;
use context::{Ctx, MAX_HISTORY_ROWS};

/// Renders the whole report. `history` may be empty (a run that failed early, or a
/// report rebuilt without its history): the sections that need it then say so.
pub fn render_report(results: &Results, history: &[Event]) -> String {
    let ops = History::new(history.to_vec()).ops();
    let leases = Leases::from_ops(&ops);
    let ctx = Ctx::new(history, &ops, &leases);
    let mut h = String::with_capacity(64 * 1024 + history.len().min(MAX_HISTORY_ROWS) * 200);
    header::head_and_header(&mut h, results);
    run::run_section(&mut h, results);
    let evidence = story::story_section(&mut h, results, &ctx);
    checks::checks_section(&mut h, &results.checks);
    margins::margins_section(&mut h, results.margins.as_ref());
    nemesis::nemesis_section(&mut h, results);
    nemesis::nodes_section(&mut h, results);
    history::history_section(&mut h, &ctx, &evidence);
    footer(&mut h, results);
    h
}

fn footer(h: &mut String, results: &Results) {
    let _ = write!(
        h,
        "<footer>leasehold report · results schema {} · all times are since the start of the run</footer>\n</body>\n</html>\n",
        results.schema_version
    );
}

#[cfg(test)]
mod tests {
    use super::text::esc;
    use super::*;
    use crate::results::NodeSummary;
    use crate::test_support::{sample_results, seed_anomaly, seed_history, stale};
    use leasehold_checker::Validity;
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
    fn near_misses_show_the_closest_calls_escaped_and_the_histogram() {
        let b = seed_history(false);
        let ops = History::new(b.clone()).ops();
        let mut margins = leasehold_checker::lease_margins(leasehold_checker::CheckInput {
            ops: &ops,
            ledger: None,
        });
        assert!(margins.writes > 0);
        margins.closest[0].writer = "<script>x</script>".into();
        let mut r = sample_results(Validity::Valid);
        r.margins = Some(margins.clone());
        let html = render_report(&r, &b);
        let section = &html[html.find("id=\"margins\"").expect("a margins section")..];
        assert!(section.contains("<h2>Near misses</h2>"));
        assert!(section.contains("&lt;script&gt;x&lt;/script&gt;"));
        assert!(!html.contains("<script>"));
        for bucket in &margins.histogram {
            assert!(section.contains(&esc(&bucket.label)), "{}", bucket.label);
        }
        assert_eq!(
            section.matches("<tr class=").count(),
            margins.closest.len(),
            "one row per closest call"
        );
        // Without margins (a Jepsen history), no section.
        r.margins = None;
        assert!(!render_report(&r, &b).contains("id=\"margins\""));
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
