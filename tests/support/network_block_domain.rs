//! network-block-domain as a [`Subject`] of the common cases, and the world its tests make: each
//! resource is an instance in a VPC of its own (EC2, in the emulator), and the VPC's DNS Firewall
//! lives in a stand-in.
//!
//! moto has no Route 53 Resolver DNS Firewall at all (none of its API is implemented), so every
//! route53resolver call of the function is answered by aws-smithy-mocks rules over a small
//! in-memory model of the firewall (`network_block_domain::stand_in`): it keeps the lists and
//! their domains, the rule groups, rules and associations, answers the `List*` reads from them,
//! honours `CreatorRequestId` as AWS does, and records every request. So `fixed` reads a real
//! outcome (the VPC's resolver would answer NXDOMAIN), and tests assert each request.

use crate::common::Subject;
use crate::{sample, Harness, ACCOUNT};
use network_block_domain::stand_in::StandIn;
use network_block_domain::NetworkBlockDomain;
use serde_json::{json, Value};
use std::sync::LazyLock;

/// The GuardDuty C&C DNS sample, and the instance and domain it names (tests swap in theirs).
pub const C2: &str = "network-block-domain/guardduty-backdoor-c-and-c-activity-dns.json";
pub const SAMPLE_INSTANCE: &str = "i-0123456789abcdef0";
pub const SAMPLE_DOMAIN: &str = "c2.badactor.example";

/// The one stand-in firewall the common cases share, as one account's DNS Firewall: every
/// resource is a VPC of its own, and Reflex's parts are per VPC, so cases never meet in it.
pub static FIREWALL: LazyLock<StandIn> = LazyLock::new(StandIn::new);

/// A VPC of its own (tagged as given), a subnet, an instance in it; the instance id and the VPC.
pub async fn instance_in_own_vpc(
    ec2: &aws_sdk_ec2::Client,
    vpc_tags: &[(&str, &str)],
) -> (String, String) {
    let vpc = ec2
        .create_vpc()
        .cidr_block("10.40.0.0/16")
        .send()
        .await
        .expect("create a VPC");
    let vpc = vpc.vpc().and_then(|v| v.vpc_id()).unwrap().to_string();
    for (k, v) in vpc_tags {
        ec2.create_tags()
            .resources(&vpc)
            .tags(aws_sdk_ec2::types::Tag::builder().key(*k).value(*v).build())
            .send()
            .await
            .expect("tag the VPC");
    }
    let subnet = ec2
        .create_subnet()
        .vpc_id(&vpc)
        .cidr_block("10.40.1.0/24")
        .send()
        .await
        .expect("create a subnet");
    let subnet = subnet
        .subnet()
        .and_then(|s| s.subnet_id())
        .unwrap()
        .to_string();
    let run = ec2
        .run_instances()
        .image_id(crate::ec2::TEST_AMI)
        .min_count(1)
        .max_count(1)
        .subnet_id(&subnet)
        .send()
        .await
        .expect("run an instance");
    let instance = run.instances()[0].instance_id().unwrap().to_string();
    (instance, vpc)
}

/// A committed sample naming `instance` and `domain` (where it named its own), with finding ids
/// made unique by `tag`.
pub fn event_for(path: &str, instance: &str, domain: Option<&str>, tag: &str) -> Value {
    let mut v: Value = serde_json::from_str(&sample(path).replace(SAMPLE_INSTANCE, instance))
        .expect("sample is JSON");
    if let Some(findings) = v
        .pointer_mut("/detail/findings")
        .and_then(Value::as_array_mut)
    {
        for f in findings {
            let id = f["Id"].as_str().unwrap_or_default().to_string();
            f["Id"] = json!(format!("{id}{tag}"));
            if let Some(d) = domain {
                f["ProductFields"]["aws/guardduty/service/action/dnsRequestAction/domain"] =
                    json!(d);
            }
        }
    } else {
        let id = v["detail"]["id"].as_str().unwrap_or_default().to_string();
        v["detail"]["id"] = json!(format!("{id}{tag}"));
        if let Some(d) = domain {
            v["detail"]["service"]["action"]["dnsRequestAction"]["domain"] = json!(d);
        }
    }
    v
}

/// A GuardDuty C&C DNS finding for `domain` queried by `instance`, its id made unique by `tag`.
pub fn c2_query(instance: &str, domain: &str, tag: &str) -> Value {
    event_for(C2, instance, Some(domain), tag)
}

/// The common cases' resource id: the instance and its VPC.
fn split(id: &str) -> (&str, &str) {
    id.split_once('|').expect("instance|vpc")
}

/// The domain the common cases block for a resource: its own, so no two cases share one.
pub fn domain_of(instance: &str) -> String {
    format!("c2-{instance}.badactor.example")
}

/// The function under test: EC2 in the emulator, the resolver answered by `firewall`, every
/// call of both logged into the harness.
pub fn function(h: &Harness, firewall: &StandIn) -> NetworkBlockDomain {
    NetworkBlockDomain::from_clients(
        h.ec2(),
        firewall.client_with(|c| c.interceptor(h.calls.clone())),
    )
}

impl Subject for NetworkBlockDomain {
    const SPEC: &'static reflex_shared::remediation::Spec = &network_block_domain::SPEC;

    fn new(h: &Harness) -> Self {
        function(h, &FIREWALL)
    }

    async fn noncompliant(h: &Harness, tags: &[(&str, &str)]) -> String {
        let (instance, vpc) = instance_in_own_vpc(&h.ec2_observer(), tags).await;
        format!("{instance}|{vpc}")
    }

    /// Reflex's firewall for the VPC, built by an earlier deployment, holding the domain
    /// already (placed by no record of this table: left as it is).
    async fn compliant(h: &Harness) -> String {
        let (instance, vpc) = instance_in_own_vpc(&h.ec2_observer(), &[]).await;
        FIREWALL.seed(&vpc, 101, &[&domain_of(&instance)]);
        format!("{instance}|{vpc}")
    }

    fn event(id: &str) -> Value {
        let (instance, vpc) = split(id);
        c2_query(instance, &domain_of(instance), &format!("-{vpc}"))
    }

    fn recurrence(id: &str) -> Value {
        let mut e = Self::event(id);
        e["detail"]["updatedAt"] = json!("2026-12-01T00:00:00.000Z");
        e
    }

    async fn arn(_h: &Harness, id: &str) -> String {
        network_block_domain::vpc_arn("us-east-1", ACCOUNT, split(id).1)
    }

    /// The VPC's resolver answers NXDOMAIN for the domain (read from the stand-in's model).
    async fn fixed(_h: &Harness, id: &str) -> bool {
        let (instance, vpc) = split(id);
        FIREWALL.blocks(vpc, &domain_of(instance))
    }
}
