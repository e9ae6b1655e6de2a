//! The pause mechanism: SIGSTOP/SIGCONT to every process of a node, and a check
//! that the kernel really stopped (or resumed) each of them.

use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

use crate::NemesisError;
use crate::node::NodeFacts;

/// The scheduler state of a process, from `/proc/<pid>/stat`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProcState {
    /// `T` (stopped by a signal) or `t` (stopped by a tracer).
    Stopped,
    /// Any other live state (running, sleeping, disk wait…).
    Live(char),
    /// A zombie (`Z`) or a process that no longer exists.
    Gone,
}

/// Reads the state of `pid`.
pub fn proc_state(pid: i32) -> ProcState {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return ProcState::Gone;
    };
    // The command name may hold spaces and parentheses: the state follows the
    // last ')'.
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next());
    match state {
        Some('T' | 't') => ProcState::Stopped,
        Some('Z' | 'X') | None => ProcState::Gone,
        Some(c) => ProcState::Live(c),
    }
}

/// Sends `signal` to every process of `node`: its process group when it has
/// one, and each known PID (a container's processes share no group).
pub fn signal_node(node: &NodeFacts, signal: Signal) -> Result<(), NemesisError> {
    let err = |pid: i32, source| NemesisError::Signal {
        node: node.name.clone(),
        pid,
        signal: signal.as_str(),
        source,
    };
    if let Some(pgid) = node.pgid {
        match killpg(Pid::from_raw(pgid), signal) {
            Ok(()) | Err(nix::Error::ESRCH) => {}
            Err(e) => return Err(err(pgid, e)),
        }
    }
    for &pid in &node.pids {
        match kill(Pid::from_raw(pid), signal) {
            // A process that exited has nothing left to pause.
            Ok(()) | Err(nix::Error::ESRCH) => {}
            Err(e) => return Err(err(pid, e)),
        }
    }
    Ok(())
}

/// How long a signal may take to show in `/proc` before it counts as failed.
pub const STATE_LIMIT: Duration = Duration::from_secs(2);

/// Sends `signal` to every process of each node, then, for SIGSTOP and
/// SIGCONT, waits until the kernel shows every live process of them stopped
/// (or running again), up to `limit`. All nodes are signalled before any is
/// waited for, so they stop together.
///
/// Blocks the calling thread while it waits: from async code, call it where
/// blocking is allowed (`spawn_blocking`).
///
/// ```no_run
/// use leasehold_nemesis::{NodeFacts, Role, STATE_LIMIT, deliver};
/// use nix::sys::signal::Signal;
///
/// let w1 = NodeFacts {
///     name: "w1".into(),
///     role: Role::Worker,
///     pids: vec![4242],
///     pgid: Some(4242),
///     netns: None,
///     addr: "10.77.0.21:0".into(),
/// };
/// deliver(std::slice::from_ref(&w1), Signal::SIGSTOP, STATE_LIMIT)?; // a GC pause
/// deliver(&[w1], Signal::SIGCONT, STATE_LIMIT)?;
/// # Ok::<(), leasehold_nemesis::NemesisError>(())
/// ```
pub fn deliver(nodes: &[NodeFacts], signal: Signal, limit: Duration) -> Result<(), NemesisError> {
    for node in nodes {
        signal_node(node, signal)?;
    }
    let want = match signal {
        Signal::SIGSTOP => true,
        Signal::SIGCONT => false,
        _ => return Ok(()),
    };
    for node in nodes {
        wait_for(node, want, limit)?;
    }
    Ok(())
}

/// Waits until every live process of `node` is stopped (`stopped = true`) or
/// running again, polling `/proc`: yielding for the first millisecond (a stop
/// usually lands in tens of microseconds, and that latency is what we measure),
/// then sleeping between polls so a slow target is not starved of a CPU by us.
pub(crate) fn wait_for(
    node: &NodeFacts,
    stopped: bool,
    limit: Duration,
) -> Result<(), NemesisError> {
    let start = Instant::now();
    for &pid in &node.pids {
        loop {
            let ok = match proc_state(pid) {
                ProcState::Gone => true,
                ProcState::Stopped => stopped,
                ProcState::Live(_) => !stopped,
            };
            if ok {
                break;
            }
            if start.elapsed() > limit {
                return Err(NemesisError::NotInState {
                    node: node.name.clone(),
                    pid,
                    want: if stopped { "T (stopped)" } else { "running" },
                    waited_ms: limit.as_millis() as u64,
                });
            }
            if start.elapsed() < Duration::from_millis(1) {
                std::thread::yield_now();
            } else {
                std::thread::sleep(Duration::from_micros(50));
            }
        }
    }
    Ok(())
}
