//! The page's head and header: what was tested and the verdict, big.

use std::fmt::Write;

use leasehold_checker::Validity;

use super::css::CSS;
use super::text::esc;
use crate::results::Results;

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

/// The document head, and the header: the test's name, the verdict badge and
/// the line that says why.
pub(super) fn head_and_header(h: &mut String, results: &Results) {
    let badge = verdict_badge(results);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{} — {} — leasehold</title>\n<style>{CSS}</style>\n</head>\n<body>\n",
        esc(&results.test),
        badge.0
    );
    let _ = write!(
        h,
        "<header>\n<h1>{}</h1>\n<div class=\"badges\"><span class=\"badge {}\">{}</span>",
        esc(&results.test),
        badge.1,
        badge.0
    );
    if results.interrupted {
        h.push_str("<span class=\"badge interrupted\">INTERRUPTED</span>");
    }
    // The badge already says the verdict; the line under it says why.
    let headline = results.headline();
    let reason = headline.split_once(": ").map_or(&*headline, |(_, why)| why);
    let _ = write!(
        h,
        "</div>\n<p class=\"headline\">{}</p>\n</header>\n",
        esc(reason)
    );
}
