//! The remediation on the core's trait: each part a few lines over the pure modules and the
//! S3 adapter.

use crate::aws::{DELETE_ENCRYPTION, DELETE_POLICY, PUT_ENCRYPTION, PUT_POLICY};
use crate::params::Params;
use crate::state::{self, BucketState, BucketStep, Fix};
use crate::target::{self, BucketTarget};
use crate::{S3EnforceEncryption, SPEC};
use reflex_shared::finding::Finding;
use reflex_shared::remediation::{
    Applied, Context, Plan, Remediation, RemediationError, ResourceRef, Spec, StepRecord, Subject,
    Tags, Unresolved,
};
use serde_json::json;

impl Subject for BucketTarget {
    fn resource(&self) -> &ResourceRef {
        &self.resource
    }
}

impl Remediation for S3EnforceEncryption {
    type Params = Params;
    type Target = BucketTarget;
    type State = BucketState;
    type Step = BucketStep;
    type Output = ();

    fn spec(&self) -> &'static Spec {
        &SPEC
    }

    /// The bucket, and what the finding's control asks of it (its kind, a Config rule's
    /// already resolved to the managed rule's identifier).
    async fn resolve(&self, finding: &Finding, _p: &Params) -> Result<BucketTarget, Unresolved> {
        let fix = Fix::of(&finding.kind).ok_or_else(|| {
            Unresolved::NoTarget(format!(
                "{} asks nothing of a bucket's encryption or transport",
                finding.kind.name()
            ))
        })?;
        let resource = target::bucket(finding).map_err(Unresolved::NoTarget)?;
        Ok(BucketTarget { resource, fix })
    }

    async fn tags(&self, t: &BucketTarget) -> Result<Tags, RemediationError> {
        self.s3.tags(&t.resource).await
    }

    async fn identity(&self, t: &BucketTarget) -> Result<Option<String>, RemediationError> {
        self.s3.creation_date(&t.resource).await
    }

    /// Only the part the control is about.
    async fn inspect(
        &self,
        _ctx: &Context<'_>,
        t: &BucketTarget,
    ) -> Result<BucketState, RemediationError> {
        Ok(match t.fix {
            Fix::DefaultEncryption => BucketState {
                encryption: Some(self.s3.encryption(&t.resource).await?),
                policy: None,
            },
            Fix::DenyInsecureTransport => BucketState {
                encryption: None,
                policy: Some(self.s3.policy(&t.resource).await?),
            },
        })
    }

    fn plan(
        &self,
        _ctx: &Context<'_>,
        t: &BucketTarget,
        s: &BucketState,
        p: &Params,
    ) -> Plan<BucketStep> {
        state::plan(t.fix, s, &t.resource.arn, p.kms_key_id.as_deref())
    }

    async fn apply(
        &self,
        _ctx: &Context<'_>,
        t: &BucketTarget,
        step: &BucketStep,
        _earlier: &[Applied<BucketStep, ()>],
    ) -> Result<(), RemediationError> {
        let b = &t.resource;
        match step {
            BucketStep::PutEncryption { rules } => self.s3.put_encryption(b, rules).await,
            BucketStep::DeleteEncryption => self.s3.delete_encryption(b).await,
            BucketStep::PutPolicy { document } => self.s3.put_policy(b, document).await,
            BucketStep::DeletePolicy => self.s3.delete_policy(b).await,
        }
    }

    fn describe(&self, t: &BucketTarget, step: &BucketStep) -> StepRecord {
        let (bucket, owner) = (&t.resource.id, &t.resource.account);
        match step {
            BucketStep::PutEncryption { rules } => StepRecord {
                api: PUT_ENCRYPTION,
                parameters: json!({
                    "Bucket": bucket,
                    "ExpectedBucketOwner": owner,
                    "ServerSideEncryptionConfiguration": { "Rules": rules },
                }),
            },
            BucketStep::DeleteEncryption => StepRecord {
                api: DELETE_ENCRYPTION,
                parameters: json!({ "Bucket": bucket, "ExpectedBucketOwner": owner }),
            },
            BucketStep::PutPolicy { document } => StepRecord {
                api: PUT_POLICY,
                parameters: json!({
                    "Bucket": bucket,
                    "ExpectedBucketOwner": owner,
                    "Policy": document.json.clone().unwrap_or_else(|| json!(document.text)),
                }),
            },
            BucketStep::DeletePolicy => StepRecord {
                api: DELETE_POLICY,
                parameters: json!({ "Bucket": bucket, "ExpectedBucketOwner": owner }),
            },
        }
    }

    /// The previous configuration and document back, or none where there was none.
    fn undo(
        &self,
        _t: &BucketTarget,
        pre: &BucketState,
        applied: &[Applied<BucketStep, ()>],
    ) -> Vec<BucketStep> {
        let steps: Vec<BucketStep> = applied.iter().map(|a| a.step.clone()).collect();
        state::undo(pre, &steps)
    }
}
