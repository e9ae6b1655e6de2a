//! ZooKeeper 3.8 (Debian `zookeeper`, 3.8.0, on OpenJDK 17): one
//! `QuorumPeerMain` per lock node, 1 (standalone) or 3 (any n: an ensemble)
//! started by the run from a config leasehold writes itself ([`prepare`]);
//! the client is [`ZookeeperLockClient`], the standard lock recipe through
//! the `zookeeper-client` crate.
//!
//! - **Lock**: lock `L` is the znode `/leasehold/locks/L` (created on first
//!   use, persistent; a race to create it is harmless). Acquire creates an
//!   `EPHEMERAL_SEQUENTIAL` child `lock-<sequence>` on the client's session
//!   and lists the children: the lowest sequence holds the lock. A client
//!   that is not lowest watches its predecessor and lists again when it
//!   goes, until the request timeout; then it deletes its own child and the
//!   acquire is `fail` (busy): leasehold's acquire is a try-acquire bounded
//!   by the timeout.
//! - **Fencing token**: the `czxid` of the holder's lock node, the zxid of
//!   the transaction that created it. Zxids are ensemble-wide and grow with
//!   every write (a new leader starts a new epoch in the high 32 bits), and
//!   ZooKeeper logs them, so tokens grow with grants across restarts and
//!   leader changes.
//! - **Lease**: the session. The server deletes the holder's ephemeral node
//!   when the session ends: closed, or expired because the server heard
//!   nothing from it for the negotiated session timeout (it checks every
//!   tick, so expiry comes up to one tick late). A grant and a renew vouch
//!   for the negotiated timeout, capped by the asked TTL, counted from when
//!   the operation started (earlier than the last request the server heard:
//!   conservative). The session is kept alive by the client library's pings
//!   between operations; leasehold's renew is one round-trip through the
//!   leader (a multi-op `check` of the own node's version) proving the
//!   session is alive and the node still exists, and returns the same
//!   token. Release deletes the own node. The server clamps the session
//!   timeout a client asks for into `minSessionTimeout..maxSessionTimeout`,
//!   which [`prepare`] sets so [`ZookeeperOptions::session_timeout`] fits.
//! - **What the client learns, and when**: the library reports session state
//!   changes (disconnected, reconnected, expired, closed) in the background;
//!   the adapter timestamps each one. A renew or release after an expiry is
//!   `fail` ("lease lost: session expired, learned N ms ago"); the next
//!   acquire opens a new session. The library never decides on its own that
//!   a session expired: it learns it from the server when it reconnects, so
//!   a holder cut off from every member keeps believing it holds the lock
//!   until its renews time out.
//! - **Outcomes**: a request that was not sent (no session could be
//!   established, not connected within the timeout) or that the server
//!   rejected is `fail`; a timeout or a connection loss after a create or a
//!   delete was sent is `info`. A create whose reply was lost may have left a
//!   sequential node behind, belonging to the client's session: the adapter
//!   then drops that session (the library closes it, or, when the close
//!   cannot reach the server, it expires within the session timeout) and
//!   ZooKeeper deletes the node with it; until then the node may hold the
//!   lock on nobody's behalf, which is why the acquire is `info`, not `fail`.
//!   A renew is a check with no effect, so after a connection loss it waits
//!   for the session to reconnect and checks again within the timeout.
//! - **Reentrancy**: as with PostgreSQL, an acquire by a client whose
//!   session holds a lock drops that session (freeing the lock) and competes
//!   with a new one: never two grants on one session.
//! - **A pause of the holder** longer than the session timeout: its pings
//!   stop, the server expires its session and deletes its node, the next
//!   waiter holds the lock with a larger czxid. The resumed holder does not
//!   know yet (it learns of the expiry only on its next round-trip) and
//!   writes with its old token: only fenced storage stops it.
//! - **A pause of a lock node**: the sessions connected to it see no answers;
//!   the library gives up on the connection after 2/5 of the session timeout
//!   and moves to another member, where the session lives on (sessions are
//!   ensemble-wide). A pause of a standalone server stops its clock too:
//!   nothing expires while it is paused, and when it resumes sessions that
//!   did not reconnect in time expire. A pause of the **leader**
//!   (`target: lock-leader`, found by `srvr`'s `Mode: leader`) stops every
//!   write (grants, renews, releases) until the followers elect a new leader
//!   (`syncLimit` ticks to notice, then an election); the new leader
//!   restarts every session's timeout, so a lease outlives what its holder
//!   was told rather than ending early.
//! - **A partition**: a member cut off from the majority stops serving
//!   (`srvr`: "not currently serving requests") and closes its clients'
//!   connections; they reconnect to a member on the majority side if they
//!   can reach one, else their sessions expire there and their locks pass
//!   on while they still believe they hold them.
//! - **A kill** of a member: its clients move to another member with their
//!   sessions; a kill of a standalone server (or of a majority) stops
//!   everything until it restarts from its transaction log, which keeps the
//!   zxids, so tokens keep growing. Sessions survive a restart of the whole
//!   ensemble only if they reconnect within their timeout.
//!
//! **3.8.0 against later 3.8.x**: the release notes of 3.8.1–3.8.4 (read
//! in ZooKeeper's `releasenotes.md`) list nothing that changes sessions,
//! ephemeral nodes or sequential creates. What touches this recipe at all:
//! ZOOKEEPER-4537 (3.8.1), a race between the server's logging and commit
//! threads (not analysed further here); ZOOKEEPER-4026 (3.8.2), a create
//! inside a multi answered without its stat, which is why the token comes
//! from a plain create and never from a multi; ZOOKEEPER-4728 and -4787
//! (3.8.4), quorum connections failing to form (DNS not ready, and a
//! connection bug between members: leasehold uses IP addresses, and an
//! ensemble that does not form fails readiness rather than the run). The
//! rest are CVE-driven library upgrades (Netty, Jetty, Jackson, Snappy) and
//! SASL and admin-server fixes, neither of which [`prepare`] enables.
//! ZOOKEEPER-4785 (transactions lost by a follower restarted right after a
//! DIFF sync, which a kill-and-restart nemesis could hit) is not in those
//! notes: 3.8.0 to 3.8.4 all have it; which later release fixed it was not
//! checked.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;
use zookeeper_client as zk;

use crate::ClientError;
use crate::completion::Completion;
use crate::lock_client::{Grant, LockClient};
use crate::system::{Leader, NodeAddrs, Probe, Program, ServerRecipe};

/// ZooKeeper's client port.
pub const PORT: u16 = 2181;

/// The port followers talk to the leader on (`server.N=host:2888:…`).
pub const QUORUM_PORT: u16 = 2888;

/// The leader-election port (`server.N=host:…:3888`).
pub const ELECTION_PORT: u16 = 3888;

/// The Debian package that ships the server's jars.
pub const PACKAGE: &str = "zookeeper";

/// The program that runs the server.
pub const JAVA: &str = "java";

/// The Debian package that ships [`JAVA`].
pub const JAVA_PACKAGE: &str = "default-jre-headless";

/// What ZooKeeper's fencing token is.
pub const TOKEN: &str = "the czxid of the holder's ephemeral sequential lock node (the zxid of the transaction that created it: ensemble-wide, logged, growing across restarts and leader changes)";

/// The server's main class, for a standalone server and an ensemble alike.
pub const MAIN_CLASS: &str = "org.apache.zookeeper.server.quorum.QuorumPeerMain";

/// Where Debian puts the jars.
pub const JAR_DIR: &str = "/usr/share/java";

/// The server's classpath, in [`JAR_DIR`]: the server and its jute records,
/// what `zookeeper.jar`'s manifest names that the server uses (its
/// `jline.jar` is for `zkCli` only and Debian does not ship it), and
/// `slf4j-simple`, which logs to stderr without a config file.
pub const JARS: &[&str] = &[
    "zookeeper.jar",
    "zookeeper-jute.jar",
    "slf4j-api.jar",
    "slf4j-simple.jar",
    "commons-cli.jar",
    "commons-io.jar",
    "jackson-annotations.jar",
    "jackson-core.jar",
    "jackson-databind.jar",
    "metrics-core.jar",
    "netty-buffer.jar",
    "netty-common.jar",
    "netty-handler.jar",
    "netty-transport.jar",
    "netty-transport-native-epoll.jar",
    "snappy-java.jar",
    "jetty9-server.jar",
    "jetty9-servlet.jar",
    "jetty9-util.jar",
    "jetty9-http.jar",
    "jetty9-io.jar",
    "jetty9-security.jar",
];

/// The Debian packages of the jars beside the server's own.
const JAR_PACKAGES: &[(&str, &str)] = &[("slf4j-simple.jar", "libslf4j-java")];

/// Where the lock nodes live: `/leasehold/locks/<lock>/lock-<sequence>`.
pub const LOCKS: &str = "/leasehold/locks";

/// One member of the ensemble: where clients, followers and elections reach
/// it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Member {
    /// The client address (`clientPortAddress:clientPort`).
    pub client: SocketAddr,
    /// The quorum (follower-to-leader) address.
    pub quorum: SocketAddr,
    /// The leader-election address.
    pub election: SocketAddr,
}

impl Member {
    /// A member on `client`'s host, with the quorum and election ports at
    /// their defaults.
    pub fn on_host(client: SocketAddr) -> Member {
        Member {
            client,
            quorum: SocketAddr::new(client.ip(), QUORUM_PORT),
            election: SocketAddr::new(client.ip(), ELECTION_PORT),
        }
    }
}

/// The server settings that decide how fast the ensemble moves and how long
/// a session (a lease) outlives a silent holder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ZookeeperOptions {
    /// The session timeout clients are expected to ask for: the server's
    /// `minSessionTimeout..maxSessionTimeout` is widened to admit it.
    pub session_timeout: Duration,
    /// `tickTime`: the unit of every server timeout (sessions are checked
    /// for expiry every tick; followers give up on a silent leader after
    /// `syncLimit` ticks).
    pub tick: Duration,
}

impl Default for ZookeeperOptions {
    /// A 200 ms tick and 2 s sessions.
    fn default() -> Self {
        ZookeeperOptions {
            session_timeout: Duration::from_secs(2),
            tick: Duration::from_millis(200),
        }
    }
}

impl ZookeeperOptions {
    /// `tickTime` in whole milliseconds, at least 1.
    fn tick_ms(&self) -> u128 {
        self.tick.as_millis().max(1)
    }

    /// `minSessionTimeout` and `maxSessionTimeout`: ZooKeeper's own 2 and 20
    /// ticks, widened to admit [`Self::session_timeout`].
    pub fn session_bounds(&self) -> (u128, u128) {
        let tick = self.tick_ms();
        let asked = self.session_timeout.as_millis().max(1);
        ((2 * tick).min(asked), (20 * tick).max(asked))
    }

    /// The `zoo.cfg` of member `id` (1-based) of `members`, keeping its data
    /// in `data_dir`.
    pub fn config(&self, data_dir: &Path, id: usize, members: &[Member]) -> String {
        let me = members[id - 1];
        let (min, max) = self.session_bounds();
        let mut cfg = format!(
            "# Written by leasehold for member {id} of {n}.\n\
             tickTime={tick}\n\
             initLimit=10\n\
             syncLimit=5\n\
             dataDir={data}\n\
             clientPortAddress={host}\n\
             clientPort={port}\n\
             minSessionTimeout={min}\n\
             maxSessionTimeout={max}\n\
             admin.enableServer=false\n\
             4lw.commands.whitelist=srvr,ruok,mntr\n\
             reconfigEnabled=false\n\
             autopurge.purgeInterval=0\n\
             # The log is written but not fsynced: a killed process keeps what\n\
             # reached the OS, which is all a run on one machine needs.\n\
             forceSync=no\n\
             # Elections: give up on an absent peer after 1 s, and retry\n\
             # notifications at most every second (60 s by default).\n\
             cnxTimeout=1000\n\
             fastleader.maxNotificationInterval=1000\n",
            n = members.len(),
            tick = self.tick_ms(),
            data = data_dir.display(),
            host = me.client.ip(),
            port = me.client.port(),
        );
        if members.len() > 1 {
            cfg.push_str("standaloneEnabled=false\n");
            for (j, m) in members.iter().enumerate() {
                cfg.push_str(&format!(
                    "server.{}={}:{}:{}\n",
                    j + 1,
                    m.quorum.ip(),
                    m.quorum.port(),
                    m.election.port()
                ));
            }
        } else {
            cfg.push_str("standaloneEnabled=true\n");
        }
        cfg
    }
}

/// The classpath, `:`-joined.
pub fn classpath() -> String {
    JARS.iter()
        .map(|j| format!("{JAR_DIR}/{j}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The first jar of [`JARS`] that is not installed, with the package that
/// ships it (`"/usr/share/java/zookeeper.jar (apt-get install zookeeper)"`);
/// `None` when all are there.
pub fn jar_missing() -> Option<String> {
    needs()
        .into_iter()
        .skip(1)
        .find(|(path, _)| !path.is_file())
        .map(|(path, package)| format!("{} (apt-get install {package})", path.display()))
}

/// The files a member needs on the host, each with the Debian package that
/// installs it: [`JAVA`] on `PATH`, then every jar of [`JARS`].
pub fn needs() -> Vec<(PathBuf, &'static str)> {
    let jars = JARS.iter().map(|j| {
        let package = JAR_PACKAGES
            .iter()
            .find(|(jar, _)| jar == j)
            .map_or(PACKAGE, |(_, p)| p);
        (PathBuf::from(JAR_DIR).join(j), package)
    });
    std::iter::once((PathBuf::from(JAVA), JAVA_PACKAGE))
        .chain(jars)
        .collect()
}

/// Its recipe: `leasehold node zookeeper`, which writes the member's config
/// ([`prepare`]) into its data folder and becomes `java` with it, told its
/// id (1-based) and every member's client, quorum and election address
/// (`node.cluster` holds the quorum and election addresses of each member in
/// turn; without them each member's own host at [`QUORUM_PORT`] and
/// [`ELECTION_PORT`]).
pub fn recipe(i: usize, node: &NodeAddrs) -> ServerRecipe {
    let mut args: Vec<String> = vec![
        "zookeeper".into(),
        "--id".into(),
        (i + 1).to_string(),
        "--data-dir".into(),
        node.data_dir.clone(),
    ];
    for (j, &client) in node.peers.iter().enumerate() {
        let default = Member::on_host(client);
        let quorum = node.cluster.get(2 * j).copied().unwrap_or(default.quorum);
        let election = node
            .cluster
            .get(2 * j + 1)
            .copied()
            .unwrap_or(default.election);
        args.extend(["--member".into(), format!("{client},{quorum},{election}")]);
    }
    ServerRecipe {
        program: Program::Leasehold,
        args,
        env: Vec::new(),
        port: node.addr.port(),
        probe: Probe::ZookeeperServing,
        leader: Leader::ZookeeperMode,
        events_on_stdout: false,
    }
}

/// A `--member` of [`recipe`]: `client,quorum,election`.
pub fn parse_member(s: &str) -> Result<Member, String> {
    let addrs: Vec<&str> = s.split(',').collect();
    let [client, quorum, election] = addrs[..] else {
        return Err(format!("{s:?} is not client,quorum,election"));
    };
    let parse = |a: &str| {
        a.parse::<SocketAddr>()
            .map_err(|e| format!("{a:?} in {s:?}: {e}"))
    };
    Ok(Member {
        client: parse(client)?,
        quorum: parse(quorum)?,
        election: parse(election)?,
    })
}

/// Prepares member `id` (1-based) of `members` in `data_dir` (created if
/// absent): writes `zoo.cfg`, and `myid` when there is more than one
/// member, and returns the arguments to run [`JAVA`] with: a small heap and
/// the serial collector (a 2-core machine runs several servers), C1 only
/// and class-data sharing for a fast start, no JMX, logs to stderr
/// (`slf4j-simple`), then [`MAIN_CLASS`] and the config. Nothing is read
/// from or written to `/etc/zookeeper` or `/var/log`.
pub fn prepare(
    data_dir: &Path,
    id: usize,
    members: &[Member],
    options: &ZookeeperOptions,
) -> std::io::Result<Vec<String>> {
    if id == 0 || id > members.len() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("member {id} of {}", members.len()),
        ));
    }
    std::fs::create_dir_all(data_dir)?;
    let cfg = data_dir.join("zoo.cfg");
    std::fs::write(&cfg, options.config(data_dir, id, members))?;
    if members.len() > 1 {
        std::fs::write(data_dir.join("myid"), format!("{id}\n"))?;
    }
    let mut args: Vec<String> = [
        "-Xms32m",
        "-Xmx256m",
        "-XX:+UseSerialGC",
        "-XX:TieredStopAtLevel=1",
        "-Xshare:auto",
        "-XX:-UsePerfData",
        "-Djava.net.preferIPv4Stack=true",
        "-Djava.awt.headless=true",
        "-Dzookeeper.jmx.log4j.disable=true",
        "-Dorg.slf4j.simpleLogger.logFile=System.err",
        "-Dorg.slf4j.simpleLogger.defaultLogLevel=info",
        "-Dorg.slf4j.simpleLogger.showDateTime=true",
        "-Dorg.slf4j.simpleLogger.dateTimeFormat=yyyy-MM-dd'T'HH:mm:ss.SSS",
    ]
    .map(str::to_owned)
    .to_vec();
    args.push(format!("-Dzookeeper.log.dir={}", data_dir.display()));
    args.push("-cp".to_owned());
    args.push(classpath());
    args.push(MAIN_CLASS.to_owned());
    args.push(cfg.display().to_string());
    Ok(args)
}

/// Sends the four-letter word `word` to `addr` and reads the reply to its
/// end, all within `timeout`.
pub async fn four_letter(
    addr: SocketAddr,
    word: &str,
    timeout: Duration,
) -> Result<String, String> {
    let ask = async {
        let mut s = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| format!("cannot connect: {e}"))?;
        s.write_all(word.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut reply = String::new();
        s.read_to_string(&mut reply)
            .await
            .map_err(|e| e.to_string())?;
        Ok::<_, String>(reply)
    };
    tokio::time::timeout(timeout, ask)
        .await
        .map_err(|_| format!("{word} at {addr} timed out"))?
        .map_err(|e| format!("{word} at {addr}: {e}"))
}

/// The `Mode:` of a `srvr` reply (`leader`, `follower`, `standalone`).
fn mode(srvr: &str) -> Option<&str> {
    srvr.lines()
        .find_map(|l| l.strip_prefix("Mode:"))
        .map(str::trim)
}

/// Whether the member at `addr` serves clients: `srvr` answers with a
/// `Mode:` line (a member without a quorum says "This ZooKeeper instance is
/// not currently serving requests").
pub async fn ready(addr: SocketAddr, timeout: Duration) -> bool {
    four_letter(addr, "srvr", timeout)
        .await
        .is_ok_and(|r| mode(&r).is_some())
}

/// The server's version from `srvr` (`3.8.0`, without the build details).
pub async fn server_version(addr: SocketAddr, timeout: Duration) -> Result<String, String> {
    let reply = four_letter(addr, "srvr", timeout).await?;
    reply
        .lines()
        .find_map(|l| l.strip_prefix("Zookeeper version:"))
        .and_then(|v| v.split(['-', ',']).next())
        .map(|v| v.trim().to_owned())
        .ok_or_else(|| format!("srvr at {addr} has no version: {:?}", reply.trim()))
}

/// Which member leads: the first whose `srvr` says `Mode: leader`, or
/// `Mode: standalone` (a lone server is its own leader, as a 1-member etcd
/// cluster is); `None` when none does (an election is under way, or no
/// member answers within `timeout`).
pub async fn leader(addrs: &[SocketAddr], timeout: Duration) -> Option<usize> {
    for (i, &addr) in addrs.iter().enumerate() {
        if let Ok(reply) = four_letter(addr, "srvr", timeout).await
            && matches!(mode(&reply), Some("leader" | "standalone"))
        {
            return Some(i);
        }
    }
    None
}

/// The last session state the library reported, and when the adapter
/// learned it.
#[derive(Clone, Copy, Debug)]
struct Learned {
    state: zk::SessionState,
    at: Instant,
}

/// A session of the client's own, and what it holds.
struct Session {
    zk: zk::Client,
    learned: Arc<Mutex<Learned>>,
    watcher: tokio::task::JoinHandle<()>,
    held: Option<Held>,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.watcher.abort();
    }
}

/// The lock node a session holds.
#[derive(Clone, Debug)]
struct Held {
    lock: String,
    path: String,
    token: u64,
    version: i32,
}

impl Session {
    fn learned(&self) -> Learned {
        *self.learned.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Notes a state the adapter learned from a reply, if the watcher has
    /// not reported it yet.
    fn note(&self, state: zk::SessionState) {
        let mut l = self.learned.lock().unwrap_or_else(|e| e.into_inner());
        if l.state != state && !terminal(l.state) {
            *l = Learned {
                state,
                at: Instant::now(),
            };
        }
    }

    /// Why the session is over, if it is: `session expired, learned 12 ms
    /// ago`.
    fn ended(&self) -> Option<String> {
        let l = self.learned();
        terminal(l.state).then(|| describe(l))
    }

    /// Waits until the session is connected, within `deadline`; the reason
    /// when it ended or did not reconnect in time.
    async fn connected(&self, deadline: Instant) -> Result<(), Stop> {
        let mut watcher = self.zk.state_watcher();
        loop {
            let l = self.learned();
            let state = self.zk.state();
            if terminal(state) || terminal(l.state) {
                self.note(state);
                return Err(Stop::Ended(describe(self.learned())));
            }
            if state == zk::SessionState::SyncConnected {
                return Ok(());
            }
            if tokio::time::timeout_at(deadline, watcher.changed())
                .await
                .is_err()
            {
                return Err(Stop::Timeout(format!(
                    "timeout: not connected ({})",
                    describe(self.learned())
                )));
            }
        }
    }
}

/// Why an operation could not go on.
enum Stop {
    /// The session expired or was closed.
    Ended(String),
    /// Not connected within the deadline.
    Timeout(String),
}

fn terminal(state: zk::SessionState) -> bool {
    matches!(
        state,
        zk::SessionState::Expired | zk::SessionState::Closed | zk::SessionState::AuthFailed
    )
}

/// `session expired, learned 12 ms ago`.
fn describe(l: Learned) -> String {
    let what = match l.state {
        zk::SessionState::Expired => "session expired",
        zk::SessionState::Closed => "session closed",
        zk::SessionState::AuthFailed => "session failed authentication",
        zk::SessionState::Disconnected => "disconnected",
        zk::SessionState::ConnectedReadOnly => "connected read-only",
        zk::SessionState::SyncConnected => "connected",
    };
    format!("{what}, learned {} ms ago", l.at.elapsed().as_millis())
}

/// The sequence number of a child `lock-0000000012` (`None` for another
/// name).
fn sequence(child: &str) -> Option<i64> {
    child.strip_prefix("lock-")?.parse().ok()
}

/// A client of a ZooKeeper ensemble, acting as `client`, with one session of
/// its own at a time (opened when first needed).
pub struct ZookeeperLockClient {
    cluster: String,
    client: String,
    timeout: Duration,
    session_timeout: Duration,
    session: Option<Session>,
    parents: HashSet<String>,
}

impl std::fmt::Debug for ZookeeperLockClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZookeeperLockClient")
            .field("cluster", &self.cluster)
            .field("client", &self.client)
            .field("timeout", &self.timeout)
            .field("session_timeout", &self.session_timeout)
            .field("connected", &self.session.is_some())
            .finish()
    }
}

impl ZookeeperLockClient {
    /// `addrs` are `host:port` of every member; `client` the name it is
    /// known by (its lock nodes' data); `timeout` bounds each operation;
    /// `session_timeout` is what it asks the server for. Nothing is
    /// connected yet.
    pub fn new(
        addrs: &[String],
        client: &str,
        timeout: Duration,
        session_timeout: Duration,
    ) -> Result<Self, ClientError> {
        if addrs.is_empty() {
            return Err(ClientError::BadAddress {
                addr: String::new(),
                reason: "no ZooKeeper member".into(),
            });
        }
        for a in addrs {
            a.parse::<SocketAddr>()
                .map_err(|e| ClientError::BadAddress {
                    addr: a.clone(),
                    reason: e.to_string(),
                })?;
        }
        Ok(ZookeeperLockClient {
            cluster: addrs.join(","),
            client: client.to_owned(),
            timeout,
            session_timeout,
            session: None,
            parents: HashSet::new(),
        })
    }

    /// The negotiated session timeout of the open session, if one is open.
    pub fn session_timeout(&self) -> Option<Duration> {
        self.session.as_ref().map(|s| s.zk.session_timeout())
    }

    /// The open session's id, if one is open (for tests and logs).
    pub fn session_id(&self) -> Option<i64> {
        self.session.as_ref().map(|s| s.zk.session_id().0)
    }

    /// The path of the lock node this client holds, if it holds one.
    pub fn held_path(&self) -> Option<&str> {
        self.session
            .as_ref()
            .and_then(|s| s.held.as_ref())
            .map(|h| h.path.as_str())
    }

    /// Drops the session: the library closes it (deleting its nodes), or it
    /// expires.
    fn drop_session(&mut self) {
        self.session = None;
    }

    /// A session that holds nothing: the open one, or a new one.
    async fn open(&mut self, deadline: Instant) -> Result<&mut Session, String> {
        if self
            .session
            .as_ref()
            .is_some_and(|s| s.held.is_some() || s.ended().is_some())
        {
            // A fresh session holds no lock: reentrancy never grants twice.
            self.drop_session();
        }
        if self.session.is_none() {
            let connect = zk::Client::connector()
                .with_session_timeout(self.session_timeout)
                .with_fail_eagerly()
                .connect(&self.cluster);
            let zk = match tokio::time::timeout_at(deadline, connect).await {
                Ok(Ok(zk)) => zk,
                Ok(Err(e)) => return Err(e.to_string()),
                Err(_) => return Err("timeout".into()),
            };
            let learned = Arc::new(Mutex::new(Learned {
                state: zk.state(),
                at: Instant::now(),
            }));
            let mut states = zk.state_watcher();
            let shared = Arc::clone(&learned);
            let watcher = tokio::spawn(async move {
                loop {
                    let state = states.changed().await;
                    let mut l = shared.lock().unwrap_or_else(|e| e.into_inner());
                    if !terminal(l.state) {
                        *l = Learned {
                            state,
                            at: Instant::now(),
                        };
                    }
                    if terminal(state) {
                        return;
                    }
                }
            });
            self.session = Some(Session {
                zk,
                learned,
                watcher,
                held: None,
            });
        }
        Ok(self.session.as_mut().expect("opened above"))
    }

    /// The lease of a grant or renew: the negotiated session timeout, capped
    /// by `ttl`.
    fn lease_ms(negotiated: Duration, ttl: Duration) -> u64 {
        let lease = if ttl.is_zero() {
            negotiated
        } else {
            negotiated.min(ttl)
        };
        u64::try_from(lease.as_millis()).unwrap_or(u64::MAX).max(1)
    }

    /// The session holding `token` of `lock`, or why there is none.
    fn holding(&self, lock: &str, token: u64) -> Result<&Session, String> {
        match &self.session {
            Some(s)
                if s.held
                    .as_ref()
                    .is_some_and(|h| h.lock == lock && h.token == token) =>
            {
                Ok(s)
            }
            _ => Err("not held".into()),
        }
    }

    /// Creates `/leasehold/locks/<lock>` and its ancestors, once per client.
    async fn parent(&mut self, lock: &str, deadline: Instant) -> Result<String, String> {
        let dir = format!("{LOCKS}/{lock}");
        if self.parents.contains(&dir) {
            return Ok(dir);
        }
        let session = self.session.as_ref().expect("opened");
        let options = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
        match tokio::time::timeout_at(deadline, session.zk.mkdir(&dir, &options)).await {
            Ok(Ok(())) => {
                self.parents.insert(dir.clone());
                Ok(dir)
            }
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("timeout".into()),
        }
    }

    /// Waits until the own node `mine` in `dir` is the lowest, within
    /// `deadline`: `Ok(true)` when it is, `Ok(false)` at the deadline, `Err`
    /// when the session broke (the node's fate is then unknown to the
    /// caller).
    async fn wait_lowest(
        session: &Session,
        dir: &str,
        mine: &str,
        deadline: Instant,
    ) -> Result<bool, String> {
        let my_seq = sequence(mine).ok_or_else(|| format!("bad lock node name {mine:?}"))?;
        loop {
            let list = session.zk.list_children(dir);
            let children = match tokio::time::timeout_at(deadline, list).await {
                Ok(Ok(c)) => c,
                Ok(Err(e)) => return Err(format!("list {dir}: {e}")),
                Err(_) => return Ok(false),
            };
            let mut seqs: Vec<(i64, String)> = children
                .into_iter()
                .filter_map(|c| sequence(&c).map(|s| (s, c)))
                .collect();
            seqs.sort();
            if !seqs.iter().any(|(s, _)| *s == my_seq) {
                return Err(format!("own lock node {dir}/{mine} is gone"));
            }
            let Some((_, predecessor)) = seqs.iter().rev().find(|(s, _)| *s < my_seq) else {
                return Ok(true);
            };
            let path = format!("{dir}/{predecessor}");
            let watch = session.zk.check_and_watch_stat(&path);
            let watcher = match tokio::time::timeout_at(deadline, watch).await {
                Ok(Ok((Some(_), w))) => w,
                // Gone already: list again.
                Ok(Ok((None, _))) => continue,
                Ok(Err(e)) => return Err(format!("watch {path}: {e}")),
                Err(_) => return Ok(false),
            };
            if tokio::time::timeout_at(deadline, watcher.changed())
                .await
                .is_err()
            {
                return Ok(false);
            }
            // Deleted, or a session event: list again (a broken session
            // fails the listing).
        }
    }
}

/// Whether an error is the session's end.
fn ended_by(e: &zk::Error) -> Option<zk::SessionState> {
    match e {
        zk::Error::SessionExpired => Some(zk::SessionState::Expired),
        zk::Error::ClientClosed => Some(zk::SessionState::Closed),
        zk::Error::AuthFailed => Some(zk::SessionState::AuthFailed),
        _ => None,
    }
}

impl LockClient for ZookeeperLockClient {
    fn service(&self) -> &'static str {
        "zookeeper"
    }

    async fn acquire(&mut self, lock: &str, ttl: Duration) -> Completion<Grant> {
        let deadline = Instant::now() + self.timeout;
        if let Err(e) = self.open(deadline).await {
            self.drop_session();
            return Completion::Fail(format!("cannot connect: {e}"));
        }
        if let Err(stop) = self
            .session
            .as_ref()
            .expect("opened")
            .connected(deadline)
            .await
        {
            self.drop_session();
            let (Stop::Ended(e) | Stop::Timeout(e)) = stop;
            return Completion::Fail(format!("cannot connect: {e}"));
        }
        let dir = match self.parent(lock, deadline).await {
            Ok(d) => d,
            // A persistent parent node is no part of the lock.
            Err(e) => return Completion::Fail(format!("cannot create {LOCKS}/{lock}: {e}")),
        };
        let session = self.session.as_mut().expect("opened");
        let prefix = format!("{dir}/lock-");
        let options = zk::CreateMode::EphemeralSequential.with_acls(zk::Acls::anyone_all());
        let create = session.zk.create(&prefix, self.client.as_bytes(), &options);
        let (stat, seq) = match tokio::time::timeout_at(deadline, create).await {
            Ok(Ok(created)) => created,
            Ok(Err(e)) if e == zk::Error::NoNode => {
                self.parents.remove(&dir);
                return Completion::Fail(format!("cannot create {prefix}: {e}"));
            }
            Ok(Err(e)) if ended_by(&e).is_some() => {
                session.note(ended_by(&e).expect("matched"));
                self.drop_session();
                return Completion::Fail(format!("cannot create {prefix}: {e}"));
            }
            Ok(Err(e)) => {
                self.drop_session();
                return Completion::Info(format!(
                    "create {prefix}: {e}; its session is closed, which deletes a node it may have created"
                ));
            }
            Err(_) => {
                self.drop_session();
                return Completion::Info(format!(
                    "create {prefix}: timeout; its session is closed, which deletes a node it may have created"
                ));
            }
        };
        let mine = format!("lock-{seq}");
        let path = format!("{dir}/{mine}");
        match Self::wait_lowest(session, &dir, &mine, deadline).await {
            Ok(true) => {
                let token = stat.czxid as u64;
                let negotiated = session.zk.session_timeout();
                session.held = Some(Held {
                    lock: lock.to_owned(),
                    path,
                    token,
                    version: stat.version,
                });
                Completion::Ok(Grant {
                    token,
                    lease_ms: Self::lease_ms(negotiated, ttl),
                })
            }
            Ok(false) => {
                // Busy until the deadline: take the own node back.
                let delete = session.zk.delete(&path, None);
                match tokio::time::timeout(self.timeout, delete).await {
                    Ok(Ok(())) | Ok(Err(zk::Error::NoNode)) => Completion::Fail("busy".into()),
                    Ok(Err(e)) => {
                        self.drop_session();
                        Completion::Info(format!(
                            "busy, and the delete of {path} failed: {e}; its session is closed"
                        ))
                    }
                    Err(_) => {
                        self.drop_session();
                        Completion::Info(format!(
                            "busy, and the delete of {path} timed out; its session is closed"
                        ))
                    }
                }
            }
            Err(e) => {
                let ended = session.ended();
                self.drop_session();
                match ended {
                    // The session ended: ZooKeeper deleted the node with it.
                    Some(why) => Completion::Fail(format!("{e} ({why})")),
                    None => Completion::Info(format!(
                        "{e}; its session is closed, which deletes {path}"
                    )),
                }
            }
        }
    }

    async fn renew(&mut self, lock: &str, token: u64, ttl: Duration) -> Completion<Grant> {
        let deadline = Instant::now() + self.timeout;
        let session = match self.holding(lock, token) {
            Ok(s) => s,
            Err(e) => return Completion::Fail(e),
        };
        if let Some(why) = session.ended() {
            self.drop_session();
            return Completion::Fail(format!("lease lost: {why}"));
        }
        let held = session.held.clone().expect("holding");
        loop {
            match session.connected(deadline).await {
                Ok(()) => {}
                Err(Stop::Ended(why)) => {
                    self.drop_session();
                    return Completion::Fail(format!("lease lost: {why}"));
                }
                Err(Stop::Timeout(e)) => return Completion::Info(e),
            }
            // A check through the leader: the session is alive and the node
            // still there. It has no effect, so it may be sent again.
            let mut check = session.zk.new_multi_writer();
            if let Err(e) = check.add_check_version(&held.path, held.version) {
                return Completion::Fail(format!("cannot check {}: {e}", held.path));
            }
            let reply = tokio::time::timeout_at(deadline, check.commit()).await;
            let e = match reply {
                Ok(Ok(_)) => {
                    return Completion::Ok(Grant {
                        token,
                        lease_ms: Self::lease_ms(session.zk.session_timeout(), ttl),
                    });
                }
                Ok(Err(e)) => zk::Error::from(e),
                Err(_) => return Completion::Info("timeout".into()),
            };
            if let Some(state) = ended_by(&e) {
                session.note(state);
                let why = describe(session.learned());
                self.drop_session();
                return Completion::Fail(format!("lease lost: {why}"));
            }
            match e {
                zk::Error::NoNode | zk::Error::BadVersion => {
                    let path = held.path.clone();
                    if let Some(s) = self.session.as_mut() {
                        s.held = None;
                    }
                    return Completion::Fail(format!("lease lost: the lock node {path} is gone"));
                }
                zk::Error::ConnectionLoss => continue,
                other => return Completion::Info(format!("check {}: {other}", held.path)),
            }
        }
    }

    async fn release(&mut self, lock: &str, token: u64) -> Completion<()> {
        let deadline = Instant::now() + self.timeout;
        let session = match self.holding(lock, token) {
            Ok(s) => s,
            Err(e) => return Completion::Fail(e),
        };
        if let Some(why) = session.ended() {
            self.drop_session();
            return Completion::Fail(format!("not held: lease lost: {why}"));
        }
        let held = session.held.clone().expect("holding");
        match session.connected(deadline).await {
            Ok(()) => {}
            Err(Stop::Ended(why)) => {
                self.drop_session();
                return Completion::Fail(format!("not held: lease lost: {why}"));
            }
            Err(Stop::Timeout(e)) => {
                // Nothing was sent; dropping the session frees the lock.
                self.drop_session();
                return Completion::Fail(format!("{e}; its session is closed"));
            }
        }
        let delete = session.zk.delete(&held.path, None);
        match tokio::time::timeout_at(deadline, delete).await {
            Ok(Ok(())) => {
                if let Some(s) = self.session.as_mut() {
                    s.held = None;
                }
                Completion::Ok(())
            }
            Ok(Err(zk::Error::NoNode)) => {
                if let Some(s) = self.session.as_mut() {
                    s.held = None;
                }
                Completion::Fail(format!("not held: the lock node {} is gone", held.path))
            }
            Ok(Err(e)) if ended_by(&e).is_some() => {
                session.note(ended_by(&e).expect("matched"));
                let why = describe(session.learned());
                self.drop_session();
                Completion::Fail(format!("not held: lease lost: {why}"))
            }
            Ok(Err(e)) => {
                self.drop_session();
                Completion::Info(format!("delete {}: {e}; its session is closed", held.path))
            }
            Err(_) => {
                self.drop_session();
                Completion::Info(format!(
                    "delete {}: timeout; its session is closed",
                    held.path
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(n: usize) -> Vec<Member> {
        (0..n)
            .map(|i| Member::on_host(format!("10.77.0.{}:2181", 11 + i).parse().unwrap()))
            .collect()
    }

    #[test]
    fn one_member_is_standalone_and_three_name_every_server() {
        let o = ZookeeperOptions::default();
        let one = o.config(Path::new("/runs/r1/nodes/lock1"), 1, &members(1));
        assert!(one.contains("tickTime=200\n"), "{one}");
        assert!(one.contains("dataDir=/runs/r1/nodes/lock1\n"));
        assert!(one.contains("clientPortAddress=10.77.0.11\nclientPort=2181\n"));
        assert!(one.contains("standaloneEnabled=true\n"));
        assert!(one.contains("admin.enableServer=false\n"));
        assert!(one.contains("4lw.commands.whitelist=srvr,ruok,mntr\n"));
        assert!(!one.contains("server.1="));
        let three = o.config(Path::new("/data"), 2, &members(3));
        assert!(three.contains("clientPortAddress=10.77.0.12\n"));
        assert!(three.contains("server.1=10.77.0.11:2888:3888\n"));
        assert!(three.contains("server.3=10.77.0.13:2888:3888\n"));
        assert!(three.contains("standaloneEnabled=false\n"));
    }

    #[test]
    fn session_bounds_admit_the_asked_timeout() {
        let o = ZookeeperOptions::default();
        assert_eq!(o.session_bounds(), (400, 4000));
        let short = ZookeeperOptions {
            session_timeout: Duration::from_millis(300),
            ..o
        };
        assert_eq!(short.session_bounds(), (300, 4000));
        let long = ZookeeperOptions {
            session_timeout: Duration::from_secs(10),
            ..o
        };
        assert_eq!(long.session_bounds(), (400, 10_000));
    }

    #[test]
    fn srvr_gives_mode_and_version() {
        let srvr = "Zookeeper version: 3.8.0-debian--1, built on 2023-01-01 00:00 UTC\n\
                    Latency min/avg/max: 0/0.0/0\nMode: follower\nNode count: 5\n";
        assert_eq!(mode(srvr), Some("follower"));
        assert_eq!(
            mode("This ZooKeeper instance is not currently serving requests\n"),
            None
        );
        assert_eq!(sequence("lock-0000000012"), Some(12));
        assert_eq!(sequence("other"), None);
        assert_eq!(
            ZookeeperLockClient::lease_ms(Duration::from_secs(2), Duration::from_secs(5)),
            2000
        );
        assert_eq!(
            ZookeeperLockClient::lease_ms(Duration::from_secs(2), Duration::from_millis(500)),
            500
        );
    }

    #[test]
    fn addresses_are_checked() {
        let t = Duration::from_secs(1);
        assert!(ZookeeperLockClient::new(&["127.0.0.1:2181".into()], "w1", t, t).is_ok());
        assert!(ZookeeperLockClient::new(&["nowhere".into()], "w1", t, t).is_err());
        assert!(ZookeeperLockClient::new(&[], "w1", t, t).is_err());
    }
}
