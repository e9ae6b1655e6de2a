//! `leasehold node postgres`: one PostgreSQL cluster of the run's own, in the
//! node's data folder.
//!
//! It runs `initdb` once (a restarted node keeps its cluster), lets clients of
//! the run's network in (`host all all 0.0.0.0/0 trust`: a test cluster
//! reached only on the run's own addresses), then starts `postgres` as its
//! child and waits for it, turning SIGTERM, SIGINT and SIGHUP into a fast
//! shutdown (SIGINT to postgres; its SIGTERM would wait for every client to
//! leave), and removes the cluster once the server stopped so (a run keeps
//! its history, not some 40 MB of database files; a killed node's cluster
//! stays for its restart). It stays single-threaded: no async runtime, so that signals can be
//! taken with `sigwait`.
//!
//! PostgreSQL refuses to run as root. As root, `initdb` and `postgres` run as
//! the given user, which then owns the data folder; when that user cannot
//! reach the folder (a run folder under a private temporary directory), they
//! run in a mount namespace of their own in which the node's data folder is
//! mounted on `/tmp`. As root they also get an IPC namespace of their own, so
//! that not even a killed server leaves a System V segment behind (inside a
//! container, which has one already, that step is skipped).

use std::net::SocketAddr;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::os::unix::process::{CommandExt as _, ExitStatusExt as _};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::Context;
use clap::Args;
use nix::sys::signal::{SigSet, SigmaskHow, Signal, kill, sigprocmask};
use nix::unistd::{Gid, Pid, Uid, User};

use super::Common;

#[derive(Debug, Args)]
pub(super) struct PostgresArgs {
    #[command(flatten)]
    common: Common,
    /// `ip:port` to listen on.
    #[arg(long)]
    listen: SocketAddr,
    /// The node's data folder; the cluster is its `pg` folder.
    #[arg(long)]
    data_dir: PathBuf,
    /// Where `initdb` and `postgres` are.
    #[arg(long)]
    bin_dir: PathBuf,
    /// The user they run as when this runs as root.
    #[arg(long)]
    user: String,
    /// A server setting, `name=value` (`postgres -c`).
    #[arg(long = "set")]
    settings: Vec<String>,
}

/// Where the data folder appears to the server when it is mounted there.
const MOUNTED_AT: &str = "/tmp";

/// The signals a stop arrives as.
const STOPS: [Signal; 3] = [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP];

/// How the server's processes are set apart, decided before any fork.
#[derive(Clone, Copy)]
struct Isolation {
    /// Run as this user (as root).
    user: Option<(Uid, Gid)>,
    /// Mount the data folder on [`MOUNTED_AT`] in a mount namespace of its own.
    mount: bool,
}

pub(super) fn run(mut a: PostgresArgs) -> anyhow::Result<ExitCode> {
    let _ = &a.common;
    // The server takes its socket folder from the cluster's folder, where it
    // has changed directory to: a relative path would point elsewhere.
    a.data_dir = std::path::absolute(&a.data_dir)
        .with_context(|| format!("the data folder {}", a.data_dir.display()))?;
    let user = if nix::unistd::geteuid().is_root() {
        let u = User::from_name(&a.user)
            .with_context(|| format!("look up the user {}", a.user))?
            .with_context(|| {
                format!(
                    "no user {}: PostgreSQL refuses to run as root and runs as that user \
                     (Debian's postgresql package creates it)",
                    a.user
                )
            })?;
        Some((u.uid, u.gid))
    } else {
        None
    };
    let cluster = a.data_dir.join("pg");
    std::fs::create_dir_all(&cluster).with_context(|| format!("create {}", cluster.display()))?;
    // initdb wants the cluster's folder private.
    std::fs::set_permissions(&cluster, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("chmod {}", cluster.display()))?;
    if let Some((uid, gid)) = user {
        for dir in [&a.data_dir, &cluster] {
            nix::unistd::chown(dir.as_path(), Some(uid), Some(gid))
                .with_context(|| format!("chown {} to {}", dir.display(), a.user))?;
        }
    }
    let mount = match user {
        Some((uid, gid)) => !reachable(&a.data_dir, uid, gid),
        None => false,
    };
    let isolation = Isolation { user, mount };
    // The cluster's path as the server sees it.
    let seen = if mount {
        Path::new(MOUNTED_AT).join("pg")
    } else {
        cluster.clone()
    };
    if !cluster.join("PG_VERSION").exists() {
        let mut initdb = Command::new(a.bin_dir.join("initdb"));
        initdb
            .arg("-D")
            .arg(&seen)
            .args(["--username", leasehold_workloads::system::postgres::ROLE])
            .args(["--auth", "trust", "--no-sync", "--no-instructions"])
            .args(["--encoding", "UTF8", "--locale", "C"])
            // Else initdb reads every file under /usr/share/zoneinfo to find
            // the one that matches the local time (5 s in a container, which
            // has no /etc/localtime); the server logs in UTC.
            .env("TZ", "UTC");
        isolate(&mut initdb, isolation, &a.data_dir);
        let status = initdb
            .status()
            .with_context(|| format!("run {}", a.bin_dir.join("initdb").display()))?;
        anyhow::ensure!(status.success(), "initdb failed: {status}");
        let hba = cluster.join("pg_hba.conf");
        let mut text =
            std::fs::read_to_string(&hba).with_context(|| format!("read {}", hba.display()))?;
        text.push_str("\n# leasehold: the run's own network\nhost all all 0.0.0.0/0 trust\n");
        std::fs::write(&hba, text).with_context(|| format!("write {}", hba.display()))?;
    }
    let mut postgres = Command::new(a.bin_dir.join("postgres"));
    postgres
        .arg("-D")
        .arg(&seen)
        .arg("-k")
        .arg(&seen)
        .args(["-p", &a.listen.port().to_string()]);
    for s in &a.settings {
        postgres.args(["-c", s]);
    }
    // Blocked before the fork, so that no stop is lost between the fork and
    // the wait; the child unblocks them.
    let mut blocked = SigSet::empty();
    for s in STOPS {
        blocked.add(s);
    }
    blocked.add(Signal::SIGCHLD);
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&blocked), None).context("block signals")?;
    isolate(&mut postgres, isolation, &a.data_dir);
    // Orphans of the server (its backends, when the postmaster is killed)
    // come to us to be reaped, as the machine's init may never reap them.
    nix::sys::prctl::set_child_subreaper(true).context("become a subreaper")?;
    let child = postgres
        .spawn()
        .with_context(|| format!("start {}", a.bin_dir.join("postgres").display()))?;
    let pid = Pid::from_raw(child.id() as i32);
    let mut stopping = false;
    let status = loop {
        if let Some(status) = reap(pid)? {
            break status;
        }
        let signal = blocked.wait().context("wait for a signal")?;
        if STOPS.contains(&signal) && !stopping {
            stopping = true;
            // Fast shutdown: roll back, disconnect, stop.
            let _ = kill(pid, Signal::SIGINT);
        }
    };
    reap_orphans();
    if stopping {
        // The run is over: its cluster (some 40 MB) goes; the server's log
        // is the node's log.
        let _ = std::fs::remove_dir_all(&cluster);
    }
    Ok(exit_code(status, stopping))
}

/// Reaps whichever children have exited; the exit of `server`, once it has.
fn reap(server: Pid) -> anyhow::Result<Option<std::process::ExitStatus>> {
    use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(p, code)) if p == server => {
                return Ok(Some(std::process::ExitStatus::from_raw(code << 8)));
            }
            Ok(WaitStatus::Signaled(p, s, _)) if p == server => {
                return Ok(Some(std::process::ExitStatus::from_raw(s as i32)));
            }
            Ok(WaitStatus::StillAlive) => return Ok(None),
            Ok(_) => {}
            Err(nix::Error::ECHILD) => anyhow::bail!("postgres is not our child"),
            Err(e) => return Err(e).context("waitpid"),
        }
    }
}

/// Once the server is gone: ends and reaps every child left (backends of a
/// killed postmaster), so none outlives the node.
fn reap_orphans() {
    let me = std::process::id() as i32;
    for pid in crate::runtime::local::process_tree(me).into_iter().skip(1) {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
    while nix::sys::wait::waitpid(None, None).is_ok() {}
}

/// The node's exit: 0 when postgres stopped because it was told to, its own
/// code otherwise (128 + n for a signal, as a shell says it).
fn exit_code(status: std::process::ExitStatus, stopping: bool) -> ExitCode {
    if stopping && status.code().is_some() {
        return ExitCode::SUCCESS;
    }
    match (status.code(), status.signal()) {
        (Some(c), _) => ExitCode::from(u8::try_from(c).unwrap_or(1)),
        (None, Some(s)) => ExitCode::from(u8::try_from(128 + s).unwrap_or(1)),
        (None, None) => ExitCode::FAILURE,
    }
}

/// Whether `uid` (with group `gid`) may walk down to `dir`: every folder
/// above it lets it search.
fn reachable(dir: &Path, uid: Uid, gid: Gid) -> bool {
    let Ok(dir) = dir.canonicalize() else {
        return false;
    };
    dir.ancestors().skip(1).all(|d| {
        std::fs::metadata(d).is_ok_and(|m| {
            let mode = m.permissions().mode();
            mode & 0o001 != 0
                || (m.uid() == uid.as_raw() && mode & 0o100 != 0)
                || (m.gid() == gid.as_raw() && mode & 0o010 != 0)
        })
    })
}

/// Sets up `cmd`'s child between fork and exec: signals unblocked, the
/// namespaces, the user, and death with this launcher.
fn isolate(cmd: &mut Command, isolation: Isolation, data_dir: &Path) {
    let data_dir = data_dir.to_owned();
    // SAFETY: the closure makes system calls only; the one allocation the
    // mount may make (a path over 1 KiB) happens in a child that then execs
    // or exits.
    unsafe {
        cmd.pre_exec(move || {
            sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)?;
            if let Some((uid, gid)) = isolation.user {
                use nix::sched::{CloneFlags, unshare};
                // A container has an IPC namespace of its own already, and
                // no right to make another.
                match unshare(CloneFlags::CLONE_NEWIPC) {
                    Ok(()) | Err(nix::Error::EPERM) => {}
                    Err(e) => return Err(e.into()),
                }
                if isolation.mount {
                    use nix::mount::{MsFlags, mount};
                    unshare(CloneFlags::CLONE_NEWNS)?;
                    mount(
                        None::<&str>,
                        "/",
                        None::<&str>,
                        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
                        None::<&str>,
                    )?;
                    mount(
                        Some(data_dir.as_path()),
                        MOUNTED_AT,
                        None::<&str>,
                        MsFlags::MS_BIND,
                        None::<&str>,
                    )?;
                }
                nix::unistd::setgroups(&[gid])?;
                nix::unistd::setgid(gid)?;
                nix::unistd::setuid(uid)?;
            }
            // After setuid, which clears it: if this launcher dies, so does
            // the server.
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)?;
            Ok(())
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_under_a_private_one_is_not_reachable_by_others() {
        let top = tempfile::tempdir().unwrap();
        let data = top.path().join("run").join("lock1");
        std::fs::create_dir_all(&data).unwrap();
        let other = (Uid::from_raw(54321), Gid::from_raw(54321));
        std::fs::set_permissions(top.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        assert!(!reachable(&data, other.0, other.1));
        std::fs::set_permissions(top.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        // Every folder above the temporary one lets others search too.
        let above_ok = top
            .path()
            .ancestors()
            .skip(1)
            .all(|d| std::fs::metadata(d).unwrap().permissions().mode() & 0o001 != 0);
        assert_eq!(reachable(&data, other.0, other.1), above_ok);
    }

    #[test]
    fn a_stop_asked_for_is_a_clean_exit_and_a_crash_is_not() {
        use std::process::ExitStatus;
        let exited = |code: i32| ExitStatus::from_raw(code << 8);
        let signalled = |sig: i32| ExitStatus::from_raw(sig);
        assert_eq!(exit_code(exited(0), true), ExitCode::SUCCESS);
        assert_eq!(exit_code(exited(1), false), ExitCode::from(1));
        assert_eq!(exit_code(signalled(9), false), ExitCode::from(137));
        assert_eq!(exit_code(signalled(9), true), ExitCode::from(137));
    }
}
