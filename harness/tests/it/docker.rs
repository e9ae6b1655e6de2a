//! The Docker runtime against the real engine: the same verdicts as the local
//! runtime, nothing left behind after a failure or a killed controller.

use std::process::Stdio;

use crate::*;

/// Containers and networks labelled with the run id.
pub(crate) fn docker_leftovers(run_id: &str) -> (Vec<String>, Vec<String>) {
    let list = |args: &[&str]| {
        let out = Command::new("docker").args(args).output().unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
    };
    let filter = format!("label=leasehold.run={run_id}");
    (
        list(&["ps", "-aq", "--filter", &filter]),
        list(&["network", "ls", "-q", "--filter", &filter]),
    )
}

fn run_docker_example(name: &str, seed: u64) -> (i32, serde_json::Value) {
    let store = tempfile::tempdir().unwrap();
    let (out, dir) = run_example_in(store.path(), name, seed, &[]);
    let code = out.status.code().unwrap();
    let results = read_json(&dir.join("results.json"));
    assert!(
        code < 3,
        "exit {code}: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        results["error"]
    );
    assert_eq!(results["runtime"], "docker");
    // Container output was collected: events in the history, logs per node.
    let history = std::fs::read_to_string(dir.join("history.jsonl")).unwrap();
    assert!(history.contains(r#""f":"write""#));
    let log = std::fs::read_to_string(dir.join("nodes/lock1.log")).unwrap();
    assert!(!log.is_empty(), "the lock node's log was saved");
    let run_id = results["run_id"].as_str().unwrap();
    assert_eq!(
        docker_leftovers(run_id),
        (vec![], vec![]),
        "teardown removed everything"
    );
    (code, results)
}

#[test]
fn docker_runs_give_the_same_verdicts_as_local_ones() {
    if !require_docker() {
        return;
    }
    for seed in [1, 2] {
        let (code, results) = run_docker_example("gc-pause-docker.yaml", seed);
        assert_eq!(code, 1, "unfenced: invalid (seed {seed})");
        assert!(results["counts"]["stale_accepted"].as_u64().unwrap() >= 1);
        // Nodes had addresses of their own on the run's network.
        for node in results["nodes"].as_array().unwrap() {
            assert!(!node["addr"].as_str().unwrap().starts_with("127."));
        }
        let (code, results) = run_docker_example("gc-pause-docker-fenced.yaml", seed);
        assert_eq!(
            code, 0,
            "fenced: valid (seed {seed}): {}",
            results["checks"]
        );
        assert!(results["counts"]["stale_rejected"].as_u64().unwrap() >= 1);
        assert_eq!(results["counts"]["stale_accepted"], 0);
    }
}

#[test]
fn a_node_that_exits_at_once_gives_a_readable_error_and_leaves_nothing() {
    if !require_docker() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = std::fs::read_to_string(example("gc-pause-docker.yaml"))
        .unwrap()
        .replace(
            "  service: reference\n",
            "  service: reference\n  binary: /bin/false\n",
        );
    let path = dir.path().join("false-lock.yaml");
    std::fs::write(&path, config).unwrap();
    let store = dir.path().join("store");
    let out = leasehold()
        .args(["run", "--no-progress", "--store"])
        .arg(&store)
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    // An error goes to stderr, where a CI log or `2>` looks for it.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("node lock1 exited") && stderr.contains("exit code 1"),
        "the error names the node and how it ended:\n{stderr}"
    );
    assert!(
        out.stdout.is_empty(),
        "nothing on stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let results = read_json(&run_dir_of(&store).join("results.json"));
    assert!(results["error"].as_str().unwrap().contains("lock1"));
    let run_id = results["run_id"].as_str().unwrap();
    assert_eq!(docker_leftovers(run_id), (vec![], vec![]));
    assert_eq!(processes_of_run(run_id), []);
}

#[test]
fn cleanup_after_a_killed_docker_controller_leaves_nothing() {
    if !require_docker() {
        return;
    }
    let store = tempfile::tempdir().unwrap();
    let mut child = leasehold()
        .args([
            "run",
            "--no-progress",
            "--duration",
            "60s",
            "--seed",
            "4",
            "--store",
        ])
        .arg(store.path())
        .arg(example("gc-pause-docker.yaml"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut run_id = None;
    wait_until(Duration::from_secs(60), "the run to register", || {
        run_id = registered_run_of(child.id());
        run_id.is_some()
    });
    let run_id = run_id.unwrap();
    wait_until(
        Duration::from_secs(90),
        "a paused container process",
        || processes_of_run(&run_id).iter().any(|(_, s)| *s == 'T'),
    );
    child.kill().unwrap(); // SIGKILL: no teardown runs.
    child.wait().unwrap();
    let (containers, networks) = docker_leftovers(&run_id);
    assert!(
        !containers.is_empty() && !networks.is_empty(),
        "a killed controller leaves its containers"
    );

    let out = leasehold().arg("cleanup").output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("removed container"), "{said}");
    assert_eq!(docker_leftovers(&run_id), (vec![], vec![]));
    wait_until(Duration::from_secs(5), "the run's processes to go", || {
        processes_of_run(&run_id).is_empty()
    });
    assert_eq!(namespaces_of_run(&run_id), Vec::<String>::new());
}

#[test]
fn a_partition_cuts_a_containers_holder_off_from_the_lock_service() {
    if !require_docker() || !require_root() {
        return;
    }
    let store = tempfile::tempdir().unwrap();
    let out = leasehold()
        .args([
            "run",
            "--no-progress",
            "--runtime",
            "docker",
            "--seed",
            "1",
            "--store",
        ])
        .arg(store.path())
        .arg(example("partition-zombie.yaml"))
        .output()
        .unwrap();
    let results = read_json(&run_dir_of(store.path()).join("results.json"));
    assert_eq!(out.status.code(), Some(1), "{}", results["checks"]);
    assert_eq!(results["runtime"], "docker");
    assert!(results["counts"]["stale_accepted"].as_u64().unwrap() >= 1);
    let run_id = results["run_id"].as_str().unwrap();
    assert_eq!(docker_leftovers(run_id), (vec![], vec![]));
}
