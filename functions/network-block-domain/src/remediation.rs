//! The remediation on the core's trait: each part a few lines over the pure modules and the
//! AWS adapters.

use crate::aws::{ASSOCIATE, CREATE_GROUP, CREATE_LIST, CREATE_RULE, UPDATE_DOMAINS};
use crate::domain::{blockable, Domain, Refusal};
use crate::firewall::{self, FirewallState};
use crate::params::Params;
use crate::plan::{self, DomainStep, Held};
use crate::target::{self, DomainTarget};
use crate::{NetworkBlockDomain, SPEC};
use reflex_shared::finding::{named_instance, Finding};
use reflex_shared::remediation::{
    Applied, Context, Owned, OwnedChange, OwnedEntry, Plan, Remediation, RemediationError,
    ResourceRef, Spec, StepRecord, Subject, Tags, Unresolved,
};
use reflex_shared::status::Reason;
use serde::{Deserialize, Serialize};
use serde_json::json;

/// The record's API name of an extension: no AWS call, Reflex's own entry moves.
const EXTEND: &str = "reflex:ExtendBlock";

/// What a step produced: the id of a part it created (`None` for the rest).
pub type Output = Option<String>;

/// The value of Reflex's owned entry for a block (its key is the domain).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnedBlock {
    pub domain: Domain,
}

impl Subject for DomainTarget {
    fn resource(&self) -> &ResourceRef {
        &self.resource
    }
}

/// Reflex's blocks in the VPC, from its owned entries. An entry that does not read as a block
/// is not one of ours to reason about.
fn held(owned: &Owned) -> Vec<Held> {
    owned.entries.values().filter_map(held_from).collect()
}

fn held_from(entry: &OwnedEntry) -> Option<Held> {
    let block: OwnedBlock = serde_json::from_value(entry.value.clone()).ok()?;
    Some(Held {
        domain: block.domain,
        record_id: entry.record_id.clone(),
        expires_at: entry.expires_at,
    })
}

fn put(domain: &Domain, expires_at: i64) -> OwnedChange {
    OwnedChange::Put {
        key: domain.to_string(),
        value: json!(OwnedBlock {
            domain: domain.clone()
        }),
        expires_at: Some(expires_at),
    }
}

fn time(epoch: Option<i64>) -> serde_json::Value {
    epoch
        .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
        .map(|t| json!(t.to_rfc3339()))
        .unwrap_or(serde_json::Value::Null)
}

/// The id a step of the same record created, by the kind of step (its output).
fn created(
    earlier: &[Applied<DomainStep, Output>],
    kind: fn(&DomainStep) -> bool,
) -> Option<String> {
    earlier
        .iter()
        .rev()
        .find(|a| kind(&a.step))
        .and_then(|a| a.output.clone())
}

impl NetworkBlockDomain {
    /// The id of the VPC's list: the step's own, else the one an earlier step created, else
    /// found by name (a later attempt, after a crash, finds what the first one made).
    async fn list_id(
        &self,
        own: &Option<String>,
        vpc_id: &str,
        earlier: &[Applied<DomainStep, Output>],
    ) -> Result<String, RemediationError> {
        if let Some(id) = own
            .clone()
            .or_else(|| created(earlier, |s| matches!(s, DomainStep::CreateList { .. })))
        {
            return Ok(id);
        }
        self.resolver
            .list_named(&firewall::name(vpc_id))
            .await?
            .ok_or_else(|| {
                RemediationError::Gone(format!("Reflex's domain list for {vpc_id} is gone"))
            })
    }

    async fn group_id(
        &self,
        own: &Option<String>,
        vpc_id: &str,
        earlier: &[Applied<DomainStep, Output>],
    ) -> Result<String, RemediationError> {
        if let Some(id) = own
            .clone()
            .or_else(|| created(earlier, |s| matches!(s, DomainStep::CreateRuleGroup { .. })))
        {
            return Ok(id);
        }
        self.resolver
            .group_named(&firewall::name(vpc_id))
            .await?
            .ok_or_else(|| {
                RemediationError::Gone(format!("Reflex's rule group for {vpc_id} is gone"))
            })
    }
}

impl Remediation for NetworkBlockDomain {
    type Params = Params;
    type Target = DomainTarget;
    type State = FirewallState;
    type Step = DomainStep;
    type Output = Output;

    fn spec(&self) -> &'static Spec {
        &SPEC
    }

    /// The domain first (a refusal needs no AWS read), then the instance's VPC, read from EC2:
    /// never taken from the finding.
    async fn resolve(
        &self,
        finding: &Finding,
        params: &Params,
    ) -> Result<DomainTarget, Unresolved> {
        let text = finding
            .details
            .dns_domain
            .as_deref()
            .filter(|d| !d.is_empty())
            .ok_or_else(|| {
                Unresolved::NoTarget(
                    "the finding names no DNS domain (service.action.dnsRequestAction.domain)"
                        .into(),
                )
            })?;
        let domain = blockable(text, &params.allowlist).map_err(|r| match r {
            // Text that is no domain name is hostile or broken input: nothing to block.
            Refusal::Invalid(why) => Unresolved::NoTarget(why),
            Refusal::Aws(why) => Unresolved::Skip(Reason::NotBlockable, why),
            Refusal::Allowlisted(why) => Unresolved::Skip(Reason::Allowlisted, why),
        })?;
        let (instance_id, _) = named_instance(finding).map_err(Unresolved::NoTarget)?;
        let vpc_id = self.ec2.vpc_of(&instance_id).await?;
        Ok(DomainTarget {
            resource: target::vpc_ref(finding, &vpc_id),
            instance_id,
            vpc_id,
            domain,
        })
    }

    /// The VPC's tags: the block protects the VPC, so its owner exempts it there.
    async fn tags(&self, t: &DomainTarget) -> Result<Tags, RemediationError> {
        self.ec2.vpc_tags(&t.vpc_id).await
    }

    /// One finding at a time per VPC: the VPC's list, group, rule and association are made by
    /// the first finding that needs them, and the next one sees them (with the creates' fixed
    /// tokens for a create sent twice; see `firewall::creator_request_id`).
    fn shared_resource(&self, t: &DomainTarget) -> Option<String> {
        Some(t.vpc_id.clone())
    }

    /// Reflex's parts for the VPC, by name, in one round; then, in a second, the rule, the
    /// association and the domain.
    async fn inspect(
        &self,
        _ctx: &Context<'_>,
        t: &DomainTarget,
    ) -> Result<FirewallState, RemediationError> {
        let name = firewall::name(&t.vpc_id);
        let (list_id, group_id) = tokio::join!(
            self.resolver.list_named(&name),
            self.resolver.group_named(&name)
        );
        let (list_id, group_id) = (list_id?, group_id?);
        let rule = async {
            match (&group_id, &list_id) {
                (Some(g), Some(l)) => self.resolver.blocks_list(g, l).await,
                _ => Ok(false),
            }
        };
        let association = async {
            match &group_id {
                Some(g) => self.resolver.association(g, &t.vpc_id).await,
                None => Ok(None),
            }
        };
        let blocked = async {
            match &list_id {
                Some(l) => self.resolver.holds(l, &t.domain).await,
                None => Ok(false),
            }
        };
        let (rule, association, blocked) = tokio::join!(rule, association, blocked);
        Ok(FirewallState {
            vpc_id: t.vpc_id.clone(),
            domain: t.domain.clone(),
            list_id,
            group_id,
            rule: rule?,
            association: association?,
            blocked: blocked?,
        })
    }

    fn plan(
        &self,
        ctx: &Context<'_>,
        _t: &DomainTarget,
        s: &FirewallState,
        p: &Params,
    ) -> Plan<DomainStep> {
        let d = plan::plan(s, &held(ctx.owned), p, ctx.now.timestamp());
        Plan {
            steps: d.steps,
            untouched: d.untouched,
        }
    }

    async fn apply(
        &self,
        _ctx: &Context<'_>,
        t: &DomainTarget,
        step: &DomainStep,
        earlier: &[Applied<DomainStep, Output>],
    ) -> Result<Output, RemediationError> {
        let vpc = &t.vpc_id;
        match step {
            DomainStep::CreateList {
                name,
                creator_request_id,
            } => Ok(Some(
                self.resolver.create_list(name, creator_request_id).await?,
            )),
            DomainStep::CreateRuleGroup {
                name,
                creator_request_id,
            } => Ok(Some(
                self.resolver.create_group(name, creator_request_id).await?,
            )),
            DomainStep::CreateRule {
                group_id,
                list_id,
                creator_request_id,
                ..
            } => {
                let group = self.group_id(group_id, vpc, earlier).await?;
                let list = self.list_id(list_id, vpc, earlier).await?;
                self.resolver
                    .create_rule(&group, &list, creator_request_id)
                    .await?;
                Ok(None)
            }
            DomainStep::Associate {
                group_id,
                vpc_id,
                name,
                priority,
                creator_request_id,
            } => {
                let group = self.group_id(group_id, vpc, earlier).await?;
                Ok(Some(
                    self.resolver
                        .associate(&group, vpc_id, name, *priority, creator_request_id)
                        .await?,
                ))
            }
            DomainStep::Block {
                list_id, domain, ..
            } => {
                let list = self.list_id(list_id, vpc, earlier).await?;
                self.resolver.update(&list, domain, true).await?;
                Ok(None)
            }
            DomainStep::Extend { .. } => Ok(None),
            // The list by name: the sweep and a rollback run long after the finding. A list
            // that is gone holds nothing to remove.
            DomainStep::Unblock { domain, .. } => {
                if let Some(list) = self.resolver.list_named(&firewall::name(vpc)).await? {
                    self.resolver.update(&list, domain, false).await?;
                }
                Ok(None)
            }
        }
    }

    fn describe(&self, t: &DomainTarget, step: &DomainStep) -> StepRecord {
        // An id an earlier step of the record creates is named as such.
        let id = |own: &Option<String>, made_by: &str| match own {
            Some(id) => json!(id),
            None => json!(format!("(the one {made_by} creates)")),
        };
        match step {
            DomainStep::CreateList {
                name,
                creator_request_id,
            } => StepRecord {
                api: CREATE_LIST,
                parameters: json!({"Name": name, "CreatorRequestId": creator_request_id}),
            },
            DomainStep::CreateRuleGroup {
                name,
                creator_request_id,
            } => StepRecord {
                api: CREATE_GROUP,
                parameters: json!({"Name": name, "CreatorRequestId": creator_request_id}),
            },
            DomainStep::CreateRule {
                group_id,
                list_id,
                name,
                priority,
                creator_request_id,
            } => StepRecord {
                api: CREATE_RULE,
                parameters: json!({
                    "FirewallRuleGroupId": id(group_id, "CreateFirewallRuleGroup"),
                    "FirewallDomainListId": id(list_id, "CreateFirewallDomainList"),
                    "Name": name,
                    "Priority": priority,
                    "Action": "BLOCK",
                    "BlockResponse": "NXDOMAIN",
                    "CreatorRequestId": creator_request_id,
                }),
            },
            DomainStep::Associate {
                group_id,
                vpc_id,
                name,
                priority,
                creator_request_id,
            } => StepRecord {
                api: ASSOCIATE,
                parameters: json!({
                    "FirewallRuleGroupId": id(group_id, "CreateFirewallRuleGroup"),
                    "VpcId": vpc_id,
                    "Name": name,
                    "Priority": priority,
                    "CreatorRequestId": creator_request_id,
                }),
            },
            DomainStep::Block {
                list_id,
                domain,
                expires_at,
            } => StepRecord {
                api: UPDATE_DOMAINS,
                parameters: json!({
                    "FirewallDomainListId": id(list_id, "CreateFirewallDomainList"),
                    "Operation": "ADD",
                    "Domains": [domain],
                    "VpcId": t.vpc_id,
                    "ExpiresAt": time(Some(*expires_at)),
                }),
            },
            DomainStep::Extend { domain, from, to } => StepRecord {
                api: EXTEND,
                parameters: json!({
                    "Domain": domain,
                    "VpcId": t.vpc_id,
                    "ExpiresAt": time(Some(*to)),
                    "ExpiredAt": time(*from),
                }),
            },
            DomainStep::Unblock {
                domain,
                why,
                made_by,
                expires_at,
            } => StepRecord {
                api: UPDATE_DOMAINS,
                parameters: json!({
                    "FirewallDomainListName": firewall::name(&t.vpc_id),
                    "Operation": "REMOVE",
                    "Domains": [domain],
                    "VpcId": t.vpc_id,
                    "Reason": why,
                    "BlockedByRecord": made_by,
                    "ExpiresAt": time(*expires_at),
                }),
            },
        }
    }

    /// Each block is Reflex's entry on the VPC, written with the checkpoint before the change:
    /// a crash after it still leaves the entry for the sweep.
    fn owned_changes(&self, _t: &DomainTarget, step: &DomainStep) -> Vec<OwnedChange> {
        match step {
            DomainStep::Block {
                domain, expires_at, ..
            } => vec![put(domain, *expires_at)],
            DomainStep::Extend { domain, to, .. } => vec![put(domain, *to)],
            DomainStep::Unblock { domain, .. } => vec![OwnedChange::Remove {
                key: domain.to_string(),
            }],
            _ => Vec::new(),
        }
    }

    fn undoable(&self, step: &DomainStep) -> bool {
        step.undoable()
    }

    /// The firewall's parts a block needs are kept on rollback, but only add an empty part:
    /// nothing is destroyed. A removal (sweep, rollback) is never part of a fix.
    fn irreversible(&self, step: &DomainStep) -> bool {
        !step.undoable()
            && !matches!(
                step,
                DomainStep::CreateList { .. }
                    | DomainStep::CreateRuleGroup { .. }
                    | DomainStep::CreateRule { .. }
                    | DomainStep::Associate { .. }
            )
    }

    fn undo(
        &self,
        _t: &DomainTarget,
        _pre: &FirewallState,
        applied: &[Applied<DomainStep, Output>],
    ) -> Vec<DomainStep> {
        let steps: Vec<DomainStep> = applied.iter().map(|a| a.step.clone()).collect();
        plan::undo(&steps)
    }

    fn as_left(&self, post: &FirewallState, live: &FirewallState) -> bool {
        FirewallState::as_left(post, live)
    }

    fn restored(&self, pre: &FirewallState, live: &FirewallState) -> bool {
        FirewallState::restored(pre, live)
    }

    fn expire(&self, _t: &DomainTarget, _key: &str, entry: &OwnedEntry) -> Vec<DomainStep> {
        held_from(entry)
            .map(|h| vec![plan::expire(&h)])
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owned_entries_read_back_as_blocks() {
        let d: Domain = "c2.example".parse().unwrap();
        let OwnedChange::Put {
            key,
            value,
            expires_at,
        } = put(&d, 99)
        else {
            panic!()
        };
        assert_eq!(key, "c2.example");
        let entry = OwnedEntry {
            value,
            record_id: "r-1".into(),
            created_at: 1,
            expires_at,
            target: json!({}),
        };
        assert_eq!(
            held_from(&entry),
            Some(Held {
                domain: d,
                record_id: "r-1".into(),
                expires_at: Some(99)
            })
        );
        let alien = OwnedEntry {
            value: json!({"rule_number": 80}),
            ..entry
        };
        assert_eq!(held_from(&alien), None);
    }
}
