//! ec2-quarantine-instance against the emulator, through the real SDK: an instance with two
//! interfaces quarantined and verified; two instances of one VPC quarantined at once sharing
//! one isolation group; a failure at the third step recorded step by step and rolled back;
//! rollback keeping the snapshots; a look-alike group refused; and the common cases.
//!
//! moto shows each interface's own groups *plus* the groups the instance was launched with
//! (design.md), so an interface that AWS shows on the isolation group alone would show two
//! groups there. The instances of this file's own tests are launched with their groups on
//! their interfaces (`NetworkInterfaces[].Groups`), none on the instance itself: moto then
//! shows exactly what AWS would. The common cases launch with `SecurityGroupIds`
//! (`Harness::instance`) and see EC2 through `AwsView` (tests/support/quarantine.rs), which
//! rewrites moto's answers to AWS's view; `moto_adds_launch_groups_and_the_aws_view_removes_them`
//! shows that it must.

use aws_sdk_ec2::types::{
    Filter, InstanceNetworkInterfaceSpecification, ResourceType, Tag, TagSpecification,
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
use ec2_quarantine_instance::model::{isolation_group_name, RECORD_TAG};
use ec2_quarantine_instance::Ec2QuarantineInstance;
use reflex_shared::pipeline::{self, Handled, PipelineError};
use reflex_shared::status::{Reason, Status};
use reflex_tests::common_cases;
use reflex_tests::quarantine::{
    event, interface_groups, is_quarantined, isolation_groups, quarantine_as_aws_shows,
    quarantined_tag, termination_protection, AwsView,
};
use reflex_tests::Harness;
use serde_json::Value;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

common_cases!(Ec2QuarantineInstance);

/// Enforce, named: the function's default (high risk) is `approve`.
const ENFORCE: &str = "version: 1\nremediations:\n  ec2-quarantine-instance: {mode: enforce}";

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
    let primary = InstanceNetworkInterfaceSpecification::builder()
        .device_index(0)
        .subnet_id(&vpc.subnet)
        .groups(security_group(ec2, vpc).await)
        .build();
    let mut run = ec2
        .run_instances()
        .image_id(reflex_tests::ec2::TEST_AMI)
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

/// The snapshots of the instance's volumes: (snapshot, volume, its `reflex:record` tag).
async fn snapshots(h: &Harness, id: &str) -> Vec<(String, String, String)> {
    let volumes: Vec<String> = h
        .described_instance(id)
        .await
        .block_device_mappings()
        .iter()
        .filter_map(|m| m.ebs().and_then(|e| e.volume_id()).map(str::to_string))
        .collect();
    let out = observer(h)
        .describe_snapshots()
        .owner_ids("self")
        .filters(
            Filter::builder()
                .name("volume-id")
                .set_values(Some(volumes))
                .build(),
        )
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
    let before = interface_groups(&h, &id).await;
    assert_eq!(before.len(), 2);
    let r = quarantine(&h, None);
    let o = h
        .deliver_to(&r, event(&id, "two-interfaces"))
        .await
        .unwrap()
        .remove(0);
    assert_eq!(
        (o.status, o.reason),
        (Status::Succeeded, Reason::Remediated),
        "{o:?}"
    );

    // AWS as the fix left it.
    let groups = isolation_groups(&h, &net.id).await;
    let [(group, 0)] = groups.as_slice() else {
        panic!("one closed isolation group: {groups:?}")
    };
    let after = interface_groups(&h, &id).await;
    assert_eq!(
        after.keys().collect::<Vec<_>>(),
        before.keys().collect::<Vec<_>>()
    );
    assert!(
        after
            .values()
            .all(|g| g.as_slice() == std::slice::from_ref(group)),
        "{after:?}"
    );
    assert!(termination_protection(&h, &id).await);
    assert_eq!(
        quarantined_tag(&h, &id).await.as_deref(),
        Some(o.record_id.as_str())
    );
    let snaps = snapshots(&h, &id).await;
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
        .map(|a| {
            a.parameters["NetworkInterfaceId"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(isolated, before.keys().cloned().collect::<Vec<_>>());
    // One write per step; the group's creation and closing are two steps.
    assert_eq!(
        h.calls.writes().len(),
        rec.actions.len(),
        "{:?}",
        h.calls.calls()
    );
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
        assert_eq!(
            (o.status, o.reason),
            (Status::Succeeded, Reason::Remediated),
            "{o:?}"
        );
    }
    let groups = isolation_groups(&h, &net.id).await;
    assert_eq!(groups.len(), 1, "exactly one isolation group: {groups:?}");
    assert!(is_quarantined(&h, &a).await && is_quarantined(&h, &b).await);
    // One of them created it; the other used it.
    let mut created = Vec::new();
    for o in [&oa, &ob] {
        let actions = h.record(&o.record_id).await.actions;
        created.push(apis(&actions).contains(&("ec2:CreateSecurityGroup", true)));
    }
    created.sort();
    assert_eq!(created, [false, true]);
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
    let before = interface_groups(&h, &id).await;

    // EC2 refuses the snapshot once, for good (UnauthorizedOperation): the third step.
    let refuse = RefuseOnce::new("CreateSnapshot");
    let r = quarantine(&h, Some(refuse.clone()));
    let o = h
        .deliver_to(&r, event(&id, "third-step"))
        .await
        .unwrap()
        .remove(0);
    assert_eq!(
        (o.status, o.reason),
        (Status::Failed, Reason::ActionError),
        "{o:?}"
    );
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
    let isolated = interface_groups(&h, &id).await;
    assert!(isolated
        .values()
        .all(|g| g.len() == 1 && !before.values().any(|b| b == g)));
    assert!(!termination_protection(&h, &id).await);
    assert!(snapshots(&h, &id).await.is_empty());

    // Rolled back: each interface has its groups again.
    let by = "arn:aws:iam::123456789012:user/operator";
    let until = chrono::Utc::now() + chrono::Duration::hours(1);
    let rolled = pipeline::rollback(&h.setup, &r, &o.record_id, by, false, until)
        .await
        .unwrap();
    assert_eq!(rolled.status, Status::RolledBack, "{rolled:?}");
    assert_eq!(interface_groups(&h, &id).await, before);
    assert!(!termination_protection(&h, &id).await);
    assert_eq!(quarantined_tag(&h, &id).await, None);
    // The other instance's quarantine, and the group, are untouched.
    assert!(is_quarantined(&h, &earlier).await);
}

#[tokio::test]
async fn rollback_restores_groups_and_protection_and_keeps_the_snapshots() {
    let h = Harness::with_policy(ENFORCE).await;
    let ec2 = observer(&h);
    let net = vpc(&ec2).await;
    let id = instance(&ec2, &net, 2, &[]).await;
    let before = interface_groups(&h, &id).await;
    let r = quarantine(&h, None);
    let o = h
        .deliver_to(&r, event(&id, "rollback"))
        .await
        .unwrap()
        .remove(0);
    assert_eq!(o.status, Status::Succeeded, "{o:?}");
    let snaps = snapshots(&h, &id).await;
    assert_eq!(snaps.len(), 1);

    let by = "arn:aws:iam::123456789012:user/operator";
    let until = chrono::Utc::now() + chrono::Duration::hours(1);
    let rolled = pipeline::rollback(&h.setup, &r, &o.record_id, by, false, until)
        .await
        .unwrap();
    assert_eq!(rolled.status, Status::RolledBack, "{rolled:?}");
    assert_eq!(
        interface_groups(&h, &id).await,
        before,
        "each interface's groups back"
    );
    assert!(
        !termination_protection(&h, &id).await,
        "termination protection off again"
    );
    assert_eq!(quarantined_tag(&h, &id).await, None);
    assert_eq!(snapshots(&h, &id).await, snaps, "the evidence is kept");
    assert_eq!(
        isolation_groups(&h, &net.id).await.len(),
        1,
        "the group is kept"
    );
    let rec = h.record(&o.record_id).await;
    let rb = rec.rollback.expect("the rollback is on the record");
    assert_eq!(
        rb.actions
            .iter()
            .map(|a| a.api.as_str())
            .collect::<Vec<_>>(),
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
    let before = interface_groups(&h, &id).await;
    // Someone's group under Reflex's name, without Reflex's tag (and open to the world).
    ec2.create_security_group()
        .vpc_id(&net.id)
        .group_name(isolation_group_name(&net.id))
        .description("not Reflex's")
        .send()
        .await
        .unwrap();
    let r = quarantine(&h, None);
    let o = h
        .deliver_to(&r, event(&id, "look-alike"))
        .await
        .unwrap()
        .remove(0);
    assert_eq!(
        (o.status, o.reason),
        (Status::Failed, Reason::InspectError),
        "{o:?}"
    );
    assert!(o.detail.contains("lacks the tag reflex:isolation"), "{o:?}");
    assert!(h.calls.writes().is_empty(), "{:?}", h.calls.calls());
    assert_eq!(interface_groups(&h, &id).await, before);
}

#[tokio::test]
async fn moto_adds_launch_groups_and_the_aws_view_removes_them() {
    // An instance launched with `SecurityGroupIds` (the harness's maker). moto shows its launch
    // group on every interface beside the interface's own; AWS would show the isolation group
    // alone. The function sees EC2 through `AwsView` and verifies the quarantine as on AWS.
    let h = Harness::with_policy(ENFORCE).await;
    let i = h.instance(true, &[]).await;
    let view = AwsView::default();
    let r = quarantine_as_aws_shows(&h, &view);
    let o = h
        .deliver_to(&r, event(&i.instance_id, "launch-groups"))
        .await
        .unwrap()
        .remove(0);
    assert_eq!(
        (o.status, o.reason),
        (Status::Succeeded, Reason::Remediated),
        "{o:?}"
    );
    assert_eq!(h.record(&o.record_id).await.verified, Some(true));
    assert!(view.corrected() > 0, "moto's answers needed AWS's view");
    let groups = isolation_groups(&h, &i.vpc_id).await;
    let [(group, 0)] = groups.as_slice() else {
        panic!("{groups:?}")
    };
    for eni in &i.network_interface_ids {
        let mut moto = vec![group.clone(), i.security_group_id.clone()];
        moto.sort();
        assert_eq!(h.interface_groups(eni).await, moto, "moto's view");
    }
    let aws = interface_groups(&h, &i.instance_id).await;
    assert!(
        aws.values()
            .all(|g| g.as_slice() == std::slice::from_ref(group)),
        "AWS's view: {aws:?}"
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
