//! A run stopped by a signal in the middle of a pause: every paused process is
//! resumed, every node stopped, the network removed, the partial history and
//! results kept, exit code 128 + the signal. Ctrl-C, SIGTERM (`timeout`, CI
//! cancellation, systemd), SIGHUP and SIGQUIT alike, on both runtimes.

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::*;

/// Starts `example` and waits until the nemesis has paused the holder and the
/// paused worker is really stopped; returns the controller, its run id and
/// its run folder.
fn run_until_paused(example: &str, store: &Path, seed: u64) -> (Child, String, PathBuf) {
    let child = start_long_run_of(example, store, seed, Stdio::piped);
    wait_until(Duration::from_secs(60), "the run folder", || {
        store.join("latest").exists()
    });
    let dir = run_dir_of(store);
    let history = dir.join("history.jsonl");
    wait_until(Duration::from_secs(60), "a pause in the history", || {
        std::fs::read_to_string(&history).is_ok_and(|h| h.contains(r#""f":"pause""#))
    });
    let run_id = registered_run_of(child.id()).expect("the run registered itself");
    assert!(
        stopped_processes(&run_id) > 0,
        "a node is paused: {:?}",
        processes_of_run(&run_id)
    );
    (child, run_id, dir)
}

fn stopped_processes(run_id: &str) -> usize {
    processes_of_run(run_id)
        .iter()
        .filter(|(_, s)| *s == 'T')
        .count()
}

fn signal(child: &Child, s: Signal) {
    kill(Pid::from_raw(child.id() as i32), s).unwrap();
}

/// What every signalled run must leave: nothing of the run, and its results.
fn assert_healed_and_kept(run_id: &str, dir: &Path, signal_number: i32) {
    assert_eq!(
        processes_of_run(run_id),
        [],
        "no process of the run is left, stopped or running"
    );
    assert_eq!(namespaces_of_run(run_id), Vec::<String>::new());
    let results = read_json(&dir.join("results.json"));
    assert_eq!(results["interrupted"], true);
    assert_eq!(results["signal"], signal_number);
    assert!(dir.join("report.html").exists(), "report.html written");
    assert!(dir.join("junit.xml").exists(), "junit.xml written");
    let kept = std::fs::read_to_string(dir.join("history.jsonl")).unwrap();
    assert!(
        kept.contains(r#""f":"pause""#) && kept.contains(r#""f":"resume""#),
        "the history records the pause and the resume"
    );
    assert!(kept.lines().count() > 3);
}

/// Signals a run of `example` mid-pause and checks everything it must leave;
/// returns the run id.
fn signal_mid_pause(example: &str, s: Signal, seed: u64) -> String {
    let store = tempfile::tempdir().unwrap();
    let (child, run_id, dir) = run_until_paused(example, store.path(), seed);
    signal(&child, s);
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(128 + s as i32),
        "stderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_healed_and_kept(&run_id, &dir, s as i32);
    if s != Signal::SIGINT {
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains(&format!("interrupted by {}", s.as_str())),
            "the summary names the signal:\n{stdout}"
        );
    }
    run_id
}

fn signal_mid_pause_local(s: Signal, seed: u64) {
    signal_mid_pause("gc-pause.yaml", s, seed);
}

#[test]
fn sigint_during_a_pause_leaves_nothing_stopped_or_running() {
    signal_mid_pause_local(Signal::SIGINT, 3);
}

#[test]
fn sigterm_during_a_pause_heals_and_keeps_the_results() {
    signal_mid_pause_local(Signal::SIGTERM, 4);
}

#[test]
fn sighup_during_a_pause_heals_and_keeps_the_results() {
    signal_mid_pause_local(Signal::SIGHUP, 5);
}

#[test]
fn sigquit_during_a_pause_heals_and_keeps_the_results() {
    signal_mid_pause_local(Signal::SIGQUIT, 6);
}

/// Sends two signals to a run of `example` mid-pause: it must exit at once
/// with nothing left stopped, and what the hurried exit left is removed by
/// `leasehold cleanup`. Returns the run id.
fn second_signal_mid_pause(example: &str, seed: u64) -> String {
    let store = tempfile::tempdir().unwrap();
    let (child, run_id, _dir) = run_until_paused(example, store.path(), seed);
    // Both before the controller can heal: the second lands during shutdown.
    // Two different signals, since the kernel merges a pending signal with
    // another of its kind. Both are pending at once, so either may count as
    // the first: the exit code is 128 + that one.
    signal(&child, Signal::SIGINT);
    signal(&child, Signal::SIGTERM);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        matches!(out.status.code(), Some(130 | 143)),
        "{example}: {:?}, stderr:\n{stderr}",
        out.status
    );
    assert!(
        stderr.contains("stopping now"),
        "{example}: stderr:\n{stderr}"
    );
    // Checked before cleanup runs: the hurried exit itself resumed them.
    assert_eq!(
        stopped_processes(&run_id),
        0,
        "{example}: nothing is left stopped: {:?}",
        processes_of_run(&run_id)
    );
    let cleanup = leasehold().arg("cleanup").output().unwrap();
    assert!(cleanup.status.success(), "{cleanup:?}");
    wait_until(Duration::from_secs(10), "the run's processes to go", || {
        processes_of_run(&run_id).is_empty()
    });
    assert_eq!(namespaces_of_run(&run_id), Vec::<String>::new());
    run_id
}

#[test]
fn a_second_signal_ends_at_once_but_resumes_the_paused_first() {
    second_signal_mid_pause("gc-pause.yaml", 7);
}

/// In Docker the paused processes are in containers the hurried exit does
/// not remove: it must still send them SIGCONT (through their cgroups).
#[test]
fn a_second_signal_on_docker_resumes_the_paused_containers() {
    if !require_docker() {
        return;
    }
    let run_id = second_signal_mid_pause("gc-pause-docker.yaml", 10);
    assert_eq!(
        crate::docker::docker_leftovers(&run_id),
        (vec![], vec![]),
        "cleanup removed every container and network of the run"
    );
}

#[test]
fn sigterm_during_a_pause_on_docker_removes_every_container() {
    if !require_docker() {
        return;
    }
    for (s, seed) in [(Signal::SIGTERM, 8), (Signal::SIGHUP, 9)] {
        let run_id = signal_mid_pause("gc-pause-docker.yaml", s, seed);
        assert_eq!(
            crate::docker::docker_leftovers(&run_id),
            (vec![], vec![]),
            "no container or network of the run is left"
        );
    }
}
