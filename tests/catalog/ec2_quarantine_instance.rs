//! ec2-quarantine-instance against the emulator, through the real SDK: an instance with two
//! interfaces quarantined and verified; two instances of one VPC quarantined at once sharing
//! one isolation group; a failure at the third step recorded step by step and rolled back;
//! rollback keeping the snapshots; a look-alike group refused; and the common cases.
//!
//! moto shows each interface's own groups *plus* the groups the instance was launched with
//! (design.md), so an interface that AWS shows on the isolation group alone would show two
//! groups there. The instances here are launched as AWS keeps them for a multi-interface
//! instance: each interface with its own groups (`NetworkInterfaces[].Groups`), none on the
//! instance itself; moto then shows exactly what AWS would. `launched_with_instance_groups`
//! covers the other launch, with an interceptor that shows what AWS would.

use aws_sdk_ec2::types::{
    Filter, InstanceNetworkInterfaceSpecification, ResourceType, Tag,
    TagSpecification,
};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeDeserializationInterceptorContextMut, BeforeTransmitInterceptorContextMut,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};
use ec2_quarantine_instance::model::{isolation_group_name, QUARANTINED_TAG, RECORD_TAG};
use ec2_quarantine_instance::Ec2QuarantineInstance;
use reflex_shared::pipeline::{self, Handled, PipelineError};
use reflex_shared::status::{Reason, Status};
use reflex_tests::{sample, Harness, ACCOUNT};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub const ENFORCE: &str = "version: 1\nremediations:\n  ec2-quarantine-instance: {mode: enforce}";
const SAMPLE: &str = "ec2-quarantine-instance/guardduty-backdoor-c-and-c-activity.json";
const SAMPLE_INSTANCE: &str = "i-0badc0ffee1234567";

/// The test's own EC2 client: setting up and reading, never logged.
pub fn observer(h: &Harness) -> aws_sdk_ec2::Client {
    aws_sdk_ec2::Client::new(&h.sdk)
}

/// The function under test, its EC2 calls logged in `h.calls`, with more interceptors if given.
pub fn quarantine(h: &Harness, refuse: Option<RefuseOnce>) -> Ec2QuarantineInstance {
    let mut conf = aws_sdk_ec2::config::Builder::from(&h.sdk).interceptor(h.calls.clone());
    if let Some(r) = refuse {
        conf = conf.interceptor(r);
    }
    Ec2QuarantineInstance::from_client(aws_sdk_ec2::Client::from_conf(conf.build()))
}

/// A VPC of the test's own and a subnet in it.
pub struct Vpc {
    pub id: String,
    pub subnet: String,
}

pub async fn vpc(ec2: &aws_sdk_ec2::Client) -> Vpc {
    let id = ec2
        .create_vpc()
        .cidr_block("10.0.0.0/16")
        .send()
        .await
        .expect("create a VPC")
        .vpc()
        .and_then(|v| v.vpc_id())
        .unwrap()
        .to_string();
    let subnet = ec2
        .create_subnet()
        .vpc_id(&id)
        .cidr_block("10.0.1.0/24")
        .send()
        .await
        .expect("create a subnet")
        .subnet()
        .and_then(|s| s.subnet_id())
        .unwrap()
        .to_string();
    Vpc { id, subnet }
}

async fn security_group(ec2: &aws_sdk_ec2::Client, vpc: &Vpc) -> String {
    ec2.create_security_group()
        .vpc_id(&vpc.id)
        .group_name(reflex_tests::unique("app"))
        .description("an application's group")
        .send()
        .await
        .expect("create a group")
        .group_id()
        .unwrap()
        .to_string()
}

/// An instance in `vpc` with `interfaces` interfaces, each on a group of its own; tagged as
/// given. Its id.
pub async fn instance(
    ec2: &aws_sdk_ec2::Client,
    vpc: &Vpc,
    interfaces: usize,
    tags: &[(&str, &str)],
) -> String {
    let image = ec2
        .describe_images()
        .send()
        .await
        .expect("images")
        .images()
        .first()
        .and_then(|i| i.image_id())
        .unwrap()
        .to_string();
    let primary = InstanceNetworkInterfaceSpecification::builder()
        .device_index(0)
        .subnet_id(&vpc.subnet)
        .groups(security_group(ec2, vpc).await)
        .build();
    let mut run = ec2
        .run_instances()
        .image_id(image)
        .min_count(1)
        .max_count(1)
        .network_interfaces(primary);
    if !tags.is_empty() {
        let mut spec = TagSpecification::builder().resource_type(ResourceType::Instance);
        for (k, v) in tags {
            spec = spec.tags(Tag::builder().key(*k).value(*v).build());
        }
        run = run.tag_specifications(spec.build());
    }
    let id = run.send().await.expect("run an instance").instances()[0]
        .instance_id()
        .unwrap()
        .to_string();
    for index in 1..interfaces {
        let eni = ec2
            .create_network_interface()
            .subnet_id(&vpc.subnet)
            .groups(security_group(ec2, vpc).await)
            .send()
            .await
            .expect("create an interface")
            .network_interface()
            .and_then(|n| n.network_interface_id())
            .unwrap()
            .to_string();
        ec2.attach_network_interface()
            .network_interface_id(eni)
            .instance_id(&id)
            .device_index(index as i32)
            .send()
            .await
            .expect("attach the interface");
    }
    id
}

/// A GuardDuty finding (the committed sample) about `instance`, with a finding id of its own.
pub fn event(instance: &str, finding: &str) -> Value {
    let mut e: Value = serde_json::from_str(&sample(SAMPLE).replace(SAMPLE_INSTANCE, instance))
        .expect("sample is JSON");
    e["detail"]["id"] = Value::from(finding);
    e
}

pub fn arn(instance: &str) -> String {
    format!("arn:aws:ec2:us-east-1:{ACCOUNT}:instance/{instance}")
}

/// Each interface of the instance and its groups (sorted), as EC2 shows them.
pub async fn interfaces(ec2: &aws_sdk_ec2::Client, id: &str) -> BTreeMap<String, Vec<String>> {
    let out = ec2
        .describe_instances()
        .instance_ids(id)
        .send()
        .await
        .unwrap();
    let i = &out.reservations()[0].instances()[0];
    i.network_interfaces()
        .iter()
        .map(|n| {
            let mut g: Vec<String> = n
                .groups()
                .iter()
                .map(|g| g.group_id().unwrap().to_string())
                .collect();
            g.sort();
            (n.network_interface_id().unwrap().to_string(), g)
        })
        .collect()
}

pub async fn vpc_of(ec2: &aws_sdk_ec2::Client, id: &str) -> String {
    let out = ec2
        .describe_instances()
        .instance_ids(id)
        .send()
        .await
        .unwrap();
    out.reservations()[0].instances()[0]
        .vpc_id()
        .unwrap()
        .to_string()
}

pub async fn protected(ec2: &aws_sdk_ec2::Client, id: &str) -> bool {
    ec2.describe_instance_attribute()
        .instance_id(id)
        .attribute(aws_sdk_ec2::types::InstanceAttributeName::DisableApiTermination)
        .send()
        .await
        .unwrap()
        .disable_api_termination()
        .and_then(|v| v.value())
        .unwrap()
}

pub async fn quarantined_tag(ec2: &aws_sdk_ec2::Client, id: &str) -> Option<String> {
    let out = ec2
        .describe_instances()
        .instance_ids(id)
        .send()
        .await
        .unwrap();
    out.reservations()[0].instances()[0]
        .tags()
        .iter()
        .find(|t| t.key() == Some(QUARANTINED_TAG))
        .and_then(|t| t.value().map(str::to_string))
}

/// Every group named as the VPC's isolation group: (id, how many rules).
pub async fn isolation_groups(ec2: &aws_sdk_ec2::Client, vpc: &str) -> Vec<(String, usize)> {
    let out = ec2
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
        .unwrap();
    out.security_groups()
        .iter()
        .map(|g| {
            (
                g.group_id().unwrap().to_string(),
                g.ip_permissions().len() + g.ip_permissions_egress().len(),
            )
        })
        .collect()
}

/// The snapshots of the instance's volumes: (snapshot, volume, its `reflex:record` tag).
pub async fn snapshots(ec2: &aws_sdk_ec2::Client, id: &str) -> Vec<(String, String, String)> {
    let out = ec2
        .describe_instances()
        .instance_ids(id)
        .send()
        .await
        .unwrap();
    let volumes: Vec<String> = out.reservations()[0].instances()[0]
        .block_device_mappings()
        .iter()
        .filter_map(|m| m.ebs().and_then(|e| e.volume_id()).map(str::to_string))
        .collect();
    let out = ec2
        .describe_snapshots()
        .owner_ids("self")
        .filters(Filter::builder().name("volume-id").set_values(Some(volumes)).build())
        .send()
        .await
        .unwrap();
    out.snapshots()
        .iter()
        .map(|s| {
            let record = s
                .tags()
                .iter()
                .find(|t| t.key() == Some(RECORD_TAG))
                .and_then(|t| t.value())
                .unwrap_or_default();
            (
                s.snapshot_id().unwrap().to_string(),
                s.volume_id().unwrap().to_string(),
                record.to_string(),
            )
        })
        .collect()
}

/// Whether the instance is quarantined: every interface on the VPC's isolation group alone
/// (a group with no rules), termination protection on, the tag set.
pub async fn is_quarantined(ec2: &aws_sdk_ec2::Client, id: &str) -> bool {
    let vpc = vpc_of(ec2, id).await;
    let groups = isolation_groups(ec2, &vpc).await;
    let [(group, 0)] = groups.as_slice() else {
        return false;
    };
    interfaces(ec2, id)
        .await
        .values()
        .all(|g| g.as_slice() == [group.clone()])
        && protected(ec2, id).await
        && quarantined_tag(ec2, id).await.is_some()
}

/// Deliver as Lambda would: again after an error (the VPC busy with another finding), a few
/// times.
async fn deliver_until_done(h: &Harness, r: &Ec2QuarantineInstance, e: Value) -> Handled {
    for _ in 0..20 {
        match h.deliver_to(r, e.clone()).await {
            Ok(mut o) => return o.remove(0),
            Err(PipelineError::Busy { .. }) => {
                tokio::time::sleep(std::time::Duration::from_millis(250)).await
            }
            Err(e) => panic!("{e:?}"),
        }
    }
    panic!("still busy after 20 deliveries")
}

fn apis(actions: &[reflex_shared::ledger::Action]) -> Vec<(&str, bool)> {
    actions
        .iter()
        .map(|a| (a.api.as_str(), a.took_effect()))
        .collect()
}

#[tokio::test]
async fn an_instance_with_two_interfaces_is_quarantined_and_verified() {
    let h = Harness::with_policy(ENFORCE).await;
    let ec2 = observer(&h);
    let net = vpc(&ec2).await;
    let id = instance(&ec2, &net, 2, &[]).await;
    let before = interfaces(&ec2, &id).await;
    assert_eq!(before.len(), 2);
    let r = quarantine(&h, None);
    let o = h.deliver_to(&r, event(&id, "two-interfaces")).await.unwrap().remove(0);
    assert_eq!((o.status, o.reason), (Status::Succeeded, Reason::Remediated), "{o:?}");

    // AWS as the fix left it.
    let groups = isolation_groups(&ec2, &net.id).await;
    let [(group, 0)] = groups.as_slice() else {
        panic!("one closed isolation group: {groups:?}")
    };
    let after = interfaces(&ec2, &id).await;
    assert_eq!(after.keys().collect::<Vec<_>>(), before.keys().collect::<Vec<_>>());
    assert!(after.values().all(|g| g == &[group.clone()]), "{after:?}");
    assert!(protected(&ec2, &id).await);
    assert_eq!(quarantined_tag(&ec2, &id).await.as_deref(), Some(o.record_id.as_str()));
    let snaps = snapshots(&ec2, &id).await;
    assert_eq!(snaps.len(), 1, "one volume, one snapshot: {snaps:?}");
    assert_eq!(snaps[0].2, o.record_id, "tagged with the record");

    // The record: each step with its result and output.
    let rec = h.record(&o.record_id).await;
    assert_eq!(rec.verified, Some(true));
    assert_eq!(
        apis(&rec.actions),
        [
            ("ec2:CreateSecurityGroup", true),
            ("ec2:RevokeSecurityGroupEgress", true),
            ("ec2:ModifyNetworkInterfaceAttribute", true),
            ("ec2:ModifyNetworkInterfaceAttribute", true),
            ("ec2:CreateSnapshot", true),
            ("ec2:ModifyInstanceAttribute", true),
            ("ec2:CreateTags", true),
        ]
    );
    assert_eq!(
        rec.actions[0].output,
        Some(serde_json::json!({"kind": "isolation-group", "group_id": group}))
    );
    assert_eq!(
        rec.actions[4].output,
        Some(serde_json::json!({"kind": "snapshot", "snapshot_id": snaps[0].0}))
    );
    let isolated: Vec<_> = rec.actions[2..4]
        .iter()
        .map(|a| a.parameters["NetworkInterfaceId"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(isolated, before.keys().cloned().collect::<Vec<_>>());
    // One write per step; the group's creation and closing are two steps.
    assert_eq!(h.calls.writes().len(), rec.actions.len(), "{:?}", h.calls.calls());
    // The stored target names the instance's interfaces, as EC2 gave them.
    let target = rec.target.clone().expect("the target is stored");
    assert_eq!(target["vpc_id"], net.id.as_str());
    assert_eq!(target["interfaces"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn two_instances_of_one_vpc_quarantined_at_once_share_one_isolation_group() {
    let h = Harness::with_policy(ENFORCE).await;
    let ec2 = observer(&h);
    let net = vpc(&ec2).await;
    let a = instance(&ec2, &net, 1, &[]).await;
    let b = instance(&ec2, &net, 2, &[]).await;
    let r = quarantine(&h, None);
    let (oa, ob) = tokio::join!(
        deliver_until_done(&h, &r, event(&a, "at-once-a")),
        deliver_until_done(&h, &r, event(&b, "at-once-b")),
    );
    for o in [&oa, &ob] {
        assert_eq!((o.status, o.reason), (Status::Succeeded, Reason::Remediated), "{o:?}");
    }
    let groups = isolation_groups(&ec2, &net.id).await;
    assert_eq!(groups.len(), 1, "exactly one isolation group: {groups:?}");
    assert!(is_quarantined(&ec2, &a).await && is_quarantined(&ec2, &b).await);
    // One of them created it; the other used it.
    let created = |o: &Handled| {
        let o = o.record_id.clone();
        async move { apis(&h.record(&o).await.actions).contains(&("ec2:CreateSecurityGroup", true)) }
    };
    assert_ne!(created(&oa).await, created(&ob).await);
}

#[tokio::test]
async fn a_failure_at_the_third_step_is_recorded_step_by_step_and_rolled_back() {
    let h = Harness::with_policy(ENFORCE).await;
    let ec2 = observer(&h);
    let net = vpc(&ec2).await;
    // The VPC's isolation group exists already: another instance was quarantined before.
    let earlier = instance(&ec2, &net, 1, &[]).await;
    let o = h
        .deliver_to(&quarantine(&h, None), event(&earlier, "third-step-earlier"))
        .await
        .unwrap()
        .remove(0);
    assert_eq!(o.status, Status::Succeeded, "{o:?}");
    let id = instance(&ec2, &net, 2, &[]).await;
    let before = interfaces(&ec2, &id).await;

    // EC2 refuses the snapshot once, for good (UnauthorizedOperation): the third step.
    let refuse = RefuseOnce::new("CreateSnapshot");
    let r = quarantine(&h, Some(refuse.clone()));
    let o = h.deliver_to(&r, event(&id, "third-step")).await.unwrap().remove(0);
    assert_eq!((o.status, o.reason), (Status::Failed, Reason::ActionError), "{o:?}");
    assert!(refuse.fired());
    let rec = h.record(&o.record_id).await;
    assert_eq!(
        apis(&rec.actions)[..3],
        [
            ("ec2:ModifyNetworkInterfaceAttribute", true),
            ("ec2:ModifyNetworkInterfaceAttribute", true),
            ("ec2:CreateSnapshot", false),
        ],
        "{:?}",
        rec.actions
    );
    assert!(
        rec.actions[3..].iter().all(|a| !a.took_effect()),
        "nothing after the failure: {:?}",
        rec.actions
    );
    assert!(format!("{:?}", rec.actions[2].result).contains("UnauthorizedOperation"));
    let isolated = interfaces(&ec2, &id).await;
    assert!(isolated.values().all(|g| g.len() == 1 && !before.values().any(|b| b == g)));
    assert!(!protected(&ec2, &id).await);
    assert!(snapshots(&ec2, &id).await.is_empty());

    // Rolled back: each interface has its groups again.
    let by = "arn:aws:iam::123456789012:user/operator";
    let until = chrono::Utc::now() + chrono::Duration::hours(1);
    let rolled = pipeline::rollback(&h.setup, &r, &o.record_id, by, false, until)
        .await
        .unwrap();
    assert_eq!(rolled.status, Status::RolledBack, "{rolled:?}");
    assert_eq!(interfaces(&ec2, &id).await, before);
    assert!(!protected(&ec2, &id).await);
    assert_eq!(quarantined_tag(&ec2, &id).await, None);
    // The other instance's quarantine, and the group, are untouched.
    assert!(is_quarantined(&ec2, &earlier).await);
}

#[tokio::test]
async fn rollback_restores_groups_and_protection_and_keeps_the_snapshots() {
    let h = Harness::with_policy(ENFORCE).await;
    let ec2 = observer(&h);
    let net = vpc(&ec2).await;
    let id = instance(&ec2, &net, 2, &[]).await;
    let before = interfaces(&ec2, &id).await;
    let r = quarantine(&h, None);
    let o = h.deliver_to(&r, event(&id, "rollback")).await.unwrap().remove(0);
    assert_eq!(o.status, Status::Succeeded, "{o:?}");
    let snaps = snapshots(&ec2, &id).await;
    assert_eq!(snaps.len(), 1);

    let by = "arn:aws:iam::123456789012:user/operator";
    let until = chrono::Utc::now() + chrono::Duration::hours(1);
    let rolled = pipeline::rollback(&h.setup, &r, &o.record_id, by, false, until)
        .await
        .unwrap();
    assert_eq!(rolled.status, Status::RolledBack, "{rolled:?}");
    assert_eq!(interfaces(&ec2, &id).await, before, "each interface's groups back");
    assert!(!protected(&ec2, &id).await, "termination protection off again");
    assert_eq!(quarantined_tag(&ec2, &id).await, None);
    assert_eq!(snapshots(&ec2, &id).await, snaps, "the evidence is kept");
    assert_eq!(isolation_groups(&ec2, &net.id).await.len(), 1, "the group is kept");
    let rec = h.record(&o.record_id).await;
    let rb = rec.rollback.expect("the rollback is on the record");
    assert_eq!(
        rb.actions.iter().map(|a| a.api.as_str()).collect::<Vec<_>>(),
        [
            "ec2:ModifyNetworkInterfaceAttribute",
            "ec2:ModifyNetworkInterfaceAttribute",
            "ec2:ModifyInstanceAttribute",
            "ec2:DeleteTags",
        ]
    );
}

#[tokio::test]
async fn a_group_named_like_the_isolation_group_but_not_reflexs_is_refused() {
    let h = Harness::with_policy(ENFORCE).await;
    let ec2 = observer(&h);
    let net = vpc(&ec2).await;
    let id = instance(&ec2, &net, 1, &[]).await;
    let before = interfaces(&ec2, &id).await;
    // Someone's group under Reflex's name, without Reflex's tag (and open to the world).
    ec2.create_security_group()
        .vpc_id(&net.id)
        .group_name(isolation_group_name(&net.id))
        .description("not Reflex's")
        .send()
        .await
        .unwrap();
    let r = quarantine(&h, None);
    let o = h.deliver_to(&r, event(&id, "look-alike")).await.unwrap().remove(0);
    assert_eq!((o.status, o.reason), (Status::Failed, Reason::InspectError), "{o:?}");
    assert!(o.detail.contains("lacks the tag reflex:isolation"), "{o:?}");
    assert!(h.calls.writes().is_empty(), "{:?}", h.calls.calls());
    assert_eq!(interfaces(&ec2, &id).await, before);
}

#[tokio::test]
async fn launched_with_instance_groups_verified_as_aws_would_show_it() {
    // moto adds the groups an instance was launched with (`SecurityGroupIds`) to every view
    // of every interface; AWS shows each interface's own groups. `AwsView` rewrites moto's
    // `DescribeInstances` answers to AWS's view (it drops the launch groups from an interface
    // that has others), so the quarantine is verified as it would be on AWS.
    let h = Harness::with_policy(ENFORCE).await;
    let ec2 = observer(&h);
    let net = vpc(&ec2).await;
    let launch = security_group(&ec2, &net).await;
    let image = ec2.describe_images().send().await.unwrap().images()[0]
        .image_id()
        .unwrap()
        .to_string();
    let id = ec2
        .run_instances()
        .image_id(image)
        .min_count(1)
        .max_count(1)
        .subnet_id(&net.subnet)
        .security_group_ids(&launch)
        .send()
        .await
        .unwrap()
        .instances()[0]
        .instance_id()
        .unwrap()
        .to_string();
    let view = AwsView::new(vec![launch.clone()]);
    let conf = aws_sdk_ec2::config::Builder::from(&h.sdk)
        .interceptor(h.calls.clone())
        .interceptor(view.clone())
        .build();
    let r = Ec2QuarantineInstance::from_client(aws_sdk_ec2::Client::from_conf(conf));
    let o = h.deliver_to(&r, event(&id, "launch-groups")).await.unwrap().remove(0);
    assert_eq!((o.status, o.reason), (Status::Succeeded, Reason::Remediated), "{o:?}");
    let rec = h.record(&o.record_id).await;
    assert_eq!(rec.verified, Some(true));
    assert!(view.rewrote(), "the answers were rewritten to AWS's view");
    let groups = isolation_groups(&ec2, &net.id).await;
    let eni = rec.actions[2].parameters["NetworkInterfaceId"].clone();
    assert_eq!(
        rec.actions[2].parameters,
        serde_json::json!({"NetworkInterfaceId": eni, "Groups": [groups[0].0]})
    );
}

/// Fails one operation, once, as EC2 would refuse it for good (`UnauthorizedOperation`, 403):
/// the request reaching the emulator is turned into a harmless read (so nothing changes
/// there), and the answer into EC2's refusal. moto cannot be made to refuse a snapshot.
#[derive(Debug, Clone)]
pub struct RefuseOnce {
    operation: &'static str,
    fired: Arc<AtomicBool>,
}

#[derive(Debug)]
struct Refused;

impl Storable for Refused {
    type Storer = StoreReplace<Self>;
}

impl RefuseOnce {
    pub fn new(operation: &'static str) -> Self {
        RefuseOnce {
            operation,
            fired: Arc::default(),
        }
    }

    pub fn fired(&self) -> bool {
        self.fired.load(Ordering::SeqCst)
    }
}

const REFUSAL: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>UnauthorizedOperation</Code><Message>You are not authorized to perform this operation.</Message></Error></Errors><RequestID>reflex-test-refusal</RequestID></Response>";
const HARMLESS: &str = "Action=DescribeRegions&Version=2016-11-15";

impl Intercept for RefuseOnce {
    fn name(&self) -> &'static str {
        "RefuseOnce"
    }

    fn modify_before_transmit(
        &self,
        ctx: &mut BeforeTransmitInterceptorContextMut<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let ours = cfg.load::<Metadata>().map(|m| m.name()) == Some(self.operation);
        if ours && !self.fired.swap(true, Ordering::SeqCst) {
            let req = ctx.request_mut();
            *req.body_mut() = SdkBody::from(HARMLESS);
            req.headers_mut()
                .insert("content-length", HARMLESS.len().to_string());
            cfg.interceptor_state().store_put(Refused);
        }
        Ok(())
    }

    fn modify_before_deserialization(
        &self,
        ctx: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if cfg.load::<Refused>().is_some() {
            let resp = ctx.response_mut();
            *resp.status_mut() = aws_smithy_runtime_api::http::StatusCode::try_from(403).unwrap();
            resp.headers_mut()
                .insert("content-length", REFUSAL.len().to_string());
            *resp.body_mut() = SdkBody::from(REFUSAL);
        }
        Ok(())
    }
}

/// Rewrites moto's `DescribeInstances` answers to what AWS shows: an interface's groups without
/// the instance's launch groups, unless those are all it has (then they are its own).
#[derive(Debug, Clone)]
pub struct AwsView {
    launch_groups: Vec<String>,
    rewrote: Arc<AtomicBool>,
}

impl AwsView {
    pub fn new(launch_groups: Vec<String>) -> Self {
        AwsView {
            launch_groups,
            rewrote: Arc::default(),
        }
    }

    pub fn rewrote(&self) -> bool {
        self.rewrote.load(Ordering::SeqCst)
    }
}

impl Intercept for AwsView {
    fn name(&self) -> &'static str {
        "AwsView"
    }

    fn modify_before_attempt_completion(
        &self,
        ctx: &mut aws_smithy_runtime_api::client::interceptors::context::FinalizerInterceptorContextMut<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        use aws_sdk_ec2::operation::describe_instances::DescribeInstancesOutput;
        let Some(Ok(output)) = ctx.output_or_error_mut() else {
            return Ok(());
        };
        let Some(out) = output.downcast_mut::<DescribeInstancesOutput>() else {
            return Ok(());
        };
        let mut rebuilt = Vec::new();
        for r in out.reservations() {
            let mut instances = Vec::new();
            for i in r.instances() {
                let mut nics = Vec::new();
                for n in i.network_interfaces() {
                    let own: Vec<_> = n
                        .groups()
                        .iter()
                        .filter(|g| {
                            !self
                                .launch_groups
                                .iter()
                                .any(|l| g.group_id() == Some(l.as_str()))
                        })
                        .cloned()
                        .collect();
                    let mut n = n.clone();
                    if !own.is_empty() && own.len() != n.groups().len() {
                        self.rewrote.store(true, Ordering::SeqCst);
                        n.groups = Some(own);
                    }
                    nics.push(n);
                }
                let mut i = i.clone();
                i.network_interfaces = Some(nics);
                instances.push(i);
            }
            let mut r = r.clone();
            r.instances = Some(instances);
            rebuilt.push(r);
        }
        out.reservations = Some(rebuilt);
        Ok(())
    }
}
