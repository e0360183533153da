//! The decisions: which rule numbers to use, when to extend a block instead, which block to
//! evict when the range is full, how to undo, what the sweep removes. Pure: the live ACL and
//! Reflex's own blocks on it in, steps out.

use crate::address::Cidr;
use crate::nacl::{default_range, NaclState};
use crate::params::{Params, RuleRange};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// A block extends only when it gains at least this much life. A redelivery, and the verify
/// that re-plans seconds after the fix, must find nothing to do.
pub const EXTEND_SLACK_SECONDS: i64 = 60;

/// Why a block is removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Removal {
    /// The range was full: the oldest Reflex block made room for a new one.
    Evicted,
    /// Its time was up (the scheduled sweep).
    Expired,
    /// A rollback of the record that made it.
    Undone,
}

/// One change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "op")]
pub enum BlockStep {
    /// Deny every protocol from `cidr` at `rule_number` (`CreateNetworkAclEntry`); Reflex's
    /// until `expires_at` (epoch seconds).
    Block {
        rule_number: i32,
        cidr: Cidr,
        expires_at: i64,
    },
    /// The block stands already: it is kept until `to` instead of `from`. No AWS call; the
    /// record and Reflex's entry for the block say so.
    Extend {
        rule_number: i32,
        cidr: Cidr,
        from: Option<i64>,
        to: i64,
    },
    /// Remove a block (`DeleteNetworkAclEntry`, if it is still there).
    Unblock {
        rule_number: i32,
        cidr: Cidr,
        why: Removal,
        /// The record that made the block (an eviction's or expiry's), for the audit trail.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        made_by: Option<String>,
        /// When it would have expired: what an undone eviction puts back.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expires_at: Option<i64>,
    },
}

impl BlockStep {
    pub fn cidr(&self) -> &Cidr {
        match self {
            BlockStep::Block { cidr, .. }
            | BlockStep::Extend { cidr, .. }
            | BlockStep::Unblock { cidr, .. } => cidr,
        }
    }

    pub fn rule_number(&self) -> i32 {
        match self {
            BlockStep::Block { rule_number, .. }
            | BlockStep::Extend { rule_number, .. }
            | BlockStep::Unblock { rule_number, .. } => *rule_number,
        }
    }

    /// Whether a rollback can take it back. An expired block's removal is not put back: it
    /// would only be swept again.
    pub fn undoable(&self) -> bool {
        !matches!(
            self,
            BlockStep::Unblock {
                why: Removal::Expired | Removal::Undone,
                ..
            }
        )
    }
}

/// A block Reflex holds on the ACL (its owned entry), as the planner needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub cidr: Cidr,
    pub rule_number: i32,
    pub record_id: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
}

/// What the planner decided.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Decision {
    pub steps: Vec<BlockStep>,
    /// Addresses left alone on purpose, each with why.
    pub untouched: Vec<String>,
}

/// The range Reflex's blocks take on this ACL: the policy's, or the default below the ACL's
/// lowest inbound rule that is not one of Reflex's blocks.
pub fn range(state: &NaclState, held: &[Held], params: &Params) -> Option<RuleRange> {
    if let Some(r) = params.rule_range {
        return Some(r);
    }
    let ours = |n: i32, c: &Cidr| held.iter().any(|h| h.rule_number == n && h.cidr == *c);
    let lowest = state
        .inbound
        .iter()
        .filter(|e| !ours(e.rule_number, &e.cidr))
        .map(|e| e.rule_number)
        .min()
        // No rule at all: room right below the default `*` rule.
        .unwrap_or(32767);
    default_range(lowest)
}

/// The steps that block every address in `cidrs` on this ACL, at `now` (epoch seconds).
pub fn plan(
    cidrs: &[Cidr],
    state: &NaclState,
    held: &[Held],
    params: &Params,
    now: i64,
) -> Decision {
    let mut d = Decision::default();
    let expires_at = now + params.ttl_seconds;
    let range = range(state, held, params);
    // Numbers this plan has given out, and blocks it has evicted already.
    let mut taken: BTreeSet<i32> = BTreeSet::new();
    let mut seen: BTreeSet<Cidr> = BTreeSet::new();
    for cidr in cidrs {
        if !seen.insert(*cidr) {
            continue;
        }
        // Ours, and standing: extend it if that gains anything.
        let standing = held.iter().find(|h| {
            h.cidr == *cidr && state.at(h.rule_number).is_some_and(|e| e.is_block_of(cidr))
        });
        if let Some(h) = standing {
            if h.expires_at
                .is_none_or(|at| expires_at >= at + EXTEND_SLACK_SECONDS)
            {
                d.steps.push(BlockStep::Extend {
                    rule_number: h.rule_number,
                    cidr: *cidr,
                    from: h.expires_at,
                    to: expires_at,
                });
            }
            continue;
        }
        if let Some(n) = state.denied_by(cidr.addr()) {
            d.untouched.push(format!(
                "{cidr} is denied already by inbound rule {n} of {}",
                state.nacl_id
            ));
            continue;
        }
        let Some(range) = range else {
            d.untouched.push(format!(
                "{cidr}: no rule number is free below the lowest rule of {}",
                state.nacl_id
            ));
            continue;
        };
        let free = range
            .numbers()
            .find(|n| state.at(*n).is_none() && !taken.contains(n));
        if let Some(n) = free {
            taken.insert(n);
            d.steps.push(BlockStep::Block {
                rule_number: n,
                cidr: *cidr,
                expires_at,
            });
            continue;
        }
        match oldest(held, state, range, &taken, cidrs) {
            Some(h) => {
                taken.insert(h.rule_number);
                d.steps.push(BlockStep::Unblock {
                    rule_number: h.rule_number,
                    cidr: h.cidr,
                    why: Removal::Evicted,
                    made_by: Some(h.record_id.clone()),
                    expires_at: h.expires_at,
                });
                d.steps.push(BlockStep::Block {
                    rule_number: h.rule_number,
                    cidr: *cidr,
                    expires_at,
                });
            }
            None => d.untouched.push(format!(
                "{cidr}: every rule number in {range} of {} is taken, and none by a Reflex block that could be evicted",
                state.nacl_id
            )),
        }
    }
    d
}

/// The Reflex block to evict: standing in the range, not given out by this plan already, not
/// one of the addresses this plan blocks, the first to expire (then the oldest).
fn oldest<'a>(
    held: &'a [Held],
    state: &NaclState,
    range: RuleRange,
    taken: &BTreeSet<i32>,
    cidrs: &[Cidr],
) -> Option<&'a Held> {
    held.iter()
        .filter(|h| range.contains(h.rule_number) && !taken.contains(&h.rule_number))
        .filter(|h| !cidrs.contains(&h.cidr))
        .filter(|h| {
            state
                .at(h.rule_number)
                .is_some_and(|e| e.is_block_of(&h.cidr))
        })
        .min_by_key(|h| {
            (
                h.expires_at.unwrap_or(i64::MAX),
                h.created_at,
                h.rule_number,
            )
        })
}

/// The steps that take back `applied` (the undoable steps that took effect), last first.
pub fn undo(applied: &[BlockStep]) -> Vec<BlockStep> {
    applied
        .iter()
        .rev()
        .filter_map(|step| match step {
            BlockStep::Block {
                rule_number,
                cidr,
                expires_at,
            } => Some(BlockStep::Unblock {
                rule_number: *rule_number,
                cidr: *cidr,
                why: Removal::Undone,
                made_by: None,
                expires_at: Some(*expires_at),
            }),
            BlockStep::Extend {
                rule_number,
                cidr,
                from: Some(from),
                to,
            } => Some(BlockStep::Extend {
                rule_number: *rule_number,
                cidr: *cidr,
                from: Some(*to),
                to: *from,
            }),
            BlockStep::Extend { from: None, .. } => None,
            BlockStep::Unblock {
                rule_number,
                cidr,
                why: Removal::Evicted,
                expires_at: Some(expires_at),
                ..
            } => Some(BlockStep::Block {
                rule_number: *rule_number,
                cidr: *cidr,
                expires_at: *expires_at,
            }),
            BlockStep::Unblock { .. } => None,
        })
        .collect()
}

/// What the sweep does with an expired block.
pub fn expire(held: &Held) -> BlockStep {
    BlockStep::Unblock {
        rule_number: held.rule_number,
        cidr: held.cidr,
        why: Removal::Expired,
        made_by: Some(held.record_id.clone()),
        expires_at: held.expires_at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nacl::Entry;

    const NOW: i64 = 1_800_000_000;
    const DAY: i64 = 86_400;

    fn c(s: &str) -> Cidr {
        s.parse().unwrap()
    }

    fn allow_all(n: i32) -> Entry {
        Entry {
            rule_number: n,
            allow: true,
            protocol: "-1".into(),
            cidr: c("0.0.0.0/0"),
            ports: None,
        }
    }

    fn deny_all() -> Entry {
        Entry {
            allow: false,
            ..allow_all(32767)
        }
    }

    /// A default ACL (allow all at 100, `*` deny), plus `blocks`.
    fn acl(blocks: &[(i32, &str)]) -> NaclState {
        let mut e = vec![allow_all(100), deny_all()];
        e.extend(blocks.iter().map(|(n, s)| Entry::block(*n, c(s))));
        NaclState::new("acl-1".into(), vec![], e)
    }

    fn held(n: i32, cidr: &str, record: &str, expires_at: i64) -> Held {
        Held {
            cidr: c(cidr),
            rule_number: n,
            record_id: record.into(),
            created_at: expires_at - DAY,
            expires_at: Some(expires_at),
        }
    }

    fn params(range: Option<(i32, i32)>) -> Params {
        Params {
            rule_range: range.map(|(first, last)| RuleRange { first, last }),
            ..Params::default()
        }
    }

    fn block(n: i32, cidr: &str) -> BlockStep {
        BlockStep::Block {
            rule_number: n,
            cidr: c(cidr),
            expires_at: NOW + DAY,
        }
    }

    fn evict(n: i32, cidr: &str, record: &str, expires_at: i64) -> BlockStep {
        BlockStep::Unblock {
            rule_number: n,
            cidr: c(cidr),
            why: Removal::Evicted,
            made_by: Some(record.into()),
            expires_at: Some(expires_at),
        }
    }

    struct Case {
        name: &'static str,
        cidrs: Vec<&'static str>,
        state: NaclState,
        held: Vec<Held>,
        params: Params,
        steps: Vec<BlockStep>,
        untouched: usize,
    }

    #[test]
    fn planning_table() {
        let cases = vec![
            Case {
                name: "a default ACL: the lowest number below its allow rule",
                cidrs: vec!["1.2.3.4/32"],
                state: acl(&[]),
                held: vec![],
                params: params(None),
                steps: vec![block(80, "1.2.3.4/32")],
                untouched: 0,
            },
            Case {
                name: "IPv6 alike",
                cidrs: vec!["2600:1f18::7/128"],
                state: acl(&[]),
                held: vec![],
                params: params(None),
                steps: vec![block(80, "2600:1f18::7/128")],
                untouched: 0,
            },
            Case {
                name: "several addresses (port probes): one number each",
                cidrs: vec!["1.2.3.4/32", "5.6.7.8/32", "1.2.3.4/32"],
                state: acl(&[]),
                held: vec![],
                params: params(None),
                steps: vec![block(80, "1.2.3.4/32"), block(81, "5.6.7.8/32")],
                untouched: 0,
            },
            Case {
                name: "Reflex's own blocks do not move the default range",
                cidrs: vec!["1.2.3.4/32"],
                state: acl(&[(80, "9.9.9.9/32")]),
                held: vec![held(80, "9.9.9.9/32", "r-old", NOW + 100)],
                params: params(None),
                steps: vec![block(81, "1.2.3.4/32")],
                untouched: 0,
            },
            Case {
                name: "someone else's rule at 90 moves the range to 70–89",
                cidrs: vec!["1.2.3.4/32"],
                state: acl(&[(90, "9.9.9.9/32")]),
                held: vec![],
                params: params(None),
                steps: vec![block(70, "1.2.3.4/32")],
                untouched: 0,
            },
            Case {
                name: "the policy's range",
                cidrs: vec!["1.2.3.4/32"],
                state: acl(&[]),
                held: vec![],
                params: params(Some((10, 11))),
                steps: vec![block(10, "1.2.3.4/32")],
                untouched: 0,
            },
            Case {
                name: "ours and standing: extended",
                cidrs: vec!["1.2.3.4/32"],
                state: acl(&[(80, "1.2.3.4/32")]),
                held: vec![held(80, "1.2.3.4/32", "r-1", NOW + 3600)],
                params: params(None),
                steps: vec![BlockStep::Extend {
                    rule_number: 80,
                    cidr: c("1.2.3.4/32"),
                    from: Some(NOW + 3600),
                    to: NOW + DAY,
                }],
                untouched: 0,
            },
            Case {
                name: "ours and just made (verify, a redelivery): nothing",
                cidrs: vec!["1.2.3.4/32"],
                state: acl(&[(80, "1.2.3.4/32")]),
                held: vec![held(80, "1.2.3.4/32", "r-1", NOW + DAY - 5)],
                params: params(None),
                steps: vec![],
                untouched: 0,
            },
            Case {
                name: "ours on record but gone from the ACL: blocked again",
                cidrs: vec!["1.2.3.4/32"],
                state: acl(&[]),
                held: vec![held(85, "1.2.3.4/32", "r-1", NOW + 3600)],
                params: params(None),
                steps: vec![block(80, "1.2.3.4/32")],
                untouched: 0,
            },
            Case {
                name: "denied already by someone else's rule: left alone",
                cidrs: vec!["1.2.3.4/32"],
                state: acl(&[(50, "1.2.0.0/16")]),
                held: vec![],
                params: params(None),
                steps: vec![],
                untouched: 1,
            },
            Case {
                name: "range full of Reflex blocks: the first to expire is evicted",
                cidrs: vec!["1.2.3.4/32"],
                state: acl(&[(10, "9.9.9.1/32"), (11, "9.9.9.2/32")]),
                held: vec![
                    held(10, "9.9.9.1/32", "r-new", NOW + 500),
                    held(11, "9.9.9.2/32", "r-old", NOW + 100),
                ],
                params: params(Some((10, 11))),
                steps: vec![
                    evict(11, "9.9.9.2/32", "r-old", NOW + 100),
                    block(11, "1.2.3.4/32"),
                ],
                untouched: 0,
            },
            Case {
                name: "two addresses into a full range: two evictions, oldest first",
                cidrs: vec!["1.2.3.4/32", "5.6.7.8/32"],
                state: acl(&[(10, "9.9.9.1/32"), (11, "9.9.9.2/32")]),
                held: vec![
                    held(10, "9.9.9.1/32", "r-a", NOW + 500),
                    held(11, "9.9.9.2/32", "r-b", NOW + 100),
                ],
                params: params(Some((10, 11))),
                steps: vec![
                    evict(11, "9.9.9.2/32", "r-b", NOW + 100),
                    block(11, "1.2.3.4/32"),
                    evict(10, "9.9.9.1/32", "r-a", NOW + 500),
                    block(10, "5.6.7.8/32"),
                ],
                untouched: 0,
            },
            Case {
                name: "a free number beats an eviction",
                cidrs: vec!["1.2.3.4/32"],
                state: acl(&[(10, "9.9.9.1/32")]),
                held: vec![held(10, "9.9.9.1/32", "r-a", NOW + 1)],
                params: params(Some((10, 11))),
                steps: vec![block(11, "1.2.3.4/32")],
                untouched: 0,
            },
            Case {
                name: "a range full of someone else's entries: nothing to evict",
                cidrs: vec!["1.2.3.4/32"],
                state: acl(&[(10, "9.9.9.1/32")]),
                held: vec![],
                params: params(Some((10, 10))),
                steps: vec![],
                untouched: 1,
            },
            Case {
                name: "no room below rule 1",
                cidrs: vec!["1.2.3.4/32"],
                state: NaclState::new("acl-1".into(), vec![], vec![allow_all(1)]),
                held: vec![],
                params: params(None),
                steps: vec![],
                untouched: 1,
            },
        ];
        for case in cases {
            let cidrs: Vec<Cidr> = case.cidrs.iter().map(|s| c(s)).collect();
            let d = plan(&cidrs, &case.state, &case.held, &case.params, NOW);
            assert_eq!(d.steps, case.steps, "{}", case.name);
            assert_eq!(
                d.untouched.len(),
                case.untouched,
                "{}: {:?}",
                case.name,
                d.untouched
            );
        }
    }

    #[test]
    fn a_plan_applied_plans_nothing_more() {
        // Apply each plan to the ACL and Reflex's entries as the pipeline would, then plan again.
        let cidrs = vec![c("1.2.3.4/32"), c("5.6.7.8/32")];
        let mut state = acl(&[(10, "9.9.9.1/32")]);
        let mut held = vec![held(10, "9.9.9.1/32", "r-a", NOW + 5)];
        let p = params(Some((10, 11)));
        let d = plan(&cidrs, &state, &held, &p, NOW);
        assert!(!d.steps.is_empty());
        for step in &d.steps {
            match step {
                BlockStep::Block {
                    rule_number,
                    cidr,
                    expires_at,
                } => {
                    state.inbound.push(Entry::block(*rule_number, *cidr));
                    held.push(Held {
                        cidr: *cidr,
                        rule_number: *rule_number,
                        record_id: "r-now".into(),
                        created_at: NOW,
                        expires_at: Some(*expires_at),
                    });
                }
                BlockStep::Unblock {
                    rule_number, cidr, ..
                } => {
                    state.inbound.retain(|e| e.rule_number != *rule_number);
                    held.retain(|h| h.cidr != *cidr);
                }
                BlockStep::Extend { .. } => unreachable!(),
            }
        }
        state = NaclState::new(state.nacl_id, state.cidrs, state.inbound);
        let again = plan(&cidrs, &state, &held, &p, NOW + 4);
        assert_eq!(again, Decision::default());
    }

    #[test]
    fn undo_takes_back_what_took_effect_last_first() {
        let extend = BlockStep::Extend {
            rule_number: 80,
            cidr: c("1.2.3.4/32"),
            from: Some(NOW),
            to: NOW + DAY,
        };
        let applied = vec![
            evict(11, "9.9.9.2/32", "r-old", NOW + 100),
            block(11, "1.2.3.4/32"),
            extend,
        ];
        assert_eq!(
            undo(&applied),
            vec![
                BlockStep::Extend {
                    rule_number: 80,
                    cidr: c("1.2.3.4/32"),
                    from: Some(NOW + DAY),
                    to: NOW,
                },
                BlockStep::Unblock {
                    rule_number: 11,
                    cidr: c("1.2.3.4/32"),
                    why: Removal::Undone,
                    made_by: None,
                    expires_at: Some(NOW + DAY),
                },
                block_at(11, "9.9.9.2/32", NOW + 100),
            ]
        );
    }

    fn block_at(n: i32, cidr: &str, expires_at: i64) -> BlockStep {
        BlockStep::Block {
            rule_number: n,
            cidr: c(cidr),
            expires_at,
        }
    }

    #[test]
    fn the_sweep_removes_an_expired_block_naming_its_record() {
        let h = held(80, "1.2.3.4/32", "r-1", NOW - 1);
        let step = expire(&h);
        assert_eq!(
            step,
            BlockStep::Unblock {
                rule_number: 80,
                cidr: c("1.2.3.4/32"),
                why: Removal::Expired,
                made_by: Some("r-1".into()),
                expires_at: Some(NOW - 1),
            }
        );
        assert!(!step.undoable());
        assert!(block(80, "1.2.3.4/32").undoable());
        assert!(evict(80, "1.2.3.4/32", "r", NOW).undoable());
    }

    #[test]
    fn steps_round_trip_through_json() {
        let steps = vec![
            block(80, "1.2.3.4/32"),
            evict(81, "2600::1/128", "r-1", NOW),
            BlockStep::Extend {
                rule_number: 82,
                cidr: c("5.6.7.8/32"),
                from: None,
                to: NOW,
            },
        ];
        for s in steps {
            let v = serde_json::to_value(&s).unwrap();
            assert!(v["op"].is_string(), "{v}");
            assert_eq!(serde_json::from_value::<BlockStep>(v).unwrap(), s);
        }
    }
}
