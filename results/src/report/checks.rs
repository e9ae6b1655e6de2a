//! The "Checks" section: one row per check.

use std::fmt::Write;

use leasehold_checker::CheckReport;

use super::text::{compact, esc};

pub(super) fn checks_section(h: &mut String, checks: &[CheckReport]) {
    h.push_str("<section id=\"checks\">\n<h2>Checks</h2>\n");
    if checks.is_empty() {
        h.push_str("<p>No check ran.</p>\n</section>\n");
        return;
    }
    h.push_str(
        "<table class=\"list\">\n<tr><th>check</th><th>verdict</th><th>summary</th><th>anomalies</th><th>stats</th></tr>\n",
    );
    for c in checks {
        let stats: Vec<String> = c
            .stats
            .iter()
            .map(|(k, v)| format!("{}&nbsp;=&nbsp;{}", esc(k), esc(&compact(v))))
            .collect();
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td><span class=\"badge small {}\">{}</span></td><td>{}</td><td class=\"num\">{}</td><td class=\"stats\">{}</td></tr>",
            esc(&c.name),
            c.validity.as_str(),
            c.validity.as_str(),
            esc(&c.summary),
            c.anomalies.len(),
            stats.join("<br>")
        );
    }
    h.push_str("</table>\n</section>\n");
}
