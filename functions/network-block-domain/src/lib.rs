//! network-block-domain: block, for a time, a domain an instance queried, in a Route 53
//! Resolver DNS Firewall that Reflex owns in the instance's VPC. Low risk (enforce by default).
//!
//! - The domain comes from a GuardDuty DNS finding (`service.action.dnsRequestAction.domain`),
//!   straight or through Security Hub; the instance's VPC is read from EC2, never from the
//!   finding.
//! - Per VPC, Reflex keeps one domain list, one rule group holding one rule (BLOCK, answering
//!   NXDOMAIN) and one association of the group with the VPC (`priority`, default 101). Each is
//!   made once, by the first finding that needs it: findings on a VPC take turns (the VPC's
//!   lease), and each create carries a token fixed per VPC (`CreatorRequestId`), so a create
//!   sent twice makes one part.
//! - Each block is Reflex's own entry on the VPC (key: the domain), expiring after `ttl_hours`
//!   (default 24); the scheduled sweep removes the domain from the list then. A second finding
//!   for the same domain extends it.
//! - Never blocked, each `skipped` with the reason: AWS's own domains (`*.amazonaws.com`,
//!   `*.aws`, the VPC resolver's `*.internal` names: `not-blockable`) and the `allowlist`
//!   (`allowlisted`). Text that is no domain name is `rejected / no-target`.
//! - Undone from the record: the domain removed from the list. The list, the group, its rule
//!   and the association stay (other blocks use them); the rollback names them.

pub mod aws;
pub mod domain;
pub mod firewall;
pub mod params;
pub mod plan;
mod remediation;
#[cfg(feature = "stand-in")]
pub mod stand_in;
pub mod target;

pub use aws::{Ec2, Resolver};
pub use domain::{blockable, Domain, Refusal};
pub use firewall::{Association, FirewallState};
pub use params::Params;
pub use plan::{DomainStep, Held, Removal};
pub use remediation::OwnedBlock;
pub use target::{vpc_arn, DomainTarget, VPC_KIND};

use reflex_shared::policy::Risk;
use reflex_shared::remediation::Spec;
use reflex_shared::trigger::Trigger;

pub static SPEC: Spec = Spec {
    name: "network-block-domain",
    risk: Risk::Low,
    // GuardDuty's EC2 findings about a DNS query, each naming the domain queried. Listed one by
    // one: a trigger globs only a suffix, and `Trojan:EC2/*` would also take
    // `Trojan:EC2/BlackholeTraffic` and `Trojan:EC2/DropPoint`, which are about an IP address
    // (network-block-ip's kind), not a domain; `Backdoor:EC2/C&CActivity.B` and
    // `CryptoCurrency:EC2/BitcoinTool.B` without `!DNS` are the same.
    triggers: &[
        Trigger::GuarddutyType("Backdoor:EC2/C&CActivity.B!DNS"),
        Trigger::GuarddutyType("CryptoCurrency:EC2/BitcoinTool.B!DNS"),
        Trigger::GuarddutyType("Trojan:EC2/BlackholeTraffic!DNS"),
        Trigger::GuarddutyType("Trojan:EC2/DGADomainRequest.B"),
        Trigger::GuarddutyType("Trojan:EC2/DGADomainRequest.C!DNS"),
        Trigger::GuarddutyType("Trojan:EC2/DNSDataExfiltration"),
        Trigger::GuarddutyType("Trojan:EC2/DriveBySourceTraffic!DNS"),
        Trigger::GuarddutyType("Trojan:EC2/DropPoint!DNS"),
        Trigger::GuarddutyType("Trojan:EC2/PhishingDomainRequest!DNS"),
        Trigger::GuarddutyType("Impact:EC2/AbusedDomainRequest.Reputation"),
        Trigger::GuarddutyType("Impact:EC2/BitcoinDomainRequest.Reputation"),
        Trigger::GuarddutyType("Impact:EC2/MaliciousDomainRequest.Reputation"),
        Trigger::GuarddutyType("Impact:EC2/SuspiciousDomainRequest.Reputation"),
    ],
    iam_actions: &[
        // resolve: the instance's VPC
        "ec2:DescribeInstances",
        // tags: the VPC's exemption tag
        "ec2:DescribeVpcs",
        // inspect: Reflex's parts for the VPC, by name, and the domain in its list
        "route53resolver:ListFirewallDomainLists",
        "route53resolver:ListFirewallRuleGroups",
        "route53resolver:ListFirewallRules",
        "route53resolver:ListFirewallRuleGroupAssociations",
        "route53resolver:ListFirewallDomains",
        // the parts, made once per VPC
        "route53resolver:CreateFirewallDomainList",
        "route53resolver:CreateFirewallRuleGroup",
        "route53resolver:CreateFirewallRule",
        "route53resolver:AssociateFirewallRuleGroup",
        // a block, its expiry (the sweep), undo
        "route53resolver:UpdateFirewallDomains",
    ],
    reversible: true,
    config_resource_types: &[],
    parameters: Some(params::PARAMETERS),
    schedule: Some("rate(15 minutes)"),
    completion_events: &[],
    completion_timeout_seconds: 0,
    confirm_at_source: false,
};

/// The remediation, with its EC2 and Route 53 Resolver clients.
pub struct NetworkBlockDomain {
    ec2: Ec2,
    resolver: Resolver,
}

impl NetworkBlockDomain {
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        NetworkBlockDomain::from_clients(
            aws_sdk_ec2::Client::new(sdk),
            aws_sdk_route53resolver::Client::new(sdk),
        )
    }

    pub fn from_clients(
        ec2: aws_sdk_ec2::Client,
        resolver: aws_sdk_route53resolver::Client,
    ) -> Self {
        NetworkBlockDomain {
            ec2: Ec2::new(ec2),
            resolver: Resolver::new(resolver),
        }
    }
}
