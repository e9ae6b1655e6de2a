//! `leasehold bench`: the harness's own speed, printed as figures.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use clap::{Args, Subcommand};
use leasehold_nemesis::{NodeFacts, Role, Topology, grudge, partition};
use leasehold_nodes::RunClock;
use leasehold_results::RunDir;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tokio_util::sync::CancellationToken;

use nix::sys::signal::Signal;

use crate::config::{Config, RuntimeKind};
use crate::registry;
use crate::run::collector::Collector;
use crate::run::context::{READY_LIMIT, RunContext};
use crate::run::setup::{NodeImages, setup};
use crate::runtime::Runtime;

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
    /// Nodes in the cluster: one lock node, one storage node, the rest workers.
    #[arg(long, default_value_t = 7)]
    nodes: u32,
    /// How many pauses to time.
    #[arg(long, default_value_t = 100)]
    pauses: usize,
    /// How many partitions (random halves) and heals to time; needs root.
    #[arg(long, default_value_t = 20)]
    partitions: usize,
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

fn cluster_config(runtime: &str, nodes: u32) -> anyhow::Result<Config> {
    anyhow::ensure!(
        nodes >= 3,
        "a cluster needs at least 3 nodes (lock, storage, a worker)"
    );
    let text = format!(
        "test: bench-cluster\nduration: 1s\nruntime: {runtime}\nworkload:\n  workers: {}\n  lease: 1s\n  think: 300ms\n",
        nodes - 2
    );
    Ok(Config::parse(&text, std::path::Path::new("(bench)"))?)
}

async fn cluster(args: ClusterArgs) -> anyhow::Result<()> {
    let config = cluster_config(&args.runtime, args.nodes)?;
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

    let measured = match (&ready, slot.as_mut()) {
        (Ok(_), Some(runtime)) => Some(measure(runtime.as_mut(), &args).await?),
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
    let m = measured.context("no cluster to measure")?;

    println!("cluster of {} nodes, runtime {}", args.nodes, args.runtime);
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
    show("kill", &m.kill, "target <= 20 ms");
    show("restart", &m.restart, "until the node runs again");
    Ok(())
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
