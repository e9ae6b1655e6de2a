//! The folder of one run: `store/<test>/<timestamp>/`.
//!
//! Every file of a run has one fixed place so that `leasehold check`, reports and
//! people find them without a manifest. The `latest` links let a person type
//! `store/latest/report.html` right after a run.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use leasehold_checker::Event;

use crate::error::{Result, ResultsError};
use crate::junit::render_junit_with_report;
use crate::report::render_report_with_config;
use crate::results::{Results, rfc3339};

/// The name of the links that point at the newest run.
const LATEST: &str = "latest";

/// One run's folder and the paths of the files in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunDir {
    path: PathBuf,
}

impl RunDir {
    /// Makes `store/<test>/<timestamp>/` and its `nodes/` folder, then points
    /// `store/latest` and `store/<test>/latest` at it.
    ///
    /// The timestamp is UTC and sorts as text (`20261125T193800.123Z`); when two
    /// runs start in the same millisecond the second gets `-1`, `-2`, … so a run
    /// never writes into another's folder. The links are relative (the store can
    /// be moved or mounted elsewhere) and replaced atomically, so a reader never
    /// sees a missing `latest`.
    pub fn create(store: &Path, test: &str, started: SystemTime) -> Result<RunDir> {
        validate_test_name(test)?;
        let test_dir = store.join(test);
        fs::create_dir_all(&test_dir).map_err(ResultsError::io(&test_dir))?;

        let stamp = folder_timestamp(started);
        let mut name = stamp.clone();
        let mut suffix = 0u32;
        let path = loop {
            let candidate = test_dir.join(&name);
            // `create_dir` (not `_all`) fails if the folder exists: that is the
            // race-free test of whether the name is free.
            match fs::create_dir(&candidate) {
                Ok(()) => break candidate,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    suffix += 1;
                    name = format!("{stamp}-{suffix}");
                }
                Err(e) => {
                    return Err(ResultsError::Io {
                        path: candidate,
                        source: e,
                    });
                }
            }
        };
        let run = RunDir { path };
        let nodes = run.path.join("nodes");
        fs::create_dir(&nodes).map_err(ResultsError::io(&nodes))?;

        replace_link(&test_dir, Path::new(&name))?;
        replace_link(store, &Path::new(test).join(&name))?;
        Ok(run)
    }

    /// Opens an existing run folder, e.g. for `leasehold check store/latest`. The
    /// path is resolved, so a later run moving `latest` does not move this one.
    pub fn open(path: &Path) -> Result<RunDir> {
        let real = fs::canonicalize(path).map_err(ResultsError::io(path))?;
        if !real.is_dir() {
            return Err(ResultsError::NotARunDir {
                path: path.to_owned(),
            });
        }
        Ok(RunDir { path: real })
    }

    /// The run folder itself.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The folder's own name (`20261125T193800.123Z`), unique within its test: a
    /// natural run id.
    pub fn name(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// `history.jsonl`: every operation event, in index order.
    pub fn history_path(&self) -> PathBuf {
        self.path.join("history.jsonl")
    }

    /// `ledger.jsonl`: the fenced storage's decisions.
    pub fn ledger_path(&self) -> PathBuf {
        self.path.join("ledger.jsonl")
    }

    /// `results.json`: see [`Results`].
    pub fn results_path(&self) -> PathBuf {
        self.path.join("results.json")
    }

    /// `report.html`: see [`render_report_with_config`].
    pub fn report_path(&self) -> PathBuf {
        self.path.join("report.html")
    }

    /// `config.yaml`: the config as run (with the seed filled in), to replay it.
    pub fn config_path(&self) -> PathBuf {
        self.path.join("config.yaml")
    }

    /// `junit.xml`: see [`render_junit_with_report`].
    pub fn junit_path(&self) -> PathBuf {
        self.path.join("junit.xml")
    }

    /// `nodes/`: per-node logs and data.
    pub fn nodes_dir(&self) -> PathBuf {
        self.path.join("nodes")
    }

    /// `nodes/<name>.log`: a node's stdout and stderr.
    pub fn node_log_path(&self, name: &str) -> PathBuf {
        self.nodes_dir().join(format!("{name}.log"))
    }

    /// `nodes/<name>/`: a node's data folder (not created here: only nodes that
    /// keep data need one).
    pub fn node_data_dir(&self, name: &str) -> PathBuf {
        self.nodes_dir().join(name)
    }

    /// Writes `results.json` atomically, so a reader (or a crash) never sees half
    /// of it.
    pub fn write_results(&self, results: &Results) -> Result<()> {
        write_atomic(&self.results_path(), results.to_json().as_bytes())
    }

    /// Writes `report.html` atomically, with the run's `config.yaml` when
    /// there is one.
    pub fn write_report(&self, results: &Results, history: &[Event]) -> Result<()> {
        let config = fs::read_to_string(self.config_path()).ok();
        write_atomic(
            &self.report_path(),
            render_report_with_config(results, history, config.as_deref()).as_bytes(),
        )
    }

    /// Writes `junit.xml` atomically.
    pub fn write_junit(&self, results: &Results) -> Result<()> {
        write_atomic(
            &self.junit_path(),
            render_junit_with_report(results, &self.report_path()).as_bytes(),
        )
    }

    /// Reads `results.json`.
    pub fn read_results(&self) -> Result<Results> {
        Results::read(&self.results_path())
    }

    /// Reads `history.jsonl`; an empty list when the run wrote none (it failed
    /// before the workload started).
    pub fn read_history(&self) -> Result<Vec<Event>> {
        let path = self.history_path();
        let file = match fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(ResultsError::Io { path, source: e }),
        };
        leasehold_checker::read_history(std::io::BufReader::new(file))
            .map(|h| h.events)
            .map_err(|source| ResultsError::History { path, source })
    }
}

/// The test name becomes a folder next to the `latest` link, so it must be one
/// plain path component and not `latest` itself.
fn validate_test_name(test: &str) -> Result<()> {
    let reason = if test.is_empty() {
        Some("it is empty")
    } else if test == "." || test == ".." {
        Some("it is not a folder name")
    } else if test == LATEST {
        Some("`latest` is reserved for the link to the newest run")
    } else if test.contains(['/', '\\', '\0']) {
        Some("it must not contain a path separator")
    } else if test.starts_with('.') {
        Some("it must not start with a dot (temporary files do)")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(ResultsError::InvalidTestName {
            name: test.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

/// `2026-11-25T19:38:00.123Z` → `20261125T193800.123Z`: no colons (awkward in
/// paths and on some file systems), still sortable as text.
fn folder_timestamp(t: SystemTime) -> String {
    rfc3339(t).replace(['-', ':'], "")
}

/// A name no other writer in this or another process will pick at the same time,
/// for temporary files and links next to their final place.
fn temp_name(final_name: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(".{final_name}.tmp-{}-{n}-{nanos}", std::process::id())
}

/// Points `dir/latest` at `target` (relative to `dir`): a new link under a
/// temporary name, then a rename over the old one, which is atomic.
fn replace_link(dir: &Path, target: &Path) -> Result<()> {
    let tmp = dir.join(temp_name(LATEST));
    symlink_dir(target, &tmp).map_err(ResultsError::io(&tmp))?;
    let link = dir.join(LATEST);
    fs::rename(&tmp, &link).map_err(|source| {
        let _ = fs::remove_file(&tmp);
        ResultsError::Io { path: link, source }
    })
}

#[cfg(unix)]
fn symlink_dir(target: &Path, link: &Path) -> std::io::Result<()> {
    std::os::unix::fs::symlink(target, link)
}

#[cfg(windows)]
fn symlink_dir(target: &Path, link: &Path) -> std::io::Result<()> {
    std::os::windows::fs::symlink_dir(target, link)
}

/// Writes a temporary file next to `path`, flushes it to disk, and renames it into
/// place.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(temp_name(&file_name));
    let result = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()
    })();
    if let Err(source) = result {
        let _ = fs::remove_file(&tmp);
        return Err(ResultsError::Io { path: tmp, source });
    }
    fs::rename(&tmp, path).map_err(|source| {
        let _ = fs::remove_file(&tmp);
        ResultsError::Io {
            path: path.to_owned(),
            source,
        }
    })
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn at(ms: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(ms)
    }

    #[test]
    fn layout_and_latest_links() {
        let store = tempfile::tempdir().unwrap();
        let store = store.path();
        let t = at(1_795_635_480_123);
        let run = RunDir::create(store, "fencing-off", t).unwrap();
        assert_eq!(run.name(), "20261125T193800.123Z");
        assert_eq!(run.path(), store.join("fencing-off/20261125T193800.123Z"));
        assert!(run.path().join("nodes").is_dir());
        assert_eq!(run.node_log_path("w1"), run.path().join("nodes/w1.log"));
        assert_eq!(run.node_data_dir("store1"), run.path().join("nodes/store1"));
        assert_eq!(run.history_path(), run.path().join("history.jsonl"));

        assert_eq!(
            fs::read_link(store.join("latest")).unwrap(),
            Path::new("fencing-off/20261125T193800.123Z")
        );
        assert_eq!(
            fs::read_link(store.join("fencing-off/latest")).unwrap(),
            Path::new("20261125T193800.123Z")
        );

        // Same millisecond: a suffix, and the links move to the new run.
        let again = RunDir::create(store, "fencing-off", t).unwrap();
        assert_eq!(again.name(), "20261125T193800.123Z-1");
        assert_eq!(
            fs::canonicalize(store.join("latest")).unwrap(),
            fs::canonicalize(again.path()).unwrap()
        );

        // Another test moves the store-wide link only.
        let other = RunDir::create(store, "fencing-on", at(1_795_635_490_000)).unwrap();
        assert_eq!(
            fs::read_link(store.join("latest")).unwrap(),
            Path::new("fencing-on/20261125T193810.000Z")
        );
        assert_eq!(
            fs::read_link(store.join("fencing-off/latest")).unwrap(),
            Path::new("20261125T193800.123Z-1")
        );

        // Opening through the link pins the run it points at now.
        let opened = RunDir::open(&store.join("latest")).unwrap();
        assert_eq!(opened.path(), fs::canonicalize(other.path()).unwrap());

        // No temporary leftovers.
        let leftovers: Vec<_> = fs::read_dir(store)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with('.'))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn rejects_bad_test_names() {
        let store = tempfile::tempdir().unwrap();
        for bad in ["", "..", "a/b", "latest", ".hidden"] {
            assert!(
                matches!(
                    RunDir::create(store.path(), bad, at(0)),
                    Err(ResultsError::InvalidTestName { .. })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn writes_and_reads_results() {
        let store = tempfile::tempdir().unwrap();
        let run = RunDir::create(store.path(), "t", at(0)).unwrap();
        let results = Results::new("t", run.name(), 7, at(0), "local");
        run.write_results(&results).unwrap();
        run.write_report(&results, &[]).unwrap();
        run.write_junit(&results).unwrap();
        assert_eq!(run.read_results().unwrap(), results);
        assert!(run.report_path().is_file());
        assert!(run.junit_path().is_file());
        assert!(run.read_history().unwrap().is_empty());
        let names: Vec<_> = fs::read_dir(run.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().all(|n| !n.starts_with('.')), "{names:?}");
    }

    #[test]
    fn open_refuses_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("x");
        fs::write(&file, "").unwrap();
        assert!(matches!(
            RunDir::open(&file),
            Err(ResultsError::NotARunDir { .. })
        ));
    }
}
