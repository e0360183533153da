//! Policy overrides through the real pipeline, against the local AWS emulator. A Config
//! finding reaches the policy resolved to its managed-rule identifier (through
//! `config:DescribeConfigRules`), yet an override still names the rule by the words an operator
//! writes: its base name, the name it is deployed under, or the identifier.

use reflex_shared::policy::Mode;
use reflex_shared::status::{Reason, Status};
use reflex_tests::*;
use s3_block_public_access::BlockConfig;

const READ: &str = "S3_BUCKET_PUBLIC_READ_PROHIBITED";

/// Enforce, except a dry-run for findings the override's `types` names.
fn dry_run_for(types: &str) -> String {
    format!(
        "version: 1\nremediations:\n  s3-block-public-access:\n    mode: enforce\n    overrides:\n      - match: {{types: [\"{types}\"]}}\n        set: {{mode: dry-run}}"
    )
}

/// An alphanumeric token unique to this run (what a conformance pack or Security Hub appends).
fn token() -> String {
    unique("t")[2..].to_string()
}

#[tokio::test]
async fn a_dry_run_override_by_base_name_holds_for_a_conformance_pack_rule() {
    let h = Harness::with_policy(&dry_run_for("s3-bucket-public-read-prohibited")).await;
    let deployed = format!(
        "s3-bucket-public-read-prohibited-conformance-pack-{}",
        token()
    );
    h.managed_config_rule(&deployed, READ).await;
    let bucket = h.bucket(Some(ALL_OFF), &[]).await;

    let o = h.deliver_one(config_event(&bucket, &deployed)).await;

    assert_eq!(
        (o.status, o.reason, o.mode),
        (Status::DryRun, Reason::WouldChange, Some(Mode::DryRun)),
        "{o:?}"
    );
    assert!(
        o.detail
            .contains("remediations.s3-block-public-access.overrides[0]"),
        "the override chose the mode: {}",
        o.detail
    );
    assert_eq!(
        h.pab(&bucket).await,
        Some(ALL_OFF),
        "the bucket is unchanged"
    );
    assert!(h.calls.writes().is_empty(), "{:?}", h.calls.writes());
    let f = h
        .record(&o.record_id)
        .await
        .finding
        .expect("finding recorded");
    assert_eq!(f.kind.name(), READ, "evaluated as the resolved rule");
    assert_eq!(f.details.config_rule.as_deref(), Some(deployed.as_str()));
}

#[tokio::test]
async fn overrides_name_a_config_rule_by_deployed_name_base_name_or_identifier() {
    let team = format!("team-{}-no-public-buckets", token());
    let hub = format!("securityhub-s3-bucket-public-read-prohibited-{}", token());
    // (rule deployed as, override types, outcome)
    let cases = [
        (team.clone(), team.clone(), Status::DryRun),
        (team.clone(), READ.to_string(), Status::DryRun),
        (hub.clone(), hub.clone(), Status::DryRun),
        (
            hub.clone(),
            "s3-bucket-public-read-prohibited".to_string(),
            Status::DryRun,
        ),
        (
            hub.clone(),
            "s3-bucket-public-*".to_string(),
            Status::DryRun,
        ),
        // An override for another rule leaves this one enforced.
        (
            hub.clone(),
            "s3-bucket-public-write-prohibited".to_string(),
            Status::Succeeded,
        ),
    ];
    for (deployed, types, want) in cases {
        let h = Harness::with_policy(&dry_run_for(&types)).await;
        h.managed_config_rule(&deployed, READ).await;
        let bucket = h.bucket(Some(ALL_OFF), &[]).await;
        let o = h.deliver_one(config_event(&bucket, &deployed)).await;
        assert_eq!(o.status, want, "override {types:?} on {deployed}: {o:?}");
        let pab = if want == Status::DryRun {
            ALL_OFF
        } else {
            BlockConfig::ALL_ON
        };
        assert_eq!(h.pab(&bucket).await, Some(pab), "{types:?} on {deployed}");
    }
}

/// An override by the rule's identifier that enables the remediation (or lowers its threshold)
/// holds although the finding names the rule only by a team's own name: the policy's
/// per-kind settings are judged once the rule is identified, never on its name alone.
#[tokio::test]
async fn an_override_by_identifier_can_enable_a_rule_deployed_under_any_name() {
    let h = Harness::with_policy(&format!(
        "version: 1\ndefaults: {{enabled: false}}\nremediations:\n  s3-block-public-access:\n    overrides:\n      - match: {{types: [\"{READ}\"]}}\n        set: {{enabled: true}}"
    ))
    .await;
    let deployed = format!("team-x-{}", token());
    h.managed_config_rule(&deployed, READ).await;
    let bucket = h.bucket(Some(ALL_OFF), &[]).await;
    let o = h.deliver_one(config_event(&bucket, &deployed)).await;
    assert_eq!(
        (o.status, o.reason),
        (Status::Succeeded, Reason::Remediated),
        "{o:?}"
    );
    assert_eq!(h.pab(&bucket).await, Some(BlockConfig::ALL_ON));
}
