//! The remediation on the core's trait: each part a few lines over the pure modules and the
//! IAM adapter. The AWS calls are boxed: the trait's futures are inlined into the pipeline's.

use crate::aws::attachment_api;
use crate::model::{AdminState, AdminStep, AdminTarget, Attached, Params, Scope};
use crate::target::{self, Refused, Wanted};
use crate::{plan, IamDetachAdminPolicy, SPEC};
use reflex_shared::finding::{Finding, ResourceKind};
use reflex_shared::principal::PrincipalKind;
use reflex_shared::remediation::{
    Applied, Context, Plan, Remediation, RemediationError, ResourceRef, Spec, StepRecord, Subject,
    Tags, Unresolved,
};
use serde_json::json;

impl Subject for AdminTarget {
    fn resource(&self) -> &ResourceRef {
        &self.resource
    }
}

impl From<Refused> for Unresolved {
    fn from(r: Refused) -> Self {
        match r {
            Refused::NoTarget(why) => Unresolved::NoTarget(why),
            Refused::Skip(reason, why) => Unresolved::Skip(reason, why),
        }
    }
}

impl IamDetachAdminPolicy {
    async fn resolve_target(&self, finding: &Finding) -> Result<AdminTarget, Unresolved> {
        let arn = match target::wanted(finding)? {
            Wanted::User(name) => {
                let user = self.iam.holder(PrincipalKind::User, &name).await?;
                return Ok(AdminTarget {
                    resource: ResourceRef {
                        kind: ResourceKind::IamUser,
                        id: user.name.clone(),
                        arn: user.arn.clone(),
                        account: finding.account.clone(),
                    },
                    scope: Scope::User(user),
                });
            }
            Wanted::PolicyArn(arn) => arn,
            Wanted::PolicyId(id) => self.iam.policy_arn_by_id(&id).await?.ok_or_else(|| {
                RemediationError::Gone(format!("no customer managed policy has the id {id}"))
            })?,
        };
        let p = self.iam.policy(&arn).await?;
        Ok(AdminTarget {
            resource: ResourceRef {
                kind: ResourceKind::IamPolicy,
                id: p.name.clone(),
                arn: p.arn.clone(),
                account: finding.account.clone(),
            },
            scope: Scope::Policy {
                policy_arn: p.arn,
                policy_id: p.id,
                policy_name: p.name,
            },
        })
    }

    async fn read(&self, t: &AdminTarget) -> Result<AdminState, RemediationError> {
        match &t.scope {
            Scope::Policy { policy_arn, .. } => {
                let p = self.iam.policy(policy_arn).await?;
                let full_admin = self.iam.full_admin(policy_arn, &p.default_version).await?;
                let holders = self.iam.holders(policy_arn).await?;
                Ok(AdminState::Policy {
                    default_version: p.default_version,
                    full_admin,
                    holders,
                })
            }
            Scope::User(user) => {
                let mut attached = Vec::new();
                for (arn, name) in self.iam.attached_to_user(&user.name).await? {
                    let p = self.iam.policy(&arn).await?;
                    attached.push(Attached {
                        full_admin: self.iam.full_admin(&arn, &p.default_version).await?,
                        policy_arn: arn,
                        policy_name: name,
                    });
                }
                attached.sort();
                Ok(AdminState::User { attached })
            }
        }
    }

    async fn change(&self, step: &AdminStep) -> Result<(), RemediationError> {
        match step {
            AdminStep::Detach { policy_arn, holder } => self.iam.detach(holder, policy_arn).await,
            AdminStep::Attach { policy_arn, holder } => {
                // Only to the principal it was detached from: one created again under the same
                // name is another principal, and gets nothing back.
                let live = self.iam.holder(holder.kind, &holder.name).await?;
                if live.id != holder.id {
                    return Err(RemediationError::Invalid(format!(
                        "{} is another principal now (unique id {}, was {}): {policy_arn} is not attached to it again",
                        holder.arn, live.id, holder.id
                    )));
                }
                self.iam.attach(holder, policy_arn).await
            }
        }
    }
}

impl Remediation for IamDetachAdminPolicy {
    type Params = Params;
    type Target = AdminTarget;
    type State = AdminState;
    type Step = AdminStep;
    type Output = ();

    fn spec(&self) -> &'static Spec {
        &SPEC
    }

    async fn resolve(&self, finding: &Finding, _p: &Params) -> Result<AdminTarget, Unresolved> {
        Box::pin(self.resolve_target(finding)).await
    }

    async fn tags(&self, t: &AdminTarget) -> Result<Tags, RemediationError> {
        match &t.scope {
            Scope::Policy { policy_arn, .. } => Box::pin(self.iam.policy_tags(policy_arn)).await,
            Scope::User(user) => Box::pin(self.iam.user_tags(&user.name)).await,
        }
    }

    /// The policy's unique id (IAM.2: the user's): another policy under the same name is not
    /// the one the plan was made for.
    async fn identity(&self, t: &AdminTarget) -> Result<Option<String>, RemediationError> {
        match &t.scope {
            Scope::Policy { policy_arn, .. } => {
                Ok(Some(Box::pin(self.iam.policy(policy_arn)).await?.id))
            }
            Scope::User(user) => Ok(Some(
                Box::pin(self.iam.holder(PrincipalKind::User, &user.name))
                    .await?
                    .id,
            )),
        }
    }

    async fn inspect(
        &self,
        _ctx: &Context<'_>,
        t: &AdminTarget,
    ) -> Result<AdminState, RemediationError> {
        Box::pin(self.read(t)).await
    }

    fn plan(
        &self,
        _ctx: &Context<'_>,
        t: &AdminTarget,
        s: &AdminState,
        _p: &Params,
    ) -> Plan<AdminStep> {
        plan::plan(t, s)
    }

    /// The holder a step changes, by ARN (path included) and unique id.
    fn principals(&self, _t: &AdminTarget, step: &AdminStep) -> Vec<String> {
        let h = step.holder();
        vec![h.arn.clone(), h.id.clone()]
    }

    async fn apply(
        &self,
        _ctx: &Context<'_>,
        _t: &AdminTarget,
        step: &AdminStep,
        _earlier: &[Applied<AdminStep, ()>],
    ) -> Result<(), RemediationError> {
        Box::pin(self.change(step)).await
    }

    fn describe(&self, _t: &AdminTarget, step: &AdminStep) -> StepRecord {
        let h = step.holder();
        let name_key = match h.kind {
            PrincipalKind::User => "UserName",
            PrincipalKind::Group => "GroupName",
            PrincipalKind::Role => "RoleName",
        };
        StepRecord {
            api: attachment_api(h.kind, matches!(step, AdminStep::Attach { .. })),
            parameters: json!({
                name_key: h.name,
                "PolicyArn": step.policy_arn(),
                "PrincipalArn": h.arn,
                "PrincipalId": h.id,
            }),
        }
    }

    fn undoable(&self, step: &AdminStep) -> bool {
        matches!(step, AdminStep::Detach { .. })
    }

    fn undo(
        &self,
        _t: &AdminTarget,
        _pre: &AdminState,
        applied: &[Applied<AdminStep, ()>],
    ) -> Vec<AdminStep> {
        let steps: Vec<AdminStep> = applied.iter().map(|a| a.step.clone()).collect();
        plan::undo(&steps)
    }
}
