//! Table-driven tests over the committed sample events.

use super::*;

macro_rules! sample {
    ($path:literal) => {
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../events/", $path))
    };
}

fn one(raw: &str) -> Finding {
    let mut findings = parse_bytes(raw.as_bytes()).expect("parses");
    assert_eq!(findings.len(), 1);
    findings.remove(0)
}

#[test]
fn actionable_samples_normalise() {
    let bucket = Resource {
        kind: ResourceKind::S3Bucket,
        id: "reflex-demo-public".into(),
        arn: Some("arn:aws:s3:::reflex-demo-public".into()),
    };
    // (sample, source, kind, severity, intent)
    let cases: &[(&str, Source, FindingKind, u8, Option<Intent>)] = &[
        (sample!("s3-block-public-access/securityhub-s3.8-imported.json"), Source::Securityhub, FindingKind::Control("S3.8".into()), 70, None),
        (sample!("s3-block-public-access/securityhub-s3.2-legacy-control-id.json"), Source::Securityhub, FindingKind::Control("S3.2".into()), 70, None),
        (sample!("s3-block-public-access/securityhub-custom-action-remediate-s3.3.json"), Source::CustomAction, FindingKind::Control("S3.3".into()), 90, Some(Intent::Remediate)),
        (sample!("s3-block-public-access/config-securityhub-s3-bucket-public-read-prohibited.json"), Source::Config, FindingKind::ConfigRule("securityhub-s3-bucket-public-read-prohibited-8fa6bd2a".into()), 40, None),
        (sample!("s3-block-public-access/config-conformance-pack-s3-bucket-public-write-prohibited.json"), Source::Config, FindingKind::ConfigRule("s3-bucket-public-write-prohibited-conformance-pack-kuyoa3x8n".into()), 40, None),
        (sample!("s3-block-public-access/guardduty-bucket-block-public-access-disabled.json"), Source::Guardduty, FindingKind::GuarddutyType("Policy:S3/BucketBlockPublicAccessDisabled".into()), 20, None),
    ];
    for (raw, source, kind, severity, intent) in cases {
        let f = one(raw);
        assert_eq!(f.source, *source, "{kind:?}");
        assert_eq!(&f.kind, kind);
        assert_eq!(f.severity.normalized, *severity, "{kind:?}");
        assert_eq!(f.intent, *intent, "{kind:?}");
        assert_eq!(f.account, "123456789012");
        assert_eq!(f.region, "us-east-1");
        assert!(f.inactive.is_none(), "{kind:?}: {:?}", f.inactive);
        assert!(f.resources.contains(&bucket), "{kind:?}: {:?}", f.resources);
        assert!(
            f.product_arn
                .starts_with("arn:aws:securityhub:us-east-1::product/aws/"),
            "{}",
            f.product_arn
        );
        assert!(!f.generation.is_empty() && !f.id.is_empty());
    }
}

#[test]
fn guardduty_details_are_lifted() {
    let f = one(sample!(
        "s3-block-public-access/guardduty-bucket-block-public-access-disabled.json"
    ));
    assert_eq!(
        f.details.access_key_id.as_deref(),
        Some("ASIAZ3EXAMPLE7QWERTY")
    );
    assert_eq!(f.details.user_name.as_deref(), Some("ci-deployer"));
    assert_eq!(f.details.remote_ip.as_deref(), Some("198.51.100.23"));
    assert_eq!(f.severity.label, SeverityLabel::Low);
    assert_eq!(
        f.product_arn,
        "arn:aws:securityhub:us-east-1::product/aws/guardduty"
    );
}

#[test]
fn inactive_samples_say_why() {
    let cases: &[(&str, &str)] = &[
        (
            sample!("non-actionable/securityhub-s3.8-passed-resolved.json"),
            "workflow status RESOLVED",
        ),
        (
            sample!("non-actionable/securityhub-s3.8-archived.json"),
            "record state ARCHIVED",
        ),
        (
            sample!("non-actionable/config-compliant.json"),
            "compliance type COMPLIANT",
        ),
        (
            sample!("non-actionable/guardduty-archived.json"),
            "archived in GuardDuty",
        ),
    ];
    for (raw, why) in cases {
        assert_eq!(one(raw).inactive.as_deref(), Some(*why));
    }
}

#[test]
fn foreign_samples_parse_with_their_own_account_and_product() {
    assert_eq!(
        one(sample!(
            "non-actionable/securityhub-s3.8-other-account.json"
        ))
        .account,
        "999999999999"
    );
    assert_eq!(
        one(sample!(
            "non-actionable/securityhub-s3.8-untrusted-product.json"
        ))
        .product_arn,
        "arn:aws:securityhub:us-east-1:999999999999:product/999999999999/default"
    );
}

#[test]
fn hostile_samples_are_rejected_with_a_reason() {
    let cases: &[(&str, &str)] = &[
        (sample!("hostile/truncated.json"), "not valid JSON"),
        (
            sample!("hostile/securityhub-missing-fields.json"),
            "missing field `AwsAccountId`",
        ),
        (
            sample!("hostile/guardduty-missing-resource.json"),
            "missing field `resource`",
        ),
        (
            sample!("hostile/custom-action-not-reflex.json"),
            "\"SendToTicketing\" is not a Reflex action",
        ),
        (sample!("hostile/severity-wrong-type.json"), "invalid type"),
        (
            sample!("hostile/not-an-eventbridge-event.json"),
            "not an EventBridge event",
        ),
        (
            sample!("hostile/empty-findings.json"),
            "detail.findings is empty",
        ),
        (
            sample!("non-actionable/ec2-state-change.json"),
            "unsupported event",
        ),
    ];
    for (raw, want) in cases {
        let err = parse_bytes(raw.as_bytes()).expect_err(want).to_string();
        assert!(err.contains(want), "{err:?} should contain {want:?}");
    }
}

#[test]
fn s3_arns_keep_the_whole_bucket_name() {
    let f = one(sample!("hostile/bucket-name-path-traversal.json"));
    assert_eq!(f.resources[0].id, "../../etc/passwd");
    assert_eq!(
        id_from_arn("arn:aws:ec2:us-east-1:123456789012:instance/i-0abc"),
        "i-0abc"
    );
    assert_eq!(
        id_from_arn("arn:aws:iam::123456789012:user/path/alice"),
        "alice"
    );
}

#[test]
fn severities_normalise() {
    let gd: &[(f64, u8, SeverityLabel)] = &[
        (0.5, 5, SeverityLabel::Informational),
        (2.0, 20, SeverityLabel::Low),
        (5.0, 50, SeverityLabel::Medium),
        (8.9, 89, SeverityLabel::High),
        (9.0, 90, SeverityLabel::Critical),
        (42.0, 100, SeverityLabel::Critical),
    ];
    for (score, n, label) in gd {
        assert_eq!(
            Severity::from_guardduty(*score),
            Severity {
                normalized: *n,
                label: *label
            },
            "{score}"
        );
    }
    let sh: &[(u8, SeverityLabel)] = &[
        (0, SeverityLabel::Informational),
        (39, SeverityLabel::Low),
        (40, SeverityLabel::Medium),
        (70, SeverityLabel::High),
        (90, SeverityLabel::Critical),
        (200, SeverityLabel::Critical),
    ];
    for (n, label) in sh {
        assert_eq!(Severity::from_normalized(*n).label, *label, "{n}");
    }
}

#[test]
fn partitions() {
    assert_eq!(partition_for_region("cn-north-1"), "aws-cn");
    assert_eq!(partition_for_region("us-gov-west-1"), "aws-us-gov");
    assert_eq!(partition_for_region("eu-west-1"), "aws");
}

mod hostile_input {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Arbitrary bytes never panic the parser.
        #[test]
        fn arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse_bytes(&bytes);
        }

        /// A real event with any one field replaced by an arbitrary JSON scalar never panics.
        #[test]
        fn mutated_samples(path in "[a-zA-Z]{1,12}", value in prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<f64>().prop_map(serde_json::Value::from),
            ".{0,20}".prop_map(serde_json::Value::from),
        ]) {
            for raw in [
                sample!("s3-block-public-access/securityhub-s3.8-imported.json"),
                sample!("s3-block-public-access/guardduty-bucket-block-public-access-disabled.json"),
                sample!("s3-block-public-access/config-securityhub-s3-bucket-public-read-prohibited.json"),
            ] {
                let mut v: serde_json::Value = serde_json::from_str(raw).unwrap();
                mutate(&mut v, &path, &value);
                let _ = parse_event(&v);
            }
        }
    }

    /// Replace every field whose name contains `needle` (case-insensitive), at any depth.
    fn mutate(v: &mut serde_json::Value, needle: &str, with: &serde_json::Value) {
        match v {
            serde_json::Value::Object(map) => {
                for (k, child) in map.iter_mut() {
                    if k.to_lowercase().contains(&needle.to_lowercase()) {
                        *child = with.clone();
                    } else {
                        mutate(child, needle, with);
                    }
                }
            }
            serde_json::Value::Array(items) => {
                items.iter_mut().for_each(|c| mutate(c, needle, with))
            }
            _ => {}
        }
    }
}
