//! What every phase of a run shares.

use std::time::Duration;

use leasehold_checker::Event;
use leasehold_nodes::RunClock;
use leasehold_results::RunDir;
use tokio::sync::mpsc::UnboundedSender;
use tokio_util::sync::CancellationToken;

use crate::config::Config;

/// How long a node may take to answer its health check.
pub(crate) const READY_LIMIT: Duration = Duration::from_secs(10);

/// What every phase of a run reads: who it is, its clock, its folder, where
/// events go, and whether it was interrupted.
pub(crate) struct RunContext<'a> {
    pub config: &'a Config,
    pub run_id: &'a str,
    pub seed: u64,
    pub clock: RunClock,
    pub run_dir: &'a RunDir,
    /// Into the collector.
    pub events: UnboundedSender<Event>,
    /// Cancelled by Ctrl-C and the like.
    pub cancel: &'a CancellationToken,
    /// How long a node may take to answer its health check.
    pub ready_limit: Duration,
}
