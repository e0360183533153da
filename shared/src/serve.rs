//! Every function's Lambda entry point: build the clients once per cold start, then serve
//! events, schedules and commands.
//!
//! The cold start makes no AWS call, so the runtime polls for its first event at once: the
//! account is in the invoked function's ARN (the Lambda context of every event, set by the
//! Lambda service), and the policy's first read starts in the background beside that poll.

use crate::pipeline::{self, PipelineError};
use crate::policy::PolicySource;
use crate::remediation::Remediation;
use crate::setup::{self, identity_from_function_arn, Settings};
use crate::{logging, Setup};
use aws_config::SdkConfig;
use lambda_runtime::{run, service_fn, Context, Error, LambdaEvent};
use serde_json::Value;
use std::sync::Arc;
use tokio::sync::OnceCell;

/// `main` of a function: `reflex_shared::serve(MyRemediation::new).await`.
///
/// A policy whose parameters for this remediation are invalid (a required key missing, an
/// unknown key) fails every invocation, after recording `failed / policy-invalid` naming the
/// key (once per error), until a policy that fixes them is read: nothing is served under
/// parameters the remediation cannot read, and Lambda keeps the events for its retries and the
/// on-failure destination, as when a cold start fails. A policy invalid as a whole does not:
/// every invocation records it as `policy-invalid` and changes nothing.
pub async fn serve<R, F>(make: F) -> Result<(), Error>
where
    R: Remediation,
    F: FnOnce(&SdkConfig) -> R,
{
    logging::init_json();
    let settings = Settings::from_env()?;
    let sdk = setup::sdk_config().await;
    let policy = Arc::new(setup::policy_cache(
        &sdk,
        &settings,
        PolicySource::from_env(),
    ));
    // The first read, started now and awaited by the first event: a failure here is the first
    // event's to report (its `current` reads again), so its result is not needed.
    tokio::spawn({
        let policy = policy.clone();
        async move {
            let _ = policy.current().await;
        }
    });
    let remediation = make(&sdk);
    let parts = (sdk, settings, policy);
    let ready = OnceCell::new();
    let (parts, remediation, ready) = (&parts, &remediation, &ready);
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        let setup = ready
            .get_or_try_init(|| first_event(parts, remediation, &event.context))
            .await?;
        pipeline::handle(setup, remediation, event).await
    }))
    .await
}

/// The set-up, once the first event names the account; and the policy's parameters for this
/// remediation checked, so a bad key is in the log and on the record at once. Not kept when
/// they are unusable: the next event checks again, under the policy then in force.
async fn first_event<R: Remediation>(
    (sdk, settings, policy): &(SdkConfig, Settings, Arc<crate::policy::PolicyCache>),
    remediation: &R,
    context: &Context,
) -> Result<Setup, PipelineError> {
    let identity = identity_from_function_arn(&context.invoked_function_arn)
        .map_err(|e| PipelineError::NotReady(e.to_string()))?;
    let setup = Setup::assemble(sdk.clone(), settings.clone(), policy.clone(), identity);
    // Unreadable for a passing reason: not ready, and the event is retried (as a cold start
    // that could not read the policy was).
    setup
        .policy
        .current()
        .await
        .map_err(PipelineError::PolicyUnavailable)?;
    if let Some(e) = pipeline::parameters_error(&setup, remediation).await {
        tracing::error!(error = %e, "the policy's parameters are not usable; nothing will be changed");
        pipeline::record_unusable_parameters(&setup, remediation, &e).await?;
        return Err(PipelineError::NotReady(e));
    }
    if let Err(e) = pipeline::check_parameters(&setup, remediation).await {
        // Fail closed, on the record: every invocation records it as policy-invalid.
        tracing::error!(error = %e, "the policy is not usable; nothing will be changed");
    }
    Ok(setup)
}
