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

/// The one instance a finding names, by a well-formed id.
pub fn instance_id(finding: &Finding) -> Result<String, String> {
    let mut ids: Vec<&str> = finding
        .resources
        .iter()
        .filter(|r| r.kind == ResourceKind::Ec2Instance)
        .map(|r| r.id.as_str())
        .chain(finding.details.instance_id.as_deref())
        .collect();
    ids.sort();
    ids.dedup();
    match ids.as_slice() {
        [one] if valid_instance_id(one) => Ok(one.to_string()),
        [one] => Err(format!("{one:?} is not an EC2 instance id")),
        [] => Err("the finding names no EC2 instance".into()),
        many => Err(format!(
            "the finding names {} instances; Reflex blocks at exactly one instance's subnet",
            many.len()
        )),
    }
}

/// `i-` and 8 or 17 lowercase hex digits.
pub fn valid_instance_id(id: &str) -> bool {
    id.strip_prefix("i-").is_some_and(|hex| {
        matches!(hex.len(), 8 | 17)
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
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
    fn instance_ids() {
        let cases = [
            ("i-0abc1234def567890", true),
            ("i-0abc1234", true),
            ("i-0ABC1234", false),
            ("i-0abc123", false),
            ("i-0abc1234def56789g", false),
            ("i-../../etc", false),
            ("sg-0abc1234", false),
            ("", false),
        ];
        for (id, want) in cases {
            assert_eq!(valid_instance_id(id), want, "{id}");
        }
    }

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
