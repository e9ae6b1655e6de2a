//! `report.html`: the page a person opens after a run.
//!
//! One self-contained file: inline CSS and one script of our own (the
//! timeline's), no external URL of any kind, so it opens from disk, from a CI
//! artifact or on an air-gapped machine, and cannot leak anything by loading a
//! resource; a Content-Security-Policy meta tag forbids it loading any. The page
//! is built with maud, which escapes every value by default; every string that
//! came from the history, the config or a node is rendered through
//! [`text::Text`], which also breaks up `://` so the page never holds a URL.
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
mod mini;
mod nemesis;
mod plots;
mod run;
mod stale_write;
mod story;
mod text;
mod timeline;

use std::collections::HashSet;

use leasehold_checker::{Event, History, Leases};
use maud::{DOCTYPE, Markup, html};

use crate::results::Results;
use context::Ctx;

/// Renders the whole report. `history` may be empty (a run that failed early, or a
/// report rebuilt without its history): the sections that need it then say so.
pub fn render_report(results: &Results, history: &[Event]) -> String {
    render_report_with_config(results, history, None)
}

/// [`render_report`], showing `config` (the config as run, `config.yaml`) in
/// the "Run" section.
pub fn render_report_with_config(
    results: &Results,
    history: &[Event],
    config: Option<&str>,
) -> String {
    let ops = History::new(history.to_vec()).ops();
    let leases = Leases::from_ops(&ops);
    let ctx = Ctx::new(history, &ops, &leases);
    // Every operation any anomaly names, all of them and not only the stories
    // told, so the timeline marks each.
    let anomaly_ops: HashSet<u64> = results
        .checks
        .iter()
        .flat_map(|c| &c.anomalies)
        .flat_map(|a| ctx.ops_of(story::anomaly_indexes(a)))
        .collect();
    let (story, evidence) = story::story_section(results, &ctx);
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            (header::head(results))
            body {
                (header::header(results))
                (run::run_section(results, config))
                (story)
                (timeline::timeline_section(history, &ops, &leases, &anomaly_ops))
                (plots::plots_section(history, &ops))
                (checks::checks_section(&results.checks))
                (margins::margins_section(results.margins.as_ref()))
                (nemesis::nemesis_section(results))
                (nemesis::nodes_section(results))
                (history::history_section(&ctx, &evidence))
                (footer(results))
            }
        }
    };
    let mut h = page.into_string();
    h.push('\n');
    h
}

fn footer(results: &Results) -> Markup {
    html! {
        footer {
            "leasehold report · results schema " (results.schema_version)
            " · all times are since the start of the run"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::text::Text;
    use super::*;
    use crate::results::{LockSystemSummary, NodeSummary};
    use crate::test_support::{sample_results, seed_anomaly, seed_history, stale};
    use leasehold_checker::Validity;
    use leasehold_checker::{Anomaly, CheckReport};
    use maud::Render;

    /// A string as the report shows it.
    fn esc(s: &str) -> String {
        Text(s).render().into_string()
    }

    /// The part of the page from the element with `id` to the next section
    /// (or the footer).
    fn section<'h>(html: &'h str, id: &str) -> &'h str {
        let start = html
            .find(&format!("<section id=\"{id}\""))
            .unwrap_or_else(|| panic!("no section {id}"));
        let rest = &html[start + 1..];
        let end = ["<section", "<footer"]
            .iter()
            .filter_map(|t| rest.find(t))
            .min()
            .unwrap_or(rest.len());
        &html[start..start + 1 + end]
    }

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
            "<b>w1</b> acquires lock &quot;L&quot;: token <b>33</b>, lease 2000 ms",
            "pauses <b>w1</b>",
            "<b>w1</b>'s lease on token 33 expires",
            "<b>w2</b> acquires lock &quot;L&quot;: token <b>34</b>",
            "<b>w2</b> writes &quot;w2-1&quot; to &quot;k&quot; with token 34 (accepted)",
            "resumes <b>w1</b>",
            "<b>w1</b> writes &quot;w1-2&quot; to &quot;k&quot; with token 33 (sent)",
            "storage accepts <b>w1</b>'s write &quot;w1-2&quot; to &quot;k&quot; with token 33, 1502.0 ms after its lease expired",
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
        // Each operation the anomaly names links to the timeline: the stale
        // grant (invoked at #0), the next grant (#5) and the stale write (#10).
        for op in [0, 5, 10] {
            assert!(
                story.contains(&format!("href=\"#op-{op}\"")),
                "no timeline link to op {op}"
            );
        }
        // The fencing-order anomaly cites completions #8 and #11: their ops.
        assert!(story.contains("href=\"#op-7\""));
        // The timeline comes between the story and the checks, the plots after it.
        let at = |id: &str| html.find(&format!("<section id=\"{id}\"")).unwrap();
        assert!(at("story") < at("timeline"));
        assert!(at("timeline") < at("plots"));
        assert!(at("plots") < at("checks"));
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
        assert!(!html.contains("<script>x"));
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
        let build = |hostile: bool| {
            let mut r = invalid_run();
            let mut history = seed_history(false);
            if hostile {
                r.test = "t<i>".into();
                r.nodes[0].name = "<script>alert(1)</script>".into();
                r.error = Some("see https://example.com/x".into());
                history[2].node = Some("<script>x</script>".into());
                history[3].error = Some("dial http://10.0.0.1:2379 failed".into());
                r.checks[0]
                    .anomalies
                    .push(stale("<script>", 9, "</td>", 4000));
            } else {
                r.test = "t-i".into();
                r.nodes[0].name = "scriptalert".into();
                r.error = Some("see example.com".into());
                history[2].node = Some("scriptx".into());
                history[3].error = Some("dial 10.0.0.1:2379 failed".into());
                r.checks[0].anomalies.push(stale("script", 9, "td", 4000));
            }
            render_report(&r, &history)
        };
        let html = build(true);
        // The only script elements are the report's own: as many as in the same
        // run with harmless strings.
        assert_eq!(
            html.matches("<script").count(),
            build(false).matches("<script").count(),
            "unescaped script"
        );
        assert!(!html.contains("<script>alert") && !html.contains("<script>x"));
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(html.contains("t&lt;i&gt;"));
        assert!(!html.contains("http://") && !html.contains("https://"));
        assert!(!html.contains("url("));
        assert!(html.contains("<span class=\"badge error\">ERROR</span>"));
        assert!(html.contains(
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
             style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">"
        ));
    }

    #[test]
    fn every_section_escapes_by_default() {
        const HOSTILE: &str = "\"><script>x</script>http://evil";
        // As text: quote, brackets escaped, the URL broken up.
        const SHOWN: &str = "&quot;&gt;&lt;script&gt;x&lt;/script&gt;http:&#47;&#47;evil";
        // Inside a JSON or Debug rendering the quote is backslashed first.
        const QUOTED: &str = "\\&quot;&gt;&lt;script&gt;x&lt;/script&gt;http:&#47;&#47;evil";
        let mut r = invalid_run();
        r.test = HOSTILE.into();
        r.run_id = HOSTILE.into();
        r.error = Some(HOSTILE.into());
        r.checks[1].name = HOSTILE.into();
        r.checks[1].summary = HOSTILE.into();
        r.checks[1]
            .stats
            .insert(HOSTILE.into(), serde_json::Value::String(HOSTILE.into()));
        r.checks[0].anomalies.push(stale(HOSTILE, 9, HOSTILE, 4000));
        r.nemesis.schedule[0].target = HOSTILE.into();
        r.nemesis.faults[0].note = Some(HOSTILE.into());
        r.nodes[0].name = HOSTILE.into();
        r.nodes[0].addr = HOSTILE.into();
        r.lock_system = Some(LockSystemSummary {
            name: HOSTILE.into(),
            version: HOSTILE.into(),
            token: HOSTILE.into(),
        });
        let mut history = seed_history(false);
        // #8 and #11 are cited by the fencing-order anomaly's evidence list.
        history[8].node = Some(HOSTILE.into());
        history[11].error = Some(HOSTILE.into());
        history[11].value = serde_json::json!({ "data": HOSTILE });
        // The lock of w1's grant of token 33, which the stale write's story tells.
        history[0].value = serde_json::json!({ "lock": HOSTILE });
        history[1].value = serde_json::json!({ "lock": HOSTILE, "token": 33, "lease_ms": 2000 });
        let ops = History::new(history.clone()).ops();
        let mut margins = leasehold_checker::lease_margins(leasehold_checker::CheckInput {
            ops: &ops,
            ledger: None,
        });
        margins.closest[0].writer = HOSTILE.into();
        margins.closest[0].key = HOSTILE.into();
        margins.closest[0].data = HOSTILE.into();
        r.margins = Some(margins);
        let html = render_report(&r, &history);

        assert!(!html.contains("<script>x"), "unescaped script");
        assert!(!html.contains("http://"), "a URL");
        let head = &html[..html.find("</head>").unwrap()];
        let header = &html[html.find("<header>").unwrap()..html.find("</header>").unwrap()];
        assert!(head.contains(&format!("<title>{SHOWN} — ERROR")), "title");
        assert!(header.contains(&format!("<h1>{SHOWN}</h1>")), "test name");
        let run = section(&html, "run");
        assert!(run.contains(&format!("<td>{SHOWN}</td>")), "run id");
        assert!(run.contains(&format!("<pre>{SHOWN}</pre>")), "error");
        let story = section(&html, "story");
        assert!(story.contains(&format!("<h3>{SHOWN} ")), "check name");
        assert!(story.contains(&format!("<b>{SHOWN}</b> ok write")), "node");
        assert!(story.contains(&format!(" — {SHOWN}")), "event error");
        assert!(
            story.contains(&format!("write &quot;{QUOTED}&quot;")),
            "write value"
        );
        assert!(
            story.contains(&format!("lock &quot;{QUOTED}&quot;: token")),
            "lock name"
        );
        let checks = section(&html, "checks");
        assert!(checks.contains(&format!("<td>{SHOWN}</td>")), "summary");
        assert!(
            checks.contains(&format!("{SHOWN}\u{a0}=\u{a0}{SHOWN}")),
            "stats"
        );
        let near = section(&html, "margins");
        // Writer, key and data of the closest call.
        assert_eq!(near.matches(SHOWN).count(), 3, "margins");
        let nemesis = section(&html, "nemesis");
        assert_eq!(
            nemesis.matches(&format!("<td>{SHOWN}</td>")).count(),
            2,
            "schedule target and fault note"
        );
        let run = section(&html, "run");
        assert!(run.contains(&format!("{SHOWN} {SHOWN} · fencing token: {SHOWN}")));
        let nodes = section(&html, "nodes");
        assert!(nodes.contains(&format!(
            "<tr><td>{SHOWN}</td><td>worker</td><td>{SHOWN}</td></tr>"
        )));
        let table = section(&html, "history");
        assert!(
            table.contains(&format!("<td>{SHOWN}</td><td>ok</td><td>write</td>")),
            "node"
        );
        assert!(table.contains(&format!("<td>{SHOWN}</td></tr>")), "error");
        assert!(
            table.contains(&format!("<code>{{&quot;data&quot;:&quot;{QUOTED}")),
            "value"
        );
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
    fn the_run_section_shows_the_lock_system_storage_and_the_config_escaped() {
        let mut r = sample_results(Validity::Valid);
        r.lock_system = Some(LockSystemSummary {
            name: "redis".into(),
            version: "7.0.15".into(),
            token: "INCR of a fence counter".into(),
        });
        let config = "test: t\nlock: { service: redis }\n# </pre><script>x</script>\n";
        let html = render_report_with_config(&r, &seed_history(false), Some(config));
        let run = &html[html.find("id=\"run\"").unwrap()..html.find("id=\"story\"").unwrap()];
        assert!(run.contains("redis 7.0.15 · fencing token: INCR of a fence counter"));
        assert!(run.contains("The config as run (config.yaml)"));
        assert!(run.contains("lock: { service: redis }"));
        assert!(run.contains("&lt;/pre&gt;&lt;script&gt;x&lt;/script&gt;"));
        assert!(!html.contains("<script>x"));
        // Without a config (a history checked on its own), no config block.
        assert!(!render_report(&r, &[]).contains("config.yaml"));
    }

    #[test]
    fn renders_without_history_or_checks() {
        let html = render_report(&sample_results(Validity::Unknown), &[]);
        assert!(html.contains("No history was recorded."));
        assert!(html.contains("No check ran."));
        assert!(html.ends_with("</html>\n"));
    }
}
