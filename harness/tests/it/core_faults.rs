//! The core under faults of its own: a node restarted during a partition, a
//! Ctrl-C while a restarted node is slow to answer, and a history file that
//! cannot grow. Each needs root (namespaces, nft, mount); the first Docker too.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::mpsc;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::*;

/// Writes `config` to a temp dir and starts `leasehold run` on it with the
/// store `store`; stdout and stderr piped.
fn start(config: &str, store: &Path, dir: &Path) -> Child {
    let path = dir.join("test.yaml");
    std::fs::write(&path, config).unwrap();
    leasehold()
        .args(["run", "--no-progress", "--seed", "7", "--store"])
        .arg(store)
        .arg(&path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn history_of(store: &Path) -> String {
    std::fs::canonicalize(store.join("latest"))
        .ok()
        .and_then(|d| std::fs::read_to_string(d.join("history.jsonl")).ok())
        .unwrap_or_default()
}

fn output_of(child: Child) -> (i32, String) {
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

const KILLED_WHILE_CUT_OFF: &str = "\
test: reapply
duration: 6s
runtime: docker
storage:
  fencing: true
workload:
  workers: 3
  lease: 1s
  think: 200ms
nemesis:
  timeline:
    - at: 500ms
      partition: w1
      for: 4s
    - at: 1s
      kill: w1
      for: 500ms
";

/// A container comes back in a new network namespace: without the
/// partition's rules unless the runtime puts them back.
#[test]
fn a_container_killed_during_a_partition_comes_back_partitioned_and_heals() {
    if !require_docker() || !require_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let child = start(KILLED_WHILE_CUT_OFF, &store, dir.path());
    let mut run_id = None;
    wait_until(Duration::from_secs(90), "the run to register", || {
        run_id = registered_run_of(child.id());
        run_id.is_some()
    });
    let run_id = run_id.unwrap();
    // The partition lasts until about 4.5 s into the workload; the restart is
    // at 1.5 s: there is time to look inside the new container.
    wait_until(
        Duration::from_secs(60),
        "the partition to be reapplied",
        || history_of(&store).contains(r#""f":"reapply""#),
    );
    let pid = Command::new("docker")
        .args([
            "inspect",
            "-f",
            "{{.State.Pid}}",
            &format!("lh-{run_id}-w1"),
        ])
        .output()
        .unwrap();
    let pid = String::from_utf8_lossy(&pid.stdout).trim().to_owned();
    let tables = Command::new("nsenter")
        .args(["-t", &pid, "-n", "nft", "list", "tables"])
        .output()
        .unwrap();
    let tables = String::from_utf8_lossy(&tables.stdout).into_owned();
    let partition_over = history_of(&store).contains(r#""f":"heal""#);
    let (code, output) = output_of(child);
    assert!(code < 3, "exit {code}\n{output}");
    assert!(!partition_over, "looked while the partition was in force");
    assert!(
        tables.contains("table inet leasehold"),
        "the restarted w1 (pid {pid}) drops its grudge's packets again: {tables:?}"
    );

    let run = run_dir_of(&store);
    let results = read_json(&run.join("results.json"));
    let faults = results["nemesis"]["faults"].as_array().unwrap();
    for f in faults {
        assert!(f["note"].is_null(), "no fault or heal failed: {f}");
        assert!(f["end_ns"].as_u64().is_some(), "healed: {f}");
    }
    let history = std::fs::read_to_string(run.join("history.jsonl")).unwrap();
    let nemesis: Vec<serde_json::Value> = history
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["process"] == "nemesis")
        .collect();
    let order: Vec<&str> = nemesis.iter().map(|e| e["f"].as_str().unwrap()).collect();
    // The rules go back while the node restarts, before it counts as up.
    assert_eq!(order, ["partition", "kill", "reapply", "restart", "heal"]);
    let reapply = nemesis.iter().find(|e| e["f"] == "reapply").unwrap();
    assert_eq!(reapply["value"]["nodes"], serde_json::json!(["w1"]));
    assert_eq!(reapply["value"]["reapplied"], "partition");
    // w1 drops everyone else's packets, as the partition said.
    let grudge = &nemesis[0]["value"]["grudge"]["w1"];
    assert_eq!(&reapply["value"]["grudge"]["w1"], grudge, "{reapply}");
}

/// The lock node's restart stalls: its state file is a FIFO nobody writes,
/// so it never answers its health check and the controller would wait the
/// full readiness limit (10 s) for it.
const SLOW_RESTART: &str = "\
test: slow-restart
duration: 30s
workload:
  workers: 2
  lease: 1s
  think: 200ms
nemesis:
  timeline:
    - at: 1s
      kill: lock1
      for: 3s
";

/// Pids of the run's processes of the node `name` (`--name <name>`).
fn node_pids(run_id: &str, name: &str) -> Vec<i32> {
    processes_of_run(run_id)
        .into_iter()
        .map(|(pid, _)| pid)
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                let args: Vec<&[u8]> = c.split(|b| *b == 0).collect();
                args.windows(2)
                    .any(|w| w[0] == b"--name" && w[1] == name.as_bytes())
            })
        })
        .collect()
}

/// Pids of the run's `node lock --name lock1` processes.
fn lock1_pids(run_id: &str) -> Vec<i32> {
    node_pids(run_id, "lock1")
}

#[test]
fn ctrl_c_during_a_slow_restart_is_answered_at_once() {
    if !require_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let child = start(SLOW_RESTART, &store, dir.path());
    wait_until(Duration::from_secs(30), "the kill of lock1", || {
        history_of(&store).contains(r#""f":"kill""#)
    });
    let run_id = registered_run_of(child.id()).unwrap();
    let state = run_dir_of(&store).join("nodes/lock1/lock-state.json");
    let _ = std::fs::remove_file(&state);
    let made = Command::new("mkfifo").arg(&state).status().unwrap();
    assert!(made.success());
    // The restart has begun once a new lock1 process exists.
    wait_until(Duration::from_secs(10), "lock1 to be started again", || {
        !lock1_pids(&run_id).is_empty()
    });
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !history_of(&store).contains(r#""f":"restart""#),
        "the restart is still waiting for lock1 to answer"
    );
    let signalled = Instant::now();
    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).unwrap();
    // Answered: the run stops waiting for lock1 and stops its workers, which
    // finish the request in flight (at most their 500 ms timeout) and exit.
    wait_until(Duration::from_secs(10), "the workers to stop", || {
        node_pids(&run_id, "w1").is_empty() && node_pids(&run_id, "w2").is_empty()
    });
    let answered = signalled.elapsed();
    assert!(
        answered < Duration::from_secs(1),
        "the workers stopped {answered:?} after Ctrl-C: the controller answered late"
    );
    let (code, output) = output_of(child);
    let took = signalled.elapsed();
    assert_eq!(code, 130, "{output}");
    // Answering takes a moment; teardown then gives the stuck lock1 its 2 s
    // grace before SIGKILL. Before, the controller first waited out the whole
    // 10 s readiness limit of the restart.
    assert!(
        took < Duration::from_secs(5),
        "exited {took:?} after Ctrl-C\n{output}"
    );
    let results = read_json(&run_dir_of(&store).join("results.json"));
    assert_eq!(results["interrupted"], true);
    let kill_record = &results["nemesis"]["faults"][0];
    assert!(
        kill_record["note"]
            .as_str()
            .is_some_and(|n| n.contains("interrupted")),
        "{kill_record}"
    );
    assert_eq!(processes_of_run(&run_id), []);
    assert_eq!(namespaces_of_run(&run_id), Vec::<String>::new());
}

/// A tmpfs mounted for one test, unmounted when dropped (also on failure).
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: PathBuf, size: &str) -> Tmpfs {
        std::fs::create_dir_all(&at).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&at)
            .status()
            .unwrap();
        assert!(ok.success(), "mount a tmpfs at {}", at.display());
        Tmpfs(at)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Fills the file system of `path` until a write fails.
fn fill(path: &Path) {
    use std::io::Write;
    let mut f = std::fs::File::create(path).unwrap();
    let block = vec![0u8; 4096];
    while f.write_all(&block).and_then(|()| f.sync_all()).is_ok() {}
}

const FULL_DISK: &str = "\
test: full-disk
duration: 4s
storage:
  fencing: true
workload:
  workers: 3
  lease: 1s
  think: 100ms
";

/// The history cannot grow: the run goes on, keeps every event in memory,
/// cleans up as always and says in results.json (once there is room for it)
/// that its verdict is unknown because history.jsonl is incomplete.
#[test]
fn a_history_that_cannot_be_written_ends_unknown_with_results_and_cleanup() {
    if !require_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let disk = Tmpfs::mount(dir.path().join("disk"), "1m");
    let store = disk.0.join("store");
    let mut child = start(FULL_DISK, &store, dir.path());
    // The controller says on stderr when the history stops growing.
    let stderr = child.stderr.take().unwrap();
    let (said, heard) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = said.send(line.clone());
            all += &line;
            all.push('\n');
        }
        all
    });
    wait_until(Duration::from_secs(30), "some history", || {
        history_of(&store).lines().count() > 5
    });
    let run_id = registered_run_of(child.id()).unwrap();
    let filler = disk.0.join("filler");
    fill(&filler);
    let failed = loop {
        match heard.recv_timeout(Duration::from_secs(20)) {
            Ok(line) if line.contains("history.jsonl") && line.contains("incomplete") => {
                break true;
            }
            Ok(_) => continue,
            Err(_) => break false,
        }
    };
    // Room again, for results.json: the user frees space, the run ends.
    std::fs::remove_file(&filler).unwrap();
    let controller = child.id();
    let out = child.wait_with_output().unwrap();
    let stderr = reader.join().unwrap();
    assert!(
        failed,
        "the controller reported the failed write:\n{stderr}"
    );
    assert_eq!(out.status.code(), Some(3), "{stderr}");

    let run = run_dir_of(&store);
    let results = read_json(&run.join("results.json"));
    assert_eq!(results["verdict"], "unknown");
    let error = results["error"].as_str().unwrap();
    assert!(
        error.contains("history.jsonl") && error.contains("incomplete"),
        "{error}"
    );
    // The checks saw every event, more than the file holds: nothing after the
    // failure was dropped.
    let on_disk = std::fs::read_to_string(run.join("history.jsonl"))
        .unwrap()
        .lines()
        .count() as u64;
    let events = results["counts"]["events"].as_u64().unwrap();
    assert!(
        events > on_disk,
        "{events} events checked, {on_disk} lines on disk"
    );
    assert!(run.join("report.html").exists());
    // Cleaned up and unregistered as always.
    assert_eq!(processes_of_run(&run_id), []);
    assert_eq!(namespaces_of_run(&run_id), Vec::<String>::new());
    assert_eq!(registered_run_of(controller), None, "unregistered");
    drop(disk);
}
