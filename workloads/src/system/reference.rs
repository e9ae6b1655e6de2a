//! leasehold's own lock service, `leasehold node lock` (see docs/protocol.md).
//!
//! - **Fencing token**: one counter of the service, incremented on every grant
//!   of any lock; it is persisted in the node's data folder, so it survives a
//!   restart of the node.
//! - **Lease**: the TTL the client asked for, counted by the service from the
//!   moment it granted; the client counts it from the moment it sent the
//!   request, which is never later.
//! - **A pause of the holder** does not stop the lease: it expires, another
//!   worker is granted a larger token, and the paused holder, once resumed,
//!   writes with its old one (the classic bug; fenced storage rejects it).
//! - **A pause of a lock node** stops its clock as seen by clients: requests
//!   time out (`info`), leases granted before the pause may expire during it.
//! - **A partition** of the holder from the lock node makes its renews time
//!   out; what it does next is the worker's policy (`on_renew_timeout`).
//!
//! Several lock nodes are independent services; workers use the first.

use crate::system::{Leader, NodeAddrs, Probe, Program, ServerRecipe};

/// The port of a reference lock node with an address of its own.
pub const PORT: u16 = 7000;

/// What the reference service's fencing token is.
pub const TOKEN: &str =
    "the service's per-lock grant counter, incremented on every grant and kept on disk";

/// Its recipe: `leasehold node lock --listen <addr> --data-dir <dir>`.
pub fn recipe(_i: usize, _n: usize, node: &NodeAddrs) -> ServerRecipe {
    ServerRecipe {
        program: Program::Leasehold,
        args: vec![
            "lock".into(),
            "--listen".into(),
            node.addr.to_string(),
            "--data-dir".into(),
            node.data_dir.clone(),
        ],
        env: Vec::new(),
        port: node.addr.port(),
        probe: Probe::Http { path: "/v1/health" },
        leader: Leader::None,
        events_on_stdout: true,
    }
}

/// The reference service is this very program: its version is leasehold's.
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_owned()
}
