//! Where each node of a run listens and how it is started: the plan the
//! runtimes turn into processes or containers.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use anyhow::Context;
use leasehold_nemesis::Role;
use leasehold_nodes::RunClock;
use leasehold_results::RunDir;

use crate::config::{Config, StorageService, Subnet};
use crate::runtime::docker::DATA_MOUNT;
use crate::runtime::{NodeProgram, NodeSpec, find_node_program};
use leasehold_workloads::storage::exec as storage_exec;
use leasehold_workloads::system::postgres;
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
    // The user's programs (exec servers and adapters) start where leasehold
    // was started, and in Docker see it and the host's programs.
    let cwd = std::env::current_dir().context("the working directory")?;
    let lock_program = config.lock.program();
    let user_program = matches!(lock_program, Program::User { .. });
    // No lock node to start (exec and the user's own service): no program.
    let program = match n {
        0 => NodeProgram::Leasehold,
        _ => find_node_program(&lock_program, place.in_container, &cwd)?,
    };
    // Servers that leasehold's own node runs from the host (PostgreSQL) see
    // the host's programs in Docker too; the run checked they are there.
    let host_view = user_program || !config.lock.needs().is_empty();
    let lock_addrs = (1..=n)
        .map(|i| addr(&format!("lock{i}"), config.lock.port()))
        .collect::<anyhow::Result<Vec<SocketAddr>>>()?;
    // Their further addresses (etcd's peer port, ZooKeeper's quorum and
    // election ports), node by node, where the system needs them.
    let cluster = (1..=n)
        .flat_map(|i| {
            system
                .peer_ports()
                .iter()
                .map(move |&port| addr(&format!("lock{i}"), port))
        })
        .collect::<anyhow::Result<Vec<SocketAddr>>>()?;
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
            Program::Leasehold => after_kind(recipe.args, common(&name)),
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
            host_view: host_view.then(|| cwd.clone()),
            stop_grace: system.stop_grace(),
            process_tree: system.forks_sessions(),
            clock: None,
        });
    }
    let storage_place = StoragePlace {
        in_container: place.in_container,
        cwd: &cwd,
    };
    specs.extend(storage_specs(
        config,
        &storage_place,
        &addr,
        &common,
        &data_dir,
    )?);
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
    let stores = storage_addrs(config, &specs);
    let storage_system = config.storage.service.system();
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
        let adapter = config.lock.client.as_ref();
        if let Some(client) = adapter {
            for a in &client.command {
                args.extend(["--exec-arg".into(), a.clone()]);
            }
            args.extend(["--exec-cwd".into(), cwd.display().to_string()]);
        }
        for l in &locks {
            args.extend(["--lock-addr".into(), l.clone()]);
        }
        args.extend([
            "--storage-system".into(),
            storage_system.name().into(),
            "--storage-fencing".into(),
            if config.storage.fencing { "on" } else { "off" }.into(),
        ]);
        // exec storage: the adapter's command, run where leasehold was started.
        let storage_adapter = config.storage.client.as_ref();
        if let Some(client) = storage_adapter {
            for a in &client.command {
                args.extend(["--storage-exec-arg".into(), a.clone()]);
            }
            args.extend(["--storage-exec-cwd".into(), cwd.display().to_string()]);
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
            host_view: (adapter.is_some() || storage_adapter.is_some()).then(|| cwd.clone()),
            stop_grace: None,
            process_tree: false,
            clock: None,
        });
    }
    Ok(specs)
}

/// Where the user's storage program runs: in a container or not, started in
/// the working directory `cwd`.
struct StoragePlace<'a> {
    in_container: bool,
    cwd: &'a Path,
}

/// The storage nodes the run starts: leasehold's own fenced storage, or the
/// user's exec recipe; none for etcd-txn and exec without a server.
fn storage_specs(
    config: &Config,
    place: &StoragePlace<'_>,
    addr: &dyn Fn(&str, u16) -> anyhow::Result<SocketAddr>,
    common: &dyn Fn(&str) -> Vec<String>,
    data_dir: &dyn Fn(&str) -> anyhow::Result<(PathBuf, String)>,
) -> anyhow::Result<Vec<NodeSpec>> {
    let n = config.storage.started_nodes() as usize;
    let exec_server = config.storage.exec_server();
    let postgres = config.storage.service == StorageService::Postgres;
    let port = match &exec_server {
        Some(s) => s.port,
        None if postgres => postgres::PORT,
        None => REFERENCE_STORAGE_PORT,
    };
    let program = match (&exec_server, n) {
        (Some(server), 1..) => find_node_program(
            &storage_exec::program(server),
            place.in_container,
            place.cwd,
        )?,
        _ => NodeProgram::Leasehold,
    };
    let addrs = (1..=n)
        .map(|i| addr(&format!("store{i}"), port))
        .collect::<anyhow::Result<Vec<SocketAddr>>>()?;
    let mut specs = Vec::new();
    for (i, &a) in addrs.iter().enumerate() {
        let name = format!("store{}", i + 1);
        let (dir, dir_arg) = data_dir(&name)?;
        let spec = match &exec_server {
            None if postgres => {
                let node = NodeAddrs {
                    name: name.clone(),
                    addr: a,
                    peers: addrs.clone(),
                    cluster: Vec::new(),
                    data_dir: dir_arg,
                };
                let recipe = postgres::recipe(&node, &postgres::PostgresOptions::default());
                let args = after_kind(recipe.args, common(&name));
                NodeSpec {
                    name,
                    role: Role::Storage,
                    addr: a,
                    program: NodeProgram::Leasehold,
                    args,
                    env: recipe.env,
                    data_dir: Some(dir),
                    probe: Some(recipe.probe),
                    events_on_stdout: recipe.events_on_stdout,
                    // Its container sees the host's PostgreSQL.
                    host_view: Some(place.cwd.to_owned()),
                    stop_grace: None,
                    process_tree: true,
                    clock: None,
                }
            }
            Some(server) => {
                let node = NodeAddrs {
                    name: name.clone(),
                    addr: a,
                    peers: addrs.clone(),
                    cluster: Vec::new(),
                    data_dir: dir_arg,
                };
                let recipe = storage_exec::recipe(server, i, &node);
                NodeSpec {
                    name,
                    role: Role::Storage,
                    addr: a,
                    program: program.clone(),
                    args: recipe.args,
                    env: recipe.env,
                    data_dir: Some(dir),
                    probe: Some(recipe.probe),
                    // Its stdout is the user's store's log.
                    events_on_stdout: recipe.events_on_stdout,
                    host_view: Some(place.cwd.to_owned()),
                    stop_grace: None,
                    process_tree: false,
                    clock: None,
                }
            }
            None => {
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
                NodeSpec {
                    name,
                    role: Role::Storage,
                    addr: a,
                    program: NodeProgram::Leasehold,
                    args,
                    env: Vec::new(),
                    data_dir: Some(dir),
                    probe: Some(Probe::Http { path: "/v1/health" }),
                    events_on_stdout: true,
                    host_view: None,
                    stop_grace: None,
                    process_tree: false,
                    clock: None,
                }
            }
        };
        specs.push(spec);
    }
    Ok(specs)
}

/// The arguments of a `leasehold node <kind> …` recipe with what every
/// leasehold node is told (`common`) put after its kind.
fn after_kind(mut args: Vec<String>, common: Vec<String>) -> Vec<String> {
    let rest = args.split_off(1.min(args.len()));
    args.extend(common);
    args.extend(rest);
    args
}

/// The port of leasehold's own storage nodes when they have an address of
/// their own.
const REFERENCE_STORAGE_PORT: u16 = 7100;

/// Where the storage client writes, as `host:port`: the storage nodes started,
/// the user's own (`storage.addresses` of exec without a server), or, for
/// etcd-txn, the lock's etcd members.
pub(crate) fn storage_addrs(config: &Config, specs: &[NodeSpec]) -> Vec<String> {
    let of_role = |role: Role| -> Vec<String> {
        specs
            .iter()
            .filter(|s| s.role == role)
            .map(|s| s.addr.to_string())
            .collect()
    };
    match config.storage.service {
        StorageService::EtcdTxn => of_role(Role::Lock),
        StorageService::Exec if config.storage.server.is_none() => config.storage.addresses.clone(),
        StorageService::Exec | StorageService::Reference | StorageService::Postgres => {
            of_role(Role::Storage)
        }
    }
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
