//! How to start one node, whatever the runtime: the node's identity and
//! arguments, and small helpers on them.

use std::path::{Path, PathBuf};

use leasehold_nemesis::Role;
use leasehold_workloads::{Probe, Program};

/// How to start one node.
#[derive(Clone, Debug)]
pub struct NodeSpec {
    /// The node's name: `lock1`, `store1`, `w1`, …
    pub name: String,
    /// Whether it is a lock node, a storage node or a worker.
    pub role: Role,
    /// `ip:port` it serves on; for workers the port is 0.
    pub addr: std::net::SocketAddr,
    /// What runs: leasehold's own binary or a server found on the host.
    pub program: NodeProgram,
    /// Arguments: after `leasehold node` for [`NodeProgram::Leasehold`], the
    /// whole argument list of a host program otherwise.
    pub args: Vec<String>,
    /// Environment variables set for the node, besides `RUST_LOG`.
    pub env: Vec<(String, String)>,
    /// Host folder of the node's data (lock and storage nodes).
    pub data_dir: Option<PathBuf>,
    /// How to tell it is ready to serve; None for workers, which serve
    /// nothing.
    pub probe: Option<Probe>,
    /// Whether its stdout carries history events; otherwise it is the
    /// program's log and goes to the node's log file with its stderr.
    pub events_on_stdout: bool,
}

/// The program a node runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeProgram {
    /// `leasehold node …`: this binary locally, leasehold's image in Docker.
    Leasehold,
    /// A server binary of the host, by its resolved path: run as it is
    /// locally, packed with its libraries into an image for Docker.
    Host(PathBuf),
}

/// Where the program of a recipe is on this host: None for leasehold's own;
/// a host binary is looked up on `PATH`. A missing one is an error of one
/// line naming the binary and the Debian package that installs it.
pub fn find_program(program: &Program) -> anyhow::Result<NodeProgram> {
    match program {
        Program::Leasehold => Ok(NodeProgram::Leasehold),
        Program::Host { binary, package } => {
            let path = std::env::var_os("PATH").unwrap_or_default();
            std::env::split_paths(&path)
                .map(|dir| dir.join(binary))
                .find(|p| is_executable(p))
                .map(NodeProgram::Host)
                .ok_or_else(|| anyhow::anyhow!("{binary} not found: apt-get install {package}"))
        }
        // The user's program: a path (relative to the working directory), or
        // a name on PATH.
        Program::User { command, field } => {
            if command.is_empty() {
                anyhow::bail!("{field}: no program given");
            }
            let found = if command.contains('/') {
                Some(PathBuf::from(command)).filter(|p| is_executable(p))
            } else {
                let path = std::env::var_os("PATH").unwrap_or_default();
                std::env::split_paths(&path)
                    .map(|dir| dir.join(command))
                    .find(|p| is_executable(p))
            };
            found.map(NodeProgram::Host).ok_or_else(|| {
                anyhow::anyhow!("{command} not found ({field}[0]): no such executable")
            })
        }
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
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
