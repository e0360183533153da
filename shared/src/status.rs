//! The vocabulary of outcomes: status and reason codes an auditor reads in the record.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Where a record stands: the state machine of the ledger (see `ledger::transition`).
///
/// `claimed` → `acting` → a terminal status; `claimed` → a terminal status when nothing is to
/// be changed. `awaiting-completion` is reserved for fixes that finish later (a patch run).
/// `claimed` and `acting` are held under a lease; the rest are terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Claimed,
    /// The checkpoint before the first change: decision, pre-state and planned steps stored.
    Acting,
    AwaitingCompletion,
    Succeeded,
    Failed,
    DryRun,
    PendingApproval,
    Skipped,
    Rejected,
    RolledBack,
    VerificationFailed,
}

impl Status {
    pub const ALL: [Status; 11] = [
        Status::Claimed,
        Status::Acting,
        Status::AwaitingCompletion,
        Status::Succeeded,
        Status::Failed,
        Status::DryRun,
        Status::PendingApproval,
        Status::Skipped,
        Status::Rejected,
        Status::RolledBack,
        Status::VerificationFailed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Claimed => "claimed",
            Status::Acting => "acting",
            Status::AwaitingCompletion => "awaiting-completion",
            Status::Succeeded => "succeeded",
            Status::Failed => "failed",
            Status::DryRun => "dry-run",
            Status::PendingApproval => "pending-approval",
            Status::Skipped => "skipped",
            Status::Rejected => "rejected",
            Status::RolledBack => "rolled-back",
            Status::VerificationFailed => "verification-failed",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Held under a lease by a live (or crashed) invocation; every other status is terminal.
    pub fn in_progress(self) -> bool {
        matches!(
            self,
            Status::Claimed | Status::Acting | Status::AwaitingCompletion
        )
    }

    /// Outcomes an analyst's custom action may run again (nothing was changed, or the change
    /// did not take). A success is never redone; a live claim is never interrupted.
    pub fn rerunnable_on_request(self) -> bool {
        matches!(
            self,
            Status::Failed
                | Status::DryRun
                | Status::PendingApproval
                | Status::Skipped
                | Status::Rejected
                | Status::VerificationFailed
        )
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// Why a record has its status. The detail text beside it says the particulars.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    // claimed, acting
    InProgress,
    /// Released after a transient error, for the next delivery to take over.
    RetryPending,
    // succeeded
    Remediated,
    // dry-run / pending-approval
    WouldChange,
    /// Dry-run because the policy's kill switch is on: not final, the next delivery runs again.
    KillSwitch,
    /// Dry-run because no policy was deployed yet (the first-deploy policy): not final either.
    FirstDeploy,
    AwaitingApproval,
    // skipped
    Disabled,
    Exempt,
    Protected,
    BelowThreshold,
    RateLimited,
    AlreadyCompliant,
    Untrusted,
    FindingInactive,
    SampleFinding,
    ResourceGone,
    /// An operator rolled the fix back on this resource; the suppression holds.
    RolledBack,
    // rejected
    MalformedEvent,
    UnsupportedEvent,
    NotHandled,
    NoTarget,
    // failed / verification-failed
    PolicyInvalid,
    InspectError,
    ActionError,
    RetriesExhausted,
    StillNonCompliant,
    // rolled-back
    Undone,
    /// In `history`: a rollback refused (nothing changed) or stopped by an error.
    RollbackRefused,
    RollbackFailed,
    // awaiting-completion
    /// A long operation (an SSM command) was started; its completion ends the record.
    AwaitingOperation,
    // failed
    /// A long operation did not finish before its deadline.
    TimedOut,
    /// A long operation finished unsuccessfully.
    OperationFailed,
    // skipped: the finding names something this remediation must not or cannot act on
    /// The instance is not managed by SSM.
    NotManaged,
    /// An address that is never blocked: private, loopback, link-local, multicast, unspecified,
    /// reserved, or a prefix wider than one host.
    NotBlockable,
    /// An address in the policy's allowlist.
    Allowlisted,
    /// The finding, read back from its source (GuardDuty, Security Hub), is missing, no longer
    /// active, or names another type or resource than the event did.
    Unconfirmed,
    /// The finding names something this remediation does not change (a temporary `ASIA…` key:
    /// a role session, for iam-contain-principal), pointing to what does.
    NotApplicable,
    // succeeded: scheduled work on Reflex's own changes
    /// An expired Reflex change was removed by the sweep.
    Expired,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::InProgress => "in-progress",
            Reason::RetryPending => "retry-pending",
            Reason::Remediated => "remediated",
            Reason::WouldChange => "would-change",
            Reason::KillSwitch => "kill-switch",
            Reason::FirstDeploy => "first-deploy",
            Reason::AwaitingApproval => "awaiting-approval",
            Reason::Disabled => "disabled",
            Reason::Exempt => "exempt",
            Reason::Protected => "protected",
            Reason::BelowThreshold => "below-threshold",
            Reason::RateLimited => "rate-limited",
            Reason::AlreadyCompliant => "already-compliant",
            Reason::Untrusted => "untrusted",
            Reason::FindingInactive => "finding-inactive",
            Reason::SampleFinding => "sample-finding",
            Reason::ResourceGone => "resource-gone",
            Reason::RolledBack => "rolled-back",
            Reason::MalformedEvent => "malformed-event",
            Reason::UnsupportedEvent => "unsupported-event",
            Reason::NotHandled => "not-handled",
            Reason::NoTarget => "no-target",
            Reason::PolicyInvalid => "policy-invalid",
            Reason::InspectError => "inspect-error",
            Reason::ActionError => "action-error",
            Reason::RetriesExhausted => "retries-exhausted",
            Reason::StillNonCompliant => "still-non-compliant",
            Reason::Undone => "undone",
            Reason::RollbackRefused => "rollback-refused",
            Reason::RollbackFailed => "rollback-failed",
            Reason::AwaitingOperation => "awaiting-operation",
            Reason::TimedOut => "timed-out",
            Reason::OperationFailed => "operation-failed",
            Reason::NotManaged => "not-managed",
            Reason::NotBlockable => "not-blockable",
            Reason::Allowlisted => "allowlisted",
            Reason::Unconfirmed => "unconfirmed",
            Reason::NotApplicable => "not-applicable",
            Reason::Expired => "expired",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}
