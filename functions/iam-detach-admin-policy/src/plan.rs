//! The decisions: which attachments to remove, and how to undo it. Pure.

use crate::model::{AdminState, AdminStep, AdminTarget, Scope};
use reflex_shared::remediation::Plan;

/// Every attachment of full admin the finding is about, detached. Protected holders are the
/// pipeline's to leave out (and name); this plans every one.
pub fn plan(target: &AdminTarget, state: &AdminState) -> Plan<AdminStep> {
    match (&target.scope, state) {
        (
            Scope::Policy {
                policy_arn,
                policy_name,
                ..
            },
            AdminState::Policy {
                default_version,
                full_admin,
                holders,
            },
        ) => {
            if !full_admin {
                return Plan::of(Vec::new());
            }
            Plan {
                steps: holders
                    .iter()
                    .map(|h| AdminStep::Detach {
                        policy_arn: policy_arn.clone(),
                        holder: h.clone(),
                    })
                    .collect(),
                untouched: vec![format!(
                    "the policy {policy_name} itself, whose default version {default_version} still \
                     allows every action on every resource: editing or deleting it is a person's \
                     decision; Reflex only detaches it"
                )],
            }
        }
        (Scope::User(user), AdminState::User { attached }) => {
            let mut plan = Plan::of(Vec::new());
            for a in attached {
                if a.full_admin {
                    plan.steps.push(AdminStep::Detach {
                        policy_arn: a.policy_arn.clone(),
                        holder: user.clone(),
                    });
                } else {
                    plan.untouched.push(format!(
                        "{} stays attached to {}: it does not grant full admin, and moving a \
                         user's permissions into groups (what IAM.2 asks) is a person's design",
                        a.policy_name, user.name
                    ));
                }
            }
            plan
        }
        // A state read for another scope than the target's: nothing is planned on it.
        _ => Plan::of(Vec::new()),
    }
}

/// The attachments the detachments removed, made again: exactly those.
pub fn undo(applied: &[AdminStep]) -> Vec<AdminStep> {
    applied
        .iter()
        .filter_map(|s| match s {
            AdminStep::Detach { policy_arn, holder } => Some(AdminStep::Attach {
                policy_arn: policy_arn.clone(),
                holder: holder.clone(),
            }),
            AdminStep::Attach { .. } => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Attached, Holder};
    use reflex_shared::finding::ResourceKind;
    use reflex_shared::principal::PrincipalKind;
    use reflex_shared::remediation::ResourceRef;

    fn holder(kind: PrincipalKind, name: &str) -> Holder {
        Holder {
            kind,
            name: name.into(),
            arn: format!("arn:aws:iam::1:{}/{name}", kind.as_str()),
            id: format!("ID{name}"),
        }
    }

    fn policy_target() -> AdminTarget {
        AdminTarget {
            resource: ResourceRef {
                kind: ResourceKind::IamPolicy,
                id: "admin".into(),
                arn: "arn:aws:iam::1:policy/admin".into(),
                account: "1".into(),
            },
            scope: Scope::Policy {
                policy_arn: "arn:aws:iam::1:policy/admin".into(),
                policy_id: "ANPA1".into(),
                policy_name: "admin".into(),
            },
        }
    }

    #[test]
    fn a_full_admin_policy_is_detached_from_every_holder() {
        let holders = vec![
            holder(PrincipalKind::Group, "admins"),
            holder(PrincipalKind::Role, "deploy"),
            holder(PrincipalKind::User, "alice"),
        ];
        let state = AdminState::Policy {
            default_version: "v2".into(),
            full_admin: true,
            holders: holders.clone(),
        };
        let p = plan(&policy_target(), &state);
        let detached: Vec<&Holder> = p.steps.iter().map(AdminStep::holder).collect();
        assert_eq!(detached, holders.iter().collect::<Vec<_>>());
        assert!(p.untouched[0].contains("v2"), "{:?}", p.untouched);
        // Undo attaches exactly those again.
        let back = undo(&p.steps);
        assert_eq!(back.len(), 3);
        assert!(back
            .iter()
            .zip(&holders)
            .all(|(s, h)| matches!(s, AdminStep::Attach { holder, .. } if holder == h)));
        assert!(undo(&back).is_empty());
        // No holder left: nothing to do (the policy itself is named as left alone).
        let none = AdminState::Policy {
            default_version: "v2".into(),
            full_admin: true,
            holders: vec![],
        };
        assert!(plan(&policy_target(), &none).compliant());
        // Not full admin (a new default version): nothing to do.
        let tamed = AdminState::Policy {
            default_version: "v3".into(),
            full_admin: false,
            holders,
        };
        let p = plan(&policy_target(), &tamed);
        assert!(p.compliant() && p.untouched.is_empty());
    }

    #[test]
    fn a_user_loses_only_its_full_admin_policies() {
        let alice = holder(PrincipalKind::User, "alice");
        let target = AdminTarget {
            resource: ResourceRef {
                kind: ResourceKind::IamUser,
                id: "alice".into(),
                arn: alice.arn.clone(),
                account: "1".into(),
            },
            scope: Scope::User(alice.clone()),
        };
        let attached = |arn: &str, full_admin| Attached {
            policy_arn: arn.into(),
            policy_name: arn.rsplit('/').next().unwrap().into(),
            full_admin,
        };
        let state = AdminState::User {
            attached: vec![
                attached("arn:aws:iam::aws:policy/AdministratorAccess", true),
                attached("arn:aws:iam::1:policy/read-only", false),
            ],
        };
        let p = plan(&target, &state);
        assert_eq!(
            p.steps,
            vec![AdminStep::Detach {
                policy_arn: "arn:aws:iam::aws:policy/AdministratorAccess".into(),
                holder: alice
            }]
        );
        assert!(
            p.untouched[0].starts_with("read-only stays attached"),
            "{:?}",
            p.untouched
        );
        // The scopes never mix.
        assert!(plan(&policy_target(), &state).compliant());
    }
}
