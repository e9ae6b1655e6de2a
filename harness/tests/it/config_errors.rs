//! Bad configs get a clear error naming the file, line, column and field, and
//! exit code 3.

use crate::*;

fn run_config(text: Option<&str>) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.yaml");
    if let Some(text) = text {
        std::fs::write(&path, text).unwrap();
    }
    let out = leasehold()
        .current_dir(dir.path())
        .args(["run", "--no-progress", "--store", "store", "bad.yaml"])
        .output()
        .unwrap();
    assert!(
        !dir.path().join("store").exists(),
        "a bad config starts no run"
    );
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn good() -> String {
    std::fs::read_to_string(example("gc-pause.yaml")).unwrap()
}

#[test]
fn unknown_field() {
    let (code, err) = run_config(Some(
        &good().replace("  think: 300ms", "  think: 300ms\n  thinking: 1s"),
    ));
    assert_eq!(code, 3);
    insta::assert_snapshot!(err.trim(), @"error: bad.yaml:20:3: workload.thinking: unknown field `thinking`, expected one of `workers`, `lock`, `keys`, `lease`, `think`, `timeout`, `backoff`, `client`, `on_renew_timeout`");
}

#[test]
fn wrong_type() {
    let (code, err) = run_config(Some(&good().replace("workers: 3", "workers: three")));
    assert_eq!(code, 3);
    insta::assert_snapshot!(err.trim(), @r#"error: bad.yaml:15:12: workload.workers: invalid type: string "three", expected a nonzero u32"#);
}

#[test]
fn bad_duration_and_unknown_target() {
    let (code, err) = run_config(Some(&good().replace("for: 2500ms", "for: soon")));
    assert_eq!(code, 3);
    assert!(
        err.contains("bad.yaml:") && err.contains("nemesis.faults[0].for"),
        "{err}"
    );
    let (code, err) = run_config(Some(&good().replace("target: holder", "target: w7")));
    assert_eq!(code, 3);
    assert!(
        err.contains("nemesis.faults[0].target") && err.contains("w7"),
        "{err}"
    );
}

#[test]
fn missing_file() {
    let (code, err) = run_config(None);
    assert_eq!(code, 3);
    insta::assert_snapshot!(err.trim(), @r"
    error: cannot read config bad.yaml
      caused by: No such file or directory (os error 2)
    ");
}

#[test]
fn run_help_explains_every_option() {
    let out = leasehold().args(["run", "--help"]).output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for opt in [
        "--seed",
        "--duration",
        "--store",
        "--no-progress",
        "[CONFIG]",
    ] {
        assert!(help.contains(opt), "{opt} missing from:\n{help}");
    }
}
