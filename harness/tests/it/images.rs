//! `leasehold images build` packs binaries into `FROM scratch` images that
//! really run, and only builds when the content changed.

use std::io::{Read as _, Write as _};
use std::os::unix::net::{UnixListener, UnixStream};
use std::process::Child;
use std::sync::{Arc, Condvar, Mutex};

use crate::*;

/// Tests that build node images of other binaries prune the usual node image:
/// the tests that need it to stay put between two steps wait for them.
static NODE_IMAGES: Mutex<()> = Mutex::new(());

/// Runs `leasehold images build <args>` and returns its (tag, state) lines.
fn images_build(args: &[&str]) -> Vec<(String, String)> {
    let out = leasehold()
        .args(["images", "build"])
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "leasehold images build {args:?} failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .map(|l| {
            let (tag, state) = l
                .split_once("  ")
                .unwrap_or_else(|| panic!("unexpected line {l:?}"));
            (tag.to_owned(), state.to_owned())
        })
        .collect()
}

fn docker(args: &[&str]) -> std::process::Output {
    Command::new("docker").args(args).output().unwrap()
}

#[test]
fn the_node_image_is_built_once_and_runs_from_scratch() {
    if !require_docker() {
        return;
    }
    let _alone = NODE_IMAGES.lock().unwrap_or_else(|e| e.into_inner());
    let first = images_build(&[]);
    assert_eq!(first.len(), 1, "{first:?}");
    let (tag, state) = &first[0];
    assert!(tag.starts_with("leasehold/node:"), "{tag}");
    assert!(state == "built" || state == "up to date", "{state}");

    let again = images_build(&[]);
    assert_eq!(again, [(tag.clone(), "up to date".to_owned())]);

    let out = docker(&["run", "--rm", tag, "--version"]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("leasehold"),
        "{out:?}"
    );
}

#[test]
fn a_host_binary_is_packed_with_its_libraries() {
    if !require_docker() {
        return;
    }
    let lines = images_build(&["--binary", "/bin/true"]);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[0].0.starts_with("leasehold/node:"), "{lines:?}");
    let tag = &lines[1].0;
    assert!(tag.starts_with("leasehold/true:"), "{tag}");

    let out = docker(&["run", "--rm", tag]);
    let removed = docker(&["rmi", tag]);
    assert!(out.status.success(), "/bin/true in its image: {out:?}");
    assert!(removed.status.success(), "{removed:?}");
}

#[test]
fn a_missing_engine_is_a_clear_error() {
    let out = leasehold()
        .args(["images", "build"])
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(i32::from(leasehold::EXIT_RUN_FAILED)),
        "{out:?}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot reach the Docker Engine"),
        "{stderr}"
    );
}

/// A Docker API proxy on a unix socket that holds back every request to
/// create a container until it is released: it stops a run after it has found
/// its image and before it has a container of it.
struct HoldingProxy {
    socket: PathBuf,
    hold: Arc<(Mutex<Hold>, Condvar)>,
}

#[derive(Default)]
struct Hold {
    held: bool,
    released: bool,
}

impl HoldingProxy {
    fn start(dir: &Path) -> HoldingProxy {
        let socket = dir.join("docker.sock");
        let listener = UnixListener::bind(&socket).unwrap();
        let engine = match std::env::var("DOCKER_HOST") {
            Ok(host) => PathBuf::from(host.strip_prefix("unix://").expect("a unix DOCKER_HOST")),
            Err(_) => PathBuf::from("/var/run/docker.sock"),
        };
        let hold = Arc::new((Mutex::new(Hold::default()), Condvar::new()));
        let shared = hold.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { break };
                let (engine, hold) = (engine.clone(), shared.clone());
                std::thread::spawn(move || forward(client, &engine, &hold));
            }
        });
        HoldingProxy { socket, hold }
    }

    fn docker_host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    fn is_holding(&self) -> bool {
        self.hold.0.lock().unwrap().held
    }

    fn release(&self) {
        self.hold.0.lock().unwrap().released = true;
        self.hold.1.notify_all();
    }
}

/// Whether `bytes` hold the request line of a container create,
/// `POST /v1.47/containers/create?…` (a build context holding leasehold's
/// binary holds the path alone).
fn creates_a_container(bytes: &[u8]) -> bool {
    const POST: &[u8] = b"POST /";
    (0..bytes.len()).any(|i| {
        let Some(path) = bytes[i..].strip_prefix(POST) else {
            return false;
        };
        let version = path.strip_prefix(b"v").map_or(0, |p| {
            1 + p
                .iter()
                .take_while(|b| b.is_ascii_digit() || **b == b'.')
                .count()
        });
        let path = &path[version..];
        let path = if version > 0 {
            path.strip_prefix(b"/").unwrap_or(b"")
        } else {
            path
        };
        path.starts_with(b"containers/create")
    })
}

/// Copies bytes both ways between a client and the engine, waiting for the
/// release before passing on a container create.
fn forward(mut client: UnixStream, engine: &Path, hold: &(Mutex<Hold>, Condvar)) {
    let Ok(mut server) = UnixStream::connect(engine) else {
        return;
    };
    let (mut from_server, mut to_client) =
        (server.try_clone().unwrap(), client.try_clone().unwrap());
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut from_server, &mut to_client);
        let _ = to_client.shutdown(std::net::Shutdown::Write);
    });
    let mut buf = vec![0u8; 64 * 1024];
    // The end of the previous read: a request line may straddle two reads.
    let mut tail = Vec::new();
    loop {
        let n = match client.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        tail.extend_from_slice(&buf[..n]);
        if creates_a_container(&tail) {
            let mut state = hold.0.lock().unwrap();
            state.held = true;
            while !state.released {
                state = hold.1.wait(state).unwrap();
            }
        }
        tail.drain(..tail.len().saturating_sub(64));
        if server.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = server.shutdown(std::net::Shutdown::Write);
}

/// A copy of the binary under test with `marker` appended: it runs the same,
/// but its node image has a tag of its own.
fn other_build(dir: &Path, marker: &str) -> PathBuf {
    let copy = dir.join(format!("leasehold-{marker}"));
    std::fs::copy(leasehold().get_program(), &copy).unwrap();
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&copy)
        .unwrap();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    write!(file, "\nimages test build {marker} {nanos}\n").unwrap();
    copy
}

/// Starts `leasehold run` of the Docker example from `binary`, its output in
/// `store`.
fn start_docker_run(binary: &Path, store: &Path, docker_host: Option<&str>) -> Child {
    let mut cmd = Command::new(binary);
    cmd.args([
        "run",
        "--no-progress",
        "--duration",
        "6s",
        "--seed",
        "7",
        "--store",
    ])
    .arg(store)
    .arg(example("gc-pause-docker.yaml"))
    .stdout(std::fs::File::create(store.with_extension("out")).unwrap())
    .stderr(std::fs::File::create(store.with_extension("err")).unwrap());
    if let Some(host) = docker_host {
        cmd.env("DOCKER_HOST", host);
    }
    cmd.spawn().unwrap()
}

/// The image tags in the registration of the run whose controller is `pid`.
fn registered_images(pid: u32) -> Vec<String> {
    let reg_dir = std::env::temp_dir()
        .join(format!("leasehold-{}", nix::unistd::getuid()))
        .join("runs");
    let Ok(entries) = std::fs::read_dir(reg_dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| {
            serde_json::from_slice::<serde_json::Value>(&std::fs::read(e.path()).ok()?).ok()
        })
        .filter(|reg| reg["controller_pid"] == pid)
        .flat_map(|reg| reg["images"].as_array().cloned().unwrap_or_default())
        .filter_map(|t| t.as_str().map(str::to_owned))
        .collect()
}

/// Waits for a run and returns its exit code, what it printed on stderr and
/// its results.json.
fn finish(mut run: Child, store: &Path) -> (i32, String, Option<serde_json::Value>) {
    let code = run.wait().unwrap().code().expect("exited, not killed");
    let stderr = std::fs::read_to_string(store.with_extension("err")).unwrap_or_default();
    let results = std::fs::canonicalize(store.join("latest"))
        .ok()
        .map(|dir| read_json(&dir.join("results.json")));
    (code, stderr, results)
}

#[test]
fn concurrent_runs_of_two_builds_keep_each_others_node_image() {
    if !require_docker() {
        return;
    }
    let _alone = NODE_IMAGES.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let (build_a, build_b) = (other_build(dir.path(), "a"), other_build(dir.path(), "b"));
    let (store_a, store_b) = (dir.path().join("store-a"), dir.path().join("store-b"));

    // Run A builds its image, then waits at its first container create.
    let proxy = HoldingProxy::start(dir.path());
    let mut a = start_docker_run(&build_a, &store_a, Some(&proxy.docker_host()));
    wait_until(
        Duration::from_secs(300),
        "run A to create a container",
        || proxy.is_holding() || a.try_wait().unwrap().is_some(),
    );
    let mut tags = registered_images(a.id());

    // Run B builds another node image, prunes, runs and ends in the meantime.
    let b = start_docker_run(&build_b, &store_b, None);
    let b_pid = b.id();
    let mut b = Some(b);
    let mut b_outcome = None;
    wait_until(Duration::from_secs(300), "run B to end", || {
        for tag in registered_images(b_pid) {
            if !tags.contains(&tag) {
                tags.push(tag);
            }
        }
        if b.as_mut().unwrap().try_wait().unwrap().is_some() {
            b_outcome = Some(finish(b.take().unwrap(), &store_b));
        }
        b_outcome.is_some()
    });
    proxy.release();
    let a_outcome = finish(a, &store_a);

    for tag in &tags {
        let _ = docker(&["rmi", tag]);
    }
    for (name, (code, stderr, results)) in [("A", a_outcome), ("B", b_outcome.unwrap())] {
        assert!(code == 0 || code == 1, "run {name} exited {code}: {stderr}");
        let results = results.unwrap_or_else(|| panic!("run {name} has no results: {stderr}"));
        assert_eq!(results["runtime"], "docker", "run {name}");
        let verdict = if code == 0 { "valid" } else { "invalid" };
        assert_eq!(results["verdict"], verdict, "run {name}");
        assert!(!stderr.contains("panicked"), "run {name}: {stderr}");
    }
}
