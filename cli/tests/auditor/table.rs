//! A demo-like outcome table: one record per sample finding of every function (events/), in a
//! mix of the outcomes the demo shows (fixed and verified, dry-run, held for approval then
//! approved, exempt, failed, rolled back, still in progress), spread over a day, plus records
//! whose attacker-influenced text (a title, a bucket name) is markup and a very long ARN.

use reflex_cli::functions;
use reflex_shared::ledger::{Action, Ledger, OutcomeRecord, RecordMeta, Rollback};
use reflex_shared::policy::Mode;
use reflex_shared::status::{Reason, Status};
use serde_json::{json, Value};
use std::path::Path;

/// The hostile title and resource, as they must read on the page.
pub const HOSTILE_TITLE: &str =
    "<script>document.title='pwned'</script><img src=http://198.51.100.7/x.png>";
pub const HOSTILE_ARN: &str = "arn:aws:s3:::<script>alert(1)</script>";

fn at(minutes: i64) -> String {
    let start = chrono::DateTime::parse_from_rfc3339("2026-12-01T08:00:00Z").unwrap();
    (start + chrono::Duration::minutes(minutes))
        .with_timezone(&chrono::Utc)
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn step(api: &str, parameters: Value, result: Option<Result<(), String>>) -> Action {
    let a = Action::planned(api, parameters);
    match result {
        Some(r) => a.carried_out(r),
        None => a,
    }
}

/// Every record of the table, oldest first.
pub fn records() -> Vec<OutcomeRecord> {
    let events = Path::new(env!("CARGO_MANIFEST_DIR")).join("../events");
    let meta = RecordMeta {
        function_version: "3".into(),
        request_id: "req".into(),
        event_digest: "digest".into(),
        claim_token: "token".into(),
    };
    let mut out = Vec::new();
    for name in functions::names() {
        let mut files: Vec<_> = std::fs::read_dir(events.join(name))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        for file in files {
            let event: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
            let Some(finding) = reflex_shared::finding::parse_event(&event)
                .ok()
                .and_then(|f| f.into_iter().next())
            else {
                continue;
            };
            let i = out.len();
            let mut r =
                OutcomeRecord::new(format!("{name}#{i:032x}"), name, &meta, &at(i as i64 * 17));
            r.updated_at = at(i as i64 * 17 + 1);
            r.resource_arn = finding
                .resources
                .first()
                .map(|x| x.arn.clone().unwrap_or_else(|| x.id.clone()));
            r.finding = Some(finding);
            outcome(&mut r, i);
            out.push(r);
        }
    }
    let i = out.len() as i64;
    let mut hostile = out[0].clone();
    hostile.record_id = "s3-block-public-access#hostile".into();
    hostile.created_at = at(i * 17);
    if let Some(f) = hostile.finding.as_mut() {
        f.title = HOSTILE_TITLE.into();
    }
    hostile.resource_arn = Some(HOSTILE_ARN.into());
    hostile.pre_state = Some(json!({"bucket": "<script>alert('pre')</script>"}));
    out.push(hostile);
    let mut long = out[1].clone();
    long.record_id = "iam-detach-admin-policy#long".into();
    long.remediation = "iam-detach-admin-policy".into();
    long.created_at = at(i * 17 + 5);
    long.resource_arn = Some(format!(
        "arn:aws:iam::123456789012:role/{}/{}",
        "a-very-deep-path".repeat(12),
        "R".repeat(64)
    ));
    long.detail = "x".repeat(600);
    out.push(long);
    // An invocation that died mid-fix: still `acting`, its lease run out (`audit --stuck`).
    let mut stuck = out[2].clone();
    stuck.record_id = "s3-block-public-access#stuck".into();
    stuck.created_at = at(i * 17 + 9);
    stuck.set_outcome(Status::Acting, Reason::InProgress, "acting");
    stuck.lease_expires_at = Some(1_764_576_000);
    out.push(stuck);
    out
}

/// The record's outcome, by its place in the mix.
fn outcome(r: &mut OutcomeRecord, i: usize) {
    let bucket = r.resource_arn.clone().unwrap_or_default();
    let change = |result| {
        step(
            "s3:PutPublicAccessBlock",
            json!({"Bucket": bucket, "PublicAccessBlockConfiguration": {"BlockPublicAcls": true, "BlockPublicPolicy": true}}),
            result,
        )
    };
    let pre = json!({"public_access_block": null, "policy_status": {"IsPublic": true}});
    let post = json!({"public_access_block": {"block_public_acls": true, "block_public_policy": true, "ignore_public_acls": true, "restrict_public_buckets": true}});
    match i % 8 {
        0 | 5 => {
            r.mode = Some(Mode::Enforce);
            r.set_outcome(
                Status::Succeeded,
                Reason::Remediated,
                "enforced by the default for low risk; verified by a fresh read",
            );
            r.actions = vec![change(Some(Ok(())))];
            r.pre_state = Some(pre);
            r.post_state = Some(post);
            r.verified = Some(true);
            r.verified_at = Some(r.updated_at.clone());
            r.reversible = Some(true);
        }
        1 => {
            r.mode = Some(Mode::DryRun);
            r.set_outcome(
                Status::DryRun,
                Reason::WouldChange,
                "dry-run by defaults: the planned change was not made",
            );
            r.actions = vec![change(None)];
            r.pre_state = Some(pre);
        }
        2 => {
            r.mode = Some(Mode::Approve);
            r.set_outcome(
                Status::PendingApproval,
                Reason::AwaitingApproval,
                "approve by the default for high risk: the plan waits for `reflex approve`",
            );
            r.actions = vec![change(None)];
            r.pre_state = Some(pre);
        }
        3 => {
            r.mode = Some(Mode::Approve);
            r.set_outcome(
                Status::PendingApproval,
                Reason::AwaitingApproval,
                "held for approval",
            );
            r.history = vec![r.prior()];
            r.set_outcome(
                Status::Succeeded,
                Reason::Remediated,
                "approved; verified by a fresh read",
            );
            r.actions = vec![change(Some(Ok(())))];
            r.pre_state = Some(pre);
            r.post_state = Some(post);
            r.verified = Some(true);
            r.approved_by = Some("arn:aws:sts::123456789012:assumed-role/SecOps/alice".into());
            r.approved_at = Some(r.updated_at.clone());
        }
        4 => {
            r.mode = Some(Mode::Enforce);
            r.set_outcome(
                Status::Skipped,
                Reason::Exempt,
                "exempt by the tag reflex:exempt=true",
            );
        }
        6 => {
            r.mode = Some(Mode::Enforce);
            r.set_outcome(
                Status::Failed,
                Reason::ActionError,
                "AccessDenied: not authorized to perform s3:PutPublicAccessBlock",
            );
            r.actions = vec![change(Some(Err("AccessDenied".into())))];
            r.pre_state = Some(pre);
        }
        _ => {
            r.mode = Some(Mode::Enforce);
            r.set_outcome(
                Status::RolledBack,
                Reason::Undone,
                "rolled back by an operator",
            );
            r.actions = vec![change(Some(Ok(())))];
            r.pre_state = Some(pre.clone());
            r.post_state = Some(pre);
            r.verified = Some(true);
            r.rollback = Some(Rollback {
                by: "arn:aws:sts::123456789012:assumed-role/SecOps/bob".into(),
                at: r.updated_at.clone(),
                actions: vec![step(
                    "s3:DeletePublicAccessBlock",
                    json!({"Bucket": bucket}),
                    Some(Ok(())),
                )],
                suppressed_until: "2026-12-08T08:00:00.000Z".into(),
                hold_lifted: None,
            });
        }
    }
}

/// A table of the test's own in the emulator, holding `records`.
pub async fn create(prefix: &str, records: &[OutcomeRecord]) -> (aws_sdk_dynamodb::Client, String) {
    assert!(
        std::env::var("AWS_ENDPOINT_URL").is_ok_and(|e| !e.is_empty()),
        "AWS_ENDPOINT_URL is not set: run the tests with scripts/test"
    );
    let sdk = reflex_shared::setup::sdk_config().await;
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    let table = format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    Ledger::new(client.clone(), &table)
        .create_table_if_absent()
        .await
        .unwrap();
    for r in records {
        client
            .put_item()
            .table_name(&table)
            .set_item(Some(serde_dynamo::to_item(r).unwrap()))
            .send()
            .await
            .unwrap();
    }
    (client, table)
}
