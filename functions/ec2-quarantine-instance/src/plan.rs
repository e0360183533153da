//! Pure planning: the steps that quarantine an instance from its live state, the steps that
//! undo them from the pre-state, and the remediation's own tests of "as left" and "restored".
//! No AWS types here; the tables of cases below are the specification.

use crate::model::{isolation_group_name, GroupRef, Instance, InstanceState, Output, Params, Step};

/// The steps that leave the instance quarantined, in order: the isolation group (found,
/// created, or closed), every interface on it alone, a snapshot of every volume, termination
/// protection, the tag. Empty when all of that already holds.
pub fn plan(
    target: &Instance,
    state: &InstanceState,
    record_id: &str,
    params: &Params,
) -> Vec<Step> {
    let mut steps = Vec::new();
    // The group every interface gets, and whether it is one this plan creates.
    let group = match &state.isolation_group {
        None => {
            steps.push(Step::CreateIsolationGroup {
                vpc_id: target.vpc_id.clone(),
                name: isolation_group_name(&target.vpc_id),
            });
            // A new group comes with an allow-all egress rule.
            steps.push(Step::CloseIsolationGroup {
                group: GroupRef::CreatedEarlier,
            });
            GroupRef::CreatedEarlier
        }
        Some(g) => {
            if g.rules > 0 {
                steps.push(Step::CloseIsolationGroup {
                    group: GroupRef::Existing(g.group_id.clone()),
                });
            }
            GroupRef::Existing(g.group_id.clone())
        }
    };
    for (interface, groups) in &state.interfaces {
        let isolated =
            matches!(&group, GroupRef::Existing(id) if groups.as_slice() == [id.clone()]);
        if !isolated {
            steps.push(Step::Isolate {
                interface: interface.clone(),
                group: group.clone(),
            });
        }
    }
    if params.snapshots {
        for volume in &state.volumes {
            if !has_snapshot(state, volume, record_id) {
                steps.push(Step::Snapshot {
                    volume_id: volume.clone(),
                });
            }
        }
    }
    if !state.termination_protection {
        steps.push(Step::TerminationProtection { on: true });
    }
    // An instance already tagged by an earlier quarantine keeps that record's name: its
    // snapshots are the evidence of this quarantine.
    if state.quarantined_by.is_none() {
        steps.push(Step::Tag {
            record_id: record_id.to_string(),
        });
    }
    steps
}

/// Whether the volume has a snapshot of this quarantine: taken by the record the instance's
/// tag names (an earlier quarantine still in force), or by this record.
fn has_snapshot(state: &InstanceState, volume: &str, record_id: &str) -> bool {
    state.snapshots.iter().any(|s| {
        s.volume_id == volume
            && (s.record_id == record_id || state.quarantined_by.as_deref() == Some(&s.record_id))
    })
}

/// Whether rollback can undo the step. The isolation group (shared by every quarantined
/// instance of the VPC) and the snapshots (evidence) are kept.
pub fn undoable(step: &Step) -> bool {
    !matches!(
        step,
        Step::CreateIsolationGroup { .. }
            | Step::CloseIsolationGroup { .. }
            | Step::Snapshot { .. }
    )
}

/// The steps that put back what the applied steps changed, from the pre-state: each isolated
/// interface's groups, the protection flag, the tag.
pub fn undo<'a>(pre: &InstanceState, applied: impl IntoIterator<Item = &'a Step>) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    for step in applied {
        let back = match step {
            Step::Isolate { interface, .. } => {
                pre.interfaces
                    .get(interface)
                    .map(|groups| Step::RestoreGroups {
                        interface: interface.clone(),
                        groups: groups.clone(),
                    })
            }
            Step::TerminationProtection { .. } => Some(Step::TerminationProtection {
                on: pre.termination_protection,
            }),
            Step::Tag { .. } => Some(match &pre.quarantined_by {
                Some(earlier) => Step::Tag {
                    record_id: earlier.clone(),
                },
                None => Step::Untag,
            }),
            // Kept (not undoable), or an undo step itself.
            Step::CreateIsolationGroup { .. }
            | Step::CloseIsolationGroup { .. }
            | Step::Snapshot { .. }
            | Step::RestoreGroups { .. }
            | Step::Untag => None,
        };
        if let Some(back) = back {
            if !steps.contains(&back) {
                steps.push(back);
            }
        }
    }
    steps
}

/// What rollback puts back and checks: interface groups, protection, tag. Snapshots (kept, and
/// progressing) and the isolation group (kept, shared) are left out on purpose.
fn undoable_part(s: &InstanceState) -> impl PartialEq + '_ {
    (&s.interfaces, s.termination_protection, &s.quarantined_by)
}

/// Rollback may start: the instance is as the fix left it, in what rollback restores.
pub fn as_left(post: &InstanceState, live: &InstanceState) -> bool {
    undoable_part(post) == undoable_part(live)
}

/// Rollback succeeded: interface groups, protection and tag are as before the fix.
pub fn restored(pre: &InstanceState, live: &InstanceState) -> bool {
    undoable_part(pre) == undoable_part(live)
}

/// The isolation group a step uses: its own id, or the one an earlier step of this record
/// created (that step's output). `None`: no earlier step created one.
pub fn group_id<'a>(
    group: &GroupRef,
    earlier: impl IntoIterator<Item = &'a Output>,
) -> Option<String> {
    match group {
        GroupRef::Existing(id) => Some(id.clone()),
        GroupRef::CreatedEarlier => earlier.into_iter().find_map(|o| match o {
            Output::IsolationGroup { group_id } => Some(group_id.clone()),
            _ => None,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{IsolationGroup, ResourceRef, Snapshot};
    use reflex_shared::finding::ResourceKind;
    use std::collections::BTreeMap;

    const REC: &str = "ec2-quarantine-instance#r1";

    fn target() -> Instance {
        Instance {
            resource: ResourceRef {
                kind: ResourceKind::Ec2Instance,
                id: "i-0123456789abcdef0".into(),
                arn: "arn:aws:ec2:us-east-1:123456789012:instance/i-0123456789abcdef0".into(),
                account: "123456789012".into(),
            },
            vpc_id: "vpc-1".into(),
            interfaces: vec!["eni-a".into(), "eni-b".into()],
        }
    }

    fn groups(pairs: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
        pairs
            .iter()
            .map(|(e, gs)| (e.to_string(), gs.iter().map(|g| g.to_string()).collect()))
            .collect()
    }

    /// Two interfaces on their own groups, two volumes, nothing of Reflex's yet.
    fn open() -> InstanceState {
        InstanceState {
            interfaces: groups(&[("eni-a", &["sg-web", "sg-ssh"]), ("eni-b", &["sg-db"])]),
            volumes: vec!["vol-1".into(), "vol-2".into()],
            termination_protection: false,
            quarantined_by: None,
            isolation_group: None,
            snapshots: vec![],
        }
    }

    fn snap(volume: &str, record: &str) -> Snapshot {
        Snapshot {
            snapshot_id: format!("snap-{volume}-{record}"),
            volume_id: volume.into(),
            record_id: record.into(),
        }
    }

    /// As the fix leaves it, with the isolation group `sg-iso`.
    fn quarantined() -> InstanceState {
        InstanceState {
            interfaces: groups(&[("eni-a", &["sg-iso"]), ("eni-b", &["sg-iso"])]),
            termination_protection: true,
            quarantined_by: Some(REC.into()),
            isolation_group: Some(IsolationGroup {
                group_id: "sg-iso".into(),
                rules: 0,
            }),
            snapshots: vec![snap("vol-1", REC), snap("vol-2", REC)],
            ..open()
        }
    }

    fn iso() -> GroupRef {
        GroupRef::Existing("sg-iso".into())
    }

    fn isolate(eni: &str, group: GroupRef) -> Step {
        Step::Isolate {
            interface: eni.into(),
            group,
        }
    }

    fn snapshot(v: &str) -> Step {
        Step::Snapshot {
            volume_id: v.into(),
        }
    }

    fn tag() -> Step {
        Step::Tag {
            record_id: REC.into(),
        }
    }

    const PROTECT: Step = Step::TerminationProtection { on: true };

    #[test]
    fn plan_table() {
        let with = |f: &dyn Fn(&mut InstanceState)| {
            let mut s = quarantined();
            f(&mut s);
            s
        };
        let created = GroupRef::CreatedEarlier;
        let no_snapshots = Params { snapshots: false };
        let cases: Vec<(&str, InstanceState, Params, Vec<Step>)> = vec![
            (
                "nothing yet: every step, the group created first",
                open(),
                Params::default(),
                vec![
                    Step::CreateIsolationGroup {
                        vpc_id: "vpc-1".into(),
                        name: "reflex-isolation-vpc-1".into(),
                    },
                    Step::CloseIsolationGroup {
                        group: created.clone(),
                    },
                    isolate("eni-a", created.clone()),
                    isolate("eni-b", created.clone()),
                    snapshot("vol-1"),
                    snapshot("vol-2"),
                    PROTECT,
                    tag(),
                ],
            ),
            (
                "quarantined: nothing to do",
                quarantined(),
                Params::default(),
                vec![],
            ),
            (
                "the group exists (another instance's quarantine): used as it is",
                with(&|s| {
                    *s = InstanceState {
                        isolation_group: s.isolation_group.clone(),
                        ..open()
                    }
                }),
                Params::default(),
                vec![
                    isolate("eni-a", iso()),
                    isolate("eni-b", iso()),
                    snapshot("vol-1"),
                    snapshot("vol-2"),
                    PROTECT,
                    tag(),
                ],
            ),
            (
                "someone opened the group: closed again",
                with(&|s| s.isolation_group.as_mut().unwrap().rules = 2),
                Params::default(),
                vec![Step::CloseIsolationGroup { group: iso() }],
            ),
            (
                "an interface with the isolation group and another group",
                with(&|s| {
                    s.interfaces
                        .insert("eni-b".into(), vec!["sg-db".into(), "sg-iso".into()]);
                }),
                Params::default(),
                vec![isolate("eni-b", iso())],
            ),
            (
                "a volume attached since: its snapshot",
                with(&|s| s.volumes.push("vol-3".into())),
                Params::default(),
                vec![snapshot("vol-3")],
            ),
            (
                "snapshots of an earlier, rolled-back quarantine do not count",
                with(&|s| {
                    s.snapshots = vec![snap("vol-1", "old"), snap("vol-2", "old")];
                }),
                Params::default(),
                vec![snapshot("vol-1"), snapshot("vol-2")],
            ),
            (
                "quarantined by an earlier record: its snapshots and its tag stand",
                with(&|s| {
                    s.quarantined_by = Some("earlier".into());
                    s.snapshots = vec![snap("vol-1", "earlier"), snap("vol-2", "earlier")];
                }),
                Params::default(),
                vec![],
            ),
            (
                "snapshots turned off by the parameters",
                with(&|s| s.snapshots.clear()),
                no_snapshots,
                vec![],
            ),
            (
                "protection turned off since",
                with(&|s| s.termination_protection = false),
                Params::default(),
                vec![PROTECT],
            ),
            (
                "no tag yet (a partial attempt): the tag",
                with(&|s| s.quarantined_by = None),
                Params::default(),
                vec![tag()],
            ),
        ];
        for (name, state, params, want) in cases {
            assert_eq!(plan(&target(), &state, REC, &params), want, "{name}");
        }
    }

    #[test]
    fn undo_table() {
        let cases: Vec<(&str, Vec<Step>, Vec<Step>)> = vec![
            (
                "the whole fix: groups, protection, tag back; group and snapshots kept",
                plan(&target(), &open(), REC, &Params::default()),
                vec![
                    Step::RestoreGroups {
                        interface: "eni-a".into(),
                        groups: vec!["sg-web".into(), "sg-ssh".into()],
                    },
                    Step::RestoreGroups {
                        interface: "eni-b".into(),
                        groups: vec!["sg-db".into()],
                    },
                    Step::TerminationProtection { on: false },
                    Step::Untag,
                ],
            ),
            (
                "a partial fix (failed at the snapshot): only the interface",
                vec![
                    Step::CreateIsolationGroup {
                        vpc_id: "vpc-1".into(),
                        name: "reflex-isolation-vpc-1".into(),
                    },
                    isolate("eni-a", GroupRef::CreatedEarlier),
                ],
                vec![Step::RestoreGroups {
                    interface: "eni-a".into(),
                    groups: vec!["sg-web".into(), "sg-ssh".into()],
                }],
            ),
            ("nothing applied: nothing to undo", vec![], vec![]),
        ];
        for (name, applied, want) in cases {
            let applied: Vec<_> = applied.into_iter().filter(undoable).collect();
            assert_eq!(undo(&open(), &applied), want, "{name}");
        }
        // A tag that was there before is put back, not removed.
        let mut pre = open();
        pre.quarantined_by = Some("earlier".into());
        assert_eq!(
            undo(&pre, &[tag()]),
            vec![Step::Tag {
                record_id: "earlier".into()
            }]
        );
    }

    #[test]
    fn undoable_table() {
        let cases = [
            (
                Step::CreateIsolationGroup {
                    vpc_id: "v".into(),
                    name: "n".into(),
                },
                false,
            ),
            (Step::CloseIsolationGroup { group: iso() }, false),
            (snapshot("vol-1"), false),
            (isolate("eni-a", iso()), true),
            (PROTECT, true),
            (tag(), true),
        ];
        for (step, want) in cases {
            assert_eq!(undoable(&step), want, "{step:?}");
        }
    }

    #[test]
    fn restored_and_as_left_ignore_snapshots_and_the_group() {
        let pre = open();
        // After a rollback: groups, protection, tag back; the group and snapshots kept.
        let mut live = open();
        live.isolation_group = quarantined().isolation_group;
        live.snapshots = vec![snap("vol-1", REC), snap("vol-2", REC)];
        let cases: Vec<(&str, InstanceState, bool)> = vec![
            ("restored, group and snapshots kept", live.clone(), true),
            (
                "an interface still isolated",
                InstanceState {
                    interfaces: groups(&[("eni-a", &["sg-iso"]), ("eni-b", &["sg-db"])]),
                    ..live.clone()
                },
                false,
            ),
            (
                "protection still on",
                InstanceState {
                    termination_protection: true,
                    ..live.clone()
                },
                false,
            ),
            (
                "the tag still there",
                InstanceState {
                    quarantined_by: Some(REC.into()),
                    ..live.clone()
                },
                false,
            ),
        ];
        for (name, live, want) in cases {
            assert_eq!(restored(&pre, &live), want, "{name}");
        }
        // As left: a snapshot gone (deleted by someone) or a new one does not matter; a group
        // changed on an interface does.
        let post = quarantined();
        let mut live = quarantined();
        live.snapshots.pop();
        assert!(as_left(&post, &live));
        live.interfaces
            .insert("eni-a".into(), vec!["sg-web".into()]);
        assert!(!as_left(&post, &live));
    }

    #[test]
    fn group_of_a_step() {
        let outputs = [
            Output::Nothing,
            Output::IsolationGroup {
                group_id: "sg-new".into(),
            },
        ];
        assert_eq!(group_id(&iso(), &outputs), Some("sg-iso".into()));
        assert_eq!(
            group_id(&GroupRef::CreatedEarlier, &outputs),
            Some("sg-new".into())
        );
        assert_eq!(group_id(&GroupRef::CreatedEarlier, &outputs[..1]), None);
    }

    #[test]
    fn steps_and_outputs_round_trip_through_json() {
        let steps = plan(&target(), &open(), REC, &Params::default());
        let v = serde_json::to_value(&steps).unwrap();
        assert_eq!(v[0]["op"], "create-isolation-group");
        assert_eq!(
            v[1],
            serde_json::json!({"op": "close-isolation-group", "group": "created-earlier"})
        );
        assert_eq!(
            v[2],
            serde_json::json!({"op": "isolate", "interface": "eni-a", "group": "created-earlier"})
        );
        assert_eq!(serde_json::from_value::<Vec<Step>>(v).unwrap(), steps);
        let o = Output::Snapshot {
            snapshot_id: "snap-1".into(),
        };
        let v = serde_json::to_value(&o).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"kind": "snapshot", "snapshot_id": "snap-1"})
        );
        assert_eq!(serde_json::from_value::<Output>(v).unwrap(), o);
    }

    #[test]
    fn params_default_to_snapshots_and_refuse_unknown_keys() {
        let p: Params = serde_json::from_value(serde_json::json!({})).unwrap();
        assert!(p.snapshots);
        let p: Params = serde_json::from_value(serde_json::json!({"snapshots": false})).unwrap();
        assert!(!p.snapshots);
        assert!(serde_json::from_value::<Params>(serde_json::json!({"snapshot": false})).is_err());
    }
}
