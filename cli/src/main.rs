//! `reflex`: init, replay, audit, demo. The CLI edge: errors become a message and an exit code.

use anyhow::{Context, Result};
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use reflex_cli::audit::{self, Filter};
use reflex_cli::emulator::Emulator;
use reflex_cli::ops::{backlog, retry, show, unhold};
use reflex_cli::policy_choice::Request;
use reflex_cli::render::{self, Format};
use reflex_cli::{demo, functions, policy_choice, policy_cmd, render_record};
use reflex_shared::ledger::{table, Ledger};
use reflex_shared::operator::{self, Order};
use reflex_shared::policy::{PolicyCache, PolicySource};
use reflex_shared::setup::Settings;
use reflex_shared::status::Status;
use reflex_shared::{logging, setup, Setup};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// Reflex: auto-remediation for AWS security findings — the operator's and auditor's tool.
///
/// AWS settings come from the standard environment (AWS_REGION, AWS_PROFILE or keys,
/// AWS_ENDPOINT_URL for a local emulator). The policy comes from --policy / --policy-parameter,
/// else REFLEX_POLICY_FILE or REFLEX_POLICY_PARAMETER, else the deployment's SSM parameter
/// /reflex/policy, or the --stack's (where it does not exist: the first-deploy policy, every
/// remediation in dry-run, as the functions apply it).
#[derive(Parser)]
#[command(name = "reflex", version, propagate_version = true)]
struct Cli {
    /// The outcome table.
    #[arg(long, global = true, env = table::TABLE_ENV, default_value = table::DEFAULT_TABLE)]
    table: String,
    /// The deployment's CloudFormation stack: its outputs name the outcome table and the
    /// policy parameter (instead of --table and --policy-parameter; over REFLEX_TABLE and
    /// REFLEX_POLICY_FILE / REFLEX_POLICY_PARAMETER).
    #[arg(long, global = true, value_name = "NAME")]
    stack: Option<String>,
    /// --table was given on the command line (not by REFLEX_TABLE, which --stack overrides).
    #[arg(skip)]
    table_on_command_line: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create the outcome table if it is absent (safe to run again).
    Init,
    /// Run a function's handler in-process on event files, exactly as Lambda would.
    ///
    /// Prints one result per finding. Exits 0 when every event was handled, whatever its
    /// outcome; non-zero for usage or infrastructure errors.
    Replay {
        /// Event files (EventBridge JSON).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The function to run.
        #[arg(long = "function", short = 'f', value_parser = clap::builder::PossibleValuesParser::new(functions::names()))]
        function: String,
        /// JSON lines instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        policy: PolicyFlags,
    },
    /// Approve a fix held for approval (`pending-approval`): carries out exactly the plan that
    /// was shown, if a fresh read still matches the recorded pre-state, and records you (your
    /// STS identity) as the approver. Refuses, changing nothing, any other record.
    Approve {
        /// The record id, as `reflex audit` shows it.
        record_id: String,
        /// Print the command, signed with your credentials, as a payload for the function
        /// (`aws lambda invoke --payload`) instead of approving in process. Valid for 5 minutes,
        /// for this record and table only; the function asks STS who signed it.
        #[arg(long)]
        command_for_function: bool,
        #[command(flatten)]
        policy: PolicyFlags,
        /// The result as a JSON line.
        #[arg(long)]
        json: bool,
    },
    /// Roll a succeeded fix back: restores the recorded pre-state, verifies it, and records
    /// `rolled-back` with who, when and what. The resource is then held back from the
    /// remediation (`--hold-for`), so the finding's echo does not re-apply the fix. Refuses,
    /// changing nothing, a record that is not reversible, not succeeded, already rolled back,
    /// or whose resource changed since the fix.
    Rollback {
        /// The record id, as `reflex audit` shows it.
        record_id: String,
        /// Say what the rollback would do; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// How long findings for the resource are not acted on: 90m, 24h, 7d… (at most 90d)
        #[arg(long, default_value = "7d", value_parser = parse_hold)]
        hold_for: chrono::Duration,
        /// Print the command, signed with your credentials, as a payload for the function
        /// (`aws lambda invoke --payload`) instead of rolling back in process. Valid for 5
        /// minutes, for this record and table only; `--hold-for` in whole hours.
        #[arg(long)]
        command_for_function: bool,
        #[command(flatten)]
        policy: PolicyFlags,
        /// The result as a JSON line.
        #[arg(long)]
        json: bool,
    },
    /// Run a finished, non-successful record again under the policy now in force (say, a
    /// dry-run record after the policy moved to enforce), as you (your STS identity).
    ///
    /// Retryable: failed, verification-failed, dry-run, pending-approval, skipped, and rejected
    /// records that hold a finding. Refused, changing nothing: succeeded, rolled-back, in
    /// progress (claimed, acting, awaiting-completion), a record without a finding, an unknown
    /// id. It takes the same claim and lease as every run; the earlier outcome stays in the
    /// record's history. Exits 1 when refused or when the run ends failed.
    Retry {
        /// The record id, as `reflex audit` shows it.
        record_id: String,
        #[command(flatten)]
        policy: PolicyFlags,
        /// The result as a JSON line.
        #[arg(long)]
        json: bool,
    },
    /// Run the findings that already exist in Security Hub through their functions: active,
    /// of this account, workflow NEW or NOTIFIED, and (controls) FAILED; each wrapped as the
    /// EventBridge event that would have delivered it and handled in process, as `replay`
    /// does. A finding already handled is a duplicate, so running it twice changes nothing.
    ///
    /// Prints a line per finding and a summary per function. Exits 0 when every finding was
    /// handled, whatever its outcome; 1 when an invocation failed (Lambda would retry it).
    Backlog {
        /// Only findings of this Security Hub control (e.g. S3.8).
        #[arg(long, value_name = "ID")]
        control: Option<String>,
        /// Only this function's findings, run only through it.
        #[arg(long = "function", short = 'f', value_parser = clap::builder::PossibleValuesParser::new(functions::names()))]
        function: Option<String>,
        /// At most this many findings.
        #[arg(long, value_name = "N")]
        limit: Option<usize>,
        /// List what would run (finding, control or type, resource, function); run nothing,
        /// write nothing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        policy: PolicyFlags,
        /// JSON lines (one per finding, then the summary) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// One record, readable: the finding, the decision, the plan, what changed, before and
    /// after, verification, approval, rollback, budget, errors and history.
    Show {
        /// The record id, as `reflex audit` shows it.
        record_id: String,
        /// The record as stored (one JSON object) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Lift a rollback's hold on a resource before it ends, as you (your STS identity): the
    /// next finding for it is acted on again. The rollback's record says who lifted it and when.
    /// Refused when no live hold exists.
    Unhold {
        /// The resource ARN, as `reflex audit --suppressions` lists it.
        resource_arn: String,
        /// The function whose hold to lift (needed only when several hold the resource).
        #[arg(long = "function", short = 'f', value_parser = clap::builder::PossibleValuesParser::new(functions::names()))]
        function: Option<String>,
    },
    /// List outcome records as a table (or JSON lines, or CSV).
    Audit {
        /// Only this status (succeeded, failed, dry-run, pending-approval, skipped, rejected…).
        #[arg(long, value_parser = parse_status)]
        status: Option<Status>,
        /// Only records of this resource: an ARN, or a name — a bucket name, an instance
        /// (i-…), security group (sg-…) or network ACL (acl-…) id in your region and account, or
        /// an access key id (AKIA…/ASIA…: the records whose finding or target names it). The
        /// ARN searched is said on stderr.
        #[arg(long)]
        resource: Option<String>,
        /// Only records created since: 90m, 24h, 7d (up to 36500d), 2026-11-20 or an RFC 3339 time.
        #[arg(long)]
        since: Option<String>,
        /// Only records still `claimed` or `acting` past their lease: invocations that died
        /// and were not yet taken over by a retry.
        #[arg(long, conflicts_with = "status")]
        stuck: bool,
        /// List the live suppressions (resources a rollback holds back from their remediation)
        /// instead of records.
        #[arg(long, conflicts_with_all = ["status", "stuck", "resource", "since"])]
        suppressions: bool,
        /// List the exemptions of the policy in force (REFLEX_POLICY_FILE or
        /// REFLEX_POLICY_PARAMETER, else the deployment's): those ending within 14 days first,
        /// those that have ended flagged. Exemptions carried as the exemption tag are on the
        /// resources: `aws resourcegroupstaggingapi get-resources --tag-filters Key=reflex:exempt`.
        #[arg(long, conflicts_with_all = ["status", "stuck", "resource", "since", "suppressions"])]
        exemptions: bool,
        /// One JSON object per record (every field), instead of a table.
        #[arg(long, conflicts_with = "csv")]
        json: bool,
        /// CSV with a header row (the table's columns and the detail), instead of a table.
        #[arg(long)]
        csv: bool,
        /// Write one self-contained HTML page to FILE instead (counts by remediation and status,
        /// a timeline, each record in full); the same filters apply.
        #[arg(long, value_name = "FILE", conflicts_with_all = ["json", "csv", "suppressions"])]
        html: Option<PathBuf>,
    },
    /// The deployment's policy: validate, show, push, revert, kill-switch.
    Policy(policy_cmd::PolicyArgs),
    /// Print the SAM template (infra/template.yaml): the fixed part (infra/base.yaml) and, for
    /// each function, its section generated from its Spec.
    ///
    /// After adding a function or changing a Spec: `reflex template > infra/template.yaml`.
    Template,
    /// Show Reflex end to end against the local AWS emulator (started and stopped for you
    /// unless AWS_ENDPOINT_URL is set).
    ///
    /// The demo makes buckets public, opens SSH and changes IAM users, so it refuses to run anywhere but
    /// an emulator: the endpoint must be a loopback address and STS must answer with the
    /// emulator's default account, 123456789012.
    Demo {
        /// Replay the sample events in DIR (laid out as the source's events/) instead of the
        /// ones built into reflex.
        #[arg(long, value_name = "DIR")]
        events: Option<PathBuf>,
        /// Where to write the HTML report of the outcome table [default: reflex-demo-report.html
        /// in the system's temporary directory].
        #[arg(long, value_name = "FILE")]
        report: Option<PathBuf>,
    },
}

/// The policy a command applies, where not the deployment's.
#[derive(clap::Args)]
struct PolicyFlags {
    /// Apply this policy file (YAML) instead of the deployment's (or REFLEX_POLICY_FILE /
    /// REFLEX_POLICY_PARAMETER).
    #[arg(long, value_name = "FILE", conflicts_with = "policy_parameter")]
    policy: Option<PathBuf>,
    /// Apply the policy in this SSM parameter, as the functions do (the deployment's is
    /// /<stack>/policy): e.g. for replaying dead-lettered events.
    #[arg(long, value_name = "NAME")]
    policy_parameter: Option<String>,
}

impl PolicyFlags {
    /// The policy these flags name, if any.
    fn source(&self) -> Option<PolicySource> {
        match (&self.policy, &self.policy_parameter) {
            (Some(file), _) => Some(PolicySource::File(file.display().to_string())),
            (None, Some(name)) => Some(PolicySource::Parameter(name.clone())),
            (None, None) => None,
        }
    }

    fn given(&self) -> bool {
        self.policy.is_some() || self.policy_parameter.is_some()
    }
}

/// A rollback's hold: a duration of at most 90 days (the bound the library and the functions
/// also hold to).
fn parse_hold(s: &str) -> Result<chrono::Duration, String> {
    match audit::parse_duration(s) {
        None => Err(format!("{s:?}: use 90m, 24h or 7d")),
        Some(Ok(d)) if d <= operator::MAX_HOLD => Ok(d),
        Some(_) => Err(format!(
            "{s:?}: --hold-for is at most 90 days (90d, {}h)",
            operator::MAX_HOLD_HOURS
        )),
    }
}

/// Print a command for a function, signed with the operator's own credentials.
async fn print_signed_command(table: &str, order: Order, record_id: &str) -> Result<()> {
    let sdk = setup::sdk_config().await;
    let payload = operator::signed_command(&sdk, order, record_id, table).await?;
    println!("{payload}");
    Ok(())
}

fn parse_status(s: &str) -> Result<Status, String> {
    Status::parse(s).ok_or_else(|| {
        let all: Vec<_> = Status::ALL.iter().map(|s| s.as_str()).collect();
        format!("unknown status {s:?}; one of: {}", all.join(", "))
    })
}

async fn ledger(table: &str) -> Ledger {
    let sdk = setup::sdk_config().await;
    Ledger::new(aws_sdk_dynamodb::Client::new(&sdk), table)
}

/// The function a record belongs to (its id starts with the function's name), set up with the
/// policy given.
async fn function_for_record(
    table: &str,
    record_id: &str,
    policy: Request,
) -> Result<(Setup, Box<dyn functions::Function>)> {
    let setup = setup_for(table, policy).await?;
    let name = record_id.split('#').next().unwrap_or_default();
    let function = functions::build(name, &setup).ok_or_else(|| {
        anyhow::anyhow!(
            "record id {record_id:?} names no Reflex function (known: {})",
            functions::names().join(", ")
        )
    })?;
    Ok((setup, function))
}

/// The policy a command applies: its flags', else (without --stack) the environment's, else the
/// deployment's parameter (the --stack's: it wins over REFLEX_POLICY_FILE and
/// REFLEX_POLICY_PARAMETER, so one deployment's records are never run under another's policy).
fn policy_request(flags: &PolicyFlags, stack: bool) -> Result<Request> {
    if stack {
        return Ok(Request::Deployed);
    }
    Ok(policy_choice::request(
        flags.source(),
        PolicySource::from_env(),
    )?)
}

/// The function environment, as a cold start builds it, applying `policy` (see
/// [`policy_request`]); what was chosen is said on stderr.
async fn setup_for(table: &str, policy: Request) -> Result<Setup> {
    let settings = Settings {
        table: table.to_string(),
        ..Settings::from_env()?
    };
    let sdk = setup::sdk_config().await;
    let ssm = aws_sdk_ssm::Client::new(&sdk);
    // Who you are and the policy, in one round; the policy read once.
    let (identity, chosen) = tokio::join!(
        setup::identity_from_sts(&sdk),
        policy_choice::choose_and_read(policy, &ssm)
    );
    let (chosen, read) = chosen?;
    eprintln!("{chosen}");
    let cache = PolicyCache::preloaded(chosen.source, ssm, settings.policy_max_age, read)
        .context("cannot set up the function environment")?;
    let identity = identity.context("cannot set up the function environment")?;
    Ok(Setup::assemble(sdk, settings, Arc::new(cache), identity))
}

/// Who the operator's credentials are, as STS says.
async fn caller_arn(sdk: &aws_config::SdkConfig) -> Result<String> {
    let me = aws_sdk_sts::Client::new(sdk)
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot learn who you are from STS GetCallerIdentity: {}",
                reflex_shared::aws_error::describe(&e)
            )
        })?;
    me.arn.context("STS GetCallerIdentity answered no ARN")
}

/// `audit --resource`: an ARN as it is, a name resolved (in the partition of the operator's
/// region; an EC2 id also in the account of the operator's credentials); what is searched is
/// said on stderr.
async fn resolve_resource(input: &str) -> Result<audit::ResourceQuery> {
    let sdk = setup::sdk_config().await;
    let region = sdk.region().map(|r| r.to_string());
    let account = if audit::needs_account(input) {
        let me = aws_sdk_sts::Client::new(&sdk)
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot learn your account from STS to resolve {input:?}: {} (pass the ARN instead)",
                    reflex_shared::aws_error::describe(&e)
                )
            })?;
        region
            .as_ref()
            .context("no AWS region set (AWS_REGION) to resolve the id; pass the ARN instead")?;
        Some(me.account.context("STS answered no account")?)
    } else {
        None
    };
    let place = region.map(|region| audit::Place { region, account });
    let query = audit::resolve_resource(input, place.as_ref());
    eprintln!("searching {query}");
    Ok(query)
}

/// Whether a command reads or writes AWS: the edge checks region and credentials first.
fn talks_to_aws(command: &Command) -> bool {
    match command {
        Command::Template | Command::Demo { .. } => false,
        Command::Policy(p) => p.command.talks_to_aws(),
        _ => true,
    }
}

/// Whether the command line names a policy (that conflicts with `--stack`, which names the
/// deployment's).
fn names_a_policy(command: &Command) -> bool {
    match command {
        Command::Replay { policy, .. }
        | Command::Approve { policy, .. }
        | Command::Rollback { policy, .. }
        | Command::Retry { policy, .. }
        | Command::Backlog { policy, .. } => policy.given(),
        Command::Policy(p) => p.policy_parameter.is_some(),
        _ => false,
    }
}

/// Commands `--stack` means nothing to: they read no deployment.
fn ignores_stack(command: &Command) -> bool {
    match command {
        Command::Template | Command::Demo { .. } => true,
        Command::Policy(p) => !p.command.talks_to_aws(),
        _ => false,
    }
}

async fn run(mut cli: Cli) -> Result<()> {
    if talks_to_aws(&cli.command) {
        policy_cmd::edge::check(&setup::sdk_config().await).await?;
    }
    let mut stack_parameter = None;
    let stack = cli.stack.is_some();
    if let Some(stack) = &cli.stack {
        if cli.table_on_command_line {
            anyhow::bail!("--stack names the outcome table: drop --table, or --stack");
        }
        if names_a_policy(&cli.command) {
            anyhow::bail!(
                "--stack applies the deployment's policy: drop --policy / --policy-parameter, or --stack"
            );
        }
        if ignores_stack(&cli.command) {
            anyhow::bail!("--stack names a deployment, and this command reads none: drop --stack");
        }
        let sdk = setup::sdk_config().await;
        let d =
            policy_cmd::stack::resolve(&aws_sdk_cloudformation::Client::new(&sdk), stack).await?;
        cli.table = d.table;
        policy_choice::set_deployed(d.parameter.clone());
        stack_parameter = Some(d.parameter);
    }
    match cli.command {
        Command::Policy(args) => {
            let parameter = policy_cmd::parameter(args.policy_parameter, stack_parameter);
            policy_cmd::run(args.command, &parameter).await?;
        }
        Command::Init => {
            let ledger = ledger(&cli.table).await;
            let created = ledger.create_table_if_absent().await?;
            let added = if created {
                Vec::new()
            } else {
                ledger.add_missing_indexes().await?
            };
            println!(
                "table {}: {}{}",
                cli.table,
                if created { "created" } else { "already exists" },
                if added.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; index {} added (DynamoDB builds it in the background)",
                        added.join(", ")
                    )
                }
            );
        }
        Command::Replay {
            files,
            function,
            json,
            policy,
        } => {
            let setup = setup_for(&cli.table, policy_request(&policy, stack)?).await?;
            if let Err(e) = setup.policy.current().await?.as_ref() {
                eprintln!("warning: {e}; every event will be recorded as failed (policy-invalid)");
            }
            let handler = functions::build(&function, &setup)
                .ok_or_else(|| anyhow::anyhow!("unknown function {function:?}"))?;
            let format = Format::lines(json);
            for (i, file) in files.iter().enumerate() {
                let raw = std::fs::read(file)
                    .with_context(|| format!("cannot read {}", file.display()))?;
                let request_id = format!("replay-{}-{i}", std::process::id());
                for o in handler.replay(&setup, &raw, &request_id).await? {
                    println!(
                        "{}",
                        render::outcome_line(&file.display().to_string(), &o, format)
                    );
                }
            }
        }
        Command::Approve {
            record_id,
            command_for_function: true,
            ..
        } => print_signed_command(&cli.table, Order::Approve, &record_id).await?,
        Command::Approve {
            record_id,
            policy,
            json,
            ..
        } => {
            let (setup, function) =
                function_for_record(&cli.table, &record_id, policy_request(&policy, stack)?)
                    .await?;
            let outcome = function
                .approve(&setup, &record_id, &setup.caller_arn)
                .await?;
            println!(
                "{}",
                render::outcome_line("approve", &outcome, Format::lines(json))
            );
            if outcome.status != Status::Succeeded {
                // Not carried out: the plan was shown anew, the budget is spent, the change
                // failed… The line above says why; the exit code says so to scripts.
                anyhow::bail!(
                    "the approval was not carried out: record {} is {} ({})",
                    outcome.record_id,
                    outcome.status,
                    outcome.reason
                );
            }
        }
        Command::Rollback {
            record_id,
            dry_run,
            hold_for,
            command_for_function: true,
            ..
        } => {
            let hours = u32::try_from(hold_for.num_hours())
                .ok()
                .filter(|h| chrono::Duration::hours(i64::from(*h)) == hold_for)
                .context("--command-for-function takes --hold-for in whole hours (24h, 7d)")?;
            let order = Order::Rollback {
                dry_run,
                hold_for_hours: hours,
            };
            print_signed_command(&cli.table, order, &record_id).await?;
        }
        Command::Rollback {
            record_id,
            dry_run,
            hold_for,
            policy,
            json,
            ..
        } => {
            let (setup, function) =
                function_for_record(&cli.table, &record_id, policy_request(&policy, stack)?)
                    .await?;
            let until = chrono::Utc::now()
                .checked_add_signed(hold_for)
                .context("--hold-for is too long")?;
            let outcome = function
                .rollback(&setup, &record_id, &setup.caller_arn, dry_run, until)
                .await?;
            println!(
                "{}",
                render::outcome_line("rollback", &outcome, Format::lines(json))
            );
        }
        Command::Audit {
            exemptions: true,
            json,
            csv,
            ..
        } => {
            use reflex_cli::audit_exemptions as ex;
            // The policy the functions apply: the --stack's, else REFLEX_POLICY_FILE /
            // REFLEX_POLICY_PARAMETER, else the deployment's parameter.
            let request = if stack {
                Request::Deployed
            } else {
                policy_choice::request(None, PolicySource::from_env())?
            };
            let policy = ex::policy_in_force(&setup::sdk_config().await, request).await?;
            let list = policy.exemption_list(chrono::Utc::now().date_naive());
            let format = match (json, csv) {
                (true, _) => Format::Json,
                (_, true) => Format::Csv,
                _ => Format::Human,
            };
            println!("{}", ex::render(&list, &policy.exemptions.tag, format)?);
        }
        Command::Audit {
            suppressions: true,
            json,
            ..
        } => {
            let live = audit::suppressions(&ledger(&cli.table).await, chrono::Utc::now()).await?;
            println!("{}", render::suppressions(&live, json));
        }
        Command::Audit {
            status,
            resource,
            since,
            stuck,
            json,
            csv,
            html,
            ..
        } => {
            let since = since
                .map(|s| audit::parse_since(&s, chrono::Utc::now()))
                .transpose()
                .map_err(anyhow::Error::msg)?;
            let query = match resource {
                Some(input) => Some(resolve_resource(&input).await?),
                None => None,
            };
            let (resource, access_key) = match query {
                Some(audit::ResourceQuery::Arn(arn)) => (Some(arn), None),
                Some(audit::ResourceQuery::AccessKey(key)) => (None, Some(key)),
                None => (None, None),
            };
            let filter = Filter {
                status,
                resource,
                since,
                stuck_at: stuck.then(|| chrono::Utc::now().timestamp()),
                access_key,
            };
            let records = audit::records(&ledger(&cli.table).await, &filter).await?;
            if let Some(path) = html {
                reflex_cli::report_html::write(&path, &audit::title(&filter), &records)?;
                println!("{} record(s) written to {}", records.len(), path.display());
                return Ok(());
            }
            let format = if json {
                Format::Json
            } else if csv {
                Format::Csv
            } else {
                Format::Human
            };
            println!(
                "{}",
                render::records(&records, format).map_err(anyhow::Error::msg)?
            );
        }
        Command::Retry {
            record_id,
            policy,
            json,
        } => {
            let setup = setup_for(&cli.table, policy_request(&policy, stack)?).await?;
            let outcome = retry::retry(&setup, &record_id).await?;
            println!(
                "{}",
                render::outcome_line("retry", &outcome, Format::lines(json))
            );
            if matches!(outcome.status, Status::Failed | Status::VerificationFailed) {
                anyhow::bail!(
                    "the retry ran and failed: record {} is {} ({})",
                    outcome.record_id,
                    outcome.status,
                    outcome.reason
                );
            }
        }
        Command::Backlog {
            control,
            function,
            limit,
            dry_run,
            policy,
            json,
        } => {
            let setup = setup_for(&cli.table, policy_request(&policy, stack)?).await?;
            let filter = backlog::BacklogFilter {
                control,
                function,
                limit,
                dry_run,
            };
            let mut print = |line: &backlog::BacklogLine| {
                if json {
                    println!("{}", serde_json::to_string(line).unwrap_or_default());
                } else {
                    println!("{}", backlog::render_line(line));
                }
            };
            let summary = backlog::backlog(&setup, &filter, &mut print).await?;
            if json {
                println!("{}", serde_json::json!({ "summary": summary }));
            } else {
                println!("{}", backlog::render_summary(&summary));
            }
            if summary.errors > 0 {
                anyhow::bail!(
                    "{} finding(s) were not handled (an invocation failed; Lambda would retry it): run the backlog again",
                    summary.errors
                );
            }
        }
        Command::Show { record_id, json } => {
            let record = show::show(&ledger(&cli.table).await, &record_id).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&record)?);
            } else {
                println!("{}", render_record::record(&record));
            }
        }
        Command::Unhold {
            resource_arn,
            function,
        } => {
            let sdk = setup::sdk_config().await;
            let by = caller_arn(&sdk).await?;
            let ledger = Ledger::new(aws_sdk_dynamodb::Client::new(&sdk), &cli.table);
            let lifted = unhold::unhold(
                &ledger,
                &by,
                &resource_arn,
                function.as_deref(),
                chrono::Utc::now(),
            )
            .await?;
            println!("{}", unhold::render(&lifted, &by));
        }
        Command::Template => print!("{}", reflex_cli::template::generate()?),
        Command::Demo { events, report } => {
            let started = match std::env::var("AWS_ENDPOINT_URL") {
                Ok(endpoint) if !endpoint.is_empty() => {
                    demo::refuse_unless_loopback(&endpoint)?;
                    println!("Reflex demo against the AWS endpoint {endpoint}");
                    None
                }
                _ => {
                    eprintln!("Starting the local AWS emulator (moto)…");
                    let emulator = Emulator::start().map_err(anyhow::Error::msg)?;
                    println!(
                        "Reflex demo against the local AWS emulator at {}",
                        emulator.endpoint
                    );
                    // Set before any SDK client exists; the emulator takes any credentials.
                    std::env::set_var("AWS_ENDPOINT_URL", &emulator.endpoint);
                    for (k, v) in [
                        ("AWS_ACCESS_KEY_ID", "demo"),
                        ("AWS_SECRET_ACCESS_KEY", "demo"),
                        ("AWS_REGION", "us-east-1"),
                    ] {
                        std::env::set_var(k, v);
                    }
                    std::env::remove_var("AWS_PROFILE");
                    Some(emulator)
                }
            };
            let setup = setup_for(&cli.table, Request::Given(PolicySource::BuiltIn)).await?;
            // Before any change or table write.
            demo::refuse_unless_emulator_account(&setup.account_id)?;
            let samples = demo::Sample::all(events.as_deref())?;
            let report =
                report.unwrap_or_else(|| std::env::temp_dir().join("reflex-demo-report.html"));
            let result = demo::run(&setup, &samples, &report).await;
            drop(started);
            result?;
        }
    }
    Ok(())
}

/// Whether `--table` was typed (in any subcommand's place), as opposed to read from REFLEX_TABLE
/// or defaulted.
fn table_on_command_line(matches: &clap::ArgMatches) -> bool {
    matches.value_source("table") == Some(clap::parser::ValueSource::CommandLine)
        || matches
            .subcommand()
            .is_some_and(|(_, sub)| table_on_command_line(sub))
}

/// Stack for the runtime's threads. Unoptimised builds decode whole Security Hub findings in
/// frames of megabytes (the SDK's deserializers), more than a main thread's 8 MiB; the command
/// runs as a task on a worker thread with room to spare (only what is touched is used).
const STACK_BYTES: usize = 64 * 1024 * 1024;

fn main() -> ExitCode {
    if let Ok(asked) = std::env::var("RUST_LOG") {
        if !asked.trim().is_empty() && logging::level_of(&asked).is_none() {
            eprintln!("warning: RUST_LOG={asked:?} is not one level (error, warn, info, debug, trace, off); no logs");
        }
    }
    logging::init_cli();
    let matches = Cli::command().get_matches();
    let mut cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    cli.table_on_command_line = table_on_command_line(&matches);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(STACK_BYTES)
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        tokio::spawn(run(cli))
            .await
            .unwrap_or_else(|e| Err(anyhow::anyhow!("the command stopped: {e}")))
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
