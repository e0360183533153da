//! The decisions: which of Reflex's firewall parts to create for the VPC, whether to block the
//! domain or extend its block, how to undo, what the sweep removes. Pure: the live firewall and
//! Reflex's own blocks on the VPC in, steps out.

use crate::domain::Domain;
use crate::firewall::{self, FirewallState, Part};
use crate::params::Params;
use serde::{Deserialize, Serialize};

/// A block extends only when it gains at least this much life. A redelivery, and the verify
/// that re-plans seconds after the fix, must find nothing to do.
pub const EXTEND_SLACK_SECONDS: i64 = 60;

/// Why a domain leaves the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Removal {
    /// Its time was up (the scheduled sweep).
    Expired,
    /// A rollback of the record that placed it.
    Undone,
}

/// One change. Ids a step needs are its own when the part existed at planning, or `None`: the
/// part an earlier step of the same record creates (that step's output), else found by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "op")]
pub enum DomainStep {
    /// `CreateFirewallDomainList` (an empty list); output: its id.
    CreateList {
        name: String,
        creator_request_id: String,
    },
    /// `CreateFirewallRuleGroup`; output: its id.
    CreateRuleGroup {
        name: String,
        creator_request_id: String,
    },
    /// `CreateFirewallRule`: BLOCK the list's domains, answering NXDOMAIN.
    CreateRule {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        group_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        list_id: Option<String>,
        name: String,
        priority: i32,
        creator_request_id: String,
    },
    /// `AssociateFirewallRuleGroup` with the VPC; output: the association's id.
    Associate {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        group_id: Option<String>,
        vpc_id: String,
        name: String,
        priority: i32,
        creator_request_id: String,
    },
    /// `UpdateFirewallDomains` ADD; Reflex's until `expires_at` (epoch seconds).
    Block {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        list_id: Option<String>,
        domain: Domain,
        expires_at: i64,
    },
    /// The block stands already: kept until `to` instead of `from`. No AWS call; the record
    /// and Reflex's entry for the block say so.
    Extend {
        domain: Domain,
        from: Option<i64>,
        to: i64,
    },
    /// `UpdateFirewallDomains` REMOVE, from the VPC's list (found by name: the sweep and a
    /// rollback work long after the finding).
    Unblock {
        domain: Domain,
        why: Removal,
        /// The record that placed the block (a sweep's), for the audit trail.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        made_by: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expires_at: Option<i64>,
    },
}

impl DomainStep {
    /// Whether a rollback takes it back: the domain's block and its extension. The firewall's
    /// parts are kept (other findings' blocks use them; the rollback names them), and a removal
    /// is never put back (an expired block would only be swept again).
    pub fn undoable(&self) -> bool {
        matches!(self, DomainStep::Block { .. } | DomainStep::Extend { .. })
    }
}

/// A block Reflex holds on the VPC (its owned entry), as the planner needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub domain: Domain,
    pub record_id: String,
    pub expires_at: Option<i64>,
}

/// What the planner decided.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Decision {
    pub steps: Vec<DomainStep>,
    /// Parts left alone on purpose, each with why.
    pub untouched: Vec<String>,
}

/// The steps that block `state.domain` in the VPC's firewall at `now` (epoch seconds): each
/// missing part created, in the order each needs the one before, then the domain.
pub fn plan(state: &FirewallState, held: &[Held], params: &Params, now: i64) -> Decision {
    let mut d = Decision::default();
    let vpc = &state.vpc_id;
    let name = firewall::name(vpc);
    if state.list_id.is_none() {
        d.steps.push(DomainStep::CreateList {
            name: name.clone(),
            creator_request_id: firewall::creator_request_id(Part::List, vpc),
        });
    }
    if state.group_id.is_none() {
        d.steps.push(DomainStep::CreateRuleGroup {
            name: name.clone(),
            creator_request_id: firewall::creator_request_id(Part::Group, vpc),
        });
    }
    if !state.rule {
        d.steps.push(DomainStep::CreateRule {
            group_id: state.group_id.clone(),
            list_id: state.list_id.clone(),
            name: firewall::RULE_NAME.into(),
            priority: firewall::RULE_PRIORITY,
            creator_request_id: firewall::creator_request_id(Part::Rule, vpc),
        });
    }
    match (&state.association, &state.group_id) {
        (Some(a), Some(_)) => {
            if a.priority != params.priority {
                d.untouched.push(format!(
                    "Reflex's rule group is associated with {vpc} at priority {}, not the parameters' {}: left as it is (changing it reorders the VPC's DNS Firewall)",
                    a.priority, params.priority
                ));
            }
        }
        _ => d.steps.push(DomainStep::Associate {
            group_id: state.group_id.clone(),
            vpc_id: vpc.clone(),
            name,
            priority: params.priority,
            creator_request_id: firewall::creator_request_id(Part::Association, vpc),
        }),
    }
    let expires_at = now + params.ttl_seconds;
    let domain = &state.domain;
    let ours = held.iter().find(|h| h.domain == *domain);
    match (state.blocked && state.list_id.is_some(), ours) {
        (true, Some(h)) => {
            if h.expires_at
                .is_none_or(|at| expires_at >= at + EXTEND_SLACK_SECONDS)
            {
                d.steps.push(DomainStep::Extend {
                    domain: domain.clone(),
                    from: h.expires_at,
                    to: expires_at,
                });
            }
        }
        (true, None) => d.untouched.push(format!(
            "{domain} is in Reflex's list for {vpc} already, placed by no Reflex record: left as it is, with no expiry"
        )),
        (false, _) => d.steps.push(DomainStep::Block {
            list_id: state.list_id.clone(),
            domain: domain.clone(),
            expires_at,
        }),
    }
    d
}

/// The steps that take back `applied` (the undoable steps that took effect), last first.
pub fn undo(applied: &[DomainStep]) -> Vec<DomainStep> {
    applied
        .iter()
        .rev()
        .filter_map(|step| match step {
            DomainStep::Block {
                domain, expires_at, ..
            } => Some(DomainStep::Unblock {
                domain: domain.clone(),
                why: Removal::Undone,
                made_by: None,
                expires_at: Some(*expires_at),
            }),
            DomainStep::Extend {
                domain,
                from: Some(from),
                to,
            } => Some(DomainStep::Extend {
                domain: domain.clone(),
                from: Some(*to),
                to: *from,
            }),
            _ => None,
        })
        .collect()
}

/// What the sweep does with an expired block.
pub fn expire(held: &Held) -> DomainStep {
    DomainStep::Unblock {
        domain: held.domain.clone(),
        why: Removal::Expired,
        made_by: Some(held.record_id.clone()),
        expires_at: held.expires_at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::firewall::Association;

    const NOW: i64 = 1_800_000_000;
    const DAY: i64 = 86_400;
    const VPC: &str = "vpc-1";

    fn d(s: &str) -> Domain {
        s.parse().unwrap()
    }

    fn empty() -> FirewallState {
        FirewallState {
            vpc_id: VPC.into(),
            domain: d("c2.example"),
            list_id: None,
            group_id: None,
            rule: false,
            association: None,
            blocked: false,
        }
    }

    fn built(blocked: bool) -> FirewallState {
        FirewallState {
            list_id: Some("fdl-1".into()),
            group_id: Some("frg-1".into()),
            rule: true,
            association: Some(Association {
                id: "assoc-1".into(),
                priority: 101,
                status: "COMPLETE".into(),
            }),
            blocked,
            ..empty()
        }
    }

    fn held(domain: &str, expires_at: i64) -> Held {
        Held {
            domain: d(domain),
            record_id: "r-1".into(),
            expires_at: Some(expires_at),
        }
    }

    fn block(list: Option<&str>) -> DomainStep {
        DomainStep::Block {
            list_id: list.map(String::from),
            domain: d("c2.example"),
            expires_at: NOW + DAY,
        }
    }

    fn ops(steps: &[DomainStep]) -> Vec<String> {
        steps
            .iter()
            .map(|s| {
                serde_json::to_value(s).unwrap()["op"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect()
    }

    #[test]
    fn planning_table() {
        let p = Params::default();
        // (name, state, held, ops, untouched)
        type Case = (
            &'static str,
            FirewallState,
            Vec<Held>,
            Vec<&'static str>,
            usize,
        );
        let cases: Vec<Case> = vec![
            (
                "nothing yet: every part, in order, then the domain",
                empty(),
                vec![],
                vec![
                    "create-list",
                    "create-rule-group",
                    "create-rule",
                    "associate",
                    "block",
                ],
                0,
            ),
            (
                "everything there: the domain only",
                built(false),
                vec![],
                vec!["block"],
                0,
            ),
            (
                "the list there, no group: the group, its rule, the association",
                FirewallState {
                    list_id: Some("fdl-1".into()),
                    ..empty()
                },
                vec![],
                vec!["create-rule-group", "create-rule", "associate", "block"],
                0,
            ),
            (
                "the association gone: associated again",
                FirewallState {
                    association: None,
                    ..built(false)
                },
                vec![],
                vec!["associate", "block"],
                0,
            ),
            (
                "the rule gone: made again",
                FirewallState {
                    rule: false,
                    ..built(false)
                },
                vec![],
                vec!["create-rule", "block"],
                0,
            ),
            (
                "blocked by Reflex, expiring in an hour: extended",
                built(true),
                vec![held("c2.example", NOW + 3600)],
                vec!["extend"],
                0,
            ),
            (
                "blocked by Reflex just now (verify, a redelivery): nothing",
                built(true),
                vec![held("c2.example", NOW + DAY - 5)],
                vec![],
                0,
            ),
            (
                "in the list but placed by no record: left alone",
                built(true),
                vec![],
                vec![],
                1,
            ),
            (
                "held on record but gone from the list: blocked again",
                built(false),
                vec![held("c2.example", NOW + 3600)],
                vec!["block"],
                0,
            ),
            (
                "another domain held: this one blocked",
                built(false),
                vec![held("other.example", NOW + 3600)],
                vec!["block"],
                0,
            ),
            (
                "associated at another priority: said, left",
                FirewallState {
                    association: Some(Association {
                        id: "assoc-1".into(),
                        priority: 500,
                        status: "COMPLETE".into(),
                    }),
                    ..built(false)
                },
                vec![],
                vec!["block"],
                1,
            ),
        ];
        for (name, state, held, want, untouched) in cases {
            let got = plan(&state, &held, &p, NOW);
            assert_eq!(ops(&got.steps), want, "{name}");
            assert_eq!(
                got.untouched.len(),
                untouched,
                "{name}: {:?}",
                got.untouched
            );
        }
    }

    #[test]
    fn the_steps_carry_names_tokens_priority_and_known_ids() {
        let p = Params {
            priority: 300,
            ..Params::default()
        };
        let got = plan(&empty(), &[], &p, NOW).steps;
        assert_eq!(
            got,
            vec![
                DomainStep::CreateList {
                    name: "reflex-blocked-domains-vpc-1".into(),
                    creator_request_id: "reflex-network-block-domain-list-vpc-1".into(),
                },
                DomainStep::CreateRuleGroup {
                    name: "reflex-blocked-domains-vpc-1".into(),
                    creator_request_id: "reflex-network-block-domain-group-vpc-1".into(),
                },
                DomainStep::CreateRule {
                    group_id: None,
                    list_id: None,
                    name: firewall::RULE_NAME.into(),
                    priority: firewall::RULE_PRIORITY,
                    creator_request_id: "reflex-network-block-domain-rule-vpc-1".into(),
                },
                DomainStep::Associate {
                    group_id: None,
                    vpc_id: VPC.into(),
                    name: "reflex-blocked-domains-vpc-1".into(),
                    priority: 300,
                    creator_request_id: "reflex-network-block-domain-association-vpc-1".into(),
                },
                block(None),
            ]
        );
        assert_eq!(
            plan(&built(false), &[], &p, NOW).steps,
            vec![block(Some("fdl-1"))]
        );
    }

    #[test]
    fn a_plan_applied_plans_nothing_more() {
        let p = Params::default();
        let mut state = empty();
        let mut held_now: Vec<Held> = vec![];
        for step in plan(&state, &held_now, &p, NOW).steps {
            match step {
                DomainStep::CreateList { .. } => state.list_id = Some("fdl-9".into()),
                DomainStep::CreateRuleGroup { .. } => state.group_id = Some("frg-9".into()),
                DomainStep::CreateRule { .. } => state.rule = true,
                DomainStep::Associate { priority, .. } => {
                    state.association = Some(Association {
                        id: "assoc-9".into(),
                        priority,
                        status: "CREATING".into(),
                    })
                }
                DomainStep::Block {
                    domain, expires_at, ..
                } => {
                    state.blocked = true;
                    held_now.push(Held {
                        domain,
                        record_id: "r-now".into(),
                        expires_at: Some(expires_at),
                    });
                }
                other => panic!("{other:?}"),
            }
        }
        assert!(state.blocks());
        assert_eq!(plan(&state, &held_now, &p, NOW + 4), Decision::default());
    }

    #[test]
    fn undo_takes_back_the_block_and_the_extension_only() {
        let create = DomainStep::CreateList {
            name: "n".into(),
            creator_request_id: "t".into(),
        };
        let extend = DomainStep::Extend {
            domain: d("other.example"),
            from: Some(NOW),
            to: NOW + DAY,
        };
        assert!(!create.undoable());
        assert!(block(None).undoable() && extend.undoable());
        assert_eq!(
            undo(&[block(None), extend]),
            vec![
                DomainStep::Extend {
                    domain: d("other.example"),
                    from: Some(NOW + DAY),
                    to: NOW,
                },
                DomainStep::Unblock {
                    domain: d("c2.example"),
                    why: Removal::Undone,
                    made_by: None,
                    expires_at: Some(NOW + DAY),
                },
            ]
        );
    }

    #[test]
    fn the_sweep_removes_an_expired_block_naming_its_record() {
        let step = expire(&held("c2.example", NOW - 1));
        assert_eq!(
            step,
            DomainStep::Unblock {
                domain: d("c2.example"),
                why: Removal::Expired,
                made_by: Some("r-1".into()),
                expires_at: Some(NOW - 1),
            }
        );
        assert!(!step.undoable());
    }

    #[test]
    fn steps_round_trip_through_json() {
        for s in plan(&empty(), &[], &Params::default(), NOW).steps {
            let v = serde_json::to_value(&s).unwrap();
            assert_eq!(serde_json::from_value::<DomainStep>(v).unwrap(), s);
        }
    }
}
