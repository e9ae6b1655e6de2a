//! Turning history values into escaped HTML text.

use leasehold_checker::{Event, EventType};
use maud::Render;

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

/// Text from a history, a config or a node, rendered escaped like any maud
/// value (`&`, `<`, `>`, `"`), and with `://` broken up by character references
/// (it renders the same) so that no such string can ever form a URL in the file:
/// the report promises to hold no external address, whatever the history says.
/// Every untrusted string goes through it rather than maud's plain `(s)`.
pub(super) struct Text<'a>(pub(super) &'a str);

impl Render for Text<'_> {
    fn render_to(&self, buffer: &mut String) {
        let mut pieces = self.0.split("://");
        if let Some(first) = pieces.next() {
            first.render_to(buffer);
        }
        for piece in pieces {
            buffer.push_str(":&#47;&#47;");
            piece.render_to(buffer);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> String {
        Text(s).render().into_string()
    }

    #[test]
    fn text_escapes_and_breaks_urls() {
        assert_eq!(
            text("<a href=\"x\">&</a>"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&lt;/a&gt;"
        );
        assert_eq!(
            text("see https://e.com/x and ftp://y"),
            "see https:&#47;&#47;e.com/x and ftp:&#47;&#47;y"
        );
        assert_eq!(text(":///"), ":&#47;&#47;/");
        assert_eq!(text("://"), ":&#47;&#47;");
        assert_eq!(text(""), "");
        assert_eq!(text("plain"), "plain");
    }
}
