//! Verdicts and the anomalies that justify them.

use serde::{Deserialize, Serialize};

/// The verdict of one check or of a whole run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Validity {
    /// Judged something and found no violation.
    Valid,
    /// Neither proved nor refuted: a violation is only possible, a search hit
    /// a limit, or nothing was judged.
    Unknown,
    /// A violation is certain.
    Invalid,
}

impl Validity {
    /// Invalid beats unknown beats valid.
    pub fn combine(self, other: Validity) -> Validity {
        use Validity::*;
        match (self, other) {
            (Invalid, _) | (_, Invalid) => Invalid,
            (Unknown, _) | (_, Unknown) => Unknown,
            _ => Valid,
        }
    }

    /// Exit code of a run with this verdict: 0 valid, 1 invalid, 2 unknown.
    pub fn exit_code(self) -> u8 {
        match self {
            Validity::Valid => 0,
            Validity::Invalid => 1,
            Validity::Unknown => 2,
        }
    }

    /// The name as in results.json: `valid`, `unknown` or `invalid`.
    pub fn as_str(self) -> &'static str {
        match self {
            Validity::Valid => "valid",
            Validity::Unknown => "unknown",
            Validity::Invalid => "invalid",
        }
    }
}

/// Whether the evidence proves a violation, or only allows one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Certainty {
    /// Proven whatever the history leaves unknown (when exactly an operation
    /// took effect, what a pending renew did).
    Certain,
    /// Consistent with the evidence but not proven: it depends on something the
    /// history does not tell.
    Possible,
}

/// One violation, with the history indexes (`ops`) and ledger positions (`ledger`,
/// 0-based lines of `ledger.jsonl`) that prove it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Anomaly {
    /// Storage accepted a write whose holder had lost the lease.
    StaleWrite {
        /// `Certain` when the holder had lost the lease at every moment storage
        /// may have accepted the write (or a later token was granted before
        /// any); `Possible` when only at some, or a pending renew may have
        /// extended the lease.
        certainty: Certainty,
        /// The node that wrote.
        writer: String,
        /// The key written.
        key: String,
        /// The stale token the write carried.
        token: u64,
        /// The data written.
        data: String,
        /// When storage accepted it (ledger time, or the write's invocation when
        /// there is no ledger entry), ns since the run started.
        accepted_at: u64,
        /// The holder's lease deadline: send time of its last successful
        /// acquire/renew of this token plus the lease.
        lease_deadline: u64,
        /// How long after the deadline storage accepted it, in ns (0 when the
        /// write is stale only because a later token had been granted).
        late_by_ns: u64,
        /// The later token whose grant had completed before storage accepted, if
        /// any, and who held it.
        superseded_by: Option<u64>,
        /// The node granted `superseded_by`; `None` when there is no later
        /// grant or the history names no node.
        superseded_holder: Option<String>,
        /// History indexes: the acquire or renew of the stale token that set its
        /// deadline, the write (when the history has it), and the later grant
        /// (when there is one).
        ops: Vec<u64>,
        /// Ledger position of the accepted write; empty without a ledger.
        ledger: Vec<usize>,
    },
    /// Storage accepted `token` for `key` after it had accepted `after_token`,
    /// which is larger.
    FencingOrder {
        /// The key written (the order is kept per key and storage node).
        key: String,
        /// The smaller token, accepted later.
        token: u64,
        /// The larger token, accepted earlier: the highest accepted for the key
        /// so far.
        after_token: u64,
        /// History indexes of the two writes, those the history has: the write
        /// with `after_token`, then the one with `token`.
        ops: Vec<u64>,
        /// Ledger positions: the first acceptance of `after_token`, then that
        /// of `token`.
        ledger: Vec<usize>,
    },
    /// A grant that completed before another was invoked carries a token that
    /// is not smaller.
    NonMonotonicToken {
        /// The token of the grant that completed first: the largest of those
        /// completed before the later grant was invoked.
        earlier_token: u64,
        /// The smaller token of the grant invoked afterwards.
        later_token: u64,
        /// History indexes of the two acquires, the earlier first.
        ops: Vec<u64>,
    },
    /// The same token of one lock was granted by two or more successful
    /// acquires.
    DuplicateToken {
        /// The token granted more than once.
        token: u64,
        /// History indexes of every ok acquire that got it, in invocation order.
        ops: Vec<u64>,
    },
    /// Two different tokens of one lock were both certainly held at once: the
    /// lock service vouched for overlapping leases (see `mutual_exclusion`).
    MutualExclusion {
        /// The lock both leases were of.
        lock: String,
        /// The lease that started first, and its holder.
        token: u64,
        /// The node of `token`'s first ok acquire (`process N` when unnamed).
        holder: String,
        /// The lease that started while the first was still certainly held.
        other_token: u64,
        /// The node of `other_token`'s first ok acquire (`process N` when
        /// unnamed).
        other_holder: String,
        /// When both were certainly held, ns since the run started.
        overlap_from: u64,
        /// The end of that overlap (exclusive), ns since the run started.
        overlap_to: u64,
        /// History indexes of the grants and renewals that vouched for both.
        ops: Vec<u64>,
    },
    /// Acknowledged writes to `key` that the final read does not reflect (see
    /// `lost_write`).
    LostWrite {
        /// The key whose final read lost writes.
        key: String,
        /// The latest lost write: the final read should show it or a later one.
        writer: String,
        /// The token of the latest lost write.
        token: u64,
        /// The data of the latest lost write.
        data: String,
        /// How many acknowledged writes to the key are lost, this one included.
        lost: u64,
        /// What the final read returned; `None` when the key read empty.
        read_token: Option<u64>,
        /// The data of the value read; `None` when the key read empty.
        read_data: Option<String>,
        /// History indexes: the final read and the lost writes the history has.
        ops: Vec<u64>,
        /// Ledger positions of the lost writes, then of the value read (if any).
        ledger: Vec<usize>,
    },
    /// A partition of the history (a key, a lock) has no linearization under
    /// the model (see `linearizability`).
    NonLinearizable {
        /// `register`, `cas-register`, `mutex`, `fenced-mutex`,
        /// `leasehold-storage`, `leasehold-lock`.
        model: String,
        /// The key or lock (`""` when the history was not split).
        partition: String,
        /// The longest linearizable prefix the search found: history indexes of
        /// invocations, in linearization order.
        linearized: Vec<u64>,
        /// The model's state after that prefix.
        state: String,
        /// History indexes of the operations that could come next by real time
        /// but that the model refuses in that state.
        stuck: Vec<u64>,
        /// One line per `stuck` operation, as the model describes it.
        stuck_described: Vec<String>,
        /// History indexes to show: the last operations of the prefix and the
        /// stuck ones, ascending.
        ops: Vec<u64>,
    },
}

impl Anomaly {
    /// The anomaly's name, `kind` in results.json: `stale-write`,
    /// `fencing-order`, `non-monotonic-token`, `duplicate-token`,
    /// `mutual-exclusion`, `lost-write` or `non-linearizable`.
    pub fn kind(&self) -> &'static str {
        match self {
            Anomaly::StaleWrite { .. } => "stale-write",
            Anomaly::FencingOrder { .. } => "fencing-order",
            Anomaly::NonMonotonicToken { .. } => "non-monotonic-token",
            Anomaly::DuplicateToken { .. } => "duplicate-token",
            Anomaly::MutualExclusion { .. } => "mutual-exclusion",
            Anomaly::LostWrite { .. } => "lost-write",
            Anomaly::NonLinearizable { .. } => "non-linearizable",
        }
    }

    /// Whether this anomaly alone makes its check invalid (a possible stale write
    /// only makes it unknown).
    pub fn is_certain(&self) -> bool {
        !matches!(
            self,
            Anomaly::StaleWrite {
                certainty: Certainty::Possible,
                ..
            }
        )
    }

    /// One sentence a person can read, naming who, which token and how late.
    pub fn explain(&self) -> String {
        let ms = |ns: u64| ns as f64 / 1e6;
        match self {
            Anomaly::StaleWrite {
                certainty,
                writer,
                key,
                token,
                data,
                accepted_at,
                late_by_ns,
                superseded_by,
                superseded_holder,
                ..
            } => {
                let how = match certainty {
                    Certainty::Certain => "accepted",
                    Certainty::Possible => "may have accepted",
                };
                let mut s = format!(
                    "storage {how} {writer}'s write {data:?} to {key:?} with token {token} at {:.1} ms",
                    ms(*accepted_at)
                );
                if *late_by_ns > 0 {
                    s += &format!(", {:.1} ms after its lease expired", ms(*late_by_ns));
                }
                if let Some(later) = superseded_by {
                    let who = superseded_holder.as_deref().unwrap_or("another client");
                    s += &format!(", when token {later} had already been granted to {who}");
                }
                s
            }
            Anomaly::FencingOrder {
                key,
                token,
                after_token,
                ..
            } => format!(
                "storage accepted token {token} for {key:?} after it had accepted token {after_token}"
            ),
            Anomaly::NonMonotonicToken {
                earlier_token,
                later_token,
                ..
            } => format!(
                "token {later_token} was granted after a grant of token {earlier_token} had completed: tokens went backwards"
            ),
            Anomaly::DuplicateToken { token, ops } => {
                format!("token {token} was granted {} times", ops.len())
            }
            Anomaly::MutualExclusion {
                lock,
                token,
                holder,
                other_token,
                other_holder,
                overlap_from,
                overlap_to,
                ..
            } => format!(
                "the lock service granted {lock:?} to {other_holder} (token {other_token}) at {:.1} ms while {holder} still held it with token {token} until {:.1} ms: both held it for {:.1} ms",
                ms(*overlap_from),
                ms(*overlap_to),
                ms(overlap_to.saturating_sub(*overlap_from))
            ),
            Anomaly::LostWrite {
                key,
                writer,
                token,
                data,
                lost,
                read_token,
                read_data,
                ..
            } => {
                let read = match (read_token, read_data) {
                    (Some(t), Some(d)) => format!("{d:?} (token {t})"),
                    (Some(t), None) => format!("token {t}"),
                    _ => "nothing".to_owned(),
                };
                let mut s = format!(
                    "{writer}'s acknowledged write {data:?} to {key:?} with token {token} is missing from the final read, which returned {read}"
                );
                if *lost > 1 {
                    s += &format!(
                        " ({} earlier acknowledged {} lost too)",
                        lost - 1,
                        if *lost == 2 { "write is" } else { "writes are" }
                    );
                }
                s
            }
            Anomaly::NonLinearizable {
                model,
                partition,
                linearized,
                state,
                stuck,
                stuck_described,
                ..
            } => {
                let what = if partition.is_empty() {
                    "the history".to_owned()
                } else {
                    format!("the history of {partition:?}")
                };
                let next: Vec<String> = stuck
                    .iter()
                    .zip(stuck_described)
                    .map(|(i, d)| format!("{d} (#{i})"))
                    .collect();
                format!(
                    "{what} is not linearizable under the {model} model: after {} with the state {state}, none of the operations that may come next fits: {}",
                    plural(linearized.len() as u64, "operation", "operations"),
                    next.join("; ")
                )
            }
        }
    }
}

/// How much a check judged: `count` of `unit`, e.g. 26 `accepted writes`.
///
/// A check that judged nothing (`count` 0) is unknown, never valid: a run in
/// which nothing happened proves nothing. The default (`count` 0, `unit` empty)
/// is what a report written before this record existed reads as: not recorded.
#[derive(
    Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema,
)]
pub struct Judged {
    /// How many `unit` the check judged; 0: it judged nothing.
    pub count: u64,
    /// What was counted, a plural noun: `accepted writes`, `grants`, `leases`,
    /// `acknowledged writes`, `ops`.
    pub unit: String,
}

impl Judged {
    /// `count` of `unit` (a plural noun).
    pub fn new(count: u64, unit: &str) -> Self {
        Judged {
            count,
            unit: unit.to_owned(),
        }
    }

    /// Whether the check recorded what it judged (reports from before this
    /// record did not).
    pub fn is_recorded(&self) -> bool {
        !self.unit.is_empty()
    }
}

/// The outcome of one check.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CheckReport {
    /// `stale-write`, `fencing-order`, `token-order`, …
    pub name: String,
    /// The check's verdict; never valid when it judged nothing.
    pub validity: Validity,
    /// One line for the summary.
    pub summary: String,
    /// How much the check judged; see [`CheckReport::judged_nothing`].
    #[serde(default)]
    pub judged: Judged,
    /// Every violation found, certain or possible; none when valid.
    pub anomalies: Vec<Anomaly>,
    /// Counts the check gathered (e.g. `stale_rejected`), for reports.
    #[serde(default)]
    pub stats: serde_json::Map<String, serde_json::Value>,
}

impl CheckReport {
    /// Whether the check recorded that it judged nothing, which makes it
    /// unknown whatever else it says. False for a report that recorded nothing
    /// (read from a results file older than [`Judged`]).
    pub fn judged_nothing(&self) -> bool {
        self.judged.is_recorded() && self.judged.count == 0
    }
}

/// What a check that judged `judged` things and found `found` says: a check
/// that judged nothing is unknown rather than valid.
pub(crate) fn unless_vacuous(found: Validity, judged: u64) -> Validity {
    if judged == 0 && found == Validity::Valid {
        Validity::Unknown
    } else {
        found
    }
}

/// The summary of a check that judged nothing: `judged nothing: {why}`.
pub(crate) fn judged_nothing(why: impl std::fmt::Display) -> String {
    format!("judged nothing: {why}")
}

/// `"1 stale write"`, `"3 stale writes"`: counts in summaries read as English.
pub(crate) fn plural(n: impl Into<u64>, one: &str, many: &str) -> String {
    let n = n.into();
    format!("{n} {}", if n == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn judging_nothing_is_unknown_never_valid() {
        use Validity::*;
        assert_eq!(unless_vacuous(Valid, 0), Unknown);
        assert_eq!(unless_vacuous(Valid, 1), Valid);
        // Another reason to be unknown, or a violation, stays as it is.
        assert_eq!(unless_vacuous(Unknown, 0), Unknown);
        assert_eq!(unless_vacuous(Invalid, 0), Invalid);
        assert_eq!(unless_vacuous(Invalid, 3), Invalid);
    }

    #[test]
    fn a_report_without_judged_reads_as_not_recorded() {
        let report: CheckReport = serde_json::from_value(serde_json::json!({
            "name": "token-order",
            "validity": "valid",
            "summary": "2 grants of 1 lock: tokens unique and increasing",
            "anomalies": [],
        }))
        .unwrap();
        assert_eq!(report.judged, Judged::default());
        assert!(!report.judged.is_recorded());
        assert!(!report.judged_nothing());

        let recorded = CheckReport {
            judged: Judged::new(0, "grants"),
            ..report
        };
        assert!(recorded.judged_nothing());
        let v = serde_json::to_value(&recorded).unwrap();
        assert_eq!(
            v["judged"],
            serde_json::json!({"count": 0, "unit": "grants"})
        );
        assert_eq!(serde_json::from_value::<CheckReport>(v).unwrap(), recorded);
    }
}
