//! The errors of this crate: all of them are about files, so each names its path.

use std::path::PathBuf;

/// Something went wrong reading or writing a run folder.
#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    /// A file-system call failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder the call was about.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A JSON file could not be parsed or written.
    #[error("{}: {source}", path.display())]
    Json {
        /// The file; `results.json` when only its text was given
        /// ([`Results::from_json`](crate::Results::from_json)).
        path: PathBuf,
        /// serde_json's error (of a parse: with its line and column).
        #[source]
        source: serde_json::Error,
    },
    /// A history file could not be parsed.
    #[error("{}: {source}", path.display())]
    History {
        /// The history file (`history.jsonl`).
        path: PathBuf,
        /// The checker's error, naming the line that failed.
        #[source]
        source: leasehold_checker::HistoryError,
    },
    /// `results.json` was written by a newer leasehold whose schema this one
    /// cannot promise to read correctly.
    #[error("{}: schema version {found} is newer than this leasehold's ({supported})", path.display())]
    SchemaVersion {
        /// The `results.json` read.
        path: PathBuf,
        /// The file's `schema_version`.
        found: u32,
        /// The newest version this leasehold reads, [`SCHEMA_VERSION`](crate::SCHEMA_VERSION).
        supported: u32,
    },
    /// A test name must be usable as one folder name under the store.
    #[error("invalid test name {name:?}: {reason}")]
    InvalidTestName {
        /// The name as given.
        name: String,
        /// Why the store cannot use it (empty, a path separator, `latest`, …).
        reason: &'static str,
    },
    /// [`RunDir::open`](crate::RunDir::open) was given something that is not a
    /// folder.
    #[error("{}: not a run folder", path.display())]
    NotARunDir {
        /// The path as given.
        path: PathBuf,
    },
}

/// `Result` with [`ResultsError`].
pub type Result<T, E = ResultsError> = std::result::Result<T, E>;

impl ResultsError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> ResultsError {
        let path = path.into();
        move |source| ResultsError::Io { path, source }
    }
}
