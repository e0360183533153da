//! The remediation on the core's trait: each part a few lines over the pure modules and the
//! IAM adapter. The AWS calls are boxed: the trait's futures are inlined into the pipeline's,
//! and the SDK's (large in debug builds) would otherwise grow every delivery future.

use crate::aws::UPDATE_ACCESS_KEY;
use crate::keys::KeysState;
use crate::params::Params;
use crate::plan::{self, KeyStep};
use crate::target::{self, KeyTarget, Refused, Rule, Wanted};
use crate::{IamDisableAccessKey, SPEC};
use reflex_shared::finding::Finding;
use reflex_shared::remediation::{
    Applied, Context, Plan, Remediation, RemediationError, ResourceRef, Spec, StepRecord, Subject,
    Tags, Unresolved,
};
use reflex_shared::status::Reason;
use serde_json::json;

impl Subject for KeyTarget {
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

impl IamDisableAccessKey {
    /// The user (from IAM, never from the payload) and the rule, for `finding`.
    async fn resolve_target(
        &self,
        finding: &Finding,
        params: &Params,
    ) -> Result<KeyTarget, Unresolved> {
        let (user_name, rule, claimed) = match target::wanted(finding, params)? {
            Wanted::KeyOwner {
                access_key_id,
                principal_id,
            } => {
                let owner = self.iam.last_used(&access_key_id).await?;
                let name = owner.user_name.ok_or_else(|| {
                    Unresolved::NoTarget(format!(
                        "IAM names no user owning access key {access_key_id}"
                    ))
                })?;
                (name, Rule::Named { access_key_id }, principal_id)
            }
            Wanted::User { name, rule } => (name, rule, None),
        };
        let user = self.iam.user(&user_name).await?;
        if let Some(why) = target::principal_mismatch(claimed.as_deref(), &user.id, &user.arn) {
            return Err(Unresolved::Skip(Reason::Unconfirmed, why));
        }
        Ok(KeyTarget {
            resource: target::user_ref(&finding.account, &user.name, &user.arn),
            user_name: user.name,
            user_id: user.id,
            user_arn: user.arn,
            rule,
        })
    }

    /// The keys the rule is about: the named one (gone if it was deleted), or all the user's.
    async fn read_keys(&self, t: &KeyTarget) -> Result<KeysState, RemediationError> {
        let last_used = matches!(t.rule, Rule::Unused { .. });
        let keys = self.iam.keys(&t.user_name, last_used).await?;
        match &t.rule {
            Rule::Named { access_key_id } => {
                let keys: Vec<_> = keys
                    .into_iter()
                    .filter(|k| &k.access_key_id == access_key_id)
                    .collect();
                if keys.is_empty() {
                    return Err(RemediationError::Gone(format!(
                        "access key {access_key_id} of {} no longer exists",
                        t.user_name
                    )));
                }
                Ok(KeysState { keys })
            }
            Rule::Rotation { .. } | Rule::Unused { .. } => Ok(KeysState { keys }),
        }
    }
}

impl Remediation for IamDisableAccessKey {
    type Params = Params;
    type Target = KeyTarget;
    type State = KeysState;
    type Step = KeyStep;
    type Output = ();

    fn spec(&self) -> &'static Spec {
        &SPEC
    }

    /// The refusals that need no read first (a temporary or root key); then the key's owner
    /// (GetAccessKeyLastUsed) and the user (GetUser: its ARN with path, its unique id). A
    /// finding whose principal is not that user is not acted on.
    async fn resolve(&self, finding: &Finding, params: &Params) -> Result<KeyTarget, Unresolved> {
        Box::pin(self.resolve_target(finding, params)).await
    }

    /// The user's tags: a key has none, and its user is what a team exempts.
    async fn tags(&self, t: &KeyTarget) -> Result<Tags, RemediationError> {
        Box::pin(self.iam.tags(&t.user_name)).await
    }

    /// The user's unique id: a user deleted and created again under the same name is another
    /// user, whose keys an approval or a rollback must not touch.
    async fn identity(&self, t: &KeyTarget) -> Result<Option<String>, RemediationError> {
        Ok(Some(Box::pin(self.iam.user(&t.user_name)).await?.id))
    }

    async fn inspect(
        &self,
        _ctx: &Context<'_>,
        t: &KeyTarget,
    ) -> Result<KeysState, RemediationError> {
        Box::pin(self.read_keys(t)).await
    }

    fn plan(&self, ctx: &Context<'_>, t: &KeyTarget, s: &KeysState, _p: &Params) -> Plan<KeyStep> {
        plan::plan(&t.rule, &t.user_name, s, ctx.now)
    }

    /// Every step changes the user's credentials: the user, by ARN (path included) and by id.
    fn principals(&self, t: &KeyTarget, _step: &KeyStep) -> Vec<String> {
        vec![t.user_arn.clone(), t.user_id.clone()]
    }

    async fn apply(
        &self,
        _ctx: &Context<'_>,
        _t: &KeyTarget,
        step: &KeyStep,
        _earlier: &[Applied<KeyStep, ()>],
    ) -> Result<(), RemediationError> {
        Box::pin(
            self.iam
                .set_status(step.user_name(), step.access_key_id(), step.status()),
        )
        .await
    }

    fn describe(&self, _t: &KeyTarget, step: &KeyStep) -> StepRecord {
        let why = match step {
            KeyStep::Deactivate { why, .. } => why.as_str(),
            KeyStep::Reactivate { .. } => "rollback: the key this record set inactive",
        };
        StepRecord {
            api: UPDATE_ACCESS_KEY,
            parameters: json!({
                "UserName": step.user_name(),
                "AccessKeyId": step.access_key_id(),
                "Status": step.status().as_str(),
                "Reason": why,
            }),
        }
    }

    /// A deactivation can be undone; a reactivation is a rollback's own step.
    fn undoable(&self, step: &KeyStep) -> bool {
        matches!(step, KeyStep::Deactivate { .. })
    }

    fn undo(
        &self,
        _t: &KeyTarget,
        _pre: &KeysState,
        applied: &[Applied<KeyStep, ()>],
    ) -> Vec<KeyStep> {
        let steps: Vec<KeyStep> = applied.iter().map(|a| a.step.clone()).collect();
        plan::undo(&steps)
    }

    fn as_left(&self, post: &KeysState, live: &KeysState) -> bool {
        KeysState::as_left(post, live)
    }

    fn restored(&self, pre: &KeysState, live: &KeysState) -> bool {
        KeysState::restored(pre, live)
    }
}
