//! What Reflex itself placed on a shared resource (a NACL's block entries, a patch run on an
//! instance), and the resource's lease: one item per (remediation, resource), keyed
//! `resource#<remediation>#<resource>`.
//!
//! - The lease serialises findings that touch one resource (rule numbers in one NACL, the
//!   isolation group of one VPC): a conditional write takes it when free or run out; it has a
//!   deadline, so a crashed holder never blocks for long.
//! - The entries are read with the lease (one round: the write returns the item) and written
//!   under it, so `inspect` sees exactly what Reflex placed and when each entry expires.
//! - An item with entries is listed in the by-time index under `resource#<remediation>#`, sorted
//!   by its earliest expiry: the sweep finds what expired with a query, never a scan.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// One thing Reflex placed on a resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OwnedEntry {
    /// The remediation's own description of it (a rule number and a CIDR).
    pub value: Value,
    /// The record that placed it.
    pub record_id: String,
    /// When it was placed (epoch seconds).
    pub created_at: i64,
    /// When it expires (epoch seconds); `None`: it stays until removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    /// The placing record's target, as stored: the sweep works from it, never from a finding.
    #[serde(default)]
    pub target: Value,
}

/// Every entry Reflex placed on one resource, by the remediation's key (a CIDR).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Owned {
    #[serde(default)]
    pub entries: BTreeMap<String, OwnedEntry>,
}

impl Owned {
    /// The earliest expiry of any entry (what the sweep's index is sorted by).
    pub fn next_expiry(&self) -> Option<i64> {
        self.entries.values().filter_map(|e| e.expires_at).min()
    }

    /// Entries expired at `now`, by key.
    pub fn expired(&self, now: i64) -> Vec<(String, OwnedEntry)> {
        self.entries
            .iter()
            .filter(|(_, e)| e.expires_at.is_some_and(|t| t <= now))
            .map(|(k, e)| (k.clone(), e.clone()))
            .collect()
    }

    /// `changes` applied, as made by `record_id` at `now` on `target`.
    pub fn apply(&mut self, changes: &[OwnedChange], record_id: &str, now: i64, target: &Value) {
        for change in changes {
            match change {
                OwnedChange::Put {
                    key,
                    value,
                    expires_at,
                } => {
                    let created_at = self
                        .entries
                        .get(key)
                        .filter(|e| e.record_id == record_id)
                        .map_or(now, |e| e.created_at);
                    self.entries.insert(
                        key.clone(),
                        OwnedEntry {
                            value: value.clone(),
                            record_id: record_id.to_string(),
                            created_at,
                            expires_at: *expires_at,
                            target: target.clone(),
                        },
                    );
                }
                OwnedChange::Remove { key } => {
                    self.entries.remove(key);
                }
            }
        }
    }
}

/// A change a step makes to what Reflex owns on the resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "kebab-case")]
pub enum OwnedChange {
    Put {
        key: String,
        value: Value,
        expires_at: Option<i64>,
    },
    Remove {
        key: String,
    },
}

/// The item key of `resource`'s lease and entries for `remediation`.
pub fn resource_key(remediation: &str, resource: &str) -> String {
    format!("{}{resource}", resource_partition(remediation))
}

/// The by-time index partition listing `remediation`'s resources with entries (also the start
/// of every such item's key).
pub fn resource_partition(remediation: &str) -> String {
    format!("resource#{remediation}#")
}

/// The item key of a long operation's handle for `remediation` (the records awaiting it).
pub fn handle_key(remediation: &str, handle: &str) -> String {
    format!("{}{handle}", handle_partition(remediation))
}

/// The by-time index partition listing `remediation`'s long operations still awaited.
pub fn handle_partition(remediation: &str) -> String {
    format!("handle#{remediation}#")
}

/// A long operation and the records awaiting its end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Awaited {
    pub handle: String,
    pub record_ids: Vec<String>,
    /// Epoch seconds after which the records end `failed / timed-out`.
    pub deadline: i64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn put(key: &str, expires_at: Option<i64>) -> OwnedChange {
        OwnedChange::Put {
            key: key.into(),
            value: json!({"rule": 99}),
            expires_at,
        }
    }

    #[test]
    fn entries_are_put_extended_and_removed() {
        let mut o = Owned::default();
        o.apply(
            &[put("a", Some(100)), put("b", None)],
            "r1",
            10,
            &json!("t"),
        );
        assert_eq!(o.next_expiry(), Some(100));
        assert_eq!(o.entries["a"].created_at, 10);
        // The same record extends its entry and keeps its creation time; another record's put
        // is a new placement.
        o.apply(&[put("a", Some(200))], "r1", 20, &json!("t"));
        assert_eq!(
            (o.entries["a"].created_at, o.next_expiry()),
            (10, Some(200))
        );
        o.apply(&[put("a", Some(300))], "r2", 30, &json!("t"));
        assert_eq!(
            (o.entries["a"].created_at, o.entries["a"].record_id.as_str()),
            (30, "r2")
        );
        assert_eq!(o.expired(300).len(), 1);
        assert!(o.expired(299).is_empty());
        o.apply(
            &[OwnedChange::Remove { key: "a".into() }],
            "r3",
            40,
            &json!("t"),
        );
        assert_eq!(o.next_expiry(), None);
        assert_eq!(o.entries.len(), 1);
    }

    #[test]
    fn keys_start_with_their_partition() {
        assert_eq!(
            resource_key("network-block-ip", "acl-1"),
            "resource#network-block-ip#acl-1"
        );
        assert!(handle_key("ec2-patch-instance", "c-1")
            .starts_with(&handle_partition("ec2-patch-instance")));
    }
}
