//! A stand-in for what moto's SSM does not do as AWS does, for the EC2/SSM functions' tests:
//! an interceptor on the function's SSM client that rewrites the emulator's answers. Every test
//! that relies on it says so.
//!
//! - `DescribeInstanceInformation` is not implemented (500): answered, before the SDK reads the
//!   500 (so it is not retried), listing the instances asked about as managed, agent Online (or
//!   only those a test calls managed);
//! - every command is `Success` at once: `ListCommands` statuses and `GetCommandInvocation`
//!   answers are shown as the test sets them (InProgress, then Success or Failed);
//! - `SendCommand` runs on every instance in the region, whatever `InstanceIds` says, so
//!   `ListCommands` for one instance lists every test's commands: only the commands sent
//!   through scripted clients to that instance are kept, as AWS would list them.
//!
//! Every call still reaches moto through the real SDK; only the answers are rewritten.

use aws_sdk_ssm::operation::describe_instance_information::DescribeInstanceInformationInput;
use aws_sdk_ssm::operation::get_command_invocation::GetCommandInvocationOutput;
use aws_sdk_ssm::operation::list_commands::{ListCommandsInput, ListCommandsOutput};
use aws_sdk_ssm::operation::send_command::{SendCommandInput, SendCommandOutput};
use aws_sdk_ssm::types::{CommandInvocationStatus, CommandStatus};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeDeserializationInterceptorContextMut, BeforeSerializationInterceptorContextRef,
    FinalizerInterceptorContextMut,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

/// What SSM says where moto cannot say it (see the module comment).
#[derive(Debug, Clone, Default)]
pub struct SsmScript(Arc<Mutex<Script>>);

/// Every command sent through a scripted client, in this test process: its id and the
/// instances it named. (moto runs each on every instance; AWS lists a command for the
/// instances it named only.)
static SENT: Mutex<Vec<(String, Vec<String>)>> = Mutex::new(Vec::new());

/// The commands sent (through scripted clients) naming `instance`.
pub fn sent_to(instance: &str) -> Vec<String> {
    SENT.lock()
        .unwrap()
        .iter()
        .filter(|(_, named)| named.iter().any(|i| i == instance))
        .map(|(id, _)| id.clone())
        .collect()
}

#[derive(Debug, Default)]
pub struct Script {
    /// The instances `DescribeInstanceInformation` lists, agent Online; `None`: every instance
    /// asked about.
    pub managed: Option<BTreeSet<String>>,
    /// The status `ListCommands` shows for every command (moto: always Success).
    pub command_status: Option<CommandStatus>,
    /// What `GetCommandInvocation` answers: status, standard output, standard error.
    pub invocation: Option<(CommandInvocationStatus, String, String)>,
    /// Every command sent through the scripted clients: its id and the instances it named.
    pub sent: Vec<(String, Vec<String>)>,
}

impl SsmScript {
    /// The commands sent through the scripted clients, each with the instances it named.
    pub fn sent(&self) -> Vec<(String, Vec<String>)> {
        self.0.lock().unwrap().sent.clone()
    }

    /// SSM manages these instances and no other.
    pub fn manage_only(&self, instances: &[&str]) {
        self.0.lock().unwrap().managed = Some(instances.iter().map(|i| i.to_string()).collect());
    }

    /// The run as under way: listed InProgress, its invocation InProgress.
    pub fn in_progress(&self) {
        let mut s = self.0.lock().unwrap();
        s.command_status = Some(CommandStatus::InProgress);
        s.invocation = Some((
            CommandInvocationStatus::InProgress,
            String::new(),
            String::new(),
        ));
    }

    /// The run as ended with `status` and output.
    pub fn ended(&self, status: CommandInvocationStatus, stdout: &str, stderr: &str) {
        let mut s = self.0.lock().unwrap();
        s.command_status = Some(match status {
            CommandInvocationStatus::Success => CommandStatus::Success,
            CommandInvocationStatus::TimedOut => CommandStatus::TimedOut,
            CommandInvocationStatus::Cancelled => CommandStatus::Cancelled,
            _ => CommandStatus::Failed,
        });
        s.invocation = Some((status, stdout.to_string(), stderr.to_string()));
    }
}

/// The instances the request being answered named.
#[derive(Debug, Clone)]
struct NamedInstances(Vec<String>);

impl Storable for NamedInstances {
    type Storer = StoreReplace<Self>;
}

fn operation(cfg: &ConfigBag) -> String {
    cfg.load::<Metadata>()
        .map(|m| m.name().to_string())
        .unwrap_or_default()
}

impl Intercept for SsmScript {
    fn name(&self) -> &'static str {
        "SsmScript"
    }

    /// The instances a request names, kept for its answer (the input is gone by then).
    fn read_before_serialization(
        &self,
        ctx: &BeforeSerializationInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let input = ctx.input();
        let named = if let Some(send) = input.downcast_ref::<SendCommandInput>() {
            send.instance_ids.clone().unwrap_or_default()
        } else if let Some(list) = input.downcast_ref::<ListCommandsInput>() {
            list.instance_id.clone().into_iter().collect()
        } else if let Some(describe) = input.downcast_ref::<DescribeInstanceInformationInput>() {
            describe
                .filters()
                .iter()
                .filter(|f| f.key() == "InstanceIds")
                .flat_map(|f| f.values().iter().cloned())
                .collect()
        } else {
            Vec::new()
        };
        cfg.interceptor_state().store_put(NamedInstances(named));
        Ok(())
    }

    /// moto answers `DescribeInstanceInformation` with a 500: replaced, before the SDK reads it
    /// (so it is not retried), by the answer AWS would give for the managed instances.
    fn modify_before_deserialization(
        &self,
        ctx: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if operation(cfg) != "DescribeInstanceInformation" {
            return Ok(());
        }
        let asked = cfg
            .load::<NamedInstances>()
            .map(|n| n.0.clone())
            .unwrap_or_default();
        let managed = self.0.lock().unwrap().managed.clone();
        let list: Vec<Value> = asked
            .iter()
            .filter(|id| managed.as_ref().is_none_or(|m| m.contains(*id)))
            .map(|id| {
                json!({"InstanceId": id, "PingStatus": "Online", "PlatformType": "Linux",
                       "ResourceType": "EC2Instance"})
            })
            .collect();
        *ctx.response_mut() = aws_smithy_runtime_api::http::Response::new(
            aws_smithy_runtime_api::http::StatusCode::try_from(200).unwrap(),
            aws_smithy_types::body::SdkBody::from(
                json!({ "InstanceInformationList": list }).to_string(),
            ),
        );
        Ok(())
    }

    /// moto's commands are Success at once: the statuses are rewritten in the parsed answers.
    fn modify_before_completion(
        &self,
        ctx: &mut FinalizerInterceptorContextMut<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let mut script = self.0.lock().unwrap();
        let instances = cfg
            .load::<NamedInstances>()
            .map(|n| n.0.clone())
            .unwrap_or_default();
        let Some(Ok(output)) = ctx.output_or_error_mut() else {
            return Ok(());
        };
        match operation(cfg).as_str() {
            "SendCommand" => {
                if let Some(id) = output
                    .downcast_ref::<SendCommandOutput>()
                    .and_then(|o| o.command())
                    .and_then(|c| c.command_id())
                {
                    script.sent.push((id.to_string(), instances.clone()));
                    SENT.lock().unwrap().push((id.to_string(), instances));
                }
            }
            "ListCommands" => {
                if let Some(out) = output.downcast_mut::<ListCommandsOutput>() {
                    // Only what was sent to the instance asked about (moto lists them all).
                    let sent_here: BTreeSet<String> =
                        instances.iter().flat_map(|i| sent_to(i)).collect();
                    if let Some(commands) = out.commands.as_mut() {
                        commands
                            .retain(|c| c.command_id().is_some_and(|id| sent_here.contains(id)));
                        if let Some(status) = &script.command_status {
                            for c in commands.iter_mut() {
                                c.status = Some(status.clone());
                            }
                        }
                    }
                }
            }
            "GetCommandInvocation" => {
                if let (Some(out), Some((status, stdout, stderr))) = (
                    output.downcast_mut::<GetCommandInvocationOutput>(),
                    &script.invocation,
                ) {
                    out.status = Some(status.clone());
                    out.status_details = Some(status.as_str().to_string());
                    out.standard_output_content = Some(stdout.clone());
                    out.standard_error_content = Some(stderr.clone());
                }
            }
            _ => {}
        }
        Ok(())
    }
}
