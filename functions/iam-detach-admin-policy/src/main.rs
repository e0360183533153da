//! Lambda entry point: the shared `serve`, with this remediation.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    reflex_shared::serve(iam_detach_admin_policy::IamDetachAdminPolicy::new).await
}
