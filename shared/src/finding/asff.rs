//! `Security Hub Findings - Imported` and `- Custom Action` events: the ASFF fields Reflex reads.

use super::{detail, id_from_arn, Finding, FindingDetails, FindingKind, Intent, ParseError};
use super::{Resource, ResourceKind, Severity, SeverityLabel, Source};
use super::{APPROVE_ACTION_ID, REMEDIATE_ACTION_ID};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

const KIND: &str = "Security Hub";

#[derive(Debug, Deserialize)]
struct Detail {
    findings: Vec<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Asff {
    id: String,
    product_arn: String,
    aws_account_id: String,
    #[serde(default)]
    region: Option<String>,
    #[serde(default)]
    title: Option<String>,
    updated_at: String,
    #[serde(default)]
    last_observed_at: Option<String>,
    #[serde(default)]
    severity: Option<AsffSeverity>,
    resources: Vec<AsffResource>,
    #[serde(default)]
    compliance: Option<Compliance>,
    #[serde(default)]
    workflow: Option<Workflow>,
    #[serde(default)]
    record_state: Option<String>,
    #[serde(default)]
    product_fields: BTreeMap<String, Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AsffSeverity {
    #[serde(default)]
    label: Option<SeverityLabel>,
    #[serde(default)]
    normalized: Option<u8>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AsffResource {
    #[serde(rename = "Type")]
    kind: String,
    id: String,
    #[serde(default)]
    region: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Compliance {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    security_control_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Workflow {
    #[serde(default)]
    status: Option<String>,
}

pub(super) fn parse_imported(raw: &Value) -> Result<Vec<Finding>, ParseError> {
    let detail: Detail = detail(KIND, raw)?;
    detail
        .findings
        .iter()
        .map(|f| parse_one(f, Source::Securityhub))
        .collect()
}

pub(super) fn parse_custom_action(
    raw: &Value,
    resources: &[String],
) -> Result<Vec<Finding>, ParseError> {
    let intent = intent_from_action_arns(resources)?;
    let detail: Detail = detail(KIND, raw)?;
    detail
        .findings
        .iter()
        .map(|f| {
            let mut finding = parse_one(f, Source::CustomAction)?;
            finding.intent = Some(intent);
            Ok(finding)
        })
        .collect()
}

/// Which Reflex custom action sent the event; any other action is not ours to serve.
fn intent_from_action_arns(resources: &[String]) -> Result<Intent, ParseError> {
    let action = resources
        .iter()
        .find_map(|arn| arn.split_once(":action/custom/").map(|(_, id)| id))
        .ok_or_else(|| ParseError::Malformed {
            kind: KIND,
            message: "custom action event names no action/custom/ ARN in resources".into(),
        })?;
    match action {
        REMEDIATE_ACTION_ID => Ok(Intent::Remediate),
        APPROVE_ACTION_ID => Ok(Intent::Approve),
        other => Err(ParseError::Malformed {
            kind: KIND,
            message: format!("custom action {other:?} is not a Reflex action"),
        }),
    }
}

fn parse_one(raw: &Value, source: Source) -> Result<Finding, ParseError> {
    let f: Asff = detail(KIND, raw)?;
    let control = f
        .compliance
        .as_ref()
        .and_then(|c| c.security_control_id.clone())
        .or_else(|| f.product_fields.get("ControlId").and_then(Value::as_str).map(str::to_string))
        .filter(|c| !c.is_empty())
        .ok_or_else(|| ParseError::Malformed {
            kind: KIND,
            message: format!(
                "finding {} has no control id (Compliance.SecurityControlId or ProductFields.ControlId)",
                f.id
            ),
        })?;
    let region = f
        .region
        .clone()
        .or_else(|| f.resources.iter().find_map(|r| r.region.clone()))
        .or_else(|| f.product_arn.split(':').nth(3).map(str::to_string))
        .filter(|r| !r.is_empty())
        .ok_or_else(|| ParseError::Malformed {
            kind: KIND,
            message: format!("finding {} names no region", f.id),
        })?;
    if f.resources.is_empty() {
        return Err(ParseError::Malformed {
            kind: KIND,
            message: format!("finding {} names no resource", f.id),
        });
    }
    let resources = f
        .resources
        .iter()
        .map(|r| {
            let is_arn = r.id.starts_with("arn:");
            Resource {
                kind: ResourceKind::parse(&r.kind),
                id: if is_arn {
                    id_from_arn(&r.id)
                } else {
                    r.id.clone()
                },
                arn: is_arn.then(|| r.id.clone()),
            }
        })
        .collect();
    let severity = match &f.severity {
        Some(AsffSeverity {
            normalized: Some(n),
            ..
        }) => Severity::from_normalized(*n),
        Some(AsffSeverity { label: Some(l), .. }) => Severity::from_normalized(l.normalized()),
        _ => {
            return Err(ParseError::Malformed {
                kind: KIND,
                message: format!("finding {} has no severity", f.id),
            })
        }
    };
    Ok(Finding {
        source,
        title: f.title.clone().unwrap_or_else(|| control.clone()),
        kind: FindingKind::Control(control),
        severity,
        inactive: inactive(&f),
        observed_at: f
            .last_observed_at
            .clone()
            .or_else(|| Some(f.updated_at.clone())),
        generation: f.updated_at,
        id: f.id,
        product_arn: f.product_arn,
        account: f.aws_account_id,
        region,
        resources,
        details: FindingDetails::default(),
        intent: None,
    })
}

/// Why an imported finding no longer asks for action, if it does not.
fn inactive(f: &Asff) -> Option<String> {
    if f.record_state.as_deref() == Some("ARCHIVED") {
        return Some("record state ARCHIVED".into());
    }
    if let Some(status @ ("RESOLVED" | "SUPPRESSED")) =
        f.workflow.as_ref().and_then(|w| w.status.as_deref())
    {
        return Some(format!("workflow status {status}"));
    }
    match f.compliance.as_ref().and_then(|c| c.status.as_deref()) {
        Some(status @ ("PASSED" | "NOT_AVAILABLE")) => Some(format!("compliance status {status}")),
        _ => None,
    }
}
