//! Table-driven tests over the committed sample events.

use super::*;

mod catalog_fields;

macro_rules! sample {
    ($path:literal) => {
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../events/", $path))
    };
}

/// Addresses from text, for expected values.
fn ips(list: &[&str]) -> Vec<std::net::IpAddr> {
    list.iter()
        .map(|s| s.parse().expect("an address"))
        .collect()
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
    assert_eq!(f.details.remote_ips, ips(&["198.51.100.23"]));
    assert_eq!(f.details.user_type.as_deref(), Some("AssumedRole"));
    assert_eq!(
        f.details.principal_id.as_deref(),
        Some("AROAZ3EXAMPLEPRINCIPAL:ci-session")
    );
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

/// What one real-shape sample must parse to.
struct Shape {
    file: &'static str,
    raw: &'static str,
    kind: FindingKind,
    severity: u8,
    /// `Some(why)` when the finding must be inactive.
    inactive: Option<&'static str>,
    check: fn(&Finding),
}

fn nothing(_: &Finding) {}

/// Every shape in the design's "Real event shapes", each from a committed sample in
/// `events/real-shapes/`: a real AWS event is never malformed.
#[test]
fn real_shapes_parse_as_aws_sends_them() {
    use FindingKind::*;
    macro_rules! shape {
        ($file:literal, $kind:expr, $sev:expr, $inactive:expr, $check:expr) => {
            Shape {
                file: $file,
                raw: include_str!(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/../events/real-shapes/",
                    $file
                )),
                kind: $kind,
                severity: $sev,
                inactive: $inactive,
                check: $check,
            }
        };
    }
    let s3_8 = || Control("S3.8".into());
    let trail2 = || Control("CloudTrail.2".into());
    let cases = [
        shape!("envelope-extra-keys-any-order.json", GuarddutyType("Policy:S3/BucketBlockPublicAccessDisabled".into()), 20, None, nothing),
        shape!("envelope-account-differs-delegated-admin.json", GuarddutyType("Policy:S3/BucketBlockPublicAccessDisabled".into()), 20, None,
            |f| assert_eq!(f.account, "123456789012", "the finding's account, not the envelope's")),
        shape!("guardduty-sample-finding.json", GuarddutyType("Policy:S3/BucketBlockPublicAccessDisabled".into()), 20, None,
            |f| assert!(f.sample)),
        shape!("guardduty-s3-policy-access-key-resource-float-severity.json", GuarddutyType("Policy:S3/BucketAnonymousAccessGranted".into()), 80, None, |f| {
            assert!(f.resources.iter().any(|r| r.kind == ResourceKind::S3Bucket && r.id == "reflex-demo-public"), "{:?}", f.resources);
            assert!(!f.sample);
        }),
        shape!("guardduty-port-probe-integer-severity-epoch-launch-time.json", GuarddutyType("Recon:EC2/PortProbeUnprotectedPort".into()), 20, None, |f| {
            assert_eq!(f.details.remote_ips, ips(&["203.0.113.77", "203.0.113.78"]), "each probe's address");
            assert_eq!(f.details.instance_id.as_deref(), Some("i-0abc1234def567890"));
        }),
        shape!("guardduty-rdp-login-attempt.json", GuarddutyType("UnauthorizedAccess:EC2/RDPBruteForce".into()), 50, None,
            |f| assert_eq!(f.details.remote_ips, ips(&["192.0.2.200"]))),
        shape!("securityhub-control-both-consolidated-and-per-standard-ids.json", s3_8(), 70, None, nothing),
        shape!("securityhub-pci-per-standard-control-id.json", trail2(), 70, None, |f| {
            assert_eq!(f.resources[0].kind, ResourceKind::CloudTrailTrail);
        }),
        shape!("securityhub-pci-per-standard-control-id-unmapped.json",
            Unrecognised("Security Hub control finding: per-standard control id \"PCI.S3.1\" has no known security control id".into()), 70, None, nothing),
        shape!("securityhub-cis-1.2-rule-id.json", trail2(), 70, None, nothing),
        shape!("securityhub-compliance-warning.json", s3_8(), 70, Some("compliance status WARNING"), nothing),
        shape!("securityhub-severity-product-normalized-no-label.json", s3_8(), 70, None,
            |f| assert_eq!(f.severity.label, SeverityLabel::High)),
        shape!("securityhub-severity-floats.json", s3_8(), 40, None,
            |f| assert_eq!(f.severity.label, SeverityLabel::Medium)),
        shape!("securityhub-severity-product-label-normalized.json", s3_8(), 70, None, nothing),
        shape!("securityhub-workflowstate-disagrees-with-workflow-status.json", s3_8(), 70, None, nothing),
        shape!("securityhub-resource-id-not-an-arn.json", Control("CloudTrail.1".into()), 70, None, |f| {
            assert_eq!(f.resources[0].id, "123456789012");
            assert_eq!(f.resources[0].arn, None);
        }),
        shape!("securityhub-third-party-no-compliance-offset-timestamps.json",
            Unrecognised("Acme Scanner finding of type \"Software and Configuration Checks/Vulnerabilities/CVE\"".into()), 70, None,
            |f| assert_eq!(f.generation, "2026-11-20T10:14:55.123Z", "one canonical form")),
        shape!("securityhub-guardduty-finding.json", GuarddutyType("UnauthorizedAccess:EC2/SSHBruteForce".into()), 20, None, |f| {
            assert_eq!(f.id, "60b8c1d2e3f4a5b6c7d8e9f0a1b2c3d5", "GuardDuty's own finding id");
            assert_eq!(f.family(), "guardduty");
            assert_eq!(f.source, Source::Securityhub, "feedback still goes to Security Hub");
            assert_eq!(f.details.remote_ips, ips(&["203.0.113.5"]));
            assert_eq!(f.details.instance_id.as_deref(), Some("i-0abc1234def567890"));
        }),
        shape!("securityhub-config-finding.json", ConfigRule("team-x-no-public-buckets".into()), 40, None,
            |f| assert_eq!(f.resources[0].id, "reflex-demo-public")),
        shape!("securityhub-inspector-finding.json", Vulnerability("CVE-2024-6387".into()), 70, None,
            |f| assert_eq!(f.details.instance_id.as_deref(), Some("i-0abc1234def567890"))),
        shape!("config-first-evaluation-annotation-newline.json", ConfigRule("securityhub-s3-bucket-public-read-prohibited-8fa6bd2a".into()), 40, None, nothing),
        shape!("config-annotation-null.json", ConfigRule("securityhub-s3-bucket-public-read-prohibited-8fa6bd2a".into()), 40, None, nothing),
        shape!("config-account-level-resource.json", ConfigRule("securityhub-cloudtrail-enabled-c0ffee12".into()), 40, None, |f| {
            assert_eq!(f.resources[0].kind, ResourceKind::Other("AWS::::Account".into()));
            assert_eq!((f.resources[0].id.as_str(), f.resources[0].arn.as_ref()), ("123456789012", None));
        }),
        shape!("config-iam-user-named-by-unique-id.json", ConfigRule("securityhub-iam-user-no-policies-check-1a2b3c4d".into()), 40, None, |f| {
            assert_eq!(f.resources[0].kind, ResourceKind::IamUser);
            assert_eq!(f.resources[0].arn, None, "a unique id is not a name: no ARN is made up");
        }),
        // What the catalog's functions read from a finding (checks in catalog_fields.rs).
        shape!("guardduty-ssh-brute-force-ipv4.json", GuarddutyType("UnauthorizedAccess:EC2/SSHBruteForce".into()), 20, None, catalog_fields::ssh_brute_force),
        shape!("guardduty-port-probe-several-ips.json", GuarddutyType("Recon:EC2/PortProbeUnprotectedPort".into()), 20, None, catalog_fields::port_probe_several_ips),
        shape!("securityhub-guardduty-port-probe-several-ips.json", GuarddutyType("Recon:EC2/PortProbeUnprotectedPort".into()), 20, None, catalog_fields::port_probe_several_ips),
        shape!("guardduty-ipv6-remote.json", GuarddutyType("Recon:EC2/PortProbeUnprotectedPort".into()), 20, None, catalog_fields::ipv6_remote),
        shape!("securityhub-guardduty-ipv6-remote.json", GuarddutyType("Recon:EC2/PortProbeUnprotectedPort".into()), 20, None, catalog_fields::ipv6_remote),
        shape!("guardduty-dns-request-domain.json", GuarddutyType("Backdoor:EC2/C&CActivity.B!DNS".into()), 80, None, catalog_fields::dns_request_domain),
        shape!("securityhub-guardduty-dns-request-domain.json", GuarddutyType("Backdoor:EC2/C&CActivity.B!DNS".into()), 80, None, catalog_fields::dns_request_domain),
        shape!("guardduty-iam-access-key-user-type.json", GuarddutyType("Stealth:IAMUser/CloudTrailLoggingDisabled".into()), 20, None, catalog_fields::access_key_user_type),
        shape!("securityhub-guardduty-iam-access-key-user-type.json", GuarddutyType("Stealth:IAMUser/CloudTrailLoggingDisabled".into()), 20, None, catalog_fields::access_key_user_type),
        shape!("securityhub-ec2.18-control-parameters.json", Control("EC2.18".into()), 70, None, catalog_fields::ec2_18_control_parameters),
        shape!("securityhub-inspector-ec2-cve.json", Vulnerability("CVE-2024-3094".into()), 90, None, catalog_fields::inspector_ec2_cve),
        shape!("config-iam-group.json", ConfigRule("iam-group-has-users-check-conformance-pack-z9y8x7w6v".into()), 40, None, catalog_fields::config_iam_group),
    ];
    for c in &cases {
        let f = one(c.raw);
        assert_eq!(f.kind, c.kind, "{}", c.file);
        assert_eq!(f.severity.normalized, c.severity, "{}", c.file);
        assert_eq!(f.inactive.as_deref(), c.inactive, "{}", c.file);
        assert_eq!(f.account, "123456789012", "{}", c.file);
        (c.check)(&f);
    }
    // Every sample in the folder is in the table (or below).
    let listed: Vec<&str> = cases.iter().map(|c| c.file).collect();
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../events/real-shapes");
    let mut unlisted: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| !listed.contains(&n.as_str()))
        .collect();
    unlisted.sort();
    assert_eq!(
        unlisted,
        [
            "custom-action-another-teams-action.json",
            "custom-action-several-findings-several-products.json",
            "securityhub-findings-imported-v2.json",
        ],
        "each real-shape sample is checked"
    );
}

#[test]
fn real_shapes_that_are_not_for_reflex_are_unsupported_never_malformed() {
    let cases = [
        (
            sample!("real-shapes/custom-action-another-teams-action.json"),
            "\"SendToTicketing\" is not a Reflex action",
        ),
        (
            sample!("real-shapes/securityhub-findings-imported-v2.json"),
            "Findings Imported V2",
        ),
    ];
    for (raw, want) in cases {
        match parse_bytes(raw.as_bytes()) {
            Err(e @ (ParseError::NotForReflex(_) | ParseError::Unsupported { .. })) => {
                assert!(e.to_string().contains(want), "{e}")
            }
            other => panic!("{want}: {other:?}"),
        }
    }
    // A custom action on several findings of several products: each parses, each carries the
    // analyst's intent.
    let findings = parse_bytes(
        sample!("real-shapes/custom-action-several-findings-several-products.json").as_bytes(),
    )
    .unwrap();
    let kinds: Vec<&str> = findings.iter().map(|f| f.kind.name()).collect();
    assert_eq!(
        kinds,
        [
            "S3.3",
            "UnauthorizedAccess:EC2/SSHBruteForce",
            "CVE-2024-6387"
        ]
    );
    assert!(findings.iter().all(|f| f.intent == Some(Intent::Remediate)));
    assert!(findings.iter().all(|f| f.source == Source::CustomAction));
}

#[test]
fn timestamps_take_one_canonical_form() {
    let cases = [
        (
            "2026-11-20T10:14:55.123456+00:00",
            "2026-11-20T10:14:55.123Z",
        ),
        ("2026-11-20T10:14:55Z", "2026-11-20T10:14:55.000Z"),
        ("2026-11-20T12:14:55.5+02:00", "2026-11-20T10:14:55.500Z"),
        ("not a time", "not a time"),
    ];
    for (raw, want) in cases {
        assert_eq!(canonical_time(raw), want, "{raw}");
    }
}

/// Security Hub findings keep the identifiers Security Hub knows them by, for feedback, while a
/// GuardDuty finding keeps one identity (GuardDuty's own id) whichever way it arrives.
#[test]
fn security_hub_findings_keep_their_asff_identifiers() {
    let asff_ids = |raw: &str| -> Vec<(String, String)> {
        let v: serde_json::Value = serde_json::from_str(raw).unwrap();
        v["detail"]["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["Id"].as_str().unwrap().to_string(),
                    f["ProductArn"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let kept = |f: &Finding| {
        let sh = f.securityhub_finding.clone().expect("identifiers kept");
        (sh.id, sh.product_arn)
    };
    for raw in [
        sample!("real-shapes/securityhub-guardduty-finding.json"),
        sample!("s3-block-public-access/securityhub-s3.8-imported.json"),
        sample!("s3-block-public-access/securityhub-custom-action-approve-guardduty.json"),
        sample!("real-shapes/custom-action-several-findings-several-products.json"),
        sample!("real-shapes/securityhub-config-finding.json"),
    ] {
        let findings = parse_bytes(raw.as_bytes()).unwrap();
        let got: Vec<_> = findings.iter().map(kept).collect();
        assert_eq!(got, asff_ids(raw));
    }

    // A GuardDuty finding in Security Hub: reported under its ARN, recorded under its id.
    let in_sh = one(sample!(
        "s3-block-public-access/securityhub-custom-action-approve-guardduty.json"
    ));
    let direct = one(sample!(
        "s3-block-public-access/guardduty-bucket-block-public-access-disabled.json"
    ));
    assert_eq!(
        in_sh.securityhub_finding.as_ref().map(|sh| sh.id.as_str()),
        Some("arn:aws:guardduty:us-east-1:123456789012:detector/6cb5b3f3d1a2e4f5a6b7c8d9e0f1a2b3/finding/60b8c1d2e3f4a5b6c7d8e9f0a1b2c3d4")
    );
    assert_eq!(in_sh.id, "60b8c1d2e3f4a5b6c7d8e9f0a1b2c3d4");
    assert_eq!(
        crate::ledger::record_id("r", &in_sh),
        crate::ledger::record_id("r", &direct),
        "one record for the GuardDuty finding, whichever way it arrives"
    );

    // Findings that are not in Security Hub have none.
    for raw in [
        sample!("s3-block-public-access/guardduty-bucket-block-public-access-disabled.json"),
        sample!("s3-block-public-access/config-securityhub-s3-bucket-public-read-prohibited.json"),
    ] {
        assert_eq!(one(raw).securityhub_finding, None);
    }
}

/// Records stored before the identifiers were kept still read; new ones carry them.
#[test]
fn stored_findings_read_with_or_without_security_hub_identifiers() {
    let f = one(sample!(
        "s3-block-public-access/securityhub-s3.8-imported.json"
    ));
    let mut stored = serde_json::to_value(&f).unwrap();
    assert_eq!(
        stored["securityhub_finding"]["id"].as_str(),
        Some(f.id.as_str())
    );
    let again: Finding = serde_json::from_value(stored.clone()).unwrap();
    assert_eq!(again, f);
    stored
        .as_object_mut()
        .unwrap()
        .remove("securityhub_finding");
    let old: Finding = serde_json::from_value(stored).unwrap();
    assert_eq!(old.securityhub_finding, None);
    // Findings without them write no such key.
    let direct = one(sample!(
        "s3-block-public-access/guardduty-bucket-block-public-access-disabled.json"
    ));
    assert!(serde_json::to_value(&direct)
        .unwrap()
        .get("securityhub_finding")
        .is_none());
}
