//! The target, the live state and the steps, as stored in the record.

use reflex_shared::principal::PrincipalKind;
use reflex_shared::remediation::ResourceRef;
use serde::{Deserialize, Serialize};

/// `remediations.iam-detach-admin-policy.parameters`: none.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminTarget {
    /// The policy (IAM.1, the Config rule) or the user (IAM.2), as the record, the exemptions
    /// and the suppressions name it.
    pub resource: ResourceRef,
    pub scope: Scope,
}

/// What the finding is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "scope", rename_all = "kebab-case")]
pub enum Scope {
    /// IAM.1 and the Config rule: a customer managed policy, detached from every holder.
    Policy {
        policy_arn: String,
        /// Its unique id (`ANPA…`): a policy deleted and created again under the same name is
        /// another policy.
        policy_id: String,
        policy_name: String,
    },
    /// IAM.2 (a user with policies attached directly): the full-admin managed policies attached
    /// to this user, detached from it; its other policies stay (see the crate's notes).
    User(Holder),
}

/// A user, group or role, as IAM answers for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub kind: PrincipalKind,
    pub name: String,
    /// Its ARN, path included.
    pub arn: String,
    /// Its unique id (`AIDA…`, `AGPA…`, `AROA…`).
    pub id: String,
}

/// A managed policy attached to a user, and whether it grants full admin.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Attached {
    pub policy_arn: String,
    pub policy_name: String,
    pub full_admin: bool,
}

/// The live state that matters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "scope", rename_all = "kebab-case")]
pub enum AdminState {
    /// The policy's default version, whether it grants full admin, and every holder (sorted).
    Policy {
        default_version: String,
        full_admin: bool,
        holders: Vec<Holder>,
    },
    /// Every managed policy attached to the user directly (sorted).
    User { attached: Vec<Attached> },
}

/// One change: one attachment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "op")]
pub enum AdminStep {
    Detach {
        policy_arn: String,
        holder: Holder,
    },
    /// A rollback's: the same attachment again, to the same principal (by unique id).
    Attach {
        policy_arn: String,
        holder: Holder,
    },
}

impl AdminStep {
    pub fn holder(&self) -> &Holder {
        match self {
            AdminStep::Detach { holder, .. } | AdminStep::Attach { holder, .. } => holder,
        }
    }

    pub fn policy_arn(&self) -> &str {
        match self {
            AdminStep::Detach { policy_arn, .. } | AdminStep::Attach { policy_arn, .. } => {
                policy_arn
            }
        }
    }
}
