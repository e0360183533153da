//! The pipeline, the same for every function (design, steps 1–7):
//! detect → evaluate → claim ∥ read → checkpoint ∥ reserve → act → verify → record → report.
//!
//! Each step returns `Result<_, Stop>`: `Stop::Decided` when the record has its outcome (go and
//! store it), `Stop::Transient` when a passing fault should hand the finding back to Lambda's
//! retries, `Stop::Ledger` when the ledger itself failed. The guarantees this gives are in the
//! README's "Guarantees".

use crate::config_rules::RuleIdentity;
use crate::finding::{self, Finding, FindingKind, ParseError};
use crate::ledger::{
    self, Action, AttemptError, BudgetUse, Claim, LedgerError, OutcomeRecord, PriorOutcome,
    RecordMeta, Rollback, RollbackPending, Suppression, Takeover,
};
use crate::operator::{self, OperatorError, Order, Proof};
use crate::policy::{Decision, Mode, Policy, PolicyError, Verdict};
use crate::remediation::{Remediation, RemediationError, Tags, Target, Unresolved};
use crate::setup::Setup;
use crate::status::{Reason, Status};
use chrono::{DateTime, SecondsFormat, Utc};
use lambda_runtime::LambdaEvent;
use serde::Serialize;
use serde_json::Value;
use tracing::{error, info, warn};

/// IAM actions the pipeline itself needs in every function: the ledger (no delete: functions
/// write outcomes but cannot remove them), Security Hub feedback, its identity, the policy, and
/// the on-failure destination Lambda sends events to after its retries.
pub const PIPELINE_IAM_ACTIONS: &[&str] = &[
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "config:DescribeConfigRules",
    "securityhub:BatchUpdateFindings",
    "sqs:SendMessage",
    "ssm:GetParameter",
    "sts:GetCallerIdentity",
];

/// What one invocation says about each finding it handled (the Lambda response).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Handled {
    pub record_id: String,
    pub status: Status,
    pub reason: Reason,
    pub detail: String,
    /// True when this delivery found the record already finished and did nothing.
    pub duplicate: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
}

impl Handled {
    fn of(record: &OutcomeRecord, duplicate: bool) -> Handled {
        Handled {
            record_id: record.record_id.clone(),
            status: record.status,
            reason: record.reason,
            detail: record.detail.clone(),
            duplicate,
            resource: record.resource_arn.clone(),
            mode: record.mode,
        }
    }
}

/// Why an invocation must be retried by Lambda. Every other outcome, bad input included, is a
/// record and an `Ok`.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The ledger could not be read or written: nothing can be decided without it.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// Another invocation holds a live lease on the record: retry later, it may have crashed.
    #[error("record {record_id} is held by another invocation until {lease_expires_at} (epoch s); retry later")]
    Busy {
        record_id: String,
        lease_expires_at: i64,
    },
    /// A passing fault; the record was handed back for the next delivery.
    #[error("record {record_id}: transient error at {step}: {message}; released for a retry")]
    Transient {
        record_id: String,
        step: &'static str,
        message: String,
    },
    /// The record ended `failed / retries-exhausted`; an error so the event reaches the
    /// on-failure destination and the error alarm.
    #[error("record {record_id}: gave up after {attempts} attempts (failed / retries-exhausted)")]
    RetriesExhausted { record_id: String, attempts: u32 },
    /// The policy cannot be read and the last good one is too old to use: fail closed.
    #[error(transparent)]
    PolicyUnavailable(PolicyError),
    /// An operator's command that cannot be carried out as asked; nothing was changed.
    #[error("{0}")]
    Refused(String),
}

fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn now() -> String {
    timestamp(Utc::now())
}

/// An operator's command to a function, sent as `{"reflex": {"command": "approve", …}}` (a
/// direct invocation, which needs `lambda:InvokeFunction` on the function). The operator is
/// never named by the payload: the `proof` (a signed `sts:GetCallerIdentity`, see
/// [`crate::operator`]) lets the function ask STS who signed it, for this very command.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(tag = "command", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Command {
    /// Approve a record held for approval ([`approve`]).
    Approve {
        record_id: String,
        #[serde(default)]
        proof: Option<Proof>,
    },
    /// Roll a succeeded record back ([`rollback`]), holding the resource back for
    /// `hold_for_hours` (default 168, a week; at most 2160, 90 days).
    Rollback {
        record_id: String,
        #[serde(default)]
        dry_run: bool,
        #[serde(default)]
        hold_for_hours: Option<u32>,
        #[serde(default)]
        proof: Option<Proof>,
    },
}

impl Command {
    fn record_id(&self) -> &str {
        match self {
            Command::Approve { record_id, .. } | Command::Rollback { record_id, .. } => record_id,
        }
    }

    fn order(&self) -> Order {
        match self {
            Command::Approve { .. } => Order::Approve,
            Command::Rollback {
                dry_run,
                hold_for_hours,
                ..
            } => Order::Rollback {
                dry_run: *dry_run,
                hold_for_hours: hold_for_hours.unwrap_or(operator::DEFAULT_HOLD_HOURS),
            },
        }
    }

    fn proof(&self) -> Option<&Proof> {
        match self {
            Command::Approve { proof, .. } | Command::Rollback { proof, .. } => proof.as_ref(),
        }
    }
}

/// How an invocation came in: the three kinds one function serves.
#[derive(Debug, Clone, PartialEq)]
pub enum Invocation {
    /// A finding event (GuardDuty, Security Hub, Config) or anything else from EventBridge.
    Event,
    /// An EventBridge schedule: the remediation's `sweep`.
    Scheduled,
    Command(Command),
}

impl Invocation {
    /// Tell the kinds apart by their envelopes. A `reflex` key that is not a valid command is
    /// refused with the reason, never taken for an event.
    pub fn of(payload: &Value) -> Result<Invocation, PipelineError> {
        if let Some(command) = payload.get("reflex") {
            return serde_json::from_value(command.clone())
                .map(Invocation::Command)
                .map_err(|e| PipelineError::Refused(format!("not a Reflex command: {e}")));
        }
        let scheduled = payload.get("source").and_then(Value::as_str) == Some("aws.events")
            && payload.get("detail-type").and_then(Value::as_str) == Some("Scheduled Event");
        Ok(if scheduled {
            Invocation::Scheduled
        } else {
            Invocation::Event
        })
    }
}

/// The Lambda entry point: `service_fn(|e| handle(&setup, &remediation, e))`. One way in for
/// finding events, schedules and operator commands.
pub async fn handle<R: Remediation>(
    setup: &Setup,
    remediation: &R,
    event: LambdaEvent<Value>,
) -> Result<Vec<Handled>, PipelineError> {
    let invocation = Invocation::of(&event.payload).inspect_err(|e| {
        warn!(error = %e, "command refused");
    })?;
    match invocation {
        Invocation::Event => {}
        Invocation::Scheduled => {
            let changed = remediation
                .sweep()
                .await
                .map_err(|e| PipelineError::Transient {
                    record_id: format!("{}#sweep", remediation.spec().name),
                    step: "sweep",
                    message: e.to_string(),
                })?;
            info!(remediation = remediation.spec().name, changed, "sweep");
            return Ok(Vec::new());
        }
        Invocation::Command(command) => {
            return Box::pin(command_run(setup, remediation, &command))
                .await
                .inspect_err(|e| {
                    let kind = command.order().kind();
                    let record_id = command.record_id();
                    if let PipelineError::Refused(_) = e {
                        warn!(command = kind, record_id, error = %e, "command refused");
                    } else {
                        warn!(command = kind, record_id, error = %e, "command failed");
                    }
                })
                .map(|o| vec![o]);
        }
    }
    // The event as it arrived, re-serialised: the digest of its content, stable across deliveries.
    let raw = serde_json::to_vec(&event.payload).unwrap_or_default();
    run(
        setup,
        remediation,
        &raw,
        finding::parse_event(&event.payload),
        &event.context.request_id,
    )
    .await
}

/// An operator's command, carried out as the operator STS names for its proof, or refused
/// with the reason before anything is written.
async fn command_run<R: Remediation>(
    setup: &Setup,
    remediation: &R,
    command: &Command,
) -> Result<Handled, PipelineError> {
    let order = command.order();
    let record_id = command.record_id();
    if let Order::Rollback { hold_for_hours, .. } = order {
        if hold_for_hours > operator::MAX_HOLD_HOURS {
            return Err(PipelineError::Refused(format!(
                "hold_for_hours {hold_for_hours} is over {} (90 days); nothing was changed",
                operator::MAX_HOLD_HOURS
            )));
        }
    }
    let sts_url = operator::sts_url(&setup.sdk).map_err(PipelineError::Refused)?;
    let sts_host = operator::host_of(&sts_url).ok_or_else(|| {
        PipelineError::Refused(format!("the STS endpoint {sts_url:?} has no host"))
    })?;
    let deployment = operator::sts::Deployment {
        account: &setup.account_id,
        table: setup.ledger.table(),
        sts_host: &sts_host,
    };
    let operator = operator::sts::authenticate(
        &aws_sdk_sts::Client::new(&setup.sdk),
        &setup.policy,
        deployment,
        order,
        record_id,
        command.proof(),
    )
    .await
    .map_err(|e| match e {
        OperatorError::Unavailable(message) => PipelineError::Transient {
            record_id: record_id.into(),
            step: "operator",
            message,
        },
        e => PipelineError::Refused(format!("command refused: {e}; nothing was changed")),
    })?;
    info!(command = order.kind(), record_id, operator = %operator.arn, "command accepted");
    match order {
        Order::Approve => {
            // The approval was given when the operator signed it: a plan shown after that is
            // not the one approved.
            let signed = command
                .proof()
                .and_then(|p| p.header("x-amz-date"))
                .and_then(|d| chrono::NaiveDateTime::parse_from_str(d, "%Y%m%dT%H%M%SZ").ok())
                .map(|t| t.and_utc())
                .ok_or_else(|| PipelineError::Refused("the proof has no x-amz-date".into()))?;
            approve_as_of(setup, remediation, record_id, &operator.arn, signed).await
        }
        Order::Rollback {
            dry_run,
            hold_for_hours,
        } => {
            let until = Utc::now() + chrono::Duration::hours(i64::from(hold_for_hours));
            rollback(setup, remediation, record_id, &operator.arn, dry_run, until).await
        }
    }
}

/// The same pipeline on raw bytes (`reflex replay`), where the input may not even be JSON.
pub async fn handle_bytes<R: Remediation>(
    setup: &Setup,
    remediation: &R,
    raw: &[u8],
    request_id: &str,
) -> Result<Vec<Handled>, PipelineError> {
    run(
        setup,
        remediation,
        raw,
        finding::parse_bytes(raw),
        request_id,
    )
    .await
}

/// The remediation's `parameters` in the policy now in force, checked by its own type: at cold
/// start, so a bad key is in the log at once (every invocation also records it as
/// `policy-invalid`, naming the key, and changes nothing).
pub async fn check_parameters<R: Remediation>(
    setup: &Setup,
    remediation: &R,
) -> Result<(), String> {
    let policy = setup.policy.current().await.map_err(|e| e.to_string())?;
    parameters_in::<R::Params>(&policy, remediation.spec().name).map(|_| ())
}

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
    let run = Run::new(
        setup,
        remediation,
        &format!("reflex-approve-{request}"),
        digest.as_bytes(),
    );
    Box::pin(run.finding(finding)).await
}

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
    // Boxed: its state is large, and callers' stacks need not hold it.
    Box::pin(roll_back(
        setup,
        remediation,
        record_id,
        by,
        dry_run,
        hold_until,
    ))
    .await
}

async fn roll_back<R: Remediation>(
    setup: &Setup,
    remediation: &R,
    record_id: &str,
    by: &str,
    dry_run: bool,
    hold_until: DateTime<Utc>,
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
    if read.status != Status::Succeeded {
        return attempt
            .refuse(format!(
                "it is {} ({}): only a succeeded fix can be rolled back",
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
    let target = match remediation.resolve(finding, &params).await {
        Ok(t) => t,
        Err(Unresolved::Aws(e)) if e.is_transient() => {
            return Err(attempt.transient("resolve", &e));
        }
        Err(e) => {
            return attempt
                .refuse(format!("cannot find its resource again: {e}"))
                .await
        }
    };
    let pre: R::State = match serde_json::from_value(pre_json.clone()) {
        Ok(p) => p,
        Err(e) => {
            return attempt
                .refuse(format!("its pre-state cannot be read: {e}"))
                .await
        }
    };
    let applied: Result<Vec<R::Step>, _> = read
        .actions
        .iter()
        .filter(|a| a.took_effect())
        .map(|a| serde_json::from_value(a.step.clone().unwrap_or(Value::Null)))
        .collect();
    let applied = match applied {
        Ok(a) => a,
        Err(e) => {
            return attempt
                .refuse(format!("its steps cannot be read: {e}"))
                .await
        }
    };
    // Independent reads, in one round.
    let (live, identity) =
        tokio::join!(remediation.inspect(&target), remediation.identity(&target));
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
    // The fix was made to one resource; another that has since taken its name is not it.
    if identity.is_some() && identity != read.resource_identity {
        return attempt
            .refuse(format!(
                "{} is not the resource the fix changed: its identity is {} now, the record holds {} \
                 (a record made before identities were kept holds none; and AWS may change a bucket's \
                 creation date with some changes to the bucket, such as its policy: if this is the \
                 same resource, restore the recorded pre-state by hand)",
                target.arn,
                identity.as_deref().unwrap_or("unknown"),
                read.resource_identity.as_deref().unwrap_or("none")
            ))
            .await;
    }
    let live_json = state_json(&live);
    // An earlier rollback that stopped after restoring the pre-state: finish it.
    let interrupted = read.rollback_pending.is_some() && live_json == *pre_json;
    if live_json != *post_json && !interrupted {
        return attempt
            .refuse(format!(
                "the resource changed since the fix (recorded post-state {post_json}, now {live_json}); a rollback would overwrite someone else's change"
            ))
            .await;
    }
    let steps = remediation.undo(&target, &pre, &applied);
    let planned = planned(remediation, &target, &steps);
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
        let (done, result) = apply_steps(remediation, &target, &steps, &planned).await;
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
    // Verified like a fix: re-read over a few seconds until the pre-state shows.
    let mut restored = remediation.inspect(&target).await.map(|s| state_json(&s));
    for delay in &setup.verify_delays {
        if restored.as_ref() == Ok(pre_json) {
            break;
        }
        tokio::time::sleep(*delay).await;
        restored = remediation.inspect(&target).await.map(|s| state_json(&s));
    }
    if restored.as_ref() != Ok(pre_json) {
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
            record_id: Suppression::key(spec.name, &target.arn),
            remediation: Suppression::partition(spec.name),
            created_at: now_text.clone(),
            resource: target.arn.clone(),
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
    });
    record.set_outcome(
        Status::RolledBack,
        Reason::Undone,
        format!(
            "rolled back by {by}: the pre-state restored and verified by a fresh read; findings for this resource are held until {until}"
        ),
    );
    record.updated_at = now_text;
    record.request_id = attempt.request_id.clone();
    setup
        .ledger
        .mark_rolled_back(&record, &read, &pending.token)
        .await?;
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

async fn run<R: Remediation>(
    setup: &Setup,
    remediation: &R,
    raw: &[u8],
    parsed: Result<Vec<Finding>, ParseError>,
    request_id: &str,
) -> Result<Vec<Handled>, PipelineError> {
    let run = Run::new(setup, remediation, request_id, raw);
    match parsed {
        Err(e) => Ok(vec![run.reject(&e).await?]),
        Ok(findings) => {
            // Every finding gets its turn; the first error is reported after all of them, so a
            // retry finds the others finished (duplicates) and redoes only what failed.
            let mut outcomes = Vec::with_capacity(findings.len());
            let mut first_error = None;
            for f in findings {
                // Boxed: the pipeline's state is large, and callers' stacks need not hold it.
                match Box::pin(run.finding(f)).await {
                    Ok(o) => outcomes.push(o),
                    Err(e) => {
                        warn!(error = %e, "finding not finished; Lambda will retry");
                        first_error.get_or_insert(e);
                    }
                }
            }
            match first_error {
                Some(e) => Err(e),
                None => Ok(outcomes),
            }
        }
    }
}

/// Why a step ends the remediation early.
enum Stop {
    /// The record has its outcome: store it.
    Decided,
    /// A passing fault at `step`: hand the record back for the next delivery.
    Transient { step: &'static str, message: String },
    /// The ledger failed, or another invocation took the record over.
    Ledger(LedgerError),
}

type Step<T = ()> = Result<T, Stop>;

/// One invocation's context.
struct Run<'a, R> {
    setup: &'a Setup,
    remediation: &'a R,
    meta: RecordMeta,
}

/// The record being worked on, and what it is worked on with.
struct Work<P> {
    record: OutcomeRecord,
    target: Target,
    decision: Decision,
    params: P,
    /// Steps earlier attempts made (kept, never repeated).
    kept: Vec<Action>,
    /// This attempt's token for a budget unit: only the attempt that reserved a unit gives it
    /// back.
    budget_token: String,
    /// A change was tried and its outcome is unknown (a transient error while acting): its
    /// budget unit is kept, whatever happens next.
    outcome_unknown: bool,
}

impl<P> Work<P> {
    fn decide(&mut self, status: Status, reason: Reason, detail: impl Into<String>) -> Stop {
        self.record.set_outcome(status, reason, detail);
        Stop::Decided
    }

    /// The record holds a unit of the budget (reserved by this or an earlier attempt).
    fn holds_budget(&self) -> bool {
        self.record.budget.as_ref().is_some_and(|b| !b.given_back)
    }

    /// This is an approval ("Reflex: approve", `reflex approve`) under a policy that lets it
    /// act.
    fn approving(&self) -> bool {
        self.decision.mode == Mode::Enforce
            && self.record.finding.as_ref().and_then(|f| f.intent) == Some(finding::Intent::Approve)
    }
}

impl<'a, R: Remediation> Run<'a, R> {
    /// One invocation: `digest_of` is what its event digest is taken of (the raw event); every
    /// invocation gets its own claim token.
    fn new(setup: &'a Setup, remediation: &'a R, request_id: &str, digest_of: &[u8]) -> Self {
        Run {
            setup,
            remediation,
            meta: RecordMeta {
                function_version: setup.function_version.clone(),
                request_id: request_id.to_string(),
                event_digest: ledger::digest_hex(digest_of),
                claim_token: uuid::Uuid::new_v4().to_string(),
            },
        }
    }

    fn name(&self) -> &'static str {
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
    async fn reject(&self, e: &ParseError) -> Result<Handled, PipelineError> {
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
    async fn finish_unclaimed(
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
        let outcome = match claim {
            Claim::Acquired(r) => Handled::of(&r, false),
            Claim::Held(existing) => self.held(&existing)?,
        };
        log_decision(self.name(), &outcome);
        Ok(outcome)
    }

    /// Another invocation's record: finished (this delivery is a duplicate), or still held
    /// under a live lease (retry later: its holder may have crashed).
    fn held(&self, existing: &OutcomeRecord) -> Result<Handled, PipelineError> {
        if existing.status.in_progress() {
            return Err(PipelineError::Busy {
                record_id: existing.record_id.clone(),
                lease_expires_at: existing.lease_expires_at.unwrap_or_default(),
            });
        }
        Ok(Handled::of(existing, true))
    }

    async fn finding(&self, finding: Finding) -> Result<Handled, PipelineError> {
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
        let (target, decision, params) = match self.evaluate(&finding, &policy, &mut record).await {
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
        if finding.intent == Some(finding::Intent::Approve) && decision.mode == Mode::DryRun {
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

        // Claim, and read the live resource in the same round: reads change nothing, and a
        // duplicate that loses the claim only wasted them.
        let now = Utc::now().timestamp();
        record.lease_expires_at = Some(now + self.setup.lease_seconds);
        let r = self.remediation;
        let reads = async {
            tokio::join!(
                r.tags(&target),
                r.inspect(&target),
                r.identity(&target),
                self.setup.ledger.suppression(spec.name, &target.arn)
            )
        };
        let (claim, (tags, state, identity, suppression)) =
            tokio::join!(self.setup.ledger.claim(record, now, takeover), reads);
        let record = match claim? {
            Claim::Held(existing) => {
                let outcome = self.held(&existing)?;
                log_decision(spec.name, &outcome);
                return Ok(outcome);
            }
            Claim::Acquired(r) => *r,
        };
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
            kept,
            budget_token,
            outcome_unknown: false,
        };
        let held_back = suppression.map(|s| s.filter(|s| s.expires_at > now));
        match self
            .remediate(&mut work, tags, state, identity, held_back)
            .await
        {
            Ok(()) | Err(Stop::Decided) => {}
            Err(Stop::Transient { step, message }) => {
                return self.release(work, step, message).await
            }
            Err(Stop::Ledger(e)) => {
                self.give_back(&mut work).await;
                return Err(e.into());
            }
        }
        self.finish(work, &finding).await
    }

    /// A Config finding names its rule by the name its owner chose. Resolve the rule through
    /// `config:DescribeConfigRules`: an AWS-managed rule becomes its identifier, whatever its
    /// name; a custom rule is `untrusted` unless the policy names its ARN (with the identifier
    /// it stands for). Finding-level checks come first, so an inactive or foreign finding
    /// costs no AWS read.
    async fn identify_config_rule(
        &self,
        finding: &mut Finding,
        policy: &Result<Policy, PolicyError>,
        record: &mut OutcomeRecord,
    ) -> Step {
        let FindingKind::ConfigRule(name) = &finding.kind else {
            return Ok(());
        };
        if finding.details.config_rule.is_some() {
            // Resolved already: a stored finding (an approval of a record), whose kind is the
            // rule's identity, not a name to look up again.
            return Ok(());
        }
        let name = name.clone();
        let Ok(policy) = policy else {
            return Ok(()); // `evaluate` records the invalid policy.
        };
        // Only what needs no rule identity: an override by the rule's identifier (enabled, a
        // threshold) can be judged only once the rule is known, in `evaluate`.
        if let Some(Verdict::Skip { reason, detail }) =
            policy.screen_source(finding, &self.setup.account_id)
        {
            record.set_outcome(Status::Skipped, reason, detail);
            return Err(Stop::Decided);
        }
        let untrusted = |record: &mut OutcomeRecord, detail: String| {
            record.set_outcome(Status::Skipped, Reason::Untrusted, detail);
            Err(Stop::Decided)
        };
        let identifier = match self.setup.config_rules.identify(&name).await {
            Ok(Some(RuleIdentity::Managed { identifier, .. })) => identifier,
            Ok(Some(RuleIdentity::Custom { owner, arn })) => {
                match policy.trusted_config_rules.get(&arn) {
                    Some(identifier) => identifier.clone(),
                    None => {
                        return untrusted(
                            record,
                            format!(
                                "Config rule {name} ({arn}) is a {owner} rule, not AWS-managed, whatever its name; name its ARN under trusted_config_rules to act on it"
                            ),
                        )
                    }
                }
            }
            Ok(None) => {
                return untrusted(
                    record,
                    format!("no Config rule named {name} in this account and region"),
                )
            }
            Err(e) if e.is_transient() => {
                return Err(Stop::Transient {
                    step: "identify",
                    message: e.to_string(),
                })
            }
            Err(e) => {
                record.set_outcome(Status::Failed, Reason::InspectError, e.to_string());
                return Err(Stop::Decided);
            }
        };
        finding.details.config_rule = Some(name);
        finding.kind = FindingKind::ConfigRule(identifier);
        record.finding = Some(finding.clone());
        Ok(())
    }

    /// Detect and evaluate: the finding-level checks first (no AWS read for a finding that is
    /// inactive, untrusted or unwanted), then the remediation's parameters, its target
    /// (`resolve`, which may read AWS), and the checks on the target.
    async fn evaluate(
        &self,
        finding: &Finding,
        policy: &Result<Policy, PolicyError>,
        record: &mut OutcomeRecord,
    ) -> Step<(Target, Decision, R::Params)> {
        let spec = self.remediation.spec();
        if !spec.triggers.iter().any(|t| t.matches(&finding.kind)) {
            let detail = match &finding.kind {
                FindingKind::Unrecognised(what) => format!("{what}: not handled by Reflex"),
                kind => format!(
                    "{} {:?} is not handled by {}",
                    finding.source,
                    kind.name(),
                    spec.name
                ),
            };
            record.set_outcome(Status::Rejected, Reason::NotHandled, detail);
            return Err(Stop::Decided);
        }
        let policy = match policy {
            Ok(p) => p,
            Err(e) => {
                record.set_outcome(Status::Failed, Reason::PolicyInvalid, e.to_string());
                return Err(Stop::Decided);
            }
        };
        if let Some(Verdict::Skip { reason, detail }) =
            policy.screen(spec.name, finding, &self.setup.account_id)
        {
            record.set_outcome(Status::Skipped, reason, detail);
            return Err(Stop::Decided);
        }
        let params = match parameters::<R::Params>(spec.name, policy.parameters(spec.name)) {
            Ok(p) => p,
            Err(e) => {
                record.set_outcome(Status::Failed, Reason::PolicyInvalid, e);
                return Err(Stop::Decided);
            }
        };
        let target = match self.remediation.resolve(finding, &params).await {
            Ok(t) => t,
            Err(Unresolved::NoTarget(why)) => {
                record.set_outcome(Status::Rejected, Reason::NoTarget, why);
                return Err(Stop::Decided);
            }
            Err(Unresolved::Skip(reason, why)) => {
                record.set_outcome(Status::Skipped, reason, why);
                return Err(Stop::Decided);
            }
            Err(Unresolved::Aws(e)) => {
                return Err(match e {
                    e if e.is_transient() => Stop::Transient {
                        step: "resolve",
                        message: e.to_string(),
                    },
                    RemediationError::Gone(why) => {
                        record.set_outcome(Status::Skipped, Reason::ResourceGone, why);
                        Stop::Decided
                    }
                    e => {
                        record.set_outcome(Status::Failed, Reason::InspectError, e.to_string());
                        Stop::Decided
                    }
                })
            }
        };
        record.resource_arn = Some(target.arn.clone());
        record.resource = finding
            .resources
            .iter()
            .find(|r| r.id == target.id)
            .cloned();
        match policy.evaluate(
            spec.name,
            spec.risk,
            finding,
            &target.arn,
            &self.setup.account_id,
        ) {
            Verdict::Skip { reason, detail } => {
                record.set_outcome(Status::Skipped, reason, detail);
                Err(Stop::Decided)
            }
            Verdict::Act(d) => Ok((target, d, params)),
        }
    }

    /// Steps 4–6 on a claimed record: inspect, then (by mode) act and verify.
    async fn remediate(
        &self,
        w: &mut Work<R::Params>,
        tags: Result<Tags, RemediationError>,
        state: Result<R::State, RemediationError>,
        identity: Result<Option<String>, RemediationError>,
        held_back: Result<Option<Suppression>, LedgerError>,
    ) -> Step {
        let tags = read(w, tags)?;
        let state = read(w, state)?;
        let identity = read(w, identity)?;
        // An operator rolled this fix back: its echo (the finding again) must not undo that.
        if let Some(s) = held_back.map_err(|e| ledger_stop("suppression", e))? {
            let detail = format!(
                "{} rolled this fix back (record {}); findings for this resource are held until {}",
                s.by, s.rollback_record, s.until
            );
            return Err(w.decide(Status::Skipped, Reason::RolledBack, detail));
        }
        if let Some(why) = w.decision.exempt_by_tags(&tags) {
            return Err(w.decide(Status::Skipped, Reason::Exempt, why));
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
        if w.record.resource_identity.is_none() {
            w.record.resource_identity = identity;
        }
        if w.record.status == Status::Acting {
            return self.resume(w, state, shown.is_some()).await;
        }
        if let Some(shown) = shown {
            return self.carry_out_approved(w, state, shown).await;
        }
        w.record.pre_state = Some(state_json(&state));
        let plan = self.remediation.plan(&w.target, &state, &w.params);
        if plan.compliant() {
            return Err(w.decide(
                Status::Skipped,
                Reason::AlreadyCompliant,
                compliant_detail("the live resource is already compliant", &plan.untouched),
            ));
        }
        give_up_if_exhausted(w)?;
        self.protected(w, &plan.steps)?;
        let planned = self.planned(&w.target, &plan.steps);
        if w.decision.approval {
            // An approval with no plan shown before: nothing was approved yet. This plan is
            // shown now, and waits for its own approval.
            w.decision.mode = Mode::Approve;
        }
        hold_for_mode(w, &planned)?;
        self.change(w, plan.steps, planned).await
    }

    /// The resource is not as it was when the plan was shown: the approval is not applied, and
    /// the plan for what is there now waits for its own approval (or there is nothing to do).
    fn ask_again(&self, w: &mut Work<R::Params>, state: &R::State, why: &str) -> Step {
        // A stored pre-state is never overwritten once a change took effect: undo needs it.
        if w.kept.is_empty() {
            w.record.pre_state = Some(state_json(state));
        }
        let plan = self.remediation.plan(&w.target, state, &w.params);
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
            .chain(self.planned(&w.target, &plan.steps))
            .collect();
        w.record.mode = Some(Mode::Approve);
        Err(w.decide(Status::PendingApproval, Reason::AwaitingApproval, why))
    }

    /// An approval of the plan an analyst was shown: carried out exactly, if the resource is
    /// still as it was then; otherwise the new plan waits for a new approval.
    async fn carry_out_approved(
        &self,
        w: &mut Work<R::Params>,
        state: R::State,
        shown: PriorOutcome,
    ) -> Step {
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
        give_up_if_exhausted(w)?;
        self.protected(w, &steps)?;
        self.change(w, steps, planned).await
    }

    /// A crashed attempt's `acting` record, taken over: credit what took effect, carry out
    /// only what is still missing, never repeat a change. An interrupted approval carries out
    /// only the approved steps, and only on the resource as it was shown.
    async fn resume(&self, w: &mut Work<R::Params>, state: R::State, approval: bool) -> Step {
        let earlier = w.record.attempts.saturating_sub(1);
        let plan = self.remediation.plan(&w.target, &state, &w.params);
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
            w.record.post_state = Some(state_json(&state));
            w.record.verified = Some(true);
            w.record.verified_at = Some(now());
            let detail = format!(
                "attempt {earlier} stopped after its checkpoint; on takeover a fresh read shows \
                 its planned change in effect: credited to attempt {earlier}, verified"
            );
            return Err(w.decide(Status::Succeeded, Reason::Remediated, detail));
        }
        give_up_if_exhausted(w)?;
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
            return self.change(w, steps, missing).await;
        }
        self.protected(w, &plan.steps)?;
        let planned = self.planned(&w.target, &plan.steps);
        hold_for_mode(w, &planned)?;
        self.change(w, plan.steps, planned).await
    }

    /// Every principal the steps would change must be unprotected (resolved ARNs, paths
    /// included).
    fn protected(&self, w: &mut Work<R::Params>, steps: &[R::Step]) -> Step {
        for principal in self.remediation.principals(&w.target, steps) {
            if let Some(pattern) = w.decision.protects(&principal) {
                let detail = format!(
                    "the fix would change {principal}, which matches exemptions.protected_principals {pattern:?}"
                );
                return Err(w.decide(Status::Skipped, Reason::Protected, detail));
            }
        }
        Ok(())
    }

    fn planned(&self, target: &Target, steps: &[R::Step]) -> Vec<Action> {
        planned(self.remediation, target, steps)
    }

    /// Checkpoint and budget reservation (one round), the change, and its verification.
    async fn change(
        &self,
        w: &mut Work<R::Params>,
        steps: Vec<R::Step>,
        planned: Vec<Action>,
    ) -> Step {
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
        self.checkpoint(w, &planned).await?;
        self.act(w, &steps, planned).await?;
        self.verify(w).await
    }

    /// The record goes to `acting` with its plan and pre-state, and the change takes a unit
    /// of the blast-radius budget, concurrently. Either failing means no change.
    async fn checkpoint(&self, w: &mut Work<R::Params>, plan: &[Action]) -> Step {
        let ledger = &self.setup.ledger;
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
        let max = w.decision.max_changes_per_hour;
        let expires = now.timestamp() + 3600 + ledger::COUNTER_TTL_SECONDS;
        // A unit the record names (an earlier attempt's, for a change whose outcome it could
        // not know) is asked for again under its own token and window: the counter answers
        // from its token set whether it was really reserved (then it is this unit, not a
        // second one) or not (then it is reserved now, or the budget is spent). The record's
        // word alone never stands in for the counter's.
        let held = w.record.budget.clone().filter(|b| !b.given_back);
        let (window, token) = match &held {
            Some(b) => (b.window.clone(), b.token.clone()),
            // This attempt's token, written with the checkpoint in the same round as the
            // reservation; only this attempt ever gives it back.
            None => (ledger::window(now), w.budget_token.clone()),
        };
        let counter = ledger::counter_key(self.name(), &self.setup.account_id, &window);
        if held.is_none() {
            w.record.budget = Some(BudgetUse {
                window: window.clone(),
                count: 0,
                token: token.clone(),
                max,
                given_back: false,
            });
        }
        let reserve = ledger.reserve_change(&counter, &token, max, expires);
        let (stored, reserved) = tokio::join!(ledger.checkpoint(&w.record), reserve);
        match (&reserved, w.record.budget.as_mut()) {
            (Ok(Some(count)), Some(budget)) => budget.count = *count,
            // Spent: no unit was taken, so the record holds none.
            (Ok(None), _) => w.record.budget = None,
            _ => {}
        }
        if let Err(e) = stored {
            self.give_back(w).await;
            return Err(ledger_stop("checkpoint", e));
        }
        match reserved {
            Ok(Some(_)) => Ok(()),
            Ok(None) => {
                let detail = format!(
                    "the budget of {max} changes per hour is spent (window {window}); nothing was changed"
                );
                if w.approving() {
                    // The approval is not used up: the plan stays shown, to approve again once
                    // the budget allows.
                    w.record.status = Status::PendingApproval;
                    w.record.mode = Some(Mode::Approve);
                    w.record.approved_by = None;
                    w.record.approved_at = None;
                    // Its actions are the checkpoint's plan, still `planned`: nothing was made.
                    return Err(w.decide(
                        Status::PendingApproval,
                        Reason::AwaitingApproval,
                        format!("approved, but {detail}; approve again once the budget allows"),
                    ));
                }
                Err(w.decide(Status::Skipped, Reason::RateLimited, detail))
            }
            Err(e) => Err(ledger_stop("budget", e)),
        }
    }

    /// Carry out the plan, step by step, recording each with its result.
    async fn act(&self, w: &mut Work<R::Params>, steps: &[R::Step], planned: Vec<Action>) -> Step {
        // Only under a live lease: a process that stalled since its checkpoint (a laptop that
        // slept through an approval, say) may have been taken over, and must not act too.
        if lease_ran_out(w.record.lease_expires_at, self.setup.lease_seconds) {
            return Err(Stop::Transient {
                step: "act",
                message: "the lease ran out before the change; nothing was changed".into(),
            });
        }
        let (done, result) = apply_steps(self.remediation, &w.target, steps, &planned).await;
        if let Err(e) = result {
            let rest = planned.iter().skip(done.len());
            w.record.actions = w.kept.iter().chain(&done).chain(rest).cloned().collect();
            return Err(match e {
                e if e.is_transient() => Stop::Transient {
                    step: "act",
                    message: e.to_string(),
                },
                RemediationError::Gone(why) => w.decide(Status::Skipped, Reason::ResourceGone, why),
                e => w.decide(Status::Failed, Reason::ActionError, e.to_string()),
            });
        }
        w.record.actions = w.kept.iter().chain(&done).cloned().collect();
        Ok(())
    }

    /// Read again until the fix shows, within a few seconds (eventual consistency), before
    /// concluding `verification-failed`.
    async fn verify(&self, w: &mut Work<R::Params>) -> Step {
        let r = self.remediation;
        let mut last = Err(RemediationError::Invalid("not verified".into()));
        for delay in std::iter::once(None).chain(self.setup.verify_delays.iter().map(Some)) {
            if let Some(d) = delay {
                tokio::time::sleep(*d).await;
            }
            // The identity is read again in the same round: what a rollback must find is the
            // resource as the fix left it (AWS may change a bucket's creation date with some
            // changes to the bucket).
            let (state, identity) = tokio::join!(r.inspect(&w.target), r.identity(&w.target));
            last = state.map(|state| (r.plan(&w.target, &state, &w.params), state));
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
            Err(e) if e.is_transient() => Err(Stop::Transient {
                step: "verify",
                message: e.to_string(),
            }),
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

    /// A reservation that made no change is given back (best effort: a unit kept by mistake
    /// only makes the budget stricter).
    async fn give_back<P>(&self, w: &mut Work<P>) {
        // Never a unit whose change may have been made, nor one another attempt reserved.
        let own = w
            .record
            .budget
            .as_ref()
            .is_some_and(|b| b.token == w.budget_token);
        if w.record.changed_anything() || w.outcome_unknown || !own || !w.holds_budget() {
            return;
        }
        let Some(budget) = w.record.budget.as_mut() else {
            return;
        };
        let counter = ledger::counter_key(self.name(), &self.setup.account_id, &budget.window);
        match self
            .setup
            .ledger
            .give_back_change(&counter, &budget.token)
            .await
        {
            Ok(()) => budget.given_back = true,
            Err(e) => warn!(error = %e, counter, "budget unit not given back"),
        }
    }

    /// A transient error: hand the record back (lease ends now, error listed) so the next
    /// delivery takes over, or give up after `max_attempts`.
    async fn release(
        &self,
        mut w: Work<R::Params>,
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
        self.give_back(&mut w).await;
        if w.record.tries() >= w.decision.max_attempts {
            let _ = give_up(&mut w);
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
    async fn finish<P>(&self, mut w: Work<P>, finding: &Finding) -> Result<Handled, PipelineError> {
        if !w.record.status.in_progress() {
            self.give_back(&mut w).await;
        }
        let mut record = w.record;
        record.lease_expires_at = None;
        record.updated_at = now();
        if let Err(e) = self.setup.ledger.complete(&record).await {
            error!(record_id = %record.record_id, error = %e, "outcome not stored");
            return Err(e.into());
        }
        let outcome = Handled::of(&record, false);
        log_decision(self.name(), &outcome);
        if finding.source.in_security_hub() {
            self.report(&record, finding).await;
        }
        Ok(outcome)
    }

    /// Security Hub feedback, after the outcome is stored; its result is a follow-up update.
    /// A failure here never undoes a fix and never fails the invocation.
    async fn report(&self, record: &OutcomeRecord, finding: &Finding) {
        let note = format!(
            "Reflex {}: {} ({}: {}). Handled record {} in table {}.",
            self.name(),
            record.status,
            record.reason,
            record.detail,
            record.record_id,
            self.setup.ledger.table()
        );
        let Some(feedback) = self
            .setup
            .securityhub
            .report(finding, record.status, &note)
            .await
        else {
            return;
        };
        if let Err(e) = self
            .setup
            .ledger
            .set_feedback(&record.record_id, &feedback)
            .await
        {
            warn!(record_id = %record.record_id, error = %e, "Security Hub feedback not recorded");
        }
    }
}

/// Seconds of a lease kept in hand before acting: a change is started only while the lease has
/// at least this long to run (a fifth of a short lease).
const LEASE_MARGIN_SECONDS: i64 = 5;

fn lease_ran_out(lease_expires_at: Option<i64>, lease_seconds: i64) -> bool {
    let margin = (lease_seconds / 5).clamp(1, LEASE_MARGIN_SECONDS);
    lease_expires_at.is_none_or(|t| Utc::now().timestamp() + margin >= t)
}

/// A resource ARN too long for DynamoDB's keys (the by-resource index, the suppression key) is
/// hostile input: a record that names it could never be written, and the finding would be
/// retried forever. The record is rejected instead, without the ARN as a key (its beginning in
/// the detail). `true` when it was.
fn reject_unstorable_resource(record: &mut OutcomeRecord) -> bool {
    let Err(e) = ledger::check_keys(record) else {
        return false;
    };
    let arn = record.resource_arn.take().unwrap_or_default();
    record.resource = None;
    record.set_outcome(
        Status::Rejected,
        Reason::MalformedEvent,
        format!(
            "the resource ARN cannot be stored: {e}; it begins {}",
            ledger::truncated(&arn, 256)
        ),
    );
    true
}

/// A read's result as a step: a transient error hands the record back; a resource gone since
/// the finding is nothing to fix; any other error fails closed.
fn read<T, P>(w: &mut Work<P>, result: Result<T, RemediationError>) -> Step<T> {
    match result {
        Ok(v) => Ok(v),
        Err(e) if e.is_transient() => Err(Stop::Transient {
            step: "inspect",
            message: e.to_string(),
        }),
        Err(RemediationError::Gone(why)) => {
            Err(w.decide(Status::Skipped, Reason::ResourceGone, why))
        }
        Err(e) => Err(w.decide(Status::Failed, Reason::InspectError, e.to_string())),
    }
}

/// Steps as the record shows them: each described, each carrying its typed step.
fn planned<R: Remediation>(remediation: &R, target: &Target, steps: &[R::Step]) -> Vec<Action> {
    steps
        .iter()
        .map(|step| {
            let d = remediation.describe(target, step);
            let mut a = Action::planned(d.api, d.parameters);
            a.step = serde_json::to_value(step).ok();
            a
        })
        .collect()
}

/// An approval given before the plan now shown was shown does not approve it (a press replayed
/// from a dead-letter queue, a proof signed before the plan changed): why, if so.
fn approval_predates<P>(w: &Work<P>, shown: &PriorOutcome) -> Option<String> {
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
fn keep_shown<P>(w: &mut Work<P>, shown: &PriorOutcome, why: String) -> Stop {
    w.record.actions = shown.actions.clone();
    w.record.pre_state = shown.pre_state.clone();
    w.record.resource_identity = shown.resource_identity.clone();
    w.record.mode = Some(Mode::Approve);
    w.decide(Status::PendingApproval, Reason::AwaitingApproval, why)
}

/// The remediation's typed steps, as planned actions store them.
fn stored_steps<R: Remediation>(planned: &[Action]) -> Result<Vec<R::Step>, String> {
    planned
        .iter()
        .map(|a| {
            let v = a.step.clone().ok_or("a planned step is not stored")?;
            serde_json::from_value(v).map_err(|e| e.to_string())
        })
        .collect()
}

/// The remediation's parameters from the policy (`remediations.<name>.parameters`); none
/// given is the default. An error names the key.
fn parameters<P: serde::de::DeserializeOwned + Default>(
    remediation: &str,
    value: Option<&Value>,
) -> Result<P, String> {
    match value {
        None | Some(Value::Null) => Ok(P::default()),
        Some(v) => serde_json::from_value(v.clone())
            .map_err(|e| format!("policy key `remediations.{remediation}.parameters`: {e}")),
    }
}

fn state_json<S: Serialize>(state: &S) -> Value {
    serde_json::to_value(state).unwrap_or(Value::Null)
}

/// The remediation's parameters under `policy`, or why there are none to be had (the policy
/// is invalid, or its parameters section is).
fn parameters_in<P: serde::de::DeserializeOwned + Default>(
    policy: &Result<Policy, PolicyError>,
    remediation: &str,
) -> Result<P, String> {
    match policy {
        Ok(p) => parameters(remediation, p.parameters(remediation)),
        Err(e) => Err(e.to_string()),
    }
}

/// Carry out `steps` in order, each recorded (from its planned action) with its result.
/// Stops at the first error and returns it with the steps tried so far.
async fn apply_steps<R: Remediation>(
    remediation: &R,
    target: &Target,
    steps: &[R::Step],
    planned: &[Action],
) -> (Vec<Action>, Result<(), RemediationError>) {
    let mut done = Vec::with_capacity(steps.len());
    for (step, action) in steps.iter().zip(planned) {
        let result = remediation.apply(target, step).await;
        done.push(action.carried_out(result.clone().map_err(|e| e.to_string())));
        if let Err(e) = result {
            return (done, Err(e));
        }
    }
    (done, Ok(()))
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
fn hold_for_mode<P>(w: &mut Work<P>, plan: &[Action]) -> Step {
    let because = w.decision.because.clone();
    match w.decision.mode {
        Mode::Enforce => Ok(()),
        Mode::DryRun => {
            w.record.actions = w.kept.iter().chain(plan).cloned().collect();
            let detail = format!("dry-run by {because}: the planned change was not made");
            Err(w.decide(Status::DryRun, Reason::WouldChange, detail))
        }
        Mode::Approve => {
            w.record.actions = w.kept.iter().chain(plan).cloned().collect();
            let detail = format!(
                "approve mode by {because}: run the Reflex: approve custom action to apply"
            );
            Err(w.decide(Status::PendingApproval, Reason::AwaitingApproval, detail))
        }
    }
}

/// A record taken over more often than the policy allows (crashes that never released it) is
/// not tried again.
fn give_up_if_exhausted<P>(w: &mut Work<P>) -> Step {
    if w.record.tries() > w.decision.max_attempts {
        return Err(give_up(w));
    }
    Ok(())
}

fn give_up<P>(w: &mut Work<P>) -> Stop {
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

fn ledger_stop(step: &'static str, e: LedgerError) -> Stop {
    if e.is_transient() {
        Stop::Transient {
            step,
            message: e.to_string(),
        }
    } else {
        Stop::Ledger(e)
    }
}

fn log_decision(remediation: &str, o: &Handled) {
    info!(
        record_id = %o.record_id,
        remediation,
        status = %o.status,
        reason = %o.reason,
        detail = %o.detail,
        duplicate = o.duplicate,
        resource = o.resource.as_deref().unwrap_or(""),
        mode = o.mode.map(|m| m.as_str()).unwrap_or(""),
        "decision"
    );
}

impl From<PipelineError> for lambda_runtime::Diagnostic {
    fn from(e: PipelineError) -> Self {
        let error_type = match e {
            PipelineError::Ledger(_) => "Reflex.LedgerUnavailable",
            PipelineError::Busy { .. } => "Reflex.RecordBusy",
            PipelineError::Transient { .. } => "Reflex.TransientError",
            PipelineError::RetriesExhausted { .. } => "Reflex.RetriesExhausted",
            PipelineError::PolicyUnavailable(_) => "Reflex.PolicyUnavailable",
            PipelineError::Refused(_) => "Reflex.Refused",
        };
        lambda_runtime::Diagnostic {
            error_type: error_type.into(),
            error_message: e.to_string(),
        }
    }
}
