//! The ZooKeeper adapter against real ZooKeeper 3.8 servers (Debian
//! `zookeeper` on `java`), prepared by `system::zookeeper::prepare` on free
//! loopback ports with their own config and data folders, and killed when a
//! test ends, however it ends.
//!
//! Without `java` on `PATH` or the server's jars the tests are skipped,
//! unless `CI=true`: then they fail.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use leasehold_workloads::system::zookeeper::{
    self, JAVA, JAVA_PACKAGE, Member, ZookeeperLockClient, ZookeeperOptions,
};
use leasehold_workloads::{Completion, Grant, LockClient};

/// A running ensemble; dropping it kills its members and removes their data.
struct Ensemble {
    members: Vec<Member>,
    children: Vec<Option<Child>>,
    dir: PathBuf,
    /// From the first `java` start to the last member's readiness.
    ready_after: Duration,
}

impl Drop for Ensemble {
    fn drop(&mut self) {
        for child in self.children.iter_mut().flatten() {
            // A paused member must be resumed to die of SIGKILL promptly.
            signal(child, "CONT");
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Sends `SIG<name>` to `child`.
fn signal(child: &Child, name: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(child.id().to_string())
        .status();
}

impl Ensemble {
    /// Starts an `n`-member ensemble and waits until every member serves;
    /// `None` (test skipped) when there is no java or ZooKeeper and this is
    /// not CI.
    async fn start(n: usize, options: ZookeeperOptions) -> Option<Ensemble> {
        let java = java_program()?;
        static STARTED: AtomicUsize = AtomicUsize::new(0);
        let run = format!(
            "leasehold-zk-test-{}-{}",
            std::process::id(),
            STARTED.fetch_add(1, Ordering::Relaxed)
        );
        let dir = std::env::temp_dir().join(&run);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the test's folder");
        let addrs = free_addrs(3 * n);
        let members: Vec<Member> = (0..n)
            .map(|i| Member {
                client: addrs[3 * i],
                quorum: addrs[3 * i + 1],
                election: addrs[3 * i + 2],
            })
            .collect();
        let mut ensemble = Ensemble {
            members,
            children: Vec::new(),
            dir,
            ready_after: Duration::ZERO,
        };
        let started = Instant::now();
        for i in 0..n {
            let data = ensemble.dir.join(format!("lock{}", i + 1));
            let args = zookeeper::prepare(&data, i + 1, &ensemble.members, &options)
                .expect("prepare the member");
            let log = std::fs::File::create(ensemble.log_path(i)).unwrap();
            let child = Command::new(&java)
                .args(args)
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("start java");
            ensemble.children.push(Some(child));
        }
        ensemble.wait_ready(Duration::from_secs(30)).await;
        ensemble.ready_after = started.elapsed();
        eprintln!(
            "{n}-member ensemble ready {} ms after java started",
            ensemble.ready_after.as_millis()
        );
        Some(ensemble)
    }

    fn log_path(&self, i: usize) -> PathBuf {
        self.dir.join(format!("lock{}.log", i + 1))
    }

    /// The members' client addresses, `host:port`.
    fn endpoints(&self) -> Vec<String> {
        self.members.iter().map(|m| m.client.to_string()).collect()
    }

    fn clients(&self) -> Vec<SocketAddr> {
        self.members.iter().map(|m| m.client).collect()
    }

    /// Waits until every member serves.
    async fn wait_ready(&mut self, limit: Duration) {
        let deadline = Instant::now() + limit;
        for i in 0..self.members.len() {
            loop {
                if let Some(status) = self.children[i].as_mut().unwrap().try_wait().unwrap() {
                    panic!("lock{} exited ({status}):\n{}", i + 1, self.log(i));
                }
                if zookeeper::ready(self.members[i].client, Duration::from_millis(500)).await {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "lock{} not ready in {limit:?}:\n{}",
                    i + 1,
                    self.log(i)
                );
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        }
    }

    /// The end of member `i`'s log, for failure messages.
    fn log(&self, i: usize) -> String {
        let text = std::fs::read_to_string(self.log_path(i)).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// Kills member `i` (SIGKILL) and waits for it to be gone.
    fn kill(&mut self, i: usize) {
        let mut child = self.children[i].take().expect("member is running");
        child.kill().unwrap();
        child.wait().unwrap();
    }
}

/// `java` on `PATH` with the server's jars installed; without them, `None`
/// (skip) or, under CI, a failure.
fn java_program() -> Option<PathBuf> {
    let java = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(JAVA))
            .find(|p| p.is_file())
    });
    let missing = match (&java, zookeeper::jar_missing()) {
        (None, _) => Some(format!(
            "no `{JAVA}` on PATH (apt-get install {JAVA_PACKAGE})"
        )),
        (Some(_), Some(jar)) => Some(format!("no {jar}")),
        (Some(_), None) => None,
    };
    if let Some(missing) = missing {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{missing}; CI=true, so this fails"
        );
        eprintln!("skipped: {missing}");
        return None;
    }
    java
}

/// `n` distinct free loopback addresses.
fn free_addrs(n: usize) -> Vec<SocketAddr> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    listeners.iter().map(|l| l.local_addr().unwrap()).collect()
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

fn client(endpoints: &[String], name: &str, timeout_ms: u64) -> ZookeeperLockClient {
    ZookeeperLockClient::new(
        endpoints,
        name,
        Duration::from_millis(timeout_ms),
        Duration::from_secs(2),
    )
    .unwrap()
}

/// A plain session of the test's own, to look at and tamper with the lock
/// nodes.
async fn raw(endpoint: &str) -> zookeeper_client::Client {
    zookeeper_client::Client::connector()
        .with_session_timeout(Duration::from_secs(4))
        .connect(endpoint)
        .await
        .expect("raw session")
}

async fn children(zk: &zookeeper_client::Client, lock: &str) -> Vec<String> {
    zk.list_children(&format!("{}/{lock}", zookeeper::LOCKS))
        .await
        .unwrap_or_default()
}

#[test]
fn the_jars_are_named_and_a_bad_member_id_is_refused() {
    assert!(zookeeper::classpath().starts_with("/usr/share/java/zookeeper.jar:"));
    let dir = std::env::temp_dir().join(format!("leasehold-zk-prepare-{}", std::process::id()));
    let members = [Member::on_host("127.0.0.1:2181".parse().unwrap())];
    assert!(zookeeper::prepare(&dir, 0, &members, &ZookeeperOptions::default()).is_err());
    assert!(zookeeper::prepare(&dir, 2, &members, &ZookeeperOptions::default()).is_err());
    let args = zookeeper::prepare(&dir, 1, &members, &ZookeeperOptions::default()).unwrap();
    assert_eq!(
        args.last().unwrap(),
        &dir.join("zoo.cfg").display().to_string()
    );
    assert!(dir.join("zoo.cfg").is_file());
    assert!(
        !dir.join("myid").exists(),
        "a standalone server has no myid"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn one_server_acquire_busy_renew_release_and_tokens_grow() {
    let Some(ensemble) = Ensemble::start(1, ZookeeperOptions::default()).await else {
        return;
    };
    let addr = ensemble.members[0].client;
    let version = zookeeper::server_version(addr, Duration::from_secs(2))
        .await
        .expect("version");
    assert!(version.starts_with("3.8."), "{version}");
    assert_eq!(
        zookeeper::leader(&ensemble.clients(), Duration::from_secs(1)).await,
        Some(0),
        "a standalone server is its own leader"
    );
    let endpoints = ensemble.endpoints();
    let look = raw(&endpoints[0]).await;

    let ttl = Duration::from_secs(5);
    let mut a = client(&endpoints, "a", 2000);
    let mut b = client(&endpoints, "b", 1000);
    assert_eq!(a.service(), "zookeeper");

    let first = ok("a acquires", a.acquire("L", ttl).await);
    assert!(first.token > 0);
    assert_eq!(a.session_timeout(), Some(Duration::from_secs(2)));
    assert_eq!(first.lease_ms, 2000, "the negotiated session timeout");

    // b waits until its timeout, then takes its node back: busy.
    let started = Instant::now();
    let e = fail("b's acquire while a holds", b.acquire("L", ttl).await);
    assert_eq!(e, "busy");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
    assert_eq!(children(&look, "L").await.len(), 1, "b's node is gone");

    let renewed = ok("a renews", a.renew("L", first.token, ttl).await);
    assert_eq!(renewed, first);
    let short = ok(
        "a renews asking less",
        a.renew("L", first.token, Duration::from_millis(500)).await,
    );
    assert_eq!(short.lease_ms, 500, "capped by the asked TTL");
    fail(
        "renew of a token a never got",
        a.renew("L", first.token + 100, ttl).await,
    );
    fail(
        "renew under another lock",
        a.renew("M", first.token, ttl).await,
    );
    fail("b renews a's token", b.renew("L", first.token, ttl).await);
    fail("b releases a's token", b.release("L", first.token).await);

    ok("a releases", a.release("L", first.token).await);
    assert!(children(&look, "L").await.is_empty());
    let e = fail("a releases twice", a.release("L", first.token).await);
    assert!(e.contains("not held"), "{e}");

    let second = ok("b acquires after a released", b.acquire("L", ttl).await);
    assert!(second.token > first.token, "{second:?} after {first:?}");

    // A waiter gets the lock when the holder lets go during its wait.
    let mut c = client(&endpoints, "c", 4000);
    let (waiting, released) = tokio::join!(c.acquire("L", ttl), async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        b.release("L", second.token).await
    });
    ok("b releases", released);
    let third = ok("c acquires once b released", waiting);
    assert!(third.token > second.token);

    // Reentrancy: c acquires again while it holds; its old session goes
    // (and its lock with it), the new one is granted with a larger token.
    let old_session = c.session_id();
    let again = ok("c acquires again", c.acquire("L", ttl).await);
    assert!(again.token > third.token);
    assert_ne!(c.session_id(), old_session);
    fail(
        "c renews its old token",
        c.renew("L", third.token, ttl).await,
    );
    assert_eq!(children(&look, "L").await.len(), 1);

    // Another lock name is independent of L.
    let other = ok("a acquires M", a.acquire("M", ttl).await);
    assert!(other.token > again.token);
    ok("a releases M", a.release("M", other.token).await);
    ok("c releases", c.release("L", again.token).await);
}

#[tokio::test]
async fn a_lost_lock_node_is_lease_lost_and_passes_the_lock_on() {
    let Some(ensemble) = Ensemble::start(1, ZookeeperOptions::default()).await else {
        return;
    };
    let endpoints = ensemble.endpoints();
    let look = raw(&endpoints[0]).await;
    let mut a = client(&endpoints, "a", 2000);
    let mut b = client(&endpoints, "b", 2000);
    let ttl = Duration::from_secs(5);

    let first = ok("a acquires", a.acquire("L", ttl).await);
    // What the server does when a's session expires: delete its node.
    let path = a.held_path().expect("a holds").to_owned();
    look.delete(&path, None).await.expect("delete a's node");
    let e = fail("a renews", a.renew("L", first.token, ttl).await);
    assert!(e.starts_with("lease lost: the lock node"), "{e}");
    fail("a releases", a.release("L", first.token).await);
    let second = ok("b acquires", b.acquire("L", ttl).await);
    assert!(second.token > first.token);

    // A closed session: the client learns it and says when.
    drop(look);
    let third = ok("a acquires again", a.acquire("M", ttl).await);
    ok("a releases M", a.release("M", third.token).await);
    ok("b releases", b.release("L", second.token).await);
}

#[tokio::test]
async fn three_members_one_leader_locks_through_any_member_and_failover() {
    let Some(mut ensemble) = Ensemble::start(3, ZookeeperOptions::default()).await else {
        return;
    };
    assert!(
        ensemble.ready_after < Duration::from_secs(10),
        "{:?}",
        ensemble.ready_after
    );
    let addrs = ensemble.clients();
    let endpoints = ensemble.endpoints();
    let leader = zookeeper::leader(&addrs, Duration::from_secs(1))
        .await
        .expect("a leader");
    let mut modes = Vec::new();
    for &addr in &addrs {
        let version = zookeeper::server_version(addr, Duration::from_secs(2))
            .await
            .expect("version");
        assert!(version.starts_with("3.8."), "{version}");
        let srvr = zookeeper::four_letter(addr, "srvr", Duration::from_secs(2))
            .await
            .unwrap();
        modes.push(srvr.contains("Mode: leader"));
    }
    assert_eq!(modes.iter().filter(|&&m| m).count(), 1, "{modes:?}");
    assert!(modes[leader]);

    let mut last = 0;
    for (i, endpoint) in endpoints.iter().enumerate() {
        let mut c = client(std::slice::from_ref(endpoint), &format!("w{i}"), 2000);
        let g = ok(
            "acquire through one member",
            c.acquire("L", Duration::from_secs(5)).await,
        );
        assert!(g.token > last, "{g:?} after {last}");
        last = g.token;
        ok("renew", c.renew("L", g.token, Duration::ZERO).await);
        ok("release", c.release("L", g.token).await);
    }

    // Kill the leader: the others elect a new one, and the lock works.
    ensemble.kill(leader);
    let others: Vec<SocketAddr> = (0..3).filter(|&i| i != leader).map(|i| addrs[i]).collect();
    let deadline = Instant::now() + Duration::from_secs(15);
    while zookeeper::leader(&others, Duration::from_millis(500))
        .await
        .is_none()
    {
        assert!(Instant::now() < deadline, "no new leader in 15 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut order = vec![endpoints[leader].clone()];
    order.extend(others.iter().map(ToString::to_string));
    let mut c = client(&order, "after", 5000);
    let g = ok(
        "acquire after failover",
        c.acquire("L", Duration::from_secs(5)).await,
    );
    assert!(g.token > last, "a new epoch's zxids are larger");
    ok("release", c.release("L", g.token).await);

    // Only the dead member: no session, certainly nothing happened.
    let mut dead = client(&order[..1], "dead", 1000);
    let e = fail(
        "acquire on the dead member alone",
        dead.acquire("L", Duration::from_secs(5)).await,
    );
    assert!(e.contains("cannot connect"), "{e}");
}

/// A real expiry: the holder's only member (a follower) is paused; the
/// leader hears nothing of the holder's session, expires it and deletes its
/// node, and a client of another member gets the lock with a larger token.
/// Resumed, the member tells the holder its session expired.
#[tokio::test]
async fn a_paused_followers_session_expires_and_the_holder_learns_it() {
    let Some(ensemble) = Ensemble::start(3, ZookeeperOptions::default()).await else {
        return;
    };
    let addrs = ensemble.clients();
    let endpoints = ensemble.endpoints();
    let leader = zookeeper::leader(&addrs, Duration::from_secs(1))
        .await
        .expect("a leader");
    let follower = (leader + 1) % 3;
    let other = (leader + 2) % 3;
    let ttl = Duration::from_secs(5);

    let mut holder = client(&endpoints[follower..=follower], "holder", 3000);
    let first = ok("the holder acquires", holder.acquire("L", ttl).await);
    assert_eq!(first.lease_ms, 2000);

    let paused = ensemble.children[follower].as_ref().unwrap();
    signal(paused, "STOP");
    let mut next = client(&endpoints[other..=other], "next", 8000);
    let started = Instant::now();
    let second = ok("the next client acquires", next.acquire("L", ttl).await);
    let waited = started.elapsed();
    signal(paused, "CONT");
    assert!(second.token > first.token, "{second:?} after {first:?}");
    assert!(waited >= Duration::from_millis(1500), "{waited:?}");

    // The resumed member rejoins; the holder reconnects and learns of the
    // expiry (renews that find it still disconnected are unknown).
    let deadline = Instant::now() + Duration::from_secs(30);
    let e = loop {
        match holder.renew("L", first.token, ttl).await {
            Completion::Fail(e) => break e,
            Completion::Info(e) => {
                assert!(Instant::now() < deadline, "never learned: {e}");
            }
            Completion::Ok(g) => panic!("the expired holder renewed: {g:?}"),
        }
    };
    eprintln!("the resumed holder: {e}");
    assert!(
        e.starts_with("lease lost: session expired, learned "),
        "{e}"
    );
    let e = fail(
        "the holder renews again",
        holder.renew("L", first.token, ttl).await,
    );
    assert!(e.contains("not held") || e.contains("lease lost"), "{e}");

    // A new acquire opens a new session; it waits for the current holder.
    let (waiting, released) = tokio::join!(holder.acquire("L", ttl), async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        next.release("L", second.token).await
    });
    ok("next releases", released);
    let Grant { token, .. } = ok("the old holder acquires anew", waiting);
    assert!(token > second.token);
}
