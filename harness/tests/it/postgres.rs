//! PostgreSQL advisory locks and PostgreSQL as fenced storage: the clients
//! against a real server of the test's own (its own cluster in a temporary
//! folder, on a loopback port), run as PostgreSQL's unprivileged user since
//! the server refuses root.

use crate::*;

use std::os::unix::process::CommandExt as _;

use leasehold_checker::{Decision, LedgerEntry};
use leasehold_workloads::storage::PostgresStorageClient;
use leasehold_workloads::system::postgres::{
    BIN_DIR, PostgresLockClient, USER, ready, server_version,
};
use leasehold_workloads::{Completion, LockClient, StoredValue, Written};

/// The server process, stopped (fast shutdown) and reaped when dropped, so
/// no postgres of the test outlives it, even when it fails; its data folder
/// goes after it.
struct Server {
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT);
        let _ = self.child.wait();
    }
}

/// A PostgreSQL server of the test's own: a fresh cluster in a temporary
/// folder (role `leasehold`, trust), run as [`USER`] on a free loopback port
/// with `fsync=off` and `settings` (`name=value`), ready (it answers
/// `SELECT 1`) when this returns.
fn start_server(settings: &[&str]) -> (Server, std::net::SocketAddr) {
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
    let mut postgres = as_postgres("postgres");
    postgres
        .arg("-D")
        .arg(&data)
        .arg("-k")
        .arg(&data)
        .args(["-p", &port.to_string()])
        .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"]);
    for s in settings {
        postgres.args(["-c", s]);
    }
    let child = postgres
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let server = Server { child, _dir: dir };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let start = Instant::now();
        while !ready(addr, Duration::from_millis(500)).await {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "postgres not ready"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    (server, addr)
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
    let (_server, addr) = start_server(&["idle_session_timeout=500ms"]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
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

/// A small deterministic generator (splitmix64) for the writers' tokens.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The ledger rows of `key`, in ledger order.
fn rows_of<'a>(ledger: &'a [LedgerEntry], key: &str) -> Vec<&'a LedgerEntry> {
    ledger.iter().filter(|e| e.key == key).collect()
}

/// Against a real server: the fenced upsert refuses a smaller token, takes an
/// equal one (the reference's rule) and a larger one; an unfenced client
/// overwrites a larger token with a smaller one; writers racing on one key
/// (creating the tables at the same moment too) never leave a token below
/// the largest accepted; and the ledger holds one row per write, in an order
/// that replays to every decision.
#[test]
fn the_postgres_storage_fences_stale_tokens_and_keeps_a_ledger() {
    if !require_root() || !require_postgres() {
        return;
    }
    let (_server, addr) = start_server(&[]);
    let wall_zero = std::time::SystemTime::now();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let a = addr.to_string();
        let timeout = Duration::from_secs(10);

        // Concurrency first, on a fresh database: every writer creates the
        // tables on its first write, all at once.
        const WRITERS: usize = 8;
        const WRITES: usize = 25;
        let mut tasks = Vec::new();
        for w in 0..WRITERS {
            let a = a.clone();
            tasks.push(tokio::spawn(async move {
                let from = format!("w{w}");
                let mut c = PostgresStorageClient::new(&a, &from, true, timeout).unwrap();
                let mut rng = 0x5eed_0000 + w as u64;
                let mut done = Vec::new();
                for i in 0..WRITES {
                    let token = 1 + splitmix(&mut rng) % 60;
                    let data = format!("{from}-{i}");
                    let reply = c.write("c", &data, token).await;
                    done.push((from.clone(), data, token, reply));
                }
                done
            }));
        }
        let mut writes = Vec::new();
        for t in tasks {
            writes.extend(t.await.unwrap());
        }
        let mut max_accepted = 0;
        for (from, data, token, reply) in &writes {
            match reply {
                Completion::Ok(Written {
                    high_water: Some(h),
                }) => {
                    assert_eq!(h, token, "{from} {data}");
                    max_accepted = max_accepted.max(*token);
                }
                Completion::Fail(e) => {
                    assert!(e.starts_with("rejected"), "{from} {data}: {e}")
                }
                other => panic!("{from} {data} {token}: {other:?}"),
            }
        }
        assert!(
            writes.iter().any(|w| !w.3.is_ok()),
            "racing random tokens: some are refused"
        );
        let mut reader = PostgresStorageClient::new(&a, "r", true, timeout).unwrap();
        let Completion::Ok(Some(stored)) = reader.read("c").await else {
            panic!("c was written")
        };
        assert_eq!(stored.token, max_accepted, "{stored:?}");

        let ledger = reader.ledger(wall_zero).await.unwrap();
        let rows = rows_of(&ledger, "c");
        assert_eq!(rows.len(), writes.len(), "one ledger row per write");
        for (from, data, token, reply) in &writes {
            let row = rows
                .iter()
                .find(|e| &e.from == from && &e.data == data)
                .unwrap_or_else(|| panic!("no ledger row for {from} {data}"));
            assert_eq!(row.token, *token);
            let accepted = reply.is_ok();
            assert_eq!(row.decision == Decision::Accepted, accepted, "{row:?}");
        }
        // Replaying the fenced rule in ledger order reproduces every decision
        // and high water: the ledger order is the order the writes took effect.
        let mut high_water = 0;
        let mut last_time = 0;
        for e in &rows {
            let accept = e.token >= high_water;
            assert_eq!(
                e.decision == Decision::Accepted,
                accept,
                "{e:?} after {high_water}"
            );
            if accept {
                high_water = e.token;
            }
            assert_eq!(e.high_water, high_water, "{e:?}");
            assert!(e.time >= last_time, "{e:?} before {last_time}");
            last_time = e.time;
            assert_eq!(e.node, None);
        }
        assert_eq!(high_water, max_accepted);

        // Fenced, one writer.
        let mut c = PostgresStorageClient::new(&a, "w1", true, timeout).unwrap();
        let ok = |h: u64| {
            Completion::Ok(Written {
                high_water: Some(h),
            })
        };
        assert_eq!(c.write("k", "w1-0", 5).await, ok(5));
        match c.write("k", "w1-1", 4).await {
            Completion::Fail(e) => {
                assert!(e.starts_with("rejected"), "{e}");
                assert!(e.contains("high water 5"), "{e}");
            }
            other => panic!("token 4 after 5: {other:?}"),
        }
        assert_eq!(
            c.write("k", "w1-2", 5).await,
            ok(5),
            "an equal token is the same holder writing again"
        );
        assert_eq!(c.write("k", "w1-3", 6).await, ok(6));
        let value = |token: u64, data: &str, from: &str| StoredValue {
            token,
            data: data.into(),
            from: from.into(),
        };
        assert_eq!(
            c.read("k").await,
            Completion::Ok(Some(value(6, "w1-3", "w1")))
        );
        assert_eq!(c.read("absent").await, Completion::Ok(None));

        // Unfenced: a smaller token overwrites; the mark stays the largest.
        let mut u = PostgresStorageClient::new(&a, "w2", false, timeout).unwrap();
        assert_eq!(u.write("k", "w2-0", 3).await, ok(6));
        assert_eq!(
            c.read("k").await,
            Completion::Ok(Some(value(3, "w2-0", "w2")))
        );

        let before = wall_zero.elapsed().unwrap().as_nanos() as u64;
        let ledger = c.ledger(wall_zero).await.unwrap();
        let rows = rows_of(&ledger, "k");
        let seen: Vec<_> = rows
            .iter()
            .map(|e| {
                (
                    e.token,
                    e.data.as_str(),
                    e.from.as_str(),
                    e.decision,
                    e.high_water,
                )
            })
            .collect();
        use Decision::{Accepted, Rejected};
        assert_eq!(
            seen,
            [
                (5, "w1-0", "w1", Accepted, 5),
                (4, "w1-1", "w1", Rejected, 5),
                (5, "w1-2", "w1", Accepted, 5),
                (6, "w1-3", "w1", Accepted, 6),
                (3, "w2-0", "w2", Accepted, 6),
            ]
        );
        for e in &rows {
            assert!(e.time > last_time && e.time <= before, "{e:?}");
            last_time = e.time;
        }
        assert_eq!(ledger.len(), writes.len() + 5);
    });
}

/// The pids of the server's backends serving client connections (their
/// title is `postgres: leasehold postgres 127.0.0.1(port) …`).
fn client_backends(server: &Server) -> Vec<i32> {
    let postmaster = server.child.id().to_string();
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        // pid (comm) state ppid …: comm may hold spaces, so after the last ')'.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1));
        let cmdline = std::fs::read_to_string(entry.path().join("cmdline")).unwrap_or_default();
        if ppid == Some(postmaster.as_str()) && cmdline.starts_with("postgres: leasehold postgres")
        {
            pids.push(pid);
        }
    }
    pids
}

/// A paused backend: the write times out (`info`) and commits when the
/// backend resumes (it reads the whole pipeline from its socket before it
/// sees the client go), so it is in the ledger; the client reconnects. A
/// killed backend: the server restarts, the writes in between fail or are
/// `info`, and every accepted write survives (`fsync=off` keeps what reached
/// the kernel).
#[test]
fn the_postgres_storage_writes_through_a_paused_and_a_killed_backend() {
    if !require_root() || !require_postgres() {
        return;
    }
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    let (server, addr) = start_server(&[]);
    let wall_zero = std::time::SystemTime::now();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let a = addr.to_string();
        let mut c = PostgresStorageClient::new(&a, "w1", true, Duration::from_millis(500)).unwrap();
        let ok = |h: u64| {
            Completion::Ok(Written {
                high_water: Some(h),
            })
        };
        assert_eq!(c.write("k", "w1-0", 1).await, ok(1));
        let backends = client_backends(&server);
        assert_eq!(backends.len(), 1, "only c is connected: {backends:?}");
        let backend = Pid::from_raw(backends[0]);

        kill(backend, Signal::SIGSTOP).unwrap();
        let paused = c.write("k", "w1-1", 2).await;
        kill(backend, Signal::SIGCONT).unwrap();
        assert!(
            matches!(&paused, Completion::Info(e) if e.starts_with("timeout")),
            "{paused:?}"
        );
        let start = Instant::now();
        let landed = loop {
            let ledger = c.ledger(wall_zero).await.unwrap();
            if let Some(e) = ledger.iter().find(|e| e.data == "w1-1") {
                break e.clone();
            }
            assert!(start.elapsed() < Duration::from_secs(10), "{ledger:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!(landed.decision, Decision::Accepted);
        assert_eq!(c.write("k", "w1-2", 3).await, ok(3), "a new connection");

        let backends = client_backends(&server);
        assert_eq!(backends.len(), 1, "{backends:?}");
        kill(Pid::from_raw(backends[0]), Signal::SIGKILL).unwrap();
        let start = Instant::now();
        let mut i = 3;
        loop {
            let data = format!("w1-{i}");
            i += 1;
            match c.write("k", &data, 4).await {
                Completion::Ok(w) => {
                    assert_eq!(
                        w,
                        Written {
                            high_water: Some(4)
                        }
                    );
                    break;
                }
                Completion::Fail(e) => assert!(!e.starts_with("rejected"), "{e}"),
                Completion::Info(_) => {}
            }
            assert!(start.elapsed() < Duration::from_secs(30), "never back");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let ledger = c.ledger(wall_zero).await.unwrap();
        let mut tokens: Vec<_> = ledger
            .iter()
            .filter(|e| e.decision == Decision::Accepted)
            .map(|e| e.token)
            .collect();
        tokens.dedup();
        assert_eq!(tokens, [1, 2, 3, 4], "{ledger:?}");
    });
}
