//! The command line.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::cmd;

/// Fault-injection harness for distributed locks and the storage they guard.
///
/// leasehold starts a lock service, storage and client workers, injects faults
/// (process pauses that imitate GC pauses), records what happened and checks
/// whether storage ever accepted a write from a holder whose lease had expired.
#[derive(Debug, Parser)]
#[command(name = "leasehold", version, propagate_version = true)]
pub struct Cli {
    /// More log output (-v info, -vv debug, -vvv trace); RUST_LOG overrides it.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

    /// The subcommand to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands of `leasehold`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a test: start the nodes, run the workload under the nemesis, check
    /// the history and write the results.
    Run(cmd::run::RunArgs),
    /// Check a stored run or a history file (leasehold JSONL or Jepsen EDN) again.
    Check(cmd::check::CheckArgs),
    /// Remove what killed runs left behind: processes, network namespaces,
    /// interfaces. Runs whose controller is still alive are left alone.
    Cleanup(cmd::cleanup::CleanupArgs),
    /// Run the findings matrix (each lock system, unfenced and fenced, under
    /// each fault) and print its table, or write it into a file.
    Findings(cmd::findings::FindingsArgs),
    /// Run configs several times each, one run after another, and give one
    /// verdict: invalid beats a failed run, which beats unknown, which beats
    /// valid.
    TestAll(cmd::test_all::TestAllArgs),
    /// Shrink a failing run's fault schedule: replay its config with fewer
    /// and shorter faults and a shorter duration, and write the smallest
    /// config that still fails as RUN_DIR/shrunk.yaml.
    ///
    /// Each candidate is replayed with the run's seed up to --runs times, into
    /// RUN_DIR/shrink/store/; it fails if any replay is invalid (timing can
    /// make one replay differ from another).
    ///
    /// Exit codes: 0 shrunk.yaml written, and no single fault can be removed
    /// from it without the failure going away; 2 the budget ran out:
    /// shrunk.yaml written but not proven minimal (its first line says so); 3
    /// nothing to shrink (no config.yaml or results.json, a run that was not
    /// invalid) or the failure did not reproduce within the budget: no
    /// shrunk.yaml; 128 + n stopped by signal n.
    Shrink(cmd::shrink::ShrinkArgs),
    /// Serve the store's runs over HTTP: an index of runs with each test's
    /// trend, every run's files and report. Loopback only unless --addr says
    /// otherwise.
    Serve(cmd::serve::ServeArgs),
    /// Build the container images of leasehold's nodes (Docker runtime).
    Images(cmd::images::ImagesArgs),
    /// Measure the harness itself: cluster start, teardown, pause latency.
    Bench(cmd::bench::BenchArgs),
    /// Run one node's program (used by the runtimes, inside the node).
    #[command(hide = true)]
    Node(cmd::node::NodeArgs),
}

/// Parses the command line and runs the command. A command-line error (an
/// unknown flag, a bad value, a missing argument) exits
/// [`EXIT_RUN_FAILED`](crate::EXIT_RUN_FAILED), not clap's usage code 2,
/// which is leasehold's code for *unknown*: a typo in a nightly job must not
/// read as a verdict. `--help` and `--version` exit 0.
pub fn run() -> anyhow::Result<ExitCode> {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version go to stdout; errors, with clap's usage line, to
            // stderr.
            let _ = e.print();
            return Ok(if e.use_stderr() {
                ExitCode::from(crate::EXIT_RUN_FAILED)
            } else {
                ExitCode::SUCCESS
            });
        }
    };
    init_tracing(cli.verbose, matches!(cli.command, Command::Node(_)));
    match cli.command {
        Command::Run(args) => cmd::run::run(args),
        Command::Check(args) => cmd::check::run(args),
        Command::Cleanup(args) => cmd::cleanup::run(args),
        Command::Bench(args) => cmd::bench::run(args),
        Command::Findings(args) => cmd::findings::run(args),
        Command::TestAll(args) => cmd::test_all::run(args),
        Command::Shrink(args) => cmd::shrink::run(args),
        Command::Serve(args) => cmd::serve::run(args),
        Command::Images(args) => cmd::images::run(args),
        Command::Node(args) => cmd::node::run(args),
    }
}

fn init_tracing(verbose: u8, node: bool) {
    use tracing_subscriber::EnvFilter;
    let default = match (node, verbose) {
        // Node logs go to their log file: keep them informative.
        (true, 0) => "info",
        (false, 0) => "warn",
        (_, 1) => "info",
        (_, 2) => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(!node && std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}
