//! Hand-built results and histories for the tests of this crate: the seed scenario
//! of DESIGN.md, so snapshots read like a real run.

use std::time::{Duration, UNIX_EPOCH};

use leasehold_checker::{Anomaly, Certainty, Event, EventType, Process, Validity};
use serde_json::json;

use crate::results::{FaultRecord, Results, ScheduledFault, Timings};

const MS: u64 = 1_000_000;

/// A certain stale write by `writer`, superseded by `token + 1` held by w2; the
/// lease ended at 3000 ms.
pub(crate) fn stale(writer: &str, token: u64, data: &str, at_ms: u64) -> Anomaly {
    Anomaly::StaleWrite {
        certainty: Certainty::Certain,
        writer: writer.into(),
        key: "k".into(),
        token,
        data: data.into(),
        accepted_at: at_ms * MS,
        lease_deadline: 3000 * MS,
        late_by_ns: (at_ms * MS).saturating_sub(3000 * MS),
        superseded_by: Some(token + 1),
        superseded_holder: Some("w2".into()),
        ops: vec![],
        ledger: vec![],
    }
}

/// A run of "fencing-off" with seed 42, one pause of the holder w1, no checks.
pub(crate) fn sample_results(verdict: Validity) -> Results {
    let mut r = Results::new(
        "fencing-off",
        "20261125T193800.123Z",
        42,
        UNIX_EPOCH + Duration::from_millis(1_795_635_480_123),
        "local",
    );
    r.verdict = verdict;
    r.timings = Timings {
        setup_ms: Some(1200.0),
        run_ms: Some(10_000.0),
        teardown_ms: Some(300.0),
        check_ms: Some(45.25),
        total_ms: Some(11_545.25),
        ..Timings::default()
    };
    r.nemesis.schedule = vec![
        ScheduledFault {
            at_ms: 500,
            f: "pause".into(),
            target: "holder".into(),
            duration_ms: 3000,
            spec: Some(0),
        },
        ScheduledFault {
            at_ms: 6000,
            f: "pause".into(),
            target: "holder".into(),
            duration_ms: 3000,
            spec: Some(0),
        },
    ];
    r.nemesis.faults = vec![FaultRecord {
        f: "pause".into(),
        target: "holder".into(),
        nodes: vec!["w1".into()],
        start_ns: 500 * MS,
        effective_ns: Some(500 * MS + 85_000),
        end_ns: Some(3500 * MS),
        note: None,
        spec: Some(0),
    }];
    r.nemesis.asked = vec!["pause holder for 3s every 5500ms".into()];
    r
}

fn ev(
    index: u64,
    time_us: u64,
    process: Process,
    node: Option<&str>,
    kind: EventType,
    f: &str,
    value: serde_json::Value,
) -> Event {
    Event {
        index,
        time: time_us * 1000,
        process,
        node: node.map(str::to_owned),
        kind,
        f: f.into(),
        value,
        error: None,
    }
}

/// The seed scenario: w1 gets token 33 (lease 2000 ms), is paused at 500 ms, w2
/// gets 34 at 2102 ms and writes, w1 is resumed at 3500 ms and writes with 33.
/// With `fenced`, storage rejects that last write.
pub(crate) fn seed_history(fenced: bool) -> Vec<Event> {
    use EventType::*;
    let c = Process::Client;
    let nem = Process::nemesis;
    let mut h = vec![
        ev(
            0,
            0,
            c(1),
            Some("w1"),
            Invoke,
            "acquire",
            json!({"lock": "L"}),
        ),
        ev(
            1,
            1_200,
            c(1),
            Some("w1"),
            Ok,
            "acquire",
            json!({"lock": "L", "token": 33, "lease_ms": 2000}),
        ),
        ev(
            2,
            5_000,
            c(1),
            Some("w1"),
            Invoke,
            "write",
            json!({"key": "k", "token": 33, "data": "w1-1"}),
        ),
        ev(
            3,
            7_000,
            c(1),
            Some("w1"),
            Ok,
            "write",
            json!({"key": "k", "token": 33, "data": "w1-1"}),
        ),
        ev(
            4,
            500_000,
            nem(),
            None,
            Info,
            "pause",
            json!({"nodes": ["w1"]}),
        ),
        ev(
            5,
            2_100_000,
            c(2),
            Some("w2"),
            Invoke,
            "acquire",
            json!({"lock": "L"}),
        ),
        ev(
            6,
            2_102_000,
            c(2),
            Some("w2"),
            Ok,
            "acquire",
            json!({"lock": "L", "token": 34, "lease_ms": 2000}),
        ),
        ev(
            7,
            2_110_000,
            c(2),
            Some("w2"),
            Invoke,
            "write",
            json!({"key": "k", "token": 34, "data": "w2-1"}),
        ),
        ev(
            8,
            2_112_000,
            c(2),
            Some("w2"),
            Ok,
            "write",
            json!({"key": "k", "token": 34, "data": "w2-1"}),
        ),
        ev(
            9,
            3_500_000,
            nem(),
            None,
            Info,
            "resume",
            json!({"nodes": ["w1"]}),
        ),
        ev(
            10,
            3_501_000,
            c(1),
            Some("w1"),
            Invoke,
            "write",
            json!({"key": "k", "token": 33, "data": "w1-2"}),
        ),
        ev(
            11,
            3_503_000,
            c(1),
            Some("w1"),
            Ok,
            "write",
            json!({"key": "k", "token": 33, "data": "w1-2"}),
        ),
    ];
    if fenced {
        h[11].kind = Fail;
        h[11].value = serde_json::Value::Null;
        h[11].error = Some("rejected: token 33 < high water 34".into());
    }
    h
}

/// The stale write of [`seed_history`], as the checker reports it.
pub(crate) fn seed_anomaly() -> Anomaly {
    Anomaly::StaleWrite {
        certainty: Certainty::Certain,
        writer: "w1".into(),
        key: "k".into(),
        token: 33,
        data: "w1-2".into(),
        accepted_at: 3_502 * MS,
        lease_deadline: 2_000 * MS,
        late_by_ns: 1_502 * MS,
        superseded_by: Some(34),
        superseded_holder: Some("w2".into()),
        ops: vec![1, 11, 6],
        ledger: vec![2],
    }
}
