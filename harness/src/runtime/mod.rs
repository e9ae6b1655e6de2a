//! The runtimes behind one seam: local processes in namespaces of their own, or
//! Docker containers. The run lifecycle and the nemesis driver see only the
//! traits of [`control`]: [`NodeControl`] for every fault (signals, drop rules,
//! kill, restart), [`Runtime`] for the rest of a node's life.
//!
//! The mechanisms themselves (signals via nix, nft inside a namespace) live in
//! the nemesis crate; each runtime says which processes and which namespace
//! a node name stands for, and calls them.

pub mod clock;
pub mod control;
pub mod docker;
pub mod local;
mod mechanism;
pub mod spec;
pub mod subnet;

pub use control::{Endpoint, ImageOf, NodeControl, Runtime, wait_ready};
pub use leasehold_nemesis::partition::Drops;
pub use spec::{
    NodeProgram, NodeSpec, check_needs, find_node_program, find_program, find_program_in_container,
};
