//! A linearizability counterexample: how far a legal order got, and what could
//! not come next from there.

use std::fmt::Write;

use super::text::esc;

/// The longest linearizable prefix (its length and the state it leaves) and
/// the operations that could not come next, as the model describes them.
pub(super) fn counterexample(h: &mut String, linearized: usize, state: &str, stuck: &[String]) {
    let _ = writeln!(
        h,
        "<p>The longest linearizable prefix has {linearized} operation(s) and leaves the model in state <code>{}</code>. None of the operations that could come next fits:</p>\n<ul>",
        esc(state)
    );
    for d in stuck {
        let _ = writeln!(h, "<li><code>{}</code></li>", esc(d));
    }
    h.push_str("</ul>\n");
}
