//! Integration tests of the `leasehold` binary, run as a user runs it.

mod bench;
mod browser;
mod check;
mod cleanup;
mod clock;
mod config_errors;
mod core_faults;
mod docker;
mod etcd;
mod examples;
mod exec;
mod exit_codes;
mod findings;
mod images;
mod interrupt;
mod nemesis;
mod packet;
mod pipes;
mod postgres;
mod postgres_runs;
mod redis;
mod redlock;
mod schema;
mod serve;
mod shrink;
mod storage;
mod test_all;
mod vacuous;
mod zookeeper;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// The binary under test.
pub fn leasehold() -> Command {
    Command::new(assert_cmd::cargo::cargo_bin!("leasehold"))
}

/// The path of `examples/<name>` in the repository.
pub fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(name)
}

/// Whether `CI=true` (or `1`): then a missing Docker or root fails a test.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Whether the tests run as root.
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Tests that need root (network namespaces) run everywhere root is; in CI,
/// missing root is a failure, not a skip.
pub fn require_root() -> bool {
    if is_root() {
        return true;
    }
    assert!(
        !in_ci(),
        "CI=true but not root: the namespace tests cannot run"
    );
    eprintln!("not root: skipping a test that needs network namespaces");
    false
}

/// Reads and parses a JSON file, panicking with its path on failure.
pub fn read_json(path: &Path) -> serde_json::Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
}

/// Pids and states of the processes whose command line carries `--run-id <id>`.
pub fn processes_of_run(run_id: &str) -> Vec<(i32, char)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        let ours = args
            .windows(2)
            .any(|w| w[0] == b"--run-id" && w[1] == run_id.as_bytes());
        if !ours {
            continue;
        }
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat
            .rsplit_once(')')
            .and_then(|(_, r)| r.trim_start().chars().next())
            .unwrap_or('?');
        if state != 'Z' && state != '?' {
            out.push((pid, state));
        }
    }
    out
}

/// Network namespaces of a run.
pub fn namespaces_of_run(run_id: &str) -> Vec<String> {
    let out = Command::new("ip").args(["netns", "list"]).output();
    let Ok(out) = out else { return Vec::new() };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|ns| ns.starts_with(&format!("lh-{run_id}-")))
        .map(str::to_owned)
        .collect()
}

/// Waits until `cond` holds, or panics after `limit`.
pub fn wait_until(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The id of the run whose controller is `pid`, from the run registry.
pub fn registered_run_of(pid: u32) -> Option<String> {
    let reg_dir = std::env::temp_dir()
        .join(format!("leasehold-{}", nix::unistd::getuid()))
        .join("runs");
    std::fs::read_dir(reg_dir).ok()?.flatten().find_map(|e| {
        let reg = read_json(&e.path());
        (reg["controller_pid"] == pid).then(|| reg["run_id"].as_str().unwrap().to_owned())
    })
}

/// Starts the default example for a minute in the background.
pub fn start_long_run(
    store: &Path,
    seed: u64,
    output: impl Fn() -> std::process::Stdio,
) -> std::process::Child {
    start_long_run_of("gc-pause.yaml", store, seed, output)
}

/// Starts an example for a minute in the background.
pub fn start_long_run_of(
    name: &str,
    store: &Path,
    seed: u64,
    output: impl Fn() -> std::process::Stdio,
) -> std::process::Child {
    leasehold()
        .args([
            "run",
            "--no-progress",
            "--duration",
            "60s",
            "--seed",
            &seed.to_string(),
            "--store",
        ])
        .arg(store)
        .arg(example(name))
        .stdout(output())
        .stderr(output())
        .spawn()
        .unwrap()
}

/// Runs `leasehold run --no-progress --seed <seed> --store <store> <extra…> <example>`
/// and returns what it printed and the run's folder.
pub fn run_example_in(
    store: &Path,
    name: &str,
    seed: u64,
    extra: &[&str],
) -> (std::process::Output, PathBuf) {
    let out = run_in(&repo(), store, &example(name), seed, extra);
    (out, run_dir_of(store))
}

/// The folder of the newest run in `store`.
pub fn run_dir_of(store: &Path) -> PathBuf {
    std::fs::canonicalize(store.join("latest")).expect("store/latest points at the run")
}

/// Whether a Docker Engine answers. In CI a missing engine is a failure, not a
/// skip.
pub fn require_docker() -> bool {
    let up = Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !up {
        assert!(
            !in_ci(),
            "CI=true but no Docker Engine answers: the Docker tests cannot run"
        );
        eprintln!("no Docker Engine: skipping a test that needs it");
    }
    up
}

/// Whether Debian's `postgresql` is installed (its binaries are not on
/// PATH); in CI a missing one is a failure, not a skip.
pub fn require_postgres() -> bool {
    let found = Path::new(leasehold_workloads::system::postgres::BIN_DIR)
        .join("postgres")
        .is_file();
    if !found {
        assert!(
            !in_ci(),
            "CI=true but {}/postgres is missing (.ci/run installs postgresql)",
            leasehold_workloads::system::postgres::BIN_DIR
        );
        eprintln!("no postgres: skipping a test that needs it");
    }
    found
}

/// Whether Debian's `zookeeper` and a JRE are installed; in CI a missing one
/// is a failure, not a skip.
pub fn require_zookeeper() -> bool {
    let jars = leasehold_workloads::system::zookeeper::jar_missing();
    assert!(
        jars.is_none() || !in_ci(),
        "CI=true but {jars:?} (.ci/run installs zookeeper)"
    );
    jars.is_none() && require_program("java", "default-jre-headless")
}

/// Whether `program` is on PATH. In CI a missing one is a failure, not a skip:
/// `.ci/run` installs `package`.
pub fn require_program(program: &str, package: &str) -> bool {
    let found = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()));
    if !found {
        assert!(
            !in_ci(),
            "CI=true but {program} is not installed (.ci/run installs {package})"
        );
        eprintln!("no {program}: skipping a test that needs it");
    }
    found
}

/// An unfenced run of a lock-system example: invalid, and the stale writes
/// named in the summary.
pub fn assert_unfenced_invalid(code: i32, stdout: &str, results: &serde_json::Value, seed: u64) {
    assert_eq!(code, 1, "unfenced: invalid (seed {seed}):\n{stdout}");
    assert!(results["counts"]["stale_accepted"].as_u64().unwrap() >= 1);
    assert!(
        stdout.contains("stale-write              invalid")
            && stdout.contains("- storage accepted w")
            && stdout.contains("after its lease expired"),
        "the stale writes are named:\n{stdout}"
    );
}

/// A fenced run of a lock-system example: valid, no stale write accepted, and
/// the rejections counted.
pub fn assert_fenced_valid(code: i32, stdout: &str, results: &serde_json::Value, seed: u64) {
    assert_eq!(code, 0, "fenced: valid (seed {seed}):\n{stdout}");
    assert_eq!(results["counts"]["stale_accepted"], 0);
    assert!(
        results["counts"]["stale_rejected"].as_u64().unwrap() >= 1,
        "rejections counted: {}",
        results["counts"]
    );
}

/// Runs `example` with a `PATH` where no server binary is and asserts what a
/// missing server must give: exit 3, one line on stderr naming `binary` and
/// the Debian `package` that installs it, nothing on stdout, no run folder.
pub fn assert_missing_server_is_one_line(example_name: &str, binary: &str, package: &str) {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let empty = dir.path().join("bin");
    std::fs::create_dir(&empty).unwrap();
    let out = leasehold()
        .env("PATH", &empty)
        .args(["run", "--no-progress", "--store"])
        .arg(&store)
        .arg(example(example_name))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{example_name}: {out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.lines().collect::<Vec<_>>(),
        [format!(
            "error: {binary} not found: apt-get install {package}"
        )],
        "{example_name}: one line naming the binary and its package"
    );
    assert!(out.stdout.is_empty(), "{example_name}: nothing on stdout");
    assert!(
        !store.exists(),
        "{example_name}: nothing started: no run folder"
    );
}

/// An exec adapter (lock or storage) that answers `init` and then misbehaves
/// on the next request (`garbage`: prints a line that is not JSON; `hang`:
/// never answers; `exit`: exits without answering), in the first life of any
/// adapter of the run only: every later one (the restarted adapter, the
/// other workers', the final reads') execs the real adapter. Arguments:
/// mode, a marker file that is created by the first life, the real adapter.
pub const MISBEHAVING_ADAPTER: &str = r#"import json, os, sys, time
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

/// The repository's root: the examples' relative paths start there.
pub fn repo() -> PathBuf {
    std::fs::canonicalize(Path::new(env!("CARGO_MANIFEST_DIR")).join("..")).unwrap()
}

/// `leasehold run --no-progress --seed <seed> --store <store> <extra…> <config>`
/// started in `cwd`.
pub fn run_in(cwd: &Path, store: &Path, config: &Path, seed: u64, extra: &[&str]) -> Output {
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

/// What every run of a lock-system example shows: it exits 0 or 1, and the
/// summary and results.json name `system`, the version its server reports
/// and what its token is. Returns the exit code, the summary, results.json
/// and the version.
pub fn assert_system_run(
    what: &str,
    out: &Output,
    dir: &Path,
    system: &str,
) -> (i32, String, serde_json::Value, String) {
    let code = out.status.code().expect("exited");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        code == 0 || code == 1,
        "{what}: exit {code}\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let results = read_json(&dir.join("results.json"));
    let named = &results["lock_system"];
    assert_eq!(named["name"], system, "{what}: {results}");
    let version = named["version"].as_str().unwrap().to_owned();
    let token = named["token"].as_str().unwrap();
    assert!(
        stdout.contains(&format!(
            "system:  {system} {version}; fencing token: {token}"
        )),
        "{what}: the summary names the system, its version and its token:\n{stdout}"
    );
    (code, stdout, results, version)
}

/// The validity of the check `name` in results.json.
pub fn check_validity<'a>(results: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    &results["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("a {name} check: {results}"))["validity"]
}

/// Runs `config` (written in `dir`, which makes its first adapter a
/// [`MISBEHAVING_ADAPTER`] in `mode`) and asserts that the op `f` that
/// adapter got ends `info` with `why`, that its worker then completes an `f`
/// through a new adapter, that the run completes VALID, and that the
/// worker's log says what happened. Returns the run folder.
pub fn assert_adapter_recovers(
    dir: &Path,
    config: &Path,
    mode: &str,
    why: &str,
    f: &str,
) -> PathBuf {
    let store = dir.join("store");
    let out = run_in(dir, &store, config, 7, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{mode}: {out:?}");
    assert!(stdout.starts_with("VALID"), "{mode}: {stdout}");
    let run = run_dir_of(&store);
    let history = std::fs::read_to_string(run.join("history.jsonl")).unwrap();
    let events: Vec<serde_json::Value> = history
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // The worker whose first adapter misbehaved says so in its log.
    let log_of = |node: &str| {
        std::fs::read_to_string(run.join(format!("nodes/{node}.log"))).unwrap_or_default()
    };
    let marker = format!("misbehaving on purpose: {mode}");
    let info = events
        .iter()
        .find(|e| {
            e["type"] == "info"
                && e["f"] == f
                && e["node"]
                    .as_str()
                    .is_some_and(|n| log_of(n).contains(&marker))
        })
        .unwrap_or_else(|| panic!("{mode}: the {f} the adapter failed ends info:\n{history}"));
    let error = info["error"].as_str().unwrap();
    assert!(error.contains(why), "{mode}: {info}");
    // That worker went on with a new adapter.
    let node = info["node"].as_str().unwrap();
    let later = events
        .iter()
        .skip_while(|e| *e != info)
        .filter(|e| e["node"] == node && e["type"] == "ok" && e["f"] == f)
        .count();
    assert!(
        later >= 1,
        "{mode}: {node} completed a {f} after the restart"
    );
    let log = log_of(node);
    assert!(
        log.contains("restarting adapter") && log.contains(why),
        "{mode}: {node}.log says why:\n{log}"
    );
    run
}
