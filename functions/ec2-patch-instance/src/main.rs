//! Lambda entry point: the shared `serve`, with this remediation.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    reflex_shared::serve(ec2_patch_instance::Ec2PatchInstance::new).await
}
