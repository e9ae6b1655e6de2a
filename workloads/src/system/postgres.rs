//! PostgreSQL 15 (Debian `postgresql`) advisory locks, over `tokio-postgres`:
//! the server recipe ([`recipe`]), the client ([`PostgresLockClient`]) and the
//! server settings that decide the lease ([`PostgresOptions`]).
//!
//! - **Server**: one cluster of the run's own per lock node, never the
//!   system's and never a system service: `leasehold node postgres` runs
//!   `initdb` into the node's data folder (once; a restarted node keeps its
//!   cluster), then `postgres -D <data>/pg -k <data>/pg -p <port>` with the
//!   [settings](PostgresOptions::settings), and forwards a stop as a fast
//!   shutdown. PostgreSQL refuses to run as root: as root, both run as
//!   [`USER`]; the socket and every file are in the node's data folder. One
//!   server holds the locks, so a run has one PostgreSQL lock node.
//!
//! - **Lock**: session-level `pg_try_advisory_lock(key)` on a connection
//!   dedicated to the holder; `key` is [`lock_key`], the FNV-1a 64-bit hash
//!   of the lock's name (stable across builds and machines, unlike std's
//!   hasher).
//! - **Fencing token**: `nextval('leasehold_fence')`, taken after the lock is
//!   held; the client creates the sequence if it is absent. Sequences are
//!   WAL-logged ahead, so a restarted server only ever jumps forward.
//! - **Lease**: the session itself. The server keeps the lock until the
//!   session ends, and it ends a session on its own only by
//!   `idle_session_timeout` (no statement for that long), TCP keepalive
//!   (`tcp_keepalives_idle` + `tcp_keepalives_interval` ×
//!   `tcp_keepalives_count` without an answer) or `tcp_user_timeout` (sent
//!   data unacknowledged for that long). A grant and a renew therefore vouch
//!   for the shortest of those that is set ([`PostgresOptions`], read back
//!   from the server), capped by the asked TTL.
//! - **A pause of the holder**: its kernel still answers keepalives and
//!   acknowledges data, so keepalive and `tcp_user_timeout` never end its
//!   session: with PostgreSQL's defaults a paused holder keeps the lock for
//!   as long as it is paused. Only `idle_session_timeout` frees it; then the
//!   next client holds the lock with a larger token and the resumed holder
//!   writes with its old one: only fenced storage stops it.
//! - **A pause of the lock node**: requests time out (`info`); sessions
//!   survive it, so no lock changes hands while it is paused.
//! - **A partition**: the holder's renews time out (`info`); its session, and
//!   the lock, end only when keepalive or `tcp_user_timeout` gives up on it.
//! - **A kill of the server**: every session dies with it, so every lock is
//!   free the moment the server is back, while the holders' leases (what the
//!   last grant or renew vouched for) run on: the restarted server grants the
//!   lock to another client inside a lease, and mutual exclusion breaks. The
//!   sequence survives (it is WAL-logged 32 values ahead), so the new token is
//!   larger: fenced storage still rejects the old holder.
//!
//! Renew is a round-trip on the holder's session; release is
//! `pg_advisory_unlock`. A timeout drops the session (closing it is what
//! frees a lock the client may hold); no operation is retried.

use std::net::SocketAddr;
use std::time::Duration;

use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, Config, NoTls};

use crate::ClientError;
use crate::completion::Completion;
use crate::lock_client::{Grant, LockClient};
use crate::system::{Leader, NodeAddrs, Probe, Program, ServerRecipe};

/// PostgreSQL's own port.
pub const PORT: u16 = 5432;

/// The Debian package that ships `initdb` and `postgres`.
pub const PACKAGE: &str = "postgresql";

/// Where Debian's `postgresql` (15) puts `initdb` and `postgres`: not on `PATH`.
pub const BIN_DIR: &str = "/usr/lib/postgresql/15/bin";

/// The unprivileged user the server runs as when leasehold runs as root
/// (PostgreSQL refuses root); Debian's package creates it.
pub const USER: &str = "postgres";

/// The database role every client connects as (`initdb --username`).
pub const ROLE: &str = "leasehold";

/// What PostgreSQL's fencing token is.
pub const TOKEN: &str = "nextval of the sequence leasehold_fence, taken after pg_try_advisory_lock succeeds (WAL-logged: a restart only moves it forward)";

/// The sequence the tokens come from.
pub const SEQUENCE: &str = "leasehold_fence";

/// The server settings that decide how long a lock outlives a silent holder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PostgresOptions {
    /// Where `initdb` and `postgres` are.
    pub bin_dir: String,
    /// The user the server runs as when leasehold runs as root.
    pub user: String,
    /// `idle_session_timeout`: ends a session idle this long (frees the lock
    /// of a paused holder).
    pub idle_session_timeout: Option<Duration>,
    /// `tcp_keepalives_idle`.
    pub tcp_keepalives_idle: Option<Duration>,
    /// `tcp_keepalives_interval`.
    pub tcp_keepalives_interval: Option<Duration>,
    /// `tcp_keepalives_count`.
    pub tcp_keepalives_count: Option<u32>,
    /// `tcp_user_timeout`.
    pub tcp_user_timeout: Option<Duration>,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        PostgresOptions {
            bin_dir: BIN_DIR.to_owned(),
            user: USER.to_owned(),
            idle_session_timeout: None,
            tcp_keepalives_idle: None,
            tcp_keepalives_interval: None,
            tcp_keepalives_count: None,
            tcp_user_timeout: None,
        }
    }
}

impl PostgresOptions {
    /// The server's `name=value` settings for a node listening on `host`:
    /// `fsync` off (a test cluster thrown away after the run; a kill still
    /// keeps what reached the OS), dynamic shared memory in files of the data
    /// folder (not `/dev/shm`, where a killed server would leave them), small
    /// shared buffers (a quick start), then those the config sets.
    pub fn settings(&self, host: &str) -> Vec<String> {
        let ms = |d: Duration| format!("{}ms", d.as_millis());
        let mut s = vec![format!("listen_addresses={host}")];
        s.extend(FIXED_SETTINGS.iter().map(|s| (*s).to_owned()));
        let durations = [
            ("idle_session_timeout", self.idle_session_timeout),
            ("tcp_keepalives_idle", self.tcp_keepalives_idle),
            ("tcp_keepalives_interval", self.tcp_keepalives_interval),
            ("tcp_user_timeout", self.tcp_user_timeout),
        ];
        for (name, d) in durations {
            if let Some(d) = d {
                s.push(format!("{name}={}", ms(d)));
            }
        }
        if let Some(n) = self.tcp_keepalives_count {
            s.push(format!("tcp_keepalives_count={n}"));
        }
        s
    }
}

/// The settings every node of leasehold's gets (see
/// [`PostgresOptions::settings`]).
const FIXED_SETTINGS: [&str; 3] = [
    "fsync=off",
    "dynamic_shared_memory_type=mmap",
    "shared_buffers=16MB",
];

/// The files a node needs on the host, each with the Debian package that
/// installs it: `initdb` and `postgres` in the options' `bin_dir`.
pub fn needs(options: &PostgresOptions) -> Vec<(std::path::PathBuf, &'static str)> {
    ["initdb", "postgres"]
        .iter()
        .map(|b| (std::path::Path::new(&options.bin_dir).join(b), PACKAGE))
        .collect()
}

/// Its recipe: `leasehold node postgres` (see the module documentation),
/// told where to listen, its data folder, where the binaries are, the user to
/// run them as, and each setting.
pub fn recipe(node: &NodeAddrs, options: &PostgresOptions) -> ServerRecipe {
    let mut args: Vec<String> = vec![
        "postgres".into(),
        "--listen".into(),
        node.addr.to_string(),
        "--data-dir".into(),
        node.data_dir.clone(),
        "--bin-dir".into(),
        options.bin_dir.clone(),
        "--user".into(),
        options.user.clone(),
    ];
    for s in options.settings(&node.addr.ip().to_string()) {
        args.extend(["--set".to_owned(), s]);
    }
    ServerRecipe {
        program: Program::Leasehold,
        args,
        env: Vec::new(),
        port: node.addr.port(),
        probe: Probe::PostgresQuery,
        leader: Leader::None,
        events_on_stdout: false,
    }
}

/// The advisory lock key of lock `lock`: FNV-1a 64 of its UTF-8 name, as
/// PostgreSQL's `bigint`.
pub fn lock_key(lock: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in lock.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h as i64
}

/// The client configuration for the server at `addr`.
fn config(addr: SocketAddr, timeout: Duration) -> Config {
    let mut c = Config::new();
    c.host(addr.ip().to_string())
        .port(addr.port())
        .user(ROLE)
        .dbname("postgres")
        .connect_timeout(timeout);
    c
}

/// Connects as [`ROLE`], and drives the connection in a task of its own.
pub async fn connect(addr: SocketAddr, timeout: Duration) -> Result<Client, String> {
    let cfg = config(addr, timeout);
    let (client, connection) = tokio::time::timeout(timeout, cfg.connect(NoTls))
        .await
        .map_err(|_| "timeout".to_owned())?
        .map_err(|e| error_text(&e))?;
    tokio::spawn(connection);
    Ok(client)
}

/// Runs a `CREATE … IF NOT EXISTS`. Two sessions running it at the same moment
/// can still fail with a duplicate error (the catalog's unique index catches the
/// second): then the object exists, which is all that was asked.
pub async fn create_if_absent(pg: &Client, sql: &str) -> Result<(), String> {
    match pg.batch_execute(sql).await {
        Err(e) if !e.code().is_some_and(raced_create) => Err(error_text(&e)),
        _ => Ok(()),
    }
}

/// Creates the token sequence if no client has yet.
pub async fn create_sequence(pg: &Client) -> Result<(), String> {
    create_if_absent(pg, &format!("CREATE SEQUENCE IF NOT EXISTS {SEQUENCE}")).await
}

/// The errors a `CREATE … IF NOT EXISTS` raises when it lost that race.
fn raced_create(code: &SqlState) -> bool {
    *code == SqlState::UNIQUE_VIOLATION
        || *code == SqlState::DUPLICATE_TABLE
        || *code == SqlState::DUPLICATE_OBJECT
}

/// The whole text of an error: tokio-postgres's own `Display` of a server
/// error is only "db error", which names nothing.
pub fn error_text(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{e}: {db}"),
        None => match std::error::Error::source(e) {
            Some(cause) => format!("{e}: {cause}"),
            None => e.to_string(),
        },
    }
}

/// Whether a server at `addr` answers `SELECT 1` (it accepts connections
/// before it is ready: a TCP probe is not enough).
pub async fn ready(addr: SocketAddr, timeout: Duration) -> bool {
    match connect(addr, timeout).await {
        Ok(c) => c.simple_query("SELECT 1").await.is_ok(),
        Err(_) => false,
    }
}

/// `SHOW server_version`, its first word (`15.14`).
pub async fn server_version(addr: SocketAddr, timeout: Duration) -> Result<String, String> {
    let ask = async {
        let c = connect(addr, timeout).await?;
        let row = c
            .query_one("SHOW server_version", &[])
            .await
            .map_err(|e| error_text(&e))?;
        let v: String = row.get(0);
        Ok::<_, String>(v.split_whitespace().next().unwrap_or_default().to_owned())
    };
    tokio::time::timeout(timeout, ask)
        .await
        .map_err(|_| format!("SHOW server_version at {addr} timed out"))?
        .map_err(|e| format!("SHOW server_version at {addr}: {e}"))
}

/// The shortest time after a round-trip in which the server may end an idle
/// session, from its settings (`pg_settings` units: ms for the timeouts, s
/// for keepalive idle and interval); `None` when none is set.
fn session_bound(settings: &[(String, i64)]) -> Option<Duration> {
    let get = |n: &str| {
        settings
            .iter()
            .find(|(k, _)| k == n)
            .map_or(0, |(_, v)| (*v).max(0) as u64)
    };
    let idle = get("idle_session_timeout");
    let user = get("tcp_user_timeout");
    let keepalive = (get("tcp_keepalives_idle")
        + get("tcp_keepalives_interval") * get("tcp_keepalives_count"))
        * 1000;
    [idle, user, keepalive]
        .into_iter()
        .filter(|&ms| ms > 0)
        .min()
        .map(Duration::from_millis)
}

/// The holder's session: its connection, and what it holds.
struct Session {
    pg: Client,
    bound: Option<Duration>,
    held: Option<(String, u64)>,
}

/// A client of one PostgreSQL server, with one session of its own.
pub struct PostgresLockClient {
    addr: SocketAddr,
    timeout: Duration,
    session: Option<Session>,
}

impl std::fmt::Debug for PostgresLockClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresLockClient")
            .field("addr", &self.addr)
            .field("timeout", &self.timeout)
            .field("connected", &self.session.is_some())
            .finish()
    }
}

impl PostgresLockClient {
    /// `addr` is `host:port` of the server; `timeout` bounds each operation
    /// from connect to reply.
    pub fn new(addr: &str, timeout: Duration) -> Result<Self, ClientError> {
        let addr = addr
            .parse()
            .map_err(|e: std::net::AddrParseError| ClientError::BadAddress {
                addr: addr.to_owned(),
                reason: e.to_string(),
            })?;
        Ok(PostgresLockClient {
            addr,
            timeout,
            session: None,
        })
    }

    /// A session that holds nothing: the open one, or a new one with the
    /// sequence in place and the server's session bound read.
    async fn open(&mut self) -> Result<&mut Session, String> {
        if self
            .session
            .as_ref()
            .is_some_and(|s| s.held.is_some() || s.pg.is_closed())
        {
            // A fresh session holds no lock: reentrancy never grants twice.
            self.session = None;
        }
        if self.session.is_none() {
            let pg = connect(self.addr, self.timeout).await?;
            create_sequence(&pg).await?;
            let rows = pg
                .query(
                    "SELECT name, setting::bigint FROM pg_settings WHERE name IN \
                     ('idle_session_timeout', 'tcp_user_timeout', 'tcp_keepalives_idle', \
                      'tcp_keepalives_interval', 'tcp_keepalives_count')",
                    &[],
                )
                .await
                .map_err(|e| error_text(&e))?;
            let settings: Vec<(String, i64)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
            self.session = Some(Session {
                pg,
                bound: session_bound(&settings),
                held: None,
            });
        }
        Ok(self.session.as_mut().expect("opened above"))
    }

    fn lease_ms(bound: Option<Duration>, ttl: Duration) -> u64 {
        let lease = bound.map_or(ttl, |b| b.min(ttl));
        u64::try_from(lease.as_millis()).unwrap_or(u64::MAX).max(1)
    }

    /// The session holding `token` of `lock`, if it is still open.
    fn holding(&mut self, lock: &str, token: u64) -> Result<&mut Session, &'static str> {
        match &mut self.session {
            Some(s)
                if s.held
                    .as_ref()
                    .is_some_and(|(l, t)| l == lock && *t == token) =>
            {
                if s.pg.is_closed() {
                    self.session = None;
                    Err("lease lost: the session ended")
                } else {
                    Ok(self.session.as_mut().expect("matched above"))
                }
            }
            _ => Err("not held"),
        }
    }
}

/// A failed statement: the session is gone (and its locks with it) when the
/// connection closed; a server error changed nothing.
fn failed(e: &tokio_postgres::Error) -> (bool, String) {
    (e.is_closed() || e.code().is_none(), error_text(e))
}

impl LockClient for PostgresLockClient {
    fn service(&self) -> &'static str {
        "postgres"
    }

    async fn acquire(&mut self, lock: &str, ttl: Duration) -> Completion<Grant> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        let timeout = self.timeout;
        let opened = tokio::time::timeout(timeout, self.open()).await;
        let session = match opened {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                self.session = None;
                return Completion::Fail(format!("cannot connect: {e}"));
            }
            Err(_) => {
                self.session = None;
                return Completion::Fail("cannot connect: timeout".into());
            }
        };
        let key = lock_key(lock);
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&key];
        let q = session
            .pg
            .query_one("SELECT pg_try_advisory_lock($1)", &params);
        let got: bool = match tokio::time::timeout_at(deadline, q).await {
            Ok(Ok(row)) => row.get(0),
            Ok(Err(e)) => {
                let (gone, msg) = failed(&e);
                if gone {
                    self.session = None;
                    return Completion::Info(format!("connection broken: {msg}"));
                }
                return Completion::Fail(format!("server error: {msg}"));
            }
            Err(_) => {
                self.session = None;
                return Completion::Info("timeout".into());
            }
        };
        if !got {
            return Completion::Fail("busy".into());
        }
        let nextval = format!("SELECT nextval('{SEQUENCE}')");
        let q = session.pg.query_one(&nextval, &[]);
        match tokio::time::timeout_at(deadline, q).await {
            Ok(Ok(row)) => {
                let token: i64 = row.get(0);
                session.held = Some((lock.to_owned(), token as u64));
                Completion::Ok(Grant {
                    token: token as u64,
                    lease_ms: Self::lease_ms(session.bound, ttl),
                })
            }
            // Held without a token: closing the session frees the lock.
            Ok(Err(e)) => {
                self.session = None;
                Completion::Info(format!("no token: {e}"))
            }
            Err(_) => {
                self.session = None;
                Completion::Info("timeout".into())
            }
        }
    }

    async fn renew(&mut self, lock: &str, token: u64, ttl: Duration) -> Completion<Grant> {
        let timeout = self.timeout;
        let session = match self.holding(lock, token) {
            Ok(s) => s,
            Err(e) => return Completion::Fail(e.into()),
        };
        let bound = session.bound;
        match tokio::time::timeout(timeout, session.pg.simple_query("SELECT 1")).await {
            Ok(Ok(_)) => Completion::Ok(Grant {
                token,
                lease_ms: Self::lease_ms(bound, ttl),
            }),
            Ok(Err(e)) => {
                let (gone, msg) = failed(&e);
                if gone {
                    self.session = None;
                    Completion::Fail(format!("lease lost: {msg}"))
                } else {
                    Completion::Info(format!("server error: {msg}"))
                }
            }
            Err(_) => {
                self.session = None;
                Completion::Info("timeout".into())
            }
        }
    }

    async fn release(&mut self, lock: &str, token: u64) -> Completion<()> {
        let timeout = self.timeout;
        let session = match self.holding(lock, token) {
            Ok(s) => s,
            Err(e) => return Completion::Fail(e.into()),
        };
        let key = lock_key(lock);
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&key];
        let q = session
            .pg
            .query_one("SELECT pg_advisory_unlock($1)", &params);
        match tokio::time::timeout(timeout, q).await {
            Ok(Ok(row)) => {
                session.held = None;
                if row.get::<_, bool>(0) {
                    Completion::Ok(())
                } else {
                    Completion::Fail("not held".into())
                }
            }
            Ok(Err(e)) => {
                let (gone, msg) = failed(&e);
                self.session = None;
                if gone {
                    Completion::Fail(format!("not held: {msg}"))
                } else {
                    Completion::Info(format!("server error: {msg}"))
                }
            }
            Err(_) => {
                self.session = None;
                Completion::Info("timeout".into())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_racing_creates_count_as_created() {
        assert!(raced_create(&SqlState::UNIQUE_VIOLATION));
        assert!(raced_create(&SqlState::DUPLICATE_TABLE));
        assert!(raced_create(&SqlState::DUPLICATE_OBJECT));
        assert!(!raced_create(&SqlState::INSUFFICIENT_PRIVILEGE));
    }

    #[test]
    fn the_recipe_is_leaseholds_launcher_with_every_setting() {
        let node = NodeAddrs {
            name: "lock1".into(),
            addr: "10.77.0.11:5432".parse().unwrap(),
            peers: vec!["10.77.0.11:5432".parse().unwrap()],
            cluster: Vec::new(),
            data_dir: "/data".into(),
        };
        let o = PostgresOptions {
            idle_session_timeout: Some(Duration::from_secs(1)),
            ..PostgresOptions::default()
        };
        let r = recipe(&node, &o);
        assert_eq!(r.program, Program::Leasehold);
        assert_eq!(r.args[0], "postgres");
        let flag = |f: &str| {
            let i = r.args.iter().position(|a| a == f).unwrap();
            r.args[i + 1].clone()
        };
        assert_eq!(flag("--listen"), "10.77.0.11:5432");
        assert_eq!(flag("--data-dir"), "/data");
        assert_eq!(flag("--bin-dir"), BIN_DIR);
        assert_eq!(flag("--user"), USER);
        let sets: Vec<&String> = r
            .args
            .windows(2)
            .filter(|w| w[0] == "--set")
            .map(|w| &w[1])
            .collect();
        assert_eq!(sets.len(), o.settings("10.77.0.11").len());
        assert!(sets.iter().any(|s| *s == "idle_session_timeout=1000ms"));
        assert_eq!(r.probe, Probe::PostgresQuery);
        assert!(!r.events_on_stdout, "postgres's stdout is its log");
        let needs = needs(&o);
        assert_eq!(needs[0].0, std::path::Path::new(BIN_DIR).join("initdb"));
        assert_eq!(needs[1].1, PACKAGE);
    }

    #[test]
    fn the_lock_key_is_fnv1a_of_the_name() {
        // FNV-1a 64 test vectors: "" and "a".
        assert_eq!(lock_key("") as u64, 0xcbf2_9ce4_8422_2325);
        assert_eq!(lock_key("a") as u64, 0xaf63_dc4c_8601_ec8c);
        assert_ne!(lock_key("L"), lock_key("M"));
    }

    #[test]
    fn settings_listen_on_the_node_and_carry_the_configs_timeouts() {
        let fixed = FIXED_SETTINGS.map(str::to_owned);
        let mut want = vec!["listen_addresses=10.77.0.11".to_owned()];
        want.extend(fixed.clone());
        assert_eq!(PostgresOptions::default().settings("10.77.0.11"), want);
        let o = PostgresOptions {
            idle_session_timeout: Some(Duration::from_millis(1500)),
            tcp_keepalives_idle: Some(Duration::from_secs(1)),
            tcp_keepalives_count: Some(3),
            ..PostgresOptions::default()
        };
        let mut want = vec!["listen_addresses=127.0.0.1".to_owned()];
        want.extend(fixed);
        want.extend(
            [
                "idle_session_timeout=1500ms",
                "tcp_keepalives_idle=1000ms",
                "tcp_keepalives_count=3",
            ]
            .map(str::to_owned),
        );
        assert_eq!(o.settings("127.0.0.1"), want);
    }

    #[test]
    fn the_lease_is_the_shortest_way_the_server_ends_a_session() {
        let s = |v: &[(&str, i64)]| -> Vec<(String, i64)> {
            v.iter().map(|(k, n)| ((*k).to_owned(), *n)).collect()
        };
        assert_eq!(session_bound(&s(&[("idle_session_timeout", 0)])), None);
        let bound = session_bound(&s(&[
            ("idle_session_timeout", 1500),
            ("tcp_keepalives_idle", 1),
            ("tcp_keepalives_interval", 1),
            ("tcp_keepalives_count", 3),
        ]));
        assert_eq!(bound, Some(Duration::from_millis(1500)));
        let ttl = Duration::from_secs(1);
        assert_eq!(PostgresLockClient::lease_ms(bound, ttl), 1000);
        assert_eq!(PostgresLockClient::lease_ms(None, ttl), 1000);
        assert_eq!(
            PostgresLockClient::lease_ms(Some(Duration::from_millis(400)), ttl),
            400
        );
    }
}
