//! Both examples, several seeds each: unfenced storage accepts stale writes and
//! the run is invalid; fenced storage rejects them and the run is valid.

use crate::*;

fn run_example(name: &str, seed: u64) -> (i32, serde_json::Value, PathBuf, tempfile::TempDir) {
    let store = tempfile::tempdir().unwrap();
    let (out, dir) = run_example_in(store.path(), name, seed, &[]);
    let code = out.status.code().expect("exited");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        code == 0 || code == 1,
        "exit {code}\nstdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let results = read_json(&dir.join("results.json"));
    // Everything a run promises is in its folder.
    for f in [
        "history.jsonl",
        "ledger.jsonl",
        "results.json",
        "report.html",
        "junit.xml",
        "config.yaml",
    ] {
        assert!(dir.join(f).is_file(), "{f} missing in {}", dir.display());
    }
    for node in ["lock1", "store1", "w1", "w2", "w3"] {
        assert!(
            dir.join("nodes").join(format!("{node}.log")).is_file(),
            "log of {node}"
        );
    }
    let config = std::fs::read_to_string(dir.join("config.yaml")).unwrap();
    assert!(
        config.contains(&format!("seed: {seed}")),
        "config.yaml records the seed:\n{config}"
    );
    assert!(stdout.contains(&format!("seed:    {seed}")), "{stdout}");
    (code, results, dir, store)
}

fn check<'a>(results: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    results["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no {name} check in {results}"))
}

fn assert_nodes_isolated(results: &serde_json::Value) {
    if require_root() {
        // As root each node has its own namespace and address.
        for node in results["nodes"].as_array().unwrap() {
            let addr = node["addr"].as_str().unwrap();
            assert!(!addr.starts_with("127."), "{node} should be in a namespace");
        }
    }
}

#[test]
fn unfenced_storage_accepts_the_stale_write_for_any_seed() {
    for seed in [1, 2] {
        let (code, results, dir, _store) = run_example("gc-pause.yaml", seed);
        assert_eq!(code, 1, "invalid run exits 1 (seed {seed})");
        assert_eq!(results["verdict"], "invalid");
        assert_eq!(results["seed"], seed);
        let stale = check(&results, "stale-write");
        assert_eq!(stale["validity"], "invalid");
        let anomalies = stale["anomalies"].as_array().unwrap();
        assert!(!anomalies.is_empty(), "seed {seed}: {stale}");
        for a in anomalies {
            assert_eq!(a["kind"], "stale-write");
            assert_eq!(
                a["certainty"], "certain",
                "a paused holder's write is certainly stale: {a}"
            );
            // The writer is one of the paused workers.
            let writer = a["writer"].as_str().unwrap();
            let paused: Vec<&str> = results["nemesis"]["faults"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|f| {
                    f["nodes"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|n| n.as_str().unwrap())
                })
                .collect();
            assert!(
                paused.contains(&writer),
                "{writer} was never paused: {paused:?}"
            );
            assert!(a["late_by_ns"].as_u64().unwrap() > 0);
            assert!(!a["ops"].as_array().unwrap().is_empty());
        }
        assert_eq!(check(&results, "token-order")["validity"], "valid");
        // The stale writes are the near misses that missed.
        let stale_writes = results["counts"]["stale_accepted"].as_u64().unwrap();
        assert!(results["margins"]["after_deadline"].as_u64().unwrap() >= stale_writes);
        let report = std::fs::read_to_string(dir.join("report.html")).unwrap();
        assert!(report.to_lowercase().contains("invalid"));
        assert_nodes_isolated(&results);
    }
}

#[test]
fn fenced_storage_rejects_the_stale_write_for_any_seed() {
    for seed in [1, 2] {
        let (code, results, dir, _store) = run_example("gc-pause-fenced.yaml", seed);
        assert_eq!(code, 0, "valid run exits 0 (seed {seed}): {results}");
        // The near misses of a valid run: every accepted write measured
        // against its lease, all before their deadlines (fencing refused the
        // late ones), the closest first, and the report shows them.
        let m = &results["margins"];
        assert_eq!(m["basis"], "ledger");
        assert_eq!(m["writes"], results["counts"]["writes_accepted"], "{m}");
        assert_eq!(m["after_deadline"], 0, "{m}");
        let closest = m["closest"].as_array().unwrap();
        assert!(!closest.is_empty() && closest.len() <= 10, "{m}");
        let margin = |c: &serde_json::Value| c["margin_ms"].as_f64().unwrap();
        assert!(closest.windows(2).all(|w| margin(&w[0]) <= margin(&w[1])));
        assert_eq!(m["min_ms"].as_f64(), Some(margin(&closest[0])));
        let in_buckets: u64 = m["histogram"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["count"].as_u64().unwrap())
            .sum();
        assert_eq!(Some(in_buckets), m["writes"].as_u64());
        let report = std::fs::read_to_string(dir.join("report.html")).unwrap();
        assert!(report.contains("<h2>Near misses</h2>"));
        assert_eq!(results["verdict"], "valid");
        assert!(
            results["counts"]["stale_rejected"].as_u64().unwrap() >= 1,
            "fencing must have rejected at least one stale write (seed {seed}): {}",
            results["counts"]
        );
        assert_eq!(results["counts"]["stale_accepted"], 0);
        for name in ["stale-write", "fencing-order", "token-order"] {
            assert_eq!(check(&results, name)["validity"], "valid", "{name}");
        }
        assert_nodes_isolated(&results);
    }
}

#[test]
fn the_same_seed_gives_the_same_schedule() {
    let plan = |seed: u64| {
        let store = tempfile::tempdir().unwrap();
        let out = leasehold()
            .args([
                "run",
                "--no-progress",
                "--duration",
                "8s",
                "--seed",
                &seed.to_string(),
                "--store",
            ])
            .arg(store.path())
            .arg(example("gc-pause-fenced.yaml"))
            .output()
            .unwrap();
        assert!(out.status.code().is_some_and(|c| c < 3), "{out:?}");
        read_json(&run_dir_of(store.path()).join("results.json"))["nemesis"]["schedule"].clone()
    };
    let a = plan(7);
    assert_eq!(a.as_array().unwrap().len(), 2, "two pauses fit in 8s: {a}");
    assert_eq!(a, plan(7));
}
