//! The demo's network-block-domain part: an instance in the emulator that queried a command and
//! control domain, the committed GuardDuty sample replayed against it, and the VPC's DNS
//! Firewall read again.
//!
//! The emulator has no Route 53 Resolver DNS Firewall (moto implements none of its API), so the
//! function's resolver client is answered by the crate's stand-in, an in-memory firewall behind
//! aws-smithy-mocks; the demo says so on screen. EC2 (the instance and its VPC) is the
//! emulator's.

use anyhow::{anyhow, Context, Result};
use network_block_domain::stand_in::StandIn;
use network_block_domain::{firewall, Domain, NetworkBlockDomain, Resolver};
use reflex_shared::Setup;
use serde_json::Value;

const FUNCTION: &str = "network-block-domain";
/// Compiled in: the demo runs wherever the binary is, not only beside the sources.
const SAMPLE: &str =
    include_str!("../../events/network-block-domain/guardduty-backdoor-c-and-c-activity-dns.json");
const SAMPLE_NAME: &str = "network-block-domain/guardduty-backdoor-c-and-c-activity-dns.json";
/// The instance and the domain the committed sample names.
const SAMPLE_INSTANCE: &str = "i-0123456789abcdef0";
const SAMPLE_DOMAIN: &str = "c2.badactor.example";

pub async fn show(setup: &Setup) -> Result<()> {
    // The registry's function, by name; built here with the stand-in resolver in place of the
    // one `functions::build` would make (the emulator would answer its every call with a 500).
    let spec = crate::functions::FUNCTIONS
        .iter()
        .find(|f| f.spec.name == FUNCTION)
        .map(|f| f.spec)
        .ok_or_else(|| anyhow!("{FUNCTION} is not in the registry"))?;
    let ec2 = aws_sdk_ec2::Client::new(&setup.sdk);
    let (instance, vpc) = make_instance(&ec2).await?;
    let firewall = StandIn::new();
    let function = NetworkBlockDomain::from_clients(ec2.clone(), firewall.client());
    let resolver = Resolver::new(firewall.client());
    println!(
        "\n{}: instance {instance} in {vpc} queried {SAMPLE_DOMAIN}.",
        spec.name
    );
    println!(
        "  (The emulator has no Route 53 Resolver DNS Firewall: the function's DNS Firewall calls \
         are answered by an in-memory stand-in through aws-smithy-mocks. EC2 is the emulator's.)"
    );
    show_firewall(&resolver, &vpc).await?;

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

    println!("\nReplaying {SAMPLE_NAME} (Backdoor:EC2/C&CActivity.B!DNS), as Lambda would:\n");
    let function: &dyn crate::functions::Function = &function;
    crate::demo::replay_approving(
        setup,
        function,
        SAMPLE_NAME,
        &raw,
        "demo-network-block-domain",
    )
    .await?;

    println!("\nThe VPC's DNS Firewall now (a fresh read):");
    show_firewall(&resolver, &vpc).await
}

/// A VPC, a subnet and an instance in it; the instance id and the VPC.
async fn make_instance(ec2: &aws_sdk_ec2::Client) -> Result<(String, String)> {
    let vpc = ec2.create_vpc().cidr_block("10.31.0.0/16").send().await?;
    let vpc = vpc
        .vpc()
        .and_then(|v| v.vpc_id())
        .context("CreateVpc named no VPC")?
        .to_string();
    let subnet = ec2
        .create_subnet()
        .vpc_id(&vpc)
        .cidr_block("10.31.1.0/24")
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
    Ok((instance, vpc))
}

/// Reflex's list, rule group and association for the VPC, and whether the domain is blocked.
async fn show_firewall(resolver: &Resolver, vpc: &str) -> Result<()> {
    let name = firewall::name(vpc);
    let domain: Domain = SAMPLE_DOMAIN.parse()?;
    let list = resolver.list_named(&name).await?;
    let group = resolver.group_named(&name).await?;
    let (Some(list), Some(group)) = (list, group) else {
        println!("  no Reflex DNS Firewall in {vpc}: {SAMPLE_DOMAIN} resolves");
        return Ok(());
    };
    let rule = resolver.blocks_list(&group, &list).await?;
    let association = resolver.association(&group, vpc).await?;
    let blocked = resolver.holds(&list, &domain).await?;
    println!(
        "  domain list {name} ({list}): {SAMPLE_DOMAIN} {}",
        if blocked { "listed" } else { "not listed" }
    );
    println!(
        "  rule group {group}: {}",
        if rule {
            "BLOCK the list, answer NXDOMAIN"
        } else {
            "no blocking rule"
        }
    );
    match &association {
        Some(a) => println!(
            "  associated with {vpc} at priority {} ({})",
            a.priority, a.status
        ),
        None => println!("  not associated with {vpc}"),
    }
    let answer = if blocked && rule && association.is_some() {
        "NXDOMAIN"
    } else {
        "resolves"
    };
    println!("  {SAMPLE_DOMAIN} from {vpc}: {answer}");
    Ok(())
}
