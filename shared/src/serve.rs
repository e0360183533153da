//! Every function's Lambda entry point: build the clients once per cold start, check the
//! policy's parameters for this remediation, then serve events, schedules and commands.

use crate::remediation::Remediation;
use crate::{logging, pipeline, Setup};
use aws_config::SdkConfig;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use serde_json::Value;

/// `main` of a function: `reflex_shared::serve(MyRemediation::new).await`.
///
/// A policy whose parameters for this remediation are invalid (a required key missing, an
/// unknown key) fails the cold start, after recording `failed / policy-invalid` naming the key:
/// nothing is served under parameters the remediation cannot read, and Lambda keeps the events
/// for its retries and the on-failure destination.
pub async fn serve<R, F>(make: F) -> Result<(), Error>
where
    R: Remediation,
    F: FnOnce(&SdkConfig) -> R,
{
    logging::init_json();
    let setup = Setup::from_env().await?;
    let remediation = make(&setup.sdk);
    if let Err(e) = pipeline::check_parameters(&setup, &remediation).await {
        tracing::error!(error = %e, "the policy's parameters are not usable; nothing will be changed");
        pipeline::record_unusable_parameters(&setup, &remediation, &e).await?;
        return Err(e.into());
    }
    let (setup, remediation) = (&setup, &remediation);
    run(service_fn(move |event: LambdaEvent<Value>| {
        pipeline::handle(setup, remediation, event)
    }))
    .await
}
