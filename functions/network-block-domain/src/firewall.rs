//! Reflex's DNS Firewall in one VPC, as Reflex reads it: its names, its idempotency tokens, and
//! the state `inspect` reads and the record keeps. Pure; the AWS adapter fills these in.
//!
//! One domain list, one rule group with one rule (BLOCK, answer NXDOMAIN) and one association
//! per VPC, all Reflex's own, found by name. Per VPC rather than per account: each block then
//! lives and expires with the VPC it was placed for (the sweep removing a domain for one VPC
//! never lifts another VPC's block of it), and findings in different VPCs never wait for each
//! other (the lease is the VPC's).

use crate::domain::Domain;
use serde::{Deserialize, Serialize};

/// The one rule's priority inside Reflex's rule group (the group holds only it).
pub const RULE_PRIORITY: i32 = 100;
/// The one rule's name.
pub const RULE_NAME: &str = "reflex-block-listed-domains";

/// The name of Reflex's domain list, rule group and association for `vpc_id` (64 characters at
/// most, AWS's limit: a VPC id is at most 21).
pub fn name(vpc_id: &str) -> String {
    format!("reflex-blocked-domains-{vpc_id}")
}

/// What Reflex creates, for its idempotency token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    List,
    Group,
    Rule,
    Association,
}

impl Part {
    fn word(self) -> &'static str {
        match self {
            Part::List => "list",
            Part::Group => "group",
            Part::Rule => "rule",
            Part::Association => "association",
        }
    }
}

/// The `CreatorRequestId` of one part for one VPC: the same for every finding, attempt and
/// process, so AWS makes the part once whoever asks. Two safeguards stand together:
/// - the VPC's lease (`shared_resource`) lets one finding at a time read and change the VPC's
///   firewall, so a second finding sees the list the first one made and makes none;
/// - this token covers what a lease cannot: a create whose answer was lost, sent again by the
///   SDK or by a later attempt after a crash (or after a lease that ran out mid-change), is the
///   same request to AWS, which answers with the part it made the first time.
///
/// AWS scopes the token to the account and region, so the VPC id makes it unique. (Were an
/// operator to delete Reflex's list, AWS could answer the token with the deleted list; AWS does
/// not document how long it keeps a token, and the emulator has no DNS Firewall to show it.)
pub fn creator_request_id(part: Part, vpc_id: &str) -> String {
    format!("reflex-network-block-domain-{}-{vpc_id}", part.word())
}

/// Reflex's rule group association with the VPC, as read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Association {
    pub id: String,
    pub priority: i32,
    /// `COMPLETE`, `CREATING` or `UPDATING` (a `DELETING` one is read as none).
    pub status: String,
}

/// What `inspect` reads and the record keeps: Reflex's firewall parts for the VPC, and whether
/// the domain this record is about is in its list. Never the whole list: it can hold thousands
/// of other findings' domains, and a record must stay small.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirewallState {
    pub vpc_id: String,
    pub domain: Domain,
    /// Reflex's domain list for the VPC.
    pub list_id: Option<String>,
    /// Reflex's rule group for the VPC.
    pub group_id: Option<String>,
    /// The group holds a rule that blocks the list.
    pub rule: bool,
    /// The group is associated with the VPC.
    pub association: Option<Association>,
    /// The domain is in the list.
    pub blocked: bool,
}

impl FirewallState {
    /// Every part is there and the domain is in the list: the VPC's resolver answers NXDOMAIN.
    pub fn blocks(&self) -> bool {
        self.list_id.is_some()
            && self.group_id.is_some()
            && self.rule
            && self.association.is_some()
            && self.blocked
    }

    /// Rollback may start: the domain is as the fix left it, in the same list. (The firewall's
    /// parts stay whatever a rollback does: other findings' blocks use them.)
    pub fn as_left(post: &FirewallState, live: &FirewallState) -> bool {
        post.domain == live.domain && post.list_id == live.list_id && post.blocked == live.blocked
    }

    /// Rollback restored what this record is about: the domain is out of the list again if it
    /// was out before. Parts the fix created stay, and the rollback names them.
    pub fn restored(pre: &FirewallState, live: &FirewallState) -> bool {
        pre.domain == live.domain && pre.blocked == live.blocked
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(blocked: bool) -> FirewallState {
        FirewallState {
            vpc_id: "vpc-1".into(),
            domain: "c2.example".parse().unwrap(),
            list_id: Some("rslvr-fdl-1".into()),
            group_id: Some("rslvr-frg-1".into()),
            rule: true,
            association: Some(Association {
                id: "rslvr-frgassoc-1".into(),
                priority: 101,
                status: "COMPLETE".into(),
            }),
            blocked,
        }
    }

    #[test]
    fn names_and_tokens_are_per_vpc_and_within_limits() {
        let vpc = "vpc-0123456789abcdef0";
        assert_eq!(name(vpc), "reflex-blocked-domains-vpc-0123456789abcdef0");
        assert!(name(vpc).len() <= 64);
        let tokens: Vec<String> = [Part::List, Part::Group, Part::Rule, Part::Association]
            .iter()
            .map(|p| creator_request_id(*p, vpc))
            .collect();
        let mut distinct = tokens.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), 4, "{tokens:?}");
        assert_ne!(
            creator_request_id(Part::List, "vpc-1"),
            creator_request_id(Part::List, "vpc-2")
        );
        assert!(tokens.iter().all(|t| t.len() <= 255));
    }

    #[test]
    fn blocking_needs_every_part() {
        assert!(state(true).blocks());
        assert!(!state(false).blocks());
        let mut s = state(true);
        s.association = None;
        assert!(!s.blocks());
        let mut s = state(true);
        s.rule = false;
        assert!(!s.blocks());
    }

    #[test]
    fn rollback_judges_only_the_domain() {
        let pre = FirewallState {
            list_id: None,
            group_id: None,
            rule: false,
            association: None,
            ..state(false)
        };
        let post = state(true);
        assert!(FirewallState::as_left(&post, &state(true)));
        assert!(!FirewallState::as_left(&post, &state(false)));
        // The parts the fix made stay: the domain out of the list is the pre-state again.
        assert!(FirewallState::restored(&pre, &state(false)));
        assert!(!FirewallState::restored(&pre, &state(true)));
    }
}
