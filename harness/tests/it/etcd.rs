//! etcd 3.4 as the lock system: leasehold starts its own cluster, one `etcd`
//! member per lock node (never a system service), as processes locally and in
//! containers packed from the host binary in Docker.

use crate::*;

/// What every etcd run must show: the summary and results.json name the
/// system, its version as the server reports it (3.4.x), and its token; the
/// member's own log is the node's log.
fn assert_etcd_run(
    what: &str,
    out: &std::process::Output,
    dir: &Path,
) -> (i32, String, serde_json::Value) {
    let (code, stdout, results, version) = assert_system_run(what, out, dir, "etcd");
    assert!(version.starts_with("3.4."), "etcd 3.4.x, not {version:?}");
    let token = results["lock_system"]["token"].as_str().unwrap();
    assert!(
        token.contains("the create revision of the lock key"),
        "{token}"
    );
    let log = std::fs::read_to_string(dir.join("nodes/lock1.log")).unwrap();
    assert!(
        log.contains(&format!("\"etcd-version\":\"{version}\"")),
        "lock1.log is etcd's own:\n{log}"
    );
    assert_eq!(check_validity(&results, "token-order"), "valid");
    (code, stdout, results)
}

fn run_etcd(name: &str, seed: u64, extra: &[&str]) -> (i32, String, serde_json::Value) {
    let store = tempfile::tempdir().unwrap();
    let (out, dir) = run_example_in(store.path(), name, seed, extra);
    assert_etcd_run(&format!("{name} seed {seed}"), &out, &dir)
}

#[test]
fn etcd_unfenced_accepts_stale_writes_locally() {
    if !require_program("etcd", "etcd-server") {
        return;
    }
    for seed in [11, 12] {
        let (code, stdout, results) = run_etcd("etcd.yaml", seed, &[]);
        assert_unfenced_invalid(code, &stdout, &results, seed);
        assert_eq!(results["runtime"], "local");
    }
}

#[test]
fn etcd_fenced_rejects_stale_writes_locally() {
    if !require_program("etcd", "etcd-server") {
        return;
    }
    for seed in [21, 22] {
        let (code, stdout, results) = run_etcd("etcd-fenced.yaml", seed, &[]);
        assert_fenced_valid(code, &stdout, &results, seed);
    }
}

#[test]
fn a_missing_etcd_is_one_line_and_exit_3() {
    assert_missing_server_is_one_line("etcd.yaml", "etcd", "etcd-server");
}

#[test]
fn etcd_examples_run_in_docker() {
    if !require_program("etcd", "etcd-server") || !require_docker() {
        return;
    }
    for seed in [31, 32] {
        let (code, stdout, results) = run_etcd("etcd.yaml", seed, &["--runtime", "docker"]);
        assert_unfenced_invalid(code, &stdout, &results, seed);
        assert_eq!(results["runtime"], "docker");
        for node in results["nodes"].as_array().unwrap() {
            assert!(!node["addr"].as_str().unwrap().starts_with("127."));
        }
        let (code, stdout, results) =
            run_etcd("etcd-fenced.yaml", seed + 2, &["--runtime", "docker"]);
        assert_fenced_valid(code, &stdout, &results, seed + 2);
    }
}

/// A 3-node cluster whose leader is paused, twice: each pause names the node
/// etcd's status API called the leader at that moment, and that is the node
/// paused. The first pause outlasts an election, so the second finds another
/// leader: the target follows the cluster, it is not a fixed node.
#[test]
fn lock_leader_pauses_the_current_etcd_leader() {
    if !require_program("etcd", "etcd-server") {
        return;
    }
    let config = "\
test: etcd-leader
duration: 9s
lock:
  service: etcd
  nodes: 3
storage:
  nodes: 1
  fencing: true
workload:
  workers: 3
  lease: 2s
  think: 300ms
  timeout: 1s
  backoff: 50ms
nemesis:
  faults:
    - fault: pause
      target: lock-leader
      for: 2s
      every: 3500ms..3500ms
      start_after: 1s
";
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("leader.yaml");
    std::fs::write(&path, config).unwrap();
    let store = dir.path().join("store");
    let out = leasehold()
        .args(["run", "--no-progress", "--seed", "41", "--store"])
        .arg(&store)
        .arg(&path)
        .output()
        .unwrap();
    let run = run_dir_of(&store);
    let (code, stdout, results) = assert_etcd_run("3-node lock-leader seed 41", &out, &run);
    assert_eq!(code, 0, "fenced storage: valid\n{stdout}");
    assert_eq!(results["nodes"].as_array().unwrap().len(), 3 + 1 + 3);
    let pauses: Vec<serde_json::Value> = std::fs::read_to_string(run.join("history.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["process"] == "nemesis" && e["f"] == "pause")
        .collect();
    assert!(pauses.len() >= 2, "two leader pauses: {pauses:?}");
    let mut leaders = Vec::new();
    for p in &pauses {
        let v = &p["value"];
        assert_eq!(v["target"], "lock-leader", "{p}");
        let leader = v["leader"]
            .as_str()
            .unwrap_or_else(|| panic!("the event records the leader: {p}"));
        assert!(
            ["lock1", "lock2", "lock3"].contains(&leader),
            "a lock node leads: {p}"
        );
        assert_eq!(
            v["nodes"],
            serde_json::json!([leader]),
            "the leader paused: {p}"
        );
        leaders.push(leader.to_owned());
    }
    assert_ne!(
        leaders[0], leaders[1],
        "after the first leader's pause another member leads: {leaders:?}"
    );
    // Every pause was resumed.
    let faults = results["nemesis"]["faults"].as_array().unwrap();
    assert!(
        faults
            .iter()
            .filter(|f| f["f"] == "pause")
            .all(|f| f["end_ns"].is_u64()),
        "{faults:?}"
    );
}
