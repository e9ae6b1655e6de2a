//! The etcd adapter against real etcd 3.4 servers (Debian `etcd-server`),
//! started from the recipe on free loopback ports with their own data
//! directories, and killed when a test ends, however it ends.
//!
//! Without an `etcd` binary on `PATH` the tests are skipped, unless `CI=true`:
//! then they fail.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use leasehold_workloads::{
    Completion, ETCD_PROGRAM, ETCD_READY_PATH, EtcdLockClient, EtcdMember, Grant, LockClient,
    etcd_leader, etcd_ready, etcd_server_args, etcd_server_env, etcd_server_version,
};
use serde_json::{Value, json};

/// A running etcd cluster; dropping it kills its members and removes their
/// data.
struct Cluster {
    members: Vec<EtcdMember>,
    children: Vec<Option<Child>>,
    dir: PathBuf,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for child in self.children.iter_mut().flatten() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Cluster {
    /// Starts an `n`-member cluster and waits until every member is healthy;
    /// `None` (test skipped) when there is no etcd and this is not CI.
    async fn start(n: usize) -> Option<Cluster> {
        let program = etcd_program()?;
        static STARTED: AtomicUsize = AtomicUsize::new(0);
        let run = format!(
            "leasehold-etcd-test-{}-{}",
            std::process::id(),
            STARTED.fetch_add(1, Ordering::Relaxed)
        );
        let dir = std::env::temp_dir().join(&run);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the test's folder");
        let addrs = free_addrs(2 * n);
        let members: Vec<EtcdMember> = (0..n)
            .map(|i| EtcdMember {
                name: format!("lock{}", i + 1),
                client: addrs[2 * i],
                peer: addrs[2 * i + 1],
            })
            .collect();
        let mut cluster = Cluster {
            members,
            children: Vec::new(),
            dir,
        };
        for i in 0..n {
            let name = &cluster.members[i].name;
            let data = cluster.dir.join(name);
            let log = std::fs::File::create(cluster.dir.join(format!("{name}.log"))).unwrap();
            let child = Command::new(&program)
                .args(etcd_server_args(i, &cluster.members, &data, &run))
                .envs(etcd_server_env())
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("start etcd");
            cluster.children.push(Some(child));
        }
        cluster.wait_ready(Duration::from_secs(30)).await;
        Some(cluster)
    }

    /// The members' client addresses, `host:port`.
    fn endpoints(&self) -> Vec<String> {
        self.members.iter().map(|m| m.client.to_string()).collect()
    }

    /// Waits until every live member answers the readiness probe.
    async fn wait_ready(&mut self, limit: Duration) {
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        let deadline = Instant::now() + limit;
        for (i, member) in self.members.iter().enumerate() {
            loop {
                if let Some(status) = self.children[i].as_mut().unwrap().try_wait().unwrap() {
                    panic!("{} exited ({status}):\n{}", member.name, self.log(i));
                }
                let url = format!("http://{}{ETCD_READY_PATH}", member.client);
                let reply = http
                    .get(&url)
                    .timeout(Duration::from_millis(500))
                    .send()
                    .await;
                if let Ok(reply) = reply
                    && reply.status() == reqwest::StatusCode::OK
                    && etcd_ready(&reply.bytes().await.unwrap_or_default())
                {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "{} not ready in {limit:?}:\n{}",
                    member.name,
                    self.log(i)
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }

    /// Kills member `i` (SIGKILL) and waits for it to be gone.
    fn kill(&mut self, i: usize) {
        let mut child = self.children[i].take().expect("member is running");
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// The end of member `i`'s log, for failure messages.
    fn log(&self, i: usize) -> String {
        let path = self.dir.join(format!("{}.log", self.members[i].name));
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

/// The etcd binary on `PATH`; without one, `None` (skip) or, under CI, a
/// failure.
fn etcd_program() -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(ETCD_PROGRAM))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "no `{ETCD_PROGRAM}` on PATH (apt-get install etcd-server); CI=true, so this fails"
        );
        eprintln!("skipped: no `{ETCD_PROGRAM}` on PATH (apt-get install etcd-server)");
    }
    found
}

/// `n` distinct free loopback addresses.
fn free_addrs(n: usize) -> Vec<SocketAddr> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    listeners.iter().map(|l| l.local_addr().unwrap()).collect()
}

/// How many leases the cluster has (`POST /v3/lease/leases`).
async fn lease_count(endpoint: &str) -> usize {
    let reply: Value = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .post(format!("http://{endpoint}/v3/lease/leases"))
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    reply
        .get("leases")
        .and_then(Value::as_array)
        .map_or(0, Vec::len)
}

fn ok<T: std::fmt::Debug>(what: &str, c: Completion<T>) -> T {
    match c {
        Completion::Ok(t) => t,
        other => panic!("{what}: expected ok, got {other:?}"),
    }
}

fn fail<T: std::fmt::Debug>(what: &str, c: Completion<T>) -> String {
    match c {
        Completion::Fail(e) => e,
        other => panic!("{what}: expected fail, got {other:?}"),
    }
}

#[tokio::test]
async fn one_member_lock_blocks_times_out_and_passes_on() {
    let Some(cluster) = Cluster::start(1).await else {
        return;
    };
    let endpoints = cluster.endpoints();
    let version = etcd_server_version(&endpoints[0], Duration::from_secs(2))
        .await
        .expect("version");
    assert!(version.starts_with("3.4."), "{version}");

    let ttl = Duration::from_secs(5);
    let mut a = EtcdLockClient::new(&endpoints, Duration::from_secs(2)).unwrap();
    let mut b = EtcdLockClient::new(&endpoints, Duration::from_secs(1)).unwrap();
    assert_eq!(a.service(), "etcd");

    let first = ok("a acquires", a.acquire("L", ttl).await);
    assert!(first.token > 0);
    assert_eq!(first.lease_ms, 5000);
    assert_eq!(lease_count(&endpoints[0]).await, 1);

    // b waits for the lock until its timeout: unknown, and its lease is gone.
    let started = Instant::now();
    match b.acquire("L", ttl).await {
        Completion::Info(e) => assert!(e.contains("revoked"), "{e}"),
        other => panic!("b's acquire while a holds: expected info, got {other:?}"),
    }
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
    assert_eq!(lease_count(&endpoints[0]).await, 1, "b's lease was revoked");

    // A renew restarts the granted TTL, whatever it asks for.
    let renewed = ok("a renews", a.renew("L", first.token, ttl).await);
    assert_eq!(renewed, first);
    fail(
        "renew of a token a never got",
        a.renew("L", first.token + 100, ttl).await,
    );
    fail(
        "renew under another lock name",
        a.renew("M", first.token, ttl).await,
    );
    fail("b renews a's token", b.renew("L", first.token, ttl).await);

    ok("a releases", a.release("L", first.token).await);
    assert_eq!(lease_count(&endpoints[0]).await, 0);
    fail("a releases twice", a.release("L", first.token).await);

    let second = ok("b acquires after a released", b.acquire("L", ttl).await);
    assert!(second.token > first.token, "{second:?} after {first:?}");

    // Another lock name is independent of L.
    let other = ok("a acquires M", a.acquire("M", ttl).await);
    assert!(other.token > second.token);
    ok("a releases M", a.release("M", other.token).await);
    ok("b releases", b.release("L", second.token).await);
    assert_eq!(lease_count(&endpoints[0]).await, 0);
}

#[tokio::test]
async fn an_expired_lease_passes_the_lock_on_and_cannot_be_renewed() {
    let Some(cluster) = Cluster::start(1).await else {
        return;
    };
    let endpoints = cluster.endpoints();
    let client = |timeout| EtcdLockClient::new(&endpoints, Duration::from_secs(timeout)).unwrap();
    let (mut a, mut b, mut c, mut d) = (client(2), client(8), client(8), client(8));

    // 300 ms is asked for as 1 s.
    let first = ok(
        "a acquires",
        a.acquire("L", Duration::from_millis(300)).await,
    );
    assert_eq!(first.lease_ms, 1000);

    // a stops renewing (a pause): b gets the lock once a's lease runs out.
    let started = Instant::now();
    let second = ok(
        "b acquires after a's lease expired",
        b.acquire("L", Duration::from_secs(4)).await,
    );
    let waited = started.elapsed();
    assert!(second.token > first.token, "{second:?} after {first:?}");
    assert!(waited >= Duration::from_millis(800), "{waited:?}");

    // The zombie finds out only when it tries to renew.
    let e = fail(
        "a renews after its lease expired",
        a.renew("L", first.token, Duration::from_secs(1)).await,
    );
    assert!(e.contains("lease lost"), "{e}");
    fail("a releases what it lost", a.release("L", first.token).await);

    // Nothing keeps c's 1 s lease alive while it waits 2.5 s for b's release.
    let (waiting, released) = tokio::join!(c.acquire("L", Duration::from_secs(1)), async {
        tokio::time::sleep(Duration::from_millis(2500)).await;
        b.release("L", second.token).await
    });
    ok("b releases", released);
    let e = fail("c's acquire outlived by its lease", waiting);
    assert!(e.contains("lease expired"), "{e}");
    assert_eq!(lease_count(&endpoints[0]).await, 0);

    // d lets its lease run out; its release then finds nothing to release.
    let third = ok("d acquires", d.acquire("L", Duration::from_secs(1)).await);
    assert!(third.token > second.token, "{third:?} after {second:?}");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let e = fail(
        "d releases after its lease expired",
        d.release("L", third.token).await,
    );
    assert!(e.contains("lease lost"), "{e}");

    let fourth = ok("c acquires", c.acquire("L", Duration::from_secs(2)).await);
    assert!(fourth.token > third.token, "{fourth:?} after {third:?}");
    let Grant { lease_ms, .. } = ok("c renews", c.renew("L", fourth.token, Duration::ZERO).await);
    assert_eq!(lease_ms, 2000);
    ok("c releases", c.release("L", fourth.token).await);
}
#[tokio::test]
async fn three_members_leader_and_failover() {
    let Some(mut cluster) = Cluster::start(3).await else {
        return;
    };
    let endpoints = cluster.endpoints();
    let mut client = EtcdLockClient::new(&endpoints, Duration::from_secs(2)).unwrap();
    let first = ok(
        "acquire on 3 members",
        client.acquire("L", Duration::from_secs(5)).await,
    );
    ok("release", client.release("L", first.token).await);

    let leader = wait_for_leader(&endpoints, None).await;
    for endpoint in &endpoints {
        let version = etcd_server_version(endpoint, Duration::from_secs(2)).await;
        let version = version.expect("version");
        assert!(version.starts_with("3.4."), "{version}");
    }

    cluster.kill(leader);
    let new_leader = wait_for_leader(&endpoints, Some(leader)).await;
    assert_ne!(new_leader, leader);

    // The dead member first: its refusal moves the request on to the next.
    let mut order = vec![endpoints[leader].clone()];
    order.extend(
        (0..3)
            .filter(|&i| i != leader)
            .map(|i| endpoints[i].clone()),
    );
    let mut failover = EtcdLockClient::new(&order, Duration::from_secs(3)).unwrap();
    let second = ok(
        "acquire with the dead member first",
        failover.acquire("L", Duration::from_secs(5)).await,
    );
    assert!(second.token > first.token);
    ok(
        "renew",
        failover.renew("L", second.token, Duration::ZERO).await,
    );
    ok("release", failover.release("L", second.token).await);

    // Only the dead member: certainly nothing happened.
    let mut dead = EtcdLockClient::new(&order[..1], Duration::from_secs(1)).unwrap();
    let e = fail(
        "acquire on the dead member alone",
        dead.acquire("L", Duration::from_secs(5)).await,
    );
    assert!(e.contains("cannot connect"), "{e}");
}

/// Polls [`etcd_leader`] until it names a member other than `not`, within 10 s.
async fn wait_for_leader(endpoints: &[String], not: Option<usize>) -> usize {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(i) = etcd_leader(endpoints, Duration::from_millis(500)).await
            && Some(i) != not
        {
            assert!(i < endpoints.len());
            return i;
        }
        assert!(Instant::now() < deadline, "no new leader in 10 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// etcd-txn storage against a real member: the holder's write is applied;
/// after the holder let its lease go, the same writer (which remembers the
/// lock key of its token from its first write) sends the transaction and
/// etcd's compare refuses it; a writer that never saw the key refuses without
/// sending; unfenced, the zombie's write is put anyway. Reads give the last
/// applied value.
#[tokio::test]
async fn etcd_txn_storage_applies_the_holders_write_and_refuses_a_zombies() {
    use leasehold_workloads::storage::etcd_txn::EtcdTxnStorageClient;

    let Some(cluster) = Cluster::start(1).await else {
        return;
    };
    let endpoints = cluster.endpoints();
    let timeout = Duration::from_secs(2);
    let mut lock = EtcdLockClient::new(&endpoints, timeout).unwrap();
    let store = |fencing| EtcdTxnStorageClient::new(&endpoints, "L", "w1", fencing, timeout);
    let (mut holder, mut stranger, mut unfenced) = (
        store(true).unwrap(),
        store(true).unwrap(),
        store(false).unwrap(),
    );

    let first = ok("acquire", lock.acquire("L", Duration::from_secs(5)).await);
    ok(
        "the holder writes",
        holder.write("k0", "w1-0", first.token).await,
    );
    ok("release", lock.release("L", first.token).await);
    let second = ok(
        "acquire again",
        lock.acquire("L", Duration::from_secs(5)).await,
    );

    let e = fail(
        "the zombie's write, sent",
        holder.write("k0", "w1-1", first.token).await,
    );
    assert!(
        e.starts_with("rejected by the transaction's compare: the lock key of token")
            && e.ends_with(&format!("high water {}", second.token)),
        "{e}"
    );
    let e = fail(
        "the zombie's write, not sent",
        stranger.write("k0", "w1-2", first.token).await,
    );
    assert!(e.starts_with("rejected before sending: "), "{e}");
    let read = ok("read", holder.read("k0").await).expect("k0 was written");
    assert_eq!((read.data.as_str(), read.token), ("w1-0", first.token));

    ok(
        "unfenced, the zombie's write is put",
        unfenced.write("k0", "w1-3", first.token).await,
    );
    let read = ok("read", unfenced.read("k0").await).expect("k0 was written");
    assert_eq!((read.data.as_str(), read.token), ("w1-3", first.token));
    ok(
        "the current holder writes",
        holder.write("k0", "w1-4", second.token).await,
    );
    ok("release", lock.release("L", second.token).await);
}
