//! A controller killed with SIGKILL mid-pause leaves things behind; `leasehold
//! cleanup` removes them, and leaves live runs alone.

use std::process::Stdio;

use crate::*;

#[test]
fn cleanup_removes_what_a_killed_controller_left() {
    let store = tempfile::tempdir().unwrap();
    let mut child = start_long_run(store.path(), 5, Stdio::null);
    let mut run_id = None;
    wait_until(Duration::from_secs(20), "the run to register", || {
        run_id = registered_run_of(child.id());
        run_id.is_some()
    });
    let run_id = run_id.unwrap();
    wait_until(Duration::from_secs(20), "a paused node", || {
        processes_of_run(&run_id).iter().any(|(_, s)| *s == 'T')
    });
    if is_root() {
        assert!(
            !namespaces_of_run(&run_id).is_empty(),
            "as root the run has namespaces"
        );
    }

    // While the run is alive, cleanup must not touch it.
    let out = leasehold().arg("cleanup").output().unwrap();
    assert!(out.status.success());
    assert!(
        !processes_of_run(&run_id).is_empty(),
        "cleanup left the live run alone"
    );

    child.kill().unwrap(); // SIGKILL: no teardown runs.
    child.wait().unwrap();
    let out = leasehold().arg("cleanup").output().unwrap();
    assert!(out.status.success(), "{out:?}");
    wait_until(Duration::from_secs(5), "the run's processes to go", || {
        processes_of_run(&run_id).is_empty()
    });
    assert_eq!(namespaces_of_run(&run_id), Vec::<String>::new());
    assert_eq!(registered_run_of(child.id()), None);
}

/// A controller killed while PostgreSQL and ZooKeeper nodes run: no server
/// process survives it (their parent-death signals, and the postgres
/// launcher's reaping), and nothing of theirs is left outside the run folder:
/// no socket, no shared memory segment.
#[test]
fn a_killed_controller_leaves_no_postgres_or_zookeeper_behind() {
    if !require_postgres() || !require_root() || !require_zookeeper() {
        return;
    }
    let shm_before = std::fs::read_dir("/dev/shm").unwrap().count();
    for example in ["postgres-storage.yaml", "zookeeper.yaml"] {
        let store = tempfile::tempdir().unwrap();
        let mut child = start_long_run_of(example, store.path(), 3, Stdio::null);
        let mut run_id = None;
        wait_until(Duration::from_secs(20), "the run to register", || {
            run_id = registered_run_of(child.id());
            run_id.is_some()
        });
        let run_id = run_id.unwrap();
        let store_path = std::fs::canonicalize(store.path()).unwrap();
        let servers = || {
            let ps = Command::new("ps").args(["-eo", "args"]).output().unwrap();
            String::from_utf8_lossy(&ps.stdout)
                .lines()
                .filter(|l| {
                    // Backends name themselves `postgres: …`; the postmaster
                    // sees its data folder mounted elsewhere.
                    l.contains(&*store_path.to_string_lossy())
                        || l.contains("postgres:")
                        || l.contains("/bin/postgres ")
                })
                .map(str::to_owned)
                .collect::<Vec<_>>()
        };
        wait_until(Duration::from_secs(30), "the servers to run", || {
            let running = servers();
            running
                .iter()
                .any(|l| l.contains("postgres:") || l.contains("QuorumPeerMain"))
        });
        child.kill().unwrap();
        child.wait().unwrap();
        let out = leasehold().arg("cleanup").output().unwrap();
        assert!(out.status.success(), "{out:?}");
        wait_until(Duration::from_secs(10), "the servers to go", || {
            servers().is_empty() && processes_of_run(&run_id).is_empty()
        });
    }
    assert_eq!(
        std::fs::read_dir("/dev/shm").unwrap().count(),
        shm_before,
        "no shared memory left in /dev/shm"
    );
}
