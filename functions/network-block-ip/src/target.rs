//! What a finding comes down to, resolved once and stored in the record: the instance it
//! names, where that instance sits, the ACL guarding its subnet, and the addresses to block.
//! Approval, rollback and the sweep work from this stored target, never from the finding again
//! (the instance may be terminated by then).

use crate::address::{blockable, Cidr, Refusal};
use reflex_shared::finding::{Finding, ResourceKind};
use reflex_shared::remediation::ResourceRef;
use serde::{Deserialize, Serialize};

/// The ASFF resource type of a network ACL.
pub const NACL_KIND: &str = "AwsEc2NetworkAcl";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockTarget {
    /// The ACL, as the record, exemptions and suppressions name it.
    pub resource: ResourceRef,
    /// The instance the finding names (where the attack landed).
    pub instance_id: String,
    pub subnet_id: String,
    pub vpc_id: String,
    /// The ACL of the instance's subnet: what changes.
    pub nacl_id: String,
    /// The host prefixes to block.
    pub cidrs: Vec<Cidr>,
    /// Addresses the finding named that are never blocked, each with why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refused: Vec<String>,
}

pub fn nacl_arn(region: &str, account: &str, nacl_id: &str) -> String {
    let partition = reflex_shared::finding::partition_for_region(region);
    format!("arn:{partition}:ec2:{region}:{account}:network-acl/{nacl_id}")
}

/// The remote addresses a finding names, as text (each probe's address for a port probe).
/// Text, so that the refusals (a prefix wider than a host among them) are judged in one place.
pub fn remote_addresses(finding: &Finding) -> Vec<String> {
    finding
        .details
        .remote_ips
        .iter()
        .map(|ip| ip.to_string())
        .collect()
}

/// The ACL as the record names it.
pub fn nacl_ref(finding: &Finding, nacl_id: &str) -> ResourceRef {
    ResourceRef {
        kind: ResourceKind::Other(NACL_KIND.into()),
        id: nacl_id.to_string(),
        arn: nacl_arn(&finding.region, &finding.account, nacl_id),
        account: finding.account.clone(),
    }
}

/// The addresses to block, and the refusals of the rest (never blocked, or allowlisted).
pub fn split(addresses: &[String], allowlist: &[Cidr]) -> (Vec<Cidr>, Vec<Refusal>) {
    let mut cidrs = Vec::new();
    let mut refused = Vec::new();
    for text in addresses {
        match blockable(text, allowlist) {
            Ok(c) if !cidrs.contains(&c) => cidrs.push(c),
            Ok(_) => {}
            Err(r) => refused.push(r),
        }
    }
    (cidrs, refused)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitting_addresses() {
        let allow = vec!["8.8.8.0/24".parse().unwrap()];
        let texts: Vec<String> = ["1.2.3.4", "10.0.0.1", "8.8.8.8", "1.2.3.4/32", "5.6.7.8"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let (cidrs, refused) = split(&texts, &allow);
        let cidrs: Vec<String> = cidrs.iter().map(|c| c.to_string()).collect();
        assert_eq!(cidrs, ["1.2.3.4/32", "5.6.7.8/32"]);
        assert!(matches!(
            refused.as_slice(),
            [Refusal::NotBlockable(_), Refusal::Allowlisted(_)]
        ));
    }

    #[test]
    fn nacl_arns_by_partition() {
        assert_eq!(
            nacl_arn("us-east-1", "123456789012", "acl-1"),
            "arn:aws:ec2:us-east-1:123456789012:network-acl/acl-1"
        );
        assert_eq!(
            nacl_arn("cn-north-1", "123456789012", "acl-1"),
            "arn:aws-cn:ec2:cn-north-1:123456789012:network-acl/acl-1"
        );
    }
}
