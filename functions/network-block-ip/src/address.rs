//! Addresses and prefixes: the CIDR a block names, and which remote addresses may be blocked at
//! all. Pure; no AWS types.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// An IPv4 or IPv6 prefix, host bits cleared: `1.2.3.4/32`, `2600:1f18::/32`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an IP address or CIDR prefix")]
pub struct CidrError(pub String);

impl Cidr {
    /// The prefix `addr/prefix`, host bits cleared (`10.1.2.3/8` is `10.0.0.0/8`).
    pub fn new(addr: IpAddr, prefix: u8) -> Option<Cidr> {
        let addr = match addr {
            IpAddr::V4(a) if prefix <= 32 => {
                let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
                IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask))
            }
            IpAddr::V6(a) if prefix <= 128 => {
                let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
                IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask))
            }
            _ => return None,
        };
        Some(Cidr { addr, prefix })
    }

    /// One host: `/32` or `/128`.
    pub fn host(addr: IpAddr) -> Cidr {
        let prefix = if addr.is_ipv4() { 32 } else { 128 };
        Cidr { addr, prefix }
    }

    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    pub fn is_v6(&self) -> bool {
        self.addr.is_ipv6()
    }

    /// Exactly one host.
    pub fn is_host(&self) -> bool {
        self.prefix == if self.is_v6() { 128 } else { 32 }
    }

    /// Whether `ip` lies in this prefix (never across families).
    pub fn contains(&self, ip: IpAddr) -> bool {
        Cidr::new(ip, self.prefix).is_some_and(|c| c.addr == self.addr)
    }

    /// Whether every address of `other` lies in this prefix.
    pub fn covers(&self, other: &Cidr) -> bool {
        other.prefix >= self.prefix && self.contains(other.addr)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Cidr {
    type Err = CidrError;

    /// `a.b.c.d/n`, `x::y/n`, or a bare address (one host).
    fn from_str(s: &str) -> Result<Cidr, CidrError> {
        let err = || CidrError(s.to_string());
        let text = s.trim();
        match text.split_once('/') {
            Some((addr, prefix)) => {
                let addr: IpAddr = addr.parse().map_err(|_| err())?;
                // Digits only: `+8` or ` 8` are not prefixes.
                if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(err());
                }
                let prefix: u8 = prefix.parse().map_err(|_| err())?;
                Cidr::new(addr, prefix).ok_or_else(err)
            }
            None => text.parse().map(Cidr::host).map_err(|_| err()),
        }
    }
}

impl Serialize for Cidr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Cidr, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Why an address named by a finding is not blocked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Never blocked: not a public host address (private, loopback, reserved…), or a prefix.
    NotBlockable(String),
    /// In the policy's allowlist.
    Allowlisted(String),
}

impl Refusal {
    pub fn why(&self) -> &str {
        match self {
            Refusal::NotBlockable(w) | Refusal::Allowlisted(w) => w,
        }
    }
}

/// Special-purpose IPv4 blocks (IANA's registry), none of which is ever an attacker's public
/// address: blocking one would cut off the VPC itself, or nothing at all.
const V4_SPECIAL: &[(&str, &str)] = &[
    ("0.0.0.0/8", "an unspecified (\"this network\") address"),
    ("10.0.0.0/8", "a private address"),
    ("100.64.0.0/10", "a shared (carrier-grade NAT) address"),
    ("127.0.0.0/8", "a loopback address"),
    ("169.254.0.0/16", "a link-local address"),
    ("172.16.0.0/12", "a private address"),
    ("192.0.0.0/24", "an IETF protocol assignment"),
    ("192.0.2.0/24", "a documentation address"),
    ("192.88.99.0/24", "a reserved (6to4 relay) address"),
    ("192.168.0.0/16", "a private address"),
    ("198.18.0.0/15", "a benchmarking address"),
    ("198.51.100.0/24", "a documentation address"),
    ("203.0.113.0/24", "a documentation address"),
    ("224.0.0.0/4", "a multicast address"),
    ("240.0.0.0/4", "a reserved or broadcast address"),
];

/// Special-purpose IPv6 blocks. Only global unicast (2000::/3) can be an attacker's address;
/// these name the common cases inside and outside it for the record.
const V6_SPECIAL: &[(&str, &str)] = &[
    ("::/128", "an unspecified address"),
    ("::1/128", "a loopback address"),
    ("fc00::/7", "a unique-local (private) address"),
    ("fe80::/10", "a link-local address"),
    ("ff00::/8", "a multicast address"),
    ("2001::/23", "an IETF protocol assignment"),
    ("2001:db8::/32", "a documentation address"),
    ("3fff::/20", "a documentation address"),
];

fn special(ip: IpAddr) -> Option<(Cidr, &'static str)> {
    let table = if ip.is_ipv4() { V4_SPECIAL } else { V6_SPECIAL };
    // The longest (most specific) match names it best: 2001:db8::/32 over 2001::/23.
    let found = table
        .iter()
        .filter_map(|(c, why)| c.parse::<Cidr>().ok().map(|c| (c, *why)))
        .filter(|(c, _)| c.contains(ip))
        .max_by_key(|(c, _)| c.prefix());
    if found.is_some() {
        return found;
    }
    // std's own predicates (the stable ones) as a second opinion, and IPv6 outside 2000::/3.
    let any = Cidr::host(ip);
    match ip {
        IpAddr::V4(a)
            if a.is_private()
                || a.is_loopback()
                || a.is_link_local()
                || a.is_multicast()
                || a.is_broadcast()
                || a.is_documentation()
                || a.is_unspecified() =>
        {
            Some((any, "a special-purpose address"))
        }
        IpAddr::V6(a)
            if a.is_loopback()
                || a.is_multicast()
                || a.is_unspecified()
                || a.is_unique_local()
                || a.is_unicast_link_local() =>
        {
            Some((any, "a special-purpose address"))
        }
        IpAddr::V6(a) if (a.segments()[0] & 0xe000) != 0x2000 => {
            Some((any, "not a global unicast address (outside 2000::/3)"))
        }
        _ => None,
    }
}

/// The host prefix to block for an address a finding names, or why it is never blocked.
///
/// Accepts a bare address or a prefix (`1.2.3.4`, `1.2.3.4/32`); an IPv4-mapped IPv6 address
/// (`::ffff:1.2.3.4`) is the IPv4 address it maps.
pub fn blockable(text: &str, allowlist: &[Cidr]) -> Result<Cidr, Refusal> {
    let parsed: Cidr = text
        .parse()
        .map_err(|e: CidrError| Refusal::NotBlockable(e.to_string()))?;
    if !parsed.is_host() {
        return Err(Refusal::NotBlockable(format!(
            "{parsed} is a prefix wider than one host: Reflex blocks single addresses only"
        )));
    }
    let ip = match parsed.addr() {
        IpAddr::V6(a) => a.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(IpAddr::V6(a)),
        v4 => v4,
    };
    if let Some((block, what)) = special(ip) {
        return Err(Refusal::NotBlockable(format!(
            "{ip} is {what} ({block}), never blocked"
        )));
    }
    if let Some(allowed) = allowlist.iter().find(|c| c.contains(ip)) {
        return Err(Refusal::Allowlisted(format!(
            "{ip} is in the policy's allowlist ({allowed})"
        )));
    }
    Ok(Cidr::host(ip))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs_parse_and_normalise() {
        let cases: &[(&str, Option<&str>)] = &[
            ("1.2.3.4", Some("1.2.3.4/32")),
            ("1.2.3.4/32", Some("1.2.3.4/32")),
            (" 1.2.3.4/32 ", Some("1.2.3.4/32")),
            ("10.1.2.3/8", Some("10.0.0.0/8")),
            ("0.0.0.0/0", Some("0.0.0.0/0")),
            ("2600:1f18::1", Some("2600:1f18::1/128")),
            ("2600:1f18::1/32", Some("2600:1f18::/32")),
            ("::/0", Some("::/0")),
            ("1.2.3.4/33", None),
            ("2600::/129", None),
            ("1.2.3.4/", None),
            ("1.2.3.4/+8", None),
            ("1.2.3", None),
            ("example.com", None),
            ("", None),
        ];
        for (text, want) in cases {
            let got = text.parse::<Cidr>().ok().map(|c| c.to_string());
            assert_eq!(got.as_deref(), *want, "{text:?}");
        }
    }

    #[test]
    fn containment() {
        let c = |s: &str| s.parse::<Cidr>().unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let cases = [
            (c("1.2.0.0/16"), ip("1.2.3.4"), true),
            (c("1.2.0.0/16"), ip("1.3.0.0"), false),
            (c("0.0.0.0/0"), ip("9.9.9.9"), true),
            (c("0.0.0.0/0"), ip("2600::1"), false),
            (c("::/0"), ip("1.2.3.4"), false),
            (c("2600:1f18::/32"), ip("2600:1f18:1::5"), true),
            (c("1.2.3.4/32"), ip("1.2.3.4"), true),
            (c("1.2.3.4/32"), ip("1.2.3.5"), false),
        ];
        for (cidr, addr, want) in cases {
            assert_eq!(cidr.contains(addr), want, "{cidr} ∋ {addr}");
        }
        assert!(c("1.2.0.0/16").covers(&c("1.2.3.4/32")));
        assert!(!c("1.2.3.4/32").covers(&c("1.2.0.0/16")));
    }

    #[test]
    fn which_addresses_are_blocked() {
        let allow: Vec<Cidr> = vec![
            "8.8.0.0/16".parse().unwrap(),
            "2a00:1450::/32".parse().unwrap(),
        ];
        enum W {
            Block(&'static str),
            Never(&'static str),
            Allowed,
        }
        use W::*;
        let cases: &[(&str, W)] = &[
            ("1.2.3.4", Block("1.2.3.4/32")),
            ("1.2.3.4/32", Block("1.2.3.4/32")),
            ("45.33.32.156", Block("45.33.32.156/32")),
            ("2600:1f18:abcd::7", Block("2600:1f18:abcd::7/128")),
            ("::ffff:1.2.3.4", Block("1.2.3.4/32")),
            ("::ffff:10.0.0.1", Never("private")),
            ("10.0.0.5", Never("private")),
            ("172.16.0.1", Never("private")),
            ("172.31.255.255", Never("private")),
            ("172.32.0.1", Block("172.32.0.1/32")),
            ("192.168.1.1", Never("private")),
            ("100.64.0.1", Never("carrier-grade")),
            ("127.0.0.1", Never("loopback")),
            ("169.254.169.254", Never("link-local")),
            ("0.0.0.0", Never("unspecified")),
            ("0.1.2.3", Never("unspecified")),
            ("224.0.0.1", Never("multicast")),
            ("239.255.255.250", Never("multicast")),
            ("240.0.0.1", Never("reserved")),
            ("255.255.255.255", Never("broadcast")),
            ("192.0.2.10", Never("documentation")),
            ("198.51.100.23", Never("documentation")),
            ("203.0.113.5", Never("documentation")),
            ("198.18.0.1", Never("benchmarking")),
            ("192.0.0.8", Never("IETF")),
            ("::", Never("unspecified")),
            ("::1", Never("loopback")),
            ("fd00::1", Never("unique-local")),
            ("fc00::1", Never("unique-local")),
            ("fe80::1", Never("link-local")),
            ("ff02::1", Never("multicast")),
            ("2001:db8::1", Never("documentation")),
            ("2001::1", Never("IETF")),
            ("3fff::1", Never("documentation")),
            ("64:ff9b::1.2.3.4", Never("global unicast")),
            ("100::1", Never("global unicast")),
            ("1.2.3.0/24", Never("prefix wider than one host")),
            ("0.0.0.0/0", Never("prefix wider than one host")),
            ("2600::/64", Never("prefix wider than one host")),
            ("not-an-ip", Never("not an IP address")),
            ("8.8.8.8", Allowed),
            ("2a00:1450:4001::1", Allowed),
        ];
        for (text, want) in cases {
            let got = blockable(text, &allow);
            match (want, &got) {
                (Block(c), Ok(cidr)) => assert_eq!(cidr.to_string(), *c, "{text}"),
                (Never(word), Err(Refusal::NotBlockable(why))) => {
                    assert!(why.contains(word), "{text}: {why}")
                }
                (Allowed, Err(Refusal::Allowlisted(why))) => {
                    assert!(why.contains("allowlist"), "{text}: {why}")
                }
                _ => panic!("{text}: {got:?}"),
            }
        }
    }

    #[test]
    fn cidr_round_trips_as_a_json_string() {
        let c: Cidr = "2600:1f18::7".parse().unwrap();
        let v = serde_json::to_value(c).unwrap();
        assert_eq!(v, serde_json::json!("2600:1f18::7/128"));
        assert_eq!(serde_json::from_value::<Cidr>(v).unwrap(), c);
        assert!(serde_json::from_value::<Cidr>(serde_json::json!("nope")).is_err());
    }
}
