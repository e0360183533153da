//! Evaluate: the policy document, its validation, and the decision it makes for one finding.
//!
//! The document is YAML (see the README's "Policy" section). It is parsed strictly: an unknown
//! key, a wrong type or an out-of-range value is an error that names the key, and an invalid
//! policy makes every remediation fail closed.

mod context;
mod document;
mod evaluate;
pub(crate) mod load;

pub use context::{
    parse_date, parse_exemption_tag, tags_hold, Exempted, ListedExemption, Tags, EXPIRING_SOON_DAYS,
};
pub use document::*;
pub use evaluate::{Decision, Verdict};
pub use load::{
    load_policy, PolicyCache, PolicySource, DEFAULT_POLICY_MAX_AGE, POLICY_FILE_ENV,
    POLICY_PARAMETER_ENV, POLICY_STALE_GRACE,
};

use serde::{Deserialize, Serialize};
use std::fmt;

/// What a remediation does when the policy lets it act.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Act, verify, record.
    Enforce,
    /// Record exactly what would change; change nothing.
    DryRun,
    /// Record `pending-approval`; act when an analyst runs "Reflex: approve".
    Approve,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::DryRun => "dry-run",
            Mode::Approve => "approve",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// How much harm a wrong action of a remediation could do; sets its default mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Risk {
    Low,
    Medium,
    High,
}

impl fmt::Display for Risk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Risk::Low => "low",
            Risk::Medium => "medium",
            Risk::High => "high",
        })
    }
}

impl Risk {
    /// The design's defaults: low → enforce; medium → enforce for threat findings and approve
    /// for hygiene findings; high → approve.
    pub fn default_mode(self, threat: bool) -> Mode {
        match (self, threat) {
            (Risk::Low, _) | (Risk::Medium, true) => Mode::Enforce,
            (Risk::Medium, false) | (Risk::High, _) => Mode::Approve,
        }
    }
}

/// Why a policy could not be loaded or is not valid. Any of these fails closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("cannot read policy file {path}: {message}")]
    Read { path: String, message: String },
    #[error("cannot read policy parameter {name} from SSM: {message}")]
    Parameter { name: String, message: String },
    /// The policy could not be read for a passing reason (throttling, network): not a verdict
    /// on the policy, so never recorded as `policy-invalid`; the invocation is retried.
    #[error("policy parameter {name} is unavailable for now: {message}")]
    Unavailable { name: String, message: String },
    #[error("both REFLEX_POLICY_FILE and REFLEX_POLICY_PARAMETER are set; set one")]
    Ambiguous,
    #[error("policy is not valid YAML for Reflex: {0}")]
    Syntax(String),
    #[error("policy key `{key}`: {message}")]
    Invalid { key: String, message: String },
}

#[cfg(test)]
mod tests;
