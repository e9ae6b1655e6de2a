//! How to start one node, whatever the runtime: the node's identity and
//! arguments, and small helpers on them.

use std::path::{Path, PathBuf};

use leasehold_nemesis::Role;

/// How to start one node.
#[derive(Clone, Debug)]
pub struct NodeSpec {
    /// The node's name: `lock1`, `store1`, `w1`, …
    pub name: String,
    /// Whether it is a lock node, a storage node or a worker.
    pub role: Role,
    /// `ip:port` it serves on; for workers the port is 0.
    pub addr: std::net::SocketAddr,
    /// Arguments after `leasehold node`.
    pub args: Vec<String>,
    /// Host folder of the node's data (lock and storage nodes).
    pub data_dir: Option<PathBuf>,
}

/// Sets `--flag value` pairs in `args`, replacing the values of flags already
/// there (a node restarted twice gets one `--incarnation`, not two).
pub fn set_flags(args: &mut Vec<String>, pairs: &[String]) {
    for pair in pairs.chunks(2) {
        let [flag, value] = pair else { continue };
        match args.iter().position(|a| a == flag) {
            Some(i) if i + 1 < args.len() => args[i + 1] = value.clone(),
            _ => args.extend([flag.clone(), value.clone()]),
        }
    }
}

/// The last `n` lines of a log file, indented, for error messages.
pub fn log_tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = &lines[lines.len().saturating_sub(n)..];
    if tail.is_empty() {
        return "    (empty)".to_owned();
    }
    tail.iter()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_are_set_once() {
        let mut args = vec!["worker".to_owned(), "--seed".to_owned(), "1".to_owned()];
        set_flags(&mut args, &["--incarnation".into(), "1".into()]);
        set_flags(&mut args, &["--incarnation".into(), "2".into()]);
        assert_eq!(args, ["worker", "--seed", "1", "--incarnation", "2"]);
    }
}
