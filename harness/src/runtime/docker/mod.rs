//! The Docker runtime: every node is a container on a bridge network made for
//! the run, driven through the Engine API with bollard.
//!
//! Faults never go through the API: the runtime signals the containers'
//! processes by their host PIDs (a SIGSTOP lands in tens of microseconds, an API
//! kill takes milliseconds), and `docker pause` (the cgroup freezer) is not a
//! stopped process. The API is used to create, learn PIDs, stream output and
//! remove.
//!
//! Everything carries labels: `leasehold.run=<id>`, `leasehold.node=<name>`,
//! `leasehold.role=<role>`, so `leasehold cleanup` finds what a killed run left.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use bollard::Docker;
use bollard::container::LogOutput;
use bollard::models::{
    ContainerCreateBody, EndpointIpamConfig, EndpointSettings, HostConfig, Ipam, IpamConfig,
    NetworkCreateRequest, NetworkingConfig,
};
use bollard::query_parameters::{
    CreateContainerOptions, InspectContainerOptions, ListContainersOptions, ListNetworksOptions,
    LogsOptions, RemoveContainerOptions,
};
use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use leasehold_checker::Event;
use leasehold_nemesis::packet::{Holder, PacketRule};
use leasehold_nemesis::partition::Drops;
use leasehold_nemesis::{NodeFacts, Role};
use leasehold_results::RunDir;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::sync::mpsc::UnboundedSender;
use tokio_util::task::TaskTracker;

use crate::config::Subnet;
use crate::machine::Cleaned;
use crate::registry;
use crate::runtime::clock;
use crate::runtime::control::{Endpoint, ImageOf, NodeControl, Runtime};
use crate::runtime::mechanism::{PacketTarget, apply_drops, shape_packets, signal_nodes};
use crate::runtime::spec::{
    CONTAINER_PATH, HOST_VIEW, NodeProgram, NodeSpec, host_view_etc, set_flags,
};
use crate::runtime::subnet::reserve_subnet;

/// The label with the run's id, on every container and network of the run.
pub const LABEL_RUN: &str = "leasehold.run";
/// The label with the node's name (`w1`), on its container.
pub const LABEL_NODE: &str = "leasehold.node";
/// The label with the node's role (`lock`, `storage`, `worker`), on its
/// container.
pub const LABEL_ROLE: &str = "leasehold.role";

/// Where a node's data folder is mounted inside its container.
pub const DATA_MOUNT: &str = "/data";

pub use crate::images::connect;

struct DockerNode {
    spec: NodeSpec,
    container: String,
    /// The image it runs from, for a restart.
    image: String,
    /// Host PID of the container's first process; 0 while the node is not
    /// running (it never started, or it was killed and is not restarted yet:
    /// the PIDs of a dead container's cgroup may belong to others by now).
    pid: i32,
    log: PathBuf,
    exited: Arc<AtomicBool>,
}

/// How a node's container is made.
#[derive(Clone, Debug)]
pub struct ContainerPlan {
    /// The node to start.
    pub spec: NodeSpec,
    /// The image it starts from: leasehold's own, `lock.image`, or one packed
    /// from `lock.binary`.
    pub image: String,
    /// Host folder mounted at [`DATA_MOUNT`].
    pub data_dir: Option<PathBuf>,
    /// Host file the container's stderr is appended to (`nodes/<name>.log`).
    pub log: PathBuf,
}

/// The nodes of one run, as containers.
pub struct DockerRuntime {
    docker: Docker,
    run_id: String,
    network: Option<String>,
    /// The /24 of the run's bridge network.
    pub subnet: Subnet,
    nodes: BTreeMap<String, DockerNode>,
    events: UnboundedSender<Event>,
    readers: TaskTracker,
    /// The holder of each node whose packets are delayed now: a host process
    /// (this binary) inside the container's namespace.
    holders: BTreeMap<String, Holder>,
}

impl DockerRuntime {
    /// Makes the run's network (a bridge on a free /24 unless one is given).
    pub async fn new(
        docker: Docker,
        run_id: &str,
        subnet: Option<Subnet>,
        events: UnboundedSender<Event>,
    ) -> anyhow::Result<Self> {
        let lease = tokio::task::spawn_blocking(move || reserve_subnet(subnet)).await??;
        let subnet = lease.subnet;
        let name = format!("lh-{run_id}");
        let request = NetworkCreateRequest {
            name: name.clone(),
            driver: Some("bridge".into()),
            ipam: Some(Ipam {
                driver: Some("default".into()),
                config: Some(vec![IpamConfig {
                    subnet: Some(subnet.to_string()),
                    gateway: Some(subnet.host(1).to_string()),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            labels: Some(HashMap::from([(LABEL_RUN.to_owned(), run_id.to_owned())])),
            ..Default::default()
        };
        docker
            .create_network(request)
            .await
            .with_context(|| format!("create network {name} on {subnet}"))?;
        drop(lease);
        Ok(DockerRuntime {
            docker,
            run_id: run_id.to_owned(),
            network: Some(name),
            subnet,
            nodes: BTreeMap::new(),
            events,
            readers: TaskTracker::new(),
            holders: BTreeMap::new(),
        })
    }

    /// Creates and starts the containers, all at once.
    async fn start_all(&mut self, plans: Vec<ContainerPlan>) -> anyhow::Result<()> {
        let network = self.network.clone().context("the network is gone")?;
        let starts = plans.into_iter().map(|plan| {
            let docker = self.docker.clone();
            let run_id = self.run_id.clone();
            let network = network.clone();
            async move {
                let name = plan.spec.name.clone();
                let started = start_container(&docker, &run_id, &network, &plan).await;
                (plan, started.with_context(|| format!("start node {name}")))
            }
        });
        let mut first_error = None;
        for (plan, started) in futures_util::future::join_all(starts).await {
            match started {
                Ok((container, pid)) => self.follow(plan, container, pid),
                Err(e) => {
                    // Remember the container so teardown removes it.
                    self.nodes.insert(
                        plan.spec.name.clone(),
                        DockerNode {
                            container: container_name(&self.run_id, &plan.spec.name),
                            spec: plan.spec,
                            image: plan.image,
                            pid: 0,
                            log: plan.log,
                            exited: Arc::new(AtomicBool::new(true)),
                        },
                    );
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Streams the container's output: stdout lines are events, stderr goes
    /// to the node's log file.
    fn follow(&mut self, plan: ContainerPlan, container: String, pid: i32) {
        let exited = Arc::new(AtomicBool::new(false));
        let docker = self.docker.clone();
        let tx = self.events.clone();
        let name = plan.spec.name.clone();
        let log_path = plan.log.clone();
        let done = exited.clone();
        let id = container.clone();
        let events_on_stdout = plan.spec.events_on_stdout;
        self.readers.spawn(async move {
            let mut log = match std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log_path)
            {
                Ok(f) => Some(f),
                Err(e) => {
                    tracing::warn!(node = %name, error = %e, "cannot open the node's log");
                    None
                }
            };
            let options = LogsOptions {
                follow: true,
                stdout: true,
                stderr: true,
                ..Default::default()
            };
            let mut stream = docker.logs(&id, Some(options));
            let mut pending = Vec::new();
            while let Some(item) = stream.next().await {
                match item {
                    Ok(LogOutput::StdOut { message }) if !events_on_stdout => {
                        // A foreign server's stdout is its log.
                        if let Some(f) = log.as_mut() {
                            let _ = f.write_all(&message);
                        }
                    }
                    Ok(LogOutput::StdOut { message }) => {
                        pending.extend_from_slice(&message);
                        while let Some(end) = pending.iter().position(|b| *b == b'\n') {
                            let line: Vec<u8> = pending.drain(..=end).collect();
                            forward_event(&tx, &name, &line[..line.len() - 1]);
                        }
                    }
                    Ok(LogOutput::StdErr { message }) => {
                        if let Some(f) = log.as_mut() {
                            let _ = f.write_all(&message);
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::debug!(node = %name, error = %e, "log stream ended");
                        break;
                    }
                }
            }
            if !pending.is_empty() {
                forward_event(&tx, &name, &pending);
            }
            done.store(true, Ordering::SeqCst);
        });
        self.nodes.insert(
            plan.spec.name.clone(),
            DockerNode {
                spec: plan.spec,
                container,
                image: plan.image,
                pid,
                log: plan.log,
                exited,
            },
        );
    }

    async fn exit_status(&self, container: &str) -> String {
        match self
            .docker
            .inspect_container(container, None::<InspectContainerOptions>)
            .await
        {
            Ok(info) => {
                let state = info.state.unwrap_or_default();
                format!(
                    "exit code {}{}",
                    state.exit_code.unwrap_or_default(),
                    state
                        .error
                        .filter(|e| !e.is_empty())
                        .map(|e| format!(", {e}"))
                        .unwrap_or_default()
                )
            }
            Err(e) => format!("state unknown: {e}"),
        }
    }

    fn node_facts(n: &DockerNode) -> NodeFacts {
        let up = n.pid > 0;
        NodeFacts {
            name: n.spec.name.clone(),
            role: n.spec.role,
            pids: if up {
                container_pids(n.pid)
            } else {
                Vec::new()
            },
            pgid: None,
            netns: up.then(|| PathBuf::from(format!("/proc/{}/ns/net", n.pid))),
            addr: n.spec.addr.to_string(),
        }
    }
}

impl NodeControl for DockerRuntime {
    fn signal<'a>(
        &'a mut self,
        nodes: &'a [String],
        signal: Signal,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        let facts: anyhow::Result<Vec<NodeFacts>> = nodes
            .iter()
            .map(|name| {
                Ok(Self::node_facts(
                    self.nodes.get(name).context("no such node")?,
                ))
            })
            .collect();
        Box::pin(async move {
            let facts: Vec<NodeFacts> = facts?.into_iter().filter(|f| !f.pids.is_empty()).collect();
            signal_nodes(facts, signal).await
        })
    }

    /// A killed container's namespace is gone with it: its rules are put back
    /// by the caller after the restart.
    fn set_drops<'a>(
        &'a mut self,
        drops: &'a BTreeMap<String, Drops>,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        let jobs: anyhow::Result<Vec<(String, PathBuf, Drops)>> = drops
            .iter()
            .filter_map(|(name, d)| {
                let Some(n) = self.nodes.get(name) else {
                    return Some(Err(anyhow::anyhow!("no such node {name:?}")));
                };
                let netns = Self::node_facts(n).netns?;
                Some(Ok((name.clone(), netns, d.clone())))
            })
            .collect();
        Box::pin(async move {
            let jobs = jobs?;
            apply_drops(jobs).await
        })
    }

    /// A node that is down is skipped (its namespace went with its
    /// container): the caller puts its rules back when it restarts it; its
    /// old holder is stopped when it is healed or shaped again.
    fn set_packets<'a>(
        &'a mut self,
        rules: &'a BTreeMap<String, Option<PacketRule>>,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            let mut targets = Vec::new();
            let mut gone = Vec::new();
            for (name, rule) in rules {
                let n = self.nodes.get(name).context("no such node")?;
                match Self::node_facts(n).netns {
                    Some(netns) => targets.push(PacketTarget {
                        node: name.clone(),
                        netns,
                        log: Some(n.log.clone()),
                        rule: rule.clone(),
                    }),
                    None => gone.extend(self.holders.remove(name)),
                }
            }
            if !gone.is_empty() {
                let _ =
                    tokio::task::spawn_blocking(move || gone.into_iter().for_each(Holder::stop))
                        .await;
            }
            let exe = std::env::current_exe().context("find the leasehold binary")?;
            shape_packets(&self.run_id, exe, targets, &mut self.holders).await
        })
    }

    fn kill<'a>(&'a mut self, name: &'a str) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            let node = self.nodes.get_mut(name).context("no such node")?;
            let pids = if node.pid > 0 {
                container_pids(node.pid)
            } else {
                Vec::new()
            };
            // From here on the node has no PIDs until it is restarted.
            node.pid = 0;
            for &p in &pids {
                let _ = kill(Pid::from_raw(p), Signal::SIGKILL);
            }
            let start = Instant::now();
            while pids
                .iter()
                .any(|p| leasehold_nemesis::proc_state(*p) != leasehold_nemesis::ProcState::Gone)
            {
                anyhow::ensure!(
                    start.elapsed() < Duration::from_secs(5),
                    "{name} did not die"
                );
                tokio::time::sleep(Duration::from_micros(200)).await;
            }
            Ok(())
        })
    }

    /// A new container with the same name, address, image and data folder.
    fn restart<'a>(
        &'a mut self,
        name: &'a str,
        extra: &'a [String],
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            let node = self.nodes.remove(name).context("no such node")?;
            remove_container(&self.docker, &node.container).await;
            let mut spec = node.spec;
            set_flags(&mut spec.args, extra);
            let plan = ContainerPlan {
                data_dir: spec.data_dir.clone(),
                spec,
                image: node.image,
                log: node.log,
            };
            self.start_all(vec![plan]).await
        })
    }
}

impl Runtime for DockerRuntime {
    fn spawn_all<'a>(
        &'a mut self,
        specs: &'a [&'a NodeSpec],
        run_dir: &'a RunDir,
        image_of: ImageOf<'a>,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        let plans = specs
            .iter()
            .map(|spec| ContainerPlan {
                spec: (*spec).clone(),
                image: image_of(spec),
                data_dir: spec.data_dir.clone(),
                log: run_dir.node_log_path(&spec.name),
            })
            .collect();
        Box::pin(self.start_all(plans))
    }

    fn endpoint(&self, name: &str) -> Option<Endpoint> {
        self.nodes
            .get(name)
            .map(|n| Endpoint::of(&n.spec, n.log.clone()))
    }

    fn exited<'a>(&'a mut self, name: &'a str) -> BoxFuture<'a, anyhow::Result<Option<String>>> {
        Box::pin(async move {
            let node = self.nodes.get(name).context("no such node")?;
            if !node.exited.load(Ordering::SeqCst) {
                return Ok(None);
            }
            Ok(Some(self.exit_status(&node.container).await))
        })
    }

    /// Every process of the container, by host PID, and its network namespace.
    fn facts(&self) -> Vec<NodeFacts> {
        self.nodes.values().map(Self::node_facts).collect()
    }

    fn resume_all(&self) {
        for n in self.nodes.values().filter(|n| n.pid > 0) {
            signal_all(n.pid, Signal::SIGCONT);
        }
    }

    fn names(&self, role: Role) -> Vec<String> {
        self.nodes
            .values()
            .filter(|n| n.spec.role == role)
            .map(|n| n.spec.name.clone())
            .collect()
    }

    /// SIGTERM to the nodes, then remove their containers (forcibly after
    /// `grace`).
    fn stop<'a>(&'a mut self, names: &'a [String], grace: Duration) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            for name in names {
                if let Some(n) = self.nodes.get(name).filter(|n| n.pid > 0) {
                    signal_all(n.pid, Signal::SIGCONT);
                    signal_all(n.pid, Signal::SIGTERM);
                }
            }
            let asked = Instant::now();
            for name in names {
                let Some(n) = self.nodes.get(name) else {
                    continue;
                };
                let deadline = asked + n.spec.grace(grace);
                // The process table tells sooner than the engine that it is gone.
                while n.pid > 0
                    && leasehold_nemesis::proc_state(n.pid) != leasehold_nemesis::ProcState::Gone
                    && Instant::now() < deadline
                {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
            let removals = names
                .iter()
                .filter_map(|name| self.nodes.remove(name))
                .map(|n| {
                    let docker = self.docker.clone();
                    async move { remove_container(&docker, &n.container).await }
                });
            futures_util::future::join_all(removals).await;
        })
    }

    /// Removes every container, waits for their output, removes the network.
    fn teardown(&mut self, grace: Duration) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let all: Vec<String> = self.nodes.keys().cloned().collect();
            self.stop(&all, grace).await;
            let holders = std::mem::take(&mut self.holders);
            let _ = tokio::task::spawn_blocking(move || {
                holders.into_values().for_each(Holder::stop);
            })
            .await;
            self.readers.close();
            if tokio::time::timeout(Duration::from_secs(2), self.readers.wait())
                .await
                .is_err()
            {
                tracing::warn!("container output readers did not finish");
            }
            if let Some(net) = self.network.take()
                && let Err(e) = self.docker.remove_network(&net).await
            {
                tracing::warn!(network = %net, error = %e, "cannot remove the network");
            }
        })
    }
}

impl Drop for DockerRuntime {
    /// On panic paths no API call can be awaited: kill the processes so nothing
    /// stays paused; the containers and network are removed by the next run or
    /// `leasehold cleanup`.
    fn drop(&mut self) {
        for n in self.nodes.values().filter(|n| n.pid > 0) {
            signal_all(n.pid, Signal::SIGCONT);
            signal_all(n.pid, Signal::SIGKILL);
        }
    }
}

/// The name of node `node`'s container in run `run_id`: `lh-<run_id>-<node>`.
pub fn container_name(run_id: &str, node: &str) -> String {
    format!("lh-{run_id}-{node}")
}

async fn start_container(
    docker: &Docker,
    run_id: &str,
    network: &str,
    plan: &ContainerPlan,
) -> anyhow::Result<(String, i32)> {
    let spec = &plan.spec;
    let name = container_name(run_id, &spec.name);
    let labels = HashMap::from([
        (LABEL_RUN.to_owned(), run_id.to_owned()),
        (LABEL_NODE.to_owned(), spec.name.clone()),
        (LABEL_ROLE.to_owned(), spec.role.to_string()),
    ]);
    // Any recipe starts the same way: the image's entrypoint is its program;
    // leasehold's own image is told `node …`. A user's program seen through
    // the host view is the entrypoint itself, in leasehold's image.
    let mut entrypoint = None;
    let mut cmd = match (&spec.program, &spec.host_view) {
        (NodeProgram::Leasehold, _) => vec!["node".to_owned()],
        (NodeProgram::Host(program), Some(_)) => {
            entrypoint = Some(vec![program.display().to_string()]);
            Vec::new()
        }
        (NodeProgram::Host(_), None) => Vec::new(),
    };
    cmd.extend(spec.args.iter().cloned());
    let mut env: Vec<String> = std::env::var("RUST_LOG")
        .map(|v| vec![format!("RUST_LOG={v}")])
        .unwrap_or_default();
    env.extend(spec.env.iter().map(|(k, v)| format!("{k}={v}")));
    let mut binds: Vec<String> = plan
        .data_dir
        .iter()
        .map(|d| format!("{}:{DATA_MOUNT}", d.display()))
        .collect();
    if let Some(control) = &spec.clock {
        // The image carries the library; the control file is the host's.
        env.extend(
            clock::container_env(&spec.name)
                .into_iter()
                .map(|(k, v)| format!("{k}={v}")),
        );
        let dir = control
            .parent()
            .context("a control file lies in a folder")?;
        binds.push(format!(
            "{}:{}:ro",
            dir.display(),
            clock::CONTAINER_CONTROL_DIR
        ));
    }
    if let Some(cwd) = &spec.host_view {
        binds.extend(host_view_binds(cwd));
        // The adapter a worker starts is looked up where it was planned.
        env.push(format!("PATH={CONTAINER_PATH}"));
    }
    let endpoint = EndpointSettings {
        ipam_config: Some(EndpointIpamConfig {
            ipv4_address: Some(spec.addr.ip().to_string()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let body = ContainerCreateBody {
        image: Some(plan.image.clone()),
        entrypoint,
        cmd: Some(cmd),
        working_dir: spec.host_view.as_ref().map(|d| d.display().to_string()),
        env: Some(env),
        labels: Some(labels),
        hostname: Some(spec.name.clone()),
        host_config: Some(HostConfig {
            // A small init as PID 1: the node is then an ordinary process, for
            // which SIGTERM has its default meaning even before it installs a
            // handler (PID 1 ignores unhandled signals).
            init: Some(true),
            network_mode: Some(network.to_owned()),
            binds: (!binds.is_empty()).then_some(binds),
            ..Default::default()
        }),
        networking_config: Some(NetworkingConfig {
            endpoints_config: Some(HashMap::from([(network.to_owned(), endpoint)])),
        }),
        ..Default::default()
    };
    let options = CreateContainerOptions {
        name: Some(name.clone()),
        ..Default::default()
    };
    docker.create_container(Some(options), body).await?;
    docker
        .start_container(
            &name,
            None::<bollard::query_parameters::StartContainerOptions>,
        )
        .await?;
    let info = docker
        .inspect_container(&name, None::<InspectContainerOptions>)
        .await?;
    let pid = info
        .state
        .and_then(|s| s.pid)
        .filter(|p| *p > 0)
        .unwrap_or(0) as i32;
    Ok((name, pid))
}

/// The read-only bind mounts of a host view of `cwd`: each [`HOST_VIEW`]
/// folder the host has and [`host_view_etc`], at its own path, and `cwd`.
fn host_view_binds(cwd: &Path) -> Vec<String> {
    let etc = host_view_etc();
    HOST_VIEW
        .iter()
        .map(Path::new)
        .filter(|d| d.exists())
        .chain(etc.iter().map(PathBuf::as_path))
        .chain(std::iter::once(cwd))
        .map(|d| format!("{0}:{0}:ro", d.display()))
        .collect()
}

async fn remove_container(docker: &Docker, name: &str) {
    let options = RemoveContainerOptions {
        force: true,
        v: true,
        ..Default::default()
    };
    match docker.remove_container(name, Some(options)).await {
        Ok(()) => {}
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => {}
        // Another removal is under way: one a controller asked for just before
        // it had to exit at once. The engine finishes it; wait for that, or the
        // run's network cannot go either (a container is still attached).
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 409, ..
        }) => wait_until_removed(docker, name).await,
        Err(e) => tracing::warn!(container = %name, error = %e, "cannot remove container"),
    }
}

/// How long a removal the engine already runs may take before we give up.
const REMOVAL_WAIT: Duration = Duration::from_secs(20);

/// Waits until the engine no longer knows the container `name`.
async fn wait_until_removed(docker: &Docker, name: &str) {
    let deadline = tokio::time::Instant::now() + REMOVAL_WAIT;
    while tokio::time::Instant::now() < deadline {
        match docker
            .inspect_container(name, None::<InspectContainerOptions>)
            .await
        {
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => return,
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    tracing::warn!(container = %name, "its removal did not finish in time");
}

fn forward_event(tx: &UnboundedSender<Event>, node: &str, line: &[u8]) {
    if line.iter().all(u8::is_ascii_whitespace) {
        return;
    }
    match serde_json::from_slice::<Event>(line) {
        Ok(mut e) => {
            e.node.get_or_insert_with(|| node.to_owned());
            let _ = tx.send(e);
        }
        Err(err) => tracing::warn!(
            node,
            line = %String::from_utf8_lossy(line),
            error = %err,
            "not an event"
        ),
    }
}

/// Every host PID in the cgroup of the container whose first process is
/// `pid` (just `pid` when the cgroup cannot be read).
pub fn container_pids(pid: i32) -> Vec<i32> {
    let from_cgroup = || -> Option<Vec<i32>> {
        let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
        // cgroup v2: a single "0::/path" line; v1: take the pids or memory line.
        let path = cgroup
            .lines()
            .find_map(|l| l.strip_prefix("0::"))
            .or_else(|| {
                cgroup.lines().find_map(|l| {
                    let mut parts = l.splitn(3, ':');
                    let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
                    controllers.split(',').any(|c| c == "pids").then_some(path)
                })
            })?;
        let candidates = [
            format!("/sys/fs/cgroup{path}/cgroup.procs"),
            format!("/sys/fs/cgroup/pids{path}/cgroup.procs"),
        ];
        let procs = candidates
            .iter()
            .find_map(|p| std::fs::read_to_string(p).ok())?;
        let pids: Vec<i32> = procs
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect();
        (!pids.is_empty()).then_some(pids)
    };
    from_cgroup().unwrap_or_else(|| vec![pid])
}

fn signal_all(pid: i32, signal: Signal) {
    for p in container_pids(pid) {
        let _ = kill(Pid::from_raw(p), signal);
    }
}

/// Host PIDs of every process in the running containers of `run_id`; empty
/// when no engine answers.
pub async fn run_container_pids(run_id: &str) -> Vec<i32> {
    let Ok(docker) = connect().await else {
        return Vec::new();
    };
    let filters = HashMap::from([("label".to_owned(), vec![format!("{LABEL_RUN}={run_id}")])]);
    let containers = docker
        .list_containers(Some(ListContainersOptions {
            filters: Some(filters),
            ..Default::default()
        }))
        .await
        .unwrap_or_default();
    let mut pids = Vec::new();
    for c in containers {
        let Some(id) = c.id else { continue };
        let pid = docker
            .inspect_container(&id, None::<InspectContainerOptions>)
            .await
            .ok()
            .and_then(|i| i.state)
            .and_then(|s| s.pid)
            .unwrap_or(0);
        if pid > 0 {
            pids.extend(container_pids(pid as i32));
        }
    }
    pids
}

/// Removes containers and networks labelled by runs not in `live`, adding
/// them to `cleaned`. A missing engine is not an error: nothing of ours is in
/// it then.
pub async fn cleanup_dead(cleaned: &mut Cleaned) {
    let Ok(docker) = connect().await else {
        return;
    };
    let filters = HashMap::from([("label".to_owned(), vec![LABEL_RUN.to_owned()])]);
    let containers = docker
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: Some(filters.clone()),
            ..Default::default()
        }))
        .await
        .unwrap_or_default();
    let networks = docker
        .list_networks(Some(ListNetworksOptions {
            filters: Some(filters),
        }))
        .await
        .unwrap_or_default();
    // Liveness after listing (see `registry::cleanup_dead_runs`).
    let live = registry::live_runs();
    for c in containers {
        let run = c
            .labels
            .as_ref()
            .and_then(|l| l.get(LABEL_RUN))
            .cloned()
            .unwrap_or_default();
        if live.contains(&run) {
            continue;
        }
        // Stopped processes die with the container: SIGKILL needs no SIGCONT.
        let name = c
            .names
            .as_ref()
            .and_then(|n| n.first())
            .map(|n| n.trim_start_matches('/').to_owned())
            .or(c.id.clone())
            .unwrap_or_default();
        remove_container(&docker, &name).await;
        cleaned.containers.push(name);
    }
    for n in networks {
        let run = n
            .labels
            .as_ref()
            .and_then(|l| l.get(LABEL_RUN))
            .cloned()
            .unwrap_or_default();
        let Some(name) = n.name else { continue };
        if live.contains(&run) {
            continue;
        }
        // The engine may still be detaching a container just removed.
        for attempt in 0..10 {
            match docker.remove_network(&name).await {
                Ok(()) => {
                    cleaned.networks.push(name);
                    break;
                }
                Err(bollard::errors::Error::DockerResponseServerError {
                    status_code: 404, ..
                }) => break,
                Err(e) if attempt == 9 => {
                    tracing::warn!(network = %name, error = %e, "cannot remove network");
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }
}
