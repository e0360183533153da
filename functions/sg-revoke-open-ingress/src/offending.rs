//! Which ports a finding says must not be open to the world, by the control or Config rule that
//! raised it. Pure: decided once, at resolve, and kept in the stored target (approval and
//! rollback never read the finding again).

use crate::params::Params;
use crate::ports::Ports;
use crate::rules::Rule;
use reflex_shared::finding::FindingKind;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// AWS's high-risk ports for EC2.19.
pub const HIGH_RISK: &[u16] = &[
    20, 21, 22, 23, 25, 110, 135, 143, 445, 1433, 1434, 3000, 3306, 3389, 4333, 5000, 5432, 5500,
    5601, 8080, 8088, 8888, 9200, 9300,
];

/// The ports that must not be open to `0.0.0.0/0` or `::/0`, per protocol, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offending {
    /// The trigger and where its ports come from, in words, for the record.
    pub why: String,
    pub tcp: Ports,
    pub udp: Ports,
}

impl Offending {
    /// A world-open rule that opens an offending port (protocol `-1` and port ranges count on
    /// every port they cover).
    pub fn hits(&self, rule: &Rule) -> bool {
        rule.is_world()
            && (!rule.tcp().intersect(&self.tcp).is_empty()
                || !rule.udp().intersect(&self.udp).is_empty())
    }
}

const SSH: &str = "tcp 22";

/// The offending ports for a finding of `kind`, evaluated with `control_parameters` (ASFF
/// `Compliance.SecurityControlParameters`), under `params`. `Err`: the finding is not one this
/// remediation can judge (an unknown trigger, or parameters that are not port lists).
pub fn offending(
    kind: &FindingKind,
    control_parameters: &BTreeMap<String, Vec<String>>,
    params: &Params,
) -> Result<Offending, String> {
    let tcp_only = |why: String, tcp: Ports| Offending {
        why,
        tcp,
        udp: Ports::none(),
    };
    Ok(match kind {
        // SSH and RDP: TCP, as AWS's restricted-ssh and restricted-common-ports evaluate.
        FindingKind::Control(c) if c == "EC2.13" => {
            tcp_only(format!("EC2.13: {SSH}"), Ports::list(&[22]))
        }
        FindingKind::ConfigRule(r) if r == "INCOMING_SSH_DISABLED" => {
            tcp_only(format!("Config rule {r}: {SSH}"), Ports::list(&[22]))
        }
        FindingKind::Control(c) if c == "EC2.14" => {
            tcp_only("EC2.14: tcp 3389".into(), Ports::list(&[3389]))
        }
        // AWS names EC2.19's ports without a protocol: both count.
        FindingKind::Control(c) if c == "EC2.19" => {
            let high = Ports::list(HIGH_RISK);
            Offending {
                why: format!("EC2.19: AWS's high-risk ports, tcp and udp ({high})"),
                tcp: high.clone(),
                udp: high,
            }
        }
        // Config events carry no rule parameters: the policy's (AWS's defaults by default).
        FindingKind::ConfigRule(r) if r == "RESTRICTED_INCOMING_TRAFFIC" => tcp_only(
            format!(
                "Config rule {r}: tcp {} (blocked_ports of the policy)",
                params.blocked
            ),
            params.blocked.clone(),
        ),
        FindingKind::Control(c) if c == "EC2.18" => {
            let (tcp, udp, from) = authorized(control_parameters, params)?;
            Offending {
                why: format!(
                    "EC2.18: every port but the authorized ones (tcp {tcp}; udp {udp}; {from})"
                ),
                tcp: tcp.complement(),
                udp: udp.complement(),
            }
        }
        FindingKind::ConfigRule(r) if r == "VPC_SG_OPEN_ONLY_TO_AUTHORIZED_PORTS" => Offending {
            why: format!(
                "Config rule {r}: every port but the authorized ones (tcp {}; udp {}; from the policy)",
                params.authorized_tcp, params.authorized_udp
            ),
            tcp: params.authorized_tcp.complement(),
            udp: params.authorized_udp.complement(),
        },
        other => return Err(format!("{} is not a trigger of sg-revoke-open-ingress", other.name())),
    })
}

/// EC2.18's authorized ports: the finding's own parameters when it carries either list (a list
/// it leaves out authorizes nothing), else the policy's.
fn authorized(
    control_parameters: &BTreeMap<String, Vec<String>>,
    params: &Params,
) -> Result<(Ports, Ports, &'static str), String> {
    let tcp = control_parameters.get("authorizedTcpPorts");
    let udp = control_parameters.get("authorizedUdpPorts");
    if tcp.is_none() && udp.is_none() {
        return Ok((
            params.authorized_tcp.clone(),
            params.authorized_udp.clone(),
            "the finding carries no SecurityControlParameters: the policy's",
        ));
    }
    let read = |name: &str, values: Option<&Vec<String>>| match values {
        None => Ok(Ports::none()),
        Some(v) => Ports::parse_list(v).ok_or_else(|| {
            format!("the finding's {name} {v:?} is not a list of ports: not judged")
        }),
    };
    Ok((
        read("authorizedTcpPorts", tcp)?,
        read("authorizedUdpPorts", udp)?,
        "the finding's SecurityControlParameters",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn control(id: &str) -> FindingKind {
        FindingKind::Control(id.into())
    }

    fn rule(id: &str) -> FindingKind {
        FindingKind::ConfigRule(id.into())
    }

    fn cp(pairs: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
        pairs
            .iter()
            .map(|(k, vs)| (k.to_string(), vs.iter().map(|v| v.to_string()).collect()))
            .collect()
    }

    #[test]
    fn offending_ports_by_trigger() {
        let p = Params::default();
        let custom = Params {
            blocked: Ports::list(&[8080]),
            authorized_tcp: Ports::list(&[443]),
            authorized_udp: Ports::list(&[53]),
        };
        // (kind, control parameters, params, tcp, udp)
        type Case<'a> = (
            FindingKind,
            BTreeMap<String, Vec<String>>,
            &'a Params,
            &'a str,
            &'a str,
        );
        let cases: Vec<Case> = vec![
            (control("EC2.13"), cp(&[]), &p, "22", "none"),
            (rule("INCOMING_SSH_DISABLED"), cp(&[]), &p, "22", "none"),
            (control("EC2.14"), cp(&[]), &p, "3389", "none"),
            (
                rule("RESTRICTED_INCOMING_TRAFFIC"),
                cp(&[]),
                &p,
                "20-21, 3306, 3389, 4333",
                "none",
            ),
            (
                rule("RESTRICTED_INCOMING_TRAFFIC"),
                cp(&[]),
                &custom,
                "8080",
                "none",
            ),
            // The finding's own parameters win over the policy's.
            (
                control("EC2.18"),
                cp(&[("authorizedTcpPorts", &["80", "443"])]),
                &custom,
                "0-79, 81-442, 444-65535",
                "0-65535",
            ),
            (
                control("EC2.18"),
                cp(&[
                    ("authorizedTcpPorts", &["80", "443"]),
                    ("authorizedUdpPorts", &["500", "4500"]),
                ]),
                &p,
                "0-79, 81-442, 444-65535",
                "0-499, 501-4499, 4501-65535",
            ),
            // None in the finding: the policy's, AWS's 80 and 443 by default.
            (
                control("EC2.18"),
                cp(&[]),
                &p,
                "0-79, 81-442, 444-65535",
                "0-65535",
            ),
            (
                control("EC2.18"),
                cp(&[]),
                &custom,
                "0-442, 444-65535",
                "0-52, 54-65535",
            ),
            (
                rule("VPC_SG_OPEN_ONLY_TO_AUTHORIZED_PORTS"),
                cp(&[]),
                &custom,
                "0-442, 444-65535",
                "0-52, 54-65535",
            ),
        ];
        for (kind, params, policy, tcp, udp) in cases {
            let o = offending(&kind, &params, policy).unwrap();
            assert_eq!(o.tcp.to_string(), tcp, "{kind:?} {params:?}");
            assert_eq!(o.udp.to_string(), udp, "{kind:?} {params:?}");
            assert!(!o.why.is_empty());
        }
        let high = offending(&control("EC2.19"), &cp(&[]), &p).unwrap();
        assert_eq!(high.tcp, Ports::list(HIGH_RISK));
        assert_eq!(high.udp, Ports::list(HIGH_RISK));
        assert_eq!(high.tcp.ranges().len(), 20, "20-23 and 1433-1434 merge");
    }

    #[test]
    fn what_is_not_judged() {
        let p = Params::default();
        assert!(offending(&control("EC2.2"), &cp(&[]), &p).is_err());
        assert!(offending(&FindingKind::GuarddutyType("x".into()), &cp(&[]), &p).is_err());
        let bad = offending(
            &control("EC2.18"),
            &cp(&[("authorizedTcpPorts", &["http"])]),
            &p,
        );
        assert!(bad.unwrap_err().contains("authorizedTcpPorts"));
    }
}
