//! What a finding comes down to, resolved once and stored in the record: the one bucket it
//! names, and what its control asks (approval and rollback work from this, never the finding).

use crate::state::Fix;
use reflex_shared::finding::{Finding, ResourceKind};
use reflex_shared::remediation::ResourceRef;
use s3_block_public_access::valid_bucket_name;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketTarget {
    pub resource: ResourceRef,
    pub fix: Fix,
}

/// The one bucket the finding names, by a valid name whose ARN agrees; or why there is none.
pub fn bucket(finding: &Finding) -> Result<ResourceRef, String> {
    let buckets: Vec<_> = finding
        .resources
        .iter()
        .filter(|r| r.kind == ResourceKind::S3Bucket)
        .collect();
    let bucket = match buckets.as_slice() {
        [one] => *one,
        [] => return Err("the finding names no S3 bucket".into()),
        many => {
            return Err(format!(
                "the finding names {} buckets; Reflex changes exactly one",
                many.len()
            ))
        }
    };
    if !valid_bucket_name(&bucket.id) {
        return Err(format!("{:?} is not a valid S3 bucket name", bucket.id));
    }
    let partition = reflex_shared::finding::partition_for_region(&finding.region);
    let arn = bucket
        .arn
        .clone()
        .unwrap_or_else(|| format!("arn:{partition}:s3:::{}", bucket.id));
    if !arn.ends_with(&format!(":s3:::{}", bucket.id)) {
        return Err(format!(
            "bucket ARN {arn} does not name bucket {}",
            bucket.id
        ));
    }
    Ok(ResourceRef {
        kind: ResourceKind::S3Bucket,
        id: bucket.id.clone(),
        arn,
        account: finding.account.clone(),
    })
}
