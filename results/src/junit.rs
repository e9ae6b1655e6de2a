//! `junit.xml`: the run as a test suite, so CI systems show which safety property
//! broke without anyone parsing `results.json`.
//!
//! One `<testsuite>` named after the test, one `<testcase>` per check. An invalid
//! check is a `<failure>` whose text lists the anomalies; an unknown one passes
//! but says so in `<system-out>` (JUnit has no "unknown", and `<skipped>` would
//! wrongly suggest the check did not run — the exit code 2 still fails the job). A
//! run that failed or was interrupted adds a `run` test case with an `<error>`.

use std::fmt::Write;

use leasehold_checker::Validity;

use crate::results::Results;

/// Renders the JUnit XML report.
pub fn render_junit(results: &Results) -> String {
    let failures = results
        .checks
        .iter()
        .filter(|c| c.validity == Validity::Invalid)
        .count();
    let run_error = run_error(results);
    let errors = usize::from(run_error.is_some());
    let tests = results.checks.len() + errors;
    let time = format!("{:.3}", results.timings.total_ms.unwrap_or(0.0) / 1e3);
    let classname = format!("leasehold.{}", results.test);

    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        x,
        "<testsuites name=\"leasehold\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" time=\"{time}\">"
    );
    let _ = writeln!(
        x,
        "  <testsuite name=\"{}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"0\" time=\"{time}\" timestamp=\"{}\">",
        attr(&results.test),
        attr(&results.started_at)
    );
    x.push_str("    <properties>\n");
    for (name, value) in [
        ("seed", results.seed.to_string()),
        ("run_id", results.run_id.clone()),
        ("runtime", results.runtime.clone()),
        ("verdict", results.verdict.as_str().to_owned()),
    ] {
        let _ = writeln!(
            x,
            "      <property name=\"{name}\" value=\"{}\"/>",
            attr(&value)
        );
    }
    x.push_str("    </properties>\n");

    for check in &results.checks {
        let _ = write!(
            x,
            "    <testcase name=\"{}\" classname=\"{}\"",
            attr(&check.name),
            attr(&classname)
        );
        let explanations: String = check
            .anomalies
            .iter()
            .map(|a| format!("{}\n", a.explain()))
            .collect();
        match check.validity {
            Validity::Valid => x.push_str("/>\n"),
            Validity::Invalid => {
                let _ = write!(
                    x,
                    ">\n      <failure message=\"{}\" type=\"invalid\">{}</failure>\n    </testcase>\n",
                    attr(&check.summary),
                    text(&explanations)
                );
            }
            Validity::Unknown => {
                let _ = write!(
                    x,
                    ">\n      <system-out>unknown: {}\n{}</system-out>\n    </testcase>\n",
                    text(&check.summary),
                    text(&explanations)
                );
            }
        }
    }

    if let Some((kind, message)) = run_error {
        let _ = write!(
            x,
            "    <testcase name=\"run\" classname=\"{}\">\n      <error message=\"{}\" type=\"{kind}\">{}</error>\n    </testcase>\n",
            attr(&classname),
            attr(&message),
            text(&message)
        );
    }
    x.push_str("  </testsuite>\n</testsuites>\n");
    x
}

/// Why the run itself is in error, if it is: the failure, or the interruption.
fn run_error(results: &Results) -> Option<(&'static str, String)> {
    match (&results.error, results.interrupted) {
        (Some(e), _) => Some(("run-error", e.clone())),
        (None, true) => Some((
            "interrupted",
            "the run was interrupted; the checks cover a partial history".to_owned(),
        )),
        (None, false) => None,
    }
}

/// Escapes for an XML attribute value; newlines and tabs become character
/// references so that parsers do not fold them into spaces.
fn attr(s: &str) -> String {
    escape(s, true)
}

/// Escapes for XML element text.
fn text(s: &str) -> String {
    escape(s, false)
}

/// XML 1.0 forbids most control characters even as references, and a CI server
/// rejects the whole file for one, so they become U+FFFD.
fn escape(s: &str, in_attr: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if in_attr => out.push_str("&quot;"),
            '\'' if in_attr => out.push_str("&apos;"),
            '\n' if in_attr => out.push_str("&#10;"),
            '\r' if in_attr => out.push_str("&#13;"),
            '\t' if in_attr => out.push_str("&#9;"),
            '\n' | '\r' | '\t' => out.push(c),
            c if (c as u32) < 0x20 || matches!(c, '\u{FFFE}' | '\u{FFFF}') => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{sample_results, stale};
    use leasehold_checker::CheckReport;

    #[test]
    fn one_case_per_check_with_failures() {
        let mut r = sample_results(Validity::Invalid);
        r.test = "fence<&>\"off\"".into();
        r.checks = vec![
            CheckReport {
                judged: leasehold_checker::Judged::new(1, "ops"),
                name: "stale-write".into(),
                validity: Validity::Invalid,
                summary: "2 stale writes <bad>".into(),
                anomalies: vec![stale("w1", 33, "w1-<3>", 4100)],
                stats: Default::default(),
            },
            CheckReport {
                judged: leasehold_checker::Judged::new(1, "ops"),
                name: "token-order".into(),
                validity: Validity::Valid,
                summary: "ok".into(),
                anomalies: vec![],
                stats: Default::default(),
            },
        ];
        let x = render_junit(&r);
        assert!(x.contains("<testsuite name=\"fence&lt;&amp;&gt;&quot;off&quot;\" tests=\"2\" failures=\"1\" errors=\"0\""), "{x}");
        assert!(x.contains("<testcase name=\"token-order\" classname=\"leasehold.fence&lt;&amp;&gt;&quot;off&quot;\"/>"), "{x}");
        assert!(
            x.contains("<failure message=\"2 stale writes &lt;bad&gt;\" type=\"invalid\">"),
            "{x}"
        );
        assert!(
            x.contains(&text(&r.checks[0].anomalies[0].explain())),
            "{x}"
        );
        assert!(!x.contains("<skipped"));
        assert!(!x.contains("<error"));
        assert_eq!(x.matches("<testcase").count(), 2);
    }

    #[test]
    fn run_error_and_control_characters() {
        let mut r = sample_results(Validity::Unknown);
        r.error = Some("setup failed:\n\u{1b}[31mlock1 exited\u{0}".into());
        let x = render_junit(&r);
        assert!(x.contains("errors=\"1\""), "{x}");
        assert!(x.contains("<error message=\"setup failed:&#10;\u{FFFD}[31mlock1 exited\u{FFFD}\" type=\"run-error\">"), "{x}");
        assert!(!x.chars().any(|c| (c as u32) < 0x20 && c != '\n'));
    }
}
