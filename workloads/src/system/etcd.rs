//! etcd 3.4 (Debian `etcd-server`): one `etcd` member per lock node, 1 or 3
//! (any n) forming one Raft cluster started by the run; the client is
//! [`EtcdLockClient`], the Lock API through etcd's v3 JSON gateway (why the
//! gateway and not the `etcd-client` crate: the module doc of
//! `workloads/src/etcd.rs`).
//!
//! - **Fencing token**: the create revision of the lock key. `lock/lock`
//!   creates `<lock>/<lease id>` on the holder's lease; every later holder's
//!   key is created at a larger revision of the cluster's one revision
//!   counter, which Raft keeps across restarts and leader changes.
//! - **Lease**: an etcd lease of the asked TTL in whole seconds, rounded up,
//!   and never below etcd's minimum TTL (1.5 × the election timeout: 1 s
//!   here); etcd checks expiry every 500 ms, so a lease ends up to half a
//!   second late. A renew is one keep-alive, which restarts the granted TTL.
//!   Runs should ask for `lease: 2s` or more.
//! - **A pause of the holder**: etcd knows nothing of it. Its lease expires,
//!   etcd deletes its key, the next waiter holds the lock with a larger
//!   revision, and the resumed holder writes with its old one: only fenced
//!   storage stops it.
//! - **A pause of a lock node**: clients whose requests went to it time out
//!   (`info`) and move on to the next member only when a connection is
//!   refused. A pause of the leader (`target: lock-leader`, found through
//!   `POST /v3/maintenance/status` at the moment of the fault) stops every
//!   grant and keep-alive until the others elect a new leader (election
//!   timeout 500 ms); the new leader restarts every lease's TTL, so a lease
//!   outlives what its holder was told rather than ending early.
//! - **A partition**: a member cut off from the majority cannot commit, so
//!   clients that reach only it cannot renew and their leases expire on the
//!   majority side, which grants the lock to the next waiter; a holder cut off
//!   from every member keeps running and may still write to storage it can
//!   reach.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use crate::ClientError;
use crate::etcd::{
    ETCD_CLIENT_PORT, ETCD_PACKAGE, ETCD_PEER_PORT, ETCD_PROGRAM, EtcdLockClient, EtcdMember,
    etcd_server_args, etcd_server_env, etcd_server_version,
};
use crate::system::{Leader, NodeAddrs, Probe, Program, ServerRecipe};

/// etcd's client port.
pub const PORT: u16 = ETCD_CLIENT_PORT;

/// Its peer (Raft) port, on the same host as the client port.
pub const PEER_PORT: u16 = ETCD_PEER_PORT;

/// The program, and the Debian package that ships it.
pub const PROGRAM: Program = Program::Host {
    binary: ETCD_PROGRAM,
    package: ETCD_PACKAGE,
};

/// What etcd's fencing token is.
pub const TOKEN: &str = "the create revision of the lock key (etcd's cluster-wide revision, kept by Raft across restarts)";

/// The cluster's members: node *j*'s client address, and its peer address
/// (`node.cluster[j]`, or the same host at [`PEER_PORT`] when the plan gave
/// none).
fn members(node: &NodeAddrs) -> Vec<EtcdMember> {
    node.peers
        .iter()
        .enumerate()
        .map(|(j, &client)| EtcdMember {
            name: format!("lock{}", j + 1),
            client,
            peer: node
                .cluster
                .get(j)
                .copied()
                .unwrap_or_else(|| SocketAddr::new(client.ip(), PEER_PORT)),
        })
        .collect()
}

/// Its recipe: member `i` of the cluster of every lock node, named after the
/// nodes (`lock1`…), with a cluster token of the run's own (the data folder's
/// path, unique to the run and node set), Raft tuned for short elections.
pub fn recipe(i: usize, _n: usize, node: &NodeAddrs) -> ServerRecipe {
    let members = members(node);
    // Every member must be given the same token: the run's folder, which is
    // the data folder's grandparent on the host (`<run>/nodes/lockN`), or
    // the node set in a container, where every data folder has one name.
    let token = Path::new(&node.data_dir)
        .parent()
        .and_then(Path::parent)
        .filter(|p| !p.as_os_str().is_empty() && p != &Path::new("/"))
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| {
            let peers: Vec<String> = node.peers.iter().map(ToString::to_string).collect();
            format!("leasehold-{}", peers.join(","))
        });
    ServerRecipe {
        program: PROGRAM,
        args: etcd_server_args(i, &members, Path::new(&node.data_dir), &token),
        env: etcd_server_env(),
        port: node.addr.port(),
        probe: Probe::EtcdHealth,
        leader: Leader::EtcdStatus,
        events_on_stdout: false,
    }
}

/// `etcdserver` of `GET /version`.
pub async fn server_version(addr: SocketAddr, timeout: Duration) -> Result<String, String> {
    etcd_server_version(&addr.to_string(), timeout).await
}

/// The worker's client: every lock node is an endpoint.
pub fn client(lock_addrs: &[String], timeout: Duration) -> Result<EtcdLockClient, ClientError> {
    EtcdLockClient::new(lock_addrs, timeout)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(i: usize, cluster: Vec<SocketAddr>) -> NodeAddrs {
        let peers: Vec<SocketAddr> = ["10.77.0.11:2379", "10.77.0.12:2379", "10.77.0.13:2379"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        NodeAddrs {
            name: format!("lock{}", i + 1),
            addr: peers[i],
            peers,
            cluster,
            data_dir: format!("/runs/r1/nodes/lock{}", i + 1),
        }
    }

    fn arg<'a>(args: &'a [String], flag: &str) -> &'a str {
        let at = args.iter().position(|a| a == flag).expect(flag);
        &args[at + 1]
    }

    #[test]
    fn members_peer_on_the_same_host_at_2380_and_share_one_token() {
        let r = recipe(1, 3, &node(1, Vec::new()));
        assert_eq!(r.program, PROGRAM);
        assert_eq!(arg(&r.args, "--name"), "lock2");
        assert_eq!(
            arg(&r.args, "--listen-client-urls"),
            "http://10.77.0.12:2379"
        );
        assert_eq!(arg(&r.args, "--listen-peer-urls"), "http://10.77.0.12:2380");
        assert_eq!(
            arg(&r.args, "--initial-cluster"),
            "lock1=http://10.77.0.11:2380,lock2=http://10.77.0.12:2380,lock3=http://10.77.0.13:2380"
        );
        assert_eq!(arg(&r.args, "--data-dir"), "/runs/r1/nodes/lock2");
        let other = recipe(0, 3, &node(0, Vec::new()));
        assert_eq!(
            arg(&r.args, "--initial-cluster-token"),
            arg(&other.args, "--initial-cluster-token")
        );
        assert_eq!(arg(&r.args, "--initial-cluster-token"), "/runs/r1");
        assert_eq!(r.probe, Probe::EtcdHealth);
        assert_eq!(r.leader, Leader::EtcdStatus);
        assert!(!r.events_on_stdout, "etcd's stdout is its log");
    }

    #[test]
    fn peer_addresses_given_by_the_plan_win() {
        let cluster: Vec<SocketAddr> = ["127.0.0.1:4001", "127.0.0.1:4002", "127.0.0.1:4003"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        let r = recipe(2, 3, &node(2, cluster));
        assert_eq!(arg(&r.args, "--listen-peer-urls"), "http://127.0.0.1:4003");
        assert!(arg(&r.args, "--initial-cluster").contains("lock1=http://127.0.0.1:4001"));
        // In a container every data folder is /data: the token is the node set.
        let mut n = node(0, Vec::new());
        n.data_dir = "/data".into();
        let r = recipe(0, 3, &n);
        assert!(arg(&r.args, "--initial-cluster-token").starts_with("leasehold-10.77.0.11:2379,"));
    }
}
