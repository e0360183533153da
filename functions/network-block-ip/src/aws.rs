//! The EC2 calls, each small: where an instance sits, which ACL guards its subnet, the ACL's
//! inbound entries and tags, adding and removing one entry.

use crate::address::Cidr;
use crate::nacl::{Entry, ALL_PROTOCOLS};
use aws_sdk_ec2::types::{Filter, NetworkAclEntry, RuleAction};
use reflex_shared::aws_error::code;
use reflex_shared::remediation::{RemediationError, Tags};

pub const DESCRIBE_INSTANCES: &str = "ec2:DescribeInstances";
pub const DESCRIBE_NETWORK_ACLS: &str = "ec2:DescribeNetworkAcls";
pub const CREATE_ENTRY: &str = "ec2:CreateNetworkAclEntry";
pub const DELETE_ENTRY: &str = "ec2:DeleteNetworkAclEntry";

/// Where an instance sits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub subnet_id: String,
    pub vpc_id: String,
}

/// One network ACL as read.
#[derive(Debug, Clone, PartialEq)]
pub struct Nacl {
    pub id: String,
    pub vpc_id: String,
    pub inbound: Vec<Entry>,
    pub tags: Tags,
}

#[derive(Debug, Clone)]
pub struct Ec2 {
    client: aws_sdk_ec2::Client,
}

impl Ec2 {
    pub fn new(client: aws_sdk_ec2::Client) -> Self {
        Ec2 { client }
    }

    /// The subnet and VPC of a running (or stopped) instance; gone once it is terminated or
    /// unknown.
    pub async fn placement(&self, instance_id: &str) -> Result<Placement, RemediationError> {
        let gone = |why: &str| RemediationError::Gone(format!("instance {instance_id} {why}"));
        let out = match self
            .client
            .describe_instances()
            .instance_ids(instance_id)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if code(&e) == Some("InvalidInstanceID.NotFound") => {
                return Err(gone("no longer exists"))
            }
            Err(e) => return Err(RemediationError::aws(DESCRIBE_INSTANCES, e)),
        };
        let instance = out
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .find(|i| i.instance_id() == Some(instance_id))
            .ok_or_else(|| gone("no longer exists"))?;
        match (instance.subnet_id(), instance.vpc_id()) {
            (Some(subnet), Some(vpc)) if !subnet.is_empty() && !vpc.is_empty() => Ok(Placement {
                subnet_id: subnet.to_string(),
                vpc_id: vpc.to_string(),
            }),
            // A terminated instance keeps no subnet.
            _ => Err(gone("is in no subnet (terminated)")),
        }
    }

    /// The ACL associated with a subnet (every subnet has exactly one).
    pub async fn nacl_of_subnet(&self, subnet_id: &str) -> Result<Nacl, RemediationError> {
        let out = self
            .client
            .describe_network_acls()
            .filters(
                Filter::builder()
                    .name("association.subnet-id")
                    .values(subnet_id)
                    .build(),
            )
            .send()
            .await
            .map_err(|e| RemediationError::aws(DESCRIBE_NETWORK_ACLS, e))?;
        // The filter is the API's; keep only an ACL that names the subnet, whatever it answers.
        let acl = out
            .network_acls()
            .iter()
            .find(|a| {
                a.associations()
                    .iter()
                    .any(|s| s.subnet_id() == Some(subnet_id))
            })
            .ok_or_else(|| {
                RemediationError::Gone(format!("no network ACL is associated with {subnet_id}"))
            })?;
        nacl_from_sdk(acl)
    }

    /// One ACL by id.
    pub async fn nacl(&self, nacl_id: &str) -> Result<Nacl, RemediationError> {
        let out = match self
            .client
            .describe_network_acls()
            .network_acl_ids(nacl_id)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if acl_not_found(code(&e)) => return Err(nacl_gone(nacl_id)),
            Err(e) => return Err(RemediationError::aws(DESCRIBE_NETWORK_ACLS, e)),
        };
        let acl = out
            .network_acls()
            .iter()
            .find(|a| a.network_acl_id() == Some(nacl_id))
            .ok_or_else(|| nacl_gone(nacl_id))?;
        nacl_from_sdk(acl)
    }

    /// Deny every protocol from `cidr` at `rule_number`, inbound.
    pub async fn create_block(
        &self,
        nacl_id: &str,
        rule_number: i32,
        cidr: &Cidr,
    ) -> Result<(), CreateError> {
        let request = self
            .client
            .create_network_acl_entry()
            .network_acl_id(nacl_id)
            .rule_number(rule_number)
            .egress(false)
            .protocol(ALL_PROTOCOLS)
            .rule_action(RuleAction::Deny);
        let request = if cidr.is_v6() {
            request.ipv6_cidr_block(cidr.to_string())
        } else {
            request.cidr_block(cidr.to_string())
        };
        match request.send().await {
            Ok(_) => Ok(()),
            Err(e) if code(&e) == Some("NetworkAclEntryAlreadyExists") => Err(CreateError::Taken),
            Err(e) if acl_not_found(code(&e)) => Err(CreateError::Other(nacl_gone(nacl_id))),
            Err(e) => Err(CreateError::Other(RemediationError::aws(CREATE_ENTRY, e))),
        }
    }

    /// Remove the inbound entry at `rule_number`.
    pub async fn delete_entry(
        &self,
        nacl_id: &str,
        rule_number: i32,
    ) -> Result<(), RemediationError> {
        self.client
            .delete_network_acl_entry()
            .network_acl_id(nacl_id)
            .rule_number(rule_number)
            .egress(false)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| RemediationError::aws(DELETE_ENTRY, e))
    }
}

/// Why an entry was not created.
#[derive(Debug)]
pub enum CreateError {
    /// The number holds an entry already (ours from an earlier attempt, or another's).
    Taken,
    Other(RemediationError),
}

/// AWS's code for an unknown ACL id, and moto's (5.2 answers with the route-table code).
fn acl_not_found(code: Option<&str>) -> bool {
    matches!(
        code,
        Some("InvalidNetworkAclID.NotFound" | "InvalidRouteTableID.NotFound")
    )
}

pub fn nacl_gone(nacl_id: &str) -> RemediationError {
    RemediationError::Gone(format!("network ACL {nacl_id} no longer exists"))
}

fn nacl_from_sdk(acl: &aws_sdk_ec2::types::NetworkAcl) -> Result<Nacl, RemediationError> {
    let inbound = acl
        .entries()
        .iter()
        .filter(|e| e.egress() == Some(false))
        .map(entry_from_sdk)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Nacl {
        id: acl.network_acl_id().unwrap_or_default().to_string(),
        vpc_id: acl.vpc_id().unwrap_or_default().to_string(),
        inbound,
        tags: acl
            .tags()
            .iter()
            .map(|t| {
                (
                    t.key().unwrap_or_default().to_string(),
                    t.value().unwrap_or_default().to_string(),
                )
            })
            .collect(),
    })
}

fn entry_from_sdk(e: &NetworkAclEntry) -> Result<Entry, RemediationError> {
    let invalid =
        |what: &str| RemediationError::Invalid(format!("a network ACL entry {what}: {e:?}"));
    let cidr = e
        .cidr_block()
        .or(e.ipv6_cidr_block())
        .ok_or_else(|| invalid("names no CIDR block"))?
        .parse::<Cidr>()
        .map_err(|_| invalid("has an unreadable CIDR block"))?;
    Ok(Entry {
        rule_number: e
            .rule_number()
            .ok_or_else(|| invalid("has no rule number"))?,
        allow: e.rule_action() == Some(&RuleAction::Allow),
        protocol: e.protocol().unwrap_or(ALL_PROTOCOLS).to_string(),
        cidr,
        ports: e.port_range().and_then(|p| Some([p.from()?, p.to()?])),
    })
}
