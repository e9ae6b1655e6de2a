//! The page's head and header: what was tested and the verdict, big.

use leasehold_checker::Validity;
use maud::{Markup, PreEscaped, html};

use super::css::CSS;
use super::text::Text;
use crate::results::Results;

/// What the page may load: nothing from anywhere. Our own inline style and
/// script run, images only from `data:` URIs; a string that slipped through
/// unescaped still could not fetch or send anything.
const CSP: &str =
    "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:";

/// The badge text and its CSS class.
fn verdict_badge(results: &Results) -> (&'static str, &'static str) {
    if results.error.is_some() {
        return ("ERROR", "error");
    }
    match results.verdict {
        Validity::Valid => ("VALID", "valid"),
        Validity::Invalid => ("INVALID", "invalid"),
        Validity::Unknown => ("UNKNOWN", "unknown"),
    }
}

/// The document head.
pub(super) fn head(results: &Results) -> Markup {
    let badge = verdict_badge(results);
    html! {
        head {
            meta charset="utf-8";
            meta http-equiv="Content-Security-Policy" content=(CSP);
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (Text(&results.test)) " — " (badge.0) " — leasehold" }
            // Our own constant style sheet: nothing in it comes from a run.
            style { (PreEscaped(CSS)) }
        }
    }
}

/// The header: the test's name, the verdict badge and the line that says why.
pub(super) fn header(results: &Results) -> Markup {
    let badge = verdict_badge(results);
    // The badge already says the verdict; the line under it says why.
    let headline = results.headline();
    let reason = headline.split_once(": ").map_or(&*headline, |(_, why)| why);
    html! {
        header {
            h1 { (Text(&results.test)) }
            div class="badges" {
                span class={ "badge " (badge.1) } { (badge.0) }
                @if results.interrupted {
                    span class="badge interrupted" { "INTERRUPTED" }
                }
            }
            p class="headline" { (Text(reason)) }
        }
    }
}
