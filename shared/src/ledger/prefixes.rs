//! Which items of the shared outcome table belong to one remediation, by the start of their key.
//! Each function's role may touch only its own (IAM `dynamodb:LeadingKeys`), and
//! tests/template.rs holds the template to this function. Pure.

/// The partition-key prefixes of every item `remediation` writes: its records (`record_id`,
/// `rejected_record_id`: `<remediation>#…`), its budget counters (`counter_key`:
/// `budget#<remediation>#…`) and its suppressions (`Suppression::key`:
/// `suppress#<remediation>#…`). Each ends in `#`, so no remediation's prefix is the start of
/// another's (`s3-block#` is not a start of `s3-block-public-access#…`).
pub fn key_prefixes(remediation: &str) -> Vec<String> {
    vec![
        format!("{remediation}#"),
        format!("budget#{remediation}#"),
        format!("suppress#{remediation}#"),
        super::resource_partition(remediation),
        super::handle_partition(remediation),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::REMEDIATIONS;
    use crate::finding::parse_bytes;
    use crate::ledger::{counter_key, digest_hex, record_id, rejected_record_id, Suppression};

    const EVENT: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../events/s3-block-public-access/securityhub-s3.8-imported.json"
    ));

    /// One key of each kind a remediation writes, made by the ledger's own key functions.
    fn keys(remediation: &str) -> Vec<String> {
        let finding = parse_bytes(EVENT.as_bytes()).unwrap().remove(0);
        vec![
            record_id(remediation, &finding),
            rejected_record_id(remediation, &digest_hex(b"{broken")),
            counter_key(remediation, "123456789012", "2026-11-27T17"),
            Suppression::key(remediation, "arn:aws:s3:::reflex-demo-public"),
        ]
    }

    #[test]
    fn every_key_a_remediation_writes_starts_with_one_of_its_prefixes() {
        for name in REMEDIATIONS {
            let prefixes = key_prefixes(name);
            for key in keys(name) {
                assert!(
                    prefixes.iter().any(|p| key.starts_with(p.as_str())),
                    "{name}: {key} is under none of {prefixes:?}"
                );
            }
        }
    }

    #[test]
    fn no_remediation_owns_another_ones_keys() {
        // A remediation named `budget` or `suppress` would own every counter or suppression
        // (`budget#…`): the catalog has none.
        assert!(!REMEDIATIONS
            .iter()
            .any(|n| ["budget", "suppress"].contains(n)));
        // The catalog's names, and one that is the start of another's.
        let mut names: Vec<&str> = REMEDIATIONS.to_vec();
        names.push("s3-block");
        for a in &names {
            for b in names.iter().filter(|b| b != &a) {
                for key in keys(b) {
                    assert!(
                        !key_prefixes(a).iter().any(|p| key.starts_with(p.as_str())),
                        "{a} would own {b}'s item {key}"
                    );
                }
            }
        }
    }

    #[test]
    fn prefixes_hold_no_iam_wildcards_or_variables() {
        // They become `StringLike` patterns (`<prefix>*`): a `*`, `?` or `${…}` would widen them.
        for name in REMEDIATIONS {
            for p in key_prefixes(name) {
                assert!(!p.contains(['*', '?', '$']), "{p}");
            }
        }
    }
}
