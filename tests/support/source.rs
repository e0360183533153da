//! Where findings are read back from (`confirm_at_source`): GuardDuty `GetFindings` and Security
//! Hub `GetFindings`, answered by aws-smithy-mocks from a registry of findings the test says the
//! source holds. moto keeps no GuardDuty findings at all, and its Security Hub `GetFindings`
//! ignores `Filters` (so it cannot answer "the finding with this Id"): both are mocked here, and
//! the real SDK parses the mocked HTTP answers.
//!
//! By default the harness mirrors every finding it delivers into the registry (the source holds
//! what the event says): the generic cases then run with the read-back confirming. Tests of the
//! read-back itself turn mirroring off and register what the source holds by hand.

use aws_smithy_mocks::{mock, mock_client, MockResponse, RuleMode};
use aws_smithy_runtime_api::http::{Response, StatusCode};
use aws_smithy_types::body::SdkBody;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// What the sources hold: GuardDuty findings by id, Security Hub findings by `Id`, and every
/// id asked for, in order.
#[derive(Clone, Default)]
pub struct AtSource {
    guardduty: Arc<Mutex<HashMap<String, Value>>>,
    securityhub: Arc<Mutex<HashMap<String, Value>>>,
    /// When set, every read answers an HTTP 500 (a source that is down).
    pub failing: Arc<Mutex<bool>>,
    asked: Arc<Mutex<Vec<String>>>,
}

impl AtSource {
    /// The source holds the findings `event` carries, as the event writes them.
    pub fn mirror(&self, event: &Value) {
        match event["source"].as_str() {
            Some("aws.guardduty") => self.guardduty_holds(&event["detail"]),
            Some("aws.securityhub") => {
                for f in event["detail"]["findings"].as_array().into_iter().flatten() {
                    self.securityhub_holds(f);
                }
            }
            _ => {}
        }
    }

    /// GuardDuty holds this finding (as GuardDuty's API writes it: an event's `detail`).
    pub fn guardduty_holds(&self, finding: &Value) {
        if let Some(id) = finding["id"].as_str() {
            self.guardduty
                .lock()
                .unwrap()
                .insert(id.to_string(), finding.clone());
        }
    }

    /// Security Hub holds this ASFF finding.
    pub fn securityhub_holds(&self, finding: &Value) {
        if let Some(id) = finding["Id"].as_str() {
            self.securityhub
                .lock()
                .unwrap()
                .insert(id.to_string(), finding.clone());
        }
    }

    /// Every finding id read back so far.
    pub fn asked(&self) -> Vec<String> {
        self.asked.lock().unwrap().clone()
    }

    /// A GuardDuty client whose `GetFindings` answers from the registry.
    pub fn guardduty_client(&self) -> aws_sdk_guardduty::Client {
        let at = self.clone();
        let rule =
            mock!(aws_sdk_guardduty::Client::get_findings).then_compute_response(move |input| {
                let ids = input.finding_ids().to_vec();
                at.asked.lock().unwrap().extend(ids.iter().cloned());
                if *at.failing.lock().unwrap() {
                    return MockResponse::Http(http(500, json!({"message": "internal failure"})));
                }
                let held = at.guardduty.lock().unwrap();
                let findings: Vec<Value> = ids
                    .iter()
                    .filter_map(|id| held.get(id))
                    .map(guardduty_api_shape)
                    .collect();
                MockResponse::Http(http(200, json!({ "findings": findings })))
            });
        mock_client!(aws_sdk_guardduty, RuleMode::MatchAny, [&rule], |c| c
            .retry_config(
                aws_sdk_guardduty::config::retry::RetryConfig::disabled()
            ))
    }

    /// A Security Hub client whose `GetFindings` answers from the registry by the `Id` filter.
    pub fn securityhub_client(&self) -> aws_sdk_securityhub::Client {
        let at = self.clone();
        let rule =
            mock!(aws_sdk_securityhub::Client::get_findings).then_compute_response(move |input| {
                let ids: Vec<String> = input
                    .filters()
                    .map(|f| {
                        f.id()
                            .iter()
                            .filter_map(|s| s.value())
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default();
                at.asked.lock().unwrap().extend(ids.iter().cloned());
                if *at.failing.lock().unwrap() {
                    return MockResponse::Http(http(500, json!({"message": "internal failure"})));
                }
                let held = at.securityhub.lock().unwrap();
                let findings: Vec<Value> = ids
                    .iter()
                    .filter_map(|id| held.get(id))
                    .map(asff_api_shape)
                    .collect();
                MockResponse::Http(http(200, json!({ "Findings": findings })))
            });
        mock_client!(aws_sdk_securityhub, RuleMode::MatchAny, [&rule], |c| c
            .retry_config(
                aws_sdk_securityhub::config::retry::RetryConfig::disabled()
            ))
    }

    pub fn reader(&self) -> reflex_shared::confirm::read::SourceReader {
        reflex_shared::confirm::read::SourceReader {
            guardduty: self.guardduty_client(),
            securityhub: self.securityhub_client(),
        }
    }
}

fn http(status: u16, body: Value) -> Response {
    Response::new(
        StatusCode::try_from(status).unwrap(),
        SdkBody::from(body.to_string()),
    )
}

/// Keeps only `keys` of `value` (an object), where present.
fn only(value: &Value, keys: &[&str]) -> Value {
    let mut out = Map::new();
    for k in keys {
        if let Some(v) = value.get(*k) {
            out.insert(k.to_string(), v.clone());
        }
    }
    out.into()
}

/// The parts of an event's GuardDuty finding that `GetFindings` answers and Reflex reads (event
/// details carry loosely typed extras the API's strict shapes would refuse).
fn guardduty_api_shape(detail: &Value) -> Value {
    let mut f = only(
        detail,
        &[
            "id",
            "arn",
            "accountId",
            "region",
            "partition",
            "type",
            "severity",
            "title",
            "createdAt",
            "updatedAt",
            "schemaVersion",
        ],
    );
    let r = &detail["resource"];
    let mut resource = only(r, &["resourceType", "accessKeyDetails"]);
    if let Some(id) = r["instanceDetails"]["instanceId"].as_str() {
        resource["instanceDetails"] = json!({ "instanceId": id });
    }
    if let Some(buckets) = r["s3BucketDetails"].as_array() {
        resource["s3BucketDetails"] = buckets
            .iter()
            .map(|b| only(b, &["name", "arn", "type"]))
            .collect();
    }
    f["resource"] = resource;
    f["service"] = only(
        &detail["service"],
        &[
            "archived",
            "resourceRole",
            "serviceName",
            "detectorId",
            "eventLastSeen",
        ],
    );
    f
}

/// The parts of an ASFF finding that `GetFindings` answers and Reflex reads.
fn asff_api_shape(asff: &Value) -> Value {
    let mut f = only(
        asff,
        &[
            "Id",
            "ProductArn",
            "ProductName",
            "AwsAccountId",
            "Region",
            "GeneratorId",
            "Title",
            "Description",
            "CreatedAt",
            "UpdatedAt",
            "LastObservedAt",
            "Types",
            "SchemaVersion",
            "Compliance",
            "Workflow",
            "WorkflowState",
            "RecordState",
            "ProductFields",
        ],
    );
    if let Some(Value::Object(fields)) = f.get_mut("ProductFields") {
        fields.retain(|_, v| v.is_string());
    }
    if let Some(compliance) = f.get_mut("Compliance") {
        *compliance = only(
            compliance,
            &["Status", "SecurityControlId", "SecurityControlParameters"],
        );
        // The API writes every parameter value as text.
        for p in compliance
            .get_mut("SecurityControlParameters")
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            if let Some(values) = p["Value"].as_array_mut() {
                for v in values.iter_mut() {
                    if !v.is_string() {
                        *v = Value::from(v.to_string());
                    }
                }
            }
        }
    }
    if let Some(label) = asff["Severity"]["Label"].as_str() {
        f["Severity"] = json!({ "Label": label });
    }
    f["Resources"] = asff["Resources"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            let mut out = only(r, &["Type", "Id", "Region", "Partition"]);
            if let Some(key) = r["Details"].get("AwsIamAccessKey") {
                out["Details"] = json!({ "AwsIamAccessKey": only(key, &["PrincipalName", "PrincipalId", "PrincipalType", "UserName"]) });
            }
            out
        })
        .collect();
    f
}
