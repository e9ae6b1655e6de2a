//! Leases: what the lock service granted, derived once from the operations.
//!
//! Every check that reasons about leases (stale write, mutual exclusion, the
//! lease-aware lock model of the linearizability search) and the report read
//! them from here, so that they all agree on what a lease is.
//!
//! # The model
//!
//! A **lease** is one `(lock, token)`: it exists when an `ok` `acquire` of
//! `lock` returned `token`. Its **holder** is the node of that first ok acquire.
//! Its **lease length** is the `lease_ms` of the first ok acquire of the lease
//! that names one.
//!
//! **Grants.** Every `ok` acquire of the lease and every `ok` `renew` of it is
//! a grant. A grant sent at `sent` (its invocation) and answered at `replied`
//! with a lease of `lease_ms` (the renew's own, else the lease length) has the
//! **deadline** `sent + lease_ms · 10⁶`: the service starts a lease no earlier
//! than it receives the request, so this is the earliest moment the lease may
//! end, and the only one a client can know without trusting the server's clock.
//! A grant whose lease length is unknown has no deadline (it lasts forever).
//!
//! A renew naming no lock, or a lock that never granted its token, belongs to
//! the lease of the first ok acquire of its token; one whose token no ok
//! acquire granted belongs to no lease. So does a release.
//!
//! **Possibly held** (the holder may still act): at time `x`, by the grants
//! *sent no later than `x`*. The deadline at `x` is
//!
//! ```text
//! deadline_at(x) = max { deadline(g) | grant g of the lease, sent(g) ≤ x }
//! ```
//!
//! and the lease is possibly held at `x` when `x ≤ deadline_at(x)` (the instant
//! of the deadline itself is still within). A grant sent later says nothing
//! about `x`: a renew sent after a lease lapsed (which a lenient, buggy service
//! may answer `ok`) starts a new interval and leaves a **gap**, in which the
//! lease is not held. In intervals: each grant covers `[sent, deadline + 1 ns)`
//! (times are whole nanoseconds), and the possible intervals are their union,
//! touching ones merged.
//!
//! **Certainly held** (the service certainly vouched for the lease): a grant
//! happened at some unknown moment of `[sent, replied]` and so certainly covers
//! `[replied, deadline)`, nothing if it was answered after its own deadline.
//! A release that did not fail (`ok`, `info` or never answered) may have taken
//! effect as soon as it was sent, so it ends, at its send time, every piece
//! that started before it. The certain intervals are the union of what is left,
//! touching ones merged.
//!
//! **Pending renews**: renews of the lease that ended `info` or never
//! completed. They may have extended the lease by an unknown amount from their
//! send time on, so they make nothing certain and nothing certainly lapsed.
//! Failed renews and acquires, and acquires of unknown outcome, grant nothing.
//!
//! **Superseding grants**: an ok acquire of the same lock with a larger token.
//! Once one has been answered, the holder of the smaller token has certainly
//! lost the lock, whatever its deadline says ([`Leases::superseding`]).
//!
//! **Tokens.** Writes name a token but no lock: [`Leases::token`] views all the
//! leases of one token together (usually one), their grants pooled.
//!
//! # Example
//!
//! w1 acquires token 7 with a 1 s lease at 0 ms; the lease lapses at 1000 ms;
//! a lenient service answers w1's late renew sent at 2000 ms:
//!
//! ```
//! use leasehold_checker::{Certainty, Leases, read_history};
//!
//! let ms = 1_000_000u64;
//! let history = read_history(
//!     r#"{"index":0,"time":0,"process":1,"node":"w1","type":"invoke","f":"acquire","value":{"lock":"L"}}
//! {"index":1,"time":2000000,"process":1,"node":"w1","type":"ok","f":"acquire","value":{"lock":"L","token":7,"lease_ms":1000}}
//! {"index":2,"time":2000000000,"process":1,"node":"w1","type":"invoke","f":"renew","value":{"lock":"L","token":7}}
//! {"index":3,"time":2001000000,"process":1,"node":"w1","type":"ok","f":"renew","value":{"lock":"L","token":7,"lease_ms":1000}}"#
//!         .as_bytes(),
//! )
//! .unwrap();
//! let ops = history.ops();
//! let leases = Leases::from_ops(&ops);
//! let lease = leases.of("L", 7).unwrap();
//! assert_eq!(lease.holder(), Some("w1"));
//!
//! // The deadline at 1500 ms knows only the acquire: the lease had lapsed.
//! assert_eq!(lease.deadline_at(1500 * ms), Some(1000 * ms));
//! assert_eq!(lease.held_at(1500 * ms), None);
//! // After the late renew, it is held again.
//! assert_eq!(lease.deadline_at(2500 * ms), Some(3000 * ms));
//! assert_eq!(lease.held_at(2500 * ms), Some(Certainty::Certain));
//! // Before the renew's reply, only possibly.
//! assert_eq!(lease.held_at(2000 * ms), Some(Certainty::Possible));
//! assert_eq!(lease.first_lapse(500 * ms, 2500 * ms), Some(1000 * ms + 1));
//!
//! let possible: Vec<_> = lease.possible().iter().map(|i| (i.start / ms, i.end / ms)).collect();
//! assert_eq!(possible, [(0, 1000), (2000, 3000)]); // each end is the deadline + 1 ns
//! let certain: Vec<_> = lease.certain().iter().map(|i| (i.start / ms, i.end / ms)).collect();
//! assert_eq!(certain, [(2, 1000), (2001, 3000)]);
//! ```

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;

use crate::op::{Call, Op, Outcome};
use crate::verdict::Certainty;

const NS_PER_MS: u64 = 1_000_000;

/// One ok acquire or ok renew of a lease.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grant<'a> {
    /// The ok acquire or ok renew itself.
    pub op: &'a Op,
    /// The lease it granted: the reply's `lease_ms`, else the lease length of
    /// the lease; `None` when neither is known.
    pub lease_ms: Option<u64>,
}

impl Grant<'_> {
    /// When it was sent (invoked).
    pub fn sent(&self) -> u64 {
        self.op.invoke_time
    }

    /// When its reply arrived.
    pub fn replied(&self) -> u64 {
        self.op.effect_deadline()
    }

    /// `sent + lease`; `None` when the lease length is unknown.
    pub fn deadline(&self) -> Option<u64> {
        self.lease_ms
            .map(|ms| self.sent().saturating_add(ms.saturating_mul(NS_PER_MS)))
    }

    fn deadline_or_never(&self) -> u64 {
        self.deadline().unwrap_or(u64::MAX)
    }

    /// The token it granted or renewed.
    pub fn token(&self) -> u64 {
        match self.op.call {
            Call::Acquire { token, .. } => token.unwrap_or_default(),
            Call::Renew { token, .. } => token,
            _ => 0,
        }
    }

    /// Whether it is a renew rather than an acquire.
    pub fn is_renew(&self) -> bool {
        matches!(self.op.call, Call::Renew { .. })
    }
}

/// A stretch `[start, end)` of time, in ns, in which a lease was held, with
/// the invocation indexes of the grants whose send or reply starts it and whose
/// deadline ends it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interval {
    /// Inclusive: the grant's send time for a possible interval, its reply
    /// time for a certain one.
    pub start: u64,
    /// Exclusive. For a possible interval, the deadline plus one nanosecond
    /// (`u64::MAX` for a lease without deadline).
    pub end: u64,
    /// `Possible`: the holder may still have held the lease; `Certain`: the
    /// lock service certainly vouched for it.
    pub certainty: Certainty,
    /// History index of the invocation of the grant that starts it.
    pub start_op: u64,
    /// History index of the invocation of the grant whose deadline ends it
    /// (that grant's also when a release cut a certain interval short).
    pub end_op: u64,
}

impl Interval {
    /// Whether `x` lies in `[start, end)`.
    pub fn contains(&self, x: u64) -> bool {
        self.start <= x && x < self.end
    }

    /// The last instant within: for a possible interval, its deadline
    /// (`u64::MAX` when it has none).
    pub fn deadline(&self) -> u64 {
        match self.end {
            u64::MAX => u64::MAX,
            end => end - 1,
        }
    }
}

/// What is known of one `(lock, token)`; see the module documentation.
#[derive(Clone, Debug)]
pub struct Lease<'a> {
    lock: &'a str,
    lock_id: usize,
    token: u64,
    first_acquire: &'a Op,
    lease_ms: Option<u64>,
    grants: Vec<Grant<'a>>,
    pending: Vec<&'a Op>,
    releases: Vec<&'a Op>,
    /// `(sent, deadline_at(sent), grant)` at each send time, in send order,
    /// where the deadline grows: answers `deadline_at` by binary search.
    reach: Vec<(u64, u64, usize)>,
    possible: Vec<Interval>,
    certain: Vec<Interval>,
}

impl<'a> Lease<'a> {
    /// The lock that granted the token.
    pub fn lock(&self) -> &'a str {
        self.lock
    }

    /// The fencing token.
    pub fn token(&self) -> u64 {
        self.token
    }

    /// The first ok acquire that granted the token.
    pub fn first_acquire(&self) -> &'a Op {
        self.first_acquire
    }

    /// The node of the first ok acquire.
    pub fn holder(&self) -> Option<&'a str> {
        self.first_acquire.node.as_deref()
    }

    /// The lease length renews without `lease_ms` fall back on.
    pub fn lease_ms(&self) -> Option<u64> {
        self.lease_ms
    }

    /// The ok acquires and ok renews, in invocation order.
    pub fn grants(&self) -> &[Grant<'a>] {
        &self.grants
    }

    /// Renews that ended `info` or never completed, in invocation order.
    pub fn pending_renews(&self) -> &[&'a Op] {
        &self.pending
    }

    /// Releases that did not fail, in invocation order.
    pub fn releases(&self) -> &[&'a Op] {
        &self.releases
    }

    /// The possible intervals, in time order.
    pub fn possible(&self) -> &[Interval] {
        &self.possible
    }

    /// The certain intervals, in time order.
    pub fn certain(&self) -> &[Interval] {
        &self.certain
    }

    /// Every interval, possible and certain, by start.
    pub fn intervals(&self) -> impl Iterator<Item = &Interval> {
        let mut all: Vec<&Interval> = self.possible.iter().chain(&self.certain).collect();
        all.sort_by_key(|i| (i.start, i.certainty == Certainty::Possible));
        all.into_iter()
    }

    /// The largest deadline of the grants sent no later than `x`; `None` when
    /// none was sent by then. `u64::MAX` when one has no deadline.
    pub fn deadline_at(&self, x: u64) -> Option<u64> {
        self.deadline_grant_at(x).map(|g| g.deadline_or_never())
    }

    /// The grant that sets [`Lease::deadline_at`] (the first sent, on a tie).
    pub fn deadline_grant_at(&self, x: u64) -> Option<&Grant<'a>> {
        let n = self.reach.partition_point(|&(sent, _, _)| sent <= x);
        let &(_, _, g) = self.reach.get(n.checked_sub(1)?)?;
        Some(&self.grants[g])
    }

    /// Whether the lease was held at `x`: certainly, possibly, or not at all
    /// (`None`). Pending renews are not counted.
    pub fn held_at(&self, x: u64) -> Option<Certainty> {
        if find(&self.certain, x).is_some() {
            Some(Certainty::Certain)
        } else if find(&self.possible, x).is_some() {
            Some(Certainty::Possible)
        } else {
            None
        }
    }

    /// The first moment of `[from, to]` at which the lease was not possibly
    /// held (it had lapsed, or not begun); `None` if it was possibly held
    /// throughout.
    pub fn first_lapse(&self, from: u64, to: u64) -> Option<u64> {
        first_uncovered(self.possible.iter(), from, to)
    }

    /// The earliest send time of a pending renew.
    pub fn first_pending_renew(&self) -> Option<u64> {
        self.pending.iter().map(|op| op.invoke_time).min()
    }
}

/// The interval of `list` (sorted, disjoint) containing `x`.
fn find(list: &[Interval], x: u64) -> Option<&Interval> {
    let n = list.partition_point(|i| i.start <= x);
    list.get(n.checked_sub(1)?).filter(|i| i.contains(x))
}

/// The first moment of `[from, to]` no interval of `intervals` covers.
fn first_uncovered<'i>(
    intervals: impl Iterator<Item = &'i Interval>,
    from: u64,
    to: u64,
) -> Option<u64> {
    let mut near: Vec<&Interval> = intervals
        .filter(|i| i.end > from && i.start <= to)
        .collect();
    near.sort_unstable_by_key(|i| i.start);
    let mut at = from;
    for i in near {
        if i.start > at {
            break;
        }
        at = at.max(i.end);
        if at > to {
            return None;
        }
    }
    Some(at)
}

/// Merges sorted-by-start intervals that overlap or touch; the end op is that
/// of the interval reaching furthest.
fn merge(mut pieces: Vec<Interval>) -> Vec<Interval> {
    pieces.sort_unstable_by_key(|p| (p.start, p.end));
    let mut merged: Vec<Interval> = Vec::with_capacity(pieces.len());
    for p in pieces {
        match merged.last_mut() {
            Some(m) if p.start <= m.end => {
                if p.end > m.end {
                    m.end = p.end;
                    m.end_op = p.end_op;
                }
            }
            _ => merged.push(p),
        }
    }
    merged
}

/// The leases of one token, together: a write names a token but no lock.
#[derive(Clone, Copy, Debug)]
pub struct TokenLeases<'l, 'a> {
    leases: &'l Leases<'a>,
    ids: &'l [usize],
}

impl<'l, 'a> TokenLeases<'l, 'a> {
    /// The lease of the token's first ok acquire: its lock is the token's lock.
    pub fn first(&self) -> &'l Lease<'a> {
        &self.leases.leases[self.ids[0]]
    }

    /// The leases of the token, that of its first ok acquire first.
    pub fn iter(&self) -> impl Iterator<Item = &'l Lease<'a>> + use<'l, 'a> {
        let leases = self.leases;
        self.ids.iter().map(move |&l| &leases.leases[l])
    }

    /// [`Lease::deadline_grant_at`] over all the leases: the largest deadline.
    pub fn deadline_grant_at(&self, x: u64) -> Option<&'l Grant<'a>> {
        let mut best: Option<&Grant<'a>> = None;
        for g in self.iter().filter_map(|l| l.deadline_grant_at(x)) {
            if best.is_none_or(|b| g.deadline_or_never() > b.deadline_or_never()) {
                best = Some(g);
            }
        }
        best
    }

    /// The possible interval of the union of the leases that contains `x`.
    pub fn possible_at(&self, x: u64) -> Option<Interval> {
        if let [l] = self.ids {
            return find(&self.leases.leases[*l].possible, x).copied();
        }
        let all = merge(
            self.iter()
                .flat_map(|l| l.possible.iter().copied())
                .collect(),
        );
        find(&all, x).copied()
    }

    /// The first possible interval of the union starting after `x`.
    pub fn possible_after(&self, x: u64) -> Option<Interval> {
        self.iter()
            .flat_map(|l| l.possible.iter())
            .filter(|i| i.start > x)
            .min_by_key(|i| i.start)
            .copied()
    }

    /// [`Lease::first_lapse`] of the union of the leases.
    pub fn first_lapse(&self, from: u64, to: u64) -> Option<u64> {
        first_uncovered(self.iter().flat_map(|l| l.possible.iter()), from, to)
    }

    /// [`Lease::first_pending_renew`] over all the leases.
    pub fn first_pending_renew(&self) -> Option<u64> {
        self.iter().filter_map(Lease::first_pending_renew).min()
    }

    /// Every grant of the token, in invocation order.
    pub fn grants(&self) -> Vec<&'l Grant<'a>> {
        let mut all: Vec<&Grant<'a>> = self.iter().flat_map(|l| l.grants.iter()).collect();
        all.sort_by_key(|g| g.op.invoke_index);
        all
    }
}

/// Every lease of a history; see the module documentation.
#[derive(Clone, Debug, Default)]
pub struct Leases<'a> {
    locks: Vec<&'a str>,
    lock_ids: HashMap<&'a str, usize>,
    /// In order of their first ok acquire.
    leases: Vec<Lease<'a>>,
    by_key: HashMap<(usize, u64), usize>,
    /// The leases of each lock, by lock id.
    by_lock: Vec<Vec<usize>>,
    /// The leases of each token, that of its first ok acquire first.
    by_token: HashMap<u64, Vec<usize>>,
    /// Every ok acquire as `(lease, grant)`, in order of reply time.
    acquires: Vec<(usize, usize)>,
}

impl<'a> Leases<'a> {
    /// Derives every lease of `ops` (in invocation order, as
    /// [`History::ops`](crate::History::ops) gives them). O(n log n).
    pub fn from_ops(ops: &'a [Op]) -> Leases<'a> {
        let mut out = Leases::default();
        // Acquires first: they decide which leases exist and their length.
        for op in ops {
            let Call::Acquire {
                lock,
                token: Some(token),
                lease_ms,
            } = &op.call
            else {
                continue;
            };
            if !(op.outcome == Outcome::Ok && op.complete_time.is_some()) {
                continue;
            }
            let l = out.lease_for_acquire(op, lock, *token);
            let lease = &mut out.leases[l];
            if lease.lease_ms.is_none() {
                lease.lease_ms = *lease_ms;
            }
            out.acquires.push((l, lease.grants.len()));
            lease.grants.push(Grant {
                op,
                lease_ms: *lease_ms,
            });
        }
        for op in ops {
            match &op.call {
                Call::Renew {
                    lock,
                    token,
                    lease_ms,
                } => {
                    let Some(l) = out.attributed(lock, *token) else {
                        continue;
                    };
                    let lease = &mut out.leases[l];
                    match (op.outcome, op.complete_time) {
                        (Outcome::Ok, Some(_)) => lease.grants.push(Grant {
                            op,
                            lease_ms: lease_ms.or(lease.lease_ms),
                        }),
                        (Outcome::Info, _) => lease.pending.push(op),
                        _ => {}
                    }
                }
                Call::Release { lock, token } if op.outcome != Outcome::Fail => {
                    if let Some(l) = out.attributed(lock, *token) {
                        out.leases[l].releases.push(op);
                    }
                }
                _ => {}
            }
        }
        // Renews were appended after the acquires: put the grants back in
        // invocation order, keeping the acquires' positions up to date.
        for (l, lease) in out.leases.iter_mut().enumerate() {
            let mut order: Vec<usize> = (0..lease.grants.len()).collect();
            order.sort_by_key(|&g| lease.grants[g].op.invoke_index);
            let mut moved = vec![0; order.len()];
            for (to, &from) in order.iter().enumerate() {
                moved[from] = to;
            }
            lease.grants = order.iter().map(|&g| lease.grants[g]).collect();
            for a in out.acquires.iter_mut().filter(|a| a.0 == l) {
                a.1 = moved[a.1];
            }
            lease.finish();
        }
        let leases = &out.leases;
        out.acquires
            .sort_by_key(|&(l, g)| leases[l].grants[g].replied());
        out
    }

    fn lease_for_acquire(&mut self, op: &'a Op, lock: &'a str, token: u64) -> usize {
        let next_id = self.locks.len();
        let lock_id = *self.lock_ids.entry(lock).or_insert(next_id);
        if lock_id == next_id {
            self.locks.push(lock);
            self.by_lock.push(Vec::new());
        }
        let next = self.leases.len();
        let l = *self.by_key.entry((lock_id, token)).or_insert(next);
        if l == next {
            self.leases.push(Lease {
                lock,
                lock_id,
                token,
                first_acquire: op,
                lease_ms: None,
                grants: Vec::new(),
                pending: Vec::new(),
                releases: Vec::new(),
                reach: Vec::new(),
                possible: Vec::new(),
                certain: Vec::new(),
            });
            self.by_token.entry(token).or_default().push(l);
            self.by_lock[lock_id].push(l);
        }
        l
    }

    /// The lease a renew or release of `(lock, token)` belongs to.
    fn attributed(&self, lock: &str, token: u64) -> Option<usize> {
        if !lock.is_empty()
            && let Some(&id) = self.lock_ids.get(lock)
            && let Some(&l) = self.by_key.get(&(id, token))
        {
            return Some(l);
        }
        self.by_token.get(&token).map(|ids| ids[0])
    }

    /// The lease of `(lock, token)`, if an ok acquire granted it.
    pub fn of(&self, lock: &str, token: u64) -> Option<&Lease<'a>> {
        let id = self.lock_ids.get(lock)?;
        self.by_key.get(&(*id, token)).map(|&l| &self.leases[l])
    }

    /// The lease a renew or release naming `(lock, token)` belongs to: that
    /// lease, else the one of the token's first ok acquire.
    pub fn for_call(&self, lock: &str, token: u64) -> Option<&Lease<'a>> {
        self.attributed(lock, token).map(|l| &self.leases[l])
    }

    /// The leases of `token`, on whichever lock granted it.
    pub fn token(&self, token: u64) -> Option<TokenLeases<'_, 'a>> {
        self.by_token
            .get(&token)
            .map(|ids| TokenLeases { leases: self, ids })
    }

    /// Every lease, in order of its first ok acquire.
    pub fn iter(&self) -> impl Iterator<Item = &Lease<'a>> {
        self.leases.iter()
    }

    /// How many leases: distinct `(lock, token)` an ok acquire granted.
    pub fn len(&self) -> usize {
        self.leases.len()
    }

    /// Whether no ok acquire granted a token.
    pub fn is_empty(&self) -> bool {
        self.leases.is_empty()
    }

    /// The locks, in order of their first ok acquire.
    pub fn locks(&self) -> &[&'a str] {
        &self.locks
    }

    /// The leases of `lock`.
    pub fn of_lock(&self, lock: &str) -> impl Iterator<Item = &Lease<'a>> {
        let ids = match self.lock_ids.get(lock) {
            Some(&id) => self.by_lock[id].as_slice(),
            None => &[],
        };
        ids.iter().map(|&l| &self.leases[l])
    }

    /// Who held `lock` at `x`, and how surely.
    pub fn holders_at(&self, lock: &str, x: u64) -> impl Iterator<Item = (&Lease<'a>, Certainty)> {
        self.of_lock(lock)
            .filter_map(move |l| l.held_at(x).map(|c| (l, c)))
    }

    /// Every ok acquire that granted a token, in order of reply time.
    pub fn acquires(&self) -> impl Iterator<Item = &Grant<'a>> {
        self.acquires
            .iter()
            .map(|&(l, g)| &self.leases[l].grants[g])
    }

    /// For each `(lease, at)`: the smallest token above the lease's, of the same
    /// lock, whose ok acquire was answered strictly before `at`, as that
    /// acquire (the first answered, when the token was granted twice).
    ///
    /// One offline sweep over the acquires in reply order, O((n + q) log n).
    pub fn superseding(&self, asks: &[(&Lease<'a>, u64)]) -> Vec<Option<&Grant<'a>>> {
        let mut order: Vec<usize> = (0..asks.len()).collect();
        order.sort_unstable_by_key(|&q| asks[q].1);
        let mut granted: Vec<BTreeMap<u64, usize>> = vec![BTreeMap::new(); self.locks.len()];
        let mut out = vec![None; asks.len()];
        let mut next = 0;
        for q in order {
            let (lease, at) = asks[q];
            while let Some(&(l, g)) = self.acquires.get(next) {
                let acquire = &self.leases[l];
                if acquire.grants[g].replied() >= at {
                    break;
                }
                granted[acquire.lock_id]
                    .entry(acquire.token)
                    .or_insert(next);
                next += 1;
            }
            out[q] = granted[lease.lock_id]
                .range((Bound::Excluded(lease.token), Bound::Unbounded))
                .next()
                .map(|(_, &a)| {
                    let (l, g) = self.acquires[a];
                    &self.leases[l].grants[g]
                });
        }
        out
    }
}

impl Lease<'_> {
    /// Computes the deadline steps and the intervals once the grants are known.
    fn finish(&mut self) {
        let mut by_sent: Vec<usize> = (0..self.grants.len()).collect();
        by_sent.sort_by_key(|&g| self.grants[g].sent());
        self.reach.clear();
        for g in by_sent {
            let grant = &self.grants[g];
            let deadline = grant.deadline_or_never();
            match self.reach.last() {
                Some(&(_, best, _)) if deadline <= best => {}
                _ => self.reach.push((grant.sent(), deadline, g)),
            }
        }

        self.possible = merge(
            self.grants
                .iter()
                .map(|g| Interval {
                    start: g.sent(),
                    end: g.deadline_or_never().saturating_add(1),
                    certainty: Certainty::Possible,
                    start_op: g.op.invoke_index,
                    end_op: g.op.invoke_index,
                })
                .collect(),
        );

        let mut releases: Vec<u64> = self.releases.iter().map(|r| r.invoke_time).collect();
        releases.sort_unstable();
        self.certain = merge(
            self.grants
                .iter()
                .filter_map(|g| {
                    let (start, end) = (g.replied(), g.deadline()?);
                    // The first release sent at or after the piece starts ends it.
                    let r = releases.partition_point(|&x| x < start);
                    let end = releases.get(r).map_or(end, |&x| end.min(x));
                    (end > start).then_some(Interval {
                        start,
                        end,
                        certainty: Certainty::Certain,
                        start_op: g.op.invoke_index,
                        end_op: g.op.invoke_index,
                    })
                })
                .collect(),
        );
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::event::EventType;
    use crate::test_support::{Builder, ms};

    #[test]
    fn a_late_renew_leaves_a_gap() {
        let mut b = Builder::new();
        b.acquire(1, "L", 1, 1000, 0, 10);
        b.renew(1, "L", 1, 1000, 2000, Some((2010, EventType::Ok)));
        let ops = b.ops();
        let leases = Leases::from_ops(&ops);
        let lease = leases.of("L", 1).unwrap();
        assert_eq!(lease.deadline_at(ms(1500)), Some(ms(1000)));
        assert_eq!(lease.deadline_at(ms(2000)), Some(ms(3000)));
        assert_eq!(lease.deadline_at(0), Some(ms(1000)));
        assert_eq!(lease.first_lapse(ms(500), ms(2500)), Some(ms(1000) + 1));
        assert_eq!(lease.first_lapse(ms(2000), ms(2500)), None);
        assert_eq!(lease.first_lapse(ms(1000), ms(1000)), None);
        assert_eq!(lease.held_at(ms(1000)), Some(Certainty::Possible));
        assert_eq!(lease.held_at(ms(500)), Some(Certainty::Certain));
        assert_eq!(lease.held_at(ms(1500)), None);
        assert_eq!(lease.possible().len(), 2);
        assert_eq!(lease.certain().len(), 2);
    }

    #[test]
    fn a_timely_renew_extends_without_a_gap() {
        let mut b = Builder::new();
        b.acquire(1, "L", 1, 1000, 0, 10);
        b.renew(1, "L", 1, 1000, 800, Some((810, EventType::Ok)));
        let ops = b.ops();
        let leases = Leases::from_ops(&ops);
        let lease = leases.of("L", 1).unwrap();
        assert_eq!(lease.deadline_at(ms(1500)), Some(ms(1800)));
        assert_eq!(
            lease.deadline_grant_at(ms(1500)).unwrap().op.invoke_index,
            2
        );
        assert_eq!(lease.first_lapse(0, ms(1800)), None);
        assert_eq!(
            lease.possible(),
            [Interval {
                start: 0,
                end: ms(1800) + 1,
                certainty: Certainty::Possible,
                start_op: 0,
                end_op: 2,
            }]
        );
        assert_eq!(
            lease
                .certain()
                .iter()
                .map(|i| (i.start, i.end))
                .collect::<Vec<_>>(),
            [(ms(10), ms(1800))]
        );
        assert_eq!(lease.intervals().count(), 2);
    }

    #[test]
    fn renews_and_releases_without_a_lock_belong_to_the_tokens_first_lease() {
        let mut b = Builder::new();
        b.acquire(1, "A", 5, 100, 0, 1);
        b.acquire(2, "B", 5, 100, 10, 11);
        b.invoke(1, 50, "renew", json!({"token": 5}));
        b.complete(1, 51, EventType::Ok, "renew", json!({}));
        b.invoke(2, 60, "release", json!({"lock": "B", "token": 5}));
        b.complete(2, 61, EventType::Info, "release", json!(null));
        b.renew(3, "A", 5, 100, 70, None);
        let ops = b.ops();
        let leases = Leases::from_ops(&ops);
        assert_eq!(leases.len(), 2);
        assert_eq!(leases.locks(), ["A", "B"]);
        let a = leases.of("A", 5).unwrap();
        let bl = leases.of("B", 5).unwrap();
        assert_eq!(a.grants().len(), 2);
        assert_eq!(a.grants()[1].lease_ms, Some(100));
        assert!(a.grants()[1].is_renew());
        assert_eq!(a.first_pending_renew(), Some(ms(70)));
        assert_eq!(bl.releases().len(), 1);
        // The release at 60 cuts B's certain interval short.
        assert_eq!(bl.certain()[0].end, ms(60));
        let token = leases.token(5).unwrap();
        assert_eq!(token.first().lock(), "A");
        assert_eq!(token.grants().len(), 3);
        assert_eq!(token.deadline_grant_at(ms(20)).unwrap().op.invoke_index, 2);
        assert_eq!(token.first_lapse(0, ms(150)), None);
        assert_eq!(token.first_lapse(0, ms(200)), Some(ms(150) + 1));
        assert!(leases.for_call("", 5).is_some_and(|l| l.lock() == "A"));
        assert!(leases.of("", 5).is_none());
        assert_eq!(leases.holders_at("B", ms(30)).count(), 1);
    }

    #[test]
    fn superseding_grants_are_the_smallest_larger_token_answered_before() {
        let mut b = Builder::new();
        b.acquire(1, "L", 7, 10_000, 0, 1);
        b.acquire(2, "L", 9, 10_000, 20, 21);
        b.acquire(3, "L", 8, 10_000, 12, 22);
        b.acquire(4, "M", 10, 10_000, 2, 3);
        let ops = b.ops();
        let leases = Leases::from_ops(&ops);
        let seven = leases.of("L", 7).unwrap();
        let found = leases.superseding(&[(seven, ms(21)), (seven, ms(22)), (seven, ms(23))]);
        let tokens: Vec<_> = found.iter().map(|g| g.map(|g| g.op.invoke_index)).collect();
        assert_eq!(tokens, [None, Some(2), Some(4)]);
        assert_eq!(leases.acquires().count(), 4);
    }
}
