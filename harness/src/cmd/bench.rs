//! `leasehold bench`: the harness's own speed, printed as figures.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use clap::{Args, Subcommand};
use leasehold_nemesis::packet::{PacketRule, Percent, Shape as PacketShape};
use leasehold_nemesis::{NodeFacts, Role, Topology, grudge, partition};
use leasehold_nodes::RunClock;
use leasehold_results::RunDir;
use leasehold_workloads::LockSystem;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tokio_util::sync::CancellationToken;

use nix::sys::signal::Signal;

use crate::config::{Config, RuntimeKind};
use crate::registry;
use crate::run::collector::Collector;
use crate::run::context::{READY_LIMIT, RunContext};
use crate::run::setup::{NodeImages, setup};
use crate::runtime::{Runtime, find_program};

mod adapter;

/// `leasehold bench`: what to measure.
#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    what: BenchCommand,
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Start a cluster; pause, partition and kill its nodes many times; tear
    /// it down; print how long each took.
    Cluster(ClusterArgs),
}

#[derive(Debug, Args)]
struct ClusterArgs {
    /// `local` or `docker`.
    #[arg(long, default_value = "docker")]
    runtime: String,
    /// The lock system to start and to time through its adapter
    /// (a `lock.service` name: reference, redis, etcd, …). Without it: a
    /// reference lock node and no adapter timing.
    #[arg(long)]
    lock: Option<String>,
    /// Without --lock: nodes in the cluster, one lock node, one storage node
    /// and the rest workers (default 7, at least 3). With --lock: the number
    /// of lock nodes (default: the system's own, as for a config without
    /// `lock.nodes`), beside which one storage node and one worker are
    /// started.
    #[arg(long)]
    nodes: Option<u32>,
    /// With --lock: how many acquire -> renew -> release sequences to time
    /// through the system's adapter, and as many of the raw calls.
    #[arg(long, default_value_t = 200, requires = "lock")]
    ops: usize,
    /// How many pauses (of a worker) to time.
    #[arg(long, default_value_t = 100)]
    pauses: usize,
    /// How many partitions (random halves) and heals to time; needs root.
    #[arg(long, default_value_t = 20)]
    partitions: usize,
    /// How many packet faults (a worker's link to storage, both ways: delay
    /// 10ms, loss 1%, duplicate 1%) and their heals to time; needs root.
    #[arg(long, default_value_t = 0)]
    packets: usize,
    /// How many kills (and restarts) of a worker to time.
    #[arg(long, default_value_t = 10)]
    kills: usize,
    /// Where the bench's run folder goes (default: a temporary folder).
    #[arg(long)]
    store: Option<PathBuf>,
}

pub fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    let BenchCommand::Cluster(args) = args.what;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(cluster(args))?;
    Ok(ExitCode::SUCCESS)
}

/// The nodes a bench starts: which lock system, how many of each role.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Shape {
    /// The lock system, when its adapter is timed (`--lock`).
    lock: Option<LockSystem>,
    /// Lock nodes; None: the system's default (`lock.nodes` left out).
    lock_nodes: Option<u32>,
    workers: u32,
}

impl Shape {
    /// What `--lock` and `--nodes` ask for (see their help).
    fn of(lock: Option<&str>, nodes: Option<u32>) -> anyhow::Result<Shape> {
        match lock {
            None => {
                let nodes = nodes.unwrap_or(7);
                anyhow::ensure!(
                    nodes >= 3,
                    "a cluster needs at least 3 nodes (lock, storage, a worker)"
                );
                Ok(Shape {
                    lock: None,
                    lock_nodes: Some(1),
                    workers: nodes - 2,
                })
            }
            Some(name) => {
                let system = LockSystem::from_name(name).ok_or_else(|| {
                    let known: Vec<&str> = LockSystem::ALL.iter().map(|s| s.name()).collect();
                    anyhow::anyhow!(
                        "--lock {name:?}: no such lock system (known: {})",
                        known.join(", ")
                    )
                })?;
                // Its servers and adapter are the user's commands, which only
                // a config gives.
                anyhow::ensure!(
                    system != LockSystem::Exec,
                    "--lock exec: the bench cannot start exec lock nodes; they need \
                     lock.server and lock.client from a config (leasehold run)"
                );
                anyhow::ensure!(nodes != Some(0), "--nodes: at least 1 lock node");
                Ok(Shape {
                    lock: Some(system),
                    lock_nodes: nodes,
                    workers: 1,
                })
            }
        }
    }
}

fn cluster_config(runtime: &str, shape: &Shape) -> anyhow::Result<Config> {
    let service = shape.lock.unwrap_or_default();
    let nodes = shape
        .lock_nodes
        .map(|n| format!(", nodes: {n}"))
        .unwrap_or_default();
    // A 2 s lease: etcd's leases are whole seconds and it wants 2 s or more.
    let text = format!(
        "test: bench-cluster\nduration: 1s\nruntime: {runtime}\n\
         lock: {{ service: {service}{nodes} }}\n\
         storage: {{ nodes: 1 }}\n\
         workload:\n  workers: {}\n  lease: 2s\n  think: 300ms\n",
        shape.workers
    );
    Ok(Config::parse(&text, std::path::Path::new("(bench)"))?)
}

async fn cluster(args: ClusterArgs) -> anyhow::Result<()> {
    let shape = Shape::of(args.lock.as_deref(), args.nodes)?;
    let config = cluster_config(&args.runtime, &shape)?;
    // A server binary that is missing stops the bench before anything
    // starts, with the run's one line naming it and its package.
    if config.lock.started_nodes() > 0 {
        find_program(&config.lock.program())?;
        crate::runtime::check_needs(&config.lock.needs(), false)?;
    }
    let temp = tempfile::tempdir()?;
    let store = args.store.clone().unwrap_or_else(|| temp.path().to_owned());
    let run_dir = RunDir::create(&store, &config.test, SystemTime::now())?;
    let run_id = registry::new_run_id();
    let _reg = registry::register(&run_id, run_dir.path())?;

    let t = Instant::now();
    let images = NodeImages::prepare(&config).await?;
    let images_ms = t.elapsed().as_secs_f64() * 1e3;

    let clock = RunClock::starting_now();
    let collector = Collector::start(&run_dir.history_path(), clock)?;
    let cancel = CancellationToken::new();
    let mut slot = None;
    let t = Instant::now();
    let ctx = RunContext {
        config: &config,
        run_id: &run_id,
        seed: 1,
        clock,
        run_dir: &run_dir,
        events: collector.sender(),
        cancel: &cancel,
        ready_limit: READY_LIMIT,
    };
    let ready = setup(&ctx, &images, &mut slot).await;
    drop(ctx);
    let ready_ms = t.elapsed().as_secs_f64() * 1e3;

    // The adapter first, on a cluster no fault has touched yet.
    let adapter = match (&ready, shape.lock) {
        (Ok(Some(specs)), Some(system)) => {
            let locks: Vec<SocketAddr> = specs
                .iter()
                .filter(|s| s.role == Role::Lock)
                .map(|s| s.addr)
                .collect();
            Some(adapter::bench_adapter(system, &locks, args.ops).await)
        }
        _ => None,
    };
    let measured = match (&ready, slot.as_mut()) {
        (Ok(_), Some(runtime)) => Some(measure(runtime.as_mut(), &args).await),
        _ => None,
    };

    let t = Instant::now();
    if let Some(mut runtime) = slot.take() {
        runtime.resume_all();
        runtime.teardown(Duration::from_secs(2)).await;
    }
    let teardown_ms = t.elapsed().as_secs_f64() * 1e3;
    collector.finish().await;
    registry::unregister(&run_id);
    ready.context("start the cluster")?;
    let m = measured.context("no cluster to measure")??;
    let adapter = adapter.transpose().context("time the lock adapter")?;

    let system = config.lock.service.system();
    let lock_nodes = config.lock.started_nodes();
    let workers = config.workload.workers.get();
    println!(
        "cluster of {} nodes ({lock_nodes} {system} lock node{}, 1 storage, {workers} worker{}), \
         runtime {}, run {run_id}",
        lock_nodes + 1 + workers,
        plural(lock_nodes),
        plural(workers),
        args.runtime,
    );
    let none = if config.runtime == RuntimeKind::Docker {
        ""
    } else {
        " (none needed)"
    };
    println!("  images ready       {images_ms:9.1} ms{none}");
    println!("  all nodes ready    {ready_ms:9.1} ms   (target <= 3000 ms)");
    println!("  teardown           {teardown_ms:9.1} ms   (target <= 2000 ms)");
    show("pause", &m.pause, "target p99 <= 1 ms");
    show("resume", &m.resume, "");
    show("partition", &m.partition, "target <= 50 ms");
    show("heal", &m.heal, "target <= 50 ms");
    if args.packets > 0 {
        show("packet", &m.packet, "holder started, rules in");
        show("unpacket", &m.unpacket, "rules out, holder stopped");
    }
    show("kill", &m.kill, "target <= 20 ms");
    show("restart", &m.restart, "until the node runs again");
    if let Some(report) = adapter {
        print!("{}", report.render());
    }
    Ok(())
}

fn plural(n: u32) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn show(what: &str, samples: &[Duration], target: &str) {
    if samples.is_empty() {
        println!("  {what:<9} not measured");
        return;
    }
    let target = if target.is_empty() {
        String::new()
    } else {
        format!("   ({target})")
    };
    println!(
        "  {what:<9} n={:<4} median {:9.1} us   p99 {:9.1} us   max {:9.1} us{target}",
        samples.len(),
        pct(samples, 50.0),
        pct(samples, 99.0),
        pct(samples, 100.0),
    );
}

#[derive(Default)]
struct Measured {
    pause: Vec<Duration>,
    resume: Vec<Duration>,
    partition: Vec<Duration>,
    heal: Vec<Duration>,
    packet: Vec<Duration>,
    unpacket: Vec<Duration>,
    kill: Vec<Duration>,
    restart: Vec<Duration>,
}

/// Times each fault on the running cluster through the runtime's
/// node-control seam, as a run injects them, always healing before the next.
async fn measure(runtime: &mut dyn Runtime, args: &ClusterArgs) -> anyhow::Result<Measured> {
    let mut m = Measured::default();
    let facts = runtime.facts();
    let workers: Vec<NodeFacts> = facts
        .iter()
        .filter(|f| f.role == Role::Worker)
        .cloned()
        .collect();
    for i in 0..args.pauses {
        let node = std::slice::from_ref(&workers[i % workers.len()].name);
        let t = Instant::now();
        runtime.signal(node, Signal::SIGSTOP).await?;
        m.pause.push(t.elapsed());
        let t = Instant::now();
        runtime.signal(node, Signal::SIGCONT).await?;
        m.resume.push(t.elapsed());
    }
    if args.partitions > 0 && nix::unistd::geteuid().is_root() {
        let names: Vec<String> = facts.iter().map(|f| f.name.clone()).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for _ in 0..args.partitions {
            let g = grudge(Topology::RandomHalves, &names, &[], None, &mut rng);
            let drops = partition::drops(&g, &facts)?;
            let t = Instant::now();
            runtime.set_drops(&drops).await?;
            m.partition.push(t.elapsed());
            let clear = drops
                .keys()
                .map(|n| (n.clone(), Default::default()))
                .collect();
            let t = Instant::now();
            runtime.set_drops(&clear).await?;
            m.heal.push(t.elapsed());
        }
    }
    if args.packets > 0 {
        anyhow::ensure!(
            nix::unistd::geteuid().is_root(),
            "--packets needs root (rules and a queue inside the nodes' namespaces)"
        );
        crate::runtime::check_needs(&crate::run::packet_tools(), false)?;
        let store = facts
            .iter()
            .find(|f| f.role == Role::Storage)
            .context("a storage node")?;
        let shape = PacketShape {
            delay: Duration::from_millis(10),
            loss: Percent::new(1).expect("1%"),
            duplicate: Percent::new(1).expect("1%"),
            ..PacketShape::default()
        };
        for i in 0..args.packets {
            let w = &workers[i % workers.len()];
            let rule = |own: &NodeFacts, other: &NodeFacts| -> anyhow::Result<PacketRule> {
                Ok(PacketRule {
                    shape,
                    from: [partition::node_ip(other)?].into(),
                    own: partition::node_ip(own)?,
                    seed: i as u64,
                })
            };
            let rules: BTreeMap<String, Option<PacketRule>> = [
                (w.name.clone(), Some(rule(w, store)?)),
                (store.name.clone(), Some(rule(store, w)?)),
            ]
            .into();
            let t = Instant::now();
            runtime.set_packets(&rules).await?;
            m.packet.push(t.elapsed());
            let clear = rules.keys().map(|n| (n.clone(), None)).collect();
            let t = Instant::now();
            runtime.set_packets(&clear).await?;
            m.unpacket.push(t.elapsed());
        }
    }
    for i in 0..args.kills {
        let name = workers[i % workers.len()].name.clone();
        let t = Instant::now();
        runtime.kill(&name).await?;
        m.kill.push(t.elapsed());
        let t = Instant::now();
        runtime
            .restart(&name, &["--incarnation".to_owned(), (i + 1).to_string()])
            .await?;
        m.restart.push(t.elapsed());
    }
    Ok(m)
}

/// The `p`th percentile of `samples`, in microseconds (nearest rank).
fn pct(samples: &[Duration], p: f64) -> f64 {
    let mut v: Vec<Duration> = samples.to_vec();
    v.sort();
    if v.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * v.len() as f64).ceil().max(1.0) as usize;
    v[rank.min(v.len()) - 1].as_secs_f64() * 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_counts_the_cluster_without_lock_and_the_lock_nodes_with_it() {
        let default = Shape::of(None, None).unwrap();
        assert_eq!(
            (default.lock, default.lock_nodes, default.workers),
            (None, Some(1), 5)
        );
        assert!(Shape::of(None, Some(2)).is_err());

        let etcd = Shape::of(Some("etcd"), Some(3)).unwrap();
        assert_eq!(
            (etcd.lock, etcd.lock_nodes, etcd.workers),
            (Some(LockSystem::Etcd), Some(3), 1)
        );
        // Without --nodes, the system's own default.
        assert_eq!(Shape::of(Some("redis"), None).unwrap().lock_nodes, None);
        assert!(Shape::of(Some("redis"), Some(0)).is_err());
        assert!(Shape::of(Some("exec"), None).is_err());
        let unknown = Shape::of(Some("no-such-lock"), None)
            .unwrap_err()
            .to_string();
        for system in LockSystem::ALL {
            assert!(unknown.contains(system.name()), "{unknown}");
        }
    }

    #[test]
    fn the_config_asks_for_the_system_and_its_nodes() {
        let shape = Shape::of(Some("etcd"), Some(3)).unwrap();
        let config = cluster_config("local", &shape).unwrap();
        assert_eq!(config.lock.service.system(), LockSystem::Etcd);
        assert_eq!(config.lock.nodes.get(), 3);
        assert_eq!(config.storage.nodes.get(), 1);
        assert_eq!(config.workload.workers.get(), 1);
        let config = cluster_config("local", &Shape::of(Some("redis"), None).unwrap()).unwrap();
        assert_eq!(config.lock.nodes.get(), 1);

        let config = cluster_config("docker", &Shape::of(None, Some(7)).unwrap()).unwrap();
        assert_eq!(config.lock.service.system(), LockSystem::Reference);
        assert_eq!(config.lock.nodes.get(), 1);
        assert_eq!(config.workload.workers.get(), 5);
        assert_eq!(config.runtime, RuntimeKind::Docker);
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let us: Vec<Duration> = (1..=100).map(Duration::from_micros).collect();
        assert_eq!(pct(&us, 50.0), 50.0);
        assert_eq!(pct(&us, 99.0), 99.0);
        assert_eq!(pct(&us, 100.0), 100.0);
        assert_eq!(pct(&us[..1], 99.0), 1.0);
        assert_eq!(pct(&[], 50.0), 0.0);
    }
}
