//! s3-enforce-encryption: what an S3 encryption control asks of the one bucket its finding
//! names, and nothing more. Low risk (enforce by default).
//!
//! - S3.4 and the managed Config rule S3_BUCKET_SERVER_SIDE_ENCRYPTION_ENABLED: default
//!   encryption, SSE-S3, or SSE-KMS with the policy's `kms_key_id`. A bucket that already
//!   encrypts by default, with any algorithm or key, is compliant.
//! - S3.5 and the managed Config rule S3_BUCKET_SSL_REQUESTS_ONLY: a statement denying every
//!   request not made over TLS, to the bucket and its objects, merged into the bucket policy.
//!   The policy's own statements stay exactly as they are; a policy that denies plain HTTP to
//!   the bucket and all its objects already is compliant, so a second run adds nothing.
//! - Recorded: the previous encryption configuration and the previous policy document (its
//!   text, byte for byte), or their absence. Undone by restoring them, or deleting what was
//!   not there.

pub mod aws;
pub mod params;
mod remediation;
pub mod state;
pub mod target;
pub mod tls;

pub use aws::S3;
pub use params::Params;
pub use state::{BucketPolicy, BucketState, BucketStep, Document, Encryption, EncryptionRule, Fix};
pub use target::BucketTarget;

use reflex_shared::policy::Risk;
use reflex_shared::remediation::Spec;
use reflex_shared::setup::s3_path_style;
use reflex_shared::trigger::Trigger;

pub static SPEC: Spec = Spec {
    name: "s3-enforce-encryption",
    risk: Risk::Low,
    triggers: &[
        Trigger::Control("S3.4"),
        Trigger::Control("S3.5"),
        // AWS-managed Config rules, by identifier, whatever name they are deployed under.
        Trigger::ConfigRule("S3_BUCKET_SERVER_SIDE_ENCRYPTION_ENABLED"),
        Trigger::ConfigRule("S3_BUCKET_SSL_REQUESTS_ONLY"),
    ],
    iam_actions: &[
        // GetBucketEncryption
        "s3:GetEncryptionConfiguration",
        // PutBucketEncryption, and DeleteBucketEncryption (undo)
        "s3:PutEncryptionConfiguration",
        // GetBucketPolicy
        "s3:GetBucketPolicy",
        // PutBucketPolicy (the merged document; the previous one, to undo)
        "s3:PutBucketPolicy",
        // DeleteBucketPolicy (undo where there was none)
        "s3:DeleteBucketPolicy",
        // GetBucketTagging (exemption tag)
        "s3:GetBucketTagging",
        // ListBuckets (the bucket's creation date: its identity)
        "s3:ListAllMyBuckets",
    ],
    reversible: true,
    config_resource_types: &["AWS::S3::Bucket"],
    parameters: Some(params::PARAMETERS),
    schedule: None,
    completion_events: &[],
    completion_timeout_seconds: 0,
    confirm_at_source: false,
};

/// The remediation, with its S3 client.
pub struct S3EnforceEncryption {
    s3: S3,
}

impl S3EnforceEncryption {
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        let config = aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(s3_path_style(sdk))
            .build();
        S3EnforceEncryption::from_client(aws_sdk_s3::Client::from_conf(config))
    }

    pub fn from_client(client: aws_sdk_s3::Client) -> Self {
        S3EnforceEncryption {
            s3: S3::new(client),
        }
    }

    /// The S3 adapter (tests and the demo read the bucket through it).
    pub fn s3(&self) -> &S3 {
        &self.s3
    }
}
