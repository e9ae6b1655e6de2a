//! `leasehold check`: check a stored run, or a history file, again.
//!
//! - A **run folder** (`store/latest`): reads `history.jsonl`, `ledger.jsonl`
//!   (when there) and `results.json`, runs every check again with the run's
//!   config (`config.yaml`, for whether storage was fenced), and rewrites
//!   `results.json`, `report.html` and `junit.xml` in place (or in `--out`).
//!   Everything `results.json` knew that a check does not decide (seed, faults,
//!   nodes, timings, an error or interruption of the run) is kept.
//! - A **leasehold history** (`*.jsonl`): every check that needs no ledger, and
//!   with `--model` also the linearizability of the events under that model.
//! - A **Jepsen history** (`*.edn`): linearizability under `--model`, which it
//!   needs.
//!
//! For a history file the results go to `--out DIR` (`results.json`,
//! `report.html`, `junit.xml`), or by default next to the file as
//! `<name>.results.json` and `<name>.report.html`.
//!
//! It prints the summary `leasehold run` prints and exits like it: 0 valid,
//! 1 invalid, 2 unknown, 3 when the input cannot be read (the message names the
//! line and column).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, bail};
use clap::Args;
use leasehold_checker::{
    CheckInput, CheckOptions, Checked, Event, History, Limits, ModelKind, ModelOptions, NilRead,
};
use leasehold_results::{Results, RunDir, Timings, render_report};

use crate::config::Config;

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// A run folder (e.g. store/latest), a leasehold history (.jsonl) or a
    /// Jepsen history (.edn).
    pub path: PathBuf,

    /// Check linearizability under this model (needed for a Jepsen .edn
    /// history).
    #[arg(long, value_parser = parse_model, long_help = model_help())]
    pub model: Option<ModelKind>,

    /// The value every register holds before the first write, as EDN (e.g. 0):
    /// Knossos's tests start registers at 0, leasehold's start empty. For
    /// register, cas-register, cas-register-strict and multi-register.
    #[arg(long, value_name = "EDN", value_parser = parse_initial_value)]
    pub initial_value: Option<serde_json::Value>,

    /// What an ok read of nil means: empty (the register held nothing,
    /// leasehold's reading) or unknown (the value read is unknown, Knossos's
    /// reading; choose it for a history from Jepsen).
    #[arg(long, value_name = "READING", default_value = "empty", value_parser = parse_nil_read)]
    pub nil_read: NilRead,

    /// Folder for results.json, report.html and junit.xml. Default: the run
    /// folder itself, or for a history file <name>.results.json (and
    /// <name>.report.html) next to it.
    #[arg(long)]
    pub out: Option<PathBuf>,

    /// How long the linearizability search may run before it gives up and
    /// says unknown, e.g. 30s or 2m.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "30s")]
    pub time_limit: Duration,
}

fn parse_model(s: &str) -> Result<ModelKind, String> {
    s.parse::<ModelKind>().map_err(|e| e.to_string())
}

/// `--model`'s help: every model the parser accepts, one line each.
fn model_help() -> String {
    let mut help =
        "Check linearizability under this model (needed for a Jepsen .edn history):".to_owned();
    for kind in ModelKind::ALL {
        help += &format!("\n  {:<20} {}", kind.name(), kind.description());
    }
    help
}

fn parse_initial_value(s: &str) -> Result<serde_json::Value, String> {
    match leasehold_checker::parse_edn(s)
        .map_err(|e| e.to_string())?
        .as_slice()
    {
        [form] if form.to_json().is_null() => {
            Err("an initial value of nil is the default (registers start empty)".to_owned())
        }
        [form] => Ok(form.to_json()),
        forms => Err(format!(
            "expected one EDN value (e.g. 0), found {} forms",
            forms.len()
        )),
    }
}

fn parse_nil_read(s: &str) -> Result<NilRead, String> {
    s.parse::<NilRead>()
}

/// What kind of input `PATH` is.
enum Input {
    RunDir,
    Jsonl,
    Edn,
}

pub fn run(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let kind = if args.path.is_dir() {
        Input::RunDir
    } else {
        if !args.path.exists() {
            bail!("{}: no such file or folder", args.path.display());
        }
        match args.path.extension().and_then(|e| e.to_str()) {
            Some("edn") => Input::Edn,
            // Anything else is taken for leasehold's JSON lines.
            _ => Input::Jsonl,
        }
    };
    if args.initial_value.is_some() && !args.model.is_some_and(ModelKind::takes_initial_value) {
        bail!(
            "--initial-value is for the register models (register, cas-register, cas-register-strict, multi-register): give one with --model"
        );
    }
    let limits = Limits {
        deadline: Some(args.time_limit),
        ..Limits::default()
    };
    let (results, shown) = match kind {
        Input::RunDir => check_run_dir(&args, limits)?,
        Input::Jsonl | Input::Edn => check_history_file(&args, matches!(kind, Input::Edn), limits)?,
    };
    super::run::print_or_stop(&mut std::io::stdout(), &shown);
    Ok(ExitCode::from(results.check_exit_code()))
}

/// Re-checks a run folder; returns the results and the summary to print.
fn check_run_dir(args: &CheckArgs, limits: Limits) -> anyhow::Result<(Results, String)> {
    let t_parse = Instant::now();
    let run_dir = RunDir::open(&args.path)?;
    let history = run_dir.history_path();
    if !history.exists() {
        bail!(
            "{}: not a leasehold run folder: there is no {} (give a run folder such as store/latest, or a history file)",
            args.path.display(),
            history.display()
        );
    }
    let events = read_events(&history, false)?;
    let ledger = match std::fs::File::open(run_dir.ledger_path()) {
        Ok(file) => Some(
            leasehold_checker::read_ledger(std::io::BufReader::new(file))
                .with_context(|| run_dir.ledger_path().display().to_string())?,
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            return Err(e).with_context(|| run_dir.ledger_path().display().to_string());
        }
    };
    let mut results = match run_dir.read_results() {
        Ok(r) => r,
        Err(leasehold_results::ResultsError::Io { source, .. })
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            let test = run_dir
                .path()
                .parent()
                .and_then(Path::file_name)
                .map_or_else(|| "run".to_owned(), |n| n.to_string_lossy().into_owned());
            Results::new(test, run_dir.name(), 0, SystemTime::now(), "unknown")
        }
        Err(e) => return Err(e.into()),
    };
    // Whether storage was fenced, from the config the run kept.
    let fencing = Config::load(&run_dir.config_path())
        .map(|c| c.storage.fencing)
        .map_err(|e| tracing::info!(error = %e, "no usable config.yaml: fencing guessed from the ledger"))
        .ok();

    let parse_ms = Timings::ms(t_parse.elapsed());
    let t_check = Instant::now();
    let ops = History::new(events.clone()).ops();
    let options = CheckOptions {
        fencing,
        linearizability: Some(limits),
    };
    let checked = leasehold_checker::check_with(
        CheckInput {
            ops: &ops,
            ledger: ledger.as_deref(),
        },
        &options,
    );
    results.record_checks(checked, &events);
    results.require_activity();
    // Only the check's own phases: the run's were timed by the run.
    results.timings = Timings {
        parse_ms,
        check_ms: Timings::ms(t_check.elapsed()),
        ..Timings::default()
    };

    let out = match &args.out {
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
            RunDir::open(dir)?
        }
        None => run_dir,
    };
    write_timed(&out, &mut results, &events, t_parse)?;
    let shown = args.out.as_deref().unwrap_or(&args.path);
    Ok((results.clone(), results.summary(shown)))
}

/// Checks a bare history file; returns the results and the summary to print.
fn check_history_file(
    args: &CheckArgs,
    edn: bool,
    limits: Limits,
) -> anyhow::Result<(Results, String)> {
    let t_parse = Instant::now();
    let events = read_events(&args.path, edn)?;
    let parse_ms = Timings::ms(t_parse.elapsed());
    let t_check = Instant::now();
    let options = ModelOptions {
        initial_value: args.initial_value.clone(),
        nil_read: args.nil_read,
    };
    let checked = match (edn, args.model) {
        (true, None) => bail!(
            "{}: a Jepsen history is checked for linearizability: say under which model with --model {}",
            args.path.display(),
            ModelKind::ALL.map(ModelKind::name).join("|")
        ),
        (true, Some(model)) => {
            let report =
                leasehold_checker::check_linearizability_with(&events, model, &options, limits);
            Checked {
                validity: report.validity,
                checks: vec![report],
                margins: None,
            }
        }
        (false, model) => {
            let ops = History::new(events.clone()).ops();
            let mut checked = leasehold_checker::check_with(
                CheckInput {
                    ops: &ops,
                    ledger: None,
                },
                &CheckOptions {
                    linearizability: Some(limits),
                    ..CheckOptions::default()
                },
            );
            if let Some(model) = model {
                let report =
                    leasehold_checker::check_linearizability_with(&events, model, &options, limits);
                checked.validity = checked.validity.combine(report.validity);
                checked.checks.push(report);
            }
            checked
        }
    };

    let name = args.path.file_stem().map_or_else(
        || "history".to_owned(),
        |n| n.to_string_lossy().into_owned(),
    );
    let file_name = args
        .path
        .file_name()
        .map_or_else(|| name.clone(), |n| n.to_string_lossy().into_owned());
    let mut results = Results::new(&name, file_name, 0, SystemTime::now(), "none");
    results.record_checks(checked, &events);
    results.timings = Timings {
        parse_ms,
        check_ms: Timings::ms(t_check.elapsed()),
        ..Timings::default()
    };

    let shown = match &args.out {
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
            write_timed(&RunDir::open(dir)?, &mut results, &events, t_parse)?;
            results.summary(dir)
        }
        None => {
            let dir = args.path.parent().unwrap_or(Path::new(""));
            let results_path = dir.join(format!("{name}.results.json"));
            let report_path = dir.join(format!("{name}.report.html"));
            let t_write = Instant::now();
            let write_results = |results: &Results| {
                std::fs::write(&results_path, results.to_json())
                    .with_context(|| format!("write {}", results_path.display()))
            };
            write_results(&results)?;
            std::fs::write(&report_path, render_report(&results, &events))
                .with_context(|| format!("write {}", report_path.display()))?;
            results.timings.write_ms = Timings::ms(t_write.elapsed());
            results.timings.total_ms = Timings::ms(t_parse.elapsed());
            write_results(&results)?;
            // The summary names a run folder and its report.html: point its
            // lines at the files written instead.
            results
                .summary(dir)
                .lines()
                .map(|line| {
                    if line.starts_with("run:") {
                        format!("history: {}", args.path.display())
                    } else if line.starts_with("report:") {
                        format!("report:  {}", report_path.display())
                    } else {
                        line.to_owned()
                    }
                })
                .chain(std::iter::once(format!(
                    "results: {}",
                    results_path.display()
                )))
                .collect::<Vec<_>>()
                .join("\n")
        }
    };
    Ok((results, shown))
}

/// Reads a history as JSON lines or EDN; an error names the file, the line and
/// the column.
fn read_events(path: &Path, edn: bool) -> anyhow::Result<Vec<Event>> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) => return Err(e).with_context(|| format!("open {}", path.display())),
    };
    let reader = std::io::BufReader::new(file);
    let history = if edn {
        leasehold_checker::read_edn_history(reader)
    } else {
        leasehold_checker::read_history(reader)
    };
    history
        .map(|h| h.events)
        .with_context(|| format!("{} is not a valid history", path.display()))
}

/// Writes results.json, report.html and junit.xml, then results.json again
/// with how long the writing and the whole check (from `start`) took.
fn write_timed(
    dir: &RunDir,
    results: &mut Results,
    events: &[Event],
    start: Instant,
) -> anyhow::Result<()> {
    let t_write = Instant::now();
    dir.write_results(results)?;
    dir.write_report(results, events)?;
    dir.write_junit(results)?;
    results.timings.write_ms = Timings::ms(t_write.elapsed());
    results.timings.total_ms = Timings::ms(start.elapsed());
    dir.write_results(results)?;
    Ok(())
}
