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
use super::multi_register::MultiRegister;
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
    /// `multi-register`: Knossos's registers read and written by Jepsen `txn`
    /// operations (`[[:r :x nil] [:w :y 2]]`), split into the groups of keys
    /// no transaction spans.
    MultiRegister,
}

impl ModelKind {
    /// Every model kind, in the order of this enum.
    pub const ALL: [ModelKind; 8] = [
        ModelKind::Register,
        ModelKind::CasRegister,
        ModelKind::CasRegisterStrict,
        ModelKind::Mutex,
        ModelKind::FencedMutex,
        ModelKind::LeaseholdStorage,
        ModelKind::LeaseholdLock,
        ModelKind::MultiRegister,
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
            ModelKind::MultiRegister => "multi-register",
        }
    }

    /// One line saying what the model checks, for `--help`.
    pub fn description(self) -> &'static str {
        match self {
            ModelKind::Register => "read/write registers, per key (Jepsen :read, :write)",
            ModelKind::CasRegister => {
                "compare-and-set registers, per key; a failed cas is left out (Knossos)"
            }
            ModelKind::CasRegisterStrict => {
                "compare-and-set registers; a failed cas read a value other than the expected one (Porcupine, etcd)"
            }
            ModelKind::Mutex => "Knossos's mutex without owners, per lock (:acquire, :release)",
            ModelKind::FencedMutex => {
                "an owner-aware mutex with fencing tokens and leases, per lock"
            }
            ModelKind::LeaseholdStorage => {
                "leasehold's fenced storage: one (token, data) register per key"
            }
            ModelKind::LeaseholdLock => "leasehold's locks: fenced mutexes with leases, per lock",
            ModelKind::MultiRegister => {
                "registers read and written by Jepsen :txn ops, split where no txn spans keys (Knossos)"
            }
        }
    }

    /// The functions (`:f`) the model reads; others are ignored.
    pub fn functions(self) -> &'static [&'static str] {
        match self {
            ModelKind::Register | ModelKind::LeaseholdStorage => &["read", "write"],
            ModelKind::CasRegister | ModelKind::CasRegisterStrict => &["read", "write", "cas"],
            ModelKind::Mutex => &["acquire", "release"],
            ModelKind::FencedMutex | ModelKind::LeaseholdLock => &["acquire", "renew", "release"],
            ModelKind::MultiRegister => &["txn"],
        }
    }

    /// Whether the model starts its registers at a value
    /// ([`ModelOptions::initial_value`]): the Jepsen register models.
    pub fn takes_initial_value(self) -> bool {
        matches!(
            self,
            ModelKind::Register
                | ModelKind::CasRegister
                | ModelKind::CasRegisterStrict
                | ModelKind::MultiRegister
        )
    }

    /// Whether operations of other functions are expected and judged
    /// elsewhere: leasehold's storage and lock split one history in two.
    fn others_judged_elsewhere(self) -> bool {
        matches!(self, ModelKind::LeaseholdStorage | ModelKind::LeaseholdLock)
    }

    /// What one partition is, in summaries.
    fn partition_noun(self) -> (&'static str, &'static str) {
        match self {
            ModelKind::Register
            | ModelKind::CasRegister
            | ModelKind::CasRegisterStrict
            | ModelKind::LeaseholdStorage => ("key", "keys"),
            ModelKind::MultiRegister => ("group of keys", "groups of keys"),
            _ => ("lock", "locks"),
        }
    }
}

impl fmt::Display for ModelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A model name [`ModelKind::from_str`] does not know; the message lists every
/// model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownModel(pub String);

impl fmt::Display for UnknownModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = ModelKind::ALL.iter().map(|k| k.name()).collect();
        let (last, rest) = names.split_last().expect("there are models");
        write!(
            f,
            "unknown model {:?}: expected {} or {last}",
            self.0,
            rest.join(", ")
        )
    }
}

impl std::error::Error for UnknownModel {}

/// What an `ok` read of `nil` (JSON `null`) means in a Jepsen history.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum NilRead {
    /// The register was empty (leasehold's reading, the default): the read
    /// must be linearized where the register held nothing.
    #[default]
    Empty,
    /// The value read is unknown (Knossos's reading): the read constrains
    /// nothing.
    Unknown,
}

impl NilRead {
    /// `empty` or `unknown`.
    pub fn name(self) -> &'static str {
        match self {
            NilRead::Empty => "empty",
            NilRead::Unknown => "unknown",
        }
    }
}

impl FromStr for NilRead {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "empty" => Ok(NilRead::Empty),
            "unknown" => Ok(NilRead::Unknown),
            _ => Err(format!(
                "unknown nil-read reading {s:?}: expected empty or unknown"
            )),
        }
    }
}

/// How the register models read a Jepsen history.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ModelOptions {
    /// The value every register holds before any write (`None`: empty).
    /// Read by the models for which [`ModelKind::takes_initial_value`].
    pub initial_value: Option<Value>,
    /// What an `ok` read of `nil` means (the Jepsen register models).
    pub nil_read: NilRead,
}

/// The share of a history's operations a model may ignore (functions it does
/// not know) and still give a valid verdict: a tenth. Past it, or when it
/// ignores every operation, a valid verdict becomes unknown.
pub const IGNORED_SHARE_PERCENT: usize = 10;

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
///
/// Operations of functions the model does not know are ignored, counted per
/// function in the summary and in the stats (`ignored_ops`,
/// `ignored_functions`). When they are more than [`IGNORED_SHARE_PERCENT`] of
/// the client operations (or all of them), a valid verdict is unknown: most of
/// the history was not judged. (Not for `leasehold-storage` and
/// `leasehold-lock`, which split one history between them.)
///
/// Registers start empty and an `ok` read of `nil` read an empty register; see
/// [`check_linearizability_with`] for Knossos's choices.
pub fn check_linearizability(events: &[Event], model: ModelKind, limits: Limits) -> CheckReport {
    check_linearizability_with(events, model, &ModelOptions::default(), limits)
}

/// [`check_linearizability`] with the registers' initial value and the
/// meaning of a `nil` read chosen by `options`.
pub fn check_linearizability_with(
    events: &[Event],
    model: ModelKind,
    options: &ModelOptions,
    limits: Limits,
) -> CheckReport {
    let start = Instant::now();
    let name = "linearizability";
    let nil_unknown = options.nil_read == NilRead::Unknown;
    let initial = options.initial_value.clone();
    match model {
        ModelKind::Register => {
            let conv = convert::jepsen_registers(events, false, nil_unknown);
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
                keys: conv.keys,
                failed: conv.failed,
                ignored: conv.ignored,
                unreadable: conv.unreadable,
            };
            let m = Register::starting_at(initial);
            run(name, model, &m, conv, limits, start)
        }
        ModelKind::CasRegister => {
            let conv = convert::jepsen_registers(events, true, nil_unknown);
            let m = CasRegister::starting_at(initial);
            run(name, model, &m, conv, limits, start)
        }
        ModelKind::CasRegisterStrict => {
            let conv = convert::jepsen_strict_cas_registers(events, nil_unknown);
            let m = StrictCasRegister::starting_at(initial);
            run(name, model, &m, conv, limits, start)
        }
        ModelKind::MultiRegister => {
            let conv = convert::jepsen_multi_registers(events, nil_unknown);
            let m = MultiRegister::starting_at(conv.keys.clone(), initial);
            run(name, model, &m, conv, limits, start)
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
    let ignored = Ignored::of(kind, &conv);
    let validity = if trusted {
        let v = unless_vacuous(combine_analyses(&analyses), judged);
        if ignored.too_many() && v == Validity::Valid {
            Validity::Unknown
        } else {
            v
        }
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
    stats.insert("ignored_ops".into(), json!(ignored.total));
    stats.insert("ignored_functions".into(), json!(conv.ignored));
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
            &ignored,
            states,
            elapsed_ms,
        ),
        judged: Judged::new(judged, "ops"),
        anomalies,
        stats,
    }
}

/// The operations a model ignored, and whether they are too many for a valid
/// verdict.
struct Ignored {
    kind: ModelKind,
    /// `(function, count)`, most first.
    by_function: Vec<(String, usize)>,
    total: usize,
    /// Client operations the model read (searched, left out or unreadable).
    read: usize,
}

impl Ignored {
    fn of<I, O>(kind: ModelKind, conv: &Converted<I, O>) -> Ignored {
        let mut by_function: Vec<(String, usize)> =
            conv.ignored.iter().map(|(f, &n)| (f.clone(), n)).collect();
        by_function.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let read = conv.partitions.iter().map(|p| p.ops.len()).sum::<usize>()
            + conv.failed
            + conv.unreadable.len();
        Ignored {
            kind,
            total: by_function.iter().map(|(_, n)| n).sum(),
            by_function,
            read,
        }
    }

    /// All of the history, or more than its allowed share.
    fn too_many(&self) -> bool {
        !self.kind.others_judged_elsewhere()
            && self.total > 0
            && (self.read == 0
                || self.total * 100 > IGNORED_SHARE_PERCENT * (self.total + self.read))
    }

    /// `123 :txn ops ignored: the register model reads :read, :write`, and
    /// what that does to the verdict.
    fn describe(&self) -> Option<String> {
        if self.total == 0 || self.kind.others_judged_elsewhere() {
            return None;
        }
        const SHOWN: usize = 4;
        let mut counts: Vec<String> = self
            .by_function
            .iter()
            .take(SHOWN)
            .map(|(f, n)| format!("{n} :{f}"))
            .collect();
        if self.by_function.len() > SHOWN {
            let rest: usize = self.by_function[SHOWN..].iter().map(|(_, n)| n).sum();
            counts.push(format!("{rest} of other functions"));
        }
        let reads: Vec<String> = self
            .kind
            .functions()
            .iter()
            .map(|f| format!(":{f}"))
            .collect();
        let mut s = format!(
            "{} {} ignored: the {} model reads {}",
            counts.join(", "),
            if self.total == 1 { "op" } else { "ops" },
            self.kind.name(),
            reads.join(", ")
        );
        if self.read == 0 {
            s += " (that is the whole history)";
        } else if self.too_many() {
            s += &format!(
                " (more than {IGNORED_SHARE_PERCENT} % of the history, so it cannot be valid: unknown at best)"
            );
        }
        Some(s)
    }
}

#[allow(clippy::too_many_arguments)]
fn summary(
    kind: ModelKind,
    analyses: &[Analysis],
    judged: u64,
    unknown_ops: usize,
    unreadable: &[u64],
    ignored: &Ignored,
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
    if let Some(ignored) = ignored.describe() {
        s += "; ";
        s += &ignored;
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
