//! The decisions: which keys to set inactive, and how to undo it. Pure: the rule, the live keys
//! and the time in, steps out.

use crate::keys::{Key, KeyStatus, KeysState};
use crate::target::{Rule, ROTATION_CONTROL, UNUSED_CONTROL};
use chrono::{DateTime, Utc};
use reflex_shared::remediation::Plan;
use serde::{Deserialize, Serialize};

/// One change: one key's status (`UpdateAccessKey`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "op")]
pub enum KeyStep {
    /// Set the key inactive, saying why.
    Deactivate {
        user_name: String,
        access_key_id: String,
        why: String,
    },
    /// Set the key active again (a rollback).
    Reactivate {
        user_name: String,
        access_key_id: String,
    },
}

impl KeyStep {
    pub fn access_key_id(&self) -> &str {
        match self {
            KeyStep::Deactivate { access_key_id, .. }
            | KeyStep::Reactivate { access_key_id, .. } => access_key_id,
        }
    }

    pub fn user_name(&self) -> &str {
        match self {
            KeyStep::Deactivate { user_name, .. } | KeyStep::Reactivate { user_name, .. } => {
                user_name
            }
        }
    }

    /// The status the step sets.
    pub fn status(&self) -> KeyStatus {
        match self {
            KeyStep::Deactivate { .. } => KeyStatus::Inactive,
            KeyStep::Reactivate { .. } => KeyStatus::Active,
        }
    }
}

const DAY: i64 = 86_400;

/// The keys of `user` that `rule` sets inactive, given the live keys at `now`.
pub fn plan(rule: &Rule, user: &str, state: &KeysState, now: DateTime<Utc>) -> Plan<KeyStep> {
    let deactivate = |k: &Key, why: String| KeyStep::Deactivate {
        user_name: user.to_string(),
        access_key_id: k.access_key_id.clone(),
        why,
    };
    let active = state.keys.iter().filter(|k| k.status == KeyStatus::Active);
    match rule {
        Rule::Named { access_key_id } => Plan::of(
            active
                .filter(|k| &k.access_key_id == access_key_id)
                .map(|k| deactivate(k, "named by the threat finding".into()))
                .collect(),
        ),
        Rule::Rotation { max_age_days } => {
            let mut plan = Plan::of(Vec::new());
            for k in active {
                match k.created_at {
                    Some(created) if older(now, created, *max_age_days) => plan.steps.push(
                        deactivate(
                            k,
                            format!(
                                "created {}, {} days ago: older than {ROTATION_CONTROL}'s {max_age_days} days",
                                created.format("%Y-%m-%d"),
                                (now - created).num_days()
                            ),
                        ),
                    ),
                    Some(_) => {}
                    None => plan.untouched.push(format!(
                        "{}: IAM gave no creation date, so its age is unknown",
                        k.access_key_id
                    )),
                }
            }
            plan
        }
        Rule::Unused { max_unused_days } => {
            let mut plan = Plan::of(Vec::new());
            for k in active {
                // Never used: unused since it was created (how the control judges it too).
                let since = match (k.last_used_at, k.created_at) {
                    (Some(used), _) => Some((used, "last used")),
                    (None, Some(created)) => Some((created, "never used; created")),
                    (None, None) => None,
                };
                match since {
                    Some((at, what)) if older(now, at, *max_unused_days) => {
                        plan.steps.push(deactivate(
                            k,
                            format!(
                                "{what} {}, {} days ago: unused for more than {UNUSED_CONTROL}'s {max_unused_days} days",
                                at.format("%Y-%m-%d"),
                                (now - at).num_days()
                            ),
                        ))
                    }
                    Some(_) => {}
                    None => plan.untouched.push(format!(
                        "{}: IAM gave neither a last-used nor a creation date",
                        k.access_key_id
                    )),
                }
            }
            // IAM.8 judges the console password too; this function changes keys only.
            plan.untouched.push(format!(
                "{user}'s console password, which {UNUSED_CONTROL} also judges: this function \
                 disables access keys only"
            ));
            plan
        }
    }
}

/// More than `days` whole days between `at` and `now`.
fn older(now: DateTime<Utc>, at: DateTime<Utc>, days: u32) -> bool {
    (now - at).num_seconds() > i64::from(days) * DAY
}

/// The steps that undo the deactivations that took effect: each of those keys, and only those,
/// active again.
pub fn undo(applied: &[KeyStep]) -> Vec<KeyStep> {
    applied
        .iter()
        .filter_map(|s| match s {
            KeyStep::Deactivate {
                user_name,
                access_key_id,
                ..
            } => Some(KeyStep::Reactivate {
                user_name: user_name.clone(),
                access_key_id: access_key_id.clone(),
            }),
            KeyStep::Reactivate { .. } => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use KeyStatus::{Active, Inactive};

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap()
    }

    fn days_ago(d: i64) -> Option<DateTime<Utc>> {
        Some(now() - chrono::Duration::days(d))
    }

    fn key(id: &str, status: KeyStatus, created: Option<i64>, used: Option<i64>) -> Key {
        Key {
            access_key_id: id.into(),
            status,
            created_at: created.and_then(days_ago),
            last_used_at: used.and_then(days_ago),
        }
    }

    fn deactivated(plan: &Plan<KeyStep>) -> Vec<&str> {
        plan.steps.iter().map(|s| s.access_key_id()).collect()
    }

    #[test]
    fn plans_table() {
        let named = |id: &str| Rule::Named {
            access_key_id: id.into(),
        };
        let rotation = Rule::Rotation { max_age_days: 90 };
        let unused = Rule::Unused {
            max_unused_days: 90,
        };
        // (rule, keys, keys set inactive)
        let cases: Vec<(Rule, Vec<Key>, Vec<&str>)> = vec![
            // A threat finding: exactly the named key; the user's other key stays active.
            (
                named("A"),
                vec![
                    key("A", Active, Some(1), None),
                    key("B", Active, Some(1), None),
                ],
                vec!["A"],
            ),
            (named("A"), vec![key("A", Inactive, Some(1), None)], vec![]),
            (named("A"), vec![], vec![]),
            // IAM.3: active keys older than 90 days.
            (
                rotation.clone(),
                vec![
                    key("A", Active, Some(120), None),
                    key("B", Active, Some(10), None),
                ],
                vec!["A"],
            ),
            (
                rotation.clone(),
                vec![
                    key("A", Inactive, Some(400), None),
                    key("B", Active, Some(91), None),
                ],
                vec!["B"],
            ),
            (
                rotation.clone(),
                vec![key("A", Active, Some(90), None)],
                vec![],
            ),
            (rotation.clone(), vec![key("A", Active, None, None)], vec![]),
            // IAM.8: last used more than 90 days ago, or never used and created as long ago.
            (
                unused.clone(),
                vec![
                    key("A", Active, Some(400), Some(100)),
                    key("B", Active, Some(400), Some(3)),
                ],
                vec!["A"],
            ),
            (
                unused.clone(),
                vec![key("A", Active, Some(200), None)],
                vec!["A"],
            ),
            (
                unused.clone(),
                vec![key("A", Active, Some(20), None)],
                vec![],
            ),
            (
                unused.clone(),
                vec![key("A", Inactive, Some(400), None)],
                vec![],
            ),
            (unused.clone(), vec![key("A", Active, None, None)], vec![]),
        ];
        for (rule, keys, want) in cases {
            let state = KeysState { keys };
            let p = plan(&rule, "alice", &state, now());
            assert_eq!(deactivated(&p), want, "{rule:?} {state:?}");
            assert!(p.steps.iter().all(|s| s.user_name() == "alice"));
        }
    }

    #[test]
    fn steps_say_why() {
        let state = KeysState {
            keys: vec![key("A", Active, Some(120), Some(100))],
        };
        let p = plan(&Rule::Rotation { max_age_days: 90 }, "alice", &state, now());
        let KeyStep::Deactivate { why, .. } = &p.steps[0] else {
            panic!("{p:?}")
        };
        assert!(
            why.contains("120 days ago") && why.contains("IAM.3's 90 days"),
            "{why}"
        );
        let p = plan(
            &Rule::Unused {
                max_unused_days: 90,
            },
            "alice",
            &state,
            now(),
        );
        let KeyStep::Deactivate { why, .. } = &p.steps[0] else {
            panic!("{p:?}")
        };
        assert!(
            why.starts_with("last used") && why.contains("100 days ago"),
            "{why}"
        );
        // IAM.8's password is named as left alone.
        assert!(p.untouched.iter().any(|u| u.contains("console password")));
        // A key without dates is named, never guessed at.
        let p = plan(
            &Rule::Rotation { max_age_days: 90 },
            "alice",
            &KeysState {
                keys: vec![key("A", Active, None, None)],
            },
            now(),
        );
        assert!(p.steps.is_empty() && p.untouched[0].starts_with("A:"));
    }

    #[test]
    fn undo_reactivates_exactly_what_was_deactivated() {
        let applied = vec![
            KeyStep::Deactivate {
                user_name: "alice".into(),
                access_key_id: "A".into(),
                why: "w".into(),
            },
            KeyStep::Reactivate {
                user_name: "alice".into(),
                access_key_id: "B".into(),
            },
        ];
        assert_eq!(
            undo(&applied),
            vec![KeyStep::Reactivate {
                user_name: "alice".into(),
                access_key_id: "A".into()
            }]
        );
    }

    #[test]
    fn steps_read_in_the_record() {
        let s = KeyStep::Deactivate {
            user_name: "alice".into(),
            access_key_id: "A".into(),
            why: "w".into(),
        };
        assert_eq!(
            serde_json::to_value(&s).unwrap(),
            serde_json::json!({"op": "deactivate", "user_name": "alice", "access_key_id": "A", "why": "w"})
        );
    }
}
