//! Approval that cannot be lost or stretched: an approval approves the plan that was shown, on
//! the resource it was shown for; it survives a transient error or a crash; it never lifts a
//! dry-run; presses are not failures. Against the emulator; transient errors are injected by
//! the fault proxy in front of it.

use reflex_shared::ledger::Ledger;
use reflex_shared::pipeline::{self, PipelineError};
use reflex_shared::policy::{Policy, PolicyCache};
use reflex_shared::status::{Reason, Status};
use reflex_shared::Setup;
use reflex_tests::fault_proxy::{Fault, FaultProxy, Faults, Rule};
use reflex_tests::*;
use s3_block_public_access::{BlockConfig, S3BlockPublicAccess};
use serde_json::json;
use std::sync::Arc;

const GUARDDUTY: &str = "s3-block-public-access/guardduty-bucket-block-public-access-disabled.json";
const OPERATOR: &str = "arn:aws:iam::123456789012:user/approver";

/// The harness's function, its AWS calls (ledger and S3) through a fault proxy.
async fn through(h: &Harness, proxy: &FaultProxy) -> (Setup, S3BlockPublicAccess) {
    let sdk = sdk_config_via(&proxy.endpoint).await;
    let mut setup = h.setup.clone();
    setup.ledger = Ledger::new(aws_sdk_dynamodb::Client::new(&sdk), h.setup.ledger.table());
    (setup, S3BlockPublicAccess::new(&sdk))
}

fn throttled(operation: &'static str) -> Rule {
    Rule {
        operation,
        containing: None,
        fault: Fault::Unavailable,
        // The SDK's three tries: the call fails, transiently.
        times: 3,
    }
}

/// The S3.8 finding about `bucket` as a custom action carries it (already notified).
fn s3_8_finding(bucket: &str) -> serde_json::Value {
    let mut finding = sample_for(
        "s3-block-public-access/securityhub-s3.8-imported.json",
        bucket,
    )["detail"]["findings"][0]
        .take();
    finding["Workflow"] = json!({ "Status": "NOTIFIED" });
    finding
}

/// A Config finding straight from AWS Config, held for approval, is approved like any other:
/// its rule was identified when the finding arrived, and the approval does not look the
/// identifier up again as if it were a rule's name.
#[tokio::test]
async fn a_config_finding_held_for_approval_can_be_approved() {
    let h = Harness::with_policy(APPROVE_MODE).await;
    h.sample_config_rules().await;
    let bucket = h.bucket(Some(ALL_OFF), &[]).await;
    let held = h
        .deliver_one(sample_for(
            "s3-block-public-access/config-conformance-pack-s3-bucket-public-write-prohibited.json",
            &bucket,
        ))
        .await;
    assert_eq!(held.status, Status::PendingApproval, "{held:?}");
    let o = pipeline::approve(&h.setup, &h.remediation, &held.record_id, OPERATOR)
        .await
        .unwrap();
    assert_eq!(
        (o.status, o.reason),
        (Status::Succeeded, Reason::Remediated),
        "{o:?}"
    );
    assert_eq!(h.pab(&bucket).await, Some(BlockConfig::ALL_ON));
    assert_eq!(
        h.record(&held.record_id).await.approved_by.as_deref(),
        Some(OPERATOR)
    );
}

/// An approval cut short by a transient error (three throttled reads) is not lost: the record
/// stays an approval in progress, and approving again finishes it, once, naming the approver.
#[tokio::test]
async fn an_approval_cut_short_by_throttling_is_finished_by_approving_again() {
    let h = Harness::with_policy(APPROVE_MODE).await;
    let bucket = h.bucket(Some(ALL_OFF), &[]).await;
    let held = h.deliver_one(sample_for(GUARDDUTY, &bucket)).await;
    assert_eq!(held.status, Status::PendingApproval);

    let proxy = FaultProxy::start(&endpoint(), Faults::default()).await;
    proxy.add_rule(throttled("GetPublicAccessBlock"));
    let (setup, s3) = through(&h, &proxy).await;
    match pipeline::approve(&setup, &s3, &held.record_id, OPERATOR).await {
        Err(PipelineError::Transient { step, .. }) => assert_eq!(step, "inspect"),
        other => panic!("{other:?}"),
    }
    let r = h.record(&held.record_id).await;
    assert_eq!(
        (r.status, r.reason),
        (Status::Claimed, Reason::RetryPending)
    );
    assert_eq!(h.pab(&bucket).await, Some(ALL_OFF), "nothing changed yet");

    let o = pipeline::approve(&setup, &s3, &held.record_id, OPERATOR)
        .await
        .unwrap();
    assert_eq!(o.status, Status::Succeeded, "{o:?}");
    assert_eq!(h.pab(&bucket).await, Some(BlockConfig::ALL_ON));
    let r = h.record(&held.record_id).await;
    assert_eq!(r.approved_by.as_deref(), Some(OPERATOR));
    assert_eq!(
        proxy
            .logical_calls_per_bucket("PutPublicAccessBlock")
            .get(&bucket),
        Some(&1),
        "one change"
    );
    // The plan carried out is the one shown, with the pre-state shown.
    assert_eq!(r.pre_state, Some(json!({ "public_access_block": ALL_OFF })));
}

/// An approval interrupted while acting (the change throttled: its outcome unknown) is
/// finished by approving again if the resource is still as shown; if someone changed it
/// meanwhile, the approval does not go on and the new plan waits for its own approval.
#[tokio::test]
async fn an_interrupted_approval_goes_on_only_on_the_resource_as_shown() {
    for changed_meanwhile in [false, true] {
        let h = Harness::with_policy(APPROVE_MODE).await;
        let bucket = h.bucket(Some(ALL_OFF), &[]).await;
        let held = h.deliver_one(sample_for(GUARDDUTY, &bucket)).await;
        let proxy = FaultProxy::start(&endpoint(), Faults::default()).await;
        proxy.add_rule(throttled("PutPublicAccessBlock"));
        let (setup, s3) = through(&h, &proxy).await;
        assert!(matches!(
            pipeline::approve(&setup, &s3, &held.record_id, OPERATOR).await,
            Err(PipelineError::Transient { step: "act", .. })
        ));
        assert_eq!(h.record(&held.record_id).await.status, Status::Acting);
        let partly = BlockConfig {
            block_public_acls: true,
            ..ALL_OFF
        };
        if changed_meanwhile {
            h.observer_client()
                .put_public_access_block()
                .bucket(&bucket)
                .public_access_block_configuration(
                    aws_sdk_s3::types::PublicAccessBlockConfiguration::builder()
                        .block_public_acls(true)
                        .build(),
                )
                .send()
                .await
                .unwrap();
        }
        let o = pipeline::approve(&setup, &s3, &held.record_id, OPERATOR)
            .await
            .unwrap();
        if changed_meanwhile {
            assert_eq!(o.status, Status::PendingApproval, "{o:?}");
            assert!(
                o.detail.contains("neither as shown nor fixed"),
                "{}",
                o.detail
            );
            assert_eq!(h.pab(&bucket).await, Some(partly), "not applied");
            let r = h.record(&held.record_id).await;
            assert_eq!(r.pre_state, Some(json!({ "public_access_block": partly })));
        } else {
            assert_eq!(o.status, Status::Succeeded, "{o:?}");
            assert_eq!(h.pab(&bucket).await, Some(BlockConfig::ALL_ON));
            let r = h.record(&held.record_id).await;
            assert_eq!(r.approved_by.as_deref(), Some(OPERATOR));
            assert_eq!(r.pre_state, Some(json!({ "public_access_block": ALL_OFF })));
        }
    }
}

/// "Reflex: approve" pressed on a finding whose plan was never shown approves nothing: in
/// approve mode the plan is shown first (pending approval), and only a second approval acts.
#[tokio::test]
async fn an_approval_before_any_plan_was_shown_shows_the_plan_first() {
    let h = Harness::with_policy(APPROVE_MODE).await;
    let bucket = h.bucket(Some(ALL_OFF), &[]).await;
    let finding = s3_8_finding(&bucket);
    let first = h
        .deliver_one(custom_action("ReflexApprove", finding.clone(), "press-1"))
        .await;
    assert_eq!(first.status, Status::PendingApproval, "{first:?}");
    assert_eq!(
        h.pab(&bucket).await,
        Some(ALL_OFF),
        "nothing was approved yet"
    );
    let second = h
        .deliver_one(custom_action("ReflexApprove", finding, "press-2"))
        .await;
    assert_eq!(second.status, Status::Succeeded, "{second:?}");
    assert_eq!(h.pab(&bucket).await, Some(BlockConfig::ALL_ON));
}

/// Approving under a policy whose mode for the finding is dry-run is refused, saying so; the
/// record stays pending approval with its plan, and nothing changes.
#[tokio::test]
async fn an_approval_under_a_dry_run_policy_is_refused() {
    let mut h = Harness::with_policy(APPROVE_MODE).await;
    let bucket = h.bucket(Some(ALL_OFF), &[]).await;
    let held = h.deliver_one(sample_for(GUARDDUTY, &bucket)).await;
    let before = h.record(&held.record_id).await;
    h.setup.policy = Arc::new(PolicyCache::fixed(Policy::from_yaml(
        "version: 1\nremediations:\n  s3-block-public-access: {mode: dry-run}",
    )));
    match pipeline::approve(&h.setup, &h.remediation, &held.record_id, OPERATOR).await {
        Err(PipelineError::Refused(why)) => assert!(why.contains("dry-run"), "{why}"),
        other => panic!("{other:?}"),
    }
    let after = h.record(&held.record_id).await;
    assert_eq!(after.status, Status::PendingApproval);
    assert_eq!(after.actions, before.actions, "the plan shown stays");
    assert_eq!(after.attempts, before.attempts, "nothing was written");
    assert_eq!(h.pab(&bucket).await, Some(ALL_OFF));
}

/// Presses of a custom action are requests, not failures: however many, they never exhaust
/// `max_attempts`, and each earlier outcome stays in `history` with its planned actions and
/// pre-state.
#[tokio::test]
async fn presses_do_not_count_toward_max_attempts() {
    let h = Harness::with_policy(
        "version: 1\nremediations:\n  s3-block-public-access: {mode: dry-run, max_attempts: 1}",
    )
    .await;
    let bucket = h.bucket(Some(ALL_OFF), &[]).await;
    let finding = s3_8_finding(&bucket);
    for press in 1..=3 {
        let o = h
            .deliver_one(custom_action(
                "ReflexRemediate",
                finding.clone(),
                &format!("press-{press}"),
            ))
            .await;
        assert_eq!(
            (o.status, o.reason),
            (Status::DryRun, Reason::WouldChange),
            "press {press}: {o:?}"
        );
        let r = h.record(&o.record_id).await;
        assert_eq!((r.attempts, r.tries), (press, 1), "press {press}");
        assert_eq!(r.history.len() as u32, press - 1);
        for earlier in &r.history {
            assert_eq!(earlier.status, Status::DryRun);
            assert_eq!(
                earlier.pre_state,
                Some(json!({ "public_access_block": ALL_OFF }))
            );
            assert!(
                earlier.actions.iter().any(|a| a.is_planned()),
                "{earlier:?}"
            );
        }
    }
}

/// The plan shown was for one bucket: a bucket deleted and created again under the same name
/// (as open as the first) is another resource, and the approval does not apply to it; its plan
/// is shown anew.
#[tokio::test]
async fn an_approval_does_not_apply_to_a_bucket_created_again_under_the_same_name() {
    let h = Harness::with_policy(APPROVE_MODE).await;
    let bucket = h.bucket(Some(ALL_OFF), &[]).await;
    let held = h.deliver_one(sample_for(GUARDDUTY, &bucket)).await;
    let shown = h.record(&held.record_id).await.resource_identity;
    assert!(
        shown.is_some(),
        "the bucket's creation date is on the record"
    );
    h.recreate_bucket(&bucket, None).await;

    let o = pipeline::approve(&h.setup, &h.remediation, &held.record_id, OPERATOR)
        .await
        .unwrap();
    assert_eq!(o.status, Status::PendingApproval, "{o:?}");
    assert!(o.detail.contains("replaced"), "{}", o.detail);
    assert_eq!(h.pab(&bucket).await, None, "the newcomer is untouched");
    let r = h.record(&held.record_id).await;
    assert!(r.resource_identity.is_some() && r.resource_identity != shown);
    assert_eq!(r.pre_state, Some(json!({ "public_access_block": null })));
}

/// A press given before the plan now shown (a press replayed from a dead-letter queue, say)
/// does not approve that plan: it still awaits approval, and nothing changes. A press given
/// after it does.
#[tokio::test]
async fn an_approval_given_before_the_plan_was_shown_does_not_approve_it() {
    let h = Harness::with_policy(APPROVE_MODE).await;
    let bucket = h.bucket(Some(ALL_OFF), &[]).await;
    let finding = s3_8_finding(&bucket);
    let held = h
        .deliver_one(custom_action("ReflexRemediate", finding.clone(), "press-0"))
        .await;
    assert_eq!(held.status, Status::PendingApproval);
    let mut stale = custom_action("ReflexApprove", finding.clone(), "press-old");
    stale["time"] = json!("2026-01-01T00:00:00Z");
    let o = h.deliver_one(stale).await;
    assert_eq!(o.status, Status::PendingApproval, "{o:?}");
    assert!(
        o.detail
            .contains("before the plan awaiting approval was shown"),
        "{}",
        o.detail
    );
    assert_eq!(h.pab(&bucket).await, Some(ALL_OFF));
    let r = h.record(&held.record_id).await;
    assert!(r.actions.iter().all(|a| a.is_planned()) && !r.actions.is_empty());
    let o = h
        .deliver_one(custom_action("ReflexApprove", finding, "press-now"))
        .await;
    assert_eq!(o.status, Status::Succeeded, "{o:?}");
    assert_eq!(h.pab(&bucket).await, Some(BlockConfig::ALL_ON));
}

/// An approval that meets a spent budget is not used up: the plan stays shown, pending
/// approval, and approving again once the budget allows carries it out.
#[tokio::test]
async fn an_approval_that_meets_a_spent_budget_can_be_given_again() {
    let h = Harness::with_policy(
        "version: 1\nremediations:\n  s3-block-public-access: {mode: approve, max_changes_per_hour: 1}",
    )
    .await;
    let bucket = h.bucket(Some(ALL_OFF), &[]).await;
    let held = h.deliver_one(sample_for(GUARDDUTY, &bucket)).await;
    // Another change took the hour's only unit.
    let counter = reflex_shared::ledger::counter_key(
        "s3-block-public-access",
        ACCOUNT,
        &reflex_shared::ledger::window(chrono::Utc::now()),
    );
    let ledger = &h.setup.ledger;
    assert_eq!(
        ledger
            .reserve_change(&counter, "another", 1, i64::MAX / 2)
            .await
            .unwrap(),
        Some(1)
    );

    let o = pipeline::approve(&h.setup, &h.remediation, &held.record_id, OPERATOR)
        .await
        .unwrap();
    assert_eq!(o.status, Status::PendingApproval, "{o:?}");
    assert!(
        o.detail.contains("budget of 1 changes per hour is spent"),
        "{}",
        o.detail
    );
    assert_eq!(h.pab(&bucket).await, Some(ALL_OFF));
    let r = h.record(&held.record_id).await;
    assert_eq!(r.approved_by, None, "not approved yet");
    assert_eq!(r.budget, None);

    ledger.give_back_change(&counter, "another").await.unwrap();
    let o = pipeline::approve(&h.setup, &h.remediation, &held.record_id, OPERATOR)
        .await
        .unwrap();
    assert_eq!(o.status, Status::Succeeded, "{o:?}");
    assert_eq!(h.pab(&bucket).await, Some(BlockConfig::ALL_ON));
}
