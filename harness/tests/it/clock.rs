//! Clock faults: a node's clocks move, read from inside the node (a real
//! redis-server's `TIME`), while the harness's clock and the history's
//! stamps stay on the host's; every fault is reset at the end, on SIGTERM and
//! by `leasehold cleanup` after a SIGKILL; nodes the clock library cannot
//! reach are refused before the run; and Kleppmann's Redlock scenario.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::*;

/// One redis lock node and two workers on `subnet`; `timeline` is the
/// nemesis's.
fn redis_config(dir: &Path, subnet: &str, duration: &str, timeline: &str) -> PathBuf {
    let text = format!(
        "test: clock\nduration: {duration}\nnetwork:\n  subnet: {subnet}.0/24\nlock:\n  \
         service: redis\n  nodes: 1\nstorage:\n  nodes: 1\nworkload:\n  workers: 2\n  \
         lease: 1s\n  think: 100ms\n  timeout: 500ms\n  backoff: 50ms\nnemesis:\n  \
         timeline:\n{timeline}"
    );
    let path = dir.join("clock.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

fn start(config: &Path, store: &Path, extra: &[&str]) -> Child {
    leasehold()
        .args(["run", "--no-progress", "--seed", "1", "--store"])
        .arg(store)
        .args(extra)
        .arg(config)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The events of the run's history so far, in the order they were written.
fn events(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("history.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn nemesis_events(dir: &Path, f: &str) -> Vec<serde_json::Value> {
    events(dir)
        .into_iter()
        .filter(|e| e["process"] == "nemesis" && e["f"] == f)
        .collect()
}

fn wait_for_event(store: &Path, f: &str, count: usize) -> PathBuf {
    wait_until(Duration::from_secs(90), "the run folder", || {
        store.join("latest").exists()
    });
    let dir = run_dir_of(store);
    wait_until(
        Duration::from_secs(90),
        &format!("{count} {f} events"),
        || nemesis_events(&dir, f).len() >= count,
    );
    dir
}

/// The redis-server's clock (its `TIME`) minus this host's, in seconds.
fn redis_lead(addr: &str) -> f64 {
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let before = real_now();
    s.write_all(b"*1\r\n$4\r\nTIME\r\n").unwrap();
    let mut reply = Vec::new();
    let mut buf = [0u8; 128];
    // *2\r\n$10\r\n<secs>\r\n$6\r\n<micros>\r\n: five CRLF-ended lines.
    while reply.iter().filter(|b| **b == b'\n').count() < 5 {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "redis closed the connection: {reply:?}");
        reply.extend_from_slice(&buf[..n]);
    }
    let after = real_now();
    let text = String::from_utf8(reply).unwrap();
    let lines: Vec<&str> = text.split("\r\n").collect();
    let node = lines[2].parse::<f64>().unwrap() + lines[4].parse::<f64>().unwrap() / 1e6;
    node - (before + after) / 2.0
}

fn real_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Every control file of the run folder reads "no fault".
fn assert_clocks_reset(dir: &Path) {
    let files: Vec<PathBuf> = std::fs::read_dir(dir.join("clock"))
        .expect("the run has a clock folder")
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(!files.is_empty());
    for f in files {
        let fault = leasehold_clock::ControlFile::open(&f).unwrap().current();
        assert!(
            fault.is_none(),
            "{} still moves the clocks: {fault:?}",
            f.display()
        );
    }
}

fn lead_of(event: &serde_json::Value, key: &str, node: &str, clock: &str) -> f64 {
    event["value"][key][node][clock].as_f64().unwrap()
}

/// Under `jump: +2s` the redis node's `TIME` is 2 s ahead of the host's, and
/// back after the reset; a worker jumped by +30 s on both clocks still stamps
/// its events on the host's clock (a stamp that moved would land long after
/// the reset); the history records the leads.
fn jumped_node_reads_ahead(subnet: &str, extra: &[&str]) {
    let tmp = tempfile::tempdir().unwrap();
    let config = redis_config(
        tmp.path(),
        subnet,
        "8s",
        "    - at: 1s\n      clock: lock1\n      jump: +2s\n      for: 4s\n    \
         - at: 1s\n      clock: w1\n      jump: +30s\n      clocks: both\n      for: 4s\n",
    );
    let store = tmp.path().join("store");
    let child = start(&config, &store, extra);
    let dir = wait_for_event(&store, "clock", 2);
    let redis = format!("{subnet}.11:6379");
    let during = redis_lead(&redis);
    assert!(
        (during - 2.0).abs() < 0.25,
        "lock1 is {during:.3} s ahead, not 2 s"
    );
    wait_for_event(&store, "reset", 2);
    let after = redis_lead(&redis);
    assert!(
        after.abs() < 0.25,
        "lock1 is {after:.3} s off after the reset"
    );
    let out = child.wait_with_output().unwrap();
    let code = out.status.code().unwrap();
    assert!(code == 0 || code == 1, "{out:?}");

    let clock = nemesis_events(&dir, "clock");
    let reset = nemesis_events(&dir, "reset");
    let (lock1, w1) = (&clock[0], &clock[1]);
    assert_eq!(lock1["value"]["nodes"], serde_json::json!(["lock1"]));
    assert_eq!(lock1["value"]["change"], "jump");
    assert_eq!(lock1["value"]["by"], "+2s");
    assert!((lead_of(lock1, "lead_ms", "lock1", "realtime") - 2000.0).abs() < 1.0);
    assert!(lead_of(lock1, "lead_ms", "lock1", "monotonic").abs() < 1.0);
    assert!((lead_of(w1, "lead_ms", "w1", "monotonic") - 30000.0).abs() < 1.0);
    assert!((lead_of(&reset[0], "lead_before_ms", "lock1", "realtime") - 2000.0).abs() < 1.0);
    // The harness's stamps: 4 s between the jump and its reset, as scheduled.
    let t = |e: &serde_json::Value| e["time"].as_u64().unwrap() as f64 / 1e9;
    let held = t(&reset[0]) - t(lock1);
    assert!(
        (held - 4.0).abs() < 0.3,
        "the fault lasted {held:.3} s by the history"
    );
    // w1's own stamps while its clocks ran 30 s ahead.
    let all = events(&dir);
    let index = |e: &serde_json::Value| e["index"].as_u64().unwrap();
    let (from, to) = (index(w1), index(&reset[1]));
    let w1_during: Vec<&serde_json::Value> = all
        .iter()
        .filter(|e| e["node"] == "w1" && e["process"] != "nemesis")
        .filter(|e| (from..to).contains(&index(e)))
        .collect();
    assert!(
        w1_during.len() >= 4,
        "w1 worked while its clocks were moved"
    );
    for e in w1_during {
        assert!(
            t(e) >= t(w1) - 0.1 && t(e) <= t(&reset[1]) + 0.1,
            "w1's event is stamped {:.3} s, outside the fault [{:.3}, {:.3}]: {e}",
            t(e),
            t(w1),
            t(&reset[1])
        );
    }
    assert_clocks_reset(&dir);
}

#[test]
fn a_jumped_node_reads_its_clock_ahead_and_the_history_does_not_move() {
    if !require_root() || !require_program("redis-server", "redis-server") {
        return;
    }
    jumped_node_reads_ahead("10.201.7", &[]);
}

#[test]
fn a_jumped_container_reads_its_clock_ahead_and_the_history_does_not_move() {
    if !require_docker() || !require_program("redis-server", "redis-server") {
        return;
    }
    jumped_node_reads_ahead("10.201.8", &["--runtime", "docker"]);
}

/// `skew: 3` makes the node's clock gain 2 s per second; a strobe flips it
/// between the host's time and +1 s.
#[test]
fn skew_and_strobe_move_a_node_s_clock_as_asked() {
    if !require_root() || !require_program("redis-server", "redis-server") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let config = redis_config(
        tmp.path(),
        "10.201.9",
        "9s",
        "    - at: 1s\n      clock: lock1\n      skew: 3\n      for: 3s\n    \
         - at: 5s\n      clock: lock1\n      strobe: +1s\n      period: 200ms\n      for: 3s\n",
    );
    let store = tmp.path().join("store");
    let child = start(&config, &store, &[]);
    let redis = "10.201.9.11:6379";
    wait_for_event(&store, "clock", 1);
    let first = redis_lead(redis);
    std::thread::sleep(Duration::from_secs(1));
    let second = redis_lead(redis);
    let gained = second - first;
    assert!(
        (gained - 2.0).abs() < 0.3,
        "gained {gained:.3} s in a second at rate 3"
    );
    wait_for_event(&store, "clock", 2);
    let leads: Vec<f64> = (0..30)
        .map(|_| {
            std::thread::sleep(Duration::from_millis(40));
            redis_lead(redis)
        })
        .collect();
    let near = |x: f64| leads.iter().filter(|l| (**l - x).abs() < 0.15).count();
    assert!(
        near(0.0) >= 3 && near(1.0) >= 3,
        "a strobe flips: {leads:?}"
    );
    assert_eq!(
        near(0.0) + near(1.0),
        leads.len(),
        "only two positions: {leads:?}"
    );
    let out = child.wait_with_output().unwrap();
    assert!(matches!(out.status.code(), Some(0 | 1)), "{out:?}");
    let dir = run_dir_of(&store);
    let clock = nemesis_events(&dir, "clock");
    assert_eq!(clock[0]["value"]["change"], "skew");
    assert_eq!(clock[0]["value"]["rate"], 3.0);
    assert_eq!(clock[1]["value"]["change"], "strobe");
    assert_eq!(clock[1]["value"]["period_ms"], 200);
    assert_eq!(nemesis_events(&dir, "reset").len(), 2);
    assert_clocks_reset(&dir);
}

/// A moved clock is reset when the run is stopped by SIGTERM (the history
/// says so), and by `leasehold cleanup` when the controller was SIGKILLed.
#[test]
fn sigterm_and_cleanup_reset_a_moved_clock() {
    if !require_root() || !require_program("redis-server", "redis-server") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let config = redis_config(
        tmp.path(),
        "10.201.10",
        "60s",
        "    - at: 500ms\n      clock: [lock1, w2]\n      jump: -5s\n      for: 50s\n",
    );
    let store = tmp.path().join("term");
    let child = start(&config, &store, &[]);
    let dir = wait_for_event(&store, "clock", 1);
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(128 + 15), "{out:?}");
    let reset = nemesis_events(&dir, "reset");
    assert_eq!(reset.len(), 1, "{reset:?}");
    assert_eq!(
        reset[0]["value"]["nodes"],
        serde_json::json!(["lock1", "w2"])
    );
    assert_clocks_reset(&dir);

    let store = tmp.path().join("kill");
    let mut child = start(&config, &store, &[]);
    let dir = wait_for_event(&store, "clock", 1);
    let run_id = registered_run_of(child.id()).expect("the run registered itself");
    child.kill().unwrap(); // SIGKILL: no teardown, no reset.
    child.wait().unwrap();
    let moved = leasehold_clock::ControlFile::open(&dir.join("clock/lock1"))
        .unwrap()
        .current();
    assert!(!moved.is_none(), "nothing reset lock1's clock yet");
    let out = leasehold().arg("cleanup").output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("reset clock "), "{stdout}");
    assert_clocks_reset(&dir);
    wait_until(Duration::from_secs(5), "the run's processes to go", || {
        processes_of_run(&run_id).is_empty()
    });
}

/// etcd is a Go program: no preloaded library reaches its clock. A clock
/// fault that may hit it is refused before anything starts, in one line that
/// names the file, line, field and reason.
#[test]
fn a_clock_fault_on_etcd_is_refused_before_the_run() {
    if !require_program("etcd", "etcd-server") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("etcd-clock.yaml");
    let text = std::fs::read_to_string(example("etcd.yaml"))
        .unwrap()
        .split("\nnemesis:")
        .next()
        .unwrap()
        .to_owned()
        + "\nnemesis:\n  faults:\n    - fault: clock\n      target: lock\n      jump: +2s\n      for: 1s\n";
    std::fs::write(&config, &text).unwrap();
    let line = text
        .lines()
        .position(|l| l.contains("target: lock"))
        .unwrap()
        + 1;
    let store = tmp.path().join("store");
    let out = leasehold()
        .args(["run", "--store"])
        .arg(&store)
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    let expected = format!(
        "{}:{line}:15: nemesis.faults[0].target: a clock fault may hit lock1, which the clock \
         library cannot reach: ",
        config.display()
    );
    assert!(
        stderr.starts_with(&format!("error: {expected}")),
        "{stderr}"
    );
    assert!(stderr.contains("is a Go program"), "{stderr}");
    assert!(!store.exists(), "nothing started: no run folder");
}

/// Kleppmann's Redlock scenario: a worker that cannot reach two of five
/// nodes holds a bare majority; one of its three nodes' wall clock jumps, the
/// key there expires, and another worker takes a majority. Mutual exclusion
/// broken, both leases named, any seed; fenced storage still applies the
/// writes in token order.
#[test]
fn redlock_clock_jump_breaks_mutual_exclusion_and_fencing_saves_the_data() {
    if !require_root() || !require_program("redis-server", "redis-server") {
        return;
    }
    for seed in [1, 2] {
        let store = tempfile::tempdir().unwrap();
        let (out, dir) = run_example_in(store.path(), "redlock-clock-jump.yaml", seed, &[]);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert_eq!(out.status.code(), Some(1), "seed {seed}:\n{stdout}");
        let results = read_json(&dir.join("results.json"));
        assert_eq!(
            check_validity(&results, "mutual-exclusion"),
            "invalid",
            "{stdout}"
        );
        let me = results["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "mutual-exclusion")
            .unwrap();
        let first = me["anomalies"][0].to_string();
        assert!(
            first.contains("w1") && first.contains("w2"),
            "the anomaly names both holders' leases: {first}"
        );
        assert!(
            nemesis_events(&dir, "clock")
                .iter()
                .all(|e| e["value"]["nodes"] == serde_json::json!(["lock3"])),
            "only lock3's clock moves"
        );
        assert!(
            !dir.join("clock/lock1").exists(),
            "lock1 runs without the library"
        );

        let store = tempfile::tempdir().unwrap();
        let (out, dir) = run_example_in(store.path(), "redlock-clock-jump-fenced.yaml", seed, &[]);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert_eq!(out.status.code(), Some(1), "seed {seed}:\n{stdout}");
        let results = read_json(&dir.join("results.json"));
        assert_eq!(
            check_validity(&results, "mutual-exclusion"),
            "invalid",
            "{stdout}"
        );
        // Fenced storage applies writes in token order, whoever held the lock.
        assert_eq!(
            check_validity(&results, "fencing-order"),
            "valid",
            "{stdout}"
        );
    }
    // The control: the same run without the clock jumps keeps mutual
    // exclusion (the partitions alone do not break it).
    let tmp = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(example("redlock-clock-jump.yaml")).unwrap();
    let control = tmp.path().join("no-jump.yaml");
    std::fs::write(&control, text.split("\n  faults:").next().unwrap()).unwrap();
    let store = tmp.path().join("store");
    let out = run_in(&repo(), &store, &control, 1, &[]);
    let results = read_json(&run_dir_of(&store).join("results.json"));
    assert_eq!(
        check_validity(&results, "mutual-exclusion"),
        "valid",
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
