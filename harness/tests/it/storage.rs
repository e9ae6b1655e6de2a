//! Storage systems other than leasehold's own: the user's store and adapter
//! (`storage.service: exec`, the Python ones of examples/exec/) and etcd as
//! the storage (`storage.service: etcd-txn`). Neither keeps a ledger, so the
//! checks judge the writes by their replies, and results.json says so.

use std::path::{Path, PathBuf};

use crate::*;

/// Runs an example from the repository's root: its exit code, summary,
/// results.json, history and run folder.
fn run_storage_example(
    name: &str,
    seed: u64,
    store: &Path,
) -> (i32, String, serde_json::Value, String, PathBuf) {
    run_storage_example_with(name, seed, store, &[])
}

/// [`run_storage_example`] with `extra` flags (`--runtime docker`).
fn run_storage_example_with(
    name: &str,
    seed: u64,
    store: &Path,
    extra: &[&str],
) -> (i32, String, serde_json::Value, String, PathBuf) {
    let out = run_in(&repo(), store, Path::new(name), seed, extra);
    let code = out.status.code().expect("exited");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        code == 0 || code == 1,
        "{name} seed {seed}: exit {code}\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let dir = run_dir_of(store);
    let results = read_json(&dir.join("results.json"));
    let history = std::fs::read_to_string(dir.join("history.jsonl")).unwrap();
    (code, stdout, results, history, dir)
}

/// What a run without a ledger must say: results.json names the storage, no
/// ledger, and the checks that judged the replies instead; fencing order
/// (which needs storage's own decision order) did not run; no ledger file.
fn assert_no_ledger(service: &str, fencing: bool, results: &serde_json::Value, dir: &Path) {
    let storage = &results["storage"];
    assert_eq!(storage["service"], service, "{storage}");
    assert_eq!(storage["fencing"], fencing, "{storage}");
    assert_eq!(storage["ledger"], false, "{storage}");
    assert_eq!(
        storage["checks_with_ledger"],
        serde_json::json!({ "stale-write": false, "lost-write": false }),
        "{storage}"
    );
    let names: Vec<&str> = results["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"stale-write") && names.contains(&"lost-write"));
    assert!(!names.contains(&"fencing-order"), "{names:?}");
    assert!(!dir.join("ledger.jsonl").exists());
    // Nothing is valid on nothing: the stale-write check judged writes.
    let stale = results["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "stale-write")
        .unwrap();
    assert_eq!(stale["judged"]["unit"], "accepted writes", "{stale}");
    assert!(stale["judged"]["count"].as_u64().unwrap() >= 1, "{stale}");
}

#[test]
fn exec_storage_unfenced_is_invalid_and_fenced_is_valid_without_a_ledger() {
    if !require_program("python3", "python3") {
        return;
    }
    for seed in [1, 2] {
        let store = tempfile::tempdir().unwrap();
        let (code, stdout, results, _, dir) =
            run_storage_example("examples/exec/storage.yaml", seed, store.path());
        assert_unfenced_invalid(code, &stdout, &results, seed);
        assert_no_ledger("exec", false, &results, &dir);
        assert!(
            stdout
                .contains("storage: exec (not fenced); no ledger, judged from the writes' replies"),
            "{stdout}"
        );
        // The adapter's stderr is its worker's log; the store's is store1's.
        let w1 = std::fs::read_to_string(dir.join("nodes/w1.log")).unwrap();
        assert!(
            w1.contains("adapter: store_client: w1: using store at "),
            "w1.log:\n{w1}"
        );
        let store1 = std::fs::read_to_string(dir.join("nodes/store1.log")).unwrap();
        assert!(store1.contains("fencing off"), "store1.log:\n{store1}");

        let store = tempfile::tempdir().unwrap();
        let (code, stdout, results, history, dir) =
            run_storage_example("examples/exec/storage-fenced.yaml", seed, store.path());
        assert_fenced_valid(code, &stdout, &results, seed);
        assert_no_ledger("exec", true, &results, &dir);
        assert!(
            history.contains(r#""error":"rejected: high water "#),
            "the store's rejection, with its high water, is the write's error"
        );
    }
}

#[test]
fn etcd_txn_fenced_is_valid_and_unfenced_is_invalid() {
    if !require_program("etcd", "etcd-server") {
        return;
    }
    for seed in [1, 2] {
        let store = tempfile::tempdir().unwrap();
        let (code, stdout, results, history, dir) =
            run_storage_example("examples/etcd-txn.yaml", seed, store.path());
        assert_fenced_valid(code, &stdout, &results, seed);
        assert_no_ledger("etcd-txn", true, &results, &dir);
        assert!(
            history.contains(r#""error":"rejected before sending: the lock key of token "#)
                || history.contains(r#""error":"rejected by the transaction's compare: "#),
            "a zombie's write is refused because its lock key is gone"
        );
        // The etcd members are the storage: no storage node was started.
        let roles: Vec<&str> = results["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["role"].as_str().unwrap())
            .collect();
        assert!(!roles.contains(&"storage"), "{roles:?}");

        let store = tempfile::tempdir().unwrap();
        let (code, stdout, results, _, dir) =
            run_storage_example("examples/etcd-txn-unfenced.yaml", seed, store.path());
        assert_unfenced_invalid(code, &stdout, &results, seed);
        assert_no_ledger("etcd-txn", false, &results, &dir);
    }
}

#[test]
fn the_reference_storage_says_its_checks_had_a_ledger() {
    let store = tempfile::tempdir().unwrap();
    let (code, stdout, results, _, dir) =
        run_storage_example("examples/gc-pause-fenced.yaml", 1, store.path());
    assert_eq!(code, 0, "{stdout}");
    let storage = &results["storage"];
    assert_eq!(storage["service"], "reference", "{storage}");
    assert_eq!(storage["ledger"], true, "{storage}");
    assert_eq!(
        storage["checks_with_ledger"],
        serde_json::json!({ "stale-write": true, "fencing-order": true, "lost-write": true }),
        "{storage}"
    );
    assert!(dir.join("ledger.jsonl").is_file());
}

/// In Docker the user's store runs in its storage node's container and each
/// worker's adapter in the worker's, seeing the host's python3 and the
/// working directory read-only: the same verdicts as locally.
#[test]
fn exec_storage_runs_in_docker() {
    if !require_docker() || !require_program("python3", "python3") {
        return;
    }
    for seed in [3, 4] {
        let store = tempfile::tempdir().unwrap();
        let (code, stdout, results, _, dir) = run_storage_example_with(
            "examples/exec/storage.yaml",
            seed,
            store.path(),
            &["--runtime", "docker"],
        );
        assert_eq!(results["runtime"], "docker");
        assert_unfenced_invalid(code, &stdout, &results, seed);
        assert_no_ledger("exec", false, &results, &dir);
        let store = tempfile::tempdir().unwrap();
        let (code, stdout, results, _, dir) = run_storage_example_with(
            "examples/exec/storage-fenced.yaml",
            seed,
            store.path(),
            &["--runtime", "docker"],
        );
        assert_fenced_valid(code, &stdout, &results, seed);
        assert_no_ledger("exec", true, &results, &dir);
    }
}

#[test]
fn etcd_txn_runs_in_docker() {
    if !require_docker() || !require_program("etcd", "etcd-server") {
        return;
    }
    for seed in [3, 4] {
        let store = tempfile::tempdir().unwrap();
        let (code, stdout, results, _, dir) = run_storage_example_with(
            "examples/etcd-txn.yaml",
            seed,
            store.path(),
            &["--runtime", "docker"],
        );
        assert_eq!(results["runtime"], "docker");
        assert_fenced_valid(code, &stdout, &results, seed);
        assert_no_ledger("etcd-txn", true, &results, &dir);
    }
    let store = tempfile::tempdir().unwrap();
    let (code, stdout, results, _, dir) = run_storage_example_with(
        "examples/etcd-txn-unfenced.yaml",
        5,
        store.path(),
        &["--runtime", "docker"],
    );
    assert_unfenced_invalid(code, &stdout, &results, 5);
    assert_no_ledger("etcd-txn", false, &results, &dir);
}

/// Runs the fenced exec store with [`MISBEHAVING_ADAPTER`] in `mode` as the adapter: the
/// write the first adapter got ends `info` with `why`, the worker writes
/// again through a new adapter, the run completes and is checked (valid), and
/// the worker's log says what happened.
fn misbehaving_storage_adapter_run(mode: &str, why: &str) {
    if !require_program("python3", "python3") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let wrapper = dir.path().join("misbehave_once.py");
    std::fs::write(&wrapper, MISBEHAVING_ADAPTER).unwrap();
    let examples = repo().join("examples/exec");
    let config = dir.path().join(format!("{mode}.yaml"));
    std::fs::write(
        &config,
        format!(
            "test: exec-storage-{mode}\nduration: 3s\nstorage:\n  service: exec\n  \
             fencing: true\n  server:\n    command: [python3, {server}, --host, \"{{host}}\", \
             --port, \"{{port}}\", --fencing, \"{{fencing}}\"]\n  client:\n    \
             command: [python3, {wrapper}, {mode}, {marker}, {client}]\n\
             workload:\n  workers: 2\n  lease: 1s\n  think: 100ms\n",
            server = examples.join("store.py").display(),
            wrapper = wrapper.display(),
            marker = dir.path().join("first-life").display(),
            client = examples.join("store_client.py").display(),
        ),
    )
    .unwrap();
    let run = assert_adapter_recovers(dir.path(), &config, mode, why, "write");
    let results = read_json(&run.join("results.json"));
    assert_eq!(results["storage"]["ledger"], false);
}

#[test]
fn a_storage_adapter_printing_garbage_ends_its_write_info_and_the_run_goes_on() {
    misbehaving_storage_adapter_run("garbage", "not JSON");
}

#[test]
fn a_storage_adapter_that_hangs_ends_its_write_info_and_the_run_goes_on() {
    misbehaving_storage_adapter_run("hang", "timeout: no reply within");
}

#[test]
fn a_storage_adapter_that_exits_mid_write_ends_it_info_and_the_run_goes_on() {
    misbehaving_storage_adapter_run("exit", "adapter exited (exit status: 7)");
}

const WORKLOAD: &str = "workload: { workers: 2, lease: 1s, think: 100ms }\n";

#[test]
fn illegal_storage_combinations_name_the_file_line_and_field() {
    let cases = [
        (
            "test: t\nduration: 2s\nstorage:\n  service: etcd-txn\n",
            "bad.yaml:4:12: storage.service: etcd-txn writes into the lock's etcd cluster",
        ),
        (
            "test: t\nduration: 2s\nlock: { service: etcd }\nstorage:\n  service: etcd-txn\n  nodes: 2\n",
            "bad.yaml:6:10: storage.nodes: etcd-txn starts no storage nodes",
        ),
        (
            "test: t\nduration: 2s\nstorage:\n  client: { command: [python3, c.py] }\n",
            "bad.yaml:4:11: storage.client: only storage service: exec takes a client",
        ),
        (
            "test: t\nduration: 2s\nstorage:\n  service: exec\n  addresses: [\"a:1\"]\n",
            "storage.client: storage service: exec needs the adapter",
        ),
        (
            "test: t\nduration: 2s\nstorage:\n  service: exec\n  client: { command: [c] }\n",
            "storage.addresses: storage service: exec without a server needs",
        ),
        (
            "test: t\nduration: 2s\nstorage:\n  service: exec\n  client: { command: [c] }\n  server: { command: [s, \"{fence}\"] }\n",
            "storage.server.command[1]: unknown placeholder {fence}",
        ),
        (
            "test: t\nduration: 2s\nstorage:\n  service: etcd\n",
            "bad.yaml:4:12: storage.service: unknown variant `etcd`",
        ),
    ];
    for (config, expected) in cases {
        let (code, err) = crate::config_errors::run_config(Some(&format!("{config}{WORKLOAD}")));
        assert_eq!(code, 3, "{config}\n{err}");
        assert!(
            err.contains(expected),
            "{config}\nexpected {expected:?} in:\n{err}"
        );
    }
}
