//! Verdicts and the anomalies that justify them.

use serde::{Deserialize, Serialize};

/// The verdict of one check or of a whole run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Validity {
    Valid,
    Unknown,
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

    pub fn as_str(self) -> &'static str {
        match self {
            Validity::Valid => "valid",
            Validity::Unknown => "unknown",
            Validity::Invalid => "invalid",
        }
    }
}

/// Whether the evidence proves a violation, or only allows one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Certainty {
    Certain,
    Possible,
}

/// One violation, with the history indexes (`ops`) and ledger positions (`ledger`,
/// 0-based lines of `ledger.jsonl`) that prove it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Anomaly {
    /// Storage accepted a write whose holder had lost the lease.
    StaleWrite {
        certainty: Certainty,
        /// The node that wrote.
        writer: String,
        key: String,
        token: u64,
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
        superseded_holder: Option<String>,
        /// History indexes: the acquire or renew of the stale token that set its
        /// deadline, the write (when the history has it), and the later grant
        /// (when there is one).
        ops: Vec<u64>,
        ledger: Vec<usize>,
    },
    /// Storage accepted `token` for `key` after it had accepted `after_token`,
    /// which is larger.
    FencingOrder {
        key: String,
        token: u64,
        after_token: u64,
        ops: Vec<u64>,
        ledger: Vec<usize>,
    },
    /// A grant that completed before another was invoked carries a token that
    /// is not smaller.
    NonMonotonicToken {
        earlier_token: u64,
        later_token: u64,
        ops: Vec<u64>,
    },
    /// The same token was granted by two successful acquires.
    DuplicateToken { token: u64, ops: Vec<u64> },
}

impl Anomaly {
    pub fn kind(&self) -> &'static str {
        match self {
            Anomaly::StaleWrite { .. } => "stale-write",
            Anomaly::FencingOrder { .. } => "fencing-order",
            Anomaly::NonMonotonicToken { .. } => "non-monotonic-token",
            Anomaly::DuplicateToken { .. } => "duplicate-token",
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
        }
    }
}

/// The outcome of one check.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckReport {
    /// `stale-write`, `fencing-order`, `token-order`, …
    pub name: String,
    pub validity: Validity,
    /// One line for the summary.
    pub summary: String,
    pub anomalies: Vec<Anomaly>,
    /// Counts the check gathered (e.g. `stale_rejected`), for reports.
    #[serde(default)]
    pub stats: serde_json::Map<String, serde_json::Value>,
}

/// `"1 stale write"`, `"3 stale writes"`: counts in summaries read as English.
pub(crate) fn plural(n: impl Into<u64>, one: &str, many: &str) -> String {
    let n = n.into();
    format!("{n} {}", if n == 1 { one } else { many })
}
