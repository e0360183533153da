//! iam-contain-principal as a [`Subject`] of the common cases, and the IAM world its tests make:
//! users and roles of their own (unique names in the emulator's one account), and the committed
//! samples rewritten to name them.
//!
//! moto facts this relies on, probed against the pinned moto: GetUser/GetRole return the ARN
//! with its path; inline user and role policies and login profiles are stored, and GetUserPolicy
//! returns the document URL-encoded, as AWS does; a missing policy, login profile or principal
//! answers `NoSuchEntity`. Unlike AWS, moto's user ids are random lowercase text, not `AIDA…`
//! (role ids are `AROA…`): the function compares the finding's id with IAM's, never its prefix.

use crate::common::Subject;
use crate::{sample, unique, Harness};
use iam_contain_principal::IamContainPrincipal;
use serde_json::{json, Value};

pub const LOGIN: &str = "iam-contain-principal/guardduty-console-login-success-b.json";
pub const ROLE_ESCALATION: &str =
    "iam-contain-principal/guardduty-privilege-escalation-assumed-role.json";
/// The principals the samples name.
pub const SAMPLE_USER: &str = "mallory";
pub const SAMPLE_USER_ID: &str = "AIDAZ3EXAMPLEUSER5678";
pub const SAMPLE_ROLE: &str = "app-server";
pub const SAMPLE_ROLE_ID: &str = "AROAZ3EXAMPLEROLE1234";
/// Where the common cases' users live: a path, so that ARNs with paths are what is matched.
pub const PATH: &str = "/staff/";

/// A user or role made for a test.
#[derive(Debug, Clone)]
pub struct Made {
    pub name: String,
    pub unique_id: String,
    pub arn: String,
}

/// The test's own view of IAM (not logged).
pub fn iam(h: &Harness) -> aws_sdk_iam::Client {
    aws_sdk_iam::Client::new(&h.sdk)
}

/// The function with its IAM client logging into `h.calls`.
pub fn function(h: &Harness) -> IamContainPrincipal {
    IamContainPrincipal::from_client(aws_sdk_iam::Client::from_conf(
        aws_sdk_iam::config::Builder::from(&h.sdk)
            .interceptor(h.calls.clone())
            .build(),
    ))
}

/// A user under `path`, tagged as given, with a console password when `console` says so.
pub async fn user(h: &Harness, path: &str, console: bool, tags: &[(&str, &str)]) -> Made {
    let iam = iam(h);
    let name = unique("mallory");
    let mut create = iam.create_user().user_name(&name).path(path);
    for (k, v) in tags {
        create = create.tags(
            aws_sdk_iam::types::Tag::builder()
                .key(*k)
                .value(*v)
                .build()
                .unwrap(),
        );
    }
    let user = create.send().await.expect("create a user");
    let user = user.user().unwrap();
    if console {
        iam.create_login_profile()
            .user_name(&name)
            .password("Correct-Horse-9-Battery")
            .send()
            .await
            .expect("a console password");
    }
    Made {
        name,
        unique_id: user.user_id().to_string(),
        arn: user.arn().to_string(),
    }
}

/// A role under `path`.
pub async fn role(h: &Harness, path: &str) -> Made {
    let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]});
    let name = unique("app-server");
    let role = iam(h)
        .create_role()
        .role_name(&name)
        .path(path)
        .assume_role_policy_document(trust.to_string())
        .send()
        .await
        .expect("create a role");
    let role = role.role().unwrap();
    Made {
        name,
        unique_id: role.role_id().to_string(),
        arn: role.arn().to_string(),
    }
}

/// A committed sample naming `who` (a user sample: name and unique id; a role sample: the
/// role's name and id), with finding ids made unique by `tag`.
pub fn event_for(path: &str, who: &Made, tag: &str) -> Value {
    let text = sample(path)
        .replace(SAMPLE_USER_ID, &who.unique_id)
        .replace(SAMPLE_ROLE_ID, &who.unique_id)
        .replace(&format!("\"{SAMPLE_USER}\""), &format!("\"{}\"", who.name))
        .replace(&format!("\"{SAMPLE_ROLE}\""), &format!("\"{}\"", who.name));
    let mut v: Value = serde_json::from_str(&text).expect("sample is JSON");
    if let Some(findings) = v
        .pointer_mut("/detail/findings")
        .and_then(Value::as_array_mut)
    {
        for f in findings {
            let id = f["Id"].as_str().unwrap_or_default().to_string();
            f["Id"] = json!(format!("{id}{tag}"));
        }
    } else if let Some(id) = v.pointer("/detail/id").and_then(Value::as_str) {
        // The finding's ARN follows its id: that is where it is read back from.
        let id = format!("{id}{tag}");
        crate::set_guardduty_id(&mut v, &id);
    }
    v
}

/// The document of Reflex's revocation policy on a user or role, if it has one.
pub async fn revocation(h: &Harness, kind: &str, name: &str) -> Option<Value> {
    let iam = iam(h);
    let text = if kind == "role" {
        iam.get_role_policy()
            .role_name(name)
            .policy_name(iam_contain_principal::POLICY_NAME)
            .send()
            .await
            .ok()
            .map(|o| o.policy_document().to_string())
    } else {
        iam.get_user_policy()
            .user_name(name)
            .policy_name(iam_contain_principal::POLICY_NAME)
            .send()
            .await
            .ok()
            .map(|o| o.policy_document().to_string())
    };
    text.map(|t| iam_contain_principal::document::decode(&t).expect("a JSON document"))
}

/// The `aws:TokenIssueTime` cutoff of Reflex's policy on a user or role.
pub async fn cutoff(h: &Harness, kind: &str, name: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    revocation(h, kind, name)
        .await
        .as_ref()
        .and_then(iam_contain_principal::document::cutoff)
}

/// Whether the user still has a console password.
pub async fn console_login(h: &Harness, name: &str) -> bool {
    iam(h)
        .get_login_profile()
        .user_name(name)
        .send()
        .await
        .is_ok()
}

/// The common cases' resource id: `name|unique id`, so that `event` can name both.
fn split(id: &str) -> (&str, &str) {
    id.split_once('|').expect("name|unique id")
}

impl Subject for IamContainPrincipal {
    const SPEC: &'static reflex_shared::remediation::Spec = &iam_contain_principal::SPEC;

    fn new(h: &Harness) -> Self {
        function(h)
    }

    async fn noncompliant(h: &Harness, tags: &[(&str, &str)]) -> String {
        let u = user(h, PATH, true, tags).await;
        format!("{}|{}", u.name, u.unique_id)
    }

    /// Contained already: Reflex's policy with a cutoff after the sample's activity, and no
    /// console password.
    async fn compliant(h: &Harness) -> String {
        let u = user(h, PATH, false, &[]).await;
        let document = iam_contain_principal::document::document(chrono::Utc::now());
        iam(h)
            .put_user_policy()
            .user_name(&u.name)
            .policy_name(iam_contain_principal::POLICY_NAME)
            .policy_document(document.to_string())
            .send()
            .await
            .unwrap();
        format!("{}|{}", u.name, u.unique_id)
    }

    fn event(id: &str) -> Value {
        let (name, unique_id) = split(id);
        let who = Made {
            name: name.into(),
            unique_id: unique_id.into(),
            arn: String::new(),
        };
        event_for(LOGIN, &who, &format!("-{name}"))
    }

    fn recurrence(id: &str) -> Value {
        let mut e = Self::event(id);
        e["detail"]["updatedAt"] = json!("2026-11-22T08:00:00.000Z");
        e["detail"]["service"]["eventLastSeen"] = json!("2026-11-22T07:58:00.000Z");
        e
    }

    async fn arn(h: &Harness, id: &str) -> String {
        let (name, _) = split(id);
        iam(h)
            .get_user()
            .user_name(name)
            .send()
            .await
            .unwrap()
            .user()
            .unwrap()
            .arn()
            .to_string()
    }

    /// Contained: Reflex's revocation policy is on the user (the console password's deletion
    /// is not undone by a rollback, so it does not tell a fix from none).
    async fn fixed(h: &Harness, id: &str) -> bool {
        cutoff(h, "user", split(id).0).await.is_some()
    }
}
