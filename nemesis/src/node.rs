use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// What a node is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A node of the lock service.
    Lock,
    /// A storage node.
    Storage,
    /// A client worker.
    Worker,
}

impl Role {
    /// The role's name in configs and targets: `lock`, `storage`, `worker`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Lock => "lock",
            Role::Storage => "storage",
            Role::Worker => "worker",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The facts about a node that the nemesis needs, the same whichever runtime
/// started it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeFacts {
    /// The node's name, e.g. `w1`.
    pub name: String,
    /// What it is for.
    pub role: Role,
    /// Host PIDs of every process of the node; a pause must reach all of them.
    /// Empty while the node is down (killed and not yet restarted): a PID of a
    /// dead node may already belong to another program.
    pub pids: Vec<i32>,
    /// The node's process group, when it has one of its own: signalling the group
    /// reaches children the node forked after `pids` was read. `None` while the
    /// node is down.
    pub pgid: Option<i32>,
    /// Path of the node's network namespace, when it has one.
    pub netns: Option<PathBuf>,
    /// `ip:port` the node serves on (workers: their address without a port).
    pub addr: String,
}
