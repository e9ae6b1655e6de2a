//! `leasehold check`: a stored run checked again gives the same verdict; Jepsen
//! EDN and leasehold JSONL history files are checked on their own; bad input
//! exits 3 naming the line and column.

use std::path::Path;
use std::process::Output;

use crate::*;

fn check_cmd(args: &[&str], path: &Path) -> Output {
    leasehold()
        .arg("check")
        .arg(path)
        .args(args)
        .output()
        .unwrap()
}

fn code(out: &Output) -> i32 {
    out.status.code().expect("exited")
}

fn texts(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_stored_run_checked_again_gives_the_same_verdict() {
    let store = tempfile::tempdir().unwrap();
    let out = leasehold()
        .args([
            "run",
            "--no-progress",
            "--duration",
            "6s",
            "--seed",
            "3",
            "--store",
        ])
        .arg(store.path())
        .arg(example("gc-pause.yaml"))
        .output()
        .unwrap();
    let (run_stdout, run_stderr) = texts(&out);
    let run_code = code(&out);
    assert!(
        (0..=2).contains(&run_code),
        "exit {run_code}\n{run_stdout}\n{run_stderr}"
    );
    let dir = run_dir_of(store.path());
    let before = read_json(&dir.join("results.json"));
    std::fs::remove_file(dir.join("report.html")).unwrap();
    std::fs::remove_file(dir.join("junit.xml")).unwrap();

    let out = check_cmd(&[], &store.path().join("latest"));
    let (stdout, stderr) = texts(&out);
    assert_eq!(code(&out), run_code, "{stdout}\n{stderr}");
    let after = read_json(&dir.join("results.json"));
    assert_eq!(after["verdict"], before["verdict"]);
    for field in ["test", "run_id", "seed", "nemesis", "nodes", "counts"] {
        assert_eq!(after[field], before[field], "{field}");
    }
    let validities = |r: &serde_json::Value| -> Vec<(String, String)> {
        r["checks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["name"].as_str().unwrap().to_owned(),
                    c["validity"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    assert_eq!(validities(&after), validities(&before));
    assert!(dir.join("report.html").is_file());
    assert!(dir.join("junit.xml").is_file());
    // The same summary as the run's, headline first.
    let headline = run_stdout.lines().next().unwrap();
    assert_eq!(stdout.lines().next(), Some(headline), "{stdout}");
    assert!(stdout.contains("seed:    3"), "{stdout}");
    assert!(stdout.contains("mutual-exclusion"), "{stdout}");
    assert!(stdout.contains("lost-write"), "{stdout}");

    // --out leaves the run folder alone and writes elsewhere.
    let elsewhere = tempfile::tempdir().unwrap();
    let out_dir = elsewhere.path().join("again");
    let out = leasehold()
        .arg("check")
        .arg(&dir)
        .arg("--out")
        .arg(&out_dir)
        .output()
        .unwrap();
    assert_eq!(code(&out), run_code, "{}", texts(&out).1);
    assert_eq!(
        read_json(&out_dir.join("results.json"))["verdict"],
        before["verdict"]
    );
    assert!(out_dir.join("report.html").is_file());

    // A check times its own phases, below the millisecond, and no run phases.
    let timings = &read_json(&out_dir.join("results.json"))["timings"];
    for phase in ["parse_ms", "check_ms", "write_ms", "total_ms"] {
        assert!(timings[phase].as_f64().unwrap() > 0.0, "{phase}: {timings}");
    }
    for phase in ["setup_ms", "run_ms", "teardown_ms"] {
        assert!(timings.get(phase).is_none(), "{phase}: {timings}");
    }
    let time_line = texts(&out)
        .0
        .lines()
        .find(|l| l.starts_with("time:"))
        .unwrap()
        .to_owned();
    assert!(
        time_line.contains("(parse ") && time_line.contains(", write "),
        "{time_line}"
    );
    assert!(!time_line.contains("setup"), "{time_line}");

    // An interrupted run checked again exits with its verdict, not 130: the
    // check itself was not interrupted.
    let mut interrupted = read_json(&dir.join("results.json"));
    interrupted["interrupted"] = true.into();
    interrupted["signal"] = 2.into();
    std::fs::write(dir.join("results.json"), interrupted.to_string()).unwrap();
    let out = check_cmd(&[], &dir);
    assert_eq!(code(&out), run_code, "{}", texts(&out).0);
    assert_eq!(read_json(&dir.join("results.json"))["interrupted"], true);
}

#[test]
fn a_folder_without_a_history_is_an_error_and_an_empty_history_is_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let out = check_cmd(&[], dir.path());
    let (stdout, stderr) = texts(&out);
    assert_eq!(code(&out), 3, "{stdout}\n{stderr}");
    assert!(
        stderr.contains("not a leasehold run folder") && stderr.contains("history.jsonl"),
        "names what it looked for: {stderr}"
    );
    assert!(!dir.path().join("results.json").exists());

    for (name, args) in [
        ("empty.jsonl", &[][..]),
        ("empty.edn", &["--model", "cas-register"][..]),
        ("empty.edn", &["--model", "cas-register-strict"][..]),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, "").unwrap();
        let out = check_cmd(args, &path);
        let (stdout, stderr) = texts(&out);
        assert_eq!(code(&out), 2, "{name} {args:?}: {stdout}\n{stderr}");
        assert!(stdout.starts_with("UNKNOWN"), "{stdout}");
        assert!(stdout.contains("judged nothing"), "{stdout}");
    }
}

/// Three clients on a compare-and-set register: write 1, cas 1 → 2, and a read.
fn cas_history(read_value: u64) -> String {
    format!(
        r#"; written for leasehold's tests
{{:type :invoke, :f :write, :value 1, :process 0, :time 1000, :index 0}}
{{:type :ok, :f :write, :value 1, :process 0, :time 2000, :index 1}}
{{:type :invoke, :f :cas, :value [1 2], :process 1, :time 3000, :index 2}}
{{:type :info, :f :start, :value nil, :process :nemesis, :time 3500, :index 3}}
{{:type :ok, :f :cas, :value [1 2], :process 1, :time 4000, :index 4}}
{{:type :invoke, :f :read, :value nil, :process 2, :time 5000, :index 5}}
{{:type :ok, :f :read, :value {read_value}, :process 2, :time 6000, :index 6}}
{{:type :invoke, :f :cas, :value [7 8], :process 0, :time 7000, :index 7}}
{{:type :fail, :f :cas, :value [7 8], :process 0, :time 8000, :index 8}}
"#
    )
}

#[test]
fn a_jepsen_cas_register_history_is_checked_for_linearizability() {
    let dir = tempfile::tempdir().unwrap();
    let stale = dir.path().join("stale.edn");
    // The read after the cas completed returns the old value: not linearizable.
    std::fs::write(&stale, cas_history(1)).unwrap();
    let out = check_cmd(&["--model", "cas-register"], &stale);
    let (stdout, stderr) = texts(&out);
    assert_eq!(code(&out), 1, "{stdout}\n{stderr}");
    assert!(stdout.starts_with("INVALID"), "{stdout}");
    assert!(stdout.contains("linearizability"), "{stdout}");
    let results = read_json(&dir.path().join("stale.results.json"));
    assert_eq!(results["verdict"], "invalid");
    let report = std::fs::read_to_string(dir.path().join("stale.report.html")).unwrap();
    assert!(
        report.contains("longest linearizable prefix"),
        "the report draws the counterexample"
    );
    assert!(stdout.contains("stale.results.json"), "{stdout}");

    let good = dir.path().join("good.edn");
    std::fs::write(&good, cas_history(2)).unwrap();
    let out_dir = dir.path().join("out");
    let out = leasehold()
        .arg("check")
        .arg(&good)
        .args(["--model", "cas-register", "--time-limit", "10s", "--out"])
        .arg(&out_dir)
        .output()
        .unwrap();
    let (stdout, stderr) = texts(&out);
    assert_eq!(code(&out), 0, "{stdout}\n{stderr}");
    assert!(stdout.starts_with("VALID"), "{stdout}");
    assert_eq!(read_json(&out_dir.join("results.json"))["verdict"], "valid");
    assert!(out_dir.join("junit.xml").is_file());
    assert!(!dir.path().join("good.results.json").exists());

    // An EDN history needs a model.
    let out = check_cmd(&[], &good);
    let (_, stderr) = texts(&out);
    assert_eq!(code(&out), 3, "{stderr}");
    assert!(stderr.contains("--model"), "{stderr}");
}

#[test]
fn a_malformed_edn_history_exits_3_naming_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.edn");
    std::fs::write(
        &path,
        "{:type :invoke, :f :read, :process 0, :time 1}\n{:type :ok, :f :read, :process 0, :value [1 2}\n",
    )
    .unwrap();
    let out = check_cmd(&["--model", "register"], &path);
    let (stdout, stderr) = texts(&out);
    assert_eq!(code(&out), 3, "{stdout}\n{stderr}");
    assert!(stderr.contains("broken.edn"), "{stderr}");
    assert!(stderr.contains("line 2, column 46"), "{stderr}");
    assert!(!dir.path().join("broken.results.json").exists());
}

#[test]
fn a_bad_jsonl_line_exits_3_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.jsonl");
    std::fs::write(
        &path,
        concat!(
            r#"{"index":0,"time":1,"process":1,"node":"w1","type":"invoke","f":"acquire","value":{"lock":"L"}}"#,
            "\n",
            r#"{"index":1,"time":2,"process":1,"node":"w1","type":"okay","f":"acquire"}"#,
            "\n"
        ),
    )
    .unwrap();
    let out = check_cmd(&[], &path);
    let (stdout, stderr) = texts(&out);
    assert_eq!(code(&out), 3, "{stdout}\n{stderr}");
    assert!(stderr.contains("history.jsonl"), "{stderr}");
    assert!(stderr.contains("line 2, column "), "{stderr}");

    // The same file, fixed, is a leasehold history on its own; with one grant
    // and no write, the write checks judged nothing: unknown, not valid.
    std::fs::write(
        &path,
        concat!(
            r#"{"index":0,"time":1,"process":1,"node":"w1","type":"invoke","f":"acquire","value":{"lock":"L"}}"#,
            "\n",
            r#"{"index":1,"time":2,"process":1,"node":"w1","type":"ok","f":"acquire","value":{"lock":"L","token":1,"lease_ms":1000}}"#,
            "\n"
        ),
    )
    .unwrap();
    let out = check_cmd(&[], &path);
    let (stdout, stderr) = texts(&out);
    assert_eq!(code(&out), 2, "{stdout}\n{stderr}");
    assert!(stdout.contains("history: "), "{stdout}");
    assert!(
        stdout.contains("stale-write") && stdout.contains("judged nothing: no write was accepted"),
        "{stdout}"
    );
    assert!(
        stdout.contains("token-order              valid"),
        "{stdout}"
    );
    assert_eq!(
        read_json(&dir.path().join("history.results.json"))["verdict"],
        "unknown"
    );
}
