//! The Wing–Gong–Lowe search over one partition.
//!
//! # The list
//!
//! Operations with a known output become two entries of a doubly linked list
//! ordered by time: a *call* and a *return*. Walking the list from the front,
//! the search tries to linearize each call it meets — the operations not yet
//! linearized whose invocation precedes every pending return, i.e. those that
//! may come next. When the model accepts one and the resulting search point is
//! new, its two entries are lifted out of the list, the old state is pushed on
//! the undo stack and the walk restarts from the front. Meeting a return entry
//! means the operation it closes had to be linearized by now: once the unknown
//! operations (below) have been tried too, the last choice is undone — the
//! entries go back where they were, dancing-links style — and the walk goes on
//! after it. The history is linearizable when every operation with a known
//! output has been lifted, and is not when there is nothing left to undo.
//!
//! # Unknown operations
//!
//! An operation whose output is unknown has no return: nothing ever forces it.
//! These sit in a second list, ordered by invocation, and are tried after the
//! known operations at each point (only those invoked before the first pending
//! return): they are linearized where they help, or never.
//!
//! # The memo
//!
//! A search point is (set of linearized operations, state). Lowe's cache keeps
//! every point visited; here the set is split into the known operations
//! (hashed incrementally: a random word per operation, XORed in and out) and
//! the unknown ones, and a point is skipped when a visited point has the same
//! known set and state and a *subset* of its unknown operations: whatever can
//! be done from the new point can be done from the old one (an unknown
//! operation precedes nothing in real time and never has to be linearized),
//! and the old one is explored anyway. With no unknown operations this is
//! Lowe's cache exactly.
//!
//! # Two phases
//!
//! Depth first, the search finds a linearization of a valid history quickly,
//! but when there is none and many unknown operations are pending it explores
//! the same points again and again: first with more unknown operations, later
//! with fewer. So the depth-first phase has a budget of points; past it, the
//! search starts again in order of the number of unknown operations used:
//! every point reachable with none, then with one, … Linearizing an unknown
//! operation then does not descend but queues the new point; each queued point
//! is explored depth first (known operations only) when its turn comes. A point
//! is then only ever reached first with a minimal set of unknown operations.

use std::collections::VecDeque;
use std::hash::{Hash, Hasher};
use std::time::Instant;

use hashbrown::HashTable;

use super::model::Model;
use super::types::{Counterexample, LimitHit, Limits, Linearizability, Operation};

const NONE: u32 = u32::MAX;
const HEAD: u32 = 0;

/// Points the depth-first phase may visit: this plus `PER_OP` per operation.
const PHASE_ONE_BASE: usize = 20_000;
const PHASE_ONE_PER_OP: usize = 20;

/// How often (in loop turns) the deadline is looked at.
const CLOCK_EVERY: u64 = 1024;

#[derive(Clone, Copy)]
struct Entry {
    /// Position of the operation in the partition.
    op: u32,
    /// Calls: the return entry. Returns: the call entry.
    partner: u32,
    /// Number among the known operations, in call order (bit of the known
    /// set).
    num: u32,
    call: bool,
    /// Position in time order among all entries (calls of unknown operations
    /// included).
    rank: u32,
}

/// A doubly linked list over `0..n+2` with a head (0) and a tail (n+1).
struct Links {
    next: Vec<u32>,
    prev: Vec<u32>,
}

impl Links {
    fn new(n: usize) -> Links {
        let n = n as u32 + 2;
        Links {
            next: (1..=n).collect(),
            prev: (0..n).map(|i| i.wrapping_sub(1)).collect(),
        }
    }

    #[inline]
    fn unlink(&mut self, e: u32) {
        let (p, n) = (self.prev[e as usize], self.next[e as usize]);
        self.next[p as usize] = n;
        self.prev[n as usize] = p;
    }

    /// Puts back the entry taken out last (dancing links).
    #[inline]
    fn relink(&mut self, e: u32) {
        let (p, n) = (self.prev[e as usize], self.next[e as usize]);
        self.next[p as usize] = e;
        self.prev[n as usize] = e;
    }
}

/// The visited points: per (known set, state) — a key — the minimal sets of
/// unknown operations it was reached with, as a linked list of records.
struct Memo<S> {
    /// (key, high half of its hash).
    table: HashTable<(u32, u32)>,
    known_words: usize,
    unknown_words: usize,
    hashes: Vec<u64>,
    known: Vec<u64>,
    states: Vec<S>,
    /// Per key, its first record.
    first_set: Vec<u32>,
    /// Records: `unknown_words` words each, and the next record of the key.
    sets: Vec<u64>,
    next_set: Vec<u32>,
    points: usize,
}

impl<S: Clone + Eq> Memo<S> {
    fn new(known_words: usize, unknown_words: usize) -> Self {
        Memo {
            table: HashTable::new(),
            known_words,
            unknown_words,
            hashes: Vec::new(),
            known: Vec::new(),
            states: Vec::new(),
            first_set: Vec::new(),
            sets: Vec::new(),
            next_set: Vec::new(),
            points: 0,
        }
    }

    fn set(&self, r: u32) -> &[u64] {
        let uw = self.unknown_words;
        &self.sets[r as usize * uw..(r as usize + 1) * uw]
    }

    /// A new record holding `unknown`, before `next`.
    fn record(&mut self, unknown: &[u64], next: u32) -> u32 {
        if self.unknown_words == 0 {
            return NONE;
        }
        self.sets.extend_from_slice(unknown);
        self.next_set.push(next);
        self.next_set.len() as u32 - 1
    }

    /// Records the point unless a visited one subsumes it; on success, the key
    /// of its (known set, state).
    fn insert(&mut self, hash: u64, known: &[u64], unknown: &[u64], state: &S) -> Option<u32> {
        let kw = self.known_words;
        let (hashes, known_arena, states) = (&self.hashes, &self.known, &self.states);
        let high = (hash >> 32) as u32;
        let found = self.table.find(hash, |&(k, h)| {
            let k = k as usize;
            h == high
                && hashes[k] == hash
                && known_arena[k * kw..(k + 1) * kw] == *known
                && states[k] == *state
        });
        let Some(&(k, _)) = found else {
            let k = self.states.len() as u32;
            let hashes = &self.hashes;
            self.table
                .insert_unique(hash, (k, high), |&(k, _)| hashes[k as usize]);
            self.hashes.push(hash);
            self.known.extend_from_slice(known);
            self.states.push(state.clone());
            let r = self.record(unknown, NONE);
            self.first_set.push(r);
            self.points += 1;
            return Some(k);
        };
        if self.unknown_words == 0 {
            return None;
        }
        let subset = |a: &[u64], b: &[u64]| a.iter().zip(b).all(|(a, b)| a & !b == 0);
        let mut r = self.first_set[k as usize];
        while r != NONE {
            if subset(self.set(r), unknown) {
                return None;
            }
            r = self.next_set[r as usize];
        }
        // Unlink the records the new one subsumes.
        let mut prev = NONE;
        let mut r = self.first_set[k as usize];
        while r != NONE {
            let next = self.next_set[r as usize];
            if subset(unknown, self.set(r)) {
                if prev == NONE {
                    self.first_set[k as usize] = next;
                } else {
                    self.next_set[prev as usize] = next;
                }
            } else {
                prev = r;
            }
            r = next;
        }
        let first = self.first_set[k as usize];
        self.first_set[k as usize] = self.record(unknown, first);
        self.points += 1;
        Some(k)
    }

    fn known_of(&self, k: u32) -> &[u64] {
        let kw = self.known_words;
        &self.known[k as usize * kw..(k as usize + 1) * kw]
    }
}

/// A well-mixed 64-bit value (splitmix64's finalizer).
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn hash_state<S: Hash>(s: &S) -> u64 {
    let mut h = rustc_hash::FxHasher::default();
    s.hash(&mut h);
    h.finish()
}

#[inline]
fn set(bits: &mut [u64], i: u32) {
    bits[i as usize / 64] |= 1 << (i % 64);
}

#[inline]
fn clear(bits: &mut [u64], i: u32) {
    bits[i as usize / 64] &= !(1 << (i % 64));
}

/// Set bits of `bits` from `from` on.
fn ones_from(bits: &[u64], from: u32) -> impl Iterator<Item = u32> + '_ {
    let first = from as usize / 64;
    bits.iter()
        .enumerate()
        .skip(first)
        .flat_map(move |(w, &word)| {
            let word = if w == first {
                word & (u64::MAX << (from % 64))
            } else {
                word
            };
            let mut rest = word;
            std::iter::from_fn(move || {
                (rest != 0).then(|| {
                    let b = rest.trailing_zeros();
                    rest &= rest - 1;
                    (w * 64) as u32 + b
                })
            })
        })
}

/// What one search found.
pub(crate) struct Searched {
    pub result: Linearizability,
    pub ops: usize,
    pub states: usize,
}

/// One choice on the undo stack.
struct Frame<S> {
    /// The entry taken: in the known list, or (when `unknown`) a node of the
    /// unknown list.
    entry: u32,
    unknown: bool,
    /// For unknown operations: the rank of the return entry that bounded the
    /// candidates when it was taken.
    bound: u32,
    state: S,
    /// The path node of the point before.
    node: u32,
}

/// A point queued by the second phase: its memo key (known set and state),
/// its unknown set (in the seeds' arena), the hash of its known set and its
/// path node.
struct Seed {
    key: u32,
    unknown_at: usize,
    known_hash: u64,
    node: u32,
}

/// Where the walk is.
#[derive(Clone, Copy)]
enum Cursor {
    /// At an entry of the known list.
    Known(u32),
    /// At a node of the unknown list; candidates are those ranked below
    /// `bound`.
    Unknown { node: u32, bound: u32 },
}

/// How a depth-first exploration ended.
enum Explored {
    Linearizable,
    /// Everything reachable from where it started (without unknown operations
    /// in the second phase) was tried.
    Exhausted,
    OverBudget,
    Limit(LimitHit),
}

struct Searcher<'a, M: Model> {
    model: &'a M,
    ops: &'a [Operation<M::Input, M::Output>],
    limits: &'a Limits,
    deadline: Option<Instant>,
    entries: Vec<Entry>,
    /// Call entry of each known operation, by number.
    call_entry: Vec<u32>,
    /// By number `j`: the last return entry of the operations numbered below
    /// `j`.
    last_return_before: Vec<u32>,
    unknown_op: Vec<u32>,
    unknown_rank: Vec<u32>,
    known_ops: usize,
    zobrist: Vec<u64>,
    known: Links,
    unknown: Links,
    memo: Memo<M::State>,
    known_bits: Vec<u64>,
    unknown_bits: Vec<u64>,
    known_hash: u64,
    remaining: usize,
    state: M::State,
    stack: Vec<Frame<M::State>>,
    /// How many frames on top of the stack took unknown operations.
    chain: usize,
    /// The paths to points: (operation, parent node).
    nodes: Vec<(u32, u32)>,
    here: u32,
    /// Points visited by earlier phases.
    earlier_points: usize,
    /// The deepest dead end recorded: path, state, refused candidates.
    deepest: Option<(Vec<u32>, M::State, Vec<u32>)>,
    /// Known operations linearized at the deepest dead end recorded.
    recorded: usize,
    best: usize,
    fresh: bool,
    turns: u64,
    seeds: VecDeque<Seed>,
    seed_unknown: Vec<u64>,
    /// Buffers for [`Searcher::enter`], reused.
    spare: (Vec<u32>, Vec<u32>),
}

impl<'a, M: Model> Searcher<'a, M> {
    fn new(
        model: &'a M,
        ops: &'a [Operation<M::Input, M::Output>],
        keep: &[u32],
        limits: &'a Limits,
        deadline: Option<Instant>,
    ) -> Self {
        // Everything in time order: (time, return?, op). Calls come before
        // returns at equal times, so operations that merely touch count as
        // concurrent.
        let mut order: Vec<(u64, bool, u32)> = Vec::with_capacity(keep.len() * 2);
        for &i in keep {
            let op = &ops[i as usize];
            order.push((op.call, false, i));
            if op.output.is_some() {
                order.push((op.ret.max(op.call), true, i));
            }
        }
        order.sort_unstable();

        let sentinel = Entry {
            op: NONE,
            partner: NONE,
            num: NONE,
            call: false,
            rank: NONE,
        };
        let mut entries = vec![sentinel];
        let mut unknown_op: Vec<u32> = vec![NONE];
        let mut unknown_rank: Vec<u32> = vec![NONE];
        let mut call_at = vec![NONE; ops.len()];
        let mut call_entry = Vec::new();
        for (rank, &(_, ret, op)) in order.iter().enumerate() {
            let rank = rank as u32;
            let at = entries.len() as u32;
            if ops[op as usize].output.is_none() {
                unknown_op.push(op);
                unknown_rank.push(rank);
            } else if ret {
                let call = call_at[op as usize];
                entries[call as usize].partner = at;
                let num = entries[call as usize].num;
                entries.push(Entry {
                    op,
                    partner: call,
                    num,
                    call: false,
                    rank,
                });
            } else {
                call_at[op as usize] = at;
                entries.push(Entry {
                    op,
                    partner: NONE,
                    num: call_entry.len() as u32,
                    call: true,
                    rank,
                });
                call_entry.push(at);
            }
        }
        entries.push(sentinel);
        unknown_op.push(NONE);
        unknown_rank.push(NONE);
        let known_ops = call_entry.len();
        let mut last_return_before = Vec::with_capacity(known_ops);
        let mut last = 0u32;
        for &c in &call_entry {
            last_return_before.push(last);
            last = last.max(entries[c as usize].partner);
        }

        let known_words = known_ops.div_ceil(64);
        let unknown_words = (unknown_op.len() - 2).div_ceil(64);
        Searcher {
            model,
            ops,
            limits,
            deadline,
            known: Links::new(entries.len() - 2),
            unknown: Links::new(unknown_op.len() - 2),
            entries,
            call_entry,
            last_return_before,
            unknown_op,
            unknown_rank,
            known_ops,
            zobrist: (0..known_ops as u64).map(mix).collect(),
            memo: Memo::new(known_words, unknown_words),
            known_bits: vec![0; known_words],
            unknown_bits: vec![0; unknown_words],
            known_hash: 0,
            remaining: known_ops,
            state: model.init(),
            stack: Vec::new(),
            chain: 0,
            nodes: Vec::new(),
            here: NONE,
            earlier_points: 0,
            deepest: None,
            recorded: 0,
            best: 0,
            fresh: true,
            turns: 0,
            seeds: VecDeque::new(),
            seed_unknown: Vec::new(),
            spare: (Vec::new(), Vec::new()),
        }
    }

    fn points(&self) -> usize {
        self.earlier_points + self.memo.points
    }

    /// Explores depth first from the current point until everything reachable
    /// from it has been tried. With `defer`, unknown operations queue seeds
    /// instead of being descended into.
    fn explore(&mut self, defer: bool, budget: usize) -> Explored {
        let unknown_tail = self.unknown_op.len() as u32 - 1;
        let mut cursor = Cursor::Known(self.known.next[HEAD as usize]);
        loop {
            self.turns += 1;
            if self.turns.is_multiple_of(CLOCK_EVERY)
                && self.deadline.is_some_and(|d| Instant::now() >= d)
            {
                return Explored::Limit(LimitHit::Deadline);
            }
            // The operation to try, or None to backtrack.
            let (op, next_cursor) = match cursor {
                Cursor::Known(e) => {
                    let entry = self.entries[e as usize];
                    if !entry.call {
                        // A pending return: the unknown operations invoked
                        // before it are the remaining candidates.
                        cursor = Cursor::Unknown {
                            node: self.unknown.next[HEAD as usize],
                            bound: entry.rank,
                        };
                        continue;
                    }
                    (Some(entry.op), Cursor::Known(self.known.next[e as usize]))
                }
                Cursor::Unknown { node, bound } => {
                    if node != unknown_tail && self.unknown_rank[node as usize] < bound {
                        let next = Cursor::Unknown {
                            node: self.unknown.next[node as usize],
                            bound,
                        };
                        (Some(self.unknown_op[node as usize]), next)
                    } else {
                        (None, cursor)
                    }
                }
            };

            if let Some(i) = op {
                if let Some(taken) = self.try_op(i, cursor, defer) {
                    match taken {
                        Took::Descended => {
                            if self.remaining == 0 {
                                return Explored::Linearizable;
                            }
                            if let Some(hit) = self.over_limit() {
                                return Explored::Limit(hit);
                            }
                            if self.memo.points > budget {
                                return Explored::OverBudget;
                            }
                            cursor = Cursor::Known(self.known.next[HEAD as usize]);
                            continue;
                        }
                        Took::Queued => {
                            if let Some(hit) = self.over_limit() {
                                return Explored::Limit(hit);
                            }
                        }
                    }
                }
                cursor = next_cursor;
                continue;
            }

            // Stuck: nothing more to try here.
            if self.fresh {
                self.fresh = false;
                self.record_dead_end();
            }
            let Some(frame) = self.stack.pop() else {
                return Explored::Exhausted;
            };
            cursor = self.undo(frame);
        }
    }

    fn over_limit(&self) -> Option<LimitHit> {
        self.limits
            .max_states
            .is_some_and(|max| self.points() > max)
            .then_some(LimitHit::MaxStates)
    }

    /// Tries operation `i` at `cursor`; `None` if the model refuses it or the
    /// point is not new.
    fn try_op(&mut self, i: u32, cursor: Cursor, defer: bool) -> Option<Took> {
        let (ops, model) = (self.ops, self.model);
        let op = &ops[i as usize];
        let next = model.step(&self.state, &op.input, op.output.as_ref())?;
        // After unknown operations only, taking `op` must not lead where
        // taking it before them leads: that point has fewer unknown operations
        // and is explored anyway.
        let chain = &self.stack[self.stack.len() - self.chain..];
        if chain
            .iter()
            .any(|f| model.step(&f.state, &op.input, op.output.as_ref()).as_ref() == Some(&next))
        {
            return None;
        }
        let (taken, is_unknown, bound) = match cursor {
            Cursor::Known(e) => (e, false, NONE),
            Cursor::Unknown { node, bound } => (node, true, bound),
        };
        let hash_after = if is_unknown {
            set(&mut self.unknown_bits, taken - 1);
            self.known_hash
        } else {
            let num = self.entries[taken as usize].num;
            set(&mut self.known_bits, num);
            self.known_hash ^ self.zobrist[num as usize]
        };
        let key = mix(hash_after ^ hash_state(&next).rotate_left(23));
        let inserted = self
            .memo
            .insert(key, &self.known_bits, &self.unknown_bits, &next);
        let undo_bit = |s: &mut Self| {
            if is_unknown {
                clear(&mut s.unknown_bits, taken - 1);
            } else {
                clear(&mut s.known_bits, s.entries[taken as usize].num);
            }
        };
        let Some(key) = inserted else {
            undo_bit(self);
            return None;
        };
        self.nodes.push((i, self.here));
        let node = self.nodes.len() as u32 - 1;
        if is_unknown && defer {
            let unknown_at = self.seed_unknown.len();
            self.seed_unknown.extend_from_slice(&self.unknown_bits);
            self.seeds.push_back(Seed {
                key,
                unknown_at,
                known_hash: hash_after,
                node,
            });
            undo_bit(self);
            return Some(Took::Queued);
        }
        self.known_hash = hash_after;
        let before = std::mem::replace(&mut self.state, next);
        self.stack.push(Frame {
            entry: taken,
            unknown: is_unknown,
            bound,
            state: before,
            node: self.here,
        });
        self.here = node;
        if is_unknown {
            self.unknown.unlink(taken);
            self.chain += 1;
        } else {
            self.chain = 0;
            self.known.unlink(taken);
            self.known.unlink(self.entries[taken as usize].partner);
            self.remaining -= 1;
            let depth = self.known_ops - self.remaining;
            if depth > self.best {
                self.best = depth;
                self.fresh = true;
            }
        }
        Some(Took::Descended)
    }

    /// Undoes the choice of `frame`; where the walk goes on.
    fn undo(&mut self, frame: Frame<M::State>) -> Cursor {
        self.state = frame.state;
        self.here = frame.node;
        if frame.unknown {
            self.chain -= 1;
            clear(&mut self.unknown_bits, frame.entry - 1);
            self.unknown.relink(frame.entry);
            Cursor::Unknown {
                node: self.unknown.next[frame.entry as usize],
                bound: frame.bound,
            }
        } else {
            self.chain = self.stack.iter().rev().take_while(|f| f.unknown).count();
            let entry = self.entries[frame.entry as usize];
            clear(&mut self.known_bits, entry.num);
            self.known_hash ^= self.zobrist[entry.num as usize];
            self.known.relink(entry.partner);
            self.known.relink(frame.entry);
            self.remaining += 1;
            Cursor::Known(self.known.next[frame.entry as usize])
        }
    }

    /// Keeps the current point as the deepest dead end: its path, state, and
    /// the candidates the model refuses here.
    fn record_dead_end(&mut self) {
        let mut candidates = Vec::new();
        let mut e = self.known.next[HEAD as usize];
        while self.entries[e as usize].call {
            candidates.push(self.entries[e as usize].op);
            e = self.known.next[e as usize];
        }
        let bound = self.entries[e as usize].rank;
        let mut node = self.unknown.next[HEAD as usize];
        while (node as usize) < self.unknown_op.len() - 1
            && self.unknown_rank[node as usize] < bound
        {
            candidates.push(self.unknown_op[node as usize]);
            node = self.unknown.next[node as usize];
        }
        candidates.sort_unstable();
        let refused: Vec<u32> = candidates
            .into_iter()
            .filter(|&i| {
                let op = &self.ops[i as usize];
                self.model
                    .step(&self.state, &op.input, op.output.as_ref())
                    .is_none()
            })
            .collect();
        let mut path = Vec::new();
        let mut at = self.here;
        while at != NONE {
            let (op, parent) = self.nodes[at as usize];
            path.push(op);
            at = parent;
        }
        path.reverse();
        self.deepest = Some((path, self.state.clone(), refused));
        self.recorded = self.known_ops - self.remaining;
    }

    /// Starts over for the second phase: pristine lists, empty memo.
    fn reset(&mut self) {
        self.earlier_points += self.memo.points;
        self.known = Links::new(self.entries.len() - 2);
        self.unknown = Links::new(self.unknown_op.len() - 2);
        self.memo = Memo::new(self.memo.known_words, self.memo.unknown_words);
        self.known_bits.fill(0);
        self.unknown_bits.fill(0);
        self.known_hash = 0;
        self.remaining = self.known_ops;
        self.state = self.model.init();
        self.stack.clear();
        self.chain = 0;
        self.nodes.clear();
        self.here = NONE;
        // Keep the dead end recorded; look for a deeper one.
        self.best = self.recorded;
        self.fresh = self.deepest.is_none();
    }

    /// Moves to a queued point: lifts its operations out of the pristine lists.
    /// Returns what [`Searcher::leave`] needs to put them back.
    fn enter(&mut self, seed: &Seed) -> Entered {
        self.known_bits
            .copy_from_slice(self.memo.known_of(seed.key));
        let uw = self.unknown_bits.len();
        self.unknown_bits
            .copy_from_slice(&self.seed_unknown[seed.unknown_at..seed.unknown_at + uw]);
        self.state = self.memo.states[seed.key as usize].clone();
        self.known_hash = seed.known_hash;
        self.here = seed.node;
        let linearized: usize = self
            .known_bits
            .iter()
            .map(|w| w.count_ones() as usize)
            .sum();
        self.remaining = self.known_ops - linearized;
        let mut unlinked = std::mem::take(&mut self.spare.0);
        unlinked.clear();
        // Every known operation numbered below the first one not linearized is
        // linearized: the list jumps to that one's call...
        let first = self
            .known_bits
            .iter()
            .enumerate()
            .find(|(_, w)| **w != u64::MAX)
            .map(|(i, w)| (i * 64) as u32 + w.trailing_ones())
            .expect("a queued point has known operations left");
        let start = self.call_entry[first as usize];
        let saved = (
            self.known.next[HEAD as usize],
            self.known.prev[start as usize],
        );
        self.known.next[HEAD as usize] = start;
        self.known.prev[start as usize] = HEAD;
        // ...past which only the returns of those operations, and the
        // linearized operations numbered above it, are to be lifted.
        for e in start..=self.last_return_before[first as usize].max(start) {
            let entry = self.entries[e as usize];
            if !entry.call && entry.num < first {
                self.known.unlink(e);
                unlinked.push(e);
            }
        }
        for j in ones_from(&self.known_bits, first + 1) {
            let call = self.call_entry[j as usize];
            for e in [call, self.entries[call as usize].partner] {
                self.known.unlink(e);
                unlinked.push(e);
            }
        }
        let mut unknown_unlinked = std::mem::take(&mut self.spare.1);
        unknown_unlinked.clear();
        for b in ones_from(&self.unknown_bits, 0) {
            self.unknown.unlink(b + 1);
            unknown_unlinked.push(b + 1);
        }
        Entered {
            start,
            saved,
            unlinked,
            unknown_unlinked,
        }
    }

    /// Puts the lists back as they were before [`Searcher::enter`].
    fn leave(&mut self, entered: Entered) {
        for &e in entered.unknown_unlinked.iter().rev() {
            self.unknown.relink(e);
        }
        for &e in entered.unlinked.iter().rev() {
            self.known.relink(e);
        }
        self.known.next[HEAD as usize] = entered.saved.0;
        self.known.prev[entered.start as usize] = entered.saved.1;
        self.spare = (entered.unlinked, entered.unknown_unlinked);
    }

    fn counterexample(&self, partition: &str) -> Counterexample {
        let (path, state, refused) = self
            .deepest
            .as_ref()
            .expect("a search that fails records its first dead end");
        let op = |i: u32| &self.ops[i as usize];
        Counterexample {
            partition: partition.to_owned(),
            linearized: path.iter().map(|&i| op(i).id).collect(),
            state: self.model.describe_state(state),
            stuck: refused.iter().map(|&i| op(i).id).collect(),
            stuck_described: refused
                .iter()
                .map(|&i| self.model.describe_op(&op(i).input, op(i).output.as_ref()))
                .collect(),
        }
    }
}

enum Took {
    Descended,
    Queued,
}

struct Entered {
    start: u32,
    saved: (u32, u32),
    unlinked: Vec<u32>,
    unknown_unlinked: Vec<u32>,
}

pub(crate) fn search<M: Model>(
    model: &M,
    ops: &[Operation<M::Input, M::Output>],
    limits: &Limits,
    deadline: Option<Instant>,
    partition: &str,
) -> Searched {
    let budget = PHASE_ONE_BASE + PHASE_ONE_PER_OP * ops.len();
    search_with_budget(model, ops, limits, deadline, partition, budget)
}

/// [`search`] with the number of points the depth-first phase may visit.
pub(crate) fn search_with_budget<M: Model>(
    model: &M,
    ops: &[Operation<M::Input, M::Output>],
    limits: &Limits,
    deadline: Option<Instant>,
    partition: &str,
    budget: usize,
) -> Searched {
    // Unknown reads constrain nothing.
    let keep: Vec<u32> = (0..ops.len() as u32)
        .filter(|&i| {
            let op = &ops[i as usize];
            op.output.is_some() || !model.is_read_only(&op.input)
        })
        .collect();
    let done = |result, states| Searched {
        result,
        ops: keep.len(),
        states,
    };
    if keep.iter().all(|&i| ops[i as usize].output.is_none()) {
        return done(Linearizability::Linearizable, 0);
    }
    if deadline.is_some_and(|d| Instant::now() >= d) {
        return done(Linearizability::Unknown(LimitHit::Deadline), 0);
    }
    let mut s = Searcher::new(model, ops, &keep, limits, deadline);

    // Phase one: depth first.
    match s.explore(false, budget) {
        Explored::Linearizable => return done(Linearizability::Linearizable, s.points()),
        Explored::Exhausted => {
            let cex = s.counterexample(partition);
            return done(Linearizability::NotLinearizable(cex), s.points());
        }
        Explored::Limit(hit) => return done(Linearizability::Unknown(hit), s.points()),
        Explored::OverBudget => {}
    }

    // Phase two: by the number of unknown operations used.
    s.reset();
    let init = s.model.init();
    let key = mix(hash_state(&init).rotate_left(23));
    let (known, unknown) = (s.known_bits.clone(), s.unknown_bits.clone());
    let key = s
        .memo
        .insert(key, &known, &unknown, &init)
        .expect("an empty memo");
    s.seed_unknown.extend_from_slice(&unknown);
    s.seeds.push_back(Seed {
        key,
        unknown_at: 0,
        known_hash: 0,
        node: NONE,
    });
    while let Some(seed) = s.seeds.pop_front() {
        let entered = s.enter(&seed);
        match s.explore(true, usize::MAX) {
            Explored::Linearizable => return done(Linearizability::Linearizable, s.points()),
            Explored::Limit(hit) => return done(Linearizability::Unknown(hit), s.points()),
            Explored::Exhausted | Explored::OverBudget => {}
        }
        s.leave(entered);
    }
    let cex = s.counterexample(partition);
    done(Linearizability::NotLinearizable(cex), s.points())
}
