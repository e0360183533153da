//! s3-enforce-encryption end to end against the emulator: each test makes its own buckets.
//! (The common cases run on the TLS control: tests/support/s3_enforce_encryption.rs.)

use reflex_shared::ledger::Action;
use reflex_shared::pipeline::{self, Handled};
use reflex_shared::status::{Reason, Status};
use reflex_tests::s3_enforce_encryption::{
    bucket_with_policy, denies_plain_http, encryption, event_for, function, policy_text, S3_4, S3_5,
};
use reflex_tests::{common_cases, Harness, HarnessOptions};
use s3_enforce_encryption::{BucketState, BucketTarget, Fix, S3EnforceEncryption};
use serde_json::{json, Value};

common_cases!(S3EnforceEncryption);

const CUSTOM_ACTION: &str = "s3-enforce-encryption/securityhub-custom-action-remediate-s3.5.json";
const CONFIG_SSE: &str =
    "s3-enforce-encryption/config-securityhub-s3-bucket-server-side-encryption-enabled.json";
const CONFIG_TLS: &str =
    "s3-enforce-encryption/config-conformance-pack-s3-bucket-ssl-requests-only.json";
const SH_CONFIG_TLS: &str =
    "s3-enforce-encryption/securityhub-config-finding-ssl-requests-only-custom-name.json";

async fn world(policy: &str) -> (Harness, S3EnforceEncryption) {
    let h = Harness::with(HarnessOptions {
        policy: reflex_shared::policy::Policy::from_yaml(policy),
        ..Default::default()
    })
    .await;
    let f = function(&h);
    (h, f)
}

async fn deliver(h: &Harness, f: &S3EnforceEncryption, event: Value) -> Handled {
    h.deliver_to(f, event).await.expect("handled").remove(0)
}

fn apis(actions: &[Action]) -> Vec<&str> {
    actions.iter().map(|a| a.api.as_str()).collect()
}

/// Three statements of the team's own, laid out as people write them (indented, keys in their
/// own order), none about TLS.
fn three_statements(bucket: &str) -> String {
    format!(
        r#"{{
  "Version": "2012-10-17",
  "Id": "team-policy",
  "Statement": [
    {{ "Sid": "ReadForTheApp", "Effect": "Allow",
       "Principal": {{ "AWS": "arn:aws:iam::123456789012:role/app" }},
       "Action": ["s3:GetObject"], "Resource": "arn:aws:s3:::{bucket}/*" }},
    {{ "Sid": "NoDeletes", "Effect": "Deny", "Principal": "*",
       "Action": "s3:DeleteBucket", "Resource": "arn:aws:s3:::{bucket}" }},
    {{ "Resource": "arn:aws:s3:::{bucket}", "Action": "s3:ListBucket",
       "Principal": {{ "AWS": "arn:aws:iam::123456789012:root" }}, "Effect": "Allow", "Sid": "List" }}
  ]
}}"#
    )
}

/// The acceptance case: a policy with three statements keeps all three once the TLS statement
/// is merged; a second run changes nothing; rollback restores the exact document.
#[tokio::test]
async fn three_statements_kept_a_second_run_changes_nothing_and_rollback_restores_the_document() {
    let (h, f) = world("version: 1").await;
    let bucket = unique_bucket(&h, None).await;
    let original = three_statements(&bucket);
    put_policy(&h, &bucket, &original).await;

    let o = deliver(&h, &f, event_for(S3_5, &bucket, "-first")).await;
    assert_eq!(
        (o.status, o.reason),
        (Status::Succeeded, Reason::Remediated),
        "{o:?}"
    );
    let merged: Value = serde_json::from_str(&policy_text(&h, &bucket).await.unwrap()).unwrap();
    let before: Value = serde_json::from_str(&original).unwrap();
    let statements = merged["Statement"].as_array().unwrap();
    assert_eq!(statements.len(), 4, "{merged}");
    // The three, exactly as they were (compared as JSON values), then the TLS statement.
    assert_eq!(
        &statements[..3],
        before["Statement"].as_array().unwrap().as_slice()
    );
    assert_eq!(
        statements[3],
        s3_enforce_encryption::tls::statement(
            s3_enforce_encryption::tls::SID,
            &format!("arn:aws:s3:::{bucket}")
        )
    );
    assert_eq!(
        (&merged["Version"], &merged["Id"]),
        (&before["Version"], &before["Id"])
    );
    assert!(denies_plain_http(&h, &bucket).await);
    let r = h.record(&o.record_id).await;
    assert_eq!(apis(&r.actions), ["s3:PutBucketPolicy"]);
    let pre: BucketState = serde_json::from_value(r.pre_state.clone().unwrap()).unwrap();
    assert!(
        pre.encryption.is_none(),
        "a TLS finding never reads encryption"
    );
    assert_eq!(h.calls.writes(), ["PutBucketPolicy"]);

    // A second run (the finding again, a new generation): compliant, nothing added.
    let mut again = event_for(S3_5, &bucket, "-first");
    again["detail"]["findings"][0]["UpdatedAt"] = json!("2026-11-21T10:00:00.000Z");
    let second = deliver(&h, &f, again).await;
    assert_eq!(
        (second.status, second.reason),
        (Status::Skipped, Reason::AlreadyCompliant),
        "{second:?}"
    );
    let after_second: Value =
        serde_json::from_str(&policy_text(&h, &bucket).await.unwrap()).unwrap();
    assert_eq!(after_second, merged);
    assert_eq!(h.calls.writes(), ["PutBucketPolicy"], "no second write");

    // Rollback: the exact document, byte for byte.
    let until = chrono::Utc::now() + chrono::Duration::hours(1);
    let rolled = pipeline::rollback(
        &h.setup,
        &f,
        &o.record_id,
        "arn:aws:iam::123456789012:user/op",
        false,
        until,
    )
    .await
    .unwrap();
    assert_eq!(rolled.status, Status::RolledBack, "{rolled:?}");
    assert_eq!(
        policy_text(&h, &bucket).await.as_deref(),
        Some(original.as_str())
    );
}

/// S3.4 sets SSE-S3 and leaves the bucket policy alone; rollback deletes the configuration
/// that was not there.
#[tokio::test]
async fn s3_4_turns_on_sse_s3_only_and_rollback_removes_it() {
    let (h, f) = world("version: 1").await;
    let bucket = unique_bucket(&h, None).await;
    let policy = three_statements(&bucket);
    put_policy(&h, &bucket, &policy).await;
    let o = deliver(&h, &f, event_for(S3_4, &bucket, "")).await;
    assert_eq!(o.status, Status::Succeeded, "{o:?}");
    // No S3 Bucket Key asked for: S3 (and moto) answer `false` or leave it out.
    let rules = encryption(&h, &bucket).await;
    assert!(
        matches!(&rules[..], [(a, None, None | Some(false))] if a == "AES256"),
        "{rules:?}"
    );
    assert_eq!(
        policy_text(&h, &bucket).await.as_deref(),
        Some(policy.as_str())
    );
    assert_eq!(h.calls.writes(), ["PutBucketEncryption"]);
    let r = h.record(&o.record_id).await;
    let target: BucketTarget = serde_json::from_value(r.target.clone().unwrap()).unwrap();
    assert_eq!(target.fix, Fix::DefaultEncryption);
    assert_eq!(
        r.pre_state,
        Some(json!({"encryption": {"kind": "none"}})),
        "the previous configuration, recorded: none"
    );

    let until = chrono::Utc::now() + chrono::Duration::hours(1);
    let rolled = pipeline::rollback(
        &h.setup,
        &f,
        &o.record_id,
        "arn:aws:iam::123456789012:user/op",
        false,
        until,
    )
    .await
    .unwrap();
    assert_eq!(rolled.status, Status::RolledBack, "{rolled:?}");
    assert!(encryption(&h, &bucket).await.is_empty());
    assert_eq!(
        h.calls.writes(),
        ["PutBucketEncryption", "DeleteBucketEncryption"]
    );
    assert_eq!(
        policy_text(&h, &bucket).await.as_deref(),
        Some(policy.as_str())
    );
}

/// S3.5 adds the statement and leaves encryption alone, even where there is none.
#[tokio::test]
async fn s3_5_never_changes_encryption() {
    let (h, f) = world("version: 1").await;
    let bucket = unique_bucket(&h, None).await;
    let o = deliver(&h, &f, event_for(S3_5, &bucket, "")).await;
    assert_eq!(o.status, Status::Succeeded, "{o:?}");
    assert!(denies_plain_http(&h, &bucket).await);
    assert!(encryption(&h, &bucket).await.is_empty());
    assert!(
        !h.calls.calls().iter().any(|c| c.contains("Encryption")),
        "{:?}",
        h.calls.calls()
    );
}

/// The KMS key named in the parameters: SSE-KMS with an S3 Bucket Key.
#[tokio::test]
async fn the_kms_key_from_the_parameters() {
    let key = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    let (h, f) = world(&format!(
        "version: 1\nremediations:\n  s3-enforce-encryption:\n    parameters: {{kms_key_id: '{key}'}}"
    ))
    .await;
    let bucket = unique_bucket(&h, None).await;
    let o = deliver(&h, &f, event_for(S3_4, &bucket, "")).await;
    assert_eq!(o.status, Status::Succeeded, "{o:?}");
    assert_eq!(
        encryption(&h, &bucket).await,
        [("aws:kms".to_string(), Some(key.to_string()), Some(true))]
    );
}

/// A bucket that already encrypts by default (here with KMS) is compliant under S3.4, whatever
/// key the parameters name: nothing changes.
#[tokio::test]
async fn a_bucket_encrypted_already_is_left_as_it_is() {
    let (h, f) = world("version: 1").await;
    let bucket = unique_bucket(&h, None).await;
    h.observer_client()
        .put_bucket_encryption()
        .bucket(&bucket)
        .server_side_encryption_configuration(
            aws_sdk_s3::types::ServerSideEncryptionConfiguration::builder()
                .rules(
                    aws_sdk_s3::types::ServerSideEncryptionRule::builder()
                        .apply_server_side_encryption_by_default(
                            aws_sdk_s3::types::ServerSideEncryptionByDefault::builder()
                                .sse_algorithm(aws_sdk_s3::types::ServerSideEncryption::AwsKms)
                                .kms_master_key_id("alias/team")
                                .build()
                                .unwrap(),
                        )
                        .build(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let o = deliver(&h, &f, event_for(S3_4, &bucket, "")).await;
    assert_eq!(
        (o.status, o.reason),
        (Status::Skipped, Reason::AlreadyCompliant),
        "{o:?}"
    );
    assert!(h.calls.writes().is_empty());
}

/// A policy with no statements of its own but a Version (as some tools leave it): the
/// statement is added, and rollback puts the empty policy back.
#[tokio::test]
async fn rollback_restores_a_policy_that_held_no_statement_about_tls() {
    let (h, f) = world("version: 1").await;
    let bucket = unique_bucket(&h, None).await;
    let original = format!(
        "{{\"Version\":\"2012-10-17\",\"Statement\":{{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"s3:GetObject\",\"Resource\":\"arn:aws:s3:::{bucket}/public/*\"}}}}"
    );
    put_policy(&h, &bucket, &original).await;
    let o = deliver(&h, &f, event_for(S3_5, &bucket, "")).await;
    assert_eq!(o.status, Status::Succeeded, "{o:?}");
    let merged: Value = serde_json::from_str(&policy_text(&h, &bucket).await.unwrap()).unwrap();
    // A single statement (not a list) became the first of two.
    let before: Value = serde_json::from_str(&original).unwrap();
    assert_eq!(merged["Statement"][0], before["Statement"]);
    assert_eq!(merged["Statement"].as_array().unwrap().len(), 2);
    let until = chrono::Utc::now() + chrono::Duration::hours(1);
    pipeline::rollback(
        &h.setup,
        &f,
        &o.record_id,
        "arn:aws:iam::123456789012:user/op",
        false,
        until,
    )
    .await
    .unwrap();
    assert_eq!(
        policy_text(&h, &bucket).await.as_deref(),
        Some(original.as_str())
    );
}

/// Every trigger: the Config rules (by identity, under any name), a Config finding through
/// Security Hub, and the custom action "Reflex: remediate".
#[tokio::test]
async fn every_trigger_kind_makes_its_own_fix() {
    let (h, f) = world("version: 1").await;
    h.managed_config_rule(
        "securityhub-s3-bucket-server-side-encryption-enabled-7c1d2e3f",
        "S3_BUCKET_SERVER_SIDE_ENCRYPTION_ENABLED",
    )
    .await;
    h.managed_config_rule(
        "s3-bucket-ssl-requests-only-conformance-pack-q7w8e9r0t",
        "S3_BUCKET_SSL_REQUESTS_ONLY",
    )
    .await;
    h.managed_config_rule("team-x-buckets-tls-only", "S3_BUCKET_SSL_REQUESTS_ONLY")
        .await;
    for (path, encrypts) in [
        (CONFIG_SSE, true),
        (CONFIG_TLS, false),
        (SH_CONFIG_TLS, false),
        (CUSTOM_ACTION, false),
    ] {
        let bucket = unique_bucket(&h, None).await;
        let o = deliver(&h, &f, event_for(path, &bucket, "")).await;
        assert_eq!(o.status, Status::Succeeded, "{path}: {o:?}");
        assert_eq!(
            !encryption(&h, &bucket).await.is_empty(),
            encrypts,
            "{path}"
        );
        assert_eq!(denies_plain_http(&h, &bucket).await, !encrypts, "{path}");
    }
}

/// A bucket deleted since the finding: `skipped / resource-gone`, nothing written.
#[tokio::test]
async fn a_deleted_bucket_is_gone() {
    let (h, f) = world("version: 1").await;
    let bucket = unique_bucket(&h, None).await;
    h.observer_client()
        .delete_bucket()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    let o = deliver(&h, &f, event_for(S3_5, &bucket, "")).await;
    assert_eq!(
        (o.status, o.reason),
        (Status::Skipped, Reason::ResourceGone),
        "{o:?}"
    );
    assert!(h.calls.writes().is_empty());
}

async fn unique_bucket(h: &Harness, policy: Option<&str>) -> String {
    bucket_with_policy(h, policy, &[]).await
}

async fn put_policy(h: &Harness, bucket: &str, text: &str) {
    h.observer_client()
        .put_bucket_policy()
        .bucket(bucket)
        .policy(text)
        .send()
        .await
        .expect("put the team's policy");
}
