//! iam-contain-principal: contain the IAM user or role a GuardDuty finding names, when its
//! credentials are being misused. High risk (`approve` by default): containing a principal
//! stops whoever uses it, the attacker and its owner alike.
//!
//! - Which principal: the finding's `userType` and `principalId` say (`IAMUser` + `AIDA…`, or
//!   `AssumedRole` + `AROA…:session`); a guess is never made. The principal is read from IAM
//!   by the finding's name and must carry the finding's unique id: another principal that has
//!   since taken the name is not acted on (`skipped / unconfirmed`).
//! - A user: an inline policy (`ReflexRevokeOlderSessions`) denying everything to sessions
//!   issued before the moment of acting (taken when the change is made, not when it was
//!   planned: sessions issued while an approval waited are revoked too), and the console login
//!   profile deleted. The deletion is not reversible, and recorded as such.
//! - A role: the same policy, as the IAM console's "Revoke active sessions" does.
//! - Undone from the record: the policy removed (or what was under its name before put back);
//!   the rollback names the login profile as kept: it cannot be restored.
//! - Protected principals (the policy's `exemptions.protected_principals`, Reflex's own roles,
//!   the approver) are left out by the pipeline, by ARN with path and by unique id.
//! - The finding is confirmed at its source before acting (`confirm_at_source`).

pub mod aws;
pub mod document;
pub mod plan;
pub mod principal;
mod remediation;
pub mod target;

pub use aws::{Iam, Live};
pub use document::POLICY_NAME;
pub use plan::{Acted, ContainStep, PrincipalState};
pub use principal::Claim;
pub use target::ContainTarget;

use reflex_shared::policy::Risk;
use reflex_shared::remediation::Spec;
use reflex_shared::trigger::Trigger;

pub static SPEC: Spec = Spec {
    name: "iam-contain-principal",
    risk: Risk::High,
    triggers: &[
        // A console sign-in from an unusual place.
        Trigger::GuarddutyType("UnauthorizedAccess:IAMUser/ConsoleLoginSuccess.B"),
        Trigger::GuarddutyType("Persistence:IAMUser/*"),
        Trigger::GuarddutyType("PrivilegeEscalation:IAMUser/*"),
        // Stealth:IAMUser/*, listed: a trigger globs only by prefix, and
        // Stealth:IAMUser/CloudTrailLoggingDisabled is cloudtrail-restore-logging's.
        // LoggingConfigurationModified is retired by GuardDuty; findings of it may still be
        // updated (and delivered again).
        Trigger::GuarddutyType("Stealth:IAMUser/PasswordPolicyChange"),
        Trigger::GuarddutyType("Stealth:IAMUser/S3ServerAccessLoggingDisabled"),
        Trigger::GuarddutyType("Stealth:IAMUser/LoggingConfigurationModified"),
        // Role credentials used from elsewhere. Shared with iam-disable-access-key: a user's
        // long-term key is its (skipped here, not-applicable); an assumed-role session is ours.
        Trigger::GuarddutyType(
            "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS",
        ),
        Trigger::GuarddutyType(
            "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.InsideAWS",
        ),
    ],
    iam_actions: &[
        // resolve, identity and tags (GetUser and GetRole return the principal's tags)
        "iam:GetUser",
        "iam:GetRole",
        // inspect
        "iam:GetUserPolicy",
        "iam:GetRolePolicy",
        "iam:GetLoginProfile",
        // the revocation, and its undo restoring an earlier document under the name
        "iam:PutUserPolicy",
        "iam:PutRolePolicy",
        // undo
        "iam:DeleteUserPolicy",
        "iam:DeleteRolePolicy",
        // a user's console password (not reversible)
        "iam:DeleteLoginProfile",
    ],
    // The revocation is undone; the deleted login profile is not (`undoable`), and a rollback
    // says so.
    reversible: true,
    config_resource_types: &[],
    parameters: None,
    schedule: None,
    completion_events: &[],
    completion_timeout_seconds: 0,
    confirm_at_source: true,
};

/// No parameters: `remediations.iam-contain-principal.parameters` must be empty.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {}

/// The remediation, with its IAM client.
pub struct IamContainPrincipal {
    iam: Iam,
}

impl IamContainPrincipal {
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        IamContainPrincipal::from_client(aws_sdk_iam::Client::new(sdk))
    }

    pub fn from_client(client: aws_sdk_iam::Client) -> Self {
        IamContainPrincipal {
            iam: Iam::new(client),
        }
    }

    /// The IAM adapter (tests read the principal through it).
    pub fn iam(&self) -> &Iam {
        &self.iam
    }
}
pub use aws_sdk_iam;
