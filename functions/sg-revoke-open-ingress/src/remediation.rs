//! The remediation on the core's trait: each part a few lines over the pure modules and the
//! EC2 adapter.

use crate::aws::{AUTHORIZE_INGRESS, REVOKE_INGRESS};
use crate::offending::{offending, Evaluated};
use crate::params::Params;
use crate::plan::{self, SgStep};
use crate::rules::{GroupState, Rule, Source};
use crate::target::{named_group, SgTarget};
use crate::{SgRevokeOpenIngress, SPEC};
use reflex_shared::finding::{Finding, FindingKind};

/// The Config rules whose own parameters decide the offending ports.
const RULES_WITH_PARAMETERS: &[&str] = &[
    "RESTRICTED_INCOMING_TRAFFIC",
    "VPC_SG_OPEN_ONLY_TO_AUTHORIZED_PORTS",
];
use reflex_shared::remediation::{
    Applied, Context, Plan, Remediation, RemediationError, ResourceRef, Spec, StepRecord, Subject,
    Tags, Unresolved,
};
use serde_json::{json, Value};

impl Subject for SgTarget {
    fn resource(&self) -> &ResourceRef {
        &self.resource
    }
}

/// A rule as the record writes it (the API's names).
fn rule_json(rule: &Rule) -> Value {
    let mut v = json!({
        "IpProtocol": rule.protocol,
        "FromPort": rule.from_port,
        "ToPort": rule.to_port,
    });
    match &rule.source {
        Source::Ipv4 { cidr } => v["CidrIpv4"] = json!(cidr),
        Source::Ipv6 { cidr } => v["CidrIpv6"] = json!(cidr),
        Source::PrefixList { id } => v["PrefixListId"] = json!(id),
        Source::Group { group_id, user_id } => {
            v["ReferencedGroupInfo"] = json!({"GroupId": group_id, "UserId": user_id})
        }
    }
    if let Some(d) = &rule.description {
        v["Description"] = json!(d);
    }
    if !rule.id.is_empty() {
        v["SecurityGroupRuleId"] = json!(rule.id);
    }
    v
}

impl Remediation for SgRevokeOpenIngress {
    type Params = Params;
    type Target = SgTarget;
    type State = GroupState;
    type Step = SgStep;
    /// The rule id an authorization made (`None` for a revoke).
    type Output = Option<String>;

    fn spec(&self) -> &'static Spec {
        &SPEC
    }

    /// The group and the offending ports, from the finding alone (no AWS read: `inspect`
    /// finds a deleted group gone).
    async fn resolve(&self, finding: &Finding, params: &Params) -> Result<SgTarget, Unresolved> {
        let resource = named_group(finding).map_err(Unresolved::NoTarget)?;
        // A Config rule's parameters are the rule's own, not in its events: read from Config
        // (the rule is the one the pipeline resolved by identity, under its deployed name).
        let rule_parameters = match (&finding.kind, &finding.details.config_rule) {
            (FindingKind::ConfigRule(id), Some(name))
                if RULES_WITH_PARAMETERS.contains(&id.as_str()) =>
            {
                Some(self.config.parameters(name).await?)
            }
            _ => None,
        };
        let evaluated = Evaluated {
            control_parameters: Some(&finding.details.control_parameters),
            rule_parameters: rule_parameters.as_ref(),
        };
        let offending =
            offending(&finding.kind, &evaluated, params).map_err(Unresolved::NoTarget)?;
        Ok(SgTarget {
            group_id: resource.id.clone(),
            resource,
            offending,
        })
    }

    // No `identity`: a security group id is never given to another group, so the id alone
    // tells a group from a later one of the same name.

    async fn tags(&self, t: &SgTarget) -> Result<Tags, RemediationError> {
        self.ec2.tags(&t.group_id).await
    }

    async fn inspect(
        &self,
        _ctx: &Context<'_>,
        t: &SgTarget,
    ) -> Result<GroupState, RemediationError> {
        Ok(GroupState::new(
            t.group_id.clone(),
            self.ec2.ingress(&t.group_id).await?,
        ))
    }

    fn plan(&self, _ctx: &Context<'_>, t: &SgTarget, s: &GroupState, _p: &Params) -> Plan<SgStep> {
        let (steps, untouched) = plan::plan(s, &t.offending);
        Plan { steps, untouched }
    }

    async fn apply(
        &self,
        _ctx: &Context<'_>,
        t: &SgTarget,
        step: &SgStep,
        _earlier: &[Applied<SgStep, Option<String>>],
    ) -> Result<Option<String>, RemediationError> {
        match step {
            SgStep::Revoke { rules } => {
                let ids: Vec<&str> = rules.iter().map(|r| r.rule.id.as_str()).collect();
                self.ec2.revoke(&t.group_id, &ids).await?;
                Ok(None)
            }
            SgStep::Authorize { rule } => self.ec2.authorize(&t.group_id, rule).await,
        }
    }

    fn describe(&self, t: &SgTarget, step: &SgStep) -> StepRecord {
        match step {
            SgStep::Revoke { rules } => {
                // Each rule's content, with what was kept of it and what else it closed.
                let described: Vec<Value> = rules
                    .iter()
                    .map(|r| {
                        let mut rule = rule_json(&r.rule);
                        if !r.kept.is_empty() {
                            rule["KeptByAuthorizingFirst"] =
                                Value::Array(r.kept.iter().map(rule_json).collect());
                        }
                        if let Some(why) = &r.also_closed {
                            rule["AlsoClosed"] = json!(why);
                        }
                        rule
                    })
                    .collect();
                StepRecord {
                    api: REVOKE_INGRESS,
                    parameters: json!({
                        "GroupId": t.group_id,
                        "SecurityGroupRuleIds": rules.iter().map(|r| &r.rule.id).collect::<Vec<_>>(),
                        "Rules": described,
                        "Offending": t.offending.why,
                    }),
                }
            }
            SgStep::Authorize { rule } => StepRecord {
                api: AUTHORIZE_INGRESS,
                parameters: json!({
                    "GroupId": t.group_id,
                    "IpPermissions": [rule_json(rule)],
                    "Offending": t.offending.why,
                }),
            },
        }
    }

    fn undo(
        &self,
        _t: &SgTarget,
        _pre: &GroupState,
        applied: &[Applied<SgStep, Option<String>>],
    ) -> Vec<SgStep> {
        let applied: Vec<(SgStep, Option<String>)> = applied
            .iter()
            .map(|a| (a.step.clone(), a.output.clone()))
            .collect();
        plan::undo(&applied)
    }

    /// By content: the fix's rules keep their ids, but a state equal in what it allows is the
    /// state the fix left.
    fn as_left(&self, post: &GroupState, live: &GroupState) -> bool {
        post.same_rules(live)
    }

    /// By content: a rule authorized again gets a new id.
    fn restored(&self, pre: &GroupState, live: &GroupState) -> bool {
        pre.same_rules(live)
    }
}
