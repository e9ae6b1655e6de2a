//! A config run as a child `leasehold run`, one after another, as `leasehold
//! findings` and `leasehold test-all` run them: each child has a normal
//! run's signal handling, teardown and cleanup, and the parent reads what it
//! left, its `results.json`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use leasehold_results::Results;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// What became of one child run.
#[derive(Debug)]
pub enum ChildRun {
    /// It was checked (also an interrupted or timed-out run: its partial
    /// history was checked): its results, and its run folder when it made
    /// one.
    Ran(Box<Results>, Option<PathBuf>),
    /// It could not start, or failed before it was checked.
    NotRun {
        /// The error, on one line, without the config's location prefix.
        error: String,
    },
}

/// How long a child stopped at its time limit gets to heal, check and write
/// before it is killed (its nodes then die with it; `leasehold cleanup`
/// removes what they left).
pub const STOP_GRACE: Duration = Duration::from_secs(30);

/// Runs `config` with `seed` into `store` (absolute: a PostgreSQL node does
/// not start from a relative data folder), stopping it with SIGTERM after
/// `time_limit` (then it ends as an interrupted run, exit 143), and reads
/// the run folder `<store>/latest` points at afterwards; also whether it was
/// stopped at its time limit.
pub fn run_child(
    exe: &Path,
    store: &Path,
    config: &Path,
    seed: u64,
    time_limit: Option<Duration>,
) -> anyhow::Result<(ChildRun, bool)> {
    // The run's folder is where <store>/latest points once the run has made
    // one: a link that did not change means it made none.
    let latest = store.join("latest");
    let before = std::fs::read_link(&latest).ok();
    let stderr = tempfile::tempfile().context("a file for the run's stderr")?;
    let mut child = Command::new(exe)
        .args([
            "run",
            "--no-progress",
            "--seed",
            &seed.to_string(),
            "--store",
        ])
        .arg(store)
        .arg(config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr.try_clone()?)
        .spawn()
        .with_context(|| format!("start {}", exe.display()))?;
    let pid = Pid::from_raw(child.id() as i32);
    let started = Instant::now();
    let mut stopped_at = None;
    let status = loop {
        if let Some(status) = child.try_wait().context("wait for the run")? {
            break status;
        }
        match (time_limit, stopped_at) {
            (Some(limit), None) if started.elapsed() > limit => {
                let _ = kill(pid, Signal::SIGTERM);
                stopped_at = Some(Instant::now());
            }
            (_, Some(at)) if Instant::now().duration_since(at) > STOP_GRACE => {
                let _ = child.kill();
            }
            _ => {}
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let code = status.code();
    let stderr_text = {
        use std::io::{Read as _, Seek as _};
        let mut f = stderr;
        let mut s = String::new();
        let _ = f.rewind();
        let _ = f.read_to_string(&mut s);
        s
    };
    let timed_out = stopped_at.is_some();
    let here = |e: String| without_location(&e, &config.display().to_string());
    let after = std::fs::read_link(&latest).ok();
    let results_path = latest.join("results.json");
    let made = after.is_some() && after != before && results_path.exists();
    let results = made.then(|| Results::read(&results_path));
    let dir = made.then(|| std::fs::canonicalize(&latest).ok()).flatten();
    let run = match (code, results) {
        (Some(0..=2), Some(Ok(r))) => ChildRun::Ran(Box::new(r), dir),
        (_, Some(Ok(r))) if r.interrupted => ChildRun::Ran(Box::new(r), dir),
        (_, Some(Ok(r))) if r.error.is_some() => ChildRun::NotRun {
            error: here(one_line(r.error.as_deref().unwrap_or_default())),
        },
        (Some(c), _) if c > 128 => ChildRun::Ran(Box::new(interrupted(c)), None),
        (None, _) if timed_out => ChildRun::NotRun {
            error: format!(
                "killed {} s after its time limit, before it wrote its results",
                STOP_GRACE.as_secs()
            ),
        },
        (None, _) => bail!("{}: the run was killed by a signal", config.display()),
        (_, Some(Err(e))) => ChildRun::NotRun {
            error: format!("{}: {e}", results_path.display()),
        },
        _ => {
            let error = error_of_stderr(&stderr_text)
                .unwrap_or_else(|| format!("exit code {code:?} and no results.json"));
            ChildRun::NotRun { error: here(error) }
        }
    };
    Ok((run, timed_out))
}

/// The results of a run that exited with 128 + n before it wrote any.
fn interrupted(code: i32) -> Results {
    let mut r = Results::new("", "", 0, std::time::SystemTime::now(), "local");
    r.interrupted = true;
    r.signal = u8::try_from(code - 128).ok();
    r
}

/// The longest error shown on one line, in characters; a longer one is cut.
pub const MAX_ERROR: usize = 160;

/// The first line of an error, without a leading `error: `, cut after
/// [`MAX_ERROR`] characters.
pub fn one_line(error: &str) -> String {
    let line = error
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("no error message");
    let line = line.strip_prefix("error: ").unwrap_or(line);
    match line.char_indices().nth(MAX_ERROR) {
        Some((at, _)) => format!("{}…", line[..at].trim_end()),
        None => line.to_owned(),
    }
}

/// The error a `leasehold` that failed printed on stderr, on one line: its
/// `error: ` line and the `caused by: ` lines under it, joined by `: `.
pub fn error_of_stderr(stderr: &str) -> Option<String> {
    let mut lines = stderr.lines().skip_while(|l| !l.starts_with("error: "));
    let mut error = lines
        .next()?
        .trim_start_matches("error: ")
        .trim()
        .to_owned();
    for cause in lines.map_while(|l| l.trim().strip_prefix("caused by: ")) {
        error.push_str(": ");
        error.push_str(cause.trim());
    }
    Some(error)
}

/// `error` without a leading `<config>:<line>:<column>: ` (what shows it
/// names the config already).
pub fn without_location(error: &str, config: &str) -> String {
    let Some(rest) = error.strip_prefix(config).and_then(|r| r.strip_prefix(':')) else {
        return error.to_owned();
    };
    let mut parts = rest.splitn(3, ':');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(l), Some(c), Some(tail))
            if l.chars().all(|ch| ch.is_ascii_digit())
                && c.chars().all(|ch| ch.is_ascii_digit()) =>
        {
            tail.trim_start().to_owned()
        }
        _ => rest.trim_start().to_owned(),
    }
}
