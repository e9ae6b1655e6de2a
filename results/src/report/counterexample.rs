//! A linearizability counterexample: how far a legal order got, and what could
//! not come next from there.

use maud::{Markup, html};

use super::text::Text;

/// The longest linearizable prefix (its length and the state it leaves) and
/// the operations that could not come next, as the model describes them.
pub(super) fn counterexample(linearized: usize, state: &str, stuck: &[String]) -> Markup {
    html! {
        p {
            "The longest linearizable prefix has " (linearized)
            " operation(s) and leaves the model in state " code { (Text(state)) }
            ". None of the operations that could come next fits:"
        }
        ul {
            @for d in stuck {
                li { code { (Text(d)) } }
            }
        }
    }
}
