//! What a GuardDuty finding's `service.action` names: remote addresses, the DNS domain, the
//! resources an API call touched.
//!
//! GuardDuty sends the action as nested JSON; Security Hub carries the same fields flattened into
//! `ProductFields` strings (`aws/guardduty/service/action/portProbeAction/portProbeDetails/0/
//! remoteIpDetails/ipAddressV4`). Both are read here in that one flattened form, so a finding
//! yields the same details whichever way it arrives.

use serde_json::Value;
use std::collections::BTreeMap;
use std::net::IpAddr;

/// The `ProductFields` prefix under which Security Hub flattens GuardDuty's `service.action`.
pub(super) const PRODUCT_FIELDS_PREFIX: &str = "aws/guardduty/service/action/";

/// The action kinds that name a remote address, in the order their addresses are listed.
const REMOTE_IP_ACTIONS: [&str; 5] = [
    "networkConnectionAction",
    "awsApiCallAction",
    "portProbeAction",
    "rdpLoginAttemptAction",
    "kubernetesApiCallAction",
];

/// The details lifted from one action.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct ActionDetails {
    pub remote_ips: Vec<IpAddr>,
    pub dns_domain: Option<String>,
    pub affected_resources: BTreeMap<String, String>,
}

/// The action's text leaves, keyed by their path below `service.action` (`/`-separated, array
/// elements by index), the form Security Hub writes them in.
pub(super) fn flatten(action: &Value) -> BTreeMap<String, String> {
    fn walk(v: &Value, path: &mut String, out: &mut BTreeMap<String, String>) {
        let mut descend = |key: &str, child: &Value, path: &mut String| {
            let len = path.len();
            if !path.is_empty() {
                path.push('/');
            }
            path.push_str(key);
            walk(child, path, out);
            path.truncate(len);
        };
        match v {
            Value::Object(map) => map.iter().for_each(|(k, c)| descend(k, c, path)),
            Value::Array(items) => items
                .iter()
                .enumerate()
                .for_each(|(i, c)| descend(&i.to_string(), c, path)),
            Value::String(s) => {
                out.insert(path.clone(), s.clone());
            }
            _ => {}
        }
    }
    let mut out = BTreeMap::new();
    walk(action, &mut String::new(), &mut out);
    out
}

/// The action fields of a Security Hub finding's `ProductFields`, with the prefix taken off.
pub(super) fn from_product_fields(fields: &BTreeMap<String, Value>) -> BTreeMap<String, String> {
    fields
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix(PRODUCT_FIELDS_PREFIX)?, v.as_str()?)))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The details of a flattened action.
pub(super) fn details(fields: &BTreeMap<String, String>) -> ActionDetails {
    let nonempty = |s: &String| !s.trim().is_empty();
    ActionDetails {
        remote_ips: remote_ips(fields),
        dns_domain: fields
            .get("dnsRequestAction/domain")
            .filter(|d| nonempty(d))
            .cloned(),
        affected_resources: fields
            .iter()
            .filter_map(|(k, v)| {
                let kind = k.strip_prefix("awsApiCallAction/affectedResources/")?;
                (!kind.is_empty() && nonempty(v)).then(|| (kind.to_string(), v.clone()))
            })
            .collect(),
    }
}

/// Where a path names a remote address: (action, probe index, v4 before v6), the order the
/// addresses are listed in; `None` for any other path.
fn remote_ip_rank(path: &str) -> Option<(usize, usize, usize)> {
    let parts: Vec<&str> = path.split('/').collect();
    let (action, index, rest) = match parts.as_slice() {
        ["portProbeAction", "portProbeDetails", n, rest @ ..] => {
            ("portProbeAction", n.parse::<usize>().ok()?, rest)
        }
        [action, rest @ ..] => (*action, 0, rest),
        [] => return None,
    };
    let family = match rest {
        ["remoteIpDetails", "ipAddressV4"] => 0,
        ["remoteIpDetails", "ipAddressV6"] => 1,
        _ => return None,
    };
    let action = REMOTE_IP_ACTIONS.iter().position(|a| *a == action)?;
    Some((action, index, family))
}

/// Every remote address, in rank order, each once. Text that is not an address is skipped.
fn remote_ips(fields: &BTreeMap<String, String>) -> Vec<IpAddr> {
    let mut ranked: Vec<((usize, usize, usize), IpAddr)> = fields
        .iter()
        .filter_map(|(path, text)| Some((remote_ip_rank(path)?, text.parse().ok()?)))
        .collect();
    ranked.sort_by_key(|(rank, _)| *rank);
    let mut out: Vec<IpAddr> = Vec::new();
    for (_, ip) in ranked {
        if !out.contains(&ip) {
            out.push(ip);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ips(list: &[&str]) -> Vec<IpAddr> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn flatten_writes_paths_as_security_hub_does() {
        let action = json!({
            "actionType": "PORT_PROBE",
            "portProbeAction": {"blocked": false, "portProbeDetails": [
                {"localPortDetails": {"port": 22}, "remoteIpDetails": {"ipAddressV4": "203.0.113.1"}},
                {"remoteIpDetails": {"ipAddressV6": "2a05:d018::1"}}
            ]}
        });
        let flat = flatten(&action);
        let want: BTreeMap<String, String> = [
            ("actionType", "PORT_PROBE"),
            (
                "portProbeAction/portProbeDetails/0/remoteIpDetails/ipAddressV4",
                "203.0.113.1",
            ),
            (
                "portProbeAction/portProbeDetails/1/remoteIpDetails/ipAddressV6",
                "2a05:d018::1",
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(flat, want, "numbers and booleans are not text");
    }

    /// Flattened action fields (path, text).
    type Fields = &'static [(&'static str, &'static str)];

    #[test]
    fn remote_ips_table() {
        // (flattened fields, addresses in order)
        let cases: &[(Fields, &[&str])] = &[
            (&[], &[]),
            (
                &[(
                    "networkConnectionAction/remoteIpDetails/ipAddressV4",
                    "198.51.100.7",
                )],
                &["198.51.100.7"],
            ),
            // v4 before v6 within one action; actions in the listed order, whatever the key order
            (
                &[
                    (
                        "kubernetesApiCallAction/remoteIpDetails/ipAddressV4",
                        "203.0.113.9",
                    ),
                    (
                        "awsApiCallAction/remoteIpDetails/ipAddressV6",
                        "2a05:d018::1",
                    ),
                    (
                        "awsApiCallAction/remoteIpDetails/ipAddressV4",
                        "198.51.100.1",
                    ),
                    (
                        "rdpLoginAttemptAction/remoteIpDetails/ipAddressV4",
                        "192.0.2.200",
                    ),
                ],
                &["198.51.100.1", "2a05:d018::1", "192.0.2.200", "203.0.113.9"],
            ),
            // probes in index order (10 after 2, though it sorts first as text), each once
            (
                &[
                    (
                        "portProbeAction/portProbeDetails/10/remoteIpDetails/ipAddressV4",
                        "203.0.113.10",
                    ),
                    (
                        "portProbeAction/portProbeDetails/2/remoteIpDetails/ipAddressV4",
                        "203.0.113.2",
                    ),
                    (
                        "portProbeAction/portProbeDetails/0/remoteIpDetails/ipAddressV4",
                        "203.0.113.2",
                    ),
                ],
                &["203.0.113.2", "203.0.113.10"],
            ),
            // text that is not an address, or not where an address is, is left out
            (
                &[
                    (
                        "networkConnectionAction/remoteIpDetails/ipAddressV4",
                        "not-an-ip",
                    ),
                    (
                        "networkConnectionAction/remoteIpDetails/ipAddressV6",
                        "2001:db8::1%eth0",
                    ),
                    (
                        "awsApiCallAction/remoteIpDetails/ipAddressV4",
                        "198.51.100.023",
                    ),
                    (
                        "awsApiCallAction/remoteIpDetails/ipAddressV4/extra",
                        "198.51.100.3",
                    ),
                    (
                        "portProbeAction/portProbeDetails/x/remoteIpDetails/ipAddressV4",
                        "198.51.100.4",
                    ),
                    (
                        "networkConnectionAction/localIpDetails/ipAddressV4",
                        "10.0.0.12",
                    ),
                    (
                        "dnsRequestAction/remoteIpDetails/ipAddressV4",
                        "198.51.100.5",
                    ),
                    (
                        "rdpLoginAttemptAction/remoteIpDetails/ipAddressV4",
                        " 198.51.100.6",
                    ),
                ],
                &[],
            ),
        ];
        for (fields, want) in cases {
            let fields: BTreeMap<String, String> = fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            assert_eq!(remote_ips(&fields), ips(want), "{fields:?}");
        }
    }

    #[test]
    fn product_fields_lose_their_prefix_and_non_text() {
        let fields: BTreeMap<String, Value> = [
            (
                "aws/guardduty/service/action/dnsRequestAction/domain",
                json!("c2.example.com"),
            ),
            ("aws/guardduty/service/archived", json!("false")),
            ("aws/guardduty/service/action/odd", json!(7)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let flat = from_product_fields(&fields);
        assert_eq!(flat.len(), 1);
        assert_eq!(details(&flat).dns_domain.as_deref(), Some("c2.example.com"));
    }

    #[test]
    fn affected_resources_and_domain_need_text() {
        let fields: BTreeMap<String, String> = [
            (
                "awsApiCallAction/affectedResources/AWS::CloudTrail::Trail",
                "arn:aws:cloudtrail:us-east-1:123456789012:trail/main",
            ),
            ("awsApiCallAction/affectedResources/AWS::S3::Bucket", ""),
            ("awsApiCallAction/affectedResources/", "arn:aws:s3:::x"),
            ("dnsRequestAction/domain", " "),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let d = details(&fields);
        assert_eq!(d.dns_domain, None);
        assert_eq!(
            d.affected_resources.into_iter().collect::<Vec<_>>(),
            [(
                "AWS::CloudTrail::Trail".to_string(),
                "arn:aws:cloudtrail:us-east-1:123456789012:trail/main".to_string()
            )]
        );
    }
}
