//! Where the policy comes from: a file, an SSM parameter, or the built-in defaults.

use super::{Policy, PolicyError};

pub const POLICY_FILE_ENV: &str = "REFLEX_POLICY_FILE";
pub const POLICY_PARAMETER_ENV: &str = "REFLEX_POLICY_PARAMETER";

/// The policy's origin, from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicySource {
    File(String),
    Parameter(String),
    BuiltIn,
}

impl PolicySource {
    /// `REFLEX_POLICY_FILE` or `REFLEX_POLICY_PARAMETER`; both set is an error (which one was
    /// meant is a guess, and we do not guess).
    pub fn from_env() -> Result<PolicySource, PolicyError> {
        let get = |k| {
            std::env::var(k)
                .ok()
                .filter(|v: &String| !v.trim().is_empty())
        };
        match (get(POLICY_FILE_ENV), get(POLICY_PARAMETER_ENV)) {
            (Some(_), Some(_)) => Err(PolicyError::Ambiguous),
            (Some(path), None) => Ok(PolicySource::File(path)),
            (None, Some(name)) => Ok(PolicySource::Parameter(name)),
            (None, None) => Ok(PolicySource::BuiltIn),
        }
    }
}

/// Load and validate the policy. Called once per cold start; the result, good or bad, is kept
/// so that every invocation with a bad policy records why it did nothing.
pub async fn load_policy(
    source: &PolicySource,
    ssm: &aws_sdk_ssm::Client,
) -> Result<Policy, PolicyError> {
    match source {
        PolicySource::BuiltIn => Ok(Policy::default()),
        PolicySource::File(path) => {
            let text = tokio::fs::read_to_string(path)
                .await
                .map_err(|e| PolicyError::Read {
                    path: path.clone(),
                    message: e.to_string(),
                })?;
            Policy::from_yaml(&text)
        }
        PolicySource::Parameter(name) => {
            let out = ssm
                .get_parameter()
                .name(name)
                .with_decryption(true)
                .send()
                .await
                .map_err(|e| PolicyError::Parameter {
                    name: name.clone(),
                    message: crate::aws_error::describe(&e),
                })?;
            let text =
                out.parameter()
                    .and_then(|p| p.value())
                    .ok_or_else(|| PolicyError::Parameter {
                        name: name.clone(),
                        message: "parameter has no value".into(),
                    })?;
            Policy::from_yaml(text)
        }
    }
}
