//! Lambda entry point: the shared `serve`, with this remediation.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    reflex_shared::serve(s3_block_public_access::S3BlockPublicAccess::new).await
}
