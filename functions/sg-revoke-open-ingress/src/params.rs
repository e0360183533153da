//! `remediations.sg-revoke-open-ingress.parameters`: every key optional, each checked when the
//! policy is read (an invalid value is `policy-invalid`, naming it).

use crate::ports::{parse_range, Ports};
use serde::Deserialize;

/// The words the README and error messages use for this section.
pub const PARAMETERS: &str = "authorized_tcp_ports, authorized_udp_ports — ports (443) or ranges \
(\"1020-1025\") that may stay open to the world, for EC2.18 findings that carry no \
SecurityControlParameters and for a VPC_SG_OPEN_ONLY_TO_AUTHORIZED_PORTS rule deployed without \
its own (defaults: tcp 80 and 443, as AWS's EC2.18; udp none); blocked_ports — the TCP ports \
closed for a RESTRICTED_INCOMING_TRAFFIC rule deployed without blockedPort parameters (default \
20, 21, 3389, 3306, 4333, as AWS's rule)";

/// AWS's default `authorizedTcpPorts` for EC2.18.
pub const DEFAULT_AUTHORIZED_TCP: &[u16] = &[80, 443];
/// AWS's default `blockedPort1`…`blockedPort5` for `restricted-common-ports`.
pub const DEFAULT_BLOCKED: &[u16] = &[20, 21, 3389, 3306, 4333];

/// The parameters, checked.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "Raw")]
pub struct Params {
    pub authorized_tcp: Ports,
    pub authorized_udp: Ports,
    pub blocked: Ports,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            authorized_tcp: Ports::list(DEFAULT_AUTHORIZED_TCP),
            authorized_udp: Ports::none(),
            blocked: Ports::list(DEFAULT_BLOCKED),
        }
    }
}

/// A port as the policy writes it: a number, or text (`"443"`, `"1020-1025"`).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum PortSpec {
    Number(i64),
    Text(String),
}

impl PortSpec {
    fn text(&self) -> String {
        match self {
            PortSpec::Number(n) => n.to_string(),
            PortSpec::Text(t) => t.clone(),
        }
    }
}

/// As written in the policy.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    #[serde(default)]
    authorized_tcp_ports: Option<Vec<PortSpec>>,
    #[serde(default)]
    authorized_udp_ports: Option<Vec<PortSpec>>,
    #[serde(default)]
    blocked_ports: Option<Vec<PortSpec>>,
}

fn ports(key: &str, specs: Option<Vec<PortSpec>>, default: Ports) -> Result<Ports, String> {
    let Some(specs) = specs else {
        return Ok(default);
    };
    let mut ranges = Vec::new();
    for s in &specs {
        let text = s.text();
        ranges.push(parse_range(&text).ok_or_else(|| {
            format!("{key}: {text:?} is not a port (0–65535) or a range of ports (\"1020-1025\")")
        })?);
    }
    Ok(Ports::of(ranges))
}

impl TryFrom<Raw> for Params {
    type Error = String;

    fn try_from(raw: Raw) -> Result<Params, String> {
        let d = Params::default();
        Ok(Params {
            authorized_tcp: ports(
                "authorized_tcp_ports",
                raw.authorized_tcp_ports,
                d.authorized_tcp,
            )?,
            authorized_udp: ports(
                "authorized_udp_ports",
                raw.authorized_udp_ports,
                d.authorized_udp,
            )?,
            blocked: ports("blocked_ports", raw.blocked_ports, d.blocked)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parameters_table() {
        // (input, Ok((tcp, udp, blocked)) or Err(a word of the error))
        type Want = Result<(&'static str, &'static str, &'static str), &'static str>;
        let cases: &[(serde_json::Value, Want)] = &[
            (
                json!({}),
                Ok(("80, 443", "none", "20-21, 3306, 3389, 4333")),
            ),
            (
                json!({"authorized_tcp_ports": [443, "8000-8010"]}),
                Ok(("443, 8000-8010", "none", "20-21, 3306, 3389, 4333")),
            ),
            (
                json!({"authorized_tcp_ports": [], "authorized_udp_ports": ["500", 4500]}),
                Ok(("none", "500, 4500", "20-21, 3306, 3389, 4333")),
            ),
            (
                json!({"blocked_ports": [22]}),
                Ok(("80, 443", "none", "22")),
            ),
            (
                json!({"authorized_tcp_ports": [70000]}),
                Err("authorized_tcp_ports"),
            ),
            (json!({"blocked_ports": ["ssh"]}), Err("blocked_ports")),
            (json!({"blocked_ports": [-1]}), Err("blocked_ports")),
            (json!({"authorized_ports": [80]}), Err("unknown field")),
        ];
        for (input, want) in cases {
            let got = serde_json::from_value::<Params>(input.clone());
            match (want, got) {
                (Ok((tcp, udp, blocked)), Ok(p)) => {
                    assert_eq!(p.authorized_tcp.to_string(), *tcp, "{input}");
                    assert_eq!(p.authorized_udp.to_string(), *udp, "{input}");
                    assert_eq!(p.blocked.to_string(), *blocked, "{input}");
                }
                (Err(word), Err(e)) => assert!(e.to_string().contains(word), "{input}: {e}"),
                (want, got) => panic!("{input}: want {want:?}, got {got:?}"),
            }
        }
    }

    #[test]
    fn default_equals_empty_section() {
        assert_eq!(
            serde_json::from_value::<Params>(json!({})).unwrap(),
            Params::default()
        );
    }
}
