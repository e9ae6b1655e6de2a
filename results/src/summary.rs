//! The few lines a person reads in the terminal after a run.
//!
//! Plain text without colors, so it reads the same in a CI log, a pipe or a
//! snapshot test; the details are in `report.html`.

use std::fmt::Write;
use std::path::Path;

use leasehold_checker::Validity;

use crate::results::{FaultRecord, Results};

/// At most this many anomalies per check are listed; the report has them all.
const MAX_ANOMALIES_SHOWN: usize = 10;

impl Results {
    /// The verdict in one line, e.g. `INVALID: storage accepted 2 stale writes`.
    /// The same line heads the summary, the report and the JUnit output.
    pub fn headline(&self) -> String {
        if let Some(error) = &self.error {
            return format!("ERROR: the run failed: {}", one_line(error));
        }
        let word = self.verdict.as_str().to_uppercase();
        let mut reasons: Vec<String> = Vec::new();
        // What the checks that judged nothing lacked, said once.
        let mut lacking: Vec<String> = Vec::new();
        for check in self.checks.iter().filter(|c| c.validity == self.verdict) {
            if check.judged_nothing() {
                let why = one_line(&check.summary);
                let why = why
                    .strip_prefix("judged nothing: ")
                    .unwrap_or(&why)
                    .to_owned();
                if !lacking.contains(&why) {
                    lacking.push(why);
                }
                continue;
            }
            let reason = if check.name == "stale-write"
                && self.verdict == Validity::Invalid
                && self.counts.stale_accepted > 0
            {
                format!(
                    "storage accepted {}",
                    plural(self.counts.stale_accepted, "stale write")
                )
            } else if check.summary.is_empty() {
                format!("{} is {}", check.name, check.validity.as_str())
            } else {
                one_line(&check.summary)
            };
            reasons.push(reason);
        }
        let reason = match self.verdict {
            Validity::Valid if self.checks.is_empty() => "no check ran".to_owned(),
            Validity::Valid => format!(
                "{}, no anomalies",
                plural(self.checks.len() as u64, "check")
            ),
            // What the run missed explains the checks that judged nothing.
            Validity::Unknown if !self.missing.is_empty() => {
                format!("not enough happened to judge: {}", self.missing.join("; "))
            }
            Validity::Unknown if self.counts.events == 0 && reasons.is_empty() => {
                "the history is empty: no check judged anything".to_owned()
            }
            Validity::Unknown if !lacking.is_empty() => {
                reasons.push(format!("judged nothing: {}", lacking.join("; ")));
                reasons.join("; ")
            }
            _ if reasons.is_empty() => "no check decided".to_owned(),
            _ => reasons.join("; "),
        };
        let mut line = format!("{word}: {reason}");
        if self.interrupted {
            match self.signal.and_then(signal_name) {
                Some(name) if name != "SIGINT" => {
                    line += &format!(" (interrupted by {name}: the history is partial)")
                }
                _ => line += " (interrupted: the history is partial)",
            }
        }
        line
    }

    /// The text printed after a run: verdict, seed, where the files are, the
    /// faults injected, each check with its anomalies explained, and what fencing
    /// prevented. `run_dir` is shown as given, so pass the path the person used.
    pub fn summary(&self, run_dir: &Path) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "{}", self.headline());
        let _ = writeln!(s, "seed:    {}", self.seed);
        let _ = writeln!(s, "run:     {}", run_dir.display());
        let _ = writeln!(s, "report:  {}", run_dir.join("report.html").display());
        let _ = writeln!(s, "time:    {}", self.timings.describe());
        if let Some(l) = &self.lock_system {
            let _ = writeln!(
                s,
                "system:  {} {}; fencing token: {}",
                l.name, l.version, l.token
            );
        }
        if let Some(st) = &self.storage {
            let fenced = if st.fencing { "fenced" } else { "not fenced" };
            let checks: Vec<&str> = st.checks_with_ledger.keys().map(String::as_str).collect();
            let source = if st.ledger {
                "judged from its ledger"
            } else {
                "no ledger, judged from the writes' replies"
            };
            let _ = writeln!(
                s,
                "storage: {} ({fenced}); {source}: {}",
                st.service,
                checks.join(", ")
            );
        }

        if self.nemesis.faults.is_empty() {
            let planned = self.nemesis.schedule.len();
            let asked = self.nemesis.asked.len();
            if planned == 0 && asked == 0 {
                let _ = writeln!(s, "nemesis: no faults");
            } else if planned == 0 {
                let _ = writeln!(
                    s,
                    "nemesis: no faults injected ({} asked, none scheduled)",
                    plural(asked as u64, "fault")
                );
            } else {
                let _ = writeln!(
                    s,
                    "nemesis: no faults injected ({} scheduled)",
                    plural(planned as u64, "fault")
                );
            }
        } else {
            let _ = writeln!(s, "nemesis:");
            for fault in &self.nemesis.faults {
                let _ = writeln!(s, "  {}", fault_line(fault));
            }
        }
        if !self.missing.is_empty() {
            let _ = writeln!(s, "missing: what the run needed and did not see");
            for m in &self.missing {
                let _ = writeln!(s, "  - {m}");
            }
        }

        if self.checks.is_empty() {
            let _ = writeln!(s, "checks:  none ran");
        } else {
            let _ = writeln!(s, "checks:");
            let name_w = self.checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
            for check in &self.checks {
                let line = format!(
                    "  {:name_w$}  {:7}  {}",
                    check.name,
                    check.validity.as_str(),
                    one_line(&check.summary)
                );
                let _ = writeln!(s, "{}", line.trim_end());
                for anomaly in check.anomalies.iter().take(MAX_ANOMALIES_SHOWN) {
                    let _ = writeln!(s, "    - {}", one_line(&anomaly.explain()));
                }
                if check.anomalies.len() > MAX_ANOMALIES_SHOWN {
                    let _ = writeln!(
                        s,
                        "    … and {} more in the report",
                        check.anomalies.len() - MAX_ANOMALIES_SHOWN
                    );
                }
            }
        }

        if let Some(line) = self.margins.as_ref().and_then(margins_line) {
            let _ = writeln!(s, "{line}");
        }
        if self.counts.stale_rejected > 0 {
            let _ = writeln!(
                s,
                "fencing rejected {}",
                plural(self.counts.stale_rejected, "stale write")
            );
        }
        s
    }
}

/// `margins: 26 accepted writes; closest call 3.1 ms before its lease
/// deadline (w1's "w1-3" to "k0", token 7); median 640.2 ms before; 2 landed
/// after it`; `None` when no write had a margin.
fn margins_line(m: &leasehold_checker::Margins) -> Option<String> {
    if m.writes == 0 {
        return None;
    }
    let mut line = format!("margins: {}", plural(m.writes, "accepted write"));
    if let Some(c) = m.closest.iter().find(|c| c.margin_ms >= 0.0) {
        line += &format!(
            "; closest call {} before its lease deadline ({}'s {:?} to {:?}, token {})",
            crate::results::duration_text(c.margin_ms),
            c.writer,
            c.data,
            c.key,
            c.token
        );
    }
    if let Some(median) = m.median_ms.filter(|ms| *ms >= 0.0) {
        line += &format!("; median {} before", crate::results::duration_text(median));
    }
    if m.after_deadline > 0 {
        line += &format!("; {} landed after it", m.after_deadline);
    }
    Some(line)
}

/// The name of the signals that stop a run.
fn signal_name(n: u8) -> Option<&'static str> {
    Some(match n {
        1 => "SIGHUP",
        2 => "SIGINT",
        3 => "SIGQUIT",
        15 => "SIGTERM",
        _ => return None,
    })
}

/// `1500.0 ms  pause holder -> w1 for 3000.0 ms`.
pub(crate) fn fault_line(fault: &FaultRecord) -> String {
    let nodes = fault.nodes.join(", ");
    let whom = if nodes.is_empty() {
        format!("{} (no node)", fault.target)
    } else if fault.nodes.len() == 1 && fault.nodes[0] == fault.target {
        nodes
    } else {
        format!("{} -> {nodes}", fault.target)
    };
    let mut line = format!("{:>9}  {} {whom}", ms(fault.start_ns), fault.f);
    match fault.end_ns {
        Some(end) => line += &format!(" for {}", ms(end.saturating_sub(fault.start_ns))),
        None => line += ", end not recorded",
    }
    if let Some(note) = &fault.note {
        line += &format!(" ({})", one_line(note));
    }
    one_line(&line)
}

/// Nanoseconds as milliseconds with one decimal, the unit of the whole story.
pub(crate) fn ms(ns: u64) -> String {
    format!("{:.1} ms", ns as f64 / 1e6)
}

/// `45 ms`, `11.5 s`: short phases stay readable.
/// `1 stale write`, `2 stale writes`.
pub(crate) fn plural(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("{n} {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// Keeps a line a line: text from nodes may hold newlines or control characters
/// that would break the layout (or the terminal).
/// `s` on one line: its lines joined by `; ` (by a space after a line that
/// ends with `:`, which introduces the next), the indentation of every line
/// but the first dropped, control characters as spaces.
fn one_line(s: &str) -> String {
    let mut out = String::new();
    for (i, line) in s.lines().enumerate() {
        let line = if i == 0 { line.trim_end() } else { line.trim() };
        if line.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push_str(if out.ends_with(':') { " " } else { "; " });
        }
        out.push_str(line);
    }
    out.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::Counts;
    use crate::test_support::{sample_results as base, stale};
    use leasehold_checker::{Anomaly, CheckReport};

    #[test]
    fn a_multi_line_error_reads_as_one_line() {
        assert_eq!(
            one_line(
                "node lock1 exited (exit status: 4) before it was ready; its log ends:\n    \
                 cannot bind\n    giving up\r\n"
            ),
            "node lock1 exited (exit status: 4) before it was ready; its log ends: cannot \
             bind; giving up"
        );
        assert_eq!(one_line("a\tb"), "a b");
    }

    #[test]
    fn an_empty_history_and_checks_that_judged_nothing_read_in_one_line() {
        let checked = leasehold_checker::check(leasehold_checker::CheckInput {
            ops: &[],
            ledger: None,
        });
        let mut r = base(Validity::Valid);
        r.record_checks(checked.clone(), &[]);
        assert_eq!(
            r.headline(),
            "UNKNOWN: the history is empty: no check judged anything"
        );
        // With events but nothing judged, each lack is named once.
        let mut r = base(Validity::Valid);
        r.record_checks(checked, &[]);
        r.counts.events = 3;
        let headline = r.headline();
        assert!(
            headline.starts_with("UNKNOWN: judged nothing: no write was accepted; no grant in the history; no final read"),
            "{headline}"
        );
        assert_eq!(headline.matches("judged nothing").count(), 1, "{headline}");
        assert_eq!(headline.matches("no grant in the history").count(), 1);
    }

    #[test]
    fn invalid_unfenced_run() {
        let mut r = base(Validity::Invalid);
        r.counts = Counts {
            events: 120,
            ops: 60,
            acquires_ok: 10,
            writes_accepted: 20,
            writes_rejected: 0,
            stale_accepted: 2,
            stale_rejected: 0,
        };
        r.checks = vec![
            CheckReport {
                judged: leasehold_checker::Judged::new(1, "ops"),
                name: "stale-write".into(),
                validity: Validity::Invalid,
                summary: "2 of 20 accepted writes came from expired holders".into(),
                anomalies: vec![stale("w1", 33, "w1-3", 4100), stale("w1", 33, "w1-4", 4200)],
                stats: Default::default(),
            },
            CheckReport {
                judged: leasehold_checker::Judged::new(1, "ops"),
                name: "fencing-order".into(),
                validity: Validity::Invalid,
                summary: "1 write accepted out of token order".into(),
                anomalies: vec![Anomaly::FencingOrder {
                    key: "k".into(),
                    token: 33,
                    after_token: 34,
                    ops: vec![],
                    ledger: vec![7, 9],
                }],
                stats: Default::default(),
            },
            CheckReport {
                judged: leasehold_checker::Judged::new(1, "ops"),
                name: "token-order".into(),
                validity: Validity::Valid,
                summary: "10 grants, tokens increase".into(),
                anomalies: vec![],
                stats: Default::default(),
            },
        ];
        insta::assert_snapshot!(r.summary(Path::new("store/fencing-off/20261125T193800.123Z")));
    }

    #[test]
    fn valid_fenced_run() {
        let mut r = base(Validity::Valid);
        r.counts.stale_rejected = 2;
        r.counts.writes_rejected = 2;
        r.checks = vec![CheckReport {
            judged: leasehold_checker::Judged::new(1, "ops"),
            name: "stale-write".into(),
            validity: Validity::Valid,
            summary: "no accepted write came from an expired holder".into(),
            anomalies: vec![],
            stats: Default::default(),
        }];
        insta::assert_snapshot!(r.summary(Path::new("store/latest")));
    }

    #[test]
    fn failed_and_interrupted_runs() {
        let mut r = base(Validity::Unknown);
        r.error = Some("setup: lock1 did not start\nexit status 1".into());
        r.nemesis = Default::default();
        insta::assert_snapshot!(r.summary(Path::new("store/latest")));

        let mut r = base(Validity::Invalid);
        r.interrupted = true;
        r.counts.stale_accepted = 1;
        r.checks = vec![CheckReport {
            judged: leasehold_checker::Judged::new(1, "ops"),
            name: "stale-write".into(),
            validity: Validity::Invalid,
            summary: "1 stale write".into(),
            anomalies: vec![stale("w3", 7, "w3-1", 3500)],
            stats: Default::default(),
        }];
        assert_eq!(
            r.headline(),
            "INVALID: storage accepted 1 stale write (interrupted: the history is partial)"
        );
    }
}
