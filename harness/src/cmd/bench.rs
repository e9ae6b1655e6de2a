//! `leasehold bench`: the harness's own speed, printed as figures.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use clap::{Args, Subcommand};
use leasehold_nemesis::{Nemesis, Role};
use leasehold_nodes::RunClock;
use leasehold_results::RunDir;
use tokio_util::sync::CancellationToken;

use crate::collector::Collector;
use crate::config::{Config, RuntimeKind};
use crate::registry;
use crate::run::{NodeImages, setup};

#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    what: BenchCommand,
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Start a cluster, pause and resume its workers many times, tear it
    /// down; print how long each took.
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
    let ready = setup(
        &config,
        &run_id,
        1,
        clock,
        &run_dir,
        &images,
        collector.sender(),
        &cancel,
        &mut slot,
    )
    .await;
    let ready_ms = t.elapsed().as_secs_f64() * 1e3;

    let measured = match (&ready, slot.as_ref()) {
        (Ok(_), Some(runtime)) => {
            let facts = runtime.facts();
            let workers: Vec<_> = facts.iter().filter(|f| f.role == Role::Worker).collect();
            let mut nemesis = Nemesis::new();
            let mut pause = Vec::with_capacity(args.pauses);
            let mut resume = Vec::with_capacity(args.pauses);
            for i in 0..args.pauses {
                let node = workers[i % workers.len()];
                pause.push(nemesis.pause(&[node])?.latency);
                resume.push(nemesis.resume(std::slice::from_ref(&node.name))?.latency);
            }
            Some((pause, resume))
        }
        _ => None,
    };

    let t = Instant::now();
    if let Some(mut runtime) = slot.take() {
        runtime.resume_all();
        runtime.teardown(Duration::from_secs(2)).await;
    }
    let teardown_ms = t.elapsed().as_secs_f64() * 1e3;
    collector.finish().await?;
    registry::unregister(&run_id);
    ready.context("start the cluster")?;
    let (pause, resume) = measured.context("no cluster to pause")?;

    println!("cluster of {} nodes, runtime {}", args.nodes, args.runtime);
    println!(
        "  images ready       {images_ms:9.1} ms{}",
        if config.runtime == RuntimeKind::Docker {
            ""
        } else {
            " (none needed)"
        }
    );
    println!("  all nodes ready    {ready_ms:9.1} ms   (target <= 3000 ms)");
    println!("  teardown           {teardown_ms:9.1} ms   (target <= 2000 ms)");
    println!(
        "  pause  (n={:3})     median {:7.1} us   p99 {:7.1} us   max {:7.1} us   (target p99 <= 1000 us)",
        pause.len(),
        pct(&pause, 50.0),
        pct(&pause, 99.0),
        pct(&pause, 100.0)
    );
    println!(
        "  resume (n={:3})     median {:7.1} us   p99 {:7.1} us   max {:7.1} us",
        resume.len(),
        pct(&resume, 50.0),
        pct(&resume, 99.0),
        pct(&resume, 100.0)
    );
    Ok(())
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
