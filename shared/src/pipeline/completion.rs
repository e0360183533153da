//! Work that ends later: a long operation's completion (its event, or the sweep polling it),
//! and the scheduled sweep of what Reflex placed with an expiry (a block past its TTL).
//!
//! Each completion ends the records awaiting the operation, with the outcome read from AWS
//! (never from the event's payload); each expired entry the sweep removes is a record of its
//! own, linked (`ends`) to the record that placed it. Dry-run is honoured.

use super::finding_run::Run;
use super::{applied_of, apply_steps, planned_actions, state_json, timestamp, Applying};
use super::{Handled, PipelineError};
use crate::ledger::{
    self, Awaited, Claim, OutcomeRecord, Owned, OwnedChange, RecordMeta, ResourceLease, Takeover,
};
use crate::policy::Mode;
use crate::remediation::{Context, Progress, Remediation, RemediationError, Subject};
use crate::setup::Setup;
use crate::status::{Reason, Status};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use tracing::{info, warn};

/// Whether `payload` is one of the events the remediation declares as ending its long
/// operations, and if so the handle it names.
pub(super) fn completion_handle<R: Remediation>(
    remediation: &R,
    payload: &Value,
) -> Option<String> {
    let field = |name: &str| payload.get(name).and_then(Value::as_str);
    let declared =
        remediation.spec().completion_events.iter().any(|e| {
            field("source") == Some(e.source) && field("detail-type") == Some(e.detail_type)
        });
    declared
        .then(|| remediation.completion_handle(payload))
        .flatten()
}

/// A completion event: the records awaiting `handle` end with the operation's outcome. An
/// event for an operation Reflex does not await is ignored (said in the log).
pub(super) async fn complete<R: Remediation>(
    setup: &Setup,
    remediation: &R,
    handle: &str,
) -> Result<Vec<Handled>, PipelineError> {
    match setup
        .ledger
        .awaited(remediation.spec().name, handle)
        .await?
    {
        Some(awaited) => settle(setup, remediation, &awaited).await,
        None => {
            info!(
                remediation = remediation.spec().name,
                handle, "completion event for an operation no record awaits"
            );
            Ok(Vec::new())
        }
    }
}

/// The scheduled sweep: every awaited operation polled (and ended at its deadline), then
/// every expired entry removed. Each item gets its turn; the first error is returned after
/// all of them, for Lambda's retry.
pub(super) async fn sweep<R: Remediation>(
    setup: &Setup,
    remediation: &R,
) -> Result<Vec<Handled>, PipelineError> {
    let name = remediation.spec().name;
    let mut outcomes = Vec::new();
    let mut first_error = None;
    for awaited in setup.ledger.awaiting(name).await? {
        match settle(setup, remediation, &awaited).await {
            Ok(o) => outcomes.extend(o),
            Err(e) => {
                warn!(handle = %awaited.handle, error = %e, "awaited operation not settled");
                first_error.get_or_insert(e);
            }
        }
    }
    let now = Utc::now().timestamp();
    for (resource, _) in setup.ledger.owned_expired(name, now).await? {
        match expire_on(setup, remediation, &resource, now).await {
            Ok(o) => outcomes.extend(o),
            Err(e) => {
                warn!(resource, error = %e, "expired entries not removed");
                first_error.get_or_insert(e);
            }
        }
    }
    info!(remediation = name, records = outcomes.len(), "sweep");
    match first_error {
        Some(e) => Err(e),
        None => Ok(outcomes),
    }
}

/// End each record awaiting `awaited` whose operation has ended, or whose deadline passed.
async fn settle<R: Remediation>(
    setup: &Setup,
    remediation: &R,
    awaited: &Awaited,
) -> Result<Vec<Handled>, PipelineError> {
    let name = remediation.spec().name;
    let handle = awaited.handle.as_str();
    let mut out = Vec::new();
    let mut first_error = None;
    for record_id in &awaited.record_ids {
        let Some(mut record) = setup.ledger.get(record_id).await? else {
            setup.ledger.end_awaiting(name, handle, record_id).await?;
            continue;
        };
        if matches!(record.status, Status::Claimed | Status::Acting) {
            // Started, and not yet stored as awaiting: its run (or the next delivery, which
            // awaits the started operation) stores it; the next sweep ends it. The other
            // records awaiting the same operation go on.
            first_error.get_or_insert(PipelineError::Busy {
                record_id: record_id.clone(),
                lease_expires_at: record.lease_expires_at.unwrap_or_default(),
            });
            continue;
        }
        let waits = record.status == Status::AwaitingCompletion
            && record.awaiting.as_ref().is_some_and(|a| a.handle == handle);
        if !waits {
            setup.ledger.end_awaiting(name, handle, record_id).await?;
            continue;
        }
        let deadline = record
            .awaiting
            .as_ref()
            .map_or(awaited.deadline, |a| a.deadline);
        let target = record
            .target
            .clone()
            .map(serde_json::from_value::<R::Target>);
        let started = applied_of::<R>(&record.actions)
            .into_iter()
            .rev()
            .find(|a| {
                remediation.long_running(&a.step)
                    && remediation.handle(&a.step, &a.output).as_deref() == Some(handle)
            });
        let progress = match (target, started) {
            (Some(Ok(target)), Some(started)) => {
                match remediation.progress(&target, &started).await {
                    Ok(p) => p,
                    Err(e) if e.is_transient() => {
                        return Err(PipelineError::Transient {
                            record_id: record_id.clone(),
                            step: "progress",
                            message: e.to_string(),
                        })
                    }
                    Err(e) => Progress::Failed(format!("its status cannot be read: {e}")),
                }
            }
            _ => Progress::Failed(
                "the record holds no readable target or started operation to follow".into(),
            ),
        };
        let now = Utc::now();
        let (status, reason, detail, summary) = match progress {
            Progress::Running if now.timestamp() < deadline => continue,
            Progress::Running => (
                Status::Failed,
                Reason::TimedOut,
                format!(
                    "{handle} was still running at its deadline {}",
                    timestamp(DateTime::from_timestamp(deadline, 0).unwrap_or_default())
                ),
                "still running".to_string(),
            ),
            Progress::Succeeded(summary) => (
                Status::Succeeded,
                Reason::Remediated,
                format!("{handle} succeeded, read from AWS: {summary}"),
                summary,
            ),
            Progress::Failed(summary) => (
                Status::Failed,
                Reason::OperationFailed,
                format!("{handle} did not succeed, read from AWS: {summary}"),
                summary,
            ),
        };
        record.history.push(record.prior());
        record.set_outcome(status, reason, detail);
        record.verified = Some(status == Status::Succeeded);
        record.verified_at = Some(timestamp(now));
        record.post_state = Some(json!({ "operation": handle, "outcome": summary }));
        record.updated_at = timestamp(now);
        match setup.ledger.complete_awaited(&record).await {
            Ok(true) => {}
            Ok(false) => continue, // Another completion ended it first.
            Err(e) => {
                first_error.get_or_insert(e.into());
                continue;
            }
        }
        if let Err(e) = setup.ledger.end_awaiting(name, handle, record_id).await {
            first_error.get_or_insert(e.into());
        }
        if let Some(finding) = record.finding.clone() {
            if finding.source.in_security_hub() {
                let run = Run::new(setup, remediation, "completion", handle.as_bytes());
                run.report(&record, &finding).await;
            }
        }
        // A timed-out operation is told here (`timed-out`): the sweep is what ends it.
        super::aftermath::after_outcome(setup, &record, true).await;
        out.push(Handled::of(&record, false));
    }
    match first_error {
        Some(e) if out.is_empty() => Err(e),
        Some(e) => {
            warn!(handle, error = %e, "some records awaiting the operation were not ended");
            Ok(out)
        }
        None => Ok(out),
    }
}

/// The expired entries on one resource, removed under its lease.
async fn expire_on<R: Remediation>(
    setup: &Setup,
    remediation: &R,
    resource: &str,
    now: i64,
) -> Result<Vec<Handled>, PipelineError> {
    let name = remediation.spec().name;
    let token = uuid::Uuid::new_v4().to_string();
    let owned = match setup
        .ledger
        .lease_resource(name, resource, &token, "sweep", now, setup.lease_seconds)
        .await?
    {
        ResourceLease::Held(owned) => owned,
        ResourceLease::Busy { until, record_id } => {
            // A finding is changing it now: the next sweep removes what expired.
            info!(resource, holder = %record_id, until, "resource busy; left to the next sweep");
            return Ok(Vec::new());
        }
    };
    let outcome = expire_entries(setup, remediation, resource, &token, owned, now).await;
    if let Err(e) = setup.ledger.release_resource(name, resource, &token).await {
        warn!(resource, error = %e, "resource lease not released");
    }
    outcome
}

async fn expire_entries<R: Remediation>(
    setup: &Setup,
    remediation: &R,
    resource: &str,
    token: &str,
    mut owned: Owned,
    now: i64,
) -> Result<Vec<Handled>, PipelineError> {
    let spec = remediation.spec();
    let policy = setup
        .policy
        .current()
        .await
        .map_err(PipelineError::PolicyUnavailable)?;
    let policy = match policy.as_ref() {
        Ok(p) => p,
        Err(e) => {
            return Err(PipelineError::Refused(format!(
                "the sweep changes nothing under an invalid policy: {e}"
            )))
        }
    };
    let mut out = Vec::new();
    for (key, entry) in owned.expired(now) {
        let (Ok(target), Some(placing)) = (
            serde_json::from_value::<R::Target>(entry.target.clone()),
            setup.ledger.get(&entry.record_id).await?,
        ) else {
            warn!(resource, key, record_id = %entry.record_id, "expired entry without a readable target or record; left for an operator");
            continue;
        };
        let Some(finding) = placing.finding.clone() else {
            continue;
        };
        let mode = policy.mode_for(spec.name, spec.risk, &finding);
        // The operator's stop switch holds for the sweep too.
        let disabled = matches!(
            policy.evaluate(
                spec.name,
                spec.risk,
                &finding,
                &target.resource().arn,
                &setup.account_id
            ),
            crate::policy::Verdict::Skip {
                reason: Reason::Disabled,
                ..
            }
        );
        let placed = format!(
            "{resource}\n{key}\n{}\n{}",
            entry.record_id, entry.created_at
        );
        // One record per placed entry; each sweep is a new request on it, so a dry-run or a
        // failed removal is run again by the next sweep (a removal that succeeded is not).
        let request = uuid::Uuid::new_v4();
        let meta = RecordMeta {
            function_version: setup.function_version.clone(),
            request_id: format!("reflex-sweep-{request}"),
            event_digest: ledger::digest_hex(format!("{placed}\n{request}").as_bytes()),
            claim_token: uuid::Uuid::new_v4().to_string(),
        };
        let record_id = format!(
            "{}#sweep#{}",
            spec.name,
            &ledger::digest_hex(placed.as_bytes())[..32]
        );
        let created = Utc::now();
        let mut record = OutcomeRecord::new(record_id, spec.name, &meta, &timestamp(created));
        record.expires_at = setup
            .record_ttl_days
            .map(|days| created.timestamp() + i64::from(days) * 86_400);
        record.finding = Some(finding.clone());
        record.resource_arn = Some(target.resource().arn.clone());
        record.target = Some(state_json(&target));
        record.ends = Some(entry.record_id.clone());
        record.mode = Some(mode);
        record.reversible = Some(false);
        record.lease_expires_at = Some(created.timestamp() + setup.lease_seconds);
        let steps = remediation.expire(&target, &key, &entry);
        let planned = planned_actions(remediation, &target, &steps);
        let mut record = match setup
            .ledger
            .claim(record, Utc::now().timestamp(), Takeover::OnRequest)
            .await?
        {
            Claim::Acquired(r) => *r,
            Claim::Held(done) => {
                // Removed by an earlier sweep that stopped before it said so: say so now.
                if done.status == Status::Succeeded {
                    owned.apply(
                        &[OwnedChange::Remove { key: key.clone() }],
                        &done.record_id,
                        now,
                        &Value::Null,
                    );
                    setup
                        .ledger
                        .write_owned(spec.name, resource, token, &owned)
                        .await?;
                }
                continue;
            }
        };
        let expired_at = timestamp(
            DateTime::from_timestamp(entry.expires_at.unwrap_or(now), 0).unwrap_or_default(),
        );
        if disabled {
            record.set_outcome(
                Status::Skipped,
                Reason::Disabled,
                format!("{key}, placed by record {}, expired at {expired_at}; the remediation is disabled, so it was left in place", entry.record_id),
            );
        } else if mode == Mode::DryRun {
            record.actions = planned;
            record.set_outcome(
                Status::DryRun,
                Reason::WouldChange,
                format!("dry-run: {key}, placed by record {}, expired at {expired_at}; it would be removed, and was not", entry.record_id),
            );
        } else {
            let ctx = Context {
                record_id: &record.record_id,
                now: Utc::now(),
                finding: &finding,
                owned: &owned,
            };
            let Applying { done, result, .. } =
                apply_steps(remediation, &ctx, &target, &steps, &planned, Vec::new()).await;
            record.actions = done;
            // Gone already (removed by hand, or by an earlier sweep that stopped before saying
            // so): removed all the same.
            let result = match result {
                Err(RemediationError::Gone(_)) => Ok(()),
                other => other,
            };
            match result {
                Ok(()) => {
                    let ended = record.record_id.clone();
                    owned.apply(
                        &[OwnedChange::Remove { key: key.clone() }],
                        &ended,
                        now,
                        &Value::Null,
                    );
                    setup
                        .ledger
                        .write_owned(spec.name, resource, token, &owned)
                        .await?;
                    record.set_outcome(
                        Status::Succeeded,
                        Reason::Expired,
                        format!(
                            "{key}, placed by record {}, expired at {expired_at}: removed",
                            entry.record_id
                        ),
                    );
                }
                // The claim's lease runs out and the next sweep takes the record over.
                Err(e) if e.is_transient() => {
                    return Err(PipelineError::Transient {
                        record_id: record.record_id,
                        step: "sweep",
                        message: e.to_string(),
                    })
                }
                Err(e) => record.set_outcome(Status::Failed, Reason::ActionError, e.to_string()),
            }
        }
        record.lease_expires_at = None;
        record.updated_at = timestamp(Utc::now());
        setup.ledger.complete(&record).await?;
        super::aftermath::after_outcome(setup, &record, true).await;
        out.push(Handled::of(&record, false));
    }
    Ok(out)
}
