//! The IAM calls, each small: a user or role as IAM knows it (ARN with path, unique id, tags),
//! Reflex's inline policy on it, a user's login profile; putting and deleting them.

use crate::document;
use reflex_shared::aws_error::code;
use reflex_shared::principal::PrincipalKind;
use reflex_shared::remediation::{RemediationError, Tags};
use serde_json::Value;

pub const GET_USER: &str = "iam:GetUser";
pub const GET_ROLE: &str = "iam:GetRole";
pub const GET_USER_POLICY: &str = "iam:GetUserPolicy";
pub const GET_ROLE_POLICY: &str = "iam:GetRolePolicy";
pub const GET_LOGIN_PROFILE: &str = "iam:GetLoginProfile";
pub const PUT_USER_POLICY: &str = "iam:PutUserPolicy";
pub const PUT_ROLE_POLICY: &str = "iam:PutRolePolicy";
pub const DELETE_USER_POLICY: &str = "iam:DeleteUserPolicy";
pub const DELETE_ROLE_POLICY: &str = "iam:DeleteRolePolicy";
pub const DELETE_LOGIN_PROFILE: &str = "iam:DeleteLoginProfile";

const NO_SUCH_ENTITY: &str = "NoSuchEntity";

/// A user or role as IAM answers for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Live {
    /// With its path: `arn:aws:iam::1:user/ops/alice`.
    pub arn: String,
    pub name: String,
    /// `AIDA…` for a user, `AROA…` for a role: a principal re-created under the same name has
    /// another.
    pub unique_id: String,
    pub tags: Tags,
}

#[derive(Debug, Clone)]
pub struct Iam {
    client: aws_sdk_iam::Client,
}

fn gone(kind: PrincipalKind, name: &str) -> RemediationError {
    RemediationError::Gone(format!("IAM {} {name} no longer exists", kind.as_str()))
}

fn tags(tags: &[aws_sdk_iam::types::Tag]) -> Tags {
    tags.iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect()
}

/// An IAM error, and whether it says the principal or policy does not exist.
fn missing_or<E>(
    api: &'static str,
) -> impl Fn(aws_sdk_iam::error::SdkError<E>) -> (bool, RemediationError)
where
    E: aws_sdk_iam::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    move |e| {
        (
            code(&e) == Some(NO_SUCH_ENTITY),
            RemediationError::aws(api, e),
        )
    }
}

impl Iam {
    pub fn new(client: aws_sdk_iam::Client) -> Self {
        Iam { client }
    }

    /// The user or role called `name`.
    pub async fn principal(
        &self,
        kind: PrincipalKind,
        name: &str,
    ) -> Result<Live, RemediationError> {
        match kind {
            PrincipalKind::User => self.user(name).await,
            PrincipalKind::Role => self.role(name).await,
            PrincipalKind::Group => Err(RemediationError::Invalid(format!(
                "group {name}: a group has no sessions to revoke"
            ))),
        }
    }

    async fn user(&self, name: &str) -> Result<Live, RemediationError> {
        let out = match self.client.get_user().user_name(name).send().await {
            Ok(out) => out,
            Err(e) if code(&e) == Some(NO_SUCH_ENTITY) => {
                return Err(gone(PrincipalKind::User, name))
            }
            Err(e) => return Err(RemediationError::aws(GET_USER, e)),
        };
        let user = out
            .user()
            .ok_or_else(|| RemediationError::Invalid(format!("GetUser {name} named no user")))?;
        Ok(Live {
            arn: user.arn().to_string(),
            name: user.user_name().to_string(),
            unique_id: user.user_id().to_string(),
            tags: tags(user.tags()),
        })
    }

    async fn role(&self, name: &str) -> Result<Live, RemediationError> {
        let out = match self.client.get_role().role_name(name).send().await {
            Ok(out) => out,
            Err(e) if code(&e) == Some(NO_SUCH_ENTITY) => {
                return Err(gone(PrincipalKind::Role, name))
            }
            Err(e) => return Err(RemediationError::aws(GET_ROLE, e)),
        };
        let role = out
            .role()
            .ok_or_else(|| RemediationError::Invalid(format!("GetRole {name} named no role")))?;
        Ok(Live {
            arn: role.arn().to_string(),
            name: role.role_name().to_string(),
            unique_id: role.role_id().to_string(),
            tags: tags(role.tags()),
        })
    }

    /// The document of the inline policy `policy` on the principal, if it has one.
    pub async fn inline_policy(
        &self,
        kind: PrincipalKind,
        name: &str,
        policy: &str,
    ) -> Result<Option<Value>, RemediationError> {
        let text = match kind {
            PrincipalKind::Role => {
                match self
                    .client
                    .get_role_policy()
                    .role_name(name)
                    .policy_name(policy)
                    .send()
                    .await
                {
                    Ok(out) => out.policy_document().to_string(),
                    Err(e) if code(&e) == Some(NO_SUCH_ENTITY) => {
                        return self.absent(kind, name).await
                    }
                    Err(e) => return Err(RemediationError::aws(GET_ROLE_POLICY, e)),
                }
            }
            _ => {
                match self
                    .client
                    .get_user_policy()
                    .user_name(name)
                    .policy_name(policy)
                    .send()
                    .await
                {
                    Ok(out) => out.policy_document().to_string(),
                    Err(e) if code(&e) == Some(NO_SUCH_ENTITY) => {
                        return self.absent(kind, name).await
                    }
                    Err(e) => return Err(RemediationError::aws(GET_USER_POLICY, e)),
                }
            }
        };
        document::decode(&text).map(Some).map_err(|e| {
            RemediationError::Invalid(format!("inline policy {policy} on {name}: {e}"))
        })
    }

    /// IAM answers `NoSuchEntity` both for a missing policy and a missing principal: which one
    /// is read, so that a deleted principal is gone rather than compliant.
    async fn absent(
        &self,
        kind: PrincipalKind,
        name: &str,
    ) -> Result<Option<Value>, RemediationError> {
        self.principal(kind, name).await.map(|_| None)
    }

    /// Whether the user has a console password.
    pub async fn login_profile(&self, user: &str) -> Result<bool, RemediationError> {
        match self.client.get_login_profile().user_name(user).send().await {
            Ok(_) => Ok(true),
            Err(e) if code(&e) == Some(NO_SUCH_ENTITY) => self.user(user).await.map(|_| false),
            Err(e) => Err(RemediationError::aws(GET_LOGIN_PROFILE, e)),
        }
    }

    /// Put (create or replace) the inline policy `policy` on the principal.
    pub async fn put_policy(
        &self,
        kind: PrincipalKind,
        name: &str,
        policy: &str,
        document: &Value,
    ) -> Result<(), RemediationError> {
        let text = document.to_string();
        let result = match kind {
            PrincipalKind::Role => self
                .client
                .put_role_policy()
                .role_name(name)
                .policy_name(policy)
                .policy_document(text)
                .send()
                .await
                .map(|_| ())
                .map_err(missing_or(PUT_ROLE_POLICY)),
            _ => self
                .client
                .put_user_policy()
                .user_name(name)
                .policy_name(policy)
                .policy_document(text)
                .send()
                .await
                .map(|_| ())
                .map_err(missing_or(PUT_USER_POLICY)),
        };
        result.map_err(|(missing, e)| if missing { gone(kind, name) } else { e })
    }

    /// Delete the inline policy `policy` from the principal; one already gone is done.
    pub async fn delete_policy(
        &self,
        kind: PrincipalKind,
        name: &str,
        policy: &str,
    ) -> Result<(), RemediationError> {
        let result = match kind {
            PrincipalKind::Role => self
                .client
                .delete_role_policy()
                .role_name(name)
                .policy_name(policy)
                .send()
                .await
                .map(|_| ())
                .map_err(missing_or(DELETE_ROLE_POLICY)),
            _ => self
                .client
                .delete_user_policy()
                .user_name(name)
                .policy_name(policy)
                .send()
                .await
                .map(|_| ())
                .map_err(missing_or(DELETE_USER_POLICY)),
        };
        match result {
            Ok(()) | Err((true, _)) => Ok(()),
            Err((false, e)) => Err(e),
        }
    }

    /// Delete the user's console password; one already gone is done.
    pub async fn delete_login_profile(&self, user: &str) -> Result<(), RemediationError> {
        match self
            .client
            .delete_login_profile()
            .user_name(user)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if code(&e) == Some(NO_SUCH_ENTITY) => Ok(()),
            Err(e) => Err(RemediationError::aws(DELETE_LOGIN_PROFILE, e)),
        }
    }
}
