//! What every function builds once per cold start: the SDK config, its own account, the policy,
//! the ledger and the Security Hub reporter.

use crate::ledger::{table, Ledger};
use crate::policy::{load_policy, Policy, PolicyError, PolicySource};
use crate::securityhub::SecurityHubFeedback;
use aws_config::{BehaviorVersion, SdkConfig};
use std::sync::Arc;

/// The claim lease when `REFLEX_LEASE_SECONDS` is not set. Longer than any function's timeout
/// in the template (60 s), so a live invocation is never taken over.
pub const DEFAULT_LEASE_SECONDS: i64 = 120;

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("cannot learn this function's own account from STS GetCallerIdentity: {0}")]
    Identity(String),
    #[error("environment variable {name}: {message}")]
    Env { name: &'static str, message: String },
}

/// Shared state of one function instance.
#[derive(Debug, Clone)]
pub struct Setup {
    pub sdk: SdkConfig,
    /// The account this function runs in; findings for any other account are not acted on.
    pub account_id: String,
    /// The policy, or why it is unusable (every invocation then records `policy-invalid`).
    pub policy: Arc<Result<Policy, PolicyError>>,
    pub ledger: Ledger,
    pub securityhub: SecurityHubFeedback,
    pub function_version: String,
    pub lease_seconds: i64,
    /// Outcome records expire after this many days, only if set (`REFLEX_RECORD_TTL_DAYS`).
    pub record_ttl_days: Option<u32>,
}

/// The standard AWS config chain (`AWS_ENDPOINT_URL`, `AWS_REGION`, credentials…).
pub async fn sdk_config() -> SdkConfig {
    aws_config::load_defaults(BehaviorVersion::latest()).await
}

/// S3 needs path-style addressing against a custom endpoint (the local emulator); real S3 uses
/// virtual-hosted style.
pub fn s3_path_style(sdk: &SdkConfig) -> bool {
    sdk.endpoint_url().is_some()
}

fn env_number<T: std::str::FromStr>(name: &'static str) -> Result<Option<T>, SetupError> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v.trim().parse().map(Some).map_err(|_| SetupError::Env {
            name,
            message: format!("{v:?} is not a positive whole number"),
        }),
        _ => Ok(None),
    }
}

impl Setup {
    /// Everything from the environment. Identity and policy are fetched concurrently.
    pub async fn from_env() -> Result<Setup, SetupError> {
        let sdk = sdk_config().await;
        let sts = aws_sdk_sts::Client::new(&sdk);
        let ssm = aws_sdk_ssm::Client::new(&sdk);
        let policy = async {
            let source = PolicySource::from_env()?;
            load_policy(&source, &ssm).await
        };
        let identity = sts.get_caller_identity().send();
        let (identity, policy) = tokio::join!(identity, policy);
        let account_id = identity
            .map_err(|e| SetupError::Identity(crate::aws_error::describe(&e)))?
            .account
            .ok_or_else(|| SetupError::Identity("no account in the answer".into()))?;
        let table = std::env::var(table::TABLE_ENV).unwrap_or_else(|_| table::DEFAULT_TABLE.into());
        Ok(Setup {
            ledger: Ledger::new(aws_sdk_dynamodb::Client::new(&sdk), table),
            securityhub: SecurityHubFeedback::new(aws_sdk_securityhub::Client::new(&sdk)),
            function_version: std::env::var("AWS_LAMBDA_FUNCTION_VERSION")
                .unwrap_or_else(|_| "local".into()),
            lease_seconds: env_number("REFLEX_LEASE_SECONDS")?.unwrap_or(DEFAULT_LEASE_SECONDS),
            record_ttl_days: env_number("REFLEX_RECORD_TTL_DAYS")?,
            policy: Arc::new(policy),
            account_id,
            sdk,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (variable, value set, parsed value or `Err` for a refusal)
    type Case = (&'static str, Option<&'static str>, Result<Option<i64>, ()>);

    #[test]
    fn numbers_from_the_environment() {
        // Variable names of this test's own, so no other test races on them.
        let cases: &[Case] = &[
            ("REFLEX_TEST_NUMBER_UNSET", None, Ok(None)),
            ("REFLEX_TEST_NUMBER_EMPTY", Some(" "), Ok(None)),
            ("REFLEX_TEST_NUMBER_OK", Some(" 300 "), Ok(Some(300))),
            ("REFLEX_TEST_NUMBER_BAD", Some("two minutes"), Err(())),
        ];
        for (name, value, want) in cases {
            if let Some(v) = value {
                std::env::set_var(name, v);
            }
            let got = env_number::<i64>(name);
            match want {
                Ok(w) => assert_eq!(got.unwrap(), *w, "{name}"),
                Err(()) => {
                    let e = got.unwrap_err().to_string();
                    assert!(e.contains(name) && e.contains("two minutes"), "{e}");
                }
            }
        }
    }
}
