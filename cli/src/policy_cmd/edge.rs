//! The CLI's edge with AWS: a missing region or missing credentials is one clear line naming
//! the setting, said before any call, instead of the SDK's "dispatch failure".

use aws_config::SdkConfig;
use aws_sdk_ssm::config::ProvideCredentials;

/// Why a command cannot talk to AWS with this configuration, if it cannot. Pure.
pub fn region_problem(sdk: &SdkConfig) -> Option<String> {
    sdk.region().is_none().then(|| {
        "no AWS region: set AWS_REGION (or AWS_DEFAULT_REGION), or a region in the profile AWS_PROFILE names (~/.aws/config)".to_string()
    })
}

/// Check the region and resolve the credentials once, before any call.
pub async fn check(sdk: &SdkConfig) -> anyhow::Result<()> {
    if let Some(problem) = region_problem(sdk) {
        anyhow::bail!(problem);
    }
    let Some(provider) = sdk.credentials_provider() else {
        anyhow::bail!(NO_CREDENTIALS);
    };
    if let Err(e) = provider.provide_credentials().await {
        // The chain's own reason, on the same line.
        let why = aws_sdk_ssm::error::DisplayErrorContext(&e).to_string();
        let why = why.split_whitespace().collect::<Vec<_>>().join(" ");
        anyhow::bail!("{NO_CREDENTIALS} ({why})");
    }
    Ok(())
}

const NO_CREDENTIALS: &str = "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE (keys, SSO or a role in ~/.aws/config)";
