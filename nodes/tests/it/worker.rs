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

/// A lock service that never answers: every acquire times out (`info`), and
/// after `limit` of them it stops the worker.
struct Silent {
    acquires: u64,
    limit: u64,
    shutdown: CancellationToken,
}

impl leasehold_workloads::LockClient for Silent {
    fn service(&self) -> &'static str {
        "silent"
    }

    async fn acquire(
        &mut self,
        _lock: &str,
        _ttl: Duration,
    ) -> leasehold_workloads::Completion<leasehold_workloads::Grant> {
        self.acquires += 1;
        if self.acquires == self.limit {
            self.shutdown.cancel();
        }
        leasehold_workloads::Completion::Info("timeout".into())
    }

    async fn renew(
        &mut self,
        _lock: &str,
        _token: u64,
        _ttl: Duration,
    ) -> leasehold_workloads::Completion<leasehold_workloads::Grant> {
        unreachable!("never granted, never renewed")
    }

    async fn release(&mut self, _lock: &str, _token: u64) -> leasehold_workloads::Completion<()> {
        unreachable!("never granted, never released")
    }
}

/// The process numbers of every event of one worker life that retires
/// `retirements` processes.
async fn processes_of_life(index: u64, incarnation: u64, retirements: u64) -> Vec<u64> {
    let clock = RunClock::starting_now();
    let mut cfg = config("127.0.0.1:9".into(), Duration::ZERO, clock);
    cfg.index = index;
    cfg.incarnation = incarnation;
    cfg.backoff = Duration::ZERO;
    let shutdown = CancellationToken::new();
    let client = Silent {
        acquires: 0,
        limit: retirements,
        shutdown: shutdown.clone(),
    };
    let out = Shared::default();
    run_worker(cfg, client, out.clone(), shutdown)
        .await
        .unwrap();
    out.events()
        .iter()
        .map(|e| match e.process {
            leasehold_checker::Process::Client(p) => p,
            ref other => panic!("a worker event of {other:?}"),
        })
        .collect()
}

#[tokio::test]
async fn lives_retiring_more_than_a_thousand_processes_never_share_a_number() {
    // w1 and w2 of three workers, and w1 restarted, each past 1,000 retirements.
    let lives = [(0, 0), (1, 0), (0, 1)];
    let mut seen = std::collections::BTreeMap::new();
    for (index, incarnation) in lives {
        let processes = processes_of_life(index, incarnation, 1_200).await;
        // An invoke and an info per acquire, each acquire under a new number.
        assert_eq!(processes.len(), 2 * 1_200);
        for pair in processes.chunks(2) {
            assert_eq!(pair[0], pair[1], "invoke and completion share a process");
            if let Some(owner) = seen.insert(pair[0], (index, incarnation)) {
                panic!(
                    "process {} of w{} life {incarnation} was already used by {owner:?}",
                    pair[0],
                    index + 1
                );
            }
        }
    }
    assert_eq!(seen.len(), 3 * 1_200);
}

/// The (index, incarnation, retirement) a process number stands for: the
/// inverse of the Cantor pairing, worked out independently of the worker.
fn decode(workers: u64, process: u64) -> (u64, u64, u64) {
    let (index, k) = (process % workers, u128::from(process / workers));
    let diagonal = ((8 * k + 1).isqrt() - 1) / 2;
    let retirement = k - diagonal * (diagonal + 1) / 2;
    let incarnation = diagonal - retirement;
    (index, incarnation as u64, retirement as u64)
}

#[test]
fn process_numbers_start_at_the_index_and_refuse_what_would_collide() {
    use leasehold_nodes::process_number;
    for index in 0..3 {
        assert_eq!(process_number(3, index, 0, 0), Some(index));
    }
    // Past a thousand retirements, still not the next life's numbers.
    let first_life: Vec<_> = (0..5_000)
        .map(|r| process_number(3, 0, 0, r).unwrap())
        .collect();
    let second_life: Vec<_> = (0..5_000)
        .map(|r| process_number(3, 0, 1, r).unwrap())
        .collect();
    assert!(first_life.iter().all(|p| !second_life.contains(p)));
    // Out of its residue class, or out of u64: no number rather than a shared one.
    assert_eq!(process_number(3, 3, 0, 0), None);
    assert_eq!(process_number(0, 0, 0, 0), None);
    assert_eq!(process_number(3, 0, 0, u64::MAX), None);
    assert_eq!(process_number(3, 0, u64::MAX, 1), None);
    assert_eq!(process_number(u64::MAX, 1, 0, 1), None);
    // The largest diagonal that fits still decodes.
    let n = process_number(1, 0, 0, 6_074_000_000).unwrap();
    assert_eq!(decode(1, n), (0, 0, 6_074_000_000));
}

proptest::proptest! {
    #[test]
    fn distinct_lives_and_retirements_never_share_a_process_number(
        workers in 1u64..=4,
        // Small ranges and many tuples per case, so that a scheme that does
        // collide (say, a fixed room per life) is caught.
        tuples in proptest::collection::vec((0u64..4, 0u64..4, 0u64..2_500), 64),
    ) {
        let mut owner = std::collections::HashMap::new();
        for (index, incarnation, retirement) in tuples {
            let tuple = (index % workers, incarnation, retirement);
            let n = leasehold_nodes::process_number(workers, tuple.0, incarnation, retirement)
                .unwrap();
            if let Some(other) = owner.insert(n, tuple) {
                proptest::prop_assert_eq!(other, tuple, "both got {}", n);
            }
        }
    }

    #[test]
    fn every_process_number_names_its_worker_life_and_retirement(
        workers in 1u64..=1_000,
        index in 0u64..1_000,
        incarnation in 0u64..1 << 20,
        retirement in 0u64..1 << 32,
    ) {
        let index = index % workers;
        let n = leasehold_nodes::process_number(workers, index, incarnation, retirement);
        // No number exactly when the pairing leaves u64.
        let diagonal = u128::from(incarnation + retirement);
        let wide = u128::from(workers) * (diagonal * (diagonal + 1) / 2 + u128::from(retirement))
            + u128::from(index);
        proptest::prop_assert_eq!(n.is_none(), wide > u128::from(u64::MAX));
        if let Some(n) = n {
            proptest::prop_assert_eq!(decode(workers, n), (index, incarnation, retirement));
        }
    }
}
