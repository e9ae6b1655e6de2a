//! `exec`: a lock implementation the user brings, as two commands of the
//! config (docs/protocol.md, "exec: bring your own lock").
//!
//! - **Servers**: `lock.server.command`, run once per lock node with the
//!   placeholders of [`PLACEHOLDERS`] replaced for that node ([`recipe`]). The
//!   program is the command's first word, found on `PATH` or as a path; no
//!   Debian package is known for it. Relative paths, of the program and in its
//!   arguments, are taken from the directory leasehold was started in. Without
//!   `lock.server` leasehold starts no lock node: the user runs the service,
//!   and the adapter is given its addresses.
//! - **Readiness**: a TCP connection to the node's port is accepted. It is the
//!   one thing every network service does; leasehold knows nothing else of the
//!   user's protocol.
//! - **Leader**: none known; `target: lock-leader` has nothing to aim at.
//! - **Version**: unknown to leasehold; the summary says it is the user's.
//! - **Client**: the user's adapter (`lock.client.command`) driven over JSON
//!   lines by [`ExecLockClient`](crate::ExecLockClient), started by the worker
//!   inside its node, so a pause of the worker pauses the adapter too, and its
//!   stderr is the worker's node log.
//! - **Fencing token, lease, pauses, partitions**: whatever the user's service
//!   does. The worker records what the adapter answers and the checks judge it.

use std::path::PathBuf;
use std::time::Duration;

use crate::exec::{AdapterLog, ExecConfig, ExecError, ExecLockClient};
use crate::system::{Leader, NodeAddrs, Probe, Program, ServerRecipe};

/// The port of an exec lock node when `lock.server.port` is not given.
pub const PORT: u16 = 7300;

/// The config field that names the server command.
pub const SERVER_FIELD: &str = "lock.server.command";

/// What an exec system's fencing token is.
pub const TOKEN: &str = "whatever the user's service returns as token";

/// The version the summary shows: leasehold cannot ask the user's service.
pub const VERSION: &str = "unknown (the user's service)";

/// The placeholders replaced in each argument of the server command.
pub const PLACEHOLDERS: [&str; 6] = [
    "{name}",
    "{index}",
    "{host}",
    "{port}",
    "{data_dir}",
    "{peers}",
];

/// How the user's lock nodes start: the config's `lock.server`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct ExecServer {
    /// The program and its arguments, placeholders not yet replaced.
    pub command: Vec<String>,
    /// The port each node listens on (with an address of its own).
    pub port: u16,
}

/// The first placeholder-like `{word}` of `arg` that is not one of
/// [`PLACEHOLDERS`], if any.
pub fn unknown_placeholder(arg: &str) -> Option<&str> {
    let mut rest = arg;
    while let Some(open) = rest.find('{') {
        let after = &rest[open..];
        let close = after.find('}')?;
        let word = &after[..=close];
        let plain = word[1..word.len() - 1]
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_');
        if plain && !PLACEHOLDERS.contains(&word) {
            return Some(word);
        }
        rest = &after[close + 1..];
    }
    None
}

/// `arg` with the placeholders replaced for lock node `i` (0-based).
pub fn substitute(arg: &str, i: usize, node: &NodeAddrs) -> String {
    let peers = node
        .peers
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",");
    // One pass, so a value that holds a placeholder's text is left alone.
    let values: [(&str, String); 6] = [
        ("{name}", node.name.clone()),
        ("{index}", i.to_string()),
        ("{host}", node.addr.ip().to_string()),
        ("{port}", node.addr.port().to_string()),
        ("{data_dir}", node.data_dir.clone()),
        ("{peers}", peers),
    ];
    let mut out = String::with_capacity(arg.len());
    let mut rest = arg;
    'outer: while !rest.is_empty() {
        for (key, value) in &values {
            if let Some(tail) = rest.strip_prefix(key) {
                out.push_str(value);
                rest = tail;
                continue 'outer;
            }
        }
        let c = rest.chars().next().expect("not empty");
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// The program of the server command: its first word, as the user wrote it.
pub fn program(server: &ExecServer) -> Program {
    user_program(&server.command, SERVER_FIELD)
}

/// The program of a user's command (`command[0]`), named in errors by the
/// config `field` that gave it.
pub fn user_program(command: &[String], field: &'static str) -> Program {
    Program::User {
        command: command.first().cloned().unwrap_or_default(),
        field,
    }
}

/// How a node of a user's server command starts, lock or storage: the
/// program of `command` (given by `field`), its arguments each passed
/// through `arg` (the placeholders replaced), serving on `port` and probed
/// over TCP, no leader, its stdout its log.
pub fn user_recipe(
    command: &[String],
    field: &'static str,
    port: u16,
    arg: impl Fn(&str) -> String,
) -> ServerRecipe {
    ServerRecipe {
        program: user_program(command, field),
        args: command.iter().skip(1).map(|a| arg(a)).collect(),
        env: Vec::new(),
        port,
        probe: Probe::Tcp,
        leader: Leader::None,
        events_on_stdout: false,
    }
}

/// Lock node `i` (0-based) of `n`: the user's command with the placeholders
/// replaced ([`user_recipe`]).
pub fn recipe(server: &ExecServer, i: usize, _n: usize, node: &NodeAddrs) -> ServerRecipe {
    user_recipe(&server.command, SERVER_FIELD, node.addr.port(), |a| {
        substitute(a, i, node)
    })
}

/// Starts the worker's adapter: `command` in `cwd`, told `lock_nodes`, acting
/// as `node`; `timeout` bounds each op. Its stderr and the client's notes go
/// to the worker's log through `tracing`.
pub async fn client(
    command: Vec<String>,
    cwd: Option<PathBuf>,
    lock_nodes: &[String],
    node: &str,
    timeout: Duration,
) -> Result<ExecLockClient, ExecError> {
    let mut config = ExecConfig::new(command, node, lock_nodes.to_vec(), timeout);
    config.cwd = cwd;
    ExecLockClient::start(config, AdapterLog::tracing()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node() -> NodeAddrs {
        NodeAddrs {
            name: "lock2".into(),
            addr: "10.0.0.12:7300".parse().unwrap(),
            peers: vec![
                "10.0.0.11:7300".parse().unwrap(),
                "10.0.0.12:7300".parse().unwrap(),
            ],
            cluster: Vec::new(),
            data_dir: "/d/{name}".into(),
        }
    }

    #[test]
    fn placeholders_are_replaced_once_each() {
        let n = node();
        assert_eq!(
            substitute("{name}/{index}@{host}:{port}", 1, &n),
            "lock2/1@10.0.0.12:7300"
        );
        assert_eq!(
            substitute("--peers={peers}", 1, &n),
            "--peers=10.0.0.11:7300,10.0.0.12:7300"
        );
        // A value is not scanned again for placeholders.
        assert_eq!(substitute("{data_dir}", 1, &n), "/d/{name}");
        assert_eq!(substitute("{nope} {", 1, &n), "{nope} {");
    }

    #[test]
    fn unknown_placeholders_are_found() {
        assert_eq!(unknown_placeholder("--x={hots}"), Some("{hots}"));
        assert_eq!(unknown_placeholder("{host}:{port}"), None);
        assert_eq!(unknown_placeholder("{\"json\": 1}"), None);
        assert_eq!(unknown_placeholder("{"), None);
    }

    #[test]
    fn the_recipe_is_the_users_command() {
        let server = ExecServer {
            command: vec![
                "python3".into(),
                "s.py".into(),
                "--port".into(),
                "{port}".into(),
            ],
            port: 7300,
        };
        let r = recipe(&server, 1, 2, &node());
        assert_eq!(
            r.program,
            Program::User {
                command: "python3".into(),
                field: SERVER_FIELD
            }
        );
        assert_eq!(r.args, ["s.py", "--port", "7300"]);
        assert_eq!(r.probe, Probe::Tcp);
        assert!(!r.events_on_stdout);
    }
}
