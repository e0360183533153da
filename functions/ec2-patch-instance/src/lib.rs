//! ec2-patch-instance: patch the EC2 instance an Amazon Inspector finding (through Security
//! Hub) names for a CVE, with SSM Run Command `AWS-RunPatchBaseline` (`Install`, reboot per the
//! parameters). Medium risk (hygiene: `approve` by default). Not reversible: a patch stays.
//!
//! The run is a long operation: the record waits `awaiting-completion` with the command id until
//! SSM's status-change event, or the scheduled sweep, ends it with how the run went (read from
//! `GetCommandInvocation`, never from the event). N findings for one instance make one run: the
//! instance is the shared resource, and a finding that meets a Reflex run under way follows it.
//!
//! - [`params`]: `min_severity` (default CRITICAL) and `reboot` (default RebootIfNeeded);
//! - [`resolve`]: which instance, and whether SSM manages it (else `skipped / not-managed`);
//! - [`plan`]: send the run, or follow the one under way;
//! - [`progress`]: SSM's status as running / succeeded / failed, with a summary;
//! - [`aws`]: the SSM and EC2 calls.

pub mod aws;
pub mod model;
pub mod params;
pub mod plan;
pub mod progress;
pub mod resolve;
#[cfg(test)]
mod samples;

mod remediation;
pub use remediation::Ec2PatchInstance;

pub use model::{InFlight, PatchOutput, PatchState, PatchStep, PatchTarget, DOCUMENT};
pub use params::{Params, Reboot};

use reflex_shared::policy::Risk;
use reflex_shared::remediation::{EventSource, Spec};
use reflex_shared::trigger::Trigger;

pub static SPEC: Spec = Spec {
    name: "ec2-patch-instance",
    risk: Risk::Medium,
    // Inspector findings (through Security Hub) for a CVE; the severity threshold is the
    // parameters' `min_severity`.
    triggers: &[Trigger::Vulnerability("CVE-*")],
    iam_actions: &[
        // resolve: is the instance managed by SSM, its agent online
        aws::DESCRIBE_INSTANCE_INFORMATION,
        // inspect: Reflex patch runs under way on the instance
        aws::LIST_COMMANDS,
        // apply: start the run
        aws::SEND_COMMAND,
        // progress: how the run went
        aws::GET_COMMAND_INVOCATION,
        // tags (exemption tag), and whether the instance still exists
        aws::DESCRIBE_INSTANCES,
    ],
    reversible: false,
    config_resource_types: &[],
    parameters: Some(params::DESCRIBED),
    // The sweep ends runs whose completion event was lost.
    schedule: Some("rate(10 minutes)"),
    completion_events: &[EventSource {
        source: progress::COMPLETION_SOURCE,
        detail_type: progress::COMPLETION_DETAIL_TYPE,
    }],
    // Past SSM's own limits (10 minutes to reach the instance, `aws::DELIVERY_TIMEOUT_SECONDS`;
    // AWS-RunPatchBaseline's 2 hours to run), so SSM's own TimedOut normally ends a run first
    // and the deadline catches only a run whose end was never seen.
    completion_timeout_seconds: 3 * 3600,
    confirm_at_source: false,
};
