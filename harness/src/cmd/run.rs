//! `leasehold run`: run a test and check it.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, RuntimeKind};
use crate::run::{RunOptions, execute};

/// The default example, built in so `leasehold run` works from any folder.
const DEFAULT_EXAMPLE: &str = include_str!("../../../examples/gc-pause.yaml");
const DEFAULT_EXAMPLE_NAME: &str = "examples/gc-pause.yaml";

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The test config (YAML). Default: examples/gc-pause.yaml, the GC-pause
    /// story with unfenced storage (built into the binary).
    pub config: Option<PathBuf>,

    /// Seed for everything random in the run (fault schedule, back-off, target
    /// choice); overrides the config's. The same seed gives the same schedule.
    #[arg(long)]
    pub seed: Option<u64>,

    /// How long the workload and the nemesis run, e.g. 10s; overrides the
    /// config's.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,

    /// Where the nodes run, overriding the config's `runtime`: `local`
    /// (child processes) or `docker` (containers).
    #[arg(long, value_parser = ["local", "docker"])]
    pub runtime: Option<String>,

    /// Folder that receives the run folders: <store>/<test>/<timestamp>/, with
    /// <store>/latest pointing at the newest.
    #[arg(long, default_value = "store")]
    pub store: PathBuf,

    /// Never draw a progress bar (it is drawn only on a terminal anyway).
    #[arg(long)]
    pub no_progress: bool,
}

pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let (mut config, source) = match &args.config {
        Some(path) => (Config::load(path)?, path.display().to_string()),
        None => {
            let source = format!("{DEFAULT_EXAMPLE_NAME} (built in)");
            (
                Config::parse(DEFAULT_EXAMPLE, std::path::Path::new(&source))?,
                source,
            )
        }
    };
    if let Some(seed) = args.seed {
        config.seed = Some(seed);
    }
    if let Some(d) = args.duration {
        config.duration = d;
    }
    match args.runtime.as_deref() {
        Some("docker") => config.runtime = RuntimeKind::Docker,
        Some("local") => config.runtime = RuntimeKind::Local,
        _ => {}
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let cancel = CancellationToken::new();
        let on_ctrl_c = cancel.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("interrupted: healing, stopping nodes and saving the history…");
                on_ctrl_c.cancel();
            }
        });
        let outcome = execute(RunOptions {
            config,
            config_source: source,
            store: args.store,
            progress: !args.no_progress,
            cancel,
        })
        .await?;
        println!("{}", outcome.results.summary(&outcome.run_dir));
        Ok(ExitCode::from(outcome.results.exit_code()))
    })
}
