//! Redlock as the lock system: leasehold starts one `redis-server` per lock
//! node (5 by default), each on its own, and the workers' client takes a
//! majority of them.

use crate::*;

use leasehold_workloads::system::redis::{Persistence, recipe};
use leasehold_workloads::system::redlock::RedlockClient;
use leasehold_workloads::{Completion, LockClient, NodeAddrs};

/// Runs a Redlock example and checks what every Redlock run must show: the
/// summary and results.json name the system, its version as the first node
/// reports it, and its token; every one of the 5 lock nodes is a redis-server
/// that logged its start.
fn run_redlock(name: &str, seed: u64, extra: &[&str]) -> (i32, String, serde_json::Value) {
    let store = tempfile::tempdir().unwrap();
    let (out, dir) = run_example_in(store.path(), name, seed, extra);
    let (code, stdout, results, version) =
        assert_system_run(&format!("{name} seed {seed}"), &out, &dir, "redlock");
    assert!(version.starts_with("7.0."), "redis 7.0.x, not {version:?}");
    let token = results["lock_system"]["token"].as_str().unwrap();
    assert!(token.contains("fence counters"), "{token}");
    let locks: Vec<&serde_json::Value> = results["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["name"].as_str().unwrap().starts_with("lock"))
        .collect();
    assert_eq!(locks.len(), 5, "{}", results["nodes"]);
    for i in 1..=5 {
        let log = std::fs::read_to_string(dir.join(format!("nodes/lock{i}.log"))).unwrap();
        assert!(log.contains("Redis version=7.0."), "lock{i}.log:\n{log}");
    }
    (code, stdout, results)
}

#[test]
fn redlock_unfenced_accepts_stale_writes_locally() {
    if !require_program("redis-server", "redis-server") {
        return;
    }
    for seed in [11, 12] {
        let (code, stdout, results) = run_redlock("redlock.yaml", seed, &[]);
        assert_unfenced_invalid(code, &stdout, &results, seed);
        assert_eq!(results["runtime"], "local");
    }
}

#[test]
fn redlock_fenced_rejects_stale_writes_locally() {
    if !require_program("redis-server", "redis-server") {
        return;
    }
    for seed in [22, 23] {
        let (code, stdout, results) = run_redlock("redlock-fenced.yaml", seed, &[]);
        assert_fenced_safe(code, &stdout, &results, seed);
    }
}

/// A fenced Redlock run: storage accepted no stale write and counted its
/// rejections. Usually the run is valid (exit 0); but Redlock's token is no
/// fencing token, and when two acquires race (one takes a node the other
/// needed, gives up and releases) the nodes' counters drift apart, so a later
/// grant can carry a smaller or repeated token (seed 21 of this example did,
/// twice). Then the token checks, and only they, say invalid.
fn assert_fenced_safe(code: i32, stdout: &str, results: &serde_json::Value, seed: u64) {
    if code == 0 {
        assert_fenced_valid(code, stdout, results, seed);
        return;
    }
    assert_eq!(code, 1, "seed {seed}:\n{stdout}");
    assert_eq!(results["counts"]["stale_accepted"], 0, "{stdout}");
    assert!(results["counts"]["stale_rejected"].as_u64().unwrap() >= 1);
    for check in results["checks"].as_array().unwrap() {
        if check["validity"] == "invalid" {
            let name = check["name"].as_str().unwrap();
            assert!(
                name == "token-order" || name == "linearizability-lock",
                "seed {seed}: only Redlock's tokens may be found wanting, not {name}:\n{stdout}"
            );
        }
    }
    assert!(
        stdout.contains("token-order              invalid"),
        "seed {seed}:\n{stdout}"
    );
}

#[test]
fn redlock_examples_run_in_docker() {
    if !require_program("redis-server", "redis-server") || !require_docker() {
        return;
    }
    let (code, stdout, results) = run_redlock("redlock.yaml", 31, &["--runtime", "docker"]);
    assert_unfenced_invalid(code, &stdout, &results, 31);
    assert_eq!(results["runtime"], "docker");
    for node in results["nodes"].as_array().unwrap() {
        assert!(!node["addr"].as_str().unwrap().starts_with("127."));
    }
    let (code, stdout, results) = run_redlock("redlock-fenced.yaml", 32, &["--runtime", "docker"]);
    assert_fenced_safe(code, &stdout, &results, 32);
}

/// A `redis-server` on a free loopback port, started from the recipe the
/// runs use.
struct Server {
    child: std::process::Child,
    addr: std::net::SocketAddr,
    dir: std::path::PathBuf,
    persistence: Persistence,
}

impl Server {
    fn start(dir: &Path, persistence: Persistence) -> Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}").parse().unwrap();
        let child = spawn_redis(addr, dir, persistence);
        Server {
            child,
            addr,
            dir: dir.to_owned(),
            persistence,
        }
    }

    /// Starts the server again on the same port and folder.
    fn restart(&mut self) {
        self.child = spawn_redis(self.addr, &self.dir, self.persistence);
    }

    fn pid(&self) -> nix::unistd::Pid {
        nix::unistd::Pid::from_raw(self.child.id() as i32)
    }

    fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Runs one command and returns its first reply line (`:8`, `+OK`).
    fn command(&self, args: &[&str]) -> String {
        command(self.addr, args).expect("redis-server answers")
    }
}

/// Runs one command on the server at `addr` and returns its first reply line;
/// `None` when it does not answer (not started yet).
fn command(addr: std::net::SocketAddr, args: &[&str]) -> Option<String> {
    use std::io::{BufRead, Write};
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    let mut req = format!("*{}\r\n", args.len());
    for a in args {
        req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    s.write_all(req.as_bytes()).ok()?;
    let mut line = String::new();
    std::io::BufReader::new(s).read_line(&mut line).ok()?;
    Some(line.trim_end().to_owned())
}

/// `redis-server` with the arguments of [`recipe`], ready to serve.
fn spawn_redis(
    addr: std::net::SocketAddr,
    dir: &Path,
    persistence: Persistence,
) -> std::process::Child {
    let node = NodeAddrs {
        name: "lock".into(),
        addr,
        peers: vec![addr],
        cluster: Vec::new(),
        data_dir: dir.display().to_string(),
    };
    let mut child = Command::new("redis-server")
        .args(&recipe(persistence, &node).args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while command(addr, &["PING"]).as_deref() != Some("+PONG") {
        if start.elapsed() > Duration::from_secs(5) {
            let _ = child.kill();
            panic!("redis-server at {addr} not ready in 5 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The client against 5 real redis-servers: a majority is enough, the token
/// is the largest counter of the nodes that granted (so it goes backwards
/// when the node with the large counter is gone), the lease is TTL − drift,
/// a paused majority makes the outcome unknown, a dead majority a failure.
#[test]
fn the_redlock_client_takes_a_majority_and_its_token_can_go_backwards() {
    use nix::sys::signal::{Signal, kill};

    if !require_program("redis-server", "redis-server") {
        return;
    }
    let dirs: Vec<tempfile::TempDir> = (0..5).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut servers: Vec<Server> = dirs
        .iter()
        .map(|d| Server::start(d.path(), Persistence::None))
        .collect();
    let addrs: Vec<String> = servers.iter().map(|s| s.addr.to_string()).collect();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let timeout = Duration::from_millis(500);
        let mut c1 = RedlockClient::new(&addrs, "c1", timeout).unwrap();
        let mut c2 = RedlockClient::new(&addrs, "c2", timeout).unwrap();
        assert_eq!(c1.node_timeout(), Duration::from_millis(50));
        let ttl = Duration::from_secs(5);

        // lock1's counter is far ahead of the others'.
        assert_eq!(servers[0].command(&["SET", "leasehold:fence:L", "100"]), "+OK");
        let Completion::Ok(g1) = c1.acquire("L", ttl).await else {
            panic!("first acquire")
        };
        assert_eq!(g1.token, 101, "the largest counter among the nodes");
        assert_eq!(g1.lease_ms, 5000 - 52, "TTL − (1% of TTL + 2 ms)");
        assert!(matches!(c2.acquire("L", ttl).await, Completion::Fail(ref e) if e.starts_with("no majority: 0 of 5")));
        assert!(c1.renew("L", g1.token, ttl).await.is_ok());
        assert!(matches!(
            c2.renew("L", g1.token, ttl).await,
            Completion::Fail(_)
        ));
        assert!(c1.release("L", g1.token).await.is_ok());
        assert!(matches!(
            c1.release("L", g1.token).await,
            Completion::Fail(_)
        ));

        // Without lock1, the next majority's counters are all small.
        servers[0].kill();
        let Completion::Ok(g2) = c2.acquire("L", ttl).await else {
            panic!("acquire with 4 of 5")
        };
        assert_eq!(g2.token, 2, "backwards from {}", g1.token);
        assert!(c2.release("L", g2.token).await.is_ok());

        // Two more dead: no majority, certainly not held (a client that had
        // connections to them could not tell a reset from a lost reply).
        servers[1].kill();
        servers[2].kill();
        let mut c3 = RedlockClient::new(&addrs, "c3", timeout).unwrap();
        let dead = c3.acquire("L", ttl).await;
        assert!(
            matches!(dead, Completion::Fail(ref e) if e.contains("2 of 5 granted")),
            "{dead:?}"
        );

        // Back up; then three paused: their SETs may still run, and the
        // release cannot prove they will not: unknown.
        for s in &mut servers[..3] {
            s.restart();
        }
        // Connected to every node before the pause, so the scripts are sent.
        let mut c4 = RedlockClient::new(&addrs, "c4", timeout).unwrap();
        let Completion::Ok(warm) = c4.acquire("W", ttl).await else {
            panic!("acquire with all 5 back")
        };
        assert!(c4.release("W", warm.token).await.is_ok());
        for s in &servers[..3] {
            kill(s.pid(), Signal::SIGSTOP).unwrap();
        }
        let paused = c4.acquire("L", ttl).await;
        for s in &servers[..3] {
            kill(s.pid(), Signal::SIGCONT).unwrap();
        }
        assert!(matches!(paused, Completion::Info(_)), "{paused:?}");
        // One paused node of five costs a node timeout, not the lock.
        kill(servers[4].pid(), Signal::SIGSTOP).unwrap();
        let t = Instant::now();
        let one_paused = c4.acquire("M", ttl).await;
        kill(servers[4].pid(), Signal::SIGCONT).unwrap();
        assert!(one_paused.is_ok(), "{one_paused:?}");
        assert!(t.elapsed() < Duration::from_millis(400), "{:?}", t.elapsed());
    });
}

/// `persistence: aof`: a killed node comes back with its fence counter.
#[test]
fn aof_keeps_the_fence_counter_across_a_kill() {
    if !require_program("redis-server", "redis-server") {
        return;
    }
    for (persistence, after) in [(Persistence::Aof, 8), (Persistence::None, 1)] {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Server::start(dir.path(), persistence);
        for _ in 0..7 {
            s.command(&["INCR", "leasehold:fence:L"]);
        }
        s.kill();
        s.restart();
        let n = s.command(&["INCR", "leasehold:fence:L"]);
        assert_eq!(n, format!(":{after}"), "{persistence:?}");
    }
}
