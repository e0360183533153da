//! The remediation on the core's trait: each part a few lines over the pure modules and the IAM
//! adapter.

use crate::aws::*;
use crate::document::{self, POLICY_NAME};
use crate::plan::{self, Acted, ContainStep, PrincipalState};
use crate::principal::{self, Claim};
use crate::target::ContainTarget;
use crate::{IamContainPrincipal, Params, SPEC};
use chrono::SecondsFormat;
use reflex_shared::finding::Finding;
use reflex_shared::principal::PrincipalKind;
use reflex_shared::remediation::{
    Applied, Context, Plan, Remediation, RemediationError, ResourceRef, Spec, StepRecord, Subject,
    Tags, Unresolved,
};
use reflex_shared::status::Reason;
use serde_json::json;

impl Subject for ContainTarget {
    fn resource(&self) -> &ResourceRef {
        &self.resource
    }
}

/// The API of a step on a user or a role.
fn api(kind: PrincipalKind, step: &ContainStep) -> &'static str {
    let role = kind == PrincipalKind::Role;
    match step {
        ContainStep::RevokeSessions | ContainStep::RestoreRevocation { .. } if role => {
            PUT_ROLE_POLICY
        }
        ContainStep::RevokeSessions | ContainStep::RestoreRevocation { .. } => PUT_USER_POLICY,
        ContainStep::RemoveRevocation if role => DELETE_ROLE_POLICY,
        ContainStep::RemoveRevocation => DELETE_USER_POLICY,
        ContainStep::DeleteLoginProfile => DELETE_LOGIN_PROFILE,
    }
}

impl Remediation for IamContainPrincipal {
    type Params = Params;
    type Target = ContainTarget;
    type State = PrincipalState;
    type Step = ContainStep;
    type Output = Acted;

    fn spec(&self) -> &'static Spec {
        &SPEC
    }

    /// The principal the finding names, read from IAM by name; it must carry the unique id the
    /// finding names, or it is another principal under the same name.
    async fn resolve(&self, finding: &Finding, _p: &Params) -> Result<ContainTarget, Unresolved> {
        let (kind, name, claimed, session) = match principal::claim(finding)? {
            Claim::User { name, user_id } => (PrincipalKind::User, name, user_id, None),
            Claim::Role {
                name,
                role_id,
                session,
            } => {
                let full = format!("{role_id}:{session}");
                (PrincipalKind::Role, name, role_id, Some(full))
            }
        };
        let live = self.iam.principal(kind, &name).await?;
        if live.unique_id != claimed {
            return Err(Unresolved::Skip(
                Reason::Unconfirmed,
                format!(
                    "the finding names IAM {k} {name} with unique id {claimed}, but IAM's {k} \
                     {name} ({}) has unique id {}: another principal holds the name now (deleted \
                     and re-created since the finding); not acted on",
                    live.arn,
                    live.unique_id,
                    k = kind.as_str()
                ),
            ));
        }
        Ok(ContainTarget::new(
            kind,
            &live,
            &finding.account,
            session,
            finding.details.access_key_id.clone(),
        ))
    }

    async fn tags(&self, t: &ContainTarget) -> Result<Tags, RemediationError> {
        Ok(self.iam.principal(t.kind, &t.name).await?.tags)
    }

    /// The principal's unique id: approval and rollback refuse one re-created under the name.
    async fn identity(&self, t: &ContainTarget) -> Result<Option<String>, RemediationError> {
        Ok(Some(self.iam.principal(t.kind, &t.name).await?.unique_id))
    }

    async fn inspect(
        &self,
        _ctx: &Context<'_>,
        t: &ContainTarget,
    ) -> Result<PrincipalState, RemediationError> {
        let policy = self.iam.inline_policy(t.kind, &t.name, POLICY_NAME);
        if t.kind == PrincipalKind::User {
            let (revocation, console_login) = tokio::join!(policy, self.iam.login_profile(&t.name));
            Ok(PrincipalState {
                revocation: revocation?,
                console_login: console_login?,
            })
        } else {
            Ok(PrincipalState {
                revocation: policy.await?,
                console_login: false,
            })
        }
    }

    fn plan(
        &self,
        ctx: &Context<'_>,
        _t: &ContainTarget,
        s: &PrincipalState,
        _p: &Params,
    ) -> Plan<ContainStep> {
        let activity = plan::activity(ctx.finding.observed_at.as_deref(), &ctx.finding.generation);
        Plan::of(plan::plan(s, activity))
    }

    /// Every step changes the one principal.
    fn principals(&self, t: &ContainTarget, _step: &ContainStep) -> Vec<String> {
        t.principals()
    }

    /// The revocation's cutoff is taken here, at the moment of acting (after an approval's
    /// wait, too), and returned as the step's output for the record.
    async fn apply(
        &self,
        ctx: &Context<'_>,
        t: &ContainTarget,
        step: &ContainStep,
        _earlier: &[Applied<ContainStep, Acted>],
    ) -> Result<Acted, RemediationError> {
        let acted_at = Some(ctx.now.to_rfc3339_opts(SecondsFormat::Millis, true));
        match step {
            ContainStep::RevokeSessions => {
                let cutoff = document::cutoff_for(ctx.now);
                self.iam
                    .put_policy(t.kind, &t.name, POLICY_NAME, &document::document(cutoff))
                    .await?;
                return Ok(Acted {
                    acted_at,
                    sessions_issued_before: Some(document::text(cutoff)),
                });
            }
            ContainStep::DeleteLoginProfile => self.iam.delete_login_profile(&t.name).await?,
            ContainStep::RemoveRevocation => {
                self.iam.delete_policy(t.kind, &t.name, POLICY_NAME).await?
            }
            ContainStep::RestoreRevocation { document } => {
                self.iam
                    .put_policy(t.kind, &t.name, POLICY_NAME, document)
                    .await?
            }
        }
        Ok(Acted {
            acted_at,
            sessions_issued_before: None,
        })
    }

    fn describe(&self, t: &ContainTarget, step: &ContainStep) -> StepRecord {
        let who = if t.kind == PrincipalKind::Role {
            "RoleName"
        } else {
            "UserName"
        };
        let parameters = match step {
            ContainStep::RevokeSessions => {
                let mut d = document::document(chrono::Utc::now());
                d["Statement"][0]["Condition"]["DateLessThan"]["aws:TokenIssueTime"] =
                    json!("the moment of acting (this action's output: sessions_issued_before)");
                json!({who: t.name, "PolicyName": POLICY_NAME, "PolicyDocument": d})
            }
            ContainStep::DeleteLoginProfile => json!({
                who: t.name,
                "Reversible": false,
                "Note": "the console password is deleted and cannot be restored: the user needs \
                         a new one from an administrator (CreateLoginProfile)",
            }),
            ContainStep::RemoveRevocation => json!({who: t.name, "PolicyName": POLICY_NAME}),
            ContainStep::RestoreRevocation { document } => json!({
                who: t.name,
                "PolicyName": POLICY_NAME,
                "PolicyDocument": document,
            }),
        };
        StepRecord {
            api: api(t.kind, step),
            parameters,
        }
    }

    fn undoable(&self, step: &ContainStep) -> bool {
        step.undoable()
    }

    fn undo(
        &self,
        _t: &ContainTarget,
        pre: &PrincipalState,
        applied: &[Applied<ContainStep, Acted>],
    ) -> Vec<ContainStep> {
        let steps: Vec<ContainStep> = applied.iter().map(|a| a.step.clone()).collect();
        plan::undo(pre, &steps)
    }

    fn restored(&self, pre: &PrincipalState, live: &PrincipalState) -> bool {
        plan::restored(pre, live)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apis_by_principal_kind() {
        let cases = [
            (
                PrincipalKind::User,
                ContainStep::RevokeSessions,
                PUT_USER_POLICY,
            ),
            (
                PrincipalKind::Role,
                ContainStep::RevokeSessions,
                PUT_ROLE_POLICY,
            ),
            (
                PrincipalKind::User,
                ContainStep::RemoveRevocation,
                DELETE_USER_POLICY,
            ),
            (
                PrincipalKind::Role,
                ContainStep::RemoveRevocation,
                DELETE_ROLE_POLICY,
            ),
            (
                PrincipalKind::Role,
                ContainStep::RestoreRevocation {
                    document: json!({}),
                },
                PUT_ROLE_POLICY,
            ),
            (
                PrincipalKind::User,
                ContainStep::DeleteLoginProfile,
                DELETE_LOGIN_PROFILE,
            ),
        ];
        for (kind, step, want) in cases {
            assert_eq!(api(kind, &step), want, "{kind:?} {step:?}");
        }
    }

    #[test]
    fn every_api_is_declared() {
        for a in [
            GET_USER,
            GET_ROLE,
            GET_USER_POLICY,
            GET_ROLE_POLICY,
            GET_LOGIN_PROFILE,
            PUT_USER_POLICY,
            PUT_ROLE_POLICY,
            DELETE_USER_POLICY,
            DELETE_ROLE_POLICY,
            DELETE_LOGIN_PROFILE,
        ] {
            assert!(SPEC.iam_actions.contains(&a), "{a}");
        }
    }
}
