//! A private network for a run's nodes: one network namespace per node, joined by
//! a bridge that lives in a hub namespace of its own.
//!
//! The bridge sits in its own namespace rather than the host's so the host's
//! firewall (a FORWARD policy of DROP, as Docker sets it) never sees the nodes'
//! traffic, and so leasehold never edits host rules. The host gets one veth into
//! the hub, with the subnet's `.1`, so the controller reaches every node.
//!
//! Names carry the run id: namespaces `lh-<id>-<node>` and `lh-<id>-hub`, the
//! host interface `lh<id>h`.

use std::path::PathBuf;

use crate::config::Subnet;
use crate::runtime::subnet::{ip, reserve_subnet};

/// The run's network.
#[derive(Debug)]
pub struct NetnsNet {
    /// The /24 the nodes' addresses are on; the host's interface has its `.1`.
    pub subnet: Subnet,
    hub: String,
    namespaces: Vec<String>,
    host_if: String,
    destroyed: bool,
}

/// Whether this process runs as root, which namespaces and partitions need.
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// The name of node `node`'s namespace in run `run_id`: `lh-<run_id>-<node>`.
pub fn ns_name(run_id: &str, node: &str) -> String {
    format!("lh-{run_id}-{node}")
}

/// Where `ip netns` mounts a namespace: a process joins it by opening this.
pub fn ns_path(ns: &str) -> PathBuf {
    PathBuf::from("/run/netns").join(ns)
}

impl NetnsNet {
    /// Creates the namespaces, the hub bridge and the host's interface, and
    /// gives node i of `nodes` the address `subnet.<octet>`. On failure, what
    /// was made is removed again.
    pub fn create(
        run_id: &str,
        subnet: Option<Subnet>,
        nodes: &[(String, u8)],
    ) -> anyhow::Result<NetnsNet> {
        let lease = reserve_subnet(subnet)?;
        let mut net = NetnsNet {
            subnet: lease.subnet,
            hub: ns_name(run_id, "hub"),
            namespaces: Vec::new(),
            host_if: format!("lh{run_id}h"),
            destroyed: false,
        };
        if let Err(e) = net.build(run_id, nodes) {
            net.destroy();
            return Err(e);
        }
        Ok(net)
    }

    fn build(&mut self, run_id: &str, nodes: &[(String, u8)]) -> anyhow::Result<()> {
        let hub = self.hub.clone();
        ip(&["netns", "add", &hub])?;
        self.namespaces.push(hub.clone());
        ip(&["-n", &hub, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &hub, "link", "set", "br0", "up"])?;
        ip(&["-n", &hub, "link", "set", "lo", "up"])?;
        // The host's leg.
        ip(&[
            "link",
            "add",
            &self.host_if,
            "type",
            "veth",
            "peer",
            "name",
            "host",
            "netns",
            &hub,
        ])?;
        ip(&["-n", &hub, "link", "set", "host", "master", "br0", "up"])?;
        let host_addr = format!("{}/24", self.subnet.host(1));
        ip(&["addr", "add", &host_addr, "dev", &self.host_if])?;
        ip(&["link", "set", &self.host_if, "up"])?;
        for (name, octet) in nodes {
            let ns = ns_name(run_id, name);
            ip(&["netns", "add", &ns])?;
            self.namespaces.push(ns.clone());
            let leg = format!("v-{name}");
            ip(&[
                "-n", &ns, "link", "add", "eth0", "type", "veth", "peer", "name", &leg, "netns",
                &hub,
            ])?;
            ip(&["-n", &hub, "link", "set", &leg, "master", "br0", "up"])?;
            let addr = format!("{}/24", self.subnet.host(*octet));
            ip(&["-n", &ns, "addr", "add", &addr, "dev", "eth0"])?;
            ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        }
        Ok(())
    }

    /// Removes every namespace (their interfaces go with them) and the host's
    /// interface. Safe to call twice.
    pub fn destroy(&mut self) {
        if self.destroyed {
            return;
        }
        self.destroyed = true;
        for ns in self.namespaces.drain(..).rev() {
            if let Err(e) = delete_namespace(&ns) {
                tracing::warn!(namespace = %ns, error = %e, "cannot delete namespace");
            }
        }
        // Deleting the hub deletes the host's veth with its peer; this is for the
        // case where the hub was never made.
        let _ = delete_interface(&self.host_if);
    }
}

impl Drop for NetnsNet {
    fn drop(&mut self) {
        self.destroy();
    }
}

/// Deletes the network namespace named `ns` (`ip netns delete`).
pub fn delete_namespace(ns: &str) -> anyhow::Result<()> {
    ip(&["netns", "delete", ns]).map(drop)
}

/// Deletes the host interface `name` if it exists; one that does not is fine.
pub fn delete_interface(name: &str) -> anyhow::Result<()> {
    let exists = ip(&["link", "show", name]).is_ok();
    if exists {
        ip(&["link", "delete", name])?;
    }
    Ok(())
}

fn run_id_of_ns(ns: &str) -> Option<String> {
    let rest = ns.strip_prefix("lh-")?;
    let (id, _) = rest.split_once('-')?;
    (id.len() == 8 && id.chars().all(|c| c.is_ascii_hexdigit())).then(|| id.to_owned())
}

/// leasehold namespaces on this machine, with their run ids.
pub fn leftover_namespaces() -> Vec<(String, String)> {
    let Ok(out) = ip(&["netns", "list"]) else {
        return Vec::new();
    };
    out.lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter_map(|ns| run_id_of_ns(ns).map(|id| (id, ns.to_owned())))
        .collect()
}

/// leasehold host interfaces (`lh<id>h`), with their run ids.
pub fn leftover_interfaces() -> Vec<(String, String)> {
    let Ok(out) = ip(&["-o", "link", "show"]) else {
        return Vec::new();
    };
    out.lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|name| name.split('@').next().unwrap_or(name))
        .filter_map(|name| {
            let id = name.strip_prefix("lh")?.strip_suffix('h')?;
            (id.len() == 8 && id.chars().all(|c| c.is_ascii_hexdigit()))
                .then(|| (id.to_owned(), name.to_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_are_read_back_from_namespace_names() {
        assert_eq!(run_id_of_ns("lh-0badcafe-w1").as_deref(), Some("0badcafe"));
        assert_eq!(run_id_of_ns("lh-0badcafe-hub").as_deref(), Some("0badcafe"));
        assert_eq!(run_id_of_ns("lh-nothex00-w1"), None);
        assert_eq!(run_id_of_ns("other"), None);
    }
}
