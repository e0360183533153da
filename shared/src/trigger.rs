//! Which findings a remediation handles. Pure matching, unit-tested with tables.

use crate::finding::FindingKind;
use serde::Serialize;

/// One kind of finding a remediation declares it handles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "name", rename_all = "kebab-case")]
pub enum Trigger {
    /// A GuardDuty finding type; a trailing `*` matches any suffix (`Backdoor:EC2/*`).
    GuarddutyType(&'static str),
    /// A Security Hub control id (`S3.2`).
    Control(&'static str),
    /// An AWS Config managed rule, by its identifier (`S3_BUCKET_PUBLIC_READ_PROHIBITED`),
    /// whatever name it is deployed under.
    ConfigRule(&'static str),
    /// A vulnerability (Amazon Inspector, through Security Hub) by its id; a trailing `*`
    /// matches any suffix (`CVE-*`).
    Vulnerability(&'static str),
}

impl Trigger {
    pub fn matches(&self, kind: &FindingKind) -> bool {
        match (self, kind) {
            (Trigger::GuarddutyType(pattern), FindingKind::GuarddutyType(t))
            | (Trigger::Vulnerability(pattern), FindingKind::Vulnerability(t)) => glob(pattern, t),
            (Trigger::Control(c), FindingKind::Control(id)) => id == c,
            // By identity: the managed-rule identifier the pipeline resolved, never the name.
            (Trigger::ConfigRule(identifier), FindingKind::ConfigRule(resolved)) => {
                resolved == identifier
            }
            _ => false,
        }
    }
}

/// `name` is `pattern`, or starts with what comes before the pattern's trailing `*`.
fn glob(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => name == pattern,
    }
}

/// Does a deployed Config rule name stand for the rule `base`? Deployed names carry decoration:
/// Security Hub deploys `securityhub-<base>-<hash>`, conformance packs `<base>-conformance-pack-<id>`.
/// We match known decorations around a known base rather than strip guessed ones, so an unrelated
/// rule that merely starts with the same words never matches.
pub fn config_rule_matches(deployed: &str, base: &str) -> bool {
    deployed == base || config_rule_base_names(deployed).any(|b| b == base)
}

/// The base names a deployed Config rule name carries inside one of the known decorations
/// (`securityhub-<base>-<hash>`, `<base>-conformance-pack-<id>`); none for an undecorated name.
/// The hash and the id are one alphanumeric token, so each decoration leaves exactly one base;
/// a name that fits both forms yields both.
pub fn config_rule_base_names(deployed: &str) -> impl Iterator<Item = &str> {
    fn is_token(s: &str) -> bool {
        !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric())
    }
    let security_hub = deployed
        .strip_prefix("securityhub-")
        .and_then(|r| r.rsplit_once('-'))
        .filter(|(_, hash)| is_token(hash))
        .map(|(base, _)| base);
    let conformance_pack = deployed
        .rsplit_once("-conformance-pack-")
        .filter(|(_, id)| is_token(id))
        .map(|(base, _)| base);
    security_hub
        .into_iter()
        .chain(conformance_pack)
        .filter(|base| !base.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trigger_table() {
        let gd = |s: &str| FindingKind::GuarddutyType(s.into());
        let control = |s: &str| FindingKind::Control(s.into());
        let rule = |s: &str| FindingKind::ConfigRule(s.into());
        let cve = |s: &str| FindingKind::Vulnerability(s.into());
        let cases: &[(Trigger, FindingKind, bool)] = &[
            (
                Trigger::GuarddutyType("Policy:S3/BucketAnonymousAccessGranted"),
                gd("Policy:S3/BucketAnonymousAccessGranted"),
                true,
            ),
            (
                Trigger::GuarddutyType("Policy:S3/BucketAnonymousAccessGranted"),
                gd("Policy:S3/BucketAnonymousAccessGranted2"),
                false,
            ),
            (
                Trigger::GuarddutyType("Backdoor:EC2/*"),
                gd("Backdoor:EC2/C&CActivity.B"),
                true,
            ),
            (
                Trigger::GuarddutyType("Backdoor:EC2/*"),
                gd("Backdoor:Lambda/C&CActivity.B"),
                false,
            ),
            (Trigger::Control("S3.2"), control("S3.2"), true),
            (Trigger::Control("S3.2"), control("S3.20"), false),
            (Trigger::Control("S3.2"), gd("S3.2"), false),
            // Config rules match by the identity the pipeline resolved, never by name.
            (
                Trigger::ConfigRule("S3_BUCKET_PUBLIC_READ_PROHIBITED"),
                rule("S3_BUCKET_PUBLIC_READ_PROHIBITED"),
                true,
            ),
            (
                Trigger::ConfigRule("S3_BUCKET_PUBLIC_READ_PROHIBITED"),
                rule("s3-bucket-public-read-prohibited"),
                false,
            ),
            (
                Trigger::ConfigRule("S3_BUCKET_PUBLIC_READ_PROHIBITED"),
                rule("S3_BUCKET_PUBLIC_WRITE_PROHIBITED"),
                false,
            ),
            (
                Trigger::ConfigRule("S3_BUCKET_PUBLIC_READ_PROHIBITED"),
                control("S3_BUCKET_PUBLIC_READ_PROHIBITED"),
                false,
            ),
            // Vulnerabilities: exact ids and the same trailing-`*` glob as GuardDuty types.
            (Trigger::Vulnerability("CVE-*"), cve("CVE-2024-6387"), true),
            (Trigger::Vulnerability("CVE-*"), cve("CVE-"), true),
            (
                Trigger::Vulnerability("CVE-*"),
                cve("GHSA-xxxx-yyyy-zzzz"),
                false,
            ),
            (Trigger::Vulnerability("CVE-*"), cve("cve-2024-6387"), false),
            (
                Trigger::Vulnerability("CVE-*"),
                cve("Software and Configuration Checks/Vulnerabilities/CVE"),
                false,
            ),
            (
                Trigger::Vulnerability("CVE-2024-6387"),
                cve("CVE-2024-6387"),
                true,
            ),
            (
                Trigger::Vulnerability("CVE-2024-6387"),
                cve("CVE-2024-63870"),
                false,
            ),
            (Trigger::Vulnerability("*"), cve("ALAS2-2024-2500"), true),
            // a kind of another family never matches, whatever its name
            (Trigger::Vulnerability("CVE-*"), gd("CVE-2024-6387"), false),
            (
                Trigger::Vulnerability("CVE-*"),
                control("CVE-2024-6387"),
                false,
            ),
            (Trigger::GuarddutyType("CVE-*"), cve("CVE-2024-6387"), false),
            (
                Trigger::Vulnerability("CVE-*"),
                FindingKind::Unrecognised("CVE-2024-6387".into()),
                false,
            ),
        ];
        for (trigger, kind, want) in cases {
            assert_eq!(trigger.matches(kind), *want, "{trigger:?} vs {kind:?}");
        }
    }

    #[test]
    fn config_rule_decorations() {
        let base = "s3-bucket-public-read-prohibited";
        let cases: &[(&str, bool)] = &[
            ("s3-bucket-public-read-prohibited", true),
            (
                "securityhub-s3-bucket-public-read-prohibited-8fa6bd2a",
                true,
            ),
            (
                "s3-bucket-public-read-prohibited-conformance-pack-kuyoa3x8n",
                true,
            ),
            // decorations that are not the known forms
            ("securityhub-s3-bucket-public-read-prohibited", false),
            ("securityhub-s3-bucket-public-read-prohibited-", false),
            (
                "securityhub-s3-bucket-public-read-prohibited-extra-words",
                false,
            ),
            ("s3-bucket-public-read-prohibited-conformance-pack-", false),
            ("s3-bucket-public-read-prohibited-custom", false),
            ("my-s3-bucket-public-read-prohibited", false),
            ("s3-bucket-public-read", false),
        ];
        for (deployed, want) in cases {
            assert_eq!(config_rule_matches(deployed, base), *want, "{deployed}");
        }
    }

    #[test]
    fn config_rule_base_names_come_from_known_decorations_only() {
        let cases: &[(&str, &[&str])] = &[
            (
                "securityhub-s3-bucket-public-read-prohibited-8fa6bd2a",
                &["s3-bucket-public-read-prohibited"],
            ),
            (
                "s3-bucket-public-read-prohibited-conformance-pack-kuyoa3x8n",
                &["s3-bucket-public-read-prohibited"],
            ),
            // a name that fits both forms carries both bases
            (
                "securityhub-x-conformance-pack-abc",
                &["x-conformance-pack", "securityhub-x"],
            ),
            ("s3-bucket-public-read-prohibited", &[]),
            ("team-x-no-public-buckets", &[]),
            ("securityhub-s3-bucket-public-read-prohibited-", &[]),
            ("s3-bucket-public-read-prohibited-conformance-pack-", &[]),
            ("s3-bucket-public-read-prohibited-conformance-pack-a-b", &[]),
            ("securityhub--8fa6bd2a", &[]),
        ];
        for (deployed, want) in cases {
            let got: Vec<&str> = config_rule_base_names(deployed).collect();
            assert_eq!(&got, want, "{deployed}");
        }
    }
}
