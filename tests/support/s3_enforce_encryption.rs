//! s3-enforce-encryption as a [`Subject`] of the common cases, and the buckets its tests make.
//! The common cases run on the TLS control (S3.5): a bucket with no policy needs the fix, one
//! whose policy already denies plain HTTP is compliant. The encryption control has its own tests
//! (tests/catalog/s3_enforce_encryption.rs).
//!
//! moto 5.2 makes a bucket with no default encryption (AWS has encrypted every new bucket with
//! SSE-S3 since January 2023, so there `GetBucketEncryption` always answers), keeps a bucket
//! policy's text exactly as put, and does not check that it is JSON: the tests make buckets in
//! the states AWS can have and never rely on the last.

use crate::common::Subject;
use crate::{sample, unique, Harness, SAMPLE_BUCKET};
use s3_enforce_encryption::{S3EnforceEncryption, SPEC};
use serde_json::{json, Value};

pub const S3_4: &str = "s3-enforce-encryption/securityhub-s3.4-imported.json";
pub const S3_5: &str = "s3-enforce-encryption/securityhub-s3.5-imported.json";

/// An S3 client for the emulator that logs nothing (the test's own view).
pub fn observer(h: &Harness) -> aws_sdk_s3::Client {
    h.observer_client()
}

/// The function under test, its S3 calls logged in `h.calls`.
pub fn function(h: &Harness) -> S3EnforceEncryption {
    S3EnforceEncryption::from_client(aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&h.sdk)
            .force_path_style(true)
            .interceptor(h.calls.clone())
            .build(),
    ))
}

/// A committed sample naming `bucket`, its finding ids (and a Config event's result time) made
/// unique by `tag`, so that two tests never share a record.
pub fn event_for(path: &str, bucket: &str, tag: &str) -> Value {
    let mut v: Value =
        serde_json::from_str(&sample(path).replace(SAMPLE_BUCKET, bucket)).expect("sample is JSON");
    if let Some(findings) = v
        .pointer_mut("/detail/findings")
        .and_then(Value::as_array_mut)
    {
        for f in findings {
            let id = f["Id"].as_str().unwrap_or_default().to_string();
            f["Id"] = json!(format!("{id}-{bucket}{tag}"));
        }
    }
    v
}

/// A bucket with the given policy text (none: no policy), tagged as given; its name.
pub async fn bucket_with_policy(
    h: &Harness,
    policy: Option<&str>,
    tags: &[(&str, &str)],
) -> String {
    let name = h.bucket(None, tags).await;
    if let Some(text) = policy {
        observer(h)
            .put_bucket_policy()
            .bucket(&name)
            .policy(text)
            .send()
            .await
            .expect("put the bucket policy");
    }
    name
}

/// The bucket's policy text as S3 holds it (`None`: no policy).
pub async fn policy_text(h: &Harness, bucket: &str) -> Option<String> {
    match observer(h).get_bucket_policy().bucket(bucket).send().await {
        Ok(out) => out.policy().map(str::to_string),
        Err(e) => {
            let code = aws_sdk_s3::error::ProvideErrorMetadata::code(&e).map(str::to_string);
            assert_eq!(code.as_deref(), Some("NoSuchBucketPolicy"), "{e:?}");
            None
        }
    }
}

/// The bucket's default encryption rules as (algorithm, key, bucket key); empty: none.
pub async fn encryption(h: &Harness, bucket: &str) -> Vec<(String, Option<String>, Option<bool>)> {
    match observer(h)
        .get_bucket_encryption()
        .bucket(bucket)
        .send()
        .await
    {
        Ok(out) => out
            .server_side_encryption_configuration()
            .map(|c| {
                c.rules()
                    .iter()
                    .filter_map(|r| {
                        r.apply_server_side_encryption_by_default().map(|d| {
                            (
                                d.sse_algorithm().as_str().to_string(),
                                d.kms_master_key_id().map(str::to_string),
                                r.bucket_key_enabled(),
                            )
                        })
                    })
                    .collect()
            })
            .unwrap_or_default(),
        Err(e) => {
            let code = aws_sdk_s3::error::ProvideErrorMetadata::code(&e).map(str::to_string);
            assert_eq!(
                code.as_deref(),
                Some("ServerSideEncryptionConfigurationNotFoundError"),
                "{e:?}"
            );
            Vec::new()
        }
    }
}

/// Whether the bucket's policy denies plain HTTP to the bucket and all its objects.
pub async fn denies_plain_http(h: &Harness, bucket: &str) -> bool {
    policy_text(h, bucket)
        .await
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .is_some_and(|doc| {
            s3_enforce_encryption::tls::denies_insecure_transport(
                &doc,
                &format!("arn:aws:s3:::{bucket}"),
            )
        })
}

impl Subject for S3EnforceEncryption {
    const SPEC: &'static reflex_shared::remediation::Spec = &SPEC;

    fn new(h: &Harness) -> Self {
        function(h)
    }

    async fn noncompliant(h: &Harness, tags: &[(&str, &str)]) -> String {
        bucket_with_policy(h, None, tags).await
    }

    /// Someone else's deny of plain HTTP, written their way: two statements, the principal as
    /// `{"AWS": "*"}`, a boolean `false`.
    async fn compliant(h: &Harness) -> String {
        let name = unique("reflex-it");
        let b = format!("arn:aws:s3:::{name}");
        let doc = json!({
            "Version": "2012-10-17",
            "Statement": [
                {"Sid": "Bucket", "Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "s3:*",
                 "Resource": b, "Condition": {"Bool": {"aws:SecureTransport": false}}},
                {"Sid": "Objects", "Effect": "Deny", "Principal": "*", "Action": ["s3:*"],
                 "Resource": format!("{b}/*"), "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
            ]
        });
        observer(h)
            .create_bucket()
            .bucket(&name)
            .send()
            .await
            .expect("create bucket");
        observer(h)
            .put_bucket_policy()
            .bucket(&name)
            .policy(doc.to_string())
            .send()
            .await
            .expect("put the policy");
        name
    }

    fn event(id: &str) -> Value {
        event_for(S3_5, id, "")
    }

    fn recurrence(id: &str) -> Value {
        let mut e = Self::event(id);
        e["detail"]["findings"][0]["UpdatedAt"] = json!("2026-12-01T00:00:00.000Z");
        e
    }

    async fn arn(_h: &Harness, id: &str) -> String {
        format!("arn:aws:s3:::{id}")
    }

    async fn fixed(h: &Harness, id: &str) -> bool {
        denies_plain_http(h, id).await
    }
}
