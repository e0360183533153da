//! Lambda entry point: build the clients once per cold start, then serve events.

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use reflex_shared::{logging, pipeline, Setup};
use s3_block_public_access::S3BlockPublicAccess;
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    logging::init_json();
    let setup = Setup::from_env().await?;
    let remediation = S3BlockPublicAccess::new(&setup.sdk);
    if let Err(e) = pipeline::check_parameters(&setup, &remediation).await {
        // Fail closed, on the record: every invocation records it as policy-invalid.
        tracing::error!(error = %e, "the policy is not usable; nothing will be changed");
    }
    let (setup, remediation) = (&setup, &remediation);
    run(service_fn(move |event: LambdaEvent<Value>| {
        pipeline::handle(setup, remediation, event)
    }))
    .await
}
