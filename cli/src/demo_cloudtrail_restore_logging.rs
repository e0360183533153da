//! The demo's cloudtrail-restore-logging part: a trail stopped (as an attacker would leave it),
//! the committed GuardDuty sample replayed against it, and the trail's status read again.

use anyhow::{anyhow, Context, Result};
use reflex_shared::Setup;
use serde_json::Value;

const FUNCTION: &str = "cloudtrail-restore-logging";
/// Compiled in: the demo runs wherever the binary is, not only beside the sources.
const SAMPLE: &str = include_str!(
    "../../events/cloudtrail-restore-logging/guardduty-cloudtrail-logging-disabled.json"
);
const SAMPLE_NAME: &str = "cloudtrail-restore-logging/guardduty-cloudtrail-logging-disabled.json";
/// The trail the committed sample names; the demo swaps in the one it makes.
const SAMPLE_TRAIL: &str = "reflex-demo-trail";

pub async fn show(setup: &Setup) -> Result<()> {
    let suffix = &uuid::Uuid::new_v4().simple().to_string()[..8];
    let trail = format!("reflex-demo-trail-{suffix}");
    let bucket = format!("reflex-demo-trail-logs-{suffix}");
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&setup.sdk)
            .force_path_style(reflex_shared::setup::s3_path_style(&setup.sdk))
            .build(),
    );
    s3.create_bucket().bucket(&bucket).send().await?;
    let ct = cloudtrail_restore_logging::aws_sdk_cloudtrail::Client::new(&setup.sdk);
    let made = ct
        .create_trail()
        .name(&trail)
        .s3_bucket_name(&bucket)
        .send()
        .await?;
    let arn = made
        .trail_arn()
        .context("CreateTrail named no trail")?
        .to_string();
    println!(
        "\ncloudtrail-restore-logging: trail {trail}, stopped (StopLogging, as GuardDuty saw):"
    );
    show_trail(&ct, &arn).await?;

    // The sample, naming this trail; its finding id made this trail's own so that a second run
    // of the demo is a new finding, not a duplicate of the first.
    let mut event: Value = serde_json::from_str(&SAMPLE.replace(SAMPLE_TRAIL, &trail))
        .context("the committed sample is JSON")?;
    let id = event["detail"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    event["detail"]["id"] = Value::from(format!("{id}-{suffix}"));
    let raw = serde_json::to_vec(&event)?;

    let function = crate::functions::build(FUNCTION, setup)
        .ok_or_else(|| anyhow!("{FUNCTION} is not in the registry"))?;
    println!(
        "\nReplaying {SAMPLE_NAME} (Stealth:IAMUser/CloudTrailLoggingDisabled), as Lambda would:\n"
    );
    crate::demo::replay_approving(
        setup,
        function.as_ref(),
        SAMPLE_NAME,
        &raw,
        "demo-cloudtrail-restore-logging",
    )
    .await?;

    println!("\nThe trail now (a fresh read):");
    show_trail(&ct, &arn).await
}

async fn show_trail(
    ct: &cloudtrail_restore_logging::aws_sdk_cloudtrail::Client,
    arn: &str,
) -> Result<()> {
    let status = ct.get_trail_status().name(arn).send().await?;
    let trail = ct.get_trail().name(arn).send().await?;
    println!(
        "  logging: {}   log-file validation: {}",
        status.is_logging().unwrap_or(false),
        trail
            .trail()
            .and_then(|t| t.log_file_validation_enabled())
            .unwrap_or(false)
    );
    Ok(())
}
