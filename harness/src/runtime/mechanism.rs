//! The nemesis mechanisms as both runtimes call them: off the async threads,
//! because signalling waits for `/proc` to show the new state and `nft` is a
//! child process to wait for. A runtime only says which processes and which
//! namespaces; how the fault is put in force is the same for every runtime.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context;
use leasehold_nemesis::packet::{self, Holder, PacketJob, PacketRule};
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

/// One node's packet rules and where they go, for [`shape_packets`].
pub(crate) struct PacketTarget {
    pub node: String,
    pub netns: PathBuf,
    /// The node's log, where its holder's stderr goes.
    pub log: Option<PathBuf>,
    /// `None` heals the node.
    pub rule: Option<PacketRule>,
}

/// Puts every target's packet rules in force (or heals it), all nodes at
/// once, off the async threads. `holders` holds each shaped node's holder
/// of delayed packets: a node's old one is stopped once its rules are gone,
/// and the new one takes its place. `exe` is leasehold's own binary (the
/// holder is `leasehold node packet-queue`). Waits for every node even when
/// some fail; the error names the first that failed.
pub(crate) async fn shape_packets(
    run_id: &str,
    exe: PathBuf,
    targets: Vec<PacketTarget>,
    holders: &mut BTreeMap<String, Holder>,
) -> anyhow::Result<()> {
    let olds: Vec<Option<Holder>> = targets.iter().map(|t| holders.remove(&t.node)).collect();
    let run_id = run_id.to_owned();
    let (results, targets) = tokio::task::spawn_blocking(move || {
        let results: Vec<Result<Option<Holder>, leasehold_nemesis::NemesisError>> =
            std::thread::scope(|s| {
                let handles: Vec<_> = targets
                    .iter()
                    .zip(olds)
                    .map(|(t, old)| {
                        let (run_id, exe) = (&run_id, &exe);
                        s.spawn(move || {
                            let job = PacketJob {
                                node: &t.node,
                                netns: &t.netns,
                                run_id,
                                rule: t.rule.as_ref(),
                                holder: exe,
                                log: t.log.as_deref(),
                            };
                            packet::apply(&job, old)
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                    .collect()
            });
        (results, targets)
    })
    .await
    .context("the packet thread panicked")?;
    let mut first = None;
    for (t, result) in targets.into_iter().zip(results) {
        match result {
            Ok(Some(holder)) => {
                holders.insert(t.node, holder);
            }
            Ok(None) => {}
            Err(e) if first.is_none() => first = Some(e),
            Err(e) => tracing::warn!(error = %e, "packet: another node failed too"),
        }
    }
    match first {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}
