//! Domain names: what a finding's domain must look like to be blocked at all, and which domains
//! are never blocked. Pure; no AWS types.
//!
//! The domain comes from the finding (`service.action.dnsRequestAction.domain`), which anyone
//! allowed to invoke the function can write: it is held to DNS's own syntax before it goes
//! anywhere near an AWS call, and anything else is refused, never repaired.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// The longest name DNS allows (in text form, without the trailing dot).
pub const MAX_NAME: usize = 253;
/// The longest label DNS allows.
pub const MAX_LABEL: usize = 63;

/// Domains AWS itself answers for, never blocked whatever a finding says: blocking one would cut
/// the VPC off from AWS's own services or from its own names. Each covers itself and every name
/// below it.
/// - `amazonaws.com` (and `amazonaws.com.cn`): service endpoints, S3, the instance's own public
///   names (`ec2-…compute-1.amazonaws.com`);
/// - `aws`: AWS's own top-level domain (`*.on.aws`, `*.api.aws`);
/// - `internal`: the VPC's resolver names (`ip-10-0-0-12.ec2.internal`, `*.compute.internal`)
///   and every other name the Amazon-provided resolver answers privately.
pub const AWS_DOMAINS: &[&str] = &["amazonaws.com", "amazonaws.com.cn", "aws", "internal"];

/// A domain name in canonical form: lower case, no trailing dot, labels of letters, digits,
/// hyphens and underscores (`_dmarc`), at least two labels, the last not all digits (an IPv4
/// address is no domain).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Domain(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a domain name: {1}")]
pub struct DomainError(pub String, pub &'static str);

impl Domain {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// This name, or a name below it (`a.b.example` is within `b.example`; `ab.example` is not).
    pub fn within(&self, parent: &str) -> bool {
        self.0 == parent
            || self
                .0
                .strip_suffix(parent)
                .is_some_and(|head| head.ends_with('.'))
    }

    /// The AWS domain this name falls under, if any.
    pub fn aws_domain(&self) -> Option<&'static str> {
        AWS_DOMAINS.iter().copied().find(|d| self.within(d))
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Domain {
    type Err = DomainError;

    fn from_str(text: &str) -> Result<Domain, DomainError> {
        let bad = |why| Err(DomainError(text.chars().take(300).collect(), why));
        // One trailing dot (the root) is DNS's own spelling; anything else around it is not.
        let name = text.strip_suffix('.').unwrap_or(text).to_ascii_lowercase();
        if name.is_empty() {
            return bad("empty");
        }
        if name.len() > MAX_NAME {
            return bad("longer than 253 characters");
        }
        if !name.is_ascii() {
            return bad("not ASCII (an internationalised name must come in its xn-- form)");
        }
        let labels: Vec<&str> = name.split('.').collect();
        if labels.len() < 2 {
            return bad("a single label names no domain on the internet");
        }
        for label in &labels {
            if label.is_empty() {
                return bad("an empty label");
            }
            if label.len() > MAX_LABEL {
                return bad("a label longer than 63 characters");
            }
            if !label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return bad("a character outside letters, digits, '-' and '_' (a wildcard, a space, a slash…)");
            }
            if label.starts_with('-') || label.ends_with('-') {
                return bad("a label that starts or ends with '-'");
            }
        }
        if labels
            .last()
            .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
        {
            return bad("an all-numeric top-level label (an IP address is no domain)");
        }
        Ok(Domain(name))
    }
}

impl Serialize for Domain {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Domain {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Domain, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Why a domain is not blocked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Not a domain name at all (hostile or broken input).
    Invalid(String),
    /// One of AWS's own domains (`not-blockable`).
    Aws(String),
    /// In the policy's allowlist (`allowlisted`).
    Allowlisted(String),
}

impl Refusal {
    pub fn why(&self) -> &str {
        match self {
            Refusal::Invalid(w) | Refusal::Aws(w) | Refusal::Allowlisted(w) => w,
        }
    }
}

/// The domain to block, or why it must not be: syntax first, then AWS's own domains, then the
/// allowlist (each entry covers itself and every name below it).
pub fn blockable(text: &str, allowlist: &[Domain]) -> Result<Domain, Refusal> {
    let domain: Domain = text
        .parse()
        .map_err(|e: DomainError| Refusal::Invalid(e.to_string()))?;
    if let Some(aws) = domain.aws_domain() {
        return Err(Refusal::Aws(format!(
            "{domain} is within {aws}, one of AWS's own domains: never blocked"
        )));
    }
    if let Some(entry) = allowlist.iter().find(|a| domain.within(a.as_str())) {
        return Err(Refusal::Allowlisted(format!(
            "{domain} is within {entry}, in the allowlist"
        )));
    }
    Ok(domain)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_syntax_table() {
        // (input, Ok(canonical) or Err(a word of the reason))
        let cases: &[(&str, Result<&str, &str>)] = &[
            ("c2.badactor.example", Ok("c2.badactor.example")),
            ("C2.BadActor.Example.", Ok("c2.badactor.example")),
            ("xn--bcher-kva.example", Ok("xn--bcher-kva.example")),
            ("_dmarc.mail.example", Ok("_dmarc.mail.example")),
            ("a-b.c-d.example", Ok("a-b.c-d.example")),
            ("1.2.3.example", Ok("1.2.3.example")),
            ("", Err("empty")),
            (".", Err("empty")),
            ("localhost", Err("single label")),
            ("1.2.3.4", Err("all-numeric")),
            ("a..example", Err("empty label")),
            (".example.com", Err("empty label")),
            ("example.com..", Err("empty label")),
            ("*.example.com", Err("wildcard")),
            ("bad domain.example", Err("wildcard")),
            ("evil.example/../x", Err("wildcard")),
            ("évil.example", Err("ASCII")),
            ("-a.example", Err("'-'")),
            ("a-.example", Err("'-'")),
            ("evil.example\n", Err("wildcard")),
        ];
        for (input, want) in cases {
            let got = input.parse::<Domain>();
            match (want, got) {
                (Ok(canon), Ok(d)) => assert_eq!(d.as_str(), *canon, "{input:?}"),
                (Err(word), Err(e)) => assert!(e.to_string().contains(word), "{input:?}: {e}"),
                (want, got) => panic!("{input:?}: want {want:?}, got {got:?}"),
            }
        }
        let long_label = format!("{}.example", "a".repeat(64));
        assert!(long_label.parse::<Domain>().is_err());
        let long_name = format!("{}example", "abcdefghi.".repeat(25));
        assert!(long_name.parse::<Domain>().is_err());
    }

    #[test]
    fn within_is_by_whole_labels() {
        let d: Domain = "a.b.example".parse().unwrap();
        assert!(d.within("a.b.example"));
        assert!(d.within("b.example"));
        assert!(d.within("example"));
        assert!(!d.within("ab.example"));
        assert!(!d.within("b.example.com"));
        let d: Domain = "notamazonaws.com".parse().unwrap();
        assert!(!d.within("amazonaws.com"));
    }

    #[test]
    fn blockable_table() {
        let allow: Vec<Domain> = vec!["corp.example".parse().unwrap()];
        // (input, Ok(domain) or the refusal's kind)
        let cases: &[(&str, Result<&str, &str>)] = &[
            ("c2.badactor.example", Ok("c2.badactor.example")),
            ("s3.amazonaws.com", Err("aws")),
            ("ec2-3-80-0-12.compute-1.amazonaws.com", Err("aws")),
            ("bucket.s3.cn-north-1.amazonaws.com.cn", Err("aws")),
            ("x.lambda-url.us-east-1.on.aws", Err("aws")),
            ("ip-10-0-0-12.ec2.internal", Err("aws")),
            ("ip-10-0-0-12.us-west-2.compute.internal", Err("aws")),
            ("service.internal", Err("aws")),
            ("corp.example", Err("allowlisted")),
            ("vpn.corp.example", Err("allowlisted")),
            ("notcorp.example", Ok("notcorp.example")),
            ("*.evil.example", Err("invalid")),
            (
                "amazonaws.com.evil.example",
                Ok("amazonaws.com.evil.example"),
            ),
        ];
        for (input, want) in cases {
            let got = blockable(input, &allow);
            match (want, &got) {
                (Ok(d), Ok(got)) => assert_eq!(got.as_str(), *d, "{input}"),
                (Err("aws"), Err(Refusal::Aws(_)))
                | (Err("allowlisted"), Err(Refusal::Allowlisted(_)))
                | (Err("invalid"), Err(Refusal::Invalid(_))) => {}
                _ => panic!("{input}: want {want:?}, got {got:?}"),
            }
        }
    }

    #[test]
    fn domains_round_trip_and_refuse_bad_json() {
        let d: Domain = serde_json::from_str("\"C2.Example.\"").unwrap();
        assert_eq!(serde_json::to_string(&d).unwrap(), "\"c2.example\"");
        assert!(serde_json::from_str::<Domain>("\"*.example\"").is_err());
    }
}
