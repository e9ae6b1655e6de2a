//! Reading the store: its runs and what each run's `results.json` says.
//!
//! The store is read again on every request, because a nightly adds runs while
//! the server runs. What costs is parsing `results.json`, so each parsed
//! summary is kept keyed by the file's path, modification time and length: a
//! run's results are written by an atomic rename, which changes them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use serde::Deserialize;

use super::safety::segment_ok;

/// The name of the links to the newest run, which are not runs.
const LATEST: &str = "latest";

/// How a run ended, as the index shows and filters it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Outcome {
    Valid,
    Invalid,
    Unknown,
    /// The run failed: results.json records an error.
    Error,
    /// No readable results.json: the run died early, or is still going.
    NoResults,
}

impl Outcome {
    /// Its word on a badge, also its CSS class (with spaces as dashes).
    pub(super) fn word(self) -> &'static str {
        match self {
            Outcome::Valid => "valid",
            Outcome::Invalid => "invalid",
            Outcome::Unknown => "unknown",
            Outcome::Error => "error",
            Outcome::NoResults => "no results",
        }
    }

    /// Its CSS class.
    pub(super) fn class(self) -> &'static str {
        match self {
            Outcome::NoResults => "none",
            other => other.word(),
        }
    }
}

/// What the index filters on: `?verdict=`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum VerdictFilter {
    Valid,
    Invalid,
    Unknown,
    /// Runs without a verdict: failed ones and ones without results.
    Error,
}

impl VerdictFilter {
    /// Every value, as the query spells it.
    pub(super) const ALL: [(&'static str, VerdictFilter); 4] = [
        ("valid", VerdictFilter::Valid),
        ("invalid", VerdictFilter::Invalid),
        ("unknown", VerdictFilter::Unknown),
        ("error", VerdictFilter::Error),
    ];

    /// The filter `s` names.
    pub(super) fn parse(s: &str) -> Option<VerdictFilter> {
        Self::ALL.iter().find(|(w, _)| *w == s).map(|(_, f)| *f)
    }

    /// Its word in the query.
    pub(super) fn word(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, f)| *f == self)
            .map_or("", |(w, _)| *w)
    }

    /// Whether a run that ended so passes.
    pub(super) fn matches(self, o: Outcome) -> bool {
        matches!(
            (self, o),
            (VerdictFilter::Valid, Outcome::Valid)
                | (VerdictFilter::Invalid, Outcome::Invalid)
                | (VerdictFilter::Unknown, Outcome::Unknown)
                | (VerdictFilter::Error, Outcome::Error | Outcome::NoResults)
        )
    }
}

/// What the pages show of one run's results.json.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Summary {
    pub outcome: Outcome,
    /// The run's error, or why results.json could not be read.
    pub detail: Option<String>,
    pub interrupted: bool,
    pub seed: Option<u64>,
    pub started_at: Option<String>,
    /// `reference 0.1.0`.
    pub lock: Option<String>,
    pub total_ms: Option<f64>,
    /// `pause ×2, kill ×1`, or `none`.
    pub faults: String,
    /// The faults the config asked for, for a tooltip.
    pub asked: String,
}

/// One run folder of the store.
#[derive(Clone, Debug)]
pub(super) struct Run {
    pub test: String,
    pub stamp: String,
    pub summary: Arc<Summary>,
    pub has_report: bool,
}

/// The fields of results.json the pages show; every one may be missing (an
/// older or partly written file still shows what it has).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ResultsFile {
    verdict: Option<String>,
    interrupted: bool,
    error: Option<String>,
    seed: Option<u64>,
    started_at: Option<String>,
    timings: TimingsFile,
    lock_system: Option<LockFile>,
    nemesis: NemesisFile,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct TimingsFile {
    total_ms: Option<f64>,
    run_ms: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct LockFile {
    name: String,
    version: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct NemesisFile {
    asked: Vec<String>,
    faults: Vec<FaultFile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct FaultFile {
    f: String,
    effective_ns: Option<u64>,
}

impl Summary {
    /// A run without a readable results.json.
    fn none(detail: Option<String>) -> Summary {
        Summary {
            outcome: Outcome::NoResults,
            detail,
            interrupted: false,
            seed: None,
            started_at: None,
            lock: None,
            total_ms: None,
            faults: String::new(),
            asked: String::new(),
        }
    }

    /// The summary of results.json's text.
    pub(super) fn parse(text: &str) -> Summary {
        let file: ResultsFile = match serde_json::from_str(text) {
            Ok(f) => f,
            Err(e) => return Summary::none(Some(format!("results.json is unreadable: {e}"))),
        };
        let outcome = if file.error.is_some() {
            Outcome::Error
        } else {
            match file.verdict.as_deref() {
                Some("valid") => Outcome::Valid,
                Some("invalid") => Outcome::Invalid,
                _ => Outcome::Unknown,
            }
        };
        Summary {
            outcome,
            detail: file.error,
            interrupted: file.interrupted,
            seed: file.seed,
            started_at: file.started_at,
            lock: file
                .lock_system
                .map(|l| format!("{} {}", l.name, l.version).trim().to_owned()),
            total_ms: file.timings.total_ms.or(file.timings.run_ms),
            faults: faults_text(&file.nemesis),
            asked: file.nemesis.asked.join("; "),
        }
    }
}

/// `pause ×2, kill ×1 (1 not applied)`: the faults that took effect, by kind
/// in order of first appearance.
fn faults_text(n: &NemesisFile) -> String {
    let mut kinds: Vec<(&str, usize)> = Vec::new();
    let mut not_applied = 0;
    for f in &n.faults {
        if f.effective_ns.is_none() {
            not_applied += 1;
            continue;
        }
        match kinds.iter_mut().find(|(k, _)| *k == f.f) {
            Some((_, c)) => *c += 1,
            None => kinds.push((&f.f, 1)),
        }
    }
    let mut s = kinds
        .iter()
        .map(|(k, c)| format!("{k} ×{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    if s.is_empty() {
        s = if n.asked.is_empty() {
            "none"
        } else {
            "none applied"
        }
        .to_owned();
    }
    if not_applied > 0 {
        s.push_str(&format!(" ({not_applied} not applied)"));
    }
    s
}

/// Parsed summaries by results.json path, with the modification time and
/// length they were parsed at.
type Cache = HashMap<PathBuf, (SystemTime, u64, Arc<Summary>)>;

/// The store and the summaries parsed so far.
#[derive(Debug)]
pub(super) struct Store {
    root: PathBuf,
    cache: Mutex<Cache>,
}

impl Store {
    /// The store at `root`, which must be canonical.
    pub(super) fn new(root: PathBuf) -> Store {
        Store {
            root,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Its canonical path.
    pub(super) fn root(&self) -> &Path {
        &self.root
    }

    /// Every run, newest first (by folder name, which is the start time).
    /// Only real folders count: the `latest` links, other symlinks, dotted
    /// (temporary) names and names that are not UTF-8 are skipped.
    pub(super) fn runs(&self) -> std::io::Result<Vec<Run>> {
        let mut runs = Vec::new();
        for test in plain_dirs(&self.root)? {
            let dir = self.root.join(&test);
            // A test folder removed between the two listings has no runs.
            let Ok(stamps) = plain_dirs(&dir) else {
                continue;
            };
            for stamp in stamps {
                let run = dir.join(&stamp);
                runs.push(Run {
                    summary: self.summary(&run.join("results.json")),
                    has_report: run.join("report.html").is_file(),
                    test: test.clone(),
                    stamp,
                });
            }
        }
        runs.sort_by(|a, b| b.stamp.cmp(&a.stamp).then_with(|| a.test.cmp(&b.test)));
        // Forget the runs that are gone.
        let live: std::collections::HashSet<PathBuf> = runs
            .iter()
            .map(|r| self.root.join(&r.test).join(&r.stamp).join("results.json"))
            .collect();
        self.lock_cache().retain(|k, _| live.contains(k));
        Ok(runs)
    }

    /// The run folder `<test>/<stamp>` if both are real folders of the store
    /// (not links, not `latest`) and the summary of its results.
    pub(super) fn run(&self, test: &str, stamp: &str) -> Option<(PathBuf, Run)> {
        let is_plain_dir = |p: &Path| std::fs::symlink_metadata(p).is_ok_and(|m| m.is_dir());
        if test == LATEST || stamp == LATEST || !segment_ok(test) || !segment_ok(stamp) {
            return None;
        }
        let dir = self.root.join(test);
        let run = dir.join(stamp);
        if !is_plain_dir(&dir) || !is_plain_dir(&run) {
            return None;
        }
        let summary = self.summary(&run.join("results.json"));
        let has_report = run.join("report.html").is_file();
        Some((
            run,
            Run {
                test: test.to_owned(),
                stamp: stamp.to_owned(),
                summary,
                has_report,
            },
        ))
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        // A panic while holding the lock left a valid map: keep using it.
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The summary of the results.json at `path`, parsed again only when the
    /// file changed.
    fn summary(&self, path: &Path) -> Arc<Summary> {
        let meta = match std::fs::metadata(path) {
            Ok(m) if m.is_file() => m,
            Ok(_) => return Arc::new(Summary::none(Some("results.json is not a file".into()))),
            Err(_) => return Arc::new(Summary::none(None)),
        };
        let key = (
            meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            meta.len(),
        );
        if let Some((m, l, s)) = self.lock_cache().get(path)
            && (*m, *l) == key
        {
            return s.clone();
        }
        let summary = Arc::new(match std::fs::read_to_string(path) {
            Ok(text) => Summary::parse(&text),
            Err(e) => Summary::none(Some(format!("results.json is unreadable: {e}"))),
        });
        self.lock_cache()
            .insert(path.to_owned(), (key.0, key.1, summary.clone()));
        summary
    }
}

/// The names of the real sub-folders of `dir` that may be runs or tests.
fn plain_dirs(dir: &Path) -> std::io::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let Ok(entry) = entry else { continue };
        // `file_type` does not follow links: `latest` and any other symlink
        // are not folders here.
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if name != LATEST && segment_ok(&name) {
            names.push(name);
        }
    }
    Ok(names)
}

/// One file of a run's listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Entry {
    /// Its path inside the run folder, by segment.
    pub path: Vec<String>,
    pub len: u64,
}

/// At most this many files in a listing, so a run folder full of node data
/// cannot make a page of millions of rows.
pub(super) const MAX_ENTRIES: usize = 5000;
const MAX_DEPTH: usize = 12;

/// The files under `dir` (inside a run folder; `prefix` is its path there),
/// sorted by path, and whether the listing was cut at [`MAX_ENTRIES`]. Links
/// and dotted names are left out, as the file handler would refuse or not
/// follow them out of the store anyway.
pub(super) fn list_files(dir: &Path, prefix: &[String]) -> std::io::Result<(Vec<Entry>, bool)> {
    let mut out = Vec::new();
    let mut cut = false;
    walk(dir, prefix.to_vec(), 0, &mut out, &mut cut)?;
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok((out, cut))
}

fn walk(
    dir: &Path,
    prefix: Vec<String>,
    depth: usize,
    out: &mut Vec<Entry>,
    cut: &mut bool,
) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.filter_map(Result::ok).collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if !segment_ok(&name) || kind.is_symlink() {
            continue;
        }
        let mut path = prefix.clone();
        path.push(name);
        if kind.is_dir() {
            if depth + 1 < MAX_DEPTH {
                // A sub-folder that vanished meanwhile just lists nothing.
                let _ = walk(&entry.path(), path, depth + 1, out, cut);
            }
        } else if kind.is_file() {
            if out.len() >= MAX_ENTRIES {
                *cut = true;
                return Ok(());
            }
            let len = entry.metadata().map(|m| m.len()).unwrap_or(0);
            out.push(Entry { path, len });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summarizes_results_and_tolerates_missing_fields() {
        let s = Summary::parse(
            r#"{"verdict":"invalid","seed":7,"started_at":"2026-12-01T17:34:33.788Z",
                "timings":{"total_ms":5292.5},"lock_system":{"name":"redis","version":"7.0"},
                "nemesis":{"asked":["a"],"faults":[{"f":"pause","effective_ns":1},
                {"f":"pause","effective_ns":2},{"f":"kill","effective_ns":null}]},
                "checks":[{"anything":1}]}"#,
        );
        assert_eq!(s.outcome, Outcome::Invalid);
        assert_eq!(s.seed, Some(7));
        assert_eq!(s.lock.as_deref(), Some("redis 7.0"));
        assert_eq!(s.faults, "pause ×2 (1 not applied)");
        assert_eq!(Summary::parse("{}").outcome, Outcome::Unknown);
        assert_eq!(Summary::parse("{}").faults, "none");
        let failed = Summary::parse(r#"{"verdict":"unknown","error":"boom"}"#);
        assert_eq!(failed.outcome, Outcome::Error);
        assert_eq!(failed.detail.as_deref(), Some("boom"));
        let broken = Summary::parse("{\"verdict\":");
        assert_eq!(broken.outcome, Outcome::NoResults);
        assert!(broken.detail.unwrap().contains("unreadable"));
    }

    #[test]
    fn verdict_filters() {
        let f = |s| VerdictFilter::parse(s).unwrap();
        assert!(f("valid").matches(Outcome::Valid));
        assert!(!f("valid").matches(Outcome::Unknown));
        assert!(f("error").matches(Outcome::NoResults));
        assert!(f("error").matches(Outcome::Error));
        assert!(!f("invalid").matches(Outcome::Error));
        assert_eq!(VerdictFilter::parse("VALID"), None);
        assert_eq!(VerdictFilter::parse("bogus"), None);
        for (w, v) in VerdictFilter::ALL {
            assert_eq!(v.word(), w);
        }
    }

    #[test]
    fn lists_runs_newest_first_without_links_or_temporaries() {
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        for run in [
            "a/20260101T000000.000Z",
            "a/20260103T000000.000Z",
            "b/20260102T000000.000Z",
        ] {
            std::fs::create_dir_all(root.join(run)).unwrap();
        }
        std::fs::create_dir_all(root.join("a/.tmp")).unwrap();
        std::os::unix::fs::symlink("a/20260103T000000.000Z", root.join("latest")).unwrap();
        std::os::unix::fs::symlink("20260103T000000.000Z", root.join("a/latest")).unwrap();
        std::os::unix::fs::symlink("/etc", root.join("etc")).unwrap();
        std::fs::write(
            root.join("a/20260103T000000.000Z/results.json"),
            r#"{"verdict":"valid"}"#,
        )
        .unwrap();
        let store = Store::new(root.clone());
        let runs = store.runs().unwrap();
        let names: Vec<_> = runs
            .iter()
            .map(|r| format!("{}/{}", r.test, r.stamp))
            .collect();
        assert_eq!(
            names,
            [
                "a/20260103T000000.000Z",
                "b/20260102T000000.000Z",
                "a/20260101T000000.000Z"
            ]
        );
        assert_eq!(runs[0].summary.outcome, Outcome::Valid);
        assert_eq!(runs[1].summary.outcome, Outcome::NoResults);
        // A changed results.json is read again.
        std::fs::write(
            root.join("a/20260103T000000.000Z/results.json"),
            r#"{"verdict":"invalid","seed":12}"#,
        )
        .unwrap();
        assert_eq!(store.runs().unwrap()[0].summary.outcome, Outcome::Invalid);
        assert!(store.run("a", "latest").is_none());
        assert!(store.run("etc", "x").is_none());
        assert!(store.run("a", "20260101T000000.000Z").is_some());
    }
}
