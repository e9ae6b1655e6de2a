use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::NemesisError;
use crate::node::NodeFacts;
use crate::partition;
use crate::pause::{STATE_LIMIT, signal_node, wait_for};
use crate::topology::Grudge;

/// What one nemesis action did, for the harness to record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaultEffect {
    /// `pause`, `resume`, `partition`, `heal`.
    pub f: &'static str,
    /// The nodes it acted on (nodes already in the wanted state are left out;
    /// for `partition`, the nodes that now drop someone's packets).
    pub nodes: Vec<String>,
    /// From the call until the kernel showed every process in its new state, or
    /// had every node's drop rules in place (or removed).
    pub latency: Duration,
}

/// Injects and heals faults on nodes known by their [`NodeFacts`], and
/// remembers every fault still in force so that healing cannot be forgotten: [`Nemesis::heal_all`] undoes them, and so does
/// dropping the nemesis (on error and panic paths).
#[derive(Debug, Default)]
pub struct Nemesis {
    paused: BTreeMap<String, NodeFacts>,
    /// Nodes that may hold leasehold's nftables table now. Kept as facts, not
    /// names, so healing needs nothing from the caller.
    partitioned: BTreeMap<String, NodeFacts>,
}

impl Nemesis {
    /// A nemesis with no fault in force.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether `node` is paused by this nemesis now.
    pub fn is_paused(&self, node: &str) -> bool {
        self.paused.contains_key(node)
    }

    /// Nodes paused now.
    pub fn paused(&self) -> Vec<String> {
        self.paused.keys().cloned().collect()
    }

    /// SIGSTOPs every process of each node not already paused, and waits until
    /// the kernel shows them stopped.
    pub fn pause(&mut self, nodes: &[&NodeFacts]) -> Result<FaultEffect, NemesisError> {
        let start = Instant::now();
        let fresh: Vec<&NodeFacts> = nodes
            .iter()
            .copied()
            .filter(|n| !self.is_paused(&n.name))
            .collect();
        for node in &fresh {
            // Remember before signalling: a failure half-way must still be healed.
            self.paused.insert(node.name.clone(), (*node).clone());
            signal_node(node, Signal::SIGSTOP)?;
        }
        for node in &fresh {
            wait_for(node, true, STATE_LIMIT)?;
        }
        Ok(FaultEffect {
            f: "pause",
            nodes: fresh.iter().map(|n| n.name.clone()).collect(),
            latency: start.elapsed(),
        })
    }

    /// Whether a partition made by this nemesis may be in force.
    pub fn partitioned(&self) -> bool {
        !self.partitioned.is_empty()
    }

    /// Nodes that may drop someone's packets now because of this nemesis.
    pub fn partitioned_nodes(&self) -> Vec<String> {
        self.partitioned.keys().cloned().collect()
    }

    /// Puts `grudge` in force: each node drops the packets of the nodes the
    /// grudge names for it (see [`partition::apply`]), all nodes in parallel.
    ///
    /// A new grudge replaces the partition in force: nodes this nemesis cut
    /// earlier are healed unless the grudge cuts them again, even when the
    /// caller leaves them out of `nodes`. The effect lists the nodes that now
    /// drop packets; its latency runs until every `nft` has exited, an upper
    /// bound on the moment every table is in place (see [`partition::apply`]).
    pub fn partition(
        &mut self,
        grudge: &Grudge,
        nodes: &[NodeFacts],
    ) -> Result<FaultEffect, NemesisError> {
        let start = Instant::now();
        let mut all: Vec<NodeFacts> = nodes.to_vec();
        for (name, node) in &self.partitioned {
            if !nodes.iter().any(|n| &n.name == name) {
                all.push(node.clone());
            }
        }
        let cut: BTreeMap<String, NodeFacts> = all
            .iter()
            .filter(|n| grudge.get(&n.name).is_some_and(|d| !d.is_empty()))
            .map(|n| (n.name.clone(), n.clone()))
            .collect();
        // Remember before applying: a failure half-way must still be healed.
        self.partitioned
            .extend(cut.iter().map(|(k, v)| (k.clone(), v.clone())));
        partition::apply(grudge, &all)?;
        let nodes: Vec<String> = cut.keys().cloned().collect();
        self.partitioned = cut;
        Ok(FaultEffect {
            f: "partition",
            nodes,
            latency: start.elapsed(),
        })
    }

    /// Removes every partition this nemesis made. On error the nodes stay
    /// remembered, so a later heal (or the drop) retries them.
    pub fn heal_partition(&mut self) -> Result<FaultEffect, NemesisError> {
        let start = Instant::now();
        let nodes: Vec<NodeFacts> = self.partitioned.values().cloned().collect();
        partition::heal(&nodes)?;
        self.partitioned.clear();
        Ok(FaultEffect {
            f: "heal",
            nodes: nodes.into_iter().map(|n| n.name).collect(),
            latency: start.elapsed(),
        })
    }

    /// SIGCONTs the named nodes that this nemesis paused.
    pub fn resume(&mut self, names: &[String]) -> Result<FaultEffect, NemesisError> {
        let start = Instant::now();
        let mut done = Vec::new();
        for name in names {
            if let Some(node) = self.paused.get(name) {
                signal_node(node, Signal::SIGCONT)?;
                wait_for(node, false, STATE_LIMIT)?;
                self.paused.remove(name);
                done.push(name.clone());
            }
        }
        Ok(FaultEffect {
            f: "resume",
            nodes: done,
            latency: start.elapsed(),
        })
    }

    /// Heals every fault still in force: resumes paused nodes and removes
    /// partitions. Keeps going past errors and returns them, so one stuck node
    /// does not leave the others paused or cut off.
    ///
    /// The effect's `f` is `resume` when only pauses were in force, else `heal`;
    /// its nodes are every node healed either way.
    pub fn heal_all(&mut self) -> (FaultEffect, Vec<NemesisError>) {
        let start = Instant::now();
        let mut errors = Vec::new();
        let mut done = Vec::new();
        for (name, node) in std::mem::take(&mut self.paused) {
            match signal_node(&node, Signal::SIGCONT)
                .and_then(|()| wait_for(&node, false, STATE_LIMIT))
            {
                Ok(()) => done.push(name),
                Err(e) => errors.push(e),
            }
        }
        let partitioned = self.partitioned();
        if partitioned {
            match self.heal_partition() {
                Ok(effect) => done.extend(effect.nodes),
                Err(e) => errors.push(e),
            }
            done.sort();
            done.dedup();
        }
        let effect = FaultEffect {
            f: if partitioned { "heal" } else { "resume" },
            nodes: done,
            latency: start.elapsed(),
        };
        (effect, errors)
    }
}

impl Drop for Nemesis {
    fn drop(&mut self) {
        for node in self.paused.values() {
            let _ = signal_node(node, Signal::SIGCONT);
        }
        if self.partitioned() {
            let nodes: Vec<NodeFacts> = self.partitioned.values().cloned().collect();
            if let Err(e) = partition::heal(&nodes) {
                tracing::error!(error = %e, "could not heal the partition on drop");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::Role;
    use crate::pause::{ProcState, proc_state};
    use std::os::unix::process::CommandExt;

    fn sleeper() -> (std::process::Child, NodeFacts) {
        let child = std::process::Command::new("sleep")
            .arg("30")
            .process_group(0)
            .spawn()
            .expect("spawn sleep");
        let pid = child.id() as i32;
        let facts = NodeFacts {
            name: "w1".into(),
            role: Role::Worker,
            pids: vec![pid],
            pgid: Some(pid),
            netns: None,
            addr: String::new(),
        };
        (child, facts)
    }

    #[test]
    fn pause_stops_the_process_and_resume_wakes_it() {
        let (mut child, facts) = sleeper();
        let mut nemesis = Nemesis::new();
        let effect = nemesis.pause(&[&facts]).unwrap();
        assert_eq!(effect.nodes, ["w1"]);
        assert_eq!(proc_state(facts.pids[0]), ProcState::Stopped);
        // A second pause of a paused node does nothing.
        assert!(nemesis.pause(&[&facts]).unwrap().nodes.is_empty());
        let effect = nemesis.resume(&["w1".to_owned()]).unwrap();
        assert_eq!(effect.nodes, ["w1"]);
        assert!(matches!(proc_state(facts.pids[0]), ProcState::Live(_)));
        child.kill().unwrap();
        child.wait().unwrap();
    }

    #[test]
    fn dropping_the_nemesis_resumes_what_it_paused() {
        let (mut child, facts) = sleeper();
        {
            let mut nemesis = Nemesis::new();
            nemesis.pause(&[&facts]).unwrap();
            assert_eq!(proc_state(facts.pids[0]), ProcState::Stopped);
        }
        assert!(matches!(proc_state(facts.pids[0]), ProcState::Live(_)));
        child.kill().unwrap();
        child.wait().unwrap();
    }

    #[test]
    fn partitioning_a_node_without_a_namespace_is_refused() {
        let node = |name: &str, ip: &str| NodeFacts {
            name: name.into(),
            role: Role::Worker,
            pids: vec![],
            pgid: None,
            netns: None,
            addr: format!("{ip}:0"),
        };
        let mut nemesis = Nemesis::new();
        let grudge: Grudge = [("w1".to_owned(), ["w2".to_owned()].into())].into();
        let nodes = [node("w1", "10.0.0.1"), node("w2", "10.0.0.2")];
        let err = nemesis.partition(&grudge, &nodes).unwrap_err();
        assert!(
            matches!(&err, NemesisError::NoNetns { node } if node == "w1"),
            "{err}"
        );
        // Nothing was set, and healing what was remembered is harmless.
        let (_, errors) = nemesis.heal_all();
        assert!(errors.is_empty(), "{errors:?}");
        assert!(!nemesis.partitioned());
    }

    #[test]
    fn heal_all_resumes_everything() {
        let (mut a, fa) = sleeper();
        let (mut b, mut fb) = sleeper();
        fb.name = "w2".into();
        let mut nemesis = Nemesis::new();
        nemesis.pause(&[&fa, &fb]).unwrap();
        let (effect, errors) = nemesis.heal_all();
        assert!(errors.is_empty());
        assert_eq!(effect.nodes, ["w1", "w2"]);
        assert!(nemesis.paused().is_empty());
        for (c, f) in [(&mut a, &fa), (&mut b, &fb)] {
            assert!(matches!(proc_state(f.pids[0]), ProcState::Live(_)));
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }
}
