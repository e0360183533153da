//! The remediation's AWS-facing parts, over the adapters in `ec2`: resolving the target from
//! EC2, reading the live state, carrying out one step. The trait impl only forwards to these.

use crate::ec2::{Ec2, LiveInstance};
use crate::model::{
    GroupRef, Instance, InstanceState, IsolationGroup, Output, ResourceRef, Snapshot, Step,
    QUARANTINED_TAG,
};
use crate::plan;
use reflex_shared::finding::named_instance;
use reflex_shared::finding::{Finding, ResourceKind};
use reflex_shared::remediation::{RemediationError, Tags, Unresolved};
use reflex_shared::status::Reason;

/// The instance the finding names, as EC2 describes it now: its VPC and interfaces come from
/// `DescribeInstances`, never from the finding.
pub async fn resolve(ec2: &Ec2, finding: &Finding) -> Result<Instance, Unresolved> {
    let (id, arn) = named_instance(finding).map_err(Unresolved::NoTarget)?;
    let gone = |why: String| Unresolved::Skip(Reason::ResourceGone, why);
    let live = ec2.instance(&id).await?.ok_or_else(|| {
        gone(format!(
            "instance {id} does not exist (terminated, or never was)"
        ))
    })?;
    target_of(&id, &arn, &finding.account, &live).map_err(|(gone_now, why)| {
        if gone_now {
            gone(why)
        } else {
            Unresolved::NoTarget(why)
        }
    })
}

/// The stored target from what EC2 says (pure): the instance must be the finding's account's,
/// alive, and in a VPC. `Err((gone, why))`.
pub fn target_of(
    id: &str,
    arn: &str,
    account: &str,
    live: &LiveInstance,
) -> Result<Instance, (bool, String)> {
    if live.owner.as_deref() != Some(account) {
        return Err((
            false,
            format!(
                "instance {id} belongs to account {}, not the finding's {account}",
                live.owner.as_deref().unwrap_or("(unknown)")
            ),
        ));
    }
    if live.ended() {
        return Err((
            true,
            format!("instance {id} is {}: nothing to quarantine", live.state),
        ));
    }
    let vpc_id = live
        .vpc_id
        .clone()
        .ok_or_else(|| (false, format!("instance {id} is in no VPC")))?;
    if live.interfaces.is_empty() {
        return Err((false, format!("instance {id} has no network interface")));
    }
    Ok(Instance {
        resource: ResourceRef {
            kind: ResourceKind::Ec2Instance,
            id: id.to_string(),
            arn: arn.to_string(),
            account: account.to_string(),
        },
        vpc_id,
        interfaces: live.interfaces.iter().map(|(eni, _)| eni.clone()).collect(),
    })
}

/// The instance's tags (for the exemption tag).
pub async fn tags(ec2: &Ec2, target: &Instance) -> Result<Tags, RemediationError> {
    Ok(alive(ec2, target).await?.tags)
}

async fn alive(ec2: &Ec2, target: &Instance) -> Result<LiveInstance, RemediationError> {
    ec2.instance(target.id())
        .await?
        .filter(|l| !l.ended())
        .ok_or_else(|| RemediationError::Gone(format!("instance {} no longer exists", target.id())))
}

/// The live state: four reads in one round.
pub async fn inspect(ec2: &Ec2, target: &Instance) -> Result<InstanceState, RemediationError> {
    let id = target.id();
    let (live, protection, group, snapshots) = tokio::try_join!(
        alive(ec2, target),
        ec2.termination_protection(id),
        ec2.isolation_group(&target.vpc_id),
        ec2.snapshots(id),
    )?;
    Ok(state_of(live, protection, group, snapshots))
}

/// The state from the reads (pure).
pub fn state_of(
    live: LiveInstance,
    termination_protection: bool,
    isolation_group: Option<IsolationGroup>,
    snapshots: Vec<Snapshot>,
) -> InstanceState {
    InstanceState {
        quarantined_by: live.tags.get(QUARANTINED_TAG).cloned(),
        interfaces: live.interfaces.into_iter().collect(),
        volumes: live.volumes,
        termination_protection,
        isolation_group,
        snapshots,
    }
}

/// Carry out one step. `earlier`: the outputs of the steps of this record that took effect
/// before it (an interface's step reads the id of the group an earlier step created).
pub async fn apply<'a>(
    ec2: &Ec2,
    target: &Instance,
    record_id: &str,
    step: &Step,
    earlier: impl IntoIterator<Item = &'a Output>,
) -> Result<Output, RemediationError> {
    let id = target.id();
    match step {
        Step::CreateIsolationGroup { vpc_id, name } => {
            let group_id = ec2.create_isolation_group(vpc_id, name).await?;
            return Ok(Output::IsolationGroup { group_id });
        }
        Step::CloseIsolationGroup { group } => {
            let group_id = group_id(ec2, target, group, earlier).await?;
            ec2.close_group(&group_id).await?
        }
        Step::Isolate { interface, group } => {
            let group_id = group_id(ec2, target, group, earlier).await?;
            ec2.set_interface_groups(interface, &[group_id]).await?
        }
        Step::RestoreGroups { interface, groups } => {
            ec2.set_interface_groups(interface, groups).await?
        }
        Step::Snapshot { volume_id } => {
            let snapshot_id = ec2.create_snapshot(volume_id, id, record_id).await?;
            return Ok(Output::Snapshot { snapshot_id });
        }
        Step::TerminationProtection { on } => ec2.set_termination_protection(id, *on).await?,
        Step::Tag { record_id } => ec2.tag_quarantined(id, record_id).await?,
        Step::Untag => ec2.untag_quarantined(id).await?,
    }
    Ok(Output::Nothing)
}

/// The id of the group a step names.
async fn group_id<'a>(
    ec2: &Ec2,
    target: &Instance,
    group: &GroupRef,
    earlier: impl IntoIterator<Item = &'a Output>,
) -> Result<String, RemediationError> {
    if let Some(id) = plan::group_id(group, earlier) {
        return Ok(id);
    }
    // The step that created the group took effect in an attempt whose output was not kept (a
    // crash right after it): the group is found by its name and tag.
    ec2.isolation_group(&target.vpc_id)
        .await?
        .map(|g| g.group_id)
        .ok_or_else(|| {
            RemediationError::Invalid(format!("no isolation group in {}", target.vpc_id))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn live() -> LiveInstance {
        LiveInstance {
            owner: Some("123456789012".into()),
            state: "running".into(),
            vpc_id: Some("vpc-1".into()),
            interfaces: vec![
                ("eni-b".into(), vec!["sg-1".into()]),
                ("eni-a".into(), vec!["sg-2".into()]),
            ],
            volumes: vec!["vol-1".into()],
            tags: BTreeMap::from([(QUARANTINED_TAG.to_string(), "r1".to_string())]),
        }
    }

    #[test]
    fn target_of_table() {
        const ID: &str = "i-12345678";
        const ARN: &str = "arn:aws:ec2:us-east-1:123456789012:instance/i-12345678";
        let with = |f: &dyn Fn(&mut LiveInstance)| {
            let mut l = live();
            f(&mut l);
            l
        };
        type Want = Result<Vec<&'static str>, (bool, &'static str)>;
        let cases: Vec<(&str, LiveInstance, Want)> = vec![
            ("alive, in a VPC: its interfaces in device order", live(), Ok(vec!["eni-b", "eni-a"])),
            (
                "stopped instances are quarantined too",
                with(&|l| l.state = "stopped".into()),
                Ok(vec!["eni-b", "eni-a"]),
            ),
            (
                "terminated",
                with(&|l| l.state = "terminated".into()),
                Err((true, "instance i-12345678 is terminated: nothing to quarantine")),
            ),
            (
                "another account's",
                with(&|l| l.owner = Some("999999999999".into())),
                Err((false, "instance i-12345678 belongs to account 999999999999, not the finding's 123456789012")),
            ),
            (
                "no VPC",
                with(&|l| l.vpc_id = None),
                Err((false, "instance i-12345678 is in no VPC")),
            ),
        ];
        for (name, l, want) in cases {
            let got = target_of(ID, ARN, "123456789012", &l);
            match want {
                Ok(enis) => {
                    let t = got.unwrap_or_else(|e| panic!("{name}: {e:?}"));
                    assert_eq!(t.interfaces, enis, "{name}");
                    assert_eq!((t.vpc_id.as_str(), t.resource.arn.as_str()), ("vpc-1", ARN));
                }
                Err((gone, why)) => assert_eq!(got, Err((gone, why.to_string())), "{name}"),
            }
        }
    }

    #[test]
    fn state_of_reads_the_tag_and_interfaces() {
        let s = state_of(live(), true, None, vec![]);
        assert_eq!(s.quarantined_by.as_deref(), Some("r1"));
        assert_eq!(
            s.interfaces.keys().collect::<Vec<_>>(),
            ["eni-a", "eni-b"],
            "keyed by interface id"
        );
        assert!(s.termination_protection);
    }
}
