//! AWS Config rules by identity, not by name. A rule's name is whatever its owner chose: a
//! custom rule can be named `s3-bucket-public-read-prohibited` and flag every bucket, and a
//! managed rule can be deployed as `team-x-no-public-buckets`. Its identity is what
//! `config:DescribeConfigRules` says: `Source.Owner` `AWS` with the managed-rule identifier in
//! `Source.SourceIdentifier` (`S3_BUCKET_PUBLIC_READ_PROHIBITED`), or a custom owner.

use crate::aws_error::code;
use crate::remediation::RemediationError;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// What a Config rule is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleIdentity {
    /// An AWS-managed rule: its identifier (`S3_BUCKET_LEVEL_PUBLIC_ACCESS_PROHIBITED`).
    Managed { identifier: String, arn: String },
    /// Someone's own rule (`CUSTOM_LAMBDA`, `CUSTOM_POLICY`): trusted only by ARN.
    Custom { owner: String, arn: String },
}

/// Rule identities, read once per rule per cold start.
#[derive(Debug, Clone)]
pub struct ConfigRules {
    client: aws_sdk_config::Client,
    cache: Arc<Mutex<HashMap<String, RuleIdentity>>>,
}

impl ConfigRules {
    pub fn new(client: aws_sdk_config::Client) -> Self {
        ConfigRules {
            client,
            cache: Arc::default(),
        }
    }

    /// The identity of the rule named `name` in this account and region; `None` when there is
    /// no such rule.
    pub async fn identify(&self, name: &str) -> Result<Option<RuleIdentity>, RemediationError> {
        if let Some(known) = self.cache.lock().ok().and_then(|c| c.get(name).cloned()) {
            return Ok(Some(known));
        }
        let out = match self
            .client
            .describe_config_rules()
            .config_rule_names(name)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if code(&e) == Some("NoSuchConfigRuleException") => return Ok(None),
            Err(e) => return Err(RemediationError::aws("config:DescribeConfigRules", e)),
        };
        let Some(rule) = out
            .config_rules()
            .iter()
            .find(|r| r.config_rule_name() == Some(name))
        else {
            return Ok(None);
        };
        let arn = rule.config_rule_arn().unwrap_or_default().to_string();
        let identity = match rule.source() {
            Some(source) if source.owner().as_str() == "AWS" => RuleIdentity::Managed {
                identifier: source.source_identifier().unwrap_or_default().to_string(),
                arn,
            },
            Some(source) => RuleIdentity::Custom {
                owner: source.owner().as_str().to_string(),
                arn,
            },
            None => RuleIdentity::Custom {
                owner: "unknown".into(),
                arn,
            },
        };
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(name.to_string(), identity.clone());
        }
        Ok(Some(identity))
    }
}
