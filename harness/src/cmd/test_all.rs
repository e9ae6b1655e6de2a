//! `leasehold test-all`: many runs, one verdict. Each config runs
//! `--test-count` times, one run after another, each as a child `leasehold
//! run` with a seed of its own (`--seed` and up, or random ones, printed), a
//! progress bar over the runs, a table of what each found, and one exit code:
//!
//! | any run … | exit |
//! |---|---|
//! | invalid | 1 |
//! | failed (could not start, or failed before it was checked) | 3 |
//! | unknown (a timed-out run counts here, unless its partial history is invalid) | 2 |
//! | none of these: every run valid | 0 |
//!
//! in that order: invalid beats a failure, which beats unknown, which beats
//! valid. `--time-limit` stops a run that lasts longer (SIGTERM: it heals,
//! checks what it recorded and writes its results, as on Ctrl-C), so a nightly
//! job cannot hang on one run. A signal to `test-all` itself reaches the run
//! in progress too; then no further run starts, and it exits 128 + n.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use leasehold_checker::Validity;
use leasehold_results::Results;

use crate::child_run::{ChildRun, one_line, run_child};

#[derive(Debug, Args)]
pub struct TestAllArgs {
    /// The configs to run; a folder stands for every `.yaml` file in it.
    #[arg(required = true, value_name = "CONFIG")]
    configs: Vec<PathBuf>,
    /// How many runs of each config, each with its own seed.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    test_count: u32,
    /// The seed of each config's first run; run k gets seed + k. Random
    /// seeds when absent (each is printed, so any run can be repeated).
    #[arg(long)]
    seed: Option<u64>,
    /// Stop a run that lasts longer than this (e.g. `90s`, `10m`).
    #[arg(long, value_parser = humantime::parse_duration)]
    time_limit: Option<Duration>,
    /// Where the runs go (each config's test under its own folder).
    #[arg(long, default_value = "store")]
    store: PathBuf,
    /// No progress bar.
    #[arg(long)]
    no_progress: bool,
    /// Also write one JUnit report of every run here: a test suite per run,
    /// a test case per check (a run that failed: its error).
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
}

/// How one run ended, for the combined exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum RunClass {
    /// Every check valid.
    Valid,
    /// Undecided, or stopped at its time limit without an invalid check.
    Unknown,
    /// It could not run.
    Failed,
    /// Some check invalid.
    Invalid,
}

impl RunClass {
    /// Its word in the table.
    pub fn word(self) -> &'static str {
        match self {
            RunClass::Valid => "valid",
            RunClass::Unknown => "unknown",
            RunClass::Failed => "failed",
            RunClass::Invalid => "invalid",
        }
    }

    /// The exit code of a set of runs whose worst is `self`.
    pub fn exit_code(self) -> u8 {
        match self {
            RunClass::Valid => 0,
            RunClass::Invalid => 1,
            RunClass::Unknown => 2,
            RunClass::Failed => crate::EXIT_RUN_FAILED,
        }
    }
}

/// How a child run's outcome counts.
pub fn classify(run: &ChildRun) -> RunClass {
    match run {
        ChildRun::NotRun { .. } => RunClass::Failed,
        ChildRun::Ran(r, _) => match r.verdict {
            Validity::Invalid => RunClass::Invalid,
            Validity::Valid if !r.interrupted => RunClass::Valid,
            _ => RunClass::Unknown,
        },
    }
}

/// The configs `paths` stand for: files as given, folders by their `.yaml`
/// files in name order.
pub fn expand(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut configs = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(p)
                .with_context(|| format!("read {}", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.extension().is_some_and(|x| x == "yaml" || x == "yml"))
                .collect();
            found.sort();
            anyhow::ensure!(!found.is_empty(), "{}: no .yaml config in it", p.display());
            configs.extend(found);
        } else {
            anyhow::ensure!(p.is_file(), "{}: no such config", p.display());
            configs.push(p.clone());
        }
    }
    Ok(configs)
}

/// One row of the table, and what the combined JUnit report needs of it.
struct Row {
    config: String,
    seed: u64,
    class: RunClass,
    secs: f64,
    what: String,
    results: Box<Results>,
    report: PathBuf,
}

pub fn run(args: TestAllArgs) -> anyhow::Result<ExitCode> {
    let configs = expand(&args.configs)?;
    let exe = std::env::current_exe().context("find leasehold's own binary")?;
    let store = std::path::absolute(&args.store)
        .with_context(|| format!("the store {}", args.store.display()))?;
    let total = configs.len() as u64 * u64::from(args.test_count);
    let bar = if args.no_progress {
        indicatif::ProgressBar::hidden()
    } else {
        let bar = indicatif::ProgressBar::new(total);
        if let Ok(style) =
            indicatif::ProgressStyle::with_template("{elapsed:>4} [{bar:30}] {pos}/{len} {msg}")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        bar
    };
    let mut rows = Vec::new();
    let started = Instant::now();
    for config in &configs {
        for k in 0..args.test_count {
            let seed = match args.seed {
                Some(s) => s.wrapping_add(u64::from(k)),
                None => rand::random(),
            };
            bar.set_message(format!("{} seed {seed}", config.display()));
            let t = Instant::now();
            let (outcome, timed_out) = run_child(&exe, &store, config, seed, args.time_limit)?;
            let secs = t.elapsed().as_secs_f64();
            let stopped_by_signal = match &outcome {
                ChildRun::Ran(r, _) if r.interrupted && !timed_out => r.signal,
                _ => None,
            };
            let what = match &outcome {
                ChildRun::Ran(r, _) if r.interrupted && timed_out => {
                    format!("stopped at the time limit: {}", one_line(&r.headline()))
                }
                ChildRun::Ran(r, _) => one_line(&r.headline()),
                ChildRun::NotRun { error } => format!("failed: {error}"),
            };
            let class = classify(&outcome);
            let (results, report) = match outcome {
                ChildRun::Ran(r, dir) => {
                    let report = dir.map_or_else(|| store.clone(), |d| d.join("report.html"));
                    (r, report)
                }
                ChildRun::NotRun { error } => (failed_results(config, seed, error), store.clone()),
            };
            rows.push(Row {
                config: config.display().to_string(),
                seed,
                class,
                secs,
                what,
                results,
                report,
            });
            bar.inc(1);
            if let Some(signal) = stopped_by_signal {
                bar.finish_and_clear();
                print!("{}", table(&rows, started.elapsed()));
                if let Some(file) = &args.junit {
                    write_junit(file, &rows)?;
                }
                eprintln!("test-all: stopped by signal {signal}; no further run started");
                return Ok(ExitCode::from(128u8.saturating_add(signal)));
            }
        }
    }
    bar.finish_and_clear();
    print!("{}", table(&rows, started.elapsed()));
    if let Some(file) = &args.junit {
        write_junit(file, &rows)?;
    }
    let worst = rows
        .iter()
        .map(|r| r.class)
        .max()
        .unwrap_or(RunClass::Unknown);
    Ok(ExitCode::from(worst.exit_code()))
}

/// The results of a run that could not run: its config's file name as its
/// test, and the error.
fn failed_results(config: &std::path::Path, seed: u64, error: String) -> Box<Results> {
    let test = config
        .file_stem()
        .map_or_else(|| "config".to_owned(), |s| s.to_string_lossy().into_owned());
    let mut r = Results::new(test, "", seed, std::time::SystemTime::now(), "local");
    r.error = Some(error);
    Box::new(r)
}

/// Writes the combined JUnit report of `rows` into `file`.
fn write_junit(file: &std::path::Path, rows: &[Row]) -> anyhow::Result<()> {
    let runs: Vec<(&Results, &std::path::Path)> = rows
        .iter()
        .map(|r| (r.results.as_ref(), r.report.as_path()))
        .collect();
    std::fs::write(file, leasehold_results::render_junit_runs(&runs))
        .with_context(|| format!("write {}", file.display()))
}

/// The table of every run, then the tally and the exit code it makes.
fn table(rows: &[Row], took: Duration) -> String {
    let width = rows
        .iter()
        .map(|r| r.config.len())
        .max()
        .unwrap_or(6)
        .max(6);
    let mut s = format!(
        "{:width$}  {:>20}  {:7}  {:>8}  what it found\n",
        "config", "seed", "verdict", "time"
    );
    for r in rows {
        let _ = writeln!(
            s,
            "{:width$}  {:>20}  {:7}  {:>6.1} s  {}",
            r.config,
            r.seed,
            r.class.word(),
            r.secs,
            r.what
        );
    }
    let count = |c: RunClass| rows.iter().filter(|r| r.class == c).count();
    let worst = rows
        .iter()
        .map(|r| r.class)
        .max()
        .unwrap_or(RunClass::Unknown);
    let _ = writeln!(
        s,
        "{} runs in {:.1} s: {} invalid, {} failed, {} unknown, {} valid; exit {}",
        rows.len(),
        took.as_secs_f64(),
        count(RunClass::Invalid),
        count(RunClass::Failed),
        count(RunClass::Unknown),
        count(RunClass::Valid),
        worst.exit_code()
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ran(verdict: Validity, interrupted: bool) -> ChildRun {
        let mut r = Results::new("t", "id", 1, std::time::SystemTime::now(), "local");
        r.verdict = verdict;
        r.interrupted = interrupted;
        ChildRun::Ran(Box::new(r), None)
    }

    #[test]
    fn invalid_beats_a_failure_beats_unknown_beats_valid() {
        let failed = ChildRun::NotRun { error: "no".into() };
        let classes = [
            classify(&ran(Validity::Valid, false)),
            classify(&ran(Validity::Unknown, false)),
            classify(&failed),
            classify(&ran(Validity::Invalid, true)),
        ];
        assert_eq!(
            classes,
            [
                RunClass::Valid,
                RunClass::Unknown,
                RunClass::Failed,
                RunClass::Invalid
            ]
        );
        let exit = |cs: &[RunClass]| cs.iter().max().unwrap().exit_code();
        assert_eq!(exit(&classes), 1);
        assert_eq!(exit(&classes[..3]), 3);
        assert_eq!(exit(&classes[..2]), 2);
        assert_eq!(exit(&classes[..1]), 0);
        // A valid verdict of an interrupted run proves nothing.
        assert_eq!(classify(&ran(Validity::Valid, true)), RunClass::Unknown);
    }

    #[test]
    fn a_folder_stands_for_its_yaml_files_in_order() {
        let dir = tempfile::tempdir().unwrap();
        for f in ["b.yaml", "a.yaml", "notes.txt"] {
            std::fs::write(dir.path().join(f), "").unwrap();
        }
        let got = expand(&[dir.path().to_owned()]).unwrap();
        assert_eq!(got, [dir.path().join("a.yaml"), dir.path().join("b.yaml")]);
        let err = expand(&[dir.path().join("none.yaml")])
            .unwrap_err()
            .to_string();
        assert!(err.ends_with("none.yaml: no such config"), "{err}");
    }
}
