//! Approval: an operator's approval of a shown plan, carried out exactly as shown, or the plan
//! shown again when the resource is no longer as it was.

use super::finding_run::{stop_if_retries_exhausted, Flow, Run, Stop, Work};
use super::{planned_actions, state_json, timestamp, Handled, PipelineError};
use crate::finding;
use crate::ledger::{Action, PriorOutcome};
use crate::policy::Mode;
use crate::remediation::Remediation;
use crate::setup::Setup;
use crate::status::{Reason, Status};
use chrono::{DateTime, Utc};

/// An operator's approval of a record held for approval (`reflex approve RECORD_ID`): carries out
/// the stored plan if a fresh read still matches the stored pre-state, recording `by` as the
/// approver. Refused, changing nothing, for a record that is not pending approval.
pub async fn approve<R: Remediation>(
    setup: &Setup,
    remediation: &R,
    record_id: &str,
    by: &str,
) -> Result<Handled, PipelineError> {
    approve_as_of(setup, remediation, record_id, by, Utc::now()).await
}

/// [`approve`], given at `at` (when the operator signed it): it approves only a plan that was
/// shown before then.
pub async fn approve_as_of<R: Remediation>(
    setup: &Setup,
    remediation: &R,
    record_id: &str,
    by: &str,
    at: DateTime<Utc>,
) -> Result<Handled, PipelineError> {
    let record = setup.ledger.get(record_id).await?.ok_or_else(|| {
        PipelineError::Refused(format!(
            "no record {record_id} in table {}",
            setup.ledger.table()
        ))
    })?;
    // An approval cut short (a transient error, a crash) is finished by approving again: the
    // record is still in progress as an approval. A live lease answers `RecordBusy`.
    let interrupted_approval = record.status.in_progress()
        && record.finding.as_ref().and_then(|f| f.intent) == Some(finding::Intent::Approve);
    if record.status != Status::PendingApproval && !interrupted_approval {
        return Err(PipelineError::Refused(format!(
            "record {record_id} is {} ({}), not pending approval: nothing to approve",
            record.status, record.reason
        )));
    }
    let mut finding = record
        .finding
        .clone()
        .ok_or_else(|| PipelineError::Refused(format!("record {record_id} holds no finding")))?;
    finding.intent = Some(finding::Intent::Approve);
    finding.requested_by = Some(by.to_string());
    finding.requested_at = Some(timestamp(at));
    let request = uuid::Uuid::new_v4();
    // A new request: its own digest, so it may take the held record over.
    let digest = format!("approve\n{record_id}\n{by}\n{request}");
    let mut run = Run::new(
        setup,
        remediation,
        &format!("reflex-approve-{request}"),
        digest.as_bytes(),
    );
    // The plan shown was made for the record's target: the approval acts on that one.
    run.stored_target = record.target.clone();
    Box::pin(run.finding(finding)).await
}

impl<R: Remediation> Run<'_, R> {
    /// The resource is not as it was when the plan was shown: the approval is not applied, and
    /// the plan for what is there now waits for its own approval (or there is nothing to do).
    pub(super) fn ask_again(&self, w: &mut Work<R>, state: &R::State, why: &str) -> Flow {
        // A stored pre-state is never overwritten once a change took effect: undo needs it.
        if w.kept.is_empty() {
            w.record.pre_state = Some(state_json(state));
        }
        let (plan, _) = self.plan(w, state);
        if plan.compliant() {
            return Err(w.decide(
                Status::Skipped,
                Reason::AlreadyCompliant,
                "the live resource is already compliant (it changed since the plan was shown)",
            ));
        }
        w.record.actions = w
            .kept
            .iter()
            .cloned()
            .chain(planned_actions(self.remediation, &w.target, &plan.steps))
            .collect();
        w.record.mode = Some(Mode::Approve);
        Err(w.decide(Status::PendingApproval, Reason::AwaitingApproval, why))
    }

    /// An approval of the plan an analyst was shown: carried out exactly, if the resource is
    /// still as it was then; otherwise the new plan waits for a new approval.
    pub(super) async fn carry_out_approved(
        &self,
        w: &mut Work<R>,
        state: R::State,
        shown: PriorOutcome,
    ) -> Flow {
        if shown.pre_state.as_ref() != Some(&state_json(&state)) {
            return self.ask_again(
                w,
                &state,
                "the resource changed since the plan was shown for approval, so this approval was not applied; the new plan awaits a new approval",
            );
        }
        let planned: Vec<Action> = shown
            .actions
            .into_iter()
            .filter(Action::is_planned)
            .collect();
        let steps = match stored_steps::<R>(&planned) {
            Ok(s) if !s.is_empty() => s,
            Ok(_) => {
                return Err(w.decide(
                    Status::Failed,
                    Reason::ActionError,
                    "the approved plan holds no step",
                ))
            }
            Err(e) => {
                return Err(w.decide(
                    Status::Failed,
                    Reason::ActionError,
                    format!("the approved plan cannot be read: {e}"),
                ))
            }
        };
        w.record.pre_state = shown.pre_state;
        stop_if_retries_exhausted(w)?;
        self.protected(w, &steps)?;
        Box::pin(self.change(w, steps, planned)).await
    }
}

/// An approval given before the plan now shown was shown does not approve it (a press replayed
/// from a dead-letter queue, a proof signed before the plan changed): why, if so.
pub(super) fn approval_predates<R: Remediation>(
    w: &Work<R>,
    shown: &PriorOutcome,
) -> Option<String> {
    let at = w.record.finding.as_ref()?.requested_at.clone()?;
    // Whole seconds: event times and SigV4 dates have no fraction, so an approval given in
    // the second the plan was shown counts as after it.
    let parse = |t: &str| DateTime::parse_from_rfc3339(t).ok().map(|t| t.timestamp());
    match (parse(&at), parse(&shown.updated_at)) {
        (Some(given), Some(plan)) if given >= plan => None,
        (Some(_), Some(_)) => Some(format!(
            "this approval was given at {at}, before the plan awaiting approval was shown (at {}): it does not approve that plan, which still awaits approval",
            shown.updated_at
        )),
        _ => Some(format!(
            "this approval's time ({at}) or the plan's ({}) cannot be read, so it cannot be told that the approval came after the plan; the plan still awaits approval",
            shown.updated_at
        )),
    }
}

/// The record goes back to the plan shown, still awaiting approval, with `why`.
pub(super) fn keep_shown<R: Remediation>(
    w: &mut Work<R>,
    shown: &PriorOutcome,
    why: String,
) -> Stop {
    w.record.actions = shown.actions.clone();
    w.record.pre_state = shown.pre_state.clone();
    w.record.resource_identity = shown.resource_identity.clone();
    w.record.mode = Some(Mode::Approve);
    w.decide(Status::PendingApproval, Reason::AwaitingApproval, why)
}

/// The remediation's typed steps, as planned actions store them.
pub(super) fn stored_steps<R: Remediation>(planned: &[Action]) -> Result<Vec<R::Step>, String> {
    planned
        .iter()
        .map(|a| {
            let v = a.step.clone().ok_or("a planned step is not stored")?;
            serde_json::from_value(v).map_err(|e| e.to_string())
        })
        .collect()
}
