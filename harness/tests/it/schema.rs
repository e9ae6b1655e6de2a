//! `results.json` of real runs validates against the published schema,
//! `docs/results.schema.json`, which is the schema of the types that write it.

use crate::*;

#[test]
fn results_of_real_runs_validate_against_the_published_schema() {
    let schema: serde_json::Value = read_json(&repo().join("docs/results.schema.json"));
    assert_eq!(
        schema,
        leasehold_results::results_schema(),
        "docs/results.schema.json is stale: LEASEHOLD_UPDATE_SCHEMA=1 cargo test -p leasehold-results schema"
    );
    let validator = jsonschema::validator_for(&schema).unwrap();
    for (example, code) in [("gc-pause.yaml", 1), ("gc-pause-fenced.yaml", 0)] {
        let store = tempfile::tempdir().unwrap();
        let (out, dir) = run_example_in(store.path(), example, 3, &[]);
        assert_eq!(out.status.code(), Some(code), "{example}: {out:?}");
        let results = read_json(&dir.join("results.json"));
        let errors: Vec<String> = validator
            .iter_errors(&results)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{example}: {errors:#?}");
        // Checked again after `leasehold check` rewrote it.
        let check = leasehold().arg("check").arg(&dir).output().unwrap();
        assert_eq!(check.status.code(), Some(code), "{check:?}");
        assert!(validator.is_valid(&read_json(&dir.join("results.json"))));
    }
}
