//! `leasehold run`: run a test and check it.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Args;

use crate::config::{Config, RuntimeKind};
use crate::run::{RunOptions, execute};
use crate::shutdown::Shutdown;

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
        // Checked against the file as the config's own duration would be.
        config.set_duration(d)?;
    }
    match args.runtime.as_deref() {
        Some("docker") => config.set_runtime(RuntimeKind::Docker)?,
        Some("local") => config.set_runtime(RuntimeKind::Local)?,
        _ => {}
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let shutdown = Shutdown::new();
        shutdown.listen().context("install the signal handlers")?;
        let outcome = execute(RunOptions {
            config,
            config_source: source,
            store: args.store,
            progress: !args.no_progress,
            shutdown,
        })
        .await?;
        let summary = outcome.results.summary(&outcome.run_dir);
        // A run that failed tells why on stderr, where errors go; a verdict goes
        // to stdout.
        if outcome.results.error.is_some() {
            print_or_stop(&mut std::io::stderr(), &summary);
        } else {
            print_or_stop(&mut std::io::stdout(), &summary);
        }
        Ok(ExitCode::from(outcome.results.exit_code()))
    })
}

/// Prints the summary; a reader that went away (`leasehold run | head -1`, a
/// closed terminal) just ends the printing: the verdict is in the exit code and
/// the run folder.
pub(crate) fn print_or_stop(out: &mut impl std::io::Write, text: &str) {
    let _ = writeln!(out, "{text}").and_then(|()| out.flush());
}
