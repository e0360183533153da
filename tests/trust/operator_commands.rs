//! Operator commands sent to the deployed artifact: the function's real binary, served command
//! payloads by the fake Lambda Runtime API (as `aws lambda invoke --payload` would deliver them),
//! talking to the emulator. An operator is who STS says signed the command's proof, never who
//! the payload says; a command that does not prove its operator changes nothing.
//!
//! moto's `GetCallerIdentity` answers with the ARN of whoever owns the access key named in the
//! Authorization header, and does not verify signatures: a signature STS refuses is tested with
//! aws-smithy-mocks in `shared/src/operator/sts.rs`.

use reflex_shared::operator::{self, Order};
use reflex_shared::pipeline::{self, PipelineError};
use reflex_shared::status::{Reason, Status};
use reflex_tests::iam::{self, AccessKey};
use reflex_tests::lambda_api::{serve_binary, Posted, Served};
use reflex_tests::*;
use s3_block_public_access::BlockConfig;
use serde_json::{json, Value};

const S3_8: &str = "s3-block-public-access/securityhub-s3.8-imported.json";
const FUNCTION: &str = "s3-block-public-access";
const ALICE: &str = "arn:aws:iam::123456789012:user/alice";

fn rollback(dry_run: bool, hold_for_hours: u32) -> Order {
    Order::Rollback {
        dry_run,
        hold_for_hours,
    }
}

/// A bucket fixed by the function (a succeeded, reversible record); the bucket and the record.
async fn fixed(h: &Harness) -> (String, String) {
    let bucket = h.bucket(Some(ALL_OFF), &[]).await;
    let o = h.deliver_one(sample_for(S3_8, &bucket)).await;
    assert_eq!(o.status, Status::Succeeded, "{o:?}");
    (bucket, o.record_id)
}

/// The function binary, with this harness's table and `policy` in SSM, served `events`.
async fn serve(h: &Harness, policy: &str, events: Vec<Value>) -> Served {
    let parameter = policy_parameter(policy).await;
    serve_binary(
        &binary(FUNCTION),
        &[
            ("REFLEX_TABLE", h.setup.ledger.table()),
            ("REFLEX_POLICY_PARAMETER", &parameter),
        ],
        events,
    )
    .await
}

fn operators(arns: &[&str]) -> String {
    let quoted: Vec<String> = arns.iter().map(|a| format!("'{a}'")).collect();
    format!("version: 1\noperators: [{}]", quoted.join(", "))
}

/// The invocation failed as refused, for `why`.
fn assert_refused(p: &Posted, why: &str) {
    assert_eq!(p.kind, "error", "{p:?}");
    assert_eq!(p.body["errorType"], "Reflex.Refused", "{p:?}");
    let message = p.body["errorMessage"].as_str().unwrap_or_default();
    assert!(message.contains(why), "want {why:?} in {message}");
}

/// Every refusal is in the log with its reason.
fn assert_logged(served: &Served, reasons: &[&str]) {
    let refusals = served.logged("command refused");
    for why in reasons {
        assert!(
            refusals
                .iter()
                .any(|l| l["error"].as_str().is_some_and(|e| e.contains(why))),
            "no refusal logged for {why:?}: {refusals:?}"
        );
    }
}

/// What a command could change: the record, the bucket, and a suppression for it.
async fn state(h: &Harness, bucket: &str, record_id: &str) -> (Value, Option<BlockConfig>, bool) {
    let record = serde_json::to_value(h.record(record_id).await).unwrap();
    let suppressed = h
        .setup
        .ledger
        .suppression(FUNCTION, &format!("arn:aws:s3:::{bucket}"))
        .await
        .unwrap()
        .is_some();
    (record, h.pab(bucket).await, suppressed)
}

/// An SDK config with an IAM user's own access key.
async fn config_of(key: &AccessKey) -> aws_config::SdkConfig {
    sdk_config_as(aws_sdk_s3::config::Credentials::new(
        &key.access_key_id,
        &key.secret_access_key,
        None,
        None,
        "operator",
    ))
    .await
}

/// A command signed by `sdk`'s credentials for `h`'s table.
async fn signed(sdk: &aws_config::SdkConfig, h: &Harness, order: Order, record_id: &str) -> Value {
    operator::signed_command(sdk, order, record_id, h.setup.ledger.table())
        .await
        .expect("sign")
}

/// Today's attack: a direct invocation naming its own operator. The `by` field no longer
/// exists, so the command is refused, whoever it names, with or without a valid proof.
#[tokio::test]
async fn a_payload_that_names_its_operator_is_refused_and_changes_nothing() {
    let h = Harness::new().await;
    let (bucket, record_id) = fixed(&h).await;
    let before = state(&h, &bucket, &record_id).await;
    assert_eq!(before.1, Some(BlockConfig::ALL_ON));

    let attack = json!({ "reflex": {
        "command": "rollback", "record_id": record_id, "by": "arn:aws:iam::123456789012:user/mallory"
    }});
    // A valid proof (signed by the test credentials, named an operator) does not help.
    let mut with_proof = h.signed_command(rollback(false, 168), &record_id).await;
    with_proof["reflex"]["by"] = json!("arn:aws:iam::123456789012:user/mallory");
    let served = serve(&h, &operators(&[MOTO_CALLER]), vec![attack, with_proof]).await;

    for p in &served.posted {
        assert_refused(p, "unknown field `by`");
    }
    assert_logged(&served, &["unknown field `by`"]);
    assert_eq!(
        state(&h, &bucket, &record_id).await,
        before,
        "nothing changed"
    );
    let r = h.record(&record_id).await;
    assert_eq!(r.status, Status::Succeeded);
    assert!(r.rollback.is_none());
}

/// A command without a proof, or with a proof signed for another command, changes nothing.
#[tokio::test]
async fn commands_without_a_proof_or_with_another_commands_proof_are_refused() {
    let h = Harness::new().await;
    let (bucket, record_id) = fixed(&h).await;
    let (_, other_record) = fixed(&h).await;
    let before = state(&h, &bucket, &record_id).await;

    let unproven = json!({ "reflex": { "command": "rollback", "record_id": record_id } });
    // Signed for another record, then pointed at this one.
    let mut other = h.signed_command(rollback(false, 168), &other_record).await;
    other["reflex"]["record_id"] = json!(record_id);
    // Signed for a dry run, then turned into a real rollback.
    let mut dry = h.signed_command(rollback(true, 168), &record_id).await;
    dry["reflex"]["dry_run"] = json!(false);
    // Signed for another deployment's table.
    let elsewhere = operator::signed_command(&h.sdk, rollback(false, 168), &record_id, "elsewhere")
        .await
        .unwrap();
    let served = serve(
        &h,
        &operators(&[MOTO_CALLER]),
        vec![unproven, other, dry, elsewhere],
    )
    .await;

    assert_refused(&served.posted[0], "carries no proof");
    for p in &served.posted[1..] {
        assert_refused(p, "signed for another command");
    }
    assert_logged(&served, &["carries no proof", "signed for another command"]);
    assert_eq!(
        state(&h, &bucket, &record_id).await,
        before,
        "nothing changed"
    );
}

/// alice (an IAM user in the emulator, named in `operators`) approves with a payload signed by
/// `reflex approve --command-for-function`, then rolls back: the record names her as STS does.
#[tokio::test]
async fn an_operator_named_in_operators_approves_and_rolls_back_as_sts_names_her() {
    let alice = iam::user_with_access_key("alice").await;
    assert_eq!(alice.user_arn, ALICE);
    let approve_mode = "version: 1\nremediations:\n  s3-block-public-access: {mode: approve}";
    let h = Harness::with_policy(approve_mode).await;
    let bucket = h.bucket(Some(ALL_OFF), &[]).await;
    let held = h.deliver_one(sample_for(S3_8, &bucket)).await;
    assert_eq!(held.status, Status::PendingApproval, "{held:?}");

    // The operator's own tool signs the approval with her credentials.
    let out = std::process::Command::new(binary("reflex"))
        .args([
            "--table",
            h.setup.ledger.table(),
            "approve",
            &held.record_id,
        ])
        .arg("--command-for-function")
        .env("AWS_ACCESS_KEY_ID", &alice.access_key_id)
        .env("AWS_SECRET_ACCESS_KEY", &alice.secret_access_key)
        .env("AWS_REGION", "us-east-1")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let approve: Value = serde_json::from_slice(&out.stdout).expect("the payload is JSON");
    let undo = signed(
        &config_of(&alice).await,
        &h,
        rollback(false, 24),
        &held.record_id,
    )
    .await;
    // The payload carries no field that could name an operator: only the command, its
    // parameters and the proof.
    for payload in [&approve, &undo] {
        let mut keys: Vec<&str> = payload["reflex"]
            .as_object()
            .expect("a command")
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort();
        let allowed = ["command", "dry_run", "hold_for_hours", "proof", "record_id"];
        assert!(keys.iter().all(|k| allowed.contains(k)), "{keys:?}");
        assert!(keys.contains(&"proof"), "{keys:?}");
    }

    let policy = format!("{approve_mode}\noperators: ['{ALICE}']");
    let served = serve(&h, &policy, vec![approve, undo]).await;
    let outcome = |i: usize| -> &Value { &served.posted[i].body[0] };
    assert_eq!(served.posted[0].kind, "response", "{:?}", served.posted[0]);
    assert_eq!(outcome(0)["status"], "succeeded", "{:?}", served.posted[0]);
    let approved = h.record(&held.record_id).await;
    assert_eq!(approved.approved_by.as_deref(), Some(ALICE));

    assert_eq!(served.posted[1].kind, "response", "{:?}", served.posted[1]);
    assert_eq!(
        outcome(1)["status"],
        "rolled-back",
        "{:?}",
        served.posted[1]
    );
    let r = h.record(&held.record_id).await;
    assert_eq!(r.rollback.as_ref().map(|rb| rb.by.as_str()), Some(ALICE));
    assert_eq!(h.pab(&bucket).await, Some(ALL_OFF), "the pre-state is back");
    let suppression = h
        .setup
        .ledger
        .suppression(FUNCTION, &format!("arn:aws:s3:::{bucket}"))
        .await
        .unwrap()
        .expect("the echo is held back");
    assert_eq!(suppression.by, ALICE);
    assert_eq!(served.logged("command accepted").len(), 2);
}

/// Someone STS knows, but whom `operators` does not name, is refused; so is a role of another
/// account even when a pattern matches it; and with no `operators` (the default), everyone is.
/// An assumed role that is named (its session token signed and carried) may act.
#[tokio::test]
async fn an_operator_not_in_operators_is_refused() {
    let dave = iam::user_with_access_key(&unique("dave")).await;
    let h = Harness::new().await;
    let (bucket, record_id) = fixed(&h).await;
    let before = state(&h, &bucket, &record_id).await;

    let sts = aws_sdk_sts::Client::new(&h.sdk);
    let role = |account: &str, session: &str| {
        let sts = sts.clone();
        let arn = format!("arn:aws:iam::{account}:role/Oncall");
        let session = session.to_string();
        async move {
            let c = sts
                .assume_role()
                .role_arn(arn)
                .role_session_name(session)
                .send()
                .await
                .unwrap()
                .credentials
                .unwrap();
            sdk_config_as(aws_sdk_s3::config::Credentials::new(
                c.access_key_id,
                c.secret_access_key,
                Some(c.session_token),
                None,
                "assumed-role",
            ))
            .await
        }
    };
    let own_oncall = role(ACCOUNT, "carol").await;
    let foreign_oncall = role("999999999999", "eve").await;

    let dry = rollback(true, 168);
    let events = vec![
        signed(&config_of(&dave).await, &h, dry, &record_id).await,
        signed(&foreign_oncall, &h, dry, &record_id).await,
        signed(&own_oncall, &h, dry, &record_id).await,
    ];
    let policy = operators(&[
        "arn:aws:iam::123456789012:user/bob",
        "arn:aws:sts::*:assumed-role/Oncall/*",
    ]);
    let served = serve(&h, &policy, events).await;
    assert_refused(
        &served.posted[0],
        "matches no pattern of the policy's `operators`",
    );
    assert_refused(
        &served.posted[1],
        "not this function's account 123456789012",
    );
    assert_eq!(served.posted[2].kind, "response", "{:?}", served.posted[2]);
    let detail = served.posted[2].body[0]["detail"]
        .as_str()
        .unwrap_or_default();
    assert!(
        detail.starts_with("dry-run: the rollback would"),
        "{detail}"
    );
    assert_logged(&served, &[dave.user_arn.as_str(), "999999999999"]);

    // No `operators` at all: no one may command a function.
    let events = vec![signed(&own_oncall, &h, dry, &record_id).await];
    let served = serve(&h, "version: 1", events).await;
    assert_refused(&served.posted[0], "`operators` is empty");
    assert_eq!(
        state(&h, &bucket, &record_id).await,
        before,
        "nothing changed"
    );
}

/// A hold beyond 90 days is refused before anything is written, by the function (and the
/// function lives on to serve the next command) and by the library itself.
#[tokio::test]
async fn a_hold_over_90_days_is_refused_without_a_panic() {
    let h = Harness::new().await;
    let (bucket, record_id) = fixed(&h).await;
    let before = state(&h, &bucket, &record_id).await;

    let events = vec![
        h.signed_command(rollback(false, 100_000), &record_id).await,
        h.signed_command(rollback(false, 2161), &record_id).await,
        h.signed_command(rollback(true, 2160), &record_id).await,
    ];
    let served = serve(&h, &operators(&[MOTO_CALLER]), events).await;
    assert_refused(&served.posted[0], "hold_for_hours 100000 is over 2160");
    assert_refused(&served.posted[1], "hold_for_hours 2161 is over 2160");
    assert_eq!(
        served.posted[2].kind, "response",
        "still serving: {:?}",
        served.posted[2]
    );
    assert!(!served.stderr.contains("panicked"), "{}", served.stderr);
    assert_eq!(
        state(&h, &bucket, &record_id).await,
        before,
        "nothing changed"
    );

    // The library's own guard, whoever calls it.
    let until = chrono::Utc::now() + chrono::Duration::days(91);
    match pipeline::rollback(
        &h.setup,
        &h.remediation,
        &record_id,
        MOTO_CALLER,
        false,
        until,
    )
    .await
    {
        Err(PipelineError::Refused(why)) => assert!(why.contains("more than 90 days"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        state(&h, &bucket, &record_id).await,
        before,
        "nothing changed"
    );
    let r = h.record(&record_id).await;
    assert_eq!(
        (r.status, r.reason),
        (Status::Succeeded, Reason::Remediated)
    );
}
