//! The outcome record: the auditor's contract (design, "The outcome record"). Pure data.

use crate::finding::{Finding, Resource};
use crate::policy::Mode;
use crate::status::{Reason, Status};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What became of one step. In the record: `planned`, `ok`, or the error's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionResult {
    /// Not carried out (dry-run, pending approval, or not yet).
    Planned,
    Ok,
    Failed(String),
}

impl ActionResult {
    pub fn as_str(&self) -> &str {
        match self {
            ActionResult::Planned => "planned",
            ActionResult::Ok => "ok",
            ActionResult::Failed(e) => e,
        }
    }
}

impl Serialize for ActionResult {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ActionResult {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Ok(match text.as_str() {
            "planned" => ActionResult::Planned,
            "ok" => ActionResult::Ok,
            _ => ActionResult::Failed(text),
        })
    }
}

impl PartialEq<&str> for ActionResult {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// One API call that changed something (or, in dry-run and approve records, would).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Action {
    /// `service:Operation`, as IAM names it.
    pub api: String,
    pub parameters: Value,
    /// `ok`, the error, or `planned` for a change not made.
    pub result: ActionResult,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
    /// The attempt that made the change (set when a later attempt credits an earlier one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    /// The remediation's own step, exactly as planned: what approval carries out and undo
    /// reads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<Value>,
    /// What the step produced (a created group id, a snapshot id, a command id): later steps,
    /// undo and completion read it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
}

impl Action {
    pub fn planned(api: &str, parameters: Value) -> Action {
        Action {
            api: api.to_string(),
            parameters,
            result: ActionResult::Planned,
            at: None,
            attempt: None,
            step: None,
            output: None,
        }
    }

    /// A planned action as carried out now, with its result (`ok` or the error).
    pub fn carried_out(&self, result: Result<(), String>) -> Action {
        Action {
            api: self.api.clone(),
            parameters: self.parameters.clone(),
            result: match result {
                Ok(()) => ActionResult::Ok,
                Err(e) => ActionResult::Failed(e),
            },
            at: Some(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
            attempt: None,
            step: self.step.clone(),
            output: None,
        }
    }

    /// A planned action carried out now, with what it produced.
    pub fn produced(&self, output: Value) -> Action {
        Action {
            output: (!output.is_null()).then_some(output),
            ..self.carried_out(Ok(()))
        }
    }

    /// A step not (or not known to be) carried out, planned again.
    pub fn replanned(&self) -> Action {
        Action {
            result: ActionResult::Planned,
            at: None,
            ..self.clone()
        }
    }

    pub fn is_planned(&self) -> bool {
        self.result == ActionResult::Planned
    }

    pub fn took_effect(&self) -> bool {
        self.result == ActionResult::Ok
    }

    /// A planned step found in effect by a later attempt: credited to `attempt`, which made it.
    pub fn credited_to(&self, attempt: u32) -> Action {
        Action {
            result: ActionResult::Ok,
            attempt: Some(attempt),
            ..self.clone()
        }
    }
}

/// The long operation a record waits for, and until when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Awaiting {
    pub handle: String,
    /// Epoch seconds; past it the record ends `failed / timed-out`.
    pub deadline: i64,
}

/// A rollback of a succeeded record: who, when, and what was done to restore the pre-state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rollback {
    pub by: String,
    pub at: String,
    pub actions: Vec<Action>,
    /// Findings for this resource and remediation are not acted on until then.
    pub suppressed_until: String,
    /// The hold lifted before `suppressed_until` by an operator (`reflex unhold`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold_lifted: Option<HoldLifted>,
}

/// Who lifted a rollback's hold early, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldLifted {
    /// The operator's STS identity.
    pub by: String,
    /// RFC 3339.
    pub at: String,
}

/// A rollback under way on a succeeded record: who holds it until when (its lease), and the
/// steps it is about to take (its checkpoint).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RollbackPending {
    pub token: String,
    pub by: String,
    pub request_id: String,
    /// Epoch seconds: another rollback may take over after this.
    pub lease_expires_at: i64,
    pub started_at: String,
    /// The undo steps, planned (set at the checkpoint, before the first change).
    #[serde(default)]
    pub actions: Vec<Action>,
    /// RFC 3339: the suppression it will write.
    pub hold_until: String,
}

/// A resource a rollback holds back from its remediation: findings meeting it are
/// `skipped / rolled-back`. An item of the outcome table under its own key; DynamoDB's TTL
/// removes it when it expires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suppression {
    /// `suppress#<remediation>#<resource ARN>`.
    pub record_id: String,
    /// `suppression:<remediation>`: the by-time index lists suppressions apart from records.
    pub remediation: String,
    pub created_at: String,
    /// The resource (not `resource_arn`, so the by-resource index lists records only).
    pub resource: String,
    /// The rollback's record.
    pub rollback_record: String,
    pub by: String,
    /// RFC 3339.
    pub until: String,
    /// Epoch seconds (DynamoDB TTL).
    pub expires_at: i64,
}

impl Suppression {
    pub fn key(remediation: &str, resource_arn: &str) -> String {
        format!("suppress#{remediation}#{resource_arn}")
    }

    pub fn partition(remediation: &str) -> String {
        format!("suppression:{remediation}")
    }
}

/// A transient error that ended one attempt; the record lists every one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptError {
    pub attempt: u32,
    /// The pipeline step: claim, inspect, checkpoint, act, verify, complete.
    pub step: String,
    pub message: String,
    pub at: String,
}

/// The blast-radius budget unit a change used: which window's counter, and its count then.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetUse {
    /// The counter item's window (UTC hour, `2026-11-27T17`).
    pub window: String,
    /// The counter after this reservation (this change is number `count` of the window).
    pub count: u32,
    /// The reservation's token in the counter's set, the record id (what giving it back
    /// removes).
    #[serde(default)]
    pub token: String,
    pub max: u32,
    /// The unit was given back because no change was made.
    #[serde(default)]
    pub given_back: bool,
}

/// Whether Security Hub took the update.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FeedbackResult {
    Updated,
    Failed,
}

impl FeedbackResult {
    pub fn as_str(self) -> &'static str {
        match self {
            FeedbackResult::Updated => "updated",
            FeedbackResult::Failed => "failed",
        }
    }
}

impl PartialEq<&str> for FeedbackResult {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// The Security Hub feedback result (workflow update and note).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Feedback {
    pub result: FeedbackResult,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow_status: Option<String>,
    pub detail: String,
}

/// An earlier outcome of the same record, kept in full when an analyst's request or an expired
/// lease hands the record to a new invocation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PriorOutcome {
    pub status: Status,
    pub reason: Reason,
    pub detail: String,
    #[serde(default)]
    pub attempt: u32,
    pub request_id: String,
    pub updated_at: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<Action>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_state: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_state: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_identity: Option<String>,
}

/// One item of the outcome table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutcomeRecord {
    // identity
    pub record_id: String,
    pub remediation: String,
    pub function_version: String,
    pub request_id: String,
    /// A token unique to the invocation that holds (or last held) the claim: an answer lost on
    /// the way back (the SDK retries and meets its own write) is recognised by it.
    #[serde(default)]
    pub claim_token: String,
    /// sha256 of the raw event, hex.
    pub event_digest: String,
    // finding and resource
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finding: Option<Finding>,
    /// The resource acted on; top level because the by-resource index is keyed on it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<Resource>,
    /// The remediation's resolved target, as it planned with it: approval, rollback and
    /// completion work from this, never from the finding again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Value>,
    /// A long operation the record waits for (`awaiting-completion`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub awaiting: Option<Awaiting>,
    /// The record whose change this one ends (the sweep removing an expired block).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends: Option<String>,
    /// What tells this resource from another of the same name, read when the record was made
    /// (a bucket's creation date): approval and rollback refuse a resource whose identity
    /// differs, whatever its name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_identity: Option<String>,
    // decision
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    pub status: Status,
    pub reason: Reason,
    /// The particulars of the reason, in words.
    pub detail: String,
    // what changed
    #[serde(default)]
    pub actions: Vec<Action>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_state: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_state: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified_at: Option<String>,
    /// Whether the change can be undone from `pre_state`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reversible: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub securityhub: Option<Feedback>,
    /// Who approved the change (the custom action and its time, or the operator's identity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_at: Option<String>,
    /// The rollback of this change, if an operator rolled it back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback: Option<Rollback>,
    /// A rollback under way: its lease and checkpoint (what it is about to do), so a second
    /// rollback waits and one that died is finished by running it again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_pending: Option<RollbackPending>,
    /// The blast-radius budget unit the change used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<BudgetUse>,
    /// Transient errors that ended earlier attempts, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<AttemptError>,
    // bookkeeping
    /// Invocations that worked on this record (claims taken), over its whole life.
    pub attempts: u32,
    /// Attempts of the current run: 1 for a new record, a new press or a re-run after a
    /// configuration stop; one more for each takeover of an unfinished attempt. Only these
    /// count toward `max_attempts` (a press is not a failure). 0 in records written before it
    /// existed: read as `attempts`.
    #[serde(default)]
    pub tries: u32,
    /// Deliveries of this finding generation seen, duplicates included.
    pub deliveries: u32,
    /// Epoch seconds after which a `claimed` or `acting` record may be taken over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_expires_at: Option<i64>,
    pub created_at: String,
    pub updated_at: String,
    /// DynamoDB TTL (epoch seconds), only when the operator sets REFLEX_RECORD_TTL_DAYS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<PriorOutcome>,
    /// What was left out to fit one DynamoDB item (see `bound`): entries dropped from
    /// `history` and `errors`, and parts omitted whole. Absent when nothing was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trimmed: Option<super::bound::Trimmed>,
    /// The outcomes told to the stack's notification topic (`failed`, `pending-approval`…),
    /// each at most once: a DynamoDB string set only `Ledger::claim_notification` adds to.
    #[serde(
        default,
        with = "serde_dynamo::string_set",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub notified: Vec<String>,
}

impl OutcomeRecord {
    /// A fresh record for one finding (or, with `finding` None, for an event that yielded none).
    pub fn new(record_id: String, remediation: &str, meta: &RecordMeta, now: &str) -> Self {
        OutcomeRecord {
            record_id,
            remediation: remediation.to_string(),
            function_version: meta.function_version.clone(),
            request_id: meta.request_id.clone(),
            claim_token: meta.claim_token.clone(),
            event_digest: meta.event_digest.clone(),
            finding: None,
            resource_arn: None,
            resource: None,
            resource_identity: None,
            target: None,
            awaiting: None,
            ends: None,
            mode: None,
            status: Status::Claimed,
            reason: Reason::InProgress,
            detail: String::new(),
            actions: Vec::new(),
            pre_state: None,
            post_state: None,
            verified: None,
            verified_at: None,
            reversible: None,
            securityhub: None,
            approved_by: None,
            approved_at: None,
            rollback: None,
            rollback_pending: None,
            budget: None,
            errors: Vec::new(),
            attempts: 1,
            tries: 1,
            deliveries: 1,
            lease_expires_at: None,
            created_at: now.to_string(),
            updated_at: now.to_string(),
            expires_at: None,
            history: Vec::new(),
            trimmed: None,
            notified: Vec::new(),
        }
    }

    pub fn set_outcome(&mut self, status: Status, reason: Reason, detail: impl Into<String>) {
        self.status = status;
        self.reason = reason;
        self.detail = detail.into();
    }

    pub fn prior(&self) -> PriorOutcome {
        PriorOutcome {
            status: self.status,
            reason: self.reason,
            detail: self.detail.clone(),
            attempt: self.attempts,
            request_id: self.request_id.clone(),
            updated_at: self.updated_at.clone(),
            actions: self.actions.clone(),
            pre_state: self.pre_state.clone(),
            post_state: self.post_state.clone(),
            resource_identity: self.resource_identity.clone(),
        }
    }

    /// The attempts of the current run (see [`OutcomeRecord::tries`]).
    pub fn tries(&self) -> u32 {
        if self.tries == 0 {
            self.attempts
        } else {
            self.tries
        }
    }

    /// Stopped by the operator's configuration, not by anything about the finding: an invalid
    /// or unreadable policy, a disabled remediation, or a dry-run the kill switch or the
    /// first-deploy policy forced. Not final: the next delivery of the same generation (or
    /// `reflex backlog`) runs again under the policy then in force.
    pub fn stopped_by_configuration(&self) -> bool {
        matches!(
            (self.status, self.reason),
            (Status::Failed, Reason::PolicyInvalid)
                | (Status::Skipped, Reason::Disabled)
                | (Status::DryRun, Reason::KillSwitch | Reason::FirstDeploy)
        )
    }

    /// The plan shown for approval that an approval now approves: the newest finished outcome
    /// in `history` (skipping the unfinished attempts of an interrupted approval), if it was
    /// `pending-approval` with a pre-state and planned steps.
    pub fn shown_plan(&self) -> Option<&PriorOutcome> {
        let shown = self
            .history
            .iter()
            .rev()
            .find(|p| !p.status.in_progress())?;
        (shown.status == Status::PendingApproval
            && shown.pre_state.is_some()
            && shown.actions.iter().any(Action::is_planned))
        .then_some(shown)
    }

    /// Whether any recorded step changed something.
    pub fn changed_anything(&self) -> bool {
        self.actions.iter().any(Action::took_effect)
    }
}

/// What every record of one invocation shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordMeta {
    pub function_version: String,
    pub request_id: String,
    pub event_digest: String,
    /// Unique to this invocation (see [`OutcomeRecord::claim_token`]).
    pub claim_token: String,
}
