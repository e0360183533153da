//! The live state that matters: the user's access keys as IAM lists them. Kept as the pre-state
//! for undo and recorded as the post-state. Pure.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// An access key's status, as IAM names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyStatus {
    Active,
    Inactive,
}

impl KeyStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyStatus::Active => "Active",
            KeyStatus::Inactive => "Inactive",
        }
    }
}

/// One access key of the user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Key {
    pub access_key_id: String,
    pub status: KeyStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<DateTime<Utc>>,
    /// When the key was last used (`GetAccessKeyLastUsed`), read only where the rule needs it
    /// (IAM.8): it changes with every use, and a state that changes by itself would make every
    /// approval ask again. `None` there: never used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<DateTime<Utc>>,
}

/// The keys the fix is about: the one a threat finding names, or every key of the user for a
/// control (a user has at most two).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeysState {
    pub keys: Vec<Key>,
}

impl KeysState {
    pub fn key(&self, access_key_id: &str) -> Option<&Key> {
        self.keys.iter().find(|k| k.access_key_id == access_key_id)
    }

    pub fn status(&self, access_key_id: &str) -> Option<KeyStatus> {
        self.key(access_key_id).map(|k| k.status)
    }

    /// A rollback starts only from the keys as the fix left them: every key the fix left
    /// inactive still is (and still exists). Keys it left active may have changed since, and
    /// last-used dates move by themselves; neither is the fix's.
    pub fn as_left(post: &KeysState, live: &KeysState) -> bool {
        post.keys
            .iter()
            .filter(|k| k.status == KeyStatus::Inactive)
            .all(|k| live.status(&k.access_key_id) == Some(KeyStatus::Inactive))
    }

    /// Restored: every key that was active before the fix is active again. Judged by status
    /// alone: a last-used date that moved is the key in use again, as it should be.
    pub fn restored(pre: &KeysState, live: &KeysState) -> bool {
        pre.keys
            .iter()
            .filter(|k| k.status == KeyStatus::Active)
            .all(|k| live.status(&k.access_key_id) == Some(KeyStatus::Active))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use KeyStatus::{Active, Inactive};

    fn state(keys: &[(&str, KeyStatus)]) -> KeysState {
        KeysState {
            keys: keys
                .iter()
                .map(|(id, status)| Key {
                    access_key_id: id.to_string(),
                    status: *status,
                    created_at: None,
                    last_used_at: None,
                })
                .collect(),
        }
    }

    #[test]
    fn as_left_and_restored() {
        let pre = state(&[("A", Active), ("B", Active)]);
        let post = state(&[("A", Inactive), ("B", Active)]);
        // (live, as the fix left it?, restored?)
        let cases = [
            (state(&[("A", Inactive), ("B", Active)]), true, false),
            // The key the fix left alone changed: still as left.
            (state(&[("A", Inactive), ("B", Inactive)]), true, false),
            (state(&[("A", Inactive)]), true, false),
            // Someone reactivated or deleted the disabled key.
            (state(&[("A", Active), ("B", Active)]), false, true),
            (state(&[("B", Active)]), false, false),
            // A new key beside them changes neither judgement.
            (
                state(&[("A", Active), ("B", Active), ("C", Active)]),
                false,
                true,
            ),
        ];
        for (live, left, restored) in cases {
            assert_eq!(KeysState::as_left(&post, &live), left, "{live:?}");
            assert_eq!(KeysState::restored(&pre, &live), restored, "{live:?}");
        }
    }

    #[test]
    fn the_state_reads_as_iam_names_it() {
        let s = state(&[("AKIA1", Active)]);
        assert_eq!(
            serde_json::to_value(&s).unwrap(),
            serde_json::json!({"keys": [{"access_key_id": "AKIA1", "status": "Active"}]})
        );
    }
}
