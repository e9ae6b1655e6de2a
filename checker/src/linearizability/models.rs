//! The models: registers, a plain mutex, and a fenced, lease-aware mutex.
//!
//! # Which cas register
//!
//! A cas that completed `fail` can be read two ways, and the two registers
//! differ only there:
//!
//! - [`CasRegister`] (`cas-register`, Knossos's reading) leaves it out: it
//!   certainly changed nothing, and it says nothing more. Use it when a failed
//!   cas may also mean "not applied for another reason" (a conflict, a lost
//!   lease, a refused request) and not only "the value was not `expected`".
//! - [`StrictCasRegister`] (`cas-register-strict`, Porcupine's reading) keeps
//!   it as an observation: the comparison failed, so it must be linearized
//!   within its interval at a point where the register did not hold
//!   `expected`. Use it when a failed cas means exactly "compare failed", as
//!   with an etcd transaction whose compare did not hold, and for Jepsen etcd
//!   histories read the way Porcupine checks them.
//!
//! Every history valid under the strict register is valid under the lenient
//! one; the strict one also catches a cas that failed although the register
//! held `expected` all through the cas's interval.

use std::fmt;
use std::hash::Hash;
use std::sync::Arc;

use super::model::Model;

/// What a register holds, shown as the model describes it.
fn show<V: fmt::Display>(v: Option<&V>) -> String {
    match v {
        Some(v) => v.to_string(),
        None => "empty".to_owned(),
    }
}

/// A read/write register, initially empty (or holding the value given to
/// [`Register::starting_at`]).
///
/// State `Option<V>` (`None`: empty). Inputs [`RegisterOp`]; the output
/// of a read is the value it returned (`None`: empty), and is ignored for
/// writes. A read must return the last value written.
pub struct Register<V = serde_json::Value> {
    initial: Option<V>,
}

/// A register operation.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RegisterOp<V> {
    /// Read the register; the output is the value read.
    Read,
    /// Write the value.
    Write(V),
}

impl<V> Register<V> {
    /// The register model, initially empty.
    pub fn new() -> Self {
        Register { initial: None }
    }

    /// The register model, initially holding `initial` (`None`: empty).
    /// Knossos's tests start their registers at 0; leasehold's start empty.
    pub fn starting_at(initial: Option<V>) -> Self {
        Register { initial }
    }
}

impl<V> Default for Register<V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<V: Clone + Eq + Hash + fmt::Display> Model for Register<V> {
    type State = Option<V>;
    type Input = RegisterOp<V>;
    type Output = Option<V>;

    fn init(&self) -> Option<V> {
        self.initial.clone()
    }

    fn step(
        &self,
        state: &Option<V>,
        input: &RegisterOp<V>,
        output: Option<&Option<V>>,
    ) -> Option<Option<V>> {
        match input {
            RegisterOp::Read => read_step(state, output),
            RegisterOp::Write(v) => Some(Some(v.clone())),
        }
    }

    fn is_read_only(&self, input: &RegisterOp<V>) -> bool {
        matches!(input, RegisterOp::Read)
    }

    fn describe_op(&self, input: &RegisterOp<V>, output: Option<&Option<V>>) -> String {
        match (input, output) {
            (RegisterOp::Read, Some(read)) => format!("read -> {}", show(read.as_ref())),
            (RegisterOp::Read, None) => "read -> ?".to_owned(),
            (RegisterOp::Write(v), Some(_)) => format!("write {v}"),
            (RegisterOp::Write(v), None) => format!("write {v} (unknown outcome)"),
        }
    }

    fn describe_state(&self, state: &Option<V>) -> String {
        show(state.as_ref())
    }
}

/// A read of a register: legal when it returned what the register holds (or
/// its result is unknown); it changes nothing.
fn read_step<V: Clone + Eq>(state: &Option<V>, output: Option<&Option<V>>) -> Option<Option<V>> {
    match output {
        Some(read) if read != state => None,
        _ => Some(state.clone()),
    }
}

/// A compare-and-set register, initially empty (or holding the value given to
/// [`CasRegister::starting_at`]): reads, writes, and `cas`, which sets `new` if
/// and only if the register holds `expected`.
///
/// State `Option<V>`; the output of a read is the value it returned (`None`:
/// empty) and is ignored otherwise. Give a cas that completed `ok` with any
/// output (`Some(None)` will do): it succeeded. A cas that reported it did not
/// apply certainly changed nothing: leave it out, as a `fail`
/// (the strict cas register, `cas-register-strict`, keeps it as an
/// observation instead).
pub struct CasRegister<V = serde_json::Value> {
    initial: Option<V>,
}

/// A cas-register operation.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum CasOp<V> {
    /// Read the register; the output is the value read.
    Read,
    /// Write the value.
    Write(V),
    /// Set `new` if and only if the register holds `expected`.
    Cas {
        /// The value the register must hold.
        expected: V,
        /// The value it holds afterwards.
        new: V,
    },
}

impl<V> CasRegister<V> {
    /// The lenient cas-register model, initially empty.
    pub fn new() -> Self {
        CasRegister { initial: None }
    }

    /// The lenient cas-register model, initially holding `initial` (`None`:
    /// empty).
    pub fn starting_at(initial: Option<V>) -> Self {
        CasRegister { initial }
    }
}

impl<V> Default for CasRegister<V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<V: Clone + Eq + Hash + fmt::Display> Model for CasRegister<V> {
    type State = Option<V>;
    type Input = CasOp<V>;
    type Output = Option<V>;

    fn init(&self) -> Option<V> {
        self.initial.clone()
    }

    fn step(
        &self,
        state: &Option<V>,
        input: &CasOp<V>,
        output: Option<&Option<V>>,
    ) -> Option<Option<V>> {
        match input {
            CasOp::Read => read_step(state, output),
            CasOp::Write(v) => Some(Some(v.clone())),
            CasOp::Cas { expected, new } => {
                (state.as_ref() == Some(expected)).then(|| Some(new.clone()))
            }
        }
    }

    fn is_read_only(&self, input: &CasOp<V>) -> bool {
        matches!(input, CasOp::Read)
    }

    fn describe_op(&self, input: &CasOp<V>, output: Option<&Option<V>>) -> String {
        let unknown = if output.is_none() {
            " (unknown outcome)"
        } else {
            ""
        };
        match (input, output) {
            (CasOp::Read, Some(read)) => format!("read -> {}", show(read.as_ref())),
            (CasOp::Read, None) => "read -> ?".to_owned(),
            (CasOp::Write(v), _) => format!("write {v}{unknown}"),
            (CasOp::Cas { expected, new }, _) => format!("cas {expected} -> {new}{unknown}"),
        }
    }

    fn describe_state(&self, state: &Option<V>) -> String {
        show(state.as_ref())
    }
}

/// A compare-and-set register that takes a failed cas at its word: the
/// register did not hold `expected` when it took effect.
///
/// State `Option<V>` and inputs [`CasOp`] as in [`CasRegister`]; outputs are
/// [`CasReply`]s. Reads, writes, cas that applied and operations whose outcome
/// is unknown behave exactly as in [`CasRegister`]. A cas whose reply is
/// [`CasReply::CompareFailed`] is legal only where the register does not hold
/// `expected` (an empty register holds nothing), and changes nothing. See the
/// module documentation for when to use which.
pub struct StrictCasRegister<V = serde_json::Value> {
    initial: Option<V>,
}

/// What an operation of a [`StrictCasRegister`] got back.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum CasReply<V> {
    /// It took effect: a read with the value it returned (`None`: empty), a
    /// write, or a cas that applied (for those the value is ignored:
    /// `Done(None)` will do).
    Done(Option<V>),
    /// A cas reported that the register did not hold `expected`: it took
    /// effect as a read of some other value. Only a cas can get this reply;
    /// a read or a write with it can never be linearized.
    CompareFailed,
}

impl<V> StrictCasRegister<V> {
    /// The strict cas-register model, initially empty.
    pub fn new() -> Self {
        StrictCasRegister { initial: None }
    }

    /// The strict cas-register model, initially holding `initial` (`None`:
    /// empty).
    pub fn starting_at(initial: Option<V>) -> Self {
        StrictCasRegister { initial }
    }
}

impl<V> Default for StrictCasRegister<V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<V: Clone + Eq + Hash + fmt::Display> Model for StrictCasRegister<V> {
    type State = Option<V>;
    type Input = CasOp<V>;
    type Output = CasReply<V>;

    fn init(&self) -> Option<V> {
        self.initial.clone()
    }

    fn step(
        &self,
        state: &Option<V>,
        input: &CasOp<V>,
        output: Option<&CasReply<V>>,
    ) -> Option<Option<V>> {
        match (input, output) {
            (CasOp::Cas { expected, .. }, Some(CasReply::CompareFailed)) => {
                (state.as_ref() != Some(expected)).then(|| state.clone())
            }
            (_, Some(CasReply::CompareFailed)) => None,
            // Everything else is the lenient register's business.
            (_, Some(CasReply::Done(read))) => CasRegister::new().step(state, input, Some(read)),
            (_, None) => CasRegister::new().step(state, input, None),
        }
    }

    fn is_read_only(&self, input: &CasOp<V>) -> bool {
        matches!(input, CasOp::Read)
    }

    fn describe_op(&self, input: &CasOp<V>, output: Option<&CasReply<V>>) -> String {
        match (input, output) {
            (CasOp::Cas { expected, new }, Some(CasReply::CompareFailed)) => {
                format!("cas {expected} -> {new} failed (the value was not {expected})")
            }
            (CasOp::Read, Some(CasReply::CompareFailed)) => "read -> compare failed".to_owned(),
            (CasOp::Write(v), Some(CasReply::CompareFailed)) => {
                format!("write {v} -> compare failed")
            }
            (_, Some(CasReply::Done(read))) => CasRegister::new().describe_op(input, Some(read)),
            (_, None) => CasRegister::new().describe_op(input, None),
        }
    }

    fn describe_state(&self, state: &Option<V>) -> String {
        show(state.as_ref())
    }
}

/// A value of leasehold's fenced storage: the token a write carried and its
/// data. Two writes of the same data with different tokens are different
/// values.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Stored {
    /// The fencing token the write carried.
    pub token: u64,
    /// The data written.
    pub data: Arc<str>,
}

impl fmt::Display for Stored {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} (token {})", self.data, self.token)
    }
}

/// A mutex without owners, as Knossos has it: `acquire` succeeds if and only if
/// the mutex is free, `release` if and only if it is held (by anyone). State:
/// held or not; outputs carry nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct Mutex;

/// A mutex operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MutexOp {
    /// Take the mutex: legal only when it is free.
    Acquire,
    /// Free the mutex: legal only when it is held.
    Release,
}

impl Model for Mutex {
    type State = bool;
    type Input = MutexOp;
    type Output = ();

    fn init(&self) -> bool {
        false
    }

    fn step(&self, held: &bool, input: &MutexOp, _: Option<&()>) -> Option<bool> {
        match input {
            MutexOp::Acquire => (!held).then_some(true),
            MutexOp::Release => held.then_some(false),
        }
    }

    fn describe_op(&self, input: &MutexOp, output: Option<&()>) -> String {
        let unknown = if output.is_none() {
            " (unknown outcome)"
        } else {
            ""
        };
        match input {
            MutexOp::Acquire => format!("acquire{unknown}"),
            MutexOp::Release => format!("release{unknown}"),
        }
    }

    fn describe_state(&self, held: &bool) -> String {
        if *held { "held" } else { "free" }.to_owned()
    }
}

/// An owner-aware mutex with fencing tokens and, optionally, leases.
///
/// # Rules
///
/// - **acquire** by client `c` succeeds when the lock is free, and grants a
///   token strictly greater than every token granted before. `c` becomes the
///   holder. The output is the token granted (`None`: the reply did not say).
/// - **renew** succeeds only for the holder, with the holder's token; it may
///   lengthen the lease (see below).
/// - **release** by the holder with its token frees the lock. A release of a
///   token that is no longer held (a later token was granted, or it was
///   released already) changes nothing and may succeed: lease services
///   acknowledge releasing a lease that has already ended. Any other release
///   (of the live token by someone else, of a token never granted) cannot.
///
/// # Leases
///
/// A real lock is a lease: when the holder stops renewing, the lock frees itself
/// at the lease deadline, with no release in the history. With a `ttl` on the
/// grant, the model treats an acquire granted after the holder's lease deadline
/// as an implicit release (lease expiry). The deadline is the *send* time of
/// the holder's last acquire or renew plus its `ttl` — the earliest moment the
/// lock service may end the lease, since it starts the lease no earlier than it
/// receives the request. An acquire may take the lock from a holder when its own
/// completion (`done`, the latest moment it can have taken effect; `u64::MAX`
/// when unknown) is at or after that deadline. Because the search places
/// operations in an order, not at instants, this is the lenient reading: the
/// model reports a violation only when the second grant certainly completed
/// before the first lease could have ended.
///
/// Without a `ttl` (`None`) a grant never expires: a strict owner-aware mutex.
/// Renewing after the deadline is allowed while no one else holds the lock (the
/// service's own deadline may be later); renewing after someone else was granted
/// the lock is a violation.
///
/// Times and ttls are in one unit (ns in leasehold); the converters fill `sent`
/// and `done` from the operation's invocation and completion.
///
/// # Unknown grants
///
/// An acquire whose reply is unknown, if it took effect, granted some token
/// larger than every earlier one. The state then keeps a lower bound of the
/// last token instead of the token, and a later renew or release by the holder
/// names it.
#[derive(Clone, Debug, Default)]
pub struct FencedMutex {
    /// Names of clients by number, for counterexamples (`w1`); a client without
    /// a name is shown as `client N`.
    pub clients: Vec<String>,
}

/// A fenced-mutex operation. `client` numbers the owner (the node, in leasehold).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum LockOp {
    /// An acquire by `client`; its output is the token granted (`None`: the
    /// reply did not say).
    Acquire {
        /// The client acquiring.
        client: u32,
        /// When the request was sent.
        sent: u64,
        /// When the reply arrived (`u64::MAX`: unknown).
        done: u64,
        /// The lease it asked for; `None`: no lease, the grant never expires.
        ttl: Option<u64>,
    },
    /// A renew of its lease by `client`, the holder.
    Renew {
        /// The client renewing.
        client: u32,
        /// `None`: the history does not say which token (any of the holder's).
        token: Option<u64>,
        /// When the request was sent.
        sent: u64,
        /// The lease it extends to, from `sent`; `None`: it does not extend.
        ttl: Option<u64>,
    },
    /// A release by `client`.
    Release {
        /// The client releasing.
        client: u32,
        /// The token released; `None`: the history does not say (any of the
        /// holder's).
        token: Option<u64>,
    },
}

/// The state of a [`FencedMutex`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct LockState {
    /// Who holds the mutex; `None` when it is free.
    pub holder: Option<Holder>,
    /// The last token granted, or a lower bound of it after a grant whose token
    /// is unknown; `None` before any grant.
    pub last_token: Option<u64>,
}

/// Who holds a [`FencedMutex`], with which token, until when.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Holder {
    /// The holder's client number.
    pub client: u32,
    /// `None`: granted by an acquire whose reply is unknown.
    pub token: Option<u64>,
    /// The lease deadline (`u64::MAX`: none).
    pub expires: u64,
}

impl FencedMutex {
    /// A fenced mutex whose clients are shown by number (`client 3`).
    pub fn new() -> Self {
        Self::default()
    }

    /// A fenced mutex whose client `n` is shown as `clients[n]` in
    /// counterexamples.
    pub fn with_clients(clients: Vec<String>) -> Self {
        FencedMutex { clients }
    }

    fn client(&self, c: u32) -> String {
        match self.clients.get(c as usize) {
            Some(name) => name.clone(),
            None => format!("client {c}"),
        }
    }
}

/// Whether `holder` holds `token` (or an unknown token it may be), and the state
/// once that is settled.
fn owns(state: &LockState, client: u32, token: Option<u64>) -> Option<LockState> {
    let h = state.holder?;
    if h.client != client {
        return None;
    }
    match (h.token, token) {
        (_, None) => Some(*state),
        (Some(held), Some(t)) => (held == t).then_some(*state),
        // The holder's grant was the last one, and its token is at least the
        // lower bound: naming it settles the token.
        (None, Some(t)) => (state.last_token.is_none_or(|floor| t >= floor)).then_some(LockState {
            holder: Some(Holder {
                token: Some(t),
                ..h
            }),
            last_token: Some(t),
        }),
    }
}

impl Model for FencedMutex {
    type State = LockState;
    type Input = LockOp;
    type Output = Option<u64>;

    fn init(&self) -> LockState {
        LockState::default()
    }

    fn step(
        &self,
        state: &LockState,
        input: &LockOp,
        output: Option<&Option<u64>>,
    ) -> Option<LockState> {
        match *input {
            LockOp::Acquire {
                client,
                sent,
                done,
                ttl,
            } => {
                if state.holder.is_some_and(|h| done < h.expires) {
                    return None;
                }
                let expires = ttl.map_or(u64::MAX, |ttl| sent.saturating_add(ttl));
                let (token, last_token) = match output.copied().flatten() {
                    Some(t) => {
                        if state.last_token.is_some_and(|last| t <= last) {
                            return None;
                        }
                        (Some(t), t)
                    }
                    None => (None, state.last_token.map_or(0, |last| last + 1)),
                };
                Some(LockState {
                    holder: Some(Holder {
                        client,
                        token,
                        expires,
                    }),
                    last_token: Some(last_token),
                })
            }
            LockOp::Renew {
                client,
                token,
                sent,
                ttl,
            } => {
                let mut next = owns(state, client, token)?;
                if let (Some(h), Some(ttl)) = (next.holder.as_mut(), ttl) {
                    h.expires = h.expires.max(sent.saturating_add(ttl));
                }
                Some(next)
            }
            LockOp::Release { client, token } => {
                if let Some(mut next) = owns(state, client, token) {
                    next.holder = None;
                    return Some(next);
                }
                // A release of a token no longer held changes nothing.
                let stale = token.is_some_and(|t| {
                    state.last_token.is_some_and(|last| t <= last)
                        && state.holder.is_none_or(|h| h.token != Some(t))
                });
                (stale && output.is_some()).then_some(*state)
            }
        }
    }

    fn describe_op(&self, input: &LockOp, output: Option<&Option<u64>>) -> String {
        let unknown = if output.is_none() {
            " (unknown outcome)"
        } else {
            ""
        };
        let token = |t: Option<u64>| t.map_or_else(|| "?".to_owned(), |t| t.to_string());
        match *input {
            LockOp::Acquire { client, .. } => match output {
                Some(t) => format!("acquire by {} -> token {}", self.client(client), token(*t)),
                None => format!("acquire by {}{unknown}", self.client(client)),
            },
            LockOp::Renew {
                client, token: t, ..
            } => format!(
                "renew of token {} by {}{unknown}",
                token(t),
                self.client(client)
            ),
            LockOp::Release { client, token: t } => format!(
                "release of token {} by {}{unknown}",
                token(t),
                self.client(client)
            ),
        }
    }

    fn describe_state(&self, state: &LockState) -> String {
        let last = match state.last_token {
            None => "no token granted yet".to_owned(),
            Some(t) if state.holder.is_some_and(|h| h.token.is_none()) => {
                format!("last token at least {t}")
            }
            Some(t) => format!("last token {t}"),
        };
        match state.holder {
            None => format!("free, {last}"),
            Some(h) => {
                let token = h
                    .token
                    .map_or_else(|| "unknown".to_owned(), |t| t.to_string());
                let lease = if h.expires == u64::MAX {
                    String::new()
                } else {
                    format!(" until {}", h.expires)
                };
                format!(
                    "held by {} with token {token}{lease}, {last}",
                    self.client(h.client)
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_reads_the_last_write() {
        let m = Register::<i64>::new();
        let s = m.init();
        assert_eq!(m.step(&s, &RegisterOp::Read, Some(&None)), Some(None));
        assert_eq!(m.step(&s, &RegisterOp::Read, Some(&Some(1))), None);
        let s = m.step(&s, &RegisterOp::Write(1), Some(&None)).unwrap();
        assert_eq!(m.step(&s, &RegisterOp::Read, Some(&Some(1))), Some(Some(1)));
        assert_eq!(m.describe_state(&s), "1");
        assert_eq!(
            m.describe_op(&RegisterOp::Read, Some(&None)),
            "read -> empty"
        );
    }

    #[test]
    fn cas_applies_only_on_the_expected_value() {
        let m = CasRegister::<i64>::new();
        let s = Some(1);
        let cas = |expected, new| CasOp::Cas { expected, new };
        assert_eq!(m.step(&s, &cas(1, 2), Some(&None)), Some(Some(2)));
        assert_eq!(m.step(&s, &cas(0, 2), Some(&None)), None);
        assert_eq!(m.step(&None, &cas(0, 2), None), None);
        assert_eq!(
            m.describe_op(&cas(1, 2), None),
            "cas 1 -> 2 (unknown outcome)"
        );
    }

    #[test]
    fn strict_cas_takes_a_failed_compare_as_a_read_of_another_value() {
        let m = StrictCasRegister::<i64>::new();
        let cas = |expected, new| CasOp::Cas { expected, new };
        let failed = Some(&CasReply::CompareFailed);
        // It cannot have failed while the register held 1, nor changed it.
        assert_eq!(m.step(&Some(1), &cas(1, 2), failed), None);
        assert_eq!(m.step(&Some(3), &cas(1, 2), failed), Some(Some(3)));
        assert_eq!(m.step(&None, &cas(1, 2), failed), Some(None));
        // Only a cas compares.
        assert_eq!(m.step(&Some(1), &CasOp::Read, failed), None);
        assert_eq!(m.step(&Some(1), &CasOp::Write(2), failed), None);
        // The rest is the lenient register.
        let lenient = CasRegister::<i64>::new();
        let done = |v| CasReply::Done(v);
        for state in [None, Some(1), Some(2)] {
            for input in [CasOp::Read, CasOp::Write(2), cas(1, 2), cas(2, 1)] {
                for read in [None, Some(1), Some(2)] {
                    assert_eq!(
                        m.step(&state, &input, Some(&done(read))),
                        lenient.step(&state, &input, Some(&read)),
                        "{state:?} {input:?} {read:?}"
                    );
                }
                assert_eq!(
                    m.step(&state, &input, None),
                    lenient.step(&state, &input, None)
                );
            }
        }
        assert_eq!(
            m.describe_op(&cas(1, 2), failed),
            "cas 1 -> 2 failed (the value was not 1)"
        );
        assert_eq!(m.describe_op(&cas(1, 2), Some(&done(None))), "cas 1 -> 2");
        assert_eq!(
            m.describe_op(&CasOp::Read, Some(&done(Some(4)))),
            "read -> 4"
        );
        assert_eq!(m.describe_state(&None), "empty");
    }

    #[test]
    fn mutex_without_owners() {
        let m = Mutex;
        assert_eq!(m.step(&false, &MutexOp::Acquire, Some(&())), Some(true));
        assert_eq!(m.step(&true, &MutexOp::Acquire, Some(&())), None);
        assert_eq!(m.step(&false, &MutexOp::Release, Some(&())), None);
        assert_eq!(m.step(&true, &MutexOp::Release, None), Some(false));
    }

    fn acquire(client: u32, sent: u64, done: u64, ttl: Option<u64>) -> LockOp {
        LockOp::Acquire {
            client,
            sent,
            done,
            ttl,
        }
    }

    #[test]
    fn fenced_mutex_grants_increasing_tokens_to_one_holder() {
        let m = FencedMutex::with_clients(vec!["w0".into(), "w1".into()]);
        let s = m.init();
        let s = m.step(&s, &acquire(0, 0, 1, None), Some(&Some(5))).unwrap();
        assert_eq!(
            m.describe_state(&s),
            "held by w0 with token 5, last token 5"
        );
        // Held: nobody else, not even the holder again.
        assert_eq!(m.step(&s, &acquire(1, 2, 3, None), Some(&Some(6))), None);
        assert_eq!(m.step(&s, &acquire(0, 2, 3, None), Some(&Some(6))), None);
        // Only the holder releases with its token.
        let rel = |client, token| LockOp::Release { client, token };
        assert_eq!(m.step(&s, &rel(1, Some(5)), Some(&None)), None);
        assert_eq!(m.step(&s, &rel(0, Some(4)), Some(&None)), Some(s));
        assert_eq!(m.step(&s, &rel(0, Some(6)), Some(&None)), None);
        let free = m.step(&s, &rel(0, Some(5)), Some(&None)).unwrap();
        assert_eq!(free.holder, None);
        // Tokens go up.
        assert_eq!(m.step(&free, &acquire(1, 4, 5, None), Some(&Some(5))), None);
        assert!(
            m.step(&free, &acquire(1, 4, 5, None), Some(&Some(9)))
                .is_some()
        );
        // A second release of 5 changes nothing.
        assert_eq!(m.step(&free, &rel(0, Some(5)), Some(&None)), Some(free));
    }

    #[test]
    fn fenced_mutex_lease_expiry_frees_the_lock() {
        let m = FencedMutex::new();
        let s = m
            .step(&m.init(), &acquire(0, 100, 110, Some(1000)), Some(&Some(1)))
            .unwrap();
        // Completed before the deadline (1100): certainly still held.
        assert_eq!(
            m.step(&s, &acquire(1, 500, 1050, Some(1000)), Some(&Some(2))),
            None
        );
        // May have been granted after it.
        let s2 = m
            .step(&s, &acquire(1, 500, 1100, Some(1000)), Some(&Some(2)))
            .unwrap();
        assert_eq!(s2.holder.unwrap().client, 1);
        // The old holder can no longer renew.
        let renew = LockOp::Renew {
            client: 0,
            token: Some(1),
            sent: 1200,
            ttl: Some(1000),
        };
        assert_eq!(m.step(&s2, &renew, Some(&Some(1))), None);
        // A renew before that pushes the deadline.
        let renew = LockOp::Renew {
            client: 0,
            token: Some(1),
            sent: 900,
            ttl: Some(1000),
        };
        let s3 = m.step(&s, &renew, Some(&Some(1))).unwrap();
        assert_eq!(s3.holder.unwrap().expires, 1900);
        assert_eq!(
            m.step(&s3, &acquire(1, 500, 1100, Some(1000)), Some(&Some(2))),
            None
        );
    }

    #[test]
    fn fenced_mutex_unknown_grant_keeps_a_lower_bound() {
        let m = FencedMutex::new();
        let s = m
            .step(&m.init(), &acquire(0, 0, 1, None), Some(&Some(3)))
            .unwrap();
        let s = m
            .step(
                &s,
                &LockOp::Release {
                    client: 0,
                    token: Some(3),
                },
                None,
            )
            .unwrap();
        let s = m.step(&s, &acquire(1, 5, u64::MAX, None), None).unwrap();
        assert_eq!(s.last_token, Some(4));
        assert_eq!(
            m.describe_state(&s),
            "held by client 1 with token unknown, last token at least 4"
        );
        // Its release names the token, which must be above 3.
        let rel = |token| LockOp::Release {
            client: 1,
            token: Some(token),
        };
        assert_eq!(m.step(&s, &rel(3), Some(&None)), Some(s));
        let freed = m.step(&s, &rel(7), Some(&None)).unwrap();
        assert_eq!(freed.last_token, Some(7));
        assert_eq!(
            m.step(&freed, &acquire(0, 9, 10, None), Some(&Some(6))),
            None
        );
    }
}
