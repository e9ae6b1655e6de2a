//! The sequential specification a history is checked against.

use std::hash::Hash;

/// A sequential specification: a deterministic state machine that says, for a
/// state and an operation, whether the operation may happen in that state, and
/// what the state becomes.
///
/// The search tries the operations of a history one after another in every
/// order that real time allows, asking [`step`](Model::step) each time; the
/// history is linearizable when some order takes every completed operation.
///
/// # Unknown outputs
///
/// `output` is `None` when the operation's result is unknown: it ended `info`, or
/// never completed. Such an operation may have taken effect at any moment after
/// its invocation, or never. The search covers "never" itself (it is free not to
/// linearize the operation), so `step` with `output: None` answers only "had it
/// taken effect here, what would the state be?", or `None` when it could not
/// have taken effect in this state.
///
/// # Example
///
/// A counter whose `add` returns the new total:
///
/// ```
/// use leasehold_checker::{Limits, Linearizability, Model, Operation, Process, check_operations};
///
/// struct Counter;
///
/// impl Model for Counter {
///     type State = i64;
///     type Input = i64; // the amount to add
///     type Output = i64; // the total after adding
///
///     fn init(&self) -> i64 {
///         0
///     }
///     fn step(&self, total: &i64, add: &i64, seen: Option<&i64>) -> Option<i64> {
///         let next = total + add;
///         match seen {
///             Some(&seen) if seen != next => None,
///             _ => Some(next),
///         }
///     }
///     fn describe_op(&self, add: &i64, seen: Option<&i64>) -> String {
///         match seen {
///             Some(total) => format!("add {add} -> {total}"),
///             None => format!("add {add} -> ?"),
///         }
///     }
///     fn describe_state(&self, total: &i64) -> String {
///         total.to_string()
///     }
/// }
///
/// let op = |id, call, ret, add, seen| Operation {
///     id,
///     process: Process::Client(id),
///     call,
///     ret,
///     input: add,
///     output: seen,
/// };
/// // Two concurrent adds: either may come first.
/// let ops = [op(0, 0, 10, 1, Some(3)), op(1, 5, 20, 2, Some(2))];
/// let analysis = check_operations(&Counter, &ops, Limits::none());
/// assert_eq!(analysis.result, Linearizability::Linearizable);
///
/// // The same adds one after the other: the second must see 3.
/// let ops = [op(0, 0, 10, 1, Some(1)), op(1, 15, 20, 2, Some(2))];
/// let analysis = check_operations(&Counter, &ops, Limits::none());
/// let Linearizability::NotLinearizable(cex) = analysis.result else { panic!() };
/// assert_eq!(cex.linearized, [0]);
/// assert_eq!(cex.stuck, [1]);
/// assert_eq!(cex.state, "1");
/// ```
pub trait Model {
    /// What the search remembers: two search points with the same set of
    /// linearized operations and equal states are the same point.
    type State: Clone + Eq + Hash;
    /// What an operation asked for.
    type Input;
    /// What an operation got back.
    type Output;

    /// The state before any operation.
    fn init(&self) -> Self::State;

    /// The state after `input` takes effect in `state` and returns `output`, or
    /// `None` if it cannot in this state. `output: None` means the result is
    /// unknown (see the trait's documentation).
    fn step(
        &self,
        state: &Self::State,
        input: &Self::Input,
        output: Option<&Self::Output>,
    ) -> Option<Self::State>;

    /// Whether `input` never changes the state (a read). An operation that never
    /// changes the state and whose output is unknown constrains nothing, so it is
    /// left out before the search.
    fn is_read_only(&self, input: &Self::Input) -> bool {
        let _ = input;
        false
    }

    /// One line naming an operation, for counterexamples: `read -> 3`.
    fn describe_op(&self, input: &Self::Input, output: Option<&Self::Output>) -> String;

    /// One line naming a state, for counterexamples.
    fn describe_state(&self, state: &Self::State) -> String;
}
