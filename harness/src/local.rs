//! The local runtime: every node is a child process of the controller, in a
//! process group of its own (so a pause reaches all of its processes and Ctrl-C
//! in the terminal reaches only the controller), and, as root, in a network
//! namespace of its own.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use leasehold_checker::Event;
use leasehold_nemesis::{NodeFacts, Role};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc::UnboundedSender;
use tokio_util::task::TaskTracker;

use crate::netns::{self, NetnsNet};

/// How to start one node.
#[derive(Clone, Debug)]
pub struct NodeSpec {
    pub name: String,
    pub role: Role,
    /// `ip:port` it serves on; for workers the port is 0.
    pub addr: std::net::SocketAddr,
    /// Arguments after `leasehold node`.
    pub args: Vec<String>,
    /// Host folder of the node's data (lock and storage nodes).
    pub data_dir: Option<PathBuf>,
}

struct LocalNode {
    spec: NodeSpec,
    child: Child,
    pid: i32,
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
}

impl LocalRuntime {
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
        })
    }

    /// Starts a node; its stderr goes to `log`, its stdout is read as events.
    pub fn spawn(&mut self, spec: NodeSpec, log: &Path) -> anyhow::Result<()> {
        // Append: a restarted node keeps the log of its earlier lives.
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("open {}", log.display()))?;
        let mut cmd = Command::new(&self.exe);
        cmd.arg("node")
            .args(&spec.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
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
        let stdout = child.stdout.take().expect("stdout is piped");
        let tx = self.events.clone();
        let name = spec.name.clone();
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
        tracing::debug!(node = %spec.name, pid, "started");
        self.nodes.insert(
            spec.name.clone(),
            LocalNode {
                spec,
                child,
                pid,
                log: log.to_owned(),
            },
        );
        Ok(())
    }

    /// Where the node answers its health check, and its log file.
    pub fn endpoint(&self, name: &str) -> Option<(std::net::SocketAddr, PathBuf)> {
        self.nodes.get(name).map(|n| (n.spec.addr, n.log.clone()))
    }

    /// How the node ended, if it has.
    pub fn exited(&mut self, name: &str) -> anyhow::Result<Option<String>> {
        let node = self.nodes.get_mut(name).context("no such node")?;
        Ok(node.child.try_wait()?.map(|status| status.to_string()))
    }

    /// The nemesis's view of every node.
    pub fn facts(&self) -> Vec<NodeFacts> {
        self.nodes
            .values()
            .map(|n| NodeFacts {
                name: n.spec.name.clone(),
                role: n.spec.role,
                pids: vec![n.pid],
                pgid: Some(n.pid),
                netns: self
                    .net
                    .as_ref()
                    .map(|_| netns::ns_path(&netns::ns_name(&self.run_id, &n.spec.name))),
                addr: n.spec.addr.to_string(),
            })
            .collect()
    }

    /// SIGCONT to every node: whatever paused them, nothing stays stopped.
    pub fn resume_all(&self) {
        for n in self.nodes.values() {
            let _ = killpg(Pid::from_raw(n.pid), Signal::SIGCONT);
        }
    }

    /// Asks the nodes to stop (SIGTERM), and kills those still there after
    /// `grace`.
    pub async fn stop(&mut self, names: &[String], grace: Duration) {
        for name in names {
            if let Some(n) = self.nodes.get(name) {
                let pg = Pid::from_raw(n.pid);
                let _ = killpg(pg, Signal::SIGCONT);
                let _ = killpg(pg, Signal::SIGTERM);
            }
        }
        let deadline = tokio::time::Instant::now() + grace;
        for name in names {
            let Some(mut n) = self.nodes.remove(name) else {
                continue;
            };
            if tokio::time::timeout_at(deadline, n.child.wait())
                .await
                .is_err()
            {
                tracing::warn!(node = %name, "did not stop in time: killing it");
                let _ = killpg(Pid::from_raw(n.pid), Signal::SIGKILL);
                let _ = n.child.wait().await;
            }
            // Children it may have forked into its group.
            let _ = killpg(Pid::from_raw(n.pid), Signal::SIGKILL);
        }
    }

    /// SIGKILL to every process of the node; waits until it is gone. The node
    /// keeps its identity for [`LocalRuntime::restart`].
    pub async fn kill(&mut self, name: &str) -> anyhow::Result<()> {
        let node = self.nodes.get_mut(name).context("no such node")?;
        let _ = killpg(Pid::from_raw(node.pid), Signal::SIGKILL);
        node.child
            .wait()
            .await
            .with_context(|| format!("reap {name}"))?;
        Ok(())
    }

    /// Starts a killed node again: same name, address, namespace and data
    /// folder; `extra` holds `--flag value` pairs to set (a worker's new
    /// incarnation).
    pub fn restart(&mut self, name: &str, extra: &[String]) -> anyhow::Result<()> {
        let node = self.nodes.remove(name).context("no such node")?;
        let mut spec = node.spec;
        set_flags(&mut spec.args, extra);
        self.spawn(spec, &node.log)
    }

    /// Names of the nodes of a role still running.
    pub fn names(&self, role: Role) -> Vec<String> {
        self.nodes
            .values()
            .filter(|n| n.spec.role == role)
            .map(|n| n.spec.name.clone())
            .collect()
    }

    /// Stops every node, waits for their output to be read, removes the network.
    pub async fn teardown(&mut self, grace: Duration) {
        let all: Vec<String> = self.nodes.keys().cloned().collect();
        self.stop(&all, grace).await;
        self.readers.close();
        if tokio::time::timeout(Duration::from_secs(2), self.readers.wait())
            .await
            .is_err()
        {
            tracing::warn!("node output readers did not finish");
        }
        if let Some(mut net) = self.net.take() {
            net.destroy();
        }
    }
}

impl Drop for LocalRuntime {
    /// The last line of defence (errors, panics): nothing of the run survives it.
    fn drop(&mut self) {
        for n in self.nodes.values() {
            let pg = Pid::from_raw(n.pid);
            let _ = killpg(pg, Signal::SIGCONT);
            let _ = killpg(pg, Signal::SIGKILL);
        }
    }
}

/// Sets `--flag value` pairs in `args`, replacing the values of flags already
/// there (a node restarted twice gets one `--incarnation`, not two).
pub fn set_flags(args: &mut Vec<String>, pairs: &[String]) {
    for pair in pairs.chunks(2) {
        let [flag, value] = pair else { continue };
        match args.iter().position(|a| a == flag) {
            Some(i) if i + 1 < args.len() => args[i + 1] = value.clone(),
            _ => args.extend([flag.clone(), value.clone()]),
        }
    }
}

/// The last `n` lines of a log file, indented, for error messages.
pub fn log_tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = &lines[lines.len().saturating_sub(n)..];
    if tail.is_empty() {
        return "    (empty)".to_owned();
    }
    tail.iter()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_are_set_once() {
        let mut args = vec!["worker".to_owned(), "--seed".to_owned(), "1".to_owned()];
        set_flags(&mut args, &["--incarnation".into(), "1".into()]);
        set_flags(&mut args, &["--incarnation".into(), "2".into()]);
        assert_eq!(args, ["worker", "--seed", "1", "--incarnation", "2"]);
    }
}
