//! Collects the events of every node and of the nemesis into `history.jsonl`,
//! merged by time and written as the run goes, so a crash leaves a usable prefix.
//!
//! Events are stamped where they happen and reach the controller through pipes
//! a little later, so the collector holds each one for a short window and writes
//! them in time order. An event that arrives later than the window (its process
//! was stopped between stamping and writing it) is written when it arrives: the
//! checker orders by time, not by index.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use leasehold_checker::Event;
use leasehold_nemesis::LiveState;
use leasehold_nodes::RunClock;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How long an event waits for earlier-stamped ones still in flight.
const REORDER_WINDOW: Duration = Duration::from_millis(50);

/// Counters the progress display reads.
#[derive(Debug, Default)]
pub struct Counters {
    pub events: AtomicU64,
    pub writes: AtomicU64,
}

pub struct Collector {
    tx: UnboundedSender<Event>,
    live: Arc<Mutex<LiveState>>,
    counters: Arc<Counters>,
    finish: CancellationToken,
    task: JoinHandle<anyhow::Result<Vec<Event>>>,
}

impl Collector {
    /// Starts writing `path`.
    pub fn start(path: &Path, clock: RunClock) -> anyhow::Result<Collector> {
        let file =
            std::fs::File::create(path).with_context(|| format!("create {}", path.display()))?;
        let (tx, rx) = unbounded_channel();
        let live = Arc::new(Mutex::new(LiveState::default()));
        let counters = Arc::new(Counters::default());
        let finish = CancellationToken::new();
        let task = tokio::spawn(collect(
            rx,
            std::io::BufWriter::new(file),
            clock,
            live.clone(),
            counters.clone(),
            finish.clone(),
        ));
        Ok(Collector {
            tx,
            live,
            counters,
            finish,
            task,
        })
    }

    pub fn sender(&self) -> UnboundedSender<Event> {
        self.tx.clone()
    }

    pub fn live(&self) -> Arc<Mutex<LiveState>> {
        self.live.clone()
    }

    pub fn counters(&self) -> Arc<Counters> {
        self.counters.clone()
    }

    /// Writes what is still buffered and returns the whole history in index
    /// order. Call it once every source has stopped.
    pub async fn finish(self) -> anyhow::Result<Vec<Event>> {
        self.finish.cancel();
        self.task.await.context("the history writer panicked")?
    }
}

async fn collect(
    mut rx: UnboundedReceiver<Event>,
    mut out: impl Write,
    clock: RunClock,
    live: Arc<Mutex<LiveState>>,
    counters: Arc<Counters>,
    finish: CancellationToken,
) -> anyhow::Result<Vec<Event>> {
    let mut pending: BTreeMap<(u64, u64), Event> = BTreeMap::new();
    let mut arrivals = 0u64;
    let mut written: Vec<Event> = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    let mut accept = |e: Event, pending: &mut BTreeMap<(u64, u64), Event>| {
        live.lock().expect("live state lock").observe(&e);
        counters.events.fetch_add(1, Ordering::Relaxed);
        if e.f == "write" && e.kind != leasehold_checker::EventType::Invoke {
            counters.writes.fetch_add(1, Ordering::Relaxed);
        }
        pending.insert((e.time, arrivals), e);
        arrivals += 1;
    };
    loop {
        tokio::select! {
            Some(e) = rx.recv() => accept(e, &mut pending),
            _ = tick.tick() => {
                let horizon = clock.now().saturating_sub(REORDER_WINDOW.as_nanos() as u64);
                flush(&mut pending, Some(horizon), &mut written, &mut out)?;
            }
            _ = finish.cancelled() => {
                while let Ok(e) = rx.try_recv() {
                    accept(e, &mut pending);
                }
                flush(&mut pending, None, &mut written, &mut out)?;
                return Ok(written);
            }
        }
    }
}

/// Writes the pending events stamped before `horizon` (all if `None`).
fn flush(
    pending: &mut BTreeMap<(u64, u64), Event>,
    horizon: Option<u64>,
    written: &mut Vec<Event>,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let keep = match horizon {
        Some(h) => pending.split_off(&(h, 0)),
        None => BTreeMap::new(),
    };
    let ready = std::mem::replace(pending, keep);
    if ready.is_empty() {
        return Ok(());
    }
    for (_, mut e) in ready {
        e.index = written.len() as u64;
        serde_json::to_writer(&mut *out, &e)?;
        out.write_all(b"\n")?;
        written.push(e);
    }
    out.flush().context("write history.jsonl")?;
    Ok(())
}
