//! `reflex policy …`: the deployment's policy, changed safely. The stack does not own the
//! policy's value: it lives in the SSM parameter the functions read (`/<stack>/policy`), which
//! these commands validate before they write, and whose every version SSM keeps, so a push is
//! one command away from its revert. Also the CLI's edge for every command that talks to AWS
//! (`edge`) and `--stack` (`stack`).

pub mod edge;
pub mod edit;
pub mod locate;
pub mod stack;
pub mod store;
pub mod validate;

use crate::policy_choice::DEPLOYED_PARAMETER;
use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use reflex_shared::policy::{Policy, DEFAULT_POLICY_MAX_AGE};
use std::path::{Path, PathBuf};

/// `reflex policy`: see the subcommands.
#[derive(Debug, Args)]
pub struct PolicyArgs {
    /// The SSM parameter holding the policy. Default: the --stack's PolicyParameterName output,
    /// else REFLEX_POLICY_PARAMETER, else /reflex/policy (what the template makes for the
    /// default stack name `reflex`).
    #[arg(long, global = true, value_name = "NAME")]
    pub policy_parameter: Option<String>,
    #[command(subcommand)]
    pub command: PolicyCommand,
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Check a policy file as the functions would read it: every error with its line; exits
    /// non-zero on any error. Reads nothing from AWS.
    Validate {
        /// The policy (YAML).
        file: PathBuf,
    },
    /// The policy in force: the document on stdout (so `show > policy.yaml` gives a file to
    /// edit and push), and on stderr where it came from (the parameter's version, when it was
    /// last modified) and a summary. Where the parameter does not exist: the first-deploy
    /// policy (every remediation in dry-run), as a document to start from.
    Show,
    /// Validate FILE, then write it as the parameter's next version (SSM keeps every earlier
    /// version). Refused, writing nothing, if it has any error. Prints the version written and
    /// the one before it; `reflex policy revert` puts that one back.
    ///
    /// While the kill switch is on in the policy in force, a file without it is refused unless
    /// --lift-kill-switch says that is meant: an ordinary edit never ends an emergency stop.
    Push {
        /// The policy (YAML).
        file: PathBuf,
        /// Allow this push to turn the kill switch off.
        #[arg(long)]
        lift_kill_switch: bool,
    },
    /// Put the version before the current one back, as a new version (the history keeps
    /// both). Refused if that version is not a valid policy, or if it would turn the kill
    /// switch off without --lift-kill-switch.
    Revert {
        /// Allow this revert to turn the kill switch off.
        #[arg(long)]
        lift_kill_switch: bool,
    },
    /// Every remediation to dry-run (on), or back to what the policy says (off): sets the
    /// policy's `kill_switch` and pushes it as a new version. Warm functions obey within
    /// REFLEX_POLICY_MAX_AGE_SECONDS (60 s by default); new ones at once.
    KillSwitch {
        #[arg(value_enum)]
        state: Switch,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Switch {
    On,
    Off,
}

impl PolicyCommand {
    /// Whether the command reads or writes AWS (the edge checks region and credentials first).
    pub fn talks_to_aws(&self) -> bool {
        !matches!(self, PolicyCommand::Validate { .. })
    }
}

/// The parameter the policy commands work on: the flag, else the stack's, else the
/// environment's, else the default deployment's.
pub fn parameter(flag: Option<String>, stack: Option<String>) -> String {
    flag.or(stack)
        .or_else(|| {
            std::env::var(reflex_shared::policy::POLICY_PARAMETER_ENV)
                .ok()
                .filter(|v| !v.trim().is_empty())
        })
        .unwrap_or_else(|| DEPLOYED_PARAMETER.to_string())
}

fn read_file(file: &Path) -> Result<String> {
    std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))
}

/// Each built function's word on its own `parameters` in `policy` (see
/// [`crate::functions::Function::parameters_problem`]). The functions are built with an empty
/// SDK config: nothing is called.
fn parameters_problems(policy: &Policy) -> Vec<(String, String)> {
    let sdk = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .build();
    crate::functions::FUNCTIONS
        .iter()
        .filter_map(|f| {
            (f.build)(&sdk)
                .parameters_problem(policy)
                .map(|why| (f.spec.name.to_string(), why))
        })
        .collect()
}

fn check(text: &str) -> Result<Policy, Vec<validate::Problem>> {
    validate::check(text, &crate::functions::names(), &parameters_problems)
}

/// Validate a document, printing every error as `FILE:LINE: message`.
fn checked(label: &str, text: &str) -> Result<Policy> {
    match check(text) {
        Ok(policy) => Ok(policy),
        Err(problems) => {
            for p in &problems {
                match p.line {
                    Some(line) => eprintln!("{label}:{line}: {}", p.message),
                    None => eprintln!("{label}: {}", p.message),
                }
            }
            bail!("{label}: {} error(s)", problems.len())
        }
    }
}

fn summary(policy: &Policy) -> String {
    format!(
        "{} remediation(s) configured; kill switch {}",
        policy.remediations.len(),
        if policy.kill_switch { "ON" } else { "off" }
    )
}

fn previous(version: i64) -> String {
    if version > 1 {
        format!(
            "previous: version {}; `reflex policy revert` puts it back",
            version - 1
        )
    } else {
        "previous: none (the first-deploy policy, every remediation in dry-run)".into()
    }
}

/// Run a policy command. `parameter` is the SSM parameter it works on (see [`parameter`]).
pub async fn run(command: PolicyCommand, parameter: &str) -> Result<()> {
    let ssm = || async { aws_sdk_ssm::Client::new(&reflex_shared::setup::sdk_config().await) };
    match command {
        PolicyCommand::Validate { file } => {
            let label = file.display().to_string();
            let policy = checked(&label, &read_file(&file)?)?;
            println!("{label}: valid ({})", summary(&policy));
            Ok(())
        }
        PolicyCommand::Show => show(&ssm().await, parameter).await,
        PolicyCommand::Push {
            file,
            lift_kill_switch,
        } => push(&ssm().await, parameter, &file, lift_kill_switch).await,
        PolicyCommand::Revert { lift_kill_switch } => {
            revert(&ssm().await, parameter, lift_kill_switch).await
        }
        PolicyCommand::KillSwitch { state } => {
            kill_switch(&ssm().await, parameter, state == Switch::On).await
        }
    }
}

/// Validate FILE, then write it as the next version; refused with its errors, writing nothing.
pub async fn push(
    ssm: &aws_sdk_ssm::Client,
    parameter: &str,
    file: &Path,
    lift_kill_switch: bool,
) -> Result<()> {
    let text = read_file(file)?;
    let policy =
        checked(&file.display().to_string(), &text).context("refused: nothing was written")?;
    let current = store::current(ssm, parameter).await?;
    keeps_kill_switch(current.as_ref(), &policy, lift_kill_switch)?;
    let version = store::put(ssm, parameter, &text, current.as_ref()).await?;
    println!(
        "pushed {} to {parameter}: version {version} ({}); {}",
        file.display(),
        previous(version),
        summary(&policy)
    );
    Ok(())
}

/// A write that would turn the kill switch off is refused unless the operator said so: the
/// switch is an emergency stop, and an ordinary push or revert must not end it by the way.
fn keeps_kill_switch(
    current: Option<&store::Stored>,
    next: &Policy,
    lift_kill_switch: bool,
) -> Result<()> {
    let on_now = current
        .and_then(|c| Policy::from_yaml(&c.value).ok())
        .is_some_and(|p| p.kill_switch);
    if on_now && !next.kill_switch && !lift_kill_switch {
        bail!(
            "refused: the kill switch is on in the policy in force, and this policy would turn it off; nothing was written. Add `kill_switch: true` to keep it on, or pass --lift-kill-switch to end it with this write"
        );
    }
    Ok(())
}

/// Put the version before the current one back, as a new version.
pub async fn revert(
    ssm: &aws_sdk_ssm::Client,
    parameter: &str,
    lift_kill_switch: bool,
) -> Result<()> {
    let Some(now) = store::current(ssm, parameter).await? else {
        bail!("no policy at {parameter}: nothing to revert (the first-deploy policy is in force)");
    };
    let Some(before) = store::before(ssm, parameter, now.version).await? else {
        bail!(
            "{parameter} has no version before {}: nothing to revert to",
            now.version
        );
    };
    let policy = checked(
        &format!("{parameter} version {}", before.version),
        &before.value,
    )
    .context("refused: nothing was written")?;
    keeps_kill_switch(Some(&now), &policy, lift_kill_switch)?;
    let version = store::put(ssm, parameter, &before.value, Some(&now)).await?;
    println!(
        "reverted {parameter} to version {}'s policy: written as version {version} (the reverted version {} stays in the history); {}",
        before.version,
        now.version,
        summary(&policy)
    );
    Ok(())
}

/// Where the policy came from and its summary on stderr; the document itself on stdout, so
/// `reflex policy show > policy.yaml` is a file to edit and push.
async fn show(ssm: &aws_sdk_ssm::Client, parameter: &str) -> Result<()> {
    match store::current(ssm, parameter).await? {
        None => {
            eprintln!(
                "policy in force: none at {parameter} (absent): first-deploy dry-run — {}",
                reflex_shared::policy::first_deploy_note(parameter)
            );
            print!("{}", edit::first_deploy_document());
        }
        Some(s) => {
            eprintln!(
                "policy in force: SSM parameter {parameter}, version {}, last modified {}",
                s.version,
                s.last_modified.as_deref().unwrap_or("(not said)")
            );
            match check(&s.value) {
                Ok(policy) => eprintln!("{}", summary(&policy)),
                Err(problems) => {
                    eprintln!("INVALID: every function records failed / policy-invalid and changes nothing:");
                    for p in problems {
                        eprintln!("  {p}");
                    }
                }
            }
            print!("{}", s.value);
            if !s.value.ends_with('\n') {
                println!();
            }
        }
    }
    Ok(())
}

/// Set or clear the kill switch in the policy in force, and push it as a new version.
pub async fn kill_switch(ssm: &aws_sdk_ssm::Client, parameter: &str, on: bool) -> Result<()> {
    let word = if on { "on" } else { "off" };
    let current = store::current(ssm, parameter).await?;
    let text = match &current {
        None if on => edit::first_deploy_with_kill_switch(),
        None => bail!(
            "no policy at {parameter}: the first-deploy policy is in force (every remediation in dry-run) and has no kill switch to turn off; `reflex policy push FILE` sets a policy"
        ),
        Some(s) => {
            let policy = Policy::from_yaml(&s.value).map_err(|e| {
                anyhow::anyhow!(
                    "the policy in force ({parameter} version {}) is invalid: {e}; every function already records failed / policy-invalid and changes nothing. Fix it with `reflex policy push FILE` or `reflex policy revert`",
                    s.version
                )
            })?;
            if policy.kill_switch == on {
                println!(
                    "kill switch already {word} in {parameter} version {}; nothing written",
                    s.version
                );
                return Ok(());
            }
            edit::set_kill_switch(&s.value, on).map_err(anyhow::Error::msg)?
        }
    };
    checked(parameter, &text).context("refused: nothing was written")?;
    let version = store::put(ssm, parameter, &text, current.as_ref()).await?;
    println!(
        "kill switch {word}: wrote {parameter} version {version} ({}). Warm functions obey within REFLEX_POLICY_MAX_AGE_SECONDS ({} s by default) once they read it (a function that cannot read SSM keeps its last policy up to {} s more, then changes nothing); new cold starts at once.",
        previous(version),
        DEFAULT_POLICY_MAX_AGE.as_secs(),
        reflex_shared::policy::POLICY_STALE_GRACE.as_secs()
    );
    Ok(())
}
