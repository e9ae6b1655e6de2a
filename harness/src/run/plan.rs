//! Where each node of a run listens and how it is started: the plan the
//! runtimes turn into processes or containers.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use anyhow::Context;
use leasehold_nemesis::Role;
use leasehold_nodes::RunClock;
use leasehold_results::RunDir;

use crate::config::{Config, Subnet};
use crate::runtime::docker::DATA_MOUNT;
use crate::runtime::{NodeProgram, NodeSpec, find_program};
use leasehold_workloads::{NodeAddrs, Probe, Program};

/// Where the nodes live, as far as planning them goes.
pub(crate) struct Placement {
    /// The run's subnet when nodes have addresses of their own (namespaces or
    /// containers); `None`: everything on loopback ports.
    pub subnet: Option<Subnet>,
    /// Data folders are mounted at [`DATA_MOUNT`] inside containers.
    pub in_container: bool,
}

/// Where each node listens: its own address on the run's subnet, or a free
/// loopback port when there is none.
pub(crate) fn plan(
    config: &Config,
    run_id: &str,
    clock: RunClock,
    place: &Placement,
    run_dir: &RunDir,
    seed: u64,
) -> anyhow::Result<Vec<NodeSpec>> {
    let addr = |name: &str, port: u16| -> anyhow::Result<SocketAddr> {
        Ok(match place.subnet {
            Some(n) => SocketAddr::new(IpAddr::V4(n.host(octet_of(config, name)?)), port),
            None if port == 0 => SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            None => free_loopback_port()?,
        })
    };
    let common = |name: &str| {
        vec![
            "--name".to_owned(),
            name.to_owned(),
            "--run-id".to_owned(),
            run_id.to_owned(),
            "--t0".to_owned(),
            clock.t0_ns().to_string(),
        ]
    };
    // The folder on the host, and how the node names it.
    let data_dir = |name: &str| -> anyhow::Result<(PathBuf, String)> {
        let d = run_dir.node_data_dir(name);
        std::fs::create_dir_all(&d).with_context(|| format!("create {}", d.display()))?;
        let arg = if place.in_container {
            DATA_MOUNT.to_owned()
        } else {
            d.display().to_string()
        };
        Ok((d, arg))
    };
    // Lock nodes from the system's recipe: addresses first, for the peers.
    let system = config.lock.service.system();
    let n = config.lock.started_nodes() as usize;
    // No lock node to start (exec and the user's own service): no program.
    let program = match n {
        0 => NodeProgram::Leasehold,
        _ => find_program(&config.lock.program())?,
    };
    let lock_addrs = (1..=n)
        .map(|i| addr(&format!("lock{i}"), config.lock.port()))
        .collect::<anyhow::Result<Vec<SocketAddr>>>()?;
    // Their second addresses (etcd's peer port), where the system needs one.
    let cluster = match system.peer_port() {
        Some(port) => (1..=n)
            .map(|i| addr(&format!("lock{i}"), port))
            .collect::<anyhow::Result<Vec<SocketAddr>>>()?,
        None => Vec::new(),
    };
    let mut specs = Vec::new();
    for (i, &a) in lock_addrs.iter().enumerate() {
        let name = format!("lock{}", i + 1);
        let (dir, dir_arg) = data_dir(&name)?;
        let node = NodeAddrs {
            name: name.clone(),
            addr: a,
            peers: lock_addrs.clone(),
            cluster: cluster.clone(),
            data_dir: dir_arg,
        };
        let recipe = config.lock.recipe(i, n, &node);
        let args = match recipe.program {
            // What every leasehold node is told goes after its kind.
            Program::Leasehold => {
                let mut args = recipe.args;
                let rest = args.split_off(1.min(args.len()));
                args.extend(common(&name));
                args.extend(rest);
                args
            }
            Program::Host { .. } | Program::User { .. } => recipe.args,
        };
        specs.push(NodeSpec {
            name,
            role: Role::Lock,
            addr: a,
            program: program.clone(),
            args,
            env: recipe.env,
            data_dir: Some(dir),
            probe: Some(recipe.probe),
            events_on_stdout: recipe.events_on_stdout,
        });
    }
    for i in 1..=config.storage.nodes.get() {
        let name = format!("store{i}");
        let a = addr(&name, 7100)?;
        let (dir, dir_arg) = data_dir(&name)?;
        let mut args = vec!["storage".to_owned()];
        args.extend(common(&name));
        args.extend([
            "--listen".into(),
            a.to_string(),
            "--data-dir".into(),
            dir_arg,
            "--fencing".into(),
            if config.storage.fencing { "on" } else { "off" }.into(),
        ]);
        specs.push(NodeSpec {
            name,
            role: Role::Storage,
            addr: a,
            program: NodeProgram::Leasehold,
            args,
            env: Vec::new(),
            data_dir: Some(dir),
            probe: Some(Probe::Http { path: "/v1/health" }),
            events_on_stdout: true,
        });
    }
    let locks: Vec<String> = specs
        .iter()
        .filter(|s| s.role == Role::Lock)
        .map(|s| s.addr.to_string())
        .collect();
    // exec and the user's own service: its addresses, from the config.
    let locks = if n == 0 {
        config.lock.addresses.clone()
    } else {
        locks
    };
    let stores: Vec<String> = specs
        .iter()
        .filter(|s| s.role == Role::Storage)
        .map(|s| s.addr.to_string())
        .collect();
    let w = &config.workload;
    for i in 1..=w.workers.get() {
        let name = format!("w{i}");
        let a = addr(&name, 0)?;
        let mut args = vec!["worker".to_owned()];
        args.extend(common(&name));
        args.extend([
            "--index".into(),
            (i - 1).to_string(),
            "--workers".into(),
            w.workers.to_string(),
            "--lock".into(),
            w.lock.clone(),
            "--lease-ms".into(),
            w.lease.as_millis().to_string(),
            "--think-ms".into(),
            w.think.as_millis().to_string(),
            "--timeout-ms".into(),
            w.timeout.as_millis().to_string(),
            "--backoff-ms".into(),
            w.backoff.as_millis().to_string(),
            "--seed".into(),
            seed.to_string(),
            "--on-renew-timeout".into(),
            w.on_renew_timeout.as_str().into(),
            "--client".into(),
            system.name().into(),
        ]);
        // exec: the adapter's command, run where leasehold was started.
        if let Some(client) = config.lock.client.as_ref() {
            for a in &client.command {
                args.extend(["--exec-arg".into(), a.clone()]);
            }
            let cwd = std::env::current_dir().context("the working directory")?;
            args.extend(["--exec-cwd".into(), cwd.display().to_string()]);
        }
        for l in &locks {
            args.extend(["--lock-addr".into(), l.clone()]);
        }
        for s in &stores {
            args.extend(["--storage".into(), s.clone()]);
        }
        for k in w.key_names() {
            args.extend(["--key".into(), k]);
        }
        specs.push(NodeSpec {
            name,
            role: Role::Worker,
            addr: a,
            program: NodeProgram::Leasehold,
            args,
            env: Vec::new(),
            data_dir: None,
            probe: None,
            events_on_stdout: true,
        });
    }
    Ok(specs)
}

fn free_loopback_port() -> anyhow::Result<SocketAddr> {
    let l = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("find a free port")?;
    Ok(l.local_addr()?)
}

/// Last octet of a node's address on the run's subnet (the config's layout).
pub(crate) fn octet_of(config: &Config, name: &str) -> anyhow::Result<u8> {
    config
        .node_octet(name)
        .with_context(|| format!("node {name} has no address on the run's subnet"))
}
