//! The common cases, once, for every function: a function's test file says how to make its
//! resource (a [`Subject`]) and gets every case below with one line, `common_cases!(ItsType);`,
//! then adds only its specifics.
//!
//! Cases: enforce and verify; dry-run; approve, then approval; exempt by tag and by ARN;
//! protected; already compliant; five concurrent deliveries; a crashed claim taken over;
//! rollback (and its echo held back); hostile and non-actionable input; real event shapes; an
//! invalid policy; the blast-radius budget (sequential and fifteen at once); a policy change in
//! SSM reaching a warm function. Each asserts both the live resource (through the emulator)
//! and the record.
//!
//! A read is told from a write by the API's kind ([`crate::is_read`]): the cases allow reads
//! where a function must read to decide (an EC2 function describes its instance) and count
//! writes. Every policy the cases use names its mode, so a function whose default is
//! `approve` (high risk) is held to the same cases.

use crate::{Harness, HarnessOptions};
use reflex_shared::ledger::{self, Action, Takeover};
use reflex_shared::pipeline::{self, Handled, PipelineError};
use reflex_shared::policy::{Mode, Policy, PolicyError};
use reflex_shared::remediation::Remediation;
use reflex_shared::status::{Reason, Status};
use serde_json::Value;
use std::future::Future;

/// What the common cases need to know about one function.
pub trait Subject: Remediation + Sized + 'static {
    /// The function's spec (static data: no instance needed to read it).
    const SPEC: &'static reflex_shared::remediation::Spec;
    /// Whether the rollback case restores the pre-state. It must equal `SPEC.reversible`, and
    /// the rollback case fails when it does not: a function that cannot be undone opts out
    /// explicitly (`const ROLLBACK: bool = false;`), and its rollback case then asserts that
    /// rollback refuses it, changing nothing.
    const ROLLBACK: bool = true;
    /// Whether the resource has an "already compliant" state to make ([`Subject::compliant`]).
    /// A function without one opts out (`false`): the already-compliant case is then not run,
    /// and says so; a function that opts in must implement `compliant`.
    const ALREADY_COMPLIANT: bool = true;
    /// The function under test, its clients logging every call into `h.calls` (`h.ec2()`,
    /// `h.ssm()`, or an S3 client with the `h.calls` interceptor).
    fn new(h: &Harness) -> Self;
    /// A resource that needs the fix (tagged as given); its id, as `event` takes it. An EC2
    /// resource is made with `h.instance(..)` (a VPC of its own).
    fn noncompliant(h: &Harness, tags: &[(&str, &str)]) -> impl Future<Output = String>;
    /// A resource that is already as the fix would leave it; its id. Only called when
    /// `ALREADY_COMPLIANT`.
    fn compliant(h: &Harness) -> impl Future<Output = String> {
        let _ = h;
        async {
            panic!(
                "{}: no compliant resource to make; set `const ALREADY_COMPLIANT: bool = false;`",
                Self::SPEC.name
            )
        }
    }
    /// An actionable finding event naming the resource, with a finding id of its own.
    fn event(id: &str) -> Value;
    /// The same finding reported again later: a new generation (the echo of a rollback).
    fn recurrence(id: &str) -> Value;
    /// The ARN the record names for the resource `id` (may read AWS through `h`: the NACL of
    /// an instance's subnet, say).
    fn arn(h: &Harness, id: &str) -> impl Future<Output = String>;
    /// Whether the live resource is fixed (read through the emulator, not logged).
    fn fixed(h: &Harness, id: &str) -> impl Future<Output = bool>;
    /// The write calls (operation names, as [`crate::CallLog`] logs them) that carrying out
    /// these recorded actions makes. By default one per action, named by its API
    /// (`s3:PutPublicAccessBlock` → `PutPublicAccessBlock`); a function whose step takes
    /// several calls says which.
    fn expected_writes(actions: &[Action]) -> Vec<String> {
        actions
            .iter()
            .filter(|a| a.took_effect())
            .map(|a| a.api.rsplit(':').next().unwrap_or_default().to_string())
            .collect()
    }
    /// Drive an outcome to its end: a fix that finishes later (`awaiting-completion`) is
    /// completed here (its completion event delivered, or the sweep run) and the final
    /// outcome returned. Every other outcome is returned as it is (the default).
    fn settle(h: &Harness, s: &Self, o: Handled) -> impl Future<Output = Handled> {
        let _ = (h, s);
        async move { o }
    }
}

/// Writes as a sorted multiset, to compare with [`Subject::expected_writes`].
fn sorted(mut calls: Vec<String>) -> Vec<String> {
    calls.sort();
    calls
}

async fn world<S: Subject>(policy: &str) -> (Harness, S) {
    world_with::<S>(Policy::from_yaml(policy)).await
}

async fn world_with<S: Subject>(policy: Result<Policy, PolicyError>) -> (Harness, S) {
    let h = Harness::with(HarnessOptions {
        policy,
        ..Default::default()
    })
    .await;
    let s = S::new(&h);
    (h, s)
}

/// A policy giving the function this mode (and any more of its section, `extra`).
fn mode_with<S: Subject>(mode: &str, extra: &str) -> String {
    format!(
        "version: 1\nremediations:\n  {}: {{mode: {mode}{extra}}}",
        S::SPEC.name
    )
}

fn mode<S: Subject>(mode: &str) -> String {
    mode_with::<S>(mode, "")
}

/// Enforce, named: a high-risk function's default would be `approve`. The approval tier is
/// opted out of, so that a fix with a step that cannot be undone (a patch, a deleted login
/// profile) is carried out under enforce like any other here; tests/trust/context.rs holds the tier.
fn enforce<S: Subject>() -> String {
    mode_with::<S>("enforce", ", approve_irreversible: false")
}

async fn deliver<S: Subject>(h: &Harness, s: &S, event: Value) -> Result<Handled, PipelineError> {
    h.deliver_to(s, event).await.map(|mut o| o.remove(0))
}

/// Deliver, then settle: the outcome once a fix that finishes later has finished.
async fn deliver_settled<S: Subject>(h: &Harness, s: &S, event: Value) -> Handled {
    let o = deliver(h, s, event).await.unwrap();
    S::settle(h, s, o).await
}

fn planned_with_steps(actions: &[Action]) -> bool {
    !actions.is_empty() && actions.iter().all(|a| a.is_planned() && a.step.is_some())
}

pub async fn enforce_and_verify<S: Subject>() {
    let (h, s) = world::<S>(&enforce::<S>()).await;
    let id = S::noncompliant(&h, &[]).await;
    let o = deliver_settled(&h, &s, S::event(&id)).await;
    assert_eq!(
        (o.status, o.reason),
        (Status::Succeeded, Reason::Remediated),
        "{o:?}"
    );
    assert!(S::fixed(&h, &id).await);
    let r = h.record(&o.record_id).await;
    assert_eq!(r.resource_arn, Some(S::arn(&h, &id).await));
    assert_eq!(r.verified, Some(true));
    assert!(r.pre_state.is_some() && r.post_state.is_some());
    assert_ne!(r.pre_state, r.post_state);
    assert!(!r.actions.is_empty());
    assert!(
        r.actions
            .iter()
            .all(|a| a.took_effect() && a.step.is_some()),
        "{:?}",
        r.actions
    );
    assert_eq!(
        sorted(h.calls.writes()),
        sorted(S::expected_writes(&r.actions)),
        "{:?}",
        h.calls.calls()
    );
}

pub async fn dry_run<S: Subject>() {
    let (h, s) = world::<S>(&mode::<S>("dry-run")).await;
    let id = S::noncompliant(&h, &[]).await;
    let o = deliver(&h, &s, S::event(&id)).await.unwrap();
    assert_eq!(
        (o.status, o.reason, o.mode),
        (Status::DryRun, Reason::WouldChange, Some(Mode::DryRun)),
        "{o:?}"
    );
    assert!(!S::fixed(&h, &id).await);
    assert!(h.calls.writes().is_empty(), "{:?}", h.calls.calls());
    let r = h.record(&o.record_id).await;
    assert!(
        planned_with_steps(&r.actions),
        "exactly the steps that would run: {:?}",
        r.actions
    );
    assert_eq!(r.verified, None);
}

pub async fn approve_then_approval<S: Subject>() {
    let (h, s) = world::<S>(&mode::<S>("approve")).await;
    let id = S::noncompliant(&h, &[]).await;
    let held = deliver(&h, &s, S::event(&id)).await.unwrap();
    assert_eq!(held.status, Status::PendingApproval, "{held:?}");
    assert!(!S::fixed(&h, &id).await);
    assert!(h.calls.writes().is_empty(), "{:?}", h.calls.calls());
    let shown = h.record(&held.record_id).await.actions;
    assert!(planned_with_steps(&shown));
    let by = "arn:aws:iam::123456789012:user/approver";
    let o = pipeline::approve(&h.setup, &s, &held.record_id, by)
        .await
        .unwrap();
    let o = S::settle(&h, &s, o).await;
    assert_eq!(o.status, Status::Succeeded, "{o:?}");
    assert!(S::fixed(&h, &id).await);
    let r = h.record(&held.record_id).await;
    assert_eq!(r.approved_by.as_deref(), Some(by));
    let done: Vec<_> = r.actions.iter().map(|a| (&a.api, &a.step)).collect();
    let planned: Vec<_> = shown.iter().map(|a| (&a.api, &a.step)).collect();
    assert_eq!(done, planned, "the plan that was shown, exactly");
    // Approving twice acts once.
    assert!(matches!(
        pipeline::approve(&h.setup, &s, &held.record_id, by).await,
        Err(PipelineError::Refused(_))
    ));
    assert_eq!(
        sorted(h.calls.writes()),
        sorted(S::expected_writes(&r.actions))
    );
}

pub async fn exempt_by_tag<S: Subject>() {
    let (h, s) = world::<S>(&enforce::<S>()).await;
    let until = (chrono::Utc::now() + chrono::Duration::days(30)).format("%Y-%m-%d");
    let id = S::noncompliant(&h, &[("reflex:exempt", &format!("{until};owner said so"))]).await;
    let event = S::event(&id);
    let threat = reflex_shared::finding::parse_event(&event).unwrap()[0].is_threat();
    let o = deliver(&h, &s, event).await.unwrap();
    // The resource's own tag exempts it from hygiene findings; on a threat finding (whoever
    // controls the resource may have set it) it holds the fix for a person's approval.
    let want = if threat {
        (Status::PendingApproval, Reason::AwaitingApproval)
    } else {
        (Status::Skipped, Reason::Exempt)
    };
    assert_eq!((o.status, o.reason), want, "{o:?}");
    assert!(o.detail.contains("reflex:exempt"), "{}", o.detail);
    assert_eq!(
        o.detail.contains("not trusted to exempt it"),
        threat,
        "{}",
        o.detail
    );
    assert!(!S::fixed(&h, &id).await);
    assert!(h.calls.writes().is_empty(), "{:?}", h.calls.calls());

    // `false` is no exemption.
    let (h2, s2) = world::<S>(&enforce::<S>()).await;
    let id = S::noncompliant(&h2, &[("reflex:exempt", "false")]).await;
    let o = deliver_settled(&h2, &s2, S::event(&id)).await;
    assert_eq!(o.status, Status::Succeeded, "{o:?}");
    assert!(S::fixed(&h2, &id).await);
}

pub async fn exempt_by_arn<S: Subject>() {
    let (h, s) = world::<S>("version: 1").await;
    let id = S::noncompliant(&h, &[]).await;
    let policy = format!(
        "{}\nexemptions:\n  rules:\n    - match: {{arns: ['{}']}}\n      reason: a test\n      owner: reflex-tests\n      expires: 2999-12-31",
        enforce::<S>(),
        S::arn(&h, &id).await
    );
    let mut h = h;
    h.setup.policy = std::sync::Arc::new(reflex_shared::policy::PolicyCache::fixed(
        Policy::from_yaml(&policy),
    ));
    let o = deliver(&h, &s, S::event(&id)).await.unwrap();
    assert_eq!(
        (o.status, o.reason),
        (Status::Skipped, Reason::Exempt),
        "{o:?}"
    );
    assert!(!S::fixed(&h, &id).await);
    assert!(h.calls.writes().is_empty(), "{:?}", h.calls.calls());
}

/// A protected resource is skipped. Reads are allowed (an EC2 function must describe the
/// instance to name what it would change); a write is not.
pub async fn protected<S: Subject>() {
    let (h, s) = world::<S>("version: 1").await;
    let id = S::noncompliant(&h, &[]).await;
    // The same policy, protecting exactly this resource.
    let policy = format!(
        "{}\nexemptions:\n  protected_principals: ['{}']",
        enforce::<S>(),
        S::arn(&h, &id).await
    );
    let mut h = h;
    h.setup.policy = std::sync::Arc::new(reflex_shared::policy::PolicyCache::fixed(
        Policy::from_yaml(&policy),
    ));
    let o = deliver(&h, &s, S::event(&id)).await.unwrap();
    assert_eq!(
        (o.status, o.reason),
        (Status::Skipped, Reason::Protected),
        "{o:?}"
    );
    assert!(!S::fixed(&h, &id).await);
    assert!(
        h.calls.writes().is_empty(),
        "not a single write: {:?}",
        h.calls.calls()
    );
}

pub async fn already_compliant<S: Subject>() {
    if !S::ALREADY_COMPLIANT {
        eprintln!(
            "{}: opted out of already_compliant (no such state)",
            S::SPEC.name
        );
        return;
    }
    let (h, s) = world::<S>(&enforce::<S>()).await;
    let id = S::compliant(&h).await;
    let o = deliver(&h, &s, S::event(&id)).await.unwrap();
    assert_eq!(
        (o.status, o.reason),
        (Status::Skipped, Reason::AlreadyCompliant),
        "{o:?}"
    );
    assert!(h.calls.writes().is_empty(), "{:?}", h.calls.calls());
    assert!(h.record(&o.record_id).await.actions.is_empty());
    assert!(h.feedback.lock().unwrap().is_empty(), "nothing to report");
}

/// Five deliveries of one finding at once: one owner, one record, one change. The others found
/// its live claim (an error: Lambda retries them later) or its finished record (a duplicate).
pub async fn five_concurrent_deliveries<S: Subject>() {
    let (h, s) = world::<S>(&enforce::<S>()).await;
    let id = S::noncompliant(&h, &[]).await;
    let event = S::event(&id);
    let results = futures::future::join_all((0..5).map(|_| deliver(&h, &s, event.clone()))).await;
    assert!(
        results
            .iter()
            .all(|r| matches!(r, Ok(_) | Err(PipelineError::Busy { .. }))),
        "{results:?}"
    );
    let mut outcomes: Vec<Handled> = results
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .cloned()
        .collect();
    let busy = results.iter().filter(|r| r.is_err()).count();
    // Lambda's retries of the busy ones: duplicates now.
    for _ in 0..busy {
        let again = deliver(&h, &s, event.clone()).await.unwrap();
        assert!(again.duplicate, "{again:?}");
        outcomes.push(again);
    }
    let owners: Vec<_> = outcomes.iter().filter(|o| !o.duplicate).collect();
    assert_eq!(owners.len(), 1, "{outcomes:?}");
    assert!(outcomes.iter().all(|o| o.record_id == owners[0].record_id));
    S::settle(&h, &s, owners[0].clone()).await;
    assert!(S::fixed(&h, &id).await);
    let records = h
        .setup
        .ledger
        .query(ledger::Lookup::Resource(&S::arn(&h, &id).await), None)
        .await
        .unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].status, Status::Succeeded);
    assert_eq!(
        (records[0].attempts, records[0].deliveries),
        (1, 5 + busy as u32)
    );
    assert_eq!(
        sorted(h.calls.writes()),
        sorted(S::expected_writes(&records[0].actions)),
        "changed once"
    );
}

/// Leave a claim as a crashed invocation would: status `claimed`, lease as given.
async fn leave_claim<S: Subject>(h: &Harness, event: &Value, lease_expires_at: i64) -> String {
    let finding = crate::finding_of(event);
    let id = ledger::record_id(S::SPEC.name, &finding);
    let r = crate::crashed_record(
        &id,
        S::SPEC.name,
        finding,
        Status::Claimed,
        lease_expires_at,
    );
    let claim = h
        .setup
        .ledger
        .claim(r, chrono::Utc::now().timestamp(), Takeover::ExpiredLease)
        .await
        .unwrap();
    assert!(matches!(claim, ledger::Claim::Acquired(_)));
    id
}

pub async fn a_crashed_claim_is_taken_over_after_its_lease<S: Subject>() {
    let (h, s) = world::<S>(&enforce::<S>()).await;
    let id = S::noncompliant(&h, &[]).await;
    let event = S::event(&id);
    let now = chrono::Utc::now().timestamp();

    // A live claim: this delivery must not interfere, and must not pass for done either: it
    // is an error, so Lambda retries later (the holder may have crashed).
    let record_id = leave_claim::<S>(&h, &event, now + 600).await;
    match deliver(&h, &s, event.clone()).await {
        Err(PipelineError::Busy {
            record_id: busy, ..
        }) => assert_eq!(busy, record_id),
        other => panic!("a live lease must be retried later: {other:?}"),
    }
    assert_eq!(h.record(&record_id).await.status, Status::Claimed);
    assert!(!S::fixed(&h, &id).await);
    assert!(h.calls.writes().is_empty(), "{:?}", h.calls.calls());

    // An expired claim: taken over, fixed, and the crash kept in the history.
    let (h2, s2) = world::<S>(&enforce::<S>()).await;
    let id = S::noncompliant(&h2, &[]).await;
    let event = S::event(&id);
    let record_id = leave_claim::<S>(&h2, &event, now - 1).await;
    let o = deliver_settled(&h2, &s2, event).await;
    assert_eq!(
        (o.record_id.as_str(), o.status, o.duplicate),
        (record_id.as_str(), Status::Succeeded, false),
        "{o:?}"
    );
    assert!(S::fixed(&h2, &id).await);
    let r = h2.record(&record_id).await;
    assert_eq!(r.attempts, 2);
    assert_eq!(
        r.created_at, "2026-11-26T00:00:00.000Z",
        "the record keeps its creation time"
    );
    // The crash first; a fix that finished later also keeps its wait (awaiting-completion).
    assert!(!r.history.is_empty());
    assert_eq!(
        (r.history[0].status, r.history[0].request_id.as_str()),
        (Status::Claimed, "crashed-request")
    );
    assert!(
        r.history[1..]
            .iter()
            .all(|h| h.status == Status::AwaitingCompletion),
        "{:?}",
        r.history
    );
    assert!(r.history.len() <= 2, "{:?}", r.history);
}

/// Rollback restores the pre-state and holds back its echo; a function that cannot be undone
/// has opted out (`ROLLBACK = false`, which must match its spec) and rollback refuses it.
pub async fn rollback<S: Subject>() {
    assert_eq!(
        S::ROLLBACK,
        S::SPEC.reversible,
        "{}: the rollback opt-out (Subject::ROLLBACK) must match Spec::reversible",
        S::SPEC.name
    );
    let (h, s) = world::<S>(&enforce::<S>()).await;
    let id = S::noncompliant(&h, &[]).await;
    let o = deliver_settled(&h, &s, S::event(&id)).await;
    assert_eq!(o.status, Status::Succeeded, "{o:?}");
    let by = "arn:aws:iam::123456789012:user/operator";
    let until = chrono::Utc::now() + chrono::Duration::hours(1);
    if !S::ROLLBACK {
        let writes = h.calls.writes();
        match pipeline::rollback(&h.setup, &s, &o.record_id, by, false, until).await {
            Err(PipelineError::Refused(why)) => {
                assert!(why.contains("is not reversible"), "{why}")
            }
            other => panic!("an irreversible fix must be refused: {other:?}"),
        }
        assert!(S::fixed(&h, &id).await, "nothing was undone");
        assert_eq!(h.calls.writes(), writes, "nothing was changed");
        assert_eq!(h.record(&o.record_id).await.status, Status::Succeeded);
        return;
    }
    let rolled = pipeline::rollback(&h.setup, &s, &o.record_id, by, false, until)
        .await
        .unwrap();
    assert_eq!(rolled.status, Status::RolledBack, "{rolled:?}");
    assert!(!S::fixed(&h, &id).await, "the pre-state is back");
    let r = h.record(&o.record_id).await;
    assert_eq!(r.rollback.as_ref().map(|rb| rb.by.as_str()), Some(by));
    // Its echo (the finding again, as a new generation) is held back.
    let o = deliver(&h, &s, S::recurrence(&id)).await.unwrap();
    assert_eq!(
        (o.status, o.reason),
        (Status::Skipped, Reason::RolledBack),
        "{o:?}"
    );
    assert!(!S::fixed(&h, &id).await);
}

/// Every hostile and non-actionable sample: recorded with a reason, counted once more when it
/// comes again, and no AWS call and no Security Hub feedback for any of them.
pub async fn hostile_input<S: Subject>() {
    let (h, s) = world::<S>(&enforce::<S>()).await;
    let mut files: Vec<_> = ["hostile", "non-actionable"]
        .iter()
        .flat_map(|d| {
            std::fs::read_dir(crate::events_dir().join(d))
                .unwrap()
                .map(|e| e.unwrap().path())
        })
        .collect();
    files.sort();
    assert!(files.len() >= 14, "{files:?}");
    for file in &files {
        let raw = std::fs::read(file).unwrap();
        let outcomes = pipeline::handle_bytes(&h.setup, &s, &raw, "hostile")
            .await
            .unwrap();
        assert_eq!(outcomes.len(), 1, "{file:?}");
        let o = &outcomes[0];
        assert!(
            matches!(o.status, Status::Rejected | Status::Skipped),
            "{file:?}: {o:?}"
        );
        assert!(!o.detail.is_empty(), "{file:?} needs a reason");
        assert!(!o.duplicate, "{file:?}");
        let r = h.record(&o.record_id).await;
        assert_eq!((r.status, r.reason), (o.status, o.reason), "{file:?}");
        // The same bad event again: the same record, counted, nothing else.
        let again = pipeline::handle_bytes(&h.setup, &s, &raw, "hostile-2")
            .await
            .unwrap();
        assert!(
            again[0].duplicate && again[0].record_id == o.record_id,
            "{file:?}"
        );
        assert_eq!(h.record(&o.record_id).await.deliveries, 2, "{file:?}");
    }
    assert!(
        h.calls.calls().is_empty(),
        "no AWS call for any of them: {:?}",
        h.calls.calls()
    );
    assert!(h.feedback.lock().unwrap().is_empty());
}

/// Every real-shape sample (events/real-shapes: AWS's events as they really come, see the
/// design's "Real event shapes") through the function: each leaves a record, none is recorded
/// as malformed, and what Reflex does not handle says why.
pub async fn real_event_shapes_are_never_recorded_as_malformed<S: Subject>() {
    let (h, s) = world::<S>(&enforce::<S>()).await;
    let mut files: Vec<_> = std::fs::read_dir(crate::events_dir().join("real-shapes"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 25, "{files:?}");
    let mut seen = std::collections::BTreeMap::new();
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        let raw = std::fs::read(file).unwrap();
        let outcomes = pipeline::handle_bytes(&h.setup, &s, &raw, &name)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        for o in outcomes {
            assert_ne!(o.reason, Reason::MalformedEvent, "{name}: {o:?}");
            assert!(!o.detail.is_empty(), "{name}: a reason in words");
            assert_eq!(h.record(&o.record_id).await.reason, o.reason, "{name}");
            seen.insert(format!("{name} {}", o.record_id), (o.status, o.reason));
        }
    }
    let reason_of = |file: &str| {
        seen.iter()
            .find(|(k, _)| k.starts_with(file))
            .map(|(_, v)| *v)
            .unwrap_or_else(|| panic!("{file}: no outcome"))
    };
    // The sample finding (an S3 GuardDuty type) and the compliance warning (an S3 control) are
    // skipped for what they are only by a function whose triggers take their kind; any other
    // function rejects them first as not its kind. A file that parses to no finding keeps its
    // expectation.
    let ours = |file: &str| {
        let raw = std::fs::read(crate::events_dir().join("real-shapes").join(file)).unwrap();
        let findings = reflex_shared::finding::parse_bytes(&raw).unwrap_or_default();
        findings.is_empty()
            || findings
                .iter()
                .any(|f| S::SPEC.triggers.iter().any(|t| t.matches(&f.kind)))
    };
    let if_ours = |file: &'static str, status, reason| {
        if ours(file) {
            (file, status, reason)
        } else {
            (file, Status::Rejected, Reason::NotHandled)
        }
    };
    let expected = [
        if_ours(
            "guardduty-sample-finding.json",
            Status::Skipped,
            Reason::SampleFinding,
        ),
        (
            "securityhub-findings-imported-v2.json",
            Status::Rejected,
            Reason::UnsupportedEvent,
        ),
        (
            "custom-action-another-teams-action.json",
            Status::Rejected,
            Reason::UnsupportedEvent,
        ),
        (
            "securityhub-third-party-no-compliance-offset-timestamps.json",
            Status::Rejected,
            Reason::NotHandled,
        ),
        if_ours(
            "securityhub-compliance-warning.json",
            Status::Skipped,
            Reason::FindingInactive,
        ),
    ];
    for (file, status, reason) in expected {
        // A finding of a kind the function does not handle is not handled, before anything
        // else is judged of it (a sample, an inactive finding).
        let parsed = reflex_shared::finding::parse_event(
            &serde_json::from_str(&crate::sample(&format!("real-shapes/{file}"))).unwrap(),
        );
        let unhandled = parsed.is_ok_and(|f| {
            f.iter()
                .all(|f| !S::SPEC.triggers.iter().any(|t| t.matches(&f.kind)))
        });
        let want = if unhandled {
            (Status::Rejected, Reason::NotHandled)
        } else {
            (status, reason)
        };
        assert_eq!(reason_of(file), want, "{file}");
    }
    // Nothing here names a resource that exists: no change was made.
    assert!(h.calls.writes().is_empty(), "{:?}", h.calls.writes());
}

/// A policy that does not parse fails closed: a record naming the key, and no AWS call at all.
pub async fn an_invalid_policy_fails_closed_with_a_record<S: Subject>() {
    let bad = PolicyError::Invalid {
        key: "defaults.mode".into(),
        message: "unknown variant".into(),
    };
    let (h, s) = world_with::<S>(Err(bad)).await;
    let id = S::noncompliant(&h, &[]).await;
    let o = deliver(&h, &s, S::event(&id)).await.unwrap();
    assert_eq!(
        (o.status, o.reason),
        (Status::Failed, Reason::PolicyInvalid),
        "{o:?}"
    );
    assert!(o.detail.contains("defaults.mode"), "{}", o.detail);
    assert!(!S::fixed(&h, &id).await);
    assert!(h.calls.calls().is_empty(), "{:?}", h.calls.calls());
}

pub async fn the_blast_radius_budget_stops_further_changes<S: Subject>() {
    let (h, s) = world::<S>(&mode_with::<S>(
        "enforce",
        ", max_changes_per_hour: 1, approve_irreversible: false",
    ))
    .await;
    let first = S::noncompliant(&h, &[]).await;
    let o = deliver_settled(&h, &s, S::event(&first)).await;
    assert_eq!(o.status, Status::Succeeded, "{o:?}");
    let changed = S::expected_writes(&h.record(&o.record_id).await.actions);
    let second = S::noncompliant(&h, &[]).await;
    let o = deliver(&h, &s, S::event(&second)).await.unwrap();
    assert_eq!(
        (o.status, o.reason),
        (Status::Skipped, Reason::RateLimited),
        "{o:?}"
    );
    assert!(!S::fixed(&h, &second).await);
    assert_eq!(
        sorted(h.calls.writes()),
        sorted(changed),
        "the first fix only"
    );
}

pub async fn fifteen_concurrent_findings_under_a_budget_of_five_make_exactly_five_changes<
    S: Subject,
>() {
    // The budget rests on DynamoDB's atomic conditional update, which moto does not make
    // atomic: the harness's ledger reaches moto through a proxy that forwards DynamoDB writes
    // one at a time (see `Harness::with`).
    let (h, s) = world::<S>(&mode_with::<S>(
        "enforce",
        ", max_changes_per_hour: 5, approve_irreversible: false",
    ))
    .await;
    let mut ids = Vec::new();
    for _ in 0..15 {
        ids.push(S::noncompliant(&h, &[]).await);
    }
    let delivered =
        futures::future::join_all(ids.iter().map(|id| deliver_settled(&h, &s, S::event(id)))).await;
    let count = |st| delivered.iter().filter(|o| o.status == st).count();
    assert_eq!(count(Status::Succeeded), 5, "{delivered:?}");
    assert_eq!(count(Status::Skipped), 10, "{delivered:?}");
    assert!(delivered
        .iter()
        .filter(|o| o.status == Status::Skipped)
        .all(|o| o.reason == Reason::RateLimited && o.detail.contains("budget of 5")));
    let mut fixed = 0;
    for id in &ids {
        if S::fixed(&h, id).await {
            fixed += 1;
        }
    }
    assert_eq!(fixed, 5);
    assert_eq!(h.budget_count(S::SPEC.name).await, 5);
    // Each success says which unit of which window it used.
    let mut counts = Vec::new();
    let mut changed = Vec::new();
    for o in delivered.iter().filter(|o| o.status == Status::Succeeded) {
        let r = h.record(&o.record_id).await;
        changed.extend(S::expected_writes(&r.actions));
        let b = r.budget.expect("budget");
        assert_eq!((b.max, b.window.len()), (5, 13));
        counts.push(b.count);
    }
    counts.sort();
    assert_eq!(counts, [1, 2, 3, 4, 5]);
    assert_eq!(
        sorted(h.calls.writes()),
        sorted(changed),
        "five fixes' writes"
    );
}

/// The kill switch: an operator switches the remediation to dry-run in the SSM parameter; warm
/// functions obey it once their copy is older than the bound.
pub async fn a_policy_change_in_ssm_reaches_a_warm_function_after_the_bound<S: Subject>() {
    use aws_sdk_ssm::types::ParameterType;
    let (h, s) = world::<S>("version: 1").await;
    let parameter = format!("/reflex-it/{}", crate::unique("policy"));
    let ssm = h.ssm_observer();
    let put = |value: String| {
        ssm.put_parameter()
            .name(&parameter)
            .r#type(ParameterType::String)
            .value(value)
            .overwrite(true)
            .send()
    };
    put(enforce::<S>()).await.unwrap();
    let settings = reflex_shared::setup::Settings {
        table: h.setup.ledger.table().to_string(),
        policy_max_age: std::time::Duration::from_secs(1),
        ..Default::default()
    };
    let mut setup = reflex_shared::Setup::cold_start(
        h.sdk.clone(),
        settings,
        Ok(reflex_shared::policy::PolicySource::Parameter(
            parameter.clone(),
        )),
    )
    .await
    .unwrap();
    setup.securityhub = h.setup.securityhub.clone();
    // The findings are read back from the harness's sources (see `source`), as every case's.
    setup.source = h.setup.source.clone();
    let deliver = |id: String| {
        let setup = setup.clone();
        let s = &s;
        let h = &h;
        async move {
            let event = S::event(&id);
            h.at_source.mirror(&event);
            let event = lambda_runtime::LambdaEvent::new(event, lambda_runtime::Context::default());
            pipeline::handle(&setup, s, event).await.unwrap().remove(0)
        }
    };
    let first = S::noncompliant(&h, &[]).await;
    let o = deliver(first).await;
    assert_eq!(S::settle(&h, &s, o).await.status, Status::Succeeded);

    put(mode::<S>("dry-run")).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let second = S::noncompliant(&h, &[]).await;
    let o = deliver(second.clone()).await;
    assert_eq!(
        (o.status, o.mode),
        (Status::DryRun, Some(Mode::DryRun)),
        "{o:?}"
    );
    assert!(!S::fixed(&h, &second).await);

    // Switched off altogether: skipped / disabled.
    put(format!(
        "version: 1\nremediations:\n  {}: {{enabled: false}}",
        S::SPEC.name
    ))
    .await
    .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let third = S::noncompliant(&h, &[]).await;
    let o = deliver(third).await;
    assert_eq!((o.status, o.reason), (Status::Skipped, Reason::Disabled));
}

/// Every common case as a test for `$subject` (a [`Subject`]). Opt-outs are the subject's
/// own constants (`ROLLBACK`, `ALREADY_COMPLIANT`), checked against its spec.
#[macro_export]
macro_rules! common_cases {
    (@cases $subject:ty: $($case:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                common::$case::<$subject>().await
            }
        )*
    };
    ($subject:ty) => {
        mod common_cases {
            use super::*;
            use $crate::common;

            $crate::common_cases!(@cases $subject:
                enforce_and_verify,
                dry_run,
                approve_then_approval,
                exempt_by_tag,
                exempt_by_arn,
                protected,
                already_compliant,
                five_concurrent_deliveries,
                a_crashed_claim_is_taken_over_after_its_lease,
                rollback,
                hostile_input,
                real_event_shapes_are_never_recorded_as_malformed,
                an_invalid_policy_fails_closed_with_a_record,
                the_blast_radius_budget_stops_further_changes,
                fifteen_concurrent_findings_under_a_budget_of_five_make_exactly_five_changes,
                a_policy_change_in_ssm_reaches_a_warm_function_after_the_bound,
            );
        }
    };
}
