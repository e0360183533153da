//! The demo's operator parts, on S3 findings made for the purpose: a fix seen in dry-run and
//! then retried under enforce, that fix rolled back and its echo held back, and a burst of
//! findings meeting the hourly budget.

use crate::demo::make_public_bucket;
use crate::demo_s3::block_public_access;
use crate::functions::{self, Function};
use crate::render::{self, Format};
use anyhow::{bail, Context, Result};
use reflex_shared::pipeline::Handled;
use reflex_shared::policy::{Policy, PolicyCache};
use reflex_shared::status::{Reason, Status};
use reflex_shared::Setup;
use serde_json::Value;
use std::sync::Arc;

/// A Security Hub S3.8 finding as AWS sends it, compiled in.
const S3_8: &str =
    include_str!("../../events/s3-block-public-access/securityhub-s3.8-imported.json");
/// A Security Hub S3.5 (TLS) finding as AWS sends it, compiled in.
const S3_5: &str =
    include_str!("../../events/s3-enforce-encryption/securityhub-s3.5-imported.json");
/// The bucket the committed samples name; the demo swaps in its own.
const SAMPLE_BUCKET: &str = "reflex-demo-public";

/// `setup` applying the policy `yaml` instead of its own (as after a `reflex policy push`).
pub fn with_policy(setup: &Setup, yaml: &str) -> Result<Setup> {
    let policy = Policy::from_yaml(yaml).context("the demo's policy is valid")?;
    let mut setup = setup.clone();
    setup.policy = Arc::new(PolicyCache::fixed(Ok(policy)));
    Ok(setup)
}

/// `sample` naming `bucket`, as a finding of its own (a new id), updated at `updated_at` if
/// given (a later generation of the same finding).
pub fn finding_for(sample: &str, bucket: &str, updated_at: Option<&str>) -> Result<Vec<u8>> {
    let mut event: Value = serde_json::from_str(&sample.replace(SAMPLE_BUCKET, bucket))
        .context("the committed sample is JSON")?;
    let f = &mut event["detail"]["findings"][0];
    f["Id"] = Value::from(format!("{}-{bucket}", f["Id"].as_str().unwrap_or_default()));
    if let Some(at) = updated_at {
        f["UpdatedAt"] = Value::from(at);
    }
    Ok(serde_json::to_vec(&event)?)
}

fn one(outcomes: Vec<Handled>, what: &str) -> Result<Handled> {
    let mut outcomes = outcomes.into_iter();
    match (outcomes.next(), outcomes.next()) {
        (Some(o), None) => Ok(o),
        _ => bail!("{what}: expected one outcome"),
    }
}

fn s3_client(setup: &Setup) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&setup.sdk)
            .force_path_style(reflex_shared::setup::s3_path_style(&setup.sdk))
            .build(),
    )
}

/// The bucket the dry-run, retry and rollback steps share.
pub const DRY_RUN_BUCKET: &str = "reflex-demo-dry-run";

/// A finding met in dry-run (the plan recorded, nothing changed), then `reflex retry` under
/// the policy now in force. Returns the record id of the fix.
pub async fn dry_run_then_retry(setup: &Setup) -> Result<String> {
    let s3 = s3_client(setup);
    make_public_bucket(&s3, DRY_RUN_BUCKET, false).await?;
    let dry = with_policy(
        setup,
        "version: 1\nremediations:\n  s3-block-public-access: {mode: dry-run}\n",
    )?;
    println!("   policy: s3-block-public-access in dry-run (a first deploy runs everything so)");
    let function = built("s3-block-public-access", &dry)?;
    let raw = finding_for(S3_8, DRY_RUN_BUCKET, None)?;
    let o = one(
        function.replay(&dry, &raw, "demo-dry-run").await?,
        "dry-run",
    )?;
    println!(
        "{}",
        render::outcome_line("S3.8 finding", &o, Format::Human)
    );
    println!(
        "   {DRY_RUN_BUCKET}: Block Public Access {} (a fresh read: nothing changed)",
        block_public_access(&s3, DRY_RUN_BUCKET).await?
    );
    if o.status != Status::DryRun {
        bail!("expected a dry-run record, got {} / {}", o.status, o.reason);
    }

    println!(
        "\n   policy: back to the defaults (enforce for low risk); `reflex retry {}`:",
        o.record_id
    );
    let retried = crate::ops::retry::retry(setup, &o.record_id).await?;
    println!("{}", render::outcome_line("retry", &retried, Format::Human));
    println!(
        "   {DRY_RUN_BUCKET}: Block Public Access {} (a fresh read)",
        block_public_access(&s3, DRY_RUN_BUCKET).await?
    );
    let record = setup
        .ledger
        .get(&o.record_id)
        .await?
        .context("the retried record is in the table")?;
    println!(
        "   the record keeps its history: {}",
        record
            .history
            .iter()
            .map(|h| format!("{} / {}", h.status, h.reason))
            .chain([format!("{} / {}", record.status, record.reason)])
            .collect::<Vec<_>>()
            .join(" → ")
    );
    if retried.status != Status::Succeeded {
        bail!(
            "the retry did not fix the bucket: {} / {}",
            retried.status,
            retried.reason
        );
    }
    Ok(o.record_id)
}

/// Roll the fix `record_id` back (as this caller), then deliver the finding's echo: held back.
pub async fn rollback_and_echo(setup: &Setup, record_id: &str) -> Result<()> {
    let s3 = s3_client(setup);
    let function = built("s3-block-public-access", setup)?;
    let until = chrono::Utc::now() + chrono::Duration::days(7);
    let o = function
        .rollback(setup, record_id, &setup.caller_arn, false, until)
        .await?;
    println!(
        "{}",
        render::outcome_line("reflex rollback", &o, Format::Human)
    );
    println!(
        "   {DRY_RUN_BUCKET}: Block Public Access {} (a fresh read: the pre-state restored)",
        block_public_access(&s3, DRY_RUN_BUCKET).await?
    );
    if o.status != Status::RolledBack {
        bail!(
            "the rollback was not carried out: {} / {}",
            o.status,
            o.reason
        );
    }
    // Security Hub reports the finding again (a new generation): the echo of the rollback.
    let echo = finding_for(S3_8, DRY_RUN_BUCKET, Some("2026-12-01T09:00:00.000Z"))?;
    let e = one(function.replay(setup, &echo, "demo-echo").await?, "echo")?;
    println!(
        "{}",
        render::outcome_line("the finding's echo", &e, Format::Human)
    );
    println!(
        "   {DRY_RUN_BUCKET}: Block Public Access {} (held back for 7 days, or until `reflex unhold`)",
        block_public_access(&s3, DRY_RUN_BUCKET).await?
    );
    if (e.status, e.reason) != (Status::Skipped, Reason::RolledBack) {
        bail!("the echo was not held back: {} / {}", e.status, e.reason);
    }
    Ok(())
}

/// Findings for `count` buckets delivered at once to s3-enforce-encryption under a budget of
/// `budget` changes an hour: the budget holds, the rest are recorded rate-limited.
pub async fn burst(setup: &Setup, count: usize, budget: u32) -> Result<()> {
    let s3 = s3_client(setup);
    let setup = with_policy(
        setup,
        &format!(
            "version: 1\nremediations:\n  s3-enforce-encryption: {{max_changes_per_hour: {budget}}}\n"
        ),
    )?;
    let function = built("s3-enforce-encryption", &setup)?;
    let run = uuid::Uuid::new_v4().simple().to_string();
    let mut events = Vec::new();
    for i in 1..=count {
        let bucket = format!("reflex-demo-burst-{}-{i}", &run[..6]);
        s3.create_bucket().bucket(&bucket).send().await?;
        events.push(finding_for(S3_5, &bucket, None)?);
    }
    println!(
        "   {count} S3.5 findings (requests must use TLS) at once; policy: at most {budget} \
         changes an hour for s3-enforce-encryption (one was made in the catalog step)"
    );
    let ids: Vec<String> = (1..=count).map(|i| format!("demo-burst-{i}")).collect();
    let outcomes = futures::future::try_join_all(
        events
            .iter()
            .zip(&ids)
            .map(|(raw, id)| function.replay(&setup, raw, id)),
    )
    .await?;
    let mut fixed = 0;
    let mut limited = 0;
    for o in outcomes.into_iter().flatten() {
        match (o.status, o.reason) {
            (Status::Succeeded, _) => fixed += 1,
            (_, Reason::RateLimited) => limited += 1,
            _ => {}
        }
        println!(
            "{}",
            render::outcome_line(o.resource.as_deref().unwrap_or("-"), &o, Format::Human)
        );
    }
    println!("   {fixed} fixed, {limited} held back by the budget (recorded as skipped / rate-limited; `reflex retry` runs each once the budget allows)");
    if fixed > budget as usize || limited == 0 {
        bail!("the budget did not hold: {fixed} fixed, {limited} rate-limited");
    }
    Ok(())
}

fn built(name: &str, setup: &Setup) -> Result<Box<dyn Function>> {
    functions::build(name, setup).with_context(|| format!("{name} is built in"))
}
