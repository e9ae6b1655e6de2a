//! The "Checks" section: one row per check.

use leasehold_checker::CheckReport;
use maud::{Markup, html};

use super::text::{Text, compact};

pub(super) fn checks_section(checks: &[CheckReport]) -> Markup {
    html! {
        section id="checks" {
            h2 { "Checks" }
            @if checks.is_empty() {
                p { "No check ran." }
            } @else {
                table class="list" {
                    tr { th { "check" } th { "verdict" } th { "summary" } th { "anomalies" } th { "stats" } }
                    @for c in checks {
                        tr {
                            td { (Text(&c.name)) }
                            td {
                                span class={ "badge small " (c.validity.as_str()) } { (c.validity.as_str()) }
                            }
                            td { (Text(&c.summary)) }
                            td class="num" { (c.anomalies.len()) }
                            td class="stats" {
                                @for (i, (k, v)) in c.stats.iter().enumerate() {
                                    @if i > 0 { br; }
                                    // Non-breaking, so a stat never wraps around its `=`.
                                    (Text(k)) "\u{a0}=\u{a0}" (Text(&compact(v)))
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
