//! `leasehold shrink RUN_DIR`: the smallest fault schedule that still fails.
//!
//! It takes an invalid run, turns the faults that took effect into a
//! scripted `nemesis.timeline` (no generators: each fault at the time it was
//! scheduled, for as long as it lasted, on the target the config named, such
//! as `holder`), and replays that config with the run's seed as a child
//! `leasehold run`, into a store of its own, `RUN_DIR/shrink/store/`, so the
//! user's store is untouched. It reduces the set of faults by delta debugging
//! (ddmin: chunks, complements, finer chunks), then tries removing each
//! single fault that is left, halves each fault's length while the run still
//! fails, and halves the time the run goes on after the last fault ends. At
//! the end it checks again that no single fault can be removed. The
//! smallest failing config goes to `RUN_DIR/shrunk.yaml`, with its seed.
//!
//! # What makes a replay differ, and how shrink copes
//!
//! The seed fixes the workload's and the nemesis' choices, but not timing:
//! the OS scheduler, the servers' own timers (lease expiry, retries) and the
//! moment a node is ready all move a little from one run to the next, and a
//! live target such as `holder` resolves to whichever worker holds the lock
//! when the fault starts, which may be another worker than in the original
//! run. So a candidate that fails may pass once. Shrink therefore runs each
//! candidate up to `--runs` times (stopping at the first invalid run), and a
//! candidate counts as failing if any of its runs is invalid; it keeps the
//! scripted times of the original run and the same seed in every replay.
//! A candidate whose runs all passed may still fail sometimes: the result
//! is minimal with respect to what `--runs` replays could show.
//!
//! # Budget and exit codes
//!
//! `--budget` bounds the whole search; no replay starts that could not end
//! within it, and each replay is stopped after the config's duration plus a
//! margin, so a hung one cannot take the budget. When the budget runs out,
//! the best failing config found is written anyway, but marked (on stdout
//! and in a comment at its top) as not proven minimal.
//!
//! | exit | meaning |
//! |---|---|
//! | 0 | shrunk.yaml written; no single fault can be removed from it |
//! | 2 | the budget ran out: shrunk.yaml written, not proven minimal |
//! | 3 | nothing to shrink (no config.yaml or results.json, a run that was not invalid) or the failure did not reproduce: no shrunk.yaml |
//! | 128 + n | stopped by signal n; a failing config found so far is written, not proven minimal |

mod ddmin;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use leasehold_checker::Validity;
use leasehold_nemesis::TimelineEntry;
use leasehold_results::Results;

use crate::child_run::{ChildRun, one_line, run_child};
use crate::config::{Config, MIN_FAULT};

/// Exit code when the budget ran out before the search finished.
const EXIT_NOT_MINIMAL: u8 = 2;

/// How much longer than its duration one replay may take (setup, teardown,
/// check) before it is stopped.
const REPLAY_MARGIN: Duration = Duration::from_secs(30);

/// The least time a run goes on after its last fault ends: the stale write
/// of a paused holder comes right after it wakes, and must be recorded.
const SLACK_FLOOR: Duration = Duration::from_millis(500);

// No doc comment: clap would take it for the subcommand's help, which the
// `Shrink` variant of the CLI gives (with the exit codes).
#[derive(Debug, Args)]
pub struct ShrinkArgs {
    /// The folder of an invalid run (e.g. store/latest).
    #[arg(value_name = "RUN_DIR")]
    run_dir: PathBuf,
    /// Time for the whole search (e.g. `90s`, `5m`).
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    budget: Duration,
    /// Replays of each candidate; it fails if any of them is invalid.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    runs: u32,
}

/// One candidate: the scripted faults and the run's duration.
#[derive(Clone, Debug)]
struct Candidate {
    timeline: Vec<TimelineEntry>,
    duration: Duration,
}

/// Why the search stopped early.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stop {
    Budget,
    Signal(u8),
}

/// Replays candidates and remembers what each did.
struct Replayer {
    exe: PathBuf,
    store: PathBuf,
    candidates: PathBuf,
    base: Config,
    seed: u64,
    runs: u32,
    deadline: Instant,
    /// The results of an invalid replay of each candidate tested, by its
    /// config text; `None` for one that did not fail.
    seen: HashMap<String, Option<Box<Results>>>,
    tested: u32,
    replays: u32,
    stop: Option<Stop>,
    /// The last error of a replay that could not run.
    last_error: Option<String>,
}

impl Replayer {
    /// The config of `c`, as YAML.
    fn config_of(&self, c: &Candidate) -> Config {
        let mut config = self.base.clone();
        config.seed = Some(self.seed);
        config.duration = c.duration;
        config.nemesis.faults.clear();
        config.nemesis.timeline = c.timeline.clone();
        config
    }

    /// Whether `c` fails: `None` when the search must stop.
    fn fails(&mut self, c: &Candidate) -> Option<bool> {
        if self.stop.is_some() {
            return None;
        }
        let text = self.config_of(c).to_yaml();
        if let Some(known) = self.seen.get(&text) {
            return Some(known.is_some());
        }
        self.tested += 1;
        let n = self.tested;
        let what = format!(
            "[{n}] {} fault{}, {:.1} s",
            c.timeline.len(),
            if c.timeline.len() == 1 { "" } else { "s" },
            c.duration.as_secs_f64()
        );
        let path = self.candidates.join(format!("{n:03}.yaml"));
        if let Err(e) = std::fs::write(&path, &text) {
            println!("{what}: cannot write {}: {e}", path.display());
            self.seen.insert(text, None);
            return Some(false);
        }
        // A candidate the config checks refuse (a fault past the end of a
        // shorter run) is no candidate.
        if let Err(e) = Config::load(&path) {
            println!("{what}: not a valid config: {}", one_line(&e.to_string()));
            self.seen.insert(text, None);
            return Some(false);
        }
        let mut words = Vec::new();
        for k in 1..=self.runs {
            let left = self.deadline.saturating_duration_since(Instant::now());
            if left < c.duration {
                println!("{what}: not run, the budget is spent");
                self.tested -= 1;
                self.stop = Some(Stop::Budget);
                return None;
            }
            let limit = (c.duration + REPLAY_MARGIN).min(left);
            self.replays += 1;
            let outcome = match run_child(&self.exe, &self.store, &path, self.seed, Some(limit)) {
                Ok((outcome, timed_out)) => (outcome, timed_out),
                Err(e) => {
                    let error = one_line(&format!("{e:#}"));
                    words.push("failed".to_owned());
                    self.last_error = Some(error);
                    continue;
                }
            };
            match outcome {
                (ChildRun::Ran(r, _), _) if r.verdict == Validity::Invalid => {
                    println!("{what}: invalid ({k}/{} runs)", self.runs);
                    self.seen.insert(text, Some(r));
                    return Some(true);
                }
                (ChildRun::Ran(r, _), false) if r.interrupted => {
                    println!("{what}: stopped by a signal");
                    self.tested -= 1;
                    self.stop = Some(Stop::Signal(r.signal.unwrap_or(2)));
                    return None;
                }
                (ChildRun::Ran(r, _), true) => {
                    words.push("timed out".to_owned());
                    self.last_error = Some(format!(
                        "a replay was stopped at its time limit: {}",
                        one_line(&r.headline())
                    ));
                }
                (ChildRun::Ran(r, _), false) => {
                    words.push(
                        match r.verdict {
                            Validity::Valid => "valid",
                            _ => "unknown",
                        }
                        .to_owned(),
                    );
                }
                (ChildRun::NotRun { error }, _) => {
                    words.push("failed".to_owned());
                    self.last_error = Some(error);
                }
            }
        }
        println!(
            "{what}: not invalid (0/{} runs: {})",
            self.runs,
            words.join(", ")
        );
        self.seen.insert(text, None);
        Some(false)
    }

    /// The results of the invalid replay of `c`, which failed.
    fn results_of(&self, c: &Candidate) -> Option<&Results> {
        self.seen
            .get(&self.config_of(c).to_yaml())
            .and_then(|r| r.as_deref())
    }
}

/// Runs `leasehold shrink`.
pub fn run(args: ShrinkArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let dir = std::fs::canonicalize(&args.run_dir)
        .with_context(|| format!("{}: no such run folder", args.run_dir.display()))?;
    anyhow::ensure!(dir.is_dir(), "{}: not a run folder", args.run_dir.display());
    let config_path = dir.join("config.yaml");
    let results_path = dir.join("results.json");
    anyhow::ensure!(
        config_path.is_file(),
        "{}: no config.yaml in it, so there is nothing to replay (shrink needs the run folder \
         of a `leasehold run`)",
        args.run_dir.display()
    );
    anyhow::ensure!(
        results_path.is_file(),
        "{}: no results.json in it, so its verdict and faults are unknown",
        args.run_dir.display()
    );
    let base = Config::load(&config_path).map_err(anyhow::Error::new)?;
    let results =
        Results::read(&results_path).with_context(|| format!("read {}", results_path.display()))?;
    if let Some(error) = &results.error {
        bail!(
            "{}: the run failed before it was checked ({}): nothing to shrink",
            args.run_dir.display(),
            one_line(error)
        );
    }
    match results.verdict {
        Validity::Invalid => {}
        Validity::Valid => bail!(
            "{}: the run was valid: nothing to shrink (shrink needs an invalid run)",
            args.run_dir.display()
        ),
        Validity::Unknown => bail!(
            "{}: the run's verdict was unknown: nothing to shrink (shrink needs an invalid run)",
            args.run_dir.display()
        ),
    }
    let original = timeline_of(&base, &results)?;
    let seed = results.seed;

    let work = dir.join("shrink");
    let candidates = work.join("candidates");
    std::fs::create_dir_all(&candidates)
        .with_context(|| format!("create {}", candidates.display()))?;
    let shrunk_path = dir.join("shrunk.yaml");
    // A shrunk.yaml of an earlier shrink must not pass for this one's.
    match std::fs::remove_file(&shrunk_path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(e).with_context(|| format!("remove {}", shrunk_path.display()));
        }
        _ => {}
    }
    let mut r = Replayer {
        exe: std::env::current_exe().context("find leasehold's own binary")?,
        store: work.join("store"),
        candidates,
        base: base.clone(),
        seed,
        runs: args.runs,
        deadline: started + args.budget,
        seen: HashMap::new(),
        tested: 0,
        replays: 0,
        stop: None,
        last_error: None,
    };
    let first = Candidate {
        timeline: original,
        duration: base.duration,
    };
    println!(
        "shrinking {} (seed {seed}): {} fault{} that took effect, {}; {} run{} per candidate, \
         budget {}",
        escape(&dir.display().to_string()),
        first.timeline.len(),
        if first.timeline.len() == 1 { "" } else { "s" },
        show(first.duration),
        args.runs,
        if args.runs == 1 { "" } else { "s" },
        show(args.budget)
    );
    match r.fails(&first) {
        Some(true) => {}
        None if r.stop == Some(Stop::Budget) => bail!(
            "the failure did not reproduce within the budget of {} ({} replay{} ran): \
             no shrunk.yaml written; give it a larger --budget",
            show(args.budget),
            r.replays,
            if r.replays == 1 { "" } else { "s" }
        ),
        None => {
            let code = match r.stop {
                Some(Stop::Signal(n)) => 128 + n,
                _ => crate::EXIT_INTERRUPTED,
            };
            eprintln!("stopped before the failure reproduced: no shrunk.yaml written");
            return Ok(ExitCode::from(code));
        }
        Some(false) => bail!(
            "the failure did not reproduce: none of {} replay{} of the scripted faults with \
             seed {seed} was invalid{}; no shrunk.yaml written (try more --runs)",
            r.replays,
            if r.replays == 1 { "" } else { "s" },
            r.last_error
                .as_deref()
                .map(|e| format!(" (last error: {e})"))
                .unwrap_or_default()
        ),
    }

    let (best, complete) = search(&mut r, &first);
    let end = r
        .results_of(&best)
        .cloned()
        .expect("the best candidate failed");
    let config = r.config_of(&best);
    let mut text = String::new();
    if complete {
        let _ = writeln!(
            text,
            "# Shrunk by `leasehold shrink` from {}: removing any one fault of this timeline \
             made the failure go away in {} replay{} (seed {seed}).",
            escape(&dir.display().to_string()),
            args.runs,
            if args.runs == 1 { "" } else { "s" }
        );
    } else {
        let _ = writeln!(
            text,
            "# NOT proven minimal: `leasehold shrink` of {} stopped before its search ended \
             ({}); this config fails, but fewer or shorter faults may too.",
            escape(&dir.display().to_string()),
            match r.stop {
                Some(Stop::Signal(_)) => "stopped by a signal",
                _ => "the budget ran out",
            }
        );
    }
    text.push_str(&config.to_yaml());
    write_atomic(&shrunk_path, &text)?;
    Config::load(&shrunk_path)
        .map_err(anyhow::Error::new)
        .context("the shrunk config does not read back")?;

    print!(
        "{}",
        before_after(&first, &results, &best, &end, base.duration)
    );
    println!(
        "{} candidates, {} replays in {}",
        r.tested,
        r.replays,
        show(Duration::from_millis(started.elapsed().as_millis() as u64))
    );
    let shown = escape(&shrunk_path.display().to_string());
    println!("wrote {shown}");
    println!("replay: leasehold run {shown} --seed {seed}");
    Ok(match r.stop {
        None => {
            println!("minimal: no single fault can be removed without the failure going away");
            ExitCode::SUCCESS
        }
        Some(stop) => {
            println!(
                "NOT proven minimal: {}",
                match stop {
                    Stop::Budget => "the budget ran out before the search ended",
                    Stop::Signal(_) => "stopped by a signal before the search ended",
                }
            );
            ExitCode::from(match stop {
                Stop::Budget => EXIT_NOT_MINIMAL,
                Stop::Signal(n) => 128 + n,
            })
        }
    })
}

/// The search from `first` (which fails): the smallest failing candidate,
/// and whether the search finished.
fn search(r: &mut Replayer, first: &Candidate) -> (Candidate, bool) {
    let with = |c: &Candidate, keep: &[usize]| Candidate {
        timeline: keep.iter().map(|i| c.timeline[*i].clone()).collect(),
        duration: c.duration,
    };
    let all: Vec<usize> = (0..first.timeline.len()).collect();
    let reduced = ddmin::ddmin(&all, |keep| r.fails(&with(first, keep)));
    let mut best = with(first, &reduced.kept);
    if !reduced.complete {
        return (best, false);
    }
    // Shorter faults.
    for i in 0..best.timeline.len() {
        let (shortest, done) = ddmin::halve(best.timeline[i].duration, MIN_FAULT, |d| {
            let mut c = best.clone();
            c.timeline[i].duration = d;
            r.fails(&c)
        });
        best.timeline[i].duration = shortest;
        if !done {
            return (best, false);
        }
    }
    // A shorter run: halve the time after the last fault ends.
    let last_end = best
        .timeline
        .iter()
        .map(|e| e.at + e.duration)
        .max()
        .unwrap_or_default();
    let slack = best.duration.saturating_sub(last_end);
    let (slack, done) = ddmin::halve(slack, SLACK_FLOOR, |s| {
        let mut c = best.clone();
        c.duration = last_end + s;
        r.fails(&c)
    });
    best.duration = last_end + slack;
    if !done {
        return (best, false);
    }
    // Shorter faults and a shorter run may make another fault removable.
    let all: Vec<usize> = (0..best.timeline.len()).collect();
    let again = ddmin::one_minimal(all, |keep| r.fails(&with(&best, keep)));
    let best = with(&best, &again.kept);
    (best, again.complete)
}

/// The faults of `results` that took effect, as timeline entries of
/// `config`: each at its scheduled time, for its scheduled length, with the
/// target, topology and the rest of the generator or entry that planned it.
fn timeline_of(config: &Config, results: &Results) -> anyhow::Result<Vec<TimelineEntry>> {
    let nemesis = &results.nemesis;
    let generators = config.nemesis.faults.len();
    let mut out = Vec::new();
    // The nemesis applies the schedule in order, one record per entry.
    for (planned, applied) in nemesis.schedule.iter().zip(&nemesis.faults) {
        let took_effect = !applied.nodes.is_empty()
            && applied
                .note
                .as_deref()
                .is_none_or(|n| !n.starts_with("skipped") && !n.starts_with("failed"));
        if !took_effect || applied.f != planned.f || applied.spec != planned.spec {
            continue;
        }
        let source = match planned.spec {
            Some(s) if s < generators => serde_yaml::to_value(&config.nemesis.faults[s]),
            Some(s) => match config.nemesis.timeline.get(s - generators) {
                Some(e) => serde_yaml::to_value(e),
                None => Ok(serde_yaml::Value::Null),
            },
            None => Ok(serde_yaml::Value::Null),
        }
        .context("the config's faults")?;
        let mut map = match source {
            serde_yaml::Value::Mapping(m) => m,
            _ => {
                let mut m = serde_yaml::Mapping::new();
                m.insert("fault".into(), planned.f.clone().into());
                m.insert("target".into(), planned.target.clone().into());
                m
            }
        };
        for key in ["every", "start_after", "at", "for"] {
            map.remove(key);
        }
        let at = Duration::from_millis(planned.at_ms);
        let length = Duration::from_millis(planned.duration_ms);
        map.insert("at".into(), show(at).into());
        map.insert("for".into(), show(length).into());
        let entry: TimelineEntry = serde_yaml::from_value(serde_yaml::Value::Mapping(map))
            .with_context(|| {
                format!(
                    "the {} fault at {} ms cannot be scripted",
                    escape(&planned.f),
                    planned.at_ms
                )
            })?;
        out.push(entry);
    }
    out.sort_by_key(|e| e.at);
    Ok(out)
}

/// Before and after: faults, duration, anomalies.
fn before_after(
    first: &Candidate,
    before: &Results,
    best: &Candidate,
    after: &Results,
    original_duration: Duration,
) -> String {
    let mut s = String::new();
    let faults = |s: &mut String, c: &Candidate| {
        let _ = writeln!(s, "  faults:    {}", c.timeline.len());
        for e in &c.timeline {
            let _ = writeln!(s, "    - {}", describe(e));
        }
    };
    let _ = writeln!(s, "before:");
    faults(&mut s, first);
    let _ = writeln!(s, "  duration:  {}", show(original_duration));
    let _ = writeln!(s, "  anomalies: {}", anomalies(before));
    let _ = writeln!(s, "after:");
    faults(&mut s, best);
    let _ = writeln!(s, "  duration:  {}", show(best.duration));
    let _ = writeln!(s, "  anomalies: {}", anomalies(after));
    s
}

/// `stale-write 2` for each invalid check, or `none`.
fn anomalies(r: &Results) -> String {
    let found: Vec<String> = r
        .checks
        .iter()
        .filter(|c| c.validity == Validity::Invalid)
        .map(|c| format!("{} {}", escape(&c.name), c.anomalies.len()))
        .collect();
    if found.is_empty() {
        "none".into()
    } else {
        found.join(", ")
    }
}

/// `pause holder at 500ms for 2s`, with a partition's or a packet fault's
/// shape, or a clock fault's change.
fn describe(e: &TimelineEntry) -> String {
    let mut s = format!(
        "{} {} at {} for {}",
        e.fault.as_str(),
        escape(&e.target.to_string()),
        show(e.at),
        show(e.duration)
    );
    if let Some(t) = &e.topology {
        let _ = write!(s, ", topology {}", escape(&t.to_string()));
    }
    if let Some(f) = &e.from {
        let _ = write!(s, ", from {}", escape(&f.to_string()));
    }
    if let Some(c) = e.clock_change() {
        let _ = write!(s, ", {c}");
    }
    if e.fault == leasehold_nemesis::FaultKind::Packet {
        let _ = write!(s, ", {}", e.shape());
    }
    s
}

fn show(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// `s` with control characters escaped, for one line of a terminal or a
/// YAML comment.
fn escape(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect()
}

/// Writes `path` through a temporary file, so it is never half written.
fn write_atomic(path: &Path, text: &str) -> anyhow::Result<()> {
    let tmp = path.with_extension("yaml.tmp");
    std::fs::write(&tmp, text).with_context(|| format!("write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use leasehold_nemesis::FaultKind;
    use leasehold_results::{FaultRecord, ScheduledFault};

    /// A clock fault and a partition to a list of nodes, scripted from what a
    /// run did, keep their change and their targets.
    #[test]
    fn scripted_faults_keep_their_clock_change_and_node_lists() {
        let text = "test: t\nduration: 10s\nlock: { service: reference, nodes: 3 }\nworkload:\n  workers: 1\n  lease: 1s\n  think: 100ms\nnemesis:\n  \
                    faults:\n    - fault: clock\n      target: lock2\n      strobe: -300ms\n      \
                    period: 20ms\n      for: 1s\n      every: 2s\n  timeline:\n    - at: 1s\n      \
                    partition: w1\n      from: [lock2, lock3]\n      for: 4s\n";
        let config = Config::parse(text, Path::new("t.yaml")).unwrap();
        let mut results = Results::new("t", "r", 1, std::time::SystemTime::now(), "local");
        for (at_ms, f, target, spec, nodes) in [
            (1000, "partition", "w1", 1, vec!["w1", "lock2", "lock3"]),
            (3000, "clock", "lock2", 0, vec!["lock2"]),
        ] {
            results.nemesis.schedule.push(ScheduledFault {
                at_ms,
                f: f.into(),
                target: target.into(),
                duration_ms: 1000,
                spec: Some(spec),
            });
            results.nemesis.faults.push(FaultRecord {
                f: f.into(),
                target: target.into(),
                nodes: nodes.into_iter().map(String::from).collect(),
                start_ns: at_ms * 1_000_000,
                effective_ns: Some(at_ms * 1_000_000),
                end_ns: None,
                note: None,
                spec: Some(spec),
            });
        }
        let timeline = timeline_of(&config, &results).unwrap();
        let described: Vec<String> = timeline.iter().map(describe).collect();
        assert_eq!(
            described,
            [
                "partition w1 at 1s for 1s, from lock2,lock3",
                "clock lock2 at 3s for 1s, strobe -300ms every 20ms (realtime)",
            ]
        );
    }

    #[test]
    fn packet_faults_keep_their_shape_in_the_shrunk_timeline() {
        let text = "test: t\nduration: 10s\nworkload:\n  workers: 3\n  lease: 1s\n  think: 200ms\n\
                    nemesis:\n  faults:\n    - fault: packet\n      target: holder\n      from: storage\n      \
                    delay: 300ms\n      jitter: 20ms\n      loss: 5%\n      for: 2s\n      every: 3s\n      \
                    start_after: 1s\n  timeline:\n    - { at: 8s, packet: w1, from: lock, duplicate: 10%, for: 1s }\n";
        let config = Config::parse(text, Path::new("t.yaml")).unwrap();
        let mut results = Results::new("t", "x", 1, std::time::SystemTime::now(), "local");
        for (at_ms, spec, target) in [(1000, 0, "holder"), (8000, 1, "w1")] {
            results.nemesis.schedule.push(ScheduledFault {
                at_ms,
                f: "packet".into(),
                target: target.into(),
                duration_ms: if spec == 0 { 2000 } else { 1000 },
                spec: Some(spec),
            });
            results.nemesis.faults.push(FaultRecord {
                f: "packet".into(),
                target: target.into(),
                nodes: vec!["store1".into(), "w1".into()],
                start_ns: at_ms * 1_000_000,
                effective_ns: Some(at_ms * 1_000_000 + 40_000_000),
                end_ns: Some(at_ms * 1_000_000 + 1_040_000_000),
                note: None,
                spec: Some(spec),
            });
        }
        let timeline = timeline_of(&config, &results).unwrap();
        assert_eq!(timeline.len(), 2);
        let (a, b) = (&timeline[0], &timeline[1]);
        assert_eq!((a.fault, b.fault), (FaultKind::Packet, FaultKind::Packet));
        assert_eq!(a.at, Duration::from_secs(1));
        assert_eq!(a.duration, Duration::from_secs(2));
        assert_eq!(
            a.from.as_ref().map(|t| t.to_string()).as_deref(),
            Some("storage")
        );
        let shape = a.shape();
        assert_eq!(shape.delay, Duration::from_millis(300));
        assert_eq!(shape.jitter, Duration::from_millis(20));
        assert_eq!(shape.loss.get(), 5);
        assert_eq!(b.shape().duplicate.get(), 10);
        assert_eq!(
            b.from.as_ref().map(|t| t.to_string()).as_deref(),
            Some("lock")
        );
        // The shrunk config reads back as it was written, shapes included.
        let mut shrunk = config.clone();
        shrunk.nemesis.faults.clear();
        shrunk.nemesis.timeline = timeline.clone();
        let again = Config::parse(&shrunk.to_yaml(), Path::new("shrunk.yaml")).unwrap();
        assert_eq!(again.nemesis.timeline, timeline);
        assert_eq!(
            describe(a),
            "packet holder at 1s for 2s, from storage, delay 300ms ± 20ms, loss 5%"
        );
    }
}
