//! sg-revoke-open-ingress end to end against the emulator: each test makes its own security
//! groups (in the emulator's default VPC, under unique names), so parallel tests never share one.
//!
//! moto 5.2 implements what this function calls — `DescribeSecurityGroupRules` (with the
//! `group-id` filter), `RevokeSecurityGroupIngress` by `SecurityGroupRuleIds`, and
//! `AuthorizeSecurityGroupIngress` answering the new rule's id, and Config's
//! `DescribeConfigRules` returning a managed rule's `InputParameters` — so nothing here is
//! mocked.
//! Tried on the emulator; three ways it differs from AWS, none of which these tests lean on:
//! - a revoke naming an unknown rule id answers `InvalidPermission.NotFound` (AWS:
//!   `InvalidSecurityGroupRuleId.NotFound`); the adapter takes both as "already gone";
//! - `AuthorizeSecurityGroupIngress` with several `IpPermissions` answers only the last one's
//!   rules; the function authorizes one rule per call;
//! - a referenced-group rule loses its description.
//!
//! Like AWS, the emulator gives a re-authorized rule a new rule id, so the tests compare rules by
//! content.

use reflex_shared::ledger::Action;
use reflex_shared::pipeline::{self, Handled};
use reflex_shared::status::{Reason, Status};
use reflex_tests::common::Subject;
use reflex_tests::sg_revoke_open_ingress::{
    allowed, ec2, event_for, group, ingress, managed_rule_with, RuleSpec, EC2_13, EC2_18,
};
use reflex_tests::{common_cases, Harness, HarnessOptions};
use serde_json::{json, Value};
use sg_revoke_open_ingress::{GroupState, Rule, SgRevokeOpenIngress, SgTarget, Source};

common_cases!(SgRevokeOpenIngress);

fn apis(actions: &[Action]) -> Vec<&str> {
    actions.iter().map(|a| a.api.as_str()).collect()
}

fn function(h: &Harness) -> SgRevokeOpenIngress {
    <SgRevokeOpenIngress as Subject>::new(h)
}

async fn deliver(h: &Harness, f: &SgRevokeOpenIngress, event: Value) -> Handled {
    h.deliver_to(f, event).await.expect("handled").remove(0)
}

/// The issue's case: one group under EC2.13 with SSH from the world (IPv4 and IPv6), SSH from
/// a private network, HTTPS from the world, and all traffic from a peer group. Only the two
/// world-open port-22 rules go; rollback restores them, with their descriptions, under new ids.
#[tokio::test]
async fn under_ec2_13_only_the_two_world_open_port_22_rules_go_and_rollback_restores_them() {
    let h = Harness::new().await;
    let f = function(&h);
    let peer = group(&h, &[], &[]).await;
    let g = group(
        &h,
        &[
            ("tcp", 22, 22, "0.0.0.0/0", Some("ssh v4")),
            ("tcp", 22, 22, "10.0.0.0/8", Some("office")),
            ("tcp", 443, 443, "0.0.0.0/0", Some("https")),
            ("tcp", 22, 22, "::/0", Some("ssh v6")),
            ("-1", -1, -1, &peer, None),
        ],
        &[],
    )
    .await;
    let before = ingress(&h, &g).await;
    let world_ssh: Vec<Rule> = before
        .iter()
        .filter(|r| r.is_world() && r.from_port == 22)
        .cloned()
        .collect();
    assert_eq!(world_ssh.len(), 2);

    let o = deliver(&h, &f, event_for(EC2_13, &g, "-issue")).await;
    assert_eq!(
        (o.status, o.reason),
        (Status::Succeeded, Reason::Remediated),
        "{o:?}"
    );
    assert_eq!(
        allowed(&h, &g).await,
        [
            "-1/-1--1 ".to_string() + &peer,
            "tcp/22-22 10.0.0.0/8".into(),
            "tcp/443-443 0.0.0.0/0".into(),
        ]
    );
    let r = h.record(&o.record_id).await;
    // Both rules in one call (one round).
    assert_eq!(apis(&r.actions), ["ec2:RevokeSecurityGroupIngress"]);
    // Revoked by rule id, each rule's content on the record.
    let step = &r.actions[0].parameters;
    let ids = step["SecurityGroupRuleIds"].as_array().unwrap();
    let rules = step["Rules"].as_array().unwrap();
    assert_eq!(ids.len(), rules.len());
    let mut revoked: Vec<(String, Value)> = ids
        .iter()
        .zip(rules)
        .map(|(id, rule)| (id.as_str().unwrap().to_string(), rule.clone()))
        .collect();
    revoked.sort_by(|a, b| a.0.cmp(&b.0));
    let mut want: Vec<(String, Value)> = world_ssh
        .iter()
        .map(|w| {
            let cidr = match &w.source {
                Source::Ipv4 { cidr } => json!({"CidrIpv4": cidr}),
                Source::Ipv6 { cidr } => json!({"CidrIpv6": cidr}),
                _ => unreachable!(),
            };
            let mut rule = json!({"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
                "Description": w.description, "SecurityGroupRuleId": w.id});
            rule.as_object_mut()
                .unwrap()
                .extend(cidr.as_object().unwrap().clone());
            (w.id.clone(), rule)
        })
        .collect();
    want.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(revoked, want);
    let pre: GroupState = serde_json::from_value(r.pre_state.clone().unwrap()).unwrap();
    assert_eq!(pre.ingress.len(), 5);
    assert_eq!(
        h.calls.writes().len(),
        1,
        "one revoke: {:?}",
        h.calls.calls()
    );

    let by = "arn:aws:iam::123456789012:user/operator";
    let until = chrono::Utc::now() + chrono::Duration::hours(1);
    let rolled = pipeline::rollback(&h.setup, &f, &o.record_id, by, false, until)
        .await
        .unwrap();
    assert_eq!(rolled.status, Status::RolledBack, "{rolled:?}");
    let after = ingress(&h, &g).await;
    let contents = |rules: &[Rule]| {
        let mut c: Vec<Rule> = rules.iter().map(Rule::content).collect();
        c.sort();
        c
    };
    assert_eq!(
        contents(&after),
        contents(&before),
        "exactly the rules back"
    );
    for w in &world_ssh {
        let back = after
            .iter()
            .find(|r| r.content() == w.content())
            .expect("re-authorized");
        assert_ne!(back.id, w.id, "a re-authorized rule has a new id");
    }
    let r = h.record(&o.record_id).await;
    assert_eq!(r.status, Status::RolledBack);
}

/// The issue's group again, with HTTP from the world beside HTTPS, under an EC2.18 finding
/// whose parameters authorize 80 and 443: those are left, whatever the policy's own list says
/// (the finding's parameters win); SSH from the world goes, and so does DNS over UDP from the
/// world (the finding authorizes no UDP port). Rules from a private network and a peer group
/// stay.
#[tokio::test]
async fn ec2_18_with_parameters_authorizing_80_and_443_leaves_those() {
    let h = Harness::with(HarnessOptions {
        policy: reflex_shared::policy::Policy::from_yaml(
            "version: 1\nremediations:\n  sg-revoke-open-ingress:\n    parameters: {authorized_tcp_ports: [22]}",
        ),
        ..Default::default()
    })
    .await;
    let f = function(&h);
    let peer = group(&h, &[], &[]).await;
    let g = group(
        &h,
        &[
            ("tcp", 22, 22, "0.0.0.0/0", None),
            ("tcp", 22, 22, "10.0.0.0/8", None),
            ("tcp", 443, 443, "0.0.0.0/0", None),
            ("tcp", 22, 22, "::/0", None),
            ("-1", -1, -1, &peer, None),
            ("tcp", 80, 80, "0.0.0.0/0", None),
            ("tcp", 443, 443, "::/0", None),
            ("udp", 53, 53, "0.0.0.0/0", None),
        ],
        &[],
    )
    .await;
    let o = deliver(&h, &f, event_for(EC2_18, &g, "-ec218")).await;
    assert_eq!(o.status, Status::Succeeded, "{o:?}");
    assert_eq!(
        allowed(&h, &g).await,
        [
            "-1/-1--1 ".to_string() + &peer,
            "tcp/22-22 10.0.0.0/8".into(),
            "tcp/443-443 0.0.0.0/0".into(),
            "tcp/443-443 ::/0".into(),
            "tcp/80-80 0.0.0.0/0".into(),
        ]
    );
    let r = h.record(&o.record_id).await;
    assert_eq!(
        apis(&r.actions),
        ["ec2:RevokeSecurityGroupIngress"],
        "{:?}",
        r.actions
    );
    assert_eq!(
        r.actions[0].parameters["SecurityGroupRuleIds"]
            .as_array()
            .map(Vec::len),
        Some(3),
        "three rules, one call"
    );
    let target: SgTarget = serde_json::from_value(r.target.clone().unwrap()).unwrap();
    assert!(
        target
            .offending
            .why
            .contains("the finding's SecurityControlParameters"),
        "{}",
        target.offending.why
    );
}

/// A rule wider than the offending ports (tcp 0-65535 from the world) keeps its allowed part:
/// under EC2.18 authorizing 80 and 443, those two are authorized first (same CIDR and
/// description), then the wide rule is revoked; rollback puts the wide rule back and removes
/// the parts.
#[tokio::test]
async fn a_wide_rule_keeps_its_allowed_part_authorized_before_it_is_revoked() {
    let h = Harness::new().await;
    let f = function(&h);
    let g = group(&h, &[("tcp", 0, 65535, "0.0.0.0/0", Some("all tcp"))], &[]).await;
    let o = deliver(&h, &f, event_for(EC2_18, &g, "-wide")).await;
    assert_eq!(o.status, Status::Succeeded, "{o:?}");
    let now = ingress(&h, &g).await;
    let mut kept: Vec<(i32, Option<String>)> = now
        .iter()
        .map(|r| (r.from_port, r.description.clone()))
        .collect();
    kept.sort();
    assert_eq!(
        kept,
        [(80, Some("all tcp".into())), (443, Some("all tcp".into()))]
    );
    assert!(now.iter().all(|r| r.from_port == r.to_port && r.is_world()));
    let r = h.record(&o.record_id).await;
    assert_eq!(
        apis(&r.actions),
        [
            "ec2:AuthorizeSecurityGroupIngress",
            "ec2:AuthorizeSecurityGroupIngress",
            "ec2:RevokeSecurityGroupIngress"
        ],
        "the allowed part first"
    );
    assert_eq!(
        r.actions[2].parameters["Rules"][0]["KeptByAuthorizingFirst"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );

    let until = chrono::Utc::now() + chrono::Duration::hours(1);
    let rolled = pipeline::rollback(&h.setup, &f, &o.record_id, "operator", false, until)
        .await
        .unwrap();
    assert_eq!(rolled.status, Status::RolledBack, "{rolled:?}");
    assert_eq!(allowed(&h, &g).await, ["tcp/0-65535 0.0.0.0/0"]);
    assert_eq!(
        ingress(&h, &g).await[0].description.as_deref(),
        Some("all tcp")
    );
}

/// Every trigger: each sample, naming a group of its own whose world-open rule is what the
/// trigger names, beside HTTPS from the world (never offending for these triggers).
#[tokio::test]
async fn every_trigger_kind_revokes_what_it_names() {
    let h = Harness::new().await;
    // The Config samples' rules, as the managed rules they are (the pipeline resolves a rule's
    // identity by DescribeConfigRules, never by its name).
    for (name, identifier) in [
        (
            "securityhub-restricted-ssh-0a1b2c3d",
            "INCOMING_SSH_DISABLED",
        ),
        ("team-ssh-closed", "INCOMING_SSH_DISABLED"),
    ] {
        h.managed_config_rule(name, identifier).await;
    }
    // Rules with parameters of their own, which Config's events do not carry: the function
    // reads them (DescribeConfigRules). 8080 blocked in place of 20; only 443 authorized.
    managed_rule_with(
        &h,
        "restricted-common-ports-conformance-pack-x7k2m9q4d",
        "RESTRICTED_INCOMING_TRAFFIC",
        r#"{"blockedPort1": "8080"}"#,
    )
    .await;
    managed_rule_with(
        &h,
        "team-net-sg-authorized-ports",
        "VPC_SG_OPEN_ONLY_TO_AUTHORIZED_PORTS",
        r#"{"authorizedTcpPorts": "443"}"#,
    )
    .await;
    let f = function(&h);
    let cases: &[(&str, RuleSpec)] = &[
        (
            "securityhub-ec2.14-rdp-open.json",
            ("tcp", 3389, 3389, "0.0.0.0/0", None),
        ),
        (
            "securityhub-ec2.19-high-risk-port.json",
            ("udp", 5432, 5432, "::/0", None),
        ),
        (
            "securityhub-custom-action-remediate-ec2.13.json",
            ("tcp", 22, 22, "0.0.0.0/0", None),
        ),
        (
            "config-incoming-ssh-disabled-securityhub-rule.json",
            ("tcp", 22, 22, "::/0", None),
        ),
        (
            "config-restricted-incoming-traffic-conformance-pack.json",
            ("tcp", 8080, 8080, "0.0.0.0/0", None),
        ),
        (
            "config-restricted-incoming-traffic-conformance-pack.json",
            ("tcp", 3306, 3306, "::/0", None),
        ),
        (
            "config-vpc-sg-open-only-to-authorized-ports-custom-name.json",
            ("tcp", 80, 80, "0.0.0.0/0", None),
        ),
        (
            "securityhub-config-finding-incoming-ssh-disabled-custom-name.json",
            ("-1", -1, -1, "0.0.0.0/0", None),
        ),
    ];
    for (file, offending) in cases {
        let g = group(&h, &[*offending, ("tcp", 443, 443, "0.0.0.0/0", None)], &[]).await;
        let path = format!("sg-revoke-open-ingress/{file}");
        let o = deliver(&h, &f, event_for(&path, &g, &format!("-{g}"))).await;
        assert_eq!(o.status, Status::Succeeded, "{file}: {o:?}");
        let now = allowed(&h, &g).await;
        if offending.0 == "-1" {
            // All traffic from the world under an SSH rule: TCP and UDP but port 22 kept.
            assert_eq!(
                now,
                [
                    "tcp/0-21 0.0.0.0/0",
                    "tcp/23-65535 0.0.0.0/0",
                    "tcp/443-443 0.0.0.0/0",
                    "udp/0-65535 0.0.0.0/0"
                ],
                "{file}"
            );
        } else {
            assert_eq!(now, ["tcp/443-443 0.0.0.0/0"], "{file}");
        }
    }
}

#[tokio::test]
async fn a_deleted_group_is_gone_and_nothing_is_written() {
    let h = Harness::new().await;
    let f = function(&h);
    let g = group(&h, &[("tcp", 22, 22, "0.0.0.0/0", None)], &[]).await;
    ec2(&h)
        .delete_security_group()
        .group_id(&g)
        .send()
        .await
        .unwrap();
    let o = deliver(&h, &f, event_for(EC2_13, &g, "-gone")).await;
    assert_eq!(
        (o.status, o.reason),
        (Status::Skipped, Reason::ResourceGone),
        "{o:?}"
    );
    assert!(h.calls.writes().is_empty(), "{:?}", h.calls.calls());
}

#[tokio::test]
async fn the_demo_revokes_a_world_open_ssh_rule() {
    let h = Harness::new().await;
    reflex_cli::demo_sg_revoke_open_ingress::show(&h.setup)
        .await
        .expect("the demo runs");
    let records = h
        .setup
        .ledger
        .query(
            reflex_shared::ledger::Lookup::Remediation("sg-revoke-open-ingress"),
            None,
        )
        .await
        .unwrap();
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0].status, Status::Succeeded, "{:?}", records[0]);
    // SSH from the world over IPv4 and over IPv6: two rules, revoked by their ids in one call.
    assert_eq!(
        apis(&records[0].actions),
        ["ec2:RevokeSecurityGroupIngress"]
    );
    assert_eq!(
        records[0].actions[0].parameters["SecurityGroupRuleIds"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
}

/// The EC2 adapter on its own against the emulator: rules read with their ids, a revoke by id
/// (again: already gone, done), an authorization answering its new id (again: a duplicate,
/// found by content), tags, and a deleted group gone.
#[tokio::test]
async fn the_adapter_reads_and_changes_one_group() {
    let h = Harness::new().await;
    let g = group(
        &h,
        &[("tcp", 22, 22, "0.0.0.0/0", Some("ssh"))],
        &[("team", "net")],
    )
    .await;
    let ec2 = sg_revoke_open_ingress::Ec2::new(ec2(&h));
    let rules = ec2.ingress(&g).await.unwrap();
    assert_eq!(rules.len(), 1, "ingress only: {rules:?}");
    let ssh = rules[0].clone();
    assert!(ssh.id.starts_with("sgr-") && ssh.is_world());
    assert_eq!(ssh.description.as_deref(), Some("ssh"));
    assert_eq!(
        ec2.tags(&g).await.unwrap().get("team").map(String::as_str),
        Some("net")
    );

    ec2.revoke(&g, &[&ssh.id]).await.unwrap();
    assert!(ec2.ingress(&g).await.unwrap().is_empty());
    ec2.revoke(&g, &[&ssh.id])
        .await
        .expect("already gone is done");

    let made = ec2.authorize(&g, &ssh.content()).await.unwrap().unwrap();
    assert_ne!(made, ssh.id, "a re-authorized rule has a new id");
    let again = ec2.authorize(&g, &ssh.content()).await.unwrap();
    assert_eq!(again.as_deref(), Some(made.as_str()), "the duplicate found");
    let back = ec2.ingress(&g).await.unwrap();
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].content(), ssh.content());

    // Two in one call, one of them gone already: the other still goes.
    ec2.revoke(&g, &[&ssh.id, &made]).await.unwrap();
    assert!(ec2.ingress(&g).await.unwrap().is_empty());
    aws_sdk_ec2::Client::new(&h.sdk)
        .delete_security_group()
        .group_id(&g)
        .send()
        .await
        .unwrap();
    assert!(matches!(
        ec2.ingress(&g).await,
        Err(reflex_shared::remediation::RemediationError::Gone(_))
    ));
}

/// The revoke's fallback is bounded. Where every revoke answers that a rule is gone, yet each
/// read of the group still holds it (EC2 disagreeing with itself: aws-smithy-mocks stands in
/// for EC2 here, as the emulator cannot be made to), the third try ends in a transient error
/// for Lambda to retry: never success, never a loop.
#[tokio::test]
async fn a_revoke_whose_rules_keep_going_missing_is_transient_after_three_tries() {
    use aws_sdk_ec2::operation::revoke_security_group_ingress::RevokeSecurityGroupIngressError;
    use aws_sdk_ec2::types::SecurityGroupRule;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};
    use reflex_shared::aws_error::Fault;
    use reflex_shared::remediation::RemediationError;

    let revoke = mock!(aws_sdk_ec2::Client::revoke_security_group_ingress).then_error(|| {
        RevokeSecurityGroupIngressError::generic(
            aws_smithy_types::error::ErrorMetadata::builder()
                .code("InvalidPermission.NotFound")
                .message("The specified rule does not exist in this security group.")
                .build(),
        )
    });
    let read = mock!(aws_sdk_ec2::Client::describe_security_group_rules).then_output(|| {
        aws_sdk_ec2::operation::describe_security_group_rules::DescribeSecurityGroupRulesOutput::builder()
            .security_group_rules(
                SecurityGroupRule::builder()
                    .group_id("sg-0123456789abcdef0")
                    .security_group_rule_id("sgr-0123456789abcdef0")
                    .is_egress(false)
                    .ip_protocol("tcp")
                    .from_port(22)
                    .to_port(22)
                    .cidr_ipv4("0.0.0.0/0")
                    .build(),
            )
            .build()
    });
    let ec2 = sg_revoke_open_ingress::Ec2::new(mock_client!(
        aws_sdk_ec2,
        RuleMode::MatchAny,
        [&revoke, &read]
    ));
    let got = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        ec2.revoke("sg-0123456789abcdef0", &["sgr-0123456789abcdef0"]),
    )
    .await
    .expect("the tries end");
    match got {
        Err(RemediationError::Aws {
            api,
            message,
            fault: Fault::Transient,
        }) => {
            assert_eq!(api, "ec2:RevokeSecurityGroupIngress");
            assert!(message.contains("3 tries"), "{message}");
        }
        other => panic!("a transient error, not {other:?}"),
    }
    assert_eq!(revoke.num_calls(), 3, "three tries");
    assert_eq!(read.num_calls(), 3, "the group read after each");
}
