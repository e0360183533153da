//! Report: the Security Hub finding gets a workflow status and a note naming the record.
//! A failure here never undoes a fix; it is written into the record.

use crate::finding::Finding;
use crate::ledger::{Feedback, FeedbackResult};
use crate::status::Status;
use aws_sdk_securityhub::types::{
    AwsSecurityFindingIdentifier, NoteUpdate, WorkflowStatus, WorkflowUpdate,
};

/// Security Hub caps note text at 512 characters.
const NOTE_MAX: usize = 512;

/// The workflow status an outcome moves the finding to, and whether it is worth a note at all.
/// `None` outer: no update. `Some(None)`: a note only.
pub fn workflow_for(status: Status) -> Option<Option<WorkflowStatus>> {
    match status {
        Status::Succeeded => Some(Some(WorkflowStatus::Resolved)),
        // Someone is told a fix waits (for an approval, or for its long operation to end).
        Status::PendingApproval | Status::AwaitingCompletion => {
            Some(Some(WorkflowStatus::Notified))
        }
        Status::DryRun | Status::Failed | Status::VerificationFailed => Some(None),
        _ => None,
    }
}

#[derive(Debug, Clone)]
pub struct SecurityHubFeedback {
    client: aws_sdk_securityhub::Client,
}

impl SecurityHubFeedback {
    pub fn new(client: aws_sdk_securityhub::Client) -> Self {
        SecurityHubFeedback { client }
    }

    /// Update the finding for an outcome. `None` when the outcome asks for no update.
    pub async fn report(&self, finding: &Finding, status: Status, note: &str) -> Option<Feedback> {
        Some(match self.prepare(finding, status, note)? {
            Report::Known(feedback) => feedback,
            Report::Send(update) => update.send().await,
        })
    }

    /// What an outcome's update is: none, one known without a call (it cannot be sent), or
    /// the call to make. Lets the pipeline write a known one with the record's completion.
    pub fn prepare(&self, finding: &Finding, status: Status, note: &str) -> Option<Report> {
        let workflow = workflow_for(status)?;
        let Some((id, product_arn)) = identifiers(finding) else {
            return Some(Report::Known(failed(
                &workflow,
                format!(
                    "no Security Hub identifiers kept for {} finding {} (recorded before they were kept); not updated",
                    finding.family(),
                    finding.id
                ),
            )));
        };
        let identifier = AwsSecurityFindingIdentifier::builder()
            .id(id)
            .product_arn(product_arn)
            .build();
        let note: String = note.chars().take(NOTE_MAX).collect();
        let mut request = self
            .client
            .batch_update_findings()
            .finding_identifiers(identifier)
            .note(
                NoteUpdate::builder()
                    .text(note)
                    .updated_by("reflex")
                    .build(),
            );
        if let Some(w) = &workflow {
            request = request.workflow(WorkflowUpdate::builder().status(w.clone()).build());
        }
        Some(Report::Send(Box::new(Update { request, workflow })))
    }
}

/// An outcome's update of its Security Hub finding (see [`SecurityHubFeedback::prepare`]).
#[derive(Debug)]
pub enum Report {
    Known(Feedback),
    Send(Box<Update>),
}

/// A `BatchUpdateFindings` call, ready to send.
#[derive(Debug)]
pub struct Update {
    request: aws_sdk_securityhub::operation::batch_update_findings::builders::BatchUpdateFindingsFluentBuilder,
    workflow: Option<WorkflowStatus>,
}

impl Update {
    /// Send it; what Security Hub answered, as the record keeps it.
    pub async fn send(self) -> Feedback {
        let workflow = self.workflow;
        match self.request.send().await {
            Ok(out) if out.unprocessed_findings().is_empty() => Feedback {
                result: FeedbackResult::Updated,
                workflow_status: workflow.as_ref().map(|w| w.as_str().to_string()),
                detail: "BatchUpdateFindings accepted the update".into(),
            },
            Ok(out) => failed(
                &workflow,
                out.unprocessed_findings()
                    .iter()
                    .map(|u| {
                        format!(
                            "{}: {}",
                            u.error_code().unwrap_or("?"),
                            u.error_message().unwrap_or("?")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            Err(e) => failed(&workflow, crate::aws_error::describe(&e)),
        }
    }
}

/// The Security Hub finding to update: the ASFF `Id` and `ProductArn` the finding arrived with.
/// A record stored before they were kept still has them where its id is the ASFF `Id` (every
/// Security Hub finding but GuardDuty's, whose record is keyed on GuardDuty's own id).
fn identifiers(finding: &Finding) -> Option<(&str, &str)> {
    match &finding.securityhub_finding {
        Some(sh) => Some((&sh.id, &sh.product_arn)),
        None if finding.family() == "securityhub" => Some((&finding.id, &finding.product_arn)),
        None => None,
    }
}

fn failed(workflow: &Option<WorkflowStatus>, detail: String) -> Feedback {
    Feedback {
        result: FeedbackResult::Failed,
        workflow_status: workflow.as_ref().map(|w| w.as_str().to_string()),
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::parse_bytes;

    fn one(raw: &str) -> Finding {
        parse_bytes(raw.as_bytes()).unwrap().remove(0)
    }

    const GUARDDUTY_IN_SH: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../events/real-shapes/securityhub-guardduty-finding.json"
    ));
    const CONTROL: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../events/s3-block-public-access/securityhub-s3.8-imported.json"
    ));

    #[test]
    fn feedback_goes_to_the_finding_security_hub_knows() {
        let gd = one(GUARDDUTY_IN_SH);
        assert_eq!(
            identifiers(&gd),
            Some((
                "arn:aws:guardduty:us-east-1:123456789012:detector/6cb5b3f3d1a2e4f5a6b7c8d9e0f1a2b3/finding/60b8c1d2e3f4a5b6c7d8e9f0a1b2c3d5",
                "arn:aws:securityhub:us-east-1::product/aws/guardduty"
            ))
        );
        // A record stored before the identifiers were kept: a control finding's id is its ASFF
        // Id; a GuardDuty finding's is not, and is never sent as one.
        let mut control = one(CONTROL);
        let (id, product) = (control.id.clone(), control.product_arn.clone());
        control.securityhub_finding = None;
        assert_eq!(identifiers(&control), Some((id.as_str(), product.as_str())));
        let mut old_gd = gd;
        old_gd.securityhub_finding = None;
        assert_eq!(identifiers(&old_gd), None);
    }
}
