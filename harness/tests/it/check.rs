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

/// `n` single-key `:txn` writes, one after the other.
fn txn_history(n: usize) -> String {
    (0..n)
        .map(|i| {
            format!(
                "{{:type :invoke, :f :txn, :value [[:w :x {i}]], :process 0, :time {}}}\n{{:type :ok, :f :txn, :value [[:w :x {i}]], :process 0, :time {}}}\n",
                10 * i + 1,
                10 * i + 2
            )
        })
        .collect()
}

#[test]
fn ops_the_model_does_not_read_are_named_and_never_pass_for_valid() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("txns.edn");
    std::fs::write(&path, txn_history(123)).unwrap();
    let out = check_cmd(&["--model", "register"], &path);
    let (stdout, stderr) = texts(&out);
    assert_eq!(code(&out), 2, "{stdout}\n{stderr}");
    assert!(stdout.starts_with("UNKNOWN"), "{stdout}");
    assert!(
        stdout.contains("123 :txn ops ignored: the register model reads :read, :write"),
        "{stdout}"
    );
    let results = read_json(&dir.path().join("txns.results.json"));
    let check = &results["checks"][0];
    assert_eq!(check["stats"]["ignored_functions"]["txn"], 123, "{check}");

    // A register history with a read and a write, and 123 txns: was valid.
    let mixed = dir.path().join("mixed.edn");
    std::fs::write(
        &mixed,
        format!(
            "{{:type :invoke, :f :write, :value 1, :process 1, :time 0}}\n{{:type :ok, :f :write, :value 1, :process 1, :time 1}}\n{}{{:type :invoke, :f :read, :value nil, :process 1, :time 5000}}\n{{:type :ok, :f :read, :value 1, :process 1, :time 5001}}\n",
            txn_history(123)
        ),
    )
    .unwrap();
    let out = check_cmd(&["--model", "register"], &mixed);
    let (stdout, stderr) = texts(&out);
    assert_eq!(code(&out), 2, "{stdout}\n{stderr}");
    assert!(stdout.contains("more than 10 %"), "{stdout}");
    // Under the model that reads them, the txns are judged.
    let out = check_cmd(&["--model", "multi-register"], &path);
    let (stdout, stderr) = texts(&out);
    assert_eq!(code(&out), 0, "{stdout}\n{stderr}");
    assert!(stdout.starts_with("VALID"), "{stdout}");
}

#[test]
fn initial_value_and_nil_read_options_change_the_verdict() {
    let dir = tempfile::tempdir().unwrap();
    // Knossos's registers start at 0.
    let zero = dir.path().join("zero.edn");
    std::fs::write(
        &zero,
        "{:type :invoke, :f :read, :value nil, :process 0}\n{:type :ok, :f :read, :value 0, :process 0}\n{:type :invoke, :f :cas, :value [0 1], :process 1}\n{:type :ok, :f :cas, :value [0 1], :process 1}\n",
    )
    .unwrap();
    let out = check_cmd(&["--model", "cas-register"], &zero);
    assert_eq!(code(&out), 1, "{}", texts(&out).0);
    let out = check_cmd(&["--model", "cas-register", "--initial-value", "0"], &zero);
    assert_eq!(code(&out), 0, "{}", texts(&out).0);
    let out = check_cmd(&["--model", "cas-register", "--initial-value", "1"], &zero);
    assert_eq!(code(&out), 1, "{}", texts(&out).0);

    // A read of nil after a write: empty (the default) cannot be; an unknown
    // value (Knossos) can.
    let nil = dir.path().join("nil.edn");
    std::fs::write(
        &nil,
        "{:type :invoke, :f :write, :value 1, :process 0}\n{:type :ok, :f :write, :value 1, :process 0}\n{:type :invoke, :f :read, :value nil, :process 1}\n{:type :ok, :f :read, :value nil, :process 1}\n",
    )
    .unwrap();
    let out = check_cmd(&["--model", "register"], &nil);
    assert_eq!(code(&out), 1, "{}", texts(&out).0);
    let out = check_cmd(&["--model", "register", "--nil-read", "empty"], &nil);
    assert_eq!(code(&out), 1, "{}", texts(&out).0);
    let out = check_cmd(&["--model", "register", "--nil-read", "unknown"], &nil);
    assert_eq!(code(&out), 0, "{}", texts(&out).0);

    // An initial value is for register models only.
    let out = check_cmd(&["--model", "mutex", "--initial-value", "0"], &nil);
    let (_, stderr) = texts(&out);
    assert_ne!(code(&out), 0, "{stderr}");
    assert!(stderr.contains("--initial-value"), "{stderr}");
}

#[test]
fn jepsen_s_vector_and_history_map_layouts_read_like_one_op_per_line() {
    let dir = tempfile::tempdir().unwrap();
    for read in [1, 2] {
        let lines = cas_history(read);
        let ops: String = lines
            .lines()
            .filter(|l| !l.starts_with(';'))
            .collect::<Vec<_>>()
            .join("\n");
        let layouts = [
            ("lines", lines.clone()),
            ("vector", format!("[{ops}]")),
            ("map", format!("{{:name \"cas\"\n :history [{ops}]}}")),
        ];
        let mut verdicts = Vec::new();
        for (name, text) in layouts {
            let path = dir.path().join(format!("{name}-{read}.edn"));
            std::fs::write(&path, text).unwrap();
            let out = check_cmd(&["--model", "cas-register"], &path);
            let (stdout, stderr) = texts(&out);
            assert!(matches!(code(&out), 0 | 1), "{name}: {stdout}\n{stderr}");
            let results = read_json(&dir.path().join(format!("{name}-{read}.results.json")));
            verdicts.push((code(&out), results["checks"][0]["stats"]["ops"].clone()));
        }
        assert!(verdicts.windows(2).all(|w| w[0] == w[1]), "{verdicts:?}");
        assert_eq!(verdicts[0].0, if read == 2 { 0 } else { 1 });
    }

    // Knossos's test tuples are refused, naming the form expected.
    let tuples = dir.path().join("tuples.edn");
    std::fs::write(&tuples, "[0 :invoke :write 0]\n[0 :ok :write 0]\n").unwrap();
    let out = check_cmd(&["--model", "register"], &tuples);
    let (stdout, stderr) = texts(&out);
    assert_eq!(code(&out), 3, "{stdout}\n{stderr}");
    assert!(stderr.contains("line 1, column 1"), "{stderr}");
    assert!(
        stderr.contains(
            "expected an operation map such as {:process 0, :type :invoke, :f :write, :value 0}"
        ),
        "{stderr}"
    );
}

#[test]
fn help_and_a_bad_model_list_every_model() {
    let out = leasehold().args(["check", "--help"]).output().unwrap();
    let (help, _) = texts(&out);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.edn");
    std::fs::write(&path, "").unwrap();
    let out = check_cmd(&["--model", "knossos"], &path);
    let (_, stderr) = texts(&out);
    assert_ne!(code(&out), 0, "{stderr}");
    for model in [
        "register",
        "cas-register",
        "cas-register-strict",
        "mutex",
        "fenced-mutex",
        "leasehold-storage",
        "leasehold-lock",
        "multi-register",
    ] {
        assert!(
            help.lines()
                .any(|l| l.trim_start().starts_with(&format!("{model} "))),
            "--help lists {model}:\n{help}"
        );
        assert!(stderr.contains(model), "the error lists {model}: {stderr}");
        // Every model listed is accepted.
        let out = check_cmd(&["--model", model], &path);
        assert_eq!(code(&out), 2, "{model}: {}", texts(&out).1);
    }
    assert!(
        help.contains("--initial-value") && help.contains("--nil-read"),
        "{help}"
    );
}

#[test]
fn a_multi_register_history_with_a_torn_transaction_is_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("torn.edn");
    std::fs::write(
        &path,
        "{:type :invoke, :f :txn, :value [[:w :x 1] [:w :y 1]], :process 0}\n{:type :invoke, :f :txn, :value [[:r :x nil] [:r :y nil]], :process 1}\n{:type :ok, :f :txn, :value [[:r :x 1] [:r :y nil]], :process 1}\n{:type :ok, :f :txn, :value [[:w :x 1] [:w :y 1]], :process 0}\n",
    )
    .unwrap();
    let out = check_cmd(&["--model", "multi-register"], &path);
    let (stdout, stderr) = texts(&out);
    assert_eq!(code(&out), 1, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("not linearizable under the multi-register model"),
        "{stdout}"
    );
    // Knossos's nil reads (unknown value) accept it.
    let out = check_cmd(
        &["--model", "multi-register", "--nil-read", "unknown"],
        &path,
    );
    assert_eq!(code(&out), 0, "{}", texts(&out).0);
}
