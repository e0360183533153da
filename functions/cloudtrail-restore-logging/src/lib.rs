//! cloudtrail-restore-logging: a stopped CloudTrail trail logging again, with log-file
//! validation on. Low risk (enforce by default).
//!
//! - GuardDuty `Stealth:IAMUser/CloudTrailLoggingDisabled` (straight or through Security Hub)
//!   names the trail (`awsApiCallAction.affectedResources`); the managed Config rules
//!   CLOUD_TRAIL_ENABLED and MULTI_REGION_CLOUD_TRAIL_ENABLED evaluate the account, so the
//!   trails are listed and the one stopped trail is the target (more than one stopped: skipped,
//!   naming them). Each: `StartLogging`, and log-file validation on.
//! - Security Hub CloudTrail.4: log-file validation on, nothing else.
//! - Every read and change goes to the trail's home region (a multi-region trail answers
//!   there only); verified with `GetTrailStatus` and `GetTrail` there.
//! - A trail deleted since the finding: `skipped / no-target`.
//! - Undone: logging stopped and validation off again, only where Reflex turned them on.

/// The SDK crate, for callers that make trails (the CLI's demo) without a dependency of their own.
pub use aws_sdk_cloudtrail;

pub mod aws;
mod remediation;
pub mod target;
pub mod trail;

pub use aws::{CloudTrail, TrailInfo};
pub use target::TrailTarget;
pub use trail::{Ask, TrailState, TrailStep};

use reflex_shared::policy::Risk;
use reflex_shared::remediation::Spec;
use reflex_shared::trigger::Trigger;

pub static SPEC: Spec = Spec {
    name: "cloudtrail-restore-logging",
    risk: Risk::Low,
    triggers: &[
        Trigger::GuarddutyType("Stealth:IAMUser/CloudTrailLoggingDisabled"),
        Trigger::Control("CloudTrail.4"),
        // AWS-managed Config rules, by identifier; they evaluate the account.
        Trigger::ConfigRule("CLOUD_TRAIL_ENABLED"),
        Trigger::ConfigRule("MULTI_REGION_CLOUD_TRAIL_ENABLED"),
    ],
    iam_actions: &[
        // resolve: the trail named, or every trail of the account (Config rules)
        "cloudtrail:DescribeTrails",
        // inspect and verify, in the trail's home region
        "cloudtrail:GetTrailStatus",
        "cloudtrail:GetTrail",
        // exemption tag
        "cloudtrail:ListTags",
        // the fix, and its undo
        "cloudtrail:StartLogging",
        "cloudtrail:StopLogging",
        "cloudtrail:UpdateTrail",
    ],
    reversible: true,
    config_resource_types: &["AWS::::Account"],
    parameters: None,
    schedule: None,
    completion_events: &[],
    completion_timeout_seconds: 0,
    confirm_at_source: false,
};

/// No parameters: the fix is always logging on and validation on.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {}

/// The remediation, with its CloudTrail client config (a client per home region is built
/// from it).
pub struct CloudTrailRestoreLogging {
    cloudtrail: CloudTrail,
}

impl CloudTrailRestoreLogging {
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        CloudTrailRestoreLogging::from_config(aws_sdk_cloudtrail::Config::from(sdk))
    }

    /// From a client config (tests add their interceptors to it).
    pub fn from_config(config: aws_sdk_cloudtrail::Config) -> Self {
        CloudTrailRestoreLogging {
            cloudtrail: CloudTrail::new(config),
        }
    }

    pub fn cloudtrail(&self) -> &CloudTrail {
        &self.cloudtrail
    }
}
