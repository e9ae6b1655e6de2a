//! The lifecycle of a run: setup → workload and nemesis for `duration` → heal and
//! resume everything → final reads → teardown → check → report.
//!
//! Once the run folder exists, nothing is lost: a setup error, a failed node or
//! Ctrl-C still heal, resume, stop every node, remove the network and write the
//! history recorded so far with a results.json that says what went wrong.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use leasehold_checker::{CheckInput, Event, EventType, History, LedgerEntry, Process};
use leasehold_nemesis::{Role, ScheduledFault, schedule};
use leasehold_nodes::RunClock;
use leasehold_results::ScheduledFault as ScheduledFaultRecord;
use leasehold_results::{FaultRecord, NemesisSummary, NodeSummary, Results, RunDir, Timings};
use leasehold_workloads::{Completion, StorageClient};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::collector::{Collector, Counters};
use crate::config::{Config, RuntimeKind, Subnet};
use crate::docker::{self, DATA_MOUNT, DockerRuntime};
use crate::local::{LocalRuntime, NodeSpec};
use crate::nemesis_driver::{Driver, RuntimeRequest};
use crate::netns::{self, NetnsNet};
use crate::registry;
use crate::runtime::Runtime;
use crate::shutdown::Shutdown;

/// How long a node may take to answer its health check.
const READY_LIMIT: Duration = Duration::from_secs(10);

/// What a run needs besides its config.
pub struct RunOptions {
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
    pub results: Results,
    pub run_dir: PathBuf,
}

/// Where the nodes live, as far as planning them goes.
struct Placement {
    /// The run's subnet when nodes have addresses of their own (namespaces or
    /// containers); `None`: everything on loopback ports.
    subnet: Option<Subnet>,
    /// Data folders are mounted at [`DATA_MOUNT`] inside containers.
    in_container: bool,
}

/// Where each node listens: its own address on the run's subnet, or a free
/// loopback port when there is none.
fn plan(
    config: &Config,
    run_id: &str,
    clock: RunClock,
    place: &Placement,
    run_dir: &RunDir,
    seed: u64,
) -> anyhow::Result<Vec<NodeSpec>> {
    let addr = |name: &str, port: u16| -> anyhow::Result<SocketAddr> {
        Ok(match place.subnet {
            Some(n) => SocketAddr::new(IpAddr::V4(n.host(octet_of(config, name)?)), port),
            None if port == 0 => SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            None => free_loopback_port()?,
        })
    };
    let common = |name: &str| {
        vec![
            "--name".to_owned(),
            name.to_owned(),
            "--run-id".to_owned(),
            run_id.to_owned(),
            "--t0".to_owned(),
            clock.t0_ns().to_string(),
        ]
    };
    // The folder on the host, and how the node names it.
    let data_dir = |name: &str| -> anyhow::Result<(PathBuf, String)> {
        let d = run_dir.node_data_dir(name);
        std::fs::create_dir_all(&d).with_context(|| format!("create {}", d.display()))?;
        let arg = if place.in_container {
            DATA_MOUNT.to_owned()
        } else {
            d.display().to_string()
        };
        Ok((d, arg))
    };
    let mut specs = Vec::new();
    for i in 1..=config.lock.nodes.get() {
        let name = format!("lock{i}");
        let a = addr(&name, 7000)?;
        let (dir, dir_arg) = data_dir(&name)?;
        let mut args = vec!["lock".to_owned()];
        args.extend(common(&name));
        args.extend([
            "--listen".into(),
            a.to_string(),
            "--data-dir".into(),
            dir_arg,
        ]);
        specs.push(NodeSpec {
            name,
            role: Role::Lock,
            addr: a,
            args,
            data_dir: Some(dir),
        });
    }
    for i in 1..=config.storage.nodes.get() {
        let name = format!("store{i}");
        let a = addr(&name, 7100)?;
        let (dir, dir_arg) = data_dir(&name)?;
        let mut args = vec!["storage".to_owned()];
        args.extend(common(&name));
        args.extend([
            "--listen".into(),
            a.to_string(),
            "--data-dir".into(),
            dir_arg,
            "--fencing".into(),
            if config.storage.fencing { "on" } else { "off" }.into(),
        ]);
        specs.push(NodeSpec {
            name,
            role: Role::Storage,
            addr: a,
            args,
            data_dir: Some(dir),
        });
    }
    let locks: Vec<String> = specs
        .iter()
        .filter(|s| s.role == Role::Lock)
        .map(|s| s.addr.to_string())
        .collect();
    let stores: Vec<String> = specs
        .iter()
        .filter(|s| s.role == Role::Storage)
        .map(|s| s.addr.to_string())
        .collect();
    let w = &config.workload;
    for i in 1..=w.workers.get() {
        let name = format!("w{i}");
        let a = addr(&name, 0)?;
        let mut args = vec!["worker".to_owned()];
        args.extend(common(&name));
        args.extend([
            "--index".into(),
            (i - 1).to_string(),
            "--workers".into(),
            w.workers.to_string(),
            "--lock".into(),
            w.lock.clone(),
            "--lease-ms".into(),
            w.lease.as_millis().to_string(),
            "--think-ms".into(),
            w.think.as_millis().to_string(),
            "--timeout-ms".into(),
            w.timeout.as_millis().to_string(),
            "--backoff-ms".into(),
            w.backoff.as_millis().to_string(),
            "--seed".into(),
            seed.to_string(),
            "--on-renew-timeout".into(),
            w.on_renew_timeout.as_str().into(),
        ]);
        for l in &locks {
            args.extend(["--lock-addr".into(), l.clone()]);
        }
        for s in &stores {
            args.extend(["--storage".into(), s.clone()]);
        }
        for k in w.key_names() {
            args.extend(["--key".into(), k]);
        }
        specs.push(NodeSpec {
            name,
            role: Role::Worker,
            addr: a,
            args,
            data_dir: None,
        });
    }
    Ok(specs)
}

fn free_loopback_port() -> anyhow::Result<SocketAddr> {
    let l = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("find a free port")?;
    Ok(l.local_addr()?)
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
    let seed = config.seed.unwrap_or_else(rand::random);
    config.seed = Some(seed);
    let run_id = registry::new_run_id();
    shutdown.set_run_id(&run_id);
    let started = SystemTime::now();
    let cleaned = registry::cleanup_dead_runs().await;
    if !cleaned.is_empty() {
        tracing::warn!(?cleaned, "removed leftovers of killed runs");
    }
    let run_dir = RunDir::create(&store, &config.test, started).context("create the run folder")?;
    std::fs::write(run_dir.config_path(), config.to_yaml()).context("write config.yaml")?;
    let _registration = registry::register(&run_id, run_dir.path()).context("register the run")?;
    tracing::info!(run_id, seed, dir = %run_dir.path().display(), config = %config_source, "run starting");

    let clock = RunClock::starting_now();
    let t_start = Instant::now();
    let collector = Collector::start(&run_dir.history_path(), clock)?;
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
    };
    let outcome = drive(
        &config,
        &run_id,
        seed,
        clock,
        &run_dir,
        &collector,
        &fault_schedule,
        progress,
        &cancel,
        &mut state,
        &mut timings,
    )
    .await;

    // Teardown happens whatever `drive` returned.
    let t_teardown = Instant::now();
    if let Some(mut runtime) = state.runtime.take() {
        runtime.resume_all();
        runtime.teardown(Duration::from_secs(2)).await;
    }
    let events = collector.finish().await?;
    let ledger = merge_ledgers(&config, &run_dir);
    registry::unregister(&run_id);
    timings.teardown_ms = Timings::ms(t_teardown.elapsed());

    // Check what was recorded, even after an error or Ctrl-C.
    let t_check = Instant::now();
    let (ledger, ledger_error) = match ledger {
        Ok(l) => (Some(l), None),
        Err(e) => (None, Some(format!("{e:#}"))),
    };
    let ops = History::new(events.clone()).ops();
    let checked = leasehold_checker::check_with(
        CheckInput {
            ops: &ops,
            ledger: ledger.as_deref(),
        },
        &leasehold_checker::CheckOptions {
            fencing: Some(config.storage.fencing),
            // A run's own histories take milliseconds; the bound keeps a
            // pathological one from holding the report back (it says unknown).
            linearizability: Some(leasehold_checker::Limits {
                deadline: Some(Duration::from_secs(20)),
                max_states: Some(5_000_000),
            }),
        },
    );
    timings.check_ms = Timings::ms(t_check.elapsed());
    timings.total_ms = Timings::ms(t_start.elapsed());

    let error = match (&outcome, ledger_error) {
        (Err(e), _) => Some(format!("{e:#}")),
        (Ok(()), Some(l)) => Some(l),
        _ => None,
    };
    let mut results = Results::new(
        &config.test,
        &run_id,
        seed,
        started,
        config.runtime.to_string(),
    );
    results.interrupted = cancel.is_cancelled();
    results.signal = shutdown.signal().map(|s| s as i32 as u8);
    results.error = error;
    results.timings = timings;
    results.nemesis = NemesisSummary {
        asked: asked_faults(&config),
        schedule: fault_schedule.iter().map(schedule_record).collect(),
        faults: state.records,
    };
    results.nodes = state.nodes;
    results.record_checks(checked, &events);
    results.require_activity();
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

struct RunState {
    runtime: Option<Runtime>,
    records: Vec<FaultRecord>,
    nodes: Vec<NodeSummary>,
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
        s + ")"
    });
    let timeline = config.nemesis.timeline.iter().enumerate().map(|(i, e)| {
        format!(
            "timeline[{i}] ({} {} at {} for {})",
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
#[allow(clippy::too_many_arguments)]
async fn drive(
    config: &Config,
    run_id: &str,
    seed: u64,
    clock: RunClock,
    run_dir: &RunDir,
    collector: &Collector,
    fault_schedule: &[ScheduledFault],
    progress: bool,
    cancel: &CancellationToken,
    state: &mut RunState,
    timings: &mut Timings,
) -> anyhow::Result<()> {
    let t_setup = Instant::now();
    let images = NodeImages::prepare(config).await?;
    let Some(specs) = setup(
        config,
        run_id,
        seed,
        clock,
        run_dir,
        &images,
        collector.sender(),
        cancel,
        &mut state.runtime,
    )
    .await?
    else {
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
    let runtime = state.runtime.as_mut().expect("setup made the runtime");
    timings.setup_ms = Timings::ms(t_setup.elapsed());

    // Workload and nemesis.
    let t_run = Instant::now();
    let stop_nemesis = CancellationToken::new();
    let (requests, mut request_rx) = tokio::sync::mpsc::channel(8);
    let driver = Driver {
        schedule: fault_schedule.to_vec(),
        facts: runtime.facts(),
        live: collector.live(),
        events: collector.sender(),
        runtime: requests,
        clock,
        origin_ns: clock.now(),
        seed,
    };
    let mut nemesis = tokio::spawn(driver.run(stop_nemesis.clone()));
    let bar = progress_bar(progress, config.duration);
    let counters = collector.counters();
    let deadline = tokio::time::Instant::now() + config.duration;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut incarnations: BTreeMap<String, u64> = BTreeMap::new();
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => break,
            _ = cancel.cancelled() => break,
            Some(request) = request_rx.recv() => serve(runtime, request, &mut incarnations).await,
            _ = tick.tick() => show_progress(&bar, t_run.elapsed(), &counters),
        }
    }
    bar.finish_and_clear();
    // Heal: the nemesis resumes what it paused, removes partitions and starts
    // killed nodes again (through us), then every node gets SIGCONT.
    stop_nemesis.cancel();
    state.records = loop {
        tokio::select! {
            records = &mut nemesis => break records.context("the nemesis panicked")?,
            Some(request) = request_rx.recv() => serve(runtime, request, &mut incarnations).await,
        }
    };
    runtime.resume_all();
    timings.run_ms = Timings::ms(t_run.elapsed());

    // Workers finish the operation in flight, then stop.
    let workers = runtime.names(Role::Worker);
    runtime
        .stop(
            &workers,
            config.workload.timeout * 2 + Duration::from_secs(1),
        )
        .await;
    if cancel.is_cancelled() {
        return Ok(());
    }
    final_reads(config, collector, clock, &specs).await;
    Ok(())
}

/// Makes the run's network and starts its nodes: servers first, all at once,
/// then the workers once the servers answer. The runtime goes into `slot` as
/// soon as it exists, so the caller can tear down whatever was made even when
/// this fails. `None` when cancelled.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn setup(
    config: &Config,
    run_id: &str,
    seed: u64,
    clock: RunClock,
    run_dir: &RunDir,
    images: &NodeImages,
    events: tokio::sync::mpsc::UnboundedSender<Event>,
    cancel: &CancellationToken,
    slot: &mut Option<Runtime>,
) -> anyhow::Result<Option<Vec<NodeSpec>>> {
    let (runtime, specs) = match config.runtime {
        RuntimeKind::Local => {
            let net = if netns::is_root() {
                let octets = config
                    .node_names()
                    .iter()
                    .map(|n| Ok((n.clone(), octet_of(config, n)?)))
                    .collect::<anyhow::Result<Vec<(String, u8)>>>()?;
                Some(
                    NetnsNet::create(run_id, config.network.subnet, &octets)
                        .context("create the run's network")?,
                )
            } else {
                None
            };
            let place = Placement {
                subnet: net.as_ref().map(|n| n.subnet),
                in_container: false,
            };
            let specs = plan(config, run_id, clock, &place, run_dir, seed)?;
            (
                Runtime::Local(LocalRuntime::new(run_id, net, events)?),
                specs,
            )
        }
        RuntimeKind::Docker => {
            let docker = docker::connect().await?;
            let r = DockerRuntime::new(docker, run_id, config.network.subnet, events).await?;
            let place = Placement {
                subnet: Some(r.subnet),
                in_container: true,
            };
            let specs = plan(config, run_id, clock, &place, run_dir, seed)?;
            (Runtime::Docker(r), specs)
        }
    };
    let runtime = slot.insert(runtime);
    let image_of = |spec: &NodeSpec| images.of(spec.role);
    let servers: Vec<&NodeSpec> = specs.iter().filter(|s| s.role != Role::Worker).collect();
    runtime.spawn_all(&servers, run_dir, &image_of).await?;
    for spec in &servers {
        tokio::select! {
            r = runtime.wait_ready(&spec.name, READY_LIMIT) => r?,
            _ = cancel.cancelled() => return Ok(None),
        }
    }
    let workers: Vec<&NodeSpec> = specs.iter().filter(|s| s.role == Role::Worker).collect();
    runtime.spawn_all(&workers, run_dir, &image_of).await?;
    Ok(Some(specs))
}

/// The images of a Docker run's nodes: leasehold's own, or the lock
/// service's `image:` / `binary:`.
#[derive(Default)]
pub(crate) struct NodeImages {
    node: String,
    lock: Option<String>,
}

impl NodeImages {
    /// Packs (or finds) the images a run needs; nothing for the local runtime.
    pub(crate) async fn prepare(config: &Config) -> anyhow::Result<Self> {
        if config.runtime != RuntimeKind::Docker {
            return Ok(NodeImages::default());
        }
        let docker = &docker::connect().await?;
        let node = crate::images::leasehold_image(docker)
            .await
            .context("pack leasehold's node image")?
            .tag;
        let lock = match (&config.lock.image, &config.lock.binary) {
            (Some(image), _) => Some(image.clone()),
            (None, Some(binary)) => Some(
                crate::images::host_binary_image(docker, binary)
                    .await
                    .with_context(|| format!("pack {}", binary.display()))?
                    .tag,
            ),
            (None, None) => None,
        };
        Ok(NodeImages { node, lock })
    }

    fn of(&self, role: Role) -> String {
        match (role, &self.lock) {
            (Role::Lock, Some(image)) => image.clone(),
            _ => self.node.clone(),
        }
    }
}

/// Carries out what the nemesis asks of the runtime.
async fn serve(
    runtime: &mut Runtime,
    request: RuntimeRequest,
    incarnations: &mut BTreeMap<String, u64>,
) {
    match request {
        RuntimeRequest::Kill { node, reply } => {
            let _ = reply.send(runtime.kill(&node).await);
        }
        RuntimeRequest::Restart { node, reply } => {
            let life = incarnations.entry(node.clone()).or_insert(0);
            *life += 1;
            let is_worker = runtime.names(Role::Worker).contains(&node);
            let extra = if is_worker {
                vec!["--incarnation".to_owned(), life.to_string()]
            } else {
                Vec::new()
            };
            let restarted = async {
                runtime.restart(&node, &extra).await?;
                if !is_worker {
                    runtime.wait_ready(&node, READY_LIMIT).await?;
                }
                runtime
                    .facts()
                    .into_iter()
                    .find(|f| f.name == node)
                    .context("the restarted node has no facts")
            };
            let _ = reply.send(restarted.await);
        }
    }
}

/// Last octet of a node's address on the run's subnet (the config's layout).
fn octet_of(config: &Config, name: &str) -> anyhow::Result<u8> {
    config
        .node_octet(name)
        .with_context(|| format!("node {name} has no address on the run's subnet"))
}

/// Reads every key once everything is quiet, as the history's `final` process.
async fn final_reads(config: &Config, collector: &Collector, clock: RunClock, specs: &[NodeSpec]) {
    let stores: Vec<&NodeSpec> = specs.iter().filter(|s| s.role == Role::Storage).collect();
    let events = collector.sender();
    let emit = |kind: EventType, value: serde_json::Value, error: Option<String>| {
        let _ = events.send(Event {
            index: 0,
            time: clock.now(),
            process: Process::Named("final".into()),
            node: None,
            kind,
            f: "read".into(),
            value,
            error,
        });
    };
    for (i, key) in config.workload.key_names().into_iter().enumerate() {
        let store = stores[i % stores.len()];
        let client =
            match StorageClient::new(&store.addr.to_string(), "final", config.workload.timeout) {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(error = %e, "final read client");
                    continue;
                }
            };
        emit(EventType::Invoke, json!({"key": key}), None);
        match client.read(&key).await {
            Completion::Ok(Some(v)) => emit(
                EventType::Ok,
                json!({"key": key, "token": v.token, "data": v.data, "from": v.from}),
                None,
            ),
            Completion::Ok(None) => emit(EventType::Ok, json!({"key": key}), None),
            Completion::Fail(e) => emit(EventType::Fail, json!({"key": key}), Some(e)),
            Completion::Info(e) => emit(EventType::Info, json!({"key": key}), Some(e)),
        }
    }
}

/// Merges the storage nodes' ledgers by decision time into the run's
/// `ledger.jsonl`.
fn merge_ledgers(config: &Config, run_dir: &RunDir) -> anyhow::Result<Vec<LedgerEntry>> {
    let mut all = Vec::new();
    for i in 1..=config.storage.nodes.get() {
        let path = run_dir
            .node_data_dir(&format!("store{i}"))
            .join("ledger.jsonl");
        let file = match std::fs::File::open(&path) {
            Ok(f) => f,
            // A storage node that never started has no ledger.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("open {}", path.display())),
        };
        let entries = leasehold_checker::read_ledger(std::io::BufReader::new(file))
            .with_context(|| format!("read {}", path.display()))?;
        all.extend(entries);
    }
    all.sort_by_key(|e| e.time);
    let mut text = String::new();
    for e in &all {
        text.push_str(&serde_json::to_string(e)?);
        text.push('\n');
    }
    std::fs::write(run_dir.ledger_path(), text).context("write ledger.jsonl")?;
    Ok(all)
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
