//! `results.json`: the machine-readable outcome of one run.
//!
//! The schema is a contract with CI scripts and later `leasehold` versions, so it
//! carries a version number and only plain data.

use std::path::Path;
use std::time::SystemTime;

use leasehold_checker::{CheckReport, Checked, Event, EventType, History, Validity};
use serde::{Deserialize, Serialize};

use crate::error::{Result, ResultsError};

/// The version of the `results.json` schema this crate writes. Bump it when a
/// field changes meaning or disappears; adding an optional field does not need it.
pub const SCHEMA_VERSION: u32 = 2;

/// The schema of `results.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Results {
    /// Always [`SCHEMA_VERSION`] when written by this crate.
    pub schema_version: u32,
    /// The test's name from the config (also the folder under the store).
    pub test: String,
    /// A run's id, 8 hex digits, which its processes, namespaces and containers
    /// carry (`lh-<id>-<node>`); for `leasehold check` of a bare history, the
    /// history's file name, and of a folder without `results.json`, the folder's.
    pub run_id: String,
    /// The combined verdict of all checks. When the run failed before it could be
    /// checked this stays [`Validity::Unknown`]; `error` says why.
    pub verdict: Validity,
    /// The run was stopped early (Ctrl-C, SIGTERM, …); checks cover only the
    /// partial history.
    pub interrupted: bool,
    /// The number of the signal that stopped the run (2 SIGINT, 15 SIGTERM, 1
    /// SIGHUP, 3 SIGQUIT); absent when it was not stopped by one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<u8>,
    /// The run itself failed (bad config, setup error): not a verdict on the lock.
    pub error: Option<String>,
    /// The seed of the nemesis schedule and the workload: rerun with it to replay.
    pub seed: u64,
    /// Wall-clock start of the run, RFC 3339 in UTC (see [`rfc3339`]).
    pub started_at: String,
    /// `"local"` or `"docker"`.
    pub runtime: String,
    /// How long each phase took.
    pub timings: Timings,
    /// Headline numbers of the history and the checks.
    pub counts: Counts,
    /// One report per check that ran: its verdict, what it judged, its anomalies.
    pub checks: Vec<CheckReport>,
    /// What a run needed to happen and did not (no lease granted, no write
    /// accepted, a fault never injected): each makes a valid verdict unknown,
    /// because a run in which nothing happened proves nothing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<String>,
    /// The faults asked for, scheduled and applied; empty for a bare history.
    pub nemesis: NemesisSummary,
    /// The run's nodes; empty when setup did not finish, and for a bare history.
    pub nodes: Vec<NodeSummary>,
    /// The lock system tested, as its first lock node reported itself once
    /// ready; absent for a bare history and when setup did not get that far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock_system: Option<LockSystemSummary>,
    /// The storage the lock guarded, and which checks judged storage's
    /// decisions from its ledger; absent for a bare history and in files
    /// written before it existed (which always had a ledger).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<StorageSummary>,
    /// How close each accepted write came to its holder's lease deadline: a
    /// histogram and the closest calls, in a valid run too (a fenced run
    /// that passed with writes 3 ms from their deadline is a warning);
    /// absent for a Jepsen history and in files written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub margins: Option<leasehold_checker::Margins>,
}

/// The checks that judge storage's decisions: from its ledger when there is
/// one, otherwise from the writes' replies in the history (fencing order has
/// nothing to judge without a ledger and does not run).
pub const LEDGER_CHECKS: [&str; 3] = ["stale-write", "fencing-order", "lost-write"];

/// The storage system a run wrote to, and where the checks read its decisions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct StorageSummary {
    /// Its name as the config gives it (`reference`, `exec`, `etcd-txn`).
    pub service: String,
    /// Whether the config said storage fences (`storage.fencing`).
    pub fencing: bool,
    /// Whether storage kept a ledger of its decisions (`ledger.jsonl`) that
    /// the checks read.
    pub ledger: bool,
    /// Each check of [`LEDGER_CHECKS`] that ran, by name: `true` if it judged
    /// storage's ledger, `false` if it judged the writes' replies in the
    /// history alone (`ok` accepted, `fail` rejected, `info` not judged).
    pub checks_with_ledger: std::collections::BTreeMap<String, bool>,
}

impl StorageSummary {
    /// What `checks` (the reports of a run) judged, given whether there was
    /// a ledger.
    pub fn new(
        service: impl Into<String>,
        fencing: bool,
        ledger: bool,
        checks: &[CheckReport],
    ) -> StorageSummary {
        let checks_with_ledger = checks
            .iter()
            .filter(|c| LEDGER_CHECKS.contains(&c.name.as_str()))
            .map(|c| (c.name.clone(), ledger))
            .collect();
        StorageSummary {
            service: service.into(),
            fencing,
            ledger,
            checks_with_ledger,
        }
    }
}

/// The lock system a run tested.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LockSystemSummary {
    /// Its name as the config gives it (`reference`, `redis`).
    pub name: String,
    /// The server's version as the server reports it (`7.0.15`); when it
    /// could not be asked, why, in parentheses.
    pub version: String,
    /// What its fencing token is.
    pub token: String,
}

/// How long each phase took, in milliseconds with microsecond precision. A
/// phase that did not happen is absent: a `leasehold check` has no setup, run or
/// teardown, and a run parses no history file.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Timings {
    /// Preparing images, making the network and starting the nodes until each
    /// was ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub setup_ms: Option<f64>,
    /// The workload under the nemesis, until every fault was healed and every
    /// node resumed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_ms: Option<f64>,
    /// Stopping the nodes, removing their network, flushing the history and
    /// merging the ledgers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teardown_ms: Option<f64>,
    /// Reading and parsing the history (and ledger) of a check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parse_ms: Option<f64>,
    /// Running every check on the history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check_ms: Option<f64>,
    /// Writing results.json, report.html and junit.xml (a check rewrites
    /// results.json once it knows this).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_ms: Option<f64>,
    /// The whole: a run from the start of its history (time 0 of the `_ns`
    /// times) through the check, a `leasehold check` from parsing through
    /// writing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_ms: Option<f64>,
}

impl Timings {
    /// Milliseconds of `d`, to the microsecond.
    pub fn ms(d: std::time::Duration) -> Option<f64> {
        Some((d.as_micros() as f64) / 1e3)
    }

    /// `10.3 s total (setup 1.2 s, run 10.0 s, teardown 300 ms, check 45.2 ms)`:
    /// only the phases that were timed.
    pub fn describe(&self) -> String {
        let phases: Vec<String> = [
            ("setup", self.setup_ms),
            ("run", self.run_ms),
            ("teardown", self.teardown_ms),
            ("parse", self.parse_ms),
            ("check", self.check_ms),
            ("write", self.write_ms),
        ]
        .into_iter()
        .filter_map(|(name, ms)| ms.map(|ms| format!("{name} {}", duration_text(ms))))
        .collect();
        let total = match self.total_ms {
            Some(ms) => format!("{} total", duration_text(ms)),
            None => "not timed".to_owned(),
        };
        if phases.is_empty() {
            total
        } else {
            format!("{total} ({})", phases.join(", "))
        }
    }
}

/// `0.214 ms`, `45.2 ms`, `10.3 s`: precise below a millisecond, short above.
pub fn duration_text(ms: f64) -> String {
    if ms < 1.0 {
        format!("{ms:.3} ms")
    } else if ms < 1000.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{:.1} s", ms / 1e3)
    }
}

/// Headline numbers, so a dashboard need not re-read the history.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Counts {
    /// Lines of `history.jsonl`.
    pub events: u64,
    /// Client operations (invocations).
    pub ops: u64,
    /// Acquires the lock service granted (`ok` acquire operations).
    pub acquires_ok: u64,
    /// Writes storage accepted.
    pub writes_accepted: u64,
    /// Writes storage rejected (fencing: a token below the highest it had seen
    /// for the key).
    pub writes_rejected: u64,
    /// Writes storage accepted from a holder that had lost its lease.
    pub stale_accepted: u64,
    /// Writes storage rejected from a holder that had lost its lease: fencing at
    /// work.
    pub stale_rejected: u64,
}

/// The faults planned and the faults that actually happened. Both are kept
/// because a schedule entry may be skipped (no holder at that moment) and a fault's
/// timing is only known once it is applied.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct NemesisSummary {
    /// The faults the config asked for, one per generator and then one per
    /// timeline entry; a fault's `spec` is its position here.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub asked: Vec<String>,
    /// The seeded schedule, in the order of [`ScheduledFault::at_ms`].
    pub schedule: Vec<ScheduledFault>,
    /// The faults as the nemesis applied them, skipped ones included (with a
    /// [`FaultRecord::note`]).
    pub faults: Vec<FaultRecord>,
}

/// One entry of the seeded schedule, as planned.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ScheduledFault {
    /// Milliseconds after the workload started.
    pub at_ms: u64,
    /// What to do: `"pause"`, `"partition"`, `"kill"`, …
    pub f: String,
    /// Whom, as written in the config: `"holder"`, `"w2"`, `"minority"`, …
    pub target: String,
    /// How long it lasts, in milliseconds.
    pub duration_ms: u64,
    /// Which of [`NemesisSummary::asked`] planned it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<usize>,
}

/// One fault as it was applied. Times are nanoseconds since the run started, on
/// the history's clock, so they line up with events.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FaultRecord {
    /// What was done: `"pause"`, `"partition"`, `"kill"`, …
    pub f: String,
    /// The target as scheduled (`"holder"`).
    pub target: String,
    /// The nodes the target resolved to (`["w1"]`).
    pub nodes: Vec<String>,
    /// When the nemesis decided to act.
    pub start_ns: u64,
    /// When the fault took effect (e.g. every process stopped); `None` if unknown.
    pub effective_ns: Option<u64>,
    /// When it was healed or resumed; `None` if that was not recorded.
    pub end_ns: Option<u64>,
    /// What went wrong, `None` when nothing did: `skipped: …` (it never
    /// started), `failed: …`, or `resume failed: …` and the like for the heal.
    pub note: Option<String>,
    /// Which of [`NemesisSummary::asked`] planned it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<usize>,
}

/// One node of the run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct NodeSummary {
    /// `lock1`, `store1`, `w1`, …
    pub name: String,
    /// `"lock"`, `"storage"` or `"worker"`.
    pub role: String,
    /// `ip:port` it served on; a worker's port is 0.
    pub addr: String,
}

/// Formats a wall-clock time as RFC 3339 in UTC with milliseconds
/// (`2026-11-25T19:38:00.123Z`), the form of [`Results::started_at`].
pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

impl Results {
    /// A run that has not been checked yet: verdict unknown, everything else empty
    /// or zero. The harness fills the rest as the run goes, so that even a run that
    /// fails during setup can write a valid `results.json`.
    pub fn new(
        test: impl Into<String>,
        run_id: impl Into<String>,
        seed: u64,
        started: SystemTime,
        runtime: impl Into<String>,
    ) -> Results {
        Results {
            schema_version: SCHEMA_VERSION,
            test: test.into(),
            run_id: run_id.into(),
            verdict: Validity::Unknown,
            interrupted: false,
            signal: None,
            error: None,
            seed,
            started_at: rfc3339(started),
            runtime: runtime.into(),
            timings: Timings::default(),
            counts: Counts::default(),
            checks: Vec::new(),
            missing: Vec::new(),
            nemesis: NemesisSummary::default(),
            nodes: Vec::new(),
            lock_system: None,
            storage: None,
            margins: None,
        }
    }

    /// Takes the checker's outcome: the verdict, each check's report, and the
    /// counts derived from them and the history.
    pub fn record_checks(&mut self, checked: Checked, history: &[Event]) {
        self.verdict = checked.validity;
        self.checks = checked.checks;
        self.margins = checked.margins;
        self.counts = Counts::tally(history, &self.checks);
    }

    /// The process exit code of `leasehold run`: 0 valid, 1 invalid, 2 unknown,
    /// 3 when the run itself failed, and 128 + n (the shell's code) when signal
    /// n stopped it (130 for Ctrl-C), whatever the verdict, because a partial
    /// history proves nothing about a clean run.
    pub fn exit_code(&self) -> u8 {
        if self.interrupted {
            128 + self.signal.unwrap_or(2)
        } else {
            self.check_exit_code()
        }
    }

    /// The exit code of `leasehold check` on these results: the verdict's (0,
    /// 1, 2), or 3 when the run itself failed. A check that was not interrupted
    /// says what it found, even of an interrupted run's partial history.
    pub fn check_exit_code(&self) -> u8 {
        if self.error.is_some() {
            3
        } else {
            self.verdict.exit_code()
        }
    }

    /// Judges whether the run did enough to be judged: the lock service granted
    /// a lease, storage accepted a write, and each fault the config asked for
    /// took effect at least once. What is missing goes to [`Results::missing`]
    /// and turns a valid verdict into unknown (invalid stays invalid: its
    /// evidence stands). Call it after [`Results::record_checks`] and once
    /// `nemesis` is filled in; it is for runs, not for bare histories.
    pub fn require_activity(&mut self) {
        self.missing = self.missing_activity();
        if !self.missing.is_empty() && self.verdict == Validity::Valid {
            self.verdict = Validity::Unknown;
        }
    }

    fn missing_activity(&self) -> Vec<String> {
        let mut missing = Vec::new();
        if self.counts.acquires_ok == 0 {
            missing.push("the lock service granted no lease".to_owned());
        }
        if self.counts.writes_accepted == 0 {
            missing.push("storage accepted no write".to_owned());
        }
        for (i, asked) in self.nemesis.asked.iter().enumerate() {
            let of_spec = |spec: Option<usize>| spec == Some(i);
            if self
                .nemesis
                .faults
                .iter()
                .any(|f| of_spec(f.spec) && f.effective_ns.is_some())
            {
                continue;
            }
            let why = if !self.nemesis.schedule.iter().any(|f| of_spec(f.spec)) {
                "the run is too short to schedule it".to_owned()
            } else if let Some(note) = self
                .nemesis
                .faults
                .iter()
                .rev()
                .filter(|f| of_spec(f.spec))
                .find_map(|f| f.note.clone())
            {
                note
            } else {
                "the run ended before it was due".to_owned()
            };
            missing.push(format!("the fault {asked} was never injected ({why})"));
        }
        missing
    }

    /// Reads a `results.json`, refusing a newer schema rather than misreading it.
    pub fn read(path: &Path) -> Result<Results> {
        let text = std::fs::read_to_string(path).map_err(ResultsError::io(path))?;
        Results::from_json(&text).map_err(|e| match e {
            ResultsError::Json { source, .. } => ResultsError::Json {
                path: path.to_owned(),
                source,
            },
            ResultsError::SchemaVersion {
                found, supported, ..
            } => ResultsError::SchemaVersion {
                path: path.to_owned(),
                found,
                supported,
            },
            other => other,
        })
    }

    /// Parses `results.json` text; the version is checked first so that a newer
    /// file fails with a clear message instead of a missing-field error.
    pub fn from_json(text: &str) -> Result<Results> {
        let json_err = |source| ResultsError::Json {
            path: "results.json".into(),
            source,
        };
        #[derive(Deserialize)]
        struct Version {
            schema_version: u32,
        }
        let v: Version = serde_json::from_str(text).map_err(json_err)?;
        if v.schema_version > SCHEMA_VERSION {
            return Err(ResultsError::SchemaVersion {
                path: "results.json".into(),
                found: v.schema_version,
                supported: SCHEMA_VERSION,
            });
        }
        serde_json::from_str(text).map_err(json_err)
    }

    /// Pretty JSON with a trailing newline, as written to `results.json`.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("Results serializes to JSON");
        s.push('\n');
        s
    }

    /// The report of the check named `name` (`"stale-write"`), if it ran.
    pub fn check(&self, name: &str) -> Option<&CheckReport> {
        self.checks.iter().find(|c| c.name == name)
    }
}

impl Counts {
    /// Counts what the history and the checks tell. Write and stale counts come
    /// from the stale-write check's `stats` when it ran (it knows which writes were
    /// stale); otherwise writes are counted from the history (`ok` writes accepted,
    /// `fail` writes whose error starts with `rejected`).
    pub fn tally(history: &[Event], checks: &[CheckReport]) -> Counts {
        let ops = History::new(history.to_vec()).ops();
        let acquires_ok = ops
            .iter()
            .filter(|op| op.is_ok() && matches!(op.call, leasehold_checker::Call::Acquire { .. }))
            .count() as u64;
        let mut counts = Counts {
            events: history.len() as u64,
            ops: ops.len() as u64,
            acquires_ok,
            writes_accepted: history
                .iter()
                .filter(|e| e.f == "write" && e.kind == EventType::Ok)
                .count() as u64,
            writes_rejected: history.iter().filter(|e| is_rejected_write(e)).count() as u64,
            stale_accepted: 0,
            stale_rejected: 0,
        };
        if let Some(stale) = checks.iter().find(|c| c.name == "stale-write") {
            let stat = |name: &str| stale.stats.get(name).and_then(|v| v.as_u64());
            if let Some(n) = stat("writes_accepted") {
                counts.writes_accepted = n;
            }
            if let Some(n) = stat("writes_rejected") {
                counts.writes_rejected = n;
            }
            counts.stale_accepted = stat("stale_accepted").unwrap_or(0);
            counts.stale_rejected = stat("stale_rejected").unwrap_or(0);
        }
        counts
    }
}

/// A write that storage refused (fencing), as the worker reports it.
pub(crate) fn is_rejected_write(e: &Event) -> bool {
    e.f == "write"
        && e.kind == EventType::Fail
        && e.error
            .as_deref()
            .is_some_and(|s| s.starts_with("rejected"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn sample() -> Results {
        Results::new(
            "fencing-off",
            "run-1",
            42,
            UNIX_EPOCH + Duration::from_millis(1_795_635_480_123),
            "local",
        )
    }

    #[test]
    fn exit_codes() {
        let mut r = sample();
        r.verdict = Validity::Valid;
        assert_eq!(r.exit_code(), 0);
        r.verdict = Validity::Invalid;
        assert_eq!(r.exit_code(), 1);
        r.verdict = Validity::Unknown;
        assert_eq!(r.exit_code(), 2);
        r.error = Some("setup failed".into());
        assert_eq!(r.exit_code(), 3);
        r.interrupted = true;
        r.verdict = Validity::Invalid;
        assert_eq!(r.exit_code(), 130);
        r.signal = Some(15);
        assert_eq!(r.exit_code(), 143, "SIGTERM: 128 + 15");
        r.error = None;
        assert_eq!(r.check_exit_code(), 1, "a re-check exits with its verdict");
    }

    #[test]
    fn round_trips_and_checks_version() {
        let r = sample();
        assert_eq!(r.started_at, "2026-11-25T19:38:00.123Z");
        let json = r.to_json();
        assert_eq!(Results::from_json(&json).unwrap(), r);

        let newer = json.replace("\"schema_version\": 2", "\"schema_version\": 3");
        assert!(matches!(
            Results::from_json(&newer),
            Err(ResultsError::SchemaVersion { found: 3, .. })
        ));
    }

    #[test]
    fn tally_prefers_the_stale_write_stats() {
        use crate::test_support::seed_history;
        let history = seed_history(true);
        let plain = Counts::tally(&history, &[]);
        assert_eq!(
            plain,
            Counts {
                events: 12,
                ops: 5,
                acquires_ok: 2,
                writes_accepted: 2,
                writes_rejected: 1,
                stale_accepted: 0,
                stale_rejected: 0,
            }
        );

        let stats = serde_json::json!({
            "writes_accepted": 2, "writes_rejected": 1, "stale_accepted": 0,
            "stale_possible": 0, "stale_rejected": 1, "unjudged": 0,
        });
        let checked = Checked {
            validity: Validity::Valid,
            checks: vec![CheckReport {
                judged: leasehold_checker::Judged::new(1, "ops"),
                name: "stale-write".into(),
                validity: Validity::Valid,
                summary: String::new(),
                anomalies: vec![],
                stats: stats.as_object().unwrap().clone(),
            }],
            margins: None,
        };
        let mut r = sample();
        r.record_checks(checked, &history);
        assert_eq!(r.verdict, Validity::Valid);
        assert_eq!(r.counts.stale_rejected, 1);
        assert_eq!(r.check("stale-write").unwrap().name, "stale-write");
    }

    #[test]
    fn a_run_in_which_nothing_happened_is_unknown_and_says_what_is_missing() {
        use crate::test_support::sample_results;
        // The sample's one pause took effect, but nothing was granted or written.
        let mut r = sample_results(Validity::Valid);
        r.require_activity();
        assert_eq!(r.verdict, Validity::Unknown);
        assert_eq!(
            r.missing,
            [
                "the lock service granted no lease",
                "storage accepted no write"
            ]
        );
        assert!(r.headline().starts_with(
            "UNKNOWN: not enough happened to judge: the lock service granted no lease; storage accepted no write"
        ));
        assert!(
            r.summary(Path::new("d"))
                .contains("missing: what the run needed")
        );

        // Evidence of a violation stands even when something is missing.
        let mut r = sample_results(Validity::Invalid);
        r.require_activity();
        assert_eq!(r.verdict, Validity::Invalid);

        // A busy run with every fault injected is left alone.
        let mut r = sample_results(Validity::Valid);
        r.counts.acquires_ok = 3;
        r.counts.writes_accepted = 2;
        r.require_activity();
        assert_eq!((r.verdict, r.missing.len()), (Validity::Valid, 0));
    }

    #[test]
    fn a_fault_the_config_asked_for_that_never_took_effect_is_missing() {
        use crate::test_support::sample_results;
        let mut r = sample_results(Validity::Valid);
        r.counts.acquires_ok = 3;
        r.counts.writes_accepted = 2;
        r.nemesis
            .asked
            .push("timeline[0] (kill store1 at 60s for 1s)".into());
        r.nemesis
            .asked
            .push("faults[1] (pause holder for 2s)".into());
        // faults[1] was scheduled once and skipped; timeline[0] never scheduled.
        r.nemesis.schedule.push(ScheduledFault {
            at_ms: 2000,
            f: "pause".into(),
            target: "holder".into(),
            duration_ms: 2000,
            spec: Some(2),
        });
        r.nemesis.faults.push(FaultRecord {
            f: "pause".into(),
            target: "holder".into(),
            nodes: vec![],
            start_ns: 2_000_000_000,
            effective_ns: None,
            end_ns: None,
            note: Some("skipped: no node matched holder within 1s".into()),
            spec: Some(2),
        });
        r.require_activity();
        assert_eq!(r.verdict, Validity::Unknown);
        assert_eq!(
            r.missing,
            [
                "the fault timeline[0] (kill store1 at 60s for 1s) was never injected (the run is too short to schedule it)",
                "the fault faults[1] (pause holder for 2s) was never injected (skipped: no node matched holder within 1s)",
            ]
        );
    }

    #[test]
    fn read_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("results.json");
        std::fs::write(&path, "{").unwrap();
        let err = Results::read(&path).unwrap_err();
        assert!(err.to_string().contains("results.json"), "{err}");
    }
}
