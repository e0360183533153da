//! ec2-quarantine-instance: isolate an EC2 instance a GuardDuty threat finding names. High
//! risk (approve by default). In order, each step recorded with what it produced:
//! 1. find or create the VPC's isolation group (no inbound, no outbound; one per VPC);
//! 2. make it the only group of every interface of the instance;
//! 3. snapshot every attached EBS volume, tagged with the record (evidence, kept on rollback);
//! 4. turn on termination protection;
//! 5. tag the instance `reflex:quarantined` = the record id.
//!
//! Rollback gives each interface its groups back, the protection flag its old value and the
//! tag its old value; the snapshots and the isolation group stay, named as kept.

pub mod describe;
pub mod ec2;
pub mod live;
pub mod model;
pub mod plan;
mod remediation;

pub use model::{Instance, InstanceState, Output, Params, Step};

use reflex_shared::policy::Risk;
use reflex_shared::remediation::Spec;
use reflex_shared::trigger::Trigger;

pub static SPEC: Spec = Spec {
    name: "ec2-quarantine-instance",
    risk: Risk::High,
    triggers: &[
        Trigger::GuarddutyType("Backdoor:EC2/*"),
        Trigger::GuarddutyType("CryptoCurrency:EC2/*"),
        Trigger::GuarddutyType("Trojan:EC2/*"),
        Trigger::GuarddutyType("Impact:EC2/*"),
        Trigger::GuarddutyType("UnauthorizedAccess:EC2/TorClient"),
        Trigger::GuarddutyType("UnauthorizedAccess:EC2/TorRelay"),
        Trigger::GuarddutyType("UnauthorizedAccess:EC2/MetadataDNSRebind"),
        Trigger::GuarddutyType("Execution:EC2/MaliciousFile*"),
    ],
    iam_actions: &[
        // resolve, tags, inspect: the instance, its interfaces' groups, volumes and tags
        "ec2:DescribeInstances",
        // inspect: termination protection
        "ec2:DescribeInstanceAttribute",
        // inspect and closing the isolation group: find it, list its rules
        "ec2:DescribeSecurityGroups",
        // inspect: the forensic snapshots already taken
        "ec2:DescribeSnapshots",
        // the isolation group
        "ec2:CreateSecurityGroup",
        "ec2:RevokeSecurityGroupEgress",
        "ec2:RevokeSecurityGroupIngress",
        // isolate an interface; give its groups back (undo)
        "ec2:ModifyNetworkInterfaceAttribute",
        // forensic snapshots
        "ec2:CreateSnapshot",
        // termination protection, and its undo
        "ec2:ModifyInstanceAttribute",
        // tags on the group and the snapshots as they are created, and on the instance
        "ec2:CreateTags",
        // undo of the instance's tag
        "ec2:DeleteTags",
    ],
    reversible: true,
    config_resource_types: &[],
    parameters: Some(
        "snapshots (bool, default true): snapshot every attached EBS volume as evidence before \
         protecting and tagging the instance",
    ),
    schedule: None,
    completion_events: &[],
    completion_timeout_seconds: 0,
    confirm_at_source: true,
};

/// The remediation, with its EC2 client.
pub struct Ec2QuarantineInstance {
    ec2: ec2::Ec2,
}

impl Ec2QuarantineInstance {
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        Self::from_client(aws_sdk_ec2::Client::new(sdk))
    }

    pub fn from_client(client: aws_sdk_ec2::Client) -> Self {
        Ec2QuarantineInstance {
            ec2: ec2::Ec2::new(client),
        }
    }
}
