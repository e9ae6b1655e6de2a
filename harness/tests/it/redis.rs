//! Redis 7 as the lock system: leasehold starts its own `redis-server` per lock
//! node (never a system service), in the node's namespace locally and in a
//! container packed from the host binary in Docker.

use crate::*;

/// Runs a Redis example and checks what every Redis run must show: the
/// summary and results.json name the system, its version as the server
/// reports it, and its token.
fn run_redis(name: &str, seed: u64, extra: &[&str]) -> (i32, String, serde_json::Value) {
    let store = tempfile::tempdir().unwrap();
    let (out, dir) = run_example_in(store.path(), name, seed, extra);
    let (code, stdout, results, version) =
        assert_system_run(&format!("{name} seed {seed}"), &out, &dir, "redis");
    assert!(version.starts_with("7.0."), "redis 7.0.x, not {version:?}");
    let token = results["lock_system"]["token"].as_str().unwrap();
    assert!(token.contains("INCR"), "{token}");
    // The server's own log is the node's log, not lost and not taken for events.
    let log = std::fs::read_to_string(dir.join("nodes/lock1.log")).unwrap();
    assert!(log.contains("Redis version=7.0."), "lock1.log:\n{log}");
    assert_eq!(check_validity(&results, "token-order"), "valid");
    (code, stdout, results)
}

#[test]
fn redis_unfenced_accepts_stale_writes_locally() {
    if !require_program("redis-server", "redis-server") {
        return;
    }
    for seed in [11, 12] {
        let (code, stdout, results) = run_redis("redis.yaml", seed, &[]);
        assert_unfenced_invalid(code, &stdout, &results, seed);
        assert_eq!(results["runtime"], "local");
    }
}

#[test]
fn redis_fenced_rejects_stale_writes_locally() {
    if !require_program("redis-server", "redis-server") {
        return;
    }
    for seed in [21, 22] {
        let (code, stdout, results) = run_redis("redis-fenced.yaml", seed, &[]);
        assert_fenced_valid(code, &stdout, &results, seed);
    }
}

#[test]
fn redis_examples_run_in_docker() {
    if !require_program("redis-server", "redis-server") || !require_docker() {
        return;
    }
    for seed in [31, 32] {
        let (code, stdout, results) = run_redis("redis.yaml", seed, &["--runtime", "docker"]);
        assert_unfenced_invalid(code, &stdout, &results, seed);
        assert_eq!(results["runtime"], "docker");
        for node in results["nodes"].as_array().unwrap() {
            assert!(!node["addr"].as_str().unwrap().starts_with("127."));
        }
        let (code, stdout, results) =
            run_redis("redis-fenced.yaml", seed + 2, &["--runtime", "docker"]);
        assert_fenced_valid(code, &stdout, &results, seed + 2);
    }
}

#[test]
fn a_missing_redis_server_is_one_line_and_exit_3() {
    assert_missing_server_is_one_line("redis.yaml", "redis-server", "redis-server");
}

/// The adapter's three scripts against a real `redis-server` on loopback:
/// tokens grow, a busy lock fails, renew and release compare client and
/// token, a paused server is `info`, a dead one `fail`.
#[test]
fn the_redis_client_fences_and_compares() {
    use leasehold_workloads::system::redis::RedisLockClient;
    use leasehold_workloads::{Completion, LockClient, LockSystem, Probe};
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;

    if !require_program("redis-server", "redis-server") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut server = Command::new("redis-server")
        .args(["--bind", "127.0.0.1", "--port", &port.to_string(), "--dir"])
        .arg(dir.path())
        .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = Pid::from_raw(server.id() as i32);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let start = Instant::now();
        while !Probe::RedisPing
            .ready(addr, Duration::from_millis(200))
            .await
        {
            assert!(start.elapsed() < Duration::from_secs(5), "redis not ready");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let version = LockSystem::Redis
            .server_version(addr, Duration::from_secs(1))
            .await
            .unwrap();
        assert!(version.starts_with("7."), "{version}");

        let timeout = Duration::from_millis(300);
        let a = &addr.to_string();
        let mut c1 = RedisLockClient::new(a, "c1", timeout).unwrap();
        let mut c2 = RedisLockClient::new(a, "c2", timeout).unwrap();
        let ttl = Duration::from_secs(5);
        let Completion::Ok(g1) = c1.acquire("L", ttl).await else {
            panic!("first acquire")
        };
        assert_eq!(g1.lease_ms, 5000);
        assert_eq!(c2.acquire("L", ttl).await, Completion::Fail("busy".into()));
        // Same token, other client; same client, other token: both refused.
        assert!(matches!(
            c2.renew("L", g1.token, ttl).await,
            Completion::Fail(_)
        ));
        assert!(matches!(
            c1.renew("L", g1.token + 1, ttl).await,
            Completion::Fail(_)
        ));
        assert!(c1.renew("L", g1.token, ttl).await.is_ok());
        assert!(matches!(
            c1.release("L", g1.token + 1).await,
            Completion::Fail(_)
        ));
        assert!(c1.release("L", g1.token).await.is_ok());
        let Completion::Ok(g2) = c2.acquire("L", Duration::from_millis(100)).await else {
            panic!("acquire after release")
        };
        assert!(g2.token > g1.token, "{g2:?} after {g1:?}");
        // The lease expires on the server: the next holder has a larger token
        // and the old one can renew nothing.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let Completion::Ok(g3) = c1.acquire("L", ttl).await else {
            panic!("acquire after expiry")
        };
        assert!(g3.token > g2.token);
        assert_eq!(
            c2.renew("L", g2.token, ttl).await,
            Completion::Fail("lease lost".into())
        );

        // A paused server: unknown outcome, never a guess.
        kill(pid, Signal::SIGSTOP).unwrap();
        let paused = c1.renew("L", g3.token, ttl).await;
        kill(pid, Signal::SIGCONT).unwrap();
        assert!(matches!(paused, Completion::Info(_)), "{paused:?}");
        // A dead server: nothing was sent, so nothing happened.
        server.kill().unwrap();
        server.wait().unwrap();
        let dead = c1.release("L", g3.token).await;
        assert!(
            matches!(dead, Completion::Fail(ref e) if e.contains("connect")),
            "{dead:?}"
        );
    });
}

/// A kill of the Redis lock node mid-run: the run restarts the server (with
/// persistence off it comes back empty), completes, and the token checks find
/// the fence counter starting again from 1.
#[test]
fn a_killed_redis_node_restarts_and_its_tokens_go_backwards() {
    if !require_program("redis-server", "redis-server") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = std::fs::read_to_string(example("redis-fenced.yaml"))
        .unwrap()
        .replace("test: redis-fenced", "test: redis-kill");
    let nemesis = config.find("nemesis:").unwrap();
    let config = format!(
        "{}nemesis:\n  timeline:\n    - {{ at: 3s, kill: lock1, for: 1s }}\n",
        &config[..nemesis]
    );
    let path = dir.path().join("redis-kill.yaml");
    std::fs::write(&path, config).unwrap();
    let store = dir.path().join("store");
    let out = leasehold()
        .args(["run", "--no-progress", "--seed", "7", "--duration", "7s"])
        .arg("--store")
        .arg(&store)
        .arg(&path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let results = read_json(&run_dir_of(&store).join("results.json"));
    assert!(results["error"].is_null(), "{}", results["error"]);
    let token_order = results["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "token-order")
        .unwrap();
    assert_eq!(token_order["validity"], "invalid", "{stdout}");
    assert!(stdout.contains("token 1 was granted 2 times"), "{stdout}");
    let log = std::fs::read_to_string(run_dir_of(&store).join("nodes/lock1.log")).unwrap();
    assert_eq!(
        log.matches("Ready to accept connections").count(),
        2,
        "started twice:\n{log}"
    );
}
