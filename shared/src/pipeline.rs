//! The pipeline, the same for every function (design, steps 1–7):
//! detect → evaluate → claim → inspect → act → verify → record & report.

use crate::finding::{self, Finding, ParseError};
use crate::ledger::{self, Action, Claim, LedgerError, OutcomeRecord, RecordMeta, Takeover};
use crate::outcome::{Reason, Status};
use crate::policy::{Decision, Mode, Verdict};
use crate::remediation::{Inspection, Remediation, Tags, Target};
use crate::setup::Setup;
use chrono::{DateTime, SecondsFormat, Utc};
use lambda_runtime::LambdaEvent;
use serde::Serialize;
use serde_json::Value;
use tracing::{error, info};

/// IAM actions the pipeline itself needs in every function: the ledger (no delete: functions
/// write outcomes but cannot remove them), Security Hub feedback, its identity and the policy.
pub const PIPELINE_IAM_ACTIONS: &[&str] = &[
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:Query",
    "securityhub:BatchUpdateFindings",
    "ssm:GetParameter",
    "sts:GetCallerIdentity",
];

/// What one invocation says about each finding it handled (the Lambda response).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    pub record_id: String,
    pub status: Status,
    pub reason: Reason,
    pub detail: String,
    /// True when this delivery found the record already claimed or finished and did nothing.
    pub duplicate: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
}

impl Outcome {
    fn of(record: &OutcomeRecord, duplicate: bool) -> Outcome {
        Outcome {
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

/// Only infrastructure failures (the ledger unreachable) are errors: Lambda retries those.
/// Every other outcome, bad input included, is a record and an `Ok`.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The Lambda entry point: `service_fn(|e| handle(&setup, &remediation, e))`.
pub async fn handle<R: Remediation>(
    setup: &Setup,
    remediation: &R,
    event: LambdaEvent<Value>,
) -> Result<Vec<Outcome>, PipelineError> {
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

/// The same pipeline on raw bytes (`reflex replay`), where the input may not even be JSON.
pub async fn handle_bytes<R: Remediation>(
    setup: &Setup,
    remediation: &R,
    raw: &[u8],
    request_id: &str,
) -> Result<Vec<Outcome>, PipelineError> {
    run(
        setup,
        remediation,
        raw,
        finding::parse_bytes(raw),
        request_id,
    )
    .await
}

async fn run<R: Remediation>(
    setup: &Setup,
    remediation: &R,
    raw: &[u8],
    parsed: Result<Vec<Finding>, ParseError>,
    request_id: &str,
) -> Result<Vec<Outcome>, PipelineError> {
    let meta = RecordMeta {
        function_version: setup.function_version.clone(),
        request_id: request_id.to_string(),
        event_digest: ledger::digest_hex(raw),
    };
    let run = Run {
        setup,
        remediation,
        meta,
    };
    match parsed {
        Err(e) => Ok(vec![run.reject(&e).await?]),
        Ok(findings) => {
            let mut outcomes = Vec::with_capacity(findings.len());
            for f in findings {
                outcomes.push(run.finding(f).await?);
            }
            Ok(outcomes)
        }
    }
}

/// One invocation's context.
struct Run<'a, R> {
    setup: &'a Setup,
    remediation: &'a R,
    meta: RecordMeta,
}

impl<R: Remediation> Run<'_, R> {
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
    async fn reject(&self, e: &ParseError) -> Result<Outcome, PipelineError> {
        let reason = match e {
            ParseError::Unsupported { .. } => Reason::UnsupportedEvent,
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
        record: OutcomeRecord,
        takeover: Takeover,
    ) -> Result<Outcome, PipelineError> {
        let outcome = match self
            .setup
            .ledger
            .claim(record, Utc::now().timestamp(), takeover)
            .await?
        {
            Claim::Acquired(r) => Outcome::of(&r, false),
            Claim::Held(existing) => Outcome::of(&existing, true),
        };
        log_decision(self.name(), &outcome);
        Ok(outcome)
    }

    async fn finding(&self, finding: Finding) -> Result<Outcome, PipelineError> {
        let spec = self.remediation.spec();
        let mut record = self.new_record(ledger::record_id(spec.name, &finding));
        let takeover = if finding.intent.is_some() {
            Takeover::OnRequest
        } else {
            Takeover::ExpiredLease
        };
        record.finding = Some(finding.clone());

        // Detect: is this ours, and which resource does it name?
        if !spec.triggers.iter().any(|t| t.matches(&finding.kind)) {
            let detail = format!(
                "{} {:?} is not handled by {}",
                finding.source,
                finding.kind.name(),
                spec.name
            );
            record.set_outcome(Status::Rejected, Reason::NotHandled, detail);
            return self.finish_unclaimed(record, takeover).await;
        }
        let target = match self.remediation.target(&finding) {
            Ok(t) => t,
            Err(why) => {
                record.set_outcome(Status::Rejected, Reason::NoTarget, why);
                return self.finish_unclaimed(record, takeover).await;
            }
        };
        record.resource_arn = Some(target.arn.clone());
        record.resource = finding
            .resources
            .iter()
            .find(|r| r.id == target.id)
            .cloned();

        // Evaluate.
        let policy = match self.setup.policy.as_ref() {
            Ok(p) => p,
            Err(e) => {
                record.set_outcome(Status::Failed, Reason::PolicyInvalid, e.to_string());
                return self.finish_unclaimed(record, takeover).await;
            }
        };
        let decision = match policy.evaluate(
            spec.name,
            spec.risk,
            &finding,
            &target.arn,
            &self.setup.account_id,
        ) {
            Verdict::Skip { reason, detail } => {
                record.set_outcome(Status::Skipped, reason, detail);
                return self.finish_unclaimed(record, takeover).await;
            }
            Verdict::Act(d) => d,
        };
        record.mode = Some(decision.mode);
        record.reversible = Some(spec.reversible);

        // Claim.
        let now = Utc::now().timestamp();
        record.lease_expires_at = Some(now + self.setup.lease_seconds);
        let mut record = match self.setup.ledger.claim(record, now, takeover).await? {
            Claim::Held(existing) => {
                let outcome = Outcome::of(&existing, true);
                log_decision(spec.name, &outcome);
                return Ok(outcome);
            }
            Claim::Acquired(r) => *r,
        };

        // Inspect, act, verify.
        self.remediate(&mut record, &target, &decision).await;
        record.lease_expires_at = None;

        // Record & report.
        if finding.source.in_security_hub() {
            let note = format!(
                "Reflex {}: {} ({}: {}). Outcome record {} in table {}.",
                spec.name,
                record.status,
                record.reason,
                record.detail,
                record.record_id,
                self.setup.ledger.table()
            );
            record.securityhub = self
                .setup
                .securityhub
                .report(&finding, record.status, &note)
                .await;
        }
        record.updated_at = timestamp(Utc::now());
        if let Err(e) = self.setup.ledger.complete(&record).await {
            error!(record_id = %record.record_id, error = %e, "outcome not stored");
            return Err(e.into());
        }
        let outcome = Outcome::of(&record, false);
        log_decision(spec.name, &outcome);
        Ok(outcome)
    }

    /// Steps 4–6 on a claimed record. Every exit sets the record's outcome.
    async fn remediate(&self, record: &mut OutcomeRecord, target: &Target, decision: &Decision) {
        let r = self.remediation;
        // The three reads are independent: tags (exemption), the live state, and, only when a
        // change may follow, the blast-radius count.
        let since = timestamp(Utc::now() - chrono::Duration::hours(1));
        let budget = async {
            match decision.mode {
                Mode::Enforce => self
                    .setup
                    .ledger
                    .changes_since(r.spec().name, &since)
                    .await
                    .map(Some),
                _ => Ok(None),
            }
        };
        let (tags, inspection, recent) = tokio::join!(r.tags(target), r.inspect(target), budget);
        let (tags, inspection): (Tags, Inspection) = match (tags, inspection) {
            (Ok(t), Ok(i)) => (t, i),
            (Err(e), _) | (_, Err(e)) => {
                return record.set_outcome(Status::Failed, Reason::InspectError, e.to_string());
            }
        };
        if let Some(value) = tags
            .get(&decision.exemption_tag)
            .filter(|v| !v.eq_ignore_ascii_case("false"))
        {
            let detail = format!(
                "resource carries the exemption tag {}={value:?}",
                decision.exemption_tag
            );
            return record.set_outcome(Status::Skipped, Reason::Exempt, detail);
        }
        record.pre_state = Some(inspection.state.clone());
        if inspection.compliant {
            return record.set_outcome(
                Status::Skipped,
                Reason::AlreadyCompliant,
                "the live resource is already compliant",
            );
        }
        let plan: Vec<Action> = r.plan(target, &inspection);
        match decision.mode {
            Mode::DryRun => {
                record.actions = plan;
                let detail = format!(
                    "dry-run by {}: the planned change was not made",
                    decision.because
                );
                return record.set_outcome(Status::DryRun, Reason::WouldChange, detail);
            }
            Mode::Approve => {
                record.actions = plan;
                let detail = format!(
                    "approve mode by {}: run the Reflex: approve custom action to apply",
                    decision.because
                );
                return record.set_outcome(
                    Status::PendingApproval,
                    Reason::AwaitingApproval,
                    detail,
                );
            }
            Mode::Enforce => {}
        }
        match recent {
            Ok(Some(n)) if n >= decision.max_changes_per_hour => {
                record.actions = plan;
                let detail = format!(
                    "{n} changes in the last hour reach the budget of {}",
                    decision.max_changes_per_hour
                );
                return record.set_outcome(Status::Skipped, Reason::RateLimited, detail);
            }
            Ok(_) => {}
            Err(e) => {
                // Fail closed: without the count, the budget cannot be honoured.
                let detail = format!("cannot count recent changes for the budget: {e}");
                return record.set_outcome(Status::Failed, Reason::InspectError, detail);
            }
        }
        match r.act(target, &plan).await {
            Ok(done) => record.actions = done,
            Err(e) => {
                record.actions = e.done.clone();
                return record.set_outcome(
                    Status::Failed,
                    Reason::ActionError,
                    e.source.to_string(),
                );
            }
        }
        let verified_at = timestamp(Utc::now());
        match r.verify(target).await {
            Ok(after) => {
                record.post_state = Some(after.state);
                record.verified = Some(after.compliant);
                record.verified_at = Some(verified_at);
                if after.compliant {
                    record.set_outcome(
                        Status::Succeeded,
                        Reason::Remediated,
                        format!("enforced by {}; verified by a fresh read", decision.because),
                    );
                } else {
                    record.set_outcome(Status::VerificationFailed, Reason::StillNonCompliant, "the change was made but a fresh read shows the resource still non-compliant");
                }
            }
            Err(e) => {
                record.verified = Some(false);
                record.set_outcome(
                    Status::VerificationFailed,
                    Reason::InspectError,
                    format!("the change was made but could not be verified: {e}"),
                );
            }
        }
    }
}

fn log_decision(remediation: &str, o: &Outcome) {
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
        };
        lambda_runtime::Diagnostic {
            error_type: error_type.into(),
            error_message: e.to_string(),
        }
    }
}
