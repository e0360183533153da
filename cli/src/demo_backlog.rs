//! The demo's backlog part: five S3.8 findings put into the emulator's Security Hub with
//! `BatchImportFindings` (as Security Hub holds them before Reflex is installed), pulled with
//! `reflex backlog --control S3.8`, each fixed once; a second backlog changes nothing.

use crate::demo::make_public_bucket;
use crate::demo_s3::block_public_access;
use crate::ops::backlog::{self, BacklogFilter};
use anyhow::{bail, Context, Result};
use aws_sdk_securityhub::config::interceptors::BeforeTransmitInterceptorContextMut;
use aws_sdk_securityhub::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_securityhub::error::BoxError;
use aws_smithy_types::body::SdkBody;
use reflex_shared::Setup;
use serde_json::{json, Value};

/// A Security Hub S3.8 finding as AWS sends it, compiled in.
const S3_8: &str =
    include_str!("../../events/s3-block-public-access/securityhub-s3.8-imported.json");
const SAMPLE_BUCKET: &str = "reflex-demo-public";
const FINDINGS: usize = 5;

/// The request body `BatchImportFindings` sends, set whole: the SDK's typed findings would
/// have to be built field by field from the sample, and Security Hub takes the findings as
/// the JSON the sample holds.
#[derive(Debug)]
struct FindingsBody(Vec<u8>);

impl Intercept for FindingsBody {
    fn name(&self) -> &'static str {
        "FindingsBody"
    }

    fn modify_before_signing(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request_mut();
        request
            .headers_mut()
            .insert("content-length", self.0.len().to_string());
        *request.body_mut() = SdkBody::from(self.0.clone());
        Ok(())
    }
}

/// The sample's finding, about `bucket`, with an id of its own.
fn finding_about(bucket: &str) -> Result<Value> {
    let event: Value = serde_json::from_str(&S3_8.replace(SAMPLE_BUCKET, bucket))
        .context("the committed sample is JSON")?;
    let mut finding = event["detail"]["findings"][0].clone();
    let id = format!("{}-{bucket}", finding["Id"].as_str().unwrap_or_default());
    finding["Id"] = Value::from(id);
    Ok(finding)
}

async fn import(setup: &Setup, findings: Vec<Value>) -> Result<()> {
    let body = serde_json::to_vec(&json!({ "Findings": findings }))?;
    let client = aws_sdk_securityhub::Client::from_conf(
        aws_sdk_securityhub::config::Builder::from(&setup.sdk)
            .interceptor(FindingsBody(body))
            .build(),
    );
    let out = client
        .batch_import_findings()
        .send()
        .await
        .map_err(|e| anyhow::anyhow!(reflex_shared::aws_error::describe(&e)))
        .context("BatchImportFindings")?;
    if out.failed_count() != Some(0) {
        bail!("Security Hub refused {:?} finding(s)", out.failed_count());
    }
    Ok(())
}

pub async fn show(setup: &Setup, s3: &aws_sdk_s3::Client) -> Result<()> {
    let run = uuid::Uuid::new_v4().simple().to_string();
    let mut buckets = Vec::new();
    let mut findings = Vec::new();
    for i in 1..=FINDINGS {
        let bucket = format!("reflex-demo-backlog-{}-{i}", &run[..6]);
        make_public_bucket(s3, &bucket, false).await?;
        findings.push(finding_about(&bucket)?);
        buckets.push(bucket);
    }
    import(setup, findings).await?;
    println!(
        "   {FINDINGS} S3.8 findings already in Security Hub (imported with BatchImportFindings), \
         their buckets public\n\n   `reflex backlog --control S3.8`:"
    );
    let filter = BacklogFilter {
        control: Some("S3.8".into()),
        ..Default::default()
    };
    let first = backlog::backlog(setup, &filter, &mut |line| {
        println!("   {}", backlog::render_line(line))
    })
    .await?;
    println!("{}", backlog::render_summary(&first));
    let mut fixed = 0;
    for bucket in &buckets {
        if block_public_access(s3, bucket).await? == "4 of 4 on" {
            fixed += 1;
        }
    }
    println!("   a fresh read: {fixed} of {FINDINGS} buckets have Block Public Access 4 of 4 on");

    println!("\n   `reflex backlog --control S3.8` again:");
    let second = backlog::backlog(setup, &filter, &mut |_| {}).await?;
    println!("{}", backlog::render_summary(&second));
    let counts = |s: &backlog::BacklogSummary| s.functions.get("s3-block-public-access").cloned();
    let (Some(first), Some(second)) = (counts(&first), counts(&second)) else {
        bail!("the backlog did not reach s3-block-public-access");
    };
    if fixed != FINDINGS || first.succeeded < FINDINGS || second.succeeded != 0 {
        bail!(
            "the backlog did not behave as expected: {fixed} fixed, first run {first:?}, second {second:?}"
        );
    }
    println!(
        "   the second run: {} duplicates, nothing done twice",
        second.duplicates
    );
    Ok(())
}
