//! s3-block-public-access end to end against the local AWS emulator: each test asserts both the
//! AWS state and the outcome record. The common cases (the lifecycle every function shares:
//! concurrency, takeover, hostile input, budget, policy) come from the generic harness
//! (support/common.rs); the tests below are this function's specifics: its triggers, its
//! bucket's settings in the record, its S3 errors, its approval and rollback details, and what
//! it does without reading S3 at all.

use reflex_shared::policy::Mode;
use reflex_shared::remediation::Remediation;
use reflex_shared::status::{Reason, Status};
use reflex_tests::*;
use s3_block_public_access::BlockConfig;
use serde_json::json;

const S3_8: &str = "s3-block-public-access/securityhub-s3.8-imported.json";
const PUT: &str = "PutPublicAccessBlock";

reflex_tests::common_cases!(s3_block_public_access::S3BlockPublicAccess);

#[tokio::test]
async fn public_bucket_is_blocked_verified_and_recorded() {
    let h = Harness::new().await;
    let bucket = h.bucket(Some(ALL_OFF), &[]).await;
    let o = h.deliver_one(sample_for(S3_8, &bucket)).await;
    assert_eq!(
        (o.status, o.reason, o.duplicate),
        (Status::Succeeded, Reason::Remediated, false),
        "{o:?}"
    );

    // AWS: all four settings on.
    assert_eq!(h.pab(&bucket).await, Some(BlockConfig::ALL_ON));
    assert_eq!(h.calls.count(PUT), 1);

    // The record: finding, decision, change, pre- and post-state, verification.
    let r = h.record(&o.record_id).await;
    assert_eq!(r.status, Status::Succeeded);
    assert_eq!(r.mode, Some(Mode::Enforce));
    assert_eq!(
        r.resource_arn.as_deref(),
        Some(format!("arn:aws:s3:::{bucket}").as_str())
    );
    assert_eq!(r.pre_state, Some(json!({ "public_access_block": ALL_OFF })));
    assert_eq!(
        r.post_state,
        Some(json!({ "public_access_block": BlockConfig::ALL_ON }))
    );
    assert_eq!(r.verified, Some(true));
    assert!(r.verified_at.is_some());
    assert_eq!(r.reversible, Some(true));
    assert_eq!(r.actions.len(), 1);
    assert_eq!(r.actions[0].api, "s3:PutPublicAccessBlock");
    assert_eq!(r.actions[0].result, "ok");
    assert_eq!(r.actions[0].parameters["Bucket"], json!(bucket));
    assert_eq!(
        r.actions[0].parameters["ExpectedBucketOwner"],
        json!(ACCOUNT)
    );
    let f = r.finding.as_ref().expect("finding");
    assert_eq!(f.kind.name(), "S3.8");
    assert_eq!(f.account, ACCOUNT);
    assert_eq!((r.attempts, r.deliveries), (1, 1));
    assert_eq!(r.lease_expires_at, None);
    assert_eq!(r.event_digest.len(), 64);

    // Security Hub: resolved, with a note naming the record (sent to the mock, see support).
    let sent = h.feedback.lock().unwrap().clone();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0]
            .workflow()
            .and_then(|w| w.status())
            .map(|s| s.as_str()),
        Some("RESOLVED")
    );
    assert!(sent[0]
        .note()
        .unwrap()
        .text()
        .unwrap()
        .contains(&o.record_id));
    assert_eq!(sent[0].finding_identifiers()[0].id(), Some(f.id.as_str()));
    assert_eq!(
        r.securityhub.as_ref().map(|s| s.result.as_str()),
        Some("updated")
    );
}

#[tokio::test]
async fn every_trigger_kind_fixes_its_bucket() {
    let h = Harness::new().await;
    h.sample_config_rules().await;
    let samples = [
        "s3-block-public-access/securityhub-s3.2-legacy-control-id.json",
        "s3-block-public-access/securityhub-custom-action-remediate-s3.3.json",
        "s3-block-public-access/config-securityhub-s3-bucket-public-read-prohibited.json",
        "s3-block-public-access/config-conformance-pack-s3-bucket-public-write-prohibited.json",
        "s3-block-public-access/guardduty-bucket-block-public-access-disabled.json",
        "s3-block-public-access/securityhub-config-finding-managed-rule-custom-name.json",
        "s3-block-public-access/securityhub-custom-action-approve-guardduty.json",
    ];
    for sample in samples {
        // No configuration at all: the pre-state records its absence, for undo.
        let bucket = h.bucket(None, &[]).await;
        let o = h.deliver_one(sample_for(sample, &bucket)).await;
        assert_eq!(o.status, Status::Succeeded, "{sample}: {o:?}");
        assert_eq!(h.pab(&bucket).await, Some(BlockConfig::ALL_ON), "{sample}");
        let r = h.record(&o.record_id).await;
        assert_eq!(
            r.pre_state,
            Some(json!({ "public_access_block": null })),
            "{sample}"
        );
        assert_eq!(r.verified, Some(true), "{sample}");
    }
    // Only the findings that live in Security Hub get feedback: legacy S3.2, the two custom
    // actions and the Config finding imported into Security Hub.
    assert_eq!(h.feedback.lock().unwrap().len(), 4);
}

#[tokio::test]
async fn already_compliant_is_skipped_without_a_write() {
    let h = Harness::new().await;
    let bucket = h.bucket(Some(BlockConfig::ALL_ON), &[]).await;
    let o = h.deliver_one(sample_for(S3_8, &bucket)).await;
    assert_eq!(
        (o.status, o.reason),
        (Status::Skipped, Reason::AlreadyCompliant)
    );
    assert!(h.calls.writes().is_empty(), "{:?}", h.calls.calls());
    assert_eq!(h.calls.count("GetPublicAccessBlock"), 1);
    let r = h.record(&o.record_id).await;
    assert_eq!(
        r.pre_state,
        Some(json!({ "public_access_block": BlockConfig::ALL_ON }))
    );
    assert!(r.actions.is_empty());
    assert!(h.feedback.lock().unwrap().is_empty());
}

#[tokio::test]
async fn exempt_arn_pattern_skips_before_any_read() {
    let h =
        Harness::with_policy("version: 1\nexemptions:\n  rules:\n    - match: {arns: ['arn:aws:s3:::reflex-it-*']}\n      reason: test buckets\n      owner: reflex-tests\n      expires: 2999-12-31").await;
    let bucket = h.bucket(Some(ALL_OFF), &[]).await;
    let o = h.deliver_one(sample_for(S3_8, &bucket)).await;
    assert_eq!((o.status, o.reason), (Status::Skipped, Reason::Exempt));
    assert!(
        h.calls.calls().is_empty(),
        "no AWS call at all: {:?}",
        h.calls.calls()
    );
    assert_eq!(h.pab(&bucket).await, Some(ALL_OFF));
}

/// A bucket's ARN is its name: resolving it needs no read, so a protected bucket is skipped
/// before any S3 call (the common `protected` case allows the reads other functions need).
#[tokio::test]
async fn a_protected_bucket_is_skipped_before_any_read() {
    let h = Harness::new().await;
    let bucket = h.bucket(Some(ALL_OFF), &[]).await;
    let mut h = h;
    h.setup.policy = std::sync::Arc::new(reflex_shared::policy::PolicyCache::fixed(
        reflex_shared::policy::Policy::from_yaml(&format!(
            "version: 1\nexemptions:\n  protected_principals: ['arn:aws:s3:::{bucket}']"
        )),
    ));
    let o = h.deliver_one(sample_for(S3_8, &bucket)).await;
    assert_eq!(
        (o.status, o.reason),
        (Status::Skipped, Reason::Protected),
        "{o:?}"
    );
    assert_eq!(h.pab(&bucket).await, Some(ALL_OFF));
    assert!(
        h.calls.calls().is_empty(),
        "not even a read: {:?}",
        h.calls.calls()
    );
}

#[tokio::test]
async fn dry_run_records_the_plan_and_changes_nothing() {
    let h = Harness::with_policy(
        "version: 1\nremediations:\n  s3-block-public-access: {mode: dry-run}",
    )
    .await;
    let bucket = h.bucket(Some(ALL_OFF), &[]).await;
    let o = h.deliver_one(sample_for(S3_8, &bucket)).await;
    assert_eq!(
        (o.status, o.reason, o.mode),
        (Status::DryRun, Reason::WouldChange, Some(Mode::DryRun))
    );
    assert_eq!(h.pab(&bucket).await, Some(ALL_OFF));
    assert!(h.calls.writes().is_empty());
    let r = h.record(&o.record_id).await;
    assert_eq!(r.actions.len(), 1);
    assert_eq!(r.actions[0].result, "planned");
    assert_eq!(
        r.actions[0].parameters["PublicAccessBlockConfiguration"],
        json!(BlockConfig::ALL_ON)
    );
    assert_eq!(r.pre_state, Some(json!({ "public_access_block": ALL_OFF })));
    assert_eq!(r.verified, None);
    // A note on the finding, but its workflow stays as it is.
    let sent = h.feedback.lock().unwrap().clone();
    assert_eq!(sent.len(), 1);
    assert!(sent[0].workflow().is_none());
}

#[tokio::test]
async fn approve_waits_for_the_analyst_then_acts_once() {
    let h = Harness::with_policy(APPROVE_MODE).await;
    let bucket = h.bucket(Some(ALL_OFF), &[]).await;
    let imported = sample_for(S3_8, &bucket);
    let o = h.deliver_one(imported.clone()).await;
    assert_eq!(
        (o.status, o.reason),
        (Status::PendingApproval, Reason::AwaitingApproval)
    );
    assert_eq!(h.pab(&bucket).await, Some(ALL_OFF));
    assert!(h.calls.writes().is_empty());
    assert_eq!(
        h.feedback.lock().unwrap()[0]
            .workflow()
            .and_then(|w| w.status())
            .map(|s| s.as_str()),
        Some("NOTIFIED")
    );

    // The analyst runs "Reflex: approve" on the same finding.
    let mut approval = imported.clone();
    approval["id"] = json!("4f7d1c2e-approval-0001");
    approval["detail-type"] = json!("Security Hub Findings - Custom Action");
    approval["resources"] = json!([format!(
        "arn:aws:securityhub:us-east-1:{ACCOUNT}:action/custom/ReflexApprove"
    )]);
    approval["detail"]["actionName"] = json!("ReflexApprove");
    approval["detail"]["findings"][0]["Workflow"]["Status"] = json!("NOTIFIED");
    // Pressed now, after the plan was shown.
    approval["time"] = json!(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    let approved = h.deliver_one(approval.clone()).await;
    assert_eq!(
        approved.record_id, o.record_id,
        "the approval completes the same record"
    );
    assert_eq!(
        (approved.status, approved.duplicate),
        (Status::Succeeded, false),
        "{approved:?}"
    );
    assert_eq!(h.pab(&bucket).await, Some(BlockConfig::ALL_ON));
    let r = h.record(&o.record_id).await;
    assert_eq!(r.attempts, 2);
    assert_eq!(r.history.len(), 1);
    assert_eq!(r.history[0].status, Status::PendingApproval);
    assert!(r.detail.contains("approved"), "{}", r.detail);

    // The same approval delivered again, and the imported finding again: nothing more happens.
    assert!(h.deliver_one(approval).await.duplicate);
    assert!(h.deliver_one(imported).await.duplicate);
    assert_eq!(h.calls.count(PUT), 1);
}

#[tokio::test]
async fn undo_restores_the_recorded_pre_state() {
    let h = Harness::new().await;
    for before in [
        Some(ALL_OFF),
        Some(BlockConfig {
            block_public_policy: true,
            ..ALL_OFF
        }),
        None,
    ] {
        let bucket = h.bucket(before, &[]).await;
        let o = h.deliver_one(sample_for(S3_8, &bucket)).await;
        assert_eq!(h.pab(&bucket).await, Some(BlockConfig::ALL_ON));
        let r = h.record(&o.record_id).await;
        // Undo works from the applied record: its pre-state and the typed steps that took
        // effect.
        let pre: s3_block_public_access::BucketState =
            serde_json::from_value(r.pre_state.clone().unwrap()).unwrap();
        let applied: Vec<s3_block_public_access::BucketStep> = r
            .actions
            .iter()
            .filter(|a| a.took_effect())
            .map(|a| serde_json::from_value(a.step.clone().expect("typed step")).unwrap())
            .collect();
        assert_eq!(
            applied,
            [s3_block_public_access::BucketStep::Put(BlockConfig::ALL_ON)]
        );
        let t = target(&bucket);
        let applied: Vec<_> = applied
            .into_iter()
            .map(|step| reflex_shared::remediation::Applied { step, output: () })
            .collect();
        let undo = h.remediation.undo(&t, &pre, &applied);
        assert_eq!(undo.len(), 1);
        let finding = finding_of(&sample_for(S3_8, &bucket));
        let owned = reflex_shared::remediation::Owned::default();
        let ctx = reflex_shared::remediation::Context {
            record_id: &r.record_id,
            now: chrono::Utc::now(),
            finding: &finding,
            owned: &owned,
        };
        for step in &undo {
            h.remediation.apply(&ctx, &t, step, &[]).await.unwrap();
        }
        assert_eq!(h.pab(&bucket).await, before, "{before:?}");
    }
}

/// S3 that answers reads with an untagged bucket whose Block Public Access is all off, whatever
/// is written, and answers `PutPublicAccessBlock` with `put_status`. moto cannot be made to refuse
/// a write or to keep a bucket public after one, so these S3 calls go to aws-smithy-mocks; the
/// ledger is still the emulator.
fn stubborn_s3(put_status: u16) -> aws_sdk_s3::Client {
    use aws_sdk_s3::operation::get_bucket_tagging::GetBucketTaggingOutput;
    use aws_sdk_s3::operation::get_public_access_block::GetPublicAccessBlockOutput;
    use aws_sdk_s3::operation::put_public_access_block::PutPublicAccessBlockOutput;
    use aws_sdk_s3::types::PublicAccessBlockConfiguration;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};
    let tags = mock!(aws_sdk_s3::Client::get_bucket_tagging).then_output(|| {
        GetBucketTaggingOutput::builder()
            .set_tag_set(Some(vec![]))
            .build()
            .unwrap()
    });
    let read = mock!(aws_sdk_s3::Client::get_public_access_block).then_output(|| {
        let off = PublicAccessBlockConfiguration::builder()
            .block_public_acls(false)
            .ignore_public_acls(false)
            .block_public_policy(false)
            .restrict_public_buckets(false)
            .build();
        GetPublicAccessBlockOutput::builder()
            .public_access_block_configuration(off)
            .build()
    });
    let put = if put_status == 200 {
        mock!(aws_sdk_s3::Client::put_public_access_block)
            .then_output(|| PutPublicAccessBlockOutput::builder().build())
    } else {
        mock!(aws_sdk_s3::Client::put_public_access_block).then_http_response(move || {
            aws_smithy_runtime_api::http::Response::new(
                aws_smithy_runtime_api::http::StatusCode::try_from(put_status).unwrap(),
                aws_smithy_types::body::SdkBody::from(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>",
                ),
            )
        })
    };
    // The bucket's identity (its creation date), for whatever bucket is asked about.
    let identity = mock!(aws_sdk_s3::Client::list_buckets).then_compute_output(|input| {
        aws_sdk_s3::operation::list_buckets::ListBucketsOutput::builder()
            .buckets(
                aws_sdk_s3::types::Bucket::builder()
                    .name(input.prefix().unwrap_or_default())
                    .creation_date(aws_smithy_types::DateTime::from_secs(1_700_000_000))
                    .build(),
            )
            .build()
    });
    mock_client!(
        aws_sdk_s3,
        RuleMode::MatchAny,
        [&tags, &read, &put, &identity]
    )
}

#[tokio::test]
async fn a_refused_change_is_recorded_as_failed_with_the_error() {
    let h = Harness::new().await;
    let r = s3_block_public_access::S3BlockPublicAccess::from_client(stubborn_s3(403));
    let bucket = unique("reflex-mock");
    let mut context = lambda_runtime::Context::default();
    context.request_id = "refused".into();
    let event = lambda_runtime::LambdaEvent::new(sample_for(S3_8, &bucket), context);
    let o = reflex_shared::pipeline::handle(&h.setup, &r, event)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(
        (o.status, o.reason),
        (Status::Failed, Reason::ActionError),
        "{o:?}"
    );
    assert!(
        o.detail.contains("AccessDenied: Access Denied"),
        "{}",
        o.detail
    );
    let rec = h.record(&o.record_id).await;
    assert_eq!(rec.actions.len(), 1);
    assert_eq!(
        rec.actions[0].result,
        "s3:PutPublicAccessBlock failed: AccessDenied: Access Denied"
    );
    assert_eq!(
        rec.pre_state,
        Some(json!({ "public_access_block": ALL_OFF }))
    );
    assert_eq!((rec.verified, rec.post_state.as_ref()), (None, None));
    // The analyst hears of it: a note, no workflow change.
    let sent = h.feedback.lock().unwrap().clone();
    assert_eq!(sent.len(), 1);
    assert!(sent[0].workflow().is_none());
}

#[tokio::test]
async fn a_change_that_does_not_hold_is_recorded_as_verification_failed() {
    let h = Harness::new().await;
    let r = s3_block_public_access::S3BlockPublicAccess::from_client(stubborn_s3(200));
    let bucket = unique("reflex-mock");
    let mut context = lambda_runtime::Context::default();
    context.request_id = "stubborn".into();
    let event = lambda_runtime::LambdaEvent::new(sample_for(S3_8, &bucket), context);
    let o = reflex_shared::pipeline::handle(&h.setup, &r, event)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(
        (o.status, o.reason),
        (Status::VerificationFailed, Reason::StillNonCompliant),
        "{o:?}"
    );
    let rec = h.record(&o.record_id).await;
    assert_eq!(rec.actions[0].result, "ok");
    assert_eq!(rec.verified, Some(false));
    assert!(rec.verified_at.is_some());
    assert_eq!(
        rec.post_state,
        Some(json!({ "public_access_block": ALL_OFF }))
    );
    // Not resolved in Security Hub: the finding still stands.
    let sent = h.feedback.lock().unwrap().clone();
    assert!(sent[0].workflow().is_none());
}

#[tokio::test]
async fn a_bucket_deleted_since_the_finding_is_resource_gone() {
    let h = Harness::new().await;
    let o = h
        .deliver_one(sample_for(S3_8, &unique("reflex-never-made")))
        .await;
    assert_eq!(
        (o.status, o.reason),
        (Status::Skipped, Reason::ResourceGone),
        "{o:?}"
    );
    assert!(o.detail.contains("no longer exists"), "{}", o.detail);
    assert!(h.calls.writes().is_empty());
}

const GUARDDUTY: &str = "s3-block-public-access/guardduty-bucket-block-public-access-disabled.json";

#[tokio::test]
async fn a_guardduty_finding_approved_through_security_hub_gets_the_shown_plan_once() {
    let h = Harness::with_policy(APPROVE_MODE).await;
    let bucket = h.bucket(Some(ALL_OFF), &[]).await;
    let direct = sample_for(GUARDDUTY, &bucket);
    let held = h.deliver_one(direct.clone()).await;
    assert_eq!(held.status, Status::PendingApproval, "{held:?}");

    // "Reflex: remediate" runs under the policy: approve mode still waits.
    let in_sh = guardduty_in_security_hub(&direct, &bucket);
    let remediate = h
        .deliver_one(custom_action(
            "ReflexRemediate",
            in_sh.clone(),
            "press-remediate",
        ))
        .await;
    assert_eq!(
        remediate.record_id, held.record_id,
        "one identity across sources"
    );
    assert_eq!(remediate.status, Status::PendingApproval, "{remediate:?}");
    assert_eq!(h.pab(&bucket).await, Some(ALL_OFF));

    // "Reflex: approve": the same record, the plan that was shown, carried out.
    let approved = h
        .deliver_one(custom_action(
            "ReflexApprove",
            in_sh.clone(),
            "press-approve",
        ))
        .await;
    assert_eq!(approved.record_id, held.record_id);
    assert_eq!(approved.status, Status::Succeeded, "{approved:?}");
    assert_eq!(h.pab(&bucket).await, Some(BlockConfig::ALL_ON));
    let r = h.record(&held.record_id).await;
    let by = r.approved_by.as_deref().unwrap_or_default();
    assert_eq!(
        by, "Security Hub custom action ReflexApprove (AWS does not name who pressed it)",
        "no field of the event names the approver"
    );
    assert!(r.approved_at.is_some());
    assert!(
        r.detail
            .contains("approved by Security Hub custom action ReflexApprove"),
        "{}",
        r.detail
    );
    assert_eq!(r.pre_state, Some(json!({ "public_access_block": ALL_OFF })));

    // Approving twice acts once.
    let again = h
        .deliver_one(custom_action("ReflexApprove", in_sh, "press-approve-again"))
        .await;
    assert!(again.duplicate, "{again:?}");
    assert_eq!(h.calls.count(PUT), 1);
}

#[tokio::test]
async fn a_config_finding_approved_through_security_hub_is_fixed() {
    let h = Harness::with_policy(APPROVE_MODE).await;
    let bucket = h.bucket(Some(ALL_OFF), &[]).await;
    let mut imported: serde_json::Value =
        serde_json::from_str(&sample("real-shapes/securityhub-config-finding.json")).unwrap();
    let f = &mut imported["detail"]["findings"][0];
    f["Id"] = json!(format!("{}-{bucket}", f["Id"].as_str().unwrap()));
    f["ProductFields"]["aws/config/ConfigRuleName"] = json!("s3-bucket-public-read-prohibited");
    f["Resources"][0]["Id"] = json!(format!("arn:aws:s3:::{bucket}"));
    let finding = f.clone();
    h.managed_config_rule(
        "s3-bucket-public-read-prohibited",
        "S3_BUCKET_PUBLIC_READ_PROHIBITED",
    )
    .await;
    let held = h.deliver_one(imported).await;
    assert_eq!(held.status, Status::PendingApproval, "{held:?}");
    let approved = h
        .deliver_one(custom_action(
            "ReflexApprove",
            finding,
            "press-approve-config",
        ))
        .await;
    assert_eq!(
        (approved.record_id.as_str(), approved.status),
        (held.record_id.as_str(), Status::Succeeded),
        "{approved:?}"
    );
    assert_eq!(h.pab(&bucket).await, Some(BlockConfig::ALL_ON));
}

#[tokio::test]
async fn an_approval_of_a_plan_the_resource_has_outgrown_asks_again() {
    let h = Harness::with_policy(APPROVE_MODE).await;
    let bucket = h.bucket(Some(ALL_OFF), &[]).await;
    let held = h.deliver_one(sample_for(GUARDDUTY, &bucket)).await;
    assert_eq!(held.status, Status::PendingApproval);
    // Someone changes the bucket after the plan was shown.
    let partly = BlockConfig {
        block_public_acls: true,
        ..ALL_OFF
    };
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
    let by = "arn:aws:iam::123456789012:user/analyst";
    let o = reflex_shared::pipeline::approve(&h.setup, &h.remediation, &held.record_id, by)
        .await
        .unwrap();
    assert_eq!(o.status, Status::PendingApproval, "{o:?}");
    assert!(
        o.detail.contains("changed since the plan was shown"),
        "{}",
        o.detail
    );
    assert_eq!(h.pab(&bucket).await, Some(partly), "not applied");
    let r = h.record(&held.record_id).await;
    assert_eq!(
        r.pre_state,
        Some(json!({ "public_access_block": partly })),
        "the new plan's pre-state"
    );

    // Approved again, now for what is there: carried out, the operator recorded.
    let o = reflex_shared::pipeline::approve(&h.setup, &h.remediation, &held.record_id, by)
        .await
        .unwrap();
    assert_eq!(o.status, Status::Succeeded, "{o:?}");
    assert_eq!(h.pab(&bucket).await, Some(BlockConfig::ALL_ON));
    assert_eq!(
        h.record(&held.record_id).await.approved_by.as_deref(),
        Some(by)
    );

    // A record that is not pending approval is refused, and nothing changes.
    match reflex_shared::pipeline::approve(&h.setup, &h.remediation, &held.record_id, by).await {
        Err(reflex_shared::pipeline::PipelineError::Refused(why)) => {
            assert!(
                why.contains("is succeeded (remediated), not pending approval"),
                "{why}"
            )
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(h.calls.count(PUT), 1);
}

/// Rollback restores the recorded pre-state, verifies it, records who/when/what, and holds the
/// resource back so the finding's echo does not re-apply the fix; each refusal changes nothing.
#[tokio::test]
async fn rollback_restores_the_pre_state_and_its_echo_is_held_back() {
    use reflex_shared::pipeline::{rollback, PipelineError};
    let h = Harness::new().await;
    let by = "arn:aws:iam::123456789012:user/operator";
    let until = chrono::Utc::now() + chrono::Duration::days(7);
    let partly = BlockConfig {
        block_public_policy: true,
        ..ALL_OFF
    };
    let bucket = h.bucket(Some(partly), &[]).await;
    let fixed = h.deliver_one(sample_for(S3_8, &bucket)).await;
    assert_eq!(fixed.status, Status::Succeeded);
    let refused = |r: Result<reflex_shared::pipeline::Handled, PipelineError>, want: &str| match r {
        Err(PipelineError::Refused(why)) => {
            assert!(
                why.contains(want) && why.contains("nothing was changed"),
                "{why}"
            )
        }
        other => panic!("{want}: {other:?}"),
    };

    // Dry-run: says what it would do, changes nothing.
    let dry = rollback(&h.setup, &h.remediation, &fixed.record_id, by, true, until)
        .await
        .unwrap();
    assert!(
        dry.detail
            .starts_with("dry-run: the rollback would make 1 change(s): s3:PutPublicAccessBlock"),
        "{}",
        dry.detail
    );
    assert_eq!(h.pab(&bucket).await, Some(BlockConfig::ALL_ON));
    assert_eq!(h.record(&fixed.record_id).await.status, Status::Succeeded);

    // Someone changed the bucket since the fix: refused.
    let other = h.bucket(Some(ALL_OFF), &[]).await;
    let o = h.deliver_one(sample_for(S3_8, &other)).await;
    h.observer_client()
        .put_public_access_block()
        .bucket(&other)
        .public_access_block_configuration(
            aws_sdk_s3::types::PublicAccessBlockConfiguration::builder()
                .block_public_acls(true)
                .build(),
        )
        .send()
        .await
        .unwrap();
    refused(
        rollback(&h.setup, &h.remediation, &o.record_id, by, false, until).await,
        "the resource changed since the fix",
    );

    // The rollback itself.
    let rolled = rollback(&h.setup, &h.remediation, &fixed.record_id, by, false, until)
        .await
        .unwrap();
    assert_eq!(
        (rolled.status, rolled.reason),
        (Status::RolledBack, Reason::Undone)
    );
    assert_eq!(h.pab(&bucket).await, Some(partly), "the pre-state is back");
    let r = h.record(&fixed.record_id).await;
    let rb = r.rollback.clone().expect("who, when, what");
    assert_eq!(rb.by, by);
    assert_eq!(rb.actions.len(), 1);
    assert_eq!(rb.actions[0].result, "ok");
    assert_eq!(r.history.last().unwrap().status, Status::Succeeded);
    assert_eq!(
        r.pre_state,
        Some(json!({ "public_access_block": partly })),
        "kept"
    );

    // Already rolled back: refused.
    refused(
        rollback(&h.setup, &h.remediation, &fixed.record_id, by, false, until).await,
        "already rolled back",
    );

    // The echo: the finding again (a new generation) is held back, naming the rollback.
    let mut echo = sample_for(S3_8, &bucket);
    echo["detail"]["findings"][0]["UpdatedAt"] = json!("2026-11-21T10:00:00.000Z");
    let o = h.deliver_one(echo).await;
    assert_ne!(o.record_id, fixed.record_id);
    assert_eq!(
        (o.status, o.reason),
        (Status::Skipped, Reason::RolledBack),
        "{o:?}"
    );
    assert!(
        o.detail.contains(&fixed.record_id) && o.detail.contains(by),
        "{}",
        o.detail
    );
    assert_eq!(h.pab(&bucket).await, Some(partly));
    assert_eq!(h.calls.count(PUT), 3, "fix, other fix, rollback");

    // Not succeeded (a dry-run record): refused.
    let hd = Harness::with_policy(
        "version: 1\nremediations:\n  s3-block-public-access: {mode: dry-run}",
    )
    .await;
    let b = hd.bucket(Some(ALL_OFF), &[]).await;
    let o = hd.deliver_one(sample_for(S3_8, &b)).await;
    refused(
        rollback(&hd.setup, &hd.remediation, &o.record_id, by, false, until).await,
        "only a succeeded fix can be rolled back",
    );

    // Not reversible: refused.
    let b = h.bucket(Some(ALL_OFF), &[]).await;
    let o = h.deliver_one(sample_for(S3_8, &b)).await;
    h.set_attribute(
        &o.record_id,
        "reversible",
        aws_sdk_dynamodb::types::AttributeValue::Bool(false),
    )
    .await;
    refused(
        rollback(&h.setup, &h.remediation, &o.record_id, by, false, until).await,
        "is not reversible",
    );
    assert_eq!(h.pab(&b).await, Some(BlockConfig::ALL_ON));
}

/// Config's answer for one rule: a custom (`CUSTOM_LAMBDA`) rule, whatever its name. moto
/// accepts `CUSTOM_LAMBDA` rules only with a function in its Lambda backend, so this call is
/// answered by aws-smithy-mocks; the rest of the test uses the emulator.
fn config_saying_custom(name: &str, arn: &str) -> aws_sdk_config::Client {
    use aws_sdk_config::operation::describe_config_rules::DescribeConfigRulesOutput;
    use aws_sdk_config::types::{ConfigRule, Owner, Source, SourceDetail};
    use aws_smithy_mocks::{mock, mock_client, RuleMode};
    let (name, arn) = (name.to_string(), arn.to_string());
    let rule = mock!(aws_sdk_config::Client::describe_config_rules).then_output(move || {
        DescribeConfigRulesOutput::builder()
            .config_rules(
                ConfigRule::builder()
                    .config_rule_name(&name)
                    .config_rule_arn(&arn)
                    .source(
                        Source::builder()
                            .owner(Owner::CustomLambda)
                            .source_identifier(
                                "arn:aws:lambda:us-east-1:123456789012:function:flag-everything",
                            )
                            .source_details(SourceDetail::builder().build())
                            .build()
                            .unwrap(),
                    )
                    .build(),
            )
            .build()
    });
    mock_client!(aws_sdk_config, RuleMode::MatchAny, [&rule])
}

#[tokio::test]
async fn config_rules_are_known_by_identity_not_by_name() {
    use reflex_shared::config_rules::ConfigRules;
    // A managed rule under a name its owner chose: fixed, and the record names both.
    let h = Harness::new().await;
    h.managed_config_rule(
        "team-x-no-public-buckets",
        "S3_BUCKET_PUBLIC_READ_PROHIBITED",
    )
    .await;
    let bucket = h.bucket(Some(ALL_OFF), &[]).await;
    let o = h
        .deliver_one(config_event(&bucket, "team-x-no-public-buckets"))
        .await;
    assert_eq!(o.status, Status::Succeeded, "{o:?}");
    assert_eq!(h.pab(&bucket).await, Some(BlockConfig::ALL_ON));
    let f = h.record(&o.record_id).await.finding.unwrap();
    assert_eq!(f.kind.name(), "S3_BUCKET_PUBLIC_READ_PROHIBITED");
    assert_eq!(
        f.details.config_rule.as_deref(),
        Some("team-x-no-public-buckets")
    );

    // A rule that does not exist: untrusted, no S3 call.
    let bucket = h.bucket(Some(ALL_OFF), &[]).await;
    let o = h.deliver_one(config_event(&bucket, "no-such-rule")).await;
    assert_eq!(
        (o.status, o.reason),
        (Status::Skipped, Reason::Untrusted),
        "{o:?}"
    );
    assert!(
        o.detail.contains("no Config rule named no-such-rule"),
        "{}",
        o.detail
    );

    // A forged custom rule named exactly like the managed one: untrusted, untouched.
    let forged = "s3-bucket-public-read-prohibited";
    let arn = "arn:aws:config:us-east-1:123456789012:config-rule/config-rule-f0rged";
    let mut h = Harness::new().await;
    h.setup.config_rules = ConfigRules::new(config_saying_custom(forged, arn));
    let bucket = h.bucket(Some(ALL_OFF), &[]).await;
    let o = h.deliver_one(config_event(&bucket, forged)).await;
    assert_eq!(
        (o.status, o.reason),
        (Status::Skipped, Reason::Untrusted),
        "{o:?}"
    );
    assert!(
        o.detail.contains("CUSTOM_LAMBDA") && o.detail.contains(arn),
        "{}",
        o.detail
    );
    assert_eq!(h.pab(&bucket).await, Some(ALL_OFF));
    assert!(
        h.calls.calls().is_empty(),
        "no S3 call at all: {:?}",
        h.calls.calls()
    );

    // The same custom rule, trusted by ARN in the policy: acted on as the rule it stands for.
    let mut h = Harness::with_policy(&format!(
        "version: 1\ntrusted_config_rules:\n  \"{arn}\": S3_BUCKET_PUBLIC_READ_PROHIBITED"
    ))
    .await;
    h.setup.config_rules = ConfigRules::new(config_saying_custom(forged, arn));
    let bucket = h.bucket(Some(ALL_OFF), &[]).await;
    let o = h.deliver_one(config_event(&bucket, forged)).await;
    assert_eq!(o.status, Status::Succeeded, "{o:?}");
}
