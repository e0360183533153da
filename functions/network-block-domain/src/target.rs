//! What a finding comes down to, resolved once and stored in the record: the domain to block,
//! the instance that queried it, and that instance's VPC, whose DNS Firewall blocks it.
//! Approval, rollback and the sweep work from this stored target, never from the finding again
//! (the instance may be terminated by then; the VPC and its firewall stay).

use crate::domain::Domain;
use reflex_shared::finding::{partition_for_region, Finding, ResourceKind};
use reflex_shared::remediation::ResourceRef;
use serde::{Deserialize, Serialize};

/// The ASFF resource type of a VPC.
pub const VPC_KIND: &str = "AwsEc2Vpc";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainTarget {
    /// The VPC, as the record, exemptions and suppressions name it: what the block protects,
    /// and where its owner exempts it (tag or ARN).
    pub resource: ResourceRef,
    /// The instance the finding names (the one that queried the domain).
    pub instance_id: String,
    pub vpc_id: String,
    /// The domain to block.
    pub domain: Domain,
}

pub fn vpc_arn(region: &str, account: &str, vpc_id: &str) -> String {
    let partition = partition_for_region(region);
    format!("arn:{partition}:ec2:{region}:{account}:vpc/{vpc_id}")
}

/// The VPC as the record names it.
pub fn vpc_ref(finding: &Finding, vpc_id: &str) -> ResourceRef {
    ResourceRef {
        kind: ResourceKind::Other(VPC_KIND.into()),
        id: vpc_id.to_string(),
        arn: vpc_arn(&finding.region, &finding.account, vpc_id),
        account: finding.account.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vpc_arns_by_partition() {
        assert_eq!(
            vpc_arn("us-east-1", "123456789012", "vpc-1"),
            "arn:aws:ec2:us-east-1:123456789012:vpc/vpc-1"
        );
        assert_eq!(
            vpc_arn("cn-north-1", "123456789012", "vpc-1"),
            "arn:aws-cn:ec2:cn-north-1:123456789012:vpc/vpc-1"
        );
    }
}
