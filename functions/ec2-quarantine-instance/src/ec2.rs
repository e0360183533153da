//! The AWS adapters: one small function per EC2 call (or per read that needs two), each
//! turning SDK types into the plain types of `model` and SDK errors into `RemediationError`.

use crate::model::{
    isolation_group_name, IsolationGroup, Snapshot, INSTANCE_TAG, ISOLATION_TAG, QUARANTINED_TAG,
    RECORD_TAG,
};
use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_ec2::types::{
    AttributeBooleanValue, Filter, InstanceAttributeName, ResourceType, Tag, TagSpecification,
};
use aws_sdk_ec2::Client;
use reflex_shared::aws_error::code;
use reflex_shared::remediation::RemediationError;
use std::collections::BTreeMap;

pub const DESCRIBE_INSTANCES: &str = "ec2:DescribeInstances";
pub const DESCRIBE_INSTANCE_ATTRIBUTE: &str = "ec2:DescribeInstanceAttribute";
pub const DESCRIBE_SECURITY_GROUPS: &str = "ec2:DescribeSecurityGroups";
pub const DESCRIBE_SNAPSHOTS: &str = "ec2:DescribeSnapshots";
pub const CREATE_SECURITY_GROUP: &str = "ec2:CreateSecurityGroup";
pub const REVOKE_EGRESS: &str = "ec2:RevokeSecurityGroupEgress";
pub const REVOKE_INGRESS: &str = "ec2:RevokeSecurityGroupIngress";
pub const MODIFY_INTERFACE: &str = "ec2:ModifyNetworkInterfaceAttribute";
pub const CREATE_SNAPSHOT: &str = "ec2:CreateSnapshot";
pub const MODIFY_INSTANCE: &str = "ec2:ModifyInstanceAttribute";
pub const CREATE_TAGS: &str = "ec2:CreateTags";
pub const DELETE_TAGS: &str = "ec2:DeleteTags";

/// Error codes that mean the resource is gone (terminated, deleted since the finding).
const GONE: &[&str] = &[
    "InvalidInstanceID.NotFound",
    "InvalidNetworkInterfaceID.NotFound",
    "InvalidVolume.NotFound",
    "InvalidGroup.NotFound",
];

/// An SDK error as the remediation's: a missing resource is `Gone`, anything else an AWS error
/// with its class.
fn error<E>(api: &'static str, e: SdkError<E>) -> RemediationError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match code(&e) {
        Some(c) if GONE.contains(&c) => {
            RemediationError::Gone(format!("{api}: {}", reflex_shared::aws_error::describe(&e)))
        }
        _ => RemediationError::aws(api, e),
    }
}

/// An instance as `DescribeInstances` shows it, in the parts this remediation reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveInstance {
    /// The account that owns it (the reservation's owner).
    pub owner: Option<String>,
    /// `running`, `stopped`, `terminated`…
    pub state: String,
    pub vpc_id: Option<String>,
    /// Each attached interface, by device index, with its groups (sorted).
    pub interfaces: Vec<(String, Vec<String>)>,
    /// The attached EBS volumes (sorted).
    pub volumes: Vec<String>,
    pub tags: BTreeMap<String, String>,
}

impl LiveInstance {
    /// No more interfaces to isolate or volumes to snapshot: terminated or on its way.
    pub fn ended(&self) -> bool {
        matches!(self.state.as_str(), "shutting-down" | "terminated")
    }
}

#[derive(Clone, Debug)]
pub struct Ec2 {
    client: Client,
}

impl Ec2 {
    pub fn new(client: Client) -> Self {
        Ec2 { client }
    }

    /// The instance, or `None` when EC2 does not know it.
    pub async fn instance(&self, id: &str) -> Result<Option<LiveInstance>, RemediationError> {
        let out = match self
            .client
            .describe_instances()
            .instance_ids(id)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e)
                if matches!(
                    code(&e),
                    Some("InvalidInstanceID.NotFound" | "InvalidInstanceID.Malformed")
                ) =>
            {
                return Ok(None)
            }
            Err(e) => return Err(RemediationError::aws(DESCRIBE_INSTANCES, e)),
        };
        let found = out.reservations().iter().find_map(|r| {
            r.instances()
                .iter()
                .find(|i| i.instance_id() == Some(id))
                .map(|i| (r.owner_id(), i))
        });
        let Some((owner, i)) = found else {
            return Ok(None);
        };
        let mut interfaces: Vec<(i32, String, Vec<String>)> = i
            .network_interfaces()
            .iter()
            .filter_map(|n| {
                let id = n.network_interface_id()?.to_string();
                let index = n
                    .attachment()
                    .and_then(|a| a.device_index())
                    .unwrap_or(i32::MAX);
                let mut groups: Vec<String> = n
                    .groups()
                    .iter()
                    .filter_map(|g| g.group_id().map(str::to_string))
                    .collect();
                groups.sort();
                groups.dedup();
                Some((index, id, groups))
            })
            .collect();
        interfaces.sort();
        let mut volumes: Vec<String> = i
            .block_device_mappings()
            .iter()
            .filter_map(|m| m.ebs().and_then(|e| e.volume_id()).map(str::to_string))
            .collect();
        volumes.sort();
        volumes.dedup();
        Ok(Some(LiveInstance {
            owner: owner.map(str::to_string),
            state: i
                .state()
                .and_then(|s| s.name())
                .map(|n| n.as_str().to_string())
                .unwrap_or_default(),
            vpc_id: i.vpc_id().map(str::to_string),
            interfaces: interfaces.into_iter().map(|(_, id, g)| (id, g)).collect(),
            volumes,
            tags: i
                .tags()
                .iter()
                .filter_map(|t| Some((t.key()?.to_string(), t.value()?.to_string())))
                .collect(),
        }))
    }

    /// `DisableApiTermination`.
    pub async fn termination_protection(&self, id: &str) -> Result<bool, RemediationError> {
        let out = self
            .client
            .describe_instance_attribute()
            .instance_id(id)
            .attribute(InstanceAttributeName::DisableApiTermination)
            .send()
            .await
            .map_err(|e| error(DESCRIBE_INSTANCE_ATTRIBUTE, e))?;
        Ok(out
            .disable_api_termination()
            .and_then(|v| v.value())
            .unwrap_or(false))
    }

    /// The VPC's isolation group: the group of Reflex's name in the VPC, carrying Reflex's tag.
    /// A group of that name without the tag is someone else's: Reflex neither uses nor
    /// replaces it, and says so (nothing is changed).
    pub async fn isolation_group(
        &self,
        vpc_id: &str,
    ) -> Result<Option<IsolationGroup>, RemediationError> {
        let name = isolation_group_name(vpc_id);
        let out = self
            .client
            .describe_security_groups()
            .filters(filter("vpc-id", vpc_id))
            .filters(filter("group-name", &name))
            .send()
            .await
            .map_err(|e| error(DESCRIBE_SECURITY_GROUPS, e))?;
        let Some(g) = out.security_groups().first() else {
            return Ok(None);
        };
        let ours = g
            .tags()
            .iter()
            .any(|t| t.key() == Some(ISOLATION_TAG) && t.value() == Some(vpc_id));
        if !ours {
            return Err(RemediationError::Invalid(format!(
                "security group {} is named {name} but lacks the tag {ISOLATION_TAG}={vpc_id}: \
                 Reflex uses only its own isolation group; rename or tag that group",
                g.group_id().unwrap_or("?")
            )));
        }
        Ok(Some(IsolationGroup {
            group_id: g.group_id().unwrap_or_default().to_string(),
            rules: g.ip_permissions().len() + g.ip_permissions_egress().len(),
        }))
    }

    /// Every forensic snapshot Reflex took of the instance (tagged with it), except failed ones.
    pub async fn snapshots(&self, instance_id: &str) -> Result<Vec<Snapshot>, RemediationError> {
        let mut found = Vec::new();
        let mut pages = self
            .client
            .describe_snapshots()
            .owner_ids("self")
            .filters(filter(&format!("tag:{INSTANCE_TAG}"), instance_id))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| error(DESCRIBE_SNAPSHOTS, e))?;
            for s in page.snapshots() {
                if s.state().is_some_and(|st| st.as_str() == "error") {
                    continue;
                }
                let record = s
                    .tags()
                    .iter()
                    .find(|t| t.key() == Some(RECORD_TAG))
                    .and_then(|t| t.value());
                if let (Some(id), Some(volume), Some(record)) =
                    (s.snapshot_id(), s.volume_id(), record)
                {
                    found.push(Snapshot {
                        snapshot_id: id.to_string(),
                        volume_id: volume.to_string(),
                        record_id: record.to_string(),
                    });
                }
            }
        }
        found.sort();
        Ok(found)
    }

    /// Create the VPC's isolation group (named and tagged as Reflex's). Its id. (It comes with
    /// an allow-all egress rule: the next step closes it.)
    pub async fn create_isolation_group(
        &self,
        vpc_id: &str,
        name: &str,
    ) -> Result<String, RemediationError> {
        let tags = TagSpecification::builder()
            .resource_type(ResourceType::SecurityGroup)
            .tags(tag(ISOLATION_TAG, vpc_id))
            .tags(tag("Name", name))
            .build();
        let out = self
            .client
            .create_security_group()
            .vpc_id(vpc_id)
            .group_name(name)
            .description(DESCRIPTION)
            .tag_specifications(tags)
            .send()
            .await
            .map_err(|e| error(CREATE_SECURITY_GROUP, e))?;
        out.group_id().map(str::to_string).ok_or_else(|| {
            RemediationError::Invalid(format!("{CREATE_SECURITY_GROUP} returned no group id"))
        })
    }

    /// Revoke every rule of a group, ingress and egress, exactly as EC2 lists them.
    pub async fn close_group(&self, group_id: &str) -> Result<(), RemediationError> {
        let out = self
            .client
            .describe_security_groups()
            .group_ids(group_id)
            .send()
            .await
            .map_err(|e| error(DESCRIBE_SECURITY_GROUPS, e))?;
        let Some(g) = out.security_groups().first() else {
            return Err(RemediationError::Gone(format!(
                "security group {group_id} no longer exists"
            )));
        };
        if !g.ip_permissions().is_empty() {
            self.client
                .revoke_security_group_ingress()
                .group_id(group_id)
                .set_ip_permissions(Some(g.ip_permissions().to_vec()))
                .send()
                .await
                .map_err(|e| error(REVOKE_INGRESS, e))?;
        }
        if !g.ip_permissions_egress().is_empty() {
            self.client
                .revoke_security_group_egress()
                .group_id(group_id)
                .set_ip_permissions(Some(g.ip_permissions_egress().to_vec()))
                .send()
                .await
                .map_err(|e| error(REVOKE_EGRESS, e))?;
        }
        Ok(())
    }

    /// Set an interface's security groups (all of them: the call replaces the set).
    pub async fn set_interface_groups(
        &self,
        interface: &str,
        groups: &[String],
    ) -> Result<(), RemediationError> {
        self.client
            .modify_network_interface_attribute()
            .network_interface_id(interface)
            .set_groups(Some(groups.to_vec()))
            .send()
            .await
            .map_err(|e| error(MODIFY_INTERFACE, e))?;
        Ok(())
    }

    /// Start a snapshot of the volume, tagged with the record and the instance. Its id.
    pub async fn create_snapshot(
        &self,
        volume_id: &str,
        instance_id: &str,
        record_id: &str,
    ) -> Result<String, RemediationError> {
        let tags = TagSpecification::builder()
            .resource_type(ResourceType::Snapshot)
            .tags(tag(RECORD_TAG, record_id))
            .tags(tag(INSTANCE_TAG, instance_id))
            .build();
        let out = self
            .client
            .create_snapshot()
            .volume_id(volume_id)
            .description(snapshot_description(volume_id, instance_id, record_id))
            .tag_specifications(tags)
            .send()
            .await
            .map_err(|e| error(CREATE_SNAPSHOT, e))?;
        out.snapshot_id().map(str::to_string).ok_or_else(|| {
            RemediationError::Invalid(format!("{CREATE_SNAPSHOT} returned no snapshot id"))
        })
    }

    pub async fn set_termination_protection(
        &self,
        instance_id: &str,
        on: bool,
    ) -> Result<(), RemediationError> {
        self.client
            .modify_instance_attribute()
            .instance_id(instance_id)
            .disable_api_termination(AttributeBooleanValue::builder().value(on).build())
            .send()
            .await
            .map_err(|e| error(MODIFY_INSTANCE, e))?;
        Ok(())
    }

    pub async fn tag_quarantined(
        &self,
        instance_id: &str,
        record_id: &str,
    ) -> Result<(), RemediationError> {
        self.client
            .create_tags()
            .resources(instance_id)
            .tags(tag(QUARANTINED_TAG, record_id))
            .send()
            .await
            .map_err(|e| error(CREATE_TAGS, e))?;
        Ok(())
    }

    pub async fn untag_quarantined(&self, instance_id: &str) -> Result<(), RemediationError> {
        self.client
            .delete_tags()
            .resources(instance_id)
            .tags(Tag::builder().key(QUARANTINED_TAG).build())
            .send()
            .await
            .map_err(|e| error(DELETE_TAGS, e))?;
        Ok(())
    }
}

/// The isolation group's description (EC2 requires one).
pub const DESCRIPTION: &str =
    "Reflex isolation group: no inbound, no outbound. Quarantined instances get only this group.";

pub fn snapshot_description(volume_id: &str, instance_id: &str, record_id: &str) -> String {
    format!("Reflex forensic snapshot of {volume_id} of {instance_id} (record {record_id})")
}

fn filter(name: &str, value: &str) -> Filter {
    Filter::builder().name(name).values(value).build()
}

fn tag(key: &str, value: &str) -> Tag {
    Tag::builder().key(key).value(value).build()
}
