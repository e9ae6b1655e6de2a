//! ZooKeeper 3.8 as the lock system: leasehold starts its own ensemble (one
//! member per lock node, from Debian's jars, with its own config and data
//! folder), in the nodes' namespaces locally and in containers that see the
//! host's JRE and jars in Docker.

use crate::*;

/// Runs a ZooKeeper example (a 3-member ensemble) and checks what every
/// ZooKeeper run must show: see [`check_zookeeper_run`].
fn run_zookeeper(name: &str, seed: u64, extra: &[&str]) -> (i32, String, serde_json::Value) {
    let store = tempfile::tempdir().unwrap();
    let (out, dir) = run_example_in(store.path(), name, seed, extra);
    check_zookeeper_run(name, seed, out, &dir, 3)
}

/// The system, its version and its token named, `members` servers with
/// their logs in the nodes' logs, and a holder that learned its session
/// expired saying so in the history.
fn check_zookeeper_run(
    name: &str,
    seed: u64,
    out: std::process::Output,
    dir: &std::path::Path,
    members: u32,
) -> (i32, String, serde_json::Value) {
    let (code, stdout, results, version) =
        assert_system_run(&format!("{name} seed {seed}"), &out, dir, "zookeeper");
    assert!(
        version.starts_with("3.8."),
        "zookeeper 3.8.x, not {version:?}"
    );
    let token = results["lock_system"]["token"].as_str().unwrap();
    assert!(token.contains("czxid"), "{token}");
    assert!(
        !dir.join(format!("nodes/lock{}.log", members + 1)).exists(),
        "an ensemble of {members}"
    );
    for i in 1..=members {
        let log = std::fs::read_to_string(dir.join(format!("nodes/lock{i}.log"))).unwrap();
        assert!(log.contains("QuorumPeer"), "lock{i}.log:\n{log}");
    }
    let history = std::fs::read_to_string(dir.join("history.jsonl")).unwrap();
    assert!(
        history.contains("lease lost: session expired, learned"),
        "a paused holder learns its session expired:\n{stdout}"
    );
    assert_eq!(check_validity(&results, "token-order"), "valid");
    assert_eq!(check_validity(&results, "mutual-exclusion"), "valid");
    (code, stdout, results)
}

#[test]
fn zookeeper_unfenced_accepts_stale_writes_and_fenced_rejects_them_locally() {
    if !require_zookeeper() || !require_root() {
        return;
    }
    for seed in [1, 2] {
        let (code, stdout, results) = run_zookeeper("zookeeper.yaml", seed, &[]);
        assert_unfenced_invalid(code, &stdout, &results, seed);
        assert_eq!(results["runtime"], "local");
        let (code, stdout, results) = run_zookeeper("zookeeper-fenced.yaml", seed + 20, &[]);
        assert_fenced_valid(code, &stdout, &results, seed + 20);
    }
}

#[test]
fn zookeeper_examples_run_in_docker() {
    if !require_zookeeper() || !require_docker() {
        return;
    }
    let docker = ["--runtime", "docker", "--duration", "6s"];
    for seed in [31, 32] {
        let (code, stdout, results) = run_zookeeper("zookeeper.yaml", seed, &docker);
        assert_unfenced_invalid(code, &stdout, &results, seed);
        assert_eq!(results["runtime"], "docker");
    }
    for seed in [33, 34] {
        let (code, stdout, results) = run_zookeeper("zookeeper-fenced.yaml", seed, &docker);
        assert_fenced_valid(code, &stdout, &results, seed);
    }
}

/// A single server is an ensemble too (ZooKeeper's standalone mode): the
/// paused holder's session still expires and its stale write is found.
#[test]
fn a_one_member_zookeeper_finds_the_stale_write_too() {
    if !require_zookeeper() || !require_root() {
        return;
    }
    let text = std::fs::read_to_string(example("zookeeper.yaml")).unwrap();
    let one = text.replace("  nodes: 3\n", "  nodes: 1\n");
    assert_ne!(one, text, "zookeeper.yaml names its 3 lock nodes");
    let config_dir = tempfile::tempdir().unwrap();
    let config = config_dir.path().join("zookeeper-1.yaml");
    std::fs::write(&config, one).unwrap();
    for seed in [3, 4] {
        let store = tempfile::tempdir().unwrap();
        let out = run_in(&repo(), store.path(), &config, seed, &[]);
        let dir = run_dir_of(store.path());
        let (code, stdout, results) = check_zookeeper_run("zookeeper-1.yaml", seed, out, &dir, 1);
        assert_unfenced_invalid(code, &stdout, &results, seed);
    }
}

#[test]
fn a_missing_java_is_one_line_and_exit_3() {
    assert_missing_server_is_one_line("zookeeper.yaml", "java", "default-jre-headless");
}
