//! `docs/results.schema.json`: the JSON Schema of `results.json`, generated
//! from the Rust types that write it, so a dashboard or a CI script can check
//! what it reads. The checked-in file is compared with the generated schema by
//! a test; regenerate it with
//!
//! ```sh
//! LEASEHOLD_UPDATE_SCHEMA=1 cargo test -p leasehold-results schema
//! ```

use crate::results::Results;

/// The schema of [`Results`] (JSON Schema draft 2020-12), as JSON.
pub fn results_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(Results)).expect("a schema is JSON")
}

/// The schema as the checked-in file holds it: pretty-printed, one newline at
/// the end.
pub fn results_schema_text() -> String {
    let mut text = serde_json::to_string_pretty(&results_schema()).expect("a schema is JSON");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{sample_results, seed_anomaly};
    use leasehold_checker::{CheckReport, Validity};

    fn checked_in() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/results.schema.json")
    }

    #[test]
    fn the_checked_in_schema_is_the_generated_one() {
        let path = checked_in();
        let generated = results_schema_text();
        if std::env::var_os("LEASEHOLD_UPDATE_SCHEMA").is_some() {
            std::fs::write(&path, &generated).unwrap();
        }
        let file = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            file == generated,
            "{} is not the schema of the Results type: regenerate it with \
             LEASEHOLD_UPDATE_SCHEMA=1 cargo test -p leasehold-results schema",
            path.display()
        );
    }

    #[test]
    fn results_validate_against_the_schema_and_broken_ones_do_not() {
        let validator = jsonschema::validator_for(&results_schema()).unwrap();
        let mut r = sample_results(Validity::Invalid);
        r.checks = vec![CheckReport {
            judged: leasehold_checker::Judged::new(1, "accepted writes"),
            name: "stale-write".into(),
            validity: Validity::Invalid,
            summary: "1 stale write".into(),
            anomalies: vec![seed_anomaly()],
            stats: Default::default(),
        }];
        let value = serde_json::to_value(&r).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&value)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{errors:#?}");
        // A verdict the type does not know, a missing field, a string count.
        for (pointer, bad) in [
            ("/verdict", serde_json::json!("maybe")),
            ("/counts/ops", serde_json::json!("three")),
        ] {
            let mut broken = value.clone();
            *broken.pointer_mut(pointer).unwrap() = bad;
            assert!(
                !validator.is_valid(&broken),
                "{pointer} should not validate"
            );
        }
        let mut missing = value.clone();
        missing.as_object_mut().unwrap().remove("seed");
        assert!(!validator.is_valid(&missing));
    }
}
