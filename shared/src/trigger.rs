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
}

impl Trigger {
    pub fn matches(&self, kind: &FindingKind) -> bool {
        match (self, kind) {
            (Trigger::GuarddutyType(pattern), FindingKind::GuarddutyType(t)) => {
                match pattern.strip_suffix('*') {
                    Some(prefix) => t.starts_with(prefix),
                    None => t == pattern,
                }
            }
            (Trigger::Control(c), FindingKind::Control(id)) => id == c,
            // By identity: the managed-rule identifier the pipeline resolved, never the name.
            (Trigger::ConfigRule(identifier), FindingKind::ConfigRule(resolved)) => {
                resolved == identifier
            }
            _ => false,
        }
    }
}

/// Does a deployed Config rule name stand for the rule `base`? Deployed names carry decoration:
/// Security Hub deploys `securityhub-<base>-<hash>`, conformance packs `<base>-conformance-pack-<id>`.
/// We match known decorations around a known base rather than strip guessed ones, so an unrelated
/// rule that merely starts with the same words never matches.
pub fn config_rule_matches(deployed: &str, base: &str) -> bool {
    fn is_token(s: &str) -> bool {
        !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric())
    }
    if deployed == base {
        return true;
    }
    if let Some(rest) = deployed
        .strip_prefix("securityhub-")
        .and_then(|r| r.strip_prefix(base))
    {
        return rest.strip_prefix('-').is_some_and(is_token);
    }
    deployed
        .strip_prefix(base)
        .and_then(|r| r.strip_prefix("-conformance-pack-"))
        .is_some_and(is_token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trigger_table() {
        let gd = |s: &str| FindingKind::GuarddutyType(s.into());
        let control = |s: &str| FindingKind::Control(s.into());
        let rule = |s: &str| FindingKind::ConfigRule(s.into());
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
}
