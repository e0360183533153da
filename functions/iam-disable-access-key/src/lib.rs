//! iam-disable-access-key: set an IAM user's access key inactive. Medium risk: a threat finding
//! (GuardDuty) is enforced by default, a hygiene control (IAM.3, IAM.8) waits for approval.
//!
//! - A GuardDuty finding: exactly the key it names; the user's other key stays active. The
//!   user is IAM's answer (`GetAccessKeyLastUsed` → `UserName`, then `GetUser` for its ARN with
//!   path and its unique id), never the payload's; a finding whose `principalId` is not that
//!   user's id is `skipped / unconfirmed`. The finding is read back from its source before
//!   acting (`confirm_at_source`, done by the pipeline).
//! - IAM.3 (rotation): every active key of the user created more than `maxAccessKeyAge` days
//!   ago (90). IAM.8 (unused credentials): every active key last used (never used: created)
//!   more than `maxCredentialUsageAge` days ago (90); its console password, which IAM.8 also
//!   judges, is left alone and named so.
//! - Never: an `ASIA…` key (a role session's temporary credentials: `skipped / not-applicable`,
//!   pointing to iam-contain-principal), or the root user's key.
//! - Undone from the record: exactly the keys it set inactive are active again.

pub mod aws;
pub mod keys;
pub mod params;
pub mod plan;
mod remediation;
pub mod target;

pub use aws::Iam;
/// The IAM SDK this function is built with, for callers that set up IAM (the demo).
pub use aws_sdk_iam;
pub use keys::{Key, KeyStatus, KeysState};
pub use params::Params;
pub use plan::KeyStep;
pub use target::{KeyTarget, Rule};

use reflex_shared::policy::Risk;
use reflex_shared::remediation::Spec;
use reflex_shared::trigger::Trigger;

pub static SPEC: Spec = Spec {
    name: "iam-disable-access-key",
    risk: Risk::Medium,
    // GuardDuty's IAM findings whose access key is in an attacker's hands or used like it:
    // credentials used from outside (or another account of) AWS, from known malicious or Tor
    // addresses, and the anomaly families. Left to other functions: Persistence: and
    // PrivilegeEscalation:IAMUser/* and Stealth:IAMUser/* (iam-contain-principal,
    // cloudtrail-restore-logging), root credential use (no IAM user's key), and the PenTest:
    // distributions (often a team's own authorised test). Instance credentials are always a
    // role session's (ASIA…): listed so the record says where they belong.
    triggers: &[
        Trigger::GuarddutyType(
            "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS",
        ),
        Trigger::GuarddutyType(
            "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.InsideAWS",
        ),
        Trigger::GuarddutyType("UnauthorizedAccess:IAMUser/MaliciousIPCaller"),
        Trigger::GuarddutyType("UnauthorizedAccess:IAMUser/MaliciousIPCaller.Custom"),
        Trigger::GuarddutyType("UnauthorizedAccess:IAMUser/TorIPCaller"),
        Trigger::GuarddutyType("Recon:IAMUser/MaliciousIPCaller"),
        Trigger::GuarddutyType("Recon:IAMUser/MaliciousIPCaller.Custom"),
        Trigger::GuarddutyType("Recon:IAMUser/TorIPCaller"),
        Trigger::GuarddutyType("CredentialAccess:IAMUser/AnomalousBehavior"),
        Trigger::GuarddutyType("DefenseEvasion:IAMUser/AnomalousBehavior"),
        Trigger::GuarddutyType("Discovery:IAMUser/AnomalousBehavior"),
        Trigger::GuarddutyType("Exfiltration:IAMUser/AnomalousBehavior"),
        Trigger::GuarddutyType("Impact:IAMUser/AnomalousBehavior"),
        Trigger::GuarddutyType("InitialAccess:IAMUser/AnomalousBehavior"),
        // Access keys older than 90 days; unused credentials (90 days; IAM.22 is CIS's 45).
        Trigger::Control("IAM.3"),
        Trigger::Control("IAM.8"),
    ],
    iam_actions: &[
        // resolve: the key's owner; inspect (IAM.8): each active key's last use
        "iam:GetAccessKeyLastUsed",
        // resolve: the user's ARN with path and unique id; identity
        "iam:GetUser",
        // inspect: the user's keys, their status and creation dates
        "iam:ListAccessKeys",
        // tags: the exemption tag is on the user
        "iam:ListUserTags",
        // the fix, and undo
        "iam:UpdateAccessKey",
    ],
    reversible: true,
    config_resource_types: &[],
    parameters: Some(params::PARAMETERS),
    schedule: None,
    completion_events: &[],
    completion_timeout_seconds: 0,
    // A disabled key is an outage for whatever uses it: a made-up finding must not cause one.
    confirm_at_source: true,
};

/// The remediation, with its IAM client.
pub struct IamDisableAccessKey {
    iam: Iam,
}

impl IamDisableAccessKey {
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        IamDisableAccessKey::from_client(aws_sdk_iam::Client::new(sdk))
    }

    pub fn from_client(client: aws_sdk_iam::Client) -> Self {
        IamDisableAccessKey {
            iam: Iam::new(client),
        }
    }

    /// The IAM adapter (tests and the demo read keys through it).
    pub fn iam(&self) -> &Iam {
        &self.iam
    }
}
