//! Which installed programs the shim can and cannot reach.

mod common;

use common::installed;
use leasehold_clock::{Unreachable, reachable};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

#[test]
fn go_programs_are_refused_with_the_reason() {
    let Some(etcd) = installed("/usr/bin/etcd") else {
        return;
    };
    let err = reachable(&etcd).unwrap_err();
    assert!(matches!(err, Unreachable::Go(_)), "{err:?}");
    let msg = err.to_string();
    assert_eq!(
        msg,
        "/usr/bin/etcd is a Go program: it reads the clock from the vDSO directly, \
         which LD_PRELOAD cannot reach"
    );
}

#[test]
fn static_programs_are_refused() {
    // Debian's ldconfig is a static-pie: it has a dynamic section but no
    // program interpreter.
    let Some(ldconfig) = installed("/sbin/ldconfig") else {
        return;
    };
    let err = reachable(&ldconfig).unwrap_err();
    assert!(matches!(err, Unreachable::Static(_)), "{err}");
    assert!(err.to_string().contains("statically linked"), "{err}");
}

#[test]
fn dynamic_programs_are_accepted() {
    for p in ["/usr/bin/python3", "/usr/bin/date", "/bin/sh"] {
        reachable(Path::new(p)).unwrap_or_else(|e| panic!("{e}"));
    }
    if let Some(redis) = installed("/usr/bin/redis-server") {
        reachable(&redis).unwrap_or_else(|e| panic!("{e}"));
    }
}

fn script(dir: &Path, name: &str, body: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

#[test]
fn scripts_are_judged_by_their_interpreter() {
    let dir = tempfile::tempdir().unwrap();
    let py = script(dir.path(), "a.py", "#!/usr/bin/env python3\nprint(1)\n");
    reachable(&py).unwrap();
    let sh = script(dir.path(), "a.sh", "#!/bin/sh -e\ntrue\n");
    reachable(&sh).unwrap();
    // A script run by another script, run by a static program.
    let inner = script(dir.path(), "inner", "#!/sbin/ldconfig\n");
    let outer = script(dir.path(), "outer", &format!("#!{}\n", inner.display()));
    if Path::new("/sbin/ldconfig").is_file() {
        let err = reachable(&outer).unwrap_err();
        assert!(
            matches!(err, Unreachable::Static(ref p) if p == Path::new("/sbin/ldconfig")),
            "{err}"
        );
    }
    let lost = script(dir.path(), "lost", "#!/no/such/interpreter\n");
    assert!(matches!(reachable(&lost), Err(Unreachable::Io(..))));
    let text = script(dir.path(), "text", "just words\n");
    assert!(matches!(reachable(&text), Err(Unreachable::NotProgram(..))));
}

#[test]
fn set_id_programs_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("suid");
    std::fs::copy("/usr/bin/date", &p).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o4755)).unwrap();
    assert!(matches!(reachable(&p), Err(Unreachable::SetId(_))));
}
