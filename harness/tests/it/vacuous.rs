//! No vacuous verdicts: a run in which a fault the config asked for never
//! happened, the lock service granted nothing or storage accepted nothing is
//! unknown (exit 2), and the summary says what was missing.

use crate::*;

fn run_config(yaml: &str, extra: &[&str]) -> (i32, String, serde_json::Value) {
    let store = tempfile::tempdir().unwrap();
    let config = store.path().join("t.yaml");
    std::fs::write(&config, yaml).unwrap();
    let out = leasehold()
        .args(["run", "--no-progress", "--seed", "1", "--store"])
        .arg(store.path())
        .args(extra)
        .arg(&config)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let results = read_json(&run_dir_of(store.path()).join("results.json"));
    (out.status.code().expect("exited"), stdout, results)
}

#[test]
fn a_run_too_short_for_its_only_fault_is_unknown() {
    let store = tempfile::tempdir().unwrap();
    let (out, dir) = run_example_in(store.path(), "gc-pause.yaml", 1, &["--duration", "4s"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{stdout}");
    assert!(stdout.starts_with("UNKNOWN: "), "{stdout}");
    assert!(
        stdout.contains("the fault faults[0] (pause holder")
            && stdout.contains("was never injected (the run is too short to schedule it)"),
        "the summary names the fault that never happened:\n{stdout}"
    );
    let results = read_json(&dir.join("results.json"));
    assert_eq!(results["verdict"], "unknown");
    assert_eq!(results["missing"].as_array().unwrap().len(), 1);
    // The checks themselves found nothing wrong: the verdict is unknown only
    // because the fault was missing.
    for c in results["checks"].as_array().unwrap() {
        assert_eq!(c["validity"], "valid", "{c}");
    }
}

#[test]
fn a_fault_whose_target_never_appeared_is_unknown() {
    // The lock service is down while the nemesis looks for a holder to pause:
    // nobody holds the lock, so the pause is skipped.
    let yaml = "test: no-holder
duration: 6s
storage: { fencing: true }
workload: { workers: 2, lease: 1s, think: 100ms }
nemesis:
  faults:
    - { fault: pause, target: holder, for: 500ms, start_after: 1s }
  timeline:
    - { at: 0s, kill: lock1, for: 3s }
";
    let (code, stdout, results) = run_config(yaml, &[]);
    assert_eq!(code, 2, "{stdout}");
    let missing: Vec<&str> = results["missing"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    assert!(
        missing
            .iter()
            .any(|m| m.starts_with("the fault faults[0] (pause holder")
                && m.contains("skipped: no node matched holder")),
        "{missing:?}\n{stdout}"
    );
    assert!(stdout.contains("missing: what the run needed"), "{stdout}");
    // The kill did happen, so it is not listed.
    assert!(
        !missing.iter().any(|m| m.contains("timeline[0]")),
        "{missing:?}"
    );
}

#[test]
fn a_run_in_which_storage_accepted_nothing_is_unknown() {
    // The lock service is frozen for the whole run: whatever a worker may get
    // once it thaws at the very end, nobody writes.
    let yaml = "test: no-write
duration: 4s
workload: { workers: 2, lease: 1s, think: 100ms }
nemesis:
  timeline:
    - { at: 0s, pause: lock1, for: 4s }
";
    let (code, stdout, results) = run_config(yaml, &[]);
    assert_eq!(code, 2, "{stdout}");
    assert!(
        stdout.starts_with("UNKNOWN: not enough happened to judge: ")
            && stdout.contains("storage accepted no write"),
        "{stdout}"
    );
    assert!(
        results["missing"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m == "storage accepted no write"),
        "{}",
        results["missing"]
    );
    assert_eq!(results["counts"]["writes_accepted"], 0);
}
