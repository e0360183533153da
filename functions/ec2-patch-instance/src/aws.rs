//! The AWS calls, each small: what SSM knows of the instance, the Reflex runs on it, sending the
//! run, reading how it went; the instance's tags from EC2.

use crate::model::DOCUMENT;
use crate::params::Reboot;
use crate::plan::Listed;
use crate::progress::{not_yet_created, Invocation};
use aws_sdk_ssm::types::{CommandFilter, CommandFilterKey, InstanceInformationStringFilter};
use reflex_shared::aws_error::code;
use reflex_shared::remediation::{RemediationError, Tags};

pub const DESCRIBE_INSTANCE_INFORMATION: &str = "ssm:DescribeInstanceInformation";
pub const LIST_COMMANDS: &str = "ssm:ListCommands";
pub const SEND_COMMAND: &str = "ssm:SendCommand";
pub const GET_COMMAND_INVOCATION: &str = "ssm:GetCommandInvocation";
pub const DESCRIBE_INSTANCES: &str = "ec2:DescribeInstances";

/// A run not delivered to the instance within this long is not started at all (SSM marks it
/// `DeliveryTimedOut`): the agent was online when the finding was resolved, and a patch run
/// that starts hours later surprises whoever watches the instance.
pub const DELIVERY_TIMEOUT_SECONDS: i32 = 600;

/// At most this many pages of `ListCommands` (50 commands each) are read: the listing is bounded
/// in time to the runs that can still be under way, so more would be a storm, not a patch run.
const MAX_PAGES: usize = 10;

fn invalid(api: &str, e: impl std::fmt::Display) -> RemediationError {
    RemediationError::Invalid(format!("{api}: cannot build the request: {e}"))
}

#[derive(Debug, Clone)]
pub struct Clients {
    pub ec2: aws_sdk_ec2::Client,
    pub ssm: aws_sdk_ssm::Client,
}

impl Clients {
    /// The ping status of the instance's SSM agent; `None` when SSM does not manage it.
    pub async fn ping_status(&self, instance_id: &str) -> Result<Option<String>, RemediationError> {
        let filter = InstanceInformationStringFilter::builder()
            .key("InstanceIds")
            .values(instance_id)
            .build()
            .map_err(|e| invalid(DESCRIBE_INSTANCE_INFORMATION, e))?;
        let out = self
            .ssm
            .describe_instance_information()
            .filters(filter)
            .send()
            .await
            .map_err(|e| RemediationError::aws(DESCRIBE_INSTANCE_INFORMATION, e))?;
        Ok(out
            .instance_information_list()
            .iter()
            .find(|i| i.instance_id() == Some(instance_id))
            .map(|i| {
                i.ping_status()
                    .map(|p| p.as_str().to_string())
                    .unwrap_or_default()
            }))
    }

    /// The patch-baseline commands sent to the instance since `since` (RFC 3339, seconds).
    pub async fn patch_commands(
        &self,
        instance_id: &str,
        since: &str,
    ) -> Result<Vec<Listed>, RemediationError> {
        let filter = |key, value: &str| {
            CommandFilter::builder()
                .key(key)
                .value(value)
                .build()
                .map_err(|e| invalid(LIST_COMMANDS, e))
        };
        let document = filter(CommandFilterKey::DocumentName, DOCUMENT)?;
        let after = filter(CommandFilterKey::InvokedAfter, since)?;
        let mut listed = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let out = self
                .ssm
                .list_commands()
                .instance_id(instance_id)
                .filters(document.clone())
                .filters(after.clone())
                .max_results(50)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| RemediationError::aws(LIST_COMMANDS, e))?;
            listed.extend(out.commands().iter().filter_map(|c| {
                Some(Listed {
                    command_id: c.command_id()?.to_string(),
                    document: c.document_name().unwrap_or_default().to_string(),
                    status: c.status().map(|s| s.as_str().to_string())?,
                    comment: c.comment().unwrap_or_default().to_string(),
                    requested_at: c
                        .requested_date_time()
                        .and_then(|t| t.to_millis().ok())
                        .unwrap_or(i64::MAX),
                })
            }));
            match out.next_token().filter(|t| !t.is_empty()) {
                Some(next) => token = Some(next.to_string()),
                None => break,
            }
        }
        Ok(listed)
    }

    /// Start `AWS-RunPatchBaseline` (Install) on the one instance; the command id.
    pub async fn send_patch_baseline(
        &self,
        instance_id: &str,
        reboot: Reboot,
        comment: &str,
    ) -> Result<String, RemediationError> {
        let out = self
            .ssm
            .send_command()
            .document_name(DOCUMENT)
            .instance_ids(instance_id)
            .parameters("Operation", vec!["Install".to_string()])
            .parameters("RebootOption", vec![reboot.as_str().to_string()])
            .comment(comment)
            .timeout_seconds(DELIVERY_TIMEOUT_SECONDS)
            .send()
            .await
            .map_err(|e| RemediationError::aws(SEND_COMMAND, e))?;
        out.command()
            .and_then(|c| c.command_id())
            .map(str::to_string)
            .ok_or_else(|| {
                RemediationError::Invalid(format!("{SEND_COMMAND} answered with no command id"))
            })
    }

    /// The command's invocation on the instance; `None` while SSM has not created it yet.
    pub async fn invocation(
        &self,
        command_id: &str,
        instance_id: &str,
    ) -> Result<Option<Invocation>, RemediationError> {
        match self
            .ssm
            .get_command_invocation()
            .command_id(command_id)
            .instance_id(instance_id)
            .send()
            .await
        {
            Ok(out) => Ok(Some(Invocation {
                status: out
                    .status()
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_default(),
                status_details: out.status_details().unwrap_or_default().to_string(),
                stdout: out
                    .standard_output_content()
                    .unwrap_or_default()
                    .to_string(),
                stderr: out.standard_error_content().unwrap_or_default().to_string(),
            })),
            Err(e) if not_yet_created(code(&e)) => Ok(None),
            Err(e) => Err(RemediationError::aws(GET_COMMAND_INVOCATION, e)),
        }
    }

    /// The instance's tags; `Gone` when it no longer exists (terminated counts: nothing to patch).
    pub async fn instance_tags(&self, instance_id: &str) -> Result<Tags, RemediationError> {
        let gone = || RemediationError::Gone(format!("instance {instance_id} no longer exists"));
        let out = match self
            .ec2
            .describe_instances()
            .instance_ids(instance_id)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if code(&e) == Some("InvalidInstanceID.NotFound") => return Err(gone()),
            Err(e) => return Err(RemediationError::aws(DESCRIBE_INSTANCES, e)),
        };
        let instance = out
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .find(|i| i.instance_id() == Some(instance_id))
            .ok_or_else(gone)?;
        let terminated = instance
            .state()
            .and_then(|s| s.name())
            .is_some_and(|n| n.as_str() == "terminated");
        if terminated {
            return Err(gone());
        }
        Ok(instance
            .tags()
            .iter()
            .filter_map(|t| Some((t.key()?.to_string(), t.value()?.to_string())))
            .collect())
    }
}
