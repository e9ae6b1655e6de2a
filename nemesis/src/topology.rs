//! Partition topologies as data: who drops whose packets.
//!
//! A partition is described by a [`Grudge`], Jepsen's name for it: for each node,
//! the set of nodes whose packets it drops on receipt. Describing the *receiving*
//! side is what makes one-way partitions expressible (A drops B's packets, B still
//! hears A) and is also how the mechanism works: drop rules live in each
//! receiving node's own network namespace (see [`crate::partition`]).
//!
//! Everything here is pure: the randomised topologies draw only from the rng they
//! are given, so a run's seed fixes its partitions and they can be recorded and
//! replayed.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

/// For each node, the nodes whose packets it drops.
///
/// Grudges built by [`grudge`] hold only nodes with a non-empty drop set (a node
/// absent from the map hears everyone), and never a node dropping itself; so two
/// grudges that cut the same links compare equal.
pub type Grudge = BTreeMap<String, BTreeSet<String>>;

/// The shape of a network partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Topology {
    /// Cut the targets off from the others (or from a given set), both ways.
    Isolate,
    /// The first half of the nodes (in their given order) against the rest.
    Halves,
    /// Two halves drawn at random.
    RandomHalves,
    /// Each node hears a different majority: every node believes it is in a
    /// majority, and no two agree on which — the classic trap for quorum systems
    /// that assume partitions are clean.
    MajoritiesRing,
    /// Two halves that cannot hear each other, joined by one node that hears and
    /// is heard by all: a leader elected through the bridge can be unreachable
    /// from half the cluster.
    Bridge,
    /// One half cannot hear the other, while the other still hears it:
    /// asymmetric faults (a half-dead NIC, a one-way firewall rule) that confuse
    /// failure detectors built on the assumption that links fail both ways.
    OneWay,
}

impl Topology {
    /// Every topology, in declaration order.
    pub const ALL: [Topology; 6] = [
        Topology::Isolate,
        Topology::Halves,
        Topology::RandomHalves,
        Topology::MajoritiesRing,
        Topology::Bridge,
        Topology::OneWay,
    ];

    /// The name used in configs and histories (kebab-case, as serde spells it).
    pub fn as_str(self) -> &'static str {
        match self {
            Topology::Isolate => "isolate",
            Topology::Halves => "halves",
            Topology::RandomHalves => "random-halves",
            Topology::MajoritiesRing => "majorities-ring",
            Topology::Bridge => "bridge",
            Topology::OneWay => "one-way",
        }
    }
}

impl fmt::Display for Topology {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Topology {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Topology::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Topology::ALL.iter().map(|t| t.as_str()).collect();
                format!(
                    "unknown topology {s:?} (expected one of {})",
                    names.join(", ")
                )
            })
    }
}

/// Builds the grudge of `topology` over `nodes`.
///
/// `targets` and `from` matter only to [`Topology::Isolate`]: every target is cut
/// off, both ways, from each node of `from` (default: every node that is not a
/// target), and the targets still hear each other. That covers targeted
/// partitions such as "isolate the lock holder from the lock service". The
/// other topologies split all of `nodes` and ignore both.
///
/// The random topologies shuffle a copy of `nodes` with `rng`; `Halves` and
/// `Isolate` draw nothing, so they depend only on the order of `nodes`.
pub fn grudge(
    topology: Topology,
    nodes: &[String],
    targets: &[String],
    from: Option<&[String]>,
    rng: &mut impl rand::Rng,
) -> Grudge {
    let mut g = Grudge::new();
    match topology {
        Topology::Isolate => {
            let others: Vec<String>;
            let from = match from {
                Some(from) => from,
                None => {
                    others = nodes
                        .iter()
                        .filter(|n| !targets.contains(n))
                        .cloned()
                        .collect();
                    &others
                }
            };
            for t in targets {
                for f in from {
                    cut(&mut g, t, f);
                    cut(&mut g, f, t);
                }
            }
        }
        Topology::Halves => {
            let (a, b) = nodes.split_at(nodes.len() / 2);
            cut_between(&mut g, a, b);
        }
        Topology::RandomHalves => {
            let shuffled = shuffled(nodes, rng);
            let (a, b) = shuffled.split_at(shuffled.len() / 2);
            cut_between(&mut g, a, b);
        }
        Topology::MajoritiesRing => {
            let ring = shuffled(nodes, rng);
            let n = ring.len();
            let majority = n / 2 + 1;
            // Each node's window of `majority` ring neighbours is placed the same
            // way relative to it (centred, or one further ahead when the size is
            // even), so windows are rotations of each other: all distinct
            // whenever majority < n, that is n >= 3.
            let behind = (majority - 1) / 2;
            for (i, node) in ring.iter().enumerate() {
                let hears: BTreeSet<usize> =
                    (0..majority).map(|k| (i + n - behind + k) % n).collect();
                for (j, other) in ring.iter().enumerate() {
                    if !hears.contains(&j) {
                        cut(&mut g, node, other);
                    }
                }
            }
        }
        Topology::Bridge => {
            let shuffled = shuffled(nodes, rng);
            if let Some(bridge_at) = shuffled.len().checked_sub(1).map(|rest| rest / 2) {
                let a = &shuffled[..bridge_at];
                let b = &shuffled[bridge_at + 1..];
                cut_between(&mut g, a, b);
            }
        }
        Topology::OneWay => {
            let shuffled = shuffled(nodes, rng);
            let (a, b) = shuffled.split_at(shuffled.len() / 2);
            for x in a {
                for y in b {
                    cut(&mut g, x, y);
                }
            }
        }
    }
    g
}

/// Whether `a` drops the packets of `b`.
pub fn is_partitioned(g: &Grudge, a: &str, b: &str) -> bool {
    g.get(a).is_some_and(|drops| drops.contains(b))
}

/// The nodes of `nodes` that `node` hears, itself included.
pub fn view(g: &Grudge, node: &str, nodes: &[String]) -> BTreeSet<String> {
    nodes
        .iter()
        .filter(|m| *m == node || !is_partitioned(g, node, m))
        .cloned()
        .collect()
}

/// `a` drops `b`'s packets (never its own).
fn cut(g: &mut Grudge, a: &str, b: &str) {
    if a != b {
        g.entry(a.to_owned()).or_default().insert(b.to_owned());
    }
}

/// Each side drops the other's packets.
fn cut_between(g: &mut Grudge, a: &[String], b: &[String]) {
    for x in a {
        for y in b {
            cut(g, x, y);
            cut(g, y, x);
        }
    }
}

fn shuffled(nodes: &[String], rng: &mut impl rand::Rng) -> Vec<String> {
    let mut v = nodes.to_vec();
    v.shuffle(rng);
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn names(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("n{i}")).collect()
    }

    fn build(t: Topology, n: usize, seed: u64) -> (Vec<String>, Grudge) {
        let nodes = names(n);
        let g = grudge(t, &nodes, &[], None, &mut ChaCha8Rng::seed_from_u64(seed));
        (nodes, g)
    }

    fn set(xs: &[&str]) -> BTreeSet<String> {
        xs.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn names_round_trip_through_serde_display_and_from_str() {
        for t in Topology::ALL {
            let json = serde_json::to_string(&t).unwrap();
            assert_eq!(json, format!("\"{t}\""));
            assert_eq!(serde_json::from_str::<Topology>(&json).unwrap(), t);
            assert_eq!(t.as_str().parse::<Topology>().unwrap(), t);
        }
        assert!("ring".parse::<Topology>().is_err());
    }

    #[test]
    fn halves_splits_in_the_given_order() {
        let (nodes, g) = build(Topology::Halves, 5, 0);
        let (a, b) = (set(&["n1", "n2"]), set(&["n3", "n4", "n5"]));
        assert_eq!(view(&g, "n1", &nodes), a);
        assert_eq!(view(&g, "n2", &nodes), a);
        for n in &b {
            assert_eq!(view(&g, n, &nodes), b);
        }
        assert_eq!(g["n1"], b);
        assert_eq!(g["n4"], a);
    }

    #[test]
    fn isolate_targets_from_a_given_set_only() {
        let nodes = names(5);
        let targets = ["n1".to_owned(), "n2".to_owned()];
        let from = ["n4".to_owned()];
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let g = grudge(Topology::Isolate, &nodes, &targets, Some(&from), &mut rng);
        let want: Grudge = [
            ("n1".to_owned(), set(&["n4"])),
            ("n2".to_owned(), set(&["n4"])),
            ("n4".to_owned(), set(&["n1", "n2"])),
        ]
        .into();
        assert_eq!(g, want);
        // The targets hear each other and n3, which was not in `from`.
        assert_eq!(view(&g, "n1", &nodes), set(&["n1", "n2", "n3", "n5"]));
    }

    #[test]
    fn majorities_ring_of_five_gives_each_node_three() {
        let (nodes, g) = build(Topology::MajoritiesRing, 5, 3);
        for n in &nodes {
            assert_eq!(view(&g, n, &nodes).len(), 3, "{n}: {g:?}");
        }
    }

    #[test]
    fn tiny_clusters_are_not_cut_by_rings_and_bridges() {
        for n in 0..=2 {
            for t in [Topology::MajoritiesRing, Topology::Bridge] {
                assert!(build(t, n, 1).1.is_empty(), "{t} over {n} nodes");
            }
        }
    }

    fn any_topology() -> impl Strategy<Value = Topology> {
        proptest::sample::select(Topology::ALL.to_vec())
    }

    proptest! {
        #[test]
        fn majorities_ring_views_are_distinct_majorities(n in 3usize..16, seed: u64) {
            let (nodes, g) = build(Topology::MajoritiesRing, n, seed);
            let mut seen = BTreeSet::new();
            for node in &nodes {
                let v = view(&g, node, &nodes);
                prop_assert_eq!(v.len(), n / 2 + 1);
                prop_assert!(v.contains(node));
                prop_assert!(seen.insert(v), "two nodes share a view: {:?}", g);
            }
        }

        #[test]
        fn bridge_has_one_node_in_both_halves(n in 3usize..16, seed: u64) {
            let (nodes, g) = build(Topology::Bridge, n, seed);
            let hears_all: Vec<&String> =
                nodes.iter().filter(|m| view(&g, m, &nodes).len() == n).collect();
            prop_assert_eq!(hears_all.len(), 1);
            let bridge = hears_all[0];
            // Everyone hears the bridge.
            for m in &nodes {
                prop_assert!(!is_partitioned(&g, m, bridge));
            }
            // The others split into two sides that hear nobody across.
            let first = nodes.iter().find(|m| *m != bridge).unwrap();
            let a: BTreeSet<String> =
                view(&g, first, &nodes).into_iter().filter(|m| m != bridge).collect();
            let b: BTreeSet<String> =
                nodes.iter().filter(|m| *m != bridge && !a.contains(*m)).cloned().collect();
            prop_assert!(a.len().abs_diff(b.len()) <= 1);
            for x in &a {
                for y in &b {
                    prop_assert!(is_partitioned(&g, x, y) && is_partitioned(&g, y, x));
                }
            }
            for side in [&a, &b] {
                for x in side {
                    let mut want = side.clone();
                    want.insert(bridge.clone());
                    prop_assert_eq!(&view(&g, x, &nodes), &want);
                }
            }
        }

        #[test]
        fn one_way_blocks_one_direction_only(n in 2usize..16, seed: u64) {
            let (nodes, g) = build(Topology::OneWay, n, seed);
            let deaf: BTreeSet<&String> = g.keys().collect();
            prop_assert_eq!(deaf.len(), n / 2);
            for (a, drops) in &g {
                for b in drops {
                    prop_assert!(!is_partitioned(&g, b, a), "{} and {} both cut", a, b);
                    prop_assert!(!deaf.contains(b));
                }
                // A cannot hear any of B.
                prop_assert_eq!(drops.len(), n - n / 2);
            }
            let cut = g.values().map(BTreeSet::len).sum::<usize>();
            prop_assert_eq!(cut, (n / 2) * (n - n / 2));
            prop_assert!(nodes.iter().all(|m| view(&g, m, &nodes).contains(m)));
        }

        #[test]
        fn halves_are_symmetric(n in 0usize..16, seed: u64, random: bool) {
            let t = if random { Topology::RandomHalves } else { Topology::Halves };
            let (nodes, g) = build(t, n, seed);
            for a in &nodes {
                for b in &nodes {
                    prop_assert_eq!(is_partitioned(&g, a, b), is_partitioned(&g, b, a));
                }
                let v = view(&g, a, &nodes);
                prop_assert!(v.len() == n / 2 || v.len() == n - n / 2);
            }
        }

        #[test]
        fn isolate_cuts_exactly_targets_times_from(
            n in 1usize..12,
            picks in proptest::collection::vec(any::<bool>(), 12),
            from_picks in proptest::option::of(proptest::collection::vec(any::<bool>(), 12)),
        ) {
            let nodes = names(n);
            let targets: Vec<String> =
                nodes.iter().zip(&picks).filter(|(_, p)| **p).map(|(m, _)| m.clone()).collect();
            let from: Option<Vec<String>> = from_picks.map(|fp| {
                nodes.iter().zip(&fp).filter(|(_, p)| **p).map(|(m, _)| m.clone()).collect()
            });
            let mut rng = ChaCha8Rng::seed_from_u64(0);
            let g = grudge(Topology::Isolate, &nodes, &targets, from.as_deref(), &mut rng);
            let from = from.unwrap_or_else(|| {
                nodes.iter().filter(|m| !targets.contains(m)).cloned().collect()
            });
            for a in &nodes {
                for b in &nodes {
                    let want = a != b
                        && ((targets.contains(a) && from.contains(b))
                            || (from.contains(a) && targets.contains(b)));
                    prop_assert_eq!(is_partitioned(&g, a, b), want, "{} drops {}?", a, b);
                }
            }
        }

        #[test]
        fn the_same_seed_gives_the_same_grudge(t in any_topology(), n in 0usize..12, seed: u64) {
            let nodes = names(n);
            let targets = &nodes[..n.min(1)];
            let mut r1 = ChaCha8Rng::seed_from_u64(seed);
            let mut r2 = ChaCha8Rng::seed_from_u64(seed);
            prop_assert_eq!(
                grudge(t, &nodes, targets, None, &mut r1),
                grudge(t, &nodes, targets, None, &mut r2)
            );
        }

        #[test]
        fn grudges_hold_no_empty_sets_and_no_self_drops(
            t in any_topology(), n in 0usize..12, seed: u64,
        ) {
            let (_, g) = build(t, n, seed);
            for (a, drops) in &g {
                prop_assert!(!drops.is_empty());
                prop_assert!(!drops.contains(a));
            }
        }
    }
}
