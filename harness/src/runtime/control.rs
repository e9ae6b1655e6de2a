//! The seam between a run and its nodes: [`NodeControl`] for every fault,
//! [`Runtime`] for the rest of a node's life. The run lifecycle and the
//! nemesis driver see only these traits, never how a runtime makes a node.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures_util::future::BoxFuture;
use leasehold_nemesis::packet::PacketRule;
use leasehold_nemesis::partition::Drops;
use leasehold_nemesis::{NodeFacts, Role};
use leasehold_results::RunDir;
use leasehold_workloads::Probe;
use nix::sys::signal::Signal;

use crate::runtime::spec::{NodeSpec, log_tail};

/// Every fault the nemesis injects, on nodes known by name. How a name maps to
/// processes and a network namespace, and on which machine they are, is the
/// implementor's business: a runtime whose nodes live elsewhere implements
/// these four methods and the nemesis needs nothing else.
///
/// The methods are the mechanisms, nothing more: which node to cut off and
/// when is decided by the caller and handed over as data (a signal, a map of
/// [`Drops`]). Futures are boxed so the trait can be used as `dyn`.
///
/// ```
/// use std::collections::BTreeMap;
/// use futures_util::future::BoxFuture;
/// use leasehold::runtime::{Drops, NodeControl};
/// use nix::sys::signal::Signal;
///
/// /// A runtime that only writes down what it was asked to do.
/// #[derive(Default)]
/// struct Recorder(Vec<String>);
///
/// impl NodeControl for Recorder {
///     fn signal<'a>(&'a mut self, nodes: &'a [String], s: Signal) -> BoxFuture<'a, anyhow::Result<()>> {
///         self.0.push(format!("{} {}", s.as_str(), nodes.join(",")));
///         Box::pin(async { Ok(()) })
///     }
///     fn set_drops<'a>(&'a mut self, drops: &'a BTreeMap<String, Drops>) -> BoxFuture<'a, anyhow::Result<()>> {
///         for (node, d) in drops {
///             self.0.push(format!("{node} drops {}", d.len()));
///         }
///         Box::pin(async { Ok(()) })
///     }
///     fn kill<'a>(&'a mut self, node: &'a str) -> BoxFuture<'a, anyhow::Result<()>> {
///         self.0.push(format!("kill {node}"));
///         Box::pin(async { Ok(()) })
///     }
///     fn restart<'a>(&'a mut self, node: &'a str, _extra: &'a [String]) -> BoxFuture<'a, anyhow::Result<()>> {
///         self.0.push(format!("restart {node}"));
///         Box::pin(async { Ok(()) })
///     }
/// }
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let mut nodes = Recorder::default();
/// let control: &mut dyn NodeControl = &mut nodes;
/// let w1 = ["w1".to_owned()];
/// control.signal(&w1, Signal::SIGSTOP).await.unwrap();
/// control.signal(&w1, Signal::SIGCONT).await.unwrap();
/// control.set_drops(&BTreeMap::from([("w1".to_owned(), Drops::new())])).await.unwrap();
/// assert_eq!(nodes.0, ["SIGSTOP w1", "SIGCONT w1", "w1 drops 0"]);
/// # });
/// ```
pub trait NodeControl: Send {
    /// Sends `signal` to every process of each of `nodes`. For SIGSTOP and
    /// SIGCONT it returns once the kernel shows every process stopped (or
    /// running again), so the time it takes is the fault's latency. A node
    /// that is down is skipped: it has no processes to signal.
    fn signal<'a>(
        &'a mut self,
        nodes: &'a [String],
        signal: Signal,
    ) -> BoxFuture<'a, anyhow::Result<()>>;

    /// Puts each node's drops in force inside its own network namespace,
    /// replacing leasehold's rules there (empty drops remove them), all nodes
    /// at once. A node that is down and whose namespace went with it is
    /// skipped: the caller puts its rules back when it restarts it.
    fn set_drops<'a>(
        &'a mut self,
        drops: &'a BTreeMap<String, Drops>,
    ) -> BoxFuture<'a, anyhow::Result<()>>;

    /// SIGKILL to every process of the node; returns once they are gone. The
    /// node keeps its identity (name, address, data) for [`restart`].
    ///
    /// [`restart`]: NodeControl::restart
    fn kill<'a>(&'a mut self, node: &'a str) -> BoxFuture<'a, anyhow::Result<()>>;

    /// Starts a killed node again with the same name, address and data;
    /// `extra` holds `--flag value` pairs to set (a worker's incarnation).
    /// Returns once its processes exist, not once it answers: see
    /// [`wait_ready`].
    fn restart<'a>(
        &'a mut self,
        node: &'a str,
        extra: &'a [String],
    ) -> BoxFuture<'a, anyhow::Result<()>>;

    /// Puts each node's packet rules in force inside its own network
    /// namespace (`None` heals it), all nodes at once, replacing the node's
    /// earlier packet rules (see `leasehold_nemesis::packet`). Returns once
    /// the rules are in force and any holder of delayed packets has bound
    /// its queue. A runtime that cannot shape packets refuses any rule and
    /// has nothing to heal.
    fn set_packets<'a>(
        &'a mut self,
        rules: &'a BTreeMap<String, Option<PacketRule>>,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            if rules.values().any(Option::is_some) {
                bail!("this runtime cannot shape packets");
            }
            Ok(())
        })
    }
}

/// Where a started node serves and how to tell it is ready, for
/// [`wait_ready`] and its errors.
#[derive(Clone, Debug)]
pub struct Endpoint {
    /// `ip:port` it serves on.
    pub addr: SocketAddr,
    /// Its log file in the run folder.
    pub log: PathBuf,
    /// Its readiness probe; None for workers.
    pub probe: Option<Probe>,
    /// The command line it was started with ([`NodeSpec::command_line`]).
    pub command: String,
}

impl Endpoint {
    /// The endpoint of a node started from `spec`, logging to `log`.
    pub fn of(spec: &NodeSpec, log: PathBuf) -> Self {
        Endpoint {
            addr: spec.addr,
            log,
            probe: spec.probe.clone(),
            command: spec.command_line(),
        }
    }
}

/// The image each node of a Docker run starts from.
pub type ImageOf<'a> = &'a (dyn Fn(&NodeSpec) -> String + Sync);

/// A runtime: starts, watches and stops the nodes of one run, and controls
/// them for the nemesis. Implemented by the local runtime (child processes in
/// namespaces) and the Docker one (containers).
pub trait Runtime: NodeControl {
    /// Starts nodes (all at once where the runtime can); their stderr goes to
    /// the run folder's node logs, their stdout is read as events.
    fn spawn_all<'a>(
        &'a mut self,
        specs: &'a [&'a NodeSpec],
        run_dir: &'a RunDir,
        image_of: ImageOf<'a>,
    ) -> BoxFuture<'a, anyhow::Result<()>>;

    /// Where the node serves, its log, how it was started and how to tell it
    /// is ready.
    fn endpoint(&self, name: &str) -> Option<Endpoint>;

    /// How the node ended, if it has.
    fn exited<'a>(&'a mut self, name: &'a str) -> BoxFuture<'a, anyhow::Result<Option<String>>>;

    /// The nemesis's view of every node (a node that is down has no PIDs).
    fn facts(&self) -> Vec<NodeFacts>;

    /// Names of the nodes of a role still running.
    fn names(&self, role: Role) -> Vec<String>;

    /// SIGCONT to every process of every node that is up: whatever paused
    /// them, nothing stays stopped.
    fn resume_all(&self);

    /// Asks the nodes to stop (SIGTERM), and kills those still there after
    /// `grace`.
    fn stop<'a>(&'a mut self, names: &'a [String], grace: Duration) -> BoxFuture<'a, ()>;

    /// Stops every node, waits for their output, removes the run's network.
    fn teardown(&mut self, grace: Duration) -> BoxFuture<'_, ()>;
}

/// Waits until the node answers its readiness probe (its recipe's: HTTP
/// health, TCP connect, a protocol ping); an error names the node, says how it
/// ended or what it did not answer, and quotes its log. A node without a
/// probe (a worker) is ready once started.
pub async fn wait_ready(
    runtime: &mut dyn Runtime,
    name: &str,
    limit: Duration,
) -> anyhow::Result<()> {
    let start = Instant::now();
    let Endpoint {
        addr,
        log,
        probe,
        command,
    } = runtime.endpoint(name).context("no such node")?;
    let Some(probe) = probe else {
        return Ok(());
    };
    loop {
        if let Some(status) = runtime.exited(name).await? {
            bail!(
                "node {name} exited ({status}) before it was ready; started as: {command}; \
                 its log ends:\n{}",
                log_tail(&log, 10)
            );
        }
        if probe.ready(addr, Duration::from_millis(500)).await {
            return Ok(());
        }
        if start.elapsed() > limit {
            bail!(
                "node {name} was not ready at {} within {limit:?}; started as: {command}; \
                 its log ends:\n{}",
                probe.describe(addr),
                log_tail(&log, 10)
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
