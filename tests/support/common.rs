//! The common cases, once, for every function: a function's test file says how to make its
//! resource (a [`Subject`]) and gets every case below with one line, `common_cases!(S3Subject);`,
//! then adds only its specifics.
//!
//! Cases: enforce and verify; dry-run; approve, then approval; exempt by tag; protected;
//! already compliant; five concurrent deliveries; rollback (and its echo held back); hostile
//! input. Each asserts both the live resource (through the emulator) and the record.

use crate::{Harness, HarnessOptions};
use reflex_shared::ledger::Action;
use reflex_shared::pipeline::{self, Handled, PipelineError};
use reflex_shared::policy::Policy;
use reflex_shared::remediation::Remediation;
use reflex_shared::status::{Reason, Status};
use serde_json::Value;
use std::future::Future;

/// What the common cases need to know about one function.
pub trait Subject: Remediation + Sized + 'static {
    /// The function's spec (static data: no instance needed to read it).
    const SPEC: &'static reflex_shared::remediation::Spec;
    /// The function under test, its clients logging every call into `h.calls`.
    fn new(h: &Harness) -> Self;
    /// A resource that needs the fix (tagged as given); its id.
    fn noncompliant(h: &Harness, tags: &[(&str, &str)]) -> impl Future<Output = String>;
    /// A resource that is already as the fix would leave it; its id.
    fn compliant(h: &Harness) -> impl Future<Output = String>;
    /// An actionable finding event naming the resource, with a finding id of its own.
    fn event(id: &str) -> Value;
    /// The same finding reported again later: a new generation (the echo of a rollback).
    fn recurrence(id: &str) -> Value;
    /// The resource's ARN, as the record names it.
    fn arn(id: &str) -> String;
    /// Whether the live resource is fixed (read through the emulator, not logged).
    fn fixed(h: &Harness, id: &str) -> impl Future<Output = bool>;
}

async fn world<S: Subject>(policy: &str) -> (Harness, S) {
    let h = Harness::with(HarnessOptions {
        policy: Policy::from_yaml(policy),
        ..Default::default()
    })
    .await;
    let s = S::new(&h);
    (h, s)
}

fn mode(name: &str, mode: &str) -> String {
    format!("version: 1\nremediations:\n  {name}: {{mode: {mode}}}")
}

async fn deliver<S: Subject>(h: &Harness, s: &S, event: Value) -> Result<Handled, PipelineError> {
    h.deliver_to(s, event).await.map(|mut o| o.remove(0))
}

fn planned_with_steps(actions: &[Action]) -> bool {
    !actions.is_empty() && actions.iter().all(|a| a.is_planned() && a.step.is_some())
}

pub async fn enforce_and_verify<S: Subject>() {
    let (h, s) = world::<S>("version: 1").await;
    let id = S::noncompliant(&h, &[]).await;
    let o = deliver(&h, &s, S::event(&id)).await.unwrap();
    assert_eq!(
        (o.status, o.reason),
        (Status::Succeeded, Reason::Remediated),
        "{o:?}"
    );
    assert!(S::fixed(&h, &id).await);
    let r = h.record(&o.record_id).await;
    assert_eq!(r.resource_arn.as_deref(), Some(S::arn(&id).as_str()));
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
        h.calls.writes().len(),
        r.actions.len(),
        "{:?}",
        h.calls.calls()
    );
}

pub async fn dry_run<S: Subject>() {
    let (h, s) = world::<S>(&mode(S::SPEC.name, "dry-run")).await;
    let id = S::noncompliant(&h, &[]).await;
    let o = deliver(&h, &s, S::event(&id)).await.unwrap();
    assert_eq!(
        (o.status, o.reason),
        (Status::DryRun, Reason::WouldChange),
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
}

pub async fn approve_then_approval<S: Subject>() {
    let (h, s) = world::<S>(&mode(S::SPEC.name, "approve")).await;
    let id = S::noncompliant(&h, &[]).await;
    let held = deliver(&h, &s, S::event(&id)).await.unwrap();
    assert_eq!(held.status, Status::PendingApproval, "{held:?}");
    assert!(!S::fixed(&h, &id).await);
    let shown = h.record(&held.record_id).await.actions;
    assert!(planned_with_steps(&shown));
    let by = "arn:aws:iam::123456789012:user/approver";
    let o = pipeline::approve(&h.setup, &s, &held.record_id, by)
        .await
        .unwrap();
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
    assert_eq!(h.calls.writes().len(), r.actions.len());
}

pub async fn exempt_by_tag<S: Subject>() {
    let (h, s) = world::<S>("version: 1").await;
    let id = S::noncompliant(&h, &[("reflex:exempt", "owner said so")]).await;
    let o = deliver(&h, &s, S::event(&id)).await.unwrap();
    assert_eq!(
        (o.status, o.reason),
        (Status::Skipped, Reason::Exempt),
        "{o:?}"
    );
    assert!(!S::fixed(&h, &id).await);
    assert!(h.calls.writes().is_empty());
}

pub async fn protected<S: Subject>() {
    let (h, s) = world::<S>("version: 1").await;
    let id = S::noncompliant(&h, &[]).await;
    // The same policy, protecting exactly this resource.
    let policy = format!(
        "version: 1\nexemptions:\n  protected_principals: ['{}']",
        S::arn(&id)
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
        h.calls.calls().is_empty(),
        "not even a read: {:?}",
        h.calls.calls()
    );
}

pub async fn already_compliant<S: Subject>() {
    let (h, s) = world::<S>("version: 1").await;
    let id = S::compliant(&h).await;
    let o = deliver(&h, &s, S::event(&id)).await.unwrap();
    assert_eq!(
        (o.status, o.reason),
        (Status::Skipped, Reason::AlreadyCompliant),
        "{o:?}"
    );
    assert!(h.calls.writes().is_empty(), "{:?}", h.calls.calls());
    assert!(h.record(&o.record_id).await.actions.is_empty());
}

pub async fn five_concurrent_deliveries<S: Subject>() {
    let (h, s) = world::<S>("version: 1").await;
    let id = S::noncompliant(&h, &[]).await;
    let event = S::event(&id);
    let results = futures::future::join_all((0..5).map(|_| deliver(&h, &s, event.clone()))).await;
    let owners = results
        .iter()
        .filter(|r| matches!(r, Ok(o) if !o.duplicate))
        .count();
    assert_eq!(owners, 1, "{results:?}");
    assert!(results
        .iter()
        .all(|r| matches!(r, Ok(_) | Err(PipelineError::Busy { .. }))));
    assert!(S::fixed(&h, &id).await);
    let records = h
        .setup
        .ledger
        .query(reflex_shared::ledger::Lookup::Resource(&S::arn(&id)), None)
        .await
        .unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].status, Status::Succeeded);
    assert_eq!(records[0].deliveries, 5);
    assert_eq!(
        h.calls.writes().len(),
        records[0].actions.len(),
        "changed once"
    );
}

pub async fn rollback<S: Subject>() {
    let (h, s) = world::<S>("version: 1").await;
    let id = S::noncompliant(&h, &[]).await;
    let o = deliver(&h, &s, S::event(&id)).await.unwrap();
    assert_eq!(o.status, Status::Succeeded);
    let by = "arn:aws:iam::123456789012:user/operator";
    let until = chrono::Utc::now() + chrono::Duration::hours(1);
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

pub async fn hostile_input<S: Subject>() {
    let (h, s) = world::<S>("version: 1").await;
    let dir = crate::events_dir().join("hostile");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty());
    for file in files {
        let raw = std::fs::read(&file).unwrap();
        let o = pipeline::handle_bytes(&h.setup, &s, &raw, "hostile")
            .await
            .unwrap()
            .remove(0);
        assert!(
            matches!(o.status, Status::Rejected | Status::Skipped),
            "{file:?}: {o:?}"
        );
        assert!(!o.detail.is_empty(), "{file:?}");
    }
    assert!(h.calls.calls().is_empty(), "{:?}", h.calls.calls());
}

/// Every common case as a test for `$subject` (a [`Subject`]).
#[macro_export]
macro_rules! common_cases {
    ($subject:ty) => {
        mod common_cases {
            use super::*;
            use $crate::common;

            #[tokio::test]
            async fn enforce_and_verify() {
                common::enforce_and_verify::<$subject>().await
            }
            #[tokio::test]
            async fn dry_run() {
                common::dry_run::<$subject>().await
            }
            #[tokio::test]
            async fn approve_then_approval() {
                common::approve_then_approval::<$subject>().await
            }
            #[tokio::test]
            async fn exempt_by_tag() {
                common::exempt_by_tag::<$subject>().await
            }
            #[tokio::test]
            async fn protected() {
                common::protected::<$subject>().await
            }
            #[tokio::test]
            async fn already_compliant() {
                common::already_compliant::<$subject>().await
            }
            #[tokio::test]
            async fn five_concurrent_deliveries() {
                common::five_concurrent_deliveries::<$subject>().await
            }
            #[tokio::test]
            async fn rollback() {
                common::rollback::<$subject>().await
            }
            #[tokio::test]
            async fn hostile_input() {
                common::hostile_input::<$subject>().await
            }
        }
    };
}
