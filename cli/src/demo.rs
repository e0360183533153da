//! `reflex demo`: what a team lives with, against the local AWS emulator. A progress line per
//! step: findings of every function fixed; one held for approval and approved; one seen in
//! dry-run and retried under enforce; a rollback and its echo held back; a burst meeting the
//! budget; a backlog pulled from Security Hub; hostile events and a second delivery changing
//! nothing; the notifications that went out; and an HTML report of the outcome table.

use crate::functions::Function;
use crate::render::{self, Format};
use anyhow::{bail, Context, Result};
use aws_sdk_s3::types::{PublicAccessBlockConfiguration, Tag, Tagging};
use reflex_shared::pipeline::Handled;
use reflex_shared::setup::s3_path_style;
use reflex_shared::status::Status;
use reflex_shared::Setup;
use std::path::Path;

/// The account moto answers as by default: the only account the demo will touch.
pub const EMULATOR_ACCOUNT: &str = "123456789012";

pub const EXEMPT_BUCKET: &str = "reflex-demo-exempt";

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
        "refusing to run the demo against {endpoint}: it makes buckets public, opens SSH to the \
         world, changes IAM users and writes demo records, so it runs only against a local emulator on a loopback \
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
        // An exemption names its last day and its reason: two months from today (a tag may name at most 90 days).
        let until = (chrono::Utc::now() + chrono::Duration::days(60)).format("%Y-%m-%d");
        let tag = Tag::builder()
            .key("reflex:exempt")
            .value(format!("{until};public website (the demo)"))
            .build()?;
        s3.put_bucket_tagging()
            .bucket(name)
            .tagging(Tagging::builder().tag_set(tag).build()?)
            .send()
            .await
            .with_context(|| format!("cannot tag {name}"))?;
    }
    Ok(())
}

/// A sample event: its name under `events/` (`s3-block-public-access/x.json`) and its bytes.
#[derive(Debug, Clone)]
pub struct Sample {
    pub name: String,
    pub raw: Vec<u8>,
}

impl Sample {
    /// Every sample: those under `dir` (laid out as the source's `events/`), or the ones built
    /// into reflex.
    pub fn all(dir: Option<&Path>) -> Result<Vec<Sample>> {
        Ok(crate::samples::sample_events(dir)?
            .into_iter()
            .map(|(name, raw)| Sample { name, raw })
            .collect())
    }
}

/// Replay one event as Lambda would, print each outcome, and approve (as `reflex approve`
/// does: this caller, as STS names it, is the approver) any held for approval.
pub async fn replay_approving(
    setup: &Setup,
    function: &dyn Function,
    name: &str,
    raw: &[u8],
    request_id: &str,
) -> Result<Vec<Handled>> {
    let mut outcomes = Vec::new();
    for o in function.replay(setup, raw, request_id).await? {
        println!("{}", render::outcome_line(name, &o, Format::Human));
        if o.status == Status::PendingApproval {
            let approved = function
                .approve(setup, &o.record_id, &setup.caller_arn)
                .await?;
            println!(
                "{}",
                render::outcome_line("reflex approve", &approved, Format::Human)
            );
            outcomes.push(approved);
        } else {
            outcomes.push(o);
        }
    }
    Ok(outcomes)
}

/// The demo's steps, each announced with a progress line.
struct Steps {
    done: usize,
    total: usize,
    started: std::time::Instant,
}

impl Steps {
    fn new(total: usize) -> Steps {
        Steps {
            done: 0,
            total,
            started: std::time::Instant::now(),
        }
    }

    fn next(&mut self, what: &str) {
        self.done += 1;
        println!(
            "\n[{}/{}] {what}  ({:.1}s)\n",
            self.done,
            self.total,
            self.started.elapsed().as_secs_f64()
        );
    }
}

fn s3_client(setup: &Setup) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&setup.sdk)
            .force_path_style(s3_path_style(&setup.sdk))
            .build(),
    )
}

/// The whole story; the HTML report of the outcome table is written to `report`.
pub async fn run(setup: &Setup, samples: &[Sample], report: &Path) -> Result<()> {
    // Security Hub's BatchUpdateFindings is answered by the demo's stand-in (the emulator
    // lacks it); every other call goes to the emulator.
    let (setup, sent) = crate::demo_feedback::with_stand_in(setup);
    let setup = &setup;
    let mut steps = Steps::new(10);

    steps.next("Setting up: the outcome table, and the AWS Config rules the samples come from");
    let created = setup.ledger.create_table_if_absent().await?;
    make_config_rules(&aws_sdk_config::Client::new(&setup.sdk)).await?;
    println!(
        "   outcome table {}: {}; policy: the built-in defaults (enforce low risk, approve high \
         risk); Security Hub's BatchUpdateFindings, which the emulator lacks, is answered by the \
         demo's stand-in (step 9 lists what it received)",
        setup.ledger.table(),
        if created { "created" } else { "already there" }
    );

    steps.next(
        "s3-block-public-access: every kind of finding it takes, each on a public bucket of its own",
    );
    let s3 = s3_client(setup);
    let s3_function = crate::functions::build(crate::demo_s3::FUNCTION, setup)
        .context("the S3 function is built in")?;
    let mut delivered =
        crate::demo_s3::every_trigger(setup, s3_function.as_ref(), &s3, samples).await?;

    steps.next("The rest of the catalog: a finding each, fixed (the high-risk ones once approved) and verified by a fresh read");
    crate::demo_catalog::show(setup).await?;
    crate::demo_catalog::show_rest(setup).await?;

    steps.next("High risk: held for approval, then approved with `reflex approve`");
    crate::demo_catalog::held_then_approved(setup).await?;

    steps.next(
        "Dry-run first: the plan recorded, nothing changed; then `reflex retry` under enforce",
    );
    let fixed = crate::demo_operator::dry_run_then_retry(setup).await?;

    steps.next("`reflex rollback`: the pre-state restored, and the finding's echo held back");
    crate::demo_operator::rollback_and_echo(setup, &fixed).await?;

    steps.next("A burst of findings meeting the hourly budget");
    crate::demo_operator::burst(setup, 5, 3).await?;

    steps.next("The backlog: findings already in Security Hub, pulled with `reflex backlog`");
    crate::demo_backlog::show(setup, &s3).await?;

    steps.next("Non-actionable and hostile events, then every event delivered a second time");
    delivered
        .extend(crate::demo_s3::must_change_nothing(setup, s3_function.as_ref(), samples).await?);
    crate::demo_s3::deliver_again(setup, s3_function.as_ref(), &delivered).await?;

    steps.next("The notifications that went out (Security Hub workflow status and note)");
    let sent = sent.all();
    crate::demo_feedback::print(&sent);

    let records = crate::audit::records(&setup.ledger, &Default::default()).await?;
    crate::report_html::write(report, "Reflex demo: outcome records", &records)?;
    println!(
        "\nDone in {:.1}s: {} outcome records (`reflex audit` lists them). HTML report: {}",
        steps.started.elapsed().as_secs_f64(),
        records.len(),
        report.display()
    );
    if sent.is_empty() {
        bail!("no notification went out");
    }
    Ok(())
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
