//! The remediation's types: its parameters, its stored target, the live state it reads, one
//! step and what a step produced. Plain data (no AWS types), so the planning is pure.

pub use reflex_shared::remediation::ResourceRef;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The tag key on the instance: its value is the id of the record that quarantined it.
pub const QUARANTINED_TAG: &str = "reflex:quarantined";
/// The tag key on each forensic snapshot: the record that took it.
pub const RECORD_TAG: &str = "reflex:record";
/// The tag key on each forensic snapshot: the instance it was taken of (so the instance's
/// snapshots are found by one filter, whichever record took them).
pub const INSTANCE_TAG: &str = "reflex:instance";
/// The tag key on the isolation group: the VPC it isolates in. With the group's name, it tells
/// Reflex's group from one someone else made.
pub const ISOLATION_TAG: &str = "reflex:isolation";

/// The isolation group's name in a VPC: one per VPC, found again by this name and the tag.
pub fn isolation_group_name(vpc_id: &str) -> String {
    format!("reflex-isolation-{vpc_id}")
}

/// `remediations.ec2-quarantine-instance.parameters`. Every field is optional.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Snapshot each attached EBS volume before anything else can change it (default true).
    /// Turn off only where snapshots are taken by other means: the snapshots are the evidence.
    #[serde(default = "yes")]
    pub snapshots: bool,
}

fn yes() -> bool {
    true
}

impl Default for Params {
    fn default() -> Self {
        Params { snapshots: true }
    }
}

/// What the record stores as the target: read from EC2 (`DescribeInstances`) when the finding
/// is resolved, never from the finding's payload. Approval and rollback use it as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    /// The instance (`kind` Ec2Instance, `id` its instance id).
    pub resource: ResourceRef,
    /// The VPC whose isolation group the instance gets (and whose changes are serialised).
    pub vpc_id: String,
    /// Each network interface attached when the finding was resolved (ENI ids).
    pub interfaces: Vec<String>,
}

impl Instance {
    pub fn id(&self) -> &str {
        &self.resource.id
    }
}

/// The VPC's isolation group, as read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IsolationGroup {
    pub group_id: String,
    /// How many ingress and egress permissions it holds. Reflex's group holds none: any is
    /// revoked before the group is used (a new group comes with an allow-all egress rule).
    pub rules: usize,
}

/// A forensic snapshot Reflex took of one of the instance's volumes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Snapshot {
    pub snapshot_id: String,
    pub volume_id: String,
    /// The record that took it (its `reflex:record` tag).
    pub record_id: String,
}

/// The live state that matters. Progress of a snapshot (pending → completed) is deliberately
/// not part of it: a snapshot taken is evidence kept, however far it has got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceState {
    /// Each attached network interface and its security groups (sorted).
    pub interfaces: BTreeMap<String, Vec<String>>,
    /// The attached EBS volumes (sorted).
    pub volumes: Vec<String>,
    /// `DisableApiTermination`.
    pub termination_protection: bool,
    /// The `reflex:quarantined` tag's value: the record that quarantined the instance.
    pub quarantined_by: Option<String>,
    /// The VPC's isolation group, if it exists.
    pub isolation_group: Option<IsolationGroup>,
    /// Every forensic snapshot Reflex took of this instance (sorted), whichever record took it.
    pub snapshots: Vec<Snapshot>,
}

/// Which isolation group a step uses: one that existed when the plan was made, or the one an
/// earlier step of the same record creates (its id is that step's output).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GroupRef {
    Existing(String),
    CreatedEarlier,
}

/// One change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "op")]
pub enum Step {
    /// Create the VPC's isolation group (tagged, by its name). Output: the group id. Kept on
    /// rollback: other quarantined instances of the VPC may use it.
    CreateIsolationGroup { vpc_id: String, name: String },
    /// Revoke every rule of the isolation group: the allow-all egress rule a new group comes
    /// with, or a rule someone added since. Kept on rollback.
    CloseIsolationGroup { group: GroupRef },
    /// Make the isolation group the only group of one interface.
    Isolate { interface: String, group: GroupRef },
    /// Snapshot one volume, tagged with the record and the instance. Output: the snapshot id.
    /// Kept on rollback (evidence).
    Snapshot { volume_id: String },
    /// Set `DisableApiTermination`.
    TerminationProtection { on: bool },
    /// Set the `reflex:quarantined` tag to the record id.
    Tag { record_id: String },
    /// Undo only: give an interface back its groups.
    RestoreGroups {
        interface: String,
        groups: Vec<String>,
    },
    /// Undo only: remove the `reflex:quarantined` tag (there was none before).
    Untag,
}

/// What a step produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Output {
    /// The step produced nothing to keep.
    Nothing,
    /// The isolation group created.
    IsolationGroup { group_id: String },
    /// The snapshot started.
    Snapshot { snapshot_id: String },
}
