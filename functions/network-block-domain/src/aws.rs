//! The AWS calls, each small: the instance's VPC and the VPC's tags (EC2), and Reflex's DNS
//! Firewall parts for a VPC (Route 53 Resolver): found by name, created with an idempotency
//! token, a domain added or removed.

use crate::domain::Domain;
use crate::firewall::{self, Association};
use aws_sdk_route53resolver::types::{
    Action, BlockResponse, FirewallDomainUpdateOperation, FirewallRuleGroupAssociationStatus,
};
use reflex_shared::aws_error::code;
use reflex_shared::remediation::{RemediationError, Tags};

pub const DESCRIBE_INSTANCES: &str = "ec2:DescribeInstances";
pub const DESCRIBE_VPCS: &str = "ec2:DescribeVpcs";
pub const LIST_DOMAIN_LISTS: &str = "route53resolver:ListFirewallDomainLists";
pub const LIST_RULE_GROUPS: &str = "route53resolver:ListFirewallRuleGroups";
pub const LIST_RULES: &str = "route53resolver:ListFirewallRules";
pub const LIST_ASSOCIATIONS: &str = "route53resolver:ListFirewallRuleGroupAssociations";
pub const LIST_DOMAINS: &str = "route53resolver:ListFirewallDomains";
pub const CREATE_LIST: &str = "route53resolver:CreateFirewallDomainList";
pub const CREATE_GROUP: &str = "route53resolver:CreateFirewallRuleGroup";
pub const CREATE_RULE: &str = "route53resolver:CreateFirewallRule";
pub const ASSOCIATE: &str = "route53resolver:AssociateFirewallRuleGroup";
pub const UPDATE_DOMAINS: &str = "route53resolver:UpdateFirewallDomains";

/// A page bound: Reflex's lists hold its own blocks, so a list this long is a runaway.
const MAX_PAGES: usize = 1000;

#[derive(Debug, Clone)]
pub struct Ec2 {
    client: aws_sdk_ec2::Client,
}

impl Ec2 {
    pub fn new(client: aws_sdk_ec2::Client) -> Self {
        Ec2 { client }
    }

    /// The VPC of a running (or stopped) instance; gone once it is terminated or unknown.
    pub async fn vpc_of(&self, instance_id: &str) -> Result<String, RemediationError> {
        let gone = |why: &str| RemediationError::Gone(format!("instance {instance_id} {why}"));
        let out = match self
            .client
            .describe_instances()
            .instance_ids(instance_id)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if code(&e) == Some("InvalidInstanceID.NotFound") => {
                return Err(gone("no longer exists"))
            }
            Err(e) => return Err(RemediationError::aws(DESCRIBE_INSTANCES, e)),
        };
        let instance = out
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .find(|i| i.instance_id() == Some(instance_id))
            .ok_or_else(|| gone("no longer exists"))?;
        match instance.vpc_id() {
            Some(vpc) if !vpc.is_empty() => Ok(vpc.to_string()),
            // A terminated instance keeps no VPC.
            _ => Err(gone("is in no VPC (terminated)")),
        }
    }

    /// The VPC's tags (the exemption tag goes on the VPC: it is what the block protects).
    pub async fn vpc_tags(&self, vpc_id: &str) -> Result<Tags, RemediationError> {
        let gone = || RemediationError::Gone(format!("VPC {vpc_id} no longer exists"));
        let out = match self.client.describe_vpcs().vpc_ids(vpc_id).send().await {
            Ok(out) => out,
            Err(e) if code(&e) == Some("InvalidVpcID.NotFound") => return Err(gone()),
            Err(e) => return Err(RemediationError::aws(DESCRIBE_VPCS, e)),
        };
        let vpc = out
            .vpcs()
            .iter()
            .find(|v| v.vpc_id() == Some(vpc_id))
            .ok_or_else(gone)?;
        Ok(vpc
            .tags()
            .iter()
            .map(|t| {
                (
                    t.key().unwrap_or_default().to_string(),
                    t.value().unwrap_or_default().to_string(),
                )
            })
            .collect())
    }
}

#[derive(Debug, Clone)]
pub struct Resolver {
    client: aws_sdk_route53resolver::Client,
}

fn not_found(c: Option<&str>) -> bool {
    c == Some("ResourceNotFoundException")
}

fn runaway(api: &'static str) -> RemediationError {
    RemediationError::Invalid(format!("{api} answered more than {MAX_PAGES} pages"))
}

impl Resolver {
    pub fn new(client: aws_sdk_route53resolver::Client) -> Self {
        Resolver { client }
    }

    /// The id of the domain list called `name` (the first AWS lists, should there be two).
    pub async fn list_named(&self, name: &str) -> Result<Option<String>, RemediationError> {
        let mut token = None;
        for _ in 0..MAX_PAGES {
            let out = self
                .client
                .list_firewall_domain_lists()
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| RemediationError::aws(LIST_DOMAIN_LISTS, e))?;
            if let Some(l) = out
                .firewall_domain_lists()
                .iter()
                .find(|l| l.name() == Some(name))
            {
                return Ok(l.id().map(String::from));
            }
            match out.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => return Ok(None),
            }
        }
        Err(runaway(LIST_DOMAIN_LISTS))
    }

    /// The id of the rule group called `name`.
    pub async fn group_named(&self, name: &str) -> Result<Option<String>, RemediationError> {
        let mut token = None;
        for _ in 0..MAX_PAGES {
            let out = self
                .client
                .list_firewall_rule_groups()
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| RemediationError::aws(LIST_RULE_GROUPS, e))?;
            if let Some(g) = out
                .firewall_rule_groups()
                .iter()
                .find(|g| g.name() == Some(name))
            {
                return Ok(g.id().map(String::from));
            }
            match out.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => return Ok(None),
            }
        }
        Err(runaway(LIST_RULE_GROUPS))
    }

    /// Whether the group holds a rule that blocks the list.
    pub async fn blocks_list(
        &self,
        group_id: &str,
        list_id: &str,
    ) -> Result<bool, RemediationError> {
        let mut token = None;
        for _ in 0..MAX_PAGES {
            let out = match self
                .client
                .list_firewall_rules()
                .firewall_rule_group_id(group_id)
                .set_next_token(token)
                .send()
                .await
            {
                Ok(out) => out,
                Err(e) if not_found(code(&e)) => return Ok(false),
                Err(e) => return Err(RemediationError::aws(LIST_RULES, e)),
            };
            if out.firewall_rules().iter().any(|r| {
                r.firewall_domain_list_id() == Some(list_id) && r.action() == Some(&Action::Block)
            }) {
                return Ok(true);
            }
            match out.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => return Ok(false),
            }
        }
        Err(runaway(LIST_RULES))
    }

    /// The group's association with the VPC (one being deleted counts as none).
    pub async fn association(
        &self,
        group_id: &str,
        vpc_id: &str,
    ) -> Result<Option<Association>, RemediationError> {
        let mut token = None;
        for _ in 0..MAX_PAGES {
            let out = self
                .client
                .list_firewall_rule_group_associations()
                .firewall_rule_group_id(group_id)
                .vpc_id(vpc_id)
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| RemediationError::aws(LIST_ASSOCIATIONS, e))?;
            // The filters are the API's; keep only what names this group and VPC, whatever
            // it answers.
            let found = out.firewall_rule_group_associations().iter().find(|a| {
                a.firewall_rule_group_id() == Some(group_id)
                    && a.vpc_id() == Some(vpc_id)
                    && a.status() != Some(&FirewallRuleGroupAssociationStatus::Deleting)
            });
            if let Some(a) = found {
                return Ok(Some(Association {
                    id: a.id().unwrap_or_default().to_string(),
                    priority: a.priority().unwrap_or_default(),
                    status: a
                        .status()
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_default(),
                }));
            }
            match out.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => return Ok(None),
            }
        }
        Err(runaway(LIST_ASSOCIATIONS))
    }

    /// Whether the list holds the domain (AWS may keep it with a trailing dot).
    pub async fn holds(&self, list_id: &str, domain: &Domain) -> Result<bool, RemediationError> {
        let mut token = None;
        for _ in 0..MAX_PAGES {
            let out = match self
                .client
                .list_firewall_domains()
                .firewall_domain_list_id(list_id)
                .set_next_token(token)
                .send()
                .await
            {
                Ok(out) => out,
                Err(e) if not_found(code(&e)) => return Ok(false),
                Err(e) => return Err(RemediationError::aws(LIST_DOMAINS, e)),
            };
            if out
                .domains()
                .iter()
                .any(|d| d.parse::<Domain>().is_ok_and(|d| d == *domain))
            {
                return Ok(true);
            }
            match out.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => return Ok(false),
            }
        }
        Err(runaway(LIST_DOMAINS))
    }

    pub async fn create_list(&self, name: &str, token: &str) -> Result<String, RemediationError> {
        let out = self
            .client
            .create_firewall_domain_list()
            .name(name)
            .creator_request_id(token)
            .send()
            .await
            .map_err(|e| RemediationError::aws(CREATE_LIST, e))?;
        out.firewall_domain_list()
            .and_then(|l| l.id())
            .map(String::from)
            .ok_or_else(|| RemediationError::Invalid(format!("{CREATE_LIST} named no list")))
    }

    pub async fn create_group(&self, name: &str, token: &str) -> Result<String, RemediationError> {
        let out = self
            .client
            .create_firewall_rule_group()
            .name(name)
            .creator_request_id(token)
            .send()
            .await
            .map_err(|e| RemediationError::aws(CREATE_GROUP, e))?;
        out.firewall_rule_group()
            .and_then(|g| g.id())
            .map(String::from)
            .ok_or_else(|| RemediationError::Invalid(format!("{CREATE_GROUP} named no group")))
    }

    /// BLOCK every domain of the list, answering NXDOMAIN (the name does not exist: a client
    /// gives up at once instead of retrying).
    pub async fn create_rule(
        &self,
        group_id: &str,
        list_id: &str,
        token: &str,
    ) -> Result<(), RemediationError> {
        self.client
            .create_firewall_rule()
            .firewall_rule_group_id(group_id)
            .firewall_domain_list_id(list_id)
            .name(firewall::RULE_NAME)
            .priority(firewall::RULE_PRIORITY)
            .action(Action::Block)
            .block_response(BlockResponse::Nxdomain)
            .creator_request_id(token)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| RemediationError::aws(CREATE_RULE, e))
    }

    pub async fn associate(
        &self,
        group_id: &str,
        vpc_id: &str,
        name: &str,
        priority: i32,
        token: &str,
    ) -> Result<String, RemediationError> {
        let out = self
            .client
            .associate_firewall_rule_group()
            .firewall_rule_group_id(group_id)
            .vpc_id(vpc_id)
            .name(name)
            .priority(priority)
            .creator_request_id(token)
            .send()
            .await
            .map_err(|e| RemediationError::aws(ASSOCIATE, e))?;
        out.firewall_rule_group_association()
            .and_then(|a| a.id())
            .map(String::from)
            .ok_or_else(|| RemediationError::Invalid(format!("{ASSOCIATE} named no association")))
    }

    /// Add the domain to the list, or remove it. Removing from a list that is gone is done.
    pub async fn update(
        &self,
        list_id: &str,
        domain: &Domain,
        add: bool,
    ) -> Result<(), RemediationError> {
        let operation = if add {
            FirewallDomainUpdateOperation::Add
        } else {
            FirewallDomainUpdateOperation::Remove
        };
        match self
            .client
            .update_firewall_domains()
            .firewall_domain_list_id(list_id)
            .operation(operation)
            .domains(domain.as_str())
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if !add && not_found(code(&e)) => Ok(()),
            Err(e) if not_found(code(&e)) => Err(RemediationError::Gone(format!(
                "the domain list {list_id} no longer exists"
            ))),
            Err(e) => Err(RemediationError::aws(UPDATE_DOMAINS, e)),
        }
    }
}
