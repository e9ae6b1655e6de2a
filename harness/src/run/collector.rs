//! Collects the events of every node and of the nemesis into `history.jsonl`,
//! merged by time and written as the run goes, so a crash leaves a usable prefix.
//!
//! Events are stamped where they happen and reach the controller through pipes
//! a little later, so the collector holds each one for a short window and writes
//! them in time order. An event that arrives later than the window (its process
//! was stopped between stamping and writing it) is written when it arrives: the
//! checker orders by time, not by index.
//!
//! A failed write does not end the collection: every event is still kept in
//! memory and handed to the checker, the file stops growing at the last whole
//! line before the failure, and [`Collected::error`] says so, so the run ends
//! with verdict unknown instead of losing what came after.

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
    task: JoinHandle<Collected>,
}

/// The history of a run, as the collector saw it.
#[derive(Debug)]
pub struct Collected {
    /// Every event, in index order, whether or not it reached the file.
    pub events: Vec<Event>,
    /// Why the file holds less than `events`: the first write that failed.
    pub error: Option<String>,
}

impl Collector {
    /// Starts writing `path`.
    pub fn start(path: &Path, clock: RunClock) -> anyhow::Result<Collector> {
        let file =
            std::fs::File::create(path).with_context(|| format!("create {}", path.display()))?;
        Ok(Self::start_writing(
            std::io::BufWriter::new(file),
            path.display().to_string(),
            clock,
        ))
    }

    /// Starts writing the history to `out`, named `name` in messages.
    pub fn start_writing(
        out: impl Write + Send + 'static,
        name: String,
        clock: RunClock,
    ) -> Collector {
        let (tx, rx) = unbounded_channel();
        let live = Arc::new(Mutex::new(LiveState::default()));
        let counters = Arc::new(Counters::default());
        let finish = CancellationToken::new();
        let task = tokio::spawn(collect(
            rx,
            Sink {
                out: Some(out),
                name,
                error: None,
            },
            clock,
            live.clone(),
            counters.clone(),
            finish.clone(),
        ));
        Collector {
            tx,
            live,
            counters,
            finish,
            task,
        }
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
    /// order, with the write error if the file is incomplete. Call it once
    /// every source has stopped.
    pub async fn finish(self) -> Collected {
        self.finish.cancel();
        self.task.await.unwrap_or_else(|e| Collected {
            events: Vec::new(),
            error: Some(format!("the history writer panicked: {e}")),
        })
    }
}

/// Where the history goes, until a write fails.
struct Sink<W> {
    /// `None` after a failed write: a line may be torn there, so nothing more
    /// is appended behind it.
    out: Option<W>,
    name: String,
    error: Option<String>,
}

impl<W: Write> Sink<W> {
    /// Appends `events` as lines; on the first failure stops writing for good
    /// and remembers why.
    fn write(&mut self, events: &[Event], first_index: usize) {
        let Some(out) = self.out.as_mut() else {
            return;
        };
        let written = (|| -> std::io::Result<()> {
            for e in events {
                serde_json::to_writer(&mut *out, e)?;
                out.write_all(b"\n")?;
            }
            out.flush()
        })();
        if let Err(e) = written {
            let why = format!(
                "writing {} failed at event {first_index} or later ({e}): the history on disk \
                 is incomplete; the checks ran on the whole history, kept in memory",
                self.name
            );
            tracing::error!("{why}");
            self.error = Some(why);
            self.out = None;
        }
    }
}

async fn collect<W: Write>(
    mut rx: UnboundedReceiver<Event>,
    mut out: Sink<W>,
    clock: RunClock,
    live: Arc<Mutex<LiveState>>,
    counters: Arc<Counters>,
    finish: CancellationToken,
) -> Collected {
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
                flush(&mut pending, Some(horizon), &mut written, &mut out);
            }
            _ = finish.cancelled() => {
                while let Ok(e) = rx.try_recv() {
                    accept(e, &mut pending);
                }
                flush(&mut pending, None, &mut written, &mut out);
                return Collected {
                    events: written,
                    error: out.error,
                };
            }
        }
    }
}

/// Numbers the pending events stamped before `horizon` (all if `None`),
/// keeps them in `written` and appends them to the sink.
fn flush<W: Write>(
    pending: &mut BTreeMap<(u64, u64), Event>,
    horizon: Option<u64>,
    written: &mut Vec<Event>,
    out: &mut Sink<W>,
) {
    let keep = match horizon {
        Some(h) => pending.split_off(&(h, 0)),
        None => BTreeMap::new(),
    };
    let ready = std::mem::replace(pending, keep);
    if ready.is_empty() {
        return;
    }
    let first = written.len();
    for (_, mut e) in ready {
        e.index = written.len() as u64;
        written.push(e);
    }
    out.write(&written[first..], first);
}

#[cfg(test)]
mod tests {
    use super::*;
    use leasehold_checker::{EventType, Process};

    /// A file system that fills up: takes `room` bytes, then fails every write.
    struct Filling {
        room: usize,
        kept: Arc<Mutex<Vec<u8>>>,
    }

    impl Write for Filling {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if self.room == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::StorageFull,
                    "no space left on device",
                ));
            }
            let n = buf.len().min(self.room);
            self.room -= n;
            self.kept.lock().unwrap().extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn event(clock: RunClock, i: u64) -> Event {
        Event {
            index: 0,
            time: clock.now(),
            process: Process::Client(i),
            node: Some("w1".into()),
            kind: EventType::Invoke,
            f: "write".into(),
            value: serde_json::json!({"key": "k", "token": i}),
            error: None,
        }
    }

    #[tokio::test]
    async fn a_failed_write_keeps_collecting_and_says_the_file_is_incomplete() {
        let clock = RunClock::starting_now();
        let kept = Arc::new(Mutex::new(Vec::new()));
        let sink = Filling {
            room: 300,
            kept: kept.clone(),
        };
        let collector = Collector::start_writing(sink, "history.jsonl".into(), clock);
        let tx = collector.sender();
        for i in 0..20 {
            tx.send(event(clock, i)).unwrap();
            // Spread over several flushes, so events arrive after the failure.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let collected = collector.finish().await;
        assert_eq!(collected.events.len(), 20, "every event is kept");
        let indexes: Vec<u64> = collected.events.iter().map(|e| e.index).collect();
        assert_eq!(indexes, (0..20).collect::<Vec<_>>());
        let error = collected.error.expect("the failure is reported");
        assert!(
            error.contains("history.jsonl") && error.contains("incomplete"),
            "{error}"
        );
        assert!(error.contains("no space left"), "{error}");
        // The file got what fitted and nothing after the failure.
        let kept = kept.lock().unwrap();
        assert!(!kept.is_empty() && kept.len() <= 300);
    }

    #[tokio::test]
    async fn a_history_that_fits_has_no_error() {
        let clock = RunClock::starting_now();
        let kept = Arc::new(Mutex::new(Vec::new()));
        let sink = Filling {
            room: usize::MAX,
            kept: kept.clone(),
        };
        let collector = Collector::start_writing(sink, "history.jsonl".into(), clock);
        for i in 0..5 {
            collector.sender().send(event(clock, i)).unwrap();
        }
        let collected = collector.finish().await;
        assert_eq!(collected.events.len(), 5);
        assert_eq!(collected.error, None);
        let text = String::from_utf8(kept.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 5);
    }
}
