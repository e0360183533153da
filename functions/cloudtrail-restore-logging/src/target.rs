//! The trail a finding comes down to, resolved once and stored in the record: approval and
//! rollback go to the same trail, in the same home region.

use crate::aws::TrailInfo;
use crate::trail::Ask;
use reflex_shared::finding::{Finding, ResourceKind};
use reflex_shared::remediation::ResourceRef;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrailTarget {
    /// The trail, by its ARN.
    pub resource: ResourceRef,
    pub home_region: String,
    pub multi_region: bool,
    pub ask: Ask,
}

impl TrailTarget {
    pub fn new(finding: &Finding, t: &TrailInfo, ask: Ask) -> TrailTarget {
        TrailTarget {
            resource: ResourceRef {
                kind: ResourceKind::CloudTrailTrail,
                id: t.name.clone(),
                arn: t.arn.clone(),
                account: finding.account.clone(),
            },
            home_region: t.home_region.clone(),
            multi_region: t.multi_region,
            ask,
        }
    }

    pub fn arn(&self) -> &str {
        &self.resource.arn
    }
}

/// The trail a finding names: GuardDuty's affected resource, or a resource of the finding
/// (CloudTrail.4 names the trail by its ARN). A bare name becomes the ARN in the finding's
/// region.
pub fn named_trail(finding: &Finding) -> Option<String> {
    let named = finding
        .details
        .affected_resources
        .get("AWS::CloudTrail::Trail")
        .cloned()
        .or_else(|| {
            finding
                .resources
                .iter()
                .find(|r| r.kind == ResourceKind::CloudTrailTrail)
                .map(|r| r.arn.clone().unwrap_or_else(|| r.id.clone()))
        })?;
    if named.starts_with("arn:") {
        return Some(named);
    }
    let partition = reflex_shared::finding::partition_for_region(&finding.region);
    Some(format!(
        "arn:{partition}:cloudtrail:{}:{}:trail/{named}",
        finding.region, finding.account
    ))
}
