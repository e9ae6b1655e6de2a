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
