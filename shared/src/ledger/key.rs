//! Record keys, derived from the event's content and never from its delivery. Pure.

use crate::finding::{Finding, Source};
use sha2::{Digest, Sha256};

/// sha256 of bytes, hex.
pub fn digest_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The record for (remediation, finding generation). A redelivery or retry of the same event,
/// and an analyst's custom action on the same finding, map to the same record; a recurrence
/// (the source updated the finding) maps to a new one.
pub fn record_id(remediation: &str, finding: &Finding) -> String {
    // A custom action carries the Security Hub finding: same namespace as imported findings.
    let namespace = match finding.source {
        Source::Securityhub | Source::CustomAction => "securityhub",
        Source::Guardduty => "guardduty",
        Source::Config => "config",
    };
    let material = [remediation, namespace, &finding.id, &finding.generation].join("\n");
    format!("{remediation}#{}", &digest_hex(material.as_bytes())[..32])
}

/// The record for an event that yielded no finding: keyed on the event's own digest, so the
/// same bad event delivered again lands on the same record.
pub fn rejected_record_id(remediation: &str, event_digest: &str) -> String {
    format!("{remediation}#rejected-{}", &event_digest[..32.min(event_digest.len())])
}
