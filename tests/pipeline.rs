//! The pipeline, tested once for every function: a scripted fake remediation (support/scripted.rs,
//! no S3) against the real outcome ledger in the emulator. Every transition of the record's
//! state machine and every error class: transient (handed back to Lambda), permanent (a final
//! record), a resource gone, eventual consistency in verification, retries exhausted, and the
//! budget's reservation given back when nothing changed.

use reflex_shared::ledger::{self, OutcomeRecord};
use reflex_shared::operator::Order;
use reflex_shared::pipeline::{Handled, PipelineError};
use reflex_shared::status::{Reason, Status};
use reflex_tests::scripted::{Go, Script, Scripted, FIX, SCRIPTED_SPEC};
use reflex_tests::*;
use serde_json::{json, Value};
use std::time::Duration;

const S3_8: &str = "s3-block-public-access/securityhub-s3.8-imported.json";

struct World {
    h: Harness,
    fake: Scripted,
    event: Value,
    record_id: String,
}

async fn world_with(script: Script, policy: &str) -> World {
    world_in(Harness::with_policy(policy).await, script)
}

fn world_in(mut h: Harness, script: Script) -> World {
    // Short pauses between verification re-reads: the schedule's shape, not its length, is
    // under test here.
    h.setup.verify_delays = vec![Duration::from_millis(10), Duration::from_millis(20)];
    let event = sample_for(S3_8, &unique("fake"));
    let record_id = ledger::record_id(SCRIPTED_SPEC.name, &finding_of(&event));
    let fake = Scripted::new(h.setup.ledger.clone(), script);
    World {
        h,
        fake,
        event,
        record_id,
    }
}

async fn world(script: Script) -> World {
    world_with(script, "version: 1").await
}

impl World {
    async fn deliver(&self) -> Result<Handled, PipelineError> {
        self.h
            .deliver_to(&self.fake, self.event.clone())
            .await
            .map(|mut o| o.remove(0))
    }

    async fn record(&self) -> OutcomeRecord {
        self.h.record(&self.record_id).await
    }

    async fn budget(&self) -> u32 {
        self.h.budget_count(SCRIPTED_SPEC.name).await
    }

    /// A crashed attempt's checkpoint for this world's finding: `acting`, its one planned step
    /// and its pre-state, under a lease that ends at `lease_expires_at` (not yet stored).
    fn crashed_acting(&self, lease_expires_at: i64) -> OutcomeRecord {
        let mut r = crashed_record(
            &self.record_id,
            SCRIPTED_SPEC.name,
            finding_of(&self.event),
            Status::Acting,
            lease_expires_at,
        );
        r.pre_state = Some(json!({ "fixed": false }));
        r.actions = vec![reflex_shared::ledger::Action::planned(FIX, json!({}))];
        r
    }
}

fn script(pick: impl FnOnce(&mut Script)) -> Script {
    let mut s = Script::default();
    pick(&mut s);
    s
}

#[tokio::test]
async fn a_clean_run_checkpoints_before_the_change_and_completes_verified() {
    let w = world(Script::default()).await;
    let o = w.deliver().await.unwrap();
    assert_eq!(
        (o.status, o.reason),
        (Status::Succeeded, Reason::Remediated)
    );
    assert_eq!(w.fake.changes(), 1);

    // What the ledger held when the change was made: the checkpoint.
    let cp = w.fake.seen_at_act.lock().unwrap().clone().expect("seen");
    assert_eq!(cp.status, Status::Acting);
    assert_eq!(cp.pre_state, Some(json!({ "fixed": false })));
    assert_eq!(cp.actions.len(), 1);
    assert!(cp.actions[0].is_planned() && cp.actions[0].api == FIX);
    assert!(cp.lease_expires_at.is_some());

    let r = w.record().await;
    assert_eq!(r.pre_state, Some(json!({ "fixed": false })));
    assert_eq!(r.post_state, Some(json!({ "fixed": true })));
    assert_eq!(r.verified, Some(true));
    assert_eq!(r.actions[0].result, "ok");
    assert_eq!(r.lease_expires_at, None);
    assert!(r.errors.is_empty() && r.history.is_empty());
    let budget = r.budget.expect("budget use recorded");
    assert_eq!(
        (budget.count, budget.max, budget.given_back),
        (1, 20, false)
    );
    assert_eq!(budget.window, ledger::window(chrono::Utc::now()));
    assert_eq!(w.budget().await, 1);
}

/// Outcomes decided after the claim, before any change: each is final, `Ok`, and leaves the
/// budget untouched.
#[tokio::test]
async fn final_outcomes_without_a_change() {
    let cases: Vec<(&str, Script, &str, Status, Reason)> = vec![
        (
            "permanent read error",
            script(|s| s.inspect.push_back(Go::Permanent)),
            "version: 1",
            Status::Failed,
            Reason::InspectError,
        ),
        (
            "resource gone",
            script(|s| s.inspect.push_back(Go::Gone)),
            "version: 1",
            Status::Skipped,
            Reason::ResourceGone,
        ),
        (
            "tags gone",
            script(|s| s.tags.push_back(Go::Gone)),
            "version: 1",
            Status::Skipped,
            Reason::ResourceGone,
        ),
        (
            "dry-run",
            Script::default(),
            "version: 1\ndefaults: {mode: dry-run}",
            Status::DryRun,
            Reason::WouldChange,
        ),
        (
            "approve",
            Script::default(),
            "version: 1\ndefaults: {mode: approve}",
            Status::PendingApproval,
            Reason::AwaitingApproval,
        ),
    ];
    for (name, script, policy, status, reason) in cases {
        let w = world_with(script, policy).await;
        let o = w.deliver().await.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!((o.status, o.reason), (status, reason), "{name}: {o:?}");
        assert_eq!(w.fake.changes(), 0, "{name}");
        assert_eq!(w.budget().await, 0, "{name}");
        let r = w.record().await;
        assert_eq!((r.status, r.reason), (status, reason), "{name}");
        assert_eq!(r.lease_expires_at, None, "{name}");
        // Again: a duplicate, nothing more.
        assert!(w.deliver().await.unwrap().duplicate, "{name}");
    }
}

#[tokio::test]
async fn a_transient_read_error_hands_the_record_back_and_the_retry_finishes_it() {
    let w = world(script(|s| s.inspect.push_back(Go::Transient))).await;
    match w.deliver().await {
        Err(PipelineError::Transient { step, .. }) => assert_eq!(step, "inspect"),
        other => panic!("a transient error is Lambda's to retry: {other:?}"),
    }
    let r = w.record().await;
    assert_eq!(
        (r.status, r.reason),
        (Status::Claimed, Reason::RetryPending)
    );
    assert!(r.lease_expires_at.unwrap() <= chrono::Utc::now().timestamp());
    assert_eq!(r.errors.len(), 1);
    assert_eq!(
        (r.errors[0].attempt, r.errors[0].step.as_str()),
        (1, "inspect")
    );
    assert!(r.errors[0].message.contains("ThrottlingException"));
    assert_eq!(w.fake.changes(), 0);

    // Lambda's retry: taken over at once (the lease was ended), fixed.
    let o = w.deliver().await.unwrap();
    assert_eq!(o.status, Status::Succeeded);
    let r = w.record().await;
    assert_eq!(r.attempts, 2);
    assert_eq!(r.errors.len(), 1, "the error stays listed");
    assert_eq!(r.history.len(), 1);
    assert_eq!(
        (
            r.history[0].status,
            r.history[0].reason,
            r.history[0].attempt
        ),
        (Status::Claimed, Reason::RetryPending, 1)
    );
    assert_eq!(w.fake.changes(), 1);
}

#[tokio::test]
async fn a_transient_error_at_the_change_keeps_its_budget_unit_for_the_retry_which_acts_once() {
    let w = world(script(|s| s.act.push_back(Go::Transient))).await;
    assert!(matches!(
        w.deliver().await,
        Err(PipelineError::Transient { step: "act", .. })
    ));
    let r = w.record().await;
    assert_eq!(r.status, Status::Acting, "the checkpoint stands");
    assert_eq!(r.pre_state, Some(json!({ "fixed": false })));
    assert_eq!(w.fake.changes(), 0);
    // Whether the change was made is unknown after a transient error: the unit is kept, on
    // the record, for the retry.
    assert_eq!(w.budget().await, 1);
    assert!(
        !r.budget
            .as_ref()
            .expect("budget kept on the record")
            .given_back
    );

    let o = w.deliver().await.unwrap();
    assert_eq!(o.status, Status::Succeeded, "{o:?}");
    assert_eq!(w.fake.changes(), 1);
    assert_eq!(
        w.budget().await,
        1,
        "the retry used the kept unit, not a second one"
    );
    let r = w.record().await;
    assert_eq!(r.attempts, 2);
    assert_eq!(
        r.pre_state,
        Some(json!({ "fixed": false })),
        "original pre-state"
    );
    assert_eq!(r.actions.len(), 1);
    assert_eq!(r.actions[0].result, "ok");
    assert_eq!(r.history[0].status, Status::Acting);
}

#[tokio::test]
async fn a_change_whose_answer_was_lost_is_credited_not_repeated() {
    let w = world(script(|s| s.act.push_back(Go::TransientAfterChange))).await;
    assert!(matches!(
        w.deliver().await,
        Err(PipelineError::Transient { step: "act", .. })
    ));
    assert_eq!(w.fake.changes(), 1);
    assert_eq!(w.budget().await, 1, "a change was made: the unit is kept");

    let o = w.deliver().await.unwrap();
    assert_eq!(
        (o.status, o.reason),
        (Status::Succeeded, Reason::Remediated)
    );
    assert!(o.detail.contains("credited to attempt 1"), "{}", o.detail);
    assert_eq!(w.fake.changes(), 1, "never repeated");
    let r = w.record().await;
    assert_eq!(r.pre_state, Some(json!({ "fixed": false })));
    assert_eq!(r.post_state, Some(json!({ "fixed": true })));
    assert_eq!(r.verified, Some(true));
    assert_eq!(r.actions.len(), 1);
    assert_eq!(
        (r.actions[0].result.as_str(), r.actions[0].attempt),
        ("ok", Some(1))
    );
}

#[tokio::test]
async fn a_refused_change_fails_and_gives_the_budget_back() {
    let w = world(script(|s| s.act.push_back(Go::Permanent))).await;
    let o = w.deliver().await.unwrap();
    assert_eq!((o.status, o.reason), (Status::Failed, Reason::ActionError));
    assert!(o.detail.contains("AccessDenied"));
    assert_eq!(w.budget().await, 0);
    let r = w.record().await;
    assert!(r.budget.expect("budget").given_back);
    assert_eq!(r.lease_expires_at, None);
}

#[tokio::test]
async fn verification_waits_out_eventual_consistency_then_gives_its_verdict() {
    // Two stale reads, then the fix shows: succeeded.
    let w = world(script(|s| s.verify.extend([Go::Stale, Go::Stale]))).await;
    let o = w.deliver().await.unwrap();
    assert_eq!(o.status, Status::Succeeded, "{o:?}");

    // Never shows within the bound: verification-failed, the change kept on record.
    let w = world(script(|s| s.verify.extend([Go::Stale; 3]))).await;
    let o = w.deliver().await.unwrap();
    assert_eq!(
        (o.status, o.reason),
        (Status::VerificationFailed, Reason::StillNonCompliant)
    );
    let r = w.record().await;
    assert_eq!(
        (r.verified, r.actions[0].result.as_str()),
        (Some(false), "ok")
    );
    assert_eq!(w.budget().await, 1);

    // A transient error on the last read: handed back; the retry finds the fix and credits it.
    let w = world(script(|s| {
        s.verify.extend([Go::Stale, Go::Stale, Go::Transient])
    }))
    .await;
    assert!(matches!(
        w.deliver().await,
        Err(PipelineError::Transient { step: "verify", .. })
    ));
    let o = w.deliver().await.unwrap();
    assert_eq!(o.status, Status::Succeeded);
    assert_eq!(w.fake.changes(), 1);
}

#[tokio::test]
async fn transient_errors_on_every_attempt_end_in_retries_exhausted() {
    let w = world(script(|s| s.inspect.extend([Go::Transient; 5]))).await;
    for attempt in 1..=2 {
        assert!(
            matches!(w.deliver().await, Err(PipelineError::Transient { .. })),
            "attempt {attempt}"
        );
    }
    match w.deliver().await {
        Err(PipelineError::RetriesExhausted { attempts, .. }) => assert_eq!(attempts, 3),
        other => panic!("{other:?}"),
    }
    let r = w.record().await;
    assert_eq!(
        (r.status, r.reason),
        (Status::Failed, Reason::RetriesExhausted)
    );
    assert_eq!(r.errors.len(), 3);
    for (i, e) in r.errors.iter().enumerate() {
        assert_eq!(e.attempt, i as u32 + 1);
        assert!(
            r.detail.contains(&format!("attempt {} at inspect", i + 1)),
            "{}",
            r.detail
        );
    }
    assert_eq!(r.lease_expires_at, None);
    // A further delivery is a duplicate of the final record.
    assert!(w.deliver().await.unwrap().duplicate);
    assert_eq!(w.fake.changes(), 0);
}

#[tokio::test]
async fn a_live_lease_is_retry_later_and_an_expired_acting_record_is_resumed() {
    let w = world(Script::default()).await;
    // A crashed attempt's checkpoint: acting, planned step, pre-state, lease still live.
    let mut r = crashed_record(
        &w.record_id,
        SCRIPTED_SPEC.name,
        finding_of(&w.event),
        Status::Acting,
        chrono::Utc::now().timestamp() + 600,
    );
    r.pre_state = Some(json!({ "fixed": false, "from": "attempt 1" }));
    r.actions = vec![reflex_shared::ledger::Action::planned(FIX, json!({}))];
    w.h.store(&r).await;

    match w.deliver().await {
        Err(PipelineError::Busy { record_id, .. }) => assert_eq!(record_id, w.record_id),
        other => panic!("live lease: {other:?}"),
    }
    assert_eq!(w.fake.changes(), 0);

    // The lease runs out: resumed, the missing change made once, the crashed attempt's
    // pre-state kept.
    w.h.set_attribute(
        &w.record_id,
        "lease_expires_at",
        aws_sdk_dynamodb::types::AttributeValue::N("1".into()),
    )
    .await;
    let o = w.deliver().await.unwrap();
    assert_eq!(o.status, Status::Succeeded, "{o:?}");
    assert_eq!(w.fake.changes(), 1);
    let r = w.record().await;
    assert_eq!(
        r.pre_state,
        Some(json!({ "fixed": false, "from": "attempt 1" })),
        "a stored pre-state is never overwritten"
    );
    assert_eq!(r.attempts, 2);
    assert_eq!(r.history[0].status, Status::Acting);
    assert_eq!(r.history[0].request_id, "crashed-request");
    assert_eq!(r.history[0].actions.len(), 1);
}

/// A crashed `acting` record met by a delivery the policy now skips (the kill switch): the
/// record ends with that decision, not stuck in `acting`, and keeps the crashed attempt's plan
/// and pre-state, saying the change was not checked.
#[tokio::test]
async fn an_expired_acting_record_under_a_skipping_policy_ends_honestly() {
    let w = world_with(Script::default(), "version: 1\ndefaults: {enabled: false}").await;
    w.h.store(&w.crashed_acting(1)).await;
    let o = w.deliver().await.unwrap();
    assert_eq!((o.status, o.reason), (Status::Skipped, Reason::Disabled));
    assert!(o.detail.contains("was not checked"), "{}", o.detail);
    let r = w.record().await;
    assert_eq!(r.pre_state, Some(json!({ "fixed": false })));
    assert_eq!(r.actions.len(), 1);
    assert!(r.actions[0].is_planned());
    assert_eq!(r.history[0].status, Status::Acting);
    assert_eq!(w.fake.changes(), 0);
}

/// A finding retried after its change's outcome was unknown holds one unit, not two: the first
/// attempt's reservation (its answer lost and met again by the SDK's retry: the same token, the
/// same unit) is written on the record with its checkpoint, and the retry uses it.
#[tokio::test]
async fn a_retried_finding_never_holds_two_budget_units() {
    let w = world(script(|s| s.act.push_back(Go::Transient))).await;
    // Reserve as the first attempt does (its token is the record and the attempt), as if the
    // answer had been lost and the SDK sent it again.
    let window = ledger::window(chrono::Utc::now());
    let counter = ledger::counter_key(SCRIPTED_SPEC.name, ACCOUNT, &window);
    let token = format!("{}#1", w.record_id);
    let reserve = || {
        w.h.setup
            .ledger
            .reserve_change(&counter, &token, 20, i64::MAX / 2)
    };
    assert_eq!(reserve().await.unwrap(), Some(1));
    assert_eq!(
        reserve().await.unwrap(),
        Some(1),
        "the same token: the same unit"
    );
    assert!(w.deliver().await.is_err());
    let o = w.deliver().await.unwrap();
    assert_eq!(o.status, Status::Succeeded);
    assert_eq!(w.budget().await, 1, "one finding, one unit");
    // Given back, it can be taken again (a later run of the same record).
    assert_eq!(
        w.record().await.budget.map(|b| b.token),
        Some(token.clone()),
        "the unit is the first attempt's, written with its checkpoint"
    );
    w.h.setup
        .ledger
        .give_back_change(&counter, &token)
        .await
        .unwrap();
    assert_eq!(w.budget().await, 0);
    assert_eq!(reserve().await.unwrap(), Some(1));
}

/// Trait v2: every principal the fix would change is checked against protected_principals,
/// after the remediation resolves its real ARN (a path included).
#[tokio::test]
async fn a_fix_that_would_touch_a_protected_principal_is_skipped() {
    let w = world_with(
        Script::default(),
        "version: 1\nexemptions:\n  protected_principals: ['arn:aws:iam::*:role/break-glass/*']",
    )
    .await;
    *w.fake.principals.lock().unwrap() = vec![
        "arn:aws:iam::123456789012:user/alice".into(),
        "arn:aws:iam::123456789012:role/break-glass/admin".into(),
    ];
    let o = w.deliver().await.unwrap();
    assert_eq!((o.status, o.reason), (Status::Skipped, Reason::Protected));
    assert!(o.detail.contains("role/break-glass/admin"), "{}", o.detail);
    assert_eq!(w.fake.changes(), 0);
    assert_eq!(w.budget().await, 0);
}

/// Reflex never changes its own roles (the template puts them under /reflex/), whatever the
/// policy says.
#[tokio::test]
async fn a_fix_that_would_touch_a_reflex_role_is_skipped() {
    let w = world(Script::default()).await;
    *w.fake.principals.lock().unwrap() =
        vec!["arn:aws:iam::123456789012:role/reflex/ReflexIamContainPrincipal".into()];
    let o = w.deliver().await.unwrap();
    assert_eq!((o.status, o.reason), (Status::Skipped, Reason::Protected));
    assert!(o.detail.contains("Reflex's own roles"), "{}", o.detail);
    assert_eq!(w.fake.changes(), 0);
}

/// The identity approving a fix is never its target: an approval by a session of the role the
/// fix would change is refused as protected, and nothing changes.
#[tokio::test]
async fn a_fix_is_never_approved_onto_its_approver() {
    let w = world_with(Script::default(), "version: 1\ndefaults: {mode: approve}").await;
    *w.fake.principals.lock().unwrap() = vec!["arn:aws:iam::123456789012:role/ops/SecOps".into()];
    let o = w.deliver().await.unwrap();
    assert_eq!(o.status, Status::PendingApproval, "{o:?}");
    let o = reflex_shared::pipeline::approve(
        &w.h.setup,
        &w.fake,
        &w.record_id,
        "arn:aws:sts::123456789012:assumed-role/SecOps/bob",
    )
    .await
    .unwrap();
    assert_eq!(
        (o.status, o.reason),
        (Status::Skipped, Reason::Protected),
        "{o:?}"
    );
    assert!(o.detail.contains("approver"), "{}", o.detail);
    assert_eq!(w.fake.changes(), 0);
}

/// Compliant except for parts Reflex must not touch: succeeded (not verification-failed), and
/// the record says what was left alone.
#[tokio::test]
async fn parts_left_alone_on_purpose_are_named_not_failed() {
    let w = world(Script::default()).await;
    *w.fake.untouched.lock().unwrap() = vec!["rule sg-1/22 (protected)".into()];
    let o = w.deliver().await.unwrap();
    assert_eq!(o.status, Status::Succeeded, "{o:?}");
    assert!(
        o.detail
            .contains("except what Reflex must not touch: rule sg-1/22 (protected)"),
        "{}",
        o.detail
    );
}

/// Dry-run and approval records hold exactly the typed steps that would run; a policy's
/// parameters are validated by the remediation's own type, naming the key.
#[tokio::test]
async fn records_hold_the_typed_steps_and_parameters_are_validated() {
    let w = world_with(Script::default(), "version: 1\ndefaults: {mode: dry-run}").await;
    let o = w.deliver().await.unwrap();
    assert_eq!(o.status, Status::DryRun);
    let r = w.record().await;
    assert_eq!(r.actions.len(), 1);
    assert_eq!(r.actions[0].step, Some(json!("fix")));
    assert_eq!(
        r.actions[0].parameters,
        json!({ "Resource": r.resource.unwrap().id })
    );

    // The S3 function takes no parameters: any key is an error that names it.
    let h = Harness::with_policy(
        "version: 1\nremediations:\n  s3-block-public-access:\n    parameters: {kms_key: alias/x}",
    )
    .await;
    let bucket = h.bucket(Some(ALL_OFF), &[]).await;
    let o = h.deliver_one(sample_for(S3_8, &bucket)).await;
    assert_eq!(
        (o.status, o.reason),
        (Status::Failed, Reason::PolicyInvalid)
    );
    assert!(
        o.detail
            .contains("remediations.s3-block-public-access.parameters")
            && o.detail.contains("kms_key"),
        "{}",
        o.detail
    );
    assert_eq!(h.pab(&bucket).await, Some(ALL_OFF));
    let h = Harness::with_policy(
        "version: 1\nremediations:\n  s3-block-public-access:\n    parameters: {}",
    )
    .await;
    let bucket = h.bucket(Some(ALL_OFF), &[]).await;
    assert_eq!(
        h.deliver_one(sample_for(S3_8, &bucket)).await.status,
        Status::Succeeded
    );
}

/// One way in, three kinds of invocation: a finding event, a schedule (the remediation's
/// sweep), and operator commands (approve, rollback), all through the Lambda handler.
#[tokio::test]
async fn one_handler_serves_events_schedules_and_operator_commands() {
    // Commands carry a proof signed with the caller's credentials; STS names the operator.
    let w = world_with(
        Script::default(),
        &format!("version: 1\ndefaults: {{mode: approve}}\noperators: ['{MOTO_CALLER}']"),
    )
    .await;
    let held = w.deliver().await.unwrap();
    assert_eq!(held.status, Status::PendingApproval);

    let by = MOTO_CALLER;
    let approve = w.h.signed_command(Order::Approve, &held.record_id).await;
    let o = w.h.deliver_to(&w.fake, approve).await.unwrap().remove(0);
    assert_eq!(o.status, Status::Succeeded, "{o:?}");
    assert_eq!(w.record().await.approved_by.as_deref(), Some(by));
    assert_eq!(w.fake.changes(), 1);

    let rollback =
        w.h.signed_command(
            Order::Rollback {
                dry_run: false,
                hold_for_hours: 1,
            },
            &held.record_id,
        )
        .await;
    let o = w.h.deliver_to(&w.fake, rollback).await.unwrap().remove(0);
    assert_eq!(
        (o.status, o.reason),
        (Status::RolledBack, Reason::Undone),
        "{o:?}"
    );
    assert!(!*w.fake.compliant.lock().unwrap(), "undone");
    let until = w.record().await.rollback.unwrap().suppressed_until;
    let hours = (chrono::DateTime::parse_from_rfc3339(&until)
        .unwrap()
        .timestamp()
        - chrono::Utc::now().timestamp()) as f64
        / 3600.0;
    assert!((0.9..=1.01).contains(&hours), "{until}");

    let schedule = json!({
        "version": "0", "id": "89d1a02d-5ec7-412e-82f5-13505f849b41",
        "detail-type": "Scheduled Event", "source": "aws.events", "account": ACCOUNT,
        "time": "2026-11-27T18:00:00Z", "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/reflex-sweep"], "detail": {}
    });
    assert!(w
        .h
        .deliver_to(&w.fake, schedule.clone())
        .await
        .unwrap()
        .is_empty());
    // The schedule ran the sweep (nothing is owned or awaited: nothing to do), and was never
    // taken for a finding event: no record of it.
    let digest = ledger::digest_hex(&serde_json::to_vec(&schedule).unwrap());
    let as_event = ledger::rejected_record_id("scripted-fake", &digest);
    assert!(w.h.setup.ledger.get(&as_event).await.unwrap().is_none());

    // A malformed command is refused with the reason, never taken for an event.
    let bad = json!({ "reflex": { "command": "delete-everything" } });
    match w.h.deliver_to(&w.fake, bad).await {
        Err(PipelineError::Refused(why)) => assert!(why.contains("not a Reflex command"), "{why}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn parameters_are_checked_at_cold_start_naming_the_key() {
    let h = Harness::with_policy(
        "version: 1\nremediations:\n  s3-block-public-access:\n    parameters: {kms_key: x}",
    )
    .await;
    let e = reflex_shared::pipeline::check_parameters(&h.setup, &h.remediation)
        .await
        .unwrap_err();
    assert!(
        e.contains("remediations.s3-block-public-access.parameters") && e.contains("kms_key"),
        "{e}"
    );
    let ok = Harness::new().await;
    assert!(
        reflex_shared::pipeline::check_parameters(&ok.setup, &ok.remediation)
            .await
            .is_ok()
    );
}

/// A rollback that died right after restoring the pre-state (its lease and checkpoint on the
/// record, the record not yet marked, no suppression yet) is finished by running it again:
/// recorded, not refused as "changed since the fix", and the suppression written.
#[tokio::test]
async fn a_rollback_that_died_after_its_change_is_finished_by_running_it_again() {
    use reflex_shared::ledger::{Action, RollbackPending};
    let w = world(Script::default()).await;
    assert_eq!(w.deliver().await.unwrap().status, Status::Succeeded);
    let by = "arn:aws:iam::123456789012:user/operator";
    let until = chrono::Utc::now() + chrono::Duration::hours(1);
    // What the dead rollback left: its checkpoint under a lease that has run out, and the
    // resource back as it was.
    let arn = w.record().await.resource_arn.unwrap();
    let pending = RollbackPending {
        token: "dead-rollback".into(),
        by: by.into(),
        request_id: "reflex-rollback-dead".into(),
        lease_expires_at: chrono::Utc::now().timestamp() - 1,
        started_at: "2026-11-27T18:00:00.000Z".into(),
        actions: vec![Action::planned("fake:Unfix", json!({}))],
        hold_until: until.to_rfc3339(),
    };
    w.h.set_attribute(
        &w.record_id,
        "rollback_pending",
        serde_dynamo::to_attribute_value(&pending).unwrap(),
    )
    .await;
    *w.fake.compliant.lock().unwrap() = false;

    let o = reflex_shared::pipeline::rollback(&w.h.setup, &w.fake, &w.record_id, by, false, until)
        .await
        .unwrap();
    assert_eq!(
        (o.status, o.reason),
        (Status::RolledBack, Reason::Undone),
        "{o:?}"
    );
    let rb = w.record().await.rollback.expect("recorded");
    assert!(
        rb.actions.iter().all(|a| a.took_effect()),
        "{:?}",
        rb.actions
    );
    assert!(!*w.fake.compliant.lock().unwrap());
    let r = w.record().await;
    assert!(
        r.rollback_pending.is_none(),
        "the lease ends with the rollback"
    );
    let held =
        w.h.setup
            .ledger
            .suppression(SCRIPTED_SPEC.name, &arn)
            .await
            .unwrap()
            .expect("the suppression, written once the restore held");
    assert_eq!(held.rollback_record, w.record_id);
}

/// A throttled read during a rollback is a transient error (retry it), changes nothing, and
/// the next try rolls back.
#[tokio::test]
async fn a_throttled_read_during_rollback_is_retried_not_refused() {
    let w = world(Script::default()).await;
    assert_eq!(w.deliver().await.unwrap().status, Status::Succeeded);
    // Reads after the change follow the `verify` script: the next one is throttled.
    w.fake
        .script
        .lock()
        .unwrap()
        .verify
        .push_back(Go::Transient);
    let by = "arn:aws:iam::123456789012:user/operator";
    let until = chrono::Utc::now() + chrono::Duration::hours(1);
    let rollback =
        || reflex_shared::pipeline::rollback(&w.h.setup, &w.fake, &w.record_id, by, false, until);
    match rollback().await {
        Err(PipelineError::Transient { step, .. }) => assert_eq!(step, "inspect"),
        other => panic!("{other:?}"),
    }
    assert_eq!(w.record().await.status, Status::Succeeded);
    assert!(*w.fake.compliant.lock().unwrap(), "nothing changed");
    let o = rollback().await.unwrap();
    assert_eq!(o.status, Status::RolledBack, "{o:?}");
    assert!(!*w.fake.compliant.lock().unwrap());
}

/// A budget unit is given back only by the attempt that reserved it: a later attempt that
/// makes no change leaves an earlier attempt's unit alone (that attempt's change may have been
/// made: its outcome was unknown).
#[tokio::test]
async fn only_the_attempt_that_reserved_a_unit_gives_it_back() {
    let w = world(script(|s| {
        s.act.push_back(Go::Transient);
        s.act.push_back(Go::Permanent);
    }))
    .await;
    assert!(matches!(
        w.deliver().await,
        Err(PipelineError::Transient { step: "act", .. })
    ));
    assert_eq!(w.budget().await, 1);
    let o = w.deliver().await.unwrap();
    assert_eq!((o.status, o.reason), (Status::Failed, Reason::ActionError));
    assert_eq!(w.budget().await, 1, "attempt 1's unit stays spent");
    let r = w.record().await;
    let budget = r.budget.expect("the unit, on the record");
    assert!(budget.token.ends_with("#1"), "{budget:?}");
    assert!(!budget.given_back);
}

/// A change whose outcome is unknown keeps its budget unit, on the last attempt too.
#[tokio::test]
async fn a_unit_is_kept_when_the_last_attempt_leaves_a_change_unknown() {
    let w = world(script(|s| s.act.extend([Go::Transient; 3]))).await;
    for _ in 0..2 {
        assert!(matches!(
            w.deliver().await,
            Err(PipelineError::Transient { step: "act", .. })
        ));
    }
    assert!(matches!(
        w.deliver().await,
        Err(PipelineError::RetriesExhausted { .. })
    ));
    let r = w.record().await;
    assert_eq!(
        (r.status, r.reason),
        (Status::Failed, Reason::RetriesExhausted)
    );
    assert_eq!(
        w.budget().await,
        1,
        "the change may have been made: its unit stays spent"
    );
    assert!(!r.budget.unwrap().given_back);
}

/// A record that stopped on the operator's configuration (an invalid policy, the kill switch)
/// is no verdict on the finding: the next delivery of the same generation runs again under the
/// policy now in force, the earlier attempt kept in `history`. Every such record names the
/// finding's resource, for `reflex audit --resource`.
#[tokio::test]
async fn a_configuration_stop_is_run_again_once_the_configuration_is_fixed() {
    use reflex_shared::policy::{Policy, PolicyCache};
    use std::sync::Arc;
    for (stopping, reason) in [
        (
            "version: 1\ndefaults: {mode: sometimes}",
            Reason::PolicyInvalid,
        ),
        ("version: 1\ndefaults: {enabled: false}", Reason::Disabled),
    ] {
        let mut w = world_with(Script::default(), stopping).await;
        let o = w.deliver().await.unwrap();
        assert_eq!(o.reason, reason, "{o:?}");
        let stopped = w.record().await;
        let arn = stopped
            .resource_arn
            .clone()
            .expect("the finding's resource");
        assert!(arn.starts_with("arn:aws:s3:::fake-"), "{arn}");
        let listed =
            w.h.setup
                .ledger
                .query(ledger::Lookup::Resource(&arn), None)
                .await
                .unwrap();
        assert_eq!(listed.len(), 1, "audit --resource finds it");
        // Redelivered under the same configuration: stopped again, not a duplicate.
        let again = w.deliver().await.unwrap();
        assert_eq!((again.reason, again.duplicate), (reason, false));

        w.h.setup.policy = Arc::new(PolicyCache::fixed(Ok(Policy::default())));
        let o = w.deliver().await.unwrap();
        assert_eq!((o.status, o.duplicate), (Status::Succeeded, false), "{o:?}");
        assert_eq!(w.fake.changes(), 1);
        let r = w.record().await;
        assert_eq!(r.history.len(), 2);
        assert!(r.history.iter().all(|p| p.reason == reason));
        assert_eq!(r.tries, 1);
        // Finished now: a redelivery is a duplicate.
        assert!(w.deliver().await.unwrap().duplicate);
    }
}

/// A machine whose clock disagrees with AWS's (here: AWS's answers dated an hour earlier, as a
/// laptop an hour fast would see them) neither takes over a lease that looks expired to it nor
/// acts at all.
#[tokio::test]
async fn a_skewed_clock_neither_takes_over_nor_acts() {
    let mut w = world(Script::default()).await;
    let client = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&w.h.sdk)
            .interceptor(SkewedDate(-3600))
            .build(),
    );
    let honest = w.h.setup.ledger.clone();
    w.h.setup.ledger = ledger::Ledger::new(client, honest.table());

    // No record yet: the claim is taken, but nothing is changed.
    match w.deliver().await {
        Err(PipelineError::Ledger(e)) => assert!(e.to_string().contains("clock"), "{e}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(w.fake.changes(), 0);
    let r = w.record().await;
    assert_eq!(r.status, Status::Claimed);

    // A claim whose lease ran out by this machine's clock (but not by AWS's) is not taken
    // over.
    let mut expired = r.clone();
    expired.lease_expires_at = Some(chrono::Utc::now().timestamp() - 10);
    w.h.store(&expired).await;
    match w.deliver().await {
        Err(PipelineError::Ledger(e)) => assert!(e.to_string().contains("clock"), "{e}"),
        other => panic!("{other:?}"),
    }
    let after = w.record().await;
    assert_eq!((after.attempts, &after.claim_token), (1, &r.claim_token));
    assert_eq!(w.fake.changes(), 0);
}

/// A rollback is checkpointed before its first change, re-reads like `verify` until the
/// restore shows, and only then writes its suppression; one whose restore never shows is
/// written into the record's history, with no suppression.
#[tokio::test]
async fn a_rollback_checkpoints_rereads_and_holds_back_only_once_restored() {
    for restored_late in [true, false] {
        let w = world(Script::default()).await;
        assert_eq!(w.deliver().await.unwrap().status, Status::Succeeded);
        let arn = w.record().await.resource_arn.unwrap();
        {
            let mut s = w.fake.script.lock().unwrap();
            // The rollback's own read (fixed, as recorded), then reads lagging behind the undo.
            s.verify.push_back(Go::Ok);
            s.verify.push_back(Go::Fixed);
            if !restored_late {
                s.verify.extend([Go::Fixed, Go::Fixed]);
            }
        }
        let by = "arn:aws:iam::123456789012:user/operator";
        let until = chrono::Utc::now() + chrono::Duration::hours(1);
        let result =
            reflex_shared::pipeline::rollback(&w.h.setup, &w.fake, &w.record_id, by, false, until)
                .await;
        let seen = w.fake.seen_at_act.lock().unwrap().clone().expect("seen");
        let checkpoint = seen.rollback_pending.expect("checkpointed before the undo");
        assert_eq!(checkpoint.actions.len(), 1);
        assert!(checkpoint.actions[0].is_planned());
        assert_eq!(checkpoint.by, by);
        let suppression =
            w.h.setup
                .ledger
                .suppression(SCRIPTED_SPEC.name, &arn)
                .await
                .unwrap();
        let r = w.record().await;
        if restored_late {
            assert_eq!(result.unwrap().status, Status::RolledBack);
            assert!(suppression.is_some());
        } else {
            match result {
                Err(PipelineError::Refused(why)) => {
                    assert!(why.contains("do not show the pre-state"), "{why}")
                }
                other => panic!("{other:?}"),
            }
            assert!(
                suppression.is_none(),
                "no hold for a restore that did not show"
            );
            assert_eq!(r.status, Status::Succeeded);
            let noted = r.history.last().unwrap();
            assert_eq!(noted.reason, Reason::RollbackFailed);
            assert_eq!(noted.actions.len(), 1);
        }
    }
}

/// A takeover's own write re-checks, in DynamoDB, that the lease has run out: a holder that
/// renews its lease between the taker's read and its write keeps the record. (The renewal is
/// made by an interceptor right after the taker's first read, on a thread of its own.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_takeover_rechecks_the_lease_in_its_conditional_write() {
    use aws_sdk_dynamodb::types::AttributeValue;
    use aws_smithy_runtime_api::box_error::BoxError;
    use aws_smithy_runtime_api::client::interceptors::context::FinalizerInterceptorContextRef;
    use aws_smithy_runtime_api::client::interceptors::Intercept;
    use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
    use aws_smithy_types::config_bag::ConfigBag;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    #[derive(Debug, Clone)]
    struct RenewAfterFirstPut {
        done: Arc<AtomicBool>,
        calls: Arc<std::sync::Mutex<Vec<String>>>,
        sdk: aws_config::SdkConfig,
        table: String,
        record_id: String,
    }
    impl Intercept for RenewAfterFirstPut {
        fn name(&self) -> &'static str {
            "RenewAfterFirstPut"
        }
        fn read_after_execution(
            &self,
            _ctx: &FinalizerInterceptorContextRef<'_>,
            _rc: &RuntimeComponents,
            cfg: &mut ConfigBag,
        ) -> Result<(), BoxError> {
            let op = cfg
                .load::<aws_smithy_runtime_api::client::orchestrator::Metadata>()
                .map(|m| m.name().to_string())
                .unwrap_or_default();
            self.calls.lock().unwrap().push(op);
            if self.done.swap(true, Ordering::SeqCst) {
                return Ok(());
            }
            let (sdk, table, id) = (self.sdk.clone(), self.table.clone(), self.record_id.clone());
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    aws_sdk_dynamodb::Client::new(&sdk)
                        .update_item()
                        .table_name(table)
                        .key("record_id", AttributeValue::S(id))
                        .update_expression("SET lease_expires_at = :l")
                        .expression_attribute_values(
                            ":l",
                            AttributeValue::N((chrono::Utc::now().timestamp() + 100).to_string()),
                        )
                        .send()
                        .await
                        .unwrap();
                })
            })
            .join()
            .unwrap();
            Ok(())
        }
    }

    let w = world(Script::default()).await;
    let mut stored = crashed_record(
        &w.record_id,
        SCRIPTED_SPEC.name,
        finding_of(&w.event),
        Status::Claimed,
        1,
    );
    stored.lease_expires_at = Some(chrono::Utc::now().timestamp() - 5);
    w.h.store(&stored).await;
    let renew = RenewAfterFirstPut {
        done: Arc::new(AtomicBool::new(false)),
        calls: Default::default(),
        sdk: w.h.sdk.clone(),
        table: w.h.setup.ledger.table().to_string(),
        record_id: w.record_id.clone(),
    };
    let client = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&w.h.sdk)
            .interceptor(renew.clone())
            .build(),
    );
    let taker = ledger::Ledger::new(client, w.h.setup.ledger.table());
    let mut mine = stored.clone();
    mine.claim_token = "the-taker".into();
    let claim = taker
        .claim(
            mine,
            chrono::Utc::now().timestamp(),
            ledger::Takeover::ExpiredLease,
        )
        .await
        .unwrap();
    // The taker read the expired lease from its first write's answer, and its second write
    // (the takeover) is what DynamoDB refused: no read in between saw the renewal.
    let calls = renew.calls.lock().unwrap().clone();
    assert_eq!(calls[..2], ["PutItem", "PutItem"], "{calls:?}");
    match claim {
        ledger::Claim::Held(existing) => assert_ne!(existing.claim_token, "the-taker"),
        ledger::Claim::Acquired(r) => panic!("took over a live lease: {r:?}"),
    }
    let r = w.record().await;
    assert_eq!((r.attempts, r.claim_token), (1, stored.claim_token));
}

/// A record that names a budget unit the counter never granted (its reservation failed, or the
/// record was written before the answer) gets no change for free: a takeover asks the counter
/// again under that unit's token, and a spent budget stops it.
#[tokio::test]
async fn a_unit_named_by_the_record_but_never_reserved_is_not_used() {
    let w = world(Script::default()).await;
    let window = ledger::window(chrono::Utc::now());
    let counter = ledger::counter_key(SCRIPTED_SPEC.name, ACCOUNT, &window);
    // The hour's 20 units are all taken by other findings.
    for i in 0..20 {
        w.h.setup
            .ledger
            .reserve_change(&counter, &format!("other-{i}"), 20, i64::MAX / 2)
            .await
            .unwrap();
    }
    let mut r = w.crashed_acting(1);
    r.budget = Some(reflex_shared::ledger::BudgetUse {
        window,
        count: 0,
        token: format!("{}#1", w.record_id),
        max: 20,
        given_back: false,
    });
    w.h.store(&r).await;
    let o = w.deliver().await.unwrap();
    assert_eq!(
        (o.status, o.reason),
        (Status::Skipped, Reason::RateLimited),
        "{o:?}"
    );
    assert_eq!(w.fake.changes(), 0);
    assert_eq!(w.budget().await, 20);
}

/// A change starts only while its lease has time left: a process that stalled past its lease
/// since the checkpoint (here: a lease of 1 s, gone by the time the change would start) may
/// have been taken over, so it hands the record back instead of acting.
#[tokio::test]
async fn no_change_starts_on_a_lease_that_has_run_out() {
    let mut w = world(Script::default()).await;
    w.h.setup.lease_seconds = 1;
    match w.deliver().await {
        Err(PipelineError::Transient { step, message, .. }) => {
            assert_eq!(step, "act");
            assert!(message.contains("lease ran out"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(w.fake.changes(), 0);
    let r = w.record().await;
    assert_eq!((r.status, r.reason), (Status::Acting, Reason::RetryPending));
}

/// A rollback judges its lease by the clock too: a machine whose clock is off AWS's refuses
/// to roll back, changing nothing.
#[tokio::test]
async fn a_skewed_clock_does_not_roll_back() {
    let mut w = world(Script::default()).await;
    assert_eq!(w.deliver().await.unwrap().status, Status::Succeeded);
    let client = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&w.h.sdk)
            .interceptor(SkewedDate(3600))
            .build(),
    );
    w.h.setup.ledger = ledger::Ledger::new(client, w.h.setup.ledger.table());
    let by = "arn:aws:iam::123456789012:user/operator";
    let until = chrono::Utc::now() + chrono::Duration::hours(1);
    match reflex_shared::pipeline::rollback(&w.h.setup, &w.fake, &w.record_id, by, false, until)
        .await
    {
        Err(PipelineError::Ledger(e)) => assert!(e.to_string().contains("clock"), "{e}"),
        other => panic!("{other:?}"),
    }
    assert!(*w.fake.compliant.lock().unwrap(), "nothing was undone");
    let r = w.record().await;
    assert_eq!(r.status, Status::Succeeded);
    assert!(r.rollback_pending.is_none());
}

#[tokio::test]
async fn a_security_hub_failure_never_undoes_the_fix() {
    let h = Harness::with(HarnessOptions {
        security_hub_ok: false,
        ..Default::default()
    })
    .await;
    let w = world_in(h, Script::default());
    let o = w.deliver().await.unwrap();
    assert_eq!(o.status, Status::Succeeded);
    assert!(*w.fake.compliant.lock().unwrap(), "fixed, and kept");
    assert_eq!(w.fake.changes(), 1);
    let r = w.record().await;
    let fb = r.securityhub.expect("feedback recorded");
    assert_eq!(fb.result, "failed");
    assert_eq!(fb.workflow_status.as_deref(), Some("RESOLVED"));
    assert!(!fb.detail.is_empty());
    assert_eq!(w.h.feedback.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn records_expire_only_when_the_operator_sets_a_ttl() {
    let w = world(Script::default()).await;
    assert_eq!(w.deliver().await.unwrap().status, Status::Succeeded);
    assert_eq!(w.record().await.expires_at, None);

    let mut w = world(Script::default()).await;
    w.h.setup.record_ttl_days = Some(30);
    let before = chrono::Utc::now().timestamp();
    assert_eq!(w.deliver().await.unwrap().status, Status::Succeeded);
    let expires = w.record().await.expires_at.expect("expires_at");
    let thirty_days = 30 * 86_400;
    assert!(
        (before + thirty_days..=chrono::Utc::now().timestamp() + thirty_days).contains(&expires)
    );
}

#[tokio::test]
async fn the_cli_setup_learns_its_account_from_sts() {
    // Uses the process environment as `reflex replay` does (a function learns its account from
    // its invoked ARN instead: `setup::identity_from_function_arn`).
    let setup = reflex_shared::Setup::cold_start(
        reflex_shared::setup::sdk_config().await,
        reflex_shared::setup::Settings::from_env().expect("settings"),
        reflex_shared::policy::PolicySource::from_env(),
    )
    .await
    .expect("setup");
    assert_eq!(setup.account_id, ACCOUNT);
    assert!(setup.policy.current().await.unwrap().is_ok());
    assert!(reflex_shared::setup::s3_path_style(&setup.sdk));
}

#[tokio::test]
async fn the_ledger_table_helper_is_idempotent() {
    let sdk = sdk_config().await;
    let ledger = reflex_shared::ledger::Ledger::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        unique("reflex-init"),
    );
    assert!(ledger.create_table_if_absent().await.unwrap());
    assert!(!ledger.create_table_if_absent().await.unwrap());
    let described = aws_sdk_dynamodb::Client::new(&sdk)
        .describe_table()
        .table_name(ledger.table())
        .send()
        .await
        .unwrap();
    let table = described.table().unwrap();
    let mut indexes: Vec<_> = table
        .global_secondary_indexes()
        .iter()
        .filter_map(|i| i.index_name())
        .collect();
    indexes.sort();
    assert_eq!(indexes, ["by-resource", "by-status", "by-time"]);
    assert_eq!(table.deletion_protection_enabled(), Some(true));
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    let ttl = client
        .describe_time_to_live()
        .table_name(ledger.table())
        .send()
        .await
        .unwrap();
    let ttl = ttl.time_to_live_description().unwrap();
    assert_eq!(ttl.attribute_name(), Some("expires_at"));
    assert_eq!(
        ttl.time_to_live_status().map(|s| s.as_str()),
        Some("ENABLED")
    );
    let backups = client
        .describe_continuous_backups()
        .table_name(ledger.table())
        .send()
        .await
        .unwrap();
    let pitr = backups
        .continuous_backups_description()
        .and_then(|d| d.point_in_time_recovery_description())
        .and_then(|p| p.point_in_time_recovery_status())
        .map(|s| s.as_str().to_string());
    assert_eq!(pitr.as_deref(), Some("ENABLED"));
}
