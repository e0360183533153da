//! Record keys, derived from the event's content and never from its delivery. Pure.

use crate::finding::Finding;
use sha2::{Digest, Sha256};

/// sha256 of bytes, hex.
pub fn digest_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The record for (remediation, finding generation). A redelivery or retry of the same event,
/// and an analyst's custom action on the same finding, map to the same record; a recurrence
/// (the source updated the finding) maps to a new one.
pub fn record_id(remediation: &str, finding: &Finding) -> String {
    // A custom action carries the Security Hub finding: same namespace as imported findings;
    // a GuardDuty finding through Security Hub: the same as straight from GuardDuty.
    let material = [
        remediation,
        finding.family(),
        &finding.id,
        &finding.generation,
    ]
    .join("\n");
    format!("{remediation}#{}", &digest_hex(material.as_bytes())[..32])
}

/// The record for an event that yielded no finding: keyed on the event's own digest, so the
/// same bad event delivered again lands on the same record.
pub fn rejected_record_id(remediation: &str, event_digest: &str) -> String {
    format!(
        "{remediation}#rejected-{}",
        &event_digest[..32.min(event_digest.len())]
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::parse_bytes;

    const EVENT: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../events/s3-block-public-access/securityhub-s3.8-imported.json"
    ));
    const ACTION: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../events/s3-block-public-access/securityhub-custom-action-remediate-s3.3.json"
    ));

    fn finding(raw: &str) -> Finding {
        parse_bytes(raw.as_bytes()).unwrap().remove(0)
    }

    #[test]
    fn keys_follow_content_not_delivery() {
        let f = finding(EVENT);
        // A redelivery has a new EventBridge id and time but the same finding: same record.
        let mut v: serde_json::Value = serde_json::from_str(EVENT).unwrap();
        v["id"] = "another-delivery".into();
        v["time"] = "2026-11-21T00:00:00Z".into();
        let redelivered = crate::finding::parse_event(&v).unwrap().remove(0);
        assert_eq!(record_id("r", &f), record_id("r", &redelivered));
        // A new generation of the finding: a new record.
        let mut recurred = f.clone();
        recurred.generation = "2026-11-22T00:00:00.000Z".into();
        assert_ne!(record_id("r", &f), record_id("r", &recurred));
        // Another remediation on the same finding: its own record.
        assert_ne!(record_id("r", &f), record_id("s", &f));
        // A custom action shares the Security Hub namespace with imported findings.
        let mut via_action = finding(ACTION);
        via_action.id = f.id.clone();
        via_action.generation = f.generation.clone();
        assert_eq!(record_id("r", &f), record_id("r", &via_action));
        assert!(record_id("s3-block-public-access", &f).starts_with("s3-block-public-access#"));
    }

    #[test]
    fn rejected_keys_follow_the_event_digest() {
        let d = digest_hex(b"{broken");
        assert_eq!(d.len(), 64);
        assert_eq!(
            rejected_record_id("r", &d),
            rejected_record_id("r", &digest_hex(b"{broken"))
        );
        assert_ne!(
            rejected_record_id("r", &d),
            rejected_record_id("r", &digest_hex(b"{broken2"))
        );
        assert_eq!(rejected_record_id("r", "short"), "r#rejected-short");
    }
}
