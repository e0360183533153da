//! The EC2 calls, each small: a group's existence and tags, its ingress rules by rule id, one
//! rule revoked by id, one rule authorized.

use crate::rules::{normalise_protocol, Rule, Source};
use aws_sdk_ec2::types::{
    Filter, IpPermission, IpRange, Ipv6Range, PrefixListId, SecurityGroupRule, UserIdGroupPair,
};
use reflex_shared::aws_error::code;
use reflex_shared::remediation::{RemediationError, Tags};

pub const DESCRIBE_GROUPS: &str = "ec2:DescribeSecurityGroups";
pub const DESCRIBE_RULES: &str = "ec2:DescribeSecurityGroupRules";
pub const REVOKE_INGRESS: &str = "ec2:RevokeSecurityGroupIngress";
pub const AUTHORIZE_INGRESS: &str = "ec2:AuthorizeSecurityGroupIngress";

#[derive(Debug, Clone)]
pub struct Ec2 {
    client: aws_sdk_ec2::Client,
}

pub fn group_gone(group_id: &str) -> RemediationError {
    RemediationError::Gone(format!("security group {group_id} no longer exists"))
}

fn group_not_found(code: Option<&str>) -> bool {
    matches!(
        code,
        Some("InvalidGroup.NotFound" | "InvalidGroupId.Malformed")
    )
}

impl Ec2 {
    pub fn new(client: aws_sdk_ec2::Client) -> Self {
        Ec2 { client }
    }

    /// The group's tags; gone if it no longer exists.
    pub async fn tags(&self, group_id: &str) -> Result<Tags, RemediationError> {
        let out = match self
            .client
            .describe_security_groups()
            .group_ids(group_id)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if group_not_found(code(&e)) => return Err(group_gone(group_id)),
            Err(e) => return Err(RemediationError::aws(DESCRIBE_GROUPS, e)),
        };
        let group = out
            .security_groups()
            .iter()
            .find(|g| g.group_id() == Some(group_id))
            .ok_or_else(|| group_gone(group_id))?;
        Ok(group
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

    /// The group's ingress rules, each with its rule id. A filter on an unknown group answers
    /// an empty list, so the group's existence is read too (a deleted group is gone, not
    /// compliant).
    pub async fn ingress(&self, group_id: &str) -> Result<Vec<Rule>, RemediationError> {
        let (exists, rules) = tokio::join!(self.tags(group_id), self.rules(group_id));
        exists?;
        rules
    }

    async fn rules(&self, group_id: &str) -> Result<Vec<Rule>, RemediationError> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .describe_security_group_rules()
                .filters(Filter::builder().name("group-id").values(group_id).build())
                .set_next_token(token.clone())
                .send()
                .await;
            let page = match page {
                Ok(p) => p,
                Err(e) if group_not_found(code(&e)) => return Err(group_gone(group_id)),
                Err(e) => return Err(RemediationError::aws(DESCRIBE_RULES, e)),
            };
            for r in page.security_group_rules() {
                // The filter is the API's; keep only this group's ingress, whatever it answers.
                if r.group_id() == Some(group_id) && r.is_egress() == Some(false) {
                    out.push(rule_from_sdk(r)?);
                }
            }
            token = page
                .next_token()
                .filter(|t| !t.is_empty())
                .map(str::to_string);
            if token.is_none() {
                return Ok(out);
            }
        }
    }

    /// Revoke ingress rules by their ids, in one call (AWS revokes all or none). A rule
    /// already gone is done (a retry after a crash, or someone else's revoke): AWS answers
    /// `InvalidSecurityGroupRuleId.NotFound`, the emulator `InvalidPermission.NotFound`, for
    /// the whole call, which then revoked nothing; the group is read again and the rules still
    /// in it are revoked, again in one call, so every call stays all or none and the step
    /// either took effect for all its rules or for none.
    pub async fn revoke(&self, group_id: &str, rule_ids: &[&str]) -> Result<(), RemediationError> {
        let mut ids: Vec<&str> = rule_ids.to_vec();
        for _ in 0..REVOKE_TRIES {
            match self.revoke_once(group_id, &ids).await {
                Ok(()) => return Ok(()),
                Err(Revoke::Failed(e)) => return Err(e),
                Err(Revoke::NotFound) => {
                    let present = self.rules(group_id).await?;
                    ids.retain(|id| present.iter().any(|r| r.id == *id));
                    if ids.is_empty() {
                        return Ok(());
                    }
                }
            }
        }
        Err(RemediationError::Aws {
            api: REVOKE_INGRESS,
            message: format!(
                "rules of {group_id} went missing on each of {REVOKE_TRIES} tries; nothing revoked by the last"
            ),
            fault: reflex_shared::aws_error::Fault::Transient,
        })
    }

    async fn revoke_once(&self, group_id: &str, rule_ids: &[&str]) -> Result<(), Revoke> {
        match self
            .client
            .revoke_security_group_ingress()
            .group_id(group_id)
            .set_security_group_rule_ids(Some(rule_ids.iter().map(|id| id.to_string()).collect()))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e)
                if matches!(
                    code(&e),
                    Some("InvalidSecurityGroupRuleId.NotFound" | "InvalidPermission.NotFound")
                ) =>
            {
                Err(Revoke::NotFound)
            }
            Err(e) if group_not_found(code(&e)) => Err(Revoke::Failed(group_gone(group_id))),
            Err(e) => Err(Revoke::Failed(RemediationError::aws(REVOKE_INGRESS, e))),
        }
    }

    /// Authorize one ingress rule; the id AWS gave it. A rule that exists already
    /// (`InvalidPermission.Duplicate`: an earlier attempt made it) is found by its content.
    pub async fn authorize(
        &self,
        group_id: &str,
        rule: &Rule,
    ) -> Result<Option<String>, RemediationError> {
        let sent = self
            .client
            .authorize_security_group_ingress()
            .group_id(group_id)
            .ip_permissions(permission(rule))
            .send()
            .await;
        match sent {
            Ok(out) => {
                let made = out
                    .security_group_rules()
                    .iter()
                    .filter_map(|r| rule_from_sdk(r).ok())
                    .find(|r| r.same_permission(rule))
                    .map(|r| r.id);
                match made {
                    Some(id) => Ok(Some(id)),
                    None => self.find(group_id, rule).await,
                }
            }
            Err(e) if code(&e) == Some("InvalidPermission.Duplicate") => {
                self.find(group_id, rule).await
            }
            Err(e) if group_not_found(code(&e)) => Err(group_gone(group_id)),
            Err(e) => Err(RemediationError::aws(AUTHORIZE_INGRESS, e)),
        }
    }

    async fn find(&self, group_id: &str, rule: &Rule) -> Result<Option<String>, RemediationError> {
        Ok(self
            .rules(group_id)
            .await?
            .into_iter()
            .find(|r| r.same_permission(rule))
            .map(|r| r.id))
    }
}

/// One rule as an `IpPermission` with exactly its one source and its description.
pub fn permission(rule: &Rule) -> IpPermission {
    let p = IpPermission::builder()
        .ip_protocol(&rule.protocol)
        .from_port(rule.from_port)
        .to_port(rule.to_port);
    let d = rule.description.clone();
    match &rule.source {
        Source::Ipv4 { cidr } => {
            p.ip_ranges(IpRange::builder().cidr_ip(cidr).set_description(d).build())
        }
        Source::Ipv6 { cidr } => p.ipv6_ranges(
            Ipv6Range::builder()
                .cidr_ipv6(cidr)
                .set_description(d)
                .build(),
        ),
        Source::PrefixList { id } => p.prefix_list_ids(
            PrefixListId::builder()
                .prefix_list_id(id)
                .set_description(d)
                .build(),
        ),
        Source::Group { group_id, user_id } => p.user_id_group_pairs(
            UserIdGroupPair::builder()
                .group_id(group_id)
                .set_user_id(user_id.clone())
                .set_description(d)
                .build(),
        ),
    }
    .build()
}

fn rule_from_sdk(r: &SecurityGroupRule) -> Result<Rule, RemediationError> {
    let invalid =
        |what: &str| RemediationError::Invalid(format!("a security group rule {what}: {r:?}"));
    let source = if let Some(cidr) = r.cidr_ipv4() {
        Source::Ipv4 { cidr: cidr.into() }
    } else if let Some(cidr) = r.cidr_ipv6() {
        Source::Ipv6 { cidr: cidr.into() }
    } else if let Some(id) = r.prefix_list_id() {
        Source::PrefixList { id: id.into() }
    } else if let Some(g) = r
        .referenced_group_info()
        .and_then(|g| g.group_id().map(|id| (id, g)))
    {
        Source::Group {
            group_id: g.0.into(),
            user_id: g.1.user_id().map(str::to_string),
        }
    } else {
        return Err(invalid("names no source"));
    };
    Ok(Rule {
        id: r
            .security_group_rule_id()
            .ok_or_else(|| invalid("has no rule id"))?
            .to_string(),
        protocol: normalise_protocol(r.ip_protocol().ok_or_else(|| invalid("has no protocol"))?),
        from_port: r.from_port().unwrap_or(-1),
        to_port: r.to_port().unwrap_or(-1),
        source,
        description: r
            .description()
            .filter(|d| !d.is_empty())
            .map(str::to_string),
    })
}

pub const DESCRIBE_CONFIG_RULES: &str = "config:DescribeConfigRules";

/// A Config rule's own parameters (`InputParameters`), which Config events do not carry.
#[derive(Debug, Clone)]
pub struct ConfigRules {
    client: aws_sdk_config::Client,
}

impl ConfigRules {
    pub fn new(client: aws_sdk_config::Client) -> Self {
        ConfigRules { client }
    }

    /// The parameters of the rule deployed as `name`, each as text (a number written as one);
    /// none for a rule without parameters, or one that no longer exists.
    pub async fn parameters(
        &self,
        name: &str,
    ) -> Result<std::collections::BTreeMap<String, String>, RemediationError> {
        let out = match self
            .client
            .describe_config_rules()
            .config_rule_names(name)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if code(&e) == Some("NoSuchConfigRuleException") => {
                return Ok(Default::default())
            }
            Err(e) => return Err(RemediationError::aws(DESCRIBE_CONFIG_RULES, e)),
        };
        let raw = out
            .config_rules()
            .iter()
            .find(|r| r.config_rule_name() == Some(name))
            .and_then(|r| r.input_parameters())
            .unwrap_or_default();
        rule_parameters(raw).map_err(|why| {
            RemediationError::Invalid(format!("Config rule {name}'s InputParameters {why}"))
        })
    }
}

/// `InputParameters` as Config stores them: a JSON object of text (or numbers), or nothing.
pub fn rule_parameters(raw: &str) -> Result<std::collections::BTreeMap<String, String>, String> {
    if raw.trim().is_empty() {
        return Ok(Default::default());
    }
    let v: serde_json::Value =
        serde_json::from_str(raw).map_err(|e| format!("are not JSON: {e}"))?;
    let object = v.as_object().ok_or("are not a JSON object")?;
    object
        .iter()
        .map(|(k, v)| match v {
            serde_json::Value::String(s) => Ok((k.clone(), s.clone())),
            serde_json::Value::Number(n) => Ok((k.clone(), n.to_string())),
            other => Err(format!("hold {k} = {other}, neither text nor a number")),
        })
        .collect()
}

/// Revoke calls before a batch whose rules keep disappearing is handed back for a retry.
const REVOKE_TRIES: usize = 3;

/// How one revoke call ended, when not done.
enum Revoke {
    /// A rule named is not in the group (any of them: the call revoked nothing).
    NotFound,
    Failed(RemediationError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_parameters_table() {
        let ok = |raw: &str| rule_parameters(raw).unwrap();
        assert!(ok("").is_empty());
        assert_eq!(
            ok(r#"{"blockedPort1": "8080", "blockedPort2": 22}"#),
            [("blockedPort1", "8080"), ("blockedPort2", "22")]
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .into()
        );
        assert!(rule_parameters("[1]").is_err());
        assert!(rule_parameters("{\"a\": [1]}")
            .unwrap_err()
            .contains("a = [1]"));
        assert!(rule_parameters("not json").is_err());
    }
}
