//! `leasehold shrink RUN_DIR`: a failing run's fault schedule shrunk to the
//! faults that matter, written as a config `leasehold run` replays; and what
//! it refuses (a valid run, a folder without a config, a budget too small).

use std::time::Instant;

use crate::*;

fn shrink(run_dir: &Path, extra: &[&str]) -> (i32, String, String) {
    let out = leasehold()
        .arg("shrink")
        .arg(run_dir)
        .args(extra)
        .output()
        .unwrap();
    (
        out.status.code().expect("exited"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The `nemesis.timeline` of a config file, as YAML values.
fn timeline(path: &Path) -> Vec<serde_yaml::Value> {
    let text = std::fs::read_to_string(path).unwrap();
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    doc["nemesis"]["timeline"]
        .as_sequence()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn shrinking_six_faults_of_which_one_matters_ends_with_that_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let (out, run) = run_example_in(&store, "shrink/six-faults.yaml", 1, &[]);
    assert_eq!(out.status.code(), Some(1), "the run is invalid: {out:?}");
    let results = read_json(&run.join("results.json"));
    let applied = results["nemesis"]["faults"].as_array().unwrap();
    assert_eq!(
        applied.iter().filter(|f| f["note"].is_null()).count(),
        6,
        "all six faults took effect: {applied:?}"
    );

    // A budget too small for one replay: nothing reproduced, nothing written.
    let (code, stdout, stderr) = shrink(&run, &["--budget", "1s"]);
    assert_eq!(code, 3, "{stdout}\n{stderr}");
    assert!(
        stderr.contains("did not reproduce within the budget"),
        "{stderr}"
    );
    assert!(!run.join("shrunk.yaml").exists());

    // A budget that runs out after a replay or two: the failing config found
    // is written, and says it is not proven minimal.
    let (code, stdout, stderr) = shrink(&run, &["--runs", "1", "--budget", "15s"]);
    assert_eq!(code, 2, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("NOT proven minimal") && !stdout.contains("\nminimal:"),
        "{stdout}"
    );
    let partial = std::fs::read_to_string(run.join("shrunk.yaml")).unwrap();
    assert!(partial.starts_with("# NOT proven minimal"), "{partial}");

    let started = Instant::now();
    let (code, stdout, stderr) = shrink(&run, &["--runs", "1", "--budget", "4m"]);
    let took = started.elapsed();
    eprintln!("shrink took {took:?}:\n{stdout}");
    assert_eq!(code, 0, "a finished search:\n{stdout}\n{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("[1] 6 faults, 6.0 s: invalid (1/1 runs)")),
        "the scripted original reproduces first:\n{stdout}"
    );
    assert!(
        stdout.contains("before:\n  faults:    6\n")
            && stdout.contains("after:\n  faults:    1\n    - pause holder at 1s for "),
        "before and after:\n{stdout}"
    );
    assert!(stdout.contains("anomalies: stale-write"), "{stdout}");
    assert!(
        stdout.contains("minimal: no single fault can be removed"),
        "{stdout}"
    );
    let shrunk = run.join("shrunk.yaml");
    assert!(
        stdout.contains(&format!(
            "replay: leasehold run {} --seed 1",
            shrunk.display()
        )),
        "{stdout}"
    );
    let text = std::fs::read_to_string(&shrunk).unwrap();
    assert!(text.starts_with("# Shrunk by `leasehold shrink`"), "{text}");
    let faults = timeline(&shrunk);
    assert_eq!(
        faults.len(),
        1,
        "only the long holder pause is left:\n{text}"
    );
    assert_eq!(faults[0]["target"], "holder", "{text}");
    assert_eq!(faults[0]["at"], "1s", "{text}");
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    assert_eq!(doc["seed"], 1, "{text}");
    assert!(
        doc["nemesis"]["faults"]
            .as_sequence()
            .is_none_or(|s| s.is_empty()),
        "no generators: {text}"
    );
    // The pause is no longer than it started and the run no longer than 6 s.
    let length = humantime::parse_duration(faults[0]["for"].as_str().unwrap()).unwrap();
    assert!(length <= std::time::Duration::from_secs(2), "{text}");
    let duration = humantime::parse_duration(doc["duration"].as_str().unwrap()).unwrap();
    assert!(duration <= std::time::Duration::from_secs(6), "{text}");
    // Replays go to a store under the run folder, not the user's.
    assert!(run.join("shrink/store/latest/results.json").exists());

    // `leasehold run` takes it, and it fails again: by shrink's own rule, in
    // one of a few replays (timing can make one replay differ, most of all
    // on a loaded machine, and the search ran each candidate once).
    let mut replays = Vec::new();
    for attempt in 0..3 {
        let replay_store = dir.path().join(format!("replay-{attempt}"));
        let out = run_in(&repo(), &replay_store, &shrunk, 1, &[]);
        let code = out.status.code();
        replays.push(String::from_utf8_lossy(&out.stdout).into_owned());
        if code == Some(1) {
            break;
        }
        assert_eq!(code, Some(0), "a replay is valid or invalid:\n{replays:?}");
    }
    assert!(
        replays.last().unwrap().starts_with("INVALID"),
        "shrunk.yaml replays INVALID:\n{}",
        replays.join("\n")
    );
}

#[test]
fn a_valid_run_has_nothing_to_shrink() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("fenced.yaml");
    let text = std::fs::read_to_string(example("gc-pause-fenced.yaml"))
        .unwrap()
        .replace("duration: 10s", "duration: 5s");
    assert!(text.contains("duration: 5s"));
    std::fs::write(&config, text).unwrap();
    let store = dir.path().join("store");
    let out = run_in(&repo(), &store, &config, 3, &[]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let run = run_dir_of(&store);
    let (code, stdout, stderr) = shrink(&run, &[]);
    assert_eq!(code, 3, "{stdout}\n{stderr}");
    assert!(
        stderr.contains("the run was valid: nothing to shrink"),
        "{stderr}"
    );
    assert!(stdout.is_empty(), "no replay started: {stdout}");
    assert!(!run.join("shrunk.yaml").exists());
    assert!(!run.join("shrink").exists(), "nothing replayed");

    // The same run claimed invalid: its faults, scripted, replay valid, so the
    // failure does not reproduce and nothing is written.
    let fake = dir.path().join("claimed-invalid");
    std::fs::create_dir(&fake).unwrap();
    std::fs::copy(run.join("config.yaml"), fake.join("config.yaml")).unwrap();
    let mut results = read_json(&run.join("results.json"));
    results["verdict"] = "invalid".into();
    std::fs::write(fake.join("results.json"), results.to_string()).unwrap();
    let (code, stdout, stderr) = shrink(&fake, &["--runs", "1", "--budget", "2m"]);
    assert_eq!(code, 3, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("[1] ") && stdout.contains(": not invalid (0/1 runs: valid)"),
        "{stdout}"
    );
    assert!(
        stderr.contains("the failure did not reproduce: none of 1 replay of the scripted faults"),
        "{stderr}"
    );
    assert!(!fake.join("shrunk.yaml").exists());
}

#[test]
fn a_folder_without_a_config_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("results.json"), "{}").unwrap();
    let (code, stdout, stderr) = shrink(dir.path(), &[]);
    assert_eq!(code, 3, "{stdout}\n{stderr}");
    assert!(
        stderr.starts_with("error: ") && stderr.contains("no config.yaml in it"),
        "{stderr}"
    );
    assert!(!dir.path().join("shrunk.yaml").exists());

    let missing = dir.path().join("no-such-run");
    let (code, _, stderr) = shrink(&missing, &[]);
    assert_eq!(code, 3);
    assert!(stderr.contains("no such run folder"), "{stderr}");
}
