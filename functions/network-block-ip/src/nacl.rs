//! A network ACL's inbound entries as Reflex reads them, and what they say: whether an address
//! is denied already, which numbers are taken. Pure; the AWS adapter fills these in.

use crate::address::Cidr;
use crate::params::RuleRange;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// The protocol value meaning every protocol.
pub const ALL_PROTOCOLS: &str = "-1";
/// How many numbers the default range holds: 80–99 below a default ACL's allow rule 100.
pub const DEFAULT_RANGE_SIZE: i32 = 20;

/// One inbound entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub rule_number: i32,
    /// `allow` or `deny`.
    pub allow: bool,
    /// `-1` (all), or a protocol number.
    pub protocol: String,
    pub cidr: Cidr,
    /// `[from, to]` for TCP and UDP entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ports: Option<[i32; 2]>,
}

impl Entry {
    /// A Reflex block: deny every protocol from exactly `cidr`.
    pub fn block(rule_number: i32, cidr: Cidr) -> Entry {
        Entry {
            rule_number,
            allow: false,
            protocol: ALL_PROTOCOLS.into(),
            cidr,
            ports: None,
        }
    }

    pub fn is_block_of(&self, cidr: &Cidr) -> bool {
        !self.allow && self.protocol == ALL_PROTOCOLS && self.cidr == *cidr
    }
}

/// What `inspect` reads and the record keeps: the ACL's inbound entries, in rule order, and the
/// addresses this record is about (so that rollback judges only what it is about: other
/// findings' blocks come and go on a shared ACL).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NaclState {
    pub nacl_id: String,
    pub cidrs: Vec<Cidr>,
    pub inbound: Vec<Entry>,
}

impl NaclState {
    pub fn new(nacl_id: String, cidrs: Vec<Cidr>, mut inbound: Vec<Entry>) -> NaclState {
        inbound.sort_by_key(|e| e.rule_number);
        NaclState {
            nacl_id,
            cidrs,
            inbound,
        }
    }

    pub fn at(&self, rule_number: i32) -> Option<&Entry> {
        self.inbound.iter().find(|e| e.rule_number == rule_number)
    }

    /// The rule number that denies all traffic from `ip` before any entry could allow some of
    /// it: entries are evaluated in rule order, and the first that matches decides. An allow
    /// for any protocol first, and the address is not (wholly) denied.
    pub fn denied_by(&self, ip: IpAddr) -> Option<i32> {
        for e in self.inbound.iter().filter(|e| e.cidr.contains(ip)) {
            if e.allow {
                return None;
            }
            if e.protocol == ALL_PROTOCOLS {
                return Some(e.rule_number);
            }
        }
        None
    }

    /// The entries about this record's addresses (`cidrs`).
    fn about_cidrs(&self) -> Vec<&Entry> {
        self.inbound
            .iter()
            .filter(|e| self.cidrs.contains(&e.cidr))
            .collect()
    }

    /// Rollback may start: every entry about this record's addresses is as the fix left it.
    pub fn as_left(post: &NaclState, live: &NaclState) -> bool {
        post.nacl_id == live.nacl_id && post.about_cidrs() == live.about_cidrs()
    }

    /// Rollback restored the pre-state as far as this record is concerned: its addresses'
    /// entries are as before, and no entry that was there before was replaced by another at its
    /// number (an evicted block put back).
    pub fn restored(pre: &NaclState, live: &NaclState) -> bool {
        pre.nacl_id == live.nacl_id
            && pre.about_cidrs() == live.about_cidrs()
            && pre
                .inbound
                .iter()
                .all(|e| live.at(e.rule_number).is_none_or(|l| l == e))
    }
}

/// The default range: the `DEFAULT_RANGE_SIZE` numbers right below `lowest`, the ACL's lowest
/// inbound rule that is not Reflex's (so that every block is evaluated before any rule of the
/// ACL's owner). `None` when there is no room below it.
pub fn default_range(lowest: i32) -> Option<RuleRange> {
    (lowest > 1).then(|| RuleRange {
        first: (lowest - DEFAULT_RANGE_SIZE).max(1),
        last: lowest - 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> Cidr {
        s.parse().unwrap()
    }

    fn entry(n: i32, allow: bool, protocol: &str, cidr: &str) -> Entry {
        Entry {
            rule_number: n,
            allow,
            protocol: protocol.into(),
            cidr: c(cidr),
            ports: None,
        }
    }

    fn state(entries: Vec<Entry>) -> NaclState {
        NaclState::new("acl-1".into(), vec![c("1.2.3.4/32")], entries)
    }

    #[test]
    fn denied_by_the_first_matching_entry() {
        let ip: IpAddr = "1.2.3.4".parse().unwrap();
        let cases: &[(Vec<Entry>, Option<i32>)] = &[
            (vec![], None),
            // a default ACL: allow all at 100, deny all at 32767
            (
                vec![
                    entry(100, true, "-1", "0.0.0.0/0"),
                    entry(32767, false, "-1", "0.0.0.0/0"),
                ],
                None,
            ),
            (
                vec![
                    entry(80, false, "-1", "1.2.3.4/32"),
                    entry(100, true, "-1", "0.0.0.0/0"),
                ],
                Some(80),
            ),
            // a deny after the allow is never reached
            (
                vec![
                    entry(100, true, "-1", "0.0.0.0/0"),
                    entry(200, false, "-1", "1.2.3.4/32"),
                ],
                None,
            ),
            // a wider deny first counts
            (
                vec![
                    entry(50, false, "-1", "1.2.0.0/16"),
                    entry(100, true, "-1", "0.0.0.0/0"),
                ],
                Some(50),
            ),
            // a deny of one protocol only is not a block; the all-protocol deny after it is
            (
                vec![
                    entry(10, false, "6", "1.2.3.4/32"),
                    entry(20, false, "-1", "1.2.3.4/32"),
                    entry(100, true, "-1", "0.0.0.0/0"),
                ],
                Some(20),
            ),
            // an allow of one protocol first lets that protocol in
            (
                vec![
                    entry(10, true, "6", "1.2.3.0/24"),
                    entry(20, false, "-1", "1.2.3.4/32"),
                ],
                None,
            ),
            // only entries that match the address count
            (
                vec![
                    entry(10, true, "-1", "9.9.9.9/32"),
                    entry(20, false, "-1", "1.2.3.4/32"),
                ],
                Some(20),
            ),
            // an ACL with nothing but its default deny denies everything
            (vec![entry(32767, false, "-1", "0.0.0.0/0")], Some(32767)),
            // IPv4 entries never match an IPv6 address, and back
            (vec![entry(10, false, "-1", "::/0")], None),
        ];
        for (entries, want) in cases {
            assert_eq!(state(entries.clone()).denied_by(ip), *want, "{entries:?}");
        }
    }

    #[test]
    fn default_ranges() {
        let cases = [
            (100, Some((80, 99))),
            (32767, Some((32747, 32766))),
            (10, Some((1, 9))),
            (2, Some((1, 1))),
            (1, None),
        ];
        for (lowest, want) in cases {
            assert_eq!(
                default_range(lowest).map(|r| (r.first, r.last)),
                want,
                "{lowest}"
            );
        }
    }

    #[test]
    fn rollback_judges_only_this_records_addresses() {
        let allow = entry(100, true, "-1", "0.0.0.0/0");
        let ours = Entry::block(80, c("1.2.3.4/32"));
        let other = Entry::block(81, c("5.6.7.8/32"));
        let pre = state(vec![allow.clone()]);
        let post = state(vec![ours.clone(), allow.clone()]);
        // Another finding blocked another address since: still as left.
        let live = state(vec![ours.clone(), other.clone(), allow.clone()]);
        assert!(NaclState::as_left(&post, &live));
        // Our block is gone or moved: not as left.
        assert!(!NaclState::as_left(&post, &state(vec![allow.clone()])));
        assert!(!NaclState::as_left(
            &post,
            &state(vec![Entry::block(82, c("1.2.3.4/32")), allow.clone()])
        ));
        // Restored: our block gone, the other finding's block may stay.
        assert!(NaclState::restored(
            &pre,
            &state(vec![other.clone(), allow.clone()])
        ));
        assert!(!NaclState::restored(&pre, &live));
        // An evicted block must be back at its number.
        let evicted = Entry::block(80, c("9.9.9.9/32"));
        let pre = state(vec![evicted.clone(), allow.clone()]);
        assert!(NaclState::restored(
            &pre,
            &state(vec![evicted, allow.clone()])
        ));
        assert!(!NaclState::restored(
            &pre,
            &state(vec![Entry::block(80, c("7.7.7.7/32")), allow.clone()])
        ));
        // Another ACL is never this one.
        let mut elsewhere = pre.clone();
        elsewhere.nacl_id = "acl-2".into();
        assert!(!NaclState::restored(&pre, &elsewhere));
    }
}
