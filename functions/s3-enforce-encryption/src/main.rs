//! Lambda entry point: the shared `serve`, with this remediation.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    reflex_shared::serve(s3_enforce_encryption::S3EnforceEncryption::new).await
}
