//! The demo's sg-revoke-open-ingress part: a security group with SSH open to the world in the
//! emulator, the committed EC2.13 sample replayed against it, and its ingress rules read again.

use anyhow::{anyhow, Context, Result};
use aws_sdk_ec2::types::{Filter, IpPermission, IpRange, Ipv6Range};
use reflex_shared::Setup;
use serde_json::Value;

const FUNCTION: &str = "sg-revoke-open-ingress";
/// Compiled in: the demo runs wherever the binary is, not only beside the sources.
const SAMPLE: &str =
    include_str!("../../events/sg-revoke-open-ingress/securityhub-ec2.13-ssh-open.json");
const SAMPLE_NAME: &str = "sg-revoke-open-ingress/securityhub-ec2.13-ssh-open.json";
/// The group the committed sample names; the demo swaps in the one it makes.
const SAMPLE_GROUP: &str = "sg-0123456789abcdef0";

pub async fn show(setup: &Setup) -> Result<()> {
    let ec2 = aws_sdk_ec2::Client::new(&setup.sdk);
    let group = make_group(&ec2).await?;
    println!("\nsg-revoke-open-ingress: security group {group}, inbound:");
    show_ingress(&ec2, &group).await?;

    // The sample, naming this group; its finding id made this group's own so that a second
    // run of the demo is a new finding, not a duplicate of the first.
    let mut event: Value = serde_json::from_str(&SAMPLE.replace(SAMPLE_GROUP, &group))
        .context("the committed sample is JSON")?;
    if let Some(f) = event
        .pointer_mut("/detail/findings/0")
        .and_then(Value::as_object_mut)
    {
        let id = f
            .get("Id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        f.insert("Id".into(), Value::from(format!("{id}-{group}")));
    }
    let raw = serde_json::to_vec(&event)?;

    let function = crate::functions::build(FUNCTION, setup)
        .ok_or_else(|| anyhow!("{FUNCTION} is not in the registry"))?;
    println!("\nReplaying {SAMPLE_NAME} (Security Hub EC2.13: port 22 open to the world), as Lambda would:\n");
    crate::demo::replay_approving(
        setup,
        function.as_ref(),
        SAMPLE_NAME,
        &raw,
        "demo-sg-revoke-open-ingress",
    )
    .await?;

    println!("\nThe group's inbound rules now (a fresh read): SSH from the world is gone, the rest stays:");
    show_ingress(&ec2, &group).await
}

/// A group with SSH open to the world (IPv4 and IPv6), SSH from a private network and HTTPS
/// from the world; its id.
async fn make_group(ec2: &aws_sdk_ec2::Client) -> Result<String> {
    let made = ec2
        .create_security_group()
        .group_name(format!(
            "reflex-demo-bastion-{}",
            chrono::Utc::now().timestamp_millis()
        ))
        .description("Reflex demo: SSH open to the world")
        .send()
        .await?;
    let group = made
        .group_id()
        .context("CreateSecurityGroup named no group")?
        .to_string();
    let tcp = |port: i32| {
        IpPermission::builder()
            .ip_protocol("tcp")
            .from_port(port)
            .to_port(port)
    };
    for permission in [
        tcp(22)
            .ip_ranges(
                IpRange::builder()
                    .cidr_ip("0.0.0.0/0")
                    .description("ssh from anywhere")
                    .build(),
            )
            .build(),
        tcp(22)
            .ipv6_ranges(Ipv6Range::builder().cidr_ipv6("::/0").build())
            .build(),
        tcp(22)
            .ip_ranges(
                IpRange::builder()
                    .cidr_ip("10.0.0.0/8")
                    .description("office")
                    .build(),
            )
            .build(),
        tcp(443)
            .ip_ranges(IpRange::builder().cidr_ip("0.0.0.0/0").build())
            .build(),
    ] {
        ec2.authorize_security_group_ingress()
            .group_id(&group)
            .ip_permissions(permission)
            .send()
            .await?;
    }
    Ok(group)
}

/// The group's inbound rules, one per line.
async fn show_ingress(ec2: &aws_sdk_ec2::Client, group: &str) -> Result<()> {
    let out = ec2
        .describe_security_group_rules()
        .filters(Filter::builder().name("group-id").values(group).build())
        .send()
        .await?;
    let mut rows: Vec<(String, String, String)> = out
        .security_group_rules()
        .iter()
        .filter(|r| r.is_egress() == Some(false))
        .map(|r| {
            let ports = match (r.from_port(), r.to_port()) {
                (Some(a), Some(b)) if a == b => a.to_string(),
                (Some(a), Some(b)) => format!("{a}-{b}"),
                _ => "all".into(),
            };
            (
                format!("{}/{ports}", r.ip_protocol().unwrap_or_default()),
                r.cidr_ipv4()
                    .or(r.cidr_ipv6())
                    .or(r.referenced_group_info().and_then(|g| g.group_id()))
                    .unwrap_or_default()
                    .to_string(),
                r.security_group_rule_id().unwrap_or_default().to_string(),
            )
        })
        .collect();
    rows.sort();
    for (ports, source, id) in rows {
        println!("  inbound  {ports:<10} from {source:<12} {id}");
    }
    Ok(())
}
