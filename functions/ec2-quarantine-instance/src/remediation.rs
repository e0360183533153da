//! The remediation as the core's trait: every method forwards to the pure planning (`plan`,
//! `describe`) or to the AWS-facing parts (`live`). The AWS calls are boxed: the trait's futures
//! are inlined into the pipeline's, and the SDK's (large in debug builds) otherwise made the
//! whole delivery future overflow a test thread's stack.
use crate::model::{Instance, InstanceState, Output, Params, Step};
use crate::{describe, live, plan, Ec2QuarantineInstance, SPEC};
use reflex_shared::finding::Finding;
use reflex_shared::remediation::{
    Applied, Context, Plan, Remediation, RemediationError, ResourceRef, Spec, StepRecord, Subject,
    Tags, Unresolved,
};

impl Subject for Instance {
    fn resource(&self) -> &ResourceRef {
        &self.resource
    }
}

impl Remediation for Ec2QuarantineInstance {
    type Params = Params;
    type Target = Instance;
    type State = InstanceState;
    type Step = Step;
    type Output = Output;

    fn spec(&self) -> &'static Spec {
        &SPEC
    }

    async fn resolve(&self, finding: &Finding, _params: &Params) -> Result<Instance, Unresolved> {
        Box::pin(live::resolve(&self.ec2, finding)).await
    }

    async fn tags(&self, target: &Instance) -> Result<Tags, RemediationError> {
        Box::pin(live::tags(&self.ec2, target)).await
    }

    /// One isolation group per VPC: findings for instances of one VPC are serialised, so two
    /// never both create it.
    fn shared_resource(&self, target: &Instance) -> Option<String> {
        Some(target.vpc_id.clone())
    }

    async fn inspect(
        &self,
        _ctx: &Context<'_>,
        target: &Instance,
    ) -> Result<InstanceState, RemediationError> {
        Box::pin(live::inspect(&self.ec2, target)).await
    }

    fn plan(
        &self,
        ctx: &Context<'_>,
        target: &Instance,
        state: &InstanceState,
        params: &Params,
    ) -> Plan<Step> {
        Plan::of(plan::plan(target, state, ctx.record_id, params))
    }

    async fn apply(
        &self,
        ctx: &Context<'_>,
        target: &Instance,
        step: &Step,
        earlier: &[Applied<Step, Output>],
    ) -> Result<Output, RemediationError> {
        Box::pin(live::apply(
            &self.ec2,
            target,
            ctx.record_id,
            step,
            earlier.iter().map(|a| &a.output),
        ))
        .await
    }

    fn describe(&self, target: &Instance, step: &Step) -> StepRecord {
        describe::describe(target, step)
    }

    fn undoable(&self, step: &Step) -> bool {
        plan::undoable(step)
    }

    /// What rollback keeps only adds (an isolation group Reflex owns, closed; a forensic
    /// snapshot): nothing is destroyed, so no step needs the approval tier.
    fn irreversible(&self, _step: &Step) -> bool {
        false
    }

    fn undo(
        &self,
        _target: &Instance,
        pre: &InstanceState,
        applied: &[Applied<Step, Output>],
    ) -> Vec<Step> {
        plan::undo(pre, applied.iter().map(|a| &a.step))
    }

    fn as_left(&self, post: &InstanceState, live: &InstanceState) -> bool {
        plan::as_left(post, live)
    }

    fn restored(&self, pre: &InstanceState, live: &InstanceState) -> bool {
        plan::restored(pre, live)
    }
}
