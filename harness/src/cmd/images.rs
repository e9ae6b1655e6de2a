//! `leasehold images`: the container images of the Docker runtime.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand};

use crate::images::{self, PackedImage};

#[derive(Debug, Args)]
pub struct ImagesArgs {
    #[command(subcommand)]
    pub command: ImagesCommand,
}

#[derive(Debug, Subcommand)]
pub enum ImagesCommand {
    /// Build leasehold's node image (`FROM scratch`, with this very binary)
    /// and an image for each `--binary`, unless an image with the same content
    /// exists. Nothing is pulled: no registry is needed.
    Build {
        /// A host binary to pack into its own image (e.g. /usr/bin/etcd); its
        /// shared libraries go with it. Repeatable.
        #[arg(long = "binary", value_name = "PATH")]
        binaries: Vec<PathBuf>,
    },
}

pub fn run(args: ImagesArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    match args.command {
        ImagesCommand::Build { binaries } => runtime.block_on(build(binaries)),
    }
}

async fn build(binaries: Vec<PathBuf>) -> anyhow::Result<ExitCode> {
    let docker = images::connect().await?;
    report(&images::leasehold_image(&docker).await?);
    for binary in &binaries {
        let image = images::host_binary_image(&docker, binary)
            .await
            .with_context(|| format!("cannot pack {}", binary.display()))?;
        report(&image);
    }
    Ok(ExitCode::SUCCESS)
}

fn report(image: &PackedImage) {
    let state = if image.built { "built" } else { "up to date" };
    println!("{}  {state}", image.tag);
}
