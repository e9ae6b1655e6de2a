//! The nemesis of leasehold: the fault vocabulary, seeded schedules, target
//! resolution and the mechanisms that inject faults into nodes.
//!
//! The nemesis acts on [`NodeFacts`] only (names, roles, process ids, network
//! namespace, address), never on how a runtime made a node, so local processes and
//! containers share this code. Faults come in pairs (`pause`/`resume`); every
//! action returns a [`FaultEffect`] describing what it did, which the harness
//! records in the history. Nothing here sleeps or spawns tasks: timing is the
//! harness's job.

mod fault;
mod live;
mod nemesis;
mod node;
pub mod partition;
mod pause;
mod schedule;
mod span;
mod topology;

pub use fault::{FaultKind, FaultSpec, Resolution, Target, TimelineEntry};
pub use live::LiveState;
pub use nemesis::{FaultEffect, Nemesis};
pub use node::{NodeFacts, Role};
pub use pause::{ProcState, proc_state, signal_node};
pub use schedule::{ScheduledFault, schedule};
pub use span::Span;
pub use topology::{Grudge, Topology, grudge, is_partitioned, view};

/// Errors of the nemesis.
#[derive(Debug, thiserror::Error)]
pub enum NemesisError {
    #[error("cannot signal {signal} to node {node} (pid {pid}): {source}")]
    Signal {
        node: String,
        pid: i32,
        signal: &'static str,
        #[source]
        source: nix::Error,
    },
    #[error("node {node}: process {pid} did not reach state {want} within {waited_ms} ms")]
    NotInState {
        node: String,
        pid: i32,
        want: &'static str,
        waited_ms: u64,
    },
    #[error("unknown node {0:?}")]
    UnknownNode(String),
    #[error("node {node} has no network namespace, so it cannot be partitioned")]
    NoNetns { node: String },
    #[error("node {node}: cannot tell its IP address from {addr:?}")]
    BadAddr { node: String, addr: String },
    #[error("node {node}: cannot run nft inside the namespace {netns}: {source}")]
    Exec {
        node: String,
        netns: String,
        #[source]
        source: std::io::Error,
    },
    #[error("node {node}: nft in {netns} failed ({status}): {stderr}")]
    Nft {
        node: String,
        netns: String,
        status: String,
        stderr: String,
    },
}
