//! What the remediation keeps in the record: its target, the live state it reads, its steps and
//! what a step produced.

use crate::params::Reboot;
use serde::{Deserialize, Serialize};

use reflex_shared::remediation::ResourceRef;

/// The SSM document every patch run uses.
pub const DOCUMENT: &str = "AWS-RunPatchBaseline";

/// What a finding asks to patch, as stored in the record: approval and completion work from
/// this and never resolve the finding again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatchTarget {
    /// The instance (`kind` Ec2Instance, `id` the instance id).
    pub instance: ResourceRef,
    /// The vulnerabilities the finding names (`CVE-2024-6387`), for the record and the command's
    /// comment readers; the patch run installs whatever the baseline approves.
    pub vulnerabilities: Vec<String>,
}

impl PatchTarget {
    pub fn instance_id(&self) -> &str {
        &self.instance.id
    }
}

/// The live state that matters: whether a Reflex patch run is already under way on the
/// instance (the one later findings for the same instance follow instead of starting another).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatchState {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_flight: Option<InFlight>,
}

/// A Reflex patch command still pending or in progress on the instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InFlight {
    pub command_id: String,
    /// Its comment, which names the record that started it.
    pub comment: String,
}

/// One step. Both start or join a long operation: the record waits `awaiting-completion` for
/// the command's end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "op")]
pub enum PatchStep {
    /// `ssm:SendCommand` of AWS-RunPatchBaseline, `Operation=Install`, to the one instance.
    RunPatchBaseline { reboot: Reboot },
    /// Join the Reflex patch run already under way on the instance: no AWS call, the same
    /// handle. N findings for one instance make one patch run.
    Follow { command_id: String },
}

/// What a step produced: the command whose completion ends the record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatchOutput {
    pub command_id: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn steps_and_state_round_trip_through_json_as_recorded() {
        let cases = [
            (
                PatchStep::RunPatchBaseline {
                    reboot: Reboot::NoReboot,
                },
                json!({"op": "run-patch-baseline", "reboot": "NoReboot"}),
            ),
            (
                PatchStep::Follow {
                    command_id: "c-1".into(),
                },
                json!({"op": "follow", "command_id": "c-1"}),
            ),
        ];
        for (step, want) in cases {
            assert_eq!(json!(step), want);
            assert_eq!(serde_json::from_value::<PatchStep>(want).unwrap(), step);
        }
        assert_eq!(json!(PatchState::default()), json!({}));
        let busy = PatchState {
            in_flight: Some(InFlight {
                command_id: "c-1".into(),
                comment: "Reflex ec2-patch-instance#1".into(),
            }),
        };
        assert_eq!(
            serde_json::from_value::<PatchState>(json!(busy)).unwrap(),
            busy
        );
    }
}
