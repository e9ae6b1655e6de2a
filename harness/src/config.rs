//! The test config: the one place leasehold reads YAML.
//!
//! Every field is checked while it is parsed (non-zero counts, durations, known
//! targets), so an error carries the file, line, column and the field's path.

use std::fmt;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::Duration;

use leasehold_nemesis::{FaultKind, FaultSpec, Target, TimelineEntry};
use serde::{Deserialize, Serialize};

/// A bad config: where, which field, and what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}{}: {field}: {message}", path.display(), at(*line, *column))]
    Invalid {
        path: PathBuf,
        line: Option<usize>,
        column: Option<usize>,
        /// Dotted path of the field, e.g. `workload.workers`.
        field: String,
        message: String,
    },
}

fn at(line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!(":{l}:{c}"),
        (Some(l), None) => format!(":{l}"),
        _ => String::new(),
    }
}

/// A whole test.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Name of the test; runs are stored under `store/<test>/`.
    pub test: String,
    /// Seed of everything random in the run; drawn at random when absent and
    /// written into the stored config.yaml.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// How long the workload and the nemesis run.
    #[serde(with = "humantime_serde")]
    pub duration: Duration,
    #[serde(default)]
    pub runtime: RuntimeKind,
    #[serde(default)]
    pub network: NetworkConfig,
    #[serde(default)]
    pub lock: LockConfig,
    #[serde(default)]
    pub storage: StorageConfig,
    pub workload: WorkloadConfig,
    #[serde(default)]
    pub nemesis: NemesisConfig,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuntimeKind {
    /// Nodes are child processes (in network namespaces when run as root).
    #[default]
    Local,
    /// Nodes are containers on a bridge network of their own.
    Docker,
}

impl fmt::Display for RuntimeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RuntimeKind::Local => "local",
            RuntimeKind::Docker => "docker",
        })
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkConfig {
    /// `/24` for the run's nodes when they get network namespaces, e.g.
    /// `10.77.3.0/24`; absent: the first free `10.77.N.0/24`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet: Option<Subnet>,
}

/// An IPv4 /24, written `a.b.c.0/24`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Subnet(pub [u8; 3]);

impl Subnet {
    pub fn host(&self, last: u8) -> std::net::Ipv4Addr {
        let [a, b, c] = self.0;
        std::net::Ipv4Addr::new(a, b, c, last)
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c] = self.0;
        write!(f, "{a}.{b}.{c}.0/24")
    }
}

impl std::str::FromStr for Subnet {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?} is not an IPv4 /24 like 10.77.0.0/24");
        let (ip, len) = s.split_once('/').ok_or_else(bad)?;
        let ip: std::net::Ipv4Addr = ip.parse().map_err(|_| bad())?;
        if len != "24" || ip.octets()[3] != 0 {
            return Err(bad());
        }
        let [a, b, c, _] = ip.octets();
        Ok(Subnet([a, b, c]))
    }
}

impl Serialize for Subnet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Subnet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// The lock service's nodes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockConfig {
    #[serde(default)]
    pub service: LockService,
    #[serde(default = "one")]
    pub nodes: NonZeroU32,
    /// Docker runtime: start the lock nodes from this local image instead of
    /// leasehold's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Docker runtime: pack this host binary (with its shared libraries) into
    /// an image and start the lock nodes from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binary: Option<PathBuf>,
}

impl Default for LockConfig {
    fn default() -> Self {
        LockConfig {
            service: LockService::default(),
            nodes: one(),
            image: None,
            binary: None,
        }
    }
}

fn one() -> NonZeroU32 {
    NonZeroU32::MIN
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LockService {
    /// leasehold's own lock service (`leasehold node lock`).
    #[default]
    Reference,
}

/// The storage nodes the lock guards.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    #[serde(default = "one")]
    pub nodes: NonZeroU32,
    /// Reject writes whose token is below the highest seen for the key.
    #[serde(default)]
    pub fencing: bool,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            nodes: one(),
            fencing: false,
        }
    }
}

/// What the workers do.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadConfig {
    pub workers: NonZeroU32,
    /// Name of the lock they contend for.
    #[serde(default = "default_lock")]
    pub lock: String,
    /// How many keys they write (`k0`, `k1`, …).
    #[serde(default = "one")]
    pub keys: NonZeroU32,
    /// Lease they ask for.
    #[serde(with = "humantime_serde")]
    pub lease: Duration,
    /// How long a holder holds before it writes.
    #[serde(with = "humantime_serde")]
    pub think: Duration,
    /// Request timeout; an operation that times out is recorded `info`.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Upper bound of the random wait after a busy lock or a release.
    #[serde(default = "default_backoff", with = "humantime_serde")]
    pub backoff: Duration,
    #[serde(default)]
    pub client: LockService,
    /// What a worker makes of a renew that timed out: `stop` using the lease
    /// (careful), or `continue` as if it had been renewed (the bug a
    /// partitioned holder turns into stale writes).
    #[serde(default)]
    pub on_renew_timeout: OnRenewTimeout,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnRenewTimeout {
    #[default]
    Stop,
    Continue,
}

impl OnRenewTimeout {
    pub fn as_str(self) -> &'static str {
        match self {
            OnRenewTimeout::Stop => "stop",
            OnRenewTimeout::Continue => "continue",
        }
    }
}

fn default_lock() -> String {
    "L".to_owned()
}
fn default_timeout() -> Duration {
    Duration::from_millis(500)
}
fn default_backoff() -> Duration {
    Duration::from_millis(50)
}

/// Faults to inject.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NemesisConfig {
    /// Fault generators: a kind of fault, a target, how long, how often.
    #[serde(default)]
    pub faults: Vec<FaultSpec>,
    /// A scripted timeline: `at: 5s, pause: w1, for: 3s`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub timeline: Vec<TimelineEntry>,
}

impl WorkloadConfig {
    pub fn key_names(&self) -> Vec<String> {
        (0..self.keys.get()).map(|i| format!("k{i}")).collect()
    }
}

impl Config {
    /// Reads and checks a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::parse(&text, path)
    }

    /// Parses config text; `path` only names the source in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let de = serde_yaml::Deserializer::from_str(text);
        let config: Config = serde_path_to_error::deserialize(de).map_err(|e| {
            let field = e.path().to_string();
            let inner = e.into_inner();
            let loc = inner.location();
            ConfigError::Invalid {
                path: path.to_owned(),
                line: loc.as_ref().map(|l| l.line()),
                column: loc.as_ref().map(|l| l.column()),
                field: if field == "." {
                    "(top level)".into()
                } else {
                    field
                },
                message: strip_location(&inner.to_string()),
            }
        })?;
        config.validate(text, path)?;
        Ok(config)
    }

    /// Checks what spans several fields, pointing at the line that names the
    /// offending value.
    fn validate(&self, text: &str, path: &Path) -> Result<(), ConfigError> {
        let invalid = |field: String, needle: &str, message: String| {
            let line = text.lines().position(|l| l.contains(needle)).map(|i| i + 1);
            ConfigError::Invalid {
                path: path.to_owned(),
                line,
                column: None,
                field,
                message,
            }
        };
        if self.duration.is_zero() {
            return Err(invalid(
                "duration".into(),
                "duration",
                "must be longer than 0s".into(),
            ));
        }
        if self.workload.lease.is_zero() {
            return Err(invalid(
                "workload.lease".into(),
                "lease",
                "must be longer than 0s".into(),
            ));
        }
        if self.lock.image.is_some() && self.lock.binary.is_some() {
            return Err(invalid(
                "lock.binary".into(),
                "binary:",
                "give the lock nodes an image or a binary, not both".into(),
            ));
        }
        if self.runtime != RuntimeKind::Docker {
            for (field, set) in [
                ("image", self.lock.image.is_some()),
                ("binary", self.lock.binary.is_some()),
            ] {
                if set {
                    return Err(invalid(
                        format!("lock.{field}"),
                        &format!("{field}:"),
                        "only the docker runtime starts nodes from an image or a packed binary"
                            .into(),
                    ));
                }
            }
        }
        let names = self.node_names();
        let mut targets: Vec<(String, &Target)> = Vec::new();
        for (i, f) in self.nemesis.faults.iter().enumerate() {
            targets.push((format!("nemesis.faults[{i}].target"), &f.target));
            if let Some(from) = &f.from {
                targets.push((format!("nemesis.faults[{i}].from"), from));
            }
        }
        for (i, e) in self.nemesis.timeline.iter().enumerate() {
            targets.push((
                format!("nemesis.timeline[{i}].{}", e.fault.as_str()),
                &e.target,
            ));
            if let Some(from) = &e.from {
                targets.push((format!("nemesis.timeline[{i}].from"), from));
            }
        }
        for (field, target) in targets {
            if let Target::Node(n) = target
                && !names.contains(n)
            {
                return Err(invalid(
                    field,
                    &format!(": {n}"),
                    format!("no node is named {n:?}; the nodes are {}", names.join(", ")),
                ));
            }
        }
        Ok(())
    }

    /// Names of the run's nodes: `lock1…`, `store1…`, `w1…`.
    pub fn node_names(&self) -> Vec<String> {
        let mut v = Vec::new();
        v.extend((1..=self.lock.nodes.get()).map(|i| format!("lock{i}")));
        v.extend((1..=self.storage.nodes.get()).map(|i| format!("store{i}")));
        v.extend((1..=self.workload.workers.get()).map(|i| format!("w{i}")));
        v
    }

    /// Whether any fault of the config is a partition.
    pub fn has_partitions(&self) -> bool {
        self.nemesis
            .faults
            .iter()
            .any(|f| f.fault == FaultKind::Partition)
            || self
                .nemesis
                .timeline
                .iter()
                .any(|e| e.fault == FaultKind::Partition)
    }

    /// The config as run, seed included, for the run folder.
    pub fn to_yaml(&self) -> String {
        serde_yaml::to_string(self).expect("a config serializes")
    }
}

/// serde_yaml prefixes the field's path and appends " at line L column C"; we
/// print both up front, once.
fn strip_location(msg: &str) -> String {
    let msg = match msg.find(" at line ") {
        Some(i) => &msg[..i],
        None => msg,
    };
    let is_path = |p: &str| {
        !p.is_empty()
            && p.chars()
                .all(|c| c.is_alphanumeric() || "._[]-".contains(c))
    };
    match msg.split_once(": ") {
        Some((path, rest)) if is_path(path) => rest.to_owned(),
        _ => msg.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "test: t\nduration: 5s\nworkload:\n  workers: 3\n  lease: 1s\n  think: 200ms\nnemesis:\n  faults:\n    - fault: pause\n      target: holder\n      for: 2s\n      every: 3s\n";

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("t.yaml"))
    }

    #[test]
    fn a_good_config_round_trips() {
        let c = parse(GOOD).unwrap();
        assert_eq!(c.workload.workers.get(), 3);
        assert_eq!(c.node_names(), ["lock1", "store1", "w1", "w2", "w3"]);
        let again = parse(&c.to_yaml()).unwrap();
        assert_eq!(again, c);
    }

    #[test]
    fn errors_name_file_line_column_and_field() {
        let e = parse(&GOOD.replace("workers: 3", "workers: three")).unwrap_err();
        let s = e.to_string();
        assert!(s.starts_with("t.yaml:4:"), "{s}");
        assert!(s.contains("workload.workers"), "{s}");

        let e = parse(&GOOD.replace("think: 200ms", "think: 200ms\n  thinks: 1s")).unwrap_err();
        let s = e.to_string();
        assert!(s.contains("t.yaml:7:"), "{s}");
        assert!(s.contains("unknown field `thinks`"), "{s}");

        let e = parse(&GOOD.replace("workers: 3", "workers: 0")).unwrap_err();
        assert!(e.to_string().contains("workload.workers"), "{e}");

        let e = parse(&GOOD.replace("target: holder", "target: w9")).unwrap_err();
        let s = e.to_string();
        assert!(s.starts_with("t.yaml:10:"), "{s}");
        assert!(s.contains("nemesis.faults[0].target"), "{s}");
    }
}
