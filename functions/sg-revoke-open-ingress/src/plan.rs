//! The decisions: which rules go, what part of a wide rule is authorized again, how to undo.
//! Pure: the live group and the offending ports in, steps out.
//!
//! **A rule wider than the offending ports** (a range such as 0–65535, or protocol `-1`) is
//! revoked only for what it opens on offending ports: its allowed part (the TCP and UDP ports
//! of its range that are not offending, same CIDR, same description) is authorized first, then
//! the rule is revoked — in that order, so what stays allowed is never closed, not even for a
//! moment. The record shows both, and the revoke step names the parts kept. Two limits, each
//! written on the revoke step:
//! - protocol `-1` also opens ICMP and every other IP protocol; a rule cannot say "every
//!   protocol but TCP port 22", so only its TCP and UDP parts are kept;
//! - an allowed part of more than [`MAX_PARTS`] ranges (AWS allows 60 inbound rules per group by
//!   default) is not kept: the rule is revoked whole.

use crate::offending::Offending;
use crate::rules::{GroupState, Rule};
use serde::{Deserialize, Serialize};

/// The most ranges Reflex authorizes to keep the allowed part of one rule.
pub const MAX_PARTS: usize = 12;

/// One change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "op", try_from = "StepRead")]
pub enum SgStep {
    /// One `RevokeSecurityGroupIngress` of these rules, by their rule ids (one call, one
    /// round: AWS revokes them all or none); each rule's content is kept here, for the record
    /// and for rollback.
    Revoke { rules: Vec<Revoked> },
    /// `AuthorizeSecurityGroupIngress` of this rule (a kept part, or a revoked rule put back).
    Authorize { rule: Rule },
}

/// A step as records hold it: today's shape, or a revoke of one rule as records made before
/// revokes were batched hold it (`rule`, `kept`, `also_closed`), so their rollbacks and
/// approvals still read them.
#[derive(Deserialize)]
#[serde(rename_all = "kebab-case", tag = "op")]
enum StepRead {
    Revoke {
        #[serde(default)]
        rules: Option<Vec<Revoked>>,
        #[serde(default)]
        rule: Option<Rule>,
        #[serde(default)]
        kept: Vec<Rule>,
        #[serde(default)]
        also_closed: Option<String>,
    },
    Authorize {
        rule: Rule,
    },
}

impl TryFrom<StepRead> for SgStep {
    type Error = String;

    fn try_from(read: StepRead) -> Result<SgStep, String> {
        match read {
            // Today's shape carries `kept` and `also_closed` per rule: the old shape's fields
            // beside `rules` would be dropped unread, so such a step is refused, as is a
            // revoke of nothing (no plan makes one).
            StepRead::Revoke {
                rules: Some(rules),
                rule: None,
                kept,
                also_closed: None,
            } if kept.is_empty() && !rules.is_empty() => Ok(SgStep::Revoke { rules }),
            StepRead::Revoke {
                rules: None,
                rule: Some(rule),
                kept,
                also_closed,
            } => Ok(SgStep::Revoke {
                rules: vec![Revoked {
                    rule,
                    kept,
                    also_closed,
                }],
            }),
            StepRead::Revoke { .. } => Err(
                "a revoke step names either `rules` (at least one, each with its own `kept` \
                 and `also_closed`) or one `rule`"
                    .to_string(),
            ),
            StepRead::Authorize { rule } => Ok(SgStep::Authorize { rule }),
        }
    }
}

/// A rule a revoke takes away.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revoked {
    pub rule: Rule,
    /// The parts of the rule authorized before the revoke, to stay open.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kept: Vec<Rule>,
    /// What the rule opened that is closed though no trigger asked for it, and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub also_closed: Option<String>,
}

impl Revoked {
    /// A rule revoked with nothing kept and nothing else closed (a kept part taken back).
    pub fn plain(rule: Rule) -> Revoked {
        Revoked {
            rule,
            kept: Vec::new(),
            also_closed: None,
        }
    }
}

/// The steps for the group's state: for each world-open rule on an offending port, its
/// allowed part authorized; then every such rule revoked, in one call; and the world-open rules
/// left alone, each with why.
pub fn plan(state: &GroupState, offending: &Offending) -> (Vec<SgStep>, Vec<String>) {
    let mut steps = Vec::new();
    let mut revoked = Vec::new();
    let mut untouched = Vec::new();
    // Parts planned so far, so two wide rules never authorize the same part twice.
    let mut planned: Vec<Rule> = Vec::new();
    for rule in &state.ingress {
        if !offending.hits(rule) {
            if rule.is_world() && rule.tcp().is_empty() && rule.udp().is_empty() {
                untouched.push(format!(
                    "{rule}: not TCP or UDP, and the trigger names TCP/UDP ports only"
                ));
            }
            continue;
        }
        let mut parts: Vec<Rule> = Vec::new();
        for (protocol, open, bad) in [
            ("tcp", rule.tcp(), &offending.tcp),
            ("udp", rule.udp(), &offending.udp),
        ] {
            for range in open.minus(bad).ranges() {
                parts.push(rule.part(protocol, *range));
            }
        }
        let mut also_closed = (rule.protocol == "-1").then(|| {
            "ICMP and every IP protocol other than TCP and UDP: a rule cannot express \
             'every protocol but the offending ports', so only TCP and UDP parts are kept"
                .to_string()
        });
        if parts.len() > MAX_PARTS {
            also_closed = Some(format!(
                "the allowed part is {} port ranges, more than the {MAX_PARTS} Reflex authorizes \
                 for one rule: the rule is revoked whole",
                parts.len()
            ));
            parts.clear();
        }
        for part in &parts {
            let present = state.ingress.iter().any(|r| r.same_permission(part))
                || planned.iter().any(|r| r.same_permission(part));
            if !present {
                planned.push(part.clone());
                steps.push(SgStep::Authorize { rule: part.clone() });
            }
        }
        revoked.push(Revoked {
            rule: rule.clone(),
            kept: parts,
            also_closed,
        });
    }
    if !revoked.is_empty() {
        steps.push(SgStep::Revoke { rules: revoked });
    }
    (steps, untouched)
}

/// The steps that take back what took effect, last first: a revoked rule authorized again
/// (it gets a new id), a kept part revoked by the id AWS gave it. A kept part whose id is not
/// known is not revoked: the revoked rule put back covers it anyway.
pub fn undo(applied: &[(SgStep, Option<String>)]) -> Vec<SgStep> {
    let mut out = Vec::new();
    // Put every revoked rule back before any kept part goes: nothing allowed is ever closed.
    for (step, _) in applied.iter().rev() {
        if let SgStep::Revoke { rules } = step {
            for revoked in rules.iter().rev() {
                out.push(SgStep::Authorize {
                    rule: revoked.rule.content(),
                });
            }
        }
    }
    // Then the kept parts, in one revoke.
    let kept: Vec<Revoked> = applied
        .iter()
        .rev()
        .filter_map(|(step, created)| match (step, created) {
            (SgStep::Authorize { rule }, Some(id)) => Some(Revoked::plain(Rule {
                id: id.clone(),
                ..rule.clone()
            })),
            _ => None,
        })
        .collect();
    if !kept.is_empty() {
        out.push(SgStep::Revoke { rules: kept });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::offending::{offending, Evaluated};
    use crate::params::Params;
    use crate::rules::Source;
    use reflex_shared::finding::FindingKind;
    use std::collections::BTreeMap;

    fn r(id: &str, protocol: &str, from: i32, to: i32, source: &str) -> Rule {
        let source = if let Some(g) = source.strip_prefix("sg-") {
            Source::Group {
                group_id: format!("sg-{g}"),
                user_id: None,
            }
        } else if source.contains(':') {
            Source::Ipv6 {
                cidr: source.into(),
            }
        } else {
            Source::Ipv4 {
                cidr: source.into(),
            }
        };
        Rule {
            id: id.into(),
            protocol: protocol.into(),
            from_port: from,
            to_port: to,
            source,
            description: Some(format!("{id} says why")),
        }
    }

    fn part(of: &Rule, protocol: &str, from: i32, to: i32) -> Rule {
        Rule {
            id: String::new(),
            protocol: protocol.into(),
            from_port: from,
            to_port: to,
            ..of.clone()
        }
    }

    fn state(rules: Vec<Rule>) -> GroupState {
        GroupState::new("sg-1".into(), rules)
    }

    fn ec2_13() -> Offending {
        offending(
            &FindingKind::Control("EC2.13".into()),
            &Evaluated::default(),
            &Params::default(),
        )
        .unwrap()
    }

    fn ec2_18(tcp: &[&str]) -> Offending {
        let cp = BTreeMap::from([(
            "authorizedTcpPorts".to_string(),
            tcp.iter().map(|s| s.to_string()).collect(),
        )]);
        offending(
            &FindingKind::Control("EC2.18".into()),
            &Evaluated {
                control_parameters: Some(&cp),
                rule_parameters: None,
            },
            &Params::default(),
        )
        .unwrap()
    }

    fn revoke(rules: &[&Rule]) -> SgStep {
        SgStep::Revoke {
            rules: rules.iter().map(|r| Revoked::plain((*r).clone())).collect(),
        }
    }

    /// The issue's group: two world-open port-22 rules among rules that stay.
    fn the_issues_group() -> (GroupState, Rule, Rule) {
        let ssh4 = r("sgr-a", "tcp", 22, 22, "0.0.0.0/0");
        let ssh6 = r("sgr-d", "tcp", 22, 22, "::/0");
        let s = state(vec![
            ssh4.clone(),
            r("sgr-b", "tcp", 22, 22, "10.0.0.0/8"),
            r("sgr-c", "tcp", 443, 443, "0.0.0.0/0"),
            ssh6.clone(),
            r("sgr-e", "-1", -1, -1, "sg-peer"),
        ]);
        (s, ssh4, ssh6)
    }

    #[test]
    fn only_the_world_open_port_22_rules_go_under_ec2_13() {
        let (s, ssh4, ssh6) = the_issues_group();
        let (steps, untouched) = plan(&s, &ec2_13());
        // Both in one call.
        assert_eq!(steps, vec![revoke(&[&ssh4, &ssh6])]);
        assert!(untouched.is_empty());
    }

    #[test]
    fn planning_table() {
        let all_tcp = r("sgr-w", "tcp", 0, 65535, "0.0.0.0/0");
        let everything = r("sgr-x", "-1", -1, -1, "0.0.0.0/0");
        let everything6 = r("sgr-y", "-1", -1, -1, "::/0");
        let web = r("sgr-h", "tcp", 443, 443, "0.0.0.0/0");
        let icmp = r("sgr-i", "icmp", -1, -1, "0.0.0.0/0");
        let ssh_range = r("sgr-s", "tcp", 20, 25, "0.0.0.0/0");
        struct Case {
            name: &'static str,
            state: GroupState,
            offending: Offending,
            steps: Vec<SgStep>,
            untouched: usize,
        }
        let cases = vec![
            Case {
                name: "nothing world-open on 22: compliant",
                state: state(vec![r("sgr-b", "tcp", 22, 22, "10.0.0.0/8"), web.clone()]),
                offending: ec2_13(),
                steps: vec![],
                untouched: 0,
            },
            Case {
                name: "a range covering 22 keeps its allowed part, authorized first",
                state: state(vec![ssh_range.clone()]),
                offending: ec2_13(),
                steps: vec![
                    SgStep::Authorize {
                        rule: part(&ssh_range, "tcp", 20, 21),
                    },
                    SgStep::Authorize {
                        rule: part(&ssh_range, "tcp", 23, 25),
                    },
                    SgStep::Revoke {
                        rules: vec![Revoked {
                            rule: ssh_range.clone(),
                            kept: vec![
                                part(&ssh_range, "tcp", 20, 21),
                                part(&ssh_range, "tcp", 23, 25),
                            ],
                            also_closed: None,
                        }],
                    },
                ],
                untouched: 0,
            },
            Case {
                name: "EC2.18 authorizing 80 and 443: a 0-65535 rule keeps exactly those",
                state: state(vec![all_tcp.clone(), web.clone()]),
                offending: ec2_18(&["80", "443"]),
                steps: vec![
                    // 443 from the world exists already (sgr-h): only 80 is authorized.
                    SgStep::Authorize {
                        rule: part(&all_tcp, "tcp", 80, 80),
                    },
                    SgStep::Revoke {
                        rules: vec![Revoked {
                            rule: all_tcp.clone(),
                            kept: vec![
                                part(&all_tcp, "tcp", 80, 80),
                                part(&all_tcp, "tcp", 443, 443),
                            ],
                            also_closed: None,
                        }],
                    },
                ],
                untouched: 0,
            },
            Case {
                name: "EC2.18: the authorized port alone is left",
                state: state(vec![web.clone()]),
                offending: ec2_18(&["80", "443"]),
                steps: vec![],
                untouched: 0,
            },
            Case {
                name: "all traffic from the world under EC2.13: TCP and UDP kept, the rest closed",
                state: state(vec![everything.clone()]),
                offending: ec2_13(),
                steps: vec![
                    SgStep::Authorize {
                        rule: part(&everything, "tcp", 0, 21),
                    },
                    SgStep::Authorize {
                        rule: part(&everything, "tcp", 23, 65535),
                    },
                    SgStep::Authorize {
                        rule: part(&everything, "udp", 0, 65535),
                    },
                    SgStep::Revoke {
                        rules: vec![Revoked {
                            rule: everything.clone(),
                            kept: vec![
                                part(&everything, "tcp", 0, 21),
                                part(&everything, "tcp", 23, 65535),
                                part(&everything, "udp", 0, 65535),
                            ],
                            also_closed: Some("ICMP".into()),
                        }],
                    },
                ],
                untouched: 0,
            },
            Case {
                name: "two wide rules of one source never authorize one part twice",
                state: state(vec![all_tcp.clone(), everything.clone()]),
                offending: ec2_18(&["443"]),
                // Rules are taken in content order: protocol `-1` before `tcp`.
                steps: vec![
                    SgStep::Authorize {
                        rule: part(&everything, "tcp", 443, 443),
                    },
                    SgStep::Revoke {
                        rules: vec![
                            Revoked {
                                rule: everything.clone(),
                                kept: vec![part(&everything, "tcp", 443, 443)],
                                also_closed: Some("ICMP".into()),
                            },
                            Revoked {
                                rule: all_tcp.clone(),
                                kept: vec![part(&all_tcp, "tcp", 443, 443)],
                                also_closed: None,
                            },
                        ],
                    },
                ],
                untouched: 0,
            },
            Case {
                name: "IPv6 alike; ICMP from the world is named, not touched",
                state: state(vec![everything6.clone(), icmp.clone()]),
                offending: ec2_18(&[]),
                steps: vec![SgStep::Revoke {
                    rules: vec![Revoked {
                        rule: everything6.clone(),
                        kept: vec![],
                        also_closed: Some("ICMP".into()),
                    }],
                }],
                untouched: 1,
            },
            Case {
                name: "EC2.19 on all traffic: too many parts, revoked whole",
                state: state(vec![everything.clone()]),
                offending: offending(
                    &FindingKind::Control("EC2.19".into()),
                    &Evaluated::default(),
                    &Params::default(),
                )
                .unwrap(),
                steps: vec![SgStep::Revoke {
                    rules: vec![Revoked {
                        rule: everything.clone(),
                        kept: vec![],
                        also_closed: Some("revoked whole".into()),
                    }],
                }],
                untouched: 0,
            },
        ];
        for c in cases {
            let (steps, untouched) = plan(&c.state, &c.offending);
            // `also_closed` is compared by a word of it.
            let strip = |steps: &[SgStep]| -> Vec<SgStep> {
                steps
                    .iter()
                    .map(|s| match s {
                        SgStep::Revoke { rules } => SgStep::Revoke {
                            rules: rules
                                .iter()
                                .map(|r| Revoked {
                                    also_closed: r.also_closed.as_ref().map(|_| String::new()),
                                    ..r.clone()
                                })
                                .collect(),
                        },
                        other => other.clone(),
                    })
                    .collect()
            };
            assert_eq!(strip(&steps), strip(&c.steps), "{}", c.name);
            let revoked = |steps: &[SgStep]| -> Vec<Revoked> {
                steps
                    .iter()
                    .flat_map(|s| match s {
                        SgStep::Revoke { rules } => rules.clone(),
                        SgStep::Authorize { .. } => Vec::new(),
                    })
                    .collect()
            };
            for (got, want) in revoked(&steps).iter().zip(&revoked(&c.steps)) {
                if let (Some(got), Some(word)) = (&got.also_closed, &want.also_closed) {
                    assert!(got.contains(word.as_str()), "{}: {got}", c.name);
                }
            }
            assert_eq!(untouched.len(), c.untouched, "{}: {untouched:?}", c.name);
        }
    }

    /// The state a plan leaves: kept parts added (with ids), revoked rules gone.
    fn applied_to(
        s: &GroupState,
        steps: &[SgStep],
        ids: &str,
    ) -> (GroupState, Vec<(SgStep, Option<String>)>) {
        let mut rules = s.ingress.clone();
        let mut applied = Vec::new();
        for (i, step) in steps.iter().enumerate() {
            match step {
                SgStep::Authorize { rule } => {
                    let id = format!("sgr-{ids}{i}");
                    rules.push(Rule {
                        id: id.clone(),
                        ..rule.clone()
                    });
                    applied.push((step.clone(), Some(id)));
                }
                SgStep::Revoke { rules: gone } => {
                    rules.retain(|r| gone.iter().all(|g| g.rule.id != r.id));
                    applied.push((step.clone(), None));
                }
            }
        }
        (state(rules), applied)
    }

    #[test]
    fn a_plan_applied_plans_nothing_more_and_its_undo_restores_the_rules() {
        let (issue, _, _) = the_issues_group();
        let wide = state(vec![
            r("sgr-w", "tcp", 0, 65535, "0.0.0.0/0"),
            r("sgr-x", "-1", -1, -1, "::/0"),
            r("sgr-c", "tcp", 443, 443, "0.0.0.0/0"),
        ]);
        for (s, o) in [
            (issue.clone(), ec2_13()),
            (issue, ec2_18(&["80", "443"])),
            (wide.clone(), ec2_13()),
            (wide, ec2_18(&["80", "443"])),
        ] {
            let (steps, _) = plan(&s, &o);
            assert!(!steps.is_empty());
            let (after, applied) = applied_to(&s, &steps, "fix");
            assert!(plan(&after, &o).0.is_empty(), "{after:?}");
            let back = undo(&applied);
            // Every revoked rule is authorized again before any kept part is revoked.
            let first_revoke = back
                .iter()
                .position(|s| matches!(s, SgStep::Revoke { .. }))
                .unwrap_or(back.len());
            assert!(back[first_revoke..]
                .iter()
                .all(|s| matches!(s, SgStep::Revoke { .. })));
            let (restored, _) = applied_to(&after, &back, "undo");
            assert!(restored.same_rules(&s), "{restored:?}\n{s:?}");
        }
    }

    /// A record made before revokes were batched holds one rule per revoke step: it still
    /// reads (for its rollback and its approval), as a revoke of that one rule.
    #[test]
    fn a_revoke_step_of_the_old_shape_still_reads() {
        let (_, ssh4, _) = the_issues_group();
        let old = serde_json::json!({
            "op": "revoke",
            "rule": serde_json::to_value(&ssh4).unwrap(),
            "also_closed": "why",
        });
        assert_eq!(
            serde_json::from_value::<SgStep>(old).unwrap(),
            SgStep::Revoke {
                rules: vec![Revoked {
                    rule: ssh4.clone(),
                    kept: vec![],
                    also_closed: Some("why".into()),
                }],
            }
        );
        let rule = serde_json::to_value(&ssh4).unwrap();
        let revoked = serde_json::json!([{ "rule": rule }]);
        // Steps that would lose what they say, or say nothing: refused, never read in part.
        for (case, step) in [
            (
                "both shapes",
                serde_json::json!({"op": "revoke", "rule": rule, "rules": revoked}),
            ),
            (
                "both shapes, no rules",
                serde_json::json!({"op": "revoke", "rule": rule, "rules": []}),
            ),
            (
                "old kept beside rules",
                serde_json::json!({"op": "revoke", "rules": revoked, "kept": [rule]}),
            ),
            (
                "old also_closed beside rules",
                serde_json::json!({"op": "revoke", "rules": revoked, "also_closed": "why"}),
            ),
            (
                "a revoke of nothing",
                serde_json::json!({"op": "revoke", "rules": []}),
            ),
            ("neither shape", serde_json::json!({"op": "revoke"})),
        ] {
            assert!(
                serde_json::from_value::<SgStep>(step.clone()).is_err(),
                "{case}: {step}"
            );
        }
        assert_eq!(
            serde_json::from_value::<SgStep>(serde_json::json!({"op": "revoke", "rules": revoked}))
                .unwrap(),
            SgStep::Revoke {
                rules: vec![Revoked::plain(ssh4.clone())]
            },
            "today's shape reads"
        );
    }

    #[test]
    fn steps_round_trip_through_json() {
        let (s, _, _) = the_issues_group();
        let (steps, _) = plan(&s, &ec2_18(&["80"]));
        let json = serde_json::to_value(&steps).unwrap();
        assert_eq!(serde_json::from_value::<Vec<SgStep>>(json).unwrap(), steps);
    }
}
