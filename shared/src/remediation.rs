//! The one trait every remediation implements. A function crate reads like a spec: which
//! findings it handles, the IAM actions it needs, how it inspects, plans, acts, verifies and
//! undoes. The pipeline, the ledger and the policy live once, in this crate.

use crate::aws_error::Fault;
use crate::finding::{Finding, ResourceKind};
use crate::ledger::Action;
use crate::policy::Risk;
use crate::trigger::Trigger;
use serde_json::Value;
use std::collections::BTreeMap;
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

/// What a read of the live resource found.
#[derive(Debug, Clone, PartialEq)]
pub struct Inspection {
    pub compliant: bool,
    /// The state that matters to this remediation, as JSON: the pre-state kept for undo, or
    /// the post-state recorded after the change.
    pub state: Value,
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

/// An action step failed. `done` lists what had already been changed (for the record and undo).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{source}")]
pub struct ActError {
    pub done: Vec<Action>,
    pub source: RemediationError,
}

pub trait Remediation: Send + Sync {
    fn spec(&self) -> &'static Spec;

    /// The one resource to change for `finding`, or why the finding names none we can change.
    fn target(&self, finding: &Finding) -> Result<Target, String>;

    /// The resource's tags, for the policy's exemption tag.
    fn tags(&self, target: &Target) -> impl Future<Output = Result<Tags, RemediationError>> + Send;

    /// Read the live resource: is it already compliant, and what is its state (the pre-state)?
    fn inspect(
        &self,
        target: &Target,
    ) -> impl Future<Output = Result<Inspection, RemediationError>> + Send;

    /// The smallest set of changes that fixes what the finding names, given the inspection.
    /// Pure: dry-run and approve records show exactly this.
    fn plan(&self, target: &Target, inspection: &Inspection) -> Vec<Action>;

    /// Carry out `plan`; each returned action carries its result.
    fn act(
        &self,
        target: &Target,
        plan: &[Action],
    ) -> impl Future<Output = Result<Vec<Action>, ActError>> + Send;

    /// Read the resource again after acting. By default the same read as `inspect`.
    fn verify(
        &self,
        target: &Target,
    ) -> impl Future<Output = Result<Inspection, RemediationError>> + Send {
        self.inspect(target)
    }

    /// Restore `pre_state` (as `inspect` captured it).
    fn undo(
        &self,
        target: &Target,
        pre_state: &Value,
    ) -> impl Future<Output = Result<Vec<Action>, ActError>> + Send;
}
