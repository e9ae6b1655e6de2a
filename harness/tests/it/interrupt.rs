//! Ctrl-C in the middle of a pause: every paused process is resumed, every node
//! stopped, the partial history and results kept, exit code 130.

use std::process::Stdio;

use crate::*;

#[test]
fn sigint_during_a_pause_leaves_nothing_stopped_or_running() {
    let store = tempfile::tempdir().unwrap();
    let child = start_long_run(store.path(), 3, Stdio::piped);
    wait_until(Duration::from_secs(20), "the run folder", || {
        store.path().join("latest").exists()
    });
    let dir = run_dir_of(store.path());
    let history = dir.join("history.jsonl");
    // Wait for the nemesis to pause the holder.
    wait_until(Duration::from_secs(20), "a pause in the history", || {
        std::fs::read_to_string(&history).is_ok_and(|h| h.contains(r#""f":"pause""#))
    });
    // The paused worker is really stopped right now.
    let run_id = registered_run_of(child.id()).expect("the run registered itself");
    assert!(
        processes_of_run(&run_id).iter().any(|(_, s)| *s == 'T'),
        "a node is paused: {:?}",
        processes_of_run(&run_id)
    );

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(130),
        "stderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );

    assert_eq!(
        processes_of_run(&run_id),
        [],
        "no process of the run is left, stopped or running"
    );
    assert_eq!(namespaces_of_run(&run_id), Vec::<String>::new());
    let results = read_json(&dir.join("results.json"));
    assert_eq!(results["interrupted"], true);
    let kept = std::fs::read_to_string(&history).unwrap();
    assert!(
        kept.contains(r#""f":"pause""#) && kept.contains(r#""f":"resume""#),
        "the history records the pause and the resume"
    );
    assert!(kept.lines().count() > 3);
}
