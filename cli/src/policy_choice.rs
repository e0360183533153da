//! Which policy `reflex replay`, `approve` and `rollback` apply. An operator's replay must obey
//! what the deployment obeys (its `dry-run`, exemptions, kill switch), so without a flag or
//! variable naming a policy they read the deployment's SSM parameter. Where that parameter does
//! not exist they apply what the functions apply then: the first-deploy policy, every
//! remediation in dry-run. Whatever is chosen is said on stderr.

use reflex_shared::policy::{load_policy, Policy, PolicyError, PolicySource};
use std::fmt;
use std::sync::OnceLock;

/// The SSM parameter the functions of the default stack (`reflex`) read: the SAM template
/// (infra/template.yaml) points them at `/${AWS::StackName}/policy`, and does not create it
/// (operators push it: `reflex policy push`).
pub const DEPLOYED_PARAMETER: &str = "/reflex/policy";

/// The deployment's parameter for this run when `--stack` named another one.
static DEPLOYED: OnceLock<String> = OnceLock::new();

/// Point this process at another deployment's parameter (`--stack`); once, before any command.
pub fn set_deployed(name: String) {
    let _ = DEPLOYED.set(name);
}

/// The deployment's parameter: `--stack`'s, else the default stack's.
pub fn deployed() -> &'static str {
    DEPLOYED.get().map_or(DEPLOYED_PARAMETER, String::as_str)
}

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
    /// The deployment's parameter does not exist: the functions (and so this command) apply
    /// the first-deploy policy, every remediation in dry-run.
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
    #[error("cannot read the deployment's policy parameter {0}: {1} (pass --policy FILE or --policy-parameter NAME to apply another)")]
    Unreadable(String, String),
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

/// The deployment's parameter `name`, as the functions read it: where it does not exist, the
/// cold start's read gives the first-deploy policy (every remediation in dry-run), exactly as a
/// function's does. Any other failure to read it is an error, never a silent fallback.
pub fn settle(name: &str, probe: Probe) -> Result<Chosen, ChoiceError> {
    match probe {
        Probe::Found => Ok(Chosen {
            source: PolicySource::Parameter(name.into()),
            fallback: false,
        }),
        Probe::NotFound => Ok(Chosen {
            source: PolicySource::Parameter(name.into()),
            fallback: true,
        }),
        Probe::Unreadable(message) => Err(ChoiceError::Unreadable(name.into(), message)),
    }
}

/// Resolve a request and read the policy it names, in one read: a function applies what this
/// read gives. For the deployment's parameter ([`deployed`]), the read also settles the choice
/// (see [`settle`]): not found is the first-deploy policy, as a function's read gives it; any
/// other failure to read it is an error, never a silent fallback. The read is `Err` only for a
/// named source that cannot be read, or a policy that is not valid (recorded by every run as
/// `policy-invalid`).
pub async fn choose_and_read(
    request: Request,
    ssm: &aws_sdk_ssm::Client,
) -> Result<(Chosen, Result<Policy, PolicyError>), ChoiceError> {
    match request {
        Request::Given(source) => {
            let read = load_policy(&source, ssm).await;
            let chosen = Chosen {
                source,
                fallback: false,
            };
            Ok((chosen, read))
        }
        Request::Deployed => {
            let name = deployed();
            let read = load_policy(&PolicySource::Parameter(name.into()), ssm).await;
            settle(name, probe_of(&read)).map(|chosen| (chosen, read))
        }
    }
}

/// What a read of the deployment's parameter says of it.
fn probe_of(read: &Result<Policy, PolicyError>) -> Probe {
    match read {
        // Only a `ParameterNotFound` answer gives the first-deploy policy (never a document).
        Ok(policy) if policy.first_deploy.is_some() => Probe::NotFound,
        Ok(_) | Err(PolicyError::Syntax(_) | PolicyError::Invalid { .. }) => Probe::Found,
        Err(PolicyError::Parameter { message, .. } | PolicyError::Unavailable { message, .. }) => {
            Probe::Unreadable(message.clone())
        }
        Err(other) => Probe::Unreadable(other.to_string()),
    }
}

/// The line printed on stderr.
impl fmt::Display for Chosen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            PolicySource::File(path) => write!(f, "policy: file {path}"),
            PolicySource::Parameter(name) if self.fallback => write!(
                f,
                "policy: the first-deploy policy, every remediation in dry-run (there is no SSM parameter {name} in this account and region; `reflex policy push` sets one)"
            ),
            PolicySource::Parameter(name) => write!(f, "policy: SSM parameter {name}"),
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
    fn a_missing_parameter_is_the_first_deploy_dry_run_as_for_the_functions() {
        let name = "/staging/policy";
        assert_eq!(
            settle(name, Probe::Found),
            Ok(Chosen {
                source: PolicySource::Parameter(name.into()),
                fallback: false
            })
        );
        // The same source as the functions': its read gives the first-deploy policy.
        assert_eq!(
            settle(name, Probe::NotFound),
            Ok(Chosen {
                source: PolicySource::Parameter(name.into()),
                fallback: true
            })
        );
        let denied = settle(name, Probe::Unreadable("AccessDeniedException: no".into()))
            .unwrap_err()
            .to_string();
        assert!(
            denied.contains(name) && denied.contains("AccessDeniedException"),
            "{denied}"
        );
    }

    #[test]
    fn one_read_of_the_deployed_parameter_settles_the_choice() {
        let invalid = PolicyError::Invalid {
            key: "version".into(),
            message: "must be 1".into(),
        };
        let denied = PolicyError::Parameter {
            name: "/p".into(),
            message: "AccessDeniedException: no".into(),
        };
        let throttled = PolicyError::Unavailable {
            name: "/p".into(),
            message: "ThrottlingException: slow down".into(),
        };
        let cases = [
            (Ok(Policy::default()), Probe::Found),
            (Ok(Policy::first_deploy("/p")), Probe::NotFound),
            (Err(invalid), Probe::Found),
            (Err(PolicyError::Syntax("bad".into())), Probe::Found),
            (
                Err(denied),
                Probe::Unreadable("AccessDeniedException: no".into()),
            ),
            (
                Err(throttled),
                Probe::Unreadable("ThrottlingException: slow down".into()),
            ),
        ];
        for (read, want) in cases {
            assert_eq!(probe_of(&read), want, "{read:?}");
        }
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
        let fallback = said(PolicySource::Parameter(DEPLOYED_PARAMETER.into()), true);
        assert!(
            fallback.starts_with("policy: the first-deploy policy, every remediation in dry-run")
                && fallback.contains("no SSM parameter /reflex/policy"),
            "{fallback}"
        );
    }
}
