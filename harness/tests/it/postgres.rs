//! PostgreSQL advisory locks: the client against a real server of the test's
//! own (its own cluster in a temporary folder, on a loopback port), run as
//! PostgreSQL's unprivileged user since the server refuses root.

use crate::*;

use std::os::unix::process::CommandExt as _;

use leasehold_workloads::system::postgres::{
    BIN_DIR, PostgresLockClient, USER, ready, server_version,
};
use leasehold_workloads::{Completion, LockClient};

/// Whether Debian's `postgresql` is installed (its binaries are not on
/// PATH); in CI a missing one is a failure, not a skip.
fn require_postgres() -> bool {
    let found = Path::new(BIN_DIR).join("postgres").is_file();
    if !found {
        assert!(
            !in_ci(),
            "CI=true but {BIN_DIR}/postgres is missing (.ci/run installs postgresql)"
        );
        eprintln!("no postgres: skipping a test that needs it");
    }
    found
}

/// The server process, stopped (fast shutdown) and reaped when dropped, so
/// no postgres of the test outlives it, even when it fails.
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.0.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT);
        let _ = self.0.wait();
    }
}

/// Tokens grow, a held lock is busy for others, renew and release need the
/// holder's token, and `idle_session_timeout` frees the lock of a holder that
/// goes silent (a paused one): the next client then holds it with a larger
/// token and the silent holder's renew fails.
#[test]
fn the_postgres_client_locks_fences_and_loses_an_idle_session() {
    if !require_root() || !require_postgres() {
        return;
    }
    let user = nix::unistd::User::from_name(USER)
        .unwrap()
        .expect("the postgres user");
    let dir = tempfile::tempdir().unwrap();
    // The server's user must reach its data folder.
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let data = dir.path().join("pg");
    std::fs::create_dir(&data).unwrap();
    nix::unistd::chown(&data, Some(user.uid), Some(user.gid)).unwrap();
    let as_postgres = |program: &str| {
        let mut c = Command::new(Path::new(BIN_DIR).join(program));
        c.uid(user.uid.as_raw()).gid(user.gid.as_raw());
        c
    };
    let init = as_postgres("initdb")
        .args([
            "--username",
            "leasehold",
            "--auth",
            "trust",
            "--no-sync",
            "-D",
        ])
        .arg(&data)
        .output()
        .unwrap();
    assert!(init.status.success(), "initdb: {init:?}");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let _server = Server(
        as_postgres("postgres")
            .arg("-D")
            .arg(&data)
            .arg("-k")
            .arg(&data)
            .args(["-p", &port.to_string()])
            .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"])
            .args(["-c", "idle_session_timeout=500ms"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let start = Instant::now();
        while !ready(addr, Duration::from_millis(500)).await {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "postgres not ready"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let version = server_version(addr, Duration::from_secs(2)).await.unwrap();
        assert!(version.starts_with("15."), "{version}");

        let timeout = Duration::from_secs(2);
        let a = &addr.to_string();
        let mut c1 = PostgresLockClient::new(a, timeout).unwrap();
        let mut c2 = PostgresLockClient::new(a, timeout).unwrap();
        let ttl = Duration::from_secs(5);
        let Completion::Ok(g1) = c1.acquire("L", ttl).await else {
            panic!("c1 acquires a free lock")
        };
        assert_eq!(g1.lease_ms, 500, "the lease is the idle session timeout");
        assert!(matches!(c2.acquire("L", ttl).await, Completion::Fail(e) if e == "busy"));
        assert!(matches!(
            c1.renew("L", g1.token + 1, ttl).await,
            Completion::Fail(_)
        ));
        assert!(matches!(
            c1.renew("L", g1.token, ttl).await,
            Completion::Ok(_)
        ));
        assert!(matches!(
            c1.release("L", g1.token).await,
            Completion::Ok(())
        ));
        let Completion::Ok(g2) = c2.acquire("L", ttl).await else {
            panic!("c2 acquires the released lock")
        };
        assert!(g2.token > g1.token, "{} after {}", g2.token, g1.token);
        // c2 goes silent: the server ends its session and the lock is free.
        let start = Instant::now();
        let g3 = loop {
            match c1.acquire("L", ttl).await {
                Completion::Ok(g) => break g,
                Completion::Fail(e) if e == "busy" => {}
                other => panic!("{other:?}"),
            }
            assert!(start.elapsed() < Duration::from_secs(30), "never freed");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert!(g3.token > g2.token);
        assert!(matches!(
            c2.renew("L", g2.token, ttl).await,
            Completion::Fail(e) if e.starts_with("lease lost")
        ));
    });
}
