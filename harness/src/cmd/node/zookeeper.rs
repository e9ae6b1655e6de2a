//! `leasehold node zookeeper`: one ZooKeeper member of the run's own. It
//! writes the member's `zoo.cfg` (and `myid`) into the node's data folder and
//! becomes `java` with it: the node's process is the server's, so a pause, a
//! kill and a stop reach it as they reach any server, and the parent-death
//! signal set for this process stays with it.

use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Command, ExitCode};

use anyhow::Context;
use clap::Args;
use leasehold_workloads::system::zookeeper::{
    JAVA, Member, ZookeeperOptions, parse_member, prepare,
};

use super::Common;

#[derive(Debug, Args)]
pub(super) struct ZookeeperArgs {
    #[command(flatten)]
    common: Common,
    /// This member's id, 1-based, in the order of `--member`.
    #[arg(long)]
    id: usize,
    /// The node's data folder: config, snapshots and transaction log.
    #[arg(long)]
    data_dir: PathBuf,
    /// Every member, in order: `client,quorum,election` addresses.
    #[arg(long = "member", required = true, value_parser = parse_member)]
    members: Vec<Member>,
}

pub(super) fn run(a: ZookeeperArgs) -> anyhow::Result<ExitCode> {
    let _ = &a.common;
    // zoo.cfg names it, for a server that may resolve it from elsewhere.
    let data_dir = std::path::absolute(&a.data_dir)
        .with_context(|| format!("the data folder {}", a.data_dir.display()))?;
    let args = prepare(&data_dir, a.id, &a.members, &ZookeeperOptions::default())
        .with_context(|| format!("prepare {}", data_dir.display()))?;
    // Only returns on failure.
    let err = Command::new(JAVA).args(&args).exec();
    Err(err).with_context(|| format!("run {JAVA}"))
}
