//! The demo's s3-enforce-encryption part: a bucket whose policy holds three statements of its
//! team's own, the committed S3.5 (TLS) sample replayed against it, and the policy read again:
//! the three statements kept, the deny-non-TLS statement merged after them.

use anyhow::{anyhow, Context, Result};
use reflex_shared::Setup;
use serde_json::{json, Value};

const FUNCTION: &str = "s3-enforce-encryption";
/// Compiled in: the demo runs wherever the binary is, not only beside the sources.
const SAMPLE: &str =
    include_str!("../../events/s3-enforce-encryption/securityhub-s3.5-imported.json");
const SAMPLE_NAME: &str = "s3-enforce-encryption/securityhub-s3.5-imported.json";
/// The bucket the committed sample names; the demo swaps in the one it makes.
const SAMPLE_BUCKET: &str = "reflex-demo-public";

pub async fn show(setup: &Setup) -> Result<()> {
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&setup.sdk)
            .force_path_style(reflex_shared::setup::s3_path_style(&setup.sdk))
            .build(),
    );
    let bucket = format!(
        "reflex-demo-tls-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    s3.create_bucket().bucket(&bucket).send().await?;
    let arn = format!("arn:aws:s3:::{bucket}");
    let policy = json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "ReadForTheApp", "Effect": "Allow",
             "Principal": {"AWS": "arn:aws:iam::123456789012:role/app"},
             "Action": "s3:GetObject", "Resource": format!("{arn}/*")},
            {"Sid": "NoDeletes", "Effect": "Deny", "Principal": "*",
             "Action": "s3:DeleteBucket", "Resource": arn},
            {"Sid": "List", "Effect": "Allow",
             "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
             "Action": "s3:ListBucket", "Resource": arn},
        ]
    });
    s3.put_bucket_policy()
        .bucket(&bucket)
        .policy(policy.to_string())
        .send()
        .await?;
    println!("\ns3-enforce-encryption: bucket {bucket}, its policy's statements:");
    show_statements(&s3, &bucket).await?;

    // The sample, naming this bucket; its finding id made this bucket's own so that a second
    // run of the demo is a new finding, not a duplicate of the first.
    let mut event: Value = serde_json::from_str(&SAMPLE.replace(SAMPLE_BUCKET, &bucket))
        .context("the committed sample is JSON")?;
    let f = &mut event["detail"]["findings"][0];
    f["Id"] = Value::from(format!("{}-{bucket}", f["Id"].as_str().unwrap_or_default()));
    let raw = serde_json::to_vec(&event)?;

    let function = crate::functions::build(FUNCTION, setup)
        .ok_or_else(|| anyhow!("{FUNCTION} is not in the registry"))?;
    println!("\nReplaying {SAMPLE_NAME} (S3.5: requests must use TLS), as Lambda would:\n");
    crate::demo::replay_approving(
        setup,
        function.as_ref(),
        SAMPLE_NAME,
        &raw,
        "demo-s3-enforce-encryption",
    )
    .await?;

    println!("\nThe bucket policy's statements now (a fresh read; encryption untouched):");
    show_statements(&s3, &bucket).await
}

/// Each statement of the bucket's policy on one line: Sid, effect, action, condition.
async fn show_statements(s3: &aws_sdk_s3::Client, bucket: &str) -> Result<()> {
    let out = s3.get_bucket_policy().bucket(bucket).send().await?;
    let doc: Value =
        serde_json::from_str(out.policy().unwrap_or("{}")).context("the bucket policy is JSON")?;
    for s in doc["Statement"].as_array().into_iter().flatten() {
        let text = |v: &Value| match v {
            Value::String(s) => s.clone(),
            Value::Null => "-".into(),
            other => other.to_string(),
        };
        println!(
            "  {:<28} {:<5} {:<16} {}",
            text(&s["Sid"]),
            text(&s["Effect"]),
            text(&s["Action"]),
            text(&s["Condition"])
        );
    }
    Ok(())
}
