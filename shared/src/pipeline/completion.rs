//! Scheduled work: an EventBridge schedule to the function runs the remediation's `sweep`
//! (removing expired blocks, say; a no-op unless a remediation has such work).

use super::PipelineError;
use crate::remediation::Remediation;
use crate::setup::Setup;
use tracing::info;

/// The remediation's scheduled work; an error is handed to Lambda's retries as transient.
/// `setup` is not used yet: it is where the sweep will get the ledger and the policy.
pub(super) async fn sweep<R: Remediation>(
    _setup: &Setup,
    remediation: &R,
) -> Result<(), PipelineError> {
    let changed = remediation
        .sweep()
        .await
        .map_err(|e| PipelineError::Transient {
            record_id: format!("{}#sweep", remediation.spec().name),
            step: "sweep",
            message: e.to_string(),
        })?;
    info!(remediation = remediation.spec().name, changed, "sweep");
    Ok(())
}
