//! leasehold: a fault-injection harness for distributed locks and the storage
//! they guard. This crate is the `leasehold` binary: the CLI, the config, the
//! runtimes that start nodes, and the orchestration of a run.
//!
//! Layers, each using only those below it: [`machine`] (leasehold's state on
//! this machine), `config`, [`images`], `registry`; [`runtime`] (the
//! node-control seam and its local and Docker implementations); `cleanup`;
//! `run` (the lifecycle of a run); `child_run` (a config run as a child
//! `leasehold run`); `cmd` and [`cli`] on top.

mod child_run;
mod cleanup;
pub mod cli;
mod cmd;
mod config;
pub mod images;
pub mod machine;
mod registry;
mod run;
pub mod runtime;
pub mod shutdown;

pub use config::{Config, ConfigError};
pub use run::{RunOptions, RunOutcome, execute};

/// Exit code when the run itself failed (bad config, setup error), and of
/// every command-line error.
pub const EXIT_RUN_FAILED: u8 = 3;
/// Exit code of a run interrupted by Ctrl-C (128 + SIGINT); SIGTERM, SIGHUP
/// and SIGQUIT give 128 + their number the same way.
pub const EXIT_INTERRUPTED: u8 = 130;
