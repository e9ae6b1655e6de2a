//! What leasehold keeps on this machine outside the run folders, shared by
//! the run registry, the runtimes and cleanup: the per-user state folder, and
//! the account of what a cleanup removed.

use std::path::PathBuf;

/// Per-user state of leasehold on this machine (run registrations, the
/// subnet allocation lock), in the temp dir.
pub fn state_dir() -> PathBuf {
    std::env::temp_dir().join(format!("leasehold-{}", nix::unistd::getuid()))
}

/// What a cleanup removed.
#[derive(Debug, Default)]
pub struct Cleaned {
    /// PIDs of the node processes killed.
    pub processes: Vec<i32>,
    /// Network namespaces deleted (`lh-<id>-<node>`, `lh-<id>-hub`).
    pub namespaces: Vec<String>,
    /// Host interfaces deleted (`lh<id>h`).
    pub interfaces: Vec<String>,
    /// Docker containers removed, by name.
    pub containers: Vec<String>,
    /// Docker networks removed, by name.
    pub networks: Vec<String>,
    /// Ids of the runs whose registration was removed (their controller is dead).
    pub registrations: Vec<String>,
    /// Clock control files set back to the host's time (a clock fault in
    /// force when the controller died).
    pub clocks: Vec<std::path::PathBuf>,
}

impl Cleaned {
    /// Whether nothing at all was removed.
    pub fn is_empty(&self) -> bool {
        self.processes.is_empty()
            && self.namespaces.is_empty()
            && self.interfaces.is_empty()
            && self.containers.is_empty()
            && self.networks.is_empty()
            && self.registrations.is_empty()
            && self.clocks.is_empty()
    }
}
