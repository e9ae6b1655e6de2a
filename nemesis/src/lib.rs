//! The nemesis of leasehold: the fault vocabulary, seeded schedules, target
//! resolution and the mechanisms that inject faults into nodes.
//!
//! The nemesis acts on [`NodeFacts`] only (names, roles, process ids, network
//! namespace, address), never on how a runtime made a node, so local processes and
//! containers share this code. The mechanisms are plain functions
//! ([`deliver`], [`partition::drops`], [`partition::set_drops`]) that a
//! runtime calls on its own nodes; [`Nemesis`] bundles them with the memory of
//! what is in force, for callers that hold the facts themselves. Faults come in pairs (`pause`/`resume`); every
//! action returns a [`FaultEffect`] describing what it did, which the harness
//! records in the history. Nothing here sleeps or spawns tasks: timing is the
//! harness's job.

mod clock;
mod fault;
mod live;
mod nemesis;
mod node;
pub mod packet;
pub mod partition;
mod pause;
mod schedule;
mod span;
mod topology;

pub use clock::{
    ClockChange, ClockFieldError, ClockFields, ClockOffset, Clocks, DEFAULT_STROBE_PERIOD, Rate,
};
pub use fault::{FaultKind, FaultSpec, Resolution, Target, TimelineEntry};
pub use live::LiveState;
pub use nemesis::{FaultEffect, Nemesis};
pub use node::{NodeFacts, Role};
pub use packet::{Percent, Shape};
pub use pause::{ProcState, STATE_LIMIT, deliver, proc_state, signal_node};
pub use schedule::{ScheduledFault, schedule};
pub use span::Span;
pub use topology::{Grudge, Topology, grudge, is_partitioned, view};

/// Errors of the nemesis.
#[derive(Debug, thiserror::Error)]
pub enum NemesisError {
    /// A signal could not be sent to a process of a node.
    #[error("cannot signal {signal} to node {node} (pid {pid}): {source}")]
    Signal {
        /// The node.
        node: String,
        /// The process.
        pid: i32,
        /// `SIGSTOP`, `SIGCONT`, …
        signal: &'static str,
        /// Why `kill` failed.
        #[source]
        source: nix::Error,
    },
    /// A process did not show the signal's effect in `/proc` in time.
    #[error("node {node}: process {pid} did not reach state {want} within {waited_ms} ms")]
    NotInState {
        /// The node.
        node: String,
        /// The process.
        pid: i32,
        /// The state awaited: `T (stopped)` or `running`.
        want: &'static str,
        /// How long it was awaited.
        waited_ms: u64,
    },
    /// No node has that name.
    #[error("unknown node {0:?}")]
    UnknownNode(String),
    /// A partition needs the node's network namespace, and it has none.
    #[error("node {node} has no network namespace, so it cannot be partitioned")]
    NoNetns {
        /// The node.
        node: String,
    },
    /// The node's address has no IP address in it.
    #[error("node {node}: cannot tell its IP address from {addr:?}")]
    BadAddr {
        /// The node.
        node: String,
        /// Its address as known.
        addr: String,
    },
    /// `nft` could not be started inside the node's namespace.
    #[error("node {node}: cannot run nft inside the namespace {netns}: {source}")]
    Exec {
        /// The node.
        node: String,
        /// The namespace's path.
        netns: String,
        /// Why it could not start.
        #[source]
        source: std::io::Error,
    },
    /// `nft` ran and failed.
    #[error("node {node}: nft in {netns} failed ({status}): {stderr}")]
    Nft {
        /// The node.
        node: String,
        /// The namespace's path.
        netns: String,
        /// Its exit status.
        status: String,
        /// What it printed on stderr.
        stderr: String,
    },
    /// A packet fault's source address is IPv6 (its rules are IPv4 only).
    #[error("packet faults shape IPv4 links only, and {addr} is IPv6")]
    PacketV6 {
        /// The address.
        addr: std::net::IpAddr,
    },
    /// A tool of the packet mechanism could not be started in the namespace.
    #[error("node {node}: cannot run {program} inside the namespace {netns}: {source}")]
    PacketExec {
        /// The node.
        node: String,
        /// The namespace's path.
        netns: String,
        /// `nft`, `iptables-restore`, the holder.
        program: String,
        /// Why it could not start.
        #[source]
        source: std::io::Error,
    },
    /// A tool of the packet mechanism ran and failed.
    #[error("node {node}: {program} in {netns} failed ({status}): {stderr}")]
    PacketTool {
        /// The node.
        node: String,
        /// The namespace's path.
        netns: String,
        /// `nft`, `iptables-restore`, `iptables-save`.
        program: String,
        /// Its exit status.
        status: String,
        /// What it printed on stderr.
        stderr: String,
    },
    /// The packet holder did not bind its queue.
    #[error("node {node}: the packet holder did not start: {why}")]
    HolderNotReady {
        /// The node.
        node: String,
        /// What happened instead.
        why: String,
    },
}
