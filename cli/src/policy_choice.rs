//! Which policy `reflex replay`, `approve` and `rollback` apply. An operator's replay must obey
//! what the deployment obeys (its `dry-run`, exemptions, kill switch), so without a flag or
//! variable naming a policy they read the deployment's SSM parameter; the built-in defaults only
//! where that parameter does not exist. Whatever is chosen is said on stderr.

use reflex_shared::aws_error;
use reflex_shared::policy::{PolicyError, PolicySource};
use std::fmt;

/// The SSM parameter the deployment's functions read: the SAM template (infra/template.yaml)
/// creates it.
pub const DEPLOYED_PARAMETER: &str = "/reflex/policy";

/// What the command line and the environment ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// A source named by a flag (`--policy`, `--policy-parameter`), by `REFLEX_POLICY_FILE` /
    /// `REFLEX_POLICY_PARAMETER`, or by the command itself (the demo's built-in defaults).
    Given(PolicySource),
    /// Nothing named: the deployment's parameter, if it exists.
    Deployed,
}

/// What the command applies, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chosen {
    pub source: PolicySource,
    /// The built-in defaults because the deployment's parameter does not exist.
    pub fallback: bool,
}

/// What reading the deployment's parameter found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    Found,
    /// SSM's `ParameterNotFound`: nothing deployed here (or another account or region).
    NotFound,
    /// Any other failure (access denied, throttling, network), described.
    Unreadable(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChoiceError {
    #[error(transparent)]
    Env(#[from] PolicyError),
    #[error("cannot read the deployment's policy parameter {DEPLOYED_PARAMETER}: {0} (pass --policy FILE or --policy-parameter NAME to apply another)")]
    Unreadable(String),
}

/// Flags win over the environment, the environment over the deployment's parameter. Both
/// variables set (with no flag) is an error: which one was meant is a guess.
pub fn request(
    flag: Option<PolicySource>,
    env: Result<PolicySource, PolicyError>,
) -> Result<Request, ChoiceError> {
    Ok(match (flag, env) {
        (Some(source), _) => Request::Given(source),
        (None, env) => match env? {
            PolicySource::BuiltIn => Request::Deployed,
            named => Request::Given(named),
        },
    })
}

/// The deployment's parameter if it exists, the built-in defaults only if it does not; any
/// other failure to read it is an error, never a silent fallback.
pub fn settle(probe: Probe) -> Result<Chosen, ChoiceError> {
    match probe {
        Probe::Found => Ok(Chosen {
            source: PolicySource::Parameter(DEPLOYED_PARAMETER.into()),
            fallback: false,
        }),
        Probe::NotFound => Ok(Chosen {
            source: PolicySource::BuiltIn,
            fallback: true,
        }),
        Probe::Unreadable(message) => Err(ChoiceError::Unreadable(message)),
    }
}

/// Resolve a request, reading the deployment's parameter only when nothing else was named.
pub async fn choose(request: Request, ssm: &aws_sdk_ssm::Client) -> Result<Chosen, ChoiceError> {
    match request {
        Request::Given(source) => Ok(Chosen {
            source,
            fallback: false,
        }),
        Request::Deployed => settle(probe(ssm).await),
    }
}

/// Read the deployment's parameter as the functions do (decrypted), to learn whether it exists
/// and is readable; the cold start then reads it for use.
async fn probe(ssm: &aws_sdk_ssm::Client) -> Probe {
    match ssm
        .get_parameter()
        .name(DEPLOYED_PARAMETER)
        .with_decryption(true)
        .send()
        .await
    {
        Ok(_) => Probe::Found,
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_parameter_not_found()) =>
        {
            Probe::NotFound
        }
        Err(e) => Probe::Unreadable(aws_error::describe(&e)),
    }
}

/// The line printed on stderr.
impl fmt::Display for Chosen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            PolicySource::File(path) => write!(f, "policy: file {path}"),
            PolicySource::Parameter(name) => write!(f, "policy: SSM parameter {name}"),
            PolicySource::BuiltIn if self.fallback => write!(
                f,
                "policy: the built-in defaults (there is no SSM parameter {DEPLOYED_PARAMETER} in this account and region)"
            ),
            PolicySource::BuiltIn => write!(f, "policy: the built-in defaults"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file() -> PolicySource {
        PolicySource::File("p.yaml".into())
    }

    fn parameter() -> PolicySource {
        PolicySource::Parameter("/team/policy".into())
    }

    #[test]
    fn flags_win_then_the_environment_then_the_deployment() {
        let cases = [
            (Some(file()), Ok(parameter()), Ok(Request::Given(file()))),
            (
                Some(parameter()),
                Err(PolicyError::Ambiguous),
                Ok(Request::Given(parameter())),
            ),
            (None, Ok(file()), Ok(Request::Given(file()))),
            (None, Ok(parameter()), Ok(Request::Given(parameter()))),
            (None, Ok(PolicySource::BuiltIn), Ok(Request::Deployed)),
            (
                None,
                Err(PolicyError::Ambiguous),
                Err(ChoiceError::Env(PolicyError::Ambiguous)),
            ),
        ];
        for (flag, env, want) in cases {
            assert_eq!(request(flag.clone(), env.clone()), want, "{flag:?} {env:?}");
        }
    }

    #[test]
    fn only_a_missing_parameter_falls_back_to_the_defaults() {
        assert_eq!(
            settle(Probe::Found),
            Ok(Chosen {
                source: PolicySource::Parameter(DEPLOYED_PARAMETER.into()),
                fallback: false
            })
        );
        assert_eq!(
            settle(Probe::NotFound),
            Ok(Chosen {
                source: PolicySource::BuiltIn,
                fallback: true
            })
        );
        let denied = settle(Probe::Unreadable("AccessDeniedException: no".into()))
            .unwrap_err()
            .to_string();
        assert!(
            denied.contains(DEPLOYED_PARAMETER) && denied.contains("AccessDeniedException"),
            "{denied}"
        );
    }

    #[test]
    fn the_choice_is_said() {
        let said = |source, fallback| Chosen { source, fallback }.to_string();
        assert_eq!(said(file(), false), "policy: file p.yaml");
        assert_eq!(
            said(PolicySource::Parameter(DEPLOYED_PARAMETER.into()), false),
            "policy: SSM parameter /reflex/policy"
        );
        assert_eq!(
            said(PolicySource::BuiltIn, false),
            "policy: the built-in defaults"
        );
        let fallback = said(PolicySource::BuiltIn, true);
        assert!(
            fallback.starts_with("policy: the built-in defaults")
                && fallback.contains("no SSM parameter /reflex/policy"),
            "{fallback}"
        );
    }
}
