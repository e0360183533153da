//! Lambda entry point: the shared `serve`, with this remediation.

// One thread: a function handles one event at a time and waits on AWS; fewer threads, less memory.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    reflex_shared::serve(s3_enforce_encryption::S3EnforceEncryption::new).await
}
