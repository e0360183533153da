//! The demo's S3 parts: every sample of `s3-block-public-access` (each kind of finding that
//! reaches it: AWS Config, GuardDuty direct and through Security Hub, Security Hub controls,
//! the custom actions), each on a public bucket of its own so that each one is fixed rather
//! than meeting a bucket an earlier sample already fixed; then the events that must change
//! nothing; then every event delivered a second time.

use crate::demo::{make_public_bucket, Sample, EXEMPT_BUCKET};
use crate::functions::Function;
use anyhow::{bail, Context, Result};
use comfy_table::{presets::UTF8_FULL_CONDENSED, ContentArrangement, Table};
use reflex_shared::ledger::OutcomeRecord;
use reflex_shared::pipeline::Handled;
use reflex_shared::status::{Reason, Status};
use reflex_shared::Setup;
use std::collections::BTreeMap;

pub const FUNCTION: &str = "s3-block-public-access";
/// The bucket every committed S3 sample names; the demo swaps in a bucket per sample.
const SAMPLE_BUCKET: &str = "reflex-demo-public";

/// One delivered event and what came of it.
pub struct Delivered {
    pub name: String,
    pub raw: Vec<u8>,
    pub outcomes: Vec<Handled>,
}

fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header.iter().copied());
    t
}

fn short(name: &str) -> &str {
    name.rsplit('/')
        .next()
        .unwrap_or(name)
        .trim_end_matches(".json")
}

/// Block Public Access on `bucket`, from a fresh read: "4 of 4 on", or "none".
pub async fn block_public_access(s3: &aws_sdk_s3::Client, bucket: &str) -> Result<String> {
    match s3.get_public_access_block().bucket(bucket).send().await {
        Ok(out) => {
            let on = out
                .public_access_block_configuration()
                .map(|c| {
                    [
                        c.block_public_acls(),
                        c.ignore_public_acls(),
                        c.block_public_policy(),
                        c.restrict_public_buckets(),
                    ]
                    .iter()
                    .filter(|b| **b == Some(true))
                    .count()
                })
                .unwrap_or(0);
            Ok(format!("{on} of 4 on"))
        }
        Err(e)
            if e.as_service_error()
                .and_then(|s| aws_sdk_s3::error::ProvideErrorMetadata::code(s))
                == Some("NoSuchPublicAccessBlockConfiguration") =>
        {
            Ok("none".into())
        }
        Err(e) => bail!(
            "cannot read Block Public Access of {bucket}: {}",
            reflex_shared::aws_error::describe(&e)
        ),
    }
}

async fn deliver(
    setup: &Setup,
    function: &dyn Function,
    name: &str,
    raw: Vec<u8>,
    pass: &str,
) -> Result<Delivered> {
    let request_id = format!("demo-{pass}-{}", uuid::Uuid::new_v4());
    let outcomes = function.replay(setup, &raw, &request_id).await?;
    Ok(Delivered {
        name: name.to_string(),
        raw,
        outcomes,
    })
}

/// Every S3 sample, each on a public bucket of its own (the exempt sample on the exempt one);
/// a table of what happened and each bucket as a fresh read shows it now.
pub async fn every_trigger(
    setup: &Setup,
    function: &dyn Function,
    s3: &aws_sdk_s3::Client,
    samples: &[Sample],
) -> Result<Vec<Delivered>> {
    let mine: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.name.starts_with(&format!("{FUNCTION}/")))
        .collect();
    make_public_bucket(s3, EXEMPT_BUCKET, true).await?;
    let mut delivered = Vec::new();
    for (i, sample) in mine.iter().enumerate() {
        let text = std::str::from_utf8(&sample.raw)
            .with_context(|| format!("{} is not UTF-8", sample.name))?;
        let bucket = if text.contains(SAMPLE_BUCKET) {
            let bucket = format!("{SAMPLE_BUCKET}-{}", i + 1);
            make_public_bucket(s3, &bucket, false).await?;
            bucket
        } else {
            EXEMPT_BUCKET.to_string()
        };
        let raw = text.replace(SAMPLE_BUCKET, &bucket).into_bytes();
        delivered.push(deliver(setup, function, &sample.name, raw, "1").await?);
    }
    let mut t = table(&[
        "sample (the finding as AWS sends it)",
        "bucket",
        "outcome",
        "why",
        "Block Public Access now",
    ]);
    for d in &delivered {
        for o in &d.outcomes {
            // The bucket the record is about (a duplicate's is the earlier finding's).
            let bucket = o
                .resource
                .as_deref()
                .and_then(|arn| arn.strip_prefix("arn:aws:s3:::"))
                .unwrap_or("-")
                .to_string();
            let now = if bucket == "-" {
                "-".to_string()
            } else {
                block_public_access(s3, &bucket).await?
            };
            let duplicate = if o.duplicate {
                " (duplicate: same finding as above)"
            } else {
                ""
            };
            t.add_row([
                short(&d.name).to_string(),
                bucket,
                format!("{} / {}{duplicate}", o.status, o.reason),
                o.detail.clone(),
                now,
            ]);
        }
    }
    println!("{t}");
    let fixed = delivered
        .iter()
        .flat_map(|d| &d.outcomes)
        .filter(|o| o.status == Status::Succeeded && !o.duplicate)
        .count();
    let exempt = delivered
        .iter()
        .flat_map(|d| &d.outcomes)
        .filter(|o| o.reason == Reason::Exempt)
        .count();
    println!(
        "   {} samples: {fixed} buckets fixed and verified by a fresh read; {exempt} left alone \
         (the bucket tagged reflex:exempt=<until>;<reason>); {} the same finding as another sample",
        delivered.len(),
        delivered
            .iter()
            .flat_map(|d| &d.outcomes)
            .filter(|o| o.duplicate)
            .count()
    );
    if fixed == 0 || exempt != 1 {
        bail!("the S3 samples did not behave as expected ({fixed} fixed, {exempt} exempt)");
    }
    Ok(delivered)
}

/// The events that must change nothing: each recorded with its reason, none acted on.
pub async fn must_change_nothing(
    setup: &Setup,
    function: &dyn Function,
    samples: &[Sample],
) -> Result<Vec<Delivered>> {
    let mut delivered = Vec::new();
    for sample in samples
        .iter()
        .filter(|s| s.name.starts_with("non-actionable/") || s.name.starts_with("hostile/"))
    {
        delivered.push(deliver(setup, function, &sample.name, sample.raw.clone(), "1").await?);
    }
    let mut t = table(&["event", "outcome", "why"]);
    for d in &delivered {
        for o in &d.outcomes {
            t.add_row([
                d.name.clone(),
                format!("{} / {}", o.status, o.reason),
                o.detail.clone(),
            ]);
        }
    }
    println!("{t}");
    let acted = delivered
        .iter()
        .flat_map(|d| &d.outcomes)
        .filter(|o| matches!(o.status, Status::Succeeded | Status::Acting))
        .count();
    if acted > 0 {
        bail!("{acted} non-actionable or hostile event(s) led to a change");
    }
    println!(
        "   {} events: each recorded with its reason, none acted on",
        delivered.len()
    );
    Ok(delivered)
}

/// One record as an auditor compares two readings of the table: its outcome, attempts,
/// changes and after-state.
type Essence = (
    Status,
    Reason,
    u32,
    Vec<(String, String)>,
    Option<serde_json::Value>,
);

fn essence(records: &[OutcomeRecord]) -> BTreeMap<String, Essence> {
    records
        .iter()
        .map(|r| {
            let changes = r
                .actions
                .iter()
                .map(|a| (a.api.clone(), a.result.as_str().to_string()))
                .collect();
            (
                r.record_id.clone(),
                (
                    r.status,
                    r.reason,
                    r.attempts,
                    changes,
                    r.post_state.clone(),
                ),
            )
        })
        .collect()
}

/// Every event delivered again, as EventBridge may: each a duplicate, nothing changed.
pub async fn deliver_again(
    setup: &Setup,
    function: &dyn Function,
    first: &[Delivered],
) -> Result<()> {
    let before = crate::audit::records(&setup.ledger, &Default::default()).await?;
    let mut outcomes = 0;
    let mut duplicates = 0;
    for d in first {
        let again = deliver(setup, function, &d.name, d.raw.clone(), "2").await?;
        outcomes += again.outcomes.len();
        duplicates += again.outcomes.iter().filter(|o| o.duplicate).count();
    }
    let after = crate::audit::records(&setup.ledger, &Default::default()).await?;
    let unchanged = essence(&before) == essence(&after);
    println!(
        "   {} events delivered again: {outcomes} outcomes, {duplicates} recognised as \
         duplicates, {} new records; outcomes and changes {}",
        first.len(),
        after.len().saturating_sub(before.len()),
        if unchanged { "unchanged" } else { "CHANGED" }
    );
    if duplicates != outcomes || !unchanged {
        bail!("the second delivery was not a no-op ({duplicates}/{outcomes} duplicates, unchanged: {unchanged})");
    }
    Ok(())
}
