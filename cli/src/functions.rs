//! Every remediation function, by name: what `reflex replay --function` runs in-process.

use reflex_shared::pipeline::{self, Outcome, PipelineError};
use reflex_shared::remediation::Spec;
use reflex_shared::Setup;
use s3_block_public_access::S3BlockPublicAccess;

/// The specs of every function this workspace builds.
pub const SPECS: &[&Spec] = &[&s3_block_public_access::SPEC];

pub fn names() -> Vec<&'static str> {
    SPECS.iter().map(|s| s.name).collect()
}

/// One function, its clients built once (as a Lambda cold start does), ready to replay events.
pub enum Function {
    S3BlockPublicAccess(S3BlockPublicAccess),
}

impl Function {
    /// The function called `name`, or `None` if there is no such function.
    pub fn new(name: &str, setup: &Setup) -> Option<Function> {
        match name {
            "s3-block-public-access" => Some(Function::S3BlockPublicAccess(
                S3BlockPublicAccess::new(&setup.sdk),
            )),
            _ => None,
        }
    }

    /// Run the handler on one raw event, exactly as Lambda would.
    pub async fn replay(
        &self,
        setup: &Setup,
        raw: &[u8],
        request_id: &str,
    ) -> Result<Vec<Outcome>, PipelineError> {
        match self {
            Function::S3BlockPublicAccess(r) => {
                pipeline::handle_bytes(setup, r, raw, request_id).await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spec_has_a_distinct_name_in_the_catalog() {
        let mut names = names();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), SPECS.len());
        for name in names {
            assert!(
                reflex_shared::catalog::REMEDIATIONS.contains(&name),
                "{name}"
            );
        }
    }
}
