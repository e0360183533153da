//! Each function as a [`Subject`] of the common cases: how to make its resource, name it in a
//! finding, and read whether it is fixed. (Here, in the support crate that owns the trait, so
//! each function's test file only says `common_cases!(ItsType);`.)
//!
//! s3-block-public-access is reversible and has an already-compliant state (all four settings
//! on): it opts out of no case.

use crate::common::Subject;
use crate::{sample_for, Harness, ALL_OFF};
use s3_block_public_access::{BlockConfig, S3BlockPublicAccess};
use serde_json::{json, Value};

const S3_8: &str = "s3-block-public-access/securityhub-s3.8-imported.json";

impl Subject for S3BlockPublicAccess {
    const SPEC: &'static reflex_shared::remediation::Spec = &s3_block_public_access::SPEC;

    fn new(h: &Harness) -> Self {
        S3BlockPublicAccess::from_client(aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&h.sdk)
                .force_path_style(true)
                .interceptor(h.calls.clone())
                .build(),
        ))
    }

    async fn noncompliant(h: &Harness, tags: &[(&str, &str)]) -> String {
        h.bucket(Some(ALL_OFF), tags).await
    }

    async fn compliant(h: &Harness) -> String {
        h.bucket(Some(BlockConfig::ALL_ON), &[]).await
    }

    fn event(id: &str) -> Value {
        sample_for(S3_8, id)
    }

    fn recurrence(id: &str) -> Value {
        let mut e = sample_for(S3_8, id);
        e["detail"]["findings"][0]["UpdatedAt"] = json!("2026-12-01T00:00:00.000Z");
        e
    }

    async fn arn(_h: &Harness, id: &str) -> String {
        format!("arn:aws:s3:::{id}")
    }

    async fn fixed(h: &Harness, id: &str) -> bool {
        h.pab(id).await == Some(BlockConfig::ALL_ON)
    }
}
