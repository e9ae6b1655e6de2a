//! Lost writes: an acknowledged write is missing from the final read.
//!
//! # The property
//!
//! At the end of a run the controller reads every key once everything is quiet:
//! operations of the process `"final"` with `f` `read`. The last `ok` final read
//! of a key shows one value, which must be the newest acknowledged write to the
//! key or one that superseded it.
//!
//! **Acknowledged writes.** With a ledger, every entry with decision `accepted`
//! (storage's own word, whether or not the reply reached the client); the ledger
//! is authoritative, so `ok` writes of the history are not counted again.
//! Without a ledger, every `ok` write of the history. A write must be reflected
//! only if it was acknowledged before the final read was sent: accepted (ledger
//! time) before the read's invocation, or, without a ledger, answered before it.
//! Writes acknowledged later may or may not show, and are never lost.
//!
//! **The order of writes to a key**, in which a later write supersedes an
//! earlier one:
//!
//! - *fenced storage*: by token, and for equal tokens by acceptance (ledger
//!   position, or without a ledger real time), because a fenced store keeps the
//!   write with the highest token (ties: the last accepted);
//! - *unfenced storage*: by acceptance alone, the last accepted write wins.
//!
//! Whether storage was fenced comes from the caller
//! ([`check_lost_writes_with_fencing`]); when it does not say
//! ([`check_lost_writes`]), storage that rejected any write in the ledger is
//! taken as fenced and other storage as unfenced. For a correct fenced store that
//! rejected nothing the two orders coincide (its accepted tokens never go down),
//! so the guess can only matter where the fencing-order check already reports a
//! violation. Without a ledger and without the caller's word, a write counts as
//! superseded when it is in either order.
//!
//! **The value read** is located among the writes to the key by its token and
//! data: in the ledger, the last accepted entry with them decided before the read
//! completed; without a ledger, an `ok` or `info` write with them sent before the
//! read completed (a failed write certainly did not happen). Without a ledger a
//! write's moment of effect is known only as an interval, so the value read `v`
//! supersedes an acknowledged write `w` in acceptance order unless `v` certainly
//! took effect before `w` was sent (its reply arrived before `w`'s invocation).
//!
//! **Verdict.** An acknowledged write that must be reflected is *lost* when the
//! final read is empty, shows a value no write produced, or shows a value that
//! comes before it in the order above. The check is invalid if any write is lost,
//! valid otherwise. It reports one anomaly per key, naming the newest lost write
//! (the least the final read should have shown), how many were lost, the final
//! read and every lost write as evidence.
//!
//! The report counts as judged the acknowledged writes the final reads had to
//! reflect. Keys with acknowledged writes but no `ok` final read are counted as
//! `keys_unread` and not judged. When nothing was judged (no `ok` final read at
//! all, which also gives `stats.checked = false`, or no acknowledged write
//! before the final read of its key) the check is `unknown`, never `valid`.
//! O(n log n).

use std::collections::{BTreeMap, HashMap};

use crate::event::Process;
use crate::input::CheckInput;
use crate::ledger::{Decision, LedgerEntry, WriteOps};
use crate::op::{Call, Op, Outcome};
use crate::verdict::{
    Anomaly, CheckReport, Judged, Validity, judged_nothing, plural, unless_vacuous,
};

const UNIT: &str = "acknowledged writes";

/// How writes to a key supersede each other.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Fenced,
    Unfenced,
    /// Superseded in either order (no ledger, fencing unknown).
    Either,
}

/// The lost-write check (`lost-write`), guessing whether storage was fenced
/// from the ledger; see the module documentation.
pub fn check_lost_writes(input: CheckInput<'_>) -> CheckReport {
    check_lost_writes_with_fencing(input, None)
}

/// The lost-write check when the caller knows whether storage was fenced
/// (`Some(true)`), not fenced (`Some(false)`), or does not know (`None`).
pub fn check_lost_writes_with_fencing(input: CheckInput<'_>, fencing: Option<bool>) -> CheckReport {
    // The last ok final read of each key, in invocation order.
    let mut finals: BTreeMap<&str, &Op> = BTreeMap::new();
    for op in input.ops {
        if let (Process::Named(p), Call::Read { key, .. }, Outcome::Ok) =
            (&op.process, &op.call, op.outcome)
            && p == "final"
        {
            finals.insert(key.as_str(), op);
        }
    }
    if finals.is_empty() {
        let mut stats = serde_json::Map::new();
        stats.insert("checked".to_owned(), false.into());
        return CheckReport {
            name: "lost-write".to_owned(),
            validity: Validity::Unknown,
            summary: judged_nothing("no final read"),
            judged: Judged::new(0, UNIT),
            anomalies: Vec::new(),
            stats,
        };
    }

    let mut tally = Tally::default();
    let mut anomalies = match input.ledger {
        Some(ledger) => {
            let mode = match fencing {
                Some(true) => Mode::Fenced,
                Some(false) => Mode::Unfenced,
                None if ledger.iter().any(|e| e.decision == Decision::Rejected) => Mode::Fenced,
                None => Mode::Unfenced,
            };
            with_ledger(input.ops, ledger, &finals, mode, &mut tally)
        }
        None => {
            let mode = match fencing {
                Some(true) => Mode::Fenced,
                Some(false) => Mode::Unfenced,
                None => Mode::Either,
            };
            without_ledger(input.ops, &finals, mode, &mut tally)
        }
    };
    anomalies.sort_by(|a, b| key_of(a).cmp(key_of(b)));

    let lost: u64 = anomalies
        .iter()
        .map(|a| match a {
            Anomaly::LostWrite { lost, .. } => *lost,
            _ => 0,
        })
        .sum();
    let mut summary = if tally.required == 0 {
        let reads = match finals.len() {
            1 => "read of 1 key".to_owned(),
            n => format!("reads of {n} keys"),
        };
        judged_nothing(format!(
            "the final {reads} had no acknowledged write to reflect"
        ))
    } else if anomalies.is_empty() {
        format!(
            "the final reads of {} reflect all {}",
            plural(finals.len() as u64, "key", "keys"),
            plural(tally.required, "acknowledged write", "acknowledged writes"),
        )
    } else {
        format!(
            "{} lost on {}: the final read does not reflect them",
            plural(lost, "acknowledged write", "acknowledged writes"),
            plural(anomalies.len() as u64, "key", "keys"),
        )
    };
    if tally.keys_unread > 0 {
        summary += &format!(
            "; {} written but not read at the end, not judged",
            plural(tally.keys_unread, "key", "keys")
        );
    }
    let mut stats = serde_json::Map::new();
    stats.insert("checked".to_owned(), true.into());
    stats.insert("keys_read".to_owned(), finals.len().into());
    stats.insert("keys_unread".to_owned(), tally.keys_unread.into());
    stats.insert("writes_required".to_owned(), tally.required.into());
    stats.insert("writes_lost".to_owned(), lost.into());
    stats.insert(
        "fencing".to_owned(),
        match fencing {
            Some(f) => f.into(),
            None => serde_json::Value::Null,
        },
    );
    CheckReport {
        name: "lost-write".to_owned(),
        validity: if anomalies.is_empty() {
            unless_vacuous(Validity::Valid, tally.required)
        } else {
            Validity::Invalid
        },
        summary,
        judged: Judged::new(tally.required, UNIT),
        anomalies,
        stats,
    }
}

#[derive(Default)]
struct Tally {
    /// Acknowledged writes the final reads had to reflect.
    required: u64,
    /// Keys with acknowledged writes but no ok final read.
    keys_unread: u64,
}

fn key_of(a: &Anomaly) -> &str {
    match a {
        Anomaly::LostWrite { key, .. } => key,
        _ => "",
    }
}

fn read_value(read: &Op) -> Option<(u64, &str)> {
    match &read.call {
        Call::Read {
            value: Some((token, data)),
            ..
        } => Some((*token, data.as_str())),
        _ => None,
    }
}

fn with_ledger(
    ops: &[Op],
    ledger: &[LedgerEntry],
    finals: &BTreeMap<&str, &Op>,
    mode: Mode,
    tally: &mut Tally,
) -> Vec<Anomaly> {
    // Accepted entries per key, in ledger order.
    let mut by_key: HashMap<&str, Vec<usize>> = HashMap::new();
    for (pos, e) in ledger.iter().enumerate() {
        if e.decision == Decision::Accepted {
            by_key.entry(e.key.as_str()).or_default().push(pos);
        }
    }
    // Position in the order: ledger position, or (token, position) when fenced.
    let rank = |pos: usize| match mode {
        Mode::Fenced => (ledger[pos].token, pos),
        _ => (0, pos),
    };
    let mut matching: Option<WriteOps<'_>> = None;
    let mut anomalies = Vec::new();
    for (key, positions) in &by_key {
        let Some(read) = finals.get(key) else {
            tally.keys_unread += 1;
            continue;
        };
        let read_done = read.complete_time.unwrap_or(u64::MAX);
        let required: Vec<usize> = positions
            .iter()
            .copied()
            .filter(|&p| ledger[p].time < read.invoke_time)
            .collect();
        tally.required += required.len() as u64;
        let value = read_value(read);
        let shown = value.and_then(|(token, data)| {
            positions.iter().rev().copied().find(|&p| {
                let e = &ledger[p];
                e.token == token && e.data == data && e.time <= read_done
            })
        });
        let mut lost: Vec<usize> = match shown {
            Some(v) => required
                .into_iter()
                .filter(|&p| rank(p) > rank(v))
                .collect(),
            None => required,
        };
        if lost.is_empty() {
            continue;
        }
        lost.sort_unstable_by_key(|&p| rank(p));
        let newest = &ledger[*lost.last().expect("not empty")];
        let matching = matching.get_or_insert_with(|| WriteOps::new(ops));
        let mut evidence = vec![read.invoke_index];
        evidence.extend(
            lost.iter()
                .filter_map(|&p| matching.find(&ledger[p]))
                .map(|o| ops[o].invoke_index),
        );
        evidence.sort_unstable();
        evidence.dedup();
        let mut positions_shown = lost.clone();
        positions_shown.sort_unstable();
        positions_shown.extend(shown);
        anomalies.push(Anomaly::LostWrite {
            key: (*key).to_owned(),
            writer: newest.from.clone(),
            token: newest.token,
            data: newest.data.clone(),
            lost: lost.len() as u64,
            read_token: value.map(|(t, _)| t),
            read_data: value.map(|(_, d)| d.to_owned()),
            ops: evidence,
            ledger: positions_shown,
        });
    }
    anomalies
}

fn without_ledger(
    ops: &[Op],
    finals: &BTreeMap<&str, &Op>,
    mode: Mode,
    tally: &mut Tally,
) -> Vec<Anomaly> {
    // Writes that may have happened (ok or info), per key, as positions in `ops`.
    let mut by_key: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, op) in ops.iter().enumerate() {
        if let Call::Write { key, .. } = &op.call
            && op.outcome != Outcome::Fail
        {
            by_key.entry(key.as_str()).or_default().push(i);
        }
    }
    let token = |i: usize| match ops[i].call {
        Call::Write { token, .. } => token,
        _ => 0,
    };
    let complete = |i: usize| ops[i].complete_time.unwrap_or(u64::MAX);
    // Does the value written by `v` supersede (or equal) the write `w`?
    let supersedes = |v: usize, w: usize| {
        // `v` took effect no later than its deadline, `w` no earlier than its send.
        let maybe_later = v == w || ops[v].effect_deadline() >= ops[w].invoke_time;
        match mode {
            Mode::Unfenced => maybe_later,
            Mode::Fenced => token(v) > token(w) || (token(v) == token(w) && maybe_later),
            Mode::Either => token(v) > token(w) || maybe_later,
        }
    };
    let mut anomalies = Vec::new();
    for (key, writes) in &by_key {
        let acknowledged = writes.iter().copied().filter(|&i| ops[i].is_ok());
        let Some(read) = finals.get(key) else {
            if acknowledged.count() > 0 {
                tally.keys_unread += 1;
            }
            continue;
        };
        let read_done = read.complete_time.unwrap_or(u64::MAX);
        let required: Vec<usize> = acknowledged
            .filter(|&i| complete(i) < read.invoke_time)
            .collect();
        tally.required += required.len() as u64;
        let value = read_value(read);
        // Of the writes that could have produced the value, the one that
        // supersedes most: the latest to take effect.
        let shown = value.and_then(|(t, d)| {
            writes
                .iter()
                .copied()
                .filter(|&i| {
                    matches!(&ops[i].call, Call::Write { token, data, .. } if *token == t && data == d)
                        && ops[i].invoke_time <= read_done
                })
                .max_by_key(|&i| (ops[i].effect_deadline(), ops[i].invoke_index))
        });
        let mut lost: Vec<usize> = match shown {
            Some(v) => required
                .into_iter()
                .filter(|&w| !supersedes(v, w))
                .collect(),
            None => required,
        };
        if lost.is_empty() {
            continue;
        }
        lost.sort_unstable_by_key(|&i| match mode {
            Mode::Unfenced => (0, complete(i), ops[i].invoke_index),
            _ => (token(i), complete(i), ops[i].invoke_index),
        });
        let newest = &ops[*lost.last().expect("not empty")];
        let Call::Write {
            token: newest_token,
            data: newest_data,
            ..
        } = &newest.call
        else {
            continue;
        };
        let mut evidence: Vec<u64> = lost.iter().map(|&i| ops[i].invoke_index).collect();
        evidence.push(read.invoke_index);
        evidence.sort_unstable();
        evidence.dedup();
        anomalies.push(Anomaly::LostWrite {
            key: (*key).to_owned(),
            writer: newest.actor(),
            token: *newest_token,
            data: newest_data.clone(),
            lost: lost.len() as u64,
            read_token: value.map(|(t, _)| t),
            read_data: value.map(|(_, d)| d.to_owned()),
            ops: evidence,
            ledger: Vec::new(),
        });
    }
    anomalies
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::event::EventType;
    use crate::test_support::{Builder, input};

    fn run(b: &Builder, with_ledger: bool, fencing: Option<bool>) -> CheckReport {
        let ops = b.ops();
        check_lost_writes_with_fencing(input(&ops, &b.ledger, with_ledger), fencing)
    }

    /// Two writers, the second with a higher token; ledger kept.
    fn two_writes() -> Builder {
        let mut b = Builder::new();
        b.write(1, "k", 1, "w1-1", 0, 2, EventType::Ok); // 0
        b.ledger(1, "k", 1, "w1-1", "w1", Decision::Accepted);
        b.write(2, "k", 2, "w2-1", 10, 12, EventType::Ok); // 2
        b.ledger(11, "k", 2, "w2-1", "w2", Decision::Accepted);
        b
    }

    #[test]
    fn a_write_missing_from_the_final_read_is_lost() {
        let mut b = two_writes();
        let read = b.final_read(100, "k", Some((1, "w1-1"))); // 4
        for (with_ledger, fencing) in [
            (true, None),
            (true, Some(false)),
            (false, None),
            (false, Some(true)),
        ] {
            let report = run(&b, with_ledger, fencing);
            assert_eq!(report.name, "lost-write");
            assert_eq!(
                report.validity,
                Validity::Invalid,
                "{with_ledger} {fencing:?}"
            );
            assert_eq!(
                report.anomalies,
                vec![Anomaly::LostWrite {
                    key: "k".into(),
                    writer: "w2".into(),
                    token: 2,
                    data: "w2-1".into(),
                    lost: 1,
                    read_token: Some(1),
                    read_data: Some("w1-1".into()),
                    ops: vec![2, read],
                    ledger: if with_ledger { vec![1, 0] } else { vec![] },
                }]
            );
            assert_eq!(report.stats["writes_lost"], json!(1));
        }
        let explained = run(&b, true, None).anomalies[0].explain();
        assert_eq!(
            explained,
            "w2's acknowledged write \"w2-1\" to \"k\" with token 2 is missing from the final read, which returned \"w1-1\" (token 1)"
        );

        // An empty final read loses both.
        let mut b = two_writes();
        b.final_read(100, "k", None);
        let report = run(&b, true, None);
        assert_eq!(report.validity, Validity::Invalid);
        assert!(matches!(
            report.anomalies[..],
            [Anomaly::LostWrite {
                lost: 2,
                token: 2,
                ..
            }]
        ));
        assert!(
            report.anomalies[0]
                .explain()
                .ends_with("returned nothing (1 earlier acknowledged write is lost too)")
        );
        assert_eq!(
            report.summary,
            "2 acknowledged writes lost on 1 key: the final read does not reflect them"
        );

        // A value nobody wrote reflects nothing.
        let mut b = two_writes();
        b.final_read(100, "k", Some((2, "garbage")));
        assert_eq!(run(&b, true, None).validity, Validity::Invalid);
        assert_eq!(run(&b, false, None).validity, Validity::Invalid);
    }

    #[test]
    fn a_write_overwritten_by_a_later_token_is_not_lost() {
        let mut b = two_writes();
        b.final_read(100, "k", Some((2, "w2-1")));
        for with_ledger in [true, false] {
            for fencing in [None, Some(true), Some(false)] {
                let report = run(&b, with_ledger, fencing);
                assert_eq!(report.validity, Validity::Valid, "{report:#?}");
                assert_eq!(report.stats["writes_required"], json!(2));
            }
        }
        assert_eq!(run(&b, true, None).judged, Judged::new(2, UNIT));
        assert_eq!(
            run(&b, true, None).summary,
            "the final reads of 1 key reflect all 2 acknowledged writes"
        );
    }

    #[test]
    fn fenced_storage_keeps_the_highest_token_unfenced_the_last_accepted() {
        // The zombie: token 1 accepted after token 2.
        let mut b = two_writes();
        b.write(1, "k", 1, "w1-2", 20, 22, EventType::Ok); // 4
        b.ledger(21, "k", 1, "w1-2", "w1", Decision::Accepted);
        b.final_read(100, "k", Some((2, "w2-1")));
        // Fenced: token 2 is the highest, the read is right.
        assert_eq!(run(&b, true, Some(true)).validity, Validity::Valid);
        assert_eq!(run(&b, false, Some(true)).validity, Validity::Valid);
        // Unfenced: the zombie's write came last and is missing.
        let report = run(&b, true, Some(false));
        assert_eq!(report.validity, Validity::Invalid);
        assert!(
            matches!(&report.anomalies[..], [Anomaly::LostWrite { data, lost: 1, .. }] if data == "w1-2")
        );
        assert_eq!(run(&b, false, Some(false)).validity, Validity::Invalid);
        // Guessed from a ledger that never rejected: unfenced.
        assert_eq!(run(&b, true, None).validity, Validity::Invalid);
        // Without a ledger or a word on fencing, either order explains it.
        assert_eq!(run(&b, false, None).validity, Validity::Valid);

        // With a rejection in the ledger, storage is taken as fenced.
        b.ledger(30, "k", 0, "w3-1", "w3", Decision::Rejected);
        assert_eq!(run(&b, true, None).validity, Validity::Valid);
    }

    #[test]
    fn writes_acknowledged_during_or_after_the_final_read_need_not_show() {
        let mut b = two_writes();
        b.final_read(100, "k", Some((2, "w2-1")));
        // Accepted while the read was in flight, and after it.
        b.write(3, "k", 3, "w3-1", 99, 101, EventType::Ok);
        b.ledger(100, "k", 3, "w3-1", "w3", Decision::Accepted);
        b.write(4, "k", 4, "w4-1", 150, 152, EventType::Ok);
        b.ledger(151, "k", 4, "w4-1", "w4", Decision::Accepted);
        // A write that ended info: not acknowledged.
        b.write(5, "k", 5, "w5-1", 50, 52, EventType::Info);
        for with_ledger in [true, false] {
            let report = run(&b, with_ledger, None);
            assert_eq!(report.validity, Validity::Valid, "{report:#?}");
        }
    }

    #[test]
    fn overlapping_writes_may_land_in_either_order_without_a_ledger() {
        let mut b = Builder::new();
        b.write(1, "k", 1, "a", 0, 10, EventType::Ok);
        b.write(2, "k", 1, "b", 5, 7, EventType::Ok);
        b.final_read(100, "k", Some((1, "a")));
        assert_eq!(run(&b, false, Some(false)).validity, Validity::Valid);
        // An unknown write may have landed last as well.
        let mut b = Builder::new();
        b.write(1, "k", 1, "a", 0, 10, EventType::Ok);
        b.write(2, "k", 1, "b", 20, 30, EventType::Ok);
        b.write(3, "k", 1, "c", 5, 6, EventType::Info);
        b.final_read(100, "k", Some((1, "c")));
        assert_eq!(run(&b, false, Some(false)).validity, Validity::Valid);
        // But not one that failed.
        let mut b = Builder::new();
        b.write(1, "k", 1, "a", 0, 10, EventType::Ok);
        b.write(3, "k", 1, "c", 11, 12, EventType::Fail);
        b.final_read(100, "k", Some((1, "c")));
        assert_eq!(run(&b, false, Some(false)).validity, Validity::Invalid);
    }

    #[test]
    fn without_a_final_read_nothing_is_judged() {
        let b = two_writes();
        for with_ledger in [true, false] {
            let report = run(&b, with_ledger, None);
            assert_eq!(report.validity, Validity::Unknown);
            assert_eq!(report.summary, "judged nothing: no final read");
            assert_eq!(report.stats["checked"], json!(false));
            assert_eq!(report.judged, Judged::new(0, UNIT));
        }
        // A final read that failed is no final read.
        let mut b = two_writes();
        let fin = || Process::Named("final".into());
        b.event(
            fin(),
            None,
            100,
            EventType::Invoke,
            "read",
            json!({"key": "k"}),
        );
        b.event(
            fin(),
            None,
            101,
            EventType::Fail,
            "read",
            json!({"key": "k"}),
        );
        assert_eq!(run(&b, true, None).summary, "judged nothing: no final read");
        assert_eq!(run(&b, true, None).validity, Validity::Unknown);
        // Keys that were not read are counted, not judged.
        let mut b = two_writes();
        b.write(1, "other", 1, "x", 20, 21, EventType::Ok);
        b.ledger(20, "other", 1, "x", "w1", Decision::Accepted);
        b.final_read(100, "k", Some((2, "w2-1")));
        for with_ledger in [true, false] {
            let report = run(&b, with_ledger, None);
            assert_eq!(report.validity, Validity::Valid);
            assert_eq!(report.stats["keys_unread"], json!(1));
            assert_eq!(report.judged, Judged::new(2, UNIT));
            assert!(
                report
                    .summary
                    .ends_with("; 1 key written but not read at the end, not judged"),
                "{}",
                report.summary
            );
        }
    }

    #[test]
    fn final_reads_with_no_acknowledged_write_to_reflect_judge_nothing() {
        // A key never written, read empty at the end.
        let mut b = Builder::new();
        b.final_read(100, "k", None);
        for with_ledger in [true, false] {
            let report = run(&b, with_ledger, None);
            assert_eq!(report.validity, Validity::Unknown, "{with_ledger}");
            assert_eq!(report.stats["checked"], json!(true));
            assert_eq!(report.judged, Judged::new(0, UNIT));
            assert_eq!(
                report.summary,
                "judged nothing: the final read of 1 key had no acknowledged write to reflect"
            );
        }
        // Writes acknowledged only after the final reads were sent, to a key
        // read, and one to a key not read at all.
        let mut b = Builder::new();
        b.final_read(100, "k", Some((1, "a")));
        b.final_read(102, "j", None);
        b.write(1, "k", 1, "a", 99, 150, EventType::Ok);
        b.ledger(101, "k", 1, "a", "w1", Decision::Accepted);
        b.write(2, "other", 1, "x", 20, 21, EventType::Ok);
        b.ledger(20, "other", 1, "x", "w2", Decision::Accepted);
        for with_ledger in [true, false] {
            let report = run(&b, with_ledger, None);
            assert_eq!(report.validity, Validity::Unknown, "{with_ledger}");
            assert!(report.judged_nothing());
            assert_eq!(
                report.summary,
                "judged nothing: the final reads of 2 keys had no acknowledged write to reflect; 1 key written but not read at the end, not judged"
            );
        }
    }
}
