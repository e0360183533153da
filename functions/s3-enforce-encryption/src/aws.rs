//! The S3 calls, each small: read and set the bucket's default encryption and its policy, its
//! tags and its creation date. Every call names this account as the expected bucket owner.

use crate::state::{BucketPolicy, Document, Encryption, EncryptionRule};
use aws_sdk_s3::types::{
    BlockedEncryptionTypes, EncryptionType, ServerSideEncryption, ServerSideEncryptionByDefault,
    ServerSideEncryptionConfiguration, ServerSideEncryptionRule,
};
use reflex_shared::aws_error::code;
use reflex_shared::remediation::{RemediationError, ResourceRef, Tags};

/// The record's API names: `s3:` and the operation, as the call log names it.
pub const PUT_ENCRYPTION: &str = "s3:PutBucketEncryption";
pub const DELETE_ENCRYPTION: &str = "s3:DeleteBucketEncryption";
pub const PUT_POLICY: &str = "s3:PutBucketPolicy";
pub const DELETE_POLICY: &str = "s3:DeleteBucketPolicy";

const NO_SUCH_BUCKET: &str = "NoSuchBucket";

/// The bucket was deleted since the finding: nothing to fix.
fn gone(bucket: &ResourceRef) -> RemediationError {
    RemediationError::Gone(format!("bucket {} no longer exists", bucket.id))
}

/// An SDK error as the remediation's: a bucket gone is `Gone`, anything else names its API.
fn failed<E>(
    api: &'static str,
    bucket: &ResourceRef,
    e: aws_smithy_runtime_api::client::result::SdkError<E, aws_smithy_runtime_api::http::Response>,
) -> RemediationError
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
{
    if code(&e) == Some(NO_SUCH_BUCKET) {
        gone(bucket)
    } else {
        RemediationError::aws(api, e)
    }
}

/// The S3 adapter.
#[derive(Debug, Clone)]
pub struct S3 {
    client: aws_sdk_s3::Client,
}

impl S3 {
    pub fn new(client: aws_sdk_s3::Client) -> Self {
        S3 { client }
    }

    pub async fn encryption(&self, b: &ResourceRef) -> Result<Encryption, RemediationError> {
        match self
            .client
            .get_bucket_encryption()
            .bucket(&b.id)
            .expected_bucket_owner(&b.account)
            .send()
            .await
        {
            Ok(out) => Ok(Encryption::Rules {
                rules: out
                    .server_side_encryption_configuration()
                    .map(|c| c.rules().iter().map(rule_from_sdk).collect())
                    .unwrap_or_default(),
            }),
            Err(e) if code(&e) == Some("ServerSideEncryptionConfigurationNotFoundError") => {
                Ok(Encryption::None)
            }
            Err(e) => Err(failed("s3:GetBucketEncryption", b, e)),
        }
    }

    pub async fn policy(&self, b: &ResourceRef) -> Result<BucketPolicy, RemediationError> {
        match self
            .client
            .get_bucket_policy()
            .bucket(&b.id)
            .expected_bucket_owner(&b.account)
            .send()
            .await
        {
            Ok(out) => Ok(match out.policy() {
                Some(text) => BucketPolicy::Document {
                    document: Document::from_text(text),
                },
                None => BucketPolicy::None,
            }),
            Err(e) if code(&e) == Some("NoSuchBucketPolicy") => Ok(BucketPolicy::None),
            Err(e) => Err(failed("s3:GetBucketPolicy", b, e)),
        }
    }

    pub async fn put_encryption(
        &self,
        b: &ResourceRef,
        rules: &[EncryptionRule],
    ) -> Result<(), RemediationError> {
        let config = ServerSideEncryptionConfiguration::builder()
            .set_rules(Some(
                rules.iter().map(rule_to_sdk).collect::<Result<_, _>>()?,
            ))
            .build()
            .map_err(|e| RemediationError::Invalid(e.to_string()))?;
        self.client
            .put_bucket_encryption()
            .bucket(&b.id)
            .expected_bucket_owner(&b.account)
            .server_side_encryption_configuration(config)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| failed(PUT_ENCRYPTION, b, e))
    }

    pub async fn delete_encryption(&self, b: &ResourceRef) -> Result<(), RemediationError> {
        self.client
            .delete_bucket_encryption()
            .bucket(&b.id)
            .expected_bucket_owner(&b.account)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| failed(DELETE_ENCRYPTION, b, e))
    }

    /// The document's own text, as recorded: a restore puts back exactly what was there.
    pub async fn put_policy(
        &self,
        b: &ResourceRef,
        document: &Document,
    ) -> Result<(), RemediationError> {
        self.client
            .put_bucket_policy()
            .bucket(&b.id)
            .expected_bucket_owner(&b.account)
            .policy(&document.text)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| failed(PUT_POLICY, b, e))
    }

    pub async fn delete_policy(&self, b: &ResourceRef) -> Result<(), RemediationError> {
        self.client
            .delete_bucket_policy()
            .bucket(&b.id)
            .expected_bucket_owner(&b.account)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| failed(DELETE_POLICY, b, e))
    }

    pub async fn tags(&self, b: &ResourceRef) -> Result<Tags, RemediationError> {
        match self
            .client
            .get_bucket_tagging()
            .bucket(&b.id)
            .expected_bucket_owner(&b.account)
            .send()
            .await
        {
            Ok(out) => Ok(out
                .tag_set()
                .iter()
                .map(|t| (t.key().to_string(), t.value().to_string()))
                .collect()),
            Err(e) if code(&e) == Some("NoSuchTagSet") => Ok(Tags::new()),
            Err(e) => Err(failed("s3:GetBucketTagging", b, e)),
        }
    }

    /// The bucket's creation date (ListBuckets, narrowed to the name by its prefix): a bucket
    /// deleted and created again under the same name is another bucket.
    pub async fn creation_date(&self, b: &ResourceRef) -> Result<Option<String>, RemediationError> {
        let out = self
            .client
            .list_buckets()
            .prefix(&b.id)
            .send()
            .await
            .map_err(|e| RemediationError::aws("s3:ListBuckets", e))?;
        let bucket = out
            .buckets()
            .iter()
            .find(|x| x.name() == Some(b.id.as_str()))
            .ok_or_else(|| gone(b))?;
        Ok(bucket.creation_date().map(|d| d.to_string()))
    }
}

fn rule_from_sdk(r: &ServerSideEncryptionRule) -> EncryptionRule {
    let default = r.apply_server_side_encryption_by_default();
    EncryptionRule {
        sse_algorithm: default.map(|d| d.sse_algorithm().as_str().to_string()),
        kms_master_key_id: default.and_then(|d| d.kms_master_key_id().map(str::to_string)),
        bucket_key_enabled: r.bucket_key_enabled(),
        blocked_encryption_types: r.blocked_encryption_types().map(|b| {
            b.encryption_type()
                .iter()
                .map(|t| t.as_str().to_string())
                .collect()
        }),
    }
}

fn rule_to_sdk(r: &EncryptionRule) -> Result<ServerSideEncryptionRule, RemediationError> {
    let default = match &r.sse_algorithm {
        Some(algorithm) => Some(
            ServerSideEncryptionByDefault::builder()
                .sse_algorithm(ServerSideEncryption::from(algorithm.as_str()))
                .set_kms_master_key_id(r.kms_master_key_id.clone())
                .build()
                .map_err(|e| RemediationError::Invalid(e.to_string()))?,
        ),
        None => None,
    };
    Ok(ServerSideEncryptionRule::builder()
        .set_apply_server_side_encryption_by_default(default)
        .set_bucket_key_enabled(r.bucket_key_enabled)
        .set_blocked_encryption_types(r.blocked_encryption_types.as_ref().map(|types| {
            BlockedEncryptionTypes::builder()
                .set_encryption_type(Some(
                    types
                        .iter()
                        .map(|t| EncryptionType::from(t.as_str()))
                        .collect(),
                ))
                .build()
        }))
        .build())
}
