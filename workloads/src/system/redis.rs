//! Redis 7: one `redis-server` per lock node, started by leasehold with
//! persistence off unless the config says otherwise ([`Persistence`]), locked
//! with Lua scripts through the `redis` crate.
//!
//! - **Acquire** is one script: `SET <lock> <client> NX PX <ttl>`; when it set
//!   the key, `INCR <fence>` and store `<client>:<token>` as the value (the TTL
//!   kept); the counter is the token. Nothing set: `fail` (busy).
//! - **Renew** is compare-and-`PEXPIRE`: only when the value is exactly
//!   `<client>:<token>`, so a renew of an old token fails even by the same
//!   client. **Release** is compare-and-`DEL` on the same comparison.
//! - **Fencing token**: the fence counter key beside the lock key, incremented
//!   in the same script that takes the lock, so tokens grow with grants. With
//!   persistence off a restarted server starts the counter again from 1: a kill
//!   of the lock node makes tokens go backwards (the token checks see it).
//!   With [`Persistence::Aof`] (`appendonly yes`, `appendfsync always`) every
//!   write reaches the disk before the reply, so the counter (and a lock key
//!   whose TTL has not passed) survives a kill and tokens keep growing.
//! - **Lease**: the key's `PX` TTL, counted by the server from when it ran the
//!   script; the client counts it from when it sent the request.
//! - **A pause of the holder**: the key expires, another client takes the lock
//!   with a larger token, the resumed holder writes with its old one: only
//!   fenced storage stops it.
//! - **A pause of the lock node**: Redis expires keys by wall-clock time, so a
//!   key whose TTL passed during the pause is gone the moment the server runs
//!   again; requests sent during the pause time out (`info`) and may still be
//!   executed when it resumes.
//! - **A partition** of the holder from the server: its renews time out
//!   (`info`), the key expires on the server, and the worker's
//!   `on_renew_timeout` policy decides whether it keeps writing.
//!
//! Timeouts and broken connections are `info` and the connection is dropped
//! (the next operation connects again); no operation is ever retried.

use std::net::SocketAddr;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, RedisError, Script};

use crate::ClientError;
use crate::completion::Completion;
use crate::lock_client::{Grant, LockClient};
use crate::system::{Leader, NodeAddrs, Probe, Program, ServerRecipe};

/// Redis's own port.
pub const PORT: u16 = 6379;

/// The program, and the Debian package that ships it.
pub const PROGRAM: Program = Program::Host {
    binary: "redis-server",
    package: "redis-server",
};

/// What Redis's fencing token is.
pub const TOKEN: &str = "INCR of a fence counter key, in the same Lua script as SET NX PX of the lock key (in memory: a restart resets it)";

/// `SET NX PX`, then `INCR` of the fence and the token into the value.
const ACQUIRE: &str = r"
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return false
end
local token = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. token, 'XX', 'KEEPTTL')
return token
";

/// Compare-and-`PEXPIRE`.
pub(crate) const RENEW: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
";

/// Compare-and-`DEL`.
pub(crate) const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// What a `redis-server` keeps on disk across a restart.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Persistence {
    /// Nothing (`save ""`, `appendonly no`): a restarted server is empty, its
    /// fence counters start again from 1.
    #[default]
    None,
    /// The append-only file, fsynced before every reply (`appendonly yes`,
    /// `appendfsync always`): a restarted server replays it, so fence
    /// counters survive a kill. RDB snapshots stay off.
    Aof,
}

impl Persistence {
    /// Its name as the config spells it (`none`, `aof`).
    pub fn name(self) -> &'static str {
        match self {
            Persistence::None => "none",
            Persistence::Aof => "aof",
        }
    }

    /// The `redis-server` arguments that set it.
    fn args(self) -> &'static [&'static str] {
        match self {
            Persistence::None => &["--save", "", "--appendonly", "no"],
            Persistence::Aof => &[
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ],
        }
    }
}

/// Its recipe: `redis-server --bind <host> --port <port> --dir <data_dir>`
/// in the foreground, with the persistence the config asks for (off by
/// default).
pub fn recipe(persistence: Persistence, node: &NodeAddrs) -> ServerRecipe {
    let host = node.addr.ip().to_string();
    let port = node.addr.port().to_string();
    let mut args: Vec<String> = ["--bind", &host, "--port", &port, "--dir", &node.data_dir]
        .map(str::to_owned)
        .to_vec();
    args.extend(persistence.args().iter().map(|a| (*a).to_owned()));
    args.extend(
        ["--protected-mode", "no", "--daemonize", "no"]
            .iter()
            .map(|a| (*a).to_owned()),
    );
    ServerRecipe {
        program: PROGRAM,
        args,
        env: Vec::new(),
        port: node.addr.port(),
        probe: Probe::RedisPing,
        leader: Leader::None,
        events_on_stdout: false,
    }
}

/// `redis_version` of `INFO server`.
pub async fn server_version(addr: SocketAddr, timeout: Duration) -> Result<String, String> {
    let client = redis::Client::open(format!("redis://{addr}/")).map_err(|e| e.to_string())?;
    let info = async {
        let mut con = client
            .get_multiplexed_async_connection_with_config(&config(timeout))
            .await?;
        redis::cmd("INFO")
            .arg("server")
            .query_async::<String>(&mut con)
            .await
    };
    let info = tokio::time::timeout(timeout, info)
        .await
        .map_err(|_| format!("INFO server at {addr} timed out"))?
        .map_err(|e| format!("INFO server at {addr}: {e}"))?;
    info.lines()
        .find_map(|l| l.strip_prefix("redis_version:"))
        .map(|v| v.trim().to_owned())
        .ok_or_else(|| format!("INFO server at {addr} has no redis_version"))
}

pub(crate) fn config(timeout: Duration) -> AsyncConnectionConfig {
    AsyncConnectionConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout))
}

/// A connection to one `redis-server` that runs scripts, made when first
/// needed and dropped after a timeout or a broken connection (the next script
/// connects again). Shared by the Redis client and Redlock's, one per node.
pub(crate) struct RedisNode {
    redis: redis::Client,
    con: Option<MultiplexedConnection>,
}

impl RedisNode {
    /// A node at `addr` (`host:port`); nothing is connected yet.
    pub(crate) fn new(addr: &str) -> Result<Self, ClientError> {
        let bad = |reason: String| ClientError::BadAddress {
            addr: addr.to_owned(),
            reason,
        };
        addr.parse::<SocketAddr>().map_err(|e| bad(e.to_string()))?;
        let redis =
            redis::Client::open(format!("redis://{addr}/")).map_err(|e| bad(e.to_string()))?;
        Ok(RedisNode { redis, con: None })
    }

    /// Whether a connection is open now.
    pub(crate) fn connected(&self) -> bool {
        self.con.is_some()
    }

    /// Runs `script` once within `timeout`, from connect to reply. A
    /// connection that cannot be made is `Fail` (nothing was sent); a timeout
    /// or an error after sending is `Info`, and the connection is dropped.
    pub(crate) async fn invoke(
        &mut self,
        script: &Script,
        keys: &[&str],
        args: &[String],
        timeout: Duration,
    ) -> Completion<redis::Value> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut con = match self.con.take() {
            Some(c) => c,
            None => {
                let cfg = config(timeout);
                let connect = self
                    .redis
                    .get_multiplexed_async_connection_with_config(&cfg);
                match tokio::time::timeout_at(deadline, connect).await {
                    Ok(Ok(c)) => c,
                    Ok(Err(e)) => return Completion::Fail(format!("cannot connect: {e}")),
                    Err(_) => return Completion::Fail("cannot connect: timeout".into()),
                }
            }
        };
        let mut invocation = script.prepare_invoke();
        for k in keys {
            invocation.key(*k);
        }
        for a in args {
            invocation.arg(a);
        }
        let reply =
            tokio::time::timeout_at(deadline, invocation.invoke_async::<redis::Value>(&mut con))
                .await;
        match reply {
            Ok(Ok(v)) => {
                self.con = Some(con);
                Completion::Ok(v)
            }
            Ok(Err(e)) => classify(&e, con, &mut self.con),
            Err(_) => Completion::Info("timeout".into()),
        }
    }
}

/// A client of one `redis-server`, acting as `client`.
pub struct RedisLockClient {
    node: RedisNode,
    client: String,
    timeout: Duration,
    acquire: Script,
    renew: Script,
    release: Script,
}

impl std::fmt::Debug for RedisLockClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLockClient")
            .field("client", &self.client)
            .field("timeout", &self.timeout)
            .field("connected", &self.node.connected())
            .finish()
    }
}

/// The key of lock `lock`, and of its fence counter.
pub(crate) fn keys(lock: &str) -> (String, String) {
    (
        format!("leasehold:lock:{lock}"),
        format!("leasehold:fence:{lock}"),
    )
}

/// A TTL in whole milliseconds, at least 1 (`PX 0` is an error).
pub(crate) fn ttl_ms(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

impl RedisLockClient {
    /// `addr` is `host:port` of the server; `client` the name it is known by;
    /// `timeout` bounds each operation from connect to reply.
    pub fn new(addr: &str, client: &str, timeout: Duration) -> Result<Self, ClientError> {
        Ok(RedisLockClient {
            node: RedisNode::new(addr)?,
            client: client.to_owned(),
            timeout,
            acquire: Script::new(ACQUIRE),
            renew: Script::new(RENEW),
            release: Script::new(RELEASE),
        })
    }

    /// The value stored in the lock key while `token` is held by this client.
    fn value(&self, token: u64) -> String {
        format!("{}:{token}", self.client)
    }

    /// Runs one of the scripts once within the timeout ([`RedisNode::invoke`]).
    async fn run(
        &mut self,
        which: Which,
        keys: &[&str],
        args: &[String],
    ) -> Completion<redis::Value> {
        let script = match which {
            Which::Acquire => &self.acquire,
            Which::Renew => &self.renew,
            Which::Release => &self.release,
        };
        self.node.invoke(script, keys, args, self.timeout).await
    }
}

/// An error reply from the server (the script failed before any effect) is
/// `Fail` and keeps the connection; anything else may have applied: `Info`.
fn classify(
    e: &RedisError,
    con: MultiplexedConnection,
    slot: &mut Option<MultiplexedConnection>,
) -> Completion<redis::Value> {
    if e.is_io_error() || e.is_timeout() || e.is_connection_dropped() || e.is_unrecoverable_error()
    {
        return Completion::Info(format!("connection broken: {e}"));
    }
    *slot = Some(con);
    Completion::Fail(format!("server error: {e}"))
}

#[derive(Clone, Copy)]
enum Which {
    Acquire,
    Renew,
    Release,
}

impl LockClient for RedisLockClient {
    fn service(&self) -> &'static str {
        "redis"
    }

    async fn acquire(&mut self, lock: &str, ttl: Duration) -> Completion<Grant> {
        let (key, fence) = keys(lock);
        let args = [self.client.clone(), ttl_ms(ttl).to_string()];
        match self.run(Which::Acquire, &[&key, &fence], &args).await {
            Completion::Ok(redis::Value::Int(token)) if token > 0 => Completion::Ok(Grant {
                token: token as u64,
                lease_ms: ttl_ms(ttl),
            }),
            Completion::Ok(redis::Value::Nil) => Completion::Fail("busy".into()),
            Completion::Ok(other) => Completion::Info(format!("unexpected reply {other:?}")),
            Completion::Fail(e) => Completion::Fail(e),
            Completion::Info(e) => Completion::Info(e),
        }
    }

    async fn renew(&mut self, lock: &str, token: u64, ttl: Duration) -> Completion<Grant> {
        let (key, _) = keys(lock);
        let args = [self.value(token), ttl_ms(ttl).to_string()];
        match self.run(Which::Renew, &[&key], &args).await {
            Completion::Ok(redis::Value::Int(1)) => Completion::Ok(Grant {
                token,
                lease_ms: ttl_ms(ttl),
            }),
            Completion::Ok(redis::Value::Int(0)) => Completion::Fail("lease lost".into()),
            Completion::Ok(other) => Completion::Info(format!("unexpected reply {other:?}")),
            Completion::Fail(e) => Completion::Fail(e),
            Completion::Info(e) => Completion::Info(e),
        }
    }

    async fn release(&mut self, lock: &str, token: u64) -> Completion<()> {
        let (key, _) = keys(lock);
        let args = [self.value(token)];
        match self.run(Which::Release, &[&key], &args).await {
            Completion::Ok(redis::Value::Int(1)) => Completion::Ok(()),
            Completion::Ok(redis::Value::Int(0)) => Completion::Fail("not held".into()),
            Completion::Ok(other) => Completion::Info(format!("unexpected reply {other:?}")),
            Completion::Fail(e) => Completion::Fail(e),
            Completion::Info(e) => Completion::Info(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_recipe_binds_the_node_and_turns_persistence_off() {
        let node = NodeAddrs {
            name: "lock1".into(),
            addr: "10.77.0.11:6379".parse().unwrap(),
            peers: vec!["10.77.0.11:6379".parse().unwrap()],
            cluster: Vec::new(),
            data_dir: "/data".into(),
        };
        let r = recipe(Persistence::default(), &node);
        assert_eq!(r.program, PROGRAM);
        assert_eq!(
            r.args,
            [
                "--bind",
                "10.77.0.11",
                "--port",
                "6379",
                "--dir",
                "/data",
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "no",
                "--daemonize",
                "no"
            ]
        );
        assert_eq!(r.probe, Probe::RedisPing);
        assert!(!r.events_on_stdout, "redis-server's stdout is its log");
    }

    #[test]
    fn aof_persistence_fsyncs_every_write_and_keeps_rdb_off() {
        let node = NodeAddrs {
            name: "lock1".into(),
            addr: "127.0.0.1:7000".parse().unwrap(),
            peers: vec!["127.0.0.1:7000".parse().unwrap()],
            cluster: Vec::new(),
            data_dir: "/data".into(),
        };
        assert_eq!(Persistence::default(), Persistence::None);
        let args = recipe(Persistence::Aof, &node).args;
        let pair = |flag: &str| {
            let i = args.iter().position(|a| a == flag).unwrap();
            args[i + 1].clone()
        };
        assert_eq!(pair("--appendonly"), "yes");
        assert_eq!(pair("--appendfsync"), "always");
        assert_eq!(pair("--save"), "");
        assert_eq!(pair("--dir"), "/data");
    }

    #[test]
    fn the_value_carries_client_and_token() {
        let c = RedisLockClient::new("127.0.0.1:6379", "w1", Duration::from_secs(1)).unwrap();
        assert_eq!(c.value(34), "w1:34");
        assert!(RedisLockClient::new("nowhere", "w1", Duration::from_secs(1)).is_err());
    }
}
