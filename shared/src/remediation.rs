//! The one trait every remediation implements. A function crate reads like a spec: which
//! findings it handles, the IAM actions it needs, how it inspects, plans, acts, verifies and
//! undoes. The pipeline, the ledger and the policy live once, in this crate.

use crate::aws_error::Fault;
use crate::finding::{Finding, ResourceKind};
pub use crate::ledger::{Owned, OwnedChange, OwnedEntry};
use crate::policy::Risk;
use crate::trigger::Trigger;
use chrono::{DateTime, Utc};
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
    /// Read the finding back from its source (GuardDuty `GetFindings`, Security Hub
    /// `GetFindings`) before acting, and act only if it exists, is active and names the same
    /// type and resource: for fixes that can lock someone out, where a made-up finding handed
    /// to the function would be an outage. The policy's `confirm_at_source` overrides it.
    pub confirm_at_source: bool,
}

/// An EventBridge event by its source and detail type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventSource {
    pub source: &'static str,
    pub detail_type: &'static str,
}

/// The one resource a target names: what the record's `resource_arn`, the exemption checks and
/// the suppressions go by.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ResourceRef {
    pub kind: ResourceKind,
    pub id: String,
    pub arn: String,
    /// The account the resource must belong to (the finding's, checked against our own).
    pub account: String,
}

/// Every remediation's target names its resource.
pub trait Subject {
    fn resource(&self) -> &ResourceRef;
}

impl Subject for ResourceRef {
    fn resource(&self) -> &ResourceRef {
        self
    }
}

/// What `inspect`, `plan` and `apply` see besides the target.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub record_id: &'a str,
    pub now: DateTime<Utc>,
    pub finding: &'a Finding,
    /// What Reflex itself placed on the target's shared resource, read under its lease (empty
    /// when the remediation names no shared resource).
    pub owned: &'a Owned,
}

/// A step that took effect, with what it produced.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Applied<S, O> {
    pub step: S,
    pub output: O,
}

/// How a long operation stands, read from AWS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    Running,
    /// Ended well, with a summary of its output.
    Succeeded(String),
    /// Ended badly, with a summary of why.
    Failed(String),
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
/// ledger, the policy, the checkpoint, the budget, the resource lease, recording each step and
/// what it produced, verifying, waiting for long operations, the sweep, reporting.
pub trait Remediation: Send + Sync {
    /// The remediation's own section of the policy, `remediations.<name>.parameters`
    /// (`#[serde(deny_unknown_fields)]`: an unknown key is a policy error naming it). A missing
    /// section reads as `{}`: optional fields carry `#[serde(default)]`, and a required one
    /// missing is `policy-invalid`, naming the key (and fails a function's first invocation).
    type Params: DeserializeOwned + fmt::Debug + Send + Sync;
    /// What the finding says and the plan needs, resolved once and kept in the record:
    /// approval, rollback and completion work from the stored target, never from the finding
    /// again (which may name a terminated instance by then).
    type Target: Subject
        + Serialize
        + DeserializeOwned
        + fmt::Debug
        + Clone
        + PartialEq
        + Send
        + Sync;
    /// The live state that matters: kept as the pre-state for undo, recorded as the post-state.
    type State: Serialize + DeserializeOwned + fmt::Debug + Clone + PartialEq + Send + Sync;
    /// One change. Dry-run and approval records hold exactly these; `apply` carries them out.
    type Step: Serialize + DeserializeOwned + fmt::Debug + Clone + PartialEq + Send + Sync;
    /// What a step produced (a created group id, a snapshot id, a command id), recorded on its
    /// action and handed to later steps and to `undo`; `()` when steps produce nothing.
    type Output: Serialize + DeserializeOwned + fmt::Debug + Clone + PartialEq + Send + Sync;

    fn spec(&self) -> &'static Spec;

    /// The target for `finding`, reading AWS where it must (never trusting the payload for
    /// what AWS can say).
    fn resolve(
        &self,
        finding: &Finding,
        params: &Self::Params,
    ) -> impl Future<Output = Result<Self::Target, Unresolved>> + Send;

    /// The resource's tags, for the policy's exemption tag.
    fn tags(
        &self,
        target: &Self::Target,
    ) -> impl Future<Output = Result<Tags, RemediationError>> + Send;

    /// What tells this resource from another that later takes its name (a bucket's creation
    /// date; an IAM principal's unique id), read in the same round as the live state and kept
    /// in the record: approval and rollback refuse a resource whose identity differs, whatever
    /// its name. `None` (the default) where a name is unique over time.
    fn identity(
        &self,
        _target: &Self::Target,
    ) -> impl Future<Output = Result<Option<String>, RemediationError>> + Send {
        async { Ok(None) }
    }

    /// The resource whose changes must be serialised across findings (a NACL's rule numbers,
    /// a VPC's one isolation group, one patch run per instance). The pipeline holds its lease
    /// from before `inspect` to after `verify`, and hands what Reflex owns there to
    /// `inspect`/`plan` in the context. `None` (the default): nothing shared.
    fn shared_resource(&self, _target: &Self::Target) -> Option<String> {
        None
    }

    /// Read the live state.
    fn inspect(
        &self,
        ctx: &Context<'_>,
        target: &Self::Target,
    ) -> impl Future<Output = Result<Self::State, RemediationError>> + Send;

    /// The smallest set of steps that fixes what the finding names, given the live state.
    /// Pure. An empty plan means compliant (and is what `verify` looks for).
    fn plan(
        &self,
        ctx: &Context<'_>,
        target: &Self::Target,
        state: &Self::State,
        params: &Self::Params,
    ) -> Plan<Self::Step>;

    /// The principals `step` would change, each named by its resolved ARN (path included) and
    /// by its unique id (`AIDA…`, `AROA…`, `AGPA…`), for the protected principals: the
    /// policy's `protected_principals`, Reflex's own roles and the approver. A step that would
    /// change a protected principal is left out of the plan (named in its `untouched`); a plan
    /// left with no steps is `skipped / protected`. None by default (a bucket is no principal).
    fn principals(&self, _target: &Self::Target, _step: &Self::Step) -> Vec<String> {
        Vec::new()
    }

    /// Carry out one step; `earlier` are this record's steps that took effect before it, with
    /// what they produced.
    fn apply(
        &self,
        ctx: &Context<'_>,
        target: &Self::Target,
        step: &Self::Step,
        earlier: &[Applied<Self::Step, Self::Output>],
    ) -> impl Future<Output = Result<Self::Output, RemediationError>> + Send;

    /// How a step is written in the record.
    fn describe(&self, target: &Self::Target, step: &Self::Step) -> StepRecord;

    /// What the step places on or removes from the shared resource, as Reflex's own entries.
    /// Written with the checkpoint, before the step runs: a crash after the change still
    /// leaves the entry for the sweep. None by default.
    fn owned_changes(&self, _target: &Self::Target, _step: &Self::Step) -> Vec<OwnedChange> {
        Vec::new()
    }

    /// Whether the step's effect can be undone (a forensic snapshot is kept). The spec's
    /// `reversible` by default.
    fn undoable(&self, _step: &Self::Step) -> bool {
        self.spec().reversible
    }

    /// Whether carrying out the step destroys something no rollback gives back (a deleted login
    /// profile, an installed patch): a fix with such a step waits for approval whatever the mode
    /// (the approval tier; `remediations.<name>.approve_irreversible: false` opts out). By
    /// default every step that cannot be undone; a remediation whose kept steps only add
    /// something harmless (a forensic snapshot, an empty firewall part) says so.
    fn irreversible(&self, step: &Self::Step) -> bool {
        !self.undoable(step)
    }

    /// The steps that restore `pre_state`, given the undoable steps that took effect.
    fn undo(
        &self,
        target: &Self::Target,
        pre_state: &Self::State,
        applied: &[Applied<Self::Step, Self::Output>],
    ) -> Vec<Self::Step>;

    /// A rollback starts only from the resource as the fix left it. Equality by default.
    fn as_left(&self, post_state: &Self::State, live: &Self::State) -> bool {
        post_state == live
    }

    /// A rollback succeeded when `live` counts as `pre_state` again. Equality by default; a
    /// remediation whose kept effects change by themselves (snapshots completing) says which
    /// parts count.
    fn restored(&self, pre_state: &Self::State, live: &Self::State) -> bool {
        pre_state == live
    }

    /// A step that starts a long operation: the record waits `awaiting-completion` for it.
    fn long_running(&self, _step: &Self::Step) -> bool {
        false
    }

    /// The handle a long-running step's output names (an SSM command id).
    fn handle(&self, _step: &Self::Step, _output: &Self::Output) -> Option<String> {
        None
    }

    /// How a long operation stands, read from AWS (never from an event's payload).
    fn progress(
        &self,
        _target: &Self::Target,
        _applied: &Applied<Self::Step, Self::Output>,
    ) -> impl Future<Output = Result<Progress, RemediationError>> + Send {
        async { Ok(Progress::Succeeded(String::new())) }
    }

    /// The handle a completion event names, if it is one of this remediation's events.
    fn completion_handle(&self, _event: &Value) -> Option<String> {
        None
    }

    /// The steps that end an expired entry Reflex owns (the sweep). None by default.
    fn expire(&self, _target: &Self::Target, _key: &str, _entry: &OwnedEntry) -> Vec<Self::Step> {
        Vec::new()
    }
}
