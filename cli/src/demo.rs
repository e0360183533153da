//! `reflex demo`: a public bucket fixed and verified, an exempt one left alone, hostile and
//! non-actionable events recorded without a change, and a second delivery of everything
//! changing nothing.

use crate::audit::{self, Filter};
use crate::functions;
use crate::render::{self, Format};
use anyhow::{bail, Context, Result};
use aws_sdk_s3::types::{PublicAccessBlockConfiguration, Tag, Tagging};
use reflex_shared::finding::ResourceKind;
use reflex_shared::remediation::ResourceRef as Target;
use reflex_shared::setup::s3_path_style;
use reflex_shared::Setup;
use s3_block_public_access::{BucketState, S3BlockPublicAccess};
use std::path::Path;

/// The account moto answers as by default: the only account the demo will touch.
pub const EMULATOR_ACCOUNT: &str = "123456789012";

pub const PUBLIC_BUCKET: &str = "reflex-demo-public";
pub const EXEMPT_BUCKET: &str = "reflex-demo-exempt";
const FUNCTION: &str = "s3-block-public-access";

/// Whether `endpoint` (a URL) names this machine: `localhost`, 127.0.0.0/8 or `[::1]`.
pub fn is_loopback(endpoint: &str) -> bool {
    let rest = endpoint
        .split_once("://")
        .map(|(_, r)| r)
        .unwrap_or(endpoint);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    // Credentials before an '@' are not the host.
    let host_port = authority.rsplit('@').next().unwrap_or("");
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        host_port.split(':').next().unwrap_or("")
    };
    match host.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => host.eq_ignore_ascii_case("localhost"),
    }
}

/// The demo breaks buckets on purpose: it runs only against an emulator on this machine.
pub fn refuse_unless_loopback(endpoint: &str) -> Result<()> {
    if is_loopback(endpoint) {
        return Ok(());
    }
    bail!(
        "refusing to run the demo against {endpoint}: it turns S3 Block Public Access off on two \
         buckets and writes demo records, so it runs only against a local emulator on a loopback \
         address (unset AWS_ENDPOINT_URL and the demo starts one itself)"
    )
}

/// Even on loopback, the emulator must be the default one, not a proxy to a real account.
pub fn refuse_unless_emulator_account(account: &str) -> Result<()> {
    if account == EMULATOR_ACCOUNT {
        return Ok(());
    }
    bail!(
        "refusing to run the demo: STS says these credentials are for account {account}, not the \
         emulator's default account {EMULATOR_ACCOUNT}; nothing was changed or written"
    )
}

/// The sample events the demo replays, in order: the function's own, then the ones that must
/// not lead to any change. From `events` if given, else the ones built into the binary.
pub fn demo_events(events: Option<&Path>) -> Result<Vec<(String, Vec<u8>)>> {
    let all = crate::samples::sample_events(events)?;
    let mut files = Vec::new();
    for dir in [FUNCTION, "non-actionable", "hostile"] {
        let prefix = format!("{dir}/");
        files.extend(all.iter().filter(|(n, _)| n.starts_with(&prefix)).cloned());
    }
    Ok(files)
}

/// The AWS-managed Config rules the demo's Config samples come from, under the names they are
/// deployed as (Security Hub's, a conformance pack's, and one a team chose): Reflex knows them
/// by identity, so each must exist, as in a real account.
const CONFIG_RULES: &[(&str, &str)] = &[
    (
        "securityhub-s3-bucket-public-read-prohibited-8fa6bd2a",
        "S3_BUCKET_PUBLIC_READ_PROHIBITED",
    ),
    (
        "s3-bucket-public-write-prohibited-conformance-pack-kuyoa3x8n",
        "S3_BUCKET_PUBLIC_WRITE_PROHIBITED",
    ),
    (
        "team-x-no-public-buckets",
        "S3_BUCKET_PUBLIC_READ_PROHIBITED",
    ),
];

async fn make_config_rules(config: &aws_sdk_config::Client) -> Result<()> {
    use aws_sdk_config::types::{ConfigRule, Owner, Source};
    for (name, identifier) in CONFIG_RULES {
        let source = Source::builder()
            .owner(Owner::Aws)
            .source_identifier(*identifier)
            .build()?;
        config
            .put_config_rule()
            .config_rule(
                ConfigRule::builder()
                    .config_rule_name(*name)
                    .source(source)
                    .build(),
            )
            .send()
            .await
            .with_context(|| format!("cannot create the managed Config rule {name}"))?;
    }
    Ok(())
}

/// A bucket (created if absent) with Block Public Access all off; tagged exempt if asked.
pub async fn make_public_bucket(s3: &aws_sdk_s3::Client, name: &str, exempt: bool) -> Result<()> {
    match s3.create_bucket().bucket(name).send().await {
        Ok(_) => {}
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_bucket_already_owned_by_you()) => {}
        Err(e) => bail!(
            "cannot create bucket {name}: {}",
            reflex_shared::aws_error::describe(&e)
        ),
    }
    let off = PublicAccessBlockConfiguration::builder()
        .block_public_acls(false)
        .ignore_public_acls(false)
        .block_public_policy(false)
        .restrict_public_buckets(false)
        .build();
    s3.put_public_access_block()
        .bucket(name)
        .public_access_block_configuration(off)
        .send()
        .await
        .with_context(|| format!("cannot turn Block Public Access off on {name}"))?;
    if exempt {
        let tag = Tag::builder().key("reflex:exempt").value("true").build()?;
        s3.put_bucket_tagging()
            .bucket(name)
            .tagging(Tagging::builder().tag_set(tag).build()?)
            .send()
            .await
            .with_context(|| format!("cannot tag {name}"))?;
    }
    Ok(())
}

async fn describe(r: &S3BlockPublicAccess, bucket: &str, account: &str) -> Result<String> {
    let target = Target {
        kind: ResourceKind::S3Bucket,
        id: bucket.into(),
        arn: format!("arn:aws:s3:::{bucket}"),
        account: account.into(),
    };
    let state: BucketState = r.read_state(&target).await?;
    Ok(match state.public_access_block {
        None => "no Block Public Access configuration".into(),
        Some(c) => {
            let on = [
                c.block_public_acls,
                c.ignore_public_acls,
                c.block_public_policy,
                c.restrict_public_buckets,
            ]
            .iter()
            .filter(|b| **b)
            .count();
            format!("Block Public Access: {on} of 4 settings on")
        }
    })
}

/// Both buckets' Block Public Access, from a fresh read; `exempt_note` follows the exempt one.
async fn show_buckets(r: &S3BlockPublicAccess, account: &str, exempt_note: &str) -> Result<()> {
    println!(
        "   {PUBLIC_BUCKET:<22} {}",
        describe(r, PUBLIC_BUCKET, account).await?
    );
    println!(
        "   {EXEMPT_BUCKET:<22} {}{exempt_note}",
        describe(r, EXEMPT_BUCKET, account).await?
    );
    Ok(())
}

/// Replay every (name, event); `Ok(outcomes)` as (name, outcome) pairs.
async fn replay_all(
    setup: &Setup,
    function: &dyn functions::Function,
    files: &[(String, Vec<u8>)],
    pass: &str,
) -> Result<Vec<(String, reflex_shared::pipeline::Handled)>> {
    let mut results = Vec::new();
    for (i, (name, raw)) in files.iter().enumerate() {
        let request_id = format!("demo-{pass}-{i}");
        for o in function.replay(setup, raw, &request_id).await? {
            println!("{}", render::outcome_line(name, &o, Format::Human));
            results.push((name.clone(), o));
        }
    }
    Ok(results)
}

pub async fn run(setup: &Setup, events: Option<&Path>) -> Result<()> {
    let files = demo_events(events)?;
    let s3_conf = aws_sdk_s3::config::Builder::from(&setup.sdk)
        .force_path_style(s3_path_style(&setup.sdk))
        .build();
    let s3 = aws_sdk_s3::Client::from_conf(s3_conf);
    let remediation = S3BlockPublicAccess::from_client(s3.clone());
    let function = functions::build(FUNCTION, setup).context("the demo's function is built in")?;

    let created = setup.ledger.create_table_if_absent().await?;
    println!(
        "\n1. Handled table {}: {}",
        setup.ledger.table(),
        if created { "created" } else { "already there" }
    );

    make_config_rules(&aws_sdk_config::Client::new(&setup.sdk)).await?;
    make_public_bucket(&s3, PUBLIC_BUCKET, false).await?;
    make_public_bucket(&s3, EXEMPT_BUCKET, true).await?;
    println!(
        "
2. Buckets with Block Public Access turned off:"
    );
    show_buckets(
        &remediation,
        &setup.account_id,
        " (tagged reflex:exempt=true)",
    )
    .await?;

    println!(
        "\n3. Replaying {} sample events through {FUNCTION}, as Lambda would:\n",
        files.len()
    );
    let first = replay_all(setup, function.as_ref(), &files, "1").await?;

    println!(
        "
4. The buckets now (a fresh read):"
    );
    show_buckets(&remediation, &setup.account_id, " (unchanged)").await?;

    let before = audit::records(&setup.ledger, &Filter::default()).await?;
    println!("\n5. The outcome records (`reflex audit`):\n");
    println!(
        "{}",
        render::records(&before, Format::Human).map_err(anyhow::Error::msg)?
    );

    println!(
        "\n6. Delivering the same {} events again (EventBridge delivers at least once):\n",
        files.len()
    );
    let second = replay_all(setup, function.as_ref(), &files, "2").await?;
    let after = audit::records(&setup.ledger, &Filter::default()).await?;
    let essence = |rs: &[reflex_shared::ledger::OutcomeRecord]| {
        rs.iter()
            .map(|r| {
                (
                    r.record_id.clone(),
                    r.status,
                    r.reason,
                    r.actions.clone(),
                    r.attempts,
                    r.post_state.clone(),
                )
            })
            .collect::<Vec<_>>()
    };
    let duplicates = second.iter().filter(|(_, o)| o.duplicate).count();
    let unchanged = essence(&before) == essence(&after);
    println!(
        "\n   second delivery: {} outcomes, {duplicates} duplicates, {} new records, outcomes and changes {}",
        second.len(),
        after.len().saturating_sub(before.len()),
        if unchanged { "unchanged" } else { "CHANGED" }
    );
    show_buckets(&remediation, &setup.account_id, "").await?;

    let fixed = first.iter().any(|(_, o)| {
        o.status == reflex_shared::status::Status::Succeeded
            && o.resource.as_deref() == Some("arn:aws:s3:::reflex-demo-public")
    });
    if !fixed || duplicates != second.len() || !unchanged {
        bail!("the demo did not behave as expected (fixed: {fixed}, duplicates: {duplicates}/{}, unchanged: {unchanged})", second.len());
    }
    crate::demo_catalog::show(setup, events).await?;
    crate::demo_catalog::show_rest(setup).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_endpoints() {
        let cases = [
            ("http://127.0.0.1:5000", true),
            ("http://127.8.9.10:5000/", true),
            ("http://localhost:4566", true),
            ("http://LOCALHOST", true),
            ("http://[::1]:5000", true),
            ("https://user:pw@127.0.0.1:5000/x", true),
            ("https://s3.us-east-1.amazonaws.com", false),
            ("http://10.0.0.5:5000", false),
            ("http://192.168.1.2", false),
            ("http://127.0.0.1.example.com", false),
            ("http://localhost.example.com:5000", false),
            ("http://[::2]:5000", false),
            ("http://127.0.0.1@evil.example.com", false),
            ("", false),
        ];
        for (url, want) in cases {
            assert_eq!(is_loopback(url), want, "{url}");
        }
        assert!(refuse_unless_emulator_account("123456789012").is_ok());
        let e = refuse_unless_emulator_account("111122223333").unwrap_err();
        assert!(e.to_string().contains("111122223333"), "{e}");
    }
}
