//! The worker: a lock client that loops acquire → hold → write(token) → release
//! and reports every operation as history events on its output.
//!
//! The worker is deliberately the naive client of the classic bug: it checks its
//! lease (and renews) while it holds, but writes right after its hold without
//! looking at the clock again. A stop-the-world pause between that last check and
//! the write is exactly what turns it into a zombie writing with an old token.

use std::io::Write;
use std::time::Duration;

use leasehold_checker::{Event, EventType, Process};
use leasehold_workloads::{Completion, Grant, LockClient, StorageSystemClient};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::clock::RunClock;

/// Everything a worker needs to know.
#[derive(Clone, Debug)]
pub struct WorkerConfig {
    /// Node name, e.g. `w1`.
    pub name: String,
    /// 0-based index among the run's workers, below `workers`: its first
    /// process number (see [`process_number`]).
    pub index: u64,
    /// How many workers the run has.
    pub workers: u64,
    /// Lock name.
    pub lock: String,
    /// Reference storage addresses (`ip:port`) for [`run_worker`]; key i goes
    /// to storage i mod n. [`run_worker_with_storage`] ignores them.
    pub storage: Vec<String>,
    /// Keys this worker writes, in turn.
    pub keys: Vec<String>,
    /// The lease it asks for.
    pub lease: Duration,
    /// How long it holds the lock before writing.
    pub think: Duration,
    /// Request timeout; a timed-out request is `info`.
    pub timeout: Duration,
    /// Upper bound of the random wait after a busy lock and after a release.
    pub backoff: Duration,
    /// Seeds the worker's random waits.
    pub seed: u64,
    /// The run's clock, which stamps every event.
    pub clock: RunClock,
    /// What the worker makes of a renew that timed out.
    pub on_renew_timeout: RenewTimeout,
    /// How many times this worker has been restarted: process numbers of a
    /// restarted worker never collide with those of its earlier lives.
    pub incarnation: u64,
}

/// What a worker does when a renew ends `info` (timed out: it may or may not
/// have extended the lease).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RenewTimeout {
    /// Assume the lease is lost and stop using it: the careful client.
    #[default]
    Stop,
    /// Assume the renew went through and keep using the lease: a common client
    /// bug, and the partitioned twin of the GC pause (a holder cut off from the
    /// lock service keeps writing with its old token).
    Continue,
}

/// Writes events as JSON lines, one `write` per line so lines from a process
/// stopped mid-way are never torn.
pub struct EventSink<W: Write> {
    out: W,
    clock: RunClock,
    node: String,
}

impl<W: Write> EventSink<W> {
    pub fn new(out: W, clock: RunClock, node: &str) -> Self {
        EventSink {
            out,
            clock,
            node: node.to_owned(),
        }
    }

    /// Emits one event stamped now. The controller assigns the index.
    pub fn emit(
        &mut self,
        process: u64,
        kind: EventType,
        f: &str,
        value: Value,
        error: Option<&str>,
    ) {
        let event = Event {
            index: 0,
            time: self.clock.now(),
            process: Process::Client(process),
            node: Some(self.node.clone()),
            kind,
            f: f.to_owned(),
            value,
            error: error.map(str::to_owned),
        };
        let mut line = serde_json::to_vec(&event).expect("events serialize");
        line.push(b'\n');
        // The controller going away is not the worker's problem to report.
        let _ = self.out.write_all(&line);
        let _ = self.out.flush();
    }
}

/// The process number of worker `index` (of `workers`) in its
/// `incarnation`-th life, after `retirement` retirements in that life.
///
/// The number is `index + workers * k` with `k` the Cantor pairing of
/// (`incarnation`, `retirement`), `(i + r)(i + r + 1) / 2 + r`: a bijection
/// from pairs of naturals onto the naturals. Each worker owns the residue
/// class of its index modulo `workers`, and within it every (life,
/// retirement) pair has its own `k`, so for one run (one `workers`) two
/// distinct (`index`, `incarnation`, `retirement`) never get the same number,
/// however many retirements and restarts there are. `process % workers` is the
/// worker's index.
///
/// None if `index` is not below `workers` (the classes would overlap) or if
/// the number does not fit in a u64: a worker must stop rather than reuse one.
pub fn process_number(workers: u64, index: u64, incarnation: u64, retirement: u64) -> Option<u64> {
    if index >= workers {
        return None;
    }
    let diagonal = incarnation.checked_add(retirement)?;
    // n (n + 1) / 2 without overflowing on the way: halve the even factor.
    let (a, b) = if diagonal % 2 == 0 {
        (diagonal / 2, diagonal.checked_add(1)?)
    } else {
        (diagonal, diagonal / 2 + 1)
    };
    let k = a.checked_mul(b)?.checked_add(retirement)?;
    workers.checked_mul(k)?.checked_add(index)
}

/// A worker's process number, retired after an indeterminate operation.
#[derive(Debug)]
struct ProcessNo {
    workers: u64,
    index: u64,
    incarnation: u64,
    retirements: u64,
    current: u64,
}

impl ProcessNo {
    /// The first process of a life.
    fn first(cfg: &WorkerConfig) -> Result<Self, crate::NodeError> {
        let mut process = ProcessNo {
            workers: cfg.workers,
            index: cfg.index,
            incarnation: cfg.incarnation,
            retirements: 0,
            current: 0,
        };
        process.current = process.number()?;
        Ok(process)
    }

    fn number(&self) -> Result<u64, crate::NodeError> {
        process_number(self.workers, self.index, self.incarnation, self.retirements).ok_or(
            crate::NodeError::ProcessNumbers {
                index: self.index,
                workers: self.workers,
                incarnation: self.incarnation,
                retirements: self.retirements,
            },
        )
    }

    /// Moves on to the next process number.
    fn retire(&mut self) -> Result<(), crate::NodeError> {
        self.retirements += 1;
        self.current = self.number()?;
        Ok(())
    }
}

/// Runs the workload loop until `shutdown` is cancelled, writing to the
/// reference storage nodes at `cfg.storage`. An operation in flight when it is
/// cancelled completes and is recorded; a held lock is released.
pub async fn run_worker<C: LockClient, W: Write>(
    cfg: WorkerConfig,
    client: C,
    out: W,
    shutdown: CancellationToken,
) -> Result<(), crate::NodeError> {
    let storage = StorageSystemClient::reference(&cfg.storage, &cfg.name, cfg.timeout)?;
    run_worker_with_storage(cfg, client, storage, out, shutdown).await
}

/// [`run_worker`] writing through `storage`, a client of any storage system
/// (`cfg.storage` is not used).
pub async fn run_worker_with_storage<C: LockClient, W: Write>(
    cfg: WorkerConfig,
    mut client: C,
    mut storage: StorageSystemClient,
    out: W,
    shutdown: CancellationToken,
) -> Result<(), crate::NodeError> {
    let mut sink = EventSink::new(out, cfg.clock, &cfg.name);
    let mut rng =
        ChaCha8Rng::seed_from_u64(cfg.seed ^ cfg.index.wrapping_mul(0x2545_F491_4F6C_DD1D));
    let mut process = ProcessNo::first(&cfg)?;
    let ttl_ms = cfg.lease.as_millis() as u64;
    let mut seq = 0u64;
    let backoff = |rng: &mut ChaCha8Rng| {
        let max = cfg.backoff.as_millis().max(1) as u64;
        Duration::from_millis(rng.random_range(max / 2..=max))
    };

    while !shutdown.is_cancelled() {
        // Acquire.
        let ask = json!({"lock": cfg.lock, "ttl_ms": ttl_ms});
        sink.emit(
            process.current,
            EventType::Invoke,
            "acquire",
            ask.clone(),
            None,
        );
        let mut sent = Instant::now();
        let reply = client.acquire(&cfg.lock, cfg.lease).await;
        let Grant { token, lease_ms } = match reply {
            Completion::Ok(g) => {
                let v = json!({"lock": cfg.lock, "token": g.token, "lease_ms": g.lease_ms});
                sink.emit(process.current, EventType::Ok, "acquire", v, None);
                g
            }
            other => {
                complete(&mut sink, &mut process, "acquire", ask, &other)?;
                idle(&shutdown, backoff(&mut rng)).await;
                continue;
            }
        };
        tracing::debug!(token, lease_ms, "acquired");

        // Hold: renew whenever half the lease has gone by, check nothing after the
        // last sleep.
        let think_end = Instant::now() + cfg.think;
        let mut lease = Duration::from_millis(lease_ms);
        let mut holding = true;
        loop {
            let now = Instant::now();
            if now >= think_end {
                break;
            }
            let renew_at = sent + lease / 2;
            if now >= renew_at {
                let v = json!({"lock": cfg.lock, "token": token, "ttl_ms": ttl_ms});
                sink.emit(process.current, EventType::Invoke, "renew", v.clone(), None);
                sent = Instant::now();
                match client.renew(&cfg.lock, token, cfg.lease).await {
                    Completion::Ok(g) => {
                        lease = Duration::from_millis(g.lease_ms);
                        let v = json!({"lock": cfg.lock, "token": token, "lease_ms": g.lease_ms});
                        sink.emit(process.current, EventType::Ok, "renew", v, None);
                    }
                    other @ Completion::Info(_)
                        if cfg.on_renew_timeout == RenewTimeout::Continue =>
                    {
                        // The bug under test: take the silence for a yes.
                        complete(&mut sink, &mut process, "renew", v, &other)?;
                    }
                    other => {
                        complete(&mut sink, &mut process, "renew", v, &other)?;
                        holding = false;
                        break;
                    }
                }
                continue;
            }
            tokio::select! {
                _ = tokio::time::sleep_until(think_end.min(renew_at)) => {}
                _ = shutdown.cancelled() => break,
            }
        }
        if !holding {
            // The lease is gone (or unknown): a careful client stops here.
            idle(&shutdown, backoff(&mut rng)).await;
            continue;
        }

        // Write with the token, unless we are shutting down mid-hold.
        if !shutdown.is_cancelled() {
            let key_index = seq as usize % cfg.keys.len();
            let key = &cfg.keys[key_index];
            let data = format!("{}-{seq}", cfg.name);
            seq += 1;
            let v = json!({"key": key, "token": token, "data": data});
            sink.emit(process.current, EventType::Invoke, "write", v.clone(), None);
            let reply = storage.write(key_index, key, &data, token).await;
            complete(&mut sink, &mut process, "write", v, &reply.map(|_| ()))?;
        }

        // Release.
        let v = json!({"lock": cfg.lock, "token": token});
        sink.emit(
            process.current,
            EventType::Invoke,
            "release",
            v.clone(),
            None,
        );
        let reply = client.release(&cfg.lock, token).await;
        complete(&mut sink, &mut process, "release", v, &reply)?;
        idle(&shutdown, backoff(&mut rng)).await;
    }
    Ok(())
}

/// Records a completion whose value is the invocation's, retiring the process
/// after an indeterminate one.
fn complete<W: Write, T>(
    sink: &mut EventSink<W>,
    process: &mut ProcessNo,
    f: &str,
    value: Value,
    reply: &Completion<T>,
) -> Result<(), crate::NodeError> {
    let kind = match reply {
        Completion::Ok(_) => EventType::Ok,
        Completion::Fail(_) => EventType::Fail,
        Completion::Info(_) => EventType::Info,
    };
    sink.emit(process.current, kind, f, value, reply.error());
    if kind == EventType::Info {
        process.retire()?;
    }
    Ok(())
}

async fn idle(shutdown: &CancellationToken, d: Duration) {
    tokio::select! {
        _ = tokio::time::sleep(d) => {}
        _ = shutdown.cancelled() => {}
    }
}
