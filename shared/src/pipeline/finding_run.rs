//! The finding run: one finding through claim ∥ read, checkpoint, act, verify, record and report,
//! on the record it claims; and a record handed back for a retry.

use super::aftermath::after_outcome;
use super::approval::{approval_predates, keep_shown, stored_steps};
use super::{
    applied_of, apply_steps, lease_ran_out, log_decision, now, planned_actions,
    reject_unstorable_resource, state_json, timestamp, Applying, Handled, PipelineError,
};
use crate::confirm::Confirmation;
use crate::finding::{self, Finding, ParseError};
use crate::ledger::{
    self, Action, AttemptError, Claim, LedgerError, OutcomeRecord, RecordMeta, Suppression,
    Takeover,
};
use crate::ledger::{Awaiting, Feedback, Owned, OwnedChange, ResourceLease};
use crate::policy::{Decision, Mode, Policy, PolicyError};
use crate::remediation::{Applied, Context, Plan, Remediation, RemediationError, Subject, Tags};
use crate::securityhub::Report;
use crate::setup::Setup;
use crate::status::{Reason, Status};
use chrono::Utc;
use tracing::{error, warn};

/// A long operation whose remediation names no timeout ends `timed-out` after this long.
const DEFAULT_COMPLETION_TIMEOUT_SECONDS: i64 = 6 * 3600;

/// How long a finding waits for another finding's lease on a shared resource before handing
/// itself back to Lambda's retries.
const SHARED_RESOURCE_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Why a step ends the remediation early.
pub(super) enum Stop {
    /// The record has its outcome: store it.
    Decided,
    /// A passing fault at `step`: hand the record back for the next delivery.
    Transient { step: &'static str, message: String },
    /// The ledger failed, or another invocation took the record over.
    Ledger(LedgerError),
}

/// A step's result: go on with `T`, or stop (named so as not to be taken for `R::Step`).
pub(super) type Flow<T = ()> = Result<T, Stop>;

impl Stop {
    /// A passing fault at `step`.
    pub(super) fn transient(step: &'static str, e: &RemediationError) -> Stop {
        Stop::Transient {
            step,
            message: e.to_string(),
        }
    }
}

/// One invocation's context.
pub(super) struct Run<'a, R> {
    pub(super) setup: &'a Setup,
    pub(super) remediation: &'a R,
    meta: RecordMeta,
    /// The target a record already holds (an approval of it): used as stored, never resolved
    /// again from the finding.
    pub(super) stored_target: Option<serde_json::Value>,
    /// An outcome stored under a shared resource's lease, told (metrics, the notification)
    /// once the lease is released: other findings on that resource wait for it, not for SNS.
    told_after_release: std::sync::Mutex<Option<OutcomeRecord>>,
}

/// The record being worked on, and what it is worked on with.
pub(super) struct Work<R: Remediation> {
    pub(super) record: OutcomeRecord,
    pub(super) target: R::Target,
    pub(super) decision: Decision,
    pub(super) params: R::Params,
    /// The finding as this run sees it (the context of every step).
    pub(super) finding: Finding,
    /// What Reflex owns on the target's shared resource, under this run's lease of it (kept in
    /// step with what this run writes).
    pub(super) owned: Owned,
    /// The shared resource this run holds the lease of, if the remediation names one.
    pub(super) shared: Option<String>,
    /// Steps earlier attempts made (kept, never repeated).
    pub(super) kept: Vec<Action>,
    /// This attempt's token for a budget unit: only the attempt that reserved a unit gives it
    /// back.
    pub(super) budget_token: String,
    /// A change was tried and its outcome is unknown (a transient error while acting): its
    /// budget unit is kept, whatever happens next.
    pub(super) outcome_unknown: bool,
    /// What the plan leaves as it is on purpose (protected principals), for the record's detail.
    pub(super) untouched: Vec<String>,
    /// The policy the decision was made by: the tags read beside the claim decide again by it.
    pub(super) policy: std::sync::Arc<Result<Policy, PolicyError>>,
}

impl<R: Remediation> Work<R> {
    /// What the remediation's steps see besides the target.
    pub(super) fn ctx(&self) -> Context<'_> {
        Context {
            record_id: &self.record.record_id,
            now: Utc::now(),
            finding: &self.finding,
            owned: &self.owned,
        }
    }

    pub(super) fn decide(
        &mut self,
        status: Status,
        reason: Reason,
        detail: impl Into<String>,
    ) -> Stop {
        self.record.set_outcome(status, reason, detail);
        Stop::Decided
    }

    /// The record holds a unit of the budget (reserved by this or an earlier attempt).
    pub(super) fn holds_budget(&self) -> bool {
        self.record.budget.as_ref().is_some_and(|b| !b.given_back)
    }

    /// This is an approval ("Reflex: approve", `reflex approve`) under a policy that lets it
    /// act.
    pub(super) fn approving(&self) -> bool {
        self.decision.mode == Mode::Enforce
            && self.record.finding.as_ref().and_then(|f| f.intent) == Some(finding::Intent::Approve)
    }
}

impl<'a, R: Remediation> Run<'a, R> {
    /// One invocation: `digest_of` is what its event digest is taken of (the raw event); every
    /// invocation gets its own claim token.
    pub(super) fn new(
        setup: &'a Setup,
        remediation: &'a R,
        request_id: &str,
        digest_of: &[u8],
    ) -> Self {
        Run {
            setup,
            remediation,
            meta: RecordMeta {
                function_version: setup.function_version.clone(),
                request_id: request_id.to_string(),
                event_digest: ledger::digest_hex(digest_of),
                claim_token: uuid::Uuid::new_v4().to_string(),
            },
            stored_target: None,
            told_after_release: std::sync::Mutex::new(None),
        }
    }

    pub(super) fn name(&self) -> &'static str {
        self.remediation.spec().name
    }

    fn new_record(&self, record_id: String) -> OutcomeRecord {
        let now = Utc::now();
        let mut r = OutcomeRecord::new(record_id, self.name(), &self.meta, &timestamp(now));
        r.expires_at = self
            .setup
            .record_ttl_days
            .map(|days| now.timestamp() + i64::from(days) * 86_400);
        r
    }

    /// An event that yielded no finding: a record keyed on the event's digest.
    pub(super) async fn reject(&self, e: &ParseError) -> Result<Handled, PipelineError> {
        let reason = match e {
            ParseError::Unsupported { .. } | ParseError::NotForReflex(_) => {
                Reason::UnsupportedEvent
            }
            _ => Reason::MalformedEvent,
        };
        let mut record = self.new_record(ledger::rejected_record_id(
            self.name(),
            &self.meta.event_digest,
        ));
        record.set_outcome(Status::Rejected, reason, e.to_string());
        self.finish_unclaimed(record, Takeover::ExpiredLease).await
    }

    /// A record decided before any AWS read: written once, duplicates only count themselves.
    pub(super) async fn finish_unclaimed(
        &self,
        mut record: OutcomeRecord,
        takeover: Takeover,
    ) -> Result<Handled, PipelineError> {
        reject_unstorable_resource(&mut record);
        let claim = self
            .setup
            .ledger
            .claim(record, Utc::now().timestamp(), takeover)
            .await?;
        let (outcome, record, stored_now) = match claim {
            Claim::Acquired(r) => (Handled::of(&r, false), r, true),
            Claim::Held(existing) => (self.held(&existing)?, existing, false),
        };
        log_decision(self.name(), &outcome);
        after_outcome(self.setup, &record, stored_now).await;
        Ok(outcome)
    }

    /// A record decided before anything was read (the cold start's parameter check).
    pub(super) async fn record_decided(
        &self,
        record_id: String,
        status: Status,
        reason: Reason,
        detail: &str,
    ) -> Result<Handled, PipelineError> {
        let mut record = self.new_record(record_id);
        record.set_outcome(status, reason, detail);
        self.finish_unclaimed(record, Takeover::ExpiredLease).await
    }

    /// Another invocation's record: finished (this delivery is a duplicate), or still held
    /// under a live lease (retry later: its holder may have crashed).
    fn held(&self, existing: &OutcomeRecord) -> Result<Handled, PipelineError> {
        // A record awaiting its long operation is settled for a delivery: the operation's
        // completion ends it, never a second start.
        if existing.status.in_progress() && existing.status != Status::AwaitingCompletion {
            return Err(PipelineError::Busy {
                record_id: existing.record_id.clone(),
                lease_expires_at: existing.lease_expires_at.unwrap_or_default(),
            });
        }
        Ok(Handled::of(existing, true))
    }

    pub(super) async fn finding(&self, finding: Finding) -> Result<Handled, PipelineError> {
        let spec = self.remediation.spec();
        let mut record = self.new_record(ledger::record_id(spec.name, &finding));
        let takeover = if finding.intent.is_some() {
            Takeover::OnRequest
        } else {
            Takeover::ExpiredLease
        };
        record.finding = Some(finding.clone());
        // Every record names the finding's resource, even one that stops before its target is
        // resolved (an invalid policy, say), so `reflex audit --resource` finds it.
        if let Some(named) = finding.resources.iter().find(|r| r.arn.is_some()) {
            record.resource_arn = named.arn.clone();
            record.resource = Some(named.clone());
        }
        let policy = self
            .setup
            .policy
            .current()
            .await
            .map_err(PipelineError::PolicyUnavailable)?;

        // A Config rule is known by its identity, not its name.
        let mut finding = finding;
        if let Err(stop) = self
            .identify_config_rule(&mut finding, &policy, &mut record)
            .await
        {
            return match stop {
                Stop::Transient { step, message } => Err(PipelineError::Transient {
                    record_id: record.record_id,
                    step,
                    message,
                }),
                Stop::Ledger(e) => Err(e.into()),
                Stop::Decided => self.finish_unclaimed(record, takeover).await,
            };
        }

        // Detect and evaluate: is this ours, which resource, may we act, in which mode?
        // An approval (a custom-action press too) acts on the target its plan was shown for.
        let mut stored = self.stored_target.clone();
        if stored.is_none() && finding.intent == Some(finding::Intent::Approve) {
            stored = self
                .setup
                .ledger
                .get(&record.record_id)
                .await?
                .and_then(|r| r.target);
        }
        let (target, decision, params) =
            match self.evaluate(&finding, &policy, &mut record, stored).await {
                Ok(decided) => decided,
                Err(Stop::Decided) => return self.finish_unclaimed(record, takeover).await,
                Err(Stop::Transient { step, message }) => {
                    // Nothing claimed yet: nothing to hand back.
                    return Err(PipelineError::Transient {
                        record_id: record.record_id,
                        step,
                        message,
                    });
                }
                Err(Stop::Ledger(e)) => return Err(e.into()),
            };
        // A mode an override by tag may still change is judged once the tags are read (see
        // `remediate`); any other dry-run is final for an approval here.
        let by_tag = (*policy)
            .as_ref()
            .is_ok_and(|p| decision.forced.is_none() && p.modes_by_tag(spec.name));
        if finding.intent == Some(finding::Intent::Approve)
            && decision.mode == Mode::DryRun
            && !by_tag
        {
            // An approval cannot lift the operator's dry-run: refused, and the record (pending
            // approval, say) stays as it is.
            let why = format!(
                "approval refused for record {}: the policy's mode for this finding is dry-run ({}); nothing was changed and the record stays as it was",
                record.record_id, decision.because
            );
            warn!(record_id = %record.record_id, remediation = spec.name, reason = %why, "approval refused");
            return Err(PipelineError::Refused(why));
        }
        if reject_unstorable_resource(&mut record) {
            return self.finish_unclaimed(record, takeover).await;
        }
        record.mode = Some(decision.mode);
        record.reversible = Some(spec.reversible);

        record.target = Some(state_json(&target));

        // One finding at a time on a shared resource (a NACL's rule numbers, a VPC's isolation
        // group): its lease first, then everything else, under it.
        let shared = self.remediation.shared_resource(&target);
        let owned = match &shared {
            None => Owned::default(),
            Some(resource) => match self.lease_shared(resource, &record.record_id).await {
                Ok(owned) => owned,
                Err(e) => return Err(e),
            },
        };
        // Boxed: the run's state is large, and callers' stacks need not hold it.
        let outcome = Box::pin(self.claimed(
            record,
            takeover,
            finding,
            target,
            decision,
            params,
            owned,
            shared.clone(),
            policy.clone(),
        ))
        .await;
        if let Some(resource) = &shared {
            if let Err(e) = self
                .setup
                .ledger
                .release_resource(spec.name, resource, &self.meta.claim_token)
                .await
            {
                // Its deadline ends it anyway.
                warn!(resource, error = %e, "resource lease not released");
            }
        }
        let deferred = self
            .told_after_release
            .lock()
            .ok()
            .and_then(|mut d| d.take());
        if let Some(record) = deferred {
            after_outcome(self.setup, &record, true).await;
        }
        outcome
    }

    /// The lease of a resource shared by findings, waited for a few seconds (another finding
    /// on it finishes in about that); what Reflex owns there comes with it.
    async fn lease_shared(&self, resource: &str, record_id: &str) -> Result<Owned, PipelineError> {
        let mut delay = std::time::Duration::from_millis(100);
        let started = std::time::Instant::now();
        loop {
            let now = Utc::now().timestamp();
            match self
                .setup
                .ledger
                .lease_resource(
                    self.name(),
                    resource,
                    &self.meta.claim_token,
                    record_id,
                    now,
                    self.setup.lease_seconds,
                )
                .await?
            {
                ResourceLease::Held(owned) => return Ok(owned),
                ResourceLease::Busy {
                    until,
                    record_id: holder,
                } => {
                    if holder == record_id {
                        // This very record is being worked on by another delivery: a
                        // duplicate, counted, to retry later like any record held under a
                        // live lease.
                        // (Its holder writes the record right after taking the lease.)
                        for _ in 0..20 {
                            if self.setup.ledger.get(record_id).await?.is_some() {
                                break;
                            }
                            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                        }
                        self.setup.ledger.count_delivery(record_id).await?;
                        return Err(PipelineError::Busy {
                            record_id: record_id.into(),
                            lease_expires_at: until,
                        });
                    }
                    if started.elapsed() >= SHARED_RESOURCE_WAIT {
                        return Err(PipelineError::Transient {
                            record_id: record_id.into(),
                            step: "resource-lease",
                            message: format!(
                                "{resource} is being changed for record {holder} (lease until {until}); retry later"
                            ),
                        });
                    }
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(std::time::Duration::from_secs(1));
                }
            }
        }
    }

    /// Claim, and read the live resource in the same round (reads change nothing, and a
    /// duplicate that loses the claim only wasted them); then steps 4–7.
    #[allow(clippy::too_many_arguments)]
    async fn claimed(
        &self,
        mut record: OutcomeRecord,
        takeover: Takeover,
        finding: Finding,
        target: R::Target,
        decision: Decision,
        params: R::Params,
        owned: Owned,
        shared: Option<String>,
        policy: std::sync::Arc<Result<Policy, PolicyError>>,
    ) -> Result<Handled, PipelineError> {
        let spec = self.remediation.spec();
        let now = Utc::now().timestamp();
        record.lease_expires_at = Some(now + self.setup.lease_seconds);
        let r = self.remediation;
        let reads = |target: &R::Target| {
            let target = target.clone();
            let (finding, owned, record_id) = (&finding, &owned, record.record_id.clone());
            async move {
                let ctx = Context {
                    record_id: &record_id,
                    now: Utc::now(),
                    finding,
                    owned,
                };
                let arn = target.resource().arn.clone();
                tokio::join!(
                    r.tags(&target),
                    r.inspect(&ctx, &target),
                    r.identity(&target),
                    self.setup.ledger.suppression(spec.name, &arn)
                )
            }
        };
        // The finding read back from its source, where the policy asks: in the same round.
        let (claim, mut read, confirmation) = tokio::join!(
            self.setup.ledger.claim(record.clone(), now, takeover),
            Box::pin(reads(&target)),
            // Boxed: SDK futures are large, and debug builds poll them on small stacks.
            Box::pin(
                self.setup
                    .source
                    .confirm(&finding, decision.confirm_at_source)
            )
        );
        let record = match claim? {
            Claim::Held(existing) => {
                let outcome = self.held(&existing)?;
                log_decision(spec.name, &outcome);
                // A duplicate tells what the first delivery stored but did not tell (it died).
                after_outcome(self.setup, &existing, false).await;
                return Ok(outcome);
            }
            Claim::Acquired(r) => *r,
        };
        // A record taken over in `acting`, or approved, planned with its own target: that one
        // stands, read afresh.
        let stored = record
            .target
            .as_ref()
            .filter(|t| **t != state_json(&target))
            .and_then(|t| serde_json::from_value::<R::Target>(t.clone()).ok());
        let target = match stored {
            Some(stored) => {
                read = reads(&stored).await;
                stored
            }
            None => target,
        };
        let (tags, state, identity, suppression) = read;
        let kept = record
            .actions
            .iter()
            .filter(|a| a.took_effect())
            .cloned()
            .collect();
        let budget_token = format!("{}#{}", record.record_id, record.attempts);
        let mut work = Work {
            record,
            target,
            decision,
            params,
            finding: finding.clone(),
            owned,
            shared,
            kept,
            budget_token,
            outcome_unknown: false,
            untouched: Vec::new(),
            policy,
        };
        let held_back = suppression.map(|s| s.filter(|s| s.expires_at > now));
        // Boxed, like every large step: debug builds poll deep futures on small stacks.
        match Box::pin(self.remediate(&mut work, tags, state, identity, held_back, confirmation))
            .await
        {
            Ok(()) | Err(Stop::Decided) => {}
            Err(Stop::Transient { step, message }) => {
                return self.hand_back(work, step, message).await
            }
            Err(Stop::Ledger(e)) => {
                self.return_budget_unit(&mut work).await;
                return Err(e.into());
            }
        }
        self.finish(work, &finding).await
    }

    /// Steps 4–6 on a claimed record: inspect, then (by mode) act and verify.
    async fn remediate(
        &self,
        w: &mut Work<R>,
        tags: Result<Tags, RemediationError>,
        state: Result<R::State, RemediationError>,
        identity: Result<Option<String>, RemediationError>,
        held_back: Result<Option<Suppression>, LedgerError>,
        confirmation: Result<Confirmation, RemediationError>,
    ) -> Flow {
        let tags = read(w, tags)?;
        let state = read(w, state)?;
        let identity = read(w, identity)?;
        let confirmation = read(w, confirmation)?;
        // An operator rolled this fix back: its echo (the finding again) must not undo that.
        if let Some(s) = held_back.map_err(|e| ledger_stop("suppression", e))? {
            let detail = format!(
                "{} rolled this fix back (record {}); findings for this resource are held until {}",
                s.by, s.rollback_record, s.until
            );
            return Err(w.decide(Status::Skipped, Reason::RolledBack, detail));
        }
        // The tags decide again: overrides and exemptions by tag, infrastructure as code.
        self.decide_with_tags(w, &tags)?;
        if w.finding.intent == Some(finding::Intent::Approve) && w.decision.mode == Mode::DryRun {
            // A dry-run chosen by the resource's tags: an approval cannot lift it either. The
            // plan shown stays pending, as it was.
            if let Some(shown) = w.record.shown_plan().cloned() {
                let why = format!(
                    "approval refused: the policy's mode for this resource is dry-run ({}); nothing was changed and the plan shown stays pending",
                    w.decision.because
                );
                return Err(keep_shown(w, &shown, why));
            }
        }
        let shown = if w.approving() {
            w.record.shown_plan().cloned()
        } else {
            None
        };
        if let Some(shown) = &shown {
            if let Some(why) = approval_predates(w, shown) {
                return Err(keep_shown(w, shown, why));
            }
            // The plan shown was for one resource: another under the same name is not approved.
            if shown.resource_identity.is_some() && shown.resource_identity != identity {
                w.record.resource_identity = identity;
                return self.ask_again(
                    w,
                    &state,
                    "the resource was replaced since the plan was shown (its identity differs), so this approval was not applied; the new plan awaits a new approval",
                );
            }
        }
        if w.record.status == Status::Acting {
            if w.record.resource_identity.is_none() {
                w.record.resource_identity = identity;
            }
            // A change an earlier attempt started (confirmed then) is finished and credited.
            return self.resume(w, state, shown.is_some()).await;
        }
        match (&w.record.resource_identity, identity) {
            // An earlier run of this finding (a dry-run, a plan shown) saw another resource
            // under this name: the finding named that one, so this one is not acted on.
            (Some(recorded), Some(live)) if *recorded != live && shown.is_none() => {
                let detail = format!(
                    "the resource was replaced since this finding's record was made (identity {recorded}, now {live}): the finding named the earlier one, so nothing was changed"
                );
                return Err(w.decide(Status::Skipped, Reason::ResourceGone, detail));
            }
            (Some(_), _) => {}
            (None, live) => w.record.resource_identity = live,
        }
        if let Confirmation::Unconfirmed(why) = confirmation {
            let detail = format!(
                "the finding was read back from its source and did not confirm the event, so nothing was changed: {why}"
            );
            return Err(w.decide(Status::Skipped, Reason::Unconfirmed, detail));
        }
        if let Some(shown) = shown {
            return self.carry_out_approved(w, state, shown).await;
        }
        w.record.pre_state = Some(state_json(&state));
        let (plan, left_out) = self.plan(w, &state);
        if plan.compliant() && left_out > 0 {
            let detail = format!(
                "every change the fix would make is to a protected principal: {}",
                plan.untouched.join("; ")
            );
            return Err(w.decide(Status::Skipped, Reason::Protected, detail));
        }
        if plan.compliant() {
            return Err(w.decide(
                Status::Skipped,
                Reason::AlreadyCompliant,
                compliant_detail("the live resource is already compliant", &plan.untouched),
            ));
        }
        stop_if_retries_exhausted(w)?;
        w.untouched = plan.untouched.clone();
        let planned = planned_actions(self.remediation, &w.target, &plan.steps);
        if w.decision.approval {
            // An approval with no plan shown before: nothing was approved yet. This plan is
            // shown now, and waits for its own approval.
            w.decision.mode = Mode::Approve;
        }
        self.tier(w, &plan.steps);
        hold_for_mode(w, &planned)?;
        Box::pin(self.change(w, plan.steps, planned)).await
    }

    /// A crashed attempt's `acting` record, taken over: credit what took effect, carry out
    /// only what is still missing, never repeat a change. An interrupted approval carries out
    /// only the approved steps, and only on the resource as it was shown.
    async fn resume(&self, w: &mut Work<R>, state: R::State, approval: bool) -> Flow {
        let earlier = w.record.attempts.saturating_sub(1);
        // A long operation an earlier attempt started (its handle in the record) is awaited,
        // never started again.
        let r = self.remediation;
        let started = applied_of::<R>(&w.kept)
            .into_iter()
            .filter(|a| r.long_running(&a.step))
            .find_map(|a| r.handle(&a.step, &a.output));
        if let Some(handle) = started {
            return self.await_operation(w, handle).await;
        }
        let (plan, _) = self.plan(w, &state);
        if plan.compliant() {
            w.record.actions = w
                .record
                .actions
                .iter()
                .map(|a| {
                    // Planned, or tried with an unknown outcome (a transient error): in effect
                    // now, so made by the earlier attempt.
                    if a.took_effect() {
                        a.clone()
                    } else {
                        a.credited_to(earlier)
                    }
                })
                .collect();
            // What the credited steps removed from Reflex's own entries, if the earlier attempt
            // stopped before saying so.
            let removes: Vec<OwnedChange> = applied_of::<R>(&w.record.actions)
                .iter()
                .flat_map(|a| self.remediation.owned_changes(&w.target, &a.step))
                .filter(|c| matches!(c, OwnedChange::Remove { .. }))
                .collect();
            self.own(w, &removes).await?;
            w.record.post_state = Some(state_json(&state));
            w.record.verified = Some(true);
            w.record.verified_at = Some(now());
            let detail = format!(
                "attempt {earlier} stopped after its checkpoint; on takeover a fresh read shows \
                 its planned change in effect: credited to attempt {earlier}, verified"
            );
            return Err(w.decide(Status::Succeeded, Reason::Remediated, detail));
        }
        stop_if_retries_exhausted(w)?;
        if approval {
            // What was approved is the checkpoint's plan for the stored pre-state. A resource
            // that is neither as shown nor fixed may be someone else's change: ask again.
            if w.record.pre_state.as_ref() != Some(&state_json(&state)) {
                return self.ask_again(
                    w,
                    &state,
                    "an interrupted approval found the resource neither as shown nor fixed, so it did not go on; the new plan awaits a new approval",
                );
            }
            let missing: Vec<Action> = w
                .record
                .actions
                .iter()
                .filter(|a| !a.took_effect())
                .map(Action::replanned)
                .collect();
            let steps = match stored_steps::<R>(&missing) {
                Ok(s) if !s.is_empty() => s,
                _ => {
                    return Err(w.decide(
                        Status::Failed,
                        Reason::ActionError,
                        "the interrupted approval's plan cannot be read",
                    ))
                }
            };
            self.protected(w, &steps)?;
            return Box::pin(self.change(w, steps, missing)).await;
        }
        w.untouched = plan.untouched.clone();
        let planned = planned_actions(self.remediation, &w.target, &plan.steps);
        self.tier(w, &plan.steps);
        hold_for_mode(w, &planned)?;
        Box::pin(self.change(w, plan.steps, planned)).await
    }

    /// Every principal the steps would change must be unprotected (an approved or interrupted
    /// plan is carried out whole, or not at all).
    pub(super) fn protected(&self, w: &mut Work<R>, steps: &[R::Step]) -> Flow {
        if let Some(why) = steps.iter().find_map(|s| self.protector(w, s)) {
            let detail = format!("the fix would change a protected principal: {why}");
            return Err(w.decide(Status::Skipped, Reason::Protected, detail));
        }
        Ok(())
    }

    /// Why `step` must not run, if it would change a protected principal.
    fn protector(&self, w: &Work<R>, step: &R::Step) -> Option<String> {
        let approver = w
            .finding
            .requested_by
            .as_deref()
            .filter(|_| w.finding.intent == Some(finding::Intent::Approve));
        self.remediation
            .principals(&w.target, step)
            .iter()
            .find_map(|p| w.decision.protects(p, approver))
    }

    /// The remediation's plan for `state`, less the steps that would change a protected
    /// principal (each named in `untouched`: left as it is on purpose), and how many were left
    /// out. Verification judges by the same plan, so a kept principal is no failure.
    pub(super) fn plan(&self, w: &Work<R>, state: &R::State) -> (Plan<R::Step>, usize) {
        let mut plan = self.remediation.plan(&w.ctx(), &w.target, state, &w.params);
        let mut left_out = 0;
        for step in std::mem::take(&mut plan.steps) {
            match self.protector(w, &step) {
                Some(why) => {
                    left_out += 1;
                    plan.untouched.push(format!("left as it is: {why}"));
                }
                None => plan.steps.push(step),
            }
        }
        (plan, left_out)
    }

    /// Checkpoint and budget reservation (one round), the change, and its verification (or,
    /// for a long operation, the wait for its completion).
    pub(super) async fn change(
        &self,
        w: &mut Work<R>,
        steps: Vec<R::Step>,
        planned: Vec<Action>,
    ) -> Flow {
        // Leases and the budget window are judged by this machine's clock: it must agree with
        // AWS's before anything is changed.
        self.setup
            .ledger
            .check_clock()
            .map_err(|e| ledger_stop("checkpoint", e))?;
        if w.approving() {
            // Every path to an approved change names its approver at the checkpoint.
            w.record.approved_by = w
                .record
                .finding
                .as_ref()
                .and_then(|f| f.requested_by.clone());
            w.record.approved_at = Some(now());
        }
        // What the steps place on the shared resource is written before they run (a crash
        // after a change still leaves its entry for the sweep); what they remove, after.
        let (places, removes): (Vec<OwnedChange>, Vec<OwnedChange>) = steps
            .iter()
            .flat_map(|s| self.remediation.owned_changes(&w.target, s))
            .partition(|c| matches!(c, OwnedChange::Put { .. }));
        self.checkpoint(w, &planned).await?;
        self.own(w, &places).await?;
        let applied = match self.act(w, &steps, planned).await {
            Ok(applied) => applied,
            Err(stop) => {
                // A decided failure: entries placed for steps that never took effect are
                // withdrawn (after a transient error the outcome is unknown: they stay).
                if matches!(stop, Stop::Decided) {
                    let made = w.record.actions.iter().skip(w.kept.len());
                    let withdraw: Vec<OwnedChange> = steps
                        .iter()
                        .zip(made)
                        .filter(|(_, a)| !a.took_effect())
                        .flat_map(|(step, _)| self.remediation.owned_changes(&w.target, step))
                        .filter_map(|c| match c {
                            OwnedChange::Put { key, .. } => Some(OwnedChange::Remove { key }),
                            OwnedChange::Remove { .. } => None,
                        })
                        .collect();
                    if self.own(w, &withdraw).await.is_err() {
                        // Best effort: an entry left behind is removed by the sweep at its
                        // expiry, and the removal finds nothing to remove.
                        warn!(record_id = %w.record.record_id, "entries of steps not taken not withdrawn");
                    }
                }
                return Err(stop);
            }
        };
        self.own(w, &removes).await?;
        let r = self.remediation;
        let started = applied
            .iter()
            .filter(|a| r.long_running(&a.step))
            .find_map(|a| r.handle(&a.step, &a.output));
        match started {
            Some(handle) => self.await_operation(w, handle).await,
            None => self.verify(w).await,
        }
    }

    /// Record `changes` to what Reflex owns on the shared resource, under its lease.
    async fn own(&self, w: &mut Work<R>, changes: &[OwnedChange]) -> Flow {
        let Some(resource) = w.shared.clone() else {
            return Ok(());
        };
        if changes.is_empty() {
            return Ok(());
        }
        let target = state_json(&w.target);
        let record_id = w.record.record_id.clone();
        w.owned
            .apply(changes, &record_id, Utc::now().timestamp(), &target);
        self.setup
            .ledger
            .write_owned(self.name(), &resource, &self.meta.claim_token, &w.owned)
            .await
            .map_err(|e| ledger_stop("owned", e))
    }

    /// A long operation was started: the record waits for it (a completion event or the
    /// sweep ends it), listed under its handle until its deadline.
    async fn await_operation(&self, w: &mut Work<R>, handle: String) -> Flow {
        let timeout = match self.remediation.spec().completion_timeout_seconds {
            0 => DEFAULT_COMPLETION_TIMEOUT_SECONDS,
            t => t,
        };
        let deadline = Utc::now().timestamp() + timeout;
        self.setup
            .ledger
            .await_handle(self.name(), &handle, &w.record.record_id, deadline)
            .await
            .map_err(|e| ledger_stop("await", e))?;
        w.record.awaiting = Some(Awaiting {
            handle: handle.clone(),
            deadline,
        });
        let detail = format!(
            "{} by {}: started {handle}; awaiting its completion (at most until {})",
            if w.approving() {
                "approved"
            } else {
                "enforced"
            },
            w.decision.because,
            timestamp(chrono::DateTime::from_timestamp(deadline, 0).unwrap_or_default())
        );
        Err(w.decide(
            Status::AwaitingCompletion,
            Reason::AwaitingOperation,
            detail,
        ))
    }

    /// The record goes to `acting` with its plan and pre-state, and the change takes a unit
    /// of the blast-radius budget, concurrently. Either failing means no change.
    async fn checkpoint(&self, w: &mut Work<R>, plan: &[Action]) -> Flow {
        let now = Utc::now();
        w.record.status = Status::Acting;
        w.record.reason = Reason::InProgress;
        w.record.detail = format!(
            "checkpoint: about to make {} change(s), {}",
            plan.len(),
            w.decision.because
        );
        w.record.actions = w.kept.iter().chain(plan).cloned().collect();
        w.record.lease_expires_at = Some(now.timestamp() + self.setup.lease_seconds);
        w.record.updated_at = timestamp(now);
        self.store_and_reserve(w, now).await?;
        // The shared resource's lease, renewed for the change: a run that stalled since it took
        // the lease may have lost it, and must not act beside its new holder.
        if let Some(resource) = w.shared.clone() {
            let renewed = self
                .setup
                .ledger
                .lease_resource(
                    self.name(),
                    &resource,
                    &self.meta.claim_token,
                    &w.record.record_id,
                    Utc::now().timestamp(),
                    self.setup.lease_seconds,
                )
                .await
                .map_err(|e| ledger_stop("resource-lease", e))?;
            if let ResourceLease::Busy { record_id, .. } = renewed {
                return Err(Stop::Transient {
                    step: "resource-lease",
                    message: format!(
                        "{resource} was taken over by record {record_id} before the change; nothing was changed"
                    ),
                });
            }
        }
        Ok(())
    }

    /// Carry out the plan, step by step, recording each with its result and output.
    async fn act(
        &self,
        w: &mut Work<R>,
        steps: &[R::Step],
        planned: Vec<Action>,
    ) -> Flow<Vec<Applied<R::Step, R::Output>>> {
        // Only under a live lease: a process that stalled since its checkpoint (a laptop that
        // slept through an approval, say) may have been taken over, and must not act too.
        if lease_ran_out(w.record.lease_expires_at, self.setup.lease_seconds) {
            return Err(Stop::Transient {
                step: "act",
                message: "the lease ran out before the change; nothing was changed".into(),
            });
        }
        let earlier = applied_of::<R>(&w.kept);
        let Applying {
            done,
            applied,
            result,
        } = apply_steps(
            self.remediation,
            &w.ctx(),
            &w.target,
            steps,
            &planned,
            earlier,
        )
        .await;
        if let Err(e) = result {
            let rest = planned.iter().skip(done.len());
            w.record.actions = w.kept.iter().chain(&done).chain(rest).cloned().collect();
            let stop = sort_error(&mut w.record, "act", e, Reason::ActionError);
            if matches!(stop, Stop::Decided) && w.record.changed_anything() {
                // A partial fix: the state it left is what a rollback must find again.
                if let Ok(after) = self.remediation.inspect(&w.ctx(), &w.target).await {
                    w.record.post_state = Some(state_json(&after));
                }
            }
            return Err(stop);
        }
        w.record.actions = w.kept.iter().chain(&done).cloned().collect();
        Ok(applied)
    }

    /// Read again until the fix shows, within a few seconds (eventual consistency), before
    /// concluding `verification-failed`.
    async fn verify(&self, w: &mut Work<R>) -> Flow {
        let r = self.remediation;
        let mut last = Err(RemediationError::Invalid("not verified".into()));
        for delay in std::iter::once(None).chain(self.setup.verify_delays.iter().map(Some)) {
            if let Some(d) = delay {
                tokio::time::sleep(*d).await;
            }
            // The identity is read again in the same round: what a rollback must find is the
            // resource as the fix left it (AWS may change a bucket's creation date with some
            // changes to the bucket).
            let ctx = w.ctx();
            let (state, identity) = tokio::join!(r.inspect(&ctx, &w.target), r.identity(&w.target));
            last = state.map(|state| (self.plan(w, &state).0, state));
            if let Ok(Some(identity)) = identity {
                w.record.resource_identity = Some(identity);
            }
            if last.as_ref().is_ok_and(|(plan, _)| plan.compliant()) {
                break;
            }
        }
        let verified_at = now();
        match last {
            Ok((plan, after)) => {
                w.record.post_state = Some(state_json(&after));
                w.record.verified = Some(plan.compliant());
                w.record.verified_at = Some(verified_at);
                if plan.compliant() {
                    let detail = compliant_detail(
                        &format!(
                            "enforced by {}; verified by a fresh read",
                            w.decision.because
                        ),
                        &plan.untouched,
                    );
                    Err(w.decide(Status::Succeeded, Reason::Remediated, detail))
                } else {
                    Err(w.decide(
                        Status::VerificationFailed,
                        Reason::StillNonCompliant,
                        "the change was made but fresh reads over several seconds show the resource still non-compliant",
                    ))
                }
            }
            // Not `sort_error`: after a change, a resource that cannot be read (gone, say) is
            // not verified.
            Err(e) if e.is_transient() => Err(Stop::transient("verify", &e)),
            Err(e) => {
                w.record.verified = Some(false);
                Err(w.decide(
                    Status::VerificationFailed,
                    Reason::InspectError,
                    format!("the change was made but could not be verified: {e}"),
                ))
            }
        }
    }

    /// A transient error: hand the record back (lease ends now, error listed) so the next
    /// delivery takes over, or give up after `max_attempts`.
    async fn hand_back(
        &self,
        mut w: Work<R>,
        step: &'static str,
        message: String,
    ) -> Result<Handled, PipelineError> {
        let record_id = w.record.record_id.clone();
        let attempts = w.record.attempts;
        w.record.errors.push(AttemptError {
            attempt: attempts,
            step: step.into(),
            message: message.clone(),
            at: now(),
        });
        // After a transient error in `act` nobody knows whether the change was made: the unit
        // stays with the record, for the next attempt to use (or, on the last attempt, spent).
        if step == "act" {
            w.outcome_unknown = true;
        }
        self.return_budget_unit(&mut w).await;
        if w.record.tries() >= w.decision.max_attempts {
            let _ = retries_exhausted(&mut w);
            let finding = w.record.finding.clone();
            if let Some(finding) = finding {
                self.finish(w, &finding).await?;
            }
            return Err(PipelineError::RetriesExhausted {
                record_id,
                attempts,
            });
        }
        w.record.reason = Reason::RetryPending;
        w.record.detail = format!(
            "attempt {attempts} of {} stopped by a transient error at {step}: {message}; handed back for a retry",
            w.decision.max_attempts
        );
        w.record.updated_at = now();
        self.setup
            .ledger
            .release(&w.record, Utc::now().timestamp())
            .await?;
        log_decision(self.name(), &Handled::of(&w.record, false));
        Err(PipelineError::Transient {
            record_id,
            step,
            message,
        })
    }

    /// Store the outcome, then tell Security Hub, then write down what it said.
    async fn finish(&self, mut w: Work<R>, finding: &Finding) -> Result<Handled, PipelineError> {
        if !w.record.status.in_progress() {
            self.return_budget_unit(&mut w).await;
        }
        let mut record = w.record;
        record.lease_expires_at = None;
        record.updated_at = now();
        // Security Hub hears only what is on record: its update is sent once the completion
        // is stored (a completion that fails, a lease lost, must not have told it anything).
        // An update known without a call (it cannot be sent) is written with the completion,
        // saving the follow-up write.
        let update = match self.prepare_report(&record, finding) {
            Some(Report::Known(feedback)) => {
                record.securityhub = Some(feedback);
                None
            }
            Some(Report::Send(update)) => Some(update),
            None => None,
        };
        if let Err(e) = self.setup.ledger.complete(&record).await {
            error!(record_id = %record.record_id, error = %e, "outcome not stored");
            return Err(e.into());
        }
        if let Some(update) = update {
            let feedback = update.send().await;
            self.record_feedback(&record, &feedback).await;
        }
        let outcome = Handled::of(&record, false);
        log_decision(self.name(), &outcome);
        // Last: metrics, and the notification the outcome calls for; under a shared resource's
        // lease, once it is released (see `finding`).
        let deferred = w.shared.is_some()
            && self
                .told_after_release
                .lock()
                .map(|mut d| *d = Some(record.clone()))
                .is_ok();
        if !deferred {
            after_outcome(self.setup, &record, true).await;
        }
        Ok(outcome)
    }

    /// Security Hub feedback, after the outcome is stored; its result is a follow-up update.
    /// A failure here never undoes a fix and never fails the invocation.
    pub(super) async fn report(&self, record: &OutcomeRecord, finding: &Finding) {
        let feedback = match self.prepare_report(record, finding) {
            None => return,
            Some(Report::Known(feedback)) => feedback,
            Some(Report::Send(update)) => update.send().await,
        };
        self.record_feedback(record, &feedback).await;
    }

    /// The update a Security Hub finding gets for this outcome (none for other sources).
    fn prepare_report(&self, record: &OutcomeRecord, finding: &Finding) -> Option<Report> {
        if !finding.source.in_security_hub() {
            return None;
        }
        let note = format!(
            "Reflex {}: {} ({}: {}). Handled record {} in table {}.",
            self.name(),
            record.status,
            record.reason,
            record.detail,
            record.record_id,
            self.setup.ledger.table()
        );
        self.setup
            .securityhub
            .prepare(finding, record.status, &note)
    }

    /// What Security Hub answered, on the record (a follow-up update).
    async fn record_feedback(&self, record: &OutcomeRecord, feedback: &Feedback) {
        if let Err(e) = self
            .setup
            .ledger
            .set_feedback(&record.record_id, feedback)
            .await
        {
            warn!(record_id = %record.record_id, error = %e, "Security Hub feedback not recorded");
        }
    }
}

/// A read's result as a step: a transient error hands the record back; a resource gone since
/// the finding is nothing to fix; any other error fails closed.
fn read<T, R: Remediation>(w: &mut Work<R>, result: Result<T, RemediationError>) -> Flow<T> {
    result.map_err(|e| sort_error(&mut w.record, "inspect", e, Reason::InspectError))
}

/// How an AWS error ends a step, the same at every step: a passing fault hands the record back
/// for a retry; a resource gone since the finding is nothing to fix (`skipped /
/// resource-gone`); anything else fails closed (`failed / reason_if_failed`, saying why).
pub(super) fn sort_error(
    record: &mut OutcomeRecord,
    step: &'static str,
    e: RemediationError,
    reason_if_failed: Reason,
) -> Stop {
    match e {
        e if e.is_transient() => Stop::transient(step, &e),
        RemediationError::Gone(why) => {
            record.set_outcome(Status::Skipped, Reason::ResourceGone, why);
            Stop::Decided
        }
        e => {
            record.set_outcome(Status::Failed, reason_if_failed, e.to_string());
            Stop::Decided
        }
    }
}

/// "Compliant", and which parts were left alone on purpose, if any.
fn compliant_detail(base: &str, untouched: &[String]) -> String {
    if untouched.is_empty() {
        base.to_string()
    } else {
        format!(
            "{base}, except what Reflex must not touch: {}",
            untouched.join("; ")
        )
    }
}

/// Dry-run and approve record exactly the steps that would run, and stop there.
fn hold_for_mode<R: Remediation>(w: &mut Work<R>, plan: &[Action]) -> Flow {
    let because = w.decision.because.clone();
    match w.decision.mode {
        Mode::Enforce => Ok(()),
        Mode::DryRun => {
            w.record.actions = w.kept.iter().chain(plan).cloned().collect();
            let detail = compliant_detail(
                &format!("dry-run by {because}: the planned change was not made"),
                &w.untouched,
            );
            let reason = w.decision.forced.unwrap_or(Reason::WouldChange);
            Err(w.decide(Status::DryRun, reason, detail))
        }
        Mode::Approve => {
            w.record.actions = w.kept.iter().chain(plan).cloned().collect();
            let detail = compliant_detail(
                &format!(
                    "approve mode by {because}: run the Reflex: approve custom action to apply"
                ),
                &w.untouched,
            );
            Err(w.decide(Status::PendingApproval, Reason::AwaitingApproval, detail))
        }
    }
}

/// A record taken over more often than the policy allows (crashes that never released it) is
/// not tried again.
pub(super) fn stop_if_retries_exhausted<R: Remediation>(w: &mut Work<R>) -> Flow {
    if w.record.tries() > w.decision.max_attempts {
        return Err(retries_exhausted(w));
    }
    Ok(())
}

fn retries_exhausted<R: Remediation>(w: &mut Work<R>) -> Stop {
    let errors: Vec<String> = w
        .record
        .errors
        .iter()
        .map(|e| format!("attempt {} at {}: {}", e.attempt, e.step, e.message))
        .collect();
    let detail = format!(
        "gave up after {} attempts (max_attempts {}); errors: {}",
        w.record.tries(),
        w.decision.max_attempts,
        if errors.is_empty() {
            "none recorded (the attempts stopped without releasing)".to_string()
        } else {
            errors.join("; ")
        }
    );
    w.decide(Status::Failed, Reason::RetriesExhausted, detail)
}

pub(super) fn ledger_stop(step: &'static str, e: LedgerError) -> Stop {
    if e.is_transient() {
        Stop::Transient {
            step,
            message: e.to_string(),
        }
    } else {
        Stop::Ledger(e)
    }
}
