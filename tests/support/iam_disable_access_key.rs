//! iam-disable-access-key's world: IAM users with access keys in the emulator (unique names,
//! so parallel tests never share one), its committed samples re-aimed at them, and a stand-in
//! for the one thing moto cannot do here: an old key.
//!
//! moto stamps every key with the moment it was made and never used (unless the key itself
//! signs a request), and offers no way to set either date; AWS's keys are months old. So the
//! IAM.3 and IAM.8 tests put [`KeyDates`] on the function's client: an interceptor that moves
//! the `CreateDate` of `ListAccessKeys` and the `LastUsedDate` of `GetAccessKeyLastUsed` into
//! the past for the keys it is told about, after moto answered. Every call still goes to moto;
//! only those two dates are rewritten.

use crate::common::Subject;
use crate::{sample, Harness, ACCOUNT};
use aws_sdk_iam::operation::get_access_key_last_used::{
    GetAccessKeyLastUsedInput, GetAccessKeyLastUsedOutput,
};
use aws_sdk_iam::operation::list_access_keys::ListAccessKeysOutput;
use aws_sdk_iam::primitives::DateTime as AwsTime;
use aws_sdk_iam::types::{AccessKeyLastUsed, AccessKeyMetadata, Tag};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextRef, FinalizerInterceptorContextMut,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};
use iam_disable_access_key::IamDisableAccessKey;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// The samples' key, user and principal id; tests swap in their own.
pub const SAMPLE_KEY: &str = "AKIAZ3EXAMPLEKEY0042";
pub const SAMPLE_PRINCIPAL: &str = "AIDAZ3EXAMPLEUSER0042";
pub const SAMPLE_USER: &str = "build-bot";
pub const SAMPLE_USER_ARN: &str = "arn:aws:iam::123456789012:user/build-bot";

pub const MALICIOUS_IP: &str = "iam-disable-access-key/guardduty-malicious-ip-caller.json";
pub const TOR: &str = "iam-disable-access-key/guardduty-tor-ip-caller.json";
pub const EXFILTRATION: &str =
    "iam-disable-access-key/guardduty-exfiltration-anomalous-behavior.json";
pub const ROLE_SESSION: &str =
    "iam-disable-access-key/guardduty-instance-credential-exfiltration-role-session.json";
pub const SH_MALICIOUS_IP: &str =
    "iam-disable-access-key/securityhub-guardduty-malicious-ip-caller.json";
pub const IAM3: &str = "iam-disable-access-key/securityhub-iam.3-access-key-rotation.json";
pub const IAM8: &str = "iam-disable-access-key/securityhub-iam.8-unused-credentials.json";
pub const IAM8_CUSTOM_ACTION: &str =
    "iam-disable-access-key/securityhub-custom-action-remediate-iam.8.json";

/// An IAM user made in the emulator, with its keys (in the order made).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub id: String,
    pub arn: String,
    pub keys: Vec<String>,
}

/// An IAM client whose every call is logged into the harness's `calls`, with more
/// interceptors as given: give it to the function under test.
pub fn logged_iam(h: &Harness, dates: Option<&KeyDates>) -> aws_sdk_iam::Client {
    let mut conf = aws_sdk_iam::config::Builder::from(&h.sdk).interceptor(h.calls.clone());
    if let Some(d) = dates {
        conf = conf.interceptor(d.clone());
    }
    aws_sdk_iam::Client::from_conf(conf.build())
}

/// The test's own view of IAM (not logged).
pub fn observer(h: &Harness) -> aws_sdk_iam::Client {
    aws_sdk_iam::Client::new(&h.sdk)
}

/// A user of its own under `path`, tagged as given, with `keys` access keys.
pub async fn user(h: &Harness, path: &str, keys: usize, tags: &[(&str, &str)]) -> User {
    let iam = observer(h);
    let name = crate::unique("reflex-it-user");
    let mut create = iam.create_user().user_name(&name).path(path);
    for (k, v) in tags {
        create = create.tags(Tag::builder().key(*k).value(*v).build().unwrap());
    }
    let made = create.send().await.expect("create the user");
    let u = made.user().expect("the user");
    let mut user = User {
        name: name.clone(),
        id: u.user_id().to_string(),
        arn: u.arn().to_string(),
        keys: Vec::new(),
    };
    for _ in 0..keys {
        let key = iam
            .create_access_key()
            .user_name(&name)
            .send()
            .await
            .expect("create an access key");
        user.keys
            .push(key.access_key().unwrap().access_key_id().to_string());
    }
    user
}

/// Set a key's status behind the function's back (its owner did).
pub async fn set_status(h: &Harness, user: &User, key: &str, active: bool) {
    use aws_sdk_iam::types::StatusType;
    observer(h)
        .update_access_key()
        .user_name(&user.name)
        .access_key_id(key)
        .status(if active {
            StatusType::Active
        } else {
            StatusType::Inactive
        })
        .send()
        .await
        .expect("set the key's status");
}

/// Every key of the user and whether it is active, read through the emulator.
pub async fn statuses(h: &Harness, user_name: &str) -> BTreeMap<String, bool> {
    observer(h)
        .list_access_keys()
        .user_name(user_name)
        .send()
        .await
        .expect("list the user's keys")
        .access_key_metadata()
        .iter()
        .map(|k| {
            (
                k.access_key_id().unwrap().to_string(),
                k.status() == Some(&aws_sdk_iam::types::StatusType::Active),
            )
        })
        .collect()
}

/// A committed sample about `user`'s `key` (the GuardDuty ones) or `user` (the controls),
/// with its finding ids made unique by `tag`.
pub fn event_for(path: &str, user: &User, key: &str, tag: &str) -> Value {
    let text = sample(path)
        .replace(SAMPLE_USER_ARN, &user.arn)
        .replace(SAMPLE_KEY, key)
        .replace(SAMPLE_PRINCIPAL, &user.id)
        .replace(SAMPLE_USER, &user.name);
    let mut v: Value = serde_json::from_str(&text).expect("sample is JSON");
    unique_ids(&mut v, tag);
    v
}

/// The finding ids of an event made unique by `tag`: a GuardDuty finding's id and ARN (their
/// tails agree), an ASFF finding's `Id`.
pub fn unique_ids(v: &mut Value, tag: &str) {
    if let Some(findings) = v
        .pointer_mut("/detail/findings")
        .and_then(Value::as_array_mut)
    {
        for f in findings {
            let id = f["Id"].as_str().unwrap_or_default().to_string();
            f["Id"] = json!(format!("{id}{tag}"));
        }
        return;
    }
    for field in ["id", "arn"] {
        if let Some(s) = v
            .pointer_mut(&format!("/detail/{field}"))
            .filter(|s| s.is_string())
        {
            *s = json!(format!("{}{tag}", s.as_str().unwrap_or_default()));
        }
    }
}

/// How far in the past a key's dates are to read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Dates {
    pub created_days_ago: Option<i64>,
    pub used_days_ago: Option<i64>,
}

/// A key's dates as IAM is to answer them: fixed when set, as a real key's are.
#[derive(Debug, Clone, Copy)]
struct Fixed {
    created: Option<i64>,
    used: Option<i64>,
}

/// The interceptor described at the top of this file: keys' creation and last-use dates moved
/// into the past, as an account's real keys have them (moto's are always brand new).
#[derive(Debug, Clone, Default)]
pub struct KeyDates(Arc<Mutex<BTreeMap<String, Fixed>>>);

impl KeyDates {
    /// From now on, IAM answers `key`'s dates as these many days before this moment.
    pub fn set(&self, key: &str, dates: Dates) {
        let at = |days: i64| (chrono::Utc::now() - chrono::Duration::days(days)).timestamp();
        let fixed = Fixed {
            created: dates.created_days_ago.map(at),
            used: dates.used_days_ago.map(at),
        };
        self.0.lock().unwrap().insert(key.to_string(), fixed);
    }

    fn of(&self, key: &str) -> Option<Fixed> {
        self.0.lock().unwrap().get(key).copied()
    }
}

/// The key a `GetAccessKeyLastUsed` call asks about, kept in the call's own config bag between
/// its input (read before serialization) and its output (rewritten at its end).
#[derive(Debug, Clone)]
struct AskedKey(String);

impl Storable for AskedKey {
    type Storer = StoreReplace<Self>;
}

impl Intercept for KeyDates {
    fn name(&self) -> &'static str {
        "KeyDates"
    }

    fn read_before_serialization(
        &self,
        ctx: &BeforeSerializationInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(input) = ctx.input().downcast_ref::<GetAccessKeyLastUsedInput>() {
            if let Some(key) = input.access_key_id() {
                cfg.interceptor_state().store_put(AskedKey(key.to_string()));
            }
        }
        Ok(())
    }

    fn modify_before_attempt_completion(
        &self,
        ctx: &mut FinalizerInterceptorContextMut<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let asked = cfg.load::<AskedKey>().map(|k| k.0.clone());
        let Some(Ok(output)) = ctx.output_or_error_mut() else {
            return Ok(());
        };
        if let Some(out) = output.downcast_mut::<ListAccessKeysOutput>() {
            let keys: Vec<AccessKeyMetadata> = out
                .access_key_metadata()
                .iter()
                .map(|k| {
                    let created = k
                        .access_key_id()
                        .and_then(|id| self.of(id))
                        .and_then(|d| d.created);
                    match created {
                        Some(secs) => AccessKeyMetadata::builder()
                            .set_user_name(k.user_name().map(str::to_string))
                            .set_access_key_id(k.access_key_id().map(str::to_string))
                            .set_status(k.status().cloned())
                            .create_date(AwsTime::from_secs(secs))
                            .build(),
                        None => k.clone(),
                    }
                })
                .collect();
            *out = ListAccessKeysOutput::builder()
                .set_access_key_metadata(Some(keys))
                .is_truncated(out.is_truncated())
                .set_marker(out.marker().map(str::to_string))
                .build()?;
        } else if let Some(out) = output.downcast_mut::<GetAccessKeyLastUsedOutput>() {
            let used = asked.and_then(|k| self.of(&k)).and_then(|d| d.used);
            if let Some(secs) = used {
                *out = GetAccessKeyLastUsedOutput::builder()
                    .set_user_name(out.user_name().map(str::to_string))
                    .access_key_last_used(
                        AccessKeyLastUsed::builder()
                            .last_used_date(AwsTime::from_secs(secs))
                            .service_name("s3")
                            .region("us-east-1")
                            .build()?,
                    )
                    .build();
            }
        }
        Ok(())
    }
}

/// The common cases' resource: a user (path `/`) with one key; its id is `name|key|user id`.
fn split(id: &str) -> (&str, &str, &str) {
    let mut parts = id.splitn(3, '|');
    (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    )
}

fn user_of(id: &str) -> (User, String) {
    let (name, key, user_id) = split(id);
    (
        User {
            name: name.into(),
            id: user_id.into(),
            arn: format!("arn:aws:iam::{ACCOUNT}:user/{name}"),
            keys: vec![key.into()],
        },
        key.to_string(),
    )
}

impl Subject for IamDisableAccessKey {
    const SPEC: &'static reflex_shared::remediation::Spec = &iam_disable_access_key::SPEC;

    fn new(h: &Harness) -> Self {
        IamDisableAccessKey::from_client(logged_iam(h, None))
    }

    async fn noncompliant(h: &Harness, tags: &[(&str, &str)]) -> String {
        let u = user(h, "/", 1, tags).await;
        format!("{}|{}|{}", u.name, u.keys[0], u.id)
    }

    /// The named key, set inactive by its owner already.
    async fn compliant(h: &Harness) -> String {
        let u = user(h, "/", 1, &[]).await;
        set_status(h, &u, &u.keys[0], false).await;
        format!("{}|{}|{}", u.name, u.keys[0], u.id)
    }

    fn event(id: &str) -> Value {
        let (u, key) = user_of(id);
        event_for(MALICIOUS_IP, &u, &key, &format!("-{key}"))
    }

    fn recurrence(id: &str) -> Value {
        let mut e = Self::event(id);
        e["detail"]["updatedAt"] = json!("2026-12-01T00:00:00.000Z");
        e
    }

    async fn arn(_h: &Harness, id: &str) -> String {
        user_of(id).0.arn
    }

    /// The named key is inactive.
    async fn fixed(h: &Harness, id: &str) -> bool {
        let (u, key) = user_of(id);
        !statuses(h, &u.name).await[&key]
    }
}
