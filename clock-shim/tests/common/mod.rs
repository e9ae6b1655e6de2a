//! Helpers shared by the shim's process tests.
#![allow(dead_code)]

use leasehold_clock::control::raw_clock_ns;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The preload library built with this test (cargo builds the package's lib
/// target, cdylib included, before its integration tests).
pub fn shim() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let mut tried = Vec::new();
    for dir in exe.ancestors().skip(1).take(3) {
        let candidate = dir.join(leasehold_clock::LIBRARY_FILE_NAME);
        if candidate.is_file() {
            return candidate;
        }
        tried.push(candidate);
    }
    panic!(
        "{} not found (looked at {tried:?}); build it with `cargo build -p leasehold-clock-shim`",
        leasehold_clock::LIBRARY_FILE_NAME
    );
}

/// Debian's python3 itself, not a wrapper script in front of it.
pub fn python() -> PathBuf {
    let debian = Path::new("/usr/bin/python3");
    if debian.is_file() {
        debian.to_path_buf()
    } else {
        PathBuf::from("python3")
    }
}

/// A command with the shim preloaded and `control` named as its control file.
pub fn preloaded(program: impl AsRef<std::ffi::OsStr>, control: &Path) -> Command {
    let mut cmd = Command::new(program);
    cmd.env("LD_PRELOAD", shim())
        .env(leasehold_clock::ENV_VAR, control);
    cmd
}

/// Real CLOCK_REALTIME in seconds.
pub fn real_now() -> f64 {
    raw_clock_ns(libc::CLOCK_REALTIME).expect("realtime") as f64 / 1e9
}

/// Real CLOCK_MONOTONIC in seconds.
pub fn real_mono() -> f64 {
    raw_clock_ns(libc::CLOCK_MONOTONIC).expect("monotonic") as f64 / 1e9
}

/// Runs a command to completion, asserting success, returning stdout.
pub fn output(cmd: &mut Command) -> String {
    let out = cmd.output().expect("spawn");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// Whether this run is CI, where every program the tests need is installed.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Finds an installed program; in CI a missing one fails the test, elsewhere
/// the caller skips with the reason printed.
pub fn installed(path: &str) -> Option<PathBuf> {
    let p = PathBuf::from(path);
    if p.is_file() {
        return Some(p);
    }
    assert!(!in_ci(), "{path} is not installed, and CI installs it");
    eprintln!("skipping: {path} is not installed");
    None
}
