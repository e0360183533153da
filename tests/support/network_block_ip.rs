//! network-block-ip as a [`Subject`] of the common cases, and the EC2 world its tests make:
//! each resource is an instance in a VPC of its own, so that parallel tests never share the
//! network ACL that changes (the VPC's default ACL: allow all at 100, deny at `*`).

use crate::common::Subject;
use crate::{sample, Harness, ACCOUNT};
use network_block_ip::NetworkBlockIp;
use serde_json::{json, Value};

/// The SSH brute force sample, and the instance it names (tests swap in their own).
pub const SSH: &str = "network-block-ip/guardduty-ssh-brute-force.json";
pub const SAMPLE_INSTANCE: &str = "i-0123456789abcdef0";
/// The attacker the common cases block.
const ATTACKER: &str = "1.2.3.4";

/// A VPC of its own, a subnet, an instance in it (tags on the subnet's ACL as given); the
/// instance id and the ACL id.
pub async fn instance_in_own_vpc(
    ec2: &aws_sdk_ec2::Client,
    acl_tags: &[(&str, &str)],
) -> (String, String) {
    let vpc = ec2
        .create_vpc()
        .cidr_block("10.20.0.0/16")
        .send()
        .await
        .expect("create a VPC");
    let vpc = vpc.vpc().and_then(|v| v.vpc_id()).unwrap().to_string();
    let subnet = ec2
        .create_subnet()
        .vpc_id(&vpc)
        .cidr_block("10.20.1.0/24")
        .send()
        .await
        .expect("create a subnet");
    let subnet = subnet
        .subnet()
        .and_then(|s| s.subnet_id())
        .unwrap()
        .to_string();
    let images = ec2.describe_images().send().await.expect("images");
    let image = images.images()[0].image_id().unwrap().to_string();
    let run = ec2
        .run_instances()
        .image_id(image)
        .min_count(1)
        .max_count(1)
        .subnet_id(&subnet)
        .send()
        .await
        .expect("run an instance");
    let instance = run.instances()[0].instance_id().unwrap().to_string();
    let acls = ec2
        .describe_network_acls()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("association.subnet-id")
                .values(&subnet)
                .build(),
        )
        .send()
        .await
        .expect("the subnet's ACL");
    let nacl = acls.network_acls()[0].network_acl_id().unwrap().to_string();
    for (k, v) in acl_tags {
        ec2.create_tags()
            .resources(&nacl)
            .tags(aws_sdk_ec2::types::Tag::builder().key(*k).value(*v).build())
            .send()
            .await
            .expect("tag the ACL");
    }
    (instance, nacl)
}

/// A committed sample naming `instance`, with finding ids made unique by `tag`.
pub fn event_for(path: &str, instance: &str, tag: &str) -> Value {
    let mut v: Value = serde_json::from_str(&sample(path).replace(SAMPLE_INSTANCE, instance))
        .expect("sample is JSON");
    if let Some(findings) = v
        .pointer_mut("/detail/findings")
        .and_then(Value::as_array_mut)
    {
        for f in findings {
            let id = f["Id"].as_str().unwrap_or_default().to_string();
            f["Id"] = json!(format!("{id}{tag}"));
        }
    } else if let Some(id) = v.pointer_mut("/detail/id") {
        *id = json!(format!("{}{tag}", id.as_str().unwrap_or_default()));
    }
    v
}

/// A GuardDuty SSH brute force from `ip` against `instance`, its finding id made unique by `tag`.
pub fn ssh_from(instance: &str, ip: &str, tag: &str) -> Value {
    let mut e = event_for(SSH, instance, tag);
    e["detail"]["service"]["action"]["networkConnectionAction"]["remoteIpDetails"]["ipAddressV4"] =
        json!(ip);
    e
}

/// The common cases' resource id: the instance and its subnet's ACL.
fn split(id: &str) -> (&str, &str) {
    id.split_once('|').expect("instance|acl")
}

fn ec2(h: &Harness) -> aws_sdk_ec2::Client {
    aws_sdk_ec2::Client::new(&h.sdk)
}

impl Subject for NetworkBlockIp {
    const SPEC: &'static reflex_shared::remediation::Spec = &network_block_ip::SPEC;

    fn new(h: &Harness) -> Self {
        NetworkBlockIp::from_client(aws_sdk_ec2::Client::from_conf(
            aws_sdk_ec2::config::Builder::from(&h.sdk)
                .interceptor(h.calls.clone())
                .build(),
        ))
    }

    async fn noncompliant(h: &Harness, tags: &[(&str, &str)]) -> String {
        let (instance, nacl) = instance_in_own_vpc(&ec2(h), tags).await;
        format!("{instance}|{nacl}")
    }

    /// Someone else's deny of the attacker's /24, before the ACL's allow rule.
    async fn compliant(h: &Harness) -> String {
        let (instance, nacl) = instance_in_own_vpc(&ec2(h), &[]).await;
        ec2(h)
            .create_network_acl_entry()
            .network_acl_id(&nacl)
            .rule_number(50)
            .egress(false)
            .protocol("-1")
            .rule_action(aws_sdk_ec2::types::RuleAction::Deny)
            .cidr_block("1.2.3.0/24")
            .send()
            .await
            .expect("a deny of the attacker's network");
        format!("{instance}|{nacl}")
    }

    fn event(id: &str) -> Value {
        let (instance, nacl) = split(id);
        ssh_from(instance, ATTACKER, &format!("-{nacl}"))
    }

    fn recurrence(id: &str) -> Value {
        let mut e = Self::event(id);
        e["detail"]["updatedAt"] = json!("2026-12-01T00:00:00.000Z");
        e
    }

    async fn arn(_h: &Harness, id: &str) -> String {
        network_block_ip::nacl_arn("us-east-1", ACCOUNT, split(id).1)
    }

    /// The attacker is denied before anything could allow it.
    async fn fixed(h: &Harness, id: &str) -> bool {
        let nacl = network_block_ip::Ec2::new(ec2(h))
            .nacl(split(id).1)
            .await
            .expect("read the ACL");
        network_block_ip::NaclState::new(nacl.id, vec![], nacl.inbound)
            .denied_by(ATTACKER.parse().unwrap())
            .is_some()
    }
}
