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

/// What a finding was evaluated with: a control's `SecurityControlParameters`, or its Config
/// rule's own `InputParameters` (read from Config: its events carry none).
#[derive(Debug, Clone, Default)]
pub struct Evaluated<'a> {
    pub control_parameters: Option<&'a BTreeMap<String, Vec<String>>>,
    pub rule_parameters: Option<&'a BTreeMap<String, String>>,
}

/// The offending ports for a finding of `kind`, evaluated as `evaluated` says, under `params`.
/// `Err`: the finding is not one this remediation can judge (an unknown trigger, or parameters
/// that are not port lists).
pub fn offending(
    kind: &FindingKind,
    evaluated: &Evaluated<'_>,
    params: &Params,
) -> Result<Offending, String> {
    let empty = BTreeMap::new();
    let control_parameters = evaluated.control_parameters.unwrap_or(&empty);
    let empty_rule = BTreeMap::new();
    let rule_parameters = evaluated.rule_parameters.unwrap_or(&empty_rule);
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
        FindingKind::ConfigRule(r) if r == "RESTRICTED_INCOMING_TRAFFIC" => {
            let (blocked, from) = blocked(rule_parameters, params)?;
            tcp_only(format!("Config rule {r}: tcp {blocked} ({from})"), blocked)
        }
        FindingKind::Control(c) if c == "EC2.18" => {
            let (tcp, udp, from) = authorized(
                control_parameters,
                params,
                "the finding's SecurityControlParameters",
            )?;
            Offending {
                why: format!(
                    "EC2.18: every port but the authorized ones (tcp {tcp}; udp {udp}; {from})"
                ),
                tcp: tcp.complement(),
                udp: udp.complement(),
            }
        }
        FindingKind::ConfigRule(r) if r == "VPC_SG_OPEN_ONLY_TO_AUTHORIZED_PORTS" => {
            // The rule's parameters are comma-separated lists (`"443,1020-1025"`).
            let split = |k: &str| {
                rule_parameters.get(k).map(|v| {
                    v.split(',')
                        .map(|p| p.trim().to_string())
                        .filter(|p| !p.is_empty())
                        .collect::<Vec<_>>()
                })
            };
            let lists = BTreeMap::from_iter(
                [
                    ("authorizedTcpPorts", split("authorizedTcpPorts")),
                    ("authorizedUdpPorts", split("authorizedUdpPorts")),
                ]
                .into_iter()
                .filter_map(|(k, v)| v.map(|v| (k.to_string(), v))),
            );
            let (tcp, udp, from) = authorized(&lists, params, "the rule's InputParameters")?;
            Offending {
                why: format!(
                    "Config rule {r}: every port but the authorized ones (tcp {tcp}; udp {udp}; {from})"
                ),
                tcp: tcp.complement(),
                udp: udp.complement(),
            }
        }
        other => {
            return Err(format!(
                "{} is not a trigger of sg-revoke-open-ingress",
                other.name()
            ))
        }
    })
}

/// The authorized ports: the finding's (or its rule's) own `authorizedTcpPorts` /
/// `authorizedUdpPorts` when it names either list (a list it leaves out authorizes nothing),
/// else the policy's.
fn authorized(
    lists: &BTreeMap<String, Vec<String>>,
    params: &Params,
    source: &'static str,
) -> Result<(Ports, Ports, &'static str), String> {
    let tcp = lists.get("authorizedTcpPorts");
    let udp = lists.get("authorizedUdpPorts");
    if tcp.is_none() && udp.is_none() {
        return Ok((
            params.authorized_tcp.clone(),
            params.authorized_udp.clone(),
            "none in the finding or its rule: the policy's",
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
        source,
    ))
}

/// RESTRICTED_INCOMING_TRAFFIC's blocked ports as the rule evaluates them: `blockedPort1`…
/// `blockedPort5`, each AWS's default where not given, and any in `blockedPorts` (a
/// comma-separated list). A rule that names none of them: the policy's `blocked_ports`.
fn blocked(
    rule_parameters: &BTreeMap<String, String>,
    params: &Params,
) -> Result<(Ports, &'static str), String> {
    let named = |k: &str| rule_parameters.contains_key(k);
    if !(1..=5).any(|n| named(&format!("blockedPort{n}"))) && !named("blockedPorts") {
        return Ok((params.blocked.clone(), "blocked_ports of the policy"));
    }
    let mut texts: Vec<String> = Vec::new();
    for (n, default) in (1..=5).zip(crate::params::DEFAULT_BLOCKED) {
        texts.push(
            rule_parameters
                .get(&format!("blockedPort{n}"))
                .cloned()
                .unwrap_or_else(|| default.to_string()),
        );
    }
    if let Some(more) = rule_parameters.get("blockedPorts") {
        texts.extend(
            more.split(',')
                .map(|p| p.trim().to_string())
                .filter(|p| !p.is_empty()),
        );
    }
    let ports = Ports::parse_list(&texts)
        .ok_or_else(|| format!("the rule's blocked ports {texts:?} are not ports: not judged"))?;
    Ok((
        ports,
        "the rule's InputParameters, AWS's defaults where not given",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn control_id(id: &str) -> FindingKind {
        FindingKind::Control(id.into())
    }

    fn control(p: &BTreeMap<String, Vec<String>>) -> Evaluated<'_> {
        Evaluated {
            control_parameters: Some(p),
            rule_parameters: None,
        }
    }

    fn config(p: &BTreeMap<String, String>) -> Evaluated<'_> {
        Evaluated {
            control_parameters: None,
            rule_parameters: Some(p),
        }
    }

    fn rp(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
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
            (control_id("EC2.13"), cp(&[]), &p, "22", "none"),
            (rule("INCOMING_SSH_DISABLED"), cp(&[]), &p, "22", "none"),
            (control_id("EC2.14"), cp(&[]), &p, "3389", "none"),
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
                control_id("EC2.18"),
                cp(&[("authorizedTcpPorts", &["80", "443"])]),
                &custom,
                "0-79, 81-442, 444-65535",
                "0-65535",
            ),
            (
                control_id("EC2.18"),
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
                control_id("EC2.18"),
                cp(&[]),
                &p,
                "0-79, 81-442, 444-65535",
                "0-65535",
            ),
            (
                control_id("EC2.18"),
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
            let o = offending(&kind, &control(&params), policy).unwrap();
            assert_eq!(o.tcp.to_string(), tcp, "{kind:?} {params:?}");
            assert_eq!(o.udp.to_string(), udp, "{kind:?} {params:?}");
            assert!(!o.why.is_empty());
        }
        let high = offending(&control_id("EC2.19"), &Evaluated::default(), &p).unwrap();
        assert_eq!(high.tcp, Ports::list(HIGH_RISK));
        assert_eq!(high.udp, Ports::list(HIGH_RISK));
        assert_eq!(high.tcp.ranges().len(), 20, "20-23 and 1433-1434 merge");
    }

    /// Config rules are judged by their own InputParameters, read from Config.
    #[test]
    fn config_rules_by_their_own_parameters() {
        let p = Params::default();
        let custom = Params {
            blocked: Ports::list(&[9999]),
            ..Params::default()
        };
        // (kind, rule parameters, policy, tcp, udp)
        type Case<'a> = (
            &'a str,
            &'a [(&'a str, &'a str)],
            &'a Params,
            &'a str,
            &'a str,
        );
        let cases: &[Case] = &[
            // blockedPort1 replaced, the other four AWS's defaults.
            (
                "RESTRICTED_INCOMING_TRAFFIC",
                &[("blockedPort1", "8080")],
                &p,
                "21, 3306, 3389, 4333, 8080",
                "none",
            ),
            (
                "RESTRICTED_INCOMING_TRAFFIC",
                &[("blockedPorts", "22, 8000-8010")],
                &p,
                "20-22, 3306, 3389, 4333, 8000-8010",
                "none",
            ),
            // A rule naming none of them: the policy's.
            ("RESTRICTED_INCOMING_TRAFFIC", &[], &custom, "9999", "none"),
            (
                "VPC_SG_OPEN_ONLY_TO_AUTHORIZED_PORTS",
                &[("authorizedTcpPorts", "443,1020-1025")],
                &p,
                "0-442, 444-1019, 1026-65535",
                "0-65535",
            ),
            (
                "VPC_SG_OPEN_ONLY_TO_AUTHORIZED_PORTS",
                &[("authorizedUdpPorts", "500")],
                &p,
                "0-65535",
                "0-499, 501-65535",
            ),
            (
                "VPC_SG_OPEN_ONLY_TO_AUTHORIZED_PORTS",
                &[],
                &p,
                "0-79, 81-442, 444-65535",
                "0-65535",
            ),
            ("INCOMING_SSH_DISABLED", &[("x", "1")], &p, "22", "none"),
        ];
        for (id, params, policy, tcp, udp) in cases {
            let params = rp(params);
            let o = offending(&rule(id), &config(&params), policy).unwrap();
            assert_eq!(o.tcp.to_string(), *tcp, "{id} {params:?}");
            assert_eq!(o.udp.to_string(), *udp, "{id} {params:?}");
        }
    }

    #[test]
    fn what_is_not_judged() {
        let p = Params::default();
        let none = Evaluated::default();
        assert!(offending(&control_id("EC2.2"), &none, &p).is_err());
        assert!(offending(&FindingKind::GuarddutyType("x".into()), &none, &p).is_err());
        let http = cp(&[("authorizedTcpPorts", &["http"])]);
        let bad = offending(&control_id("EC2.18"), &control(&http), &p);
        assert!(bad.unwrap_err().contains("authorizedTcpPorts"));
        let ssh = rp(&[("blockedPort1", "ssh")]);
        let bad = offending(&rule("RESTRICTED_INCOMING_TRAFFIC"), &config(&ssh), &p);
        assert!(bad.unwrap_err().contains("ssh"));
    }
}
