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
        Status::PendingApproval => Some(Some(WorkflowStatus::Notified)),
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
        let workflow = workflow_for(status)?;
        let identifier = AwsSecurityFindingIdentifier::builder()
            .id(&finding.id)
            .product_arn(&finding.product_arn)
            .build();
        let note: String = note.chars().take(NOTE_MAX).collect();
        let mut req = self
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
            req = req.workflow(WorkflowUpdate::builder().status(w.clone()).build());
        }
        Some(match req.send().await {
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
        })
    }
}

fn failed(workflow: &Option<WorkflowStatus>, detail: String) -> Feedback {
    Feedback {
        result: FeedbackResult::Failed,
        workflow_status: workflow.as_ref().map(|w| w.as_str().to_string()),
        detail,
    }
}
