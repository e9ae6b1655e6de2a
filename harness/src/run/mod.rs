//! The lifecycle of a run: setup → workload and nemesis for `duration` → heal and
//! resume everything → final reads → teardown → check → report.
//!
//! Once the run folder exists, nothing is lost: a setup error, a failed node,
//! a history file that cannot be written or Ctrl-C still heal, resume, stop
//! every node, remove the network, unregister the run and write the history
//! recorded so far with a results.json that says what went wrong.
//!
//! Its rooms: [`plan`] (where each node listens), [`setup`] (network and
//! nodes), [`collector`] (the history), [`driver`] (the nemesis) and
//! [`final_reads`].

pub(crate) mod collector;
pub(crate) mod context;
mod driver;
mod final_reads;
mod plan;
pub(crate) mod setup;

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use futures_util::FutureExt;
use leasehold_checker::{CheckInput, Event, History, LedgerEntry, Validity};
use leasehold_nemesis::{FaultKind, Role, ScheduledFault, schedule};
use leasehold_nodes::RunClock;
use leasehold_results::ScheduledFault as ScheduledFaultRecord;
use leasehold_results::{
    FaultRecord, LockSystemSummary, NemesisSummary, NodeSummary, Results, RunDir, StorageSummary,
    Timings,
};
use tokio_util::sync::CancellationToken;

use crate::config::{Config, RuntimeKind};
use crate::registry;
use crate::run::collector::{Collected, Collector, Counters};
use crate::run::context::{READY_LIMIT, RunContext};
use crate::run::driver::Driver;
use crate::run::final_reads::{final_reads, merge_ledgers, save_server_ledger};
use crate::run::setup::{NodeImages, setup};
use crate::runtime::clock::ClockControls;
use crate::runtime::local::netns;
use crate::runtime::{NodeSpec, Runtime};
use crate::shutdown::Shutdown;

/// What a run needs besides its config.
pub struct RunOptions {
    /// The test, with the command line's overrides (`--seed`, `--duration`,
    /// `--runtime`) applied; without a seed, the run draws one.
    pub config: Config,
    /// Where the config came from, for messages.
    pub config_source: String,
    /// Root of the run folders.
    pub store: PathBuf,
    /// Show a progress bar on stderr.
    pub progress: bool,
    /// Cancelled by Ctrl-C, SIGTERM, SIGHUP or SIGQUIT (see [`Shutdown`]).
    pub shutdown: Shutdown,
}

/// A finished (or failed, or interrupted) run.
pub struct RunOutcome {
    /// What was written to `results.json`.
    pub results: Results,
    /// The run's folder, `<store>/<test>/<timestamp>/`.
    pub run_dir: PathBuf,
}

/// The programs packet faults run on the host (inside the nodes'
/// namespaces), with their Debian packages.
pub fn packet_tools() -> Vec<(PathBuf, &'static str)> {
    [
        ("iptables-restore", "iptables"),
        ("iptables-save", "iptables"),
        ("nft", "nftables"),
    ]
    .into_iter()
    .map(|(p, pkg)| (PathBuf::from(p), pkg))
    .collect()
}

/// Runs one test from start to finish.
pub async fn execute(opts: RunOptions) -> anyhow::Result<RunOutcome> {
    let RunOptions {
        mut config,
        config_source,
        store,
        progress,
        shutdown,
    } = opts;
    let cancel = shutdown.token();
    anyhow::ensure!(
        !config.has_partitions() || netns::is_root(),
        "{config_source}: nemesis: partitions need root (they add netfilter rules inside \
         the nodes' network namespaces); run as root or remove the partition faults"
    );
    anyhow::ensure!(
        !config.has_packets() || netns::is_root(),
        "{config_source}: nemesis: packet faults need root (they add netfilter rules and a \
         queue inside the nodes' network namespaces); run as root or remove the packet faults"
    );
    if config.has_packets() {
        crate::runtime::check_needs(&packet_tools(), false)?;
    }
    // A server binary that is missing stops the run before anything starts.
    {
        let cwd = std::env::current_dir().context("the working directory")?;
        let in_container = config.runtime == RuntimeKind::Docker;
        if config.lock.started_nodes() > 0 {
            crate::runtime::find_node_program(&config.lock.program(), in_container, &cwd)?;
            crate::runtime::check_needs(&config.lock.needs(), in_container)?;
        }
        if config.storage.started_nodes() > 0 {
            crate::runtime::check_needs(&config.storage.needs(), in_container)?;
        }
        if let Some(server) = config.storage.exec_server()
            && config.storage.started_nodes() > 0
        {
            let program = leasehold_workloads::storage::exec::program(&server);
            crate::runtime::find_node_program(&program, in_container, &cwd)?;
        }
    }
    check_clock_faults(&config)?;
    let seed = config.seed.unwrap_or_else(rand::random);
    config.seed = Some(seed);
    let run_id = registry::new_run_id();
    shutdown.set_run_id(&run_id);
    let started = SystemTime::now();
    let cleaned = crate::cleanup::cleanup_dead_runs().await;
    if !cleaned.is_empty() {
        tracing::warn!(?cleaned, "removed leftovers of killed runs");
    }
    let run_dir = RunDir::create(&store, &config.test, started).context("create the run folder")?;
    std::fs::write(run_dir.config_path(), config.to_yaml()).context("write config.yaml")?;
    let _registration = registry::register(&run_id, run_dir.path()).context("register the run")?;
    tracing::info!(run_id, seed, dir = %run_dir.path().display(), config = %config_source, "run starting");

    let clock = RunClock::starting_now();
    let t_start = Instant::now();
    let collector = match Collector::start(&run_dir.history_path(), clock) {
        Ok(c) => c,
        Err(e) => {
            registry::unregister(&run_id);
            return Err(e);
        }
    };
    let fault_schedule = schedule(
        &config.nemesis.faults,
        &config.nemesis.timeline,
        config.duration,
        seed,
    );
    let mut timings = Timings::default();
    let mut state = RunState {
        runtime: None,
        records: Vec::new(),
        nodes: Vec::new(),
        lock_system: None,
    };
    let ctx = RunContext {
        config: &config,
        run_id: &run_id,
        seed,
        clock,
        run_dir: &run_dir,
        events: collector.sender(),
        cancel: &cancel,
        ready_limit: READY_LIMIT,
    };
    let outcome = drive(
        &ctx,
        &collector,
        &fault_schedule,
        progress,
        &mut state,
        &mut timings,
    )
    .await;
    drop(ctx);

    // Teardown happens whatever `drive` returned.
    let t_teardown = Instant::now();
    if let Some(mut runtime) = state.runtime.take() {
        runtime.resume_all();
        runtime.teardown(Duration::from_secs(2)).await;
    }
    let Collected {
        events,
        error: history_error,
    } = collector.finish().await;
    let ledger = {
        let (config, run_dir) = (config.clone(), run_dir.clone());
        tokio::task::spawn_blocking(move || merge_ledgers(&config, &run_dir))
            .await
            .unwrap_or_else(|e| Err(anyhow::anyhow!("merging the ledgers panicked: {e}")))
    };
    registry::unregister(&run_id);
    timings.teardown_ms = Timings::ms(t_teardown.elapsed());

    // Check what was recorded, even after an error or Ctrl-C.
    let t_check = Instant::now();
    let (ledger, ledger_error) = match ledger {
        Ok(l) => (l, None),
        Err(e) => (None, Some(format!("{e:#}"))),
    };
    let had_ledger = ledger.is_some();
    let (checked, events) = {
        let fencing = config.storage.fencing;
        // Seconds of CPU at worst: a blocking thread's work.
        tokio::task::spawn_blocking(move || (check(&events, ledger.as_deref(), fencing), events))
            .await
            .context("the checker panicked")?
    };
    timings.check_ms = Timings::ms(t_check.elapsed());
    timings.total_ms = Timings::ms(t_start.elapsed());

    let errors: Vec<String> = [
        outcome.as_ref().err().map(|e| format!("{e:#}")),
        ledger_error,
        history_error.clone(),
    ]
    .into_iter()
    .flatten()
    .collect();
    let mut results = Results::new(
        &config.test,
        &run_id,
        seed,
        started,
        config.runtime.to_string(),
    );
    results.interrupted = cancel.is_cancelled();
    results.signal = shutdown.signal().map(|s| s as i32 as u8);
    results.error = (!errors.is_empty()).then(|| errors.join("; "));
    results.timings = timings;
    results.nemesis = NemesisSummary {
        asked: asked_faults(&config),
        schedule: fault_schedule.iter().map(schedule_record).collect(),
        faults: state.records,
    };
    results.nodes = state.nodes;
    results.lock_system = state.lock_system;
    results.record_checks(checked, &events);
    results.storage = Some(StorageSummary::new(
        config.storage.service.system().name(),
        config.storage.fencing,
        had_ledger,
        &results.checks,
    ));
    results.require_activity();
    if history_error.is_some() {
        // history.jsonl no longer holds what was checked: a re-check of the
        // folder could not reproduce any verdict.
        results.verdict = Validity::Unknown;
    }
    run_dir
        .write_results(&results)
        .context("write results.json")?;
    run_dir
        .write_report(&results, &events)
        .context("write report.html")?;
    run_dir.write_junit(&results).context("write junit.xml")?;
    Ok(RunOutcome {
        results,
        run_dir: run_dir.path().to_owned(),
    })
}

/// Refuses, before anything starts, a clock fault that may hit a node the
/// clock library cannot reach (a Go or static program such as etcd, a
/// set-id program, a user's own image), naming the fault and the reason; and
/// any clock fault when the library itself is missing.
fn check_clock_faults(config: &Config) -> anyhow::Result<()> {
    let nodes = config.clock_nodes();
    let Some(first) = nodes.values().next() else {
        return Ok(());
    };
    crate::runtime::clock::shim_path()
        .map_err(|e| config.error_at(first.clone(), e.to_string()))?;
    let cwd = std::env::current_dir().context("the working directory")?;
    let in_container = config.runtime == RuntimeKind::Docker;
    let leasehold = std::env::current_exe().context("cannot find leasehold's own executable")?;
    // The programs each role's nodes run (a leasehold launcher's server too).
    let programs_of = |role: Role| -> anyhow::Result<Vec<PathBuf>> {
        let (program, needs) = match role {
            Role::Lock => {
                if in_container && config.lock.image.is_some() {
                    anyhow::bail!(
                        "its image is the config's `lock.image`, which does not carry the clock \
                         library (leasehold packs it into the images it builds)"
                    );
                }
                (config.lock.program(), config.lock.needs())
            }
            Role::Storage => match config.storage.exec_server() {
                Some(server) => (
                    leasehold_workloads::storage::exec::program(&server),
                    config.storage.needs(),
                ),
                None => (
                    leasehold_workloads::Program::Leasehold,
                    config.storage.needs(),
                ),
            },
            Role::Worker => (leasehold_workloads::Program::Leasehold, Vec::new()),
        };
        let mut paths = vec![
            match crate::runtime::find_node_program(&program, in_container, &cwd)? {
                crate::runtime::NodeProgram::Leasehold => leasehold.clone(),
                crate::runtime::NodeProgram::Host(p) => p,
            },
        ];
        for (need, _) in needs {
            let found = if need.components().count() == 1 {
                std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
                    .map(|d| d.join(&need))
                    .find(|p| p.is_file())
            } else {
                Some(need)
            };
            // Programs only: a jar or a data file is not started.
            if let Some(p) = found.filter(|p| crate::runtime::spec::is_executable(p)) {
                paths.push(p);
            }
        }
        Ok(paths)
    };
    for (node, field) in &nodes {
        let role = config
            .role_of(node)
            .expect("clock_nodes names nodes of the config");
        let refuse = |why: String| {
            config.error_at(
                field.clone(),
                format!(
                    "a clock fault may hit {node}, which the clock library cannot reach: {why}"
                ),
            )
        };
        for program in programs_of(role).map_err(|e| refuse(format!("{e:#}")))? {
            if let Err(why) = leasehold_clock::reachable(&program) {
                return Err(refuse(why.to_string()).into());
            }
        }
    }
    Ok(())
}

/// Runs every check on a run's history.
fn check(
    events: &[Event],
    ledger: Option<&[LedgerEntry]>,
    fencing: bool,
) -> leasehold_checker::Checked {
    let ops = History::new(events.to_vec()).ops();
    leasehold_checker::check_with(
        CheckInput { ops: &ops, ledger },
        &leasehold_checker::CheckOptions {
            fencing: Some(fencing),
            // A run's own histories take milliseconds; the bound keeps a
            // pathological one from holding the report back (it says unknown).
            linearizability: Some(leasehold_checker::Limits {
                deadline: Some(Duration::from_secs(20)),
                max_states: Some(5_000_000),
            }),
        },
    )
}

struct RunState {
    runtime: Option<Box<dyn Runtime>>,
    records: Vec<FaultRecord>,
    nodes: Vec<NodeSummary>,
    lock_system: Option<LockSystemSummary>,
}

fn schedule_record(f: &ScheduledFault) -> ScheduledFaultRecord {
    ScheduledFaultRecord {
        at_ms: f.at.as_millis() as u64,
        f: f.kind.as_str().to_owned(),
        target: f.target.to_string(),
        duration_ms: f.duration.as_millis() as u64,
        spec: Some(f.spec),
    }
}

/// The faults the config asks for, in the order of `ScheduledFault::spec`:
/// generators, then timeline entries.
fn asked_faults(config: &Config) -> Vec<String> {
    let generators = config.nemesis.faults.iter().enumerate().map(|(i, f)| {
        let mut s = format!(
            "faults[{i}] ({} {} for {}",
            f.fault.as_str(),
            f.target,
            f.duration
        );
        if let Some(every) = &f.every {
            s += &format!(" every {every}");
        }
        if f.fault == FaultKind::Packet {
            s += &format!(", {}", f.shape());
        }
        s + ")"
    });
    let timeline = config.nemesis.timeline.iter().enumerate().map(|(i, e)| {
        let shape = if e.fault == FaultKind::Packet {
            format!(", {}", e.shape())
        } else {
            String::new()
        };
        format!(
            "timeline[{i}] ({} {} at {} for {}{shape})",
            e.fault.as_str(),
            e.target,
            humantime::format_duration(e.at),
            humantime::format_duration(e.duration)
        )
    });
    generators.chain(timeline).collect()
}

/// Setup, workload, heal, final reads. Leaves the runtime in `state` for the
/// caller to tear down.
async fn drive(
    ctx: &RunContext<'_>,
    collector: &Collector,
    fault_schedule: &[ScheduledFault],
    progress: bool,
    state: &mut RunState,
    timings: &mut Timings,
) -> anyhow::Result<()> {
    let t_setup = Instant::now();
    let images = NodeImages::prepare(ctx.config).await?;
    let Some(specs) = setup(ctx, &images, &mut state.runtime).await? else {
        return Ok(());
    };
    state.nodes = specs
        .iter()
        .map(|s| NodeSummary {
            name: s.name.clone(),
            role: s.role.to_string(),
            addr: s.addr.to_string(),
        })
        .collect();
    state.lock_system = Some(lock_system_summary(ctx.config, &specs).await);
    let runtime = state.runtime.as_mut().expect("setup made the runtime");
    timings.setup_ms = Timings::ms(t_setup.elapsed());

    // Workload and nemesis. The driver is polled here, next to the clock and
    // the signals: whatever fault it is busy with, the deadline and Ctrl-C
    // are seen at once.
    let t_run = Instant::now();
    let stop_nemesis = CancellationToken::new();
    let clocked = specs.iter().filter(|s| s.clock.is_some());
    let clocks = ClockControls::open(ctx.run_dir.path(), clocked.map(|s| s.name.clone()))?;
    let driver = Driver {
        schedule: fault_schedule.to_vec(),
        clocks: tokio::sync::Mutex::new(clocks),
        facts: runtime.facts(),
        live: collector.live(),
        events: ctx.events.clone(),
        clock: ctx.clock,
        origin_ns: ctx.clock.now(),
        seed: ctx.seed,
        ready_limit: ctx.ready_limit,
        lock_leader: ctx.config.lock.service.system().leader(),
    };
    let bar = progress_bar(progress, ctx.config.duration);
    let counters = collector.counters();
    let deadline = tokio::time::Instant::now() + ctx.config.duration;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let records = {
        let nemesis = std::panic::AssertUnwindSafe(driver.run(
            runtime.as_mut(),
            stop_nemesis.clone(),
            ctx.cancel.clone(),
        ))
        .catch_unwind();
        tokio::pin!(nemesis);
        // Heal at the deadline or on a signal: the driver resumes what it paused,
        // removes partitions and starts killed nodes again.
        loop {
            tokio::select! {
                records = &mut nemesis => break records,
                _ = tokio::time::sleep_until(deadline), if !stop_nemesis.is_cancelled() => {
                    bar.finish_and_clear();
                    stop_nemesis.cancel();
                }
                _ = ctx.cancel.cancelled(), if !stop_nemesis.is_cancelled() => {
                    bar.finish_and_clear();
                    stop_nemesis.cancel();
                }
                _ = tick.tick(), if !stop_nemesis.is_cancelled() => {
                    show_progress(&bar, t_run.elapsed(), &counters);
                }
            }
        }
    };
    bar.finish_and_clear();
    state.records = records.map_err(|_| anyhow::anyhow!("the nemesis panicked"))?;
    // Then every node gets SIGCONT, whatever paused it.
    runtime.resume_all();
    timings.run_ms = Timings::ms(t_run.elapsed());

    // Workers finish the operation in flight, then stop.
    let workers = runtime.names(Role::Worker);
    runtime
        .stop(
            &workers,
            ctx.config.workload.timeout * 2 + Duration::from_secs(1),
        )
        .await;
    // Before the storage stops (even on Ctrl-C): a ledger only the server
    // holds is saved as the reference nodes save theirs.
    save_server_ledger(ctx.config, ctx.clock, &specs, ctx.run_dir).await?;
    if ctx.cancel.is_cancelled() {
        return Ok(());
    }
    final_reads(ctx.config, ctx.events.clone(), ctx.clock, &specs).await;
    Ok(())
}

/// The lock system tested, its version asked of the first lock node (ready
/// by now).
async fn lock_system_summary(config: &Config, specs: &[NodeSpec]) -> LockSystemSummary {
    let system = config.lock.service.system();
    let version = match specs.iter().find(|s| s.role == Role::Lock) {
        Some(first) => system
            .server_version(first.addr, Duration::from_secs(2))
            .await
            .unwrap_or_else(|e| format!("(unknown: {e})")),
        None => "(unknown: no lock node)".to_owned(),
    };
    LockSystemSummary {
        name: system.name().to_owned(),
        version,
        token: system.token().to_owned(),
    }
}

fn progress_bar(show: bool, duration: Duration) -> indicatif::ProgressBar {
    if !show {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(duration.as_millis() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {elapsed:>3} [{bar:30}] {msg}")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    bar
}

fn show_progress(bar: &indicatif::ProgressBar, elapsed: Duration, counters: &Counters) {
    bar.set_position(elapsed.as_millis() as u64);
    bar.set_message(format!(
        "{} events, {} writes",
        counters.events.load(Ordering::Relaxed),
        counters.writes.load(Ordering::Relaxed),
    ));
}
