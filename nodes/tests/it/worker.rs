//! The worker loop against a real lock service and storage: what it records,
//! when it renews, and that it never writes without a lease.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use leasehold_checker::{Call, Event, EventType, History, Outcome, read_history};
use leasehold_nodes::{RenewTimeout, RunClock, WorkerConfig, run_worker};
use leasehold_workloads::ReferenceLockClient;
use tokio_util::sync::CancellationToken;

use crate::{lock_client, start_lock, start_storage};

/// A `Write` the test can read back.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Shared {
    fn events(&self) -> Vec<Event> {
        let bytes = self.0.lock().unwrap().clone();
        read_history(&bytes[..]).unwrap().events
    }
}

fn config(storage: String, think: Duration, clock: RunClock) -> WorkerConfig {
    WorkerConfig {
        name: "w1".into(),
        index: 0,
        workers: 3,
        lock: "L".into(),
        storage: vec![storage],
        keys: vec!["k0".into(), "k1".into()],
        lease: Duration::from_millis(400),
        think,
        timeout: Duration::from_secs(2),
        backoff: Duration::from_millis(20),
        seed: 1,
        clock,
        on_renew_timeout: RenewTimeout::Stop,
        incarnation: 0,
    }
}

async fn run_for(cfg: WorkerConfig, client: ReferenceLockClient, run: Duration) -> Vec<Event> {
    let out = Shared::default();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn({
        let out = out.clone();
        let shutdown = shutdown.clone();
        async move { run_worker(cfg, client, out, shutdown).await }
    });
    tokio::time::sleep(run).await;
    shutdown.cancel();
    task.await.unwrap().unwrap();
    out.events()
}

#[tokio::test]
async fn a_holder_past_half_its_lease_renews_and_writes_with_its_token() {
    let dir = tempfile::tempdir().unwrap();
    let clock = RunClock::starting_now();
    let lock = start_lock(&dir.path().join("lock")).await;
    let store = start_storage(&dir.path().join("store"), true, clock).await;
    // Hold 500 ms on a 400 ms lease: the worker must renew at least once per hold.
    let cfg = config(store.host_port(), Duration::from_millis(500), clock);
    let events = run_for(cfg, lock_client(&lock, "w1"), Duration::from_millis(1500)).await;
    let ops = History::new(events.clone()).ops();

    let renews: Vec<_> = ops
        .iter()
        .filter(|o| matches!(o.call, Call::Renew { .. }) && o.outcome == Outcome::Ok)
        .collect();
    assert!(!renews.is_empty(), "no renew in {events:#?}");
    let writes: Vec<_> = ops
        .iter()
        .filter(|o| matches!(o.call, Call::Write { .. }) && o.outcome == Outcome::Ok)
        .collect();
    assert!(!writes.is_empty(), "no write in {events:#?}");
    // Every write carries the token of the acquire just before it.
    let mut token = None;
    for op in &ops {
        match &op.call {
            Call::Acquire { token: t, .. } if op.is_ok() => token = *t,
            Call::Write { token: t, .. } => assert_eq!(Some(*t), token, "{op:?}"),
            _ => {}
        }
    }
    // Events are stamped on the run clock, in order, by process 0 on node w1.
    assert!(events.windows(2).all(|w| w[0].time <= w[1].time));
    assert!(events.iter().all(|e| e.node.as_deref() == Some("w1")));
    assert!(
        events
            .iter()
            .all(|e| e.process == leasehold_checker::Process::Client(0))
    );
    lock.stop().await;
    store.stop().await;
}

#[tokio::test]
async fn without_a_lock_service_the_worker_never_writes() {
    let dir = tempfile::tempdir().unwrap();
    let clock = RunClock::starting_now();
    let store = start_storage(&dir.path().join("store"), false, clock).await;
    // A port nobody listens on: every acquire fails.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let client = ReferenceLockClient::new(&dead.to_string(), "w1", Duration::from_secs(1)).unwrap();
    let cfg = config(store.host_port(), Duration::from_millis(10), clock);
    let events = run_for(cfg, client, Duration::from_millis(300)).await;
    assert!(
        events
            .iter()
            .any(|e| e.f == "acquire" && e.kind == EventType::Fail)
    );
    assert!(
        events.iter().all(|e| e.f == "acquire"),
        "only acquires: {events:#?}"
    );
    store.stop().await;
}
