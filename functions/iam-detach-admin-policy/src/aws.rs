//! The IAM calls, each small: a policy and its default version's document, who holds it, a
//! user's attached policies, a principal by name, tags, one attachment made or removed.

use crate::document;
use crate::model::Holder;
use aws_sdk_iam::types::PolicyScopeType;
use reflex_shared::aws_error::code;
use reflex_shared::principal::PrincipalKind;
use reflex_shared::remediation::{RemediationError, Tags};

pub const GET_POLICY: &str = "iam:GetPolicy";
pub const GET_POLICY_VERSION: &str = "iam:GetPolicyVersion";
pub const LIST_POLICIES: &str = "iam:ListPolicies";
pub const LIST_ENTITIES_FOR_POLICY: &str = "iam:ListEntitiesForPolicy";
pub const LIST_ATTACHED_USER_POLICIES: &str = "iam:ListAttachedUserPolicies";
pub const LIST_POLICY_TAGS: &str = "iam:ListPolicyTags";
pub const LIST_USER_TAGS: &str = "iam:ListUserTags";
pub const GET_USER: &str = "iam:GetUser";
pub const GET_GROUP: &str = "iam:GetGroup";
pub const GET_ROLE: &str = "iam:GetRole";

/// IAM's code for a user, group, role, policy or attachment that does not exist.
const NOT_FOUND: &str = "NoSuchEntity";

/// The API that detaches (or attaches) a policy from (to) a principal of this kind.
pub fn attachment_api(kind: PrincipalKind, attach: bool) -> &'static str {
    match (kind, attach) {
        (PrincipalKind::User, false) => "iam:DetachUserPolicy",
        (PrincipalKind::Group, false) => "iam:DetachGroupPolicy",
        (PrincipalKind::Role, false) => "iam:DetachRolePolicy",
        (PrincipalKind::User, true) => "iam:AttachUserPolicy",
        (PrincipalKind::Group, true) => "iam:AttachGroupPolicy",
        (PrincipalKind::Role, true) => "iam:AttachRolePolicy",
    }
}

/// A managed policy as IAM answers for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyInfo {
    pub arn: String,
    pub id: String,
    pub name: String,
    pub default_version: String,
}

#[derive(Debug, Clone)]
pub struct Iam {
    client: aws_sdk_iam::Client,
}

/// Every page of a tag listing as one map; a principal or policy that is gone says so.
fn tags_of<E>(
    listed: Result<Vec<aws_sdk_iam::types::Tag>, aws_sdk_iam::error::SdkError<E>>,
    api: &'static str,
    what: &str,
) -> Result<Tags, RemediationError>
where
    E: aws_sdk_iam::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    match listed {
        Ok(tags) => Ok(tags
            .iter()
            .map(|t| (t.key().to_string(), t.value().to_string()))
            .collect()),
        Err(e) if code(&e) == Some(NOT_FOUND) => Err(gone(what)),
        Err(e) => Err(RemediationError::aws(api, e)),
    }
}

fn gone(what: &str) -> RemediationError {
    RemediationError::Gone(format!("{what} no longer exists"))
}

impl Iam {
    pub fn new(client: aws_sdk_iam::Client) -> Self {
        Iam { client }
    }

    pub async fn policy(&self, arn: &str) -> Result<PolicyInfo, RemediationError> {
        let out = match self.client.get_policy().policy_arn(arn).send().await {
            Ok(out) => out,
            Err(e) if code(&e) == Some(NOT_FOUND) => return Err(gone(&format!("policy {arn}"))),
            Err(e) => return Err(RemediationError::aws(GET_POLICY, e)),
        };
        let p = out.policy().ok_or_else(|| gone(&format!("policy {arn}")))?;
        Ok(PolicyInfo {
            arn: p.arn().unwrap_or(arn).to_string(),
            id: p.policy_id().unwrap_or_default().to_string(),
            name: p.policy_name().unwrap_or_default().to_string(),
            default_version: p.default_version_id().unwrap_or_default().to_string(),
        })
    }

    /// The ARN of the customer managed policy whose unique id is `id` (AWS Config names
    /// policies by id), if there is one.
    pub async fn policy_arn_by_id(&self, id: &str) -> Result<Option<String>, RemediationError> {
        let mut marker: Option<String> = None;
        loop {
            let out = self
                .client
                .list_policies()
                .scope(PolicyScopeType::Local)
                .set_marker(marker.clone())
                .send()
                .await
                .map_err(|e| RemediationError::aws(LIST_POLICIES, e))?;
            if let Some(p) = out.policies().iter().find(|p| p.policy_id() == Some(id)) {
                return Ok(p.arn().map(str::to_string));
            }
            match out.marker().filter(|_| out.is_truncated()) {
                Some(m) => marker = Some(m.to_string()),
                None => return Ok(None),
            }
        }
    }

    /// Whether version `version` of the policy allows every action on every resource.
    pub async fn full_admin(&self, arn: &str, version: &str) -> Result<bool, RemediationError> {
        let out = match self
            .client
            .get_policy_version()
            .policy_arn(arn)
            .version_id(version)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if code(&e) == Some(NOT_FOUND) => {
                return Err(gone(&format!("policy {arn} version {version}")))
            }
            Err(e) => return Err(RemediationError::aws(GET_POLICY_VERSION, e)),
        };
        let text = out
            .policy_version()
            .and_then(|v| v.document())
            .unwrap_or_default();
        let doc = document::parse(text).ok_or_else(|| {
            RemediationError::Invalid(format!(
                "the document of policy {arn} version {version} is not readable JSON"
            ))
        })?;
        Ok(document::grants_full_admin(&doc))
    }

    /// Every user, group and role the policy is attached to, each read by name for its ARN
    /// (path included) and unique id; sorted.
    pub async fn holders(&self, arn: &str) -> Result<Vec<Holder>, RemediationError> {
        let mut named: Vec<(PrincipalKind, String)> = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let out = match self
                .client
                .list_entities_for_policy()
                .policy_arn(arn)
                .set_marker(marker.clone())
                .send()
                .await
            {
                Ok(out) => out,
                Err(e) if code(&e) == Some(NOT_FOUND) => {
                    return Err(gone(&format!("policy {arn}")))
                }
                Err(e) => return Err(RemediationError::aws(LIST_ENTITIES_FOR_POLICY, e)),
            };
            let each = |kind, n: Option<&str>| n.map(|n| (kind, n.to_string()));
            named.extend(
                out.policy_users()
                    .iter()
                    .filter_map(|u| each(PrincipalKind::User, u.user_name())),
            );
            named.extend(
                out.policy_groups()
                    .iter()
                    .filter_map(|g| each(PrincipalKind::Group, g.group_name())),
            );
            named.extend(
                out.policy_roles()
                    .iter()
                    .filter_map(|r| each(PrincipalKind::Role, r.role_name())),
            );
            match out.marker().filter(|_| out.is_truncated()) {
                Some(m) => marker = Some(m.to_string()),
                None => break,
            }
        }
        let mut holders = Vec::with_capacity(named.len());
        for (kind, name) in named {
            match self.holder(kind, &name).await {
                Ok(h) => holders.push(h),
                // Deleted between the two reads: it holds nothing any more.
                Err(RemediationError::Gone(_)) => {}
                Err(e) => return Err(e),
            }
        }
        holders.sort_by(|a, b| (a.kind.as_str(), &a.name).cmp(&(b.kind.as_str(), &b.name)));
        Ok(holders)
    }

    /// A user, group or role by name.
    pub async fn holder(
        &self,
        kind: PrincipalKind,
        name: &str,
    ) -> Result<Holder, RemediationError> {
        let missing = || gone(&format!("IAM {} {name}", kind.as_str()));
        let holder = |arn: &str, id: &str| Holder {
            kind,
            name: name.to_string(),
            arn: arn.to_string(),
            id: id.to_string(),
        };
        match kind {
            PrincipalKind::User => match self.client.get_user().user_name(name).send().await {
                Ok(out) => out
                    .user()
                    .map(|u| holder(u.arn(), u.user_id()))
                    .ok_or_else(missing),
                Err(e) if code(&e) == Some(NOT_FOUND) => Err(missing()),
                Err(e) => Err(RemediationError::aws(GET_USER, e)),
            },
            PrincipalKind::Group => {
                match self
                    .client
                    .get_group()
                    .group_name(name)
                    .max_items(1)
                    .send()
                    .await
                {
                    Ok(out) => out
                        .group()
                        .map(|g| holder(g.arn(), g.group_id()))
                        .ok_or_else(missing),
                    Err(e) if code(&e) == Some(NOT_FOUND) => Err(missing()),
                    Err(e) => Err(RemediationError::aws(GET_GROUP, e)),
                }
            }
            PrincipalKind::Role => match self.client.get_role().role_name(name).send().await {
                Ok(out) => out
                    .role()
                    .map(|r| holder(r.arn(), r.role_id()))
                    .ok_or_else(missing),
                Err(e) if code(&e) == Some(NOT_FOUND) => Err(missing()),
                Err(e) => Err(RemediationError::aws(GET_ROLE, e)),
            },
        }
    }

    /// The managed policies attached to the user directly: (ARN, name).
    pub async fn attached_to_user(
        &self,
        user: &str,
    ) -> Result<Vec<(String, String)>, RemediationError> {
        let mut attached = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let out = match self
                .client
                .list_attached_user_policies()
                .user_name(user)
                .set_marker(marker.clone())
                .send()
                .await
            {
                Ok(out) => out,
                Err(e) if code(&e) == Some(NOT_FOUND) => {
                    return Err(gone(&format!("IAM user {user}")))
                }
                Err(e) => return Err(RemediationError::aws(LIST_ATTACHED_USER_POLICIES, e)),
            };
            attached.extend(out.attached_policies().iter().filter_map(|p| {
                Some((
                    p.policy_arn()?.to_string(),
                    p.policy_name().unwrap_or_default().to_string(),
                ))
            }));
            match out.marker().filter(|_| out.is_truncated()) {
                Some(m) => marker = Some(m.to_string()),
                None => break,
            }
        }
        Ok(attached)
    }

    pub async fn policy_tags(&self, arn: &str) -> Result<Tags, RemediationError> {
        let listed = self
            .client
            .list_policy_tags()
            .policy_arn(arn)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await;
        tags_of(listed, LIST_POLICY_TAGS, &format!("policy {arn}"))
    }

    pub async fn user_tags(&self, user: &str) -> Result<Tags, RemediationError> {
        let listed = self
            .client
            .list_user_tags()
            .user_name(user)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await;
        tags_of(listed, LIST_USER_TAGS, &format!("IAM user {user}"))
    }

    /// Remove the attachment; one already gone is done (a crash after the call).
    pub async fn detach(&self, h: &Holder, policy_arn: &str) -> Result<(), RemediationError> {
        let api = attachment_api(h.kind, false);
        let result = match h.kind {
            PrincipalKind::User => self
                .client
                .detach_user_policy()
                .user_name(&h.name)
                .policy_arn(policy_arn)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| (code(&e) == Some(NOT_FOUND), RemediationError::aws(api, e))),
            PrincipalKind::Group => self
                .client
                .detach_group_policy()
                .group_name(&h.name)
                .policy_arn(policy_arn)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| (code(&e) == Some(NOT_FOUND), RemediationError::aws(api, e))),
            PrincipalKind::Role => self
                .client
                .detach_role_policy()
                .role_name(&h.name)
                .policy_arn(policy_arn)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| (code(&e) == Some(NOT_FOUND), RemediationError::aws(api, e))),
        };
        match result {
            Ok(()) | Err((true, _)) => Ok(()),
            Err((false, e)) => Err(e),
        }
    }

    /// Attach the policy again (IAM takes an attachment that exists already as done).
    pub async fn attach(&self, h: &Holder, policy_arn: &str) -> Result<(), RemediationError> {
        let api = attachment_api(h.kind, true);
        match h.kind {
            PrincipalKind::User => self
                .client
                .attach_user_policy()
                .user_name(&h.name)
                .policy_arn(policy_arn)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| RemediationError::aws(api, e)),
            PrincipalKind::Group => self
                .client
                .attach_group_policy()
                .group_name(&h.name)
                .policy_arn(policy_arn)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| RemediationError::aws(api, e)),
            PrincipalKind::Role => self
                .client
                .attach_role_policy()
                .role_name(&h.name)
                .policy_arn(policy_arn)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| RemediationError::aws(api, e)),
        }
    }
}
