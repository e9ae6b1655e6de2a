//! The history: what happened in a run, one event per line of `history.jsonl`.

use std::io::BufRead;

use crate::event::Event;
use crate::op::Op;

/// A history as read: the events in file order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct History {
    /// Every event, nemesis actions included, in file order (index order for a
    /// history leasehold wrote).
    pub events: Vec<Event>,
}

/// A history line that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// The line is not a well-formed event (bad JSON, a missing or mistyped
    /// field, or for EDN a malformed form or operation).
    #[error("line {line}, column {column}: {message}")]
    Parse {
        /// 1-based line of the input.
        line: usize,
        /// 1-based column, in characters, where the parser gave up.
        column: usize,
        /// What is wrong, without the position.
        message: String,
    },
    /// Reading the line from the reader failed.
    #[error("line {line}: {source}")]
    Io {
        /// 1-based line that could not be read.
        line: usize,
        /// The reader's error.
        #[source]
        source: std::io::Error,
    },
}

/// Reads JSON lines; blank lines are skipped. An error names the 1-based line.
pub fn read_history(reader: impl BufRead) -> Result<History, HistoryError> {
    read_json_lines(reader).map(|events| History { events })
}

pub(crate) fn read_json_lines<T: serde::de::DeserializeOwned>(
    reader: impl BufRead,
) -> Result<Vec<T>, HistoryError> {
    let mut out = Vec::new();
    for (i, line) in reader.lines().enumerate() {
        let line_no = i + 1;
        let line = line.map_err(|source| HistoryError::Io {
            line: line_no,
            source,
        })?;
        if line.trim().is_empty() {
            continue;
        }
        let item = serde_json::from_str(&line).map_err(|e| HistoryError::Parse {
            line: line_no,
            column: e.column(),
            message: message_of(&e),
        })?;
        out.push(item);
    }
    Ok(out)
}

/// serde_json's message without its own " at line 1 column N": it parsed one line
/// on its own, so its line number is always 1 and would contradict ours.
fn message_of(e: &serde_json::Error) -> String {
    let full = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    match full.strip_suffix(&suffix) {
        Some(message) => message.to_owned(),
        None => full,
    }
}

impl History {
    /// A history of `events`, taken in the order given.
    pub fn new(events: Vec<Event>) -> Self {
        History { events }
    }

    /// Pairs each invocation with its completion (the next event of the same
    /// process) into client operations, in invocation order. Nemesis events are not
    /// operations and are skipped; other named processes (such as `"final"`, the
    /// controller's final reads) are kept. An invocation never completed counts as
    /// `info`.
    pub fn ops(&self) -> Vec<Op> {
        crate::op::pair(&self.events)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::event::{EventType, Process};
    use crate::op::{Call, Outcome};
    use crate::test_support::{Builder, ms};

    #[test]
    fn ops_pairs_invocations_with_completions() {
        let mut b = Builder::new();
        b.invoke(1, 0, "acquire", json!({"lock": "L", "ttl_ms": 100})); // 0
        b.nemesis(1, "pause", &["w1"]); // 1
        b.invoke(2, 2, "write", json!({"key": "k", "token": 3, "data": "x"})); // 2
        b.complete(
            1,
            3,
            EventType::Ok,
            "acquire",
            json!({"token": 9, "lease_ms": 100}),
        ); // 3
        b.complete(2, 4, EventType::Info, "write", json!({"error": "timeout"})); // 4
        b.invoke(3, 5, "renew", json!({"lock": "L", "token": 9})); // 5, never completes
        b.invoke(4, 6, "acquire", json!({"lock": "L"})); // 6
        b.complete(4, 7, EventType::Fail, "acquire", json!({"token": 4})); // 7
        b.event(
            Process::Named("final".into()),
            None,
            8,
            EventType::Invoke,
            "read",
            json!({"key": "k"}),
        ); // 8
        b.event(
            Process::Named("final".into()),
            None,
            9,
            EventType::Ok,
            "read",
            json!({"key": "k", "token": 9, "data": "y"}),
        ); // 9
        let ops = b.ops();
        let summary: Vec<_> = ops
            .iter()
            .map(|o| (o.invoke_index, o.complete_index, o.outcome))
            .collect();
        assert_eq!(
            summary,
            vec![
                (0, Some(3), Outcome::Ok),
                (2, Some(4), Outcome::Info),
                (5, None, Outcome::Info),
                (6, Some(7), Outcome::Fail),
                (8, Some(9), Outcome::Ok),
            ]
        );
        assert_eq!(
            ops[0].call,
            Call::Acquire {
                lock: "L".into(),
                token: Some(9),
                lease_ms: Some(100)
            }
        );
        assert_eq!(ops[0].invoke_time, ms(0));
        assert_eq!(ops[0].complete_time, Some(ms(3)));
        assert_eq!(ops[0].node.as_deref(), Some("w1"));
        assert_eq!(ops[1].effect_deadline(), u64::MAX);
        assert_eq!(
            ops[1].call,
            Call::Write {
                key: "k".into(),
                token: 3,
                data: "x".into()
            }
        );
        assert_eq!(ops[2].complete_time, None);
        // A failed acquire got no token, whatever its reply said.
        assert!(matches!(ops[3].call, Call::Acquire { token: None, .. }));
        assert_eq!(ops[4].actor(), "process final");
        assert_eq!(
            ops[4].call,
            Call::Read {
                key: "k".into(),
                value: Some((9, "y".into()))
            }
        );
    }

    #[test]
    fn history_round_trips_through_json_lines() {
        let b = crate::test_support::seed_scenario(false);
        let text: String = b
            .events
            .iter()
            .map(|e| serde_json::to_string(e).unwrap() + "\n")
            .collect();
        let read = read_history(format!("\n{text}\n").as_bytes()).unwrap();
        assert_eq!(read.events, b.events);
        let ledger: String = b
            .ledger
            .iter()
            .map(|e| serde_json::to_string(e).unwrap() + "\n")
            .collect();
        assert_eq!(read_ledger_for_test(&ledger), b.ledger);
    }

    fn read_ledger_for_test(text: &str) -> Vec<crate::ledger::LedgerEntry> {
        crate::ledger::read_ledger(text.as_bytes()).unwrap()
    }

    #[test]
    fn a_bad_line_is_named_by_its_number() {
        let text = concat!(
            r#"{"index":0,"time":1,"process":1,"type":"invoke","f":"write"}"#,
            "\n\n",
            r#"{"index":1,"time":2,"process":1,"type":"okay","f":"write"}"#,
            "\n"
        );
        let err = read_history(text.as_bytes()).unwrap_err();
        let HistoryError::Parse { line, .. } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(*line, 3);
        let shown = err.to_string();
        assert!(shown.starts_with("line 3, column "), "{shown}");
        assert!(!shown.contains("at line 1"), "{shown}");

        let ledger = concat!(
            r#"{"time":1,"key":"k","token":1,"data":"a","from":"w1","decision":"accepted","high_water":1}"#,
            "\n",
            r#"{"time":2,"key":"k","token":"two","data":"b","from":"w1","decision":"accepted","high_water":2}"#,
        );
        let err = crate::ledger::read_ledger(ledger.as_bytes()).unwrap_err();
        assert!(err.to_string().starts_with("line 2, column "), "{err}");
    }
}
