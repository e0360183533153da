//! `reflex retry RECORD_ID`: a finished, non-successful record run again under the policy now in
//! force, requested by the operator (the CLI's STS caller), through the same claim and lease as
//! every run (`reflex_shared::pipeline::retry`).

use super::function_for_record;
use reflex_shared::pipeline::Handled;
use reflex_shared::Setup;

/// Run record `record_id`'s stored finding again through its function's pipeline, as
/// `setup.caller_arn`. Refused (an error, nothing changed) for a record that is succeeded, rolled
/// back, in progress, holds no finding, or does not exist. The outcome is whatever the policy now
/// decides: `succeeded` under enforce, `dry-run` again under dry-run, `pending-approval` under
/// approve, a duplicate when another invocation took the record meanwhile.
pub async fn retry(setup: &Setup, record_id: &str) -> anyhow::Result<Handled> {
    let function = function_for_record(setup, record_id)?;
    Ok(function.retry(setup, record_id, &setup.caller_arn).await?)
}
