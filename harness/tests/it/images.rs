//! `leasehold images build` packs binaries into `FROM scratch` images that
//! really run, and only builds when the content changed.

use crate::*;

/// Runs `leasehold images build <args>` and returns its (tag, state) lines.
fn images_build(args: &[&str]) -> Vec<(String, String)> {
    let out = leasehold()
        .args(["images", "build"])
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "leasehold images build {args:?} failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .map(|l| {
            let (tag, state) = l
                .split_once("  ")
                .unwrap_or_else(|| panic!("unexpected line {l:?}"));
            (tag.to_owned(), state.to_owned())
        })
        .collect()
}

fn docker(args: &[&str]) -> std::process::Output {
    Command::new("docker").args(args).output().unwrap()
}

#[test]
fn the_node_image_is_built_once_and_runs_from_scratch() {
    if !require_docker() {
        return;
    }
    let first = images_build(&[]);
    assert_eq!(first.len(), 1, "{first:?}");
    let (tag, state) = &first[0];
    assert!(tag.starts_with("leasehold/node:"), "{tag}");
    assert!(state == "built" || state == "up to date", "{state}");

    let again = images_build(&[]);
    assert_eq!(again, [(tag.clone(), "up to date".to_owned())]);

    let out = docker(&["run", "--rm", tag, "--version"]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("leasehold"),
        "{out:?}"
    );
}

#[test]
fn a_host_binary_is_packed_with_its_libraries() {
    if !require_docker() {
        return;
    }
    let lines = images_build(&["--binary", "/bin/true"]);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[0].0.starts_with("leasehold/node:"), "{lines:?}");
    let tag = &lines[1].0;
    assert!(tag.starts_with("leasehold/true:"), "{tag}");

    let out = docker(&["run", "--rm", tag]);
    let removed = docker(&["rmi", tag]);
    assert!(out.status.success(), "/bin/true in its image: {out:?}");
    assert!(removed.status.success(), "{removed:?}");
}

#[test]
fn a_missing_engine_is_a_clear_error() {
    let out = leasehold()
        .args(["images", "build"])
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(i32::from(leasehold::EXIT_RUN_FAILED)),
        "{out:?}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot reach the Docker Engine"),
        "{stderr}"
    );
}
