use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use rand::RngExt;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::clock::{ClockChange, ClockFields, ClockOffset, Clocks, Rate};
use crate::live::LiveState;
use crate::node::{NodeFacts, Role};
use crate::packet::{Percent, Shape};
use crate::span::Span;
use crate::topology::Topology;

/// The faults leasehold can inject. Each has its healing twin (`pause` is undone
/// by `resume`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FaultKind {
    /// SIGSTOP every process of the node, as a stop-the-world GC pause does;
    /// healed by SIGCONT.
    Pause,
    /// Drop packets between nodes (a grudge, see [`crate::Topology`]); healed
    /// by removing the rules.
    Partition,
    /// SIGKILL every process of the node; healed by starting it again with the
    /// same identity and data.
    Kill,
    /// Move the node's clocks (a jump, a skew or a strobe, see
    /// [`ClockChange`]); healed by setting them back to the host's time.
    Clock,
    /// Delay, jitter, lose, duplicate or reorder the packets between nodes
    /// (see [`crate::packet`]); healed by removing the rules.
    Packet,
}

impl FaultKind {
    /// The fault's name in configs and histories: `pause`, `partition`, …
    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::Pause => "pause",
            FaultKind::Partition => "partition",
            FaultKind::Kill => "kill",
            FaultKind::Clock => "clock",
            FaultKind::Packet => "packet",
        }
    }

    /// The history `f` of the action that heals this fault.
    pub fn heal_name(self) -> &'static str {
        match self {
            FaultKind::Pause => "resume",
            FaultKind::Partition => "heal",
            FaultKind::Kill => "restart",
            FaultKind::Clock => "reset",
            FaultKind::Packet => "unpacket",
        }
    }
}

/// Which nodes a fault hits, resolved when the fault starts.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    /// One node by name (`w2`, `lock1`).
    Node(String),
    /// Several nodes by name: `[lock4, lock5]` in a config, `lock4,lock5`
    /// in a history.
    Nodes(Vec<String>),
    /// Every node of a role (`lock`, `storage`, `worker`).
    Role(Role),
    /// The worker holding the lock now, caught before it has used its token or
    /// renewed its lease: the moment at which a GC pause or a partition turns
    /// into a stale write. If the current holder has already written or
    /// renewed, the nemesis waits for the next one.
    Holder,
    /// One node drawn with the run's seed.
    One,
    /// Fewer than half of the nodes, drawn with the run's seed.
    Minority,
    /// More than half of the nodes, drawn with the run's seed.
    Majority,
    /// Every node.
    All,
    /// The lock node that leads: for the reference service, the one the
    /// workers talk to (the first lock node).
    LockLeader,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Node(n) => f.write_str(n),
            Target::Nodes(names) => f.write_str(&names.join(",")),
            Target::Role(r) => f.write_str(r.as_str()),
            Target::Holder => f.write_str("holder"),
            Target::One => f.write_str("one"),
            Target::Minority => f.write_str("minority"),
            Target::Majority => f.write_str("majority"),
            Target::All => f.write_str("all"),
            Target::LockLeader => f.write_str("lock-leader"),
        }
    }
}

impl FromStr for Target {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "holder" => Target::Holder,
            "one" => Target::One,
            "minority" => Target::Minority,
            "majority" => Target::Majority,
            "all" => Target::All,
            "lock-leader" => Target::LockLeader,
            "lock" => Target::Role(Role::Lock),
            "storage" => Target::Role(Role::Storage),
            "worker" => Target::Role(Role::Worker),
            "" => return Err("a target cannot be empty".into()),
            list if list.contains(',') => {
                let names: Vec<String> = list.split(',').map(|n| n.trim().to_owned()).collect();
                return Target::nodes(names);
            }
            name if name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') =>
            {
                Target::Node(name.to_owned())
            }
            other => return Err(format!("{other:?} is not a node name or a target")),
        })
    }
}

impl Target {
    /// Several nodes by name; one name is [`Target::Node`].
    pub fn nodes(mut names: Vec<String>) -> Result<Target, String> {
        for n in &names {
            if n.is_empty()
                || !n
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(format!("{n:?} is not a node name"));
            }
        }
        names.sort();
        names.dedup();
        match names.len() {
            0 => Err("a list of nodes cannot be empty".into()),
            1 => Ok(Target::Node(names.remove(0))),
            _ => Ok(Target::Nodes(names)),
        }
    }

    /// The node names the target lists (one for [`Target::Node`]); empty for
    /// targets resolved by role or at run time.
    pub fn named(&self) -> &[String] {
        match self {
            Target::Node(n) => std::slice::from_ref(n),
            Target::Nodes(names) => names,
            _ => &[],
        }
    }
}

impl Serialize for Target {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Target {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Written {
            One(String),
            List(Vec<String>),
        }
        match Written::deserialize(d).map_err(|_| {
            serde::de::Error::custom(
                "expected a target (`holder`, `lock`, `w2`, …) or a list of node names",
            )
        })? {
            Written::One(s) => s.parse(),
            Written::List(names) => Target::nodes(names),
        }
        .map_err(serde::de::Error::custom)
    }
}

/// One fault generator of a config: inject `fault` on `target` for `for`, first
/// after `start_after`, then every `every` (start to start) until the run ends.
/// Partitions also take a `topology` (default `isolate`: cut `target` off from
/// `from`, by default from every other node).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    /// What to inject.
    pub fault: FaultKind,
    /// On which nodes; default `all`.
    #[serde(default = "all")]
    pub target: Target,
    /// Partitions: the shape of the grudge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topology: Option<Topology>,
    /// Partitions that isolate: from whom; default every other node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Target>,
    /// Clock faults: step the clocks by this much (`+2s`, `-500ms`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jump: Option<ClockOffset>,
    /// Clock faults: run the clocks at this rate (`1.5`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skew: Option<Rate>,
    /// Clock faults: jump this far and back, again and again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strobe: Option<ClockOffset>,
    /// Clock strobes: time between two flips.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "humantime_serde"
    )]
    pub period: Option<Duration>,
    /// Clock jumps and strobes: which clocks move (default `realtime`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clocks: Option<Clocks>,
    /// How long the fault lasts before it is healed.
    #[serde(rename = "for")]
    pub duration: Span,
    /// Time between the starts of two faults of this generator; absent: once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every: Option<Span>,
    /// When the first fault starts, from the start of the run.
    #[serde(default, with = "humantime_serde")]
    pub start_after: Duration,
    /// Packet faults: how long each packet is held.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "humantime_serde"
    )]
    pub delay: Option<Duration>,
    /// Packet faults: each delay is drawn from `delay ± jitter`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "humantime_serde"
    )]
    pub jitter: Option<Duration>,
    /// Packet faults: the share of packets dropped (`20%`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss: Option<Percent>,
    /// Packet faults: the share of packets delivered twice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate: Option<Percent>,
    /// Packet faults: the share of packets let through at once, ahead of the
    /// held ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reorder: Option<Percent>,
}

/// The packet fields given (`delay`, `jitter`, `loss`, `duplicate`,
/// `reorder`), by name, and the shape they describe (absent ones are zero).
fn packet_fields(
    delay: Option<Duration>,
    jitter: Option<Duration>,
    loss: Option<Percent>,
    duplicate: Option<Percent>,
    reorder: Option<Percent>,
) -> (Vec<&'static str>, Shape) {
    let mut given = Vec::new();
    for (name, set) in [
        ("delay", delay.is_some()),
        ("jitter", jitter.is_some()),
        ("loss", loss.is_some()),
        ("duplicate", duplicate.is_some()),
        ("reorder", reorder.is_some()),
    ] {
        if set {
            given.push(name);
        }
    }
    let shape = Shape {
        delay: delay.unwrap_or_default(),
        jitter: jitter.unwrap_or_default(),
        loss: loss.unwrap_or_default(),
        duplicate: duplicate.unwrap_or_default(),
        reorder: reorder.unwrap_or_default(),
    };
    (given, shape)
}

impl FaultSpec {
    /// The names of the packet fields this generator gives.
    pub fn packet_fields(&self) -> Vec<&'static str> {
        packet_fields(
            self.delay,
            self.jitter,
            self.loss,
            self.duplicate,
            self.reorder,
        )
        .0
    }

    /// The packet shape of this generator (zero for other faults).
    pub fn shape(&self) -> Shape {
        packet_fields(
            self.delay,
            self.jitter,
            self.loss,
            self.duplicate,
            self.reorder,
        )
        .1
    }
}

impl TimelineEntry {
    /// The names of the packet fields this entry gives.
    pub fn packet_fields(&self) -> Vec<&'static str> {
        packet_fields(
            self.delay,
            self.jitter,
            self.loss,
            self.duplicate,
            self.reorder,
        )
        .0
    }

    /// The packet shape of this entry (zero for other faults).
    pub fn shape(&self) -> Shape {
        packet_fields(
            self.delay,
            self.jitter,
            self.loss,
            self.duplicate,
            self.reorder,
        )
        .1
    }
}

fn all() -> Target {
    Target::All
}

impl FaultSpec {
    /// Its clock settings as written.
    pub fn clock_fields(&self) -> ClockFields {
        ClockFields {
            jump: self.jump,
            skew: self.skew,
            strobe: self.strobe,
            period: self.period,
            clocks: self.clocks,
        }
    }

    /// What a clock fault of this generator does (`None` for other faults or
    /// settings that do not fit, which the config's check refuses).
    pub fn clock_change(&self) -> Option<ClockChange> {
        self.clock_fields()
            .change(self.fault == FaultKind::Clock)
            .ok()
            .flatten()
    }
}

impl TimelineEntry {
    /// Its clock settings as written.
    pub fn clock_fields(&self) -> ClockFields {
        ClockFields {
            jump: self.jump,
            skew: self.skew,
            strobe: self.strobe,
            period: self.period,
            clocks: self.clocks,
        }
    }

    /// What a clock entry does (`None` for other faults).
    pub fn clock_change(&self) -> Option<ClockChange> {
        self.clock_fields()
            .change(self.fault == FaultKind::Clock)
            .ok()
            .flatten()
    }
}

/// One entry of a scripted timeline: `at: 5s, pause: w1, for: 3s`, or
/// `kill: lock1`, or `partition: holder` (with `topology` and `from` as in
/// [`FaultSpec`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, try_from = "RawTimelineEntry")]
pub struct TimelineEntry {
    /// When it starts, from the start of the run.
    #[serde(with = "humantime_serde")]
    pub at: Duration,
    /// What to inject.
    pub fault: FaultKind,
    /// On which nodes.
    pub target: Target,
    /// Partitions: the shape of the grudge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topology: Option<Topology>,
    /// Partitions that isolate: from whom; default every other node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Target>,
    /// Clock faults: step the clocks by this much (`+2s`, `-500ms`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jump: Option<ClockOffset>,
    /// Clock faults: run the clocks at this rate (`1.5`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skew: Option<Rate>,
    /// Clock faults: jump this far and back, again and again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strobe: Option<ClockOffset>,
    /// Clock strobes: time between two flips.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "humantime_serde"
    )]
    pub period: Option<Duration>,
    /// Clock jumps and strobes: which clocks move (default `realtime`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clocks: Option<Clocks>,
    /// How long the fault lasts before it is healed.
    #[serde(rename = "for", with = "humantime_serde")]
    pub duration: Duration,
    /// Packet faults: how long each packet is held.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "humantime_serde"
    )]
    pub delay: Option<Duration>,
    /// Packet faults: each delay is drawn from `delay ± jitter`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "humantime_serde"
    )]
    pub jitter: Option<Duration>,
    /// Packet faults: the share of packets dropped (`20%`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss: Option<Percent>,
    /// Packet faults: the share of packets delivered twice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate: Option<Percent>,
    /// Packet faults: the share of packets let through at once, ahead of the
    /// held ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reorder: Option<Percent>,
}

/// A timeline entry as written, with the fault as its key.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTimelineEntry {
    #[serde(with = "humantime_serde")]
    at: Duration,
    #[serde(default)]
    pause: Option<Target>,
    #[serde(default)]
    partition: Option<Target>,
    #[serde(default)]
    kill: Option<Target>,
    #[serde(default)]
    clock: Option<Target>,
    // The serialized form of `TimelineEntry` reads back too.
    #[serde(default)]
    fault: Option<FaultKind>,
    #[serde(default)]
    target: Option<Target>,
    #[serde(default)]
    topology: Option<Topology>,
    #[serde(default)]
    from: Option<Target>,
    #[serde(default)]
    jump: Option<ClockOffset>,
    #[serde(default)]
    skew: Option<Rate>,
    #[serde(default)]
    strobe: Option<ClockOffset>,
    #[serde(default, with = "humantime_serde")]
    period: Option<Duration>,
    #[serde(default)]
    clocks: Option<Clocks>,
    #[serde(rename = "for", with = "humantime_serde")]
    duration: Duration,
    #[serde(default)]
    packet: Option<Target>,
    #[serde(default, with = "humantime_serde")]
    delay: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    jitter: Option<Duration>,
    #[serde(default)]
    loss: Option<Percent>,
    #[serde(default)]
    duplicate: Option<Percent>,
    #[serde(default)]
    reorder: Option<Percent>,
}

impl TryFrom<RawTimelineEntry> for TimelineEntry {
    type Error = String;

    fn try_from(raw: RawTimelineEntry) -> Result<Self, String> {
        let mut named = Vec::new();
        if let Some(t) = raw.pause {
            named.push((FaultKind::Pause, t));
        }
        if let Some(t) = raw.partition {
            named.push((FaultKind::Partition, t));
        }
        if let Some(t) = raw.kill {
            named.push((FaultKind::Kill, t));
        }
        if let Some(t) = raw.clock {
            named.push((FaultKind::Clock, t));
        }
        if let Some(t) = raw.packet {
            named.push((FaultKind::Packet, t));
        }
        if let (Some(kind), Some(t)) = (raw.fault, raw.target.clone()) {
            named.push((kind, t));
        }
        let (fault, target) = match named.len() {
            1 => named.remove(0),
            0 => {
                return Err(
                    "a timeline entry needs one of `pause`, `partition`, `kill`, `clock` or `packet`"
                        .into(),
                );
            }
            _ => {
                return Err(
                    "a timeline entry takes one fault: `pause`, `partition`, `kill`, `clock` or \
                     `packet`"
                        .into(),
                );
            }
        };
        Ok(TimelineEntry {
            at: raw.at,
            fault,
            target,
            topology: raw.topology,
            from: raw.from,
            jump: raw.jump,
            skew: raw.skew,
            strobe: raw.strobe,
            period: raw.period,
            clocks: raw.clocks,
            duration: raw.duration,
            delay: raw.delay,
            jitter: raw.jitter,
            loss: raw.loss,
            duplicate: raw.duplicate,
            reorder: raw.reorder,
        })
    }
}

/// What a target names at one moment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolution {
    /// These nodes, by name.
    Nodes(Vec<String>),
    /// Nothing matches yet (no holder right now); ask again shortly.
    Wait,
}

impl Target {
    /// Resolves the target against the nodes of a run and what is known live.
    /// Random choices come from `rng`, which the caller seeds from the run's seed.
    pub fn resolve(
        &self,
        nodes: &[NodeFacts],
        live: &LiveState,
        rng: &mut impl rand::Rng,
    ) -> Resolution {
        let names = |it: &mut dyn Iterator<Item = &NodeFacts>| {
            it.map(|n| n.name.clone()).collect::<Vec<_>>()
        };
        let pick = |count: usize, rng: &mut dyn FnMut(usize) -> usize| {
            let mut all: Vec<String> = nodes.iter().map(|n| n.name.clone()).collect();
            let mut chosen = Vec::with_capacity(count);
            for _ in 0..count.min(all.len()) {
                let i = rng(all.len());
                chosen.push(all.swap_remove(i));
            }
            chosen.sort();
            chosen
        };
        let mut draw = |n: usize| rng.random_range(0..n);
        let total = nodes.len();
        let found = match self {
            Target::Node(name) => names(&mut nodes.iter().filter(|n| &n.name == name)),
            Target::Nodes(list) => names(&mut nodes.iter().filter(|n| list.contains(&n.name))),
            Target::Role(role) => names(&mut nodes.iter().filter(|n| n.role == *role)),
            Target::All => names(&mut nodes.iter()),
            Target::One => pick(1, &mut draw),
            Target::Minority => pick(total.saturating_sub(1) / 2, &mut draw),
            Target::Majority => pick(total / 2 + 1, &mut draw),
            Target::Holder => live
                .holder()
                .map(|h| vec![h.to_owned()])
                .unwrap_or_default(),
            Target::LockLeader => {
                let mut locks: Vec<&NodeFacts> =
                    nodes.iter().filter(|n| n.role == Role::Lock).collect();
                locks.sort_by(|a, b| a.name.cmp(&b.name));
                locks
                    .first()
                    .map(|n| vec![n.name.clone()])
                    .unwrap_or_default()
            }
        };
        if found.is_empty() {
            Resolution::Wait
        } else {
            Resolution::Nodes(found)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn node(name: &str, role: Role) -> NodeFacts {
        NodeFacts {
            name: name.into(),
            role,
            pids: vec![],
            pgid: None,
            netns: None,
            addr: String::new(),
        }
    }

    #[test]
    fn targets_parse_and_print_back() {
        for s in [
            "holder", "one", "all", "minority", "majority", "lock", "worker", "w2",
        ] {
            assert_eq!(s.parse::<Target>().unwrap().to_string(), s);
        }
        assert!("w 2".parse::<Target>().is_err());
        let two: Target = "lock5,lock4".parse().unwrap();
        assert_eq!(two, Target::Nodes(vec!["lock4".into(), "lock5".into()]));
        assert_eq!(two.to_string().parse::<Target>().unwrap(), two);
        assert_eq!(
            "w1,w1".parse::<Target>().unwrap(),
            Target::Node("w1".into())
        );
        assert!("w1,".parse::<Target>().is_err());
    }

    #[test]
    fn resolves_roles_counts_and_the_holder() {
        let nodes = [
            node("lock1", Role::Lock),
            node("store1", Role::Storage),
            node("w1", Role::Worker),
            node("w2", Role::Worker),
            node("w3", Role::Worker),
        ];
        let live = LiveState::default();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let got = |t: Target, rng: &mut rand_chacha::ChaCha8Rng| match t.resolve(&nodes, &live, rng)
        {
            Resolution::Nodes(n) => n,
            Resolution::Wait => vec![],
        };
        assert_eq!(
            got(Target::Role(Role::Worker), &mut rng),
            ["w1", "w2", "w3"]
        );
        assert_eq!(got(Target::One, &mut rng).len(), 1);
        assert_eq!(got(Target::Minority, &mut rng).len(), 2);
        assert_eq!(got(Target::Majority, &mut rng).len(), 3);
        assert_eq!(
            Target::Holder.resolve(&nodes, &live, &mut rng),
            Resolution::Wait,
            "nobody holds the lock yet"
        );
        assert_eq!(
            Target::Node("w9".into()).resolve(&nodes, &live, &mut rng),
            Resolution::Wait
        );
    }
}
