//! What every function builds once per cold start: the SDK config (with explicit retries and
//! timeouts), the clients, the policy cache; its account comes with its first event. No AWS
//! call is made at a function's cold start (see [`crate::serve`]).

use crate::config_rules::ConfigRules;
use crate::ledger::{table, Ledger};
use crate::metrics::Metrics;
use crate::notify::Notifier;
use crate::policy::{PolicyCache, PolicyError, PolicySource, DEFAULT_POLICY_MAX_AGE};
use crate::securityhub::SecurityHubFeedback;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, ConfigLoader, SdkConfig};
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::Duration;

/// The claim lease when `REFLEX_LEASE_SECONDS` is not set. Longer than any function's timeout
/// in the template (60 s), so a live invocation is never taken over; shorter than Lambda's
/// asynchronous retries take (about 1 and then 2 minutes), so the second retry finds a crashed
/// claim free (see the README's "Guarantees").
pub const DEFAULT_LEASE_SECONDS: i64 = 120;
/// Leases Reflex accepts: long enough to outlive a call, short enough to recover in an hour.
pub const LEASE_SECONDS_RANGE: RangeInclusive<i64> = 5..=3600;

/// SDK retries: standard mode (exponential backoff with jitter, a retry quota), 3 tries in all.
pub const SDK_MAX_ATTEMPTS: u32 = 3;
/// One try of one call may take this long before it is abandoned (and retried).
pub const SDK_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// One call, its retries included, may take this long: well inside the function's 60 s.
pub const SDK_OPERATION_TIMEOUT: Duration = Duration::from_secs(15);
pub const SDK_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Re-reads after a change, before concluding `verification-failed`: a fresh read of an
/// eventually consistent API may still show the old state. About 3.75 s in all.
pub const VERIFY_DELAYS: &[Duration] = &[
    Duration::from_millis(250),
    Duration::from_millis(500),
    Duration::from_millis(1000),
    Duration::from_millis(2000),
];

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("cannot learn the account (a function from its Lambda context, the CLI from STS GetCallerIdentity): {0}")]
    Identity(String),
    #[error("environment variable {name}: {message}")]
    Env { name: &'static str, message: String },
    #[error(transparent)]
    Policy(#[from] PolicyError),
}

/// The function's settings from its environment, validated: a bad value fails the cold start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub table: String,
    pub lease_seconds: i64,
    pub record_ttl_days: Option<u32>,
    pub policy_max_age: Duration,
    pub function_version: String,
    /// The SNS topic notifications go to (`REFLEX_NOTIFICATION_TOPIC`); none: not sent.
    pub notification_topic: Option<String>,
    /// The EMF metrics' namespace (`REFLEX_METRICS_NAMESPACE`); none: no metric lines.
    pub metrics_namespace: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            table: table::DEFAULT_TABLE.into(),
            lease_seconds: DEFAULT_LEASE_SECONDS,
            record_ttl_days: None,
            policy_max_age: DEFAULT_POLICY_MAX_AGE,
            function_version: "local".into(),
            notification_topic: None,
            metrics_namespace: None,
        }
    }
}

impl Settings {
    pub fn from_env() -> Result<Settings, SetupError> {
        let defaults = Settings::default();
        let lease_seconds = match env_number::<i64>("REFLEX_LEASE_SECONDS")? {
            Some(v) if !LEASE_SECONDS_RANGE.contains(&v) => {
                return Err(SetupError::Env {
                    name: "REFLEX_LEASE_SECONDS",
                    message: format!(
                    "{v} is outside {}..={} whole seconds (it must outlive the function's timeout)",
                    LEASE_SECONDS_RANGE.start(),
                    LEASE_SECONDS_RANGE.end()
                ),
                })
            }
            Some(v) => v,
            None => defaults.lease_seconds,
        };
        let policy_max_age = match env_number::<u64>("REFLEX_POLICY_MAX_AGE_SECONDS")? {
            Some(v) if !(1..=3600).contains(&v) => {
                return Err(SetupError::Env {
                    name: "REFLEX_POLICY_MAX_AGE_SECONDS",
                    message: format!("{v} is outside 1..=3600 seconds"),
                })
            }
            Some(v) => Duration::from_secs(v),
            None => defaults.policy_max_age,
        };
        Ok(Settings {
            table: std::env::var(table::TABLE_ENV).unwrap_or(defaults.table),
            lease_seconds,
            record_ttl_days: env_number("REFLEX_RECORD_TTL_DAYS")?,
            policy_max_age,
            function_version: std::env::var("AWS_LAMBDA_FUNCTION_VERSION")
                .unwrap_or(defaults.function_version),
            notification_topic: env_text(crate::notify::TOPIC_ENV),
            metrics_namespace: env_text(crate::metrics::NAMESPACE_ENV),
        })
    }
}

/// Shared state of one function instance.
#[derive(Debug, Clone)]
pub struct Setup {
    pub sdk: SdkConfig,
    /// The account this function runs in; findings for any other account are not acted on.
    pub account_id: String,
    /// Who this process runs as: for the CLI, STS's answer (the approver `reflex approve`
    /// records); for a function, its own ARN (the Lambda context's).
    pub caller_arn: String,
    /// The policy, re-read when older than its bound (or why it is unusable: every invocation
    /// then records `policy-invalid`).
    pub policy: Arc<PolicyCache>,
    pub ledger: Ledger,
    pub securityhub: SecurityHubFeedback,
    /// Reads findings back from GuardDuty and Security Hub (`confirm_at_source`).
    pub source: crate::confirm::read::SourceReader,
    /// Config rules' identities (managed-rule identifier or custom), cached per cold start.
    pub config_rules: ConfigRules,
    pub function_version: String,
    pub lease_seconds: i64,
    /// Handled records expire after this many days, only if set (`REFLEX_RECORD_TTL_DAYS`).
    pub record_ttl_days: Option<u32>,
    /// Pauses between re-reads when a change is not yet visible (see [`VERIFY_DELAYS`]).
    pub verify_delays: Vec<Duration>,
    /// Where the outcomes the policy's `notify` names are told (the stack's SNS topic).
    pub notifier: Notifier,
    /// EMF metric lines for each stored outcome.
    pub metrics: Metrics,
}

/// Retries and timeouts, explicitly: standard mode with bounded attempts, a per-try and a
/// per-call timeout. A call that still fails is classified (`aws_error::classify`): transient
/// errors hand the finding back to Lambda's retries.
pub fn resilient(loader: ConfigLoader) -> ConfigLoader {
    loader
        .retry_config(RetryConfig::standard().with_max_attempts(SDK_MAX_ATTEMPTS))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(SDK_CONNECT_TIMEOUT)
                .operation_attempt_timeout(SDK_ATTEMPT_TIMEOUT)
                .operation_timeout(SDK_OPERATION_TIMEOUT)
                .build(),
        )
}

/// The standard AWS config chain (`AWS_ENDPOINT_URL`, `AWS_REGION`, credentials…).
pub async fn sdk_config() -> SdkConfig {
    resilient(aws_config::defaults(BehaviorVersion::latest()))
        .load()
        .await
}

/// S3 needs path-style addressing against a custom endpoint (the local emulator); real S3 uses
/// virtual-hosted style.
pub fn s3_path_style(sdk: &SdkConfig) -> bool {
    sdk.endpoint_url().is_some()
}

/// A variable's value, unless unset or blank.
fn env_text(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

fn env_number<T: std::str::FromStr>(name: &'static str) -> Result<Option<T>, SetupError> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v.trim().parse().map(Some).map_err(|_| SetupError::Env {
            name,
            message: format!("{v:?} is not a whole number"),
        }),
        _ => Ok(None),
    }
}

/// Who a process runs as, in which account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub account_id: String,
    /// The caller's ARN: STS's answer for the CLI; for a function, its own ARN.
    pub caller_arn: String,
}

/// The account and the function's own ARN from the Lambda context's invoked function ARN
/// (`arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]`), which the Lambda service sets on
/// every invocation (the Runtime API's `Lambda-Runtime-Invoked-Function-Arn`), never the event:
/// a function needs no STS call to know its account.
pub fn identity_from_function_arn(arn: &str) -> Result<Identity, SetupError> {
    let parts: Vec<&str> = arn.split(':').collect();
    match parts.as_slice() {
        ["arn", partition, "lambda", region, account, "function", name]
        | ["arn", partition, "lambda", region, account, "function", name, _]
            if !partition.is_empty()
                && parts.get(7).is_none_or(|qualifier| !qualifier.is_empty())
                && !region.is_empty()
                && !name.is_empty()
                && account.len() == 12
                && account.bytes().all(|b| b.is_ascii_digit()) =>
        {
            Ok(Identity {
                account_id: (*account).to_string(),
                caller_arn: arn.to_string(),
            })
        }
        _ => Err(SetupError::Identity(format!(
            "the invoked function ARN {arn:?} names no account (expected arn:aws:lambda:REGION:ACCOUNT:function:NAME)"
        ))),
    }
}

/// Who the SDK's credentials are, as STS says (the CLI, and tests acting as a CLI).
pub async fn identity_from_sts(sdk: &SdkConfig) -> Result<Identity, SetupError> {
    let identity = aws_sdk_sts::Client::new(sdk)
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| SetupError::Identity(crate::aws_error::describe(&e)))?;
    Ok(Identity {
        caller_arn: identity.arn.clone().unwrap_or_default(),
        account_id: identity
            .account
            .ok_or_else(|| SetupError::Identity("no account in the answer".into()))?,
    })
}

/// The policy cache for `source`: read on first use (and again when older than the bound).
pub fn policy_cache(
    sdk: &SdkConfig,
    settings: &Settings,
    source: Result<PolicySource, PolicyError>,
) -> PolicyCache {
    match source {
        Ok(source) => PolicyCache::lazy(
            source,
            aws_sdk_ssm::Client::new(sdk),
            settings.policy_max_age,
        ),
        Err(invalid) => PolicyCache::fixed(Err(invalid)),
    }
}

impl Setup {
    /// The clients and settings around a known identity and policy cache: no AWS call.
    pub fn assemble(
        sdk: SdkConfig,
        settings: Settings,
        policy: Arc<PolicyCache>,
        identity: Identity,
    ) -> Setup {
        Setup {
            ledger: Ledger::new(aws_sdk_dynamodb::Client::new(&sdk), settings.table),
            securityhub: SecurityHubFeedback::new(aws_sdk_securityhub::Client::new(&sdk)),
            source: crate::confirm::read::SourceReader::new(&sdk),
            config_rules: ConfigRules::new(aws_sdk_config::Client::new(&sdk)),
            function_version: settings.function_version,
            lease_seconds: settings.lease_seconds,
            record_ttl_days: settings.record_ttl_days,
            verify_delays: VERIFY_DELAYS.to_vec(),
            notifier: settings
                .notification_topic
                .map(|topic| Notifier::sns(aws_sdk_sns::Client::new(&sdk), topic))
                .unwrap_or_default(),
            metrics: settings
                .metrics_namespace
                .map(Metrics::stdout)
                .unwrap_or_default(),
            policy,
            account_id: identity.account_id,
            caller_arn: identity.caller_arn,
            sdk,
        }
    }

    /// The CLI's set-up (and tests acting as one): who the credentials are (STS) and the policy
    /// are read concurrently, in one round. Fails when either is unavailable; an invalid policy
    /// does not fail it (every run records `policy-invalid`), nor does an ambiguous source
    /// (`source` is `Err`). A function does neither at its cold start (see [`crate::serve`]).
    pub async fn cold_start(
        sdk: SdkConfig,
        settings: Settings,
        source: Result<PolicySource, PolicyError>,
    ) -> Result<Setup, SetupError> {
        let policy = policy_cache(&sdk, &settings, source);
        Setup::with_identity_and_policy(sdk, settings, policy).await
    }

    /// [`Setup::cold_start`] with a policy cache already made (perhaps already read).
    pub async fn with_identity_and_policy(
        sdk: SdkConfig,
        settings: Settings,
        policy: PolicyCache,
    ) -> Result<Setup, SetupError> {
        let (identity, read) = tokio::join!(identity_from_sts(&sdk), policy.current());
        let identity = identity?;
        read?;
        Ok(Setup::assemble(sdk, settings, Arc::new(policy), identity))
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

    #[test]
    fn the_account_comes_from_the_invoked_function_arn() {
        let ok = [
            (
                "arn:aws:lambda:us-east-1:123456789012:function:reflex-s3",
                "123456789012",
            ),
            (
                "arn:aws:lambda:eu-west-1:000000000001:function:f:live",
                "000000000001",
            ),
            (
                "arn:aws-us-gov:lambda:us-gov-west-1:210987654321:function:f:7",
                "210987654321",
            ),
        ];
        for (arn, account) in ok {
            let id = identity_from_function_arn(arn).expect(arn);
            assert_eq!(
                (id.account_id.as_str(), id.caller_arn.as_str()),
                (account, arn)
            );
        }
        let refused = [
            "",
            "arn:aws:lambda:us-east-1::function:f",
            "arn:aws:lambda:us-east-1:12345678901:function:f",
            "arn:aws:lambda:us-east-1:1234567890123:function:f",
            "arn:aws:lambda:us-east-1:12345678901x:function:f",
            "arn:aws:lambda:us-east-1:123456789012:layer:f",
            "arn:aws:lambda:us-east-1:123456789012:function:",
            "arn:aws:lambda:us-east-1:123456789012:function:f:",
            "arn:aws:lambda:us-east-1:123456789012:function:f:live:extra",
            "arn:aws:iam::123456789012:role/f",
            "arn:aws:lambda::123456789012:function:f",
        ];
        for arn in refused {
            let e = identity_from_function_arn(arn).unwrap_err().to_string();
            assert!(e.contains("names no account"), "{arn}: {e}");
        }
    }

    /// The only test in this crate that touches REFLEX_LEASE_SECONDS: values that would wrap,
    /// expire at once or outlast recovery fail the cold start.
    #[test]
    fn lease_seconds_are_bounded() {
        let cases = [
            ("120", Some(120)),
            ("5", Some(5)),
            ("3600", Some(3600)),
            ("4", None),
            ("0", None),
            ("-1", None),
            ("3601", None),
            ("99999999999999999999", None),
            ("1.5", None),
        ];
        for (value, want) in cases {
            std::env::set_var("REFLEX_LEASE_SECONDS", value);
            let got = Settings::from_env();
            match want {
                Some(w) => assert_eq!(got.unwrap().lease_seconds, w, "{value}"),
                None => {
                    let e = got.unwrap_err().to_string();
                    assert!(e.contains("REFLEX_LEASE_SECONDS"), "{value}: {e}");
                }
            }
        }
        std::env::remove_var("REFLEX_LEASE_SECONDS");
    }
}
