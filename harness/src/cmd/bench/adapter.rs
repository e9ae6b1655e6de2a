//! `bench cluster --lock`: acquire → renew → release through a lock system's
//! adapter, from the harness process, timed against the same requests sent
//! bare with the plain client library (the *raw* calls), so that the
//! difference of the medians is what the adapter itself costs.
//!
//! The raw calls are chosen by the protocol the system's servers speak (their
//! program), not by the system's name, so a system that lands later on the
//! same servers (Redlock on `redis-server`) is measured without a change here:
//!
//! | servers | raw acquire / renew / release |
//! |---|---|
//! | `redis-server` | the commands of the adapter's Lua scripts as one `MULTI`/`EXEC` pipeline each: `SET NX PX` + `INCR`, `GET` + `PEXPIRE`, `GET` + `DEL`, with the `redis` crate; on the first node for `redis`, on every node in sequence for any other system on `redis-server` |
//! | `etcd` | the gateway calls the adapter makes, each one bare `reqwest` POST to the first node: `lease/grant` + `lock/lock` + `kv/range`, `lease/keepalive`, `lock/unlock` + `lease/revoke` |
//! | `leasehold node lock` | `POST /v1/acquire`, `/v1/renew`, `/v1/release`, bare `reqwest` |
//!
//! Servers of any other kind have no raw equivalent, and the report says so
//! instead of giving a number.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use leasehold_workloads::protocol::{AcquireRequest, GrantReply, ReleaseRequest, RenewRequest};
use leasehold_workloads::system::postgres as postgres_system;
use leasehold_workloads::{Completion, LockClient, LockSystem};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use redis::aio::MultiplexedConnection;
use serde_json::{Value, json};

use super::pct;

/// The lease each acquire and renew asks for: long enough that no lease runs
/// out during a sequence, whole seconds for etcd.
const TTL: Duration = Duration::from_secs(5);

/// Bounds every request, adapter and raw alike.
const TIMEOUT: Duration = Duration::from_secs(2);

/// The lock the adapter takes; the raw calls use another, so that one never
/// waits for the other.
const ADAPTER_LOCK: &str = "bench-adapter";

/// The lock of the raw calls.
const RAW_LOCK: &str = "bench-raw";

/// The name the clients are known by.
const CLIENT: &str = "bench";

/// The three operations of a sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum OpKind {
    /// Take the lock.
    Acquire,
    /// Extend the lease.
    Renew,
    /// Give the lock up.
    Release,
}

impl OpKind {
    /// In the order of a sequence.
    pub(super) const ALL: [OpKind; 3] = [OpKind::Acquire, OpKind::Renew, OpKind::Release];

    fn name(self) -> &'static str {
        match self {
            OpKind::Acquire => "acquire",
            OpKind::Renew => "renew",
            OpKind::Release => "release",
        }
    }
}

/// One kind of operation through one client: the time of each success, and
/// how many failed or were not tried.
#[derive(Clone, Debug, Default, PartialEq)]
pub(super) struct OpSamples {
    /// Durations of the operations that succeeded (`ok`).
    pub ok: Vec<Duration>,
    /// CPU time the harness process spent during each of them, all threads:
    /// the client's own work, which the servers' latency does not blur.
    pub cpu: Vec<Duration>,
    /// Operations that ended `fail` or `info`: counted, never timed.
    pub failed: usize,
    /// Renews and releases not tried because their sequence's acquire failed.
    pub skipped: usize,
}

impl OpSamples {
    fn record(&mut self, (elapsed, cpu): (Duration, Duration), ok: bool) {
        if ok {
            self.ok.push(elapsed);
            self.cpu.push(cpu);
        } else {
            self.failed += 1;
        }
    }

    /// The median of the successes in microseconds; None without one.
    pub(super) fn median_us(&self) -> Option<f64> {
        (!self.ok.is_empty()).then(|| pct(&self.ok, 50.0))
    }

    /// The median CPU time of the successes in microseconds; None without one.
    pub(super) fn cpu_median_us(&self) -> Option<f64> {
        (!self.cpu.is_empty()).then(|| pct(&self.cpu, 50.0))
    }
}

/// Wall-clock and process CPU time since it was started.
struct Stopwatch {
    wall: Instant,
    cpu: Duration,
}

impl Stopwatch {
    fn start() -> Self {
        Stopwatch {
            cpu: process_cpu(),
            wall: Instant::now(),
        }
    }

    fn stop(self) -> (Duration, Duration) {
        let wall = self.wall.elapsed();
        (wall, process_cpu().saturating_sub(self.cpu))
    }
}

/// CPU time of the whole process (every thread) so far.
fn process_cpu() -> Duration {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_PROCESS_CPUTIME_ID)
        .map(|t| Duration::new(t.tv_sec() as u64, t.tv_nsec() as u32))
        .unwrap_or_default()
}

/// The samples of a client, per operation kind.
#[derive(Clone, Debug, Default, PartialEq)]
pub(super) struct Sequences {
    /// Acquires.
    pub acquire: OpSamples,
    /// Renews.
    pub renew: OpSamples,
    /// Releases.
    pub release: OpSamples,
}

impl Sequences {
    pub(super) fn of(&self, kind: OpKind) -> &OpSamples {
        match kind {
            OpKind::Acquire => &self.acquire,
            OpKind::Renew => &self.renew,
            OpKind::Release => &self.release,
        }
    }

    fn of_mut(&mut self, kind: OpKind) -> &mut OpSamples {
        match kind {
            OpKind::Acquire => &mut self.acquire,
            OpKind::Renew => &mut self.renew,
            OpKind::Release => &mut self.release,
        }
    }
}

/// What the raw calls were, or why there are none.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Raw {
    /// Measured: what was sent, and the samples.
    Measured {
        /// What a raw acquire, renew and release are, in one sentence.
        what: String,
        /// Their timings.
        samples: Sequences,
    },
    /// No raw equivalent: why.
    None(String),
    /// There is one, but its client could not be set up: why.
    Failed(String),
}

/// Everything the adapter bench found.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct AdapterReport {
    /// The system's name.
    pub system: String,
    /// The server's version as the first lock node reports it, or why not.
    pub version: Result<String, String>,
    /// How many lock nodes the adapter was given.
    pub nodes: usize,
    /// Sequences timed (after one untimed warm-up).
    pub ops: usize,
    /// Through the adapter.
    pub adapter: Sequences,
    /// Bare.
    pub raw: Raw,
}

/// The target of the adapter's overhead over the raw calls, median.
const OVERHEAD_TARGET_US: f64 = 100.0;

impl AdapterReport {
    /// The adapter's median minus the raw median of `kind`, in microseconds;
    /// None when either has no success to time or there is no raw call.
    pub(super) fn overhead_us(&self, kind: OpKind) -> Option<f64> {
        let Raw::Measured { samples, .. } = &self.raw else {
            return None;
        };
        Some(self.adapter.of(kind).median_us()? - samples.of(kind).median_us()?)
    }

    /// The adapter's median client CPU time minus the raw one's, in
    /// microseconds: the adapter's own work, told apart from the servers'
    /// latency and its spread.
    pub(super) fn cpu_overhead_us(&self, kind: OpKind) -> Option<f64> {
        let Raw::Measured { samples, .. } = &self.raw else {
            return None;
        };
        Some(self.adapter.of(kind).cpu_median_us()? - samples.of(kind).cpu_median_us()?)
    }

    /// A 95% bootstrap interval of [`AdapterReport::overhead_us`]: how far
    /// the difference of the medians moves when the samples are drawn again.
    /// When the operations take milliseconds and vary by as much (etcd's
    /// Raft writes), it says whether the figure can tell 100 us at all.
    pub(super) fn overhead_interval_us(&self, kind: OpKind) -> Option<(f64, f64)> {
        let Raw::Measured { samples, .. } = &self.raw else {
            return None;
        };
        median_difference_interval(&self.adapter.of(kind).ok, &samples.of(kind).ok)
    }

    /// The report as printed: a header, then per operation kind the
    /// adapter's line, the raw line and the overhead.
    pub(super) fn render(&self) -> String {
        let mut out = String::new();
        let version = match &self.version {
            Ok(v) => v.clone(),
            Err(e) => format!("(version unknown: {e})"),
        };
        let _ = writeln!(
            out,
            "lock adapter: {} {version}, {} lock node{}, {} sequences of acquire -> renew -> release \
             from the harness (after 1 untimed warm-up)",
            self.system,
            self.nodes,
            if self.nodes == 1 { "" } else { "s" },
            self.ops,
        );
        match &self.raw {
            Raw::Measured { what, .. } => {
                let _ = writeln!(out, "  raw: {what}");
            }
            Raw::None(why) => {
                let _ = writeln!(out, "  raw: none ({why})");
            }
            Raw::Failed(why) => {
                let _ = writeln!(out, "  raw: not measured ({why})");
            }
        }
        for kind in OpKind::ALL {
            let _ = writeln!(
                out,
                "  {:<9} adapter  {}",
                kind.name(),
                samples_line(self.adapter.of(kind))
            );
            match &self.raw {
                Raw::Measured { samples, .. } => {
                    let _ = writeln!(
                        out,
                        "  {:<9} raw      {}",
                        "",
                        samples_line(samples.of(kind))
                    );
                }
                Raw::None(_) => {
                    let _ = writeln!(out, "  {:<9} raw      no raw equivalent", "");
                }
                Raw::Failed(_) => {
                    let _ = writeln!(out, "  {:<9} raw      not measured", "");
                }
            }
            let overhead = match (self.overhead_us(kind), self.overhead_interval_us(kind)) {
                (Some(us), Some((lo, hi))) => format!(
                    "median {us:9.1} us   95% interval {lo:.1} .. {hi:.1} us   \
                     (target <= {OVERHEAD_TARGET_US:.0} us{})",
                    verdict(us, lo, hi)
                ),
                _ if matches!(self.raw, Raw::None(_)) => {
                    "not measured: no raw equivalent".to_owned()
                }
                _ if matches!(self.raw, Raw::Failed(_)) => {
                    "not measured: the raw client could not be set up".to_owned()
                }
                _ => "not measured: no successful operation to compare".to_owned(),
            };
            let _ = writeln!(out, "  {:<9} overhead {overhead}", "");
            if let Some(cpu) = self.cpu_overhead_us(kind) {
                let _ = writeln!(out, "  {:<9}          client CPU median {cpu:+.1} us", "");
            }
        }
        out
    }
}

/// What the overhead says about the target: met, missed, or not told apart
/// from it because the interval spans it.
fn verdict(us: f64, lo: f64, hi: f64) -> &'static str {
    if hi <= OVERHEAD_TARGET_US {
        ""
    } else if lo > OVERHEAD_TARGET_US {
        ": missed"
    } else if us <= OVERHEAD_TARGET_US {
        ": met by the median, the interval reaches past it"
    } else {
        ": missed by the median, the interval reaches below it"
    }
}

/// Resamples drawn for [`median_difference_interval`].
const RESAMPLES: usize = 1000;

/// The 2.5th and 97.5th percentiles, in microseconds, of the median of `a`
/// minus the median of `b` over [`RESAMPLES`] bootstrap resamples of each
/// (drawn from a fixed seed: the same samples give the same interval). None
/// when either is empty.
fn median_difference_interval(a: &[Duration], b: &[Duration]) -> Option<(f64, f64)> {
    if a.is_empty() || b.is_empty() {
        return None;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut resample = |from: &[Duration], into: &mut Vec<Duration>| {
        into.clear();
        into.extend((0..from.len()).map(|_| from[rng.random_range(0..from.len())]));
        pct(into, 50.0)
    };
    let (mut ra, mut rb) = (Vec::new(), Vec::new());
    let mut differences: Vec<f64> = (0..RESAMPLES)
        .map(|_| resample(a, &mut ra) - resample(b, &mut rb))
        .collect();
    differences.sort_by(f64::total_cmp);
    let at = |p: f64| differences[((p * RESAMPLES as f64) as usize).min(RESAMPLES - 1)];
    Some((at(0.025), at(0.975)))
}

/// `n=…  failed …  median … us  p99 … us`, or what was not timed.
fn samples_line(s: &OpSamples) -> String {
    let mut line = format!("n={:<5} failed {:<4}", s.ok.len(), s.failed);
    if s.skipped > 0 {
        let _ = write!(line, " skipped {:<4}", s.skipped);
    }
    if s.ok.is_empty() {
        line.push_str(" no successful operation to time");
    } else {
        let _ = write!(
            line,
            " median {:9.1} us   p99 {:9.1} us   client CPU median {:7.1} us",
            pct(&s.ok, 50.0),
            pct(&s.ok, 99.0),
            pct(&s.cpu, 50.0),
        );
    }
    line
}

/// Runs `ops` timed sequences (after one untimed warm-up) through `system`'s
/// adapter and as many of the raw calls, alternating one and the other so that
/// both see the servers in the same state.
pub(super) async fn bench_adapter(
    system: LockSystem,
    lock_addrs: &[SocketAddr],
    ops: usize,
) -> anyhow::Result<AdapterReport> {
    let addrs: Vec<String> = lock_addrs.iter().map(ToString::to_string).collect();
    let first = *lock_addrs
        .first()
        .ok_or_else(|| anyhow::anyhow!("the cluster has no lock node"))?;
    let version = system.server_version(first, TIMEOUT).await;
    let mut client = system
        .client(&addrs, CLIENT, TIMEOUT, TTL)
        .map_err(|e| anyhow::anyhow!("the {system} adapter: {e}"))?;
    let mut raw = RawClient::for_system(system, lock_addrs).await;
    let mut adapter = Sequences::default();
    let mut raw_samples = Sequences::default();
    let mut scratch = Sequences::default();
    for i in 0..=ops {
        // Sequence 0 warms connections up and is not kept.
        let timed = i > 0;
        let into = if timed { &mut adapter } else { &mut scratch };
        adapter_sequence(&mut client, into).await;
        if let Ok(raw) = raw.as_mut() {
            let into = if timed {
                &mut raw_samples
            } else {
                &mut scratch
            };
            raw.sequence(into).await;
        }
    }
    let raw = match raw {
        Ok(r) => Raw::Measured {
            what: r.describe(),
            samples: raw_samples,
        },
        Err(why) => why,
    };
    Ok(AdapterReport {
        system: system.name().to_owned(),
        version,
        nodes: lock_addrs.len(),
        ops,
        adapter,
        raw,
    })
}

/// One acquire → renew → release through the adapter.
async fn adapter_sequence(client: &mut impl LockClient, into: &mut Sequences) {
    let t = Stopwatch::start();
    let acquired = client.acquire(ADAPTER_LOCK, TTL).await;
    into.acquire.record(t.stop(), acquired.is_ok());
    let Completion::Ok(grant) = acquired else {
        into.renew.skipped += 1;
        into.release.skipped += 1;
        return;
    };
    let t = Stopwatch::start();
    let renewed = client.renew(ADAPTER_LOCK, grant.token, TTL).await;
    into.renew.record(t.stop(), renewed.is_ok());
    // Released even when the renew failed: the lock may still be held.
    let t = Stopwatch::start();
    let released = client.release(ADAPTER_LOCK, grant.token).await;
    into.release.record(t.stop(), released.is_ok());
}

/// A bare client of the protocol a system's servers speak.
enum RawClient {
    Redis(RawRedis),
    Etcd(RawEtcd),
    Reference(RawReference),
    Postgres(RawPostgres),
}

impl RawClient {
    /// The raw client for `system`'s servers, connected; why there is none
    /// otherwise.
    async fn for_system(system: LockSystem, lock_addrs: &[SocketAddr]) -> Result<Self, Raw> {
        match system {
            // The redis adapter talks to the first node only; a system of
            // several independent redis-servers (Redlock) to every one.
            LockSystem::Redis => RawRedis::connect(&lock_addrs[..1])
                .await
                .map(RawClient::Redis)
                .map_err(Raw::Failed),
            LockSystem::Redlock => RawRedis::connect(lock_addrs)
                .await
                .map(RawClient::Redis)
                .map_err(Raw::Failed),
            LockSystem::Etcd => RawEtcd::new(lock_addrs[0])
                .map(RawClient::Etcd)
                .map_err(Raw::Failed),
            LockSystem::Reference => RawReference::new(lock_addrs[0])
                .map(RawClient::Reference)
                .map_err(Raw::Failed),
            LockSystem::Postgres => RawPostgres::connect(lock_addrs[0])
                .await
                .map(RawClient::Postgres)
                .map_err(Raw::Failed),
            // Its adapter is one zookeeper-client call per request already:
            // there is no thinner client to compare it with.
            LockSystem::Zookeeper | LockSystem::Exec => Err(Raw::None(format!(
                "no raw client is known for the servers of {system}"
            ))),
        }
    }

    fn describe(&self) -> String {
        match self {
            RawClient::Redis(r) => format!(
                "the commands of the adapter's scripts as one MULTI/EXEC pipeline each with the \
                 redis crate (acquire: SET NX PX + INCR; renew: GET + PEXPIRE; release: GET + DEL), \
                 on {} in sequence",
                if r.nodes.len() == 1 {
                    "1 node".to_owned()
                } else {
                    format!("each of {} nodes", r.nodes.len())
                }
            ),
            RawClient::Etcd(_) => "the adapter's gateway calls, each one bare reqwest POST \
                 (acquire: lease/grant + lock/lock + kv/range; renew: lease/keepalive; \
                 release: lock/unlock + lease/revoke)"
                .to_owned(),
            RawClient::Reference(_) => {
                "POST /v1/acquire, /v1/renew, /v1/release, bare reqwest".to_owned()
            }
            RawClient::Postgres(_) => "the adapter's statements on one tokio-postgres \
                 connection, no timeouts (acquire: pg_try_advisory_lock + nextval; renew: \
                 SELECT 1; release: pg_advisory_unlock)"
                .to_owned(),
        }
    }

    /// One raw acquire → renew → release.
    async fn sequence(&mut self, into: &mut Sequences) {
        for kind in OpKind::ALL {
            if kind != OpKind::Acquire && !self.holds() {
                into.of_mut(kind).skipped += 1;
                continue;
            }
            let t = Stopwatch::start();
            let ok = match self {
                RawClient::Redis(r) => r.op(kind).await,
                RawClient::Etcd(r) => r.op(kind).await,
                RawClient::Reference(r) => r.op(kind).await,
                RawClient::Postgres(r) => r.op(kind).await,
            };
            into.of_mut(kind).record(t.stop(), ok);
        }
    }

    /// Whether the last raw acquire succeeded (and no release since).
    fn holds(&self) -> bool {
        match self {
            RawClient::Redis(r) => r.held,
            RawClient::Etcd(r) => r.held.is_some(),
            RawClient::Reference(r) => r.token.is_some(),
            RawClient::Postgres(r) => r.held,
        }
    }
}

/// Raw Redis: one multiplexed connection per node.
struct RawRedis {
    nodes: Vec<MultiplexedConnection>,
    key: String,
    fence: String,
    held: bool,
}

impl RawRedis {
    async fn connect(addrs: &[SocketAddr]) -> Result<Self, String> {
        let mut nodes = Vec::new();
        for addr in addrs {
            let client =
                redis::Client::open(format!("redis://{addr}/")).map_err(|e| e.to_string())?;
            let con = tokio::time::timeout(TIMEOUT, client.get_multiplexed_async_connection())
                .await
                .map_err(|_| format!("connecting to {addr}: timeout"))?
                .map_err(|e| format!("connecting to {addr}: {e}"))?;
            nodes.push(con);
        }
        Ok(RawRedis {
            nodes,
            key: format!("leasehold:lock:{RAW_LOCK}"),
            fence: format!("leasehold:fence:{RAW_LOCK}"),
            held: false,
        })
    }

    /// The operation on every node in turn; true when each one did it.
    async fn op(&mut self, kind: OpKind) -> bool {
        let ttl = TTL.as_millis() as u64;
        let mut pipe = redis::pipe();
        pipe.atomic();
        match kind {
            OpKind::Acquire => pipe
                .cmd("SET")
                .arg(&self.key)
                .arg(CLIENT)
                .arg("NX")
                .arg("PX")
                .arg(ttl)
                .cmd("INCR")
                .arg(&self.fence),
            OpKind::Renew => pipe
                .cmd("GET")
                .arg(&self.key)
                .cmd("PEXPIRE")
                .arg(&self.key)
                .arg(ttl),
            OpKind::Release => pipe.cmd("GET").arg(&self.key).cmd("DEL").arg(&self.key),
        };
        let mut all = true;
        for con in &mut self.nodes {
            let reply =
                tokio::time::timeout(TIMEOUT, pipe.query_async::<(redis::Value, i64)>(con)).await;
            let ok = match (kind, reply) {
                // SET NX answers nil when the key was there.
                (OpKind::Acquire, Ok(Ok((set, _)))) => set != redis::Value::Nil,
                (_, Ok(Ok((_, n)))) => n == 1,
                _ => false,
            };
            all &= ok;
        }
        self.held = match kind {
            OpKind::Acquire => all,
            OpKind::Renew => self.held,
            OpKind::Release => false,
        };
        all
    }
}

/// Raw etcd: bare POSTs to the JSON gateway of one member.
struct RawEtcd {
    http: reqwest::Client,
    grant: String,
    lock: String,
    range: String,
    keepalive: String,
    unlock: String,
    revoke: String,
    name: String,
    /// The lease and the lock key of the lock held.
    held: Option<(String, String)>,
}

impl RawEtcd {
    fn new(addr: SocketAddr) -> Result<Self, String> {
        let url = |path: &str| format!("http://{addr}/v3/{path}");
        Ok(RawEtcd {
            http: bare_http()?,
            grant: url("lease/grant"),
            lock: url("lock/lock"),
            range: url("kv/range"),
            keepalive: url("lease/keepalive"),
            unlock: url("lock/unlock"),
            revoke: url("lease/revoke"),
            name: BASE64.encode(RAW_LOCK),
            held: None,
        })
    }

    /// POSTs `body` and reads the (first) JSON message of a 200 reply.
    async fn post(&self, url: &str, body: &Value) -> Option<Value> {
        let response = self.http.post(url).json(body).send().await.ok()?;
        if !response.status().is_success() {
            return None;
        }
        let bytes = response.bytes().await.ok()?;
        // A keep-alive's reply is a stream of messages: the first is enough.
        serde_json::Deserializer::from_slice(&bytes)
            .into_iter::<Value>()
            .next()?
            .ok()
    }

    async fn op(&mut self, kind: OpKind) -> bool {
        match kind {
            OpKind::Acquire => {
                let Some(granted) = self
                    .post(&self.grant, &json!({ "TTL": TTL.as_secs() }))
                    .await
                else {
                    return false;
                };
                let Some(lease) = granted["ID"].as_str().map(str::to_owned) else {
                    return false;
                };
                let request = json!({ "name": self.name, "lease": lease });
                let Some(key) = self
                    .post(&self.lock, &request)
                    .await
                    .and_then(|l| l["key"].as_str().map(str::to_owned))
                else {
                    return false;
                };
                let found = self
                    .post(&self.range, &json!({ "key": key }))
                    .await
                    .is_some_and(|r| r["kvs"][0]["create_revision"].is_string());
                // Held whatever the read said: the release lets it go.
                self.held = Some((lease, key));
                found
            }
            OpKind::Renew => {
                let Some((lease, _)) = &self.held else {
                    return false;
                };
                self.post(&self.keepalive, &json!({ "ID": lease }))
                    .await
                    .and_then(|r| r["result"]["TTL"].as_str()?.parse::<i64>().ok())
                    .is_some_and(|ttl| ttl > 0)
            }
            OpKind::Release => {
                let Some((lease, key)) = self.held.take() else {
                    return false;
                };
                let unlocked = self.post(&self.unlock, &json!({ "key": key })).await;
                let revoked = self.post(&self.revoke, &json!({ "ID": lease })).await;
                unlocked.is_some() && revoked.is_some()
            }
        }
    }
}

/// Raw PostgreSQL: the adapter's statements on one connection of its own.
struct RawPostgres {
    pg: tokio_postgres::Client,
    key: i64,
    nextval: String,
    held: bool,
}

impl RawPostgres {
    async fn connect(addr: SocketAddr) -> Result<Self, String> {
        let pg = postgres_system::connect(addr, TIMEOUT).await?;
        // The adapter's first session creates it too, maybe at this moment.
        postgres_system::create_sequence(&pg).await?;
        let sequence = postgres_system::SEQUENCE;
        Ok(RawPostgres {
            pg,
            key: postgres_system::lock_key(RAW_LOCK),
            nextval: format!("SELECT nextval('{sequence}')"),
            held: false,
        })
    }

    async fn op(&mut self, kind: OpKind) -> bool {
        let key: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&self.key];
        match kind {
            OpKind::Acquire => {
                let got = self
                    .pg
                    .query_one("SELECT pg_try_advisory_lock($1)", &key)
                    .await
                    .is_ok_and(|r| r.get::<_, bool>(0));
                self.held = got && self.pg.query_one(&self.nextval, &[]).await.is_ok();
                self.held
            }
            OpKind::Renew => self.pg.simple_query("SELECT 1").await.is_ok(),
            OpKind::Release => {
                self.held = false;
                self.pg
                    .query_one("SELECT pg_advisory_unlock($1)", &key)
                    .await
                    .is_ok_and(|r| r.get::<_, bool>(0))
            }
        }
    }
}

/// Raw reference lock service: bare POSTs of its protocol.
struct RawReference {
    http: reqwest::Client,
    acquire: String,
    renew: String,
    release: String,
    token: Option<u64>,
}

impl RawReference {
    fn new(addr: SocketAddr) -> Result<Self, String> {
        let url = |path: &str| format!("http://{addr}/v1/{path}");
        Ok(RawReference {
            http: bare_http()?,
            acquire: url("acquire"),
            renew: url("renew"),
            release: url("release"),
            token: None,
        })
    }

    async fn op(&mut self, kind: OpKind) -> bool {
        let ttl_ms = TTL.as_millis() as u64;
        let (lock, client) = (RAW_LOCK.to_owned(), CLIENT.to_owned());
        let request = match (kind, self.token) {
            (OpKind::Acquire, _) => self.http.post(&self.acquire).json(&AcquireRequest {
                lock,
                client,
                ttl_ms,
            }),
            (OpKind::Renew, Some(token)) => self.http.post(&self.renew).json(&RenewRequest {
                lock,
                client,
                token,
                ttl_ms,
            }),
            (OpKind::Release, Some(token)) => {
                self.token = None;
                self.http.post(&self.release).json(&ReleaseRequest {
                    lock,
                    client,
                    token,
                })
            }
            (_, None) => return false,
        };
        let Ok(response) = request.send().await else {
            return false;
        };
        if !response.status().is_success() {
            return false;
        }
        match kind {
            OpKind::Acquire => {
                self.token = response.json::<GrantReply>().await.ok().map(|g| g.token);
                self.token.is_some()
            }
            _ => response.bytes().await.is_ok(),
        }
    }
}

/// An HTTP/1.1 client with keep-alive, no proxy and no retries: what the
/// adapters use, without anything on top.
fn bare_http() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .http1_only()
        .no_proxy()
        .retry(reqwest::retry::never())
        .timeout(TIMEOUT)
        .build()
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(us: &[u64], failed: usize) -> OpSamples {
        OpSamples {
            ok: us.iter().map(|&u| Duration::from_micros(u)).collect(),
            cpu: us.iter().map(|&u| Duration::from_micros(u / 10)).collect(),
            failed,
            skipped: 0,
        }
    }

    fn report(raw: Raw) -> AdapterReport {
        AdapterReport {
            system: "redis".into(),
            version: Ok("7.0.15".into()),
            nodes: 1,
            ops: 3,
            adapter: Sequences {
                acquire: samples(&[300, 100, 200], 0),
                renew: samples(&[90, 110], 1),
                release: samples(&[], 3),
            },
            raw,
        }
    }

    fn raw_measured() -> Raw {
        Raw::Measured {
            what: "MULTI/EXEC".into(),
            samples: Sequences {
                acquire: samples(&[150, 140, 160], 0),
                renew: samples(&[120, 100, 130], 0),
                release: samples(&[50, 60, 70], 0),
            },
        }
    }

    #[test]
    fn overhead_is_the_difference_of_the_medians() {
        let r = report(raw_measured());
        assert_eq!(r.overhead_us(OpKind::Acquire), Some(200.0 - 150.0));
        // Nearest rank: the median of [90, 110] is 90; the raw one is 120.
        assert_eq!(r.overhead_us(OpKind::Renew), Some(90.0 - 120.0));
        // No successful release through the adapter: nothing to compare.
        assert_eq!(r.overhead_us(OpKind::Release), None);
    }

    #[test]
    fn failures_are_counted_and_not_timed() {
        let mut s = OpSamples::default();
        s.record((Duration::from_micros(5), Duration::from_micros(1)), true);
        s.record((Duration::from_secs(2), Duration::from_micros(9)), false);
        assert_eq!(s.cpu, [Duration::from_micros(1)]);
        assert_eq!(s.ok, [Duration::from_micros(5)]);
        assert_eq!(s.failed, 1);
        assert_eq!(s.median_us(), Some(5.0));
        assert_eq!(OpSamples::default().median_us(), None);
    }

    #[test]
    fn the_report_names_each_figure_and_never_invents_one() {
        let text = report(raw_measured()).render();
        assert!(
            text.contains("redis 7.0.15, 1 lock node, 3 sequences"),
            "{text}"
        );
        assert!(
            text.contains(
                "acquire   adapter  n=3     failed 0    median     200.0 us   p99     300.0 us"
            ),
            "{text}"
        );
        assert!(
            text.contains("overhead median      50.0 us   95% interval "),
            "{text}"
        );
        assert!(text.contains("overhead median     -30.0 us"), "{text}");
        assert!(text.contains("client CPU median    20.0 us"), "{text}");
        // Acquire: 20 us through the adapter, 15 us raw.
        assert!(text.contains("client CPU median +5.0 us"), "{text}");
        assert!(
            text.contains("release   adapter  n=0     failed 3    no successful operation to time"),
            "{text}"
        );
        assert!(
            text.contains("overhead not measured: no successful operation to compare"),
            "{text}"
        );

        let text = report(Raw::None("no raw client is known".into())).render();
        assert!(
            text.contains("raw: none (no raw client is known)"),
            "{text}"
        );
        assert_eq!(
            text.matches("raw      no raw equivalent").count(),
            3,
            "{text}"
        );
        assert_eq!(
            text.matches("overhead not measured: no raw equivalent")
                .count(),
            3,
            "{text}"
        );
        assert!(!text.contains("us   (target"), "no overhead figure: {text}");

        let text = report(Raw::Failed("connecting to 10.77.0.11:6379: timeout".into())).render();
        assert!(
            text.contains("raw: not measured (connecting to 10.77.0.11:6379: timeout)"),
            "{text}"
        );
        assert_eq!(text.matches("raw      not measured").count(), 3, "{text}");
        assert!(!text.contains("no raw equivalent"), "{text}");
        assert!(!text.contains("us   (target"), "no overhead figure: {text}");
    }

    #[test]
    fn a_missed_target_says_so() {
        let mut r = report(raw_measured());
        r.adapter.acquire = samples(&[400, 400, 400], 0);
        r.raw = Raw::Measured {
            what: "x".into(),
            samples: Sequences {
                acquire: samples(&[150, 150, 150], 0),
                ..Sequences::default()
            },
        };
        let text = r.render();
        assert!(
            text.contains(
                "overhead median     250.0 us   95% interval 250.0 .. 250.0 us   \
                 (target <= 100 us: missed)"
            ),
            "{text}"
        );
    }

    #[test]
    fn the_interval_brackets_the_difference_and_widens_with_the_spread() {
        let us =
            |v: &[u64]| -> Vec<Duration> { v.iter().map(|&u| Duration::from_micros(u)).collect() };
        let tight_a = us(&[210; 50]);
        let tight_b = us(&[200; 50]);
        assert_eq!(
            median_difference_interval(&tight_a, &tight_b),
            Some((10.0, 10.0))
        );
        // The same medians, spread over milliseconds: the interval widens
        // around the same difference.
        let wide_a: Vec<Duration> = us(&(0..101).map(|i| 210 + i * 40).collect::<Vec<_>>());
        let wide_b: Vec<Duration> = us(&(0..101).map(|i| 200 + i * 40).collect::<Vec<_>>());
        let (lo, hi) = median_difference_interval(&wide_a, &wide_b).unwrap();
        assert!(lo < 10.0 && 10.0 < hi && hi - lo > 200.0, "{lo} .. {hi}");
        assert_eq!(median_difference_interval(&[], &tight_b), None);
    }

    #[test]
    fn the_verdict_weighs_the_interval() {
        assert_eq!(verdict(50.0, 40.0, 60.0), "");
        assert_eq!(verdict(150.0, 120.0, 180.0), ": missed");
        assert!(verdict(50.0, -200.0, 300.0).starts_with(": met by the median"));
        assert!(verdict(150.0, -200.0, 300.0).starts_with(": missed by the median"));
    }

    #[test]
    fn skipped_operations_are_shown() {
        let mut r = report(raw_measured());
        r.adapter.renew.skipped = 2;
        assert!(
            r.render().contains("failed 1    skipped 2"),
            "{}",
            r.render()
        );
    }
}
