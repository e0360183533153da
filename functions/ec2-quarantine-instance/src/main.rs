//! Lambda entry point: the shared `serve` builds the clients once per cold start and serves.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    reflex_shared::serve(ec2_quarantine_instance::Ec2QuarantineInstance::new).await
}
