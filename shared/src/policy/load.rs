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
            let out = match ssm
                .get_parameter()
                .name(name)
                .with_decryption(true)
                .send()
                .await
            {
                Ok(out) => out,
                // Nothing pushed yet (a first deploy: the template does not own the policy's
                // value): every remediation in dry-run, each record saying so. Any other
                // failure is no verdict that the policy is absent, and stays an error.
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_parameter_not_found()) =>
                {
                    tracing::warn!(parameter = %name, "{}", super::first_deploy_note(name));
                    return Ok(Policy::first_deploy(name));
                }
                Err(e) => {
                    return Err(match aws_error::classify(&e) {
                        Fault::Transient => PolicyError::Unavailable {
                            name: name.clone(),
                            message: aws_error::describe(&e),
                        },
                        Fault::Permanent => PolicyError::Parameter {
                            name: name.clone(),
                            message: aws_error::describe(&e),
                        },
                    })
                }
            };
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
    /// When the last read that finished was started, successfully or not (never yet: `None`):
    /// the next read is due `max_age` later.
    read_at: Option<Instant>,
    /// When a policy was last read successfully (valid or not); never yet: `None`, and no
    /// earlier policy may stand in for a failed read.
    good_at: Option<Instant>,
    /// Why the last read failed, until a read succeeds. Kept so that every invocation between
    /// two reads is judged by it, not only the one that made the failed read.
    failure: Option<PolicyError>,
}

impl PolicyCache {
    /// A policy that is never re-read (built-in defaults, tests).
    pub fn fixed(policy: Result<Policy, PolicyError>) -> PolicyCache {
        let now = Instant::now();
        PolicyCache {
            source: PolicySource::BuiltIn,
            ssm: None,
            max_age: Duration::MAX,
            grace: Duration::ZERO,
            state: tokio::sync::Mutex::new(Cached {
                value: Arc::new(policy),
                read_at: Some(now),
                good_at: Some(now),
                failure: None,
            }),
        }
    }

    /// A policy read on first use ([`PolicyCache::current`]), not now: a function's cold start
    /// makes no AWS call, and its first read runs beside the runtime's first poll.
    pub fn lazy(source: PolicySource, ssm: aws_sdk_ssm::Client, max_age: Duration) -> PolicyCache {
        PolicyCache {
            source,
            ssm: Some(ssm),
            max_age,
            grace: POLICY_STALE_GRACE,
            state: tokio::sync::Mutex::new(Cached {
                // Never handed out: `current` answers `Err` until a read succeeds.
                value: Arc::new(Err(PolicyError::Unavailable {
                    name: "policy".into(),
                    message: "not read yet".into(),
                })),
                read_at: None,
                good_at: None,
                failure: None,
            }),
        }
    }

    /// A cache whose first read was made by the caller (`reflex replay`: beside its STS call).
    /// `Err` when that read found the policy unavailable for a passing reason.
    pub fn preloaded(
        source: PolicySource,
        ssm: aws_sdk_ssm::Client,
        max_age: Duration,
        read: Result<Policy, PolicyError>,
    ) -> Result<PolicyCache, PolicyError> {
        if let Err(e @ PolicyError::Unavailable { .. }) = read {
            return Err(e);
        }
        let cache = PolicyCache::lazy(source, ssm, max_age);
        let now = Instant::now();
        let state = Cached {
            value: Arc::new(read),
            read_at: Some(now),
            good_at: Some(now),
            failure: None,
        };
        Ok(PolicyCache {
            state: tokio::sync::Mutex::new(state),
            ..cache
        })
    }

    /// A cache read now. `Err` only when the policy is unavailable for a passing reason (the
    /// caller fails, and is retried). An invalid policy is kept, and recorded by every
    /// invocation as `policy-invalid`.
    pub async fn load(
        source: PolicySource,
        ssm: aws_sdk_ssm::Client,
        max_age: Duration,
    ) -> Result<PolicyCache, PolicyError> {
        let cache = PolicyCache::lazy(source, ssm, max_age);
        cache.current().await?;
        Ok(cache)
    }

    /// The same cache, with another grace period for failed re-reads.
    pub fn with_grace(mut self, grace: Duration) -> PolicyCache {
        self.grace = grace;
        self
    }

    /// The policy in force now, read if it was never read or is older than the bound.
    /// `Err(Unavailable)` on every call, until a read succeeds, once a read has failed and no
    /// good one is younger than the grace period (before the first good read, at once).
    /// Within the grace, reads stay one per `max_age`, so a throttled SSM is not asked again
    /// by every invocation while the last good policy stands in. Failing closed (no good read,
    /// or past the grace), every call reads: each such invocation fails anyway, and Lambda's
    /// retries space them out, so the first call after SSM answers again acts.
    pub async fn current(&self) -> Result<Arc<Result<Policy, PolicyError>>, PolicyError> {
        let mut cached = self.state.lock().await;
        // Staleness is judged as of the call, not after a read that SDK retries made slow.
        let now = Instant::now();
        let within_grace = |good_at: Option<Instant>| {
            good_at.is_some_and(|good| now.duration_since(good) <= self.grace)
        };
        // Past the grace with no good read, every call fails closed anyway: each one tries a
        // read, so the first call after the source is back acts again.
        let failing_closed = cached.failure.is_some() && !within_grace(cached.good_at);
        let due = cached
            .read_at
            .is_none_or(|read| now.duration_since(read) >= self.max_age);
        if let (Some(ssm), true) = (&self.ssm, failing_closed || due) {
            // Marked read only once the read has finished: a read cancelled half-way (its
            // caller dropped) leaves the cache due, so the next call reads at once instead of
            // failing until the bound has passed.
            let read = load_policy(&self.source, ssm).await;
            cached.read_at = Some(now);
            match read {
                Err(e @ PolicyError::Unavailable { .. }) => cached.failure = Some(e),
                other => {
                    cached.value = Arc::new(other);
                    cached.good_at = Some(now);
                    cached.failure = None;
                }
            }
        }
        match &cached.failure {
            // No good read and no failure: no cache is built so (each read that finishes sets
            // one of them), but the placeholder is never handed out.
            None if cached.good_at.is_none() => Err(PolicyError::Unavailable {
                name: "policy".into(),
                message: "not read yet".into(),
            }),
            None => Ok(cached.value.clone()),
            Some(e) if within_grace(cached.good_at) => {
                tracing::warn!(error = %e, "policy re-read failed; the last good policy stands in");
                Ok(cached.value.clone())
            }
            Some(e) => Err(e.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ssm::operation::get_parameter::GetParameterOutput;
    use aws_sdk_ssm::types::Parameter;
    use aws_smithy_mocks::{create_mock_http_client, mock, MockResponse, MockResponseInterceptor};
    use aws_smithy_runtime_api::client::http::{
        http_client_fn, HttpConnector, HttpConnectorFuture, SharedHttpConnector,
    };
    use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
    use aws_smithy_runtime_api::http::{Response, StatusCode};
    use aws_smithy_types::body::SdkBody;
    use std::sync::atomic::{AtomicBool, Ordering};

    const NAME: &str = "/reflex/policy";
    const DRY_RUN: &str = "version: 1\nremediations:\n  s3-block-public-access: {mode: dry-run}\n";

    /// An SSM client's configuration with no SDK retries (one call is one read) and no
    /// HTTP client yet.
    fn no_retries() -> aws_sdk_ssm::config::Builder {
        aws_sdk_ssm::Config::builder()
            .behavior_version(aws_sdk_ssm::config::BehaviorVersion::latest())
            .region(aws_sdk_ssm::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_ssm::config::Credentials::new(
                "test", "test", None, None, "mock",
            ))
            .retry_config(aws_sdk_ssm::config::retry::RetryConfig::disabled())
    }

    /// An SSM client answered by `rule` alone, with no SDK retries (one call is one read).
    fn mocked(rule: &aws_smithy_mocks::Rule) -> aws_sdk_ssm::Client {
        let config = no_retries()
            .http_client(create_mock_http_client())
            .interceptor(MockResponseInterceptor::new().with_rule(rule))
            .build();
        aws_sdk_ssm::Client::from_conf(config)
    }

    /// An SSM client whose GetParameter answers the policy above while `throttled` is false, and
    /// SSM's ThrottlingException (HTTP 400) while it is true. aws-smithy-mocks stands in for SSM
    /// throttling: moto cannot be made to throttle. No SDK retries, so one call is one read.
    fn ssm(throttled: Arc<AtomicBool>) -> aws_sdk_ssm::Client {
        let rule = mock!(aws_sdk_ssm::Client::get_parameter).then_compute_response(move |_| {
            if throttled.load(Ordering::SeqCst) {
                MockResponse::Http(Response::new(
                    StatusCode::try_from(400).unwrap(),
                    SdkBody::from(r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#),
                ))
            } else {
                let parameter = Parameter::builder().name(NAME).value(DRY_RUN).build();
                MockResponse::Output(GetParameterOutput::builder().parameter(parameter).build())
            }
        });
        mocked(&rule)
    }

    fn is_good(got: &Result<Arc<Result<Policy, PolicyError>>, PolicyError>) -> bool {
        matches!(got, Ok(p) if **p == Policy::from_yaml(DRY_RUN))
    }

    /// A function's cache is read on first use: a throttled first read is an error (no earlier
    /// policy may stand in, and the placeholder is never handed out), and the next call reads
    /// again at once and gets the policy.
    #[tokio::test]
    async fn a_lazy_cache_fails_until_its_first_read_succeeds() {
        let throttled = Arc::new(AtomicBool::new(true));
        let cache = PolicyCache::lazy(
            PolicySource::Parameter(NAME.into()),
            ssm(throttled.clone()),
            Duration::from_secs(60),
        );
        for _ in 0..2 {
            assert!(
                matches!(cache.current().await, Err(PolicyError::Unavailable { .. })),
                "no good read yet"
            );
        }
        throttled.store(false, Ordering::SeqCst);
        assert!(is_good(&cache.current().await), "read again at once");
    }

    /// SSM behind a connection that never answers the first `GetParameter` and answers every
    /// later one with the policy: a stand-in for a read cut off half-way (moto cannot hold a
    /// request open).
    #[derive(Debug, Default)]
    struct FirstReadHangs(AtomicBool);

    impl HttpConnector for FirstReadHangs {
        fn call(&self, _: HttpRequest) -> HttpConnectorFuture {
            if !self.0.swap(true, Ordering::SeqCst) {
                return HttpConnectorFuture::new(std::future::pending());
            }
            let body = serde_json::json!({
                "Parameter": {"Name": NAME, "Type": "String", "Value": DRY_RUN, "Version": 1}
            });
            HttpConnectorFuture::ready(Ok(Response::new(
                StatusCode::try_from(200).unwrap(),
                SdkBody::from(body.to_string()),
            )))
        }
    }

    /// A first read whose caller gave up on it (the future dropped half-way) leaves the cache
    /// due: the next call reads at once and gets the policy, instead of failing until the
    /// bound has passed.
    #[tokio::test]
    async fn a_read_cut_off_is_read_again_at_once() {
        let connector = SharedHttpConnector::new(FirstReadHangs::default());
        let config = no_retries()
            .http_client(http_client_fn(move |_, _| connector.clone()))
            .build();
        let cache = PolicyCache::lazy(
            PolicySource::Parameter(NAME.into()),
            aws_sdk_ssm::Client::from_conf(config),
            Duration::from_secs(3600),
        );
        let cut_off = tokio::time::timeout(Duration::from_millis(50), cache.current()).await;
        assert!(cut_off.is_err(), "the first read never finished");
        let again = tokio::time::timeout(Duration::from_secs(5), cache.current())
            .await
            .expect("the second read is not held up");
        assert!(is_good(&again), "read again at once");
    }

    /// The CLI's cache from its own read: a passing failure refuses it; a read kept is handed
    /// out without reading again.
    #[tokio::test]
    async fn a_preloaded_cache_uses_the_read_it_was_given() {
        let unavailable = PolicyError::Unavailable {
            name: NAME.into(),
            message: "ThrottlingException".into(),
        };
        let throttled = Arc::new(AtomicBool::new(true));
        let source = || PolicySource::Parameter(NAME.into());
        let refused = PolicyCache::preloaded(
            source(),
            ssm(throttled.clone()),
            Duration::from_secs(60),
            Err(unavailable),
        );
        assert!(matches!(refused, Err(PolicyError::Unavailable { .. })));
        // SSM throttles every call here: a good answer can only be the read given.
        let cache = PolicyCache::preloaded(
            source(),
            ssm(throttled),
            Duration::from_secs(60),
            Policy::from_yaml(DRY_RUN),
        )
        .unwrap();
        assert!(is_good(&cache.current().await));
    }

    /// Past the grace, every invocation fails closed until a read succeeds, not only the one
    /// whose re-read failed; within the grace the last good policy stands in; a good read
    /// restarts the grace.
    #[tokio::test]
    async fn a_stale_policy_fails_closed_on_every_call_after_the_grace() {
        let max_age = Duration::from_millis(300);
        let grace = Duration::from_millis(1000);
        let throttled = Arc::new(AtomicBool::new(false));
        let cache = PolicyCache::load(
            PolicySource::Parameter(NAME.into()),
            ssm(throttled.clone()),
            max_age,
        )
        .await
        .unwrap()
        .with_grace(grace);
        let loaded = Instant::now();
        assert!(is_good(&cache.current().await));

        // Throttled within the grace: the re-read fails, the last good policy stands in.
        throttled.store(true, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(is_good(&cache.current().await), "within the grace");

        // Past the grace: the first call re-reads and fails; the calls right after it (each
        // reading again, failing closed) must fail closed as well.
        tokio::time::sleep(grace.saturating_sub(loaded.elapsed()) + Duration::from_millis(200))
            .await;
        for call in 0..5 {
            match cache.current().await {
                Err(PolicyError::Unavailable { name, message }) => {
                    assert_eq!(name, NAME);
                    assert!(message.contains("ThrottlingException"), "{message}");
                }
                other => panic!("call {call} after the grace: {other:?}"),
            }
        }
        // And after the next (failing) read too.
        tokio::time::sleep(max_age + Duration::from_millis(100)).await;
        assert!(matches!(
            cache.current().await,
            Err(PolicyError::Unavailable { .. })
        ));

        // SSM answers again: the next read brings the policy back, and with it a fresh grace.
        throttled.store(false, Ordering::SeqCst);
        // Failing closed, every call tries a read: the first one after SSM is back acts.
        assert!(
            is_good(&cache.current().await),
            "the first call after SSM is back"
        );
        tokio::time::sleep(max_age + Duration::from_millis(100)).await;
        assert!(is_good(&cache.current().await), "after a good read");
        assert!(is_good(&cache.current().await));
        throttled.store(true, Ordering::SeqCst);
        tokio::time::sleep(max_age + Duration::from_millis(100)).await;
        assert!(
            is_good(&cache.current().await),
            "the good read restarted the grace"
        );
    }

    /// An SSM client whose GetParameter always answers `status` with SSM's error `code`.
    fn failing_ssm(status: u16, code: &'static str) -> aws_sdk_ssm::Client {
        let rule = mock!(aws_sdk_ssm::Client::get_parameter).then_compute_response(move |_| {
            MockResponse::Http(Response::new(
                StatusCode::try_from(status).unwrap(),
                SdkBody::from(format!(r#"{{"__type":"{code}","message":"m"}}"#)),
            ))
        });
        mocked(&rule)
    }

    /// Only SSM's ParameterNotFound means "nothing pushed yet" (the first-deploy dry-run);
    /// access denied is a verdict (policy-invalid, nothing acts), throttling and a server error
    /// are passing (Lambda retries). None of them may fall back to a policy that acts.
    /// aws-smithy-mocks stands in for these answers: moto cannot deny or throttle.
    #[tokio::test]
    async fn only_parameter_not_found_is_a_first_deploy() {
        let source = PolicySource::Parameter(NAME.into());
        let got = load_policy(&source, &failing_ssm(400, "ParameterNotFound")).await;
        assert!(
            matches!(&got, Ok(p) if p.first_deploy.is_some() && p.forced_dry_run().is_some()),
            "{got:?}"
        );
        for (status, code, transient) in [
            (400, "AccessDeniedException", false),
            (400, "ThrottlingException", true),
            (500, "InternalServerError", true),
        ] {
            match load_policy(&source, &failing_ssm(status, code)).await {
                Err(PolicyError::Unavailable { message, .. }) if transient => {
                    assert!(message.contains(code), "{message}")
                }
                Err(PolicyError::Parameter { message, .. }) if !transient => {
                    assert!(message.contains(code), "{message}")
                }
                other => panic!("{code}: {other:?}"),
            }
        }
    }
}
