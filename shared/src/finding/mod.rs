//! Detect: one normalised [`Finding`] from any of the four EventBridge event kinds Reflex listens to.
//!
//! Pure logic, no AWS types. Unknown or malformed input is rejected with a reason ([`ParseError`]),
//! never guessed at.

mod asff;
mod config;
mod guardduty;
mod guardduty_action;
mod instance;
mod model;

pub use instance::{named_instance, valid_instance_id};
pub use model::*;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use serde_json::Value;

/// Why an event could not be turned into findings. The message is written into the outcome record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("event is not valid JSON: {0}")]
    NotJson(String),
    #[error("event is not an EventBridge event: {0}")]
    NotEventBridge(String),
    #[error("unsupported event: source {event_source:?}, detail-type {detail_type:?}")]
    Unsupported {
        event_source: String,
        detail_type: String,
    },
    #[error("malformed {kind} event: {message}")]
    Malformed { kind: &'static str, message: String },
    /// A well-formed event that is not for Reflex (another team's custom action, a format not
    /// yet supported): `unsupported-event`, never malformed.
    #[error("{0}")]
    NotForReflex(String),
}

/// The EventBridge detail-types Reflex handles, each with the only source allowed to send it.
/// `aws.*` sources can only be emitted by AWS itself, so the pair is part of trusting the event.
const GUARDDUTY: (&str, &str) = ("aws.guardduty", "GuardDuty Finding");
const SH_IMPORTED: (&str, &str) = ("aws.securityhub", "Security Hub Findings - Imported");
const SH_CUSTOM_ACTION: (&str, &str) = ("aws.securityhub", "Security Hub Findings - Custom Action");
const CONFIG: (&str, &str) = ("aws.config", "Config Rules Compliance Change");

/// Parse raw bytes (what `reflex replay` reads from a file).
pub fn parse_bytes(raw: &[u8]) -> Result<Vec<Finding>, ParseError> {
    let value: Value =
        serde_json::from_slice(raw).map_err(|e| ParseError::NotJson(e.to_string()))?;
    parse_event(&value)
}

/// Parse an EventBridge event into one finding per finding it carries (a Security Hub event may
/// carry several, e.g. when an analyst runs a custom action on a selection).
pub fn parse_event(value: &Value) -> Result<Vec<Finding>, ParseError> {
    let envelope: EventBridgeEvent<Value> = serde_json::from_value(value.clone())
        .map_err(|e| ParseError::NotEventBridge(e.to_string()))?;
    let pair = (envelope.source.as_str(), envelope.detail_type.as_str());
    let findings = if pair == GUARDDUTY {
        vec![guardduty::parse(&envelope.detail)?]
    } else if pair == SH_IMPORTED {
        asff::parse_imported(&envelope.detail)?
    } else if pair == SH_CUSTOM_ACTION {
        let resources = envelope.resources.as_deref().unwrap_or_default();
        let time = envelope
            .time
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
        asff::parse_custom_action(&envelope.detail, resources, time.as_deref())?
    } else if pair == CONFIG {
        vec![config::parse(&envelope.detail)?]
    } else {
        return Err(ParseError::Unsupported {
            event_source: envelope.source,
            detail_type: envelope.detail_type,
        });
    };
    if findings.is_empty() {
        return Err(ParseError::Malformed {
            kind: "Security Hub",
            message: "detail.findings is empty".into(),
        });
    }
    Ok(findings)
}

/// One GuardDuty finding as GuardDuty's API writes it (an event's `detail`, or a `GetFindings`
/// result): what a finding read back from its source is parsed with, the same parser as events.
pub fn parse_guardduty_finding(finding: &Value) -> Result<Finding, ParseError> {
    guardduty::parse(finding)
}

/// One ASFF finding as Security Hub's API writes it (an element of an event's
/// `detail.findings`, or a `GetFindings` result), parsed as an imported finding.
pub fn parse_asff_finding(finding: &Value) -> Result<Finding, ParseError> {
    asff::parse_one_imported(finding)
}

/// Deserialize one event kind's detail into our serde type, naming the kind in the error.
fn detail<T: serde::de::DeserializeOwned>(
    kind: &'static str,
    detail: &Value,
) -> Result<T, ParseError> {
    serde_json::from_value(detail.clone()).map_err(|e| ParseError::Malformed {
        kind,
        message: e.to_string(),
    })
}

/// The AWS partition a region belongs to, for ARNs we have to build ourselves.
pub fn partition_for_region(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// Security Hub's product ARN for an AWS service integration (what its findings carry).
fn aws_product_arn(region: &str, service: &str) -> String {
    format!(
        "arn:{}:securityhub:{region}::product/aws/{service}",
        partition_for_region(region)
    )
}

/// The ARN of a resource whose type and id we know, when the event does not carry one.
fn resource_arn(kind: &ResourceKind, id: &str, region: &str, account: &str) -> Option<String> {
    let p = partition_for_region(region);
    Some(match kind {
        ResourceKind::S3Bucket => format!("arn:{p}:s3:::{id}"),
        ResourceKind::Ec2Instance => format!("arn:{p}:ec2:{region}:{account}:instance/{id}"),
        ResourceKind::Ec2SecurityGroup => {
            format!("arn:{p}:ec2:{region}:{account}:security-group/{id}")
        }
        ResourceKind::IamUser => format!("arn:{p}:iam::{account}:user/{id}"),
        ResourceKind::IamRole => format!("arn:{p}:iam::{account}:role/{id}"),
        ResourceKind::IamGroup => format!("arn:{p}:iam::{account}:group/{id}"),
        ResourceKind::IamAccessKey
        | ResourceKind::IamPolicy
        | ResourceKind::CloudTrailTrail
        | ResourceKind::Other(_) => return None,
    })
}

/// The short id of a resource from its ARN: the bucket name, the instance id, the user name…
/// S3 ARNs carry the bucket name verbatim (`arn:aws:s3:::name`): never split those.
fn id_from_arn(arn: &str) -> String {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    match parts.as_slice() {
        [_, _, "s3", _, _, name] => name.to_string(),
        [_, _, _, _, _, tail] => tail.rsplit('/').next().unwrap_or(tail).to_string(),
        _ => arn.to_string(),
    }
}

#[cfg(test)]
mod tests;
