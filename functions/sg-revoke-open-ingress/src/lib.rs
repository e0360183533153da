//! sg-revoke-open-ingress: revoke, by security-group rule id, only the ingress rules open to
//! `0.0.0.0/0` or `::/0` that cover a port the finding names. Low risk (enforce by default).
//!
//! - The offending ports come from the trigger: SSH (EC2.13, INCOMING_SSH_DISABLED), RDP
//!   (EC2.14), AWS's high-risk ports (EC2.19), the rule's blocked ports
//!   (RESTRICTED_INCOMING_TRAFFIC), and every port but the authorized ones for EC2.18 (the
//!   finding's own `SecurityControlParameters`, else the policy's) and
//!   VPC_SG_OPEN_ONLY_TO_AUTHORIZED_PORTS (the rule's own `InputParameters`, read from Config,
//!   else the policy's); RESTRICTED_INCOMING_TRAFFIC's from the rule's own parameters too.
//! - Protocol `-1` and port ranges count on every port they cover. A rule wider than the
//!   offending ports keeps its allowed part: that part is authorized first (same CIDR, same
//!   description), then the rule is revoked (see `plan`). Every rule the finding condemns is
//!   revoked in one call (one round trip, all or none).
//! - Rules from narrower CIDRs, prefix lists and peer groups are never touched.
//! - The record holds each revoked rule's content (protocol, ports, CIDR, description, source
//!   group); rollback authorizes exactly those again (they get new rule ids, so states are
//!   compared by content) and revokes the kept parts it authorized.

pub mod aws;
pub mod offending;
pub mod params;
pub mod plan;
pub mod ports;
mod remediation;
pub mod rules;
pub mod target;

pub use aws::Ec2;
pub use offending::{Offending, HIGH_RISK};
pub use params::Params;
pub use plan::{Revoked, SgStep};
pub use ports::{PortRange, Ports};
pub use rules::{GroupState, Rule, Source};
pub use target::{group_arn, SgTarget};

use reflex_shared::policy::Risk;
use reflex_shared::remediation::Spec;
use reflex_shared::trigger::Trigger;

pub static SPEC: Spec = Spec {
    name: "sg-revoke-open-ingress",
    risk: Risk::Low,
    // EC2.2 (the VPC's default group) is a separate fix.
    triggers: &[
        Trigger::Control("EC2.13"),
        Trigger::Control("EC2.14"),
        Trigger::Control("EC2.18"),
        Trigger::Control("EC2.19"),
        Trigger::ConfigRule("INCOMING_SSH_DISABLED"),
        Trigger::ConfigRule("RESTRICTED_INCOMING_TRAFFIC"),
        Trigger::ConfigRule("VPC_SG_OPEN_ONLY_TO_AUTHORIZED_PORTS"),
    ],
    iam_actions: &[
        // resolve: a Config rule's own parameters (its blocked or authorized ports)
        "config:DescribeConfigRules",
        // tags, and whether the group still exists
        "ec2:DescribeSecurityGroups",
        // inspect: the ingress rules with their rule ids
        "ec2:DescribeSecurityGroupRules",
        // a world-open rule on an offending port, by rule id; rollback of a kept part
        "ec2:RevokeSecurityGroupIngress",
        // a kept part of a wide rule; rollback of a revoked rule
        "ec2:AuthorizeSecurityGroupIngress",
    ],
    reversible: true,
    config_resource_types: &["AWS::EC2::SecurityGroup"],
    parameters: Some(params::PARAMETERS),
    schedule: None,
    completion_events: &[],
    completion_timeout_seconds: 0,
    confirm_at_source: false,
};

/// The remediation, with its EC2 client and its Config client (a Config rule's parameters).
pub struct SgRevokeOpenIngress {
    ec2: Ec2,
    config: aws::ConfigRules,
}

impl SgRevokeOpenIngress {
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        SgRevokeOpenIngress::from_clients(
            aws_sdk_ec2::Client::new(sdk),
            aws_sdk_config::Client::new(sdk),
        )
    }

    pub fn from_clients(ec2: aws_sdk_ec2::Client, config: aws_sdk_config::Client) -> Self {
        SgRevokeOpenIngress {
            ec2: Ec2::new(ec2),
            config: aws::ConfigRules::new(config),
        }
    }

    /// The EC2 adapter (tests read the group through it).
    pub fn ec2(&self) -> &Ec2 {
        &self.ec2
    }
}
