//! The committed sample events (events/ec2-patch-instance/) parse as the findings this
//! remediation is written for, and resolve to the instance they name.
//!
//! Tests only (`#[cfg(test)] mod samples;` in lib.rs): a sample that cannot be read or parsed
//! panics with its path, which is the test failing.

use crate::params::Params;
use crate::progress::completion_handle;
use crate::resolve::{target_of, Refusal};
use reflex_shared::finding::{parse_event, FindingKind, Intent, Source};
use serde_json::Value;

fn sample(name: &str) -> Value {
    let path = format!(
        "{}/../../events/ec2-patch-instance/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

const INSTANCE: &str = "i-0abc1234def567890";

#[test]
fn findings_resolve_to_their_instance_or_say_why_not() {
    let cases: &[(&str, Source, &str, Result<(), &str>)] = &[
        (
            "securityhub-inspector-cve-critical.json",
            Source::Securityhub,
            "CVE-2024-6387",
            Ok(()),
        ),
        (
            "securityhub-inspector-second-cve-same-instance.json",
            Source::Securityhub,
            "CVE-2023-38408",
            Ok(()),
        ),
        (
            "securityhub-custom-action-remediate-inspector-cve.json",
            Source::CustomAction,
            "CVE-2024-6387",
            Ok(()),
        ),
        (
            "securityhub-inspector-cve-high-below-threshold.json",
            Source::Securityhub,
            "CVE-2024-2961",
            Err("below"),
        ),
    ];
    for (file, source, cve, want) in cases {
        let mut findings = parse_event(&sample(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(findings.len(), 1, "{file}");
        let f = findings.remove(0);
        assert_eq!(f.source, *source, "{file}");
        assert_eq!(
            f.kind,
            FindingKind::Vulnerability(cve.to_string()),
            "{file}"
        );
        assert_eq!(f.inactive, None, "{file}");
        if *source == Source::CustomAction {
            assert_eq!(f.intent, Some(Intent::Remediate));
        }
        match (target_of(&f, &Params::default()), want) {
            (Ok(t), Ok(())) => {
                assert_eq!(t.instance.id, INSTANCE, "{file}");
                assert_eq!(
                    t.instance.arn,
                    format!("arn:aws:ec2:us-east-1:123456789012:instance/{INSTANCE}")
                );
                assert_eq!(t.vulnerabilities, vec![cve.to_string()]);
            }
            (Err(Refusal::BelowThreshold(why)), Err(w)) => assert!(why.contains(w), "{why}"),
            (got, want) => panic!("{file}: {got:?}, wanted {want:?}"),
        }
    }
}

#[test]
fn the_completion_sample_names_its_command() {
    let event = sample("ssm-command-status-change-success.json");
    assert_eq!(
        completion_handle(&event).as_deref(),
        Some("e8d3c0e4-71f7-4491-898f-c9b35bee5f3b")
    );
}
