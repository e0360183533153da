//! Every remediation function, by name: what `reflex replay --function` runs in-process.

use reflex_shared::pipeline::{self, Outcome, PipelineError};
use reflex_shared::remediation::Spec;
use reflex_shared::Setup;

/// The specs of every function this workspace builds.
pub const SPECS: &[&Spec] = &[&s3_block_public_access::SPEC];

pub fn names() -> Vec<&'static str> {
    SPECS.iter().map(|s| s.name).collect()
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("unknown function {0:?}; known: {1}")]
    UnknownFunction(String, String),
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
}

/// Run function `name`'s handler on one raw event, exactly as Lambda would.
pub async fn replay(
    setup: &Setup,
    name: &str,
    raw: &[u8],
    request_id: &str,
) -> Result<Vec<Outcome>, ReplayError> {
    match name {
        "s3-block-public-access" => {
            let r = s3_block_public_access::S3BlockPublicAccess::new(&setup.sdk);
            Ok(pipeline::handle_bytes(setup, &r, raw, request_id).await?)
        }
        other => Err(ReplayError::UnknownFunction(
            other.into(),
            names().join(", "),
        )),
    }
}
