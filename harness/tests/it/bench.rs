//! `leasehold bench cluster --lock …`: a real cluster of the system, its
//! adapter timed against the raw calls, and nothing left behind. Benchmarks,
//! not timed tests: what is checked is that every figure is there and is a
//! number, never how large it is.

use crate::*;

/// Runs `bench cluster --runtime local` with `extra`, in a store of its own,
/// and returns its stdout after the checks every bench must pass: exit 0, the
/// ready line, and no process or namespace of the bench left.
fn bench_cluster(extra: &[&str]) -> String {
    let store = tempfile::tempdir().unwrap();
    let out = leasehold()
        .args(["bench", "cluster", "--runtime", "local", "--store"])
        .arg(store.path())
        .args(extra)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{extra:?}\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let ready = line_of(&stdout, "  all nodes ready ");
    assert!(number_before(ready, "ms").is_some(), "{ready}");

    let run_id = stdout
        .lines()
        .next()
        .and_then(|l| l.rsplit_once(", run "))
        .map(|(_, id)| id.trim().to_owned())
        .unwrap_or_else(|| panic!("the first line names the run:\n{stdout}"));
    assert_eq!(processes_of_run(&run_id), Vec::new(), "no node left");
    assert_eq!(namespaces_of_run(&run_id), Vec::<String>::new());
    // Servers of other programs carry no run id, but their data folder is in
    // the store. The store is canonical: a process's cwd is.
    let store_path = std::fs::canonicalize(store.path()).unwrap();
    assert_eq!(
        processes_mentioning(&store_path.display().to_string()),
        Vec::<i32>::new(),
        "no server left:\n{stdout}"
    );
    stdout
}

/// The line of `text` that starts with `prefix`.
fn line_of<'a>(text: &'a str, prefix: &str) -> &'a str {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting {prefix:?} in:\n{text}"))
}

/// The number just before `unit` in `line` (`1234.5 ms` → 1234.5).
fn number_before(line: &str, unit: &str) -> Option<f64> {
    let (before, _) = line.split_once(&format!(" {unit}"))?;
    before.split_whitespace().last()?.parse().ok()
}

/// The number after `word` in `line` (`median    12.5 us` → 12.5).
fn number_after(line: &str, word: &str) -> Option<f64> {
    let (_, after) = line.split_once(word)?;
    after.split_whitespace().next()?.parse().ok()
}

/// Pids of the processes whose command line contains `text` or whose
/// working directory is under it (`redis-server` rewrites its command line but
/// works in its data folder).
fn processes_mentioning(text: &str) -> Vec<i32> {
    let mut pids = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let zombie = stat
            .rsplit_once(')')
            .is_some_and(|(_, r)| r.trim_start().starts_with('Z'));
        let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap_or_default();
        let mentions = String::from_utf8_lossy(&cmdline).contains(text) || cwd.starts_with(text);
        if !zombie && mentions {
            pids.push(pid);
        }
    }
    pids
}

/// Every op kind has its adapter line, its raw line and its overhead, each
/// with `n` successes, none failed, and numbers where the figures go.
fn assert_adapter_figures(stdout: &str, system: &str, n: usize) {
    assert!(
        stdout.contains(&format!("lock adapter: {system} ")),
        "{stdout}"
    );
    let mut rest = stdout;
    for kind in ["acquire", "renew", "release"] {
        let at = rest
            .find(&format!("\n  {kind:<9} adapter  "))
            .unwrap_or_else(|| panic!("no {kind} line:\n{stdout}"));
        rest = &rest[at + 1..];
        let mut lines = rest.lines();
        let (adapter, raw, overhead, cpu) = (
            lines.next().unwrap(),
            lines.next().unwrap(),
            lines.next().unwrap(),
            lines.next().unwrap_or_default(),
        );
        assert!(
            cpu.trim_start().starts_with("client CPU median")
                && number_after(cpu, "median").is_some(),
            "{kind}: {cpu:?}\n{stdout}"
        );
        for line in [adapter, raw] {
            assert!(
                line.contains(&format!("n={n} ")) && line.contains("failed 0 "),
                "{kind}: {n} successes, no failure: {line:?}\n{stdout}"
            );
            assert!(number_after(line, "median").is_some(), "{line:?}");
            assert!(number_after(line, "p99").is_some(), "{line:?}");
            assert!(number_after(line, "CPU median").is_some(), "{line:?}");
        }
        assert!(raw.trim_start().starts_with("raw"), "{raw:?}");
        assert!(
            overhead.trim_start().starts_with("overhead median")
                && number_after(overhead, "median").is_some()
                && overhead.contains("(target <= 100 us"),
            "{kind}: {overhead:?}\n{stdout}"
        );
    }
}

#[test]
fn bench_cluster_times_the_redis_adapter() {
    if !require_program("redis-server", "redis-server") {
        return;
    }
    let stdout = bench_cluster(&[
        "--lock",
        "redis",
        "--nodes",
        "1",
        "--ops",
        "20",
        "--pauses",
        "2",
        "--partitions",
        "0",
        "--kills",
        "1",
    ]);
    assert!(
        stdout.starts_with("cluster of 3 nodes (1 redis lock node, 1 storage, 1 worker)"),
        "{stdout}"
    );
    assert_adapter_figures(&stdout, "redis", 20);
    assert!(stdout.contains("raw: the commands of the adapter's scripts as one MULTI/EXEC"));
    // The fault timings still run on the nodes there are.
    assert!(line_of(&stdout, "  pause ").contains("n=2 "), "{stdout}");
    assert!(line_of(&stdout, "  kill ").contains("n=1 "), "{stdout}");
}

#[test]
fn bench_cluster_times_a_3_node_etcd_cluster() {
    if !require_program("etcd", "etcd-server") {
        return;
    }
    // Partitions need root; without it the bench times none.
    let partitions = if require_root() { "1" } else { "0" };
    let stdout = bench_cluster(&[
        "--lock",
        "etcd",
        "--nodes",
        "3",
        "--ops",
        "20",
        "--pauses",
        "2",
        "--partitions",
        partitions,
        "--kills",
        "1",
    ]);
    assert!(
        stdout.starts_with("cluster of 5 nodes (3 etcd lock nodes, 1 storage, 1 worker)"),
        "{stdout}"
    );
    assert_adapter_figures(&stdout, "etcd", 20);
    assert!(
        stdout.contains("raw: the adapter's gateway calls"),
        "{stdout}"
    );
    let version = line_of(&stdout, "lock adapter: etcd ");
    assert!(version.starts_with("lock adapter: etcd 3.4."), "{version}");
}

#[test]
fn bench_cluster_times_postgres_and_a_3_member_zookeeper() {
    if require_postgres() && require_root() {
        let stdout = bench_cluster(&[
            "--lock",
            "postgres",
            "--ops",
            "20",
            "--pauses",
            "1",
            "--partitions",
            "0",
            "--kills",
            "1",
        ]);
        assert!(
            stdout.starts_with("cluster of 3 nodes (1 postgres lock node, 1 storage, 1 worker)"),
            "{stdout}"
        );
        assert_adapter_figures(&stdout, "postgres", 20);
        assert!(stdout.contains("raw: the adapter's statements on one tokio-postgres"));
        let version = line_of(&stdout, "lock adapter: postgres ");
        assert!(
            version.starts_with("lock adapter: postgres 15."),
            "{version}"
        );
    }
    if !require_zookeeper() {
        return;
    }
    let stdout = bench_cluster(&[
        "--lock",
        "zookeeper",
        "--nodes",
        "3",
        "--ops",
        "20",
        "--pauses",
        "1",
        "--partitions",
        "0",
        "--kills",
        "1",
    ]);
    assert!(
        stdout.starts_with("cluster of 5 nodes (3 zookeeper lock nodes, 1 storage, 1 worker)"),
        "{stdout}"
    );
    let version = line_of(&stdout, "lock adapter: zookeeper ");
    assert!(
        version.starts_with("lock adapter: zookeeper 3.8."),
        "{version}"
    );
    // No thinner client than the adapter's library: adapter figures only.
    assert!(stdout.contains("raw: none (no raw client is known for the servers of zookeeper)"));
    for kind in ["acquire", "renew", "release"] {
        let line = line_of(&stdout, &format!("  {kind:<9} adapter  "));
        assert!(
            line.contains("n=20 ") && line.contains("failed 0 "),
            "{line}\n{stdout}"
        );
        assert!(number_after(line, "p99").is_some(), "{line}");
    }
}

#[test]
fn bench_cluster_with_a_missing_server_is_one_line_and_exit_3() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("bin");
    std::fs::create_dir(&empty).unwrap();
    let store = dir.path().join("store");
    for (system, binary, package) in [
        ("redis", "redis-server", "redis-server"),
        ("etcd", "etcd", "etcd-server"),
    ] {
        let out = leasehold()
            .env("PATH", &empty)
            .args(["bench", "cluster", "--runtime", "local", "--lock", system])
            .arg("--store")
            .arg(&store)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(3), "{system}: {out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            stderr.lines().collect::<Vec<_>>(),
            [format!(
                "error: {binary} not found: apt-get install {package}"
            )],
            "{system}"
        );
        assert!(out.stdout.is_empty(), "{system}: nothing on stdout");
        assert!(!store.exists(), "{system}: nothing started");
    }
}

#[test]
fn bench_cluster_names_the_known_lock_systems() {
    let out = leasehold()
        .args([
            "bench",
            "cluster",
            "--runtime",
            "local",
            "--lock",
            "no-such-lock",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--lock \"no-such-lock\": no such lock system (known: reference, "),
        "{stderr}"
    );
    for system in ["redis", "etcd", "exec"] {
        assert!(stderr.contains(system), "{stderr}");
    }
}

#[test]
fn bench_cluster_times_packet_faults_and_their_heals() {
    if !require_root() {
        return;
    }
    let stdout = bench_cluster(&[
        "--pauses",
        "1",
        "--partitions",
        "0",
        "--kills",
        "0",
        "--packets",
        "5",
    ]);
    for what in ["  packet ", "  unpacket "] {
        let line = line_of(&stdout, what);
        assert!(line.contains("n=5 "), "{stdout}");
        let median = number_before(line.split_once("median").unwrap().1, "us").unwrap();
        // A holder started and bound, rules in: more than nothing, less than
        // the second a fault may take.
        assert!(median > 100.0 && median < 1e6, "{line}");
    }
}
