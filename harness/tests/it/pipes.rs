//! `leasehold run | head -1`: a reader that goes away ends the printing of the
//! summary, not the run: no panic, and the exit code is still the verdict's.

use std::io::BufRead as _;
use std::process::{Child, Stdio};

use crate::*;

/// Starts a 3 s run of the default example with `stdout`, its stderr to a
/// file in `store`.
fn start_run(store: &Path, stdout: Stdio) -> Child {
    leasehold()
        .args([
            "run",
            "--no-progress",
            "--duration",
            "3s",
            "--seed",
            "5",
            "--store",
        ])
        .arg(store)
        .arg(example("gc-pause.yaml"))
        .stdout(stdout)
        .stderr(std::fs::File::create(store.join("stderr")).unwrap())
        .spawn()
        .unwrap()
}

/// Waits for the run and checks that it ended with its verdict's exit code and
/// without a panic.
fn assert_ends_with_its_verdict(mut run: Child, store: &Path) {
    let code = run.wait().unwrap().code();
    let stderr = std::fs::read_to_string(store.join("stderr")).unwrap();
    assert!(!stderr.contains("panicked"), "{stderr}");
    let results = read_json(&run_dir_of(store).join("results.json"));
    let verdict = match results["verdict"].as_str() {
        Some("valid") => 0,
        Some("invalid") => 1,
        Some("unknown") => 2,
        other => panic!("verdict {other:?}: {stderr}"),
    };
    assert_eq!(code, Some(verdict), "{stderr}");
}

#[test]
fn a_run_piped_into_head_ends_with_its_verdict() {
    let store = tempfile::tempdir().unwrap();
    let mut run = start_run(store.path(), Stdio::piped());
    // What `head -1` does: read a line, then close the pipe.
    let mut line = String::new();
    let mut stdout = std::io::BufReader::new(run.stdout.take().unwrap());
    stdout.read_line(&mut line).unwrap();
    drop(stdout);
    assert!(
        ["VALID", "INVALID", "UNKNOWN"]
            .iter()
            .any(|v| line.starts_with(&format!("{v}:"))),
        "the first line is the verdict: {line:?}"
    );
    assert_ends_with_its_verdict(run, store.path());
}

#[test]
fn a_run_whose_reader_is_gone_before_the_summary_ends_with_its_verdict() {
    let store = tempfile::tempdir().unwrap();
    // The reader is gone before anything is printed (`| head -0`): printing
    // the summary surely meets a broken pipe.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let run = start_run(store.path(), Stdio::from(writer));
    assert_ends_with_its_verdict(run, store.path());
}
