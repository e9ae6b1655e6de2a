//! `service: exec`: the user's own lock service and adapter, here the Python
//! ones of examples/exec/, started by leasehold and driven over JSON lines.

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::*;

/// The repository's root: the examples' relative paths start there.
fn repo() -> PathBuf {
    std::fs::canonicalize(Path::new(env!("CARGO_MANIFEST_DIR")).join("..")).unwrap()
}

/// `leasehold run --no-progress --seed <seed> --store <store> <extra…> <config>`
/// started in `cwd`.
fn run_in(cwd: &Path, store: &Path, config: &Path, seed: u64, extra: &[&str]) -> Output {
    leasehold()
        .current_dir(cwd)
        .args([
            "run",
            "--no-progress",
            "--seed",
            &seed.to_string(),
            "--store",
        ])
        .arg(store)
        .args(extra)
        .arg(config)
        .output()
        .unwrap()
}

/// Runs an exec example from the repository's root, as its comment says, and
/// checks what every exec run shows: the system, its token, the user's
/// service's log in the lock node's log.
fn run_exec_example(name: &str, seed: u64) -> (i32, String, serde_json::Value) {
    let store = tempfile::tempdir().unwrap();
    let out = run_in(&repo(), store.path(), Path::new(name), seed, &[]);
    let code = out.status.code().expect("exited");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        code == 0 || code == 1,
        "{name} seed {seed}: exit {code}\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let dir = run_dir_of(store.path());
    let results = read_json(&dir.join("results.json"));
    let system = &results["lock_system"];
    assert_eq!(system["name"], "exec", "{results}");
    assert_eq!(
        system["token"],
        "whatever the user's service returns as token"
    );
    assert!(
        stdout.contains("system:  exec unknown (the user's service); fencing token: "),
        "{stdout}"
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
        assert_eq!(code, 1, "unfenced: invalid (seed {seed}):\n{stdout}");
        assert!(results["counts"]["stale_accepted"].as_u64().unwrap() >= 1);
        assert!(
            stdout.contains("stale-write              invalid")
                && stdout.contains("- storage accepted w")
                && stdout.contains("after its lease expired"),
            "the stale writes are named:\n{stdout}"
        );
    }
}

#[test]
fn the_fenced_exec_example_is_valid_with_rejections_counted() {
    if !require_program("python3", "python3") {
        return;
    }
    for seed in [1, 2] {
        let (code, stdout, results) = run_exec_example("examples/exec/lock-fenced.yaml", seed);
        assert_eq!(code, 0, "fenced: valid (seed {seed}):\n{stdout}");
        assert_eq!(results["counts"]["stale_accepted"], 0);
        assert!(
            results["counts"]["stale_rejected"].as_u64().unwrap() >= 1,
            "rejections counted: {}",
            results["counts"]
        );
    }
}

/// An adapter that answers `init` and then misbehaves on the next request
/// (`garbage`: prints a line that is not JSON; `hang`: never answers; `exit`:
/// exits without answering), on the first life of any worker's adapter only;
/// later lives are reflock_client.py.
const WRAPPER: &str = r#"import json, os, sys, time
mode, marker, client = sys.argv[1], sys.argv[2], sys.argv[3]
try:
    os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
except FileExistsError:
    os.execvp(sys.executable, [sys.executable, client])
init = json.loads(sys.stdin.readline())
print(json.dumps({"id": init["id"], "type": "ok"}), flush=True)
sys.stdin.readline()
sys.stderr.write("misbehaving on purpose: %s next\n" % mode)
sys.stderr.flush()
if mode == "garbage":
    print("this is not json", flush=True)
    sys.stdin.read()
elif mode == "hang":
    time.sleep(3600)
else:
    sys.exit(7)
"#;

/// Runs the reference service of examples/exec/ with [`WRAPPER`] in `mode`
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
    std::fs::write(&wrapper, WRAPPER).unwrap();
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
    let store = dir.path().join("store");
    let out = run_in(dir.path(), &store, &config, 7, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{mode}: {out:?}");
    assert!(stdout.starts_with("VALID"), "{mode}: {stdout}");
    let run = run_dir_of(&store);
    let history = std::fs::read_to_string(run.join("history.jsonl")).unwrap();
    let events: Vec<serde_json::Value> = history
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let info = events
        .iter()
        .find(|e| e["type"] == "info")
        .unwrap_or_else(|| panic!("{mode}: the op the adapter failed ends info"));
    let error = info["error"].as_str().unwrap();
    assert!(error.contains(why), "{mode}: {info}");
    // The worker whose adapter broke went on with a new one.
    let node = info["node"].as_str().unwrap();
    let later_grants = events
        .iter()
        .skip_while(|e| *e != info)
        .filter(|e| e["node"] == node && e["type"] == "ok" && e["f"] == "acquire")
        .count();
    assert!(
        later_grants >= 1,
        "{mode}: {node} was granted again after the restart"
    );
    let log = std::fs::read_to_string(run.join(format!("nodes/{node}.log"))).unwrap();
    assert!(
        log.contains(&format!("misbehaving on purpose: {mode}"))
            && log.contains("restarting adapter")
            && log.contains(why),
        "{mode}: {node}.log says why:\n{log}"
    );
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

/// The Docker runtime does not run exec yet: a config error that says why,
/// from the file and from `--runtime docker` alike.
#[test]
fn exec_in_docker_is_refused_with_the_reason() {
    let why = "lock.service: exec nodes run in the local runtime only for now: their \
               commands are host programs (an interpreter and its library, like python3), \
               which leasehold does not pack into images; use runtime: local";
    assert_eq!(
        config_error(
            &format!("runtime: docker\nlock:\n  service: exec\n{SERVER}{CLIENT}"),
            &[]
        ),
        format!("error: bad.yaml:5:12: {why}")
    );
    assert_eq!(
        config_error(
            &format!("lock:\n  service: exec\n{SERVER}{CLIENT}"),
            &["--runtime", "docker"]
        ),
        format!("error: bad.yaml:4:12: {why}")
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
