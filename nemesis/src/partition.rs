//! The partition mechanism: drop rules in each receiving node's network
//! namespace, in one nftables table that leasehold owns.
//!
//! Why this shape:
//! - **Receiving side, by source address.** A [`Grudge`] says whose packets each
//!   node drops, so each node gets one rule, `ip saddr { … } drop`, in its own
//!   namespace. Nothing is installed on the host or in a shared bridge, so
//!   one-way partitions come for free and the host's own firewall is untouched.
//! - **One table, replaced atomically.** Everything lives in `table inet
//!   leasehold`; a change is one `nft -f -` transaction that creates the table if
//!   missing, deletes it and recreates it. The kernel applies the transaction as
//!   a whole, so a node never runs with half a ruleset, and healing is just
//!   deleting the table — it cannot leave stray rules behind, even ones from a
//!   controller that was killed.
//! - **Priority -300 on the input hook**, before conntrack (-200): packets of
//!   established connections are dropped too, so a partition really cuts the
//!   long-lived TCP connections that lock clients keep open, instead of only
//!   refusing new ones.
//! - **From the host, with `nft` started inside the node's namespace** (setns
//!   between fork and exec, as `nsenter --net=<path> nft` would): the node's processes
//!   need no privileges nor tools, and the same code serves local namespaces
//!   (`/run/netns/…`) and containers (`/proc/<pid>/ns/net`).
//! - **All nodes in parallel**, so the time between the first and the last node
//!   being cut — the moment a partition is only half in place — stays at one
//!   `nft` run.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::NemesisError;
use crate::node::NodeFacts;
use crate::topology::Grudge;

/// The nftables table (family `inet`) that leasehold owns in each namespace.
pub const TABLE: &str = "leasehold";

/// Makes every node of `nodes` drop exactly the packets `grudge` says.
///
/// Each node named in the grudge with a non-empty drop set gets its table
/// (replacing any previous one); every other node of `nodes` that has a network
/// namespace gets its table removed, so applying a grudge replaces whatever
/// partition was in force among `nodes`. Nodes are changed in parallel.
///
/// Everything is checked before anything is changed: a grudge naming a node
/// missing from `nodes`, a node with drops but no network namespace, or an
/// address without an IP is an error and touches no namespace. When `nft`
/// fails for some nodes the others are still changed; the error names the first
/// failing node (in the order of `nodes`) and quotes nft's stderr.
///
/// Returns when every `nft` has exited. The rules are in force from nft's
/// commit, a little earlier: when nft closes its netlink socket after a commit
/// that removed anything, the kernel waits for an RCU grace period (it flushes
/// nf_tables' deferred destruction), roughly 10 ms, before nft can exit. So
/// the measured latency is an upper bound.
pub fn apply(grudge: &Grudge, nodes: &[NodeFacts]) -> Result<(), NemesisError> {
    let jobs = plan(grudge, nodes)?;
    run_all(&jobs)
}

/// Removes leasehold's table from every node of `nodes` that has a network
/// namespace, in parallel. Idempotent: a namespace without the table is fine.
pub fn heal(nodes: &[NodeFacts]) -> Result<(), NemesisError> {
    let jobs: Vec<Job> = nodes
        .iter()
        .filter_map(|n| {
            let netns = n.netns.as_deref()?;
            Some(Job {
                node: &n.name,
                netns,
                script: heal_script(),
            })
        })
        .collect();
    run_all(&jobs)
}

/// The IP a node's packets come from: the ip part of [`NodeFacts::addr`]
/// (`ip:port`, `[v6]:port`, or a bare ip).
pub fn node_ip(node: &NodeFacts) -> Result<IpAddr, NemesisError> {
    let ip = node
        .addr
        .parse::<SocketAddr>()
        .map(|sa| sa.ip())
        .or_else(|_| node.addr.parse::<IpAddr>())
        .ok()
        // 0.0.0.0 / :: is where a node listens, not where its packets come from.
        .filter(|ip| !ip.is_unspecified());
    ip.ok_or_else(|| NemesisError::BadAddr {
        node: node.name.clone(),
        addr: node.addr.clone(),
    })
}

/// One `nft -f -` run in one node's namespace.
struct Job<'a> {
    node: &'a str,
    netns: &'a Path,
    script: String,
}

/// The packets one node drops: the source addresses of the nodes it holds a
/// grudge against. Empty: it drops nothing, and its table is removed.
pub type Drops = BTreeSet<IpAddr>;

/// What `grudge` asks of each node of `nodes`, as data: the addresses each one
/// drops, empty for the nodes the grudge leaves alone, so that putting the whole
/// map in force replaces any partition among `nodes`.
///
/// Checks before anything is changed: a grudge naming a node missing from
/// `nodes`, or a node whose address has no IP, is an error.
///
/// ```
/// use leasehold_nemesis::{NodeFacts, Role, partition};
///
/// let node = |name: &str, addr: &str| NodeFacts {
///     name: name.into(),
///     role: Role::Worker,
///     pids: vec![],
///     pgid: None,
///     netns: None,
///     addr: addr.into(),
/// };
/// let nodes = [node("a", "10.0.0.1:1"), node("b", "10.0.0.2:0")];
/// let grudge = [("a".to_owned(), ["b".to_owned()].into())].into();
/// let drops = partition::drops(&grudge, &nodes).unwrap();
/// assert_eq!(drops["a"].iter().map(|ip| ip.to_string()).collect::<Vec<_>>(), ["10.0.0.2"]);
/// assert!(drops["b"].is_empty(), "b drops nothing: its table goes");
/// ```
pub fn drops(
    grudge: &Grudge,
    nodes: &[NodeFacts],
) -> Result<BTreeMap<String, Drops>, NemesisError> {
    let by_name: BTreeMap<&str, &NodeFacts> = nodes.iter().map(|n| (n.name.as_str(), n)).collect();
    let lookup = |name: &str| {
        by_name
            .get(name)
            .copied()
            .ok_or_else(|| NemesisError::UnknownNode(name.to_owned()))
    };
    let mut out: BTreeMap<String, Drops> = nodes
        .iter()
        .map(|n| (n.name.clone(), Drops::new()))
        .collect();
    for (name, dropped) in grudge {
        lookup(name)?;
        let ips = out.get_mut(name.as_str()).expect("every node has an entry");
        for d in dropped {
            ips.insert(node_ip(lookup(d)?)?);
        }
    }
    Ok(out)
}

/// One node's drops and the namespace they go into.
#[derive(Clone, Copy, Debug)]
pub struct NsDrops<'a> {
    /// The node's name (`w1`), for errors.
    pub node: &'a str,
    /// The node's network namespace (`/run/netns/…`, `/proc/<pid>/ns/net`).
    pub netns: &'a Path,
    /// The source addresses it drops; empty removes leasehold's table instead.
    pub drops: &'a Drops,
}

/// Puts each node's drops in force inside its namespace, replacing leasehold's
/// table there (empty drops remove it), all nodes in parallel.
///
/// Waits for every node even when some fail, so that a failure on one never
/// leaves another half-changed; the error names the first failing node (in
/// the order of `rules`) and quotes nft's stderr. Blocks the calling thread
/// until every `nft` has exited (see [`apply`] on what that means for latency).
pub fn set_drops(rules: &[NsDrops<'_>]) -> Result<(), NemesisError> {
    let jobs: Vec<Job<'_>> = rules
        .iter()
        .map(|r| Job {
            node: r.node,
            netns: r.netns,
            script: if r.drops.is_empty() {
                heal_script()
            } else {
                table_script(r.drops)
            },
        })
        .collect();
    run_all(&jobs)
}

fn plan<'a>(grudge: &Grudge, nodes: &'a [NodeFacts]) -> Result<Vec<Job<'a>>, NemesisError> {
    let drops_of = drops(grudge, nodes)?;
    let mut jobs = Vec::new();
    for node in nodes {
        let script = match drops_of.get(node.name.as_str()) {
            Some(ips) if !ips.is_empty() => Some(table_script(ips)),
            _ => None,
        };
        match (&node.netns, script) {
            (Some(netns), script) => jobs.push(Job {
                node: &node.name,
                netns,
                script: script.unwrap_or_else(heal_script),
            }),
            (None, Some(_)) => {
                return Err(NemesisError::NoNetns {
                    node: node.name.clone(),
                });
            }
            // No namespace and nothing to drop: nothing could have been set.
            (None, None) => {}
        }
    }
    Ok(jobs)
}

/// `table …` before `delete table …` makes the delete succeed whether or not
/// the table exists, inside the same transaction.
fn heal_script() -> String {
    format!("table inet {TABLE}\ndelete table inet {TABLE}\n")
}

fn table_script(ips: &BTreeSet<IpAddr>) -> String {
    let list = |v6: bool| {
        ips.iter()
            .filter(|ip| ip.is_ipv6() == v6)
            .map(IpAddr::to_string)
            .collect::<Vec<_>>()
    };
    let mut rules = String::new();
    for (family, v6) in [("ip", false), ("ip6", true)] {
        let l = list(v6);
        // nft rejects an empty anonymous set.
        if !l.is_empty() {
            rules += &format!("    {family} saddr {{ {} }} drop\n", l.join(", "));
        }
    }
    format!(
        "{heal}table inet {TABLE} {{\n  chain input {{\n    \
         type filter hook input priority -300; policy accept;\n{rules}  }}\n}}\n",
        heal = heal_script(),
    )
}

/// Runs every job on its own thread; waits for all of them even when some fail,
/// so that a failure on one node never leaves another half-changed.
fn run_all(jobs: &[Job<'_>]) -> Result<(), NemesisError> {
    let results: Vec<Result<(), NemesisError>> = std::thread::scope(|s| {
        let handles: Vec<_> = jobs.iter().map(|j| s.spawn(|| run_nft(j))).collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    let mut first = None;
    for err in results.into_iter().filter_map(Result::err) {
        if first.is_none() {
            first = Some(err);
        } else {
            tracing::warn!(error = %err, "partition: another node failed too");
        }
    }
    first.map_or(Ok(()), Err)
}

fn run_nft(job: &Job<'_>) -> Result<(), NemesisError> {
    let netns = job.netns.display().to_string();
    let exec_err = |source| NemesisError::Exec {
        node: job.node.to_owned(),
        netns: netns.clone(),
        source,
    };
    let ns = std::fs::File::open(job.netns).map_err(exec_err)?;
    let mut cmd = Command::new("nft");
    cmd.args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // SAFETY: between fork and exec the closure makes one system call (setns)
    // and allocates nothing. Entering the namespace here rather than through
    // `nsenter` saves a program start per node on the fault's critical path.
    unsafe {
        cmd.pre_exec(move || {
            nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET)?;
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(exec_err)?;
    // nft reads the whole script before it writes anything, so writing it all
    // before reading stderr cannot deadlock. A write error (nft died early) shows
    // in its exit status and stderr, which say more.
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(job.script.as_bytes());
    }
    let out = child.wait_with_output().map_err(exec_err)?;
    if out.status.success() {
        Ok(())
    } else {
        Err(NemesisError::Nft {
            node: job.node.to_owned(),
            netns,
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::Role;
    use std::path::PathBuf;

    fn node(name: &str, addr: &str, netns: Option<&str>) -> NodeFacts {
        NodeFacts {
            name: name.into(),
            role: Role::Lock,
            pids: vec![],
            pgid: None,
            netns: netns.map(PathBuf::from),
            addr: addr.into(),
        }
    }

    fn grudge(pairs: &[(&str, &[&str])]) -> Grudge {
        pairs
            .iter()
            .map(|(a, bs)| (a.to_string(), bs.iter().map(|b| b.to_string()).collect()))
            .collect()
    }

    #[test]
    fn node_ip_takes_the_ip_part_of_the_address() {
        let ip = |addr| node_ip(&node("n", addr, None));
        assert_eq!(ip("10.0.0.1:2379").unwrap().to_string(), "10.0.0.1");
        assert_eq!(ip("10.0.0.2:0").unwrap().to_string(), "10.0.0.2");
        assert_eq!(ip("10.0.0.3").unwrap().to_string(), "10.0.0.3");
        assert_eq!(ip("[fd00::1]:80").unwrap().to_string(), "fd00::1");
        for bad in ["", "localhost:80", "0.0.0.0:80", "[::]:1"] {
            assert!(
                matches!(ip(bad), Err(NemesisError::BadAddr { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_table_script_replaces_the_table_in_one_transaction() {
        let ips: BTreeSet<IpAddr> = ["10.0.0.2", "10.0.0.1", "fd00::1"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let script = table_script(&ips);
        assert_eq!(
            script,
            "table inet leasehold\n\
             delete table inet leasehold\n\
             table inet leasehold {\n  chain input {\n    \
             type filter hook input priority -300; policy accept;\n    \
             ip saddr { 10.0.0.1, 10.0.0.2 } drop\n    \
             ip6 saddr { fd00::1 } drop\n  }\n}\n"
        );
    }

    #[test]
    fn plan_sets_tables_for_drops_and_heals_the_rest() {
        let nodes = [
            node("a", "10.0.0.1:1", Some("/ns/a")),
            node("b", "10.0.0.2:1", Some("/ns/b")),
            node("c", "10.0.0.3:0", None),
        ];
        let g = grudge(&[("a", &["b", "c"])]);
        let jobs = plan(&g, &nodes).unwrap();
        assert_eq!(jobs.len(), 2, "c has no namespace and no drops: skipped");
        assert_eq!(jobs[0].node, "a");
        assert!(
            jobs[0]
                .script
                .contains("ip saddr { 10.0.0.2, 10.0.0.3 } drop")
        );
        assert_eq!(jobs[1].node, "b");
        assert_eq!(jobs[1].script, heal_script());
    }

    #[test]
    fn plan_refuses_bad_grudges_before_touching_anything() {
        let nodes = [
            node("a", "10.0.0.1:1", Some("/ns/a")),
            node("c", "10.0.0.3:0", None),
        ];
        let err = |g: Grudge| plan(&g, &nodes).err().expect("an error");
        assert!(matches!(
            err(grudge(&[("c", &["a"])])),
            NemesisError::NoNetns { node } if node == "c"
        ));
        assert!(matches!(
            err(grudge(&[("a", &["zz"])])),
            NemesisError::UnknownNode(n) if n == "zz"
        ));
        assert!(matches!(
            err(grudge(&[("zz", &["a"])])),
            NemesisError::UnknownNode(n) if n == "zz"
        ));
        // Applying is refused the same way, with a message naming the node.
        let e = apply(&grudge(&[("c", &["a"])]), &nodes).unwrap_err();
        assert!(e.to_string().contains("node c"), "{e}");
    }
}
