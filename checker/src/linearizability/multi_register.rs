//! Several registers read and written by transactions: Knossos's
//! `multi-register`.
//!
//! A Jepsen `:txn` operation is a vector of micro-operations, `[:r k v]` (read
//! register `k`, which held `v`) and `[:w k v]` (write `v` to `k`), applied
//! atomically in order. The invocation's reads carry `nil`; the completion
//! fills them in.
//!
//! # Semantics
//!
//! A transaction takes effect at one instant: its micro-operations run in
//! order, each read must return what its register holds at that point (a write
//! earlier in the same transaction included), and its writes change the state.
//! A read whose value is unknown ([`None`] in the output) constrains nothing.
//!
//! This is Knossos's `multi-register` step: it too applies the micro-operations
//! in order to the running state, and takes a `nil` read as legal (here that is
//! [`NilRead::Unknown`](crate::NilRead::Unknown); by default a `nil` read read
//! an empty register). Knossos's micro-operations are `:read`/`:write`,
//! Jepsen's transactional tests write `:r`/`:w`: both are read.
//!
//! # State
//!
//! The state is the set of registers that differ from the initial value, as
//! `(key, value)` pairs sorted by key. Keys are numbers ([`MultiRegister::keys`]
//! names them), so a state never needs to know which keys a partition has:
//! every key not in it holds the initial value.

use std::fmt;
use std::hash::Hash;

use super::model::Model;

/// One micro-operation of a transaction.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Micro<V> {
    /// `[:r k _]`: read register `k`.
    Read(u32),
    /// `[:w k v]`: write `v` to register `k`.
    Write(u32, V),
}

impl<V> Micro<V> {
    /// The register it touches.
    pub fn key(&self) -> u32 {
        match self {
            Micro::Read(k) | Micro::Write(k, _) => *k,
        }
    }
}

/// Registers by key, read and written atomically by transactions.
///
/// Inputs are transactions, `Vec<`[`Micro`]`>`; the output of a completed
/// transaction has one entry per micro-operation: for a read, `Some(v)` when it
/// returned `v` (`v` = `None`: the register was empty) and `None` when the
/// value it read is unknown; the entries of writes are ignored. Every register
/// starts empty, or holding the value given to [`MultiRegister::starting_at`].
#[derive(Clone, Debug)]
pub struct MultiRegister<V = serde_json::Value> {
    keys: Vec<String>,
    initial: Option<V>,
}

/// The state of a [`MultiRegister`]: the registers whose value differs from
/// the initial one, sorted by key.
pub type Registers<V> = Vec<(u32, V)>;

/// What a transaction got back: per micro-operation, the value a read returned
/// (see [`MultiRegister`]).
pub type TxnReads<V> = Vec<Option<Option<V>>>;

impl<V> MultiRegister<V> {
    /// Registers named `keys[k]` for key `k`, initially empty.
    pub fn new(keys: Vec<String>) -> Self {
        Self::starting_at(keys, None)
    }

    /// Registers named `keys[k]` for key `k`, each initially holding `initial`
    /// (`None`: empty).
    pub fn starting_at(keys: Vec<String>, initial: Option<V>) -> Self {
        MultiRegister { keys, initial }
    }

    /// The name of key `k`, for descriptions.
    pub fn key_name(&self, k: u32) -> String {
        match self.keys.get(k as usize) {
            Some(name) => name.clone(),
            None => format!("#{k}"),
        }
    }
}

impl<V: Clone + Eq> MultiRegister<V> {
    /// What register `k` holds in `state`.
    fn get<'s>(&'s self, state: &'s Registers<V>, k: u32) -> Option<&'s V> {
        match state.binary_search_by_key(&k, |&(key, _)| key) {
            Ok(i) => Some(&state[i].1),
            Err(_) => self.initial.as_ref(),
        }
    }

    /// Sets register `k` to `v` in `state`, keeping it canonical: a register
    /// back at the initial value is not listed.
    fn set(&self, state: &mut Registers<V>, k: u32, v: V) {
        let at_initial = self.initial.as_ref() == Some(&v);
        match state.binary_search_by_key(&k, |&(key, _)| key) {
            Ok(i) if at_initial => {
                state.remove(i);
            }
            Ok(i) => state[i].1 = v,
            Err(_) if at_initial => {}
            Err(i) => state.insert(i, (k, v)),
        }
    }
}

fn show<V: fmt::Display>(v: Option<&V>) -> String {
    match v {
        Some(v) => v.to_string(),
        None => "empty".to_owned(),
    }
}

impl<V: Clone + Eq + Hash + fmt::Display> Model for MultiRegister<V> {
    type State = Registers<V>;
    type Input = Vec<Micro<V>>;
    type Output = TxnReads<V>;

    fn init(&self) -> Registers<V> {
        Vec::new()
    }

    fn step(
        &self,
        state: &Registers<V>,
        txn: &Vec<Micro<V>>,
        output: Option<&TxnReads<V>>,
    ) -> Option<Registers<V>> {
        let mut next: Option<Registers<V>> = None;
        for (i, micro) in txn.iter().enumerate() {
            let now = next.as_ref().unwrap_or(state);
            match micro {
                Micro::Read(k) => {
                    if let Some(Some(read)) = output.and_then(|o| o.get(i))
                        && self.get(now, *k) != read.as_ref()
                    {
                        return None;
                    }
                }
                Micro::Write(k, v) => {
                    let next = next.get_or_insert_with(|| state.clone());
                    self.set(next, *k, v.clone());
                }
            }
        }
        Some(next.unwrap_or_else(|| state.clone()))
    }

    fn is_read_only(&self, txn: &Vec<Micro<V>>) -> bool {
        txn.iter().all(|m| matches!(m, Micro::Read(_)))
    }

    fn describe_op(&self, txn: &Vec<Micro<V>>, output: Option<&TxnReads<V>>) -> String {
        let micros: Vec<String> = txn
            .iter()
            .enumerate()
            .map(|(i, micro)| match micro {
                Micro::Read(k) => {
                    let read = match output.and_then(|o| o.get(i)) {
                        Some(Some(v)) => show(v.as_ref()),
                        _ => "?".to_owned(),
                    };
                    format!("r {} {read}", self.key_name(*k))
                }
                Micro::Write(k, v) => format!("w {} {v}", self.key_name(*k)),
            })
            .collect();
        let unknown = if output.is_none() {
            " (unknown outcome)"
        } else {
            ""
        };
        format!("txn [{}]{unknown}", micros.join(", "))
    }

    fn describe_state(&self, state: &Registers<V>) -> String {
        let others = match &self.initial {
            Some(v) => format!("every other key {v}"),
            None => "every other key empty".to_owned(),
        };
        if state.is_empty() {
            return match &self.initial {
                Some(v) => format!("every key {v}"),
                None => "every key empty".to_owned(),
            };
        }
        let set: Vec<String> = state
            .iter()
            .map(|(k, v)| format!("{} = {v}", self.key_name(*k)))
            .collect();
        format!("{}; {others}", set.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> MultiRegister<i64> {
        MultiRegister::new(vec!["x".into(), "y".into()])
    }

    #[test]
    fn a_transaction_reads_and_writes_in_order() {
        let m = model();
        let s = m.init();
        let w = vec![Micro::Write(0, 1), Micro::Write(1, 2)];
        let s = m.step(&s, &w, Some(&vec![None, None])).unwrap();
        assert_eq!(s, vec![(0, 1), (1, 2)]);
        assert_eq!(m.describe_state(&s), "x = 1, y = 2; every other key empty");
        let r = vec![Micro::Read(0), Micro::Read(1)];
        assert!(
            m.step(&s, &r, Some(&vec![Some(Some(1)), Some(Some(2))]))
                .is_some()
        );
        assert!(
            m.step(&s, &r, Some(&vec![Some(Some(1)), Some(None)]))
                .is_none()
        );
        // An unknown read value constrains nothing.
        assert!(m.step(&s, &r, Some(&vec![None, Some(Some(2))])).is_some());
        // A read after a write in the same transaction sees it.
        let rw = vec![Micro::Write(0, 5), Micro::Read(0)];
        assert!(m.step(&s, &rw, Some(&vec![None, Some(Some(5))])).is_some());
        assert!(m.step(&s, &rw, Some(&vec![None, Some(Some(1))])).is_none());
        assert_eq!(
            m.describe_op(&rw, Some(&vec![None, Some(Some(5))])),
            "txn [w x 5, r x 5]"
        );
        assert_eq!(
            m.describe_op(&rw, None),
            "txn [w x 5, r x ?] (unknown outcome)"
        );
        assert!(m.is_read_only(&r) && !m.is_read_only(&rw));
    }

    #[test]
    fn an_initial_value_is_every_key_s_until_written() {
        let m = MultiRegister::starting_at(vec!["x".into()], Some(0));
        let s = m.init();
        let r = vec![Micro::Read(0)];
        assert!(m.step(&s, &r, Some(&vec![Some(Some(0))])).is_some());
        assert!(m.step(&s, &r, Some(&vec![Some(None)])).is_none());
        // Writing the initial value back gives the initial state itself.
        let s1 = m
            .step(&s, &vec![Micro::Write(0, 3)], Some(&vec![None]))
            .unwrap();
        let s0 = m
            .step(&s1, &vec![Micro::Write(0, 0)], Some(&vec![None]))
            .unwrap();
        assert_eq!(s0, s);
        assert_eq!(m.describe_state(&s), "every key 0");
    }
}
