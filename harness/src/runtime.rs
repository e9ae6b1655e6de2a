//! The runtimes behind one interface: local processes or Docker containers.
//! The run lifecycle and the nemesis see only this.

use std::time::Duration;

use leasehold_nemesis::{NodeFacts, Role};
use leasehold_results::RunDir;

use crate::docker::{ContainerPlan, DockerRuntime};
use anyhow::{Context, bail};

use crate::local::{LocalRuntime, NodeSpec, log_tail};

pub enum Runtime {
    Local(LocalRuntime),
    Docker(DockerRuntime),
}

/// The image each node of a Docker run starts from.
pub type ImageOf<'a> = &'a dyn Fn(&NodeSpec) -> String;

impl Runtime {
    /// Starts nodes (all at once where the runtime can).
    pub async fn spawn_all(
        &mut self,
        specs: &[&NodeSpec],
        run_dir: &RunDir,
        image_of: ImageOf<'_>,
    ) -> anyhow::Result<()> {
        match self {
            Runtime::Local(r) => {
                for spec in specs {
                    r.spawn((*spec).clone(), &run_dir.node_log_path(&spec.name))?;
                }
                Ok(())
            }
            Runtime::Docker(r) => {
                let plans = specs
                    .iter()
                    .map(|spec| ContainerPlan {
                        spec: (*spec).clone(),
                        image: image_of(spec),
                        data_dir: spec.data_dir.clone(),
                        log: run_dir.node_log_path(&spec.name),
                    })
                    .collect();
                r.spawn_all(plans).await
            }
        }
    }

    /// Waits until the node answers its health check; an error names the node,
    /// says how it ended or what it did not answer, and quotes its log.
    pub async fn wait_ready(&mut self, name: &str, limit: Duration) -> anyhow::Result<()> {
        let start = std::time::Instant::now();
        let endpoint = match self {
            Runtime::Local(r) => r.endpoint(name),
            Runtime::Docker(r) => r.endpoint(name),
        };
        let (addr, log) = endpoint.context("no such node")?;
        let url = format!("http://{addr}/v1/health");
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_millis(500))
            .build()?;
        loop {
            let exited = match self {
                Runtime::Local(r) => r.exited(name)?,
                Runtime::Docker(r) => r.exited(name).await?,
            };
            if let Some(status) = exited {
                bail!(
                    "node {name} exited ({status}) before it was ready; its log ends:\n{}",
                    log_tail(&log, 10)
                );
            }
            if let Ok(r) = http.get(&url).send().await
                && r.status().is_success()
            {
                return Ok(());
            }
            if start.elapsed() > limit {
                bail!(
                    "node {name} was not ready at {url} within {limit:?}; its log ends:\n{}",
                    log_tail(&log, 10)
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn facts(&self) -> Vec<NodeFacts> {
        match self {
            Runtime::Local(r) => r.facts(),
            Runtime::Docker(r) => r.facts(),
        }
    }

    pub fn resume_all(&self) {
        match self {
            Runtime::Local(r) => r.resume_all(),
            Runtime::Docker(r) => r.resume_all(),
        }
    }

    pub fn names(&self, role: Role) -> Vec<String> {
        match self {
            Runtime::Local(r) => r.names(role),
            Runtime::Docker(r) => r.names(role),
        }
    }

    pub async fn stop(&mut self, names: &[String], grace: Duration) {
        match self {
            Runtime::Local(r) => r.stop(names, grace).await,
            Runtime::Docker(r) => r.stop(names, grace).await,
        }
    }

    /// Kills a node (SIGKILL to all its processes) and waits until it is gone.
    pub async fn kill(&mut self, name: &str) -> anyhow::Result<()> {
        match self {
            Runtime::Local(r) => r.kill(name).await,
            Runtime::Docker(r) => r.kill(name).await,
        }
    }

    /// Starts a killed node again with the same identity and data.
    pub async fn restart(&mut self, name: &str, extra: &[String]) -> anyhow::Result<()> {
        match self {
            Runtime::Local(r) => r.restart(name, extra),
            Runtime::Docker(r) => {
                let image = r.image_of(name).await?;
                r.restart(name, image, extra).await
            }
        }
    }

    pub async fn teardown(&mut self, grace: Duration) {
        match self {
            Runtime::Local(r) => r.teardown(grace).await,
            Runtime::Docker(r) => r.teardown(grace).await,
        }
    }
}
