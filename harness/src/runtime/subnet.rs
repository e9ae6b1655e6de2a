//! The run's subnet: a /24 that no interface of this machine uses, picked
//! under a machine-wide lock. Both runtimes put their nodes on one.

use std::process::Command;

use anyhow::{Context, bail};

use crate::config::Subnet;

/// Runs `ip` (iproute2) and returns its stdout.
pub fn ip(args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .context("cannot run `ip` (install iproute2)")?;
    if !out.status.success() {
        bail!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Third octets of the `10.77.N.0/24` subnets some interface already uses.
fn subnets_in_use() -> anyhow::Result<Vec<Subnet>> {
    let out = ip(&["-o", "-4", "addr", "show"])?;
    Ok(out
        .split_whitespace()
        .filter_map(|w| w.split_once('/').map(|(a, _)| a))
        .filter_map(|a| a.parse::<std::net::Ipv4Addr>().ok())
        .map(|a| {
            let [x, y, z, _] = a.octets();
            Subnet([x, y, z])
        })
        .collect())
}

/// A subnet chosen for a run, with a machine-wide lock held until the run's
/// network exists, so two runs starting at once cannot pick the same one.
pub struct SubnetLease {
    /// The /24 picked.
    pub subnet: Subnet,
    _lock: nix::fcntl::Flock<std::fs::File>,
}

/// Picks a /24 no interface of this machine uses (or checks the one asked
/// for). Keep the lease until an interface has an address in the subnet.
pub fn reserve_subnet(requested: Option<Subnet>) -> anyhow::Result<SubnetLease> {
    let lock_path = crate::machine::state_dir().join("net.lock");
    std::fs::create_dir_all(lock_path.parent().expect("has a parent"))?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .with_context(|| format!("open {}", lock_path.display()))?;
    let lock = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| e)
        .context("lock the subnet allocation")?;
    let used = subnets_in_use()?;
    let subnet = match requested {
        Some(s) if used.contains(&s) => bail!("subnet {s} is already in use on this machine"),
        Some(s) => s,
        None => (0..=255u8)
            .map(|n| Subnet([10, 77, n]))
            .find(|s| !used.contains(s))
            .context("no free 10.77.N.0/24 subnet")?,
    };
    Ok(SubnetLease {
        subnet,
        _lock: lock,
    })
}
