//! Bounded outcome records, against the emulator (which, like DynamoDB, refuses an item over
//! 400 KB and a key over 2048 bytes): a record that outgrew one item is stored bounded, with
//! its markers and counts; a key DynamoDB would refuse, or a record too large to act on, is
//! refused before any write.

use reflex_shared::finding::Finding;
use reflex_shared::ledger::{
    check_keys, item_size, record_id, Action, ActionResult, AttemptError, Claim, KeyError,
    LedgerError, OutcomeRecord, PriorOutcome, RecordMeta, Takeover, DETAIL_MAX, ERRORS_KEPT,
    ERROR_TEXT_MAX, HISTORY_KEPT, ITEM_BUDGET, TEXT_MAX,
};
use reflex_shared::status::{Reason, Status};
use reflex_tests::{finding_of, sample_for, unique, Harness};
use serde_json::json;

const REMEDIATION: &str = "s3-block-public-access";
const SAMPLE: &str = "s3-block-public-access/securityhub-s3.8-imported.json";

fn now_epoch() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A claimed record for a fresh finding about a bucket of its own.
fn record_for(finding: Finding) -> OutcomeRecord {
    let meta = RecordMeta {
        function_version: "test".into(),
        request_id: "bounded-request".into(),
        event_digest: "0".repeat(64),
        claim_token: "bounded-token".into(),
    };
    let mut r = OutcomeRecord::new(
        record_id(REMEDIATION, &finding),
        REMEDIATION,
        &meta,
        "2026-11-26T00:00:00.000Z",
    );
    r.resource_arn = finding.resources[0].arn.clone();
    r.finding = Some(finding);
    r.lease_expires_at = Some(now_epoch() + 120);
    r
}

fn fresh_finding() -> Finding {
    finding_of(&sample_for(SAMPLE, &unique("reflex-bound")))
}

fn marked(text: &str, max: usize) -> bool {
    text.len() <= max && text.contains("…[truncated ") && text.ends_with(" bytes]")
}

/// Put the record's item exactly as it is, bypassing the ledger: what the emulator says.
async fn raw_put(h: &Harness, record: &OutcomeRecord) -> Result<(), String> {
    h.setup
        .ledger
        .client()
        .put_item()
        .table_name(h.setup.ledger.table())
        .set_item(Some(serde_dynamo::to_item(record).unwrap()))
        .send()
        .await
        .map(|_| ())
        .map_err(|e| format!("{:?}", e.into_service_error()))
}

#[tokio::test]
async fn a_record_that_outgrew_one_item_is_stored_bounded() {
    let h = Harness::new().await;
    let mut finding = fresh_finding();
    finding.title = "T".repeat(1_000_000);
    let mut record = record_for(finding.clone());
    record.pre_state = Some(json!({"public_access_block": null}));
    let mut step = Action::planned(
        "s3:PutPublicAccessBlock",
        json!({"Bucket": finding.resources[0].id}),
    );
    step.step = Some(json!({"block_all": true}));
    record.actions = vec![step.carried_out(Err("E".repeat(1_000_000)))];
    record.history = (0..200)
        .map(|i| PriorOutcome {
            status: Status::Failed,
            reason: Reason::ActionError,
            detail: format!("outcome {i}: {}", "d".repeat(10_000)),
            attempt: i,
            request_id: format!("request-{i}"),
            updated_at: "2026-11-26T00:00:00.000Z".into(),
            actions: vec![],
            pre_state: Some(json!("p".repeat(20_000))),
            post_state: Some(json!("q".repeat(20_000))),
            resource_identity: None,
        })
        .collect();
    record.errors = (0..50)
        .map(|i| AttemptError {
            attempt: i,
            step: "act".into(),
            message: format!("error {i}: {}", "e".repeat(100_000)),
            at: "2026-11-26T00:00:00.000Z".into(),
        })
        .collect();

    // As it is, DynamoDB (and the emulator) refuses the item, on every try.
    let refused = raw_put(&h, &record).await.unwrap_err();
    assert!(refused.contains("Item size has exceeded"), "{refused}");

    let claim = h
        .setup
        .ledger
        .claim(record.clone(), now_epoch(), Takeover::ExpiredLease)
        .await
        .expect("the bounded record is written");
    assert!(matches!(claim, Claim::Acquired(_)), "{claim:?}");

    let stored = h.record(&record.record_id).await;
    let f = stored.finding.as_ref().unwrap();
    assert!(
        marked(&f.title, TEXT_MAX),
        "{}",
        &f.title[f.title.len() - 40..]
    );
    assert!(f.title.starts_with("TTT"));
    let kept = f.title.find('…').unwrap();
    assert!(f
        .title
        .ends_with(&format!("[truncated {} bytes]", 1_000_000 - kept)));
    // What the record key, approval and rollback are derived from is intact.
    assert_eq!(
        (&f.id, &f.generation, &f.resources, &f.kind),
        (
            &finding.id,
            &finding.generation,
            &finding.resources,
            &finding.kind
        )
    );
    assert_eq!(stored.pre_state, record.pre_state);
    assert_eq!(stored.actions[0].step, Some(json!({"block_all": true})));
    assert_eq!(stored.actions[0].parameters, record.actions[0].parameters);
    assert!(matches!(stored.actions[0].result, ActionResult::Failed(_)));
    assert!(marked(stored.actions[0].result.as_str(), ERROR_TEXT_MAX));

    // History: the first outcome and the newest, the rest counted; their states omitted.
    assert_eq!(stored.history.len(), HISTORY_KEPT);
    assert!(stored.history[0].detail.starts_with("outcome 0: "));
    assert!(stored.history[1].detail.starts_with("outcome 191: "));
    assert!(stored.history[HISTORY_KEPT - 1]
        .detail
        .starts_with("outcome 199: "));
    assert!(stored
        .history
        .iter()
        .all(|h| marked(&h.detail, DETAIL_MAX) && h.pre_state.is_none()));
    assert_eq!(stored.errors.len(), ERRORS_KEPT);
    assert!(stored.errors[0].message.starts_with("error 0: "));
    assert!(stored.errors[ERRORS_KEPT - 1]
        .message
        .starts_with("error 49: "));
    assert!(stored
        .errors
        .iter()
        .all(|e| marked(&e.message, ERROR_TEXT_MAX)));
    let trimmed = stored.trimmed.clone().expect("what was left out is said");
    assert_eq!((trimmed.history_dropped, trimmed.errors_dropped), (190, 30));
    assert_eq!(trimmed.omitted, vec!["history pre/post states"]);
    assert!(item_size(&stored).unwrap() <= ITEM_BUDGET);

    // Completing (an update of every field) is bounded the same way.
    record.set_outcome(
        Status::Failed,
        Reason::ActionError,
        format!("refused: {}", "x".repeat(100_000)),
    );
    h.setup
        .ledger
        .complete(&record)
        .await
        .expect("the bounded completion is written");
    let completed = h.record(&record.record_id).await;
    assert_eq!(completed.status, Status::Failed);
    assert!(completed.detail.starts_with("refused: xxx"));
    assert!(marked(&completed.detail, DETAIL_MAX));
    assert_eq!(completed.history, stored.history);
    assert_eq!(completed.trimmed, Some(trimmed));
}

#[tokio::test]
async fn a_resource_arn_too_long_for_a_key_is_refused_before_any_write() {
    let h = Harness::new().await;
    let normal = record_for(fresh_finding());
    assert_eq!(check_keys(&normal), Ok(()));

    let mut forged = record_for(fresh_finding());
    forged.resource_arn = Some(format!("arn:aws:s3:::{}", "b".repeat(3000)));
    match check_keys(&forged) {
        Err(KeyError::TooLong {
            attribute: "resource_arn",
            bytes,
            max: 2048,
            ..
        }) => assert_eq!(bytes, 3013),
        other => panic!("{other:?}"),
    }
    // Written as it is, the emulator refuses it (as DynamoDB does, every time).
    let refused = raw_put(&h, &forged).await.unwrap_err();
    assert!(refused.contains("2048 bytes"), "{refused}");

    // The ledger refuses it before any call, saying why; nothing is stored.
    match h
        .setup
        .ledger
        .claim(forged.clone(), now_epoch(), Takeover::ExpiredLease)
        .await
    {
        Err(LedgerError::Codec(_, why)) => {
            assert!(why.starts_with("resource_arn is 3013 bytes"), "{why}")
        }
        other => panic!("{other:?}"),
    }
    assert!(h
        .setup
        .ledger
        .get(&forged.record_id)
        .await
        .unwrap()
        .is_none());

    let claim = h
        .setup
        .ledger
        .claim(normal.clone(), now_epoch(), Takeover::ExpiredLease)
        .await
        .unwrap();
    assert!(matches!(claim, Claim::Acquired(_)));
    assert_eq!(
        h.record(&normal.record_id).await.resource_arn,
        normal.resource_arn
    );
}

#[tokio::test]
async fn a_record_too_large_to_act_on_is_refused_not_cut() {
    let h = Harness::new().await;
    let mut record = record_for(fresh_finding());
    record.pre_state = Some(json!("p".repeat(500_000)));
    match h
        .setup
        .ledger
        .claim(record.clone(), now_epoch(), Takeover::ExpiredLease)
        .await
    {
        Err(LedgerError::Codec(_, why)) => assert!(why.contains("too large to store"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert!(h
        .setup
        .ledger
        .get(&record.record_id)
        .await
        .unwrap()
        .is_none());
}
