//! The demo's second part: the catalog's EC2 functions, each handling a finding about an
//! instance made in the emulator, through the same `replay` as `reflex replay`.

use crate::functions::{self, Function};
use crate::render::{self, Format};
use anyhow::{Context, Result};
use aws_sdk_ec2::types::{InstanceNetworkInterfaceSpecification, InstanceType};
use reflex_shared::pipeline::Handled;
use reflex_shared::status::Status;
use reflex_shared::Setup;

/// An image id the emulator accepts.
const DEMO_AMI: &str = "ami-12c6146b";

/// An instance in a VPC of its own; (VPC, subnet, instance).
async fn make_instance(ec2: &aws_sdk_ec2::Client) -> Result<(String, String, String)> {
    let vpc = ec2.create_vpc().cidr_block("10.9.0.0/16").send().await?;
    let vpc = vpc
        .vpc()
        .and_then(|v| v.vpc_id())
        .context("no VPC id")?
        .to_string();
    let subnet = ec2
        .create_subnet()
        .vpc_id(&vpc)
        .cidr_block("10.9.1.0/24")
        .send()
        .await?;
    let subnet = subnet
        .subnet()
        .and_then(|s| s.subnet_id())
        .context("no subnet id")?
        .to_string();
    let group = ec2
        .create_security_group()
        .vpc_id(&vpc)
        .group_name(format!("reflex-demo-{}", uuid::Uuid::new_v4()))
        .description("the demo instance's own group")
        .send()
        .await?;
    let group = group.group_id().context("no group id")?.to_string();
    // The group on the interface itself, as AWS shows it.
    let interface = InstanceNetworkInterfaceSpecification::builder()
        .device_index(0)
        .subnet_id(&subnet)
        .groups(&group)
        .build();
    let run = ec2
        .run_instances()
        .image_id(DEMO_AMI)
        .instance_type(InstanceType::T3Micro)
        .min_count(1)
        .max_count(1)
        .network_interfaces(interface)
        .send()
        .await?;
    let instance = run
        .instances()
        .first()
        .and_then(|i| i.instance_id())
        .context("no instance id")?
        .to_string();
    Ok((vpc, subnet, instance))
}

/// The committed samples the EC2 part replays, compiled in.
const QUARANTINE_SAMPLE: &str =
    include_str!("../../events/ec2-quarantine-instance/guardduty-backdoor-c-and-c-activity.json");
const PATCH_SAMPLE: &str = include_str!(
    "../../events/ec2-patch-instance/securityhub-inspector-cve-high-below-threshold.json"
);

/// A sample event (`name`, its text), naming `instance` instead of the sample's own.
fn sample(name: &str, text: &str, instance: &str) -> (String, Vec<u8>) {
    let theirs = text
        .match_indices("i-")
        .map(|(at, _)| &text[at..])
        .find_map(|rest| {
            let id: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect();
            (id.len() >= 10).then_some(id)
        });
    let text = match theirs {
        Some(id) => text.replace(&id, instance),
        None => text.to_string(),
    };
    (name.to_string(), text.into_bytes())
}

async fn replay(
    setup: &Setup,
    function: &dyn Function,
    (name, raw): &(String, Vec<u8>),
) -> Result<Vec<Handled>> {
    let outcomes = function
        .replay(
            setup,
            raw,
            &format!("demo-catalog-{}", uuid::Uuid::new_v4()),
        )
        .await?;
    for o in &outcomes {
        println!("{}", render::outcome_line(name, o, Format::Human));
    }
    Ok(outcomes)
}

fn built(name: &str, setup: &Setup) -> Result<Box<dyn Function>> {
    functions::build(name, setup).with_context(|| format!("{name} is built in"))
}

/// The catalog on EC2: network-block-ip on an instance of its own, and ec2-patch-instance's
/// severity threshold.
pub async fn show(setup: &Setup) -> Result<()> {
    // network-block-ip: an SSH brute force on an instance of its own, the attacker denied in
    // its subnet's network ACL.
    crate::demo_network_block_ip::show(setup).await?;

    // ec2-patch-instance: the emulator's SSM knows no managed instances (its
    // DescribeInstanceInformation is not implemented), so the demo shows the severity
    // threshold at work; the tests run a patch end to end against a stand-in for that call.
    let ec2 = aws_sdk_ec2::Client::new(&setup.sdk);
    let (_, _, instance) = make_instance(&ec2).await?;
    println!("\nec2-patch-instance: a High CVE on instance {instance}");
    let patch = built("ec2-patch-instance", setup)?;
    let event = sample(
        "ec2-patch-instance/securityhub-inspector-cve-high-below-threshold.json",
        PATCH_SAMPLE,
        &instance,
    );
    replay(setup, patch.as_ref(), &event).await?;
    Ok(())
}

/// ec2-quarantine-instance, high risk: held for approval, then approved as `reflex approve`
/// does (the approver is this caller, as STS names it), and the instance isolated.
pub async fn held_then_approved(setup: &Setup) -> Result<()> {
    let ec2 = aws_sdk_ec2::Client::new(&setup.sdk);
    let (vpc, _, instance) = make_instance(&ec2).await?;
    println!("   ec2-quarantine-instance: a backdoor on instance {instance} in {vpc}");
    let setup = &crate::demo_source::without_read_back(setup, "ec2-quarantine-instance");
    let quarantine = built("ec2-quarantine-instance", setup)?;
    let event = sample(
        "ec2-quarantine-instance/guardduty-backdoor-c-and-c-activity.json",
        QUARANTINE_SAMPLE,
        &instance,
    );
    let mut approved_any = false;
    for o in replay(setup, quarantine.as_ref(), &event).await? {
        if o.status == Status::PendingApproval {
            println!("\n   `reflex approve {}`:", o.record_id);
            let approved = quarantine
                .approve(setup, &o.record_id, &setup.caller_arn)
                .await?;
            println!(
                "{}",
                render::outcome_line("reflex approve", &approved, Format::Human)
            );
            approved_any = approved.status == Status::Succeeded;
        }
    }
    let described = ec2
        .describe_instances()
        .instance_ids(&instance)
        .send()
        .await?;
    let groups: Vec<String> = described
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .flat_map(|i| i.network_interfaces())
        .flat_map(|n| n.groups())
        .filter_map(|g| g.group_name().map(str::to_string))
        .collect();
    println!(
        "   the instance's interface groups now (a fresh read): {}",
        groups.join(", ")
    );
    if !approved_any {
        anyhow::bail!("the quarantine was not held for approval and then approved");
    }
    Ok(())
}

/// The rest of the catalog, one finding each, after the EC2 functions.
pub async fn show_rest(setup: &Setup) -> Result<()> {
    crate::demo_sg_revoke_open_ingress::show(setup).await?;
    crate::demo_network_block_domain::show(setup).await?;
    crate::demo_s3_enforce_encryption::show(setup).await?;
    crate::demo_cloudtrail_restore_logging::show(setup).await?;
    crate::demo_iam_contain_principal::show(setup).await?;
    crate::demo_iam_disable_access_key::show(setup).await?;
    crate::demo_iam_detach_admin_policy::show(setup).await?;
    Ok(())
}
