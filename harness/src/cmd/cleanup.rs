//! `leasehold cleanup`: remove what killed runs left behind.

use std::process::ExitCode;

use clap::Args;

use crate::registry;

#[derive(Debug, Args)]
pub struct CleanupArgs {}

pub fn run(_args: CleanupArgs) -> anyhow::Result<ExitCode> {
    let cleaned = registry::cleanup_dead_runs();
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
        for id in &cleaned.registrations {
            println!("forgot run {id}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
