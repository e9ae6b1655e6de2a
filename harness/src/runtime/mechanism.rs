//! The nemesis mechanisms as both runtimes call them: off the async threads,
//! because signalling waits for `/proc` to show the new state and `nft` is a
//! child process to wait for. A runtime only says which processes and which
//! namespaces; how the fault is put in force is the same for every runtime.

use std::path::PathBuf;

use anyhow::Context;
use leasehold_nemesis::partition::{self, Drops, NsDrops};
use leasehold_nemesis::{NodeFacts, STATE_LIMIT, deliver};
use nix::sys::signal::Signal;

/// Sends `signal` to every process of `nodes` and, for SIGSTOP and SIGCONT,
/// waits until the kernel shows them stopped or running again.
pub(crate) async fn signal_nodes(nodes: Vec<NodeFacts>, signal: Signal) -> anyhow::Result<()> {
    tokio::task::spawn_blocking(move || deliver(&nodes, signal, STATE_LIMIT))
        .await
        .context("the signalling thread panicked")??;
    Ok(())
}

/// Puts each `(node, namespace, drops)` in force, all nodes at once; empty
/// drops remove the node's table.
pub(crate) async fn apply_drops(jobs: Vec<(String, PathBuf, Drops)>) -> anyhow::Result<()> {
    tokio::task::spawn_blocking(move || {
        let rules: Vec<NsDrops<'_>> = jobs
            .iter()
            .map(|(node, netns, drops)| NsDrops { node, netns, drops })
            .collect();
        partition::set_drops(&rules)
    })
    .await
    .context("the nft thread panicked")??;
    Ok(())
}
