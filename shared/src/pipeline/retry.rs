//! Retry: an operator's request to run a finished, non-successful record's stored finding again
//! under the policy now in force (`reflex retry RECORD_ID`), exactly as the "Reflex: remediate"
//! custom action would: same claim (`Takeover::OnRequest`), same lease, the prior outcome kept in
//! `history`.

use super::finding_run::Run;
use super::{now, Handled, PipelineError};
use crate::finding;
use crate::ledger::{self, OutcomeRecord};
use crate::remediation::Remediation;
use crate::setup::Setup;
use crate::status::Status;

/// Why a record cannot be run again at `now_epoch`, or `None` when it can: only outcomes an
/// analyst's request may run again (`Status::rerunnable_on_request`: failed,
/// verification-failed, dry-run, pending-approval, skipped, rejected), or a run cut short
/// whose lease ran out (the claim takes it over, crediting what took effect), and only with a
/// finding stored under this very id.
pub fn retry_refusal(record: &OutcomeRecord, remediation: &str, now_epoch: i64) -> Option<String> {
    let id = &record.record_id;
    if record.status == Status::AwaitingCompletion {
        return Some(format!(
            "record {id} is {} ({}): its operation's completion (or deadline) ends it; a retry would start the operation again",
            record.status, record.reason
        ));
    }
    let lease_over = record.lease_expires_at.is_some_and(|t| t <= now_epoch);
    if record.status.in_progress() && !lease_over {
        return Some(format!(
            "record {id} is {} ({}): an invocation holds it until its lease ends; retry it after that",
            record.status, record.reason
        ));
    }
    if !record.status.in_progress() && !record.status.rerunnable_on_request() {
        return Some(format!(
            "record {id} is {} ({}): only a finished, non-successful outcome (failed, verification-failed, dry-run, pending-approval, skipped, rejected) can be retried",
            record.status, record.reason
        ));
    }
    let Some(finding) = &record.finding else {
        return Some(format!(
            "record {id} is {} ({}) and holds no finding (the event yielded none): there is nothing to run again",
            record.status, record.reason
        ));
    };
    if record.remediation != remediation || ledger::record_id(remediation, finding) != *id {
        return Some(format!(
            "record {id} is not {remediation}'s record of its stored finding: it cannot be run again"
        ));
    }
    None
}

/// Run a record's stored finding again, requested by `by` (the operator's STS identity, never a
/// payload's field), under the policy now in force. Refused, changing nothing, when
/// [`retry_refusal`] says so or the record does not exist. A record another invocation takes
/// in the meantime answers as a duplicate (or `Busy`), like any claim.
pub async fn retry<R: Remediation>(
    setup: &Setup,
    remediation: &R,
    record_id: &str,
    by: &str,
) -> Result<Handled, PipelineError> {
    let name = remediation.spec().name;
    let record = setup.ledger.get(record_id).await?.ok_or_else(|| {
        PipelineError::Refused(format!(
            "no record {record_id} in table {}; nothing was changed",
            setup.ledger.table()
        ))
    })?;
    if let Some(why) = retry_refusal(&record, name, chrono::Utc::now().timestamp()) {
        return Err(PipelineError::Refused(format!(
            "{why}; nothing was changed"
        )));
    }
    let Some(mut finding) = record.finding.clone() else {
        return Err(PipelineError::Refused(format!(
            "record {record_id} holds no finding; nothing was changed"
        )));
    };
    // As "Reflex: remediate" would: a request, so the claim may take the finished record over
    // (the policy still decides: a dry-run stays a dry-run, approve mode shows the plan).
    finding.intent = Some(finding::Intent::Remediate);
    finding.requested_by = Some(by.to_string());
    finding.requested_at = Some(now());
    let request = uuid::Uuid::new_v4();
    // A new request: its own event digest, so the claim treats it as new, not a redelivery.
    let digest = format!("retry\n{record_id}\n{by}\n{}\n{request}", now());
    let mut run = Run::new(
        setup,
        remediation,
        &format!("reflex-retry-{request}"),
        digest.as_bytes(),
    );
    // The record's target, not the finding's name resolved again: the run acts on what was
    // recorded (and the claim carries the resource's identity, which the run compares).
    run.stored_target = record.target;
    Box::pin(run.finding(finding)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::RecordMeta;
    use crate::status::Reason;

    fn record(status: Status, with_finding: bool) -> OutcomeRecord {
        let finding: crate::finding::Finding = crate::finding::parse_event(
            &serde_json::from_str(include_str!(
                "../../../events/s3-block-public-access/securityhub-s3.8-imported.json"
            ))
            .unwrap(),
        )
        .unwrap()
        .remove(0);
        let meta = RecordMeta {
            function_version: "t".into(),
            request_id: "r".into(),
            event_digest: "d".into(),
            claim_token: "c".into(),
        };
        let id = if with_finding {
            ledger::record_id("s3-block-public-access", &finding)
        } else {
            ledger::rejected_record_id("s3-block-public-access", "d")
        };
        let mut r = OutcomeRecord::new(id, "s3-block-public-access", &meta, "2026-12-01T00:00:00Z");
        r.finding = with_finding.then_some(finding);
        r.set_outcome(status, Reason::InProgress, "");
        r
    }

    #[test]
    fn which_records_may_be_retried() {
        let name = "s3-block-public-access";
        let cases = [
            (Status::DryRun, true, None),
            (Status::Failed, true, None),
            (Status::VerificationFailed, true, None),
            (Status::PendingApproval, true, None),
            (Status::Skipped, true, None),
            (Status::Rejected, true, None),
            (Status::Rejected, false, Some("holds no finding")),
            (
                Status::Succeeded,
                true,
                Some("only a finished, non-successful"),
            ),
            (
                Status::RolledBack,
                true,
                Some("only a finished, non-successful"),
            ),
            (Status::Claimed, true, Some("until its lease ends")),
            (Status::Acting, true, Some("until its lease ends")),
            (
                Status::AwaitingCompletion,
                true,
                Some("would start the operation again"),
            ),
        ];
        let now = 1_000;
        for (status, with_finding, want) in cases {
            let mut r = record(status, with_finding);
            r.lease_expires_at = Some(now + 1);
            let got = retry_refusal(&r, name, now);
            match want {
                None => assert_eq!(got, None, "{status}"),
                Some(text) => assert!(
                    got.as_deref().is_some_and(|g| g.contains(text)),
                    "{status}: {got:?}"
                ),
            }
        }
        // A run cut short whose lease ran out is taken over (what it did is credited).
        for status in [Status::Claimed, Status::Acting] {
            let mut r = record(status, true);
            r.lease_expires_at = Some(now);
            assert_eq!(retry_refusal(&r, name, now), None, "{status}");
        }
        let mut r = record(Status::AwaitingCompletion, true);
        r.lease_expires_at = Some(now);
        assert!(retry_refusal(&r, name, now).is_some());
        // Another function's record of the same finding is not this one's to run.
        let got = retry_refusal(&record(Status::DryRun, true), "s3-enforce-encryption", now);
        assert!(got.is_some_and(|g| g.contains("not s3-enforce-encryption's")));
    }
}
