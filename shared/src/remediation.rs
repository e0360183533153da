//! The one trait every remediation implements. A function crate reads like a spec: which
//! findings it handles, the IAM actions it needs, how it inspects, plans, acts, verifies and
//! undoes. The pipeline, the ledger and the policy live once, in this crate.

use crate::aws_error::Fault;
use crate::finding::{Finding, ResourceKind};
use crate::policy::Risk;
use crate::trigger::Trigger;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;

/// What a remediation is, as data: the pipeline, the policy, the SAM template's role and its
/// EventBridge rules are all held to this.
#[derive(Debug)]
pub struct Spec {
    pub name: &'static str,
    pub risk: Risk,
    pub triggers: &'static [Trigger],
    /// Every IAM action the remediation's AWS calls need (besides the ledger's and Security
    /// Hub's, which the pipeline declares in [`crate::pipeline::PIPELINE_IAM_ACTIONS`]).
    pub iam_actions: &'static [&'static str],
    /// Whether `undo` can restore the pre-state.
    pub reversible: bool,
    /// The resource types (CloudFormation names, `AWS::S3::Bucket`) its Config rules evaluate:
    /// Config events are routed by type, since a rule's name says nothing about what it is.
    pub config_resource_types: &'static [&'static str],
    /// What the parameters section (`remediations.<name>.parameters`) may hold, in words, for
    /// the README and error messages; `None` when the remediation takes none.
    pub parameters: Option<&'static str>,
    /// An EventBridge schedule expression for the sweep (`rate(15 minutes)`); `None` when the
    /// remediation has no scheduled work. The template gets a schedule rule exactly when set.
    pub schedule: Option<&'static str>,
    /// Events that end a long operation this remediation starts (SSM's command status
    /// changes), routed to the function.
    pub completion_events: &'static [EventSource],
    /// A long operation still running this long after it started ends `failed / timed-out`
    /// (0: the remediation starts none).
    pub completion_timeout_seconds: i64,
}

/// An EventBridge event by its source and detail type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventSource {
    pub source: &'static str,
    pub detail_type: &'static str,
}

/// The one resource a remediation changes for a finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub kind: ResourceKind,
    pub id: String,
    pub arn: String,
    /// The account the resource must belong to (the finding's, checked against our own).
    pub account: String,
}

/// The changes that would fix what a finding names, from the live state. Empty `steps`: the
/// resource is compliant (except, possibly, for the parts listed in `untouched`).
#[derive(Debug, Clone, PartialEq)]
pub struct Plan<S> {
    pub steps: Vec<S>,
    /// Parts of the resource left as they are on purpose (a protected principal, an exempt
    /// rule), each with why. A plan with no steps but untouched parts is still compliance as
    /// far as Reflex may go: never a `verification-failed`.
    pub untouched: Vec<String>,
}

impl<S> Plan<S> {
    pub fn of(steps: Vec<S>) -> Plan<S> {
        Plan {
            steps,
            untouched: Vec::new(),
        }
    }

    pub fn compliant(&self) -> bool {
        self.steps.is_empty()
    }
}

/// How one step is written in the record: the IAM-style API name and its parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct StepRecord {
    /// `service:Operation`, as IAM names it.
    pub api: &'static str,
    pub parameters: Value,
}

/// Why `resolve` found no target.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unresolved {
    /// The finding names nothing this remediation can change (`rejected / no-target`).
    #[error("{0}")]
    NoTarget(String),
    /// The finding names something this remediation must never act on (a private address, an
    /// instance SSM does not manage): `skipped` with this reason.
    #[error("{1}")]
    Skip(crate::status::Reason, String),
    /// Reading AWS to resolve the target failed.
    #[error(transparent)]
    Aws(#[from] RemediationError),
}

pub type Tags = BTreeMap<String, String>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RemediationError {
    #[error("{api} failed: {message}")]
    Aws {
        api: &'static str,
        message: String,
        fault: Fault,
    },
    /// The resource no longer exists (deleted since the finding): nothing to fix.
    #[error("{0}")]
    Gone(String),
    #[error("{0}")]
    Invalid(String),
}

impl RemediationError {
    /// An SDK error as one readable line, with its class (transient or permanent).
    pub fn aws<E>(
        api: &'static str,
        err: aws_smithy_runtime_api::client::result::SdkError<
            E,
            aws_smithy_runtime_api::http::Response,
        >,
    ) -> Self
    where
        E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
    {
        RemediationError::Aws {
            api,
            message: crate::aws_error::describe(&err),
            fault: crate::aws_error::classify(&err),
        }
    }

    /// Worth another attempt later (throttling, 5xx, timeouts, broken connections).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            RemediationError::Aws {
                fault: Fault::Transient,
                ..
            }
        )
    }
}

/// One remediation, as a spec: which findings it handles, the IAM actions it needs, how it
/// resolves its target, reads the live state, plans, carries out one step, and undoes. The
/// pipeline (`crate::pipeline`) does everything else, the same for every remediation: the
/// ledger, the policy, the checkpoint, the budget, recording each step, verifying, reporting.
pub trait Remediation: Send + Sync {
    /// The remediation's own section of the policy, `remediations.<name>.parameters`
    /// (`#[serde(deny_unknown_fields)]`: an unknown key is a policy error naming it).
    type Params: DeserializeOwned + Default + fmt::Debug + Send + Sync;
    /// The live state that matters: kept as the pre-state for undo, recorded as the post-state.
    type State: Serialize + DeserializeOwned + fmt::Debug + Clone + PartialEq + Send + Sync;
    /// One change. Dry-run and approval records hold exactly these; `apply` carries them out.
    type Step: Serialize + DeserializeOwned + fmt::Debug + Clone + PartialEq + Send + Sync;

    fn spec(&self) -> &'static Spec;

    /// The one resource to change for `finding`, reading AWS where it must.
    fn resolve(
        &self,
        finding: &Finding,
        params: &Self::Params,
    ) -> impl Future<Output = Result<Target, Unresolved>> + Send;

    /// The resource's tags, for the policy's exemption tag.
    fn tags(&self, target: &Target) -> impl Future<Output = Result<Tags, RemediationError>> + Send;

    /// What tells this resource from another that later takes its name (a bucket's creation
    /// date; an IAM principal's unique id), read in the same round as the live state and kept
    /// in the record: approval and rollback refuse a resource whose identity differs, whatever
    /// its name. `None` (the default) where a name is unique over time.
    fn identity(
        &self,
        _target: &Target,
    ) -> impl Future<Output = Result<Option<String>, RemediationError>> + Send {
        async { Ok(None) }
    }

    /// Read the live state.
    fn inspect(
        &self,
        target: &Target,
    ) -> impl Future<Output = Result<Self::State, RemediationError>> + Send;

    /// The smallest set of steps that fixes what the finding names, given the live state.
    /// Pure. An empty plan means compliant.
    fn plan(&self, target: &Target, state: &Self::State, params: &Self::Params)
        -> Plan<Self::Step>;

    /// Every principal (resolved ARN, path included) the steps would change, for the policy's
    /// `protected_principals`. None by default (a bucket is no principal).
    fn principals(&self, _target: &Target, _steps: &[Self::Step]) -> Vec<String> {
        Vec::new()
    }

    /// Carry out one step.
    fn apply(
        &self,
        target: &Target,
        step: &Self::Step,
    ) -> impl Future<Output = Result<(), RemediationError>> + Send;

    /// How a step is written in the record.
    fn describe(&self, target: &Target, step: &Self::Step) -> StepRecord;

    /// The steps that restore `pre_state`, given the steps that took effect.
    fn undo(
        &self,
        target: &Target,
        pre_state: &Self::State,
        applied: &[Self::Step],
    ) -> Vec<Self::Step>;

    /// Work on a schedule (an EventBridge schedule to the same function): removing expired
    /// blocks, say. Returns how many things it changed. None by default.
    fn sweep(&self) -> impl Future<Output = Result<usize, RemediationError>> + Send {
        async { Ok(0) }
    }
}
