//! What the catalog's functions read from a finding: remote addresses (v4 and v6), the DNS
//! domain, the access key's principal, the resources an API call touched, a control's
//! parameters, an Inspector finding's vulnerabilities, IAM groups. Each from a committed sample
//! in `events/real-shapes/`, GuardDuty's straight and through Security Hub alike.

use super::{ips, one};
use crate::finding::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;

macro_rules! shape {
    ($file:literal) => {
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../events/real-shapes/",
            $file
        ))
    };
}

const INSTANCE_ARN: &str = "arn:aws:ec2:us-east-1:123456789012:instance/i-0abc1234def567890";

/// The instance a GuardDuty EC2 finding names: in `resources`, with its ARN, and in `details`.
fn names_the_instance(f: &Finding) {
    assert_eq!(
        f.details.instance_id.as_deref(),
        Some("i-0abc1234def567890")
    );
    assert!(
        f.resources.contains(&Resource {
            kind: ResourceKind::Ec2Instance,
            id: "i-0abc1234def567890".into(),
            arn: Some(INSTANCE_ARN.into()),
        }),
        "{:?}",
        f.resources
    );
}

pub(super) fn ssh_brute_force(f: &Finding) {
    names_the_instance(f);
    assert_eq!(
        f.details.remote_ips,
        ips(&["198.51.100.7"]),
        "the remote address, never the instance's own (localIpDetails)"
    );
    assert_eq!(f.details.dns_domain, None);
    assert!(f.details.affected_resources.is_empty());
}

pub(super) fn port_probe_several_ips(f: &Finding) {
    names_the_instance(f);
    assert_eq!(
        f.details.remote_ips,
        ips(&["203.0.113.44", "198.51.100.99"]),
        "each probe's address, in the probes' order"
    );
    assert_eq!(f.details.resource_role.as_deref(), Some("TARGET"));
    let arn = f
        .details
        .guardduty_arn
        .as_deref()
        .expect("the GuardDuty ARN");
    assert_eq!(
        crate::finding::guardduty_arn_parts(arn),
        Some((
            "6cb5b3f3d1a2e4f5a6b7c8d9e0f1a2b3",
            "b3d5f7a9c1e3b5d7f9a1c3e5b7d9f1a3"
        ))
    );
}

pub(super) fn ipv6_remote(f: &Finding) {
    names_the_instance(f);
    // The third probe writes the first address longhand: one address, listed once.
    assert_eq!(f.details.remote_ips, ips(&["2001:db8::7", "2a05:d018::1"]));
    assert!(f.details.remote_ips.iter().all(|ip| ip.is_ipv6()));
}

pub(super) fn dns_request_domain(f: &Finding) {
    names_the_instance(f);
    assert_eq!(f.details.dns_domain.as_deref(), Some("c2.badactor.example"));
    assert!(f.details.remote_ips.is_empty());
    assert_eq!(f.severity.label, SeverityLabel::High);
}

pub(super) fn access_key_user_type(f: &Finding) {
    assert_eq!(
        f.details.access_key_id.as_deref(),
        Some("AKIAZ3EXAMPLEKEY7890")
    );
    assert_eq!(f.details.user_name.as_deref(), Some("mallory"));
    assert_eq!(f.details.user_type.as_deref(), Some("IAMUser"));
    assert_eq!(
        f.details.principal_id.as_deref(),
        Some("AIDAZ3EXAMPLEUSER5678")
    );
    assert_eq!(f.details.remote_ips, ips(&["198.51.100.61"]));
    assert_eq!(
        f.details.affected_resources,
        BTreeMap::from([(
            "AWS::CloudTrail::Trail".to_string(),
            "arn:aws:cloudtrail:us-east-1:123456789012:trail/org-trail".to_string()
        )])
    );
    assert_eq!(f.resources[0].kind, ResourceKind::IamAccessKey);
}

pub(super) fn ec2_18_control_parameters(f: &Finding) {
    assert_eq!(
        f.details.control_parameters,
        BTreeMap::from([
            (
                "authorizedTcpPorts".to_string(),
                vec!["80".into(), "443".into()]
            ),
            (
                "authorizedUdpPorts".to_string(),
                vec!["500".into(), "4500".into()]
            ),
        ])
    );
    assert_eq!(f.resources[0].kind, ResourceKind::Ec2SecurityGroup);
    assert_eq!(f.resources[0].id, "sg-0123abcd");
}

pub(super) fn inspector_ec2_cve(f: &Finding) {
    assert_eq!(f.details.vulnerabilities, ["CVE-2024-3094"]);
    assert_eq!(f.severity.label, SeverityLabel::Critical);
    assert_eq!(f.family(), "securityhub");
    names_the_instance(f);
}

pub(super) fn config_iam_group(f: &Finding) {
    assert_eq!(f.resources[0].kind, ResourceKind::IamGroup);
    assert_eq!(f.resources[0].id, "AGPAZ3EXAMPLEGROUP123");
    assert_eq!(
        f.resources[0].arn, None,
        "Config names the group by its unique id, not its name: no ARN is made up"
    );
}

/// A GuardDuty finding gives the same details whether it comes straight from GuardDuty or
/// through Security Hub (`ProductFields` flattened, the access key in `Resources[].Details`),
/// under one identity.
#[test]
fn guardduty_details_are_the_same_either_way() {
    let pairs = [
        (
            shape!("guardduty-port-probe-several-ips.json"),
            shape!("securityhub-guardduty-port-probe-several-ips.json"),
        ),
        (
            shape!("guardduty-ipv6-remote.json"),
            shape!("securityhub-guardduty-ipv6-remote.json"),
        ),
        (
            shape!("guardduty-dns-request-domain.json"),
            shape!("securityhub-guardduty-dns-request-domain.json"),
        ),
        (
            shape!("guardduty-iam-access-key-user-type.json"),
            shape!("securityhub-guardduty-iam-access-key-user-type.json"),
        ),
    ];
    for (direct, via_sh) in pairs {
        let (direct, via_sh) = (one(direct), one(via_sh));
        assert_eq!(via_sh.source, Source::Securityhub);
        assert_eq!(direct.kind, via_sh.kind);
        assert_eq!(direct.id, via_sh.id, "one identity");
        assert_eq!(direct.details, via_sh.details, "{:?}", direct.kind);
    }
}

/// Addresses come from every action kind that names one, v4 and v6, in a fixed order; text
/// that is not an address is left out. Each case replaces a sample's `service.action`.
#[test]
fn remote_addresses_of_each_action_kind() {
    let base: Value = serde_json::from_str(shape!("guardduty-ssh-brute-force-ipv4.json")).unwrap();
    let cases: &[(Value, &[&str])] = &[
        (
            json!({"networkConnectionAction": {"remoteIpDetails": {"ipAddressV4": "198.51.100.7", "ipAddressV6": "2a05:d018::1"}}}),
            &["198.51.100.7", "2a05:d018::1"],
        ),
        (
            json!({"awsApiCallAction": {"remoteIpDetails": {"ipAddressV6": "2a05:d018::2"}}}),
            &["2a05:d018::2"],
        ),
        (
            json!({"rdpLoginAttemptAction": {"remoteIpDetails": {"ipAddressV4": "192.0.2.200"}}}),
            &["192.0.2.200"],
        ),
        (
            json!({"kubernetesApiCallAction": {"remoteIpDetails": {"ipAddressV4": "203.0.113.9"}}}),
            &["203.0.113.9"],
        ),
        (
            json!({"portProbeAction": {"portProbeDetails": [
                {"remoteIpDetails": {"ipAddressV4": "203.0.113.1"}},
                {"remoteIpDetails": {"ipAddressV4": "not an address"}},
                {"remoteIpDetails": {"ipAddressV4": "203.0.113.1"}},
                {"remoteIpDetails": {"ipAddressV4": 3405803777u32}},
                {"remoteIpDetails": {"ipAddressV6": "2001:db8::1%eth0"}},
                {"remoteIpDetails": {"ipAddressV4": "203.0.113.3"}}
            ]}}),
            &["203.0.113.1", "203.0.113.3"],
        ),
        (json!({"dnsRequestAction": {"domain": "example.com"}}), &[]),
        (json!("NETWORK_CONNECTION"), &[]),
    ];
    for (action, want) in cases {
        let mut event = base.clone();
        event["detail"]["service"]["action"] = action.clone();
        let f = parse_event(&event).expect("parses").remove(0);
        assert_eq!(f.details.remote_ips, ips(want), "{action}");
    }
}

/// `Compliance.SecurityControlParameters` as Security Hub writes it, and what is made of
/// anything else: a parameter with a value that is not text (or a number) is left out whole,
/// never shortened.
#[test]
fn control_parameters_are_read_leniently() {
    let base: Value =
        serde_json::from_str(shape!("securityhub-ec2.18-control-parameters.json")).unwrap();
    // (SecurityControlParameters, parameters by name)
    type Parameters = &'static [(&'static str, &'static [&'static str])];
    let cases: &[(Value, Parameters)] = &[
        (
            json!([{"Name": "authorizedTcpPorts", "Value": ["22"]}]),
            &[("authorizedTcpPorts", &["22"])],
        ),
        (
            json!([{"Name": "authorizedTcpPorts", "Value": [80, "443"]}]),
            &[("authorizedTcpPorts", &["80", "443"])],
        ),
        (
            json!([{"Name": "authorizedTcpPorts", "Value": []}]),
            &[("authorizedTcpPorts", &[])],
        ),
        (
            json!([{"Name": "authorizedTcpPorts", "Value": ["80", null]}, {"Name": "b", "Value": ["1"]}]),
            &[("b", &["1"])],
        ),
        (json!([{"Name": "authorizedTcpPorts", "Value": "80"}]), &[]),
        (
            json!([{"Value": ["80"]}, {"Name": "", "Value": ["80"]}]),
            &[],
        ),
        (
            json!([{"Name": "a", "Value": ["1"]}, {"Name": "a", "Value": ["2"]}]),
            &[("a", &["1"])],
        ),
        (json!({"Name": "a", "Value": ["1"]}), &[]),
        (Value::Null, &[]),
    ];
    for (raw, want) in cases {
        let mut event = base.clone();
        event["detail"]["findings"][0]["Compliance"]["SecurityControlParameters"] = raw.clone();
        let f = parse_event(&event).expect("parses").remove(0);
        let want: BTreeMap<String, Vec<String>> = want
            .iter()
            .map(|(k, vs)| (k.to_string(), vs.iter().map(|v| v.to_string()).collect()))
            .collect();
        assert_eq!(f.details.control_parameters, want, "{raw}");
        assert_eq!(f.kind, FindingKind::Control("EC2.18".into()), "{raw}");
    }
}

/// An Inspector finding's kind: its CVE where it names one, else its first vulnerability id,
/// else its type; with neither it is not handled, saying so.
#[test]
fn inspector_findings_are_vulnerabilities() {
    let base: Value = serde_json::from_str(shape!("securityhub-inspector-ec2-cve.json")).unwrap();
    let cve_type = "Software and Configuration Checks/Vulnerabilities/CVE";
    let cases: &[(Value, Value, FindingKind, &[&str])] = &[
        (
            json!([{"Id": "GHSA-2q5p-8x7v-abcd"}, {"Id": "CVE-2024-3094"}, {"Id": "CVE-2024-3094"}]),
            json!([cve_type]),
            FindingKind::Vulnerability("CVE-2024-3094".into()),
            &["GHSA-2q5p-8x7v-abcd", "CVE-2024-3094"],
        ),
        (
            json!([{"Id": "ALAS2023-2024-550"}]),
            json!([cve_type]),
            FindingKind::Vulnerability("ALAS2023-2024-550".into()),
            &["ALAS2023-2024-550"],
        ),
        (
            json!([{"Id": ""}, {"VulnerablePackages": []}]),
            json!([cve_type]),
            FindingKind::Vulnerability(cve_type.into()),
            &[],
        ),
        (
            Value::Null,
            json!([]),
            FindingKind::Unrecognised(
                "Inspector finding with no vulnerability id and no type".into(),
            ),
            &[],
        ),
    ];
    for (vulnerabilities, types, kind, ids) in cases {
        let mut event = base.clone();
        let finding = &mut event["detail"]["findings"][0];
        match vulnerabilities {
            Value::Null => {
                finding.as_object_mut().unwrap().remove("Vulnerabilities");
            }
            v => finding["Vulnerabilities"] = v.clone(),
        }
        finding["Types"] = types.clone();
        let f = parse_event(&event).expect("parses").remove(0);
        assert_eq!(&f.kind, kind, "{vulnerabilities}");
        assert_eq!(f.details.vulnerabilities, *ids, "{vulnerabilities}");
        assert_eq!(
            f.details.instance_id.as_deref(),
            Some("i-0abc1234def567890")
        );
    }
    // Vulnerabilities of another product's finding are not read as Inspector's.
    let third_party = one(shape!(
        "securityhub-third-party-no-compliance-offset-timestamps.json"
    ));
    assert!(third_party.details.vulnerabilities.is_empty());
}

#[test]
fn resource_kinds_from_each_vocabulary() {
    let cases: &[(&str, ResourceKind, &str)] = &[
        ("AwsIamGroup", ResourceKind::IamGroup, "AwsIamGroup"),
        ("AWS::IAM::Group", ResourceKind::IamGroup, "AwsIamGroup"),
        ("AwsIamUser", ResourceKind::IamUser, "AwsIamUser"),
        (
            "AWS::EC2::Instance",
            ResourceKind::Ec2Instance,
            "AwsEc2Instance",
        ),
        ("Instance", ResourceKind::Ec2Instance, "AwsEc2Instance"),
        (
            "AWS::IAM::GroupPolicy",
            ResourceKind::Other("AWS::IAM::GroupPolicy".into()),
            "AWS::IAM::GroupPolicy",
        ),
    ];
    for (name, kind, stored) in cases {
        assert_eq!(&ResourceKind::parse(name), kind, "{name}");
        assert_eq!(kind.as_str(), *stored, "{name}");
    }
    assert_eq!(
        crate::finding::resource_arn(
            &ResourceKind::IamGroup,
            "admins",
            "us-east-1",
            "123456789012"
        )
        .as_deref(),
        Some("arn:aws:iam::123456789012:group/admins")
    );
}

/// The finding is stored in the outcome record (DynamoDB, through serde_dynamo): every new
/// field survives the round trip, a finding without them writes none of their keys, and a
/// record written before them (one `remote_ip` string) still reads.
#[test]
fn stored_findings_keep_the_new_fields_and_old_records_read() {
    let new_keys = [
        "remote_ips",
        "dns_domain",
        "user_type",
        "principal_id",
        "affected_resources",
        "control_parameters",
        "vulnerabilities",
    ];
    for raw in [
        shape!("guardduty-ipv6-remote.json"),
        shape!("guardduty-dns-request-domain.json"),
        shape!("guardduty-iam-access-key-user-type.json"),
        shape!("securityhub-ec2.18-control-parameters.json"),
        shape!("securityhub-inspector-ec2-cve.json"),
        shape!("config-iam-group.json"),
    ] {
        let f = one(raw);
        let item: serde_dynamo::Item = serde_dynamo::to_item(&f).unwrap();
        let again: Finding = serde_dynamo::from_item(item).unwrap();
        assert_eq!(again, f);
        let json: Finding = serde_json::from_value(serde_json::to_value(&f).unwrap()).unwrap();
        assert_eq!(json, f);
    }
    // Addresses are stored as text.
    let stored = serde_json::to_value(one(shape!("guardduty-ipv6-remote.json"))).unwrap();
    assert_eq!(
        stored["details"]["remote_ips"],
        json!(["2001:db8::7", "2a05:d018::1"])
    );
    // A finding with none of them writes none of their keys.
    let bare = serde_json::to_value(one(shape!("config-iam-group.json"))).unwrap();
    for key in new_keys {
        assert!(bare["details"].get(key).is_none(), "{key}: {bare}");
    }
    // Records written before: one `remote_ip` string, or none; text that is no address is
    // dropped, never fatal.
    let mut old = bare.clone();
    for (remote_ip, want) in [
        (json!("198.51.100.23"), ips(&["198.51.100.23"])),
        (json!("not an address"), vec![]),
    ] {
        old["details"] = json!({"access_key_id": "ASIAZ3EXAMPLE7QWERTY", "remote_ip": remote_ip});
        let read: Finding = serde_json::from_value(old.clone()).unwrap();
        assert_eq!(read.details.remote_ips, want);
        assert_eq!(
            read.details.access_key_id.as_deref(),
            Some("ASIAZ3EXAMPLE7QWERTY")
        );
        let item: serde_dynamo::Item = serde_dynamo::to_item(&old).unwrap();
        let read: Finding = serde_dynamo::from_item(item).unwrap();
        assert_eq!(read.details.remote_ips, want, "from DynamoDB");
    }
    old["details"] = json!({});
    let read: Finding = serde_json::from_value(old).unwrap();
    assert_eq!(read.details, FindingDetails::default());
}
