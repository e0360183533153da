//! network-block-ip: deny a remote attacker's address, for a time, in the network ACL of the
//! subnet of the instance a GuardDuty finding names. Low risk (enforce by default).
//!
//! - An inbound DENY of every protocol for the /32 (or /128) at a rule number from a range
//!   reserved for Reflex: the policy's `rule_range`, or by default the 20 numbers right below
//!   the ACL's lowest rule that is not Reflex's (80–99 in a default ACL), so that a block is
//!   evaluated before any rule of the ACL's owner.
//! - Each block is Reflex's own entry on the ACL (key: the CIDR), expiring after `ttl_hours`
//!   (default 24); the scheduled sweep removes it then. A second finding for the same address
//!   extends it; when the range is full, the block that expires first is evicted, on the record.
//! - Never blocked, each `skipped` with the reason: private, loopback, link-local, multicast,
//!   unspecified, reserved or documentation addresses; an address in the `allowlist`; a prefix
//!   wider than one host.
//! - Undone from the record: the block deleted (an evicted block put back).

pub mod address;
pub mod aws;
pub mod nacl;
pub mod params;
pub mod plan;
mod remediation;
pub mod target;

pub use address::{blockable, Cidr, Refusal};
pub use aws::{Ec2, Nacl, Placement};
pub use nacl::{Entry, NaclState};
pub use params::{Params, RuleRange};
pub use plan::{BlockStep, Held, Removal};
pub use target::{nacl_arn, BlockTarget, NACL_KIND};

use reflex_shared::policy::Risk;
use reflex_shared::remediation::Spec;
use reflex_shared::trigger::Trigger;

pub static SPEC: Spec = Spec {
    name: "network-block-ip",
    risk: Risk::Low,
    // GuardDuty findings whose remote address is the attacker's: inbound brute force, probes
    // of open ports (each probe's address), connections from addresses on threat lists or Tor.
    triggers: &[
        Trigger::GuarddutyType("UnauthorizedAccess:EC2/SSHBruteForce"),
        Trigger::GuarddutyType("UnauthorizedAccess:EC2/RDPBruteForce"),
        Trigger::GuarddutyType("Recon:EC2/PortProbeUnprotectedPort"),
        Trigger::GuarddutyType("Recon:EC2/PortProbeEMRUnprotectedPort"),
        Trigger::GuarddutyType("UnauthorizedAccess:EC2/MaliciousIPCaller.Custom"),
        Trigger::GuarddutyType("UnauthorizedAccess:EC2/TorIPCaller"),
    ],
    iam_actions: &[
        // resolve: the instance's subnet
        "ec2:DescribeInstances",
        // resolve (the subnet's ACL), tags, inspect, and the read before each removal
        "ec2:DescribeNetworkAcls",
        // a block
        "ec2:CreateNetworkAclEntry",
        // eviction, expiry (the sweep), undo
        "ec2:DeleteNetworkAclEntry",
    ],
    reversible: true,
    config_resource_types: &[],
    parameters: Some(params::PARAMETERS),
    schedule: Some("rate(15 minutes)"),
    completion_events: &[],
    completion_timeout_seconds: 0,
    confirm_at_source: false,
};

/// The remediation, with its EC2 client.
pub struct NetworkBlockIp {
    ec2: Ec2,
}

impl NetworkBlockIp {
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        NetworkBlockIp::from_client(aws_sdk_ec2::Client::new(sdk))
    }

    pub fn from_client(client: aws_sdk_ec2::Client) -> Self {
        NetworkBlockIp {
            ec2: Ec2::new(client),
        }
    }

    /// The EC2 adapter (tests read the ACL through it).
    pub fn ec2(&self) -> &Ec2 {
        &self.ec2
    }
}
