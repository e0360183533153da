//! A security group's ingress rules as Reflex reasons about them: each rule's content (protocol,
//! ports, one source, description) and, as read, its rule id. A rule revoked and authorized again
//! gets a new id, so everything that compares states compares content, never ids.

use crate::ports::{PortRange, Ports, MAX_PORT};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Everything from IPv4 and IPv6.
pub const WORLD_V4: &str = "0.0.0.0/0";
pub const WORLD_V6: &str = "::/0";

/// The one source of a rule (a rule of the rule-based API names exactly one).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Source {
    Ipv4 {
        cidr: String,
    },
    Ipv6 {
        cidr: String,
    },
    PrefixList {
        id: String,
    },
    /// A referenced group (`ReferencedGroupInfo`): a peer group, possibly of another account.
    Group {
        group_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        user_id: Option<String>,
    },
}

impl Source {
    /// Open to every address: `0.0.0.0/0` or `::/0` (a rule of a narrower prefix is not).
    pub fn is_world(&self) -> bool {
        matches!(self, Source::Ipv4 { cidr } if cidr == WORLD_V4)
            || matches!(self, Source::Ipv6 { cidr } if cidr == WORLD_V6)
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Ipv4 { cidr } | Source::Ipv6 { cidr } => write!(f, "{cidr}"),
            Source::PrefixList { id } => write!(f, "{id}"),
            Source::Group { group_id, .. } => write!(f, "{group_id}"),
        }
    }
}

/// One ingress rule. `id` is the security-group rule id as read (`sgr-…`); empty for a rule
/// that is to be authorized (AWS gives it its id then).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Rule {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    /// `tcp`, `udp`, `icmp`, `icmpv6`, `-1` (every protocol) or a protocol number, as EC2
    /// answers (normalised: `6` is `tcp`, `17` is `udp`, `all` is `-1`).
    pub protocol: String,
    /// `-1` where EC2 names no port (every protocol; every ICMP type).
    pub from_port: i32,
    pub to_port: i32,
    pub source: Source,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// EC2's protocol names, as one spelling.
pub fn normalise_protocol(p: &str) -> String {
    match p.to_ascii_lowercase().as_str() {
        "6" => "tcp".into(),
        "17" => "udp".into(),
        "all" => "-1".into(),
        other => other.to_string(),
    }
}

impl Rule {
    /// The rule without its id: what it allows, and what a rollback authorizes again.
    pub fn content(&self) -> Rule {
        Rule {
            id: String::new(),
            ..self.clone()
        }
    }

    /// What AWS takes to be the same permission (the description is no part of it: authorizing
    /// one that differs only there is a duplicate).
    pub fn same_permission(&self, other: &Rule) -> bool {
        (&self.protocol, self.from_port, self.to_port, &self.source)
            == (
                &other.protocol,
                other.from_port,
                other.to_port,
                &other.source,
            )
    }

    pub fn is_world(&self) -> bool {
        self.source.is_world()
    }

    /// The port range of a TCP or UDP rule (the whole range where EC2 names none).
    fn range(&self) -> PortRange {
        match (u16::try_from(self.from_port), u16::try_from(self.to_port)) {
            (Ok(from), Ok(to)) => PortRange::new(from.min(to), from.max(to)),
            _ => PortRange::all(),
        }
    }

    /// The TCP ports the rule opens (all of them for protocol `-1`).
    pub fn tcp(&self) -> Ports {
        match self.protocol.as_str() {
            "tcp" => Ports::of([self.range()]),
            "-1" => Ports::all(),
            _ => Ports::none(),
        }
    }

    /// The UDP ports the rule opens (all of them for protocol `-1`).
    pub fn udp(&self) -> Ports {
        match self.protocol.as_str() {
            "udp" => Ports::of([self.range()]),
            "-1" => Ports::all(),
            _ => Ports::none(),
        }
    }

    /// The same source and description, for `protocol` on `ports`: a part of this rule.
    pub fn part(&self, protocol: &str, ports: PortRange) -> Rule {
        Rule {
            id: String::new(),
            protocol: protocol.to_string(),
            from_port: i32::from(ports.from),
            to_port: i32::from(ports.to),
            source: self.source.clone(),
            description: self.description.clone(),
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ports = if self.protocol == "-1" {
            "all traffic".to_string()
        } else if self.from_port < 0 {
            self.protocol.clone()
        } else if self.from_port == self.to_port {
            format!("{}/{}", self.protocol, self.from_port)
        } else if self.from_port == 0 && self.to_port == i32::from(MAX_PORT) {
            format!("{}/all ports", self.protocol)
        } else {
            format!("{}/{}-{}", self.protocol, self.from_port, self.to_port)
        };
        write!(f, "{ports} from {}", self.source)?;
        if !self.id.is_empty() {
            write!(f, " ({})", self.id)?;
        }
        Ok(())
    }
}

/// The live state that matters: the group and its ingress rules, sorted by content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupState {
    pub group_id: String,
    pub ingress: Vec<Rule>,
}

impl GroupState {
    pub fn new(group_id: String, mut ingress: Vec<Rule>) -> GroupState {
        ingress.sort_by_key(|a| (a.content(), a.id.clone()));
        GroupState { group_id, ingress }
    }

    /// The rules' contents, sorted: two states allow the same when these are equal, whatever
    /// the rules' ids.
    pub fn contents(&self) -> Vec<Rule> {
        let mut c: Vec<Rule> = self.ingress.iter().map(Rule::content).collect();
        c.sort();
        c
    }

    pub fn same_rules(&self, other: &GroupState) -> bool {
        self.group_id == other.group_id && self.contents() == other.contents()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(protocol: &str, from: i32, to: i32, cidr: &str) -> Rule {
        Rule {
            id: "sgr-1".into(),
            protocol: protocol.into(),
            from_port: from,
            to_port: to,
            source: if cidr.contains(':') {
                Source::Ipv6 { cidr: cidr.into() }
            } else {
                Source::Ipv4 { cidr: cidr.into() }
            },
            description: None,
        }
    }

    #[test]
    fn what_a_rule_opens() {
        // (protocol, from, to, tcp, udp)
        let cases = [
            ("tcp", 22, 22, "22", "none"),
            ("udp", 500, 500, "none", "500"),
            ("tcp", 0, 65535, "0-65535", "none"),
            ("-1", -1, -1, "0-65535", "0-65535"),
            ("icmp", -1, -1, "none", "none"),
            ("icmp", 8, 0, "none", "none"),
            ("50", -1, -1, "none", "none"),
        ];
        for (protocol, from, to, tcp, udp) in cases {
            let r = rule(protocol, from, to, "0.0.0.0/0");
            assert_eq!(r.tcp().to_string(), tcp, "{r}");
            assert_eq!(r.udp().to_string(), udp, "{r}");
        }
    }

    #[test]
    fn world_means_exactly_the_whole_address_space() {
        assert!(rule("tcp", 22, 22, "0.0.0.0/0").is_world());
        assert!(rule("tcp", 22, 22, "::/0").is_world());
        assert!(!rule("tcp", 22, 22, "0.0.0.0/1").is_world());
        assert!(!rule("tcp", 22, 22, "10.0.0.0/8").is_world());
        assert!(!Source::Group {
            group_id: "sg-1".into(),
            user_id: None
        }
        .is_world());
    }

    #[test]
    fn states_compare_by_content_not_id() {
        let a = GroupState::new("sg-1".into(), vec![rule("tcp", 22, 22, "0.0.0.0/0")]);
        let mut again = rule("tcp", 22, 22, "0.0.0.0/0");
        again.id = "sgr-2".into();
        let b = GroupState::new("sg-1".into(), vec![again]);
        assert!(a.same_rules(&b));
        assert_ne!(a, b, "the ids differ: an approval's plan names ids");
        let c = GroupState::new("sg-1".into(), vec![rule("tcp", 22, 22, "::/0")]);
        assert!(!a.same_rules(&c));
    }

    #[test]
    fn protocols_normalised() {
        assert_eq!(normalise_protocol("6"), "tcp");
        assert_eq!(normalise_protocol("17"), "udp");
        assert_eq!(normalise_protocol("ALL"), "-1");
        assert_eq!(normalise_protocol("icmpv6"), "icmpv6");
    }
}
