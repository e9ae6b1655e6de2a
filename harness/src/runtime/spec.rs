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
    /// The node runs programs of the user's that live on the host (an exec
    /// server, or a worker's exec adapter), started in this working
    /// directory. Locally that is just the working directory; in Docker the
    /// container also sees the host's programs and this directory, read-only
    /// ([`HOST_VIEW`]).
    pub host_view: Option<PathBuf>,
    /// How long it gets to stop after SIGTERM at teardown before it is
    /// killed, when that is shorter than the run's grace.
    pub stop_grace: Option<std::time::Duration>,
    /// Its program's children leave its process group (PostgreSQL's
    /// backends start sessions of their own): the local runtime signals its
    /// whole process tree, not just its group.
    pub process_tree: bool,
    /// Host path of its clock control file: it is started under the clock
    /// library ([`crate::runtime::clock`]) because a clock fault may hit it.
    pub clock: Option<PathBuf>,
}

impl NodeSpec {
    /// Its program and arguments as one line, for errors: leasehold's own
    /// binary as `leasehold node …`; an argument that is empty or holds a
    /// space or a quote is quoted.
    pub fn command_line(&self) -> String {
        let program = match &self.program {
            NodeProgram::Leasehold => "leasehold node".to_owned(),
            NodeProgram::Host(path) => path.display().to_string(),
        };
        std::iter::once(program)
            .chain(self.args.iter().map(|a| {
                if a.is_empty() || a.contains([' ', '"', '\'', '\t']) {
                    format!("{a:?}")
                } else {
                    a.clone()
                }
            }))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// How long to wait for it to stop, given the run's `grace`.
    pub fn grace(&self, grace: std::time::Duration) -> std::time::Duration {
        self.stop_grace.map_or(grace, |g| g.min(grace))
    }
}

/// The host folders a container of a node with a [host view] sees,
/// read-only, at the same paths: the host's programs and their libraries
/// (Debian merges `/bin`, `/lib` and `/lib64` into `/usr`; each is mounted
/// where it exists, as programs name their loader and interpreters by those
/// paths) and `/opt`. Not `/sbin`, where Docker puts the container's init
/// (`/usr/sbin` is seen through `/usr`); not `/etc`, `/home`, `/root` or
/// `/tmp`: a node has its own data folder to write in, and the user's files
/// are under the working directory.
///
/// [host view]: NodeSpec::host_view
pub const HOST_VIEW: [&str; 5] = ["/usr", "/bin", "/lib", "/lib64", "/opt"];

/// Host files and folders of `/etc` a container of a node with a host view
/// sees too, read-only, where the host has them: the user database, for
/// servers that run as a user of their own or look their user up
/// (PostgreSQL's `initdb` and `postgres` do both); Debian's alternatives,
/// through which `/usr/bin/java` and others are links; and the JDKs'
/// configuration (`/etc/java-N-openjdk`, which each JDK's `conf` and
/// `jvm.cfg` link to).
pub fn host_view_etc() -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = ["/etc/passwd", "/etc/group", "/etc/alternatives"]
        .iter()
        .map(PathBuf::from)
        .collect();
    if let Ok(entries) = std::fs::read_dir("/etc") {
        let mut jdks: Vec<PathBuf> = entries
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("java-"))
            .map(|e| e.path())
            .collect();
        jdks.sort();
        paths.extend(jdks);
    }
    paths.retain(|p| p.exists());
    paths
}

/// Where a container with a host view looks up a program named without a
/// `/`: Docker's default `PATH` for images that set none, less `/sbin`.
pub const CONTAINER_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/bin";

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

/// Where the program of a recipe is, as the node sees it: in a container
/// ([`find_program_in_container`]) or on this host ([`find_program`]).
pub fn find_node_program(
    program: &Program,
    in_container: bool,
    cwd: &Path,
) -> anyhow::Result<NodeProgram> {
    if in_container {
        find_program_in_container(program, cwd)
    } else {
        find_program(program)
    }
}

/// Where the user's program of a recipe is as a container with a host view
/// of `cwd` sees it: a name is looked up on [`CONTAINER_PATH`] (not the
/// controller's `PATH`, whose folders the container may not see); a path is
/// taken from `cwd` and must lie under `cwd` or a [`HOST_VIEW`] folder.
/// Other programs are found as [`find_program`] finds them.
pub fn find_program_in_container(program: &Program, cwd: &Path) -> anyhow::Result<NodeProgram> {
    let Program::User { command, field } = program else {
        return find_program(program);
    };
    let visible = |p: &Path| p.starts_with(cwd) || HOST_VIEW.iter().any(|d| p.starts_with(d));
    if command.contains('/') {
        let path = cwd.join(command);
        if !is_executable(&path) {
            anyhow::bail!("{command} not found ({field}[0]): no such executable");
        }
        if !visible(&path) {
            anyhow::bail!(
                "{command} ({field}[0]) is not visible in a container: a node's container sees \
                 the working directory and the host's {} only",
                HOST_VIEW.join(", ")
            );
        }
        return Ok(NodeProgram::Host(path));
    }
    std::env::split_paths(CONTAINER_PATH)
        .map(|dir| dir.join(command))
        .find(|p| is_executable(p))
        .map(NodeProgram::Host)
        .ok_or_else(|| {
            anyhow::anyhow!(
                "{command} not found ({field}[0]) in the container's PATH {CONTAINER_PATH}: \
                 no such executable"
            )
        })
}

/// Checks the files a node needs besides its program (`(path, package)`,
/// from [`LockSystem::needs`](leasehold_workloads::LockSystem::needs)): a
/// bare name is a program on `PATH` (the container's, [`CONTAINER_PATH`],
/// for a container), a path a file that must exist, in a container within
/// the [`HOST_VIEW`]. A missing one is an error of one line naming it and
/// its Debian package.
pub fn check_needs(needs: &[(PathBuf, &str)], in_container: bool) -> anyhow::Result<()> {
    for (path, package) in needs {
        if path.components().count() == 1 && path.is_relative() {
            let search = if in_container {
                std::ffi::OsString::from(CONTAINER_PATH)
            } else {
                std::env::var_os("PATH").unwrap_or_default()
            };
            if !std::env::split_paths(&search).any(|d| is_executable(&d.join(path))) {
                anyhow::bail!("{} not found: apt-get install {package}", path.display());
            }
            continue;
        }
        if !path.is_file() {
            let name = path
                .file_name()
                .unwrap_or(path.as_os_str())
                .to_string_lossy();
            match path.parent().filter(|p| !p.as_os_str().is_empty()) {
                Some(dir) => anyhow::bail!(
                    "{name} not found in {}: apt-get install {package}",
                    dir.display()
                ),
                None => anyhow::bail!("{name} not found: apt-get install {package}"),
            }
        }
        if in_container && !HOST_VIEW.iter().any(|d| path.starts_with(d)) {
            anyhow::bail!(
                "{} is not visible in a container: a node's container sees the host's {} only",
                path.display(),
                HOST_VIEW.join(", ")
            );
        }
    }
    Ok(())
}

pub(crate) fn is_executable(path: &Path) -> bool {
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
    fn a_containers_program_is_looked_up_where_the_container_sees() {
        let cwd = tempfile::tempdir().unwrap();
        let user = |command: &str| Program::User {
            command: command.to_owned(),
            field: "lock.server.command",
        };
        // A name: on the container's PATH, whatever the controller's is.
        let sh = find_program_in_container(&user("sh"), cwd.path()).unwrap();
        let NodeProgram::Host(sh) = sh else {
            panic!("a host program")
        };
        assert!(HOST_VIEW.iter().any(|d| sh.starts_with(d)), "{sh:?}");
        // A path: from the working directory.
        let script = cwd.path().join("server.sh");
        std::fs::write(&script, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        assert_eq!(
            find_program_in_container(&user("./server.sh"), cwd.path()).unwrap(),
            NodeProgram::Host(cwd.path().join("./server.sh"))
        );
        // A path the container cannot see.
        let elsewhere = tempfile::tempdir().unwrap();
        let hidden = elsewhere.path().join("server.sh");
        std::fs::copy(&script, &hidden).unwrap();
        let err = find_program_in_container(&user(hidden.to_str().unwrap()), cwd.path())
            .unwrap_err()
            .to_string();
        assert!(err.contains("not visible in a container"), "{err}");
        assert!(
            find_program_in_container(&user("no-such-program-here"), cwd.path())
                .unwrap_err()
                .to_string()
                .contains("in the container's PATH")
        );
    }

    #[test]
    fn a_node_gets_the_shorter_of_its_own_grace_and_the_runs() {
        let spec = |stop_grace| NodeSpec {
            name: "lock1".into(),
            role: Role::Lock,
            addr: "127.0.0.1:2379".parse().unwrap(),
            program: NodeProgram::Leasehold,
            args: Vec::new(),
            env: Vec::new(),
            data_dir: None,
            probe: None,
            events_on_stdout: false,
            host_view: None,
            stop_grace,
            process_tree: false,
            clock: None,
        };
        let run = std::time::Duration::from_secs(2);
        let short = std::time::Duration::from_millis(500);
        assert_eq!(spec(None).grace(run), run);
        assert_eq!(spec(Some(short)).grace(run), short);
        assert_eq!(spec(Some(run * 2)).grace(run), run);
        // etcd's members are the ones that need it (leadership hand-over).
        assert_eq!(
            leasehold_workloads::LockSystem::Etcd.stop_grace(),
            Some(short)
        );
    }

    #[test]
    fn a_missing_need_names_its_folder_and_package_and_a_hidden_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let initdb = dir.path().join("initdb");
        let err = check_needs(&[(initdb.clone(), "postgresql")], false)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            format!(
                "initdb not found in {}: apt-get install postgresql",
                dir.path().display()
            )
        );
        std::fs::write(&initdb, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&initdb, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        check_needs(&[(initdb.clone(), "postgresql")], false).unwrap();
        let err = check_needs(&[(initdb, "postgresql")], true)
            .unwrap_err()
            .to_string();
        assert!(err.contains("not visible in a container"), "{err}");
    }

    #[test]
    fn flags_are_set_once() {
        let mut args = vec!["worker".to_owned(), "--seed".to_owned(), "1".to_owned()];
        set_flags(&mut args, &["--incarnation".into(), "1".into()]);
        set_flags(&mut args, &["--incarnation".into(), "2".into()]);
        assert_eq!(args, ["worker", "--seed", "1", "--incarnation", "2"]);
    }
}
