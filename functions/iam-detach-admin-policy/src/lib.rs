//! iam-detach-admin-policy: detach a full-admin policy (one whose default version allows every
//! action on every resource) from every user, group and role holding it. Medium risk, hygiene:
//! `approve` by default.
//!
//! - IAM.1 and the managed Config rule IAM_POLICY_NO_STATEMENTS_WITH_ADMIN_ACCESS name a
//!   customer managed policy (Security Hub by ARN, Config by unique id): it is detached from
//!   every holder (`ListEntitiesForPolicy`), one step per holder, each holder named by its ARN
//!   with path and its unique id. A protected holder (break-glass patterns, Reflex's own roles,
//!   the approver) is left out by the pipeline and named in the record. The policy itself is
//!   left as it is, and named so: editing or deleting it is a person's decision.
//! - IAM.2 names a user with policies attached directly. The smallest fix within this
//!   function's change: detach only the full-admin managed policies attached to that user
//!   (AdministratorAccess, or a customer policy allowing `*` on `*`). Its other attached
//!   policies stay and are named; its inline policies are not read or changed. Moving a
//!   user's permissions into groups, which is what IAM.2 asks, is a person's design.
//! - Undone from the record: exactly the attachments it removed, made again, each only to the
//!   principal it was removed from (the same unique id).

pub mod aws;
pub mod document;
pub mod model;
pub mod plan;
mod remediation;
pub mod target;

pub use aws::Iam;
pub use model::{AdminState, AdminStep, AdminTarget, Attached, Holder, Params, Scope};

use reflex_shared::policy::Risk;
use reflex_shared::remediation::Spec;
use reflex_shared::trigger::Trigger;

pub static SPEC: Spec = Spec {
    name: "iam-detach-admin-policy",
    risk: Risk::Medium,
    triggers: &[
        // IAM policies should not allow full "*" administrative privileges.
        Trigger::Control("IAM.1"),
        // IAM users should not have IAM policies attached.
        Trigger::Control("IAM.2"),
        Trigger::ConfigRule("IAM_POLICY_NO_STATEMENTS_WITH_ADMIN_ACCESS"),
    ],
    iam_actions: &[
        // resolve, identity, inspect: the policy and its default version's document
        "iam:GetPolicy",
        "iam:GetPolicyVersion",
        // resolve: a policy AWS Config names by its unique id
        "iam:ListPolicies",
        // inspect: who holds the policy; each holder's ARN with path and unique id
        "iam:ListEntitiesForPolicy",
        "iam:GetUser",
        "iam:GetGroup",
        "iam:GetRole",
        // inspect (IAM.2): the user's attached policies
        "iam:ListAttachedUserPolicies",
        // tags: the exemption tag on the policy (IAM.2: on the user)
        "iam:ListPolicyTags",
        "iam:ListUserTags",
        // the fix
        "iam:DetachUserPolicy",
        "iam:DetachGroupPolicy",
        "iam:DetachRolePolicy",
        // undo
        "iam:AttachUserPolicy",
        "iam:AttachGroupPolicy",
        "iam:AttachRolePolicy",
    ],
    reversible: true,
    config_resource_types: &["AWS::IAM::Policy"],
    parameters: None,
    schedule: None,
    completion_events: &[],
    completion_timeout_seconds: 0,
    confirm_at_source: false,
};

/// The remediation, with its IAM client.
pub struct IamDetachAdminPolicy {
    iam: Iam,
}

impl IamDetachAdminPolicy {
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        IamDetachAdminPolicy::from_client(aws_sdk_iam::Client::new(sdk))
    }

    pub fn from_client(client: aws_sdk_iam::Client) -> Self {
        IamDetachAdminPolicy {
            iam: Iam::new(client),
        }
    }

    pub fn iam(&self) -> &Iam {
        &self.iam
    }
}
