//! Lock systems: everything leasehold knows about one lock implementation, one
//! module each ([`reference`], [`redis`], [`redlock`], [`etcd`], [`postgres`],
//! [`zookeeper`], [`exec`]).
//!
//! A system gives
//!
//! - a [`ServerRecipe`] per lock node: data, not code that starts processes.
//!   The runtimes turn any recipe into a process (local) or a container
//!   (Docker) the same way: the program, its arguments for node *i* of *n*,
//!   environment, port, readiness [`Probe`] and how to find the [`Leader`];
//! - a client adapter behind [`LockClient`](crate::LockClient), built by
//!   [`LockSystem::client`];
//! - what it reports about itself: the server's version
//!   ([`LockSystem::server_version`]) and what its fencing token is
//!   ([`LockSystem::token`]).
//!
//! Adding a system means a module here, a variant of [`LockSystem`] (and of the
//! harness's config enum); the runtimes and the run lifecycle stay as they are.

pub mod etcd;
pub mod exec;
pub mod postgres;
pub mod redis;
pub mod redlock;
pub mod reference;
pub mod zookeeper;

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::completion::Completion;
use crate::lock_client::{Grant, LockClient};
use crate::{ClientError, ReferenceLockClient};

/// The lock systems leasehold knows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum LockSystem {
    /// leasehold's own lock service (`leasehold node lock`).
    #[default]
    Reference,
    /// One `redis-server` (Redis 7) per lock node, locked by Lua scripts.
    Redis,
    /// Redlock: N independent `redis-server`s, locked by a majority of them
    /// ([`redlock`]).
    Redlock,
    /// An etcd 3.4 cluster, one member per lock node, locked by its Lock API.
    Etcd,
    /// One PostgreSQL 15 server, locked by session-level advisory locks
    /// ([`postgres`]).
    Postgres,
    /// A ZooKeeper 3.8 ensemble, one member per lock node, locked by the
    /// standard recipe ([`zookeeper`]).
    Zookeeper,
    /// The user's own lock service and adapter (`lock.server`, `lock.client`),
    /// driven over JSON lines ([`exec`]).
    Exec,
}

/// What a run's config says about its lock system beyond its name: the
/// settings some systems take. Each system reads its own and ignores the
/// rest; the config refuses a setting given to a system that has none.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LockOptions {
    /// exec: the user's server (`lock.server`). `None` for other systems, and
    /// for exec when the user runs the service and leasehold starts no lock
    /// node.
    pub exec: Option<exec::ExecServer>,
    /// redis and redlock: what each `redis-server` keeps on disk
    /// (`lock.persistence`).
    pub persistence: redis::Persistence,
    /// postgres: the server's binaries, its user and the settings that decide
    /// how long a silent holder keeps its lock (`lock.postgres`).
    pub postgres: postgres::PostgresOptions,
}

impl LockOptions {
    /// The exec server, or one with no command on exec's default port.
    fn exec_server(&self) -> exec::ExecServer {
        self.exec.clone().unwrap_or_default()
    }
}

/// Where lock node *i* of a run lives, as a recipe needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeAddrs {
    /// The node's name (`lock1`).
    pub name: String,
    /// Its own `ip:port`.
    pub addr: SocketAddr,
    /// `ip:port` of every lock node of the run, itself included, in order.
    pub peers: Vec<SocketAddr>,
    /// Each lock node's further addresses, node by node in the order of
    /// `peers`, for systems whose members also talk among themselves on ports
    /// of their own ([`LockSystem::peer_ports`], as many per node): the same
    /// host at those ports, or loopback ports of their own when nodes share
    /// loopback. Empty for other systems.
    pub cluster: Vec<SocketAddr>,
    /// Its data folder, as the node sees it (a host path, or the mount point
    /// inside a container).
    pub data_dir: String,
}

/// The program a lock node runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Program {
    /// leasehold's own binary: the recipe's arguments follow `leasehold node`,
    /// and the harness adds what every leasehold node is told (name, run id,
    /// the run's clock).
    Leasehold,
    /// A server installed on the host, found on `PATH`.
    Host {
        /// The executable's name (`redis-server`).
        binary: &'static str,
        /// The Debian package that installs it.
        package: &'static str,
    },
    /// A program the user's config names ([`exec`]): found on `PATH`, or as
    /// a path (relative to leasehold's working directory); no package is
    /// known for it.
    User {
        /// The program as the config writes it (`python3`, `./my-lock`).
        command: String,
        /// The config field that names it (`lock.server.command`).
        field: &'static str,
    },
}

/// How the harness tells a started node is ready to serve.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Probe {
    /// An HTTP GET of this path answers 200.
    Http {
        /// The path, with its leading `/` (`/v1/health`).
        path: &'static str,
    },
    /// A TCP connection is accepted.
    Tcp,
    /// A Redis `PING` answers `+PONG` (not `-LOADING`).
    RedisPing,
    /// A ZooKeeper member answers `srvr` with its mode (it says it is "not
    /// currently serving requests" until its ensemble has a leader).
    ZookeeperServing,
    /// PostgreSQL answers `SELECT 1` as leasehold's role (it accepts
    /// connections while it starts, and refuses them with "the database
    /// system is starting up").
    PostgresQuery,
    /// etcd's `GET /health` answers 200 with `{"health":"true"}`, which a
    /// member says only once its cluster has a leader.
    EtcdHealth,
}

/// How to find the current leader of a lock cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Leader {
    /// The system has no leader (a single server, or independent servers).
    None,
    /// The Raft leader of an etcd cluster, the member that says it is the
    /// leader in `POST /v3/maintenance/status`.
    EtcdStatus,
    /// The ZooKeeper member whose `srvr` says `Mode: leader` (a standalone
    /// server leads itself).
    ZookeeperMode,
}

impl Leader {
    /// Which of `nodes` (the lock nodes' client addresses, in order) leads
    /// now, asking each within `timeout`; `None` when the system has no
    /// leader or none answers as one (an election, or a paused leader).
    pub async fn find(&self, nodes: &[SocketAddr], timeout: Duration) -> Option<usize> {
        match self {
            Leader::None => None,
            Leader::EtcdStatus => {
                let endpoints: Vec<String> = nodes.iter().map(ToString::to_string).collect();
                crate::etcd_leader(&endpoints, timeout).await
            }
            Leader::ZookeeperMode => zookeeper::leader(nodes, timeout).await,
        }
    }
}

/// How one lock node starts: data for the runtimes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerRecipe {
    /// What runs.
    pub program: Program,
    /// Its arguments (after `leasehold node` for [`Program::Leasehold`]).
    pub args: Vec<String>,
    /// Environment variables set for it.
    pub env: Vec<(String, String)>,
    /// The port it serves on.
    pub port: u16,
    /// How to tell it is ready.
    pub probe: Probe,
    /// How to find the leader.
    pub leader: Leader,
    /// Whether its standard output carries history events (leasehold's own
    /// nodes); otherwise it is the server's log and goes to the node's log.
    pub events_on_stdout: bool,
}

impl LockSystem {
    /// Every system, in the order of the docs.
    pub const ALL: [LockSystem; 7] = [
        LockSystem::Reference,
        LockSystem::Redis,
        LockSystem::Redlock,
        LockSystem::Etcd,
        LockSystem::Postgres,
        LockSystem::Zookeeper,
        LockSystem::Exec,
    ];

    /// Its name as the config and the worker's `--client` flag spell it.
    pub fn name(self) -> &'static str {
        match self {
            LockSystem::Reference => "reference",
            LockSystem::Redis => "redis",
            LockSystem::Redlock => "redlock",
            LockSystem::Etcd => "etcd",
            LockSystem::Postgres => "postgres",
            LockSystem::Zookeeper => "zookeeper",
            LockSystem::Exec => "exec",
        }
    }

    /// The system of that name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The port its servers listen on when they have an address of their own.
    pub fn port(self, options: &LockOptions) -> u16 {
        match self {
            LockSystem::Reference => reference::PORT,
            LockSystem::Redis => redis::PORT,
            LockSystem::Redlock => redlock::PORT,
            LockSystem::Etcd => etcd::PORT,
            LockSystem::Postgres => postgres::PORT,
            LockSystem::Zookeeper => zookeeper::PORT,
            LockSystem::Exec => options.exec_server().port,
        }
    }

    /// The program its servers run (known without planning a node).
    pub fn program(self, options: &LockOptions) -> Program {
        match self {
            LockSystem::Reference => Program::Leasehold,
            LockSystem::Redis => redis::PROGRAM,
            LockSystem::Redlock => redlock::PROGRAM,
            LockSystem::Etcd => etcd::PROGRAM,
            // `leasehold node postgres` runs initdb and postgres;
            // `leasehold node zookeeper` writes its config and runs java.
            LockSystem::Postgres | LockSystem::Zookeeper => Program::Leasehold,
            LockSystem::Exec => exec::program(&options.exec_server()),
        }
    }

    /// Files its nodes need on the host besides their program (which
    /// [`program`](Self::program) names), each with the Debian package that
    /// installs it: a run checks them before anything starts.
    pub fn needs(self, options: &LockOptions) -> Vec<(std::path::PathBuf, &'static str)> {
        match self {
            LockSystem::Postgres => postgres::needs(&options.postgres),
            LockSystem::Zookeeper => zookeeper::needs(),
            _ => Vec::new(),
        }
    }

    /// Whether its server's processes leave the node's process group
    /// (PostgreSQL's backends each start a session of their own), so that a
    /// signal reaches them only through the node's process tree.
    pub fn forks_sessions(self) -> bool {
        self == LockSystem::Postgres
    }

    /// How lock node `i` (0-based) of `n` starts.
    pub fn recipe(
        self,
        i: usize,
        n: usize,
        node: &NodeAddrs,
        options: &LockOptions,
    ) -> ServerRecipe {
        match self {
            LockSystem::Reference => reference::recipe(i, n, node),
            LockSystem::Redis => redis::recipe(options.persistence, node),
            LockSystem::Redlock => redlock::recipe(options.persistence, node),
            LockSystem::Etcd => etcd::recipe(i, n, node),
            LockSystem::Postgres => postgres::recipe(node, &options.postgres),
            LockSystem::Zookeeper => zookeeper::recipe(i, node),
            LockSystem::Exec => exec::recipe(&options.exec_server(), i, n, node),
        }
    }

    /// What its fencing token is, in one sentence.
    pub fn token(self) -> &'static str {
        match self {
            LockSystem::Reference => reference::TOKEN,
            LockSystem::Redis => redis::TOKEN,
            LockSystem::Redlock => redlock::TOKEN,
            LockSystem::Etcd => etcd::TOKEN,
            LockSystem::Postgres => postgres::TOKEN,
            LockSystem::Zookeeper => zookeeper::TOKEN,
            LockSystem::Exec => exec::TOKEN,
        }
    }

    /// The version the server at `addr` reports about itself.
    pub async fn server_version(
        self,
        addr: SocketAddr,
        timeout: Duration,
    ) -> Result<String, String> {
        match self {
            LockSystem::Reference => Ok(reference::version()),
            LockSystem::Redis => redis::server_version(addr, timeout).await,
            LockSystem::Redlock => redlock::server_version(addr, timeout).await,
            LockSystem::Etcd => etcd::server_version(addr, timeout).await,
            LockSystem::Postgres => postgres::server_version(addr, timeout).await,
            LockSystem::Zookeeper => zookeeper::server_version(addr, timeout).await,
            LockSystem::Exec => Ok(exec::VERSION.to_owned()),
        }
    }

    /// The further ports its servers listen on, where they need them (etcd's
    /// peer port; ZooKeeper's quorum and election ports): the plan gives each
    /// lock node an address for each ([`NodeAddrs::cluster`]).
    pub fn peer_ports(self) -> &'static [u16] {
        match self {
            LockSystem::Etcd => &[etcd::PEER_PORT],
            LockSystem::Zookeeper => &[zookeeper::QUORUM_PORT, zookeeper::ELECTION_PORT],
            _ => &[],
        }
    }

    /// How long its servers get, after SIGTERM at the end of a run, before
    /// they are killed; `None`: the run's grace. etcd gets little: a member
    /// told to stop hands its leadership over to a peer that is stopping too
    /// and then campaigns for seconds, and the run throws its data away.
    pub fn stop_grace(self) -> Option<Duration> {
        match self {
            LockSystem::Etcd => Some(Duration::from_millis(500)),
            _ => None,
        }
    }

    /// How to find the leader of its servers (known without planning a node).
    pub fn leader(self) -> Leader {
        match self {
            LockSystem::Etcd => Leader::EtcdStatus,
            LockSystem::Zookeeper => Leader::ZookeeperMode,
            _ => Leader::None,
        }
    }

    /// The worker's client of this system: `lock_addrs` are the lock nodes'
    /// `host:port`, `client` the worker's name, `timeout` bounds each request,
    /// `lease` is the lease the worker asks for (ZooKeeper's client asks for
    /// it as its session timeout).
    pub fn client(
        self,
        lock_addrs: &[String],
        client: &str,
        timeout: Duration,
        lease: Duration,
    ) -> Result<SystemClient, ClientError> {
        let first = lock_addrs.first().ok_or_else(|| ClientError::BadAddress {
            addr: String::new(),
            reason: "no lock node address".into(),
        })?;
        Ok(match self {
            LockSystem::Reference => {
                SystemClient::Reference(ReferenceLockClient::new(first, client, timeout)?)
            }
            LockSystem::Redis => SystemClient::Redis(Box::new(redis::RedisLockClient::new(
                first, client, timeout,
            )?)),
            LockSystem::Redlock => SystemClient::Redlock(Box::new(redlock::RedlockClient::new(
                lock_addrs, client, timeout,
            )?)),
            LockSystem::Etcd => SystemClient::Etcd(Box::new(etcd::client(lock_addrs, timeout)?)),
            LockSystem::Postgres => {
                SystemClient::Postgres(Box::new(postgres::PostgresLockClient::new(first, timeout)?))
            }
            LockSystem::Zookeeper => SystemClient::Zookeeper(Box::new(
                zookeeper::ZookeeperLockClient::new(lock_addrs, client, timeout, lease)?,
            )),
            // The adapter is a program to start: [`exec::client`].
            LockSystem::Exec => return Err(ClientError::NeedsCommand { system: "exec" }),
        })
    }
}

impl std::fmt::Display for LockSystem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The client of whichever system a run tests.
#[derive(Debug)]
pub enum SystemClient {
    /// The reference service's client.
    Reference(ReferenceLockClient),
    /// The Redis client.
    Redis(Box<redis::RedisLockClient>),
    /// The Redlock client, over every lock node.
    Redlock(Box<redlock::RedlockClient>),
    /// The etcd client.
    Etcd(Box<crate::EtcdLockClient>),
    /// The PostgreSQL client, with a session of its own.
    Postgres(Box<postgres::PostgresLockClient>),
    /// The ZooKeeper client, with a session of its own.
    Zookeeper(Box<zookeeper::ZookeeperLockClient>),
    /// The user's adapter, driven over JSON lines.
    Exec(Box<crate::ExecLockClient>),
}

impl LockClient for SystemClient {
    fn service(&self) -> &'static str {
        match self {
            SystemClient::Reference(c) => c.service(),
            SystemClient::Redis(c) => c.service(),
            SystemClient::Redlock(c) => c.service(),
            SystemClient::Etcd(c) => c.service(),
            SystemClient::Postgres(c) => c.service(),
            SystemClient::Zookeeper(c) => c.service(),
            SystemClient::Exec(c) => c.service(),
        }
    }

    async fn acquire(&mut self, lock: &str, ttl: Duration) -> Completion<Grant> {
        match self {
            SystemClient::Reference(c) => c.acquire(lock, ttl).await,
            SystemClient::Redis(c) => c.acquire(lock, ttl).await,
            SystemClient::Redlock(c) => c.acquire(lock, ttl).await,
            SystemClient::Etcd(c) => c.acquire(lock, ttl).await,
            SystemClient::Postgres(c) => c.acquire(lock, ttl).await,
            SystemClient::Zookeeper(c) => c.acquire(lock, ttl).await,
            SystemClient::Exec(c) => c.acquire(lock, ttl).await,
        }
    }

    async fn renew(&mut self, lock: &str, token: u64, ttl: Duration) -> Completion<Grant> {
        match self {
            SystemClient::Reference(c) => c.renew(lock, token, ttl).await,
            SystemClient::Redis(c) => c.renew(lock, token, ttl).await,
            SystemClient::Redlock(c) => c.renew(lock, token, ttl).await,
            SystemClient::Etcd(c) => c.renew(lock, token, ttl).await,
            SystemClient::Postgres(c) => c.renew(lock, token, ttl).await,
            SystemClient::Zookeeper(c) => c.renew(lock, token, ttl).await,
            SystemClient::Exec(c) => c.renew(lock, token, ttl).await,
        }
    }

    async fn release(&mut self, lock: &str, token: u64) -> Completion<()> {
        match self {
            SystemClient::Reference(c) => c.release(lock, token).await,
            SystemClient::Redis(c) => c.release(lock, token).await,
            SystemClient::Redlock(c) => c.release(lock, token).await,
            SystemClient::Etcd(c) => c.release(lock, token).await,
            SystemClient::Postgres(c) => c.release(lock, token).await,
            SystemClient::Zookeeper(c) => c.release(lock, token).await,
            SystemClient::Exec(c) => c.release(lock, token).await,
        }
    }
}

impl Probe {
    /// Whether the node at `addr` answers the probe within `timeout`.
    pub async fn ready(&self, addr: SocketAddr, timeout: Duration) -> bool {
        tokio::time::timeout(timeout, self.check(addr))
            .await
            .unwrap_or(false)
    }

    async fn check(&self, addr: SocketAddr) -> bool {
        match self {
            Probe::Http { path } => {
                let Ok(http) = reqwest::Client::builder().no_proxy().build() else {
                    return false;
                };
                http.get(format!("http://{addr}{path}"))
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success())
            }
            Probe::Tcp => tokio::net::TcpStream::connect(addr).await.is_ok(),
            Probe::RedisPing => {
                let Ok(mut s) = tokio::net::TcpStream::connect(addr).await else {
                    return false;
                };
                if s.write_all(b"PING\r\n").await.is_err() {
                    return false;
                }
                let mut reply = [0u8; 7];
                s.read_exact(&mut reply).await.is_ok() && &reply == b"+PONG\r\n"
            }
            Probe::PostgresQuery => postgres::ready(addr, Duration::from_secs(1)).await,
            Probe::ZookeeperServing => zookeeper::ready(addr, Duration::from_secs(1)).await,
            Probe::EtcdHealth => {
                let Ok(http) = reqwest::Client::builder().no_proxy().build() else {
                    return false;
                };
                let Ok(r) = http
                    .get(format!("http://{addr}{}", crate::ETCD_READY_PATH))
                    .send()
                    .await
                else {
                    return false;
                };
                r.status().is_success() && r.bytes().await.is_ok_and(|b| crate::etcd_ready(&b))
            }
        }
    }

    /// How the probe is described in an error (`http://…/v1/health`).
    pub fn describe(&self, addr: SocketAddr) -> String {
        match self {
            Probe::Http { path } => format!("http://{addr}{path}"),
            Probe::Tcp => format!("tcp {addr}"),
            Probe::RedisPing => format!("redis PING at {addr}"),
            Probe::PostgresQuery => format!("postgres SELECT 1 at {addr}"),
            Probe::ZookeeperServing => format!("zookeeper srvr at {addr}"),
            Probe::EtcdHealth => format!("http://{addr}{} (etcd health)", crate::ETCD_READY_PATH),
        }
    }
}
