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
    pub processes: Vec<i32>,
    pub namespaces: Vec<String>,
    pub interfaces: Vec<String>,
    pub containers: Vec<String>,
    pub networks: Vec<String>,
    pub registrations: Vec<String>,
}

impl Cleaned {
    pub fn is_empty(&self) -> bool {
        self.processes.is_empty()
            && self.namespaces.is_empty()
            && self.interfaces.is_empty()
            && self.containers.is_empty()
            && self.networks.is_empty()
            && self.registrations.is_empty()
    }
}
