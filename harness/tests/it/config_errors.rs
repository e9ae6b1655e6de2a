//! Bad configs get a clear error naming the file, line, column and field, and
//! exit code 3.

use crate::*;

/// Runs `leasehold run bad.yaml` on `text`: its exit code and stderr.
pub fn run_config(text: Option<&str>) -> (i32, String) {
    run_config_with(text, &[])
}

/// Runs `leasehold run <extra…> bad.yaml` on `text`; `None`: no such file.
fn run_config_with(text: Option<&str>, extra: &[&str]) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.yaml");
    if let Some(text) = text {
        std::fs::write(&path, text).unwrap();
    }
    let out = leasehold()
        .current_dir(dir.path())
        .args(["run", "--no-progress", "--store", "store"])
        .args(extra)
        .arg("bad.yaml")
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
fn checks_across_fields_name_the_line_and_column_of_the_value() {
    let (code, err) = run_config(Some(&good().replace("duration: 10s", "duration: 0s")));
    assert_eq!(code, 3);
    insta::assert_snapshot!(err.trim(), @"error: bad.yaml:7:11: duration: must be longer than 0s");
    // The example's comments say "lease" long before the field.
    let (code, err) = run_config(Some(&good().replace("lease: 1s", "lease: 0ms")));
    assert_eq!(code, 3);
    insta::assert_snapshot!(err.trim(), @"error: bad.yaml:16:10: workload.lease: must be at least 1ms (leases are granted in whole milliseconds)");
    let (code, err) = run_config(Some(&good().replace("target: holder", "target: w7")));
    assert_eq!(code, 3);
    insta::assert_snapshot!(err.trim(), @r#"error: bad.yaml:26:15: nemesis.faults[0].target: no node is named "w7"; the nodes are lock1, store1, w1, w2, w3"#);
}

#[test]
fn limits_of_a_run_are_named() {
    let (code, err) = run_config(Some(
        &good().replace("duration: 10s", "duration: 10000000h"),
    ));
    assert_eq!(code, 3);
    insta::assert_snapshot!(err.trim(), @"error: bad.yaml:7:11: duration: must be at most 24h (the longest run)");
    let faults = good()
        .replace("for: 2500ms", "for: 1ns")
        .replace("every: 3s..3500ms", "every: 1ns");
    let (code, err) = run_config(Some(&faults));
    assert_eq!(code, 3);
    insta::assert_snapshot!(err.trim(), @"error: bad.yaml:27:12: nemesis.faults[0].for: must be at least 1ms");
    let (code, err) = run_config(Some(&faults.replace("for: 1ns", "for: 1ms")));
    assert_eq!(code, 3);
    insta::assert_snapshot!(err.trim(), @"error: bad.yaml:28:14: nemesis.faults[0].every: must be at least 10ms");
    let many = good()
        .replace("duration: 10s", "duration: 24h")
        .replace("for: 2500ms", "for: 1ms")
        .replace("every: 3s..3500ms", "every: 10ms..1s");
    let (code, err) = run_config(Some(&many));
    assert_eq!(code, 3);
    insta::assert_snapshot!(err.trim(), @"error: bad.yaml:28:14: nemesis.faults[0].every: every 10ms..1s from 1s in a run of 24h schedules up to 8639800 faults; a run takes at most 10000");
}

#[test]
fn node_counts_beyond_the_subnet_are_refused() {
    let (code, err) = run_config(Some(&good().replace("workers: 3", "workers: 170")));
    assert_eq!(code, 3);
    insta::assert_snapshot!(err.trim(), @"error: bad.yaml:15:12: workload.workers: at most 154 workers fit the run's /24 subnet (addresses .101 to .254)");
    let (code, err) = run_config(Some(&good().replacen("nodes: 1", "nodes: 21", 1)));
    assert_eq!(code, 3);
    insta::assert_snapshot!(err.trim(), @"error: bad.yaml:10:10: lock.nodes: at most 19 lock nodes fit the run's /24 subnet (addresses .11 to .29)");
}

#[test]
fn timeline_entries_after_the_end_are_refused() {
    let timeline = "  timeline:\n    - { at: 5s, kill: store1, for: 1s }\n    - { at: 7s, pause: w2, for: 2s }\n    - { at: 60s, pause: w1, for: 1s }\n";
    let (code, err) = run_config(Some(&(good() + timeline)));
    assert_eq!(code, 3);
    insta::assert_snapshot!(err.trim(), @"error: bad.yaml:33:13: nemesis.timeline[2].at: starts at 1m, but the run ends at 10s");
    let late = timeline.replace("at: 60s, pause: w1, for: 1s", "at: 9s, pause: w1, for: 2s");
    let (code, err) = run_config(Some(&(good() + &late)));
    assert_eq!(code, 3);
    insta::assert_snapshot!(err.trim(), @"error: bad.yaml:33:33: nemesis.timeline[2].for: lasts until 11s (9s + 2s), past the end of the run at 10s");
}

/// Needs `config.set_duration(d)?` for `--duration` in cmd/run.rs.
#[test]
fn a_duration_given_on_the_command_line_is_checked_against_the_file() {
    let timeline = good() + "  timeline:\n    - { at: 5s, kill: store1, for: 1s }\n";
    let (code, err) = run_config_with(Some(&timeline), &["--duration", "4s"]);
    assert_eq!(code, 3);
    insta::assert_snapshot!(err.trim(), @"error: bad.yaml:31:13: nemesis.timeline[0].at: starts at 5s, but the run ends at 4s (--duration)");
    let (code, err) = run_config_with(Some(&good()), &["--duration", "25h"]);
    assert_eq!(code, 3);
    insta::assert_snapshot!(err.trim(), @"error: bad.yaml: duration: --duration 25h: must be at most 24h (the longest run)");
}

#[test]
fn deep_or_huge_configs_are_refused_at_once() {
    let n = 100_000;
    let lists = "[".repeat(n) + &"]".repeat(n);
    let (code, err) = run_config(Some(&lists));
    assert_eq!(code, 3);
    insta::assert_snapshot!(err.trim(), @"error: bad.yaml:1:33: (top level): maps and lists nest more than 32 levels deep here; a config needs a few");
    let maps = good().replace(
        "test: gc-pause",
        &("test: ".to_owned() + &"{a: ".repeat(n) + &"}".repeat(n)),
    );
    let (code, err) = run_config(Some(&maps));
    assert_eq!(code, 3);
    insta::assert_snapshot!(err.trim(), @"error: bad.yaml:6:131: test: maps and lists nest more than 32 levels deep here; a config needs a few");
    let mut block = String::new();
    for i in 0..1400 {
        block.push_str(&" ".repeat(i));
        block.push_str("a:\n");
    }
    let (code, err) = run_config(Some(&block));
    assert_eq!(code, 3);
    assert!(err.starts_with("error: bad.yaml:33:33: a.a.a."), "{err}");
    // The start of a block map 100,000 levels deep: 5 GB in all.
    let mut huge = String::new();
    let mut i = 0;
    while huge.len() <= 2 << 20 {
        huge.push_str(&" ".repeat(i));
        huge.push_str("a:\n");
        i += 1;
    }
    let (code, err) = run_config(Some(&huge));
    assert_eq!(code, 3);
    insta::assert_snapshot!(err.trim(), @"error: bad.yaml: (top level): larger than 1 MiB, the most leasehold reads; a config is a few hundred bytes");
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

#[test]
fn redlock_on_one_node_and_persistence_elsewhere_are_refused() {
    let redlock = std::fs::read_to_string(example("redlock.yaml")).unwrap();
    let (code, err) = run_config(Some(&redlock.replace("  nodes: 5", "  nodes: 1")));
    assert_eq!(code, 3);
    insta::assert_snapshot!(err.trim(), @"error: bad.yaml:14:10: lock.nodes: redlock takes a majority of independent redis-servers: with 1 node it is plain Redis (service: redis); give 3 or more (5 when absent)");
    let aof = good().replace(
        "  service: reference",
        "  service: reference\n  persistence: aof",
    );
    let (code, err) = run_config(Some(&aof));
    assert_eq!(code, 3);
    insta::assert_snapshot!(err.trim(), @"error: bad.yaml:10:16: lock.persistence: only service: redis and redlock take a persistence (of their redis-servers); reference keeps its data its own way");
    let rdb = redlock.replace(
        "  service: redlock",
        "  service: redlock\n  persistence: rdb",
    );
    let (code, err) = run_config(Some(&rdb));
    assert_eq!(code, 3);
    insta::assert_snapshot!(err.trim(), @"error: bad.yaml:14:16: lock.persistence: unknown variant `rdb`, expected `none` or `aof`");
}

#[test]
fn postgres_settings_are_checked_where_they_stand() {
    let pg = std::fs::read_to_string(example("postgres.yaml")).unwrap();
    let cases = [
        (
            pg.replace("  service: postgres\n", "  service: postgres\n  nodes: 2\n"),
            "error: bad.yaml:14:10: lock.nodes: PostgreSQL's advisory locks live in one server: service: postgres has 1 lock node",
        ),
        (
            pg.replace("idle_session_timeout: 1s", "idle_session_timeout: 1500us"),
            "error: bad.yaml:17:27: lock.postgres.idle_session_timeout: must be a whole number of milliseconds above 0 (PostgreSQL's 0 turns it off: leave it out for that), not 1ms 500us",
        ),
        (
            pg.replace("  service: postgres\n", "  service: redis\n"),
            "error: bad.yaml:17:5: lock.postgres: only service: postgres takes postgres settings; redis has its own",
        ),
        (
            pg.replace("idle_session_timeout: 1s", "idle_timeout: 1s"),
            "error: bad.yaml:17:5: lock.postgres.idle_timeout: unknown field `idle_timeout`, expected one of `idle_session_timeout`, `tcp_keepalives_idle`, `tcp_keepalives_interval`, `tcp_keepalives_count`, `tcp_user_timeout`, `bin_dir`",
        ),
    ];
    for (config, want) in cases {
        let (code, err) = run_config(Some(&config));
        assert_eq!(code, 3, "{err}");
        assert_eq!(err.trim(), want);
    }
}

#[test]
fn postgres_storage_has_one_node() {
    let pg = std::fs::read_to_string(example("postgres-storage.yaml")).unwrap();
    let (code, err) = run_config(Some(
        &pg.replace("  service: postgres\n", "  service: postgres\n  nodes: 2\n"),
    ));
    assert_eq!(code, 3, "{err}");
    assert_eq!(
        err.trim(),
        "error: bad.yaml:24:10: storage.nodes: storage service: postgres is one PostgreSQL server: it has 1 node"
    );
}
