//! How each step is written in the record: the API it calls and its parameters (pure).

use crate::ec2::{
    snapshot_description, CREATE_SECURITY_GROUP, CREATE_SNAPSHOT, CREATE_TAGS, DELETE_TAGS,
    DESCRIPTION, MODIFY_INSTANCE, MODIFY_INTERFACE, REVOKE_EGRESS,
};
use crate::model::{
    GroupRef, Instance, Step, INSTANCE_TAG, ISOLATION_TAG, QUARANTINED_TAG, RECORD_TAG,
};
use reflex_shared::remediation::StepRecord;
use serde_json::{json, Value};

/// A group as the record names it: its id, or the step that creates it.
fn group(g: &GroupRef) -> Value {
    match g {
        GroupRef::Existing(id) => json!(id),
        GroupRef::CreatedEarlier => json!("(the isolation group created by the step above)"),
    }
}

/// The record's view of one step. A snapshot's record tag is the record's own id, filled in
/// when the step runs; the record names the step's record already.
pub fn describe(target: &Instance, step: &Step) -> StepRecord {
    let instance = target.id();
    match step {
        Step::CreateIsolationGroup { vpc_id, name } => StepRecord {
            api: CREATE_SECURITY_GROUP,
            parameters: json!({
                "VpcId": vpc_id,
                "GroupName": name,
                "Description": DESCRIPTION,
                "TagSpecifications": [{"ResourceType": "security-group", "Tags": [
                    {"Key": ISOLATION_TAG, "Value": vpc_id}, {"Key": "Name", "Value": name}]}],
            }),
        },
        Step::CloseIsolationGroup { group: g } => StepRecord {
            api: REVOKE_EGRESS,
            parameters: json!({
                "GroupId": group(g),
                "IpPermissions": "every egress rule (and, by ec2:RevokeSecurityGroupIngress, every ingress rule)",
            }),
        },
        Step::Isolate {
            interface,
            group: g,
        } => StepRecord {
            api: MODIFY_INTERFACE,
            parameters: json!({ "NetworkInterfaceId": interface, "Groups": [group(g)] }),
        },
        Step::RestoreGroups { interface, groups } => StepRecord {
            api: MODIFY_INTERFACE,
            parameters: json!({ "NetworkInterfaceId": interface, "Groups": groups }),
        },
        Step::Snapshot { volume_id } => StepRecord {
            api: CREATE_SNAPSHOT,
            parameters: json!({
                "VolumeId": volume_id,
                "Description": snapshot_description(volume_id, instance, "(this record)"),
                "TagSpecifications": [{"ResourceType": "snapshot", "Tags": [
                    {"Key": RECORD_TAG, "Value": "(this record)"},
                    {"Key": INSTANCE_TAG, "Value": instance}]}],
            }),
        },
        Step::TerminationProtection { on } => StepRecord {
            api: MODIFY_INSTANCE,
            parameters: json!({ "InstanceId": instance, "DisableApiTermination": {"Value": on} }),
        },
        Step::Tag { record_id } => StepRecord {
            api: CREATE_TAGS,
            parameters: json!({ "Resources": [instance], "Tags": [{"Key": QUARANTINED_TAG, "Value": record_id}] }),
        },
        Step::Untag => StepRecord {
            api: DELETE_TAGS,
            parameters: json!({ "Resources": [instance], "Tags": [{"Key": QUARANTINED_TAG}] }),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ResourceRef;
    use reflex_shared::finding::ResourceKind;

    #[test]
    fn describe_table() {
        let t = Instance {
            resource: ResourceRef {
                kind: ResourceKind::Ec2Instance,
                id: "i-12345678".into(),
                arn: "arn:aws:ec2:us-east-1:123456789012:instance/i-12345678".into(),
                account: "123456789012".into(),
            },
            vpc_id: "vpc-1".into(),
            interfaces: vec!["eni-a".into()],
        };
        let cases: Vec<(Step, &str, Value)> = vec![
            (
                Step::Isolate {
                    interface: "eni-a".into(),
                    group: GroupRef::Existing("sg-iso".into()),
                },
                "ec2:ModifyNetworkInterfaceAttribute",
                json!({"NetworkInterfaceId": "eni-a", "Groups": ["sg-iso"]}),
            ),
            (
                Step::RestoreGroups {
                    interface: "eni-a".into(),
                    groups: vec!["sg-1".into(), "sg-2".into()],
                },
                "ec2:ModifyNetworkInterfaceAttribute",
                json!({"NetworkInterfaceId": "eni-a", "Groups": ["sg-1", "sg-2"]}),
            ),
            (
                Step::TerminationProtection { on: true },
                "ec2:ModifyInstanceAttribute",
                json!({"InstanceId": "i-12345678", "DisableApiTermination": {"Value": true}}),
            ),
            (
                Step::Tag {
                    record_id: "r1".into(),
                },
                "ec2:CreateTags",
                json!({"Resources": ["i-12345678"], "Tags": [{"Key": "reflex:quarantined", "Value": "r1"}]}),
            ),
            (
                Step::Untag,
                "ec2:DeleteTags",
                json!({"Resources": ["i-12345678"], "Tags": [{"Key": "reflex:quarantined"}]}),
            ),
        ];
        for (step, api, parameters) in cases {
            let r = describe(&t, &step);
            assert_eq!((r.api, &r.parameters), (api, &parameters), "{step:?}");
        }
        let created = describe(
            &t,
            &Step::CreateIsolationGroup {
                vpc_id: "vpc-1".into(),
                name: "reflex-isolation-vpc-1".into(),
            },
        );
        assert_eq!(created.api, "ec2:CreateSecurityGroup");
        assert_eq!(created.parameters["GroupName"], "reflex-isolation-vpc-1");
        let snap = describe(
            &t,
            &Step::Snapshot {
                volume_id: "vol-1".into(),
            },
        );
        assert_eq!(snap.api, "ec2:CreateSnapshot");
        assert_eq!(snap.parameters["VolumeId"], "vol-1");
    }
}
