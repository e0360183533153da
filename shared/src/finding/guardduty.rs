//! `GuardDuty Finding` events: our serde types for the parts Reflex reads.

use super::{
    aws_product_arn, detail, guardduty_action, resource_arn, Finding, FindingDetails, FindingKind,
    ParseError,
};
use super::{Resource, ResourceKind, Severity, Source};
use serde::Deserialize;
use serde_json::Value;

const KIND: &str = "GuardDuty";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GuardDutyFinding {
    id: String,
    #[serde(default)]
    arn: Option<String>,
    account_id: String,
    region: String,
    #[serde(rename = "type")]
    finding_type: String,
    severity: f64,
    #[serde(default)]
    title: Option<String>,
    updated_at: String,
    resource: GdResource,
    #[serde(default)]
    service: GdService,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GdResource {
    resource_type: String,
    #[serde(default)]
    s3_bucket_details: Vec<GdBucket>,
    #[serde(default)]
    access_key_details: Option<GdAccessKey>,
    #[serde(default)]
    instance_details: Option<GdInstance>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GdBucket {
    #[serde(default)]
    arn: Option<String>,
    name: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GdAccessKey {
    #[serde(default)]
    access_key_id: Option<String>,
    #[serde(default)]
    user_name: Option<String>,
    #[serde(default)]
    user_type: Option<String>,
    #[serde(default)]
    principal_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GdInstance {
    #[serde(default)]
    instance_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GdService {
    #[serde(default)]
    archived: bool,
    #[serde(default)]
    resource_role: Option<String>,
    #[serde(default)]
    event_last_seen: Option<String>,
    #[serde(default)]
    action: Option<Value>,
    /// `{"sample": true}` on findings made by "Generate sample findings"; other keys vary.
    #[serde(default)]
    additional_info: Option<Value>,
}

pub(super) fn parse(raw: &Value) -> Result<Finding, ParseError> {
    let gd: GuardDutyFinding = detail(KIND, raw)?;
    if !gd.severity.is_finite() {
        return Err(ParseError::Malformed {
            kind: KIND,
            message: "severity is not a number".into(),
        });
    }
    let mut resources = Vec::new();
    let mut details = FindingDetails::default();
    for bucket in &gd.resource.s3_bucket_details {
        resources.push(Resource {
            kind: ResourceKind::S3Bucket,
            id: bucket.name.clone(),
            arn: bucket.arn.clone().or_else(|| {
                resource_arn(
                    &ResourceKind::S3Bucket,
                    &bucket.name,
                    &gd.region,
                    &gd.account_id,
                )
            }),
        });
    }
    if let Some(key) = &gd.resource.access_key_details {
        details.access_key_id = key.access_key_id.clone().filter(|k| !k.is_empty());
        details.user_name = key.user_name.clone().filter(|u| !u.is_empty());
        details.user_type = key.user_type.clone().filter(|u| !u.is_empty());
        details.principal_id = key.principal_id.clone().filter(|p| !p.is_empty());
        if let Some(id) = &details.access_key_id {
            resources.push(Resource {
                kind: ResourceKind::IamAccessKey,
                id: id.clone(),
                arn: None,
            });
        }
    }
    if let Some(instance) = &gd.resource.instance_details {
        if let Some(id) = instance.instance_id.clone().filter(|i| !i.is_empty()) {
            let arn = resource_arn(&ResourceKind::Ec2Instance, &id, &gd.region, &gd.account_id);
            details.instance_id = Some(id.clone());
            resources.push(Resource {
                kind: ResourceKind::Ec2Instance,
                id,
                arn,
            });
        }
    }
    if let Some(action) = &gd.service.action {
        let action = guardduty_action::details(&guardduty_action::flatten(action));
        details.remote_ips = action.remote_ips;
        details.dns_domain = action.dns_domain;
        details.affected_resources = action.affected_resources;
    }
    details.resource_role = gd.service.resource_role.clone().filter(|r| !r.is_empty());
    details.guardduty_arn = gd.arn.clone().filter(|a| !a.is_empty());
    let sample = gd
        .service
        .additional_info
        .as_ref()
        .and_then(|i| i.get("sample"))
        .is_some_and(|v| v.as_bool() == Some(true) || v.as_str() == Some("true"));
    if resources.is_empty() {
        return Err(ParseError::Malformed {
            kind: KIND,
            message: format!(
                "resource of type {:?} names no resource",
                gd.resource.resource_type
            ),
        });
    }
    Ok(Finding {
        source: Source::Guardduty,
        title: gd.title.unwrap_or_else(|| gd.finding_type.clone()),
        kind: FindingKind::GuarddutyType(gd.finding_type),
        severity: Severity::from_guardduty(gd.severity),
        product_arn: aws_product_arn(&gd.region, "guardduty"),
        observed_at: gd
            .service
            .event_last_seen
            .or_else(|| Some(gd.updated_at.clone())),
        generation: super::canonical_time(&gd.updated_at),
        inactive: gd
            .service
            .archived
            .then(|| "archived in GuardDuty".to_string()),
        id: gd.id,
        account: gd.account_id,
        region: gd.region,
        resources,
        details,
        intent: None,
        sample,
        requested_by: None,
        requested_at: None,
        securityhub_finding: None,
    })
}
