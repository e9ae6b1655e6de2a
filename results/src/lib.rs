//! What a leasehold run leaves behind, for machines and for people.
//!
//! A run writes into one folder ([`RunDir`]): the history and ledger the checker
//! reads, `results.json` ([`Results`], the stable schema other tools parse),
//! `report.html` ([`render_report`], a self-contained page that opens from disk),
//! `junit.xml` ([`render_junit`], for CI), and the short text printed in the
//! terminal ([`Results::summary`]).
//!
//! This crate only formats and files what the harness and the checker produced; it
//! never runs a node or a check, so every output can be rebuilt from a run folder.

mod error;
mod junit;
mod report;
mod results;
mod run_dir;
mod schema;
mod summary;
#[cfg(test)]
mod test_support;

pub use error::{Result, ResultsError};
pub use junit::{render_junit, render_junit_runs, render_junit_with_report};
pub use report::{render_report, render_report_with_config};
pub use results::{
    Counts, FaultRecord, LEDGER_CHECKS, LockSystemSummary, NemesisSummary, NodeSummary, Results,
    SCHEMA_VERSION, ScheduledFault, StorageSummary, Timings, rfc3339,
};
pub use run_dir::RunDir;
pub use schema::{results_schema, results_schema_text};
