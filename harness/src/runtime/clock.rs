//! Clock faults in both runtimes: where the preload library is, how a node
//! is started under it, and the control files through which the nemesis
//! moves a node's clocks while it runs.
//!
//! A node that a clock fault of the config may hit is started with
//! `LD_PRELOAD` naming `libleasehold_clock_shim.so` and
//! `LEASEHOLD_CLOCK_CONTROL` naming its own control file,
//! `<run folder>/clock/<node>` (see the `leasehold-clock` crate). Locally
//! both are host paths. In Docker the library is packed into every image
//! leasehold builds, at [`CONTAINER_SHIM`], and the run's `clock/` folder is
//! mounted read-only at [`CONTAINER_CONTROL_DIR`]: the controller writes the
//! host file, the container maps the same file, so a change reaches the node
//! on its next clock read. Nodes no clock fault can hit are started as
//! before, without the library.
//!
//! The controller never loads the library, and the history's stamps are read
//! by system call (`leasehold_nodes::monotonic_ns`), so neither the harness's
//! clock nor any event's time moves with a node's clock.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use leasehold_clock::{ClockClass, ControlFile, LIBRARY_FILE_NAME};
use leasehold_nemesis::{ClockChange, Clocks};
use tokio_util::sync::CancellationToken;

/// Environment variable that names the preload library to use instead of the
/// one built beside the leasehold binary.
pub const SHIM_ENV: &str = "LEASEHOLD_CLOCK_SHIM";
/// Folder of the preload library in every image leasehold packs.
pub const CONTAINER_DIR: &str = "/leasehold-clock";
/// The preload library inside a container.
pub const CONTAINER_SHIM: &str = "/leasehold-clock/libleasehold_clock_shim.so";
/// Where a container sees its run's `clock/` folder.
pub const CONTAINER_CONTROL_DIR: &str = "/leasehold-clock/control";

/// The preload library: [`SHIM_ENV`] if set, else beside the leasehold
/// binary (where `cargo build` of the workspace puts it) or in its `deps/`
/// folder (where building the leasehold package alone does).
pub fn shim_path() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os(SHIM_ENV) {
        let path = PathBuf::from(path);
        anyhow::ensure!(
            path.is_file(),
            "{SHIM_ENV}={} names no file: clock faults need the preload library",
            path.display()
        );
        return Ok(path);
    }
    let exe = std::env::current_exe().context("cannot find leasehold's own executable")?;
    let dir = exe.parent().unwrap_or(Path::new("/"));
    let candidates = [
        dir.join(LIBRARY_FILE_NAME),
        dir.join("deps").join(LIBRARY_FILE_NAME),
    ];
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or_else(|| {
            anyhow::anyhow!(
                "clock faults need {LIBRARY_FILE_NAME}, not found at {} or {}: build it with \
                 `cargo build --release -p leasehold-clock-shim` (or set {SHIM_ENV})",
                candidates[0].display(),
                candidates[1].display()
            )
        })
}

/// The host path of a node's control file in the run folder `run_dir`.
pub fn control_path(run_dir: &Path, node: &str) -> PathBuf {
    run_dir.join("clock").join(node)
}

/// The environment that starts a node under the library, with its control
/// file at `control` (host paths; see [`container_env`] for Docker).
pub fn local_env(shim: &Path, control: &Path) -> Vec<(String, String)> {
    vec![
        ("LD_PRELOAD".to_owned(), shim.display().to_string()),
        (
            leasehold_clock::ENV_VAR.to_owned(),
            control.display().to_string(),
        ),
    ]
}

/// The same inside a container, whose image carries the library and which
/// sees the run's `clock/` folder at [`CONTAINER_CONTROL_DIR`].
pub fn container_env(node: &str) -> Vec<(String, String)> {
    vec![
        ("LD_PRELOAD".to_owned(), CONTAINER_SHIM.to_owned()),
        (
            leasehold_clock::ENV_VAR.to_owned(),
            format!("{CONTAINER_CONTROL_DIR}/{node}"),
        ),
    ]
}

/// Sets every moved control file of the run folder `run_dir` back to the
/// host's time, for the cleanup of a run whose controller died; returns
/// those it reset.
pub fn reset_files(run_dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(run_dir.join("clock")) else {
        return Vec::new();
    };
    let mut reset = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if let Ok(mut file) = ControlFile::open(&path)
            && !file.current().is_none()
        {
            file.clear();
            reset.push(path);
        }
    }
    reset.sort();
    reset
}

/// The control files of a run's nodes, as the nemesis writes them.
#[derive(Default)]
pub struct ClockControls {
    dir: PathBuf,
    files: BTreeMap<String, ControlFile>,
    strobes: BTreeMap<String, Strobe>,
}

struct Strobe {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

/// How a node's clocks stand against the host's, right after a change.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Lead {
    /// The node's CLOCK_REALTIME minus the host's, in milliseconds.
    pub realtime_ms: f64,
    /// The same for CLOCK_MONOTONIC.
    pub monotonic_ms: f64,
}

impl ClockControls {
    /// Creates a control file with no fault for each of `nodes` in
    /// `run_dir/clock/`, before the nodes start; returns each one's path.
    pub fn create_files(
        run_dir: &Path,
        nodes: impl IntoIterator<Item = String>,
    ) -> anyhow::Result<BTreeMap<String, PathBuf>> {
        let mut paths = BTreeMap::new();
        for node in nodes {
            let path = control_path(run_dir, &node);
            if paths.is_empty() {
                let dir = path.parent().expect("a control path has a folder");
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("create {}", dir.display()))?;
            }
            ControlFile::create(&path)
                .with_context(|| format!("create the clock control file {}", path.display()))?;
            paths.insert(node, path);
        }
        Ok(paths)
    }

    /// Opens the control files made by [`create_files`](Self::create_files)
    /// for `nodes`, for the nemesis to write.
    pub fn open(run_dir: &Path, nodes: impl IntoIterator<Item = String>) -> anyhow::Result<Self> {
        let mut files = BTreeMap::new();
        for node in nodes {
            let path = control_path(run_dir, &node);
            let file = ControlFile::open(&path)
                .with_context(|| format!("open the clock control file {}", path.display()))?;
            files.insert(node, file);
        }
        Ok(ClockControls {
            dir: run_dir.join("clock"),
            files,
            strobes: BTreeMap::new(),
        })
    }

    /// Whether the node was started under the library.
    pub fn controls(&self, node: &str) -> bool {
        self.files.contains_key(node)
    }

    /// Puts `change` in force on `node` (a strobe keeps flipping from a task
    /// of its own until [`reset`](Self::reset)); returns the node's lead
    /// right after.
    pub fn apply(&mut self, node: &str, change: ClockChange) -> anyhow::Result<Lead> {
        let path_hint = || format!("node {node} was not started under the clock library");
        let file = self.files.get_mut(node).with_context(path_hint)?;
        match change {
            ClockChange::Jump { by, clocks } => {
                let (rt, mono) = clocks.offsets(by);
                file.set(rt, mono, 1.0)?;
            }
            ClockChange::Skew { rate } => {
                file.set(0, 0, rate.factor())?;
            }
            ClockChange::Strobe { by, period, clocks } => {
                let (rt, mono) = clocks.offsets(by);
                file.set(rt, mono, 1.0)?;
                let stop = CancellationToken::new();
                let task = tokio::spawn(strobe(
                    self.dir.join(node),
                    (rt, mono),
                    period,
                    stop.clone(),
                ));
                self.strobes.insert(node.to_owned(), Strobe { stop, task });
            }
        }
        Ok(self.lead(node).expect("the node has a control file"))
    }

    /// Sets the node's clocks back to the host's time (stopping its strobe
    /// first); returns the lead it had just before.
    pub async fn reset(&mut self, node: &str) -> anyhow::Result<Lead> {
        if let Some(Strobe { stop, task }) = self.strobes.remove(node) {
            stop.cancel();
            let _ = task.await;
        }
        let before = self
            .lead(node)
            .with_context(|| format!("node {node} was not started under the clock library"))?;
        self.files.get_mut(node).expect("checked above").clear();
        Ok(before)
    }

    /// Resets every node whose clocks are moved; for the final heal. Returns
    /// the nodes it set back.
    pub async fn reset_all(&mut self) -> Vec<String> {
        let names: Vec<String> = self.files.keys().cloned().collect();
        let mut moved = Vec::new();
        for name in names {
            let was_moved = self.strobes.contains_key(&name)
                || self
                    .files
                    .get(&name)
                    .is_some_and(|f| !f.current().is_none());
            if was_moved && self.reset(&name).await.is_ok() {
                moved.push(name);
            }
        }
        moved
    }

    /// The node's lead over the host now.
    pub fn lead(&self, node: &str) -> Option<Lead> {
        let file = self.files.get(node)?;
        let real = |class: ClockClass| {
            let clock = match class {
                ClockClass::Realtime => libc::CLOCK_REALTIME,
                ClockClass::Monotonic => libc::CLOCK_MONOTONIC,
            };
            leasehold_clock::control::raw_clock_ns(clock).unwrap_or(0)
        };
        let ms = |class: ClockClass| {
            let node_now = file.node_now_ns(class);
            (node_now - real(class)) as f64 / 1e6
        };
        Some(Lead {
            realtime_ms: round_ms(ms(ClockClass::Realtime)),
            monotonic_ms: round_ms(ms(ClockClass::Monotonic)),
        })
    }
}

/// Milliseconds to a tenth, for the history (never `-0.0`).
fn round_ms(ms: f64) -> f64 {
    let r = (ms * 10.0).round() / 10.0;
    if r == 0.0 { 0.0 } else { r }
}

/// Flips the clocks between `offsets` and the host's time every `period`
/// until `stop`; the control file is opened for this task alone (the driver
/// does not write a strobed node's file until the strobe has stopped).
async fn strobe(path: PathBuf, offsets: (i64, i64), period: Duration, stop: CancellationToken) {
    let mut file = match ControlFile::open(&path) {
        Ok(f) => f,
        Err(e) => {
            tracing::error!(path = %path.display(), error = %e, "strobe: cannot open the control file");
            return;
        }
    };
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    let mut ahead = true;
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = stop.cancelled() => return,
        }
        ahead = !ahead;
        let (rt, mono) = if ahead { offsets } else { (0, 0) };
        // A rate of 1.0 is always valid.
        let _ = file.set(rt, mono, 1.0);
    }
}

/// The clocks a change moves, for the history.
pub fn moved_clocks(change: &ClockChange) -> Clocks {
    match change {
        ClockChange::Jump { clocks, .. } | ClockChange::Strobe { clocks, .. } => *clocks,
        ClockChange::Skew { .. } => Clocks::Both,
    }
}
