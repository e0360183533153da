//! What containing a principal takes, from its live state; and what undoes it. Pure.
//!
//! Contained means: Reflex's revocation policy is on the principal with a cutoff at or after
//! the finding's last observed activity (every session that existed then is revoked), and, for
//! a user, no console password. The cutoff itself is the moment of acting, taken in `apply`:
//! a plan never holds a time, so a plan approved an hour later revokes the sessions issued
//! during that hour too.

use crate::document;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The live state that matters, kept as the pre-state for undo.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrincipalState {
    /// The inline policy under Reflex's name, as found (its document), if there is one.
    pub revocation: Option<Value>,
    /// Whether the user can sign in to the console (has a login profile); never for a role.
    pub console_login: bool,
}

/// One change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "kebab-case")]
pub enum ContainStep {
    /// Put Reflex's revocation policy, denying everything to sessions issued before the moment
    /// of acting (recorded as the step's output).
    RevokeSessions,
    /// Delete the user's console password. Not reversible: the password is gone, and the user
    /// needs a new one from an administrator.
    DeleteLoginProfile,
    /// Undo: remove Reflex's revocation policy.
    RemoveRevocation,
    /// Undo: put back the document that was under Reflex's policy name before.
    RestoreRevocation { document: Value },
}

impl ContainStep {
    pub fn undoable(&self) -> bool {
        !matches!(self, ContainStep::DeleteLoginProfile)
    }
}

/// What a step produced: for a revocation, the moment of acting and the cutoff written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acted {
    /// When the step ran (RFC 3339, milliseconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acted_at: Option<String>,
    /// The `aws:TokenIssueTime` cutoff written: sessions issued before it are denied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sessions_issued_before: Option<String>,
}

/// Whether the revocation found covers every session that existed at `activity`: Reflex's
/// exact document with a cutoff at or after it (any of ours when the time is unknown).
pub fn revoked(state: &PrincipalState, activity: Option<DateTime<Utc>>) -> bool {
    match state.revocation.as_ref().and_then(document::cutoff) {
        Some(cutoff) => activity.is_none_or(|a| cutoff >= a),
        None => false,
    }
}

/// The steps that contain the principal, given its live state and the finding's last observed
/// activity.
pub fn plan(state: &PrincipalState, activity: Option<DateTime<Utc>>) -> Vec<ContainStep> {
    let mut steps = Vec::new();
    if !revoked(state, activity) {
        steps.push(ContainStep::RevokeSessions);
    }
    if state.console_login {
        steps.push(ContainStep::DeleteLoginProfile);
    }
    steps
}

/// The steps that restore `pre`'s revocation policy (a login profile is never restored: its
/// deletion is not undoable, and the pipeline names it as kept).
pub fn undo(pre: &PrincipalState, applied: &[ContainStep]) -> Vec<ContainStep> {
    if !applied.contains(&ContainStep::RevokeSessions) {
        return Vec::new();
    }
    match &pre.revocation {
        Some(document) => vec![ContainStep::RestoreRevocation {
            document: document.clone(),
        }],
        None => vec![ContainStep::RemoveRevocation],
    }
}

/// A rollback restored the pre-state when the policy is as it was; the console password stays
/// deleted (kept, and said so in the rollback's record).
pub fn restored(pre: &PrincipalState, live: &PrincipalState) -> bool {
    pre.revocation == live.revocation
}

/// The last activity a finding observed, from its `observed_at` (GuardDuty's `eventLastSeen`,
/// Security Hub's `LastObservedAt`), else its generation (the source's update time).
pub fn activity(observed_at: Option<&str>, generation: &str) -> Option<DateTime<Utc>> {
    observed_at
        .into_iter()
        .chain(std::iter::once(generation))
        .find_map(|t| DateTime::parse_from_rfc3339(t.trim()).ok())
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use ContainStep::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn ours(t: &str) -> Option<Value> {
        Some(document::document(at(t)))
    }

    #[test]
    fn plans() {
        let seen = Some(at("2026-12-01T10:00:00Z"));
        let state = |revocation: Option<Value>, console_login| PrincipalState {
            revocation,
            console_login,
        };
        type Case = (
            &'static str,
            PrincipalState,
            Option<DateTime<Utc>>,
            Vec<ContainStep>,
        );
        let cases: Vec<Case> = vec![
            (
                "a user with a password",
                state(None, true),
                seen,
                vec![RevokeSessions, DeleteLoginProfile],
            ),
            (
                "a role (or a user without one)",
                state(None, false),
                seen,
                vec![RevokeSessions],
            ),
            (
                "contained after the activity",
                state(ours("2026-12-01T10:00:00Z"), false),
                seen,
                vec![],
            ),
            (
                "contained later",
                state(ours("2026-12-02T00:00:00Z"), false),
                seen,
                vec![],
            ),
            (
                "contained before the activity: again",
                state(ours("2026-12-01T09:59:59Z"), false),
                seen,
                vec![RevokeSessions],
            ),
            (
                "contained, still a password",
                state(ours("2026-12-02T00:00:00Z"), true),
                seen,
                vec![DeleteLoginProfile],
            ),
            (
                "something else under our name",
                state(Some(json!({"Statement": []})), false),
                seen,
                vec![RevokeSessions],
            ),
            (
                "no time known: any revocation of ours",
                state(ours("2020-01-01T00:00:00Z"), false),
                None,
                vec![],
            ),
            (
                "no time known, none",
                state(None, false),
                None,
                vec![RevokeSessions],
            ),
        ];
        for (name, s, activity, want) in cases {
            assert_eq!(plan(&s, activity), want, "{name}");
        }
    }

    #[test]
    fn undoing() {
        let none = PrincipalState {
            revocation: None,
            console_login: true,
        };
        let earlier = PrincipalState {
            revocation: Some(json!({"Statement": ["theirs"]})),
            console_login: false,
        };
        assert_eq!(
            undo(&none, &[RevokeSessions, DeleteLoginProfile]),
            vec![RemoveRevocation]
        );
        assert_eq!(
            undo(&earlier, &[RevokeSessions]),
            vec![RestoreRevocation {
                document: json!({"Statement": ["theirs"]})
            }]
        );
        assert_eq!(undo(&none, &[]), vec![]);
        assert!(!DeleteLoginProfile.undoable());
        assert!(RevokeSessions.undoable() && RemoveRevocation.undoable());
    }

    #[test]
    fn restored_ignores_the_kept_password() {
        let pre = PrincipalState {
            revocation: None,
            console_login: true,
        };
        let after_rollback = PrincipalState {
            revocation: None,
            console_login: false,
        };
        assert!(restored(&pre, &after_rollback));
        let still = PrincipalState {
            revocation: ours("2026-12-01T10:00:00Z"),
            console_login: false,
        };
        assert!(!restored(&pre, &still));
    }

    #[test]
    fn activity_times() {
        assert_eq!(
            activity(Some("2026-12-01T10:00:00.000Z"), "2026-12-01T11:00:00.000Z"),
            Some(at("2026-12-01T10:00:00Z"))
        );
        assert_eq!(
            activity(Some("not a time"), "2026-12-01T11:00:00.000Z"),
            Some(at("2026-12-01T11:00:00Z"))
        );
        assert_eq!(activity(None, "x"), None);
    }

    #[test]
    fn steps_read_in_the_record() {
        assert_eq!(json!(RevokeSessions), json!({"step": "revoke-sessions"}));
        assert_eq!(
            json!(Acted::default()),
            json!({}),
            "nothing for a step that produced nothing"
        );
    }
}
