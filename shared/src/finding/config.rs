//! `Config Rules Compliance Change` events.

use super::{aws_product_arn, detail, resource_arn, Finding, FindingDetails, FindingKind};
use super::{ParseError, Resource, ResourceKind, Severity, Source};
use serde::Deserialize;
use serde_json::Value;

const KIND: &str = "Config";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ComplianceChange {
    resource_id: String,
    resource_type: String,
    aws_account_id: String,
    aws_region: String,
    config_rule_name: String,
    new_evaluation_result: Evaluation,
    #[serde(default)]
    notification_creation_time: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Evaluation {
    compliance_type: String,
    #[serde(default)]
    result_recorded_time: Option<String>,
}

pub(super) fn parse(raw: &Value) -> Result<Finding, ParseError> {
    let c: ComplianceChange = detail(KIND, raw)?;
    let kind = ResourceKind::parse(&c.resource_type);
    // Config names IAM users, roles and groups by their unique id (`AIDA…`, `AROA…`, `AGPA…`),
    // not their name: an ARN built from it would name another principal, so none is built (a
    // remediation must look the principal up).
    let arn = if is_iam_unique_id(&kind, &c.resource_id) {
        None
    } else {
        resource_arn(&kind, &c.resource_id, &c.aws_region, &c.aws_account_id)
    };
    let recorded = c
        .new_evaluation_result
        .result_recorded_time
        .clone()
        .or(c.notification_creation_time.clone())
        .ok_or_else(|| ParseError::Malformed {
            kind: KIND,
            message: "neither newEvaluationResult.resultRecordedTime nor notificationCreationTime"
                .into(),
        })?;
    let compliance = c.new_evaluation_result.compliance_type.as_str();
    Ok(Finding {
        source: Source::Config,
        // Config has no finding id: the rule and the resource identify the evaluation.
        id: format!(
            "{}/{}/{}",
            c.config_rule_name, c.resource_type, c.resource_id
        ),
        title: format!(
            "Config rule {} is {} for {} {}",
            c.config_rule_name, compliance, c.resource_type, c.resource_id
        ),
        severity: Severity::unrated_config(),
        product_arn: aws_product_arn(&c.aws_region, "config"),
        inactive: (compliance != "NON_COMPLIANT").then(|| format!("compliance type {compliance}")),
        observed_at: Some(recorded.clone()),
        generation: super::canonical_time(&recorded),
        kind: FindingKind::ConfigRule(c.config_rule_name),
        account: c.aws_account_id,
        region: c.aws_region,
        resources: vec![Resource {
            kind,
            id: c.resource_id,
            arn,
        }],
        details: FindingDetails::default(),
        intent: None,
        sample: false,
        requested_by: None,
        requested_at: None,
        securityhub_finding: None,
    })
}

/// An IAM unique id (`AIDA…` user, `AROA…` role, `AGPA…` group) rather than a name.
fn is_iam_unique_id(kind: &ResourceKind, id: &str) -> bool {
    let prefix = match kind {
        ResourceKind::IamUser => "AIDA",
        ResourceKind::IamRole => "AROA",
        ResourceKind::IamGroup => "AGPA",
        _ => return false,
    };
    id.starts_with(prefix)
        && id.len() >= 16
        && id
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}
