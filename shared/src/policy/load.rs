//! Where the policy comes from: a file, an SSM parameter, or the built-in defaults.

use super::{Policy, PolicyError};
use crate::aws_error::{self, Fault};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const POLICY_FILE_ENV: &str = "REFLEX_POLICY_FILE";
pub const POLICY_PARAMETER_ENV: &str = "REFLEX_POLICY_PARAMETER";

/// The policy's origin, from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicySource {
    File(String),
    Parameter(String),
    BuiltIn,
}

impl PolicySource {
    /// `REFLEX_POLICY_FILE` or `REFLEX_POLICY_PARAMETER`; both set is an error (which one was
    /// meant is a guess, and we do not guess).
    pub fn from_env() -> Result<PolicySource, PolicyError> {
        let get = |k| {
            std::env::var(k)
                .ok()
                .filter(|v: &String| !v.trim().is_empty())
        };
        match (get(POLICY_FILE_ENV), get(POLICY_PARAMETER_ENV)) {
            (Some(_), Some(_)) => Err(PolicyError::Ambiguous),
            (Some(path), None) => Ok(PolicySource::File(path)),
            (None, Some(name)) => Ok(PolicySource::Parameter(name)),
            (None, None) => Ok(PolicySource::BuiltIn),
        }
    }
}

/// Load and validate the policy. A read that failed for a passing reason is
/// `PolicyError::Unavailable`; any other error is a verdict on the policy (`policy-invalid`).
pub async fn load_policy(
    source: &PolicySource,
    ssm: &aws_sdk_ssm::Client,
) -> Result<Policy, PolicyError> {
    match source {
        PolicySource::BuiltIn => Ok(Policy::default()),
        PolicySource::File(path) => {
            let text = tokio::fs::read_to_string(path)
                .await
                .map_err(|e| PolicyError::Read {
                    path: path.clone(),
                    message: e.to_string(),
                })?;
            Policy::from_yaml(&text)
        }
        PolicySource::Parameter(name) => {
            let out = ssm
                .get_parameter()
                .name(name)
                .with_decryption(true)
                .send()
                .await
                .map_err(|e| match aws_error::classify(&e) {
                    Fault::Transient => PolicyError::Unavailable {
                        name: name.clone(),
                        message: aws_error::describe(&e),
                    },
                    Fault::Permanent => PolicyError::Parameter {
                        name: name.clone(),
                        message: aws_error::describe(&e),
                    },
                })?;
            let text =
                out.parameter()
                    .and_then(|p| p.value())
                    .ok_or_else(|| PolicyError::Parameter {
                        name: name.clone(),
                        message: "parameter has no value".into(),
                    })?;
            Policy::from_yaml(text)
        }
    }
}

/// How long a policy is used before it is read again when `REFLEX_POLICY_MAX_AGE_SECONDS` is not
/// set: an operator's switch to `dry-run` or `enabled: false` reaches warm functions this soon.
pub const DEFAULT_POLICY_MAX_AGE: Duration = Duration::from_secs(60);
/// How long the last good policy may stand in while re-reads fail for a passing reason; after
/// that, invocations fail closed (an error, so Lambda retries) until a read succeeds.
pub const POLICY_STALE_GRACE: Duration = Duration::from_secs(300);

/// The policy as the function currently knows it, re-read when older than `max_age`.
#[derive(Debug)]
pub struct PolicyCache {
    source: PolicySource,
    ssm: Option<aws_sdk_ssm::Client>,
    max_age: Duration,
    grace: Duration,
    state: tokio::sync::Mutex<Cached>,
}

#[derive(Debug)]
struct Cached {
    value: Arc<Result<Policy, PolicyError>>,
    read_at: Instant,
    /// When a policy was last read successfully (valid or not).
    good_at: Option<Instant>,
}

impl PolicyCache {
    /// A policy that is never re-read (built-in defaults, tests).
    pub fn fixed(policy: Result<Policy, PolicyError>) -> PolicyCache {
        PolicyCache {
            source: PolicySource::BuiltIn,
            ssm: None,
            max_age: Duration::MAX,
            grace: Duration::ZERO,
            state: tokio::sync::Mutex::new(Cached {
                value: Arc::new(policy),
                read_at: Instant::now(),
                good_at: Some(Instant::now()),
            }),
        }
    }

    /// The cold start's read. `Err` only when the policy is unavailable for a passing reason:
    /// the cold start fails and Lambda retries. An invalid policy is kept, and recorded by
    /// every invocation as `policy-invalid`.
    pub async fn load(
        source: PolicySource,
        ssm: aws_sdk_ssm::Client,
        max_age: Duration,
    ) -> Result<PolicyCache, PolicyError> {
        let value = match load_policy(&source, &ssm).await {
            Err(e @ PolicyError::Unavailable { .. }) => return Err(e),
            other => other,
        };
        let now = Instant::now();
        Ok(PolicyCache {
            source,
            ssm: Some(ssm),
            max_age,
            grace: POLICY_STALE_GRACE,
            state: tokio::sync::Mutex::new(Cached {
                value: Arc::new(value),
                read_at: now,
                good_at: Some(now),
            }),
        })
    }

    /// The same cache, with another grace period for failed re-reads.
    pub fn with_grace(mut self, grace: Duration) -> PolicyCache {
        self.grace = grace;
        self
    }

    /// The policy in force now, read again if it is older than the bound. `Err(Unavailable)`
    /// when it cannot be read and the last good one is older than the grace period.
    pub async fn current(&self) -> Result<Arc<Result<Policy, PolicyError>>, PolicyError> {
        let mut cached = self.state.lock().await;
        let (Some(ssm), true) = (&self.ssm, cached.read_at.elapsed() >= self.max_age) else {
            return Ok(cached.value.clone());
        };
        let now = Instant::now();
        cached.read_at = now;
        match load_policy(&self.source, ssm).await {
            Err(e @ PolicyError::Unavailable { .. }) => {
                let fresh_enough = cached
                    .good_at
                    .is_some_and(|t| now.duration_since(t) <= self.grace);
                if fresh_enough {
                    tracing::warn!(error = %e, "policy re-read failed; the last good policy stands in");
                    Ok(cached.value.clone())
                } else {
                    Err(e)
                }
            }
            other => {
                cached.value = Arc::new(other);
                cached.good_at = Some(now);
                Ok(cached.value.clone())
            }
        }
    }
}
