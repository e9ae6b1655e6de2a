//! Which runs exist on this machine, and what killed runs left behind.
//!
//! Each run registers itself in a small JSON file naming its controller (pid and
//! kernel start time, so a recycled pid is not mistaken for it). Everything a run
//! creates carries its id: node processes have `--run-id <id>` on their command
//! line, namespaces are `lh-<id>-…`, the host interface is `lh<id>h`. Cleanup
//! removes the things whose run has no live controller, and nothing else
//! (the `cleanup` module, above the runtimes, does the removing).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// A registered run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Registration {
    pub run_id: String,
    pub controller_pid: i32,
    /// Kernel start time of the controller (`/proc/<pid>/stat` field 22).
    pub controller_start: u64,
    pub run_dir: PathBuf,
    /// Tags of the images the run uses, recorded before it looks for them in
    /// the engine: image pruning leaves them alone while the run is alive.
    #[serde(default)]
    pub images: Vec<String>,
}

/// Where registrations live: per user, in the temp dir.
pub fn dir() -> PathBuf {
    crate::machine::state_dir().join("runs")
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
        images: Vec::new(),
    };
    write(&reg)?;
    Ok(reg)
}

fn write(reg: &Registration) -> std::io::Result<()> {
    let dir = dir();
    std::fs::create_dir_all(&dir)?;
    let json = serde_json::to_vec_pretty(reg).expect("registration serializes");
    // Write then rename: a cleanup reading at the same moment must never see a
    // half-written registration and take the run for dead.
    let tmp = dir.join(format!(".{}.json.tmp", reg.run_id));
    std::fs::write(&tmp, json)?;
    std::fs::rename(&tmp, dir.join(format!("{}.json", reg.run_id)))
}

/// Adds `tag` to the images of every run this process controls (none for a
/// command that is not a run, such as `leasehold images build`).
pub fn record_image(tag: &str) -> std::io::Result<()> {
    // One read-modify-write at a time within the process.
    static RECORDING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = RECORDING.lock().unwrap_or_else(|e| e.into_inner());
    let pid = std::process::id() as i32;
    for mut reg in registrations() {
        if reg.controller_pid == pid && reg.alive() && !reg.images.iter().any(|t| t == tag) {
            reg.images.push(tag.to_owned());
            write(&reg)?;
        }
    }
    Ok(())
}

/// Tags of the images that runs with a live controller use.
pub fn live_images() -> BTreeSet<String> {
    registrations()
        .into_iter()
        .filter(Registration::alive)
        .flat_map(|r| r.images)
        .collect()
}

pub fn unregister(run_id: &str) {
    let _ = std::fs::remove_file(dir().join(format!("{run_id}.json")));
}

pub fn registrations() -> Vec<Registration> {
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
    /// Whether the run's controller still runs (the same process, not a
    /// recycled pid).
    pub fn alive(&self) -> bool {
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
pub fn run_processes() -> Vec<(i32, String)> {
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
