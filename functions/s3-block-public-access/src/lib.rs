//! s3-block-public-access: turn on all four S3 Block Public Access settings of the one bucket a
//! finding names. Low risk (enforce by default); undone from the record by restoring the
//! bucket's previous configuration, or deleting it where there was none.

use aws_sdk_s3::types::PublicAccessBlockConfiguration;
use reflex_shared::aws_error::code;
use reflex_shared::finding::{Finding, ResourceKind};
use reflex_shared::policy::Risk;
use reflex_shared::remediation::{
    Applied, Context, Plan, Remediation, RemediationError, ResourceRef as Target, Spec, StepRecord,
    Tags, Unresolved,
};
use reflex_shared::setup::s3_path_style;
use reflex_shared::trigger::Trigger;
use serde::{Deserialize, Serialize};
use serde_json::json;

pub static SPEC: Spec = Spec {
    name: "s3-block-public-access",
    risk: Risk::Low,
    triggers: &[
        Trigger::Control("S3.2"),
        Trigger::Control("S3.3"),
        Trigger::Control("S3.8"),
        // AWS-managed Config rules, by identifier, whatever name they are deployed under.
        Trigger::ConfigRule("S3_BUCKET_PUBLIC_READ_PROHIBITED"),
        Trigger::ConfigRule("S3_BUCKET_PUBLIC_WRITE_PROHIBITED"),
        Trigger::ConfigRule("S3_BUCKET_LEVEL_PUBLIC_ACCESS_PROHIBITED"),
        Trigger::GuarddutyType("Policy:S3/BucketBlockPublicAccessDisabled"),
        Trigger::GuarddutyType("Policy:S3/BucketAnonymousAccessGranted"),
        Trigger::GuarddutyType("Policy:S3/BucketPublicAccessGranted"),
    ],
    iam_actions: &[
        // GetPublicAccessBlock
        "s3:GetBucketPublicAccessBlock",
        // PutPublicAccessBlock and DeletePublicAccessBlock (undo)
        "s3:PutBucketPublicAccessBlock",
        // GetBucketTagging (exemption tag)
        "s3:GetBucketTagging",
        // ListBuckets (the bucket's creation date: its identity)
        "s3:ListAllMyBuckets",
    ],
    reversible: true,
    config_resource_types: &["AWS::S3::Bucket"],
    parameters: None,
    schedule: None,
    completion_events: &[],
    completion_timeout_seconds: 0,
    confirm_at_source: false,
};

const PUT: &str = "s3:PutPublicAccessBlock";
const DELETE: &str = "s3:DeletePublicAccessBlock";
const NO_SUCH_BUCKET: &str = "NoSuchBucket";

/// The bucket was deleted since the finding: nothing to fix.
fn gone(target: &Target) -> RemediationError {
    RemediationError::Gone(format!("bucket {} no longer exists", target.id))
}

/// The bucket's Block Public Access configuration, as recorded in pre- and post-state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct BlockConfig {
    pub block_public_acls: bool,
    pub ignore_public_acls: bool,
    pub block_public_policy: bool,
    pub restrict_public_buckets: bool,
}

impl BlockConfig {
    pub const ALL_ON: BlockConfig = BlockConfig {
        block_public_acls: true,
        ignore_public_acls: true,
        block_public_policy: true,
        restrict_public_buckets: true,
    };

    fn from_sdk(c: &PublicAccessBlockConfiguration) -> Self {
        BlockConfig {
            block_public_acls: c.block_public_acls().unwrap_or(false),
            ignore_public_acls: c.ignore_public_acls().unwrap_or(false),
            block_public_policy: c.block_public_policy().unwrap_or(false),
            restrict_public_buckets: c.restrict_public_buckets().unwrap_or(false),
        }
    }

    fn to_sdk(self) -> PublicAccessBlockConfiguration {
        PublicAccessBlockConfiguration::builder()
            .block_public_acls(self.block_public_acls)
            .ignore_public_acls(self.ignore_public_acls)
            .block_public_policy(self.block_public_policy)
            .restrict_public_buckets(self.restrict_public_buckets)
            .build()
    }
}

/// The state this remediation reads, changes and restores. `None`: the bucket has no
/// bucket-level configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketState {
    pub public_access_block: Option<BlockConfig>,
}

/// One change to a bucket's Block Public Access.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "op", content = "config")]
pub enum BucketStep {
    /// Set the configuration (all four on, to fix; the previous one, to undo).
    Put(BlockConfig),
    /// Remove the bucket-level configuration (to undo a fix where there was none).
    Delete,
}

/// No parameters: the fix is always all four settings on. (Per-bucket exceptions are the
/// policy's exemptions.)
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {}

pub struct S3BlockPublicAccess {
    s3: aws_sdk_s3::Client,
}

impl S3BlockPublicAccess {
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        let config = aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(s3_path_style(sdk))
            .build();
        S3BlockPublicAccess {
            s3: aws_sdk_s3::Client::from_conf(config),
        }
    }

    pub fn from_client(s3: aws_sdk_s3::Client) -> Self {
        S3BlockPublicAccess { s3 }
    }

    /// The bucket's Block Public Access, as `inspect` reads it (the demo shows it too).
    pub async fn read_state(&self, target: &Target) -> Result<BucketState, RemediationError> {
        let config = match self
            .s3
            .get_public_access_block()
            .bucket(&target.id)
            .expected_bucket_owner(&target.account)
            .send()
            .await
        {
            Ok(out) => out
                .public_access_block_configuration()
                .map(BlockConfig::from_sdk),
            Err(e) if code(&e) == Some("NoSuchPublicAccessBlockConfiguration") => None,
            Err(e) if code(&e) == Some(NO_SUCH_BUCKET) => return Err(gone(target)),
            Err(e) => return Err(RemediationError::aws("s3:GetPublicAccessBlock", e)),
        };
        Ok(BucketState {
            public_access_block: config,
        })
    }
}

/// S3's rules for bucket names: 3–63 of lowercase letters, digits, dots and hyphens, starting
/// and ending with a letter or digit. A name outside them is hostile input, not a bucket.
pub fn valid_bucket_name(name: &str) -> bool {
    let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-';
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    (3..=63).contains(&name.len())
        && name.chars().all(ok_char)
        && edge(name.chars().next())
        && edge(name.chars().last())
        && !name.contains("..")
}

impl Remediation for S3BlockPublicAccess {
    type Params = Params;
    type Target = Target;
    type State = BucketState;
    type Step = BucketStep;
    type Output = ();

    fn spec(&self) -> &'static Spec {
        &SPEC
    }

    /// The one bucket the finding names, by a valid name whose ARN agrees.
    async fn resolve(&self, finding: &Finding, _params: &Params) -> Result<Target, Unresolved> {
        let no = |why: String| Err(Unresolved::NoTarget(why));
        let buckets: Vec<_> = finding
            .resources
            .iter()
            .filter(|r| r.kind == ResourceKind::S3Bucket)
            .collect();
        let bucket = match buckets.as_slice() {
            [one] => *one,
            [] => return no("the finding names no S3 bucket".into()),
            many => {
                return no(format!(
                    "the finding names {} buckets; Reflex changes exactly one",
                    many.len()
                ))
            }
        };
        if !valid_bucket_name(&bucket.id) {
            return no(format!("{:?} is not a valid S3 bucket name", bucket.id));
        }
        let arn = bucket
            .arn
            .clone()
            .unwrap_or_else(|| format!("arn:aws:s3:::{}", bucket.id));
        if !arn.ends_with(&format!(":s3:::{}", bucket.id)) {
            return no(format!(
                "bucket ARN {arn} does not name bucket {}",
                bucket.id
            ));
        }
        Ok(Target {
            kind: ResourceKind::S3Bucket,
            id: bucket.id.clone(),
            arn,
            account: finding.account.clone(),
        })
    }

    async fn tags(&self, target: &Target) -> Result<Tags, RemediationError> {
        match self
            .s3
            .get_bucket_tagging()
            .bucket(&target.id)
            .expected_bucket_owner(&target.account)
            .send()
            .await
        {
            Ok(out) => Ok(out
                .tag_set()
                .iter()
                .map(|t| (t.key().to_string(), t.value().to_string()))
                .collect()),
            Err(e) if code(&e) == Some("NoSuchTagSet") => Ok(Tags::new()),
            Err(e) if code(&e) == Some(NO_SUCH_BUCKET) => Err(gone(target)),
            Err(e) => Err(RemediationError::aws("s3:GetBucketTagging", e)),
        }
    }

    /// The bucket's creation date: a bucket deleted and created again under the same name is
    /// another bucket (ListBuckets, narrowed to the name by its prefix).
    async fn identity(&self, target: &Target) -> Result<Option<String>, RemediationError> {
        let out = self
            .s3
            .list_buckets()
            .prefix(&target.id)
            .send()
            .await
            .map_err(|e| RemediationError::aws("s3:ListBuckets", e))?;
        let bucket = out
            .buckets()
            .iter()
            .find(|b| b.name() == Some(target.id.as_str()))
            .ok_or_else(|| gone(target))?;
        Ok(bucket.creation_date().map(|d| d.to_string()))
    }

    async fn inspect(
        &self,
        _ctx: &Context<'_>,
        target: &Target,
    ) -> Result<BucketState, RemediationError> {
        self.read_state(target).await
    }

    fn plan(
        &self,
        _ctx: &Context<'_>,
        _target: &Target,
        state: &BucketState,
        _params: &Params,
    ) -> Plan<BucketStep> {
        if state.public_access_block == Some(BlockConfig::ALL_ON) {
            Plan::of(vec![])
        } else {
            Plan::of(vec![BucketStep::Put(BlockConfig::ALL_ON)])
        }
    }

    async fn apply(
        &self,
        _ctx: &Context<'_>,
        target: &Target,
        step: &BucketStep,
        _earlier: &[Applied<BucketStep, ()>],
    ) -> Result<(), RemediationError> {
        let result = match step {
            BucketStep::Put(config) => self
                .s3
                .put_public_access_block()
                .bucket(&target.id)
                .expected_bucket_owner(&target.account)
                .public_access_block_configuration(config.to_sdk())
                .send()
                .await
                .map(|_| ())
                .map_err(|e| {
                    (
                        code(&e) == Some(NO_SUCH_BUCKET),
                        RemediationError::aws(PUT, e),
                    )
                }),
            BucketStep::Delete => self
                .s3
                .delete_public_access_block()
                .bucket(&target.id)
                .expected_bucket_owner(&target.account)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| {
                    (
                        code(&e) == Some(NO_SUCH_BUCKET),
                        RemediationError::aws(DELETE, e),
                    )
                }),
        };
        result.map_err(|(gone_now, e)| if gone_now { gone(target) } else { e })
    }

    fn describe(&self, target: &Target, step: &BucketStep) -> StepRecord {
        match step {
            BucketStep::Put(config) => StepRecord {
                api: PUT,
                parameters: json!({
                    "Bucket": target.id,
                    "ExpectedBucketOwner": target.account,
                    "PublicAccessBlockConfiguration": config,
                }),
            },
            BucketStep::Delete => StepRecord {
                api: DELETE,
                parameters: json!({ "Bucket": target.id, "ExpectedBucketOwner": target.account }),
            },
        }
    }

    /// The previous configuration back, or none where there was none.
    fn undo(
        &self,
        _target: &Target,
        pre: &BucketState,
        _applied: &[Applied<BucketStep, ()>],
    ) -> Vec<BucketStep> {
        match pre.public_access_block {
            Some(config) => vec![BucketStep::Put(config)],
            None => vec![BucketStep::Delete],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names() {
        let cases = [
            ("my-bucket", true),
            ("a.b.c", true),
            ("ab", false),
            ("My-Bucket", false),
            ("-bucket", false),
            ("bucket-", false),
            ("a..b", false),
            ("bucket/../../etc", false),
            (&"x".repeat(64), false),
        ];
        for (name, want) in cases {
            assert_eq!(valid_bucket_name(name), want, "{name}");
        }
    }

    #[test]
    fn state_round_trips_through_json() {
        let s = BucketState {
            public_access_block: Some(BlockConfig {
                block_public_acls: false,
                ..BlockConfig::ALL_ON
            }),
        };
        let v = json!(s);
        assert_eq!(v["public_access_block"]["BlockPublicAcls"], json!(false));
        assert_eq!(serde_json::from_value::<BucketState>(v).unwrap(), s);
        assert_eq!(
            json!(BucketState {
                public_access_block: None
            }),
            json!({ "public_access_block": null })
        );
    }
}
