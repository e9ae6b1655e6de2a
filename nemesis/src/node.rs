use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// What a node is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Lock,
    Storage,
    Worker,
}

impl Role {
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
    pub name: String,
    pub role: Role,
    /// Host PIDs of every process of the node; a pause must reach all of them.
    pub pids: Vec<i32>,
    /// The node's process group, when it has one of its own: signalling the group
    /// reaches children the node forked after `pids` was read.
    pub pgid: Option<i32>,
    /// Path of the node's network namespace, when it has one.
    pub netns: Option<PathBuf>,
    /// `ip:port` the node serves on (workers: their address without a port).
    pub addr: String,
}
