use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::NemesisError;
use crate::node::NodeFacts;
use crate::pause::{signal_node, wait_for};

/// How long a signal may take to show in `/proc` before we call it a failure.
const STATE_LIMIT: Duration = Duration::from_secs(2);

/// What one nemesis action did, for the harness to record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaultEffect {
    /// `pause`, `resume`.
    pub f: &'static str,
    /// The nodes it acted on (nodes already in the wanted state are left out).
    pub nodes: Vec<String>,
    /// From the call until the kernel showed every process in its new state.
    pub latency: Duration,
}

/// Injects and heals faults, and remembers every fault still in force so that
/// healing cannot be forgotten: [`Nemesis::heal_all`] undoes them, and so does
/// dropping the nemesis (on error and panic paths).
#[derive(Debug, Default)]
pub struct Nemesis {
    paused: BTreeMap<String, NodeFacts>,
}

impl Nemesis {
    pub fn new() -> Self {
        Self::default()
    }

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

    /// Heals every fault still in force. Keeps going past errors and returns
    /// them, so one stuck node does not leave the others paused.
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
        let effect = FaultEffect {
            f: "resume",
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
