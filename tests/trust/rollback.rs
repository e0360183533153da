//! Rollback acts only on the resource it changed, under a lease, from a checkpoint, and writes
//! down every rollback tried. Against the emulator.

use futures::future::join_all;
use reflex_shared::pipeline::{self, PipelineError};
use reflex_shared::status::{Reason, Status};
use reflex_tests::*;
use s3_block_public_access::BlockConfig;

const S3_8: &str = "s3-block-public-access/securityhub-s3.8-imported.json";
const OPERATOR: &str = "arn:aws:iam::123456789012:user/operator";

fn a_week() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now() + chrono::Duration::days(7)
}

/// A bucket deleted and created again under the same name is another bucket, even with the
/// four settings on (as AWS sets every new bucket, equal to the fix's post-state): the record
/// holds the fixed bucket's creation date, and rollback refuses the newcomer, changing
/// nothing and noting the refusal in the record's history.
#[tokio::test]
async fn rollback_refuses_a_bucket_created_again_under_the_same_name() {
    let h = Harness::new().await;
    let bucket = h.bucket(Some(ALL_OFF), &[]).await;
    let fixed = h.deliver_one(sample_for(S3_8, &bucket)).await;
    assert_eq!(fixed.status, Status::Succeeded);
    let r = h.record(&fixed.record_id).await;
    let identity = r
        .resource_identity
        .clone()
        .expect("the bucket's creation date");

    // As AWS creates every new bucket: all four settings on, equal to the fix's post-state.
    h.recreate_bucket(&bucket, Some(BlockConfig::ALL_ON)).await;

    match pipeline::rollback(
        &h.setup,
        &h.remediation,
        &fixed.record_id,
        OPERATOR,
        false,
        a_week(),
    )
    .await
    {
        Err(PipelineError::Refused(why)) => {
            assert!(why.contains("is not the resource the fix changed"), "{why}");
            assert!(why.contains(&identity), "{why}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        h.pab(&bucket).await,
        Some(BlockConfig::ALL_ON),
        "the new bucket is untouched"
    );
    let after = h.record(&fixed.record_id).await;
    assert_eq!(after.status, Status::Succeeded);
    let noted = after.history.last().expect("the refusal, in history");
    assert_eq!(noted.reason, Reason::RollbackRefused);
    assert!(noted.detail.contains(OPERATOR), "{}", noted.detail);
    assert!(h
        .setup
        .ledger
        .suppression("s3-block-public-access", &format!("arn:aws:s3:::{bucket}"))
        .await
        .unwrap()
        .is_none());
}

/// Two rollbacks of one record at once: one takes the record's rollback lease and acts, the
/// other changes nothing (busy, or refused once the first has finished).
#[tokio::test]
async fn two_concurrent_rollbacks_act_once() {
    let h = Harness::new().await;
    let bucket = h.bucket(Some(ALL_OFF), &[]).await;
    let fixed = h.deliver_one(sample_for(S3_8, &bucket)).await;
    assert_eq!(fixed.status, Status::Succeeded);
    let until = a_week();
    let results = join_all((0..2).map(|_| {
        pipeline::rollback(
            &h.setup,
            &h.remediation,
            &fixed.record_id,
            OPERATOR,
            false,
            until,
        )
    }))
    .await;
    let done: Vec<_> = results.iter().filter(|r| r.is_ok()).collect();
    assert_eq!(done.len(), 1, "{results:?}");
    for r in &results {
        match r {
            Ok(o) => assert_eq!(o.status, Status::RolledBack),
            Err(PipelineError::Busy { .. }) => {}
            Err(PipelineError::Refused(why)) => assert!(
                why.contains("already rolled back") || why.contains("changed since the fix"),
                "{why}"
            ),
            Err(e) => panic!("{e:?}"),
        }
    }
    // The fix and one restore.
    assert_eq!(
        h.calls.count("PutPublicAccessBlock"),
        2,
        "{:?}",
        h.calls.calls()
    );
    assert_eq!(h.pab(&bucket).await, Some(ALL_OFF));
    let r = h.record(&fixed.record_id).await;
    assert_eq!(r.status, Status::RolledBack);
    assert!(r.rollback_pending.is_none());
}

/// A rollback of a record that is not succeeded is refused, and the refusal is on the record.
#[tokio::test]
async fn a_refused_rollback_is_written_into_the_history() {
    let h = Harness::with_policy(
        "version: 1\nremediations:\n  s3-block-public-access: {mode: dry-run}",
    )
    .await;
    let bucket = h.bucket(Some(ALL_OFF), &[]).await;
    let dry = h.deliver_one(sample_for(S3_8, &bucket)).await;
    assert_eq!(dry.status, Status::DryRun);
    assert!(matches!(
        pipeline::rollback(
            &h.setup,
            &h.remediation,
            &dry.record_id,
            OPERATOR,
            false,
            a_week()
        )
        .await,
        Err(PipelineError::Refused(_))
    ));
    let r = h.record(&dry.record_id).await;
    assert_eq!(r.status, Status::DryRun);
    assert_eq!(r.history.len(), 1);
    assert_eq!(r.history[0].reason, Reason::RollbackRefused);
    assert!(
        r.history[0].detail.contains("only a succeeded fix"),
        "{}",
        r.history[0].detail
    );
}
