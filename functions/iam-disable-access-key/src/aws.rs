//! The IAM calls, each small: who owns a key and when it was last used, a user by name, a
//! user's keys and tags, one key's status.

use crate::keys::{Key, KeyStatus};
use aws_sdk_iam::primitives::DateTime as AwsTime;
use aws_sdk_iam::types::StatusType;
use chrono::{DateTime, Utc};
use reflex_shared::aws_error::code;
use reflex_shared::remediation::{RemediationError, Tags};

pub const GET_ACCESS_KEY_LAST_USED: &str = "iam:GetAccessKeyLastUsed";
pub const GET_USER: &str = "iam:GetUser";
pub const LIST_ACCESS_KEYS: &str = "iam:ListAccessKeys";
pub const LIST_USER_TAGS: &str = "iam:ListUserTags";
pub const UPDATE_ACCESS_KEY: &str = "iam:UpdateAccessKey";

/// IAM's code for a user, key or policy that does not exist.
const NOT_FOUND: &str = "NoSuchEntity";

/// An IAM user as IAM answers for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    /// Its unique id (`AIDA…`).
    pub id: String,
    /// Its ARN, path included.
    pub arn: String,
}

/// `GetAccessKeyLastUsed`: the key's owner and its last use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastUsed {
    /// The IAM user who owns the key (none for a key IAM names no user for).
    pub user_name: Option<String>,
    /// `None`: never used.
    pub at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
pub struct Iam {
    client: aws_sdk_iam::Client,
}

fn time(t: &AwsTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}

impl Iam {
    pub fn new(client: aws_sdk_iam::Client) -> Self {
        Iam { client }
    }

    /// Who owns `access_key_id`, and when it was last used; gone if no such key exists.
    pub async fn last_used(&self, access_key_id: &str) -> Result<LastUsed, RemediationError> {
        match self
            .client
            .get_access_key_last_used()
            .access_key_id(access_key_id)
            .send()
            .await
        {
            Ok(out) => Ok(LastUsed {
                user_name: out
                    .user_name()
                    .filter(|u| !u.is_empty())
                    .map(str::to_string),
                at: out
                    .access_key_last_used()
                    .and_then(|l| l.last_used_date())
                    .and_then(time),
            }),
            Err(e) if code(&e) == Some(NOT_FOUND) => Err(RemediationError::Gone(format!(
                "access key {access_key_id} no longer exists"
            ))),
            Err(e) => Err(RemediationError::aws(GET_ACCESS_KEY_LAST_USED, e)),
        }
    }

    /// The user `name`; gone if there is none.
    pub async fn user(&self, name: &str) -> Result<User, RemediationError> {
        let out = match self.client.get_user().user_name(name).send().await {
            Ok(out) => out,
            Err(e) if code(&e) == Some(NOT_FOUND) => return Err(user_gone(name)),
            Err(e) => return Err(RemediationError::aws(GET_USER, e)),
        };
        let user = out.user().ok_or_else(|| user_gone(name))?;
        Ok(User {
            name: user.user_name().to_string(),
            id: user.user_id().to_string(),
            arn: user.arn().to_string(),
        })
    }

    /// Every access key of `user_name`, with its status and creation date (`last_used` adds
    /// when each active key was last used: an inactive key is no one's concern here).
    pub async fn keys(
        &self,
        user_name: &str,
        last_used: bool,
    ) -> Result<Vec<Key>, RemediationError> {
        let mut keys = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let out = match self
                .client
                .list_access_keys()
                .user_name(user_name)
                .set_marker(marker.clone())
                .send()
                .await
            {
                Ok(out) => out,
                Err(e) if code(&e) == Some(NOT_FOUND) => return Err(user_gone(user_name)),
                Err(e) => return Err(RemediationError::aws(LIST_ACCESS_KEYS, e)),
            };
            for k in out.access_key_metadata() {
                let Some(id) = k.access_key_id().filter(|id| !id.is_empty()) else {
                    continue;
                };
                let status = match k.status() {
                    Some(StatusType::Active) => KeyStatus::Active,
                    Some(StatusType::Inactive) => KeyStatus::Inactive,
                    // IAM has a third status for keys it expired itself; none can sign.
                    other => {
                        return Err(RemediationError::Invalid(format!(
                            "access key {id} of {user_name} has status {other:?}, which this \
                             function does not know"
                        )))
                    }
                };
                keys.push(Key {
                    access_key_id: id.to_string(),
                    status,
                    created_at: k.create_date().and_then(time),
                    last_used_at: None,
                });
            }
            match out.marker().filter(|_| out.is_truncated()) {
                Some(m) => marker = Some(m.to_string()),
                None => break,
            }
        }
        if last_used {
            for k in keys.iter_mut().filter(|k| k.status == KeyStatus::Active) {
                k.last_used_at = self.last_used(&k.access_key_id).await?.at;
            }
        }
        Ok(keys)
    }

    /// The user's tags.
    pub async fn tags(&self, user_name: &str) -> Result<Tags, RemediationError> {
        let mut tags = Tags::new();
        let mut marker: Option<String> = None;
        loop {
            let out = match self
                .client
                .list_user_tags()
                .user_name(user_name)
                .set_marker(marker.clone())
                .send()
                .await
            {
                Ok(out) => out,
                Err(e) if code(&e) == Some(NOT_FOUND) => return Err(user_gone(user_name)),
                Err(e) => return Err(RemediationError::aws(LIST_USER_TAGS, e)),
            };
            for t in out.tags() {
                tags.insert(t.key().to_string(), t.value().to_string());
            }
            match out.marker().filter(|_| out.is_truncated()) {
                Some(m) => marker = Some(m.to_string()),
                None => break,
            }
        }
        Ok(tags)
    }

    /// Set one key's status.
    pub async fn set_status(
        &self,
        user_name: &str,
        access_key_id: &str,
        status: KeyStatus,
    ) -> Result<(), RemediationError> {
        let status = match status {
            KeyStatus::Active => StatusType::Active,
            KeyStatus::Inactive => StatusType::Inactive,
        };
        match self
            .client
            .update_access_key()
            .user_name(user_name)
            .access_key_id(access_key_id)
            .status(status)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if code(&e) == Some(NOT_FOUND) => Err(RemediationError::Gone(format!(
                "access key {access_key_id} of {user_name} no longer exists"
            ))),
            Err(e) => Err(RemediationError::aws(UPDATE_ACCESS_KEY, e)),
        }
    }
}

fn user_gone(name: &str) -> RemediationError {
    RemediationError::Gone(format!("IAM user {name} no longer exists"))
}
