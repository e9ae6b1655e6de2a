//! Removing what killed runs left behind, on every runtime, and the last
//! resort of a controller that must exit at once.
//!
//! Above the registry and the runtimes: it asks the registry which runs are
//! alive and each runtime what it left.

use crate::machine::Cleaned;
use crate::registry;
use crate::runtime::docker;
use crate::runtime::local::netns;

/// Sends SIGCONT to every process of the run `run_id`: its node processes
/// found by command line, and every process in the cgroup of each of its
/// containers (a lock node from a foreign image carries no `--run-id`). The
/// last resort of a controller that must exit at once; returns how many
/// processes it signalled.
pub async fn resume_run(run_id: &str) -> usize {
    let resume = |pids: &mut dyn Iterator<Item = i32>| {
        pids.filter(|&pid| {
            nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGCONT,
            )
            .is_ok()
        })
        .count()
    };
    // The node processes first: asking the engine may take a while.
    let mut resumed = resume(
        &mut registry::run_processes()
            .into_iter()
            .filter(|(_, id)| id == run_id)
            .map(|(pid, _)| pid),
    );
    let docker = tokio::time::timeout(
        std::time::Duration::from_secs(2),
        docker::run_container_pids(run_id),
    );
    resumed += resume(&mut docker.await.unwrap_or_default().into_iter());
    resumed
}

/// Removes everything that belongs to runs whose controller is dead: node
/// processes, namespaces and interfaces, containers and Docker networks.
pub async fn cleanup_dead_runs() -> Cleaned {
    let mut cleaned = Cleaned::default();
    docker::cleanup_dead(&mut cleaned).await;
    // `ip` and /proc: blocking work, off the async threads.
    match tokio::task::spawn_blocking(move || {
        cleanup_local(&mut cleaned);
        cleaned
    })
    .await
    {
        Ok(cleaned) => cleaned,
        Err(e) => {
            tracing::error!(error = %e, "the cleanup of processes and namespaces panicked");
            Cleaned::default()
        }
    }
}

/// The local part of [`cleanup_dead_runs`]: node processes, namespaces,
/// interfaces and registrations.
fn cleanup_local(cleaned: &mut Cleaned) {
    // List first, then ask who is alive: a run registers before it creates
    // anything, so whatever the listing saw belongs to a run that the liveness
    // check below sees too. (The other way round, a run starting in between
    // would lose its fresh namespaces to us.)
    let processes = registry::run_processes();
    let namespaces = netns::leftover_namespaces();
    let interfaces = netns::leftover_interfaces();
    let live = registry::live_runs();
    for (pid, id) in processes {
        if live.contains(&id) {
            continue;
        }
        let pid = nix::unistd::Pid::from_raw(pid);
        // A stopped process takes SIGKILL too; SIGCONT first is for politeness to
        // anything waiting on it.
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT);
        if nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).is_ok() {
            cleaned.processes.push(pid.as_raw());
        }
    }
    for (id, ns) in namespaces {
        if !live.contains(&id) && netns::delete_namespace(&ns).is_ok() {
            cleaned.namespaces.push(ns);
        }
    }
    for (id, ifname) in interfaces {
        if !live.contains(&id) && netns::delete_interface(&ifname).is_ok() {
            cleaned.interfaces.push(ifname);
        }
    }
    for reg in registry::registrations() {
        if !reg.alive() {
            // A clock fault in force when the controller died: its nodes are
            // gone now, but the run folder keeps no moved clock behind.
            cleaned
                .clocks
                .extend(crate::runtime::clock::reset_files(&reg.run_dir));
            registry::unregister(&reg.run_id);
            cleaned.registrations.push(reg.run_id);
        }
    }
}
