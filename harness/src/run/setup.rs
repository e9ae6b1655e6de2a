//! Making a run's network and starting its nodes, on whichever runtime the
//! config names.

use anyhow::Context;
use leasehold_nemesis::Role;
use leasehold_workloads::Program;

use crate::config::{Config, RuntimeKind};
use crate::images;
use crate::run::context::RunContext;
use crate::run::plan::{Placement, octet_of, plan};
use crate::runtime::clock::ClockControls;
use crate::runtime::docker::{self, DockerRuntime};
use crate::runtime::local::LocalRuntime;
use crate::runtime::local::netns::{self, NetnsNet};
use crate::runtime::{NodeProgram, NodeSpec, Runtime, find_program, wait_ready};

/// Makes the run's network and starts its nodes: servers first, all at once,
/// then the workers once the servers answer. The runtime goes into `slot` as
/// soon as it exists, so the caller can tear down whatever was made even when
/// this fails. `None` when cancelled.
pub(crate) async fn setup(
    ctx: &RunContext<'_>,
    images: &NodeImages,
    slot: &mut Option<Box<dyn Runtime>>,
) -> anyhow::Result<Option<Vec<NodeSpec>>> {
    let config = ctx.config;
    let (runtime, mut specs): (Box<dyn Runtime>, Vec<NodeSpec>) = match config.runtime {
        RuntimeKind::Local => {
            let net = if netns::is_root() {
                let octets = config
                    .node_names()
                    .iter()
                    .map(|n| Ok((n.clone(), octet_of(config, n)?)))
                    .collect::<anyhow::Result<Vec<(String, u8)>>>()?;
                let (run_id, subnet) = (ctx.run_id.to_owned(), config.network.subnet);
                // `ip` commands: off the async threads.
                let net =
                    tokio::task::spawn_blocking(move || NetnsNet::create(&run_id, subnet, &octets))
                        .await
                        .context("the network setup panicked")?
                        .context("create the run's network")?;
                Some(net)
            } else {
                None
            };
            let place = Placement {
                subnet: net.as_ref().map(|n| n.subnet),
                in_container: false,
            };
            let specs = plan(config, ctx.run_id, ctx.clock, &place, ctx.run_dir, ctx.seed)?;
            (
                Box::new(LocalRuntime::new(ctx.run_id, net, ctx.events.clone())?),
                specs,
            )
        }
        RuntimeKind::Docker => {
            let docker = docker::connect().await?;
            let r = DockerRuntime::new(
                docker,
                ctx.run_id,
                config.network.subnet,
                ctx.events.clone(),
            )
            .await?;
            let place = Placement {
                subnet: Some(r.subnet),
                in_container: true,
            };
            let specs = plan(config, ctx.run_id, ctx.clock, &place, ctx.run_dir, ctx.seed)?;
            (Box::new(r), specs)
        }
    };
    let runtime = slot.insert(runtime);
    // Nodes a clock fault may hit start under the clock library, each with
    // its own control file.
    let clocked = config.clock_nodes().into_keys();
    let mut controls = ClockControls::create_files(ctx.run_dir.path(), clocked)?;
    for spec in &mut specs {
        spec.clock = controls.remove(&spec.name);
    }
    let image_of = |spec: &NodeSpec| images.of(spec.role);
    let servers: Vec<&NodeSpec> = specs.iter().filter(|s| s.role != Role::Worker).collect();
    runtime.spawn_all(&servers, ctx.run_dir, &image_of).await?;
    for spec in &servers {
        tokio::select! {
            r = wait_ready(runtime.as_mut(), &spec.name, ctx.ready_limit) => r?,
            _ = ctx.cancel.cancelled() => return Ok(None),
        }
    }
    let workers: Vec<&NodeSpec> = specs.iter().filter(|s| s.role == Role::Worker).collect();
    runtime.spawn_all(&workers, ctx.run_dir, &image_of).await?;
    Ok(Some(specs))
}

/// The images of a Docker run's nodes: leasehold's own, or the lock
/// service's `image:` / `binary:`, or the host program of its recipe.
#[derive(Default)]
pub(crate) struct NodeImages {
    node: String,
    lock: Option<String>,
}

impl NodeImages {
    /// Packs (or finds) the images a run needs; nothing for the local runtime.
    pub(crate) async fn prepare(config: &Config) -> anyhow::Result<Self> {
        if config.runtime != RuntimeKind::Docker {
            return Ok(NodeImages::default());
        }
        let docker = &docker::connect().await?;
        let node = images::leasehold_image(docker)
            .await
            .context("pack leasehold's node image")?
            .tag;
        let lock = match (&config.lock.image, &config.lock.binary) {
            (Some(image), _) => Some(image.clone()),
            (None, Some(binary)) => Some(
                images::host_binary_image(docker, binary)
                    .await
                    .with_context(|| format!("pack {}", binary.display()))?
                    .tag,
            ),
            // The user's program (exec) runs in leasehold's image, through
            // its node's view of the host (`NodeSpec::host_view`).
            (None, None) if matches!(config.lock.program(), Program::User { .. }) => None,
            // A system whose servers are a host program: that binary, packed
            // with its libraries.
            (None, None) => match find_program(&config.lock.program())? {
                NodeProgram::Host(binary) => Some(
                    images::host_binary_image(docker, &binary)
                        .await
                        .with_context(|| format!("pack {}", binary.display()))?
                        .tag,
                ),
                NodeProgram::Leasehold => None,
            },
        };
        Ok(NodeImages { node, lock })
    }

    fn of(&self, role: Role) -> String {
        match (role, &self.lock) {
            (Role::Lock, Some(image)) => image.clone(),
            _ => self.node.clone(),
        }
    }
}
