//! Container images of leasehold's nodes, for the Docker runtime.
//!
//! No registry may be reachable from the machines leasehold runs on, so
//! nothing is ever pulled: every image is built locally, `FROM scratch`, out of
//! a binary that is already on the host. That is leasehold's own binary (the
//! node program: lock service, storage, workers) or a third-party server such
//! as `/usr/bin/etcd` or `redis-server`.
//!
//! The image holds the real binary, not a wrapper or an emulator: the nemesis
//! imitates a GC pause by stopping the processes of a node with SIGSTOP, so
//! the process inside the container must be the program itself.
//!
//! A statically linked binary needs nothing else. A dynamically linked one
//! needs its shared libraries and its dynamic loader, at the very paths the
//! host resolves them to (the loader's path is written in the binary); that
//! set is its *closure*, found with `ldd`. Symlinks are dereferenced: the image
//! gets the library's content as a regular file under the name `ldd` printed.
//!
//! The tag of an image is a hash of its content, so an image is only built
//! when the binary or one of its libraries changed.
//!
//! Building a new node image prunes the other node images, but only those no
//! container uses (running or not) and no live run has registered. A run
//! registers a tag before it looks for the image in the engine, and pruning
//! reads the registrations after it has listed the images, with packing and
//! pruning excluding each other through a machine-wide lock: so a pruner
//! either sees the tag or ran before the run looked, and then the run builds
//! the image again.
//!
//! Limitations: libraries that `ldd` found only through `LD_LIBRARY_PATH`, or
//! through an `RPATH` relative to `$ORIGIN` (the binary moves in the image),
//! are copied but the loader will not look for them there.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Component, Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, anyhow, bail};
use bollard::Docker;
use bollard::query_parameters::BuildImageOptionsBuilder;
use futures_util::StreamExt as _;
use nix::fcntl::{Flock, FlockArg};
use sha2::{Digest as _, Sha256};

/// Repository prefix of every image leasehold builds.
pub const REPOSITORY_PREFIX: &str = "leasehold/";
/// Label set on every image leasehold builds; its value is the image's name.
pub const IMAGE_LABEL: &str = "leasehold.image";

/// An image that exists in the engine once [`pack_binary`] returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackedImage {
    /// `leasehold/<name>:<content hash>`.
    pub tag: String,
    /// Whether this call built it (false: an image with that tag existed).
    pub built: bool,
}

/// Connects to the local Docker Engine (`DOCKER_HOST` or the default socket)
/// and agrees on an API version with it.
pub async fn connect() -> anyhow::Result<Docker> {
    let unreachable = |e: bollard::errors::Error| anyhow!("cannot reach the Docker Engine: {e}");
    Docker::connect_with_local_defaults()
        .map_err(unreachable)?
        .negotiate_version()
        .await
        .map_err(unreachable)
}

/// The shared libraries and the dynamic loader that the ELF binary at `binary`
/// needs to run, as absolute host paths, per `ldd`. Empty for a statically
/// linked binary, which runs alone in a `FROM scratch` image.
///
/// Fails if the file is not an ELF binary (a script would need its
/// interpreter, which a scratch image does not have) or if a library is not
/// found on the host.
pub fn library_closure(binary: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let shown = binary.display();
    let mut magic = [0u8; 4];
    {
        use std::io::Read as _;
        let mut file =
            std::fs::File::open(binary).with_context(|| format!("cannot open {shown}"))?;
        file.read_exact(&mut magic)
            .map_err(|_| anyhow!("{shown} is not an ELF binary (too short)"))?;
    }
    if magic != *b"\x7fELF" {
        bail!("{shown} is not an ELF binary: only compiled programs can be packed into an image");
    }

    let out = Command::new("ldd")
        .arg(binary)
        .env("LC_ALL", "C")
        .output()
        .with_context(|| format!("cannot run ldd on {shown}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let text = format!("{stdout}{stderr}");
    if text.contains("not a dynamic executable") || text.contains("statically linked") {
        return Ok(Vec::new());
    }
    if !out.status.success() {
        bail!("ldd {shown} failed ({}): {}", out.status, text.trim());
    }
    parse_ldd(&stdout).with_context(|| format!("the shared libraries of {shown}"))
}

/// Parses `ldd` output: `name => /path (addr)` lines, the loader line
/// `/lib64/ld-linux-x86-64.so.2 (addr)`; the vDSO (no path) is skipped.
fn parse_ldd(stdout: &str) -> anyhow::Result<Vec<PathBuf>> {
    let mut libs = Vec::new();
    let mut missing = Vec::new();
    for line in stdout.lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let (name, target) = match line.split_once("=>") {
            Some((name, target)) => (name.trim(), target.trim()),
            None => (line, line),
        };
        if target.starts_with("not found") {
            missing.push(name.to_owned());
            continue;
        }
        // Drop the load address: `/path (0x...)`.
        let path = match target.rfind(" (") {
            Some(i) => target[..i].trim(),
            None => target,
        };
        if path.starts_with('/') {
            libs.push(PathBuf::from(path));
        }
        // Anything else has no file: linux-vdso.so.1, linux-gate.so.1.
    }
    if !missing.is_empty() {
        bail!("not found on this host: {}", missing.join(", "));
    }
    let mut seen = BTreeSet::new();
    libs.retain(|p| seen.insert(p.clone()));
    Ok(libs)
}

/// The build context of an image: a tar archive with the Dockerfile and the
/// root filesystem, and the hash of that content.
struct BuildContext {
    tar: Vec<u8>,
    /// Hex sha256 over the Dockerfile and every (path, content) pair.
    hash: String,
}

/// The Dockerfile of a packed image.
fn dockerfile(entrypoint: &str) -> String {
    let entrypoint = serde_json::to_string(&[entrypoint]).expect("a string array serialises");
    format!("FROM scratch\nCOPY rootfs/ /\nENTRYPOINT {entrypoint}\n")
}

/// Builds the tar build context of an image that holds `files` (absolute path
/// in the image, content; all mode 0755) and runs `entrypoint`. Pure: the same
/// input gives the same bytes and the same hash, in whatever order `files`
/// come. A path given twice keeps its last content.
fn build_context(files: &[(PathBuf, Vec<u8>)], entrypoint: &str) -> anyhow::Result<BuildContext> {
    let dockerfile = dockerfile(entrypoint);
    let mut by_path: BTreeMap<PathBuf, &[u8]> = BTreeMap::new();
    for (path, content) in files {
        by_path.insert(image_relative(path)?, content);
    }

    let mut hasher = Sha256::new();
    hash_field(&mut hasher, b"Dockerfile");
    hash_field(&mut hasher, dockerfile.as_bytes());

    let mut tar = tar::Builder::new(Vec::new());
    tar.mode(tar::HeaderMode::Deterministic);
    append(
        &mut tar,
        Path::new("Dockerfile"),
        dockerfile.as_bytes(),
        0o644,
    )?;
    let mut dirs = BTreeSet::new();
    for (rel, content) in &by_path {
        for dir in rel.ancestors().skip(1) {
            if !dir.as_os_str().is_empty() {
                dirs.insert(dir.to_owned());
            }
        }
        hash_field(&mut hasher, rel.as_os_str().as_encoded_bytes());
        hash_field(&mut hasher, content);
    }
    append_dir(&mut tar, Path::new("rootfs"))?;
    for dir in &dirs {
        append_dir(&mut tar, &Path::new("rootfs").join(dir))?;
    }
    for (rel, content) in &by_path {
        append(&mut tar, &Path::new("rootfs").join(rel), content, 0o755)?;
    }
    let tar = tar.into_inner().context("cannot write the build context")?;
    let hash = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok(BuildContext { tar, hash })
}

/// An absolute image path as a clean relative one (`/usr/lib/x` → `usr/lib/x`),
/// with `.` and `..` resolved lexically.
fn image_relative(path: &Path) -> anyhow::Result<PathBuf> {
    if !path.is_absolute() {
        bail!("path in the image must be absolute: {}", path.display());
    }
    let mut rel = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(part) => rel.push(part),
            Component::ParentDir => {
                rel.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    if rel.as_os_str().is_empty() {
        bail!("not a file path in the image: {}", path.display());
    }
    Ok(rel)
}

/// Length-prefixed, so that no two different sequences hash alike.
fn hash_field(hasher: &mut Sha256, bytes: &[u8]) {
    hasher.update((bytes.len() as u64).to_le_bytes());
    hasher.update(bytes);
}

fn append(
    tar: &mut tar::Builder<Vec<u8>>,
    path: &Path,
    content: &[u8],
    mode: u32,
) -> anyhow::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_size(content.len() as u64);
    header.set_mode(mode);
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    tar.append_data(&mut header, path, content)
        .with_context(|| format!("cannot add {} to the build context", path.display()))
}

fn append_dir(tar: &mut tar::Builder<Vec<u8>>, path: &Path) -> anyhow::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Directory);
    header.set_size(0);
    header.set_mode(0o755);
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    tar.append_data(&mut header, path, std::io::empty())
        .with_context(|| format!("cannot add {} to the build context", path.display()))
}

/// Reads `binary` and its closure into (path in the image, content) pairs:
/// the binary at `entrypoint`, every library at its host path.
fn collect_files(binary: &Path, entrypoint: &str) -> anyhow::Result<Vec<(PathBuf, Vec<u8>)>> {
    let read = |path: &Path| {
        // `fs::read` follows symlinks: the image gets the content.
        std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
    };
    let mut files = vec![(PathBuf::from(entrypoint), read(binary)?)];
    for lib in library_closure(binary)? {
        let content = read(&lib)?;
        files.push((lib, content));
    }
    // Every image carries the clock library, so any node can be started
    // under it (it needs only libc, which a dynamic program's image has).
    if let Ok(shim) = crate::runtime::clock::shim_path() {
        files.push((
            PathBuf::from(crate::runtime::clock::CONTAINER_SHIM),
            read(&shim)?,
        ));
    }
    Ok(files)
}

/// Packs `binary` (and its shared-library closure, unless it is static) into
/// a `FROM scratch` image `leasehold/<name>:<content hash>` whose entrypoint is
/// the binary, copied to the absolute path `entrypoint`. Builds it through the
/// engine's API unless an image with that tag already exists.
///
/// The tag is added to the registration of the run this process controls
/// first, so that no pruning removes the image while the run lives: a run must
/// register before it packs its images.
pub async fn pack_binary(
    docker: &Docker,
    binary: &Path,
    name: &str,
    entrypoint: &str,
) -> anyhow::Result<PackedImage> {
    if !entrypoint.starts_with('/') {
        bail!("the entrypoint of an image must be an absolute path, not {entrypoint:?}");
    }
    let context = {
        let binary = binary.to_owned();
        let entrypoint = entrypoint.to_owned();
        tokio::task::spawn_blocking(move || {
            let files = collect_files(&binary, &entrypoint)?;
            build_context(&files, &entrypoint)
        })
        .await
        .context("the build-context task failed")??
    };
    let tag = format!("{REPOSITORY_PREFIX}{name}:{}", &context.hash[..16]);

    // Held until the image exists: no pruning falls between recording the
    // tag and finding (or building) the image.
    let _packing = lock_images(LockKind::Shared)
        .await?
        .context("lock the images")?;
    crate::registry::record_image(&tag)
        .with_context(|| format!("record image {tag} in the run's registration"))?;
    match docker.inspect_image(&tag).await {
        Ok(_) => return Ok(PackedImage { tag, built: false }),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => {}
        Err(e) => return Err(anyhow!(e).context(format!("cannot inspect image {tag}"))),
    }

    tracing::info!(
        %tag,
        binary = %binary.display(),
        context_bytes = context.tar.len(),
        "building image"
    );
    let labels = HashMap::from([(IMAGE_LABEL, name)]);
    let options = BuildImageOptionsBuilder::default()
        .dockerfile("Dockerfile")
        .t(&tag)
        .rm(true)
        .forcerm(true)
        .labels(&labels)
        .build();
    let mut progress =
        docker.build_image(options, None, Some(bollard::body_full(context.tar.into())));
    while let Some(item) = progress.next().await {
        let info = item.map_err(|e| anyhow!("building image {tag} failed: {e}"))?;
        if let Some(detail) = info.error_detail {
            let message = detail
                .message
                .clone()
                .unwrap_or_else(|| format!("{detail:?}"));
            bail!("building image {tag} failed: {message}");
        }
        if let Some(line) = info.stream.as_deref().map(str::trim_end)
            && !line.is_empty()
        {
            tracing::debug!(%tag, "{line}");
        }
    }
    docker
        .inspect_image(&tag)
        .await
        .with_context(|| format!("the build of {tag} ended but the image is not there"))?;
    Ok(PackedImage { tag, built: true })
}

/// The image of leasehold's own nodes: this very executable, at `/leasehold`.
pub async fn leasehold_image(docker: &Docker) -> anyhow::Result<PackedImage> {
    let exe = std::env::current_exe().context("cannot find leasehold's own executable")?;
    let image = pack_binary(docker, &exe, "node", "/leasehold").await?;
    if image.built {
        // Every rebuild of leasehold makes a new node image; the old ones are
        // of no further use.
        prune_node_images(docker, &image.tag).await;
    }
    Ok(image)
}

/// Removes leasehold's node images other than `keep` that no container uses
/// (running or not) and no live run has registered. Skips the whole pruning
/// when an image is being packed at that moment, or when the engine cannot
/// say which images its containers use. Returns what went.
pub async fn prune_node_images(docker: &Docker, keep: &str) -> Vec<String> {
    let _pruning = match lock_images(LockKind::Exclusive).await {
        Ok(Some(lock)) => lock,
        Ok(None) => {
            tracing::debug!("an image is being packed: pruning left to a later build");
            return Vec::new();
        }
        Err(e) => {
            tracing::warn!("not pruning node images: {e:#}");
            return Vec::new();
        }
    };
    let filters = std::collections::HashMap::from([(
        "label".to_owned(),
        vec![format!("{IMAGE_LABEL}=node")],
    )]);
    let options = bollard::query_parameters::ListImagesOptions {
        filters: Some(filters),
        ..Default::default()
    };
    let Ok(images) = docker.list_images(Some(options)).await else {
        return Vec::new();
    };
    // Registrations after the listing: a run that registered a tag before
    // the listing is seen here; one that registers later finds its image gone
    // when it looks, and builds it again.
    let registered = crate::registry::live_images();
    let options = bollard::query_parameters::ListContainersOptions {
        all: true,
        ..Default::default()
    };
    let Ok(containers) = docker.list_containers(Some(options)).await else {
        return Vec::new();
    };
    let in_use: BTreeSet<String> = containers.into_iter().filter_map(|c| c.image_id).collect();
    let mut removed = Vec::new();
    for image in images {
        let kept = image
            .repo_tags
            .iter()
            .any(|t| t == keep || registered.contains(t));
        if kept || in_use.contains(&image.id) {
            continue;
        }
        let options = bollard::query_parameters::RemoveImageOptions {
            force: false,
            noprune: false,
            ..Default::default()
        };
        if docker
            .remove_image(&image.id, Some(options), None)
            .await
            .is_ok()
        {
            removed.extend(image.repo_tags.iter().cloned());
        }
    }
    removed
}

#[derive(Clone, Copy)]
enum LockKind {
    /// Packing: many at once, waiting for a pruning to end.
    Shared,
    /// Pruning: alone, and never waiting.
    Exclusive,
}

/// Takes the machine-wide lock between packing and pruning images. None for
/// an exclusive lock that someone else holds.
async fn lock_images(kind: LockKind) -> anyhow::Result<Option<Flock<std::fs::File>>> {
    let path = crate::machine::state_dir().join("images.lock");
    tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(path.parent().expect("has a parent"))?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("open {}", path.display()))?;
        let arg = match kind {
            LockKind::Shared => FlockArg::LockShared,
            LockKind::Exclusive => FlockArg::LockExclusiveNonblock,
        };
        match Flock::lock(file, arg) {
            Ok(lock) => Ok(Some(lock)),
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(None),
            Err((_, e)) => Err(anyhow!(e).context(format!("lock {}", path.display()))),
        }
    })
    .await
    .context("the image lock task failed")?
}

/// The image of a third-party server found on the host (`/usr/bin/etcd`):
/// named after its file name, entrypoint `/usr/local/bin/<file name>`.
pub async fn host_binary_image(docker: &Docker, binary: &Path) -> anyhow::Result<PackedImage> {
    let file_name = binary
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| anyhow!("{} has no usable file name", binary.display()))?;
    let name = image_name(file_name)
        .ok_or_else(|| anyhow!("cannot make an image name out of {file_name:?}"))?;
    pack_binary(
        docker,
        binary,
        &name,
        &format!("/usr/local/bin/{file_name}"),
    )
    .await
}

/// A file name as a Docker repository path component: lower case,
/// `[a-z0-9]` separated by single `.`, `_`, `__` or runs of `-`; anything else
/// becomes `-`. None if nothing alphanumeric is left.
fn image_name(file_name: &str) -> Option<String> {
    let mapped: String = file_name
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9' | '.' | '_' | '-') => c,
            _ => '-',
        })
        .collect();
    let mapped = mapped.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    if mapped.is_empty() {
        return None;
    }
    // Collapse separator runs the grammar does not allow into `-`.
    let mut out = String::new();
    let mut run = String::new();
    for c in mapped.chars() {
        if c.is_ascii_alphanumeric() {
            if !run.is_empty() {
                let ok = matches!(run.as_str(), "." | "_" | "__") || run.chars().all(|c| c == '-');
                out.push_str(if ok { &run } else { "-" });
                run.clear();
            }
            out.push(c);
        } else {
            run.push(c);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(closure: &[PathBuf]) -> Vec<String> {
        closure
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn closure_of_a_dynamic_binary_has_libc_and_the_loader() {
        let closure = library_closure(Path::new("/bin/true")).unwrap();
        let names = names(&closure);
        assert!(
            names.iter().any(|n| n.starts_with("libc.so")),
            "{closure:?}"
        );
        assert!(names.iter().any(|n| n.starts_with("ld-")), "{closure:?}");
        assert!(closure.iter().all(|p| p.is_absolute() && p.exists()));
        assert!(!names.iter().any(|n| n.contains("vdso")), "{closure:?}");
    }

    #[test]
    fn closure_of_a_static_binary_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("main.c");
        std::fs::write(&src, "int main(void) { return 0; }\n").unwrap();
        for (flag, name) in [("-static", "static"), ("-static-pie", "static-pie")] {
            let bin = dir.path().join(name);
            let built = Command::new("cc")
                .arg(flag)
                .arg("-o")
                .arg(&bin)
                .arg(&src)
                .output()
                .is_ok_and(|o| o.status.success());
            if !built {
                eprintln!("cannot link a {name} binary here (no cc or no static libc): skipping");
                continue;
            }
            assert_eq!(
                library_closure(&bin).unwrap(),
                Vec::<PathBuf>::new(),
                "{name}"
            );
        }
    }

    #[test]
    fn closure_errors_name_the_binary() {
        let err = library_closure(Path::new("/nonexistent/prog")).unwrap_err();
        assert!(format!("{err:#}").contains("/nonexistent/prog"), "{err:#}");

        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("script.sh");
        std::fs::write(&script, "#!/bin/sh\nexit 0\n").unwrap();
        let err = library_closure(&script).unwrap_err();
        let msg = format!("{err:#}");
        assert!(
            msg.contains("script.sh") && msg.contains("not an ELF"),
            "{msg}"
        );
    }

    #[test]
    fn ldd_output_is_parsed() {
        let out = "\tlinux-vdso.so.1 (0x00007ffd1b5f2000)\n\
                   \tlibgcc_s.so.1 => /lib/x86_64-linux-gnu/libgcc_s.so.1 (0x00007f0000000000)\n\
                   \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f0000100000)\n\
                   \t/lib64/ld-linux-x86-64.so.2 (0x00007f0000200000)\n";
        assert_eq!(
            parse_ldd(out).unwrap(),
            [
                "/lib/x86_64-linux-gnu/libgcc_s.so.1",
                "/lib/x86_64-linux-gnu/libc.so.6",
                "/lib64/ld-linux-x86-64.so.2"
            ]
            .map(PathBuf::from)
        );
        // Old glibc prints the vDSO with an empty target.
        assert!(
            parse_ldd("\tlinux-vdso.so.1 =>  (0x00007fff)\n")
                .unwrap()
                .is_empty()
        );
        let err = parse_ldd("\tlibfoo.so.1 => not found\n\tlibc.so.6 => /lib/libc.so.6 (0x1)\n")
            .unwrap_err();
        assert!(err.to_string().contains("libfoo.so.1"), "{err}");
    }

    fn files(binary: &[u8], lib: &[u8]) -> Vec<(PathBuf, Vec<u8>)> {
        vec![
            (PathBuf::from("/leasehold"), binary.to_vec()),
            (
                PathBuf::from("/lib/x86_64-linux-gnu/libc.so.6"),
                lib.to_vec(),
            ),
        ]
    }

    #[test]
    fn the_hash_follows_the_content_and_only_the_content() {
        let a = build_context(&files(b"bin", b"lib"), "/leasehold").unwrap();
        let again = build_context(&files(b"bin", b"lib"), "/leasehold").unwrap();
        assert_eq!(a.hash, again.hash);
        assert_eq!(a.tar, again.tar, "the tar is deterministic too");

        let mut reversed = files(b"bin", b"lib");
        reversed.reverse();
        assert_eq!(build_context(&reversed, "/leasehold").unwrap().hash, a.hash);

        let changed_bin = build_context(&files(b"bin2", b"lib"), "/leasehold").unwrap();
        let changed_lib = build_context(&files(b"bin", b"lib2"), "/leasehold").unwrap();
        let changed_entry = build_context(&files(b"bin", b"lib"), "/other").unwrap();
        let mut moved = files(b"bin", b"lib");
        moved[1].0 = PathBuf::from("/usr/lib/x86_64-linux-gnu/libc.so.6");
        let moved = build_context(&moved, "/leasehold").unwrap();
        // Moving bytes from one field to the next changes the hash.
        let shifted = build_context(&files(b"bi", b"nlib"), "/leasehold").unwrap();
        let all = [
            &a.hash,
            &changed_bin.hash,
            &changed_lib.hash,
            &changed_entry.hash,
            &moved.hash,
            &shifted.hash,
        ];
        let distinct: BTreeSet<_> = all.iter().collect();
        assert_eq!(distinct.len(), all.len(), "{all:?}");
        assert_eq!(a.hash.len(), 64);
        assert!(a.hash.chars().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn the_context_holds_the_dockerfile_and_the_rootfs() {
        let ctx = build_context(&files(b"bin", b"lib"), "/leasehold").unwrap();
        let mut archive = tar::Archive::new(ctx.tar.as_slice());
        let mut entries = BTreeMap::new();
        for e in archive.entries().unwrap() {
            let mut e = e.unwrap();
            let path = e.path().unwrap().into_owned();
            let mode = e.header().mode().unwrap();
            let kind = e.header().entry_type();
            let mut content = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut content).unwrap();
            entries.insert(path, (kind, mode, content));
        }
        let dockerfile = &entries[Path::new("Dockerfile")].2;
        assert_eq!(
            String::from_utf8_lossy(dockerfile),
            "FROM scratch\nCOPY rootfs/ /\nENTRYPOINT [\"/leasehold\"]\n"
        );
        assert_eq!(
            entries[Path::new("rootfs/leasehold")],
            (tar::EntryType::Regular, 0o755, b"bin".to_vec())
        );
        assert_eq!(
            entries[Path::new("rootfs/lib/x86_64-linux-gnu/libc.so.6")],
            (tar::EntryType::Regular, 0o755, b"lib".to_vec())
        );
        for dir in ["rootfs", "rootfs/lib", "rootfs/lib/x86_64-linux-gnu"] {
            assert_eq!(
                entries[Path::new(dir)].0,
                tar::EntryType::Directory,
                "{dir}"
            );
        }
    }

    #[test]
    fn image_paths_must_be_absolute_and_are_cleaned() {
        assert!(build_context(&[(PathBuf::from("rel"), vec![])], "/x").is_err());
        assert_eq!(
            image_relative(Path::new("/opt/app/bin/../lib/libx.so")).unwrap(),
            Path::new("opt/app/lib/libx.so")
        );
    }

    #[test]
    fn image_names_are_sanitised() {
        assert_eq!(image_name("etcd").as_deref(), Some("etcd"));
        assert_eq!(image_name("redis-server").as_deref(), Some("redis-server"));
        assert_eq!(image_name("My Server+2").as_deref(), Some("my-server-2"));
        assert_eq!(image_name("a..b._c").as_deref(), Some("a-b-c"));
        assert_eq!(image_name("__x__").as_deref(), Some("x"));
        assert_eq!(image_name("a__b").as_deref(), Some("a__b"));
        assert_eq!(image_name("+++"), None);
    }
}
