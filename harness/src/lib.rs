//! leasehold: a fault-injection harness for distributed locks and the storage
//! they guard. This crate is the `leasehold` binary: the CLI, the config, the
//! runtimes that start nodes, and the orchestration of a run.

pub mod cli;
mod cmd;
mod collector;
mod config;
mod docker;
pub mod images;
mod local;
mod nemesis_driver;
mod netns;
mod registry;
mod run;
mod runtime;
pub mod shutdown;

pub use config::{Config, ConfigError};
pub use run::{RunOptions, RunOutcome, execute};

/// Exit code when the run itself failed (bad config, setup error).
pub const EXIT_RUN_FAILED: u8 = 3;
/// Exit code of a run interrupted by Ctrl-C (128 + SIGINT); SIGTERM, SIGHUP
/// and SIGQUIT give 128 + their number the same way.
pub const EXIT_INTERRUPTED: u8 = 130;
