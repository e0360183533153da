//! `Security Hub Findings - Imported` and `- Custom Action` events: the ASFF fields Reflex reads.

use super::{
    detail, guardduty_action, id_from_arn, Finding, FindingDetails, FindingKind, Intent, ParseError,
};
use super::{Resource, ResourceKind, SecurityHubIdentifier, Severity, SeverityLabel, Source};
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
    generator_id: Option<String>,
    #[serde(default)]
    types: Vec<String>,
    #[serde(default)]
    product_name: Option<String>,
    #[serde(default)]
    severity: Option<AsffSeverity>,
    resources: Vec<AsffResource>,
    #[serde(default)]
    compliance: Option<Compliance>,
    #[serde(default)]
    workflow: Option<Workflow>,
    /// The older workflow field; `Workflow.Status` wins where both are present.
    #[serde(default)]
    workflow_state: Option<String>,
    #[serde(default)]
    record_state: Option<String>,
    /// Every value is a string in real findings; anything else is ignored, never fatal.
    #[serde(default)]
    product_fields: BTreeMap<String, Value>,
    #[serde(default)]
    vulnerabilities: Vec<Vulnerability>,
}

/// Four shapes occur: `{Label, Normalized, Original}`, `{Product, Label, Normalized}`,
/// `{Product, Normalized}` (no label: derived from the score), and numbers as floats.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AsffSeverity {
    #[serde(default)]
    label: Option<SeverityLabel>,
    #[serde(default)]
    normalized: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AsffResource {
    #[serde(rename = "Type")]
    kind: String,
    id: String,
    #[serde(default)]
    region: Option<String>,
    /// Per-type details (`{"AwsIamAccessKey": {...}}`): read leniently, only where needed.
    #[serde(default)]
    details: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Compliance {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    security_control_id: Option<String>,
    /// `[{"Name": "authorizedTcpPorts", "Value": ["80", "443"]}]`; read leniently.
    #[serde(default)]
    security_control_parameters: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Workflow {
    #[serde(default)]
    status: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Vulnerability {
    #[serde(default)]
    id: Option<String>,
}

/// The AWS products whose findings Reflex reads through Security Hub, by product ARN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Product {
    GuardDuty,
    Config,
    Inspector,
    /// Security Hub's own control checks, and any other product.
    Other,
}

impl Product {
    fn of(product_arn: &str) -> Product {
        match product_arn.rsplit_once(":product/").map(|(_, p)| p) {
            Some("aws/guardduty") => Product::GuardDuty,
            Some("aws/config") => Product::Config,
            Some("aws/inspector") => Product::Inspector,
            _ => Product::Other,
        }
    }
}

/// Per-standard control ids (consolidated control findings turned off) that are not security
/// control ids, as (standard, id, security control id). Only mappings the design confirms are
/// listed: an id not here is never guessed at (the finding is `not-handled`, with the id).
const PER_STANDARD_CONTROLS: &[(&str, &str, &str)] = &[
    (
        "cis-aws-foundations-benchmark/v/1.2.0",
        "2.7",
        "CloudTrail.2",
    ),
    ("pci-dss/v/3.2.1", "PCI.CloudTrail.1", "CloudTrail.2"),
];

/// `S3.8`, `EC2.13`, `CloudTrail.2`: a service name, a dot, a number.
fn is_security_control_id(id: &str) -> bool {
    match id.split_once('.') {
        Some((service, number)) => {
            !service.is_empty()
                && service
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic())
                && service.chars().all(|c| c.is_ascii_alphanumeric())
                && service != "PCI"
                && !number.is_empty()
                && number.chars().all(|c| c.is_ascii_digit())
        }
        None => false,
    }
}

impl Asff {
    /// `Vulnerabilities[].Id`, each once, in order.
    fn vulnerability_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = Vec::new();
        for id in self.vulnerabilities.iter().filter_map(|v| v.id.as_deref()) {
            if !id.is_empty() && !ids.iter().any(|i| i == id) {
                ids.push(id.to_string());
            }
        }
        ids
    }

    fn field(&self, key: &str) -> Option<&str> {
        self.product_fields.get(key).and_then(Value::as_str)
    }

    /// The standard a per-standard finding belongs to, as its ARNs name it.
    fn standard(&self) -> String {
        [
            self.field("StandardsArn"),
            self.field("StandardsGuideArn"),
            self.generator_id.as_deref(),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ")
    }

    /// The security control id, from whichever place this finding's format keeps it in.
    fn control(&self) -> Result<String, String> {
        let consolidated = self
            .compliance
            .as_ref()
            .and_then(|c| c.security_control_id.clone())
            .or_else(|| {
                self.generator_id
                    .as_deref()
                    .and_then(|g| g.strip_prefix("security-control/"))
                    .map(str::to_string)
            })
            .filter(|c| !c.is_empty());
        if let Some(id) = consolidated {
            return Ok(id);
        }
        let per_standard = self
            .field("ControlId")
            .or_else(|| self.field("RuleId"))
            .filter(|c| !c.is_empty())
            .ok_or("no control id (Compliance.SecurityControlId, GeneratorId, ProductFields.ControlId or RuleId)")?;
        let standard = self.standard();
        if let Some((_, _, control)) = PER_STANDARD_CONTROLS
            .iter()
            .find(|(std, id, _)| *id == per_standard && standard.contains(std))
        {
            return Ok(control.to_string());
        }
        if is_security_control_id(per_standard) {
            return Ok(per_standard.to_string());
        }
        Err(format!(
            "per-standard control id {per_standard:?} has no known security control id"
        ))
    }

    /// GuardDuty's finding type, from `Types` (where `/` became `-`):
    /// `TTPs/Initial Access/UnauthorizedAccess:EC2-SSHBruteForce` →
    /// `UnauthorizedAccess:EC2/SSHBruteForce`.
    fn guardduty_type(&self) -> Option<String> {
        self.types.iter().find_map(|t| {
            let last = t.rsplit('/').next()?;
            let (purpose, rest) = last.split_once(':')?;
            let (resource, family) = rest.split_once('-')?;
            Some(format!("{purpose}:{resource}/{family}"))
        })
    }

    fn kind(&self, product: Product) -> FindingKind {
        let product_name = || {
            self.product_name
                .clone()
                .unwrap_or_else(|| self.product_arn.clone())
        };
        match product {
            Product::GuardDuty => match self.guardduty_type() {
                Some(t) => FindingKind::GuarddutyType(t),
                None => FindingKind::Unrecognised("GuardDuty finding with no type in Types".into()),
            },
            Product::Config => match self.field("aws/config/ConfigRuleName") {
                Some(rule) if !rule.is_empty() => FindingKind::ConfigRule(rule.to_string()),
                _ => FindingKind::Unrecognised(
                    "Config finding with no ProductFields aws/config/ConfigRuleName".into(),
                ),
            },
            // By its CVE where it names one (what patch triggers match), else by its first
            // vulnerability id, else by its type.
            Product::Inspector => {
                let ids = self.vulnerability_ids();
                match ids
                    .iter()
                    .find(|id| id.starts_with("CVE-"))
                    .or(ids.first())
                    .or(self.types.first().filter(|t| !t.is_empty()))
                {
                    Some(name) => FindingKind::Vulnerability(name.clone()),
                    None => FindingKind::Unrecognised(
                        "Inspector finding with no vulnerability id and no type".into(),
                    ),
                }
            }
            Product::Other => match self.control() {
                Ok(control) => FindingKind::Control(control),
                Err(why) if self.compliance.is_some() => {
                    FindingKind::Unrecognised(format!("{} control finding: {why}", product_name()))
                }
                Err(_) => FindingKind::Unrecognised(format!(
                    "{} finding of type {:?}",
                    product_name(),
                    self.types.first().map(String::as_str).unwrap_or("(none)")
                )),
            },
        }
    }
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
    time: Option<&str>,
) -> Result<Vec<Finding>, ParseError> {
    let intent = intent_from_action_arns(resources)?;
    let action = match intent {
        Intent::Approve => APPROVE_ACTION_ID,
        Intent::Remediate => REMEDIATE_ACTION_ID,
    };
    // Not an identity: AWS's custom-action event does not say who pressed it, and anyone
    // allowed to invoke the function can send one (README, "Operator identity").
    let requested_by =
        format!("Security Hub custom action {action} (AWS does not name who pressed it)");
    let detail: Detail = detail(KIND, raw)?;
    detail
        .findings
        .iter()
        .map(|f| {
            let mut finding = parse_one(f, Source::CustomAction)?;
            finding.intent = Some(intent);
            finding.requested_by = Some(requested_by.clone());
            finding.requested_at = time.map(super::canonical_time);
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
    // Another team's action on the same findings: a real event, just not ours.
    super::action_intent(action).ok_or_else(|| {
        ParseError::NotForReflex(format!("custom action {action:?} is not a Reflex action"))
    })
}

pub(super) fn parse_one_imported(raw: &Value) -> Result<Finding, ParseError> {
    parse_one(raw, Source::Securityhub)
}

fn parse_one(raw: &Value, source: Source) -> Result<Finding, ParseError> {
    let f: Asff = detail(KIND, raw)?;
    let product = Product::of(&f.product_arn);
    let kind = f.kind(product);
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
    let resources: Vec<Resource> = f.resources.iter().map(resource).collect();
    let severity = match &f.severity {
        Some(AsffSeverity {
            normalized: Some(n),
            ..
        }) if n.is_finite() => Severity::from_normalized(n.round().clamp(0.0, 100.0) as u8),
        Some(AsffSeverity { label: Some(l), .. }) => Severity::from_normalized(l.normalized()),
        _ => {
            return Err(ParseError::Malformed {
                kind: KIND,
                message: format!("finding {} has no severity (Normalized or Label)", f.id),
            })
        }
    };
    let mut details = FindingDetails::default();
    let mut sample = false;
    let mut id = f.id.clone();
    if product == Product::GuardDuty {
        // The ASFF Id is the GuardDuty finding's ARN; its tail is GuardDuty's own id.
        if let Some((_, tail)) = f.id.rsplit_once("/finding/") {
            id = tail.to_string();
            details.guardduty_arn = Some(f.id.clone());
        }
        details.resource_role = f
            .field("aws/guardduty/service/resourceRole")
            .map(str::to_string);
        // Security Hub keeps GuardDuty's `service.action` as flattened `ProductFields`.
        let action =
            guardduty_action::details(&guardduty_action::from_product_fields(&f.product_fields));
        details.remote_ips = action.remote_ips;
        details.dns_domain = action.dns_domain;
        details.affected_resources = action.affected_resources;
        if let Some(key) = f.resources.iter().find_map(access_key_details) {
            // GuardDuty's `accessKeyDetails` as Security Hub maps it: `userType` becomes
            // `PrincipalType`, `principalId` `PrincipalId`, `userName` `PrincipalName` (and the
            // deprecated `UserName`).
            details.user_name = text(key, "PrincipalName").or_else(|| text(key, "UserName"));
            details.user_type = text(key, "PrincipalType");
            details.principal_id = text(key, "PrincipalId");
        }
        sample = f.field("aws/guardduty/service/additionalInfo/sample") == Some("true");
    }
    if product == Product::Inspector {
        details.vulnerabilities = f.vulnerability_ids();
    }
    details.control_parameters = f
        .compliance
        .as_ref()
        .and_then(|c| c.security_control_parameters.as_ref())
        .map(control_parameters)
        .unwrap_or_default();
    for r in &resources {
        match r.kind {
            ResourceKind::IamAccessKey => details.access_key_id = Some(r.id.clone()),
            ResourceKind::Ec2Instance => details.instance_id = Some(r.id.clone()),
            _ => {}
        }
    }
    Ok(Finding {
        source,
        title: f.title.clone().unwrap_or_else(|| kind.name().to_string()),
        kind,
        severity,
        inactive: inactive(&f, product),
        observed_at: f
            .last_observed_at
            .clone()
            .or_else(|| Some(f.updated_at.clone())),
        generation: super::canonical_time(&f.updated_at),
        id,
        // Feedback goes to the Security Hub finding as Security Hub names it, whatever id the
        // record is keyed on.
        securityhub_finding: Some(SecurityHubIdentifier {
            id: f.id.clone(),
            product_arn: f.product_arn.clone(),
        }),
        product_arn: f.product_arn,
        account: f.aws_account_id,
        region,
        resources,
        details,
        intent: None,
        sample,
        requested_by: None,
        requested_at: None,
    })
}

/// `Details.AwsIamAccessKey` of an access key resource.
fn access_key_details(r: &AsffResource) -> Option<&Value> {
    (ResourceKind::parse(&r.kind) == ResourceKind::IamAccessKey)
        .then(|| r.details.as_ref()?.get("AwsIamAccessKey"))
        .flatten()
}

/// A non-empty text field of a JSON object.
fn text(object: &Value, key: &str) -> Option<String> {
    object
        .get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// `Compliance.SecurityControlParameters` by name. A parameter whose values are not all text
/// or numbers is left out whole: a list with a value dropped would say less than the control
/// was evaluated with (fewer authorised ports), which is worse than no list at all.
fn control_parameters(raw: &Value) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for p in raw.as_array().into_iter().flatten() {
        let Some(name) = p
            .get("Name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
        else {
            continue;
        };
        let values: Option<Vec<String>> = p.get("Value").and_then(Value::as_array).and_then(|vs| {
            vs.iter()
                .map(|v| match v {
                    Value::String(s) => Some(s.clone()),
                    Value::Number(n) => Some(n.to_string()),
                    _ => None,
                })
                .collect()
        });
        if let Some(values) = values {
            out.entry(name.to_string()).or_insert(values);
        }
    }
    out
}

/// A resource as ASFF names it. `Id` is an ARN, or an id of the form `AWS::::Account:1111…` or
/// `AWS::IAM::AccessKey:ASIA…` (type, then the id), or a bare id.
fn resource(r: &AsffResource) -> Resource {
    let kind = ResourceKind::parse(&r.kind);
    if r.id.starts_with("arn:") {
        return Resource {
            kind,
            id: id_from_arn(&r.id),
            arn: Some(r.id.clone()),
        };
    }
    let id = match r.id.strip_prefix("AWS::") {
        Some(rest) => rest.rsplit(':').next().unwrap_or(rest).to_string(),
        None => r.id.clone(),
    };
    Resource {
        kind,
        id,
        arn: None,
    }
}

/// Why an imported finding no longer asks for action, if it does not.
fn inactive(f: &Asff, product: Product) -> Option<String> {
    if f.record_state.as_deref() == Some("ARCHIVED") {
        return Some("record state ARCHIVED".into());
    }
    // `Workflow.Status` wins over the older `WorkflowState` when both are present.
    let workflow = match f.workflow.as_ref().and_then(|w| w.status.as_deref()) {
        Some(status) => Some(status),
        None => f.workflow_state.as_deref(),
    };
    if let Some(status @ ("RESOLVED" | "SUPPRESSED")) = workflow {
        return Some(format!("workflow status {status}"));
    }
    if product == Product::GuardDuty && f.field("aws/guardduty/service/archived") == Some("true") {
        return Some("archived in GuardDuty".into());
    }
    // Only FAILED asks for a fix; WARNING means the check could not decide.
    match f.compliance.as_ref().and_then(|c| c.status.as_deref()) {
        Some(status @ ("PASSED" | "NOT_AVAILABLE" | "WARNING")) => {
            Some(format!("compliance status {status}"))
        }
        _ => None,
    }
}
