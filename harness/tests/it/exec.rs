//! `service: exec`: the user's own lock service and adapter, here the Python
//! ones of examples/exec/, started by leasehold and driven over JSON lines.

use std::path::{Path, PathBuf};

use crate::*;

/// Runs an exec example from the repository's root, as its comment says, and
/// checks what every exec run shows: the system, its token, the user's
/// service's log in the lock node's log.
fn run_exec_example(name: &str, seed: u64) -> (i32, String, serde_json::Value) {
    run_exec_example_with(name, seed, &[])
}

fn run_exec_example_with(
    name: &str,
    seed: u64,
    extra: &[&str],
) -> (i32, String, serde_json::Value) {
    let store = tempfile::tempdir().unwrap();
    let out = run_in(&repo(), store.path(), Path::new(name), seed, extra);
    let dir = run_dir_of(store.path());
    let (code, stdout, results, version) =
        assert_system_run(&format!("{name} seed {seed}"), &out, &dir, "exec");
    assert_eq!(version, "unknown (the user's service)");
    assert_eq!(
        results["lock_system"]["token"],
        "whatever the user's service returns as token"
    );
    // The adapter's stderr is its worker's log; the server's is lock1's.
    let w1 = std::fs::read_to_string(dir.join("nodes/w1.log")).unwrap();
    assert!(
        w1.contains("adapter: reflock_client: w1: using reflock at "),
        "w1.log:\n{w1}"
    );
    let history = std::fs::read_to_string(dir.join("history.jsonl")).unwrap();
    assert!(
        history.contains(r#""type":"ok","f":"acquire""#),
        "grants through the adapter"
    );
    (code, stdout, results)
}

#[test]
fn the_unfenced_exec_example_is_invalid_with_stale_writes_named() {
    if !require_program("python3", "python3") {
        return;
    }
    for seed in [1, 2] {
        let (code, stdout, results) = run_exec_example("examples/exec/lock.yaml", seed);
        assert_unfenced_invalid(code, &stdout, &results, seed);
    }
}

#[test]
fn the_fenced_exec_example_is_valid_with_rejections_counted() {
    if !require_program("python3", "python3") {
        return;
    }
    for seed in [1, 2] {
        let (code, stdout, results) = run_exec_example("examples/exec/lock-fenced.yaml", seed);
        assert_fenced_valid(code, &stdout, &results, seed);
    }
}

/// Runs the reference service of examples/exec/ with [`MISBEHAVING_ADAPTER`] in `mode`
/// as the adapter: the op the first adapter got ends `info` with `why`, the
/// worker goes on with a new adapter and is granted again, the run completes
/// and is checked (valid: storage is fenced), and the node's log says what
/// happened.
fn misbehaving_adapter_run(mode: &str, why: &str) {
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
            "test: exec-{mode}\nduration: 3s\nlock:\n  service: exec\n  server:\n    \
             command: [python3, {server}, --host, \"{{host}}\", --port, \"{{port}}\"]\n  \
             client:\n    command: [python3, {wrapper}, {mode}, {marker}, {client}]\n\
             storage: {{ fencing: true }}\nworkload:\n  workers: 2\n  lease: 1s\n  \
             think: 100ms\n",
            server = examples.join("reflock.py").display(),
            wrapper = wrapper.display(),
            marker = dir.path().join("first-life").display(),
            client = examples.join("reflock_client.py").display(),
        ),
    )
    .unwrap();
    assert_adapter_recovers(dir.path(), &config, mode, why, "acquire");
}

#[test]
fn an_adapter_printing_garbage_ends_its_op_info_and_the_run_goes_on() {
    misbehaving_adapter_run("garbage", "not JSON");
}

#[test]
fn an_adapter_that_hangs_ends_its_op_info_at_the_timeout_and_the_run_goes_on() {
    misbehaving_adapter_run("hang", "timeout");
}

#[test]
fn an_adapter_that_exits_mid_op_ends_it_info_and_the_run_goes_on() {
    misbehaving_adapter_run("exit", "exited");
}

/// A config of `lock:` lines under the default example's workload.
fn config_with_lock(dir: &Path, lock: &str) -> PathBuf {
    let path = dir.join("bad.yaml");
    std::fs::write(
        &path,
        format!(
            "test: bad\nduration: 2s\n{lock}workload:\n  workers: 1\n  lease: 1s\n  think: 100ms\n"
        ),
    )
    .unwrap();
    path
}

/// The one line a bad exec config prints, exit 3, nothing started.
fn config_error(lock: &str, extra: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let config = config_with_lock(dir.path(), lock);
    let store = dir.path().join("store");
    let out = run_in(dir.path(), &store, &config, 1, extra);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert!(!store.exists(), "nothing started: no run folder");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {stderr}");
    lines[0]
        .replace(&config.display().to_string(), "bad.yaml")
        .to_owned()
}

const SERVER: &str =
    "  server:\n    command: [python3, s.py, --port, \"{port}\"]\n    port: 7300\n";
const CLIENT: &str = "  client:\n    command: [python3, c.py]\n";

#[test]
fn bad_exec_configs_name_the_field_and_where_it_is() {
    assert_eq!(
        config_error(&format!("lock:\n  service: exec\n{SERVER}"), &[]),
        "error: bad.yaml:4:3: lock.client: service: exec needs the adapter each worker \
         starts: client: { command: [program, args…] }"
    );
    assert_eq!(
        config_error(
            &format!("lock:\n  service: exec\n  server:\n    command: []\n{CLIENT}"),
            &[]
        ),
        "error: bad.yaml:6:14: lock.server.command: must not be empty"
    );
    assert_eq!(
        config_error(
            &format!("lock:\n  service: exec\n{SERVER}  client: {{ command: [] }}\n"),
            &[]
        ),
        "error: bad.yaml:8:22: lock.client.command: must not be empty"
    );
    assert_eq!(
        config_error(
            &format!("lock:\n  service: exec\n  server:\n    command: [x, \"{{hots}}\"]\n{CLIENT}"),
            &[]
        ),
        "error: bad.yaml:6:18: lock.server.command[1]: unknown placeholder {hots}; known: \
         {name}, {index}, {host}, {port}, {data_dir}, {peers}"
    );
    assert_eq!(
        config_error(&format!("lock:\n  service: exec\n{CLIENT}"), &[]),
        "error: bad.yaml:4:3: lock.addresses: service: exec without a server needs the \
         host:port of each node of your lock service"
    );
    assert_eq!(
        config_error(
            &format!("lock:\n  service: exec\n{CLIENT}  addresses: [\"127.0.0.1\"]\n"),
            &[]
        ),
        "error: bad.yaml:7:15: lock.addresses[0]: \"127.0.0.1\" is not host:port"
    );
    assert_eq!(
        config_error(&format!("lock:\n  service: redis\n{CLIENT}"), &[]),
        "error: bad.yaml:6:5: lock.client: only service: exec takes a client; redis knows \
         its own"
    );
}

/// In Docker the user's server runs in its lock node's container and each
/// adapter in its worker's, seeing the host's programs (python3) and the
/// working directory read-only: the same verdicts as locally.
#[test]
fn the_exec_examples_run_in_docker() {
    if !require_docker() || !require_program("python3", "python3") {
        return;
    }
    for seed in [3, 4] {
        let (code, stdout, results) =
            run_exec_example_with("examples/exec/lock.yaml", seed, &["--runtime", "docker"]);
        assert_eq!(results["runtime"], "docker");
        assert_unfenced_invalid(code, &stdout, &results, seed);
        let (code, stdout, results) = run_exec_example_with(
            "examples/exec/lock-fenced.yaml",
            seed,
            &["--runtime", "docker"],
        );
        assert_eq!(results["runtime"], "docker");
        assert_fenced_valid(code, &stdout, &results, seed);
    }
}

/// A program a container cannot see is refused before anything starts, with
/// the field that names it.
#[test]
fn an_exec_program_outside_the_containers_view_is_refused_in_docker() {
    // Not under the working directory of the run (config_error's own).
    let dir = tempfile::tempdir().unwrap();
    let program = dir.path().join("my-lock-server");
    std::fs::write(&program, "#!/bin/sh\nexit 1\n").unwrap();
    std::fs::set_permissions(
        &program,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let err = config_error(
        &format!(
            "lock:\n  service: exec\n  server:\n    command: [{}]\n{CLIENT}",
            program.display()
        ),
        &["--runtime", "docker"],
    );
    assert_eq!(
        err,
        format!(
            "error: {} (lock.server.command[0]) is not visible in a container: a node's \
             container sees the working directory and the host's /usr, /bin, /lib, /lib64, \
             /opt only",
            program.display()
        )
    );
}

/// A server program that is not installed: one line naming it and the field.
#[test]
fn a_missing_server_program_is_one_line_naming_the_field() {
    assert_eq!(
        config_error(
            &format!(
                "lock:\n  service: exec\n  server:\n    command: [no-such-lock-server-here]\n{CLIENT}"
            ),
            &[]
        ),
        "error: no-such-lock-server-here not found (lock.server.command[0]): no such executable"
    );
}

/// Without `server:` leasehold starts no lock node: the adapter is given the
/// addresses of a service the user runs, here reflock.py on the host: on
/// loopback, or (as root, where workers have namespaces of their own) on the
/// host's leg of the run's subnet, pinned for the test.
#[test]
fn the_users_own_service_is_reached_at_its_addresses() {
    if !require_program("python3", "python3") {
        return;
    }
    let third = 180 + std::process::id() % 60;
    let (bind, host, network) = if is_root() {
        let host = format!("10.77.{third}.1");
        let network = format!("network: {{ subnet: 10.77.{third}.0/24 }}\n");
        ("0.0.0.0", host, network)
    } else {
        ("127.0.0.1", "127.0.0.1".to_owned(), String::new())
    };
    let port = std::net::TcpListener::bind("0.0.0.0:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut service = std::process::Command::new("python3")
        .current_dir(repo())
        .args(["examples/exec/reflock.py", "--host", bind, "--port"])
        .arg(port.to_string())
        .spawn()
        .unwrap();
    wait_until(Duration::from_secs(10), "reflock.py listening", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    let dir = tempfile::tempdir().unwrap();
    let config = config_with_lock(
        dir.path(),
        &format!(
            "{network}lock:\n  service: exec\n  addresses: [\"{host}:{port}\"]\n  client:\n    \
             command: [python3, examples/exec/reflock_client.py]\n"
        ),
    );
    let store = dir.path().join("store");
    let out = run_in(&repo(), &store, &config, 3, &[]);
    let _ = service.kill();
    let _ = service.wait();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let run = run_dir_of(&store);
    assert!(
        !run.join("nodes/lock1.log").exists(),
        "no lock node started"
    );
    let w1 = std::fs::read_to_string(run.join("nodes/w1.log")).unwrap();
    assert!(
        w1.contains(&format!("using reflock at {host}:{port}")),
        "w1.log:\n{w1}"
    );
    let history = std::fs::read_to_string(run.join("history.jsonl")).unwrap();
    assert!(history.contains(r#""type":"ok","f":"acquire""#));
}

/// Runs a config whose lock server is `server` (YAML list items) and returns
/// the failed run's exit code, its summary (on stderr, as a failed run's is)
/// and the `error` of results.json.
fn run_broken_server(server: &str) -> (Option<i32>, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("broken.yaml");
    std::fs::write(
        &config,
        format!(
            "test: exec-broken\nduration: 3s\nlock:\n  service: exec\n  server:\n    \
             command: [{server}]\n{CLIENT}workload:\n  workers: 1\n  lease: 1s\n  \
             think: 100ms\n"
        ),
    )
    .unwrap();
    let store = dir.path().join("store");
    let out = run_in(dir.path(), &store, &config, 1, &[]);
    let results = read_json(&run_dir_of(&store).join("results.json"));
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        results["error"].as_str().unwrap_or_default().to_owned(),
    )
}

/// A lock server that exits at start: the run fails (exit 3) before any
/// worker starts, and the error names the node, the command line it was
/// started with and the end of its log; the results are still written.
#[test]
fn a_server_that_exits_at_start_is_named_with_its_command_and_log() {
    let (code, summary, error) =
        run_broken_server(r#"sh, -c, "echo 'cannot serve {port}: on purpose' >&2; exit 4""#);
    assert_eq!(code, Some(3), "{summary}");
    assert!(
        summary.starts_with("ERROR: the run failed: node lock1 exited"),
        "{summary}"
    );
    assert!(
        error.starts_with("node lock1 exited (exit status: 4) before it was ready; started as: ")
            && error.contains(r#"sh -c "echo 'cannot serve 7300: on purpose' >&2; exit 4""#)
            && error.ends_with("its log ends:\n    cannot serve 7300: on purpose"),
        "{error}"
    );
}

/// A lock server that runs but never serves: after the ready limit the run
/// fails naming the probe, the command line and the log, and the server is
/// not left running.
#[test]
fn a_server_that_never_gets_ready_is_named_and_not_left_running() {
    let marker = format!("never-ready-{}", std::process::id());
    let (code, summary, error) = run_broken_server(&format!(
        r#"python3, -c, "import sys, time; print('never listening', file=sys.stderr, flush=True); time.sleep(3600)", {marker}"#
    ));
    assert_eq!(code, Some(3), "{summary}");
    assert!(
        error.starts_with("node lock1 was not ready at tcp ")
            && error.contains("within 10s; started as: ")
            && error.contains(&marker)
            && error.ends_with("its log ends:\n    never listening"),
        "{error}"
    );
    let left: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(&marker))
        .collect();
    assert_eq!(left, Vec::<String>::new(), "the server was stopped");
}
