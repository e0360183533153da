//! The reads that bring a finding back from its source. Each answer is written back into the
//! API's own JSON shape and parsed by the same parser as events, so the comparison is between
//! two findings read alike.

use super::{compare, origin, Confirmation, Origin};
use crate::finding::{parse_asff_finding, parse_guardduty_finding, Finding};
use crate::remediation::RemediationError;
use aws_sdk_securityhub::types::{
    AwsSecurityFinding, AwsSecurityFindingFilters, StringFilter, StringFilterComparison,
};
use serde_json::{json, Map, Value};

/// Security Hub pages read at most, looking for the one finding whose `Id` and `ProductArn` are
/// the ones asked for. AWS answers the filter with that one finding on the first page; the
/// answer is still checked, never trusted to be filtered.
const SECURITY_HUB_PAGES: usize = 5;

/// The clients a read-back needs.
#[derive(Debug, Clone)]
pub struct SourceReader {
    pub guardduty: aws_sdk_guardduty::Client,
    pub securityhub: aws_sdk_securityhub::Client,
}

impl SourceReader {
    pub fn new(sdk: &aws_types::SdkConfig) -> SourceReader {
        SourceReader {
            guardduty: aws_sdk_guardduty::Client::new(sdk),
            securityhub: aws_sdk_securityhub::Client::new(sdk),
        }
    }

    /// Whether `event`'s source confirms it (only read when `asked`).
    pub async fn confirm(
        &self,
        event: &Finding,
        asked: bool,
    ) -> Result<Confirmation, RemediationError> {
        if !asked {
            return Ok(Confirmation::NotAsked);
        }
        let origin = match origin(event) {
            Ok(o) => o,
            Err(why) => return Ok(Confirmation::Unconfirmed(why)),
        };
        let at_source = self.read(&origin).await?;
        Ok(match compare(event, at_source.as_ref()) {
            Ok(()) => Confirmation::Confirmed,
            Err(why) => Confirmation::Unconfirmed(why),
        })
    }

    /// The finding as its source holds it now; `None` when the source has no such finding.
    pub async fn read(&self, origin: &Origin) -> Result<Option<Finding>, RemediationError> {
        match origin {
            Origin::Guardduty { detector, id } => self.guardduty(detector, id).await,
            Origin::SecurityHub { id, product_arn } => self.securityhub(id, product_arn).await,
        }
    }

    async fn guardduty(
        &self,
        detector: &str,
        id: &str,
    ) -> Result<Option<Finding>, RemediationError> {
        const API: &str = "guardduty:GetFindings";
        let request = self
            .guardduty
            .get_findings()
            .detector_id(detector)
            .finding_ids(id)
            .send();
        let out = on_its_own(API, request)
            .await?
            .map_err(|e| RemediationError::aws(API, e))?;
        out.findings()
            .iter()
            .find(|f| f.id() == Some(id))
            .map(|f| parsed(API, parse_guardduty_finding(&guardduty_json(f))))
            .transpose()
    }

    async fn securityhub(
        &self,
        id: &str,
        product_arn: &str,
    ) -> Result<Option<Finding>, RemediationError> {
        const API: &str = "securityhub:GetFindings";
        let equals = |v: &str| {
            StringFilter::builder()
                .value(v)
                .comparison(StringFilterComparison::Equals)
                .build()
        };
        let filters = AwsSecurityFindingFilters::builder()
            .id(equals(id))
            .product_arn(equals(product_arn))
            .build();
        let mut token: Option<String> = None;
        for _ in 0..SECURITY_HUB_PAGES {
            let request = self
                .securityhub
                .get_findings()
                .filters(filters.clone())
                .set_next_token(token.take())
                .send();
            let out = on_its_own(API, request)
                .await?
                .map_err(|e| RemediationError::aws(API, e))?;
            if let Some(f) = out
                .findings()
                .iter()
                .find(|f| f.id() == Some(id) && f.product_arn() == Some(product_arn))
            {
                return parsed(API, parse_asff_finding(&asff_json(f))).map(Some);
            }
            match out.next_token().filter(|t| !t.is_empty()) {
                Some(t) => token = Some(t.to_string()),
                None => return Ok(None),
            }
        }
        Ok(None)
    }
}

/// `request` run as a task of its own, polled from the runtime's top rather than from deep in
/// the pipeline's future: the SDK's deserializer for a whole finding (hundreds of fields) takes
/// large stack frames, more so unoptimised.
async fn on_its_own<T: Send + 'static>(
    api: &'static str,
    request: impl std::future::Future<Output = T> + Send + 'static,
) -> Result<T, RemediationError> {
    tokio::spawn(request)
        .await
        .map_err(|e| RemediationError::Aws {
            api,
            message: format!("the read stopped: {e}"),
            fault: crate::aws_error::Fault::Transient,
        })
}

fn parsed(
    api: &'static str,
    finding: Result<Finding, crate::finding::ParseError>,
) -> Result<Finding, RemediationError> {
    finding.map_err(|e| {
        RemediationError::Invalid(format!("{api} answered a finding Reflex cannot read: {e}"))
    })
}

/// Inserts `value` under `key` when it is present.
fn put(map: &mut Map<String, Value>, key: &str, value: Option<impl Into<Value>>) {
    if let Some(v) = value {
        map.insert(key.to_string(), v.into());
    }
}

/// A GuardDuty finding as GuardDuty's JSON writes it: the parts Reflex reads.
fn guardduty_json(f: &aws_sdk_guardduty::types::Finding) -> Value {
    let mut finding = Map::new();
    put(&mut finding, "id", f.id());
    put(&mut finding, "arn", f.arn());
    put(&mut finding, "accountId", f.account_id());
    put(&mut finding, "region", f.region());
    put(&mut finding, "type", f.r#type());
    put(&mut finding, "severity", f.severity());
    put(&mut finding, "title", f.title());
    put(&mut finding, "updatedAt", f.updated_at());
    let mut resource = Map::new();
    if let Some(r) = f.resource() {
        put(&mut resource, "resourceType", r.resource_type());
        if let Some(k) = r.access_key_details() {
            let mut key = Map::new();
            put(&mut key, "accessKeyId", k.access_key_id());
            put(&mut key, "principalId", k.principal_id());
            put(&mut key, "userName", k.user_name());
            put(&mut key, "userType", k.user_type());
            resource.insert("accessKeyDetails".into(), key.into());
        }
        if let Some(i) = r.instance_details() {
            resource.insert(
                "instanceDetails".into(),
                json!({"instanceId": i.instance_id()}),
            );
        }
        let buckets: Vec<Value> = r
            .s3_bucket_details()
            .iter()
            .map(|b| json!({"name": b.name(), "arn": b.arn()}))
            .collect();
        resource.insert("s3BucketDetails".into(), buckets.into());
    }
    finding.insert("resource".into(), resource.into());
    let mut service = Map::new();
    if let Some(s) = f.service() {
        put(&mut service, "archived", s.archived());
        put(&mut service, "resourceRole", s.resource_role());
        put(&mut service, "eventLastSeen", s.event_last_seen());
    }
    finding.insert("service".into(), service.into());
    finding.into()
}

/// An ASFF finding as Security Hub's JSON writes it: the parts Reflex reads.
fn asff_json(f: &AwsSecurityFinding) -> Value {
    let mut finding = Map::new();
    put(&mut finding, "Id", f.id());
    put(&mut finding, "ProductArn", f.product_arn());
    put(&mut finding, "ProductName", f.product_name());
    put(&mut finding, "AwsAccountId", f.aws_account_id());
    put(&mut finding, "Region", f.region());
    put(&mut finding, "GeneratorId", f.generator_id());
    put(&mut finding, "Title", f.title());
    put(&mut finding, "UpdatedAt", f.updated_at());
    put(&mut finding, "LastObservedAt", f.last_observed_at());
    finding.insert("Types".into(), f.types().to_vec().into());
    if let Some(s) = f.severity() {
        let mut severity = Map::new();
        put(&mut severity, "Label", s.label().map(|l| l.as_str()));
        put(&mut severity, "Normalized", s.normalized());
        finding.insert("Severity".into(), severity.into());
    }
    let resources: Vec<Value> = f
        .resources()
        .iter()
        .map(|r| {
            let mut resource = Map::new();
            put(&mut resource, "Type", r.r#type());
            put(&mut resource, "Id", r.id());
            put(&mut resource, "Region", r.region());
            if let Some(k) = r.details().and_then(|d| d.aws_iam_access_key()) {
                let mut key = Map::new();
                put(&mut key, "PrincipalName", k.principal_name());
                put(&mut key, "PrincipalId", k.principal_id());
                put(&mut key, "PrincipalType", k.principal_type());
                resource.insert("Details".into(), json!({ "AwsIamAccessKey": key }));
            }
            resource.into()
        })
        .collect();
    finding.insert("Resources".into(), resources.into());
    if let Some(c) = f.compliance() {
        let mut compliance = Map::new();
        put(&mut compliance, "Status", c.status().map(|s| s.as_str()));
        put(
            &mut compliance,
            "SecurityControlId",
            c.security_control_id(),
        );
        let parameters: Vec<Value> = c
            .security_control_parameters()
            .iter()
            .map(|p| json!({"Name": p.name(), "Value": p.value()}))
            .collect();
        if !parameters.is_empty() {
            compliance.insert("SecurityControlParameters".into(), parameters.into());
        }
        finding.insert("Compliance".into(), compliance.into());
    }
    if let Some(status) = f.workflow().and_then(|w| w.status()) {
        finding.insert("Workflow".into(), json!({"Status": status.as_str()}));
    }
    put(
        &mut finding,
        "WorkflowState",
        f.workflow_state().map(|w| w.as_str()),
    );
    put(
        &mut finding,
        "RecordState",
        f.record_state().map(|r| r.as_str()),
    );
    if let Some(fields) = f.product_fields() {
        let fields: Map<String, Value> = fields
            .iter()
            .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
            .collect();
        finding.insert("ProductFields".into(), fields.into());
    }
    finding.into()
}
