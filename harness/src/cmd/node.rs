//! `leasehold node …`: the programs that run inside nodes.

mod packet_queue;
mod postgres;
mod zookeeper;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use leasehold_nodes::{LockServiceConfig, RenewTimeout, RunClock, StorageConfig, WorkerConfig};
use leasehold_workloads::system::exec;
use leasehold_workloads::{
    AdapterLog, EtcdTxnStorageClient, ExecStorageClient, ExecStorageConfig, LockSystem,
    PostgresStorageClient, StorageSystem, StorageSystemClient, SystemClient,
};
use tokio_util::sync::CancellationToken;

#[derive(Debug, Args)]
pub struct NodeArgs {
    #[command(subcommand)]
    kind: NodeKind,
}

#[derive(Debug, Subcommand)]
enum NodeKind {
    /// The reference lock service.
    Lock(LockArgs),
    /// The fenced storage.
    Storage(StorageArgs),
    /// A PostgreSQL server of the run's own ([`postgres`]).
    Postgres(postgres::PostgresArgs),
    /// A ZooKeeper member of the run's own ([`zookeeper`]).
    Zookeeper(zookeeper::ZookeeperArgs),
    /// The holder of a packet fault's delayed packets ([`packet_queue`]).
    PacketQueue(packet_queue::PacketQueueArgs),
    /// A workload client.
    // Boxed: the largest by far, and every other command pays for its size.
    Worker(Box<WorkerArgs>),
}

/// What every node is told.
#[derive(Debug, Args)]
struct Common {
    /// Node name.
    #[arg(long)]
    name: String,
    /// Run id: marks the process as the run's, so `leasehold cleanup` finds it.
    #[arg(long)]
    run_id: String,
    /// The run's zero on CLOCK_MONOTONIC, in nanoseconds.
    #[arg(long)]
    t0: u64,
}

#[derive(Debug, Args)]
struct LockArgs {
    #[command(flatten)]
    common: Common,
    #[arg(long)]
    listen: SocketAddr,
    #[arg(long)]
    data_dir: PathBuf,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum OnOff {
    On,
    Off,
}

#[derive(Debug, Args)]
struct StorageArgs {
    #[command(flatten)]
    common: Common,
    #[arg(long)]
    listen: SocketAddr,
    #[arg(long)]
    data_dir: PathBuf,
    #[arg(long, value_enum)]
    fencing: OnOff,
}

/// A lock system by the name the config gives it (`reference`, `redis`).
fn parse_system(name: &str) -> Result<LockSystem, String> {
    LockSystem::from_name(name).ok_or_else(|| {
        let known: Vec<&str> = LockSystem::ALL.iter().map(|s| s.name()).collect();
        format!("unknown lock system {name:?}; known: {}", known.join(", "))
    })
}

#[derive(Debug, Args)]
struct WorkerArgs {
    #[command(flatten)]
    common: Common,
    #[arg(long)]
    index: u64,
    #[arg(long)]
    workers: u64,
    /// The lock system whose client the worker uses.
    #[arg(long, value_parser = parse_system, default_value = "reference")]
    client: LockSystem,
    /// Lock service address(es).
    #[arg(long = "lock-addr", required = true)]
    lock_addrs: Vec<String>,
    /// Storage address(es).
    #[arg(long = "storage", required = true)]
    storage: Vec<String>,
    #[arg(long)]
    lock: String,
    #[arg(long = "key", required = true)]
    keys: Vec<String>,
    #[arg(long)]
    lease_ms: u64,
    #[arg(long)]
    think_ms: u64,
    #[arg(long)]
    timeout_ms: u64,
    #[arg(long)]
    backoff_ms: u64,
    #[arg(long)]
    seed: u64,
    /// What a timed-out renew means to the worker.
    #[arg(long, value_enum, default_value = "stop")]
    on_renew_timeout: RenewTimeoutArg,
    /// How many times this worker was restarted before.
    #[arg(long, default_value_t = 0)]
    incarnation: u64,
    /// `--client exec`: the adapter's program and arguments, one flag each.
    #[arg(long = "exec-arg", allow_hyphen_values = true)]
    exec_args: Vec<String>,
    /// `--client exec`: the adapter's working directory.
    #[arg(long)]
    exec_cwd: Option<PathBuf>,
    /// The storage system the worker writes to; `--storage` are its
    /// addresses (etcd-txn: the etcd members').
    #[arg(long, value_parser = parse_storage_system, default_value = "reference")]
    storage_system: StorageSystem,
    /// etcd-txn: guard each write on the lock key (`on`) or put it plainly.
    #[arg(long, value_enum, default_value = "off")]
    storage_fencing: OnOff,
    /// `--storage-system exec`: the adapter's program and arguments, one flag
    /// each.
    #[arg(long = "storage-exec-arg", allow_hyphen_values = true)]
    storage_exec_args: Vec<String>,
    /// `--storage-system exec`: the adapter's working directory.
    #[arg(long)]
    storage_exec_cwd: Option<PathBuf>,
}

/// A storage system by the name the config gives it (`reference`, `exec`,
/// `etcd-txn`).
fn parse_storage_system(name: &str) -> Result<StorageSystem, String> {
    StorageSystem::from_name(name).ok_or_else(|| {
        let known: Vec<&str> = StorageSystem::ALL.iter().map(|s| s.name()).collect();
        format!(
            "unknown storage system {name:?}; known: {}",
            known.join(", ")
        )
    })
}

/// The worker's storage client: the adapter of exec storage runs in this node,
/// its stderr in our log.
async fn storage_client(a: &WorkerArgs, timeout: Duration) -> anyhow::Result<StorageSystemClient> {
    let name = &a.common.name;
    Ok(match a.storage_system {
        StorageSystem::Reference => {
            StorageSystemClient::reference(&a.storage, name, timeout).context("storage client")?
        }
        StorageSystem::Exec => {
            let mut config = ExecStorageConfig::new(
                a.storage_exec_args.clone(),
                name,
                a.storage.clone(),
                timeout,
            );
            config.cwd = a.storage_exec_cwd.clone();
            let client = ExecStorageClient::start(config, AdapterLog::tracing())
                .await
                .context("exec storage adapter")?;
            StorageSystemClient::Exec(Box::new(client))
        }
        StorageSystem::EtcdTxn => {
            let fencing = matches!(a.storage_fencing, OnOff::On);
            let client = EtcdTxnStorageClient::new(&a.storage, &a.lock, name, fencing, timeout)
                .context("etcd-txn storage client")?;
            StorageSystemClient::EtcdTxn(Box::new(client))
        }
        StorageSystem::Postgres => {
            let first = a.storage.first().context("no storage address")?;
            let fencing = matches!(a.storage_fencing, OnOff::On);
            let client = PostgresStorageClient::new(first, name, fencing, timeout)
                .context("postgres storage client")?;
            StorageSystemClient::Postgres(Box::new(client))
        }
    })
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum RenewTimeoutArg {
    Stop,
    Continue,
}

pub fn run(args: NodeArgs) -> anyhow::Result<ExitCode> {
    // Single-threaded, and before any runtime starts threads.
    let kind = match args.kind {
        NodeKind::Postgres(a) => return postgres::run(a),
        NodeKind::Zookeeper(a) => return zookeeper::run(a),
        NodeKind::PacketQueue(a) => return packet_queue::run(a),
        kind => kind,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let shutdown = CancellationToken::new();
        // Handlers first, so a stop asked for during start-up is not lost.
        let signals = Signals::install()?;
        tokio::spawn(signals.stop(shutdown.clone()));
        match kind {
            NodeKind::Lock(a) => {
                let cfg = LockServiceConfig {
                    name: a.common.name,
                    listen: a.listen,
                    data_dir: a.data_dir,
                };
                leasehold_nodes::run_lock_service(cfg, shutdown).await?;
            }
            NodeKind::Storage(a) => {
                let cfg = StorageConfig {
                    name: a.common.name,
                    listen: a.listen,
                    data_dir: a.data_dir,
                    fencing: matches!(a.fencing, OnOff::On),
                    clock: RunClock::from_t0(a.common.t0),
                };
                leasehold_nodes::run_storage(cfg, shutdown).await?;
            }
            NodeKind::Postgres(_) | NodeKind::Zookeeper(_) | NodeKind::PacketQueue(_) => {
                unreachable!("run before the runtime starts")
            }
            NodeKind::Worker(a) => {
                let a = *a;
                let timeout = Duration::from_millis(a.timeout_ms);
                let storage = storage_client(&a, timeout).await?;
                let cfg = WorkerConfig {
                    name: a.common.name.clone(),
                    index: a.index,
                    workers: a.workers,
                    lock: a.lock,
                    storage: a.storage,
                    keys: a.keys,
                    lease: Duration::from_millis(a.lease_ms),
                    think: Duration::from_millis(a.think_ms),
                    timeout,
                    backoff: Duration::from_millis(a.backoff_ms),
                    seed: a.seed,
                    clock: RunClock::from_t0(a.common.t0),
                    on_renew_timeout: match a.on_renew_timeout {
                        RenewTimeoutArg::Stop => RenewTimeout::Stop,
                        RenewTimeoutArg::Continue => RenewTimeout::Continue,
                    },
                    incarnation: a.incarnation,
                };
                let client = match a.client {
                    // The adapter runs in this node, its stderr in our log.
                    LockSystem::Exec => SystemClient::Exec(Box::new(
                        exec::client(
                            a.exec_args,
                            a.exec_cwd,
                            &a.lock_addrs,
                            &a.common.name,
                            timeout,
                        )
                        .await
                        .context("exec adapter")?,
                    )),
                    system => system
                        .client(&a.lock_addrs, &a.common.name, timeout, cfg.lease)
                        .context("lock client")?,
                };
                leasehold_nodes::run_worker_with_storage(
                    cfg,
                    client,
                    storage,
                    std::io::stdout(),
                    shutdown,
                )
                .await?;
            }
        }
        anyhow::Ok(ExitCode::SUCCESS)
    })
}

/// SIGTERM and SIGINT ask the node to finish what it is doing and stop.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    async fn stop(mut self, shutdown: CancellationToken) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
        tracing::info!("stopping on signal");
        shutdown.cancel();
    }
}
