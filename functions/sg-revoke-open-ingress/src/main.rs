//! Lambda entry point: the shared `serve`, with this remediation.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    reflex_shared::serve(sg_revoke_open_ingress::SgRevokeOpenIngress::new).await
}
