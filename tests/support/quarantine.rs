//! ec2-quarantine-instance as a [`Subject`] of the common cases, and what its own tests share:
//! reading whether an instance is quarantined, and [`AwsView`].
//!
//! moto shows each interface's own groups *plus* the groups the instance was launched with
//! (design.md); AWS shows each interface's own. An instance from [`Harness::instance`] (launched
//! with `SecurityGroupIds`) would show its launch group beside the isolation group on every
//! interface, and a quarantine AWS would verify would not verify here. So the function's EC2
//! client gets [`AwsView`], which rewrites moto's `DescribeInstances` answers to AWS's view,
//! and the test's reads apply the same view ([`interface_groups`]).

use crate::common::Subject;
use crate::{sample, Harness, ACCOUNT};
use aws_sdk_ec2::operation::describe_instances::DescribeInstancesOutput;
use aws_sdk_ec2::types::{Filter, GroupIdentifier, Instance};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::FinalizerInterceptorContextMut;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use ec2_quarantine_instance::model::{isolation_group_name, QUARANTINED_TAG};
use ec2_quarantine_instance::Ec2QuarantineInstance;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// The committed GuardDuty sample the cases deliver, and the instance id it names.
pub const SAMPLE: &str = "ec2-quarantine-instance/guardduty-backdoor-c-and-c-activity.json";
pub const SAMPLE_INSTANCE: &str = "i-0badc0ffee1234567";

/// The GuardDuty sample about `instance`, under the finding id `finding`.
pub fn event(instance: &str, finding: &str) -> Value {
    let mut e: Value = serde_json::from_str(&sample(SAMPLE).replace(SAMPLE_INSTANCE, instance))
        .expect("sample is JSON");
    crate::set_guardduty_id(&mut e, finding);
    e
}

pub fn arn(instance: &str) -> String {
    format!("arn:aws:ec2:us-east-1:{ACCOUNT}:instance/{instance}")
}

/// Rewrites moto's `DescribeInstances` answers to what AWS shows: each interface's groups
/// without the instance's launch groups (moto's `Instance.SecurityGroups`), unless those are
/// all the interface has (then they are its own). Counts the interfaces it corrected.
#[derive(Debug, Clone, Default)]
pub struct AwsView {
    corrected: Arc<AtomicUsize>,
}

impl AwsView {
    pub fn corrected(&self) -> usize {
        self.corrected.load(Ordering::SeqCst)
    }
}

/// One instance as AWS would show it (see [`AwsView`]); how many interfaces it corrected.
pub fn aws_view(i: &mut Instance) -> usize {
    let launch: Vec<String> = i
        .security_groups()
        .iter()
        .filter_map(|g| g.group_id().map(str::to_string))
        .collect();
    let mut corrected = 0;
    for n in i.network_interfaces.iter_mut().flatten() {
        let own: Vec<GroupIdentifier> = n
            .groups()
            .iter()
            .filter(|g| !launch.iter().any(|l| g.group_id() == Some(l.as_str())))
            .cloned()
            .collect();
        if !own.is_empty() && own.len() != n.groups().len() {
            n.groups = Some(own);
            corrected += 1;
        }
    }
    corrected
}

impl Intercept for AwsView {
    fn name(&self) -> &'static str {
        "AwsView"
    }

    fn modify_before_attempt_completion(
        &self,
        ctx: &mut FinalizerInterceptorContextMut<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(Ok(output)) = ctx.output_or_error_mut() else {
            return Ok(());
        };
        let Some(out) = output.downcast_mut::<DescribeInstancesOutput>() else {
            return Ok(());
        };
        for r in out.reservations.iter_mut().flatten() {
            for i in r.instances.iter_mut().flatten() {
                self.corrected.fetch_add(aws_view(i), Ordering::SeqCst);
            }
        }
        Ok(())
    }
}

/// The function with its calls logged in `h.calls`, seeing EC2 as AWS would show it.
pub fn quarantine_as_aws_shows(h: &Harness, view: &AwsView) -> Ec2QuarantineInstance {
    Ec2QuarantineInstance::from_client(aws_sdk_ec2::Client::from_conf(
        aws_sdk_ec2::config::Builder::from(&h.sdk)
            .interceptor(h.calls.clone())
            .interceptor(view.clone())
            .build(),
    ))
}

/// Each interface of the instance and its groups (sorted), as AWS would show them.
pub async fn interface_groups(h: &Harness, id: &str) -> BTreeMap<String, Vec<String>> {
    let mut i = h.described_instance(id).await;
    aws_view(&mut i);
    i.network_interfaces()
        .iter()
        .map(|n| {
            let mut g: Vec<String> = n
                .groups()
                .iter()
                .filter_map(|g| g.group_id().map(str::to_string))
                .collect();
            g.sort();
            (n.network_interface_id().unwrap_or_default().to_string(), g)
        })
        .collect()
}

/// Every group named as the VPC's isolation group: (id, how many rules it holds).
pub async fn isolation_groups(h: &Harness, vpc: &str) -> Vec<(String, usize)> {
    let out = h
        .ec2_observer()
        .describe_security_groups()
        .filters(Filter::builder().name("vpc-id").values(vpc).build())
        .filters(
            Filter::builder()
                .name("group-name")
                .values(isolation_group_name(vpc))
                .build(),
        )
        .send()
        .await
        .expect("describe the isolation group");
    out.security_groups()
        .iter()
        .map(|g| {
            (
                g.group_id().unwrap_or_default().to_string(),
                g.ip_permissions().len() + g.ip_permissions_egress().len(),
            )
        })
        .collect()
}

pub async fn termination_protection(h: &Harness, id: &str) -> bool {
    h.ec2_observer()
        .describe_instance_attribute()
        .instance_id(id)
        .attribute(aws_sdk_ec2::types::InstanceAttributeName::DisableApiTermination)
        .send()
        .await
        .expect("describe the attribute")
        .disable_api_termination()
        .and_then(|v| v.value())
        .unwrap_or(false)
}

pub async fn quarantined_tag(h: &Harness, id: &str) -> Option<String> {
    h.described_instance(id)
        .await
        .tags()
        .iter()
        .find(|t| t.key() == Some(QUARANTINED_TAG))
        .and_then(|t| t.value().map(str::to_string))
}

/// Quarantined: every interface on the VPC's one closed isolation group alone (as AWS would
/// show it), termination protection on, the tag set.
pub async fn is_quarantined(h: &Harness, id: &str) -> bool {
    let vpc = h
        .described_instance(id)
        .await
        .vpc_id()
        .unwrap_or_default()
        .to_string();
    let groups = isolation_groups(h, &vpc).await;
    let [(group, 0)] = groups.as_slice() else {
        return false;
    };
    interface_groups(h, id)
        .await
        .values()
        .all(|g| g.as_slice() == [group.clone()])
        && termination_protection(h, id).await
        && quarantined_tag(h, id).await.is_some()
}

/// ec2-quarantine-instance is reversible (rollback gives back the groups, the protection flag
/// and the tag, keeping the snapshots) and has an already-quarantined state: it opts out of no
/// case. Its default mode is `approve` (high risk); the cases name their modes.
impl Subject for Ec2QuarantineInstance {
    const SPEC: &'static reflex_shared::remediation::Spec = &ec2_quarantine_instance::SPEC;

    fn new(h: &Harness) -> Self {
        quarantine_as_aws_shows(h, &AwsView::default())
    }

    async fn noncompliant(h: &Harness, tags: &[(&str, &str)]) -> String {
        h.instance(true, tags).await.instance_id
    }

    /// An instance quarantined earlier (by hand, as a record `earlier` would have left it):
    /// isolated on the VPC's closed isolation group, its volume snapshotted, protected, tagged.
    async fn compliant(h: &Harness) -> String {
        use aws_sdk_ec2::types::{AttributeBooleanValue, ResourceType, Tag, TagSpecification};
        use ec2_quarantine_instance::model::{INSTANCE_TAG, ISOLATION_TAG, RECORD_TAG};
        let i = h.instance(true, &[]).await;
        let ec2 = h.ec2_observer();
        let tag = |k: &str, v: &str| Tag::builder().key(k).value(v).build();
        let group = ec2
            .create_security_group()
            .vpc_id(&i.vpc_id)
            .group_name(isolation_group_name(&i.vpc_id))
            .description("isolation")
            .tag_specifications(
                TagSpecification::builder()
                    .resource_type(ResourceType::SecurityGroup)
                    .tags(tag(ISOLATION_TAG, &i.vpc_id))
                    .build(),
            )
            .send()
            .await
            .unwrap()
            .group_id()
            .unwrap()
            .to_string();
        let open = ec2
            .describe_security_groups()
            .group_ids(&group)
            .send()
            .await
            .unwrap();
        ec2.revoke_security_group_egress()
            .group_id(&group)
            .set_ip_permissions(Some(
                open.security_groups()[0].ip_permissions_egress().to_vec(),
            ))
            .send()
            .await
            .unwrap();
        for eni in &i.network_interface_ids {
            ec2.modify_network_interface_attribute()
                .network_interface_id(eni)
                .groups(&group)
                .send()
                .await
                .unwrap();
        }
        for volume in &i.volume_ids {
            ec2.create_snapshot()
                .volume_id(volume)
                .tag_specifications(
                    TagSpecification::builder()
                        .resource_type(ResourceType::Snapshot)
                        .tags(tag(RECORD_TAG, "earlier"))
                        .tags(tag(INSTANCE_TAG, &i.instance_id))
                        .build(),
                )
                .send()
                .await
                .unwrap();
        }
        ec2.modify_instance_attribute()
            .instance_id(&i.instance_id)
            .disable_api_termination(AttributeBooleanValue::builder().value(true).build())
            .send()
            .await
            .unwrap();
        ec2.create_tags()
            .resources(&i.instance_id)
            .tags(tag(QUARANTINED_TAG, "earlier"))
            .send()
            .await
            .unwrap();
        i.instance_id
    }

    fn event(id: &str) -> Value {
        event(id, &format!("quarantine-{id}"))
    }

    fn recurrence(id: &str) -> Value {
        let mut e = event(id, &format!("quarantine-{id}"));
        e["detail"]["updatedAt"] = json!("2026-12-01T00:00:00.000Z");
        e
    }

    async fn arn(_h: &Harness, id: &str) -> String {
        arn(id)
    }

    async fn fixed(h: &Harness, id: &str) -> bool {
        is_quarantined(h, id).await
    }
}
