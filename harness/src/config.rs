//! The test config: the one place leasehold reads YAML.
//!
//! Every field is checked while it is parsed (non-zero counts, durations, known
//! targets), so an error carries the file, line, column and the field's path.
//! Limits that keep a run bounded (its length, how many faults and nodes it has,
//! how big and deep the file is) are checked here too, before anything starts.

use std::fmt;
use std::io::Read;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use std::collections::BTreeMap;

use leasehold_nemesis::packet;
use leasehold_nemesis::{FaultKind, FaultSpec, Role, ScheduledFault, Span, Target, TimelineEntry};
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

/// The largest config file read, in bytes.
pub const MAX_CONFIG_BYTES: usize = 1 << 20;
/// The deepest nesting of maps and lists (block or flow) in a config.
pub const MAX_NESTING: usize = 32;
/// The longest run (a nightly soak fits).
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);
/// The longest lease, think time, request timeout and back-off.
pub const MAX_WAIT: Duration = Duration::from_secs(3600);
/// The shortest fault (`for`); also the shortest lease and request timeout,
/// which the nodes take in whole milliseconds.
pub const MIN_FAULT: Duration = Duration::from_millis(1);
/// The shortest time between two faults of a generator (`every`).
pub const MIN_EVERY: Duration = Duration::from_millis(10);
/// The most keys the workers write.
pub const MAX_KEYS: u32 = 10_000;

/// Where each role's nodes live on the run's /24, as last octets: `.0` is the
/// network, `.1` the controller's side (the local hub's host leg, Docker's
/// gateway) and `.255` broadcast, so none of them is handed out.
const ADDRESS_BLOCKS: [AddressBlock; 3] = [
    AddressBlock {
        prefix: "lock",
        field: "lock.nodes",
        what: "lock nodes",
        first: 11,
        last: 29,
    },
    AddressBlock {
        prefix: "store",
        field: "storage.nodes",
        what: "storage nodes",
        first: 31,
        last: 99,
    },
    AddressBlock {
        prefix: "w",
        field: "workload.workers",
        what: "workers",
        first: 101,
        last: 254,
    },
];

/// The addresses of one role: node `<prefix>i` gets `.first + i - 1`.
struct AddressBlock {
    prefix: &'static str,
    field: &'static str,
    what: &'static str,
    first: u8,
    last: u8,
}

impl AddressBlock {
    fn capacity(&self) -> u32 {
        u32::from(self.last - self.first) + 1
    }
}

/// A bad config: where, which field, and what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read, or is not UTF-8 text.
    #[error("cannot read config {}", path.display())]
    Read {
        /// The config file.
        path: PathBuf,
        /// The I/O error; `InvalidData` for text that is not UTF-8.
        #[source]
        source: std::io::Error,
    },
    /// The config does not parse, or breaks a rule or a limit.
    #[error("{}{}: {field}: {message}", path.display(), at(*line, *column))]
    Invalid {
        /// The config file (or the name given to parsed text).
        path: PathBuf,
        /// Line of the field's value, from 1; `None` when the error has no
        /// place in the file (a file too large, a value from `--duration`).
        line: Option<usize>,
        /// Column of the field's value, from 1, when it is known.
        column: Option<usize>,
        /// Dotted path of the field, e.g. `workload.workers`.
        field: String,
        /// What is wrong with the value, for a person to read.
        message: String,
    },
}

fn at(line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!(":{l}:{c}"),
        (Some(l), None) => format!(":{l}"),
        _ => String::new(),
    }
}

/// A whole test.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Name of the test; runs are stored under `store/<test>/`.
    pub test: String,
    /// Seed of everything random in the run; drawn at random when absent and
    /// written into the stored config.yaml.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// How long the workload and the nemesis run.
    #[serde(with = "humantime_serde")]
    pub duration: Duration,
    /// Where the nodes run: `local` processes (the default) or `docker`
    /// containers; `leasehold run --runtime` overrides it.
    #[serde(default)]
    pub runtime: RuntimeKind,
    /// The run's network: the /24 its nodes get addresses on.
    #[serde(default)]
    pub network: NetworkConfig,
    /// The lock service: which one, how many nodes, what they start from.
    #[serde(default)]
    pub lock: LockConfig,
    /// The storage nodes and whether they check fencing tokens.
    #[serde(default)]
    pub storage: StorageConfig,
    /// What the workers do: how many, the lease, think time, timeouts.
    pub workload: WorkloadConfig,
    /// The faults to inject, generated and scripted; none when absent.
    #[serde(default)]
    pub nemesis: NemesisConfig,
    /// What the config was parsed from, so checks made later
    /// ([`Config::set_duration`]) still point into the file.
    #[serde(skip)]
    source: Source,
}

/// The file and text a config was parsed from. Not part of the config:
/// configs compare equal wherever they were read from.
#[derive(Clone, Default)]
struct Source {
    path: PathBuf,
    text: Arc<str>,
    /// The duration was set on the command line (`--duration`), not in the file.
    duration_overridden: bool,
}

impl PartialEq for Source {
    fn eq(&self, _: &Source) -> bool {
        true
    }
}

impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Source({})", self.path.display())
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuntimeKind {
    /// Nodes are child processes (in network namespaces when run as root).
    #[default]
    Local,
    /// Nodes are containers on a bridge network of their own.
    Docker,
}

impl fmt::Display for RuntimeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RuntimeKind::Local => "local",
            RuntimeKind::Docker => "docker",
        })
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkConfig {
    /// `/24` for the run's nodes when they get network namespaces, e.g.
    /// `10.77.3.0/24`; absent: the first free `10.77.N.0/24`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet: Option<Subnet>,
}

/// An IPv4 /24, written `a.b.c.0/24`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Subnet(pub [u8; 3]);

impl Subnet {
    pub fn host(&self, last: u8) -> std::net::Ipv4Addr {
        let [a, b, c] = self.0;
        std::net::Ipv4Addr::new(a, b, c, last)
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c] = self.0;
        write!(f, "{a}.{b}.{c}.0/24")
    }
}

impl std::str::FromStr for Subnet {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?} is not an IPv4 /24 like 10.77.0.0/24");
        let (ip, len) = s.split_once('/').ok_or_else(bad)?;
        let ip: std::net::Ipv4Addr = ip.parse().map_err(|_| bad())?;
        if len != "24" || ip.octets()[3] != 0 {
            return Err(bad());
        }
        let [a, b, c, _] = ip.octets();
        Ok(Subnet([a, b, c]))
    }
}

impl Serialize for Subnet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Subnet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// The lock service's nodes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, from = "LockConfigFields")]
pub struct LockConfig {
    /// Which lock service.
    #[serde(default)]
    pub service: LockService,
    /// How many lock nodes: when the config does not say, 5 for `redlock`
    /// ([`LockService::default_nodes`]), 1 for the others.
    pub nodes: NonZeroU32,
    /// `service: redis` and `redlock`: what each `redis-server` keeps on
    /// disk; `none` (the default) or `aof`.
    #[serde(default, skip_serializing_if = "LockPersistence::is_none")]
    pub persistence: LockPersistence,
    /// `service: postgres`: the server settings that decide how long a
    /// silent holder keeps its lock, and where the binaries are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postgres: Option<PostgresConfig>,
    /// Docker runtime: start the lock nodes from this local image instead of
    /// leasehold's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Docker runtime: pack this host binary (with its shared libraries) into
    /// an image and start the lock nodes from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binary: Option<PathBuf>,
    /// `service: exec`: how each lock node starts. Absent: leasehold starts
    /// no lock node and the adapter is given [`LockConfig::addresses`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<ExecServerConfig>,
    /// `service: exec`: the adapter each worker starts, once, and keeps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<ExecClientConfig>,
    /// `service: exec` without `server`: `host:port` of each node of the
    /// lock service the user runs themselves.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<String>,
}

/// [`LockConfig`] as the file gives it: `nodes` may be absent, and its
/// default depends on the service.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LockConfigFields {
    #[serde(default)]
    service: LockService,
    #[serde(default)]
    nodes: Option<NonZeroU32>,
    #[serde(default)]
    persistence: LockPersistence,
    #[serde(default)]
    postgres: Option<PostgresConfig>,
    #[serde(default)]
    image: Option<String>,
    #[serde(default)]
    binary: Option<PathBuf>,
    #[serde(default)]
    server: Option<ExecServerConfig>,
    #[serde(default)]
    client: Option<ExecClientConfig>,
    #[serde(default)]
    addresses: Vec<String>,
}

impl From<LockConfigFields> for LockConfig {
    fn from(f: LockConfigFields) -> Self {
        LockConfig {
            nodes: f.nodes.unwrap_or_else(|| f.service.default_nodes()),
            service: f.service,
            persistence: f.persistence,
            postgres: f.postgres,
            image: f.image,
            binary: f.binary,
            server: f.server,
            client: f.client,
            addresses: f.addresses,
        }
    }
}

/// `lock.persistence`: what each `redis-server` of `service: redis` or
/// `redlock` keeps on disk across a kill.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LockPersistence {
    /// Nothing (leasehold's default): a restarted node is empty and its fence
    /// counter starts again from 1.
    #[default]
    None,
    /// `appendonly yes`, `appendfsync always`: the fence counter (and a lock
    /// key whose TTL has not passed) survives a kill.
    Aof,
}

impl LockPersistence {
    /// Whether it is `none`, the default.
    pub fn is_none(&self) -> bool {
        *self == LockPersistence::None
    }

    /// The same, as the Redis recipe takes it.
    pub fn redis(self) -> leasehold_workloads::system::redis::Persistence {
        use leasehold_workloads::system::redis::Persistence;
        match self {
            LockPersistence::None => Persistence::None,
            LockPersistence::Aof => Persistence::Aof,
        }
    }
}

impl Default for LockConfig {
    fn default() -> Self {
        LockConfig {
            service: LockService::default(),
            nodes: one(),
            persistence: LockPersistence::None,
            postgres: None,
            image: None,
            binary: None,
            server: None,
            client: None,
            addresses: Vec::new(),
        }
    }
}

/// `lock.postgres` of `service: postgres`: PostgreSQL's own settings of the
/// same names, each left at PostgreSQL's default when absent. A paused
/// holder's kernel still answers keepalives and acknowledges data, so only
/// `idle_session_timeout` frees the lock of a paused holder; keepalive and
/// `tcp_user_timeout` free that of a holder cut off by a partition.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresConfig {
    /// Ends a session that sent no statement for this long.
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub idle_session_timeout: Option<Duration>,
    /// Idle time before the first keepalive probe.
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub tcp_keepalives_idle: Option<Duration>,
    /// Time between keepalive probes.
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub tcp_keepalives_interval: Option<Duration>,
    /// Unanswered probes before the connection is dropped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp_keepalives_count: Option<u32>,
    /// Sent data unacknowledged for this long drops the connection.
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub tcp_user_timeout: Option<Duration>,
    /// Where `initdb` and `postgres` are (Debian's 15 by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bin_dir: Option<PathBuf>,
}

impl PostgresConfig {
    /// The same, as the PostgreSQL module takes it.
    pub fn options(&self) -> leasehold_workloads::system::postgres::PostgresOptions {
        let mut o = leasehold_workloads::system::postgres::PostgresOptions {
            idle_session_timeout: self.idle_session_timeout,
            tcp_keepalives_idle: self.tcp_keepalives_idle,
            tcp_keepalives_interval: self.tcp_keepalives_interval,
            tcp_keepalives_count: self.tcp_keepalives_count,
            tcp_user_timeout: self.tcp_user_timeout,
            ..Default::default()
        };
        if let Some(dir) = &self.bin_dir {
            o.bin_dir = dir.display().to_string();
        }
        o
    }

    /// Each duration setting by its field name, for the checks.
    fn durations(&self) -> [(&'static str, Option<Duration>); 4] {
        [
            ("idle_session_timeout", self.idle_session_timeout),
            ("tcp_keepalives_idle", self.tcp_keepalives_idle),
            ("tcp_keepalives_interval", self.tcp_keepalives_interval),
            ("tcp_user_timeout", self.tcp_user_timeout),
        ]
    }
}

/// `lock.server` of `service: exec`: the user's lock node command.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecServerConfig {
    /// Program and arguments, with placeholders (`{host}`, `{port}`, …)
    /// replaced per node; relative paths are from leasehold's working
    /// directory.
    pub command: Vec<String>,
    /// The port each node listens on.
    #[serde(default = "exec_port")]
    pub port: u16,
}

fn exec_port() -> u16 {
    leasehold_workloads::system::exec::PORT
}

/// `lock.client` of `service: exec`: the adapter's command.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecClientConfig {
    /// Program and arguments, run in leasehold's working directory.
    pub command: Vec<String>,
}

impl LockConfig {
    /// How many lock nodes the run starts: none for `exec` without `server`.
    pub fn started_nodes(&self) -> u32 {
        if self.service == LockService::Exec && self.server.is_none() {
            0
        } else {
            self.nodes.get()
        }
    }

    /// What the config says about its lock system beyond its name, as the
    /// system's module takes it.
    pub fn options(&self) -> leasehold_workloads::LockOptions {
        let exec = self
            .server
            .as_ref()
            .filter(|_| self.service == LockService::Exec);
        leasehold_workloads::LockOptions {
            exec: exec.map(|server| leasehold_workloads::system::exec::ExecServer {
                command: server.command.clone(),
                port: server.port,
            }),
            persistence: self.persistence.redis(),
            postgres: self.postgres.clone().unwrap_or_default().options(),
        }
    }

    /// The program the lock nodes run.
    pub fn program(&self) -> leasehold_workloads::Program {
        self.service.system().program(&self.options())
    }

    /// Files the lock nodes need on the host besides their program, with
    /// their Debian packages.
    pub fn needs(&self) -> Vec<(PathBuf, &'static str)> {
        self.service.system().needs(&self.options())
    }

    /// The port the lock nodes listen on.
    pub fn port(&self) -> u16 {
        self.service.system().port(&self.options())
    }

    /// How lock node `i` (0-based) of `n` starts.
    pub fn recipe(
        &self,
        i: usize,
        n: usize,
        node: &leasehold_workloads::NodeAddrs,
    ) -> leasehold_workloads::ServerRecipe {
        self.service.system().recipe(i, n, node, &self.options())
    }
}

fn one() -> NonZeroU32 {
    NonZeroU32::MIN
}

/// `lock.service`: which lock system a run tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LockService {
    /// leasehold's own lock service (`leasehold node lock`).
    #[default]
    Reference,
    /// Redis 7: a `redis-server` per lock node, started by the run.
    Redis,
    /// Redlock over independent `redis-server`s, one per lock node (5 by
    /// default; 1 is refused, that is `redis`; even counts and 2 are
    /// accepted: a majority is still `n/2 + 1`).
    Redlock,
    /// etcd 3.4: one cluster member per lock node, started by the run.
    Etcd,
    /// PostgreSQL 15 advisory locks: one server of the run's own (`postgres`
    /// for its settings).
    Postgres,
    /// ZooKeeper 3.8: one ensemble member per lock node, started by the run
    /// (the lease is the client's session, as long as the workload's lease).
    Zookeeper,
    /// The user's own lock service and adapter: `server` and `client`.
    Exec,
}

impl LockService {
    /// The lock system behind the name: its server recipe and client.
    pub fn system(self) -> leasehold_workloads::LockSystem {
        use leasehold_workloads::LockSystem;
        match self {
            LockService::Reference => LockSystem::Reference,
            LockService::Redis => LockSystem::Redis,
            LockService::Redlock => LockSystem::Redlock,
            LockService::Etcd => LockSystem::Etcd,
            LockService::Postgres => LockSystem::Postgres,
            LockService::Zookeeper => LockSystem::Zookeeper,
            LockService::Exec => LockSystem::Exec,
        }
    }

    /// How many lock nodes it gets when the config does not say: 5 for
    /// `redlock` (the authors' example), 1 for the others.
    pub fn default_nodes(self) -> NonZeroU32 {
        match self {
            LockService::Redlock => NonZeroU32::new(5).expect("5 is not 0"),
            _ => one(),
        }
    }
}

/// The storage the lock guards: which system, its nodes, whether it fences.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// `reference` (leasehold's own fenced storage, the default), `exec` (the
    /// user's store and adapter) or `etcd-txn` (the lock's etcd cluster).
    #[serde(default)]
    pub service: StorageService,
    /// How many storage nodes: reference, and exec with a `server`.
    #[serde(default = "one")]
    pub nodes: NonZeroU32,
    /// Reject writes of holders that lost the lock: the reference storage by
    /// its high water per key, etcd-txn by the lock key's create revision;
    /// for exec, what the user's store does (the `{fencing}` placeholder of
    /// its server command), which the lost-write check relies on.
    #[serde(default)]
    pub fencing: bool,
    /// `service: exec`: how each storage node starts. Absent: leasehold starts
    /// no storage node and the adapter is given [`StorageConfig::addresses`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<ExecStorageServerConfig>,
    /// `service: exec`: the adapter each worker starts, once, and keeps (and
    /// the controller, for the final reads).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<ExecClientConfig>,
    /// `service: exec` without `server`: `host:port` of each node of the
    /// store the user runs themselves.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<String>,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            service: StorageService::default(),
            nodes: one(),
            fencing: false,
            server: None,
            client: None,
            addresses: Vec::new(),
        }
    }
}

/// `storage.service`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StorageService {
    /// leasehold's own fenced storage (`leasehold node storage`).
    #[default]
    Reference,
    /// The user's own store and adapter: `server` (or `addresses`) and
    /// `client`.
    Exec,
    /// The lock's etcd cluster, written in transactions guarded by the
    /// holder's lock key; needs `lock.service: etcd`.
    EtcdTxn,
    /// A PostgreSQL 15 server of the run's own, written with a fenced upsert
    /// (`… WHERE token <= new token`) and a ledger table.
    Postgres,
}

impl StorageService {
    /// The storage system behind the name.
    pub fn system(self) -> leasehold_workloads::StorageSystem {
        use leasehold_workloads::StorageSystem;
        match self {
            StorageService::Reference => StorageSystem::Reference,
            StorageService::Exec => StorageSystem::Exec,
            StorageService::EtcdTxn => StorageSystem::EtcdTxn,
            StorageService::Postgres => StorageSystem::Postgres,
        }
    }
}

/// `storage.server` of `service: exec`: the user's storage node command.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecStorageServerConfig {
    /// Program and arguments, with the placeholders of `lock.server` and
    /// `{fencing}` (`on`/`off`) replaced per node; relative paths are from
    /// leasehold's working directory.
    pub command: Vec<String>,
    /// The port each node listens on.
    #[serde(default = "exec_storage_port")]
    pub port: u16,
}

fn exec_storage_port() -> u16 {
    leasehold_workloads::storage::exec::PORT
}

impl StorageConfig {
    /// How many storage nodes the run starts: none for etcd-txn (the etcd
    /// members store the data) and for exec without `server`.
    pub fn started_nodes(&self) -> u32 {
        match (self.service, &self.server) {
            (StorageService::Reference | StorageService::Postgres, _)
            | (StorageService::Exec, Some(_)) => self.nodes.get(),
            (StorageService::Exec, None) | (StorageService::EtcdTxn, None | Some(_)) => 0,
        }
    }

    /// Files the storage nodes need on the host besides their program, with
    /// their Debian packages.
    pub fn needs(&self) -> Vec<(PathBuf, &'static str)> {
        match self.service {
            StorageService::Postgres => leasehold_workloads::system::postgres::needs(
                &leasehold_workloads::system::postgres::PostgresOptions::default(),
            ),
            _ => Vec::new(),
        }
    }

    /// The exec storage server of the config, as the storage module takes it.
    pub fn exec_server(&self) -> Option<leasehold_workloads::storage::exec::ExecStorageServer> {
        let server = self.server.as_ref()?;
        (self.service == StorageService::Exec).then(|| {
            leasehold_workloads::storage::exec::ExecStorageServer {
                command: server.command.clone(),
                port: server.port,
                fencing: self.fencing,
            }
        })
    }
}

/// What the workers do.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadConfig {
    pub workers: NonZeroU32,
    /// Name of the lock they contend for.
    #[serde(default = "default_lock")]
    pub lock: String,
    /// How many keys they write (`k0`, `k1`, …).
    #[serde(default = "one")]
    pub keys: NonZeroU32,
    /// Lease they ask for.
    #[serde(with = "humantime_serde")]
    pub lease: Duration,
    /// How long a holder holds before it writes.
    #[serde(with = "humantime_serde")]
    pub think: Duration,
    /// Request timeout; an operation that times out is recorded `info`.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Upper bound of the random wait after a busy lock or a release.
    #[serde(default = "default_backoff", with = "humantime_serde")]
    pub backoff: Duration,
    #[serde(default)]
    pub client: LockService,
    /// What a worker makes of a renew that timed out: `stop` using the lease
    /// (careful), or `continue` as if it had been renewed (the bug a
    /// partitioned holder turns into stale writes).
    #[serde(default)]
    pub on_renew_timeout: OnRenewTimeout,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnRenewTimeout {
    #[default]
    Stop,
    Continue,
}

impl OnRenewTimeout {
    pub fn as_str(self) -> &'static str {
        match self {
            OnRenewTimeout::Stop => "stop",
            OnRenewTimeout::Continue => "continue",
        }
    }
}

fn default_lock() -> String {
    "L".to_owned()
}
fn default_timeout() -> Duration {
    Duration::from_millis(500)
}
fn default_backoff() -> Duration {
    Duration::from_millis(50)
}

/// Faults to inject.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NemesisConfig {
    /// Fault generators: a kind of fault, a target, how long, how often.
    #[serde(default)]
    pub faults: Vec<FaultSpec>,
    /// A scripted timeline: `at: 5s, pause: w1, for: 3s`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub timeline: Vec<TimelineEntry>,
}

impl WorkloadConfig {
    pub fn key_names(&self) -> Vec<String> {
        (0..self.keys.get()).map(|i| format!("k{i}")).collect()
    }
}

impl Config {
    /// Reads and checks a config file; reads no more than [`MAX_CONFIG_BYTES`]
    /// of it.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let read = |source| ConfigError::Read {
            path: path.to_owned(),
            source,
        };
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .and_then(|f| f.take(MAX_CONFIG_BYTES as u64 + 1).read_to_end(&mut bytes))
            .map_err(read)?;
        if bytes.len() > MAX_CONFIG_BYTES {
            return Err(too_large(path));
        }
        let text = String::from_utf8(bytes).map_err(|e| {
            read(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("not UTF-8 text (byte {})", e.utf8_error().valid_up_to()),
            ))
        })?;
        Config::parse(&text, path)
    }

    /// Parses config text; `path` only names the source in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        if text.len() > MAX_CONFIG_BYTES {
            return Err(too_large(path));
        }
        // Deep nesting takes serde_yaml quadratic time: refuse it first.
        check_nesting(text).map_err(|deep| ConfigError::Invalid {
            path: path.to_owned(),
            line: Some(deep.line),
            column: Some(deep.column),
            field: deep.field,
            message: format!(
                "maps and lists nest more than {MAX_NESTING} levels deep here; a config needs a few"
            ),
        })?;
        let de = serde_yaml::Deserializer::from_str(text);
        let mut config: Config = serde_path_to_error::deserialize(de).map_err(|e| {
            let field = e.path().to_string();
            let inner = e.into_inner();
            let loc = inner.location();
            ConfigError::Invalid {
                path: path.to_owned(),
                line: loc.as_ref().map(|l| l.line()),
                column: loc.as_ref().map(|l| l.column()),
                field: if field == "." {
                    "(top level)".into()
                } else {
                    field
                },
                message: strip_location(&inner.to_string()),
            }
        })?;
        config.source = Source {
            path: path.to_owned(),
            text: text.into(),
            duration_overridden: false,
        };
        config.validate()?;
        Ok(config)
    }

    /// Sets the run's duration (`leasehold run --duration`) and checks again
    /// what depends on it: its limits, the timeline entries that must end
    /// within it, how many faults the generators can schedule. Errors still
    /// point into the config file; on error the config is left as it was.
    pub fn set_duration(&mut self, duration: Duration) -> Result<(), ConfigError> {
        let old = (self.duration, self.source.duration_overridden);
        self.duration = duration;
        self.source.duration_overridden = true;
        let checked = self.validate();
        if checked.is_err() {
            (self.duration, self.source.duration_overridden) = old;
        }
        checked
    }

    /// Sets where the nodes run (`leasehold run --runtime`) and checks again
    /// what depends on it for `service: exec`; on error the config is left as
    /// it was.
    pub fn set_runtime(&mut self, runtime: RuntimeKind) -> Result<(), ConfigError> {
        let old = self.runtime;
        self.runtime = runtime;
        let checked = self.check_exec();
        if checked.is_err() {
            self.runtime = old;
        }
        checked
    }

    /// Checks what spans several fields and the limits of a run.
    fn validate(&self) -> Result<(), ConfigError> {
        self.check_duration()?;
        self.check_lock()?;
        self.check_storage()?;
        self.check_counts()?;
        self.check_workload()?;
        self.check_faults()?;
        self.check_timeline()?;
        self.check_fault_count()?;
        self.check_targets()
    }

    /// An error about `field`, at the line and column of its value; for the
    /// checks that need the host (is a program there, can it be reached) and
    /// so run after parsing.
    pub fn error_at(&self, field: impl Into<String>, message: impl Into<String>) -> ConfigError {
        self.invalid(field, message)
    }

    /// An error about `field`, at the line and column of its value.
    fn invalid(&self, field: impl Into<String>, message: impl Into<String>) -> ConfigError {
        let field = field.into();
        let (line, column) = match locate(&self.source.text, &field) {
            Some((l, c)) => (Some(l), Some(c)),
            None => (None, None),
        };
        ConfigError::Invalid {
            path: self.source.path.clone(),
            line,
            column,
            field,
            message: message.into(),
        }
    }

    /// How the run's end reads in a message: `10s`, or `4s (--duration)`.
    fn run_end(&self) -> String {
        let end = show(self.duration);
        if self.source.duration_overridden {
            format!("{end} (--duration)")
        } else {
            end
        }
    }

    fn check_duration(&self) -> Result<(), ConfigError> {
        let problem = if self.duration.is_zero() {
            "must be longer than 0s".to_owned()
        } else if self.duration > MAX_DURATION {
            format!("must be at most {} (the longest run)", show(MAX_DURATION))
        } else {
            return Ok(());
        };
        if !self.source.duration_overridden {
            return Err(self.invalid("duration", problem));
        }
        // The value came from the command line: no line of the file to show.
        Err(ConfigError::Invalid {
            path: self.source.path.clone(),
            line: None,
            column: None,
            field: "duration".into(),
            message: format!("--duration {}: {problem}", show(self.duration)),
        })
    }

    fn check_lock(&self) -> Result<(), ConfigError> {
        if self.lock.service == LockService::Redlock && self.lock.nodes.get() == 1 {
            return Err(self.invalid(
                "lock.nodes",
                "redlock takes a majority of independent redis-servers: with 1 node it is \
                 plain Redis (service: redis); give 3 or more (5 when absent)",
            ));
        }
        if !self.lock.persistence.is_none()
            && !matches!(self.lock.service, LockService::Redis | LockService::Redlock)
        {
            return Err(self.invalid(
                "lock.persistence",
                format!(
                    "only service: redis and redlock take a persistence (of their \
                     redis-servers); {} keeps its data its own way",
                    self.lock.service.system().name()
                ),
            ));
        }
        self.check_postgres()?;
        if self.lock.image.is_some() && self.lock.binary.is_some() {
            return Err(self.invalid(
                "lock.binary",
                "give the lock nodes an image or a binary, not both",
            ));
        }
        if self.runtime != RuntimeKind::Docker {
            for (field, set) in [
                ("image", self.lock.image.is_some()),
                ("binary", self.lock.binary.is_some()),
            ] {
                if set {
                    return Err(self.invalid(
                        format!("lock.{field}"),
                        "only the docker runtime starts nodes from an image or a packed binary",
                    ));
                }
            }
        }
        self.check_exec()
    }

    /// `postgres` belongs to `service: postgres`, which has one node; its
    /// durations are whole milliseconds, as PostgreSQL takes them.
    fn check_postgres(&self) -> Result<(), ConfigError> {
        let lock = &self.lock;
        if lock.service != LockService::Postgres {
            if lock.postgres.is_some() {
                return Err(self.invalid(
                    "lock.postgres",
                    format!(
                        "only service: postgres takes postgres settings; {} has its own",
                        lock.service.system().name()
                    ),
                ));
            }
            return Ok(());
        }
        if lock.nodes.get() != 1 {
            return Err(self.invalid(
                "lock.nodes",
                "PostgreSQL's advisory locks live in one server: service: postgres has 1 lock \
                 node",
            ));
        }
        let Some(pg) = &lock.postgres else {
            return Ok(());
        };
        for (field, d) in pg.durations() {
            let Some(d) = d else { continue };
            if d.is_zero() || d.subsec_nanos() % 1_000_000 != 0 {
                return Err(self.invalid(
                    format!("lock.postgres.{field}"),
                    format!(
                        "must be a whole number of milliseconds above 0 (PostgreSQL's 0 turns \
                         it off: leave it out for that), not {}",
                        show(d)
                    ),
                ));
            }
        }
        if pg.tcp_keepalives_count == Some(0) {
            return Err(self.invalid(
                "lock.postgres.tcp_keepalives_count",
                "must be above 0 (leave it out for the system's default)",
            ));
        }
        Ok(())
    }

    /// `server`, `client` and `addresses` belong to `service: exec`, which
    /// needs a client and either a server or addresses.
    fn check_exec(&self) -> Result<(), ConfigError> {
        use leasehold_workloads::system::exec::{PLACEHOLDERS, unknown_placeholder};
        let lock = &self.lock;
        if lock.service != LockService::Exec {
            for (field, set) in [
                ("server", lock.server.is_some()),
                ("client", lock.client.is_some()),
                ("addresses", !lock.addresses.is_empty()),
            ] {
                if set {
                    return Err(self.invalid(
                        format!("lock.{field}"),
                        format!(
                            "only service: exec takes a {field}; {} knows its own",
                            lock.service.system().name()
                        ),
                    ));
                }
            }
            return Ok(());
        }
        let Some(client) = &lock.client else {
            return Err(self.invalid(
                "lock.client",
                "service: exec needs the adapter each worker starts: \
                 client: { command: [program, args…] }",
            ));
        };
        if client.command.is_empty() {
            return Err(self.invalid("lock.client.command", "must not be empty"));
        }
        match &lock.server {
            Some(server) => {
                if server.command.is_empty() {
                    return Err(self.invalid("lock.server.command", "must not be empty"));
                }
                if let Some((k, word)) = server
                    .command
                    .iter()
                    .enumerate()
                    .find_map(|(k, a)| unknown_placeholder(a).map(|w| (k, w)))
                {
                    return Err(self.invalid(
                        format!("lock.server.command[{k}]"),
                        format!(
                            "unknown placeholder {word}; known: {}",
                            PLACEHOLDERS.join(", ")
                        ),
                    ));
                }
                if server.port == 0 {
                    return Err(self.invalid("lock.server.port", "must not be 0"));
                }
                if !lock.addresses.is_empty() {
                    return Err(self.invalid(
                        "lock.addresses",
                        "give a server (leasehold starts the lock nodes) or addresses (you \
                         run them), not both",
                    ));
                }
            }
            None => {
                if lock.addresses.is_empty() {
                    return Err(self.invalid(
                        "lock.addresses",
                        "service: exec without a server needs the host:port of each node of \
                         your lock service",
                    ));
                }
                for (k, a) in lock.addresses.iter().enumerate() {
                    let port = a.rsplit_once(':').and_then(|(h, p)| {
                        (!h.is_empty()).then_some(())?;
                        p.parse::<u16>().ok().filter(|p| *p != 0)
                    });
                    if port.is_none() {
                        return Err(self.invalid(
                            format!("lock.addresses[{k}]"),
                            format!("{a:?} is not host:port"),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// `storage.service` and what belongs to it: `server`, `client` and
    /// `addresses` to exec only; etcd-txn only over the etcd lock.
    fn check_storage(&self) -> Result<(), ConfigError> {
        let storage = &self.storage;
        let name = storage.service.system().name();
        if storage.service != StorageService::Exec {
            for (field, set) in [
                ("server", storage.server.is_some()),
                ("client", storage.client.is_some()),
                ("addresses", !storage.addresses.is_empty()),
            ] {
                if set {
                    return Err(self.invalid(
                        format!("storage.{field}"),
                        format!("only storage service: exec takes a {field}; {name} knows its own"),
                    ));
                }
            }
        }
        match storage.service {
            StorageService::Reference => Ok(()),
            StorageService::EtcdTxn => {
                if self.lock.service != LockService::Etcd {
                    return Err(self.invalid(
                        "storage.service",
                        format!(
                            "etcd-txn writes into the lock's etcd cluster, guarded by the \
                             holder's lock key: it needs lock.service: etcd, not {}",
                            self.lock.service.system().name()
                        ),
                    ));
                }
                // 1 is the default, which a config written back says again.
                if storage.nodes.get() != 1 {
                    return Err(self.invalid(
                        "storage.nodes",
                        "etcd-txn starts no storage nodes: the lock's etcd members store the \
                         data; leave nodes out",
                    ));
                }
                Ok(())
            }
            StorageService::Exec => self.check_exec_storage(),
            StorageService::Postgres => {
                if storage.nodes.get() != 1 {
                    return Err(self.invalid(
                        "storage.nodes",
                        "storage service: postgres is one PostgreSQL server: it has 1 node",
                    ));
                }
                Ok(())
            }
        }
    }

    /// exec storage needs a client and either a server or addresses.
    fn check_exec_storage(&self) -> Result<(), ConfigError> {
        use leasehold_workloads::storage::exec::{FENCING_PLACEHOLDER, unknown_placeholder};
        let storage = &self.storage;
        let Some(client) = &storage.client else {
            return Err(self.invalid(
                "storage.client",
                "storage service: exec needs the adapter each worker starts: \
                 client: { command: [program, args…] }",
            ));
        };
        if client.command.is_empty() {
            return Err(self.invalid("storage.client.command", "must not be empty"));
        }
        match &storage.server {
            Some(server) => {
                if server.command.is_empty() {
                    return Err(self.invalid("storage.server.command", "must not be empty"));
                }
                if let Some((k, word)) = server
                    .command
                    .iter()
                    .enumerate()
                    .find_map(|(k, a)| unknown_placeholder(a).map(|w| (k, w)))
                {
                    let mut known = leasehold_workloads::system::exec::PLACEHOLDERS.to_vec();
                    known.push(FENCING_PLACEHOLDER);
                    return Err(self.invalid(
                        format!("storage.server.command[{k}]"),
                        format!("unknown placeholder {word}; known: {}", known.join(", ")),
                    ));
                }
                if server.port == 0 {
                    return Err(self.invalid("storage.server.port", "must not be 0"));
                }
                if !storage.addresses.is_empty() {
                    return Err(self.invalid(
                        "storage.addresses",
                        "give a server (leasehold starts the storage nodes) or addresses (you \
                         run them), not both",
                    ));
                }
            }
            None => {
                if storage.addresses.is_empty() {
                    return Err(self.invalid(
                        "storage.addresses",
                        "storage service: exec without a server needs the host:port of each \
                         node of your store",
                    ));
                }
                for (k, a) in storage.addresses.iter().enumerate() {
                    let port = a.rsplit_once(':').and_then(|(h, p)| {
                        (!h.is_empty()).then_some(())?;
                        p.parse::<u16>().ok().filter(|p| *p != 0)
                    });
                    if port.is_none() {
                        return Err(self.invalid(
                            format!("storage.addresses[{k}]"),
                            format!("{a:?} is not host:port"),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// Node counts must fit their address blocks, keys a sane number.
    fn check_counts(&self) -> Result<(), ConfigError> {
        for (block, count) in ADDRESS_BLOCKS.iter().zip(self.node_counts()) {
            if count > block.capacity() {
                return Err(self.invalid(
                    block.field,
                    format!(
                        "at most {} {} fit the run's /24 subnet (addresses .{} to .{})",
                        block.capacity(),
                        block.what,
                        block.first,
                        block.last
                    ),
                ));
            }
        }
        if self.workload.keys.get() > MAX_KEYS {
            return Err(self.invalid("workload.keys", format!("must be at most {MAX_KEYS}")));
        }
        Ok(())
    }

    fn check_workload(&self) -> Result<(), ConfigError> {
        let w = &self.workload;
        // (field, value, shortest allowed, why)
        let checks: [(&str, Duration, Duration, &str); 4] = [
            (
                "lease",
                w.lease,
                MIN_FAULT,
                " (leases are granted in whole milliseconds)",
            ),
            ("think", w.think, Duration::ZERO, ""),
            (
                "timeout",
                w.timeout,
                MIN_FAULT,
                " (requests time out in whole milliseconds)",
            ),
            ("backoff", w.backoff, Duration::ZERO, ""),
        ];
        for (name, value, least, why) in checks {
            let field = format!("workload.{name}");
            if value < least {
                return Err(self.invalid(field, format!("must be at least {}{why}", show(least))));
            }
            if value > MAX_WAIT {
                return Err(self.invalid(field, format!("must be at most {}", show(MAX_WAIT))));
            }
        }
        Ok(())
    }

    /// Bounds of each generator's spans, so schedules stay small and their
    /// arithmetic cannot overflow.
    fn check_faults(&self) -> Result<(), ConfigError> {
        for (i, f) in self.nemesis.faults.iter().enumerate() {
            let field = |name: &str| format!("nemesis.faults[{i}].{name}");
            if let Err(e) = f.clock_fields().change(f.fault == FaultKind::Clock) {
                return Err(self.invalid(field(e.field), e.message));
            }
            self.check_span(field("for"), f.duration, MIN_FAULT)?;
            if let Some(every) = f.every {
                self.check_span(field("every"), every, MIN_EVERY)?;
            }
            if f.start_after > MAX_DURATION {
                return Err(self.invalid(
                    field("start_after"),
                    format!("must be at most {} (the longest run)", show(MAX_DURATION)),
                ));
            }
            self.check_packet_fields(
                &format!("nemesis.faults[{i}]"),
                "fault",
                f.fault,
                &f.packet_fields(),
                f.shape(),
                f.topology.is_some(),
            )?;
        }
        Ok(())
    }

    /// Fields only packet faults take (`delay`, `jitter`, `loss`,
    /// `duplicate`, `reorder`) are refused on other faults, and a
    /// partition's `topology` on packet faults; a packet fault must change
    /// something, hold packets for at most [`packet::MAX_HOLD`], and reorder
    /// only what it delays. `at` is the generator's or entry's path, `key`
    /// the field that names its fault.
    fn check_packet_fields(
        &self,
        at: &str,
        key: &str,
        fault: FaultKind,
        given: &[&str],
        shape: packet::Shape,
        has_topology: bool,
    ) -> Result<(), ConfigError> {
        let field = |name: &str| format!("{at}.{name}");
        if fault != FaultKind::Packet {
            if let Some(name) = given.first() {
                return Err(self.invalid(
                    field(name),
                    format!(
                        "only packet faults take `{name}`; a {} fault does not",
                        fault.as_str()
                    ),
                ));
            }
            return Ok(());
        }
        if has_topology {
            return Err(self.invalid(
                field("topology"),
                "a packet fault shapes the link between `target` and `from` (both ways); \
                 it takes no topology",
            ));
        }
        let key_field = if key == "fault" {
            field("fault")
        } else {
            field("packet")
        };
        if shape.is_noop() {
            return Err(self.invalid(
                key_field,
                "a packet fault needs a `delay`, `loss` or `duplicate` (and may take \
                 `jitter` and `reorder`)",
            ));
        }
        let hold = shape.delay.saturating_add(shape.jitter);
        if hold > packet::MAX_HOLD {
            let name = if shape.jitter > shape.delay {
                "jitter"
            } else {
                "delay"
            };
            return Err(self.invalid(
                field(name),
                format!(
                    "holds packets up to {} (delay + jitter); at most {}",
                    show(hold),
                    show(packet::MAX_HOLD)
                ),
            ));
        }
        if !shape.reorder.is_zero() && !shape.holds() {
            return Err(self.invalid(
                field("reorder"),
                "reorder lets a share of packets overtake the delayed ones: it needs a `delay`",
            ));
        }
        Ok(())
    }

    fn check_span(&self, field: String, span: Span, least: Duration) -> Result<(), ConfigError> {
        if span.min < least {
            let what = if span.min == span.max {
                "must be"
            } else {
                "the range's lower bound must be"
            };
            return Err(self.invalid(field, format!("{what} at least {}", show(least))));
        }
        if span.max > MAX_DURATION {
            return Err(self.invalid(
                field,
                format!("must be at most {} (the longest run)", show(MAX_DURATION)),
            ));
        }
        Ok(())
    }

    /// Every timeline entry starts and ends within the run: one that does not
    /// would be listed and never run, or cut short.
    fn check_timeline(&self) -> Result<(), ConfigError> {
        for (i, e) in self.nemesis.timeline.iter().enumerate() {
            let field = |name: &str| format!("nemesis.timeline[{i}].{name}");
            if let Err(err) = e.clock_fields().change(e.fault == FaultKind::Clock) {
                // The fault is the key of a timeline entry: `clock: lock1`.
                let name = if err.field == "fault" {
                    "clock"
                } else {
                    err.field
                };
                return Err(self.invalid(field(name), err.message));
            }
            if e.at >= self.duration {
                return Err(self.invalid(
                    field("at"),
                    format!(
                        "starts at {}, but the run ends at {}",
                        show(e.at),
                        self.run_end()
                    ),
                ));
            }
            if e.duration < MIN_FAULT {
                return Err(self.invalid(
                    field("for"),
                    format!("must be at least {}", show(MIN_FAULT)),
                ));
            }
            self.check_packet_fields(
                &format!("nemesis.timeline[{i}]"),
                e.fault.as_str(),
                e.fault,
                &e.packet_fields(),
                e.shape(),
                e.topology.is_some(),
            )?;
            let ends = e.at.saturating_add(e.duration);
            if ends > self.duration {
                return Err(self.invalid(
                    field("for"),
                    format!(
                        "lasts until {} ({} + {}), past the end of the run at {}",
                        show(ends),
                        show(e.at),
                        show(e.duration),
                        self.run_end()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The worst case of the whole schedule, from the lower bounds of `for`
    /// and `every`, fits [`ScheduledFault::MAX_PER_RUN`]; computed, not built.
    fn check_fault_count(&self) -> Result<(), ConfigError> {
        let cap = ScheduledFault::MAX_PER_RUN as u64;
        let timeline = self.nemesis.timeline.len() as u64;
        if timeline > cap {
            return Err(self.invalid(
                format!("nemesis.timeline[{cap}]"),
                format!("the timeline has {timeline} entries; a run takes at most {cap} faults"),
            ));
        }
        let most: Vec<u64> = self
            .nemesis
            .faults
            .iter()
            .map(|f| f.most_faults(self.duration))
            .collect();
        let total = most.iter().fold(timeline, |a, b| a.saturating_add(*b));
        if total <= cap {
            return Ok(());
        }
        // Point at the generator that contributes most.
        let (i, n) = most
            .iter()
            .copied()
            .enumerate()
            .max_by_key(|(i, n)| (*n, std::cmp::Reverse(*i)))
            .expect("more faults than the timeline holds come from a generator");
        let f = &self.nemesis.faults[i];
        let (name, what) = match f.every {
            Some(e) => ("every", format!("every {e}")),
            None => ("for", "once".to_owned()),
        };
        let others = if total == n {
            String::new()
        } else {
            format!(", {total} with the rest of the nemesis")
        };
        Err(self.invalid(
            format!("nemesis.faults[{i}].{name}"),
            format!(
                "{what} from {} in a run of {} schedules up to {n} faults{others}; a run takes at most {cap}",
                show(f.start_after),
                self.run_end()
            ),
        ))
    }

    fn check_targets(&self) -> Result<(), ConfigError> {
        let names = self.node_names();
        let mut targets: Vec<(String, &Target)> = Vec::new();
        for (i, f) in self.nemesis.faults.iter().enumerate() {
            targets.push((format!("nemesis.faults[{i}].target"), &f.target));
            if let Some(from) = &f.from {
                targets.push((format!("nemesis.faults[{i}].from"), from));
            }
        }
        for (i, e) in self.nemesis.timeline.iter().enumerate() {
            targets.push((
                format!("nemesis.timeline[{i}].{}", e.fault.as_str()),
                &e.target,
            ));
            if let Some(from) = &e.from {
                targets.push((format!("nemesis.timeline[{i}].from"), from));
            }
        }
        for (field, target) in targets {
            if let Some(n) = target.named().iter().find(|n| !names.contains(n)) {
                return Err(self.invalid(
                    field,
                    format!("no node is named {n:?}; the nodes are {}", names.join(", ")),
                ));
            }
        }
        Ok(())
    }

    /// How many lock nodes, storage nodes and workers, in [`ADDRESS_BLOCKS`]'
    /// order.
    fn node_counts(&self) -> [u32; 3] {
        [
            self.lock.started_nodes(),
            self.storage.started_nodes(),
            self.workload.workers.get(),
        ]
    }

    /// The last octet of a node's address on the run's /24: lock i is `.10+i`,
    /// store i `.30+i`, worker i `.100+i`. Distinct for every node of a
    /// checked config, and never `.0`, `.1` or `.255`; `None` for a name that
    /// is not one of the config's nodes.
    pub fn node_octet(&self, name: &str) -> Option<u8> {
        ADDRESS_BLOCKS
            .iter()
            .zip(self.node_counts())
            .find_map(|(block, count)| {
                let digits = name.strip_prefix(block.prefix)?;
                let i: u32 = digits.parse().ok()?;
                // `w01` is not `w1`.
                let canonical = i.to_string() == digits;
                let fits = (1..=count.min(block.capacity())).contains(&i);
                (canonical && fits).then(|| block.first + (i - 1) as u8)
            })
    }

    /// The role of one of the config's nodes, by its name (`lock2`,
    /// `store1`, `w3`); `None` for a name that is not one of them.
    pub fn role_of(&self, name: &str) -> Option<Role> {
        const ROLES: [Role; 3] = [Role::Lock, Role::Storage, Role::Worker];
        self.node_octet(name)?;
        ADDRESS_BLOCKS
            .iter()
            .zip(ROLES)
            .find(|(b, _)| name.starts_with(b.prefix))
            .map(|(_, r)| r)
    }

    /// Every node of the run with the last octet of its address (see
    /// [`Config::node_octet`]).
    pub fn node_octets(&self) -> Vec<(String, u8)> {
        self.node_names()
            .into_iter()
            .filter_map(|n| self.node_octet(&n).map(|o| (n, o)))
            .collect()
    }

    /// Names of the run's nodes: `lock1…`, `store1…`, `w1…`.
    pub fn node_names(&self) -> Vec<String> {
        let mut v = Vec::new();
        v.extend((1..=self.lock.started_nodes()).map(|i| format!("lock{i}")));
        v.extend((1..=self.storage.started_nodes()).map(|i| format!("store{i}")));
        v.extend((1..=self.workload.workers.get()).map(|i| format!("w{i}")));
        v
    }

    /// Every node a clock fault of the config may hit, with the field of
    /// the first fault that may: these nodes are started under the clock
    /// library. A target resolved at run time (`holder`, `one`, …) counts
    /// every node it could resolve to.
    pub fn clock_nodes(&self) -> BTreeMap<String, String> {
        let names = self.node_names();
        let of_role = |role: Role| -> Vec<String> {
            names
                .iter()
                .filter(|n| self.role_of(n) == Some(role))
                .cloned()
                .collect()
        };
        let hit = |target: &Target| -> Vec<String> {
            match target {
                Target::Node(_) | Target::Nodes(_) => target.named().to_vec(),
                Target::Role(Role::Lock) | Target::LockLeader => of_role(Role::Lock),
                Target::Role(Role::Storage) => of_role(Role::Storage),
                Target::Role(Role::Worker) | Target::Holder => of_role(Role::Worker),
                Target::One | Target::Minority | Target::Majority | Target::All => names.clone(),
            }
        };
        let mut nodes = BTreeMap::new();
        let faults = self
            .nemesis
            .faults
            .iter()
            .enumerate()
            .map(|(i, f)| (format!("nemesis.faults[{i}].target"), f.fault, &f.target));
        let entries = self
            .nemesis
            .timeline
            .iter()
            .enumerate()
            .map(|(i, e)| (format!("nemesis.timeline[{i}].clock"), e.fault, &e.target));
        for (field, kind, target) in faults.chain(entries) {
            if kind == FaultKind::Clock {
                for n in hit(target) {
                    nodes.entry(n).or_insert_with(|| field.clone());
                }
            }
        }
        nodes
    }

    /// Whether any fault of the config is a partition.
    pub fn has_partitions(&self) -> bool {
        self.nemesis
            .faults
            .iter()
            .any(|f| f.fault == FaultKind::Partition)
            || self
                .nemesis
                .timeline
                .iter()
                .any(|e| e.fault == FaultKind::Partition)
    }

    /// Whether any fault of the config is a packet fault.
    pub fn has_packets(&self) -> bool {
        self.nemesis
            .faults
            .iter()
            .any(|f| f.fault == FaultKind::Packet)
            || self
                .nemesis
                .timeline
                .iter()
                .any(|e| e.fault == FaultKind::Packet)
    }

    /// The config as run, seed included, for the run folder.
    pub fn to_yaml(&self) -> String {
        serde_yaml::to_string(self).expect("a config serializes")
    }
}

/// serde_yaml prefixes the field's path and appends " at line L column C"; we
/// print both up front, once.
fn strip_location(msg: &str) -> String {
    let msg = match msg.find(" at line ") {
        Some(i) => &msg[..i],
        None => msg,
    };
    let is_path = |p: &str| {
        !p.is_empty()
            && p.chars()
                .all(|c| c.is_alphanumeric() || "._[]-".contains(c))
    };
    match msg.split_once(": ") {
        Some((path, rest)) if is_path(path) => rest.to_owned(),
        _ => msg.to_owned(),
    }
}

fn too_large(path: &Path) -> ConfigError {
    ConfigError::Invalid {
        path: path.to_owned(),
        line: None,
        column: None,
        field: "(top level)".into(),
        message: "larger than 1 MiB, the most leasehold reads; a config is a few hundred bytes"
            .into(),
    }
}

/// A duration as configs write it: `1h`, `10s`, `2500ms`.
fn show(d: Duration) -> String {
    if d >= Duration::from_secs(3600) && d.as_secs().is_multiple_of(3600) && d.subsec_nanos() == 0 {
        format!("{}h", d.as_secs() / 3600)
    } else {
        humantime::format_duration(d).to_string()
    }
}

/// One step of a field's path: a map key or a list index.
enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

/// `nemesis.faults[0].for` as steps; `None` for names that are no path, such
/// as `(top level)`.
fn steps(field: &str) -> Option<Vec<Step<'_>>> {
    let mut out = Vec::new();
    for part in field.split('.') {
        let (key, mut rest) = part.split_once('[').map_or((part, ""), |(k, r)| (k, r));
        if !key.is_empty() {
            if !key.chars().all(|c| c.is_alphanumeric() || c == '_') {
                return None;
            }
            out.push(Step::Key(key));
        }
        while !rest.is_empty() {
            let (index, after) = rest.split_once(']')?;
            out.push(Step::Index(index.parse().ok()?));
            rest = after.strip_prefix('[').unwrap_or(after);
        }
    }
    Some(out)
}

/// Line and column of the value at `field` in `text`, as serde_yaml reports
/// them; of the nearest enclosing value when the field itself is not written
/// (a default). Deserializes once more with a walker that fails where the
/// value is: serde_yaml stamps an error with the position of the node being
/// read.
fn locate(text: &str, field: &str) -> Option<(usize, usize)> {
    let steps = steps(field)?;
    (1..=steps.len()).rev().find_map(|n| {
        let de = serde_yaml::Deserializer::from_str(text);
        let err = Walk(Some(&steps[..n])).deserialize(de).err()?;
        err.location().map(|l| (l.line(), l.column()))
    })
}

/// Walks to the node at the path, skipping everything else (`None`).
struct Walk<'p, 'a>(Option<&'p [Step<'a>]>);

/// Fails on whatever node it is given: the error carries that node's position.
struct Here;

impl<'de> Visitor<'de> for Here {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("nothing (this error only finds the node)")
    }
}

impl<'de> DeserializeSeed<'de> for Walk<'_, '_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        match self.0 {
            None => d.deserialize_ignored_any(IgnoredAny).map(drop),
            Some([]) => d.deserialize_any(Here),
            Some(path) => d.deserialize_any(Walk(Some(path))),
        }
    }
}

/// Scalars are not on the way to anything: the path is not there.
macro_rules! not_here {
    ($($name:ident: $t:ty),*) => {
        $(fn $name<E: serde::de::Error>(self, _: $t) -> Result<(), E> {
            Ok(())
        })*
    };
}

impl<'de> Visitor<'de> for Walk<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML node")
    }
    not_here!(visit_bool: bool, visit_i64: i64, visit_u64: u64, visit_i128: i128,
        visit_u128: u128, visit_f64: f64, visit_str: &str, visit_bytes: &[u8]);
    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_none<E: serde::de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Some([Step::Key(want), rest @ ..]) = self.0 else {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            return Ok(());
        };
        while let Some(key) = map.next_key::<serde_yaml::Value>()? {
            let on_path = key.as_str() == Some(*want);
            map.next_value_seed(Walk(on_path.then_some(rest)))?;
        }
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let (want, rest) = match self.0 {
            Some([Step::Index(i), rest @ ..]) => (Some(*i), rest),
            _ => (None, &[][..]),
        };
        let mut i = 0;
        while seq
            .next_element_seed(Walk((want == Some(i)).then_some(rest)))?
            .is_some()
        {
            i += 1;
        }
        Ok(())
    }
}

/// Where nesting went past [`MAX_NESTING`]: the line and column (1-based, in
/// characters) of the map entry, list item or bracket that went one too deep,
/// and the path of keys that led there.
#[derive(Debug)]
struct TooDeep {
    line: usize,
    column: usize,
    field: String,
}

/// Refuses configs that nest maps and lists more than [`MAX_NESTING`] deep,
/// in one pass over the text and with memory bounded by the limit. Follows
/// YAML's rules for what opens a level (block map entries and list items by
/// their indentation, `[` and `{`) and what does not (quoted, plain and block
/// scalars, comments), so text inside a string neither counts nor hides a
/// level.
fn check_nesting(text: &str) -> Result<(), TooDeep> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut shape = Shape::default();
    let mut chars = Vec::new();
    for (n, line) in yaml_lines(text).enumerate() {
        chars.clear();
        chars.extend(line.chars());
        shape.line(n + 1, &chars)?;
    }
    Ok(())
}

/// The lines of `text`, split at every line break libyaml knows: `\n`,
/// `\r\n`, `\r`, NEL, LS and PS (splitting at fewer would let a file hide its
/// indentation from the check).
fn yaml_lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let r = rest?;
        match r.find(['\n', '\r', '\u{85}', '\u{2028}', '\u{2029}']) {
            Some(i) => {
                let brk = r[i..].chars().next().expect("a break was found");
                let mut next = i + brk.len_utf8();
                if brk == '\r' && r[next..].starts_with('\n') {
                    next += 1;
                }
                rest = Some(&r[next..]);
                Some(&r[..i])
            }
            None => {
                rest = None;
                Some(r)
            }
        }
    })
}

/// One open block collection: a map or a list, by its column.
struct Level {
    column: usize,
    list: bool,
    /// A map's current key.
    key: String,
    /// A list's current index.
    index: usize,
}

/// What [`check_nesting`] knows at the end of a line.
#[derive(Default)]
struct Shape {
    levels: Vec<Level>,
    /// Open `[` and `{`.
    flow: usize,
    /// Inside flow, the last line ended where a node may start (after `[`,
    /// `,`, `: `) rather than inside a plain scalar, which goes on.
    flow_start: bool,
    /// An open quoted scalar, by its quote.
    quote: Option<char>,
    block_scalar: Option<BlockScalar>,
    /// A plain scalar ended the last line: lines indented more than this go
    /// on with it.
    plain: Option<isize>,
}

/// An open `|` or `>` scalar: its lines are blank or indented more than
/// `parent`, by `indent` once the first line (or an indicator) fixed it.
struct BlockScalar {
    parent: isize,
    indent: Option<usize>,
}

fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

impl Shape {
    /// The column of the innermost open block collection; -1 at the top.
    fn parent(&self) -> isize {
        self.levels.last().map_or(-1, |l| l.column as isize)
    }

    fn path(&self) -> String {
        let mut path = String::new();
        for l in &self.levels {
            if l.list {
                path.push_str(&format!("[{}]", l.index));
            } else {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(&l.key);
            }
        }
        if path.is_empty() {
            "(top level)".into()
        } else {
            path
        }
    }

    fn line(&mut self, line: usize, c: &[char]) -> Result<(), TooDeep> {
        let indent = c.iter().take_while(|ch| is_blank(**ch)).count();
        let blank = indent == c.len();
        if let Some(b) = &mut self.block_scalar {
            if blank {
                return Ok(());
            }
            let least = b.indent.unwrap_or(0).max((b.parent + 1) as usize);
            if indent >= least {
                b.indent.get_or_insert(indent);
                return Ok(());
            }
            self.block_scalar = None;
        }
        if self.quote.is_some() || self.flow > 0 {
            // Inside a quoted scalar or a flow collection, lines are not
            // block structure.
            let start = self.flow_start;
            return self.inline(line, c, 0, start);
        }
        if blank {
            return Ok(());
        }
        if c[indent] == '#' {
            self.plain = None; // a comment ends a plain scalar
            return Ok(());
        }
        let mut i = indent;
        let marker = |m: &str| {
            indent == 0
                && c.iter().take(3).copied().eq(m.chars())
                && c.get(3).is_none_or(|ch| is_blank(*ch))
        };
        if marker("---") || marker("...") {
            self.levels.clear();
            self.plain = None;
            i = 3;
        } else if indent == 0 && c[0] == '%' {
            return Ok(()); // a directive
        } else if self.plain.is_some_and(|p| indent as isize > p) {
            return Ok(()); // the plain scalar goes on: text
        }
        self.plain = None;
        loop {
            while c.get(i).is_some_and(|ch| is_blank(*ch)) {
                i += 1;
            }
            if i == c.len() || c[i] == '#' {
                return Ok(());
            }
            let spaced = c.get(i + 1).is_none_or(|ch| is_blank(*ch));
            match c[i] {
                '-' if spaced => self.enter(line, i, true, "")?,
                '?' | ':' if spaced => self.enter(line, i, false, "?")?,
                _ => {
                    if let Some(key) = key_of(&c[i..]) {
                        self.enter(line, i, false, &key)?;
                    }
                    break;
                }
            }
            i += 1;
        }
        self.inline(line, c, i, true)
    }

    /// A map entry or list item starts at `column`.
    fn enter(&mut self, line: usize, column: usize, list: bool, key: &str) -> Result<(), TooDeep> {
        while let Some(top) = self.levels.last() {
            // A map's list may sit at the map's own column; a key at that
            // column ends the list.
            if top.column > column || (top.column == column && top.list && !list) {
                self.levels.pop();
            } else {
                break;
            }
        }
        match self.levels.last_mut() {
            Some(top) if top.column == column && top.list == list => {
                if list {
                    top.index += 1;
                } else {
                    top.key = key.to_owned();
                }
            }
            _ => {
                self.levels.push(Level {
                    column,
                    list,
                    key: key.to_owned(),
                    index: 0,
                });
                if self.levels.len() > MAX_NESTING {
                    return Err(TooDeep {
                        line,
                        column: column + 1,
                        field: self.path(),
                    });
                }
            }
        }
        Ok(())
    }

    fn open_flow(&mut self, line: usize, i: usize) -> Result<(), TooDeep> {
        self.flow += 1;
        if self.levels.len() + self.flow > MAX_NESTING {
            return Err(TooDeep {
                line,
                column: i + 1,
                field: self.path(),
            });
        }
        Ok(())
    }

    /// The rest of a line from `i`: quotes, flow brackets, comments and the
    /// start of block scalars. `start`: a node may begin here.
    fn inline(
        &mut self,
        line: usize,
        c: &[char],
        mut i: usize,
        mut start: bool,
    ) -> Result<(), TooDeep> {
        let mut plain = false;
        while i < c.len() {
            let ch = c[i];
            if let Some(q) = self.quote {
                if q == '"' && ch == '\\' {
                    i += 2;
                    continue;
                }
                if ch == q {
                    if q == '\'' && c.get(i + 1) == Some(&'\'') {
                        i += 2;
                        continue;
                    }
                    self.quote = None;
                }
                i += 1;
                continue;
            }
            if is_blank(ch) {
                i += 1;
                continue;
            }
            if ch == '#' && (i == 0 || is_blank(c[i - 1])) {
                break;
            }
            let next = c.get(i + 1).copied();
            let spaced = next.is_none_or(is_blank);
            if start {
                match ch {
                    '\'' | '"' => {
                        self.quote = Some(ch);
                        start = false;
                        plain = false;
                        i += 1;
                        continue;
                    }
                    '&' | '!' => {
                        // An anchor or a tag: the node comes after it.
                        while i < c.len() && !is_blank(c[i]) {
                            i += 1;
                        }
                        continue;
                    }
                    '|' | '>' if self.flow == 0 => {
                        let indent = c[i + 1..]
                            .iter()
                            .take_while(|ch| !is_blank(**ch))
                            .find_map(|ch| ch.to_digit(10))
                            .filter(|d| *d > 0)
                            .map(|d| (self.parent().max(0) as usize) + d as usize);
                        self.block_scalar = Some(BlockScalar {
                            parent: self.parent(),
                            indent,
                        });
                        return Ok(());
                    }
                    _ => {}
                }
            }
            if self.flow > 0 || ch == '[' || ch == '{' {
                match ch {
                    // Outside flow, only where a node starts.
                    '[' | '{' if start || self.flow > 0 => {
                        self.open_flow(line, i)?;
                        start = true;
                    }
                    ']' | '}' if self.flow > 0 => {
                        self.flow -= 1;
                        start = false;
                    }
                    ',' => start = true,
                    ':' if spaced || next.is_some_and(|n| ",[]{}".contains(n)) => start = true,
                    _ => start = false,
                }
                plain = self.flow == 0 && !start && !matches!(ch, ']' | '}');
            } else if ch == ':' && spaced {
                start = true;
                plain = false;
            } else {
                start = false;
                plain = true;
            }
            i += 1;
        }
        if self.quote.is_none() && self.flow == 0 && plain {
            self.plain = Some(self.parent());
        }
        self.flow_start = start;
        Ok(())
    }
}

/// The key of a block map entry starting at `c[0]` (a simple key: on one
/// line, then `: ` or `:` at the end), cut to 64 characters; `None` when the
/// line holds no key.
fn key_of(c: &[char]) -> Option<String> {
    let mut i = 0;
    // Anchors and tags before the key.
    while matches!(c.get(i), Some('&' | '!')) {
        while c.get(i).is_some_and(|ch| !is_blank(*ch)) {
            i += 1;
        }
        while c.get(i).is_some_and(|ch| is_blank(*ch)) {
            i += 1;
        }
    }
    let body = &c[i.min(c.len())..];
    let end = match body.first()? {
        '#' | '|' | '>' => return None,
        q @ ('\'' | '"') => {
            let mut j = 1;
            loop {
                match body.get(j)? {
                    '\\' if *q == '"' => j += 2,
                    ch if ch == q && *q == '\'' && body.get(j + 1) == Some(q) => j += 2,
                    ch if ch == q => break j + 1,
                    _ => j += 1,
                }
            }
        }
        '[' | '{' => {
            // A flow collection as a key: balanced on this line.
            let (mut depth, mut j, mut quote) = (0usize, 0, None);
            loop {
                let ch = *body.get(j)?;
                match (quote, ch) {
                    (Some('"'), '\\') => j += 1,
                    (Some(q), ch) if ch == q => quote = None,
                    (Some(_), _) => {}
                    (None, '\'' | '"') => quote = Some(ch),
                    (None, '[' | '{') => depth += 1,
                    (None, ']' | '}') => {
                        depth -= 1;
                        if depth == 0 {
                            break j + 1;
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
        }
        _ => {
            // A plain key (or an alias) ends at the first `: `.
            let mut j = 0;
            loop {
                let ch = *body.get(j)?;
                if ch == '#' && j > 0 && is_blank(body[j - 1]) {
                    return None;
                }
                if ch == ':' && body.get(j + 1).is_none_or(|n| is_blank(*n)) {
                    break j;
                }
                j += 1;
            }
        }
    };
    let mut j = end;
    while body.get(j).is_some_and(|ch| is_blank(*ch)) {
        j += 1;
    }
    let colon = body.get(j) == Some(&':') && body.get(j + 1).is_none_or(|n| is_blank(*n));
    colon.then(|| {
        body[..end]
            .iter()
            .take(64)
            .collect::<String>()
            .trim()
            .to_owned()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "test: t\nduration: 5s\nworkload:\n  workers: 3\n  lease: 1s\n  think: 200ms\nnemesis:\n  faults:\n    - fault: pause\n      target: holder\n      for: 2s\n      every: 3s\n";

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("t.yaml"))
    }

    #[test]
    fn a_good_config_round_trips() {
        let c = parse(GOOD).unwrap();
        assert_eq!(c.workload.workers.get(), 3);
        assert_eq!(c.node_names(), ["lock1", "store1", "w1", "w2", "w3"]);
        let again = parse(&c.to_yaml()).unwrap();
        assert_eq!(again, c);
    }

    #[test]
    fn errors_name_file_line_column_and_field() {
        let e = parse(&GOOD.replace("workers: 3", "workers: three")).unwrap_err();
        let s = e.to_string();
        assert!(s.starts_with("t.yaml:4:"), "{s}");
        assert!(s.contains("workload.workers"), "{s}");

        let e = parse(&GOOD.replace("think: 200ms", "think: 200ms\n  thinks: 1s")).unwrap_err();
        let s = e.to_string();
        assert!(s.contains("t.yaml:7:"), "{s}");
        assert!(s.contains("unknown field `thinks`"), "{s}");

        let e = parse(&GOOD.replace("workers: 3", "workers: 0")).unwrap_err();
        assert!(e.to_string().contains("workload.workers"), "{e}");

        let e = parse(&GOOD.replace("target: holder", "target: w9")).unwrap_err();
        let s = e.to_string();
        assert!(s.starts_with("t.yaml:10:15: "), "{s}");
        assert!(s.contains("nemesis.faults[0].target"), "{s}");
    }

    #[test]
    fn packet_faults_take_their_shape_and_round_trip() {
        let text = GOOD.replace(
            "    - fault: pause\n      target: holder\n",
            "    - fault: packet\n      target: holder\n      from: storage\n      delay: 300ms\n      jitter: 50ms\n      loss: 20%\n      duplicate: 5\n      reorder: 10%\n",
        );
        let c = parse(&text).unwrap();
        let f = &c.nemesis.faults[0];
        assert_eq!(f.fault, FaultKind::Packet);
        let shape = f.shape();
        assert_eq!(shape.delay, Duration::from_millis(300));
        assert_eq!(shape.jitter, Duration::from_millis(50));
        assert_eq!(
            (shape.loss.get(), shape.duplicate.get(), shape.reorder.get()),
            (20, 5, 10)
        );
        assert!(c.has_packets() && !c.has_partitions());
        assert_eq!(parse(&c.to_yaml()).unwrap(), c);
        // The schedule carries the shape.
        let s = leasehold_nemesis::schedule(&c.nemesis.faults, &[], c.duration, 1);
        assert!(s.iter().all(|f| f.packet == Some(shape)), "{s:?}");

        // A timeline entry, by its key.
        let timeline = "test: t\nduration: 5s\nworkload:\n  workers: 3\n  lease: 1s\n  think: 200ms\nnemesis:\n  timeline:\n    - { at: 1s, packet: holder, from: storage, delay: 1s, for: 2s }\n";
        let c = parse(timeline).unwrap();
        assert_eq!(c.nemesis.timeline[0].fault, FaultKind::Packet);
        assert_eq!(c.nemesis.timeline[0].shape().delay, Duration::from_secs(1));
        assert_eq!(parse(&c.to_yaml()).unwrap(), c);
    }

    #[test]
    fn packet_fields_are_refused_where_they_mean_nothing_with_line_and_field() {
        // On a pause.
        assert_eq!(
            error_of(&GOOD.replace("      for: 2s\n", "      for: 2s\n      delay: 300ms\n")),
            "t.yaml:12:14: nemesis.faults[0].delay: only packet faults take `delay`; a pause fault does not"
        );
        assert_eq!(
            error_of(&GOOD.replace("      for: 2s\n", "      for: 2s\n      loss: 20%\n")),
            "t.yaml:12:13: nemesis.faults[0].loss: only packet faults take `loss`; a pause fault does not"
        );
        let packet = |extra: &str| {
            GOOD.replace(
                "    - fault: pause\n      target: holder\n",
                &format!("    - fault: packet\n      target: holder\n{extra}"),
            )
        };
        // A topology on a packet fault.
        let e = error_of(&packet("      delay: 1s\n      topology: halves\n"));
        assert!(
            e.starts_with("t.yaml:12:17: nemesis.faults[0].topology: a packet fault shapes"),
            "{e}"
        );
        // A packet fault that does nothing.
        let e = error_of(&packet("      jitter: 0s\n"));
        assert!(
            e.starts_with("t.yaml:9:14: nemesis.faults[0].fault: a packet fault needs"),
            "{e}"
        );
        // Too long, or reordering nothing, or above 100 %.
        let e = error_of(&packet("      delay: 2m\n"));
        assert!(
            e.starts_with("t.yaml:11:14: nemesis.faults[0].delay: holds packets up to 2m"),
            "{e}"
        );
        let e = error_of(&packet("      loss: 5%\n      reorder: 5%\n"));
        assert!(
            e.starts_with("t.yaml:12:16: nemesis.faults[0].reorder: reorder lets"),
            "{e}"
        );
        let e = error_of(&packet("      loss: 120%\n"));
        assert!(e.starts_with("t.yaml:11:"), "{e}");
        assert!(e.contains("nemesis.faults[0].loss"), "{e}");
        assert!(e.contains("at most 100%"), "{e}");
        // The timeline, by the entry's key.
        let timeline = |entry: &str| {
            format!(
                "test: t\nduration: 5s\nworkload:\n  workers: 3\n  lease: 1s\n  think: 200ms\nnemesis:\n  timeline:\n    - {entry}\n"
            )
        };
        let e = error_of(&timeline("{ at: 1s, pause: w1, for: 1s, duplicate: 5% }"));
        assert_eq!(
            e,
            "t.yaml:9:48: nemesis.timeline[0].duplicate: only packet faults take `duplicate`; a pause fault does not"
        );
        let e = error_of(&timeline("{ at: 1s, packet: w1, for: 1s }"));
        assert!(
            e.starts_with("t.yaml:9:25: nemesis.timeline[0].packet: a packet fault needs"),
            "{e}"
        );
    }

    /// The error of a config that must not parse.
    fn error_of(text: &str) -> String {
        match parse(text) {
            Ok(c) => panic!("parsed: {c:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn every_example_parses() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
        let mut seen = 0;
        // The examples and their subfolders (exec/, findings/, findings/matrix/);
        // not ci/, whose YAML is a CI system's workflow.
        let mut paths = Vec::new();
        let mut dirs = vec![dir.clone()];
        while let Some(d) = dirs.pop() {
            for entry in std::fs::read_dir(&d).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    if path != dir.join("ci") {
                        dirs.push(path);
                    }
                } else {
                    paths.push(path);
                }
            }
        }
        for path in paths {
            if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                let c = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
                assert_eq!(parse(&c.to_yaml()).unwrap(), c, "{}", path.display());
                seen += 1;
            }
        }
        assert!(seen >= 70, "only {seen} examples in {}", dir.display());
    }

    #[test]
    fn clock_faults_are_checked_field_by_field() {
        let clock = |fields: &str| {
            GOOD.replace(
                "    - fault: pause\n      target: holder\n",
                &format!("    - fault: clock\n      target: lock1\n{fields}"),
            )
        };
        let good = parse(&clock("      jump: -1500ms\n      clocks: both\n")).unwrap();
        let change = good.nemesis.faults[0].clock_change().unwrap();
        assert_eq!(change.to_string(), "jump -1s 500ms (both)");
        assert_eq!(parse(&good.to_yaml()).unwrap(), good, "round trips");
        assert_eq!(good.clock_nodes().keys().collect::<Vec<_>>(), ["lock1"]);
        assert_eq!(good.role_of("lock1"), Some(Role::Lock));
        assert_eq!(good.role_of("store1"), Some(Role::Storage));
        assert_eq!(good.role_of("w3"), Some(Role::Worker));
        assert_eq!(good.role_of("w4"), None, "only three workers");
        assert_eq!(
            error_of(&clock("")),
            "t.yaml:9:14: nemesis.faults[0].fault: a clock fault takes one of `jump: +2s`, \
             `skew: 1.5` or `strobe: 200ms`"
        );
        assert_eq!(
            error_of(&clock("      jump: +2s\n      skew: 1.5\n")),
            "t.yaml:12:13: nemesis.faults[0].skew: a clock fault takes one of `jump`, `skew` and \
             `strobe`, not `jump` and `skew`"
        );
        assert_eq!(
            error_of(&clock("      skew: 2\n      clocks: realtime\n")),
            "t.yaml:12:15: nemesis.faults[0].clocks: a skew runs every clock of the node at its \
             rate; `clocks` is for jumps and strobes"
        );
        assert_eq!(
            error_of(&clock("      strobe: 1s\n      period: 1ms\n")),
            "t.yaml:12:15: nemesis.faults[0].period: must be at least 5ms"
        );
        let e = error_of(&clock("      jump: soon\n"));
        assert!(
            e.starts_with("t.yaml:9:7: nemesis.faults[0].jump: \"soon\" is not a signed duration"),
            "{e}"
        );
        let e = error_of(&clock("      skew: 0\n"));
        assert!(
            e.starts_with("t.yaml:9:7: nemesis.faults[0].skew: 0 is not a clock rate"),
            "{e}"
        );
        assert_eq!(
            error_of(&GOOD.replace(
                "      target: holder\n",
                "      target: holder\n      jump: +2s\n"
            )),
            "t.yaml:11:13: nemesis.faults[0].jump: only a clock fault takes `jump`"
        );
        let timeline = GOOD.replace(
            "  faults:\n    - fault: pause\n      target: holder\n      for: 2s\n      every: 3s\n",
            "  timeline:\n    - at: 1s\n      clock: [w1, w2]\n      for: 2s\n",
        );
        assert_eq!(
            error_of(&timeline),
            "t.yaml:10:14: nemesis.timeline[0].clock: a clock fault takes one of `jump: +2s`, \
             `skew: 1.5` or `strobe: 200ms`"
        );
        let strobe =
            parse(&timeline.replace("      for: 2s\n", "      strobe: 300ms\n      for: 2s\n"))
                .unwrap();
        assert_eq!(
            strobe.clock_nodes().keys().collect::<Vec<_>>(),
            ["w1", "w2"]
        );
        assert_eq!(
            strobe.nemesis.timeline[0]
                .clock_change()
                .unwrap()
                .to_string(),
            "strobe +300ms every 50ms (realtime)"
        );
    }

    #[test]
    fn checks_across_fields_point_at_the_value_on_its_own_line() {
        // "lease" is in the test's name and a comment before the field.
        let text = GOOD
            .replace("test: t", "test: lease-test # the lease: 1s one")
            .replace("lease: 1s", "lease: 0ms");
        assert_eq!(
            error_of(&text),
            "t.yaml:5:10: workload.lease: must be at least 1ms (leases are granted in whole milliseconds)"
        );
        assert_eq!(
            error_of(&GOOD.replace("duration: 5s", "duration: 0s")),
            "t.yaml:2:11: duration: must be longer than 0s"
        );
        // A flow map: the value's own column.
        let flow = GOOD.replace(
            "workload:\n  workers: 3\n  lease: 1s\n  think: 200ms\n",
            "workload: { workers: 3, think: 200ms, lease: 0s }\n",
        );
        assert_eq!(
            error_of(&flow),
            "t.yaml:3:46: workload.lease: must be at least 1ms (leases are granted in whole milliseconds)"
        );
        let e = error_of(&GOOD.replace("target: holder", "target: holder\n      from: w7"));
        assert!(
            e.starts_with("t.yaml:11:13: nemesis.faults[0].from: no node is named \"w7\""),
            "{e}"
        );
    }

    #[test]
    fn the_run_and_its_waits_are_bounded() {
        for (from, to, want) in [
            (
                "duration: 5s",
                "duration: 10000000h",
                "t.yaml:2:11: duration: must be at most 24h (the longest run)",
            ),
            (
                "duration: 5s",
                "duration: 25h",
                "t.yaml:2:11: duration: must be at most 24h (the longest run)",
            ),
            (
                "lease: 1s",
                "lease: 2h",
                "t.yaml:5:10: workload.lease: must be at most 1h",
            ),
            (
                "lease: 1s",
                "lease: 500us",
                "t.yaml:5:10: workload.lease: must be at least 1ms (leases are granted in whole milliseconds)",
            ),
            (
                "think: 200ms",
                "think: 61m",
                "t.yaml:6:10: workload.think: must be at most 1h",
            ),
            (
                "think: 200ms",
                "think: 200ms\n  timeout: 0s",
                "t.yaml:7:12: workload.timeout: must be at least 1ms (requests time out in whole milliseconds)",
            ),
            (
                "think: 200ms",
                "think: 200ms\n  backoff: 1000h",
                "t.yaml:7:12: workload.backoff: must be at most 1h",
            ),
            (
                "think: 200ms",
                "think: 200ms\n  keys: 10001",
                "t.yaml:7:9: workload.keys: must be at most 10000",
            ),
            (
                "for: 2s",
                "for: 1ns",
                "t.yaml:11:12: nemesis.faults[0].for: must be at least 1ms",
            ),
            (
                "for: 2s",
                "for: 0s..2s",
                "t.yaml:11:12: nemesis.faults[0].for: the range's lower bound must be at least 1ms",
            ),
            (
                "for: 2s",
                "for: 1s..25h",
                "t.yaml:11:12: nemesis.faults[0].for: must be at most 24h (the longest run)",
            ),
            (
                "every: 3s",
                "every: 1ns",
                "t.yaml:12:14: nemesis.faults[0].every: must be at least 10ms",
            ),
            (
                "every: 3s",
                "every: 9ms..1s",
                "t.yaml:12:14: nemesis.faults[0].every: the range's lower bound must be at least 10ms",
            ),
            (
                "every: 3s",
                "every: 3s\n      start_after: 100000h",
                "t.yaml:13:20: nemesis.faults[0].start_after: must be at most 24h (the longest run)",
            ),
        ] {
            assert_eq!(error_of(&GOOD.replace(from, to)), want, "{to}");
        }
        // At the limits.
        let edge = GOOD
            .replace("duration: 5s", "duration: 24h")
            .replace("lease: 1s", "lease: 1h")
            .replace("for: 2s", "for: 1ms..24h")
            .replace("every: 3s", "every: 10s..24h");
        parse(&edge).unwrap();
    }

    #[test]
    fn a_generator_that_would_schedule_too_many_faults_is_refused_before_any_is_built() {
        // for: 1ms, every: 10ms over a day: 8.6 million faults.
        let day = GOOD
            .replace("duration: 5s", "duration: 24h")
            .replace("for: 2s", "for: 1ms")
            .replace("every: 3s", "every: 10ms");
        assert_eq!(
            error_of(&day),
            "t.yaml:12:14: nemesis.faults[0].every: every 10ms from 0s in a run of 24h schedules up to 8639900 faults; a run takes at most 10000"
        );
        // every 9s over a day: 9,600 fit; a second such generator does not.
        let fits = GOOD
            .replace("duration: 5s", "duration: 24h")
            .replace("every: 3s", "every: 9s");
        parse(&fits).unwrap();
        let two = fits.replace(
            "      every: 9s\n",
            "      every: 9s\n    - fault: pause\n      target: w2\n      for: 1s\n      every: 10s\n",
        );
        assert_eq!(
            error_of(&two),
            "t.yaml:12:14: nemesis.faults[0].every: every 9s from 0s in a run of 24h schedules up to 9600 faults, 18240 with the rest of the nemesis; a run takes at most 10000"
        );
    }

    #[test]
    fn the_worst_case_bounds_what_the_schedule_holds() {
        let mut c = parse(
            &GOOD
                .replace("duration: 5s", "duration: 50s")
                .replace("for: 2s", "for: 1ms..3ms")
                .replace("every: 3s", "every: 10ms..12ms"),
        )
        .unwrap();
        c.nemesis.faults.push(c.nemesis.faults[0].clone());
        let most: u64 = c
            .nemesis
            .faults
            .iter()
            .map(|f| f.most_faults(c.duration))
            .sum();
        assert!(most <= ScheduledFault::MAX_PER_RUN as u64, "{most}");
        for seed in 0..5 {
            let s = leasehold_nemesis::schedule(&c.nemesis.faults, &[], c.duration, seed);
            assert!(s.len() as u64 <= most, "{} > {most}", s.len());
            assert!(s.len() > 7000, "the bound is not loose: {}", s.len());
        }
    }

    #[test]
    fn every_node_of_every_accepted_count_has_its_own_address() {
        let with = |lock: u32, store: u32, workers: u32| {
            GOOD.replace("workers: 3", &format!("workers: {workers}"))
                .replace(
                    "test: t\n",
                    &format!("test: t\nlock: {{ nodes: {lock} }}\nstorage: {{ nodes: {store} }}\n"),
                )
        };
        let (max_lock, max_store, max_workers) = (19, 69, 154);
        let mut counts = Vec::new();
        counts.extend((1..=max_lock).map(|l| (l, max_store, max_workers)));
        counts.extend((1..=max_store).map(|s| (max_lock, s, max_workers)));
        counts.extend((1..=max_workers).map(|w| (max_lock, max_store, w)));
        counts.push((1, 1, 1));
        for (l, s, w) in counts {
            let c = parse(&with(l, s, w)).unwrap();
            let octets = c.node_octets();
            assert_eq!(octets.len() as u32, l + s + w);
            let mut seen = std::collections::HashSet::new();
            for (name, octet) in &octets {
                assert!(![0, 1, 255].contains(octet), "{name} got .{octet}");
                assert!(seen.insert(*octet), "{name} shares .{octet}");
                assert_eq!(c.node_octet(name), Some(*octet));
            }
        }
        // Today's addresses, kept.
        let c = parse(&with(19, 69, 154)).unwrap();
        for (name, octet) in [
            ("lock1", 11),
            ("lock19", 29),
            ("store1", 31),
            ("store69", 99),
            ("w1", 101),
            ("w154", 254),
        ] {
            assert_eq!(c.node_octet(name), Some(octet), "{name}");
        }
        for stranger in ["w0", "w155", "w01", "lock20", "store", "x1", ""] {
            assert_eq!(c.node_octet(stranger), None, "{stranger}");
        }
        // One more than fits is refused, naming the field and the limit.
        assert_eq!(
            error_of(&with(1, 1, 170)),
            "t.yaml:6:12: workload.workers: at most 154 workers fit the run's /24 subnet (addresses .101 to .254)"
        );
        assert_eq!(
            error_of(&with(20, 1, 3)),
            "t.yaml:2:16: lock.nodes: at most 19 lock nodes fit the run's /24 subnet (addresses .11 to .29)"
        );
        assert_eq!(
            error_of(&with(1, 70, 3)),
            "t.yaml:3:19: storage.nodes: at most 69 storage nodes fit the run's /24 subnet (addresses .31 to .99)"
        );
    }

    const TIMELINE: &str = "test: t\nduration: 10s\nworkload:\n  workers: 3\n  lease: 1s\n  think: 200ms\nnemesis:\n  timeline:\n    - { at: 1s, pause: w1, for: 2s }\n    - at: 5s\n      kill: store1\n      for: 5s\n    - at: 60s\n      pause: w2\n      for: 1s\n";

    #[test]
    fn timeline_entries_start_and_end_within_the_run() {
        assert_eq!(
            error_of(TIMELINE),
            "t.yaml:13:11: nemesis.timeline[2].at: starts at 1m, but the run ends at 10s"
        );
        let at_the_end = TIMELINE.replace("at: 60s", "at: 10s");
        assert_eq!(
            error_of(&at_the_end),
            "t.yaml:13:11: nemesis.timeline[2].at: starts at 10s, but the run ends at 10s"
        );
        let past = TIMELINE
            .replace("at: 60s", "at: 9s")
            .replace("for: 1s", "for: 1500ms");
        assert_eq!(
            error_of(&past),
            "t.yaml:15:12: nemesis.timeline[2].for: lasts until 10s 500ms (9s + 1s 500ms), past the end of the run at 10s"
        );
        let flow = TIMELINE.replace(
            "{ at: 1s, pause: w1, for: 2s }",
            "{ at: 1s, pause: w1, for: 0s }",
        );
        assert_eq!(
            error_of(&flow),
            "t.yaml:9:33: nemesis.timeline[0].for: must be at least 1ms"
        );
        // Ending exactly at the end (5s + 5s) is fine.
        parse(&TIMELINE.replace("at: 60s", "at: 9s")).unwrap();
    }

    #[test]
    fn a_shorter_duration_set_after_parsing_is_checked_against_the_file() {
        let mut c = parse(&TIMELINE.replace("at: 60s", "at: 9s")).unwrap();
        let e = c
            .set_duration(Duration::from_secs(4))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "t.yaml:10:11: nemesis.timeline[1].at: starts at 5s, but the run ends at 4s (--duration)"
        );
        assert_eq!(c.duration, Duration::from_secs(10), "left as it was");
        let e = c
            .set_duration(Duration::from_secs(48 * 3600))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "t.yaml: duration: --duration 48h: must be at most 24h (the longest run)"
        );
        let e = c.set_duration(Duration::ZERO).unwrap_err().to_string();
        assert_eq!(e, "t.yaml: duration: --duration 0s: must be longer than 0s");
        c.set_duration(Duration::from_secs(12)).unwrap();
        assert_eq!(c.duration, Duration::from_secs(12));
        assert_eq!(
            parse(&c.to_yaml()).unwrap(),
            c,
            "the stored config reads back"
        );

        // A longer run can take more faults than the generator may schedule.
        let mut c = parse(
            &GOOD
                .replace("duration: 5s", "duration: 60s")
                .replace("for: 2s", "for: 1ms")
                .replace("every: 3s", "every: 10ms"),
        )
        .unwrap();
        let e = c
            .set_duration(Duration::from_secs(3600))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("t.yaml:12:14: nemesis.faults[0].every: every 10ms from 0s in a run of 1h (--duration) schedules up to 359900 faults"),
            "{e}"
        );
    }

    fn nesting_error(text: &str) -> (usize, usize, String) {
        let e = check_nesting(text).expect_err("too deep");
        (e.line, e.column, e.field)
    }

    #[test]
    fn configs_nested_too_deep_are_refused_before_serde_yaml_reads_them() {
        let n = 100_000;
        let deep_list = "[".repeat(n) + &"]".repeat(n);
        assert_eq!(nesting_error(&deep_list), (1, 33, "(top level)".into()));
        let deep_maps = "{a: ".repeat(n) + "1" + &"}".repeat(n);
        assert_eq!(nesting_error(&deep_maps), (1, 129, "(top level)".into()));
        let under_a_key = format!("test: t\nnemesis:\n  faults: {deep_list}\n");
        assert_eq!(
            nesting_error(&under_a_key),
            (3, 41, "nemesis.faults".into())
        );
        let compact_lists = "- ".repeat(n) + "x\n";
        assert_eq!(nesting_error(&compact_lists).0, 1);
        assert_eq!(nesting_error(&compact_lists).1, 65);
        // Block maps, as deep as fit in 1 MiB.
        let mut block = String::new();
        for i in 0..1400 {
            block.push_str(&" ".repeat(i));
            block.push_str("a:\n");
        }
        assert!(block.len() < MAX_CONFIG_BYTES);
        let (line, column, field) = nesting_error(&block);
        assert_eq!((line, column), (33, 33));
        assert_eq!(field, ["a"; 33].join("."));
        // Old Mac line breaks are line breaks to libyaml too.
        assert_eq!(nesting_error(&block.replace('\n', "\r")).0, 33);
        // The whole error, through the parser.
        let e = parse(&deep_maps).unwrap_err().to_string();
        assert_eq!(
            e,
            "t.yaml:1:129: (top level): maps and lists nest more than 32 levels deep here; a config needs a few"
        );
    }

    #[test]
    fn nesting_is_counted_exactly_and_strings_comments_and_scalars_do_not_count() {
        let flow = |n: usize| "[".repeat(n) + &"]".repeat(n);
        assert!(check_nesting(&flow(32)).is_ok());
        assert_eq!(nesting_error(&flow(33)).1, 33);
        // A map, a list in it and a map in that, 6 columns deeper each time.
        let mut block = String::new();
        for i in 0..20 {
            block.push_str(&format!("{0:1$}a:\n{0:2$}- b:\n", "", 6 * i, 6 * i + 2));
        }
        let path = ["a[0].b"; 11].join(".");
        assert_eq!(nesting_error(&block), (22, 65, path));
        // A list at its map's own column is a level of its own too.
        let mut same_column = "a:\n".to_owned();
        for k in 0..19 {
            same_column.push_str(&format!("{:1$}- k{k}:\n", "", 2 * k));
        }
        assert_eq!(nesting_error(&same_column), (17, 33, "a[0].k0[0].k1[0].k2[0].k3[0].k4[0].k5[0].k6[0].k7[0].k8[0].k9[0].k10[0].k11[0].k12[0].k13[0].k14[0].k15".into()));
        let fits: String = same_column
            .lines()
            .take(16)
            .map(|l| format!("{l}\n"))
            .collect();
        assert!(check_nesting(&fits).is_ok(), "31 levels");
        let bracketed = "[".repeat(40);
        for text in [
            format!("test: \"{bracketed}\"\nx: 1\n"),
            format!("test: '{bracketed}' # {bracketed}\n"),
            format!("# {bracketed}\ntest: t\n"),
            format!("test: a{bracketed}\n"),
            format!("test: |\n  {bracketed}\n  - - - -\nx: 1\n"),
            format!("test: >2\n   {bracketed}\nx: 1\n"),
            format!("test: a plain\n  {bracketed}\n"),
            format!("test: \"two\n  {bracketed} lines\"\n"),
            format!("test: ['it''s', \"a \\\" {bracketed}\"]\n"),
        ] {
            assert!(check_nesting(&text).is_ok(), "{text}");
        }
        // What only looks like a string still counts.
        for text in [
            format!("[a\n 'b, {bracketed}"),
            format!("test: it's\nx: {bracketed}"),
            format!("test: a plain\n# a comment ends it\n  {bracketed}"),
            format!("test: |\n    text\n  {bracketed}"),
            format!("%YAML 1.1\n---\n{bracketed}"),
            format!("test: &anchor !!seq {bracketed}"),
        ] {
            assert!(check_nesting(&text).is_err(), "{text}");
        }
    }

    #[test]
    fn configs_larger_than_a_mebibyte_are_refused_unread() {
        let big = format!("test: t\n# {}\n", "x".repeat(MAX_CONFIG_BYTES));
        assert_eq!(
            error_of(&big),
            "t.yaml: (top level): larger than 1 MiB, the most leasehold reads; a config is a few hundred bytes"
        );
        // The first 2 MiB of a 100,000 levels deep block map (5 GB in all).
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("deep.yaml");
        let mut text = String::new();
        let mut i = 0;
        while text.len() <= 2 * MAX_CONFIG_BYTES {
            text.push_str(&" ".repeat(i));
            text.push_str("a:\n");
            i += 1;
        }
        std::fs::write(&path, &text).unwrap();
        let e = Config::load(&path).unwrap_err().to_string();
        assert!(e.ends_with("(top level): larger than 1 MiB, the most leasehold reads; a config is a few hundred bytes"), "{e}");
        std::fs::write(&path, b"test: \xff\n").unwrap();
        let e = Config::load(&path).unwrap_err();
        assert!(format!("{:#}", anyhow::Error::from(e)).contains("not UTF-8 text (byte 6)"),);
    }

    #[test]
    fn redlock_gets_five_nodes_unless_told_and_redis_persistence_reaches_the_recipe() {
        let redlock = GOOD.replace("test: t\n", "test: t\nlock: { service: redlock }\n");
        let c = parse(&redlock).unwrap();
        assert_eq!(c.lock.nodes.get(), 5);
        assert_eq!(c.lock.started_nodes(), 5);
        assert_eq!(
            &c.node_names()[..5],
            ["lock1", "lock2", "lock3", "lock4", "lock5"]
        );
        // The config as run says how many, and reads back the same.
        assert!(c.to_yaml().contains("nodes: 5"), "{}", c.to_yaml());
        assert_eq!(parse(&c.to_yaml()).unwrap(), c);
        // Told: even counts and 2 are taken as they are.
        for n in [2, 4, 7] {
            let told = redlock.replace("redlock }", &format!("redlock, nodes: {n} }}"));
            assert_eq!(parse(&told).unwrap().lock.nodes.get(), n);
        }
        // The other services keep one node.
        for service in ["reference", "redis", "etcd"] {
            let other = redlock.replace("redlock", service);
            assert_eq!(parse(&other).unwrap().lock.nodes.get(), 1, "{service}");
        }
        let node = leasehold_workloads::NodeAddrs {
            name: "lock1".into(),
            addr: "127.0.0.1:6379".parse().unwrap(),
            peers: vec!["127.0.0.1:6379".parse().unwrap()],
            cluster: Vec::new(),
            data_dir: "data".into(),
        };
        let appendonly = |c: &Config| {
            let args = c.lock.recipe(0, 1, &node).args;
            let i = args.iter().position(|a| a == "--appendonly").unwrap();
            args[i + 1].clone()
        };
        assert_eq!(appendonly(&c), "no");
        for service in ["redis", "redlock"] {
            let aof = redlock.replace(
                "{ service: redlock }",
                &format!("{{ service: {service}, nodes: 3, persistence: aof }}"),
            );
            let c = parse(&aof).unwrap();
            assert_eq!(c.lock.persistence, LockPersistence::Aof);
            assert_eq!(appendonly(&c), "yes", "{service}");
            assert_eq!(parse(&c.to_yaml()).unwrap(), c);
        }
    }
}
