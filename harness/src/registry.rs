//! Which runs exist on this machine, and what killed runs left behind.
//!
//! Each run registers itself in a small JSON file naming its controller (pid and
//! kernel start time, so a recycled pid is not mistaken for it). Everything a run
//! creates carries its id: node processes have `--run-id <id>` on their command
//! line, namespaces are `lh-<id>-…`, the host interface is `lh<id>h`. Cleanup
//! removes the things whose run has no live controller, and nothing else.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::netns;

/// A registered run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Registration {
    pub run_id: String,
    pub controller_pid: i32,
    /// Kernel start time of the controller (`/proc/<pid>/stat` field 22).
    pub controller_start: u64,
    pub run_dir: PathBuf,
}

/// Where registrations live: per user, in the temp dir.
pub fn dir() -> PathBuf {
    std::env::temp_dir()
        .join(format!("leasehold-{}", nix::unistd::getuid()))
        .join("runs")
}

/// A fresh run id: 8 hex digits (short enough for interface names).
pub fn new_run_id() -> String {
    format!("{:08x}", rand::random::<u32>())
}

fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    // Fields after the name start at field 3 (state); start time is field 22.
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Registers this process as the controller of `run_id`.
pub fn register(run_id: &str, run_dir: &Path) -> std::io::Result<Registration> {
    let pid = std::process::id() as i32;
    let reg = Registration {
        run_id: run_id.to_owned(),
        controller_pid: pid,
        controller_start: start_time(pid).unwrap_or_default(),
        run_dir: run_dir.to_owned(),
    };
    let dir = dir();
    std::fs::create_dir_all(&dir)?;
    let json = serde_json::to_vec_pretty(&reg).expect("registration serializes");
    // Write then rename: a cleanup reading at the same moment must never see a
    // half-written registration and take the run for dead.
    let tmp = dir.join(format!(".{run_id}.json.tmp"));
    std::fs::write(&tmp, json)?;
    std::fs::rename(&tmp, dir.join(format!("{run_id}.json")))?;
    Ok(reg)
}

pub fn unregister(run_id: &str) {
    let _ = std::fs::remove_file(dir().join(format!("{run_id}.json")));
}

fn registrations() -> Vec<Registration> {
    let Ok(entries) = std::fs::read_dir(dir()) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| std::fs::read(e.path()).ok())
        .filter_map(|b| serde_json::from_slice(&b).ok())
        .collect()
}

impl Registration {
    fn alive(&self) -> bool {
        start_time(self.controller_pid) == Some(self.controller_start)
    }
}

/// Ids of runs whose controller is alive.
pub fn live_runs() -> BTreeSet<String> {
    registrations()
        .into_iter()
        .filter(Registration::alive)
        .map(|r| r.run_id)
        .collect()
}

/// A process of some run: its pid and run id, from its command line.
fn run_processes() -> Vec<(i32, String)> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        if args.get(1) != Some(&&b"node"[..]) {
            continue;
        }
        if let Some(i) = args.iter().position(|a| *a == b"--run-id")
            && let Some(id) = args.get(i + 1).and_then(|a| std::str::from_utf8(a).ok())
        {
            out.push((pid, id.to_owned()));
        }
    }
    out
}

/// Sends SIGCONT to every process of the run `run_id`: its node processes
/// found by command line, and every process in the cgroup of each of its
/// containers (a lock node from a foreign image carries no `--run-id`). The
/// last resort of a controller that must exit at once; returns how many
/// processes it signalled.
pub async fn resume_run(run_id: &str) -> usize {
    let resume = |pids: &mut dyn Iterator<Item = i32>| {
        pids.filter(|&pid| {
            nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGCONT,
            )
            .is_ok()
        })
        .count()
    };
    // The node processes first: asking the engine may take a while.
    let mut resumed = resume(
        &mut run_processes()
            .into_iter()
            .filter(|(_, id)| id == run_id)
            .map(|(pid, _)| pid),
    );
    let docker = tokio::time::timeout(
        std::time::Duration::from_secs(2),
        crate::docker::run_container_pids(run_id),
    );
    resumed += resume(&mut docker.await.unwrap_or_default().into_iter());
    resumed
}

/// What a cleanup removed.
#[derive(Debug, Default)]
pub struct Cleaned {
    pub processes: Vec<i32>,
    pub namespaces: Vec<String>,
    pub interfaces: Vec<String>,
    pub containers: Vec<String>,
    pub networks: Vec<String>,
    pub registrations: Vec<String>,
}

impl Cleaned {
    pub fn is_empty(&self) -> bool {
        self.processes.is_empty()
            && self.namespaces.is_empty()
            && self.interfaces.is_empty()
            && self.containers.is_empty()
            && self.networks.is_empty()
            && self.registrations.is_empty()
    }
}

/// Removes everything that belongs to runs whose controller is dead: node
/// processes, namespaces and interfaces, containers and Docker networks.
pub async fn cleanup_dead_runs() -> Cleaned {
    let mut cleaned = Cleaned::default();
    crate::docker::cleanup_dead(&mut cleaned).await;
    // List first, then ask who is alive: a run registers before it creates
    // anything, so whatever the listing saw belongs to a run that the liveness
    // check below sees too. (The other way round, a run starting in between
    // would lose its fresh namespaces to us.)
    let processes = run_processes();
    let namespaces = netns::leftover_namespaces();
    let interfaces = netns::leftover_interfaces();
    let live = live_runs();
    for (pid, id) in processes {
        if live.contains(&id) {
            continue;
        }
        let pid = nix::unistd::Pid::from_raw(pid);
        // A stopped process takes SIGKILL too; SIGCONT first is for politeness to
        // anything waiting on it.
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT);
        if nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).is_ok() {
            cleaned.processes.push(pid.as_raw());
        }
    }
    for (id, ns) in namespaces {
        if !live.contains(&id) && netns::delete_namespace(&ns).is_ok() {
            cleaned.namespaces.push(ns);
        }
    }
    for (id, ifname) in interfaces {
        if !live.contains(&id) && netns::delete_interface(&ifname).is_ok() {
            cleaned.interfaces.push(ifname);
        }
    }
    for reg in registrations() {
        if !reg.alive() {
            unregister(&reg.run_id);
            cleaned.registrations.push(reg.run_id);
        }
    }
    cleaned
}
