//! Findings confirmed at their source before a fix (`confirm_at_source`): anyone allowed to
//! invoke a function can hand it a made-up finding. With the switch on, the pipeline reads the
//! finding back (GuardDuty `GetFindings`, Security Hub `GetFindings`) in its first round and acts
//! only if it exists, is active and names the same type and resource; otherwise `skipped /
//! unconfirmed`, saying what differed, and nothing changes.
//!
//! The function here is s3-block-public-access with the switch turned on by the policy (its own
//! default is off): a bucket is the cheapest resource to check on the emulator. The sources are
//! aws-smithy-mocks answering from a registry ([`reflex_tests::source`]): moto keeps no GuardDuty
//! findings, and its Security Hub `GetFindings` ignores `Filters`.

use reflex_shared::pipeline::PipelineError;
use reflex_shared::policy::Policy;
use reflex_shared::status::{Reason, Status};
use reflex_tests::*;
use serde_json::{json, Value};

const GUARDDUTY: &str = "s3-block-public-access/guardduty-bucket-block-public-access-disabled.json";
const S3_8: &str = "s3-block-public-access/securityhub-s3.8-imported.json";
const CONFIRM: &str =
    "version: 1\nremediations:\n  s3-block-public-access: {mode: enforce, confirm_at_source: true}";

/// A harness whose sources hold only what each test says, and a public bucket.
async fn world(policy: &str) -> (Harness, String) {
    let h = Harness::with(HarnessOptions {
        policy: Policy::from_yaml(policy),
        mirror_source: false,
        ..Default::default()
    })
    .await;
    let bucket = h.bucket(Some(ALL_OFF), &[]).await;
    (h, bucket)
}

/// What was delivered is unchanged and the record says why, naming what differed.
async fn unconfirmed(h: &Harness, bucket: &str, event: Value, differed: &str) {
    let o = h.deliver_one(event).await;
    assert_eq!(
        (o.status, o.reason),
        (Status::Skipped, Reason::Unconfirmed),
        "{o:?}"
    );
    assert!(o.detail.contains(differed), "{differed:?} in {}", o.detail);
    assert_eq!(h.pab(bucket).await, Some(ALL_OFF), "nothing changed");
    assert!(h.calls.writes().is_empty(), "{:?}", h.calls.writes());
}

#[tokio::test]
async fn a_made_up_security_hub_finding_is_not_acted_on() {
    let (h, bucket) = world(CONFIRM).await;
    let event = sample_for(S3_8, &bucket);
    let id = event["detail"]["findings"][0]["Id"]
        .as_str()
        .unwrap()
        .to_string();
    unconfirmed(&h, &bucket, event, "has no finding").await;
    assert_eq!(h.at_source.asked(), vec![id], "read back by its Id");
}

#[tokio::test]
async fn a_finding_resolved_at_its_source_is_not_acted_on() {
    let (h, bucket) = world(CONFIRM).await;
    let event = sample_for(S3_8, &bucket);
    let mut held = event["detail"]["findings"][0].clone();
    held["Workflow"] = json!({"Status": "RESOLVED"});
    h.at_source.securityhub_holds(&held);
    unconfirmed(&h, &bucket, event, "workflow status RESOLVED").await;
}

#[tokio::test]
async fn a_guardduty_finding_of_another_type_at_its_source_is_not_acted_on() {
    let (h, bucket) = world(CONFIRM).await;
    let event = sample_for(GUARDDUTY, &bucket);
    let mut held = event["detail"].clone();
    held["type"] = json!("Policy:S3/BucketAnonymousAccessGranted");
    h.at_source.guardduty_holds(&held);
    unconfirmed(&h, &bucket, event, "Policy:S3/BucketAnonymousAccessGranted").await;
}

#[tokio::test]
async fn a_guardduty_finding_about_another_bucket_at_its_source_is_not_acted_on() {
    let (h, bucket) = world(CONFIRM).await;
    let event = sample_for(GUARDDUTY, &bucket);
    let mut held = event["detail"].clone();
    let resource = held["resource"]
        .to_string()
        .replace(&bucket, "someone-elses-bucket");
    held["resource"] = serde_json::from_str(&resource).unwrap();
    h.at_source.guardduty_holds(&held);
    unconfirmed(&h, &bucket, event, &bucket).await;
}

#[tokio::test]
async fn a_forged_custom_action_press_is_not_acted_on() {
    let (h, bucket) = world(CONFIRM).await;
    let finding = sample_for(S3_8, &bucket)["detail"]["findings"][0].clone();
    let press = custom_action("ReflexRemediate", finding, &unique("press"));
    unconfirmed(&h, &bucket, press, "has no finding").await;
}

#[tokio::test]
async fn a_confirmed_finding_is_fixed() {
    let (h, bucket) = world(CONFIRM).await;
    let event = sample_for(GUARDDUTY, &bucket);
    h.at_source.guardduty_holds(&event["detail"]);
    let o = h.deliver_one(event.clone()).await;
    assert_eq!(
        (o.status, o.reason),
        (Status::Succeeded, Reason::Remediated),
        "{o:?}"
    );
    assert_ne!(h.pab(&bucket).await, Some(ALL_OFF));
    assert_eq!(
        h.at_source.asked(),
        vec![event["detail"]["id"].as_str().unwrap().to_string()],
        "read back by detector and id"
    );
}

#[tokio::test]
async fn a_source_that_cannot_answer_is_retried_not_decided() {
    let (h, bucket) = world(CONFIRM).await;
    let event = sample_for(GUARDDUTY, &bucket);
    h.at_source.guardduty_holds(&event["detail"]);
    *h.at_source.failing.lock().unwrap() = true;
    let err = h.try_deliver(event.clone()).await.unwrap_err();
    assert!(matches!(err, PipelineError::Transient { .. }), "{err:?}");
    assert_eq!(h.pab(&bucket).await, Some(ALL_OFF), "nothing changed");
    // The source answers again: the retry acts.
    *h.at_source.failing.lock().unwrap() = false;
    let o = h.deliver_one(event).await;
    assert_eq!(o.status, Status::Succeeded, "{o:?}");
}

#[tokio::test]
async fn without_the_switch_nothing_is_read_back() {
    let (h, bucket) =
        world("version: 1\nremediations:\n  s3-block-public-access: {mode: enforce}").await;
    let o = h.deliver_one(sample_for(S3_8, &bucket)).await;
    assert_eq!(o.status, Status::Succeeded, "{o:?}");
    assert!(h.at_source.asked().is_empty(), "{:?}", h.at_source.asked());
}
