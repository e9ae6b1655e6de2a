//! `leasehold cleanup`: remove what killed runs left behind.

use std::process::ExitCode;

use clap::Args;

use crate::cleanup;

#[derive(Debug, Args)]
pub struct CleanupArgs {}

pub fn run(_args: CleanupArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let cleaned = runtime.block_on(cleanup::cleanup_dead_runs());
    if cleaned.is_empty() {
        println!("nothing to clean up");
    } else {
        for pid in &cleaned.processes {
            println!("killed node process {pid}");
        }
        for ns in &cleaned.namespaces {
            println!("deleted network namespace {ns}");
        }
        for ifname in &cleaned.interfaces {
            println!("deleted interface {ifname}");
        }
        for c in &cleaned.containers {
            println!("removed container {c}");
        }
        for n in &cleaned.networks {
            println!("removed network {n}");
        }
        for c in &cleaned.clocks {
            println!("reset clock {}", c.display());
        }
        for id in &cleaned.registrations {
            println!("forgot run {id}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
