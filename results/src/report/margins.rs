//! The "Near misses" section: how close each accepted write came to its
//! holder's lease deadline, in a valid run too, because a fenced run that
//! passed with writes landing 3 ms before their deadline is a warning.

use std::fmt::Write;

use leasehold_checker::Margins;

use super::text::esc;
use crate::results::duration_text;

pub(super) fn margins_section(h: &mut String, margins: Option<&Margins>) {
    let Some(m) = margins else {
        return;
    };
    h.push_str("<section id=\"margins\">\n<h2>Near misses</h2>\n");
    if m.writes == 0 {
        let _ = writeln!(
            h,
            "<p>No accepted write had a lease deadline to measure ({} without one).</p>\n</section>",
            m.without_deadline
        );
        return;
    }
    let basis = if m.basis == "ledger" {
        "storage's decision time, from its ledger"
    } else {
        "the write's reply, the latest it may have landed"
    };
    let _ = writeln!(
        h,
        "<p>How long before its holder's lease deadline each of the {} accepted writes landed \
         ({basis}); negative: after it. Smallest {}, median {}.</p>",
        m.writes,
        m.min_ms.map_or_else(|| "–".to_owned(), signed),
        m.median_ms.map_or_else(|| "–".to_owned(), signed),
    );
    let most = m
        .histogram
        .iter()
        .map(|b| b.count)
        .max()
        .unwrap_or(0)
        .max(1);
    h.push_str("<table class=\"list\">\n<tr><th>margin</th><th>writes</th><th></th></tr>\n");
    for b in &m.histogram {
        let width = b.count * 100 / most;
        let class = if b.from_ms.is_none() {
            "late"
        } else {
            "ontime"
        };
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td class=\"num\">{}</td><td><div class=\"bar {class}\" style=\"width:{width}%\"></div></td></tr>",
            esc(&b.label),
            b.count
        );
    }
    h.push_str("</table>\n<h3>The closest calls</h3>\n<table class=\"list\">\n");
    h.push_str(
        "<tr><th>margin</th><th>writer</th><th>key</th><th>data</th><th>token</th><th>landed</th><th>deadline</th></tr>\n",
    );
    for c in &m.closest {
        let link = c.op.map_or_else(
            || esc(&c.data),
            |op| format!("<a href=\"#e{op}\">{}</a>", esc(&c.data)),
        );
        let _ = writeln!(
            h,
            "<tr class=\"{}\"><td class=\"num\">{}</td><td>{}</td><td>{}</td><td>{link}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            if c.margin_ms < 0.0 { "late" } else { "ontime" },
            signed(c.margin_ms),
            esc(&c.writer),
            esc(&c.key),
            c.token,
            duration_text(c.landed_ns as f64 / 1e6),
            duration_text(c.deadline_ns as f64 / 1e6),
        );
    }
    h.push_str("</table>\n</section>\n");
}

/// `3.1 ms before`, `1.5 s after`.
fn signed(ms: f64) -> String {
    if ms < 0.0 {
        format!("{} after", duration_text(-ms))
    } else {
        format!("{} before", duration_text(ms))
    }
}
