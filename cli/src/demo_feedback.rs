//! The demo's stand-in for Security Hub's `BatchUpdateFindings`, which the emulator does not
//! implement (moto answers it with an error, which the records would show as a failed update).
//! The functions report to it exactly as to Security Hub; it accepts every update and keeps
//! each one, so the demo can show the notifications that went out. Everything else the demo
//! does with Security Hub (`BatchImportFindings`, `GetFindings`) is the emulator's own.

use aws_sdk_securityhub::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_securityhub::operation::batch_update_findings::{
    BatchUpdateFindingsInput, BatchUpdateFindingsOutput,
};
use aws_sdk_securityhub::types::AwsSecurityFindingIdentifier;
use aws_smithy_mocks::{create_mock_http_client, mock, MockResponseInterceptor, RuleMode};
use reflex_shared::securityhub::SecurityHubFeedback;
use reflex_shared::Setup;
use std::sync::{Arc, Mutex, PoisonError};

/// One update as Security Hub would have received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub finding_id: String,
    pub workflow_status: Option<String>,
    pub note: String,
}

/// The updates sent so far, in order.
#[derive(Debug, Clone, Default)]
pub struct Sent(Arc<Mutex<Vec<Notification>>>);

impl Sent {
    pub fn all(&self) -> Vec<Notification> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn keep(&self, input: &BatchUpdateFindingsInput) {
        let workflow_status = input
            .workflow()
            .and_then(|w| w.status())
            .map(|s| s.as_str().to_string());
        let note = input
            .note()
            .and_then(|n| n.text())
            .unwrap_or_default()
            .to_string();
        let mut sent = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        for id in input.finding_identifiers() {
            sent.push(Notification {
                finding_id: id.id().unwrap_or_default().to_string(),
                workflow_status: workflow_status.clone(),
                note: note.clone(),
            });
        }
    }
}

/// `setup` with its Security Hub feedback answered by the stand-in; the updates it receives.
pub fn with_stand_in(setup: &Setup) -> (Setup, Sent) {
    let sent = Sent::default();
    let keep = sent.clone();
    let rule = mock!(aws_sdk_securityhub::Client::batch_update_findings).then_compute_output(
        move |input| {
            keep.keep(input);
            let processed: Vec<AwsSecurityFindingIdentifier> = input.finding_identifiers().to_vec();
            BatchUpdateFindingsOutput::builder()
                .set_processed_findings(Some(processed))
                .set_unprocessed_findings(Some(Vec::new()))
                .build()
        },
    );
    let interceptor = MockResponseInterceptor::new()
        .rule_mode(RuleMode::MatchAny)
        .with_rule(&rule);
    let conf = aws_sdk_securityhub::config::Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(
            "stand-in", "stand-in", None, None, "stand-in",
        ))
        .http_client(create_mock_http_client())
        .interceptor(interceptor)
        .build();
    let mut setup = setup.clone();
    setup.securityhub = SecurityHubFeedback::new(aws_sdk_securityhub::Client::from_conf(conf));
    (setup, sent)
}

/// The updates as a table: finding, workflow status, note.
pub fn print(sent: &[Notification]) {
    let mut t = comfy_table::Table::new();
    t.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED)
        .set_content_arrangement(comfy_table::ContentArrangement::Dynamic)
        .set_header(["Security Hub finding", "workflow status", "note"]);
    for n in sent {
        // The tail of a finding id is what tells findings apart.
        let id: String = {
            let tail: Vec<char> = n.finding_id.chars().rev().take(60).collect();
            let tail: String = tail.into_iter().rev().collect();
            if tail.len() < n.finding_id.len() {
                format!("…{tail}")
            } else {
                tail
            }
        };
        t.add_row([
            id,
            n.workflow_status
                .clone()
                .unwrap_or_else(|| "(unchanged)".into()),
            n.note.clone(),
        ]);
    }
    println!("{t}");
    println!(
        "   {} update(s) sent; every record keeps the answer under `securityhub`",
        sent.len()
    );
}
