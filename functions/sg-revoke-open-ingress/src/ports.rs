//! Port sets: the offending ports of a trigger, the ports a rule opens, what is left of a rule's
//! range once the offending ports are taken out. Pure.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The highest port a security-group rule can name.
pub const MAX_PORT: u16 = 65535;

/// Ports `from..=to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PortRange {
    pub from: u16,
    pub to: u16,
}

impl PortRange {
    pub fn new(from: u16, to: u16) -> PortRange {
        PortRange { from, to }
    }

    pub fn one(port: u16) -> PortRange {
        PortRange::new(port, port)
    }

    pub fn all() -> PortRange {
        PortRange::new(0, MAX_PORT)
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.from == self.to {
            write!(f, "{}", self.from)
        } else {
            write!(f, "{}-{}", self.from, self.to)
        }
    }
}

/// A set of ports, as sorted, disjoint, non-adjacent ranges (so two equal sets are equal lists).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "Vec<PortRange>", into = "Vec<PortRange>")]
pub struct Ports(Vec<PortRange>);

impl From<Vec<PortRange>> for Ports {
    fn from(ranges: Vec<PortRange>) -> Ports {
        Ports::of(ranges)
    }
}

impl From<Ports> for Vec<PortRange> {
    fn from(p: Ports) -> Vec<PortRange> {
        p.0
    }
}

impl Ports {
    pub fn none() -> Ports {
        Ports(Vec::new())
    }

    pub fn all() -> Ports {
        Ports(vec![PortRange::all()])
    }

    /// The union of `ranges` (a range given backwards is read forwards).
    pub fn of(ranges: impl IntoIterator<Item = PortRange>) -> Ports {
        let mut rs: Vec<PortRange> = ranges
            .into_iter()
            .map(|r| PortRange::new(r.from.min(r.to), r.from.max(r.to)))
            .collect();
        rs.sort();
        let mut out: Vec<PortRange> = Vec::with_capacity(rs.len());
        for r in rs {
            match out.last_mut() {
                Some(last) if u32::from(r.from) <= u32::from(last.to) + 1 => {
                    last.to = last.to.max(r.to)
                }
                _ => out.push(r),
            }
        }
        Ports(out)
    }

    pub fn list(list: &[u16]) -> Ports {
        Ports::of(list.iter().map(|p| PortRange::one(*p)))
    }

    pub fn ranges(&self) -> &[PortRange] {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Every port from 0 to 65535 not in the set.
    pub fn complement(&self) -> Ports {
        let mut out = Vec::new();
        let mut next: u32 = 0;
        for r in &self.0 {
            if u32::from(r.from) > next {
                out.push(PortRange::new(next as u16, r.from - 1));
            }
            next = u32::from(r.to) + 1;
        }
        if next <= u32::from(MAX_PORT) {
            out.push(PortRange::new(next as u16, MAX_PORT));
        }
        Ports(out)
    }

    pub fn intersect(&self, other: &Ports) -> Ports {
        let mut out = Vec::new();
        for a in &self.0 {
            for b in &other.0 {
                let (from, to) = (a.from.max(b.from), a.to.min(b.to));
                if from <= to {
                    out.push(PortRange::new(from, to));
                }
            }
        }
        Ports::of(out)
    }

    /// The ports of `self` not in `other`.
    pub fn minus(&self, other: &Ports) -> Ports {
        self.intersect(&other.complement())
    }

    /// A port list as AWS writes one (`authorizedTcpPorts`: `"443"`, `"1020-1025"`); `None`
    /// if any entry is not a port or a range of ports (the whole list is then unreadable:
    /// dropping an entry would change what the list allows).
    pub fn parse_list<S: AsRef<str>>(values: &[S]) -> Option<Ports> {
        values
            .iter()
            .map(|v| parse_range(v.as_ref()))
            .collect::<Option<Vec<_>>>()
            .map(Ports::of)
    }
}

impl fmt::Display for Ports {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return write!(f, "none");
        }
        let parts: Vec<String> = self.0.iter().map(|r| r.to_string()).collect();
        write!(f, "{}", parts.join(", "))
    }
}

/// `"443"` or `"1020-1025"` (spaces allowed around the parts).
pub fn parse_range(text: &str) -> Option<PortRange> {
    let port = |s: &str| s.trim().parse::<u16>().ok();
    match text.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (port(a)?, port(b)?);
            (a <= b).then(|| PortRange::new(a, b))
        }
        None => port(text).map(PortRange::one),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Ports {
        Ports::parse_list(&s.split(',').filter(|x| !x.is_empty()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn set_operations_table() {
        // (a, b, a ∩ b, a − b)
        let cases = [
            ("22", "22", "22", ""),
            ("0-65535", "22", "22", "0-21,23-65535"),
            ("0-65535", "80,443", "80,443", "0-79,81-442,444-65535"),
            ("20-25", "22,80", "22", "20-21,23-25"),
            ("443", "22", "", "443"),
            ("0", "0-65535", "0", ""),
            ("65535", "65535", "65535", ""),
            ("1-10,5-20", "15", "15", "1-14,16-20"),
        ];
        for (a, b, and, minus) in cases {
            assert_eq!(p(a).intersect(&p(b)), p(and), "{a} ∩ {b}");
            assert_eq!(p(a).minus(&p(b)), p(minus), "{a} − {b}");
        }
    }

    #[test]
    fn normalising_merges_overlapping_and_adjacent_ranges() {
        assert_eq!(p("1-5,6-9,3").ranges(), [PortRange::new(1, 9)]);
        assert_eq!(p("9-9,1").ranges(), [PortRange::one(1), PortRange::one(9)]);
        assert_eq!(p("").complement(), Ports::all());
        assert_eq!(Ports::all().complement(), Ports::none());
        assert_eq!(p("80,443").complement().complement(), p("80,443"));
    }

    #[test]
    fn parsing_port_lists() {
        let cases: &[(&[&str], Option<&str>)] = &[
            (&["80", "443"], Some("80, 443")),
            (&["1020-1025", " 22 "], Some("22, 1020-1025")),
            (&[], Some("none")),
            (&["80", "http"], None),
            (&["70000"], None),
            (&["25-20"], None),
            (&["-1"], None),
        ];
        for (input, want) in cases {
            assert_eq!(
                Ports::parse_list(input).map(|p| p.to_string()).as_deref(),
                *want,
                "{input:?}"
            );
        }
    }
}
