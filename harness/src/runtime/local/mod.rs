//! The local runtime: every node is a child process of the controller, in a
//! process group of its own (so a pause reaches all of its processes and Ctrl-C
//! in the terminal reaches only the controller), and, as root, in a network
//! namespace of its own.

pub mod netns;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use futures_util::future::BoxFuture;
use leasehold_checker::Event;
use leasehold_nemesis::packet::{Holder, PacketRule};
use leasehold_nemesis::partition::Drops;
use leasehold_nemesis::{NemesisError, NodeFacts, Role};
use leasehold_results::RunDir;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc::UnboundedSender;
use tokio_util::task::TaskTracker;

use crate::runtime::clock;
use crate::runtime::control::{Endpoint, ImageOf, NodeControl, Runtime};
use crate::runtime::local::netns::NetnsNet;
use crate::runtime::mechanism::{PacketTarget, apply_drops, shape_packets, signal_nodes};
use crate::runtime::spec::{NodeProgram, NodeSpec, set_flags};

struct LocalNode {
    spec: NodeSpec,
    child: Child,
    /// The node's process (and process group) id; `None` once it is killed,
    /// until it is restarted: a reaped pid may be reused by another program.
    pid: Option<i32>,
    log: PathBuf,
}

/// The nodes of one run, as local processes.
pub struct LocalRuntime {
    run_id: String,
    exe: PathBuf,
    net: Option<NetnsNet>,
    nodes: BTreeMap<String, LocalNode>,
    events: UnboundedSender<Event>,
    readers: TaskTracker,
    /// The holder of each node whose packets are delayed now.
    holders: BTreeMap<String, Holder>,
}

impl LocalRuntime {
    /// A runtime with no node yet for run `run_id`, whose nodes run this
    /// binary, in `net`'s namespaces or, without one, on the host's loopback;
    /// the nodes' events go to `events`.
    pub fn new(
        run_id: &str,
        net: Option<NetnsNet>,
        events: UnboundedSender<Event>,
    ) -> anyhow::Result<Self> {
        Ok(LocalRuntime {
            run_id: run_id.to_owned(),
            exe: std::env::current_exe().context("find the leasehold binary")?,
            net,
            nodes: BTreeMap::new(),
            events,
            readers: TaskTracker::new(),
            holders: BTreeMap::new(),
        })
    }

    /// The node's network namespace, when the run has a network.
    fn netns_of(&self, name: &str) -> Option<PathBuf> {
        self.net
            .as_ref()
            .map(|_| netns::ns_path(&netns::ns_name(&self.run_id, name)))
    }

    fn node_facts(&self, n: &LocalNode) -> NodeFacts {
        let pids = match n.pid {
            Some(pid) if n.spec.process_tree => process_tree(pid),
            pid => pid.into_iter().collect(),
        };
        NodeFacts {
            name: n.spec.name.clone(),
            role: n.spec.role,
            pids,
            pgid: n.pid,
            netns: self.netns_of(&n.spec.name),
            addr: n.spec.addr.to_string(),
        }
    }

    /// Reads a node's stdout as events.
    fn follow(
        &self,
        stdout: tokio::process::ChildStdout,
        tx: UnboundedSender<Event>,
        name: String,
    ) {
        self.readers.spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                match serde_json::from_str::<Event>(&line) {
                    Ok(mut e) => {
                        e.node.get_or_insert_with(|| name.clone());
                        let _ = tx.send(e);
                    }
                    Err(err) => tracing::warn!(node = %name, %line, error = %err, "not an event"),
                }
            }
        });
    }

    /// Starts a node; its stderr goes to `log`, its stdout is read as events
    /// (or goes to `log` too, for a program whose stdout is its log).
    fn spawn(&mut self, spec: NodeSpec, log: &Path) -> anyhow::Result<()> {
        // Append: a restarted node keeps the log of its earlier lives.
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("open {}", log.display()))?;
        // Any recipe starts the same way: its program with its arguments;
        // leasehold's own nodes are `leasehold node …`.
        let mut cmd = match &spec.program {
            NodeProgram::Leasehold => {
                let mut cmd = Command::new(&self.exe);
                cmd.arg("node");
                cmd
            }
            NodeProgram::Host(path) => Command::new(path),
        };
        let stdout = if spec.events_on_stdout {
            Stdio::piped()
        } else {
            // A foreign server's stdout is its log.
            Stdio::from(
                log_file
                    .try_clone()
                    .with_context(|| format!("open {}", log.display()))?,
            )
        };
        if let Some(control) = &spec.clock {
            cmd.envs(clock::local_env(&clock::shim_path()?, control));
        }
        cmd.args(&spec.args)
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(log_file)
            .process_group(0);
        let netns_fd = match &self.net {
            Some(_) => {
                let path = netns::ns_path(&netns::ns_name(&self.run_id, &spec.name));
                Some(
                    std::fs::File::open(&path)
                        .with_context(|| format!("open {}", path.display()))?,
                )
            }
            None => None,
        };
        // SAFETY: between fork and exec the closure only makes two system calls
        // (setns, prctl) and allocates nothing.
        unsafe {
            cmd.pre_exec(move || {
                if let Some(fd) = &netns_fd {
                    nix::sched::setns(fd, nix::sched::CloneFlags::CLONE_NEWNET)?;
                }
                // If the controller dies, its nodes die with it.
                nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)?;
                Ok(())
            });
        }
        let mut child = cmd
            .spawn()
            .with_context(|| format!("start node {}", spec.name))?;
        let pid = child.id().context("a child just spawned has a pid")? as i32;
        let tx = self.events.clone();
        let name = spec.name.clone();
        if let Some(stdout) = child.stdout.take() {
            self.follow(stdout, tx, name);
        }
        tracing::debug!(node = %spec.name, pid, "started");
        self.nodes.insert(
            spec.name.clone(),
            LocalNode {
                spec,
                child,
                pid: Some(pid),
                log: log.to_owned(),
            },
        );
        Ok(())
    }
}

impl NodeControl for LocalRuntime {
    fn signal<'a>(
        &'a mut self,
        nodes: &'a [String],
        signal: Signal,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        let facts: anyhow::Result<Vec<NodeFacts>> = nodes
            .iter()
            .map(|name| {
                let n = self.nodes.get(name).context("no such node")?;
                Ok(self.node_facts(n))
            })
            .collect();
        // A process tree may have forked between the listing and the stop:
        // once the tree is stopped, it is listed and stopped again.
        let again: Vec<String> = nodes
            .iter()
            .filter(|name| self.nodes.get(*name).is_some_and(|n| n.spec.process_tree))
            .cloned()
            .collect();
        let again: Vec<NodeFacts> = match signal {
            Signal::SIGSTOP => again
                .iter()
                .filter_map(|name| self.nodes.get(name))
                .map(|n| self.node_facts(n))
                .collect(),
            _ => Vec::new(),
        };
        Box::pin(async move {
            let facts: Vec<NodeFacts> = facts?.into_iter().filter(|f| f.pgid.is_some()).collect();
            signal_nodes(facts, signal).await?;
            let again: Vec<NodeFacts> = again.into_iter().filter(|f| f.pgid.is_some()).collect();
            if !again.is_empty() {
                signal_nodes(again, signal).await?;
            }
            Ok(())
        })
    }

    fn set_drops<'a>(
        &'a mut self,
        drops: &'a BTreeMap<String, Drops>,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        // The namespaces outlive a kill: a node that is down keeps its rules.
        let mut jobs: Vec<(String, PathBuf, Drops)> = Vec::new();
        let mut refused = None;
        for (name, d) in drops {
            match self.netns_of(name) {
                Some(ns) => jobs.push((name.clone(), ns, d.clone())),
                None if d.is_empty() => {}
                None => {
                    refused.get_or_insert(NemesisError::NoNetns { node: name.clone() });
                }
            }
        }
        Box::pin(async move {
            if let Some(e) = refused {
                return Err(e.into());
            }
            apply_drops(jobs).await
        })
    }

    fn kill<'a>(&'a mut self, name: &'a str) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            let node = self.nodes.get_mut(name).context("no such node")?;
            if let Some(pid) = node.pid.take() {
                if node.spec.process_tree {
                    // The server's processes die; the node's own process,
                    // which reaps them (nothing else on the machine may),
                    // then exits by itself.
                    for p in process_tree(pid).into_iter().skip(1) {
                        let _ = nix::sys::signal::kill(Pid::from_raw(p), Signal::SIGKILL);
                    }
                    let reaped =
                        tokio::time::timeout(Duration::from_secs(5), node.child.wait()).await;
                    if reaped.is_ok() {
                        return Ok(());
                    }
                    tracing::warn!(node = %name, "did not exit after its server was killed");
                }
                let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
            }
            node.child
                .wait()
                .await
                .with_context(|| format!("reap {name}"))?;
            Ok(())
        })
    }

    /// The namespaces outlive a kill: a node that is down keeps its rules
    /// and its holder.
    fn set_packets<'a>(
        &'a mut self,
        rules: &'a BTreeMap<String, Option<PacketRule>>,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            let mut targets = Vec::new();
            for (name, rule) in rules {
                let node = self.nodes.get(name).context("no such node")?;
                match self.netns_of(name) {
                    Some(netns) => targets.push(PacketTarget {
                        node: name.clone(),
                        netns,
                        log: Some(node.log.clone()),
                        rule: rule.clone(),
                    }),
                    None if rule.is_none() => {}
                    None => return Err(NemesisError::NoNetns { node: name.clone() }.into()),
                }
            }
            shape_packets(&self.run_id, self.exe.clone(), targets, &mut self.holders).await
        })
    }

    /// Same name, address, namespace (with its rules) and data folder.
    fn restart<'a>(
        &'a mut self,
        name: &'a str,
        extra: &'a [String],
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            let node = self.nodes.remove(name).context("no such node")?;
            let mut spec = node.spec;
            set_flags(&mut spec.args, extra);
            self.spawn(spec, &node.log)
        })
    }
}

impl Runtime for LocalRuntime {
    fn spawn_all<'a>(
        &'a mut self,
        specs: &'a [&'a NodeSpec],
        run_dir: &'a RunDir,
        _image_of: ImageOf<'a>,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            for spec in specs {
                self.spawn((*spec).clone(), &run_dir.node_log_path(&spec.name))?;
            }
            Ok(())
        })
    }

    fn endpoint(&self, name: &str) -> Option<Endpoint> {
        self.nodes
            .get(name)
            .map(|n| Endpoint::of(&n.spec, n.log.clone()))
    }

    fn exited<'a>(&'a mut self, name: &'a str) -> BoxFuture<'a, anyhow::Result<Option<String>>> {
        let status = (|| {
            let node = self.nodes.get_mut(name).context("no such node")?;
            Ok(node.child.try_wait()?.map(|status| status.to_string()))
        })();
        Box::pin(async move { status })
    }

    fn facts(&self) -> Vec<NodeFacts> {
        self.nodes.values().map(|n| self.node_facts(n)).collect()
    }

    fn resume_all(&self) {
        for pid in self.nodes.values().filter_map(|n| n.pid) {
            let _ = killpg(Pid::from_raw(pid), Signal::SIGCONT);
        }
    }

    fn names(&self, role: Role) -> Vec<String> {
        self.nodes
            .values()
            .filter(|n| n.spec.role == role)
            .map(|n| n.spec.name.clone())
            .collect()
    }

    fn stop<'a>(&'a mut self, names: &'a [String], grace: Duration) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            for name in names {
                if let Some(pid) = self.nodes.get(name).and_then(|n| n.pid) {
                    let pg = Pid::from_raw(pid);
                    let _ = killpg(pg, Signal::SIGCONT);
                    let _ = killpg(pg, Signal::SIGTERM);
                }
            }
            let asked = tokio::time::Instant::now();
            for name in names {
                let Some(mut n) = self.nodes.remove(name) else {
                    continue;
                };
                let Some(pid) = n.pid else {
                    // Killed and reaped already.
                    continue;
                };
                let deadline = asked + n.spec.grace(grace);
                if tokio::time::timeout_at(deadline, n.child.wait())
                    .await
                    .is_err()
                {
                    tracing::info!(node = %name, "did not stop in time: killing it");
                    let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
                    let _ = n.child.wait().await;
                }
                // Children it may have forked into its group.
                let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
            }
        })
    }

    fn teardown(&mut self, grace: Duration) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let all: Vec<String> = self.nodes.keys().cloned().collect();
            self.stop(&all, grace).await;
            // Holders go with their namespaces (their rules go with them).
            let holders = std::mem::take(&mut self.holders);
            let _ = tokio::task::spawn_blocking(move || {
                for (_, h) in holders {
                    h.stop();
                }
            })
            .await;
            self.readers.close();
            if tokio::time::timeout(Duration::from_secs(2), self.readers.wait())
                .await
                .is_err()
            {
                tracing::warn!("node output readers did not finish");
            }
            if let Some(mut net) = self.net.take() {
                // `ip` commands: off the async threads.
                let _ = tokio::task::spawn_blocking(move || net.destroy()).await;
            }
        })
    }
}

/// `root` and every process below it, from the parent ids in `/proc`
/// (parents before their children).
pub(crate) fn process_tree(root: i32) -> Vec<i32> {
    let mut children: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for e in entries.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            // After the command name (which may hold anything): state, ppid.
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|p| p.parse::<i32>().ok());
            if let Some(ppid) = ppid {
                children.entry(ppid).or_default().push(pid);
            }
        }
    }
    let mut tree = vec![root];
    let mut i = 0;
    while i < tree.len() {
        if let Some(c) = children.get(&tree[i]) {
            tree.extend(c);
        }
        i += 1;
    }
    tree
}

impl Drop for LocalRuntime {
    /// The last line of defence (errors, panics): nothing of the run survives it.
    fn drop(&mut self) {
        for pid in self.nodes.values().filter_map(|n| n.pid) {
            let pg = Pid::from_raw(pid);
            let _ = killpg(pg, Signal::SIGCONT);
            let _ = killpg(pg, Signal::SIGKILL);
        }
    }
}
