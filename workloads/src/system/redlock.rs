//! Redlock: the lock algorithm of "Distributed Locks with Redis" (redis.io)
//! over N independent `redis-server` nodes, one per lock node, each started
//! from the plain Redis recipe ([`redis::recipe`]): no replication, no
//! node knows of the others; all the coordination is in the client.
//!
//! - **Acquire**: a fresh random value per acquisition (`<client>:` and 20
//!   bytes of `/dev/urandom` in hex); on each node in turn one script does
//!   `SET <lock> <value> NX PX <ttl>` and, when it set the key, `INCR`s that
//!   node's fence counter. Each node gets a short timeout of its own,
//!   `min(request timeout / N, 50 ms)` ([`node_timeout`]): the authors ask for
//!   a timeout small next to the TTL (5–50 ms for a 10 s TTL) so that a node
//!   that is down or paused costs a sliver of the lease, and N of them add up
//!   to no more than the request timeout the workload gives every operation.
//!   With 1 s leases and 5 nodes that is at most 250 ms. The lock is held when
//!   a majority (`N/2 + 1`, [`quorum`]) set the key and the validity left,
//!   `TTL − elapsed − drift` with `drift = TTL/100 + 2 ms` ([`validity`]), is
//!   positive. Otherwise the client releases on every node (even those that
//!   said no) and the acquire is `fail` — or `info` when a majority may still
//!   hold the value (a node timed out: its `SET` may still run, and a release
//!   that did not confirm proves nothing).
//! - **Renew**: compare-and-`PEXPIRE` on every node; `ok` when a majority
//!   extended it within the validity, `info` when a majority may have, `fail`
//!   otherwise. **Release**: compare-and-`DEL` on every node; `ok` when it
//!   deleted the key somewhere and a majority confirmed it gone, `fail` when
//!   it deleted nothing anywhere and no node left the answer open, `info`
//!   otherwise.
//! - **Fencing token**: Redlock has none. Each node's acquire script `INCR`s a
//!   fence counter of its own, and the token reported is the largest counter
//!   among the nodes that granted. That is not a fencing token: the counters
//!   are not shared and each counts only the grants its node saw, so a grant
//!   by a different majority can carry a token equal to or smaller than an
//!   earlier one (a node with a high counter is paused, killed or partitioned
//!   and the next majority is made of nodes with lower counters), and a
//!   restarted node without persistence starts its counter again from 1.
//!   Fenced storage compares such tokens; it cannot make them mean "later".
//! - **Lease** ([`Grant::lease_ms`]): `TTL − drift`, counted from the moment
//!   the acquire (or renew) was sent: every key of the majority was set after
//!   that moment, so by each node's clock it expires no earlier than send +
//!   TTL; the drift allowance is what the algorithm grants the clocks' rates.
//!   The validity the client has left when the reply arrives is that lease
//!   minus the elapsed time, and it is what decided success.
//! - **A pause of the holder** longer than its lease: the keys expire on every
//!   node, another client takes a majority, and the resumed holder writes with
//!   its old token. Unfenced storage accepts it; fenced storage rejects it only
//!   if the new holder's token happens to be larger.
//! - **A pause of one lock node**: its requests time out after the node
//!   timeout and count as uncertain; a `SET` it receives while paused may run
//!   when it resumes, with its TTL counted from then. A majority of the others
//!   still grants, each operation costing one node timeout more.
//! - **A partition**: a minority of lock nodes cut off is like a pause (their
//!   connections time out); a majority cut off, and nobody can acquire. A
//!   holder cut off from the lock nodes cannot renew (`info` on every node),
//!   and the worker's `on_renew_timeout` decides whether it keeps writing.
//! - **A kill of one node**: with persistence off (leasehold's default) the
//!   restarted node forgets the key and its fence counter: while the holder
//!   still holds, another client can take a majority that counts the
//!   restarted node (the mutual exclusion Redlock promises is lost), and that
//!   node's tokens start again from 1. With `persistence: aof` (fsync on every
//!   write) the key and the counter survive the restart.
//!
//! `lock.nodes` is 5 by default. An even count works (the quorum is still
//! `N/2 + 1`, so 4 nodes tolerate one failure, as 3 do); fewer than 3 tolerate
//! no failure at all; one node is refused by the config (that is plain Redis).
//! No operation is ever retried; a node's connection is dropped after a timeout
//! and made again by the next operation.

use std::collections::HashMap;
use std::io::Read;
use std::net::SocketAddr;
use std::time::Duration;

use ::redis::Script;

use crate::ClientError;
use crate::completion::Completion;
use crate::lock_client::{Grant, LockClient};
use crate::system::redis::{self, Persistence, RedisNode};
use crate::system::{NodeAddrs, Program, ServerRecipe};

/// Each node's port: Redis's own.
pub const PORT: u16 = redis::PORT;

/// The program of each node: `redis-server`.
pub const PROGRAM: Program = redis::PROGRAM;

/// What Redlock's token is.
pub const TOKEN: &str = "none of Redlock's own: the largest of the per-node fence counters (INCR in each node's acquire script) among the majority that granted; counters are not shared, so a grant by another majority can repeat a token or go backwards";

/// The longest a single node may take to answer, whatever the request timeout.
pub const NODE_TIMEOUT_CAP: Duration = Duration::from_millis(50);

/// The fixed part of the clock-drift allowance.
const DRIFT_FIXED: Duration = Duration::from_millis(2);

/// `SET NX PX` with the acquisition's random value, then `INCR` of this
/// node's fence counter, whose value the script returns.
const ACQUIRE: &str = r"
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return false
end
return redis.call('INCR', KEYS[2])
";

/// Each node: a plain `redis-server` with the persistence the config asks
/// for (off by default).
pub fn recipe(persistence: Persistence, node: &NodeAddrs) -> ServerRecipe {
    redis::recipe(persistence, node)
}

/// The first node's `redis_version`, said to be one of several servers.
pub async fn server_version(addr: SocketAddr, timeout: Duration) -> Result<String, String> {
    let v = redis::server_version(addr, timeout).await?;
    Ok(format!(
        "{v} (redis-server on each lock node, version asked of the first)"
    ))
}

/// How many nodes make a majority of `n`: `n/2 + 1`.
pub fn quorum(n: usize) -> usize {
    n / 2 + 1
}

/// The clock-drift allowance for `ttl`: 1% of it plus 2 ms.
pub fn drift(ttl: Duration) -> Duration {
    ttl / 100 + DRIFT_FIXED
}

/// The lease a client may believe from the moment it sent the request:
/// `ttl − drift` (zero when the drift eats it all).
pub fn lease(ttl: Duration) -> Duration {
    ttl.saturating_sub(drift(ttl))
}

/// The validity left after `elapsed`: `ttl − elapsed − drift`, `None` when it
/// is not positive (then the lock is not held).
pub fn validity(ttl: Duration, elapsed: Duration) -> Option<Duration> {
    lease(ttl).checked_sub(elapsed).filter(|v| !v.is_zero())
}

/// Each node's timeout: `min(timeout / n, 50 ms)`, at least 1 ms.
pub fn node_timeout(timeout: Duration, n: usize) -> Duration {
    let n = u32::try_from(n.max(1)).unwrap_or(u32::MAX);
    (timeout / n)
        .min(NODE_TIMEOUT_CAP)
        .max(Duration::from_millis(1))
}

/// What one node answered to one script.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum NodeReply {
    /// It did it: acquire with this fence counter, renew, release.
    Yes(u64),
    /// It answered no (busy, not held) or refused the script: certainly not
    /// done.
    No,
    /// No connection could be made: nothing was sent.
    Down,
    /// It timed out or broke after the script was sent: maybe done, maybe
    /// later.
    Unknown,
}

impl NodeReply {
    /// A reply of a script that answers an integer: positive is yes.
    fn from_int(reply: Completion<::redis::Value>) -> Self {
        match reply {
            Completion::Ok(::redis::Value::Int(v)) if v > 0 => NodeReply::Yes(v as u64),
            Completion::Ok(::redis::Value::Int(0) | ::redis::Value::Nil) => NodeReply::No,
            // A reply no script of ours gives: it ran, with what effect we
            // cannot tell.
            Completion::Ok(_) => NodeReply::Unknown,
            Completion::Fail(e) if e.starts_with("cannot connect") => NodeReply::Down,
            Completion::Fail(_) => NodeReply::No,
            Completion::Info(_) => NodeReply::Unknown,
        }
    }
}

/// How many nodes answered each way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Tally {
    yes: usize,
    no: usize,
    down: usize,
    unknown: usize,
    /// The largest value among the yes answers.
    max: Option<u64>,
}

impl Tally {
    fn of(replies: &[NodeReply]) -> Self {
        let mut t = Tally::default();
        for r in replies {
            match *r {
                NodeReply::Yes(v) => {
                    t.yes += 1;
                    t.max = t.max.max(Some(v));
                }
                NodeReply::No => t.no += 1,
                NodeReply::Down => t.down += 1,
                NodeReply::Unknown => t.unknown += 1,
            }
        }
        t
    }

    fn describe(&self, n: usize, did: &str) -> String {
        format!(
            "{} of {n} {did}, {} no, {} unreachable, {} timed out",
            self.yes, self.no, self.down, self.unknown
        )
    }
}

/// Whether an acquire holds the lock: the token (the largest fence counter of
/// the nodes that granted) when a majority granted and validity is left;
/// otherwise why not.
fn acquire_verdict(replies: &[NodeReply], validity: Option<Duration>) -> Result<u64, String> {
    let n = replies.len();
    let t = Tally::of(replies);
    if t.yes < quorum(n) {
        return Err(format!(
            "no majority: {} (a majority is {})",
            t.describe(n, "granted"),
            quorum(n)
        ));
    }
    if validity.is_none() {
        return Err(format!(
            "no validity left: {} but too late",
            t.describe(n, "granted")
        ));
    }
    t.max.ok_or_else(|| "granted with no token".to_owned())
}

/// The outcome of an acquire given up on, after the release on every node:
/// `fail` when fewer than a majority may still hold the value, `info` when
/// a majority may (the lock may be held in this client's name).
fn abandoned(acquired: &[NodeReply], released: &[NodeReply], why: String) -> Completion<Grant> {
    let n = acquired.len();
    let may_hold = acquired
        .iter()
        .zip(released)
        .filter(|(a, r)| match (a, r) {
            // Never set by us.
            (NodeReply::No | NodeReply::Down, _) => false,
            // Set, and now confirmed gone (deleted, or expired already).
            (NodeReply::Yes(_), NodeReply::Yes(_) | NodeReply::No) => false,
            // Maybe set, maybe later: only a delete proves it is gone.
            (NodeReply::Unknown, NodeReply::Yes(_)) => false,
            _ => true,
        })
        .count();
    if may_hold >= quorum(n) {
        Completion::Info(format!(
            "{why}; released, but {may_hold} of {n} nodes may still hold the key"
        ))
    } else {
        Completion::Fail(why)
    }
}

/// The outcome of a renew: `ok` with a majority extended within the
/// validity, `info` when a majority may have extended it, `fail` otherwise.
fn renew_verdict(
    replies: &[NodeReply],
    validity: Option<Duration>,
    grant: Grant,
) -> Completion<Grant> {
    let n = replies.len();
    let t = Tally::of(replies);
    let q = quorum(n);
    if t.yes >= q {
        return match validity {
            Some(_) => Completion::Ok(grant),
            None => Completion::Info(format!(
                "{}, but past its validity",
                t.describe(n, "extended")
            )),
        };
    }
    if t.yes + t.unknown >= q {
        return Completion::Info(format!(
            "unknown: {} (a majority is {q})",
            t.describe(n, "extended")
        ));
    }
    Completion::Fail(format!("lease lost: {}", t.describe(n, "extended")))
}

/// The outcome of a release: `ok` when it deleted the key somewhere and a
/// majority confirmed it gone, `fail` when it deleted nothing and every node
/// answered or was unreachable, `info` otherwise.
fn release_verdict(replies: &[NodeReply]) -> Completion<()> {
    let n = replies.len();
    let t = Tally::of(replies);
    if t.yes >= 1 && t.yes + t.no >= quorum(n) {
        Completion::Ok(())
    } else if t.yes == 0 && t.unknown == 0 {
        Completion::Fail(format!("not held: {}", t.describe(n, "deleted")))
    } else {
        Completion::Info(format!("unknown: {}", t.describe(n, "deleted")))
    }
}

/// What the client holds of one lock: the token it reported and the random
/// value its keys carry.
#[derive(Clone, Debug)]
struct Holding {
    token: u64,
    value: String,
}

/// A Redlock client over every lock node, acting as `client`.
pub struct RedlockClient {
    nodes: Vec<RedisNode>,
    client: String,
    node_timeout: Duration,
    random: std::fs::File,
    /// The latest acquisition per lock name: a new one replaces it.
    held: HashMap<String, Holding>,
    acquire: Script,
    renew: Script,
    release: Script,
}

impl std::fmt::Debug for RedlockClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedlockClient")
            .field("client", &self.client)
            .field("nodes", &self.nodes.len())
            .field("node_timeout", &self.node_timeout)
            .field("held", &self.held.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl RedlockClient {
    /// `addrs` are `host:port` of every lock node; `client` the name it is
    /// known by; `timeout` the request timeout, which the nodes share
    /// ([`node_timeout`]).
    pub fn new(addrs: &[String], client: &str, timeout: Duration) -> Result<Self, ClientError> {
        if addrs.is_empty() {
            return Err(ClientError::BadAddress {
                addr: String::new(),
                reason: "no lock node address".into(),
            });
        }
        let nodes = addrs
            .iter()
            .map(|a| RedisNode::new(a))
            .collect::<Result<Vec<_>, _>>()?;
        let random = std::fs::File::open("/dev/urandom").map_err(ClientError::Random)?;
        Ok(RedlockClient {
            node_timeout: node_timeout(timeout, nodes.len()),
            nodes,
            client: client.to_owned(),
            random,
            held: HashMap::new(),
            acquire: Script::new(ACQUIRE),
            renew: Script::new(redis::RENEW),
            release: Script::new(redis::RELEASE),
        })
    }

    /// Each node's timeout.
    pub fn node_timeout(&self) -> Duration {
        self.node_timeout
    }

    /// A value no other acquisition uses: the client's name and 20 random
    /// bytes.
    fn random_value(&mut self) -> std::io::Result<String> {
        let mut bytes = [0u8; 20];
        self.random.read_exact(&mut bytes)?;
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        Ok(format!("{}:{hex}", self.client))
    }

    /// Runs `which` on every node in turn, each within the node timeout.
    async fn on_every_node(
        &mut self,
        which: Which,
        keys: &[&str],
        args: &[String],
    ) -> Vec<NodeReply> {
        let script = match which {
            Which::Acquire => &self.acquire,
            Which::Renew => &self.renew,
            Which::Release => &self.release,
        };
        let mut replies = Vec::with_capacity(self.nodes.len());
        for node in &mut self.nodes {
            let reply = node.invoke(script, keys, args, self.node_timeout).await;
            replies.push(NodeReply::from_int(reply));
        }
        replies
    }

    /// The holding of `lock` if it is `token`'s.
    fn holding(&self, lock: &str, token: u64) -> Option<Holding> {
        self.held.get(lock).filter(|h| h.token == token).cloned()
    }
}

#[derive(Clone, Copy)]
enum Which {
    Acquire,
    Renew,
    Release,
}

fn whole_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl LockClient for RedlockClient {
    fn service(&self) -> &'static str {
        "redlock"
    }

    async fn acquire(&mut self, lock: &str, ttl: Duration) -> Completion<Grant> {
        let start = tokio::time::Instant::now();
        let value = match self.random_value() {
            Ok(v) => v,
            Err(e) => return Completion::Fail(format!("no random value: {e}")),
        };
        let (key, fence) = redis::keys(lock);
        let args = [value.clone(), redis::ttl_ms(ttl).to_string()];
        let acquired = self
            .on_every_node(Which::Acquire, &[&key, &fence], &args)
            .await;
        let left = validity(ttl, start.elapsed());
        match acquire_verdict(&acquired, left) {
            Ok(token) => {
                self.held.insert(lock.to_owned(), Holding { token, value });
                Completion::Ok(Grant {
                    token,
                    lease_ms: whole_ms(lease(ttl)),
                })
            }
            Err(why) => {
                let released = self.on_every_node(Which::Release, &[&key], &[value]).await;
                abandoned(&acquired, &released, why)
            }
        }
    }

    async fn renew(&mut self, lock: &str, token: u64, ttl: Duration) -> Completion<Grant> {
        let Some(h) = self.holding(lock, token) else {
            return Completion::Fail("not held by this client".into());
        };
        let start = tokio::time::Instant::now();
        let (key, _) = redis::keys(lock);
        let args = [h.value, redis::ttl_ms(ttl).to_string()];
        let replies = self.on_every_node(Which::Renew, &[&key], &args).await;
        let grant = Grant {
            token,
            lease_ms: whole_ms(lease(ttl)),
        };
        renew_verdict(&replies, validity(ttl, start.elapsed()), grant)
    }

    async fn release(&mut self, lock: &str, token: u64) -> Completion<()> {
        let Some(h) = self.holding(lock, token) else {
            return Completion::Fail("not held by this client".into());
        };
        // Whatever the nodes answer, this client is done with the holding.
        self.held.remove(lock);
        let (key, _) = redis::keys(lock);
        let replies = self
            .on_every_node(Which::Release, &[&key], &[h.value])
            .await;
        release_verdict(&replies)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use NodeReply::{Down, No, Unknown, Yes};

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn a_majority_is_more_than_half() {
        assert_eq!(
            [1, 2, 3, 4, 5, 6, 7].map(quorum),
            [1, 2, 2, 3, 3, 4, 4],
            "n/2 + 1"
        );
    }

    #[test]
    fn validity_is_ttl_minus_elapsed_minus_drift() {
        // drift = 1% of the TTL + 2 ms.
        assert_eq!(drift(MS(1000)), MS(12));
        assert_eq!(drift(MS(10_000)), MS(102));
        assert_eq!(lease(MS(1000)), MS(988));
        assert_eq!(validity(MS(1000), MS(100)), Some(MS(888)));
        assert_eq!(validity(MS(1000), MS(987)), Some(MS(1)));
        assert_eq!(validity(MS(1000), MS(988)), None, "zero is not valid");
        assert_eq!(validity(MS(1000), MS(2000)), None);
        // A TTL the drift eats: never valid.
        assert_eq!(lease(MS(2)), Duration::ZERO);
        assert_eq!(validity(MS(2), Duration::ZERO), None);
    }

    #[test]
    fn each_node_gets_a_share_of_the_timeout_capped_at_50ms() {
        assert_eq!(node_timeout(MS(500), 5), MS(50));
        assert_eq!(node_timeout(MS(2000), 5), MS(50));
        assert_eq!(node_timeout(MS(100), 5), MS(20));
        assert_eq!(node_timeout(MS(3), 5), MS(1));
        assert_eq!(node_timeout(MS(30), 0), MS(30));
    }

    #[test]
    fn a_majority_with_validity_left_holds_with_its_largest_counter() {
        let v = Some(MS(500));
        assert_eq!(
            acquire_verdict(&[Yes(4), Yes(9), No, Yes(7), Unknown], v),
            Ok(9)
        );
        assert_eq!(acquire_verdict(&[Yes(1), Yes(2), Yes(3)], v), Ok(3));
        // Two of five is no majority, however many may have set it.
        let e = acquire_verdict(&[Yes(4), Yes(9), Unknown, Unknown, Down], v).unwrap_err();
        assert!(e.starts_with("no majority: 2 of 5 granted"), "{e}");
        // A majority, but too late.
        let e = acquire_verdict(&[Yes(4), Yes(9), Yes(3), No, No], None).unwrap_err();
        assert!(e.starts_with("no validity left"), "{e}");
        // Four nodes need three.
        assert!(acquire_verdict(&[Yes(1), Yes(2), No, No], v).is_err());
    }

    #[test]
    fn an_abandoned_acquire_is_info_when_a_majority_may_still_hold_it() {
        // Released everywhere it was set: certainly not held.
        let out = abandoned(
            &[Yes(1), Yes(2), No, No, Down],
            &[Yes(0), Yes(0), No, No, Down],
            "why".into(),
        );
        assert_eq!(out, Completion::Fail("why".into()));
        // Two set and not confirmed released, one timed out: three may hold it.
        let out = abandoned(
            &[Yes(1), Yes(2), Unknown, No, No],
            &[Down, Unknown, No, No, No],
            "why".into(),
        );
        assert!(
            matches!(out, Completion::Info(ref e) if e.contains("3 of 5")),
            "{out:?}"
        );
        // A timed-out set is gone only if the release deleted it.
        let out = abandoned(
            &[Yes(1), Unknown, Unknown, No, No],
            &[Yes(0), Yes(0), No, No, No],
            "why".into(),
        );
        assert!(matches!(out, Completion::Fail(_)), "{out:?}");
        let out = abandoned(
            &[Yes(1), Unknown, Unknown, No, No],
            &[Unknown, Yes(0), No, No, No],
            "why".into(),
        );
        assert!(matches!(out, Completion::Fail(_)), "two of five: {out:?}");
    }

    #[test]
    fn renew_needs_a_majority_within_validity() {
        let g = Grant {
            token: 7,
            lease_ms: 988,
        };
        let v = Some(MS(900));
        assert_eq!(
            renew_verdict(&[Yes(1), Yes(1), Yes(1), No, Down], v, g),
            Completion::Ok(g)
        );
        assert!(matches!(
            renew_verdict(&[Yes(1), Yes(1), Yes(1), No, No], None, g),
            Completion::Info(_)
        ));
        assert!(matches!(
            renew_verdict(&[Yes(1), Yes(1), Unknown, No, No], v, g),
            Completion::Info(_)
        ));
        assert!(matches!(
            renew_verdict(&[Yes(1), Yes(1), No, No, Down], v, g),
            Completion::Fail(ref e) if e.starts_with("lease lost")
        ));
    }

    #[test]
    fn release_is_ok_only_when_a_majority_confirms_the_key_gone() {
        assert_eq!(
            release_verdict(&[Yes(1), Yes(1), No, No, Down]),
            Completion::Ok(())
        );
        assert_eq!(
            release_verdict(&[Yes(1), No, No, Down, Down]),
            Completion::Ok(())
        );
        assert!(matches!(
            release_verdict(&[No, No, No, Down, Down]),
            Completion::Fail(ref e) if e.starts_with("not held")
        ));
        assert!(matches!(
            release_verdict(&[Yes(1), Yes(1), Unknown, Unknown, Down]),
            Completion::Info(_)
        ));
        assert!(matches!(
            release_verdict(&[No, No, No, No, Unknown]),
            Completion::Info(_)
        ));
    }

    #[test]
    fn node_replies_map_certainty() {
        use ::redis::Value;
        assert_eq!(NodeReply::from_int(Completion::Ok(Value::Int(5))), Yes(5));
        assert_eq!(NodeReply::from_int(Completion::Ok(Value::Nil)), No);
        assert_eq!(NodeReply::from_int(Completion::Ok(Value::Int(0))), No);
        assert_eq!(
            NodeReply::from_int(Completion::Fail("cannot connect: refused".into())),
            Down
        );
        assert_eq!(
            NodeReply::from_int(Completion::Fail("server error: x".into())),
            No
        );
        assert_eq!(
            NodeReply::from_int(Completion::Info("timeout".into())),
            Unknown
        );
    }

    #[test]
    fn values_are_unique_per_acquisition() {
        let addrs = ["127.0.0.1:1".to_owned(), "127.0.0.1:2".to_owned()];
        let mut c = RedlockClient::new(&addrs, "w1", MS(500)).unwrap();
        let a = c.random_value().unwrap();
        let b = c.random_value().unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with("w1:") && a.len() == 3 + 40, "{a}");
        assert_eq!(c.node_timeout(), MS(50));
        assert!(RedlockClient::new(&[], "w1", MS(500)).is_err());
        assert!(RedlockClient::new(&["nowhere".to_owned()], "w1", MS(500)).is_err());
    }
}
