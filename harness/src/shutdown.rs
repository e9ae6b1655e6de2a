//! How a run hears that it must end early: SIGINT, SIGTERM, SIGHUP or SIGQUIT.
//!
//! The first of them cancels the run, which then does what it does at its end:
//! resume every paused process, heal, stop the nodes, keep and check the
//! history, write the results, and exit 128 + the signal's number. A second
//! signal during that shutdown ends the controller at once, but only after
//! every process of the run has been sent SIGCONT: nothing is left stopped.
//! What it leaves (namespaces, containers) is removed by `leasehold cleanup`
//! and by the next run, because its controller is gone.

use std::io::Write;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, OnceLock};

use nix::sys::signal::Signal;
use tokio::signal::unix::{Signal as UnixSignal, SignalKind, signal};
use tokio_util::sync::CancellationToken;

/// The signals that end a run the way Ctrl-C does.
pub const SIGNALS: [Signal; 4] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
];

/// The shutdown state of one run, shared by the signal listener and the run.
#[derive(Clone, Debug, Default)]
pub struct Shutdown {
    cancel: CancellationToken,
    /// The first signal received, 0 while none.
    signal: Arc<AtomicI32>,
    /// The run's id once it has one: what a second signal resumes.
    run_id: Arc<OnceLock<String>>,
}

impl Shutdown {
    /// No signal received yet; nothing listens until [`Shutdown::listen`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Cancelled by the first signal.
    pub fn token(&self) -> CancellationToken {
        self.cancel.clone()
    }

    /// The signal that ended the run, if one did.
    pub fn signal(&self) -> Option<Signal> {
        Signal::try_from(self.signal.load(Ordering::SeqCst)).ok()
    }

    /// Names the run that a second signal must resume before exiting.
    pub fn set_run_id(&self, run_id: &str) {
        let _ = self.run_id.set(run_id.to_owned());
    }

    /// Installs the handlers (before this returns, so no signal falls into the
    /// default action that would kill the controller mid-fault) and spawns the
    /// task that answers them. Needs a tokio runtime.
    pub fn listen(&self) -> std::io::Result<()> {
        let [a, b, c, d] =
            SIGNALS.map(|s| signal(SignalKind::from_raw(s as i32)).map(|st| (s, st)));
        let mut streams = [a?, b?, c?, d?];
        let me = self.clone();
        tokio::spawn(async move {
            let first = next(&mut streams).await;
            me.signal.store(first as i32, Ordering::SeqCst);
            let _ = writeln!(
                std::io::stderr(),
                "{}: healing, stopping nodes and saving the history… (a second signal stops at once)",
                describe(first)
            );
            me.cancel.cancel();
            let second = next(&mut streams).await;
            let resumed = match me.run_id.get() {
                Some(id) => crate::cleanup::resume_run(id).await,
                None => 0,
            };
            let _ = writeln!(
                std::io::stderr(),
                "{}: stopping now; resumed {resumed} processes of the run; `leasehold cleanup` removes the rest",
                describe(second)
            );
            std::process::exit(128 + first as i32);
        });
        Ok(())
    }
}

/// The next of the signals to arrive.
async fn next(streams: &mut [(Signal, UnixSignal); 4]) -> Signal {
    let [a, b, c, d] = streams;
    tokio::select! {
        _ = a.1.recv() => a.0,
        _ = b.1.recv() => b.0,
        _ = c.1.recv() => c.0,
        _ = d.1.recv() => d.0,
    }
}

fn describe(s: Signal) -> &'static str {
    match s {
        Signal::SIGINT => "interrupted",
        Signal::SIGTERM => "terminated (SIGTERM)",
        Signal::SIGHUP => "hung up (SIGHUP)",
        Signal::SIGQUIT => "quit (SIGQUIT)",
        _ => "signalled",
    }
}
