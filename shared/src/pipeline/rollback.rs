//! Rollback: an operator's undo of a succeeded fix, under its own lease, verified, and held
//! back from the finding's echo by a suppression.

use super::{
    applied_of, apply_steps, lease_ran_out, now, parameters_in, planned_actions, state_json,
    timestamp, Applying, Handled, PipelineError,
};
use crate::ledger::{
    Action, OutcomeRecord, Owned, OwnedChange, PriorOutcome, ResourceLease, Rollback,
    RollbackPending, Suppression,
};
use crate::operator;
use crate::remediation::{Context, Remediation, RemediationError, Subject, Unresolved};
use crate::setup::Setup;
use crate::status::{Reason, Status};
use chrono::{DateTime, Utc};
use tracing::warn;

/// An operator's rollback of a succeeded fix (`reflex rollback RECORD_ID`): restores the
/// recorded pre-state through the remediation's `undo`, verifies it, and records `rolled-back`
/// with who, when and what; a suppression then holds the resource back from the remediation
/// until `hold_until`, so the finding's echo does not re-apply the fix. Refused, changing
/// nothing, for a record that is not reversible, not succeeded, already rolled back, or whose
/// resource changed since the fix. `dry_run`: only says what it would do.
pub async fn rollback<R: Remediation>(
    setup: &Setup,
    remediation: &R,
    record_id: &str,
    by: &str,
    dry_run: bool,
    hold_until: DateTime<Utc>,
) -> Result<Handled, PipelineError> {
    // Checked before anything is read or written, whoever calls: a hold is at most 90 days.
    if hold_until > Utc::now() + operator::MAX_HOLD {
        return Err(PipelineError::Refused(format!(
            "the hold until {} is more than 90 days ahead; nothing was changed",
            timestamp(hold_until)
        )));
    }
    // The lease of a shared resource, if the rollback takes one: ended whatever happens.
    let token = uuid::Uuid::new_v4().to_string();
    let mut leased = None;
    // Boxed: its state is large, and callers' stacks need not hold it.
    let outcome = Box::pin(carry_out_rollback(
        setup,
        remediation,
        record_id,
        by,
        dry_run,
        hold_until,
        (&token, &mut leased),
    ))
    .await;
    if let Some(resource) = leased {
        let name = remediation.spec().name;
        if let Err(e) = setup.ledger.release_resource(name, &resource, &token).await {
            warn!(resource, error = %e, "resource lease not released");
        }
    }
    outcome
}

/// The rollback itself, once its hold is known to be within bounds.
async fn carry_out_rollback<R: Remediation>(
    setup: &Setup,
    remediation: &R,
    record_id: &str,
    by: &str,
    dry_run: bool,
    hold_until: DateTime<Utc>,
    (token, leased): (&str, &mut Option<String>),
) -> Result<Handled, PipelineError> {
    let spec = remediation.spec();
    let Some(read) = setup.ledger.get(record_id).await? else {
        return Err(PipelineError::Refused(format!(
            "no record {record_id} in table {}; nothing was changed",
            setup.ledger.table()
        )));
    };
    let attempt = RollbackAttempt {
        setup,
        read: &read,
        by,
        request_id: format!("reflex-rollback-{}", uuid::Uuid::new_v4()),
        dry_run,
    };
    if let Some(rb) = &read.rollback {
        return attempt
            .refuse(format!(
                "it was already rolled back by {} at {}",
                rb.by, rb.at
            ))
            .await;
    }
    // A fix that stopped part-way (a step failed after others took effect) is undone like a
    // whole one, from the state it left.
    let partial = read.status == Status::Failed
        && read.reason == Reason::ActionError
        && read.changed_anything();
    if read.status != Status::Succeeded && !partial {
        return attempt
            .refuse(format!(
                "it is {} ({}): only a succeeded fix can be rolled back (or one that failed part-way)",
                read.status, read.reason
            ))
            .await;
    }
    if !spec.reversible || read.reversible != Some(true) {
        return attempt
            .refuse(format!("{} is not reversible", spec.name))
            .await;
    }
    let (Some(finding), Some(pre_json), Some(post_json)) =
        (&read.finding, &read.pre_state, &read.post_state)
    else {
        return attempt
            .refuse("it lacks its finding, pre-state or post-state".into())
            .await;
    };
    let policy = setup
        .policy
        .current()
        .await
        .map_err(PipelineError::PolicyUnavailable)?;
    let params = match parameters_in::<R::Params>(&policy, spec.name) {
        Ok(p) => p,
        Err(e) => {
            return attempt
                .refuse(format!("the policy is not usable: {e}"))
                .await
        }
    };
    // The target the fix was made for, as stored; a record from before targets were stored
    // resolves it from its finding.
    let target = match read.target.clone().map(serde_json::from_value::<R::Target>) {
        Some(Ok(t)) => t,
        Some(Err(e)) => {
            return attempt
                .refuse(format!("its stored target cannot be read: {e}"))
                .await
        }
        None => match remediation.resolve(finding, &params).await {
            Ok(t) => t,
            Err(Unresolved::Aws(e)) if e.is_transient() => {
                return Err(attempt.transient("resolve", &e));
            }
            Err(e) => {
                return attempt
                    .refuse(format!("cannot find its resource again: {e}"))
                    .await
            }
        },
    };
    let (pre, post): (R::State, R::State) = match (
        serde_json::from_value(pre_json.clone()),
        serde_json::from_value(post_json.clone()),
    ) {
        (Ok(pre), Ok(post)) => (pre, post),
        (Err(e), _) | (_, Err(e)) => {
            return attempt
                .refuse(format!("its pre- or post-state cannot be read: {e}"))
                .await
        }
    };
    // What can be undone is undone; the rest (a forensic snapshot) is kept, and said so.
    let took_effect = applied_of::<R>(&read.actions);
    if took_effect.len() != read.actions.iter().filter(|a| a.took_effect()).count() {
        // Undoing fewer steps than were made could pass the remediation's restored test.
        return attempt
            .refuse("a step that took effect cannot be read from the record".into())
            .await;
    }
    let (applied, kept): (Vec<_>, Vec<_>) = took_effect
        .into_iter()
        .partition(|a| remediation.undoable(&a.step));
    let kept_text = kept
        .iter()
        .map(|a| {
            let d = remediation.describe(&target, &a.step);
            format!("{} {}", d.api, d.parameters)
        })
        .collect::<Vec<_>>();
    // One rollback or finding at a time on a shared resource; what Reflex owns there comes
    // with its lease.
    let owned = match remediation.shared_resource(&target) {
        None => Owned::default(),
        Some(resource) => {
            let now = Utc::now().timestamp();
            match setup
                .ledger
                .lease_resource(
                    spec.name,
                    &resource,
                    token,
                    record_id,
                    now,
                    setup.lease_seconds,
                )
                .await?
            {
                ResourceLease::Held(owned) => {
                    *leased = Some(resource);
                    owned
                }
                ResourceLease::Busy { until, .. } => {
                    return Err(PipelineError::Busy {
                        record_id: record_id.into(),
                        lease_expires_at: until,
                    })
                }
            }
        }
    };
    let ctx = Context {
        record_id,
        now: Utc::now(),
        finding,
        owned: &owned,
    };
    // Independent reads, in one round.
    let (live, identity) = Box::pin(async {
        tokio::join!(
            remediation.inspect(&ctx, &target),
            remediation.identity(&target)
        )
    })
    .await;
    let (live, identity) = match (live, identity) {
        (Ok(l), Ok(i)) => (l, i),
        (Err(e), _) | (_, Err(e)) if e.is_transient() => {
            return Err(attempt.transient("inspect", &e));
        }
        (Err(e), _) | (_, Err(e)) => {
            return attempt
                .refuse(format!("cannot read the resource: {e}"))
                .await
        }
    };
    let arn = target.resource().arn.clone();
    // The fix was made to one resource; another that has since taken its name is not it.
    if identity.is_some() && identity != read.resource_identity {
        return attempt
            .refuse(format!(
                "{arn} is not the resource the fix changed: its identity is {} now, the record holds {} \
                 (a record made before identities were kept holds none; and AWS may change a bucket's \
                 creation date with some changes to the bucket, such as its policy: if this is the \
                 same resource, restore the recorded pre-state by hand)",
                identity.as_deref().unwrap_or("unknown"),
                read.resource_identity.as_deref().unwrap_or("none")
            ))
            .await;
    }
    let live_json = state_json(&live);
    // An earlier rollback that stopped after restoring the pre-state: finish it.
    let interrupted = read.rollback_pending.is_some() && remediation.restored(&pre, &live);
    if !remediation.as_left(&post, &live) && !interrupted {
        return attempt
            .refuse(format!(
                "the resource changed since the fix (recorded post-state {post_json}, now {live_json}); a rollback would overwrite someone else's change"
            ))
            .await;
    }
    let mut kept_text = kept_text;
    // An undo step that would remove an entry another record now owns (a later finding
    // extended the block, say) is not this rollback's to take: kept, and said so.
    let steps: Vec<R::Step> = remediation
        .undo(&target, &pre, &applied)
        .into_iter()
        .filter(|step| {
            let others: Vec<String> = remediation
                .owned_changes(&target, step)
                .iter()
                .filter_map(|c| match c {
                    OwnedChange::Remove { key } => owned
                        .entries
                        .get(key)
                        .filter(|e| e.record_id != record_id)
                        .map(|e| format!("{key} (now held by record {})", e.record_id)),
                    OwnedChange::Put { .. } => None,
                })
                .collect();
            if others.is_empty() {
                return true;
            }
            let d = remediation.describe(&target, step);
            kept_text.push(format!("{} {}: {}", d.api, d.parameters, others.join(", ")));
            false
        })
        .collect();
    let planned = planned_actions(remediation, &target, &steps);
    let described = planned
        .iter()
        .map(|a| format!("{} {}", a.api, a.parameters))
        .collect::<Vec<_>>()
        .join("; ");
    let until = timestamp(hold_until);
    if dry_run {
        return Ok(Handled {
            record_id: record_id.into(),
            status: read.status,
            reason: read.reason,
            detail: format!(
                "dry-run: the rollback would make {} change(s): {described}; then hold findings for this resource until {until}; nothing was changed",
                planned.len()
            ),
            duplicate: false,
            resource: read.resource_arn.clone(),
            mode: read.mode,
            planned: Vec::new(),
        });
    }
    // The rollback's lease, like any change's: a second rollback at the same time waits. Leases
    // are judged by the clock, so this machine's must agree with AWS's.
    setup.ledger.check_clock()?;
    let started = Utc::now();
    let mut pending = RollbackPending {
        token: uuid::Uuid::new_v4().to_string(),
        by: by.into(),
        request_id: attempt.request_id.clone(),
        lease_expires_at: started.timestamp() + setup.lease_seconds,
        started_at: timestamp(started),
        actions: Vec::new(),
        hold_until: until.clone(),
    };
    if !setup
        .ledger
        .begin_rollback(&read, &pending, started.timestamp())
        .await?
    {
        return Err(PipelineError::Busy {
            record_id: record_id.into(),
            lease_expires_at: read
                .rollback_pending
                .as_ref()
                .map_or(pending.lease_expires_at, |p| p.lease_expires_at),
        });
    }
    // The checkpoint: what it is about to do, before the first change.
    pending.actions = planned.clone();
    setup
        .ledger
        .checkpoint_rollback(record_id, &pending)
        .await?;
    let done = if interrupted {
        planned.iter().map(|a| a.carried_out(Ok(()))).collect()
    } else if lease_ran_out(Some(pending.lease_expires_at), setup.lease_seconds) {
        return Err(PipelineError::Transient {
            record_id: record_id.into(),
            step: "rollback",
            message: "the rollback's lease ran out before the change; nothing was changed".into(),
        });
    } else {
        let Applying { done, result, .. } = apply_steps(
            remediation,
            &ctx,
            &target,
            &steps,
            &planned,
            applied.clone(),
        )
        .await;
        if let Err(e) = result {
            let why = format!("the rollback stopped: {e}; steps so far: {done:?}");
            attempt
                .note(Reason::RollbackFailed, &why, done, Some(&pending.token))
                .await;
            return Err(if e.is_transient() {
                attempt.transient("rollback", &e)
            } else {
                PipelineError::Refused(format!("record {record_id}: {why}"))
            });
        }
        done
    };
    // What the undo removes from Reflex's own entries on the shared resource.
    if let Some(resource) = leased.as_deref() {
        let changes: Vec<_> = steps
            .iter()
            .flat_map(|s| remediation.owned_changes(&target, s))
            .collect();
        if !changes.is_empty() {
            let mut owned = owned.clone();
            owned.apply(
                &changes,
                record_id,
                Utc::now().timestamp(),
                &state_json(&target),
            );
            setup
                .ledger
                .write_owned(spec.name, resource, token, &owned)
                .await?;
        }
    }
    // Verified like a fix: re-read over a few seconds until the pre-state shows (as the
    // remediation judges it: kept effects, such as snapshots, may have moved on).
    let reread = || async {
        remediation
            .inspect(&ctx, &target)
            .await
            .map(|s| (remediation.restored(&pre, &s), state_json(&s)))
    };
    let mut restored = Box::pin(reread()).await;
    for delay in &setup.verify_delays {
        if matches!(restored, Ok((true, _))) {
            break;
        }
        tokio::time::sleep(*delay).await;
        restored = Box::pin(reread()).await;
    }
    if !matches!(restored, Ok((true, _))) {
        let why = format!(
            "the rollback was applied ({described}) but fresh reads over several seconds do not show the pre-state {pre_json}: {restored:?}"
        );
        attempt
            .note(Reason::RollbackFailed, &why, done, Some(&pending.token))
            .await;
        return Err(PipelineError::Refused(format!("record {record_id}: {why}")));
    }
    // Only now that the restore holds: the suppression, so the echo does not re-apply the fix.
    let now_text = now();
    setup
        .ledger
        .put_suppression(&Suppression {
            record_id: Suppression::key(spec.name, &arn),
            remediation: Suppression::partition(spec.name),
            created_at: now_text.clone(),
            resource: arn.clone(),
            rollback_record: record_id.into(),
            by: by.into(),
            until: until.clone(),
            expires_at: hold_until.timestamp(),
        })
        .await?;
    let mut record = read.clone();
    record.history.push(read.prior());
    record.rollback = Some(Rollback {
        by: by.into(),
        at: now_text.clone(),
        actions: done,
        suppressed_until: until.clone(),
        hold_lifted: None,
    });
    record.set_outcome(
        Status::RolledBack,
        Reason::Undone,
        format!(
            "rolled back by {by}: the pre-state restored and verified by a fresh read; findings for this resource are held until {until}{}",
            if kept_text.is_empty() {
                String::new()
            } else {
                format!("; kept (cannot be undone): {}", kept_text.join("; "))
            }
        ),
    );
    record.updated_at = now_text;
    record.request_id = attempt.request_id.clone();
    setup
        .ledger
        .mark_rolled_back(&record, &read, &pending.token)
        .await?;
    super::aftermath::after_outcome(setup, &record, true).await;
    Ok(Handled::of(&record, false))
}

/// One rollback request on a record: refusals and failures are written into the record's
/// history (its outcome stays), so the record tells of every rollback tried.
struct RollbackAttempt<'a> {
    setup: &'a Setup,
    read: &'a OutcomeRecord,
    by: &'a str,
    request_id: String,
    dry_run: bool,
}

impl RollbackAttempt<'_> {
    /// Refused, changing nothing: said, and (unless a dry run) noted in the record's history.
    async fn refuse(&self, why: String) -> Result<Handled, PipelineError> {
        self.note(Reason::RollbackRefused, &why, Vec::new(), None)
            .await;
        Err(PipelineError::Refused(format!(
            "record {}: {why}; nothing was changed",
            self.read.record_id
        )))
    }

    /// The rollback's account in `history`; with `token`, its lease ends (its checkpoint stays,
    /// for the next rollback to finish). Best effort: the refusal or error is returned anyway.
    async fn note(&self, reason: Reason, why: &str, actions: Vec<Action>, token: Option<&str>) {
        if self.dry_run {
            return;
        }
        let entry = PriorOutcome {
            status: self.read.status,
            reason,
            detail: format!("rollback by {} {}: {why}", self.by, reason),
            attempt: self.read.attempts,
            request_id: self.request_id.clone(),
            updated_at: now(),
            actions,
            pre_state: None,
            post_state: None,
            resource_identity: None,
        };
        if let Err(e) = self
            .setup
            .ledger
            .note_rollback(&self.read.record_id, &entry, token)
            .await
        {
            warn!(record_id = %self.read.record_id, error = %e, "rollback attempt not noted in history");
        }
    }

    fn transient(&self, step: &'static str, e: &RemediationError) -> PipelineError {
        PipelineError::Transient {
            record_id: self.read.record_id.clone(),
            step,
            message: e.to_string(),
        }
    }
}
