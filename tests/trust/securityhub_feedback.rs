//! Security Hub hears about the right finding: the `BatchUpdateFindings` request names the
//! finding by the ASFF `Id` and `ProductArn` Security Hub knows it by. moto lacks
//! `BatchUpdateFindings`, so that call is answered by aws-smithy-mocks (tests/support), which
//! records each request; everything else runs against the local AWS emulator.

use reflex_shared::finding::parse_event;
use reflex_shared::ledger::{self, FeedbackResult};
use reflex_shared::securityhub::SecurityHubFeedback;
use reflex_shared::status::Status;
use reflex_tests::*;
use s3_block_public_access::BlockConfig;
use serde_json::Value;

const GUARDDUTY: &str = "s3-block-public-access/guardduty-bucket-block-public-access-disabled.json";
const GUARDDUTY_PRODUCT: &str = "arn:aws:securityhub:us-east-1::product/aws/guardduty";

fn asff_identifier(finding: &Value) -> (String, String) {
    (
        finding["Id"].as_str().unwrap().to_string(),
        finding["ProductArn"].as_str().unwrap().to_string(),
    )
}

#[tokio::test]
async fn a_guardduty_finding_in_security_hub_is_updated_under_its_asff_id() {
    let h = Harness::with_policy(APPROVE_MODE).await;
    let bucket = h.bucket(Some(ALL_OFF), &[]).await;
    let direct = sample_for(GUARDDUTY, &bucket);
    let in_sh = guardduty_in_security_hub(&direct, &bucket);
    let asff = asff_identifier(&in_sh);
    assert!(
        asff.0.starts_with("arn:aws:guardduty:") && asff.1 == GUARDDUTY_PRODUCT,
        "{asff:?}"
    );

    // Imported into Security Hub: held for approval, and the finding is told so under its ARN.
    let held = h
        .deliver_one(security_hub_imported(vec![in_sh.clone()]))
        .await;
    assert_eq!(held.status, Status::PendingApproval, "{held:?}");
    assert_eq!(sent_identifiers(&h.feedback), [vec![asff.clone()]]);
    // One identity: the record is the one the GuardDuty event itself keys, on GuardDuty's id.
    assert_eq!(
        held.record_id,
        ledger::record_id("s3-block-public-access", &finding_of(&direct))
    );
    let recorded = h.record(&held.record_id).await.finding.unwrap();
    assert_eq!(recorded.id, direct["detail"]["id"].as_str().unwrap());

    // Approved through the custom action: the same record, and again the same Security Hub finding.
    let approved = h
        .deliver_one(custom_action("ReflexApprove", in_sh, "press-approve"))
        .await;
    assert_eq!(
        (approved.record_id.as_str(), approved.status),
        (held.record_id.as_str(), Status::Succeeded),
        "{approved:?}"
    );
    assert_eq!(h.pab(&bucket).await, Some(BlockConfig::ALL_ON));
    assert_eq!(
        sent_identifiers(&h.feedback),
        [vec![asff.clone()], vec![asff]]
    );
    let r = h.record(&held.record_id).await;
    assert_eq!(
        r.securityhub.map(|f| f.result),
        Some(FeedbackResult::Updated)
    );
}

#[tokio::test]
async fn a_security_hub_control_finding_is_updated_under_its_asff_id() {
    let h = Harness::new().await;
    let bucket = h.bucket(Some(ALL_OFF), &[]).await;
    let event = sample_for(
        "s3-block-public-access/securityhub-s3.8-imported.json",
        &bucket,
    );
    let asff = asff_identifier(&event["detail"]["findings"][0]);
    let o = h.deliver_one(event).await;
    assert_eq!(o.status, Status::Succeeded, "{o:?}");
    assert_eq!(sent_identifiers(&h.feedback), [vec![asff]]);
}

/// A GuardDuty finding stored before the ASFF identifiers were kept (an older record) carries
/// only GuardDuty's id, which Security Hub does not know: nothing is sent, and the feedback
/// says why.
#[tokio::test]
async fn a_stored_guardduty_finding_without_asff_identifiers_is_never_reported_under_its_tail_id() {
    let (client, sent) = mocked_security_hub(true);
    let bucket = unique("reflex-it");
    let direct = sample_for(GUARDDUTY, &bucket);
    let mut old = parse_event(&security_hub_imported(vec![guardduty_in_security_hub(
        &direct, &bucket,
    )]))
    .unwrap()
    .remove(0);
    old.securityhub_finding = None;
    let feedback = SecurityHubFeedback::new(client)
        .report(&old, Status::Succeeded, "note")
        .await
        .expect("a succeeded outcome asks for feedback");
    assert_eq!(feedback.result, FeedbackResult::Failed);
    assert!(
        feedback.detail.contains("no Security Hub identifiers"),
        "{}",
        feedback.detail
    );
    assert!(sent.lock().unwrap().is_empty());
}
