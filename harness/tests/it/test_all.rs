//! `leasehold test-all`: several configs, several seeds, one table, one exit
//! code, one combined JUnit report; a run past its time limit is stopped.

use crate::*;

/// The default example and its fenced twin, shortened to 5 s (one pause and
/// its stale write fit), in `dir`.
fn short_configs(dir: &Path) -> (PathBuf, PathBuf) {
    let write = |name: &str| {
        let text = std::fs::read_to_string(example(name))
            .unwrap()
            .replace("duration: 10s", "duration: 5s");
        assert!(text.contains("duration: 5s"), "{name}");
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    (write("gc-pause.yaml"), write("gc-pause-fenced.yaml"))
}

fn test_all(store: &Path, args: &[&std::ffi::OsStr]) -> (i32, String, String) {
    let out = leasehold()
        .args(["test-all", "--no-progress", "--store"])
        .arg(store)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().expect("exited"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn test_all_runs_every_seed_of_every_config_and_gives_one_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let (unfenced, fenced) = short_configs(dir.path());
    let store = dir.path().join("store");
    let junit = dir.path().join("all.xml");
    let (code, stdout, stderr) = test_all(
        &store,
        &[
            "--seed".as_ref(),
            "7".as_ref(),
            "--test-count".as_ref(),
            "2".as_ref(),
            "--junit".as_ref(),
            junit.as_os_str(),
            unfenced.as_os_str(),
            fenced.as_os_str(),
        ],
    );
    assert_eq!(code, 1, "invalid beats valid:\n{stdout}\n{stderr}");
    let rows: Vec<&str> = stdout.lines().skip(1).collect();
    assert_eq!(rows.len(), 5, "four runs and the tally:\n{stdout}");
    for (row, (config, seed, verdict)) in rows.iter().zip([
        (&unfenced, 7, "invalid"),
        (&unfenced, 8, "invalid"),
        (&fenced, 7, "valid"),
        (&fenced, 8, "valid"),
    ]) {
        let words: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(words[0], config.display().to_string(), "{row}");
        assert_eq!(words[1], seed.to_string(), "{row}");
        assert_eq!(words[2], verdict, "{row}");
    }
    assert!(
        rows[4].starts_with("4 runs in ")
            && rows[4].ends_with("2 invalid, 0 failed, 0 unknown, 2 valid; exit 1"),
        "{}",
        rows[4]
    );
    // One suite per run, one case per check, the failures naming their report.
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert_eq!(xml.matches("<testsuite ").count(), 4, "{xml}");
    assert!(xml.contains("name=\"gc-pause (seed 7)\""), "{xml}");
    assert!(xml.contains("<failure"), "{xml}");
    assert!(xml.contains("report.html"), "{xml}");
    let cases = xml.matches("<testcase ").count();
    assert!(cases >= 4 * 5, "a case per check: {cases}");
}

#[test]
fn test_all_stops_a_run_at_its_time_limit_and_a_failed_run_is_exit_3() {
    let dir = tempfile::tempdir().unwrap();
    let (_, fenced) = short_configs(dir.path());
    let store = dir.path().join("store");
    let (code, stdout, _) = test_all(
        &store,
        &[
            "--seed".as_ref(),
            "1".as_ref(),
            "--time-limit".as_ref(),
            "2s".as_ref(),
            fenced.as_os_str(),
        ],
    );
    assert_eq!(
        code, 2,
        "a run stopped at its limit proves nothing:\n{stdout}"
    );
    assert!(stdout.contains("unknown"), "{stdout}");
    assert!(stdout.contains("stopped at the time limit"), "{stdout}");
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "test: bad\nduration: 1s\nlock: { service: nosuch }\n").unwrap();
    let (code, stdout, _) = test_all(&store, &["--seed".as_ref(), "1".as_ref(), bad.as_os_str()]);
    assert_eq!(code, 3, "{stdout}");
    assert!(
        stdout.contains("failed: lock.service: unknown variant `nosuch`"),
        "{stdout}"
    );
    // A missing config is refused before anything runs.
    let (code, _, stderr) = test_all(&store, &[dir.path().join("none.yaml").as_os_str()]);
    assert_eq!(code, 3);
    assert!(stderr.contains("none.yaml: no such config"), "{stderr}");
}
