//! The remediation on the core's trait: each method hands over to the pure modules and the AWS
//! adapters.

use crate::aws::{self, Clients};
use crate::model::{PatchOutput, PatchState, PatchStep, PatchTarget, DOCUMENT};
use crate::params::Params;
use crate::plan::{comment, in_flight, plan};
use crate::progress::{completion_handle, standing, Standing};
use crate::resolve::{managed, target_of, Refusal};
use crate::SPEC;
use reflex_shared::finding::Finding;
use reflex_shared::remediation::{
    Applied, Context, Plan, Progress, Remediation, RemediationError, ResourceRef, Spec, StepRecord,
    Subject, Tags, Unresolved,
};
use reflex_shared::status::Reason;
use serde_json::{json, Value};

pub struct Ec2PatchInstance {
    aws: Clients,
}

impl Ec2PatchInstance {
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        Ec2PatchInstance::from_clients(aws_sdk_ec2::Client::new(sdk), aws_sdk_ssm::Client::new(sdk))
    }

    pub fn from_clients(ec2: aws_sdk_ec2::Client, ssm: aws_sdk_ssm::Client) -> Self {
        Ec2PatchInstance {
            aws: Clients { ec2, ssm },
        }
    }
}

impl Subject for PatchTarget {
    fn resource(&self) -> &ResourceRef {
        &self.instance
    }
}

impl From<Standing> for Progress {
    fn from(s: Standing) -> Progress {
        match s {
            Standing::Running => Progress::Running,
            Standing::Succeeded(summary) => Progress::Succeeded(summary),
            Standing::Failed(summary) => Progress::Failed(summary),
        }
    }
}

impl Remediation for Ec2PatchInstance {
    type Params = Params;
    type Target = PatchTarget;
    type State = PatchState;
    type Step = PatchStep;
    type Output = PatchOutput;

    fn spec(&self) -> &'static Spec {
        &SPEC
    }

    /// The one instance, at or above the parameters' severity, that SSM manages.
    async fn resolve(&self, finding: &Finding, params: &Params) -> Result<PatchTarget, Unresolved> {
        let target = target_of(finding, params).map_err(|r| match r {
            Refusal::NoTarget(why) => Unresolved::NoTarget(why),
            Refusal::BelowThreshold(why) => Unresolved::Skip(Reason::BelowThreshold, why),
        })?;
        let ping = self.aws.ping_status(target.instance_id()).await?;
        managed(target.instance_id(), ping.as_deref())
            .map_err(|why| Unresolved::Skip(Reason::NotManaged, why))?;
        Ok(target)
    }

    async fn tags(&self, target: &PatchTarget) -> Result<Tags, RemediationError> {
        self.aws.instance_tags(target.instance_id()).await
    }

    /// One patch run per instance at a time: findings for it are handled one after another, so
    /// the second sees the first's run in `inspect`.
    fn shared_resource(&self, target: &PatchTarget) -> Option<String> {
        Some(target.instance_id().to_string())
    }

    /// The Reflex run under way on the instance, if any, among the runs that can still be
    /// (sent within the completion deadline).
    async fn inspect(
        &self,
        ctx: &Context<'_>,
        target: &PatchTarget,
    ) -> Result<PatchState, RemediationError> {
        let since = ctx.now - chrono::Duration::seconds(SPEC.completion_timeout_seconds);
        let since = since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let listed = self
            .aws
            .patch_commands(target.instance_id(), &since)
            .await?;
        Ok(PatchState {
            in_flight: in_flight(&listed),
        })
    }

    fn plan(
        &self,
        _ctx: &Context<'_>,
        _target: &PatchTarget,
        state: &PatchState,
        params: &Params,
    ) -> Plan<PatchStep> {
        Plan::of(plan(state, params))
    }

    async fn apply(
        &self,
        ctx: &Context<'_>,
        target: &PatchTarget,
        step: &PatchStep,
        _earlier: &[Applied<PatchStep, PatchOutput>],
    ) -> Result<PatchOutput, RemediationError> {
        let command_id = match step {
            PatchStep::RunPatchBaseline { reboot } => {
                self.aws
                    .send_patch_baseline(target.instance_id(), *reboot, &comment(ctx.record_id))
                    .await?
            }
            // The run under way is this record's too: nothing to send.
            PatchStep::Follow { command_id } => command_id.clone(),
        };
        Ok(PatchOutput { command_id })
    }

    fn describe(&self, target: &PatchTarget, step: &PatchStep) -> StepRecord {
        match step {
            PatchStep::RunPatchBaseline { reboot } => StepRecord {
                api: aws::SEND_COMMAND,
                parameters: json!({
                    "DocumentName": DOCUMENT,
                    "InstanceIds": [target.instance_id()],
                    "Parameters": { "Operation": ["Install"], "RebootOption": [reboot.as_str()] },
                    "TimeoutSeconds": aws::DELIVERY_TIMEOUT_SECONDS,
                }),
            },
            // No call is made: the record follows the run another record started, and reads
            // how it went with GetCommandInvocation.
            PatchStep::Follow { command_id } => StepRecord {
                api: aws::GET_COMMAND_INVOCATION,
                parameters: json!({
                    "CommandId": command_id,
                    "InstanceId": target.instance_id(),
                    "Follows": "a Reflex patch run already under way on the instance",
                }),
            },
        }
    }

    /// A patch cannot be taken back.
    fn undoable(&self, _step: &PatchStep) -> bool {
        false
    }

    /// Installing patches cannot be taken back; following a patch run already under way
    /// changes nothing itself.
    fn irreversible(&self, step: &PatchStep) -> bool {
        matches!(step, PatchStep::RunPatchBaseline { .. })
    }

    fn undo(
        &self,
        _target: &PatchTarget,
        _pre: &PatchState,
        _applied: &[Applied<PatchStep, PatchOutput>],
    ) -> Vec<PatchStep> {
        Vec::new()
    }

    fn long_running(&self, _step: &PatchStep) -> bool {
        true
    }

    fn handle(&self, _step: &PatchStep, output: &PatchOutput) -> Option<String> {
        Some(output.command_id.clone())
    }

    /// Read from SSM, for this instance: never from the completion event's payload.
    async fn progress(
        &self,
        target: &PatchTarget,
        applied: &Applied<PatchStep, PatchOutput>,
    ) -> Result<Progress, RemediationError> {
        Ok(
            match self
                .aws
                .invocation(&applied.output.command_id, target.instance_id())
                .await?
            {
                None => Progress::Running,
                Some(invocation) => standing(&invocation).into(),
            },
        )
    }

    fn completion_handle(&self, event: &Value) -> Option<String> {
        completion_handle(event)
    }
}
