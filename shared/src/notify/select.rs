//! Which outcomes are told: the policy's `notify` list, matched against a record's status and
//! reason. Pure.

use crate::status::{Reason, Status};
use serde::{Deserialize, Serialize};
use std::fmt;

/// An outcome the policy can ask to hear about (`notify: [...]`). Most are a record's status;
/// two are a status with one reason, named apart because a person acts on them differently:
/// `rate-limited` (`skipped / rate-limited`: the blast-radius budget held a fix back) and
/// `timed-out` (`failed / timed-out`: a long operation still running at its deadline, ended by
/// the sweep).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NotifyOn {
    Failed,
    VerificationFailed,
    PendingApproval,
    RateLimited,
    TimedOut,
    Succeeded,
    DryRun,
    Skipped,
    Rejected,
    RolledBack,
}

impl NotifyOn {
    pub const ALL: [NotifyOn; 10] = [
        NotifyOn::Failed,
        NotifyOn::VerificationFailed,
        NotifyOn::PendingApproval,
        NotifyOn::RateLimited,
        NotifyOn::TimedOut,
        NotifyOn::Succeeded,
        NotifyOn::DryRun,
        NotifyOn::Skipped,
        NotifyOn::Rejected,
        NotifyOn::RolledBack,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            NotifyOn::Failed => "failed",
            NotifyOn::VerificationFailed => "verification-failed",
            NotifyOn::PendingApproval => "pending-approval",
            NotifyOn::RateLimited => "rate-limited",
            NotifyOn::TimedOut => "timed-out",
            NotifyOn::Succeeded => "succeeded",
            NotifyOn::DryRun => "dry-run",
            NotifyOn::Skipped => "skipped",
            NotifyOn::Rejected => "rejected",
            NotifyOn::RolledBack => "rolled-back",
        }
    }

    /// The outcome a record stands for: its status, or the narrower name of its status and
    /// reason. `None` while the record is in progress.
    pub fn of(status: Status, reason: Reason) -> Option<NotifyOn> {
        Some(match (status, reason) {
            (Status::Failed, Reason::TimedOut) => NotifyOn::TimedOut,
            (Status::Skipped, Reason::RateLimited) => NotifyOn::RateLimited,
            (Status::Failed, _) => NotifyOn::Failed,
            (Status::VerificationFailed, _) => NotifyOn::VerificationFailed,
            (Status::PendingApproval, _) => NotifyOn::PendingApproval,
            (Status::Succeeded, _) => NotifyOn::Succeeded,
            (Status::DryRun, _) => NotifyOn::DryRun,
            (Status::Skipped, _) => NotifyOn::Skipped,
            (Status::Rejected, _) => NotifyOn::Rejected,
            (Status::RolledBack, _) => NotifyOn::RolledBack,
            (Status::Claimed | Status::Acting | Status::AwaitingCompletion, _) => return None,
        })
    }

    /// The broader outcome a narrower one is also part of: a policy naming `failed` hears of a
    /// timed-out operation too, one naming `skipped` of a rate-limited fix.
    fn broader(self) -> Option<NotifyOn> {
        match self {
            NotifyOn::TimedOut => Some(NotifyOn::Failed),
            NotifyOn::RateLimited => Some(NotifyOn::Skipped),
            _ => None,
        }
    }
}

impl fmt::Display for NotifyOn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// The policy's default `notify`: what needs a person (a failure, a fix not verified, a plan
/// waiting for approval, a fix the budget held back, an operation that never finished).
pub fn default_notify() -> Vec<NotifyOn> {
    vec![
        NotifyOn::Failed,
        NotifyOn::VerificationFailed,
        NotifyOn::PendingApproval,
        NotifyOn::RateLimited,
        NotifyOn::TimedOut,
    ]
}

/// The outcome to tell for a record of `status` and `reason` under the policy's `notify`, if
/// any: it is also the key the record is told once under.
pub fn selected(notify: &[NotifyOn], status: Status, reason: Reason) -> Option<NotifyOn> {
    let outcome = NotifyOn::of(status, reason)?;
    let named = notify.contains(&outcome) || outcome.broader().is_some_and(|b| notify.contains(&b));
    named.then_some(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use NotifyOn as N;

    #[test]
    fn which_outcomes_are_told() {
        let default = default_notify();
        // (policy's notify, status, reason, told as)
        let cases: Vec<(Vec<NotifyOn>, Status, Reason, Option<NotifyOn>)> = vec![
            (
                default.clone(),
                Status::Failed,
                Reason::ActionError,
                Some(N::Failed),
            ),
            (
                default.clone(),
                Status::Failed,
                Reason::PolicyInvalid,
                Some(N::Failed),
            ),
            (
                default.clone(),
                Status::Failed,
                Reason::RetriesExhausted,
                Some(N::Failed),
            ),
            (
                default.clone(),
                Status::Failed,
                Reason::TimedOut,
                Some(N::TimedOut),
            ),
            (
                default.clone(),
                Status::VerificationFailed,
                Reason::StillNonCompliant,
                Some(N::VerificationFailed),
            ),
            (
                default.clone(),
                Status::PendingApproval,
                Reason::AwaitingApproval,
                Some(N::PendingApproval),
            ),
            (
                default.clone(),
                Status::Skipped,
                Reason::RateLimited,
                Some(N::RateLimited),
            ),
            // Not named by default: the everyday outcomes.
            (default.clone(), Status::Succeeded, Reason::Remediated, None),
            (default.clone(), Status::Skipped, Reason::Exempt, None),
            (
                default.clone(),
                Status::Skipped,
                Reason::AlreadyCompliant,
                None,
            ),
            (default.clone(), Status::DryRun, Reason::WouldChange, None),
            (
                default.clone(),
                Status::Rejected,
                Reason::MalformedEvent,
                None,
            ),
            (default.clone(), Status::RolledBack, Reason::Undone, None),
            // In progress: never (the outcome is not known yet).
            (default.clone(), Status::Claimed, Reason::InProgress, None),
            (default.clone(), Status::Acting, Reason::InProgress, None),
            (
                default.clone(),
                Status::AwaitingCompletion,
                Reason::AwaitingOperation,
                None,
            ),
            // A broader name covers the narrower outcome, told under its own name.
            (
                vec![N::Failed],
                Status::Failed,
                Reason::TimedOut,
                Some(N::TimedOut),
            ),
            (
                vec![N::Failed],
                Status::PendingApproval,
                Reason::AwaitingApproval,
                None,
            ),
            (
                vec![N::Skipped],
                Status::Skipped,
                Reason::RateLimited,
                Some(N::RateLimited),
            ),
            (
                vec![N::Skipped],
                Status::Skipped,
                Reason::Exempt,
                Some(N::Skipped),
            ),
            // A narrower name does not cover the broader outcome.
            (vec![N::TimedOut], Status::Failed, Reason::ActionError, None),
            (vec![N::RateLimited], Status::Skipped, Reason::Exempt, None),
            (
                vec![N::Succeeded],
                Status::Succeeded,
                Reason::Remediated,
                Some(N::Succeeded),
            ),
            (
                vec![N::RolledBack],
                Status::RolledBack,
                Reason::Undone,
                Some(N::RolledBack),
            ),
            // `notify: []`: nothing is told.
            (vec![], Status::Failed, Reason::ActionError, None),
        ];
        for (notify, status, reason, want) in cases {
            assert_eq!(
                selected(&notify, status, reason),
                want,
                "{notify:?} {status} {reason}"
            );
        }
    }

    #[test]
    fn names_read_as_written_in_the_policy() {
        for on in NotifyOn::ALL {
            let yaml: NotifyOn = serde_norway::from_str(on.as_str()).unwrap();
            assert_eq!(yaml, on);
            assert_eq!(on.to_string(), on.as_str());
        }
        assert!(serde_norway::from_str::<NotifyOn>("awaiting-completion").is_err());
    }
}
