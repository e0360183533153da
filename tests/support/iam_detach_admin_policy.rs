//! iam-detach-admin-policy's world: customer managed policies (full admin or not) and their
//! holders, made in the emulator under unique names, and its committed samples re-aimed at
//! them. moto's IAM keeps policy versions and their documents, lists a policy's holders
//! (ListEntitiesForPolicy) and attaches and detaches as AWS does; it returns a version's
//! document as plain JSON where AWS URL-encodes it (both are read: see the crate's document
//! tests). AWS managed policies (AdministratorAccess) exist in moto only when it starts with
//! MOTO_IAM_LOAD_MANAGED_POLICIES, which scripts/moto leaves off: the tests use customer
//! managed full-admin policies.

use crate::common::Subject;
use crate::iam_disable_access_key::{logged_iam, observer, unique_ids};
use crate::{sample, Harness};
use iam_detach_admin_policy::IamDetachAdminPolicy;
use reflex_shared::principal::PrincipalKind;
use serde_json::{json, Value};

pub const IAM1: &str = "iam-detach-admin-policy/securityhub-iam.1-full-admin-policy.json";
pub const IAM2: &str = "iam-detach-admin-policy/securityhub-iam.2-user-with-policies-attached.json";
pub const IAM1_CUSTOM_ACTION: &str =
    "iam-detach-admin-policy/securityhub-custom-action-remediate-iam.1.json";
pub const CONFIG: &str =
    "iam-detach-admin-policy/config-iam-policy-no-statements-with-admin-access.json";
/// The Config rule the Config sample names, and its managed-rule identifier.
pub const CONFIG_RULE: &str = "securityhub-iam-policy-no-statements-with-admin-access-9b3d5f7a";
pub const CONFIG_IDENTIFIER: &str = "IAM_POLICY_NO_STATEMENTS_WITH_ADMIN_ACCESS";

/// What the samples name; tests swap in their own.
pub const SAMPLE_POLICY_ARN: &str = "arn:aws:iam::123456789012:policy/ops/legacy-admin";
pub const SAMPLE_POLICY_ID: &str = "ANPAZ3EXAMPLEPOLICY42";
pub const SAMPLE_USER_ARN: &str = "arn:aws:iam::123456789012:user/deploy-bot";

pub const ADMIN: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;
pub const READ_ONLY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:Get*","s3:List*"],"Resource":"*"}]}"#;

/// A customer managed policy made in the emulator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub arn: String,
    pub id: String,
    pub name: String,
}

/// A user, group or role made in the emulator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub kind: PrincipalKind,
    pub name: String,
    pub arn: String,
    pub id: String,
}

/// A policy of its own under /ops/ with this document, tagged as given.
pub async fn policy(h: &Harness, document: &str, tags: &[(&str, &str)]) -> Policy {
    let name = crate::unique("reflex-it-policy");
    let mut create = observer(h)
        .create_policy()
        .policy_name(&name)
        .path("/ops/")
        .policy_document(document);
    for (k, v) in tags {
        create = create.tags(
            aws_sdk_iam::types::Tag::builder()
                .key(*k)
                .value(*v)
                .build()
                .unwrap(),
        );
    }
    let made = create.send().await.expect("create the policy");
    let p = made.policy().expect("the policy");
    Policy {
        arn: p.arn().unwrap().to_string(),
        id: p.policy_id().unwrap().to_string(),
        name,
    }
}

/// A user, group or role of its own under `path`, holding `policies`.
pub async fn principal(
    h: &Harness,
    kind: PrincipalKind,
    path: &str,
    policies: &[&Policy],
) -> Principal {
    let iam = observer(h);
    let name = crate::unique(&format!("reflex-it-{}", kind.as_str()));
    let (arn, id) = match kind {
        PrincipalKind::User => {
            let out = iam
                .create_user()
                .user_name(&name)
                .path(path)
                .send()
                .await
                .unwrap();
            let u = out.user().unwrap();
            (u.arn().to_string(), u.user_id().to_string())
        }
        PrincipalKind::Group => {
            let out = iam
                .create_group()
                .group_name(&name)
                .path(path)
                .send()
                .await
                .unwrap();
            let g = out.group().unwrap();
            (g.arn().to_string(), g.group_id().to_string())
        }
        PrincipalKind::Role => {
            let out = iam
                .create_role()
                .role_name(&name)
                .path(path)
                .assume_role_policy_document(r#"{"Version":"2012-10-17","Statement":[]}"#)
                .send()
                .await
                .unwrap();
            let r = out.role().unwrap();
            (r.arn().to_string(), r.role_id().to_string())
        }
    };
    let p = Principal {
        kind,
        name,
        arn,
        id,
    };
    for policy in policies {
        attach(h, &p, policy).await;
    }
    p
}

pub async fn attach(h: &Harness, p: &Principal, policy: &Policy) {
    let iam = observer(h);
    let result = match p.kind {
        PrincipalKind::User => iam
            .attach_user_policy()
            .user_name(&p.name)
            .policy_arn(&policy.arn)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| e.to_string()),
        PrincipalKind::Group => iam
            .attach_group_policy()
            .group_name(&p.name)
            .policy_arn(&policy.arn)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| e.to_string()),
        PrincipalKind::Role => iam
            .attach_role_policy()
            .role_name(&p.name)
            .policy_arn(&policy.arn)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| e.to_string()),
    };
    result.expect("attach the policy");
}

/// The names of every principal holding the policy, sorted (read through the emulator).
pub async fn holders(h: &Harness, policy_arn: &str) -> Vec<String> {
    let out = observer(h)
        .list_entities_for_policy()
        .policy_arn(policy_arn)
        .send()
        .await
        .expect("the policy's holders");
    let mut names: Vec<String> = out
        .policy_users()
        .iter()
        .filter_map(|u| u.user_name())
        .chain(out.policy_groups().iter().filter_map(|g| g.group_name()))
        .chain(out.policy_roles().iter().filter_map(|r| r.role_name()))
        .map(str::to_string)
        .collect();
    names.sort();
    names
}

/// The names of the policies attached to a user directly, sorted.
pub async fn attached_to_user(h: &Harness, user: &str) -> Vec<String> {
    let out = observer(h)
        .list_attached_user_policies()
        .user_name(user)
        .send()
        .await
        .expect("the user's policies");
    let mut names: Vec<String> = out
        .attached_policies()
        .iter()
        .filter_map(|p| p.policy_name().map(str::to_string))
        .collect();
    names.sort();
    names
}

/// A committed sample about `policy` (IAM.1, Config) or the user `user_arn` (IAM.2), its
/// finding ids made unique by `tag`.
pub fn event_for(path: &str, policy: Option<&Policy>, user_arn: Option<&str>, tag: &str) -> Value {
    let mut text = sample(path);
    if let Some(p) = policy {
        text = text
            .replace(SAMPLE_POLICY_ARN, &p.arn)
            .replace(SAMPLE_POLICY_ID, &p.id)
            .replace("legacy-admin", &p.name);
    }
    if let Some(arn) = user_arn {
        text = text.replace(SAMPLE_USER_ARN, arn);
    }
    let mut v: Value = serde_json::from_str(&text).expect("sample is JSON");
    unique_ids(&mut v, tag);
    v
}

/// The common cases' resource: a full-admin policy held by one user; its id is
/// `policy ARN|policy id`.
fn split(id: &str) -> (&str, &str) {
    id.split_once('|').expect("arn|id")
}

impl Subject for IamDetachAdminPolicy {
    const SPEC: &'static reflex_shared::remediation::Spec = &iam_detach_admin_policy::SPEC;

    fn new(h: &Harness) -> Self {
        IamDetachAdminPolicy::from_client(logged_iam(h, None))
    }

    async fn noncompliant(h: &Harness, tags: &[(&str, &str)]) -> String {
        let p = policy(h, ADMIN, tags).await;
        principal(h, PrincipalKind::User, "/", &[&p]).await;
        format!("{}|{}", p.arn, p.id)
    }

    /// A full-admin policy nobody holds: nothing to detach (the policy itself is named as left
    /// as it is).
    async fn compliant(h: &Harness) -> String {
        let p = policy(h, ADMIN, &[]).await;
        format!("{}|{}", p.arn, p.id)
    }

    fn event(id: &str) -> Value {
        let (arn, policy_id) = split(id);
        let name = arn.rsplit('/').next().unwrap().to_string();
        let p = Policy {
            arn: arn.to_string(),
            id: policy_id.to_string(),
            name: name.clone(),
        };
        event_for(IAM1, Some(&p), None, &format!("-{name}"))
    }

    fn recurrence(id: &str) -> Value {
        let mut e = Self::event(id);
        e["detail"]["findings"][0]["UpdatedAt"] = json!("2026-12-01T00:00:00.000Z");
        e
    }

    async fn arn(_h: &Harness, id: &str) -> String {
        split(id).0.to_string()
    }

    /// Nobody holds the policy.
    async fn fixed(h: &Harness, id: &str) -> bool {
        holders(h, split(id).0).await.is_empty()
    }
}
