//! The demo's network-block-ip part: an instance under SSH brute force in the emulator, the
//! committed GuardDuty sample replayed against it, and its subnet's network ACL read again.

use anyhow::{anyhow, Context, Result};
use aws_sdk_ec2::types::Filter;
use reflex_shared::Setup;
use serde_json::Value;

const FUNCTION: &str = "network-block-ip";
/// Compiled in: the demo runs wherever the binary is, not only beside the sources.
const SAMPLE: &str = include_str!("../../events/network-block-ip/guardduty-ssh-brute-force.json");
const SAMPLE_NAME: &str = "network-block-ip/guardduty-ssh-brute-force.json";
/// The instance the committed sample names; the demo swaps in the one it makes.
const SAMPLE_INSTANCE: &str = "i-0123456789abcdef0";

pub async fn show(setup: &Setup) -> Result<()> {
    let ec2 = aws_sdk_ec2::Client::new(&setup.sdk);
    let (instance, nacl) = make_instance(&ec2).await?;
    println!("\nnetwork-block-ip: instance {instance} in a subnet whose network ACL is {nacl}:");
    show_inbound(&ec2, &nacl).await?;

    // The sample, naming this instance; its finding id made this instance's own so that a
    // second run of the demo is a new finding, not a duplicate of the first.
    let mut event: Value = serde_json::from_str(&SAMPLE.replace(SAMPLE_INSTANCE, &instance))
        .context("the committed sample is JSON")?;
    let id = event["detail"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    event["detail"]["id"] = Value::from(format!("{id}-{instance}"));
    let raw = serde_json::to_vec(&event)?;

    let function = crate::functions::build(FUNCTION, setup)
        .ok_or_else(|| anyhow!("{FUNCTION} is not in the registry"))?;
    println!("\nReplaying {SAMPLE_NAME} (SSH brute force from 1.2.3.4), as Lambda would:\n");
    crate::demo::replay_approving(
        setup,
        function.as_ref(),
        SAMPLE_NAME,
        &raw,
        "demo-network-block-ip",
    )
    .await?;

    println!("\nThe network ACL's inbound rules now (a fresh read):");
    show_inbound(&ec2, &nacl).await
}

/// A VPC, a subnet and an instance in it; the instance id and its subnet's network ACL.
async fn make_instance(ec2: &aws_sdk_ec2::Client) -> Result<(String, String)> {
    let vpc = ec2.create_vpc().cidr_block("10.30.0.0/16").send().await?;
    let vpc = vpc
        .vpc()
        .and_then(|v| v.vpc_id())
        .context("CreateVpc named no VPC")?;
    let subnet = ec2
        .create_subnet()
        .vpc_id(vpc)
        .cidr_block("10.30.1.0/24")
        .send()
        .await?;
    let subnet = subnet
        .subnet()
        .and_then(|s| s.subnet_id())
        .context("CreateSubnet named no subnet")?
        .to_string();
    let images = ec2.describe_images().send().await?;
    let image = images
        .images()
        .first()
        .and_then(|i| i.image_id())
        .context("the emulator has no image")?;
    let run = ec2
        .run_instances()
        .image_id(image)
        .min_count(1)
        .max_count(1)
        .subnet_id(&subnet)
        .send()
        .await?;
    let instance = run
        .instances()
        .first()
        .and_then(|i| i.instance_id())
        .context("RunInstances started no instance")?
        .to_string();
    let acls = ec2
        .describe_network_acls()
        .filters(
            Filter::builder()
                .name("association.subnet-id")
                .values(&subnet)
                .build(),
        )
        .send()
        .await?;
    let nacl = acls
        .network_acls()
        .first()
        .and_then(|a| a.network_acl_id())
        .context("the subnet has no network ACL")?
        .to_string();
    Ok((instance, nacl))
}

/// The ACL's inbound entries, by rule number.
async fn show_inbound(ec2: &aws_sdk_ec2::Client, nacl: &str) -> Result<()> {
    let acls = ec2
        .describe_network_acls()
        .network_acl_ids(nacl)
        .send()
        .await?;
    let mut rows: Vec<(i32, String, String)> = acls
        .network_acls()
        .iter()
        .flat_map(|a| a.entries())
        .filter(|e| e.egress() == Some(false))
        .map(|e| {
            (
                e.rule_number().unwrap_or_default(),
                e.rule_action()
                    .map(|a| a.as_str().to_string())
                    .unwrap_or_default(),
                e.cidr_block()
                    .or(e.ipv6_cidr_block())
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect();
    rows.sort();
    for (number, action, cidr) in rows {
        let number = if number == 32767 {
            "*".to_string()
        } else {
            number.to_string()
        };
        println!("  inbound {number:>5}  {action:<5}  {cidr}");
    }
    Ok(())
}
