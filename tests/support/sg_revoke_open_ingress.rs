//! sg-revoke-open-ingress as a [`Subject`] of the common cases, and the groups its tests make:
//! each in the emulator's default VPC under a unique name, so parallel tests never share one.

use crate::common::Subject;
use crate::{sample, unique, Harness, ACCOUNT};
use serde_json::{json, Value};
use sg_revoke_open_ingress::{Rule, SgRevokeOpenIngress, Source};

/// The group the committed samples name; tests swap in their own.
pub const SAMPLE_GROUP: &str = "sg-0123456789abcdef0";
pub const EC2_13: &str = "sg-revoke-open-ingress/securityhub-ec2.13-ssh-open.json";
pub const EC2_18: &str = "sg-revoke-open-ingress/securityhub-ec2.18-authorized-ports.json";

pub fn ec2(h: &Harness) -> aws_sdk_ec2::Client {
    aws_sdk_ec2::Client::new(&h.sdk)
}

/// A committed sample naming `group`, its finding ids made unique by `tag`.
pub fn event_for(path: &str, group: &str, tag: &str) -> Value {
    let mut v: Value =
        serde_json::from_str(&sample(path).replace(SAMPLE_GROUP, group)).expect("sample is JSON");
    if let Some(findings) = v
        .pointer_mut("/detail/findings")
        .and_then(Value::as_array_mut)
    {
        for f in findings {
            let id = f["Id"].as_str().unwrap_or_default().to_string();
            f["Id"] = json!(format!("{id}{tag}"));
        }
    }
    v
}

/// A rule to make: (protocol, from, to, source, description). A source starting `sg-` is a
/// referenced group.
pub type RuleSpec<'a> = (&'a str, i32, i32, &'a str, Option<&'a str>);

/// A group of its own, with these ingress rules and tags; its id.
pub async fn group(h: &Harness, rules: &[RuleSpec<'_>], tags: &[(&str, &str)]) -> String {
    let ec2 = ec2(h);
    let made = ec2
        .create_security_group()
        .group_name(unique("reflex-sg"))
        .description("a test group")
        .send()
        .await
        .expect("create a security group");
    let id = made.group_id().unwrap().to_string();
    for (protocol, from, to, source, description) in rules {
        let rule = Rule {
            id: String::new(),
            protocol: protocol.to_string(),
            from_port: *from,
            to_port: *to,
            source: source_of(source),
            description: description.map(str::to_string),
        };
        ec2.authorize_security_group_ingress()
            .group_id(&id)
            .ip_permissions(sg_revoke_open_ingress::aws::permission(&rule))
            .send()
            .await
            .expect("authorize a rule");
    }
    for (k, v) in tags {
        ec2.create_tags()
            .resources(&id)
            .tags(aws_sdk_ec2::types::Tag::builder().key(*k).value(*v).build())
            .send()
            .await
            .expect("tag the group");
    }
    id
}

pub fn source_of(s: &str) -> Source {
    if s.starts_with("sg-") {
        Source::Group {
            group_id: s.into(),
            user_id: None,
        }
    } else if s.contains(':') {
        Source::Ipv6 { cidr: s.into() }
    } else {
        Source::Ipv4 { cidr: s.into() }
    }
}

/// An AWS-managed Config rule (`identifier`) deployed as `name` with its own parameters
/// (`InputParameters`, JSON), in the emulator.
pub async fn managed_rule_with(h: &Harness, name: &str, identifier: &str, parameters: &str) {
    use aws_sdk_config::types::{ConfigRule, Owner, Source as RuleSource};
    let rule = ConfigRule::builder()
        .config_rule_name(name)
        .input_parameters(parameters)
        .source(
            RuleSource::builder()
                .owner(Owner::Aws)
                .source_identifier(identifier)
                .build()
                .expect("a rule source"),
        )
        .build();
    aws_sdk_config::Client::new(&h.sdk)
        .put_config_rule()
        .config_rule(rule)
        .send()
        .await
        .expect("put the managed Config rule");
}

/// The group's ingress rules as read now (through an adapter that logs nothing).
pub async fn ingress(h: &Harness, group: &str) -> Vec<Rule> {
    sg_revoke_open_ingress::Ec2::new(ec2(h))
        .ingress(group)
        .await
        .expect("read the group")
}

/// The rules as `protocol/from-to source`, sorted: what they allow, whatever their ids.
pub async fn allowed(h: &Harness, group: &str) -> Vec<String> {
    let mut v: Vec<String> = ingress(h, group)
        .await
        .iter()
        .map(|r| format!("{}/{}-{} {}", r.protocol, r.from_port, r.to_port, r.source))
        .collect();
    v.sort();
    v
}

impl Subject for SgRevokeOpenIngress {
    const SPEC: &'static reflex_shared::remediation::Spec = &sg_revoke_open_ingress::SPEC;

    fn new(h: &Harness) -> Self {
        SgRevokeOpenIngress::from_clients(
            aws_sdk_ec2::Client::from_conf(
                aws_sdk_ec2::config::Builder::from(&h.sdk)
                    .interceptor(h.calls.clone())
                    .build(),
            ),
            aws_sdk_config::Client::from_conf(
                aws_sdk_config::config::Builder::from(&h.sdk)
                    .interceptor(h.calls.clone())
                    .build(),
            ),
        )
    }

    /// SSH open to the world, beside SSH from a private network.
    async fn noncompliant(h: &Harness, tags: &[(&str, &str)]) -> String {
        group(
            h,
            &[
                ("tcp", 22, 22, "0.0.0.0/0", Some("ssh from anywhere")),
                ("tcp", 22, 22, "10.0.0.0/8", None),
            ],
            tags,
        )
        .await
    }

    /// SSH from a private network only.
    async fn compliant(h: &Harness) -> String {
        group(h, &[("tcp", 22, 22, "10.0.0.0/8", None)], &[]).await
    }

    fn event(id: &str) -> Value {
        event_for(EC2_13, id, &format!("-{id}"))
    }

    fn recurrence(id: &str) -> Value {
        let mut e = Self::event(id);
        e["detail"]["findings"][0]["UpdatedAt"] = json!("2026-12-01T00:00:00.000Z");
        e
    }

    async fn arn(_h: &Harness, id: &str) -> String {
        sg_revoke_open_ingress::group_arn("us-east-1", ACCOUNT, id)
    }

    /// No rule opens tcp/22 to the world.
    async fn fixed(h: &Harness, id: &str) -> bool {
        !ingress(h, id)
            .await
            .iter()
            .any(|r| r.is_world() && r.tcp().ranges().iter().any(|p| p.from <= 22 && 22 <= p.to))
    }
}
