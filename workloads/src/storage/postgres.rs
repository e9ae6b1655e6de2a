//! `storage: { service: postgres }`: the data lives in a PostgreSQL 15
//! table, and a fenced write is the conditional upsert people put in front of
//! a database when they read "use a fencing token" (the `UPDATE … WHERE key =
//! $3 AND token < $2` pattern, inserting when the key is absent), written over
//! `tokio-postgres`.
//!
//! # The tables
//!
//! ```sql
//! CREATE TABLE leasehold_data (key text PRIMARY KEY, data text NOT NULL,
//!                              token bigint NOT NULL, writer text NOT NULL);
//! CREATE TABLE leasehold_ledger (seq bigserial PRIMARY KEY,
//!                                at timestamptz NOT NULL DEFAULT clock_timestamp(),
//!                                key text, token bigint, data text, writer text,
//!                                decision text, high_water bigint);
//! ```
//!
//! The client creates both (`CREATE TABLE IF NOT EXISTS`) on each new
//! connection; when several workers create them at once PostgreSQL can still
//! raise `unique_violation`, `duplicate_table` or `duplicate_object` for the
//! loser, which the client takes as "it exists".
//!
//! # The write
//!
//! One `READ COMMITTED` transaction, its four statements sent together
//! (pipelined, one round trip; prepared once per connection):
//!
//! ```sql
//! BEGIN ISOLATION LEVEL READ COMMITTED;
//! INSERT INTO leasehold_data (key, data, token, writer) VALUES ($1, $2, $3, $4)
//!   ON CONFLICT (key) DO UPDATE
//!   SET data = EXCLUDED.data, token = EXCLUDED.token, writer = EXCLUDED.writer
//!   WHERE leasehold_data.token <= EXCLUDED.token
//!   RETURNING token;
//! INSERT INTO leasehold_ledger (key, token, data, writer, decision, high_water)
//!   SELECT $1, $3, $2, $4, CASE WHEN d.token = $3 THEN 'accepted' ELSE 'rejected' END, d.token
//!   FROM leasehold_data d WHERE d.key = $1
//!   RETURNING decision, high_water;
//! COMMIT;
//! ```
//!
//! **Equal tokens are accepted** (`<=`, not the `<` of the pattern as usually
//! quoted): exactly the reference storage's rule (docs/protocol.md, "Fencing
//! rule": accepted iff `token >= high_water`, an equal token being the same
//! holder writing again). A write is therefore refused only by a strictly
//! larger token, and the key's stored token is its high water: the largest
//! token it accepted.
//!
//! **Unfenced** (`storage.fencing: false`): the same upsert without its
//! `WHERE`, so every write lands (a smaller token overwrites a newer value:
//! the corruption the stale-write check catches), ledgered `accepted` with the
//! reference's unfenced mark, `GREATEST(token, max(high_water))` over the
//! key's earlier ledger rows, rather than the token now stored.
//!
//! # The ledger, in the same transaction
//!
//! Every decision is a ledger row, committed with the write or not at all, so
//! the ledger is exactly what storage did, including writes whose reply never
//! reached the client. `ON CONFLICT DO UPDATE` locks the key's row whether or
//! not its `WHERE` holds (an insert of an absent key holds its new row), until
//! commit: the writers of one key are serialised from the upsert on. The
//! ledger `INSERT … SELECT` is a new statement, so under `READ COMMITTED` it
//! reads a fresh snapshot, which holds every earlier writer of the key (each
//! committed before releasing the lock) and our own upsert: the stored token
//! it reads is the key's high water right after this decision, and no
//! `SELECT … FOR UPDATE` is needed (the row is already locked). Stored token
//! `= $3` means the write was taken (if taken, the row is ours; if refused,
//! the stored token is larger). `SERIALIZABLE` would add nothing but
//! serialization failures between writers of one key.
//!
//! `seq` comes from the ledger insert, made under the key's lock, so per key
//! the ledger's `seq` order is decision and commit order, and `at`
//! (`clock_timestamp()`, the server's clock: the nodes share the host's
//! kernel clock) grows with it. Writes to different keys commit
//! independently; between keys `seq` order can differ from commit order by
//! the few microseconds between a ledger insert and its commit.
//!
//! # Reads
//!
//! `SELECT data, token, writer FROM leasehold_data WHERE key = $1`: the last
//! accepted write, `Ok(None)` for a key never written.
//!
//! # Outcomes and faults
//!
//! Each op is bounded by the timeout, from connect to reply; the connection is
//! opened lazily, reopened after one broke, and no op is retried.
//!
//! - Cannot connect (or create the tables, or prepare): `Fail`, nothing sent.
//! - Committed: `Ok` with the key's high water, or `Fail("rejected: high water
//!   N …")`.
//! - A server error on the upsert or the ledger insert: the transaction is
//!   aborted and its `COMMIT` rolls it back: `Fail`.
//! - A timeout, a connection broken after the pipeline was sent, or an error
//!   on `COMMIT`: `Info`, and the connection is dropped (the server rolls back
//!   a transaction it never received `COMMIT` for; one it did commit stays).
//! - **A pause of the PostgreSQL node**: writes time out, `Info`; they may
//!   commit when it resumes, and then they are in the ledger.
//! - **A pause of a writer** between its upsert and its `COMMIT` (the
//!   pipeline leaves the client in one go, so it is rare) keeps the key's row
//!   locked: the key's other writers wait, and time out (`Info`), until it
//!   resumes.
//! - **A kill of the PostgreSQL node**: leasehold's test clusters run with
//!   `fsync=off`, which skips the flushes but not the writes: a committed
//!   transaction's WAL has reached the kernel's page cache, which outlives the
//!   process, so crash recovery at restart keeps every accepted write (only a
//!   crash of the host itself could lose some, and the ledger rows with them).

use std::future::Future;
use std::net::SocketAddr;
use std::pin::pin;
use std::task::Poll;
use std::time::{Duration, SystemTime};

use leasehold_checker::{Decision, LedgerEntry};
use tokio::time::Instant;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Row, Statement};

use crate::ClientError;
use crate::completion::Completion;
use crate::storage::Written;
use crate::storage_client::StoredValue;
use crate::system::postgres::{connect, create_if_absent, error_text};

/// The table of the data.
pub const DATA_TABLE: &str = "leasehold_data";

/// The table of the decisions.
pub const LEDGER_TABLE: &str = "leasehold_ledger";

const CREATE_DATA: &str = "CREATE TABLE IF NOT EXISTS leasehold_data (key text PRIMARY KEY, \
     data text NOT NULL, token bigint NOT NULL, writer text NOT NULL)";

const CREATE_LEDGER: &str = "CREATE TABLE IF NOT EXISTS leasehold_ledger (\
     seq bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp(), \
     key text, token bigint, data text, writer text, decision text, high_water bigint)";

const BEGIN: &str = "BEGIN ISOLATION LEVEL READ COMMITTED";

const COMMIT: &str = "COMMIT";

/// The fenced upsert: `$1` key, `$2` data, `$3` token, `$4` writer.
const UPSERT_FENCED: &str = "INSERT INTO leasehold_data (key, data, token, writer) \
     VALUES ($1::text, $2::text, $3::bigint, $4::text) \
     ON CONFLICT (key) DO UPDATE \
     SET data = EXCLUDED.data, token = EXCLUDED.token, writer = EXCLUDED.writer \
     WHERE leasehold_data.token <= EXCLUDED.token \
     RETURNING token";

/// The unfenced upsert: the same without its `WHERE`.
const UPSERT_UNFENCED: &str = "INSERT INTO leasehold_data (key, data, token, writer) \
     VALUES ($1::text, $2::text, $3::bigint, $4::text) \
     ON CONFLICT (key) DO UPDATE \
     SET data = EXCLUDED.data, token = EXCLUDED.token, writer = EXCLUDED.writer \
     RETURNING token";

/// The fenced write's ledger row: decided by the stored token after the
/// upsert (same parameters).
const LEDGER_FENCED: &str = "INSERT INTO leasehold_ledger \
     (key, token, data, writer, decision, high_water) \
     SELECT $1::text, $3::bigint, $2::text, $4::text, \
     CASE WHEN d.token = $3::bigint THEN 'accepted' ELSE 'rejected' END, d.token \
     FROM leasehold_data d WHERE d.key = $1::text \
     RETURNING decision, high_water";

/// The unfenced write's ledger row: accepted, with the reference's unfenced
/// mark (the largest token the key has seen).
const LEDGER_UNFENCED: &str = "INSERT INTO leasehold_ledger \
     (key, token, data, writer, decision, high_water) \
     SELECT $1::text, $3::bigint, $2::text, $4::text, 'accepted', \
     GREATEST($3::bigint, (SELECT max(l.high_water) FROM leasehold_ledger l \
     WHERE l.key = $1::text)) \
     RETURNING decision, high_water";

const READ: &str = "SELECT data, token, writer FROM leasehold_data WHERE key = $1::text";

const READ_LEDGER: &str = "SELECT (extract(epoch FROM at) * 1000000)::bigint, key, token, \
     data, writer, decision, high_water FROM leasehold_ledger ORDER BY seq";

/// How long reading the whole ledger may take at least: it is read once,
/// after the run, and may be long.
const LEDGER_TIMEOUT: Duration = Duration::from_secs(30);

/// An open connection and its prepared statements.
struct Conn {
    pg: Client,
    begin: Statement,
    upsert: Statement,
    ledger: Statement,
    commit: Statement,
    read: Statement,
}

/// A storage client writing to one PostgreSQL server, fenced by the
/// conditional upsert (see the module documentation).
pub struct PostgresStorageClient {
    addr: SocketAddr,
    /// The writing node, stored with the data and in the ledger.
    from: String,
    /// Upsert only over a token not larger; false: unconditionally.
    fencing: bool,
    timeout: Duration,
    conn: Option<Conn>,
}

impl std::fmt::Debug for PostgresStorageClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStorageClient")
            .field("addr", &self.addr)
            .field("from", &self.from)
            .field("fencing", &self.fencing)
            .field("timeout", &self.timeout)
            .field("connected", &self.conn.is_some())
            .finish()
    }
}

impl PostgresStorageClient {
    /// `addr` is `host:port` of the server (an IP address); `from` names the
    /// writer; `fencing` false writes unconditionally; `timeout` bounds each
    /// op from connect to reply. Connects on first use.
    pub fn new(
        addr: &str,
        from: &str,
        fencing: bool,
        timeout: Duration,
    ) -> Result<Self, ClientError> {
        let addr = addr
            .parse()
            .map_err(|e: std::net::AddrParseError| ClientError::BadAddress {
                addr: addr.to_owned(),
                reason: e.to_string(),
            })?;
        Ok(PostgresStorageClient {
            addr,
            from: from.to_owned(),
            fencing,
            timeout,
            conn: None,
        })
    }

    /// Whether it writes with the fenced upsert.
    pub fn fencing(&self) -> bool {
        self.fencing
    }

    /// Writes `data` under `key` with `token` in one transaction with its
    /// ledger row; a fencing refusal is `Fail("rejected: high water N …")`.
    pub async fn write(&mut self, key: &str, data: &str, token: u64) -> Completion<Written> {
        let deadline = Instant::now() + self.timeout;
        let Ok(pg_token) = i64::try_from(token) else {
            return Completion::Fail(format!(
                "not sent: token {token} does not fit PostgreSQL's bigint"
            ));
        };
        if let Err(e) = self.open(deadline).await {
            return Completion::Fail(e);
        }
        let conn = self.conn.as_ref().expect("opened above");
        let params: [&(dyn ToSql + Sync); 4] = [&key, &data, &pg_token, &self.from];
        let pipeline = in_order(
            conn.pg.execute(&conn.begin, &[]),
            conn.pg.query_opt(&conn.upsert, &params),
            conn.pg.query_one(&conn.ledger, &params),
            conn.pg.execute(&conn.commit, &[]),
        );
        let (begin, upsert, ledger, commit) =
            match tokio::time::timeout_at(deadline, pipeline).await {
                Ok(results) => results,
                Err(_) => {
                    self.conn = None;
                    return Completion::Info(
                        "timeout: the transaction may or may not have committed".into(),
                    );
                }
            };
        let verdict = classify(step(&begin), step(&upsert), step(&ledger), step(&commit));
        if self.conn.as_ref().is_some_and(|c| c.pg.is_closed()) {
            self.conn = None;
        }
        match verdict {
            Verdict::Committed => {}
            Verdict::RolledBack(e) => return Completion::Fail(format!("rolled back: {e}")),
            Verdict::Unknown(e) => {
                self.conn = None;
                return Completion::Info(format!("outcome unknown: {e}"));
            }
        }
        let row = ledger.expect("committed: every statement succeeded");
        let (decision, high_water) = match ledger_decision(&row) {
            Ok(d) => d,
            Err(e) => return Completion::Info(format!("committed, but {e}")),
        };
        let upserted = matches!(upsert, Ok(Some(_)));
        if upserted != (decision == Decision::Accepted) {
            tracing::warn!(
                key,
                token,
                upserted,
                ?decision,
                "the upsert and its ledger row disagree"
            );
        }
        match decision {
            Decision::Accepted => Completion::Ok(Written {
                high_water: Some(high_water),
            }),
            Decision::Rejected => Completion::Fail(rejection(token, high_water)),
        }
    }

    /// Reads the last accepted value of `key`; `Ok(None)` when it has none.
    pub async fn read(&mut self, key: &str) -> Completion<Option<StoredValue>> {
        let deadline = Instant::now() + self.timeout;
        if let Err(e) = self.open(deadline).await {
            return Completion::Fail(e);
        }
        let conn = self.conn.as_ref().expect("opened above");
        let params: [&(dyn ToSql + Sync); 1] = [&key];
        let q = conn.pg.query_opt(&conn.read, &params);
        let row = match tokio::time::timeout_at(deadline, q).await {
            Ok(Ok(row)) => row,
            Ok(Err(e)) => {
                let (gone, msg) = failed(&e);
                if gone || self.conn.as_ref().is_some_and(|c| c.pg.is_closed()) {
                    self.conn = None;
                }
                return if gone {
                    Completion::Info(format!("connection broken: {msg}"))
                } else {
                    Completion::Fail(format!("server error: {msg}"))
                };
            }
            Err(_) => {
                self.conn = None;
                return Completion::Info("timeout".into());
            }
        };
        let Some(row) = row else {
            return Completion::Ok(None);
        };
        match stored_value(&row) {
            Some(v) => Completion::Ok(Some(v)),
            None => Completion::Info(format!("unreadable row of {key:?}")),
        }
    }

    /// Every ledger row in `seq` order, its time in nanoseconds since
    /// `wall_zero` (the run's zero on the wall clock the server shares),
    /// saturating at 0. Bounded by the timeout, at least 30 s.
    pub async fn ledger(&mut self, wall_zero: SystemTime) -> Result<Vec<LedgerEntry>, String> {
        let deadline = Instant::now() + self.timeout.max(LEDGER_TIMEOUT);
        self.open(deadline).await?;
        let conn = self.conn.as_ref().expect("opened above");
        let q = conn.pg.query(READ_LEDGER, &[]);
        let rows = match tokio::time::timeout_at(deadline, q).await {
            Ok(Ok(rows)) => rows,
            Ok(Err(e)) => {
                let (gone, msg) = failed(&e);
                if gone {
                    self.conn = None;
                }
                return Err(format!("reading the ledger: {msg}"));
            }
            Err(_) => {
                self.conn = None;
                return Err("reading the ledger: timeout".into());
            }
        };
        let zero = epoch_micros(wall_zero);
        rows.iter()
            .map(|row| ledger_entry(row, zero))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("reading the ledger: {e}"))
    }

    /// An open connection with the tables in place and the statements
    /// prepared; its error is why nothing was sent.
    async fn open(&mut self, deadline: Instant) -> Result<(), String> {
        if self.conn.as_ref().is_some_and(|c| c.pg.is_closed()) {
            self.conn = None;
        }
        if self.conn.is_some() {
            return Ok(());
        }
        let opening = open(self.addr, self.timeout, self.fencing);
        match tokio::time::timeout_at(deadline, opening).await {
            Ok(Ok(conn)) => {
                self.conn = Some(conn);
                Ok(())
            }
            Ok(Err(e)) => Err(format!("cannot connect: {e}")),
            Err(_) => Err("cannot connect: timeout".into()),
        }
    }
}

/// Connects as the lock system's role to database `postgres`, drives the connection in a
/// task of its own, creates the tables and prepares the statements.
async fn open(addr: SocketAddr, timeout: Duration, fencing: bool) -> Result<Conn, String> {
    let pg = connect(addr, timeout).await?;
    for create in [CREATE_DATA, CREATE_LEDGER] {
        create_if_absent(&pg, create).await?;
    }
    let (upsert, ledger) = if fencing {
        (UPSERT_FENCED, LEDGER_FENCED)
    } else {
        (UPSERT_UNFENCED, LEDGER_UNFENCED)
    };
    let prepare = |sql: &'static str| {
        let pg = &pg;
        async move {
            pg.prepare(sql)
                .await
                .map_err(|e| format!("{} ({sql})", error_text(&e)))
        }
    };
    let begin = prepare(BEGIN).await?;
    let upsert = prepare(upsert).await?;
    let ledger = prepare(ledger).await?;
    let commit = prepare(COMMIT).await?;
    let read = prepare(READ).await?;
    Ok(Conn {
        pg,
        begin,
        upsert,
        ledger,
        commit,
        read,
    })
}

/// A failed statement: the connection is gone when it closed or the error is
/// not the server's; a server error alone leaves it usable.
fn failed(e: &tokio_postgres::Error) -> (bool, String) {
    (e.is_closed() || e.code().is_none(), error_text(e))
}

/// How one statement of the pipeline ended.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Step {
    Done,
    /// The server answered with an error: the statement did nothing.
    Server(String),
    /// No answer: the connection broke (or the error is the client's).
    Broken(String),
}

fn step<T>(r: &Result<T, tokio_postgres::Error>) -> Step {
    match r {
        Ok(_) => Step::Done,
        Err(e) => match failed(e) {
            (false, msg) => Step::Server(msg),
            (true, msg) => Step::Broken(msg),
        },
    }
}

/// What became of the transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Verdict {
    Committed,
    /// Certainly not committed.
    RolledBack(String),
    /// It may have committed.
    Unknown(String),
}

/// The transaction's fate from its four statements, `BEGIN`, upsert, ledger
/// insert, `COMMIT`, sent in that order.
fn classify(begin: Step, upsert: Step, ledger: Step, commit: Step) -> Verdict {
    use Step::{Broken, Done, Server};
    match (begin, upsert, ledger, commit) {
        (Done, Done, Done, Done) => Verdict::Committed,
        // An error inside the transaction aborts it: its COMMIT rolls back.
        (Done, Server(e), _, _) | (Done, Done, Server(e), _) => Verdict::RolledBack(e),
        // BEGIN refused (the backend ending) and nothing after it ran.
        (Server(e), Server(_) | Broken(_), Server(_) | Broken(_), Server(_) | Broken(_)) => {
            Verdict::RolledBack(e)
        }
        (begin, upsert, ledger, commit) => {
            let e = [begin, upsert, ledger, commit]
                .into_iter()
                .find_map(|s| match s {
                    Done => None,
                    Server(e) | Broken(e) => Some(e),
                })
                .unwrap_or_default();
            Verdict::Unknown(e)
        }
    }
}

/// A row of [`READ`].
fn stored_value(row: &Row) -> Option<StoredValue> {
    let token: i64 = row.try_get(1).ok()?;
    Some(StoredValue {
        data: row.try_get(0).ok()?,
        token: u64::try_from(token).ok()?,
        from: row.try_get(2).ok()?,
    })
}

/// The decision and high water of the ledger row a write returned.
fn ledger_decision(row: &Row) -> Result<(Decision, u64), String> {
    let decision: String = row.try_get(0).map_err(|e| error_text(&e))?;
    let high_water: i64 = row.try_get(1).map_err(|e| error_text(&e))?;
    let decision = parse_decision(&decision)?;
    let high_water =
        u64::try_from(high_water).map_err(|_| format!("negative high water {high_water}"))?;
    Ok((decision, high_water))
}

fn parse_decision(s: &str) -> Result<Decision, String> {
    match s {
        "accepted" => Ok(Decision::Accepted),
        "rejected" => Ok(Decision::Rejected),
        other => Err(format!("unknown decision {other:?}")),
    }
}

fn rejection(token: u64, high_water: u64) -> String {
    format!("rejected: high water {high_water} (token {token} is below it)")
}

/// One ledger row of [`READ_LEDGER`]; `zero` is the run's zero in epoch
/// microseconds.
fn ledger_entry(row: &Row, zero: i128) -> Result<LedgerEntry, String> {
    fn col<'a, T: tokio_postgres::types::FromSql<'a>>(
        row: &'a Row,
        i: usize,
        name: &str,
    ) -> Result<T, String> {
        let v: Option<T> = row.try_get(i).map_err(|e| format!("{name}: {e}"))?;
        v.ok_or_else(|| format!("{name} is null"))
    }
    let at: i64 = col(row, 0, "at")?;
    let token: i64 = col(row, 2, "token")?;
    let high_water: i64 = col(row, 6, "high_water")?;
    let decision: String = col(row, 5, "decision")?;
    Ok(LedgerEntry {
        time: run_nanos(at, zero),
        key: col(row, 1, "key")?,
        token: u64::try_from(token).map_err(|_| format!("negative token {token}"))?,
        data: col(row, 3, "data")?,
        from: col(row, 4, "writer")?,
        decision: parse_decision(&decision)?,
        high_water: u64::try_from(high_water)
            .map_err(|_| format!("negative high water {high_water}"))?,
        node: None,
    })
}

/// `t` in microseconds since the Unix epoch (negative before it).
fn epoch_micros(t: SystemTime) -> i128 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => d.as_micros() as i128,
        Err(e) => -(e.duration().as_micros() as i128),
    }
}

/// Nanoseconds from the run's zero (`zero`, epoch microseconds) to `at`
/// (epoch microseconds), 0 for a time before it.
fn run_nanos(at: i64, zero: i128) -> u64 {
    let nanos = (i128::from(at) - zero).saturating_mul(1000);
    u64::try_from(nanos.max(0)).unwrap_or(u64::MAX)
}

/// Polls the four futures in the order given, every time, until all are
/// done. A `tokio-postgres` request is queued on its future's first poll, so
/// they reach the server in this order and in one go (`tokio::join!` rotates
/// which future it polls first).
async fn in_order<A: Future, B: Future, C: Future, D: Future>(
    a: A,
    b: B,
    c: C,
    d: D,
) -> (A::Output, B::Output, C::Output, D::Output) {
    let (mut a, mut b, mut c, mut d) = (pin!(a), pin!(b), pin!(c), pin!(d));
    let (mut ra, mut rb, mut rc, mut rd) = (None, None, None, None);
    std::future::poll_fn(move |cx| {
        if ra.is_none()
            && let Poll::Ready(v) = a.as_mut().poll(cx)
        {
            ra = Some(v);
        }
        if rb.is_none()
            && let Poll::Ready(v) = b.as_mut().poll(cx)
        {
            rb = Some(v);
        }
        if rc.is_none()
            && let Poll::Ready(v) = c.as_mut().poll(cx)
        {
            rc = Some(v);
        }
        if rd.is_none()
            && let Poll::Ready(v) = d.as_mut().poll(cx)
        {
            rd = Some(v);
        }
        if ra.is_some() && rb.is_some() && rc.is_some() && rd.is_some() {
            Poll::Ready((
                ra.take().expect("checked"),
                rb.take().expect("checked"),
                rc.take().expect("checked"),
                rd.take().expect("checked"),
            ))
        } else {
            Poll::Pending
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ledger_times_are_nanoseconds_since_the_runs_zero() {
        let zero = SystemTime::UNIX_EPOCH + Duration::from_micros(1_700_000_000_000_000);
        let z = epoch_micros(zero);
        assert_eq!(z, 1_700_000_000_000_000);
        assert_eq!(run_nanos(1_700_000_000_000_000, z), 0);
        assert_eq!(run_nanos(1_700_000_001_500_250, z), 1_500_250_000);
        // A row stamped before the zero (clock granularity) saturates.
        assert_eq!(run_nanos(1_699_999_999_999_000, z), 0);
        assert_eq!(run_nanos(i64::MIN, z), 0);
        assert_eq!(run_nanos(i64::MAX, i128::from(i64::MIN)), u64::MAX);
        let before_epoch = SystemTime::UNIX_EPOCH - Duration::from_micros(5);
        assert_eq!(epoch_micros(before_epoch), -5);
        assert_eq!(run_nanos(0, epoch_micros(before_epoch)), 5_000);
    }

    #[test]
    fn the_transactions_fate_follows_its_statements() {
        use Step::{Broken, Done, Server};
        let s = |m: &str| Server(m.to_owned());
        let b = |m: &str| Broken(m.to_owned());
        assert_eq!(classify(Done, Done, Done, Done), Verdict::Committed);
        assert_eq!(
            classify(Done, s("e"), s("aborted"), Done),
            Verdict::RolledBack("e".into())
        );
        assert_eq!(
            classify(Done, Done, s("e"), Done),
            Verdict::RolledBack("e".into())
        );
        // A FATAL upsert error: the backend ended, nothing committed.
        assert_eq!(
            classify(Done, s("fatal"), b("closed"), b("closed")),
            Verdict::RolledBack("fatal".into())
        );
        assert_eq!(
            classify(s("fatal"), b("closed"), b("closed"), b("closed")),
            Verdict::RolledBack("fatal".into())
        );
        // COMMIT sent, its answer lost or an error: unknown.
        assert_eq!(
            classify(Done, Done, Done, b("closed")),
            Verdict::Unknown("closed".into())
        );
        assert_eq!(
            classify(Done, Done, Done, s("e")),
            Verdict::Unknown("e".into())
        );
        assert_eq!(
            classify(b("reset"), b("closed"), b("closed"), b("closed")),
            Verdict::Unknown("reset".into())
        );
        // BEGIN refused but the upsert ran (outside a transaction): unknown.
        assert_eq!(
            classify(s("e"), Done, Done, Done),
            Verdict::Unknown("e".into())
        );
    }

    #[test]
    fn decisions_and_rejections() {
        assert_eq!(parse_decision("accepted"), Ok(Decision::Accepted));
        assert_eq!(parse_decision("rejected"), Ok(Decision::Rejected));
        assert!(parse_decision("maybe").is_err());
        let r = rejection(4, 5);
        assert!(r.starts_with("rejected"), "{r}");
        assert!(r.contains("high water 5"), "{r}");
    }

    #[test]
    fn the_fenced_upsert_accepts_an_equal_token_as_the_reference_does() {
        assert!(UPSERT_FENCED.contains("WHERE leasehold_data.token <= EXCLUDED.token"));
        assert!(!UPSERT_UNFENCED.contains("WHERE"));
        assert!(LEDGER_FENCED.contains("d.token = $3::bigint"));
    }
}
