//! `junit.xml`: the run as a test suite, so CI systems show which safety property
//! broke without anyone parsing `results.json`.
//!
//! One `<testsuite>` named after the test, with the run's seed, run id, runtime
//! and verdict as `<properties>`, its start as `timestamp` and its length as
//! `time`; one `<testcase>` per check. An invalid check is a `<failure>` whose
//! message is the check's summary and whose text lists each anomaly's
//! explanation and the path of the run's `report.html`; an unknown one passes
//! but says so in `<system-out>` (JUnit has no "unknown", and `<skipped>` would
//! wrongly suggest the check did not run — the exit code 2 still fails the job). A
//! run that failed or was interrupted adds a `run` test case with an `<error>`.
//!
//! The XML is written by [`quick_junit`], which escapes every name, attribute
//! and text and drops the control characters (ANSI colours included) that XML
//! 1.0 forbids, so a hostile key, value or error message cannot break the file.

use std::path::Path;
use std::time::Duration;

use leasehold_checker::{CheckReport, Validity};
use quick_junit::{
    NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite, XmlString,
};

use crate::results::Results;

/// The name of the report, next to `junit.xml` in every run folder (and in
/// `leasehold check --out`).
const REPORT_FILE: &str = "report.html";

/// Renders the JUnit XML report; failures point at `report.html` next to
/// `junit.xml`. See [`render_junit_with_report`] to name the report's full path.
pub fn render_junit(results: &Results) -> String {
    render_junit_with_report(results, Path::new(REPORT_FILE))
}

/// Renders the JUnit XML report; failures and errors name `report` (the run's
/// `report.html`) as the place to read the whole story.
pub fn render_junit_with_report(results: &Results, report: &Path) -> String {
    let suite = junit_suite(results, report, &results.test);
    let mut junit = Report::new("leasehold");
    junit.time = suite.time;
    junit.add_test_suite(suite);
    serialize(&junit)
}

/// One JUnit report of several runs (`leasehold test-all --junit`): one
/// `<testsuite>` per run, named `<test> (seed <seed>)`, each as
/// [`render_junit_with_report`] writes it, its failures naming its own
/// report.
pub fn render_junit_runs(runs: &[(&Results, &Path)]) -> String {
    let mut junit = Report::new("leasehold");
    let mut time = Duration::ZERO;
    for (results, report) in runs {
        let name = format!("{} (seed {})", results.test, results.seed);
        let suite = junit_suite(results, report, &name);
        time += suite.time.unwrap_or_default();
        junit.add_test_suite(suite);
    }
    junit.time = Some(time);
    serialize(&junit)
}

fn serialize(junit: &Report) -> String {
    // Serializing into memory has no I/O to fail and the text is UTF-8 already.
    junit
        .to_string()
        .expect("a JUnit report serializes into memory")
}

/// The suite of one run, named `name`.
fn junit_suite(results: &Results, report: &Path, name: &str) -> TestSuite {
    let report_line = format!("report: {}", report.display());
    let classname = format!("leasehold.{}", results.test);
    let time = results
        .timings
        .total_ms
        .and_then(|ms| Duration::try_from_secs_f64(ms / 1e3).ok())
        .unwrap_or_default();
    // `started_at` is RFC 3339 (see `rfc3339`); the type is quick-junit's.
    let timestamp = results.started_at.parse().ok();

    let mut suite = TestSuite::new(xml(name));
    suite.time = Some(time);
    suite.timestamp = timestamp;
    suite.add_properties(
        [
            ("seed", results.seed.to_string()),
            ("run_id", results.run_id.clone()),
            ("runtime", results.runtime.clone()),
            ("verdict", results.verdict.as_str().to_owned()),
        ]
        .map(|(name, value)| Property::new(name, xml(&value))),
    );

    for check in &results.checks {
        suite.add_test_case(check_case(check, &classname, &report_line));
    }
    if let Some((kind, message)) = run_error(results) {
        let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
        status
            .set_message(xml(&message))
            .set_type(kind)
            .set_description(xml(&format!("{message}\n{report_line}\n")));
        let mut case = TestCase::new("run", status);
        case.set_classname(xml(&classname));
        suite.add_test_case(case);
    }
    suite
}

/// A check as a test case: passed, failed (invalid) or passed with a note
/// (unknown).
fn check_case(check: &CheckReport, classname: &str, report_line: &str) -> TestCase {
    let explanations: String = check
        .anomalies
        .iter()
        .map(|a| format!("{}\n", a.explain()))
        .collect();
    let status = match check.validity {
        Validity::Valid | Validity::Unknown => TestCaseStatus::success(),
        Validity::Invalid => {
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
            status
                .set_message(xml(&check.summary))
                .set_type("invalid")
                .set_description(xml(&format!("{explanations}{report_line}\n")));
            status
        }
    };
    let mut case = TestCase::new(xml(&check.name), status);
    case.set_classname(xml(classname));
    if check.validity == Validity::Unknown {
        case.set_system_out(xml(&format!(
            "unknown: {}\n{explanations}{report_line}\n",
            check.summary
        )));
    }
    case
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

/// Text for the XML. [`XmlString`] drops the forbidden control characters; the
/// two non-characters XML 1.0 also forbids (U+FFFE, U+FFFF) it keeps, and a CI
/// server rejects the whole file for one, so they become U+FFFD here.
fn xml(s: &str) -> XmlString {
    XmlString::new(s.replace(['\u{FFFE}', '\u{FFFF}'], "\u{FFFD}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{sample_results, stale};
    use leasehold_checker::Judged;

    fn check(name: &str, validity: Validity, summary: &str, anomalies: usize) -> CheckReport {
        CheckReport {
            judged: Judged::new(1, "ops"),
            name: name.into(),
            validity,
            summary: summary.into(),
            anomalies: (0..anomalies)
                .map(|i| stale("w1", 33 + i as u64, &format!("w1-{i}"), 4100))
                .collect(),
            stats: Default::default(),
        }
    }

    /// Parses the XML back: it must be well-formed JUnit that quick-junit reads.
    fn parse(x: &str) -> Report {
        Report::deserialize_from_str(x).unwrap_or_else(|e| panic!("{e}\n{x}"))
    }

    fn description(status: &TestCaseStatus) -> &str {
        match status {
            TestCaseStatus::NonSuccess { description, .. } => description.as_deref().unwrap(),
            other => panic!("not a failure or error: {other:?}"),
        }
    }

    #[test]
    fn one_case_per_check_failures_carry_summary_anomalies_and_report() {
        let mut r = sample_results(Validity::Invalid);
        r.checks = vec![
            check("stale-write", Validity::Invalid, "2 stale writes", 2),
            check("token-order", Validity::Valid, "ok", 0),
            check("lease-overlap", Validity::Unknown, "no acquires seen", 0),
        ];
        let report = Path::new("/store/fencing-off/20261125T193800.123Z/report.html");
        let x = render_junit_with_report(&r, report);
        assert_eq!(x.matches("<testcase").count(), 3, "{x}");
        assert!(!x.contains("<skipped"), "{x}");
        assert!(!x.contains("<error"), "{x}");

        let parsed = parse(&x);
        assert_eq!((parsed.tests, parsed.failures, parsed.errors), (3, 1, 0));
        let suite = &parsed.test_suites[0];
        assert_eq!(suite.name.as_str(), "fencing-off");
        assert_eq!((suite.tests, suite.failures, suite.errors), (3, 1, 0));
        assert_eq!(suite.time, Some(Duration::from_millis(11_545)));
        assert_eq!(
            suite.timestamp.map(|t| t.to_rfc3339()).as_deref(),
            Some("2026-11-25T19:38:00.123+00:00")
        );
        let props: Vec<(&str, &str)> = suite
            .properties
            .iter()
            .map(|p| (p.name.as_str(), p.value.as_str()))
            .collect();
        assert_eq!(
            props,
            [
                ("seed", "42"),
                ("run_id", "20261125T193800.123Z"),
                ("runtime", "local"),
                ("verdict", "invalid"),
            ]
        );

        let names: Vec<&str> = suite.test_cases.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["stale-write", "token-order", "lease-overlap"]);
        for case in &suite.test_cases {
            assert_eq!(case.classname.as_deref(), Some("leasehold.fencing-off"));
        }

        let failed = &suite.test_cases[0];
        let TestCaseStatus::NonSuccess {
            kind, message, ty, ..
        } = &failed.status
        else {
            panic!("stale-write should fail: {x}");
        };
        assert_eq!(*kind, NonSuccessKind::Failure);
        assert_eq!(message.as_deref(), Some("2 stale writes"));
        assert_eq!(ty.as_deref(), Some("invalid"));
        let text = description(&failed.status);
        for a in &r.checks[0].anomalies {
            assert!(text.contains(&a.explain()), "{text}");
        }
        assert!(text.contains(&report.display().to_string()), "{text}");

        assert!(matches!(
            suite.test_cases[1].status,
            TestCaseStatus::Success { .. }
        ));
        assert!(suite.test_cases[1].system_out.is_none());
        let unknown = &suite.test_cases[2];
        assert!(matches!(unknown.status, TestCaseStatus::Success { .. }));
        let out = unknown.system_out.as_deref().unwrap();
        assert!(out.starts_with("unknown: no acquires seen\n"), "{out}");
    }

    #[test]
    fn default_report_path_is_next_to_junit_xml() {
        let mut r = sample_results(Validity::Invalid);
        r.checks = vec![check("stale-write", Validity::Invalid, "1 stale write", 1)];
        let parsed = parse(&render_junit(&r));
        let text = description(&parsed.test_suites[0].test_cases[0].status);
        assert!(text.trim_end().ends_with("\nreport: report.html"), "{text}");
    }

    #[test]
    fn a_failed_or_interrupted_run_adds_a_run_case_with_an_error() {
        for (error, interrupted, ty) in [
            (Some("setup failed: lock1 exited"), false, "run-error"),
            (None, true, "interrupted"),
        ] {
            let mut r = sample_results(Validity::Unknown);
            r.error = error.map(str::to_owned);
            r.interrupted = interrupted;
            r.checks = vec![check("stale-write", Validity::Valid, "ok", 0)];
            let x = render_junit_with_report(&r, Path::new("run/report.html"));
            assert_eq!(x.matches("<testcase").count(), 2, "{x}");
            let parsed = parse(&x);
            assert_eq!((parsed.tests, parsed.failures, parsed.errors), (2, 0, 1));
            let case = &parsed.test_suites[0].test_cases[1];
            assert_eq!(case.name.as_str(), "run");
            let TestCaseStatus::NonSuccess {
                kind,
                message,
                ty: t,
                ..
            } = &case.status
            else {
                panic!("run case should be an error: {x}");
            };
            assert_eq!(*kind, NonSuccessKind::Error);
            assert_eq!(t.as_deref(), Some(ty));
            let message = message.as_deref().unwrap();
            if let Some(e) = error {
                assert_eq!(message, e);
            }
            assert!(description(&case.status).contains("report: run/report.html"));
        }
        let r = sample_results(Validity::Valid);
        assert!(!render_junit(&r).contains("<testcase"));
    }

    #[test]
    fn hostile_strings_are_escaped_and_the_xml_stays_well_formed() {
        let hostile =
            "<script>alert(\"x\")</script> ]]> 'q' & \u{1b}[31mred\u{0}\u{7}\u{b}\u{FFFF}";
        let mut r = sample_results(Validity::Invalid);
        r.test = format!("fence{hostile}");
        r.run_id = hostile.into();
        r.runtime = hostile.into();
        r.error = Some(format!("setup failed:\n{hostile}"));
        let mut bad = check(hostile, Validity::Invalid, hostile, 0);
        bad.anomalies = vec![stale("w1", 33, hostile, 4100)];
        r.checks = vec![bad, check("unknown", Validity::Unknown, hostile, 0)];
        let x = render_junit_with_report(&r, Path::new(&format!("/tmp/{hostile}/report.html")));

        assert_eq!(x.matches("<testcase").count(), 3, "{x}");
        assert!(!x.contains("<script"), "{x}");
        assert!(!x.contains("]]>"), "{x}");
        assert!(
            x.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"),
            "{x}"
        );
        assert!(
            !x.chars()
                .any(|c| ((c as u32) < 0x20 && !matches!(c, '\n' | '\r' | '\t'))
                    || matches!(c, '\u{FFFE}' | '\u{FFFF}')),
            "{x:?}"
        );

        // Parsing back gives the strings without the forbidden characters.
        let clean = "<script>alert(\"x\")</script> ]]> 'q' & red\u{FFFD}";
        let parsed = parse(&x);
        let suite = &parsed.test_suites[0];
        assert_eq!(suite.name.as_str(), format!("fence{clean}"));
        assert_eq!(suite.properties[1].value.as_str(), clean);
        let failed = &suite.test_cases[0];
        assert_eq!(failed.name.as_str(), clean);
        let TestCaseStatus::NonSuccess { message, .. } = &failed.status else {
            panic!("{x}");
        };
        assert_eq!(message.as_deref(), Some(clean));
        let text = description(&failed.status);
        assert!(
            text.contains(&format!("/tmp/{clean}/report.html")),
            "{text}"
        );
        let explained = xml(&r.checks[0].anomalies[0].explain());
        assert!(text.contains(explained.as_str()), "{text}");
        let out = suite.test_cases[1].system_out.as_deref().unwrap();
        assert!(out.contains(&format!("unknown: {clean}")), "{out}");
        let run = description(&suite.test_cases[2].status);
        assert!(run.starts_with(&format!("setup failed:\n{clean}")), "{run}");
    }
}
