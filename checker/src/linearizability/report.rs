//! Linearizability as a check: from a history and a model kind to a report.

use std::fmt;
use std::str::FromStr;
use std::time::Instant;

use serde_json::{Map, Value, json};

use super::convert::{self, Clock, Converted};
use super::model::Model;
use super::models::{
    CasOp, CasRegister, FencedMutex, Mutex, Register, RegisterOp, StrictCasRegister,
};
use super::run::{check_partitions, combine_analyses};
use super::types::{Analysis, Limits, Linearizability, Operation, Partition};
use crate::event::Event;
use crate::op::Op;
use crate::verdict::{
    Anomaly, CheckReport, Judged, Validity, judged_nothing, plural, unless_vacuous,
};

/// Which model, and which shapes of history, [`check_linearizability`] reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ModelKind {
    /// `register`: Jepsen `read`/`write` of `v` or `[key v]`, per key.
    Register,
    /// `cas-register`: as `register`, plus `cas` of `[old new]` or
    /// `[key [old new]]`. A cas that ended `fail` is left out: it changed
    /// nothing and says nothing more (Knossos's reading). Use it when a failed
    /// cas may also mean "not applied for another reason".
    CasRegister,
    /// `cas-register-strict`: the same operations as `cas-register`, but a cas
    /// `[old new]` that ended `fail` is an observation (Porcupine's reading): it
    /// took effect within its interval, where the register did not hold `old`,
    /// and changed nothing. Use it when a failed cas means exactly "compare
    /// failed": an etcd transaction whose compare did not hold, Jepsen etcd
    /// histories as Porcupine checks them. Stricter: whatever it accepts,
    /// `cas-register` accepts.
    CasRegisterStrict,
    /// `mutex`: Knossos's ownerless mutex, `acquire`/`release`, per `{lock}`.
    Mutex,
    /// `fenced-mutex`: owner-aware mutex with tokens (the `ok` value of
    /// `acquire`: a number or `{token}`) and leases when given (`lease_ms`,
    /// `ttl_ms`), per lock; owners are nodes, else processes.
    FencedMutex,
    /// `leasehold-storage`: leasehold's storage, one register of
    /// `(token, data)` per key.
    LeaseholdStorage,
    /// `leasehold-lock`: leasehold's locks, fenced mutexes with leases, per lock.
    LeaseholdLock,
}

impl ModelKind {
    /// Every model kind, in the order of this enum.
    pub const ALL: [ModelKind; 7] = [
        ModelKind::Register,
        ModelKind::CasRegister,
        ModelKind::CasRegisterStrict,
        ModelKind::Mutex,
        ModelKind::FencedMutex,
        ModelKind::LeaseholdStorage,
        ModelKind::LeaseholdLock,
    ];

    /// The model's name, as [`ModelKind::from_str`] reads it and reports show
    /// it: `register`, `cas-register`, …
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Register => "register",
            ModelKind::CasRegister => "cas-register",
            ModelKind::CasRegisterStrict => "cas-register-strict",
            ModelKind::Mutex => "mutex",
            ModelKind::FencedMutex => "fenced-mutex",
            ModelKind::LeaseholdStorage => "leasehold-storage",
            ModelKind::LeaseholdLock => "leasehold-lock",
        }
    }

    /// What one partition is, in summaries.
    fn partition_noun(self) -> (&'static str, &'static str) {
        match self {
            ModelKind::Register
            | ModelKind::CasRegister
            | ModelKind::CasRegisterStrict
            | ModelKind::LeaseholdStorage => ("key", "keys"),
            _ => ("lock", "locks"),
        }
    }
}

impl fmt::Display for ModelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A model name [`ModelKind::from_str`] does not know.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown model {0:?}: expected register, cas-register, cas-register-strict, mutex, fenced-mutex, leasehold-storage or leasehold-lock"
)]
pub struct UnknownModel(pub String);

impl FromStr for ModelKind {
    type Err = UnknownModel;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ModelKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| UnknownModel(s.to_owned()))
    }
}

/// Checks `events` for linearizability under `model`, split per key or lock.
///
/// The report is named `linearizability`; its stats: `model`, `partitions`,
/// `ops` (searched), `unknown_ops` (ended `info` or never completed),
/// `failed_ops` (left out), `ignored_ops` (other functions), `unreadable_ops`
/// (may have happened but could not be read, which makes a valid verdict
/// unknown), `states` (search points visited), `elapsed_ms`, and
/// `unknown_partitions`/`invalid_partitions` (keys).
///
/// It counts as judged the `ops` searched in partitions where at least one
/// operation completed `ok`: a partition of operations that may all never have
/// happened is linearizable without a search and proves nothing. A report that
/// judged nothing is unknown, never valid.
pub fn check_linearizability(events: &[Event], model: ModelKind, limits: Limits) -> CheckReport {
    let start = Instant::now();
    let name = "linearizability";
    match model {
        ModelKind::Register => {
            let conv = convert::jepsen_registers(events, false);
            let conv = Converted {
                partitions: conv
                    .partitions
                    .into_iter()
                    .map(|p| Partition {
                        key: p.key,
                        ops: p
                            .ops
                            .into_iter()
                            .map(|op| Operation {
                                id: op.id,
                                process: op.process,
                                call: op.call,
                                ret: op.ret,
                                input: match op.input {
                                    CasOp::Write(v) => RegisterOp::Write(v),
                                    _ => RegisterOp::Read,
                                },
                                output: op.output,
                            })
                            .collect(),
                    })
                    .collect(),
                clients: conv.clients,
                failed: conv.failed,
                ignored: conv.ignored,
                unreadable: conv.unreadable,
            };
            run(name, model, &Register::new(), conv, limits, start)
        }
        ModelKind::CasRegister => {
            let conv = convert::jepsen_registers(events, true);
            run(name, model, &CasRegister::new(), conv, limits, start)
        }
        ModelKind::CasRegisterStrict => {
            let conv = convert::jepsen_strict_cas_registers(events);
            run(name, model, &StrictCasRegister::new(), conv, limits, start)
        }
        ModelKind::Mutex => run(
            name,
            model,
            &Mutex,
            convert::jepsen_mutexes(events),
            limits,
            start,
        ),
        ModelKind::FencedMutex => {
            let conv = convert::fenced_mutexes(events, Clock::choose(events));
            let m = FencedMutex::with_clients(conv.clients.clone());
            run(name, model, &m, conv, limits, start)
        }
        ModelKind::LeaseholdStorage => {
            let ops = crate::op::pair(events);
            let conv = convert::leasehold_storage(&ops);
            run(name, model, &Register::new(), conv, limits, start)
        }
        ModelKind::LeaseholdLock => {
            let ops = crate::op::pair(events);
            let ttls = convert::asked_ttls(events);
            let conv = convert::leasehold_lock(&ops, &|i| ttls.get(&i).copied());
            let m = FencedMutex::with_clients(conv.clients.clone());
            run(name, model, &m, conv, limits, start)
        }
    }
}

/// Checks leasehold's storage (a `(token, data)` register per key) and locks (a
/// lease-aware fenced mutex per lock) for linearizability: two reports,
/// `linearizability-storage` and `linearizability-lock`, each with its own
/// `limits`.
///
/// From paired operations the lease an `info` acquire asked for is not known;
/// such an acquire is given a lease of zero, so it never keeps anyone from the
/// lock (the lenient choice). [`check_linearizability`] with
/// [`ModelKind::LeaseholdLock`] reads it from the events' `ttl_ms`.
pub fn check_leasehold_linearizability(ops: &[Op], limits: Limits) -> Vec<CheckReport> {
    let start = Instant::now();
    let storage = run(
        "linearizability-storage",
        ModelKind::LeaseholdStorage,
        &Register::new(),
        convert::leasehold_storage(ops),
        limits,
        start,
    );
    let start = Instant::now();
    let conv = convert::leasehold_lock(ops, &|_| None);
    let m = FencedMutex::with_clients(conv.clients.clone());
    let lock = run(
        "linearizability-lock",
        ModelKind::LeaseholdLock,
        &m,
        conv,
        limits,
        start,
    );
    vec![storage, lock]
}

/// How many operations of a counterexample's prefix the anomaly cites.
const PREFIX_CITED: usize = 3;

fn run<M>(
    name: &str,
    kind: ModelKind,
    model: &M,
    conv: Converted<M::Input, M::Output>,
    limits: Limits,
    start: Instant,
) -> CheckReport
where
    M: Model + Sync,
    M::Input: Sync,
    M::Output: Sync,
{
    let unknown_ops: usize = conv
        .partitions
        .iter()
        .flat_map(|p| &p.ops)
        .filter(|op| op.output.is_none())
        .count();
    let analyses = check_partitions(model, &conv.partitions, limits);
    let elapsed_ms = start.elapsed().as_secs_f64() * 1e3;
    // A partition whose operations all may never have happened is linearizable
    // by leaving them all out: nothing was judged there.
    let judged: u64 = conv
        .partitions
        .iter()
        .zip(&analyses)
        .filter(|(p, _)| p.ops.iter().any(|op| op.output.is_some()))
        .map(|(_, a)| a.ops as u64)
        .sum();
    // Operations left out because they could not be read may have happened:
    // the search proves nothing either way then.
    let trusted = conv.unreadable.is_empty();
    let validity = if trusted {
        unless_vacuous(combine_analyses(&analyses), judged)
    } else {
        Validity::Unknown
    };
    let anomalies: Vec<Anomaly> = analyses
        .iter()
        .filter_map(|a| match &a.result {
            Linearizability::NotLinearizable(cex) if trusted => {
                let mut ops: Vec<u64> = cex.linearized
                    [cex.linearized.len().saturating_sub(PREFIX_CITED)..]
                    .iter()
                    .chain(&cex.stuck)
                    .copied()
                    .collect();
                ops.sort_unstable();
                ops.dedup();
                Some(Anomaly::NonLinearizable {
                    model: kind.name().to_owned(),
                    partition: cex.partition.clone(),
                    linearized: cex.linearized.clone(),
                    state: cex.state.clone(),
                    stuck: cex.stuck.clone(),
                    stuck_described: cex.stuck_described.clone(),
                    ops,
                })
            }
            _ => None,
        })
        .collect();
    let keys_where = |want: Validity| -> Vec<Value> {
        analyses
            .iter()
            .filter(|a| a.result.validity() == want)
            .map(|a| Value::String(a.partition.clone()))
            .collect()
    };
    let searched: usize = analyses.iter().map(|a| a.ops).sum();
    let states: usize = analyses.iter().map(|a| a.states).sum();
    let mut stats = Map::new();
    stats.insert("model".into(), json!(kind.name()));
    stats.insert("partitions".into(), json!(analyses.len()));
    stats.insert("ops".into(), json!(searched));
    stats.insert("unknown_ops".into(), json!(unknown_ops));
    stats.insert("failed_ops".into(), json!(conv.failed));
    stats.insert("ignored_ops".into(), json!(conv.ignored));
    stats.insert("unreadable_ops".into(), json!(conv.unreadable.len()));
    stats.insert("states".into(), json!(states));
    stats.insert("elapsed_ms".into(), json!((elapsed_ms * 1e3).round() / 1e3));
    stats.insert(
        "invalid_partitions".into(),
        Value::Array(keys_where(Validity::Invalid)),
    );
    stats.insert(
        "unknown_partitions".into(),
        Value::Array(keys_where(Validity::Unknown)),
    );
    CheckReport {
        name: name.to_owned(),
        validity,
        summary: summary(
            kind,
            &analyses,
            judged,
            unknown_ops,
            &conv.unreadable,
            states,
            elapsed_ms,
        ),
        judged: Judged::new(judged, "ops"),
        anomalies,
        stats,
    }
}

fn summary(
    kind: ModelKind,
    analyses: &[Analysis],
    judged: u64,
    unknown_ops: usize,
    unreadable: &[u64],
    states: usize,
    elapsed_ms: f64,
) -> String {
    let (one, many) = kind.partition_noun();
    let model = kind.name();
    let ops: usize = analyses.iter().map(|a| a.ops).sum();
    let mut s = if analyses.is_empty() {
        judged_nothing(format!("no operation to check under the {model} model"))
    } else if judged == 0 {
        judged_nothing(format!(
            "no operation under the {model} model is known to have happened ({}, {} of unknown outcome)",
            plural(analyses.len() as u64, one, many),
            plural(unknown_ops as u64, "operation", "operations"),
        ))
    } else {
        let invalid: Vec<&str> = partitions_where(analyses, Validity::Invalid);
        let unknown: Vec<&str> = partitions_where(analyses, Validity::Unknown);
        let size = format!(
            "{}, {}, {} visited in {elapsed_ms:.1} ms",
            plural(analyses.len() as u64, one, many),
            plural(ops as u64, "operation", "operations"),
            plural(states as u64, "search state", "search states"),
        );
        if !invalid.is_empty() {
            format!(
                "not linearizable under the {model} model: {} ({} of {size})",
                named(&invalid, one, many),
                invalid.len()
            )
        } else if !unknown.is_empty() {
            let why: Vec<String> = analyses
                .iter()
                .filter_map(|a| match a.result {
                    Linearizability::Unknown(hit) => Some(hit.to_string()),
                    _ => None,
                })
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            format!(
                "unknown under the {model} model: {} for {} ({} of {size})",
                why.join(", "),
                named(&unknown, one, many),
                unknown.len()
            )
        } else {
            format!("linearizable under the {model} model ({size})")
        }
    };
    if !unreadable.is_empty() {
        s += &format!(
            "; but {} that may have happened could not be read (first: #{}), so the verdict is unknown",
            plural(unreadable.len() as u64, "operation", "operations"),
            unreadable[0]
        );
    }
    s
}

fn partitions_where(analyses: &[Analysis], want: Validity) -> Vec<&str> {
    analyses
        .iter()
        .filter(|a| a.result.validity() == want)
        .map(|a| a.partition.as_str())
        .collect()
}

/// `key "a"`, `keys "a", "b"`, `3 keys ("a", "b", …)`.
fn named(keys: &[&str], one: &str, many: &str) -> String {
    const SHOWN: usize = 3;
    let shown: Vec<String> = keys.iter().take(SHOWN).map(|k| format!("{k:?}")).collect();
    match keys.len() {
        1 => format!("{one} {}", shown[0]),
        n if n <= SHOWN => format!("{many} {}", shown.join(", ")),
        n => format!("{n} {many} ({}, …)", shown.join(", ")),
    }
}
