//! The pipeline, the same for every function (design, steps 1–7):
//! detect → evaluate → claim ∥ read → checkpoint ∥ reserve → act → verify → record → report.
//!
//! Each step returns `Result<_, Stop>`: `Stop::Decided` when the record has its outcome (go and
//! store it), `Stop::Transient` when a passing fault should hand the finding back to Lambda's
//! retries, `Stop::Ledger` when the ledger itself failed. The guarantees this gives are in the
//! README's "Guarantees".
//!
//! One file per concern: this one is the way in (events, schedules, operator commands) and the
//! small helpers the others share; `finding_run` takes one finding through the steps;
//! `evaluate`, `budget`, `approval`, `rollback` and `completion` (scheduled work) hold the rest.

mod aftermath;
mod approval;
mod budget;
mod completion;
mod evaluate;
mod finding_run;
mod retry;
mod rollback;

pub use approval::{approve, approve_as_of};
pub use retry::{retry, retry_refusal};
pub use rollback::rollback;

use crate::finding::{self, Finding, ParseError};
use crate::ledger::{self, Action, LedgerError, OutcomeRecord};
use crate::operator::{self, OperatorError, Order, Proof};
use crate::policy::{Mode, PolicyError};
use crate::remediation::{Applied, Context, Remediation, RemediationError};
use crate::setup::Setup;
use crate::status::{Reason, Status};
use chrono::{DateTime, SecondsFormat, Utc};
pub use evaluate::parameters_in;
use finding_run::Run;
use lambda_runtime::LambdaEvent;
use serde::Serialize;
use serde_json::Value;
use tracing::{info, warn};

/// IAM actions the pipeline itself needs in every function: the ledger (no delete: functions
/// write outcomes but cannot remove them), Security Hub feedback, the policy, the
/// on-failure destination Lambda sends events to after its retries, and the notification topic.
pub const PIPELINE_IAM_ACTIONS: &[&str] = &[
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    // The by-time index only: the sweep lists Reflex-owned entries and awaited operations.
    "dynamodb:Query",
    "config:DescribeConfigRules",
    "securityhub:BatchUpdateFindings",
    // Reading a finding back from its source (`confirm_at_source`, a policy switch for any
    // remediation).
    "guardduty:GetFindings",
    "securityhub:GetFindings",
    "sqs:SendMessage",
    "ssm:GetParameter",
    // No STS action: a function's account is in its Lambda context, and an operator's proof (a
    // GetCallerIdentity the operator signed) needs no permission of the function's.
    // Notifications (`notify`): the stack's topic, and its key (SNS encrypts with it).
    "sns:Publish",
    "kms:Decrypt",
    "kms:GenerateDataKey",
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
    /// The change a `dry-run` or `pending-approval` outcome would make: its planned steps.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub planned: Vec<PlannedStep>,
}

/// One step a dry-run or an approval would carry out, as the record writes it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlannedStep {
    pub api: String,
    pub parameters: Value,
}

impl Handled {
    fn of(record: &OutcomeRecord, duplicate: bool) -> Handled {
        let shows_plan = matches!(record.status, Status::DryRun | Status::PendingApproval);
        Handled {
            record_id: record.record_id.clone(),
            status: record.status,
            reason: record.reason,
            detail: record.detail.clone(),
            duplicate,
            resource: record.resource_arn.clone(),
            mode: record.mode,
            planned: record
                .actions
                .iter()
                .filter(|a| shows_plan && a.is_planned())
                .map(|a| PlannedStep {
                    api: a.api.clone(),
                    parameters: a.parameters.clone(),
                })
                .collect(),
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
    /// The function cannot serve yet (its account unknown, its policy's parameters for this
    /// remediation unusable); nothing was changed, and Lambda retries.
    #[error("not ready: {0}")]
    NotReady(String),
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
    /// Roll a succeeded record back ([`rollback()`]), holding the resource back for
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
        Invocation::Event => {
            if let Some(handle) = completion::completion_handle(remediation, &event.payload) {
                return completion::complete(setup, remediation, &handle).await;
            }
        }
        Invocation::Scheduled => return completion::sweep(setup, remediation).await,
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

/// The policy's parameters for this remediation cannot be read (a required key missing, an
/// unknown key): recorded once per error (the record's id is the error's digest) as
/// `failed / policy-invalid`, naming the key, before the function's first invocation fails
/// (see `crate::serve`).
pub async fn record_unusable_parameters<R: Remediation>(
    setup: &Setup,
    remediation: &R,
    error: &str,
) -> Result<(), PipelineError> {
    let run = Run::new(setup, remediation, "cold-start", error.as_bytes());
    let record_id = format!(
        "{}#parameters#{}",
        remediation.spec().name,
        ledger::digest_hex(error.as_bytes())
    );
    run.record_decided(record_id, Status::Failed, Reason::PolicyInvalid, error)
        .await
        .map(|_| ())
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

/// The remediation's `parameters` in the policy now in force, checked by its own type: on a
/// function's first event, so a bad key is in the log at once (every invocation also records it as
/// `policy-invalid`, naming the key, and changes nothing).
pub async fn check_parameters<R: Remediation>(
    setup: &Setup,
    remediation: &R,
) -> Result<(), String> {
    let policy = setup.policy.current().await.map_err(|e| e.to_string())?;
    parameters_in::<R::Params>(&policy, remediation.spec().name).map(|_| ())
}

/// This remediation's parameters cannot be read under a policy that is otherwise valid (a
/// required key missing, an unknown key): why, naming the key. An invalid policy as a whole is
/// not this: every invocation records it as `policy-invalid` and changes nothing, and the
/// function keeps serving so each finding gets its record.
pub async fn parameters_error<R: Remediation>(setup: &Setup, remediation: &R) -> Option<String> {
    let policy = setup.policy.current().await.ok()?;
    let policy = policy.as_ref().as_ref().ok()?;
    parameters_in::<R::Params>(&Ok(policy.clone()), remediation.spec().name).err()
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

/// Steps as the record shows them: each described, each carrying its typed step.
fn planned_actions<R: Remediation>(
    remediation: &R,
    target: &R::Target,
    steps: &[R::Step],
) -> Vec<Action> {
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

fn state_json<S: Serialize>(state: &S) -> Value {
    serde_json::to_value(state).unwrap_or(Value::Null)
}

/// Carry out `steps` in order, each recorded (from its planned action) with its result and
/// what it produced; each step sees the steps applied before it (`earlier`, then this run's).
/// Stops at the first error and returns it with the steps tried so far.
async fn apply_steps<R: Remediation>(
    remediation: &R,
    ctx: &Context<'_>,
    target: &R::Target,
    steps: &[R::Step],
    planned: &[Action],
    mut earlier: Vec<Applied<R::Step, R::Output>>,
) -> Applying<R> {
    let mut done = Vec::with_capacity(steps.len());
    let mut applied = Vec::with_capacity(steps.len());
    for (step, action) in steps.iter().zip(planned) {
        match remediation.apply(ctx, target, step, &earlier).await {
            Ok(output) => {
                done.push(action.produced(state_json(&output)));
                let a = Applied {
                    step: step.clone(),
                    output,
                };
                earlier.push(a.clone());
                applied.push(a);
            }
            Err(e) => {
                done.push(action.carried_out(Err(e.to_string())));
                return Applying {
                    done,
                    applied,
                    result: Err(e),
                };
            }
        }
    }
    Applying {
        done,
        applied,
        result: Ok(()),
    }
}

/// What carrying out steps did: the actions as recorded, the steps applied with their
/// outputs, and the first error.
struct Applying<R: Remediation> {
    done: Vec<Action>,
    applied: Vec<Applied<R::Step, R::Output>>,
    result: Result<(), RemediationError>,
}

/// The steps that took effect in `actions`, with what they produced, as the remediation's
/// types (an action whose step cannot be read is left out).
fn applied_of<R: Remediation>(actions: &[Action]) -> Vec<Applied<R::Step, R::Output>> {
    actions
        .iter()
        .filter(|a| a.took_effect())
        .filter_map(|a| {
            let step = serde_json::from_value(a.step.clone()?).ok()?;
            let output = serde_json::from_value(a.output.clone().unwrap_or(Value::Null)).ok()?;
            Some(Applied { step, output })
        })
        .collect()
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
            PipelineError::NotReady(_) => "Reflex.NotReady",
        };
        lambda_runtime::Diagnostic {
            error_type: error_type.into(),
            error_message: e.to_string(),
        }
    }
}
