//! The "Nemesis" and "Nodes" sections: the schedule, the faults injected, the
//! nodes of the run.

use std::fmt::Write;

use super::text::esc;
use crate::results::Results;
use crate::summary::ms;

pub(super) fn nemesis_section(h: &mut String, r: &Results) {
    let n = &r.nemesis;
    h.push_str("<section id=\"nemesis\">\n<h2>Nemesis</h2>\n<h3>Schedule</h3>\n");
    if n.schedule.is_empty() {
        h.push_str("<p>No faults were scheduled.</p>\n");
    } else {
        h.push_str(
            "<table class=\"list\">\n<tr><th>at</th><th>fault</th><th>target</th><th>duration</th></tr>\n",
        );
        for s in &n.schedule {
            let _ = writeln!(
                h,
                "<tr><td class=\"num\">{} ms</td><td>{}</td><td>{}</td><td class=\"num\">{} ms</td></tr>",
                s.at_ms,
                esc(&s.f),
                esc(&s.target),
                s.duration_ms
            );
        }
        h.push_str("</table>\n");
    }
    h.push_str("<h3>Faults injected</h3>\n");
    if n.faults.is_empty() {
        h.push_str("<p>No fault was injected.</p>\n");
    } else {
        h.push_str(
            "<table class=\"list\">\n<tr><th>start</th><th>fault</th><th>target</th><th>nodes</th>\
             <th>took effect after</th><th>ended</th><th>lasted</th><th>note</th></tr>\n",
        );
        for f in &n.faults {
            let latency = f.effective_ns.map_or("—".to_owned(), |e| {
                format!("{:.0} µs", e.saturating_sub(f.start_ns) as f64 / 1e3)
            });
            let (ended, lasted) = match f.end_ns {
                Some(end) => (ms(end), ms(end.saturating_sub(f.start_ns))),
                None => ("not recorded".to_owned(), "—".to_owned()),
            };
            let _ = writeln!(
                h,
                "<tr><td class=\"num\">{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{latency}</td>\
                 <td class=\"num\">{ended}</td><td class=\"num\">{lasted}</td><td>{}</td></tr>",
                ms(f.start_ns),
                esc(&f.f),
                esc(&f.target),
                esc(&f.nodes.join(", ")),
                esc(f.note.as_deref().unwrap_or(""))
            );
        }
        h.push_str("</table>\n");
    }
    h.push_str("</section>\n");
}

pub(super) fn nodes_section(h: &mut String, r: &Results) {
    if r.nodes.is_empty() {
        return;
    }
    h.push_str("<section id=\"nodes\">\n<h2>Nodes</h2>\n");
    if let Some(l) = &r.lock_system {
        let _ = writeln!(
            h,
            "<p>Lock system: {} {}; fencing token: {}</p>",
            esc(&l.name),
            esc(&l.version),
            esc(&l.token)
        );
    }
    h.push_str("<table class=\"list\">\n<tr><th>node</th><th>role</th><th>address</th></tr>\n");
    for n in &r.nodes {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&n.name),
            esc(&n.role),
            esc(&n.addr)
        );
    }
    h.push_str("</table>\n</section>\n");
}
