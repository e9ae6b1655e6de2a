//! Turning history values into escaped HTML text.

use leasehold_checker::{Event, EventType};

pub(super) fn kind_str(k: EventType) -> &'static str {
    match k {
        EventType::Invoke => "invoke",
        EventType::Ok => "ok",
        EventType::Fail => "fail",
        EventType::Info => "info",
    }
}

pub(super) fn actor(e: &Event) -> String {
    e.node
        .clone()
        .unwrap_or_else(|| format!("process {}", e.process))
}

pub(super) fn compact(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

pub(super) fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s.to_owned(),
    }
}

/// Escapes text for HTML. `://` is broken up with a character reference (it renders
/// the same) so that no string from a node can ever form a URL in the file: the
/// report promises to hold no external address, whatever the history says.
pub(super) fn esc(s: &str) -> String {
    html_escape::encode_text(s).replace("://", ":&#47;&#47;")
}
