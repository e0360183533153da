//! Where findings are read back from (`confirm_at_source`): GuardDuty `GetFindings` and Security
//! Hub `GetFindings`, answered from a registry of findings the test says the source holds, by a
//! stand-in HTTP client (aws-smithy-http-client's `infallible_client_fn`) under the real SDK
//! clients. moto keeps no GuardDuty findings at all, and its Security Hub `GetFindings` ignores
//! `Filters` (so it cannot answer "the finding with this Id"). The stand-in reads the request off
//! the wire (its path and JSON body, as Reflex builds them: `confirm::wire`) and answers
//! anything else with a 400, so a request that is not `GetFindings` fails the test.
//!
//! By default the harness mirrors every finding it delivers into the registry (the source holds
//! what the event says): the generic cases then run with the read-back confirming. Tests of the
//! read-back itself turn mirroring off and register what the source holds by hand.

use aws_smithy_http_client::test_util::infallible_client_fn;
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

    /// A GuardDuty client whose `GetFindings` answers from the registry, read off the wire: the
    /// request must be `POST /detector/{id}/findings/get` with `findingIds` in its body.
    pub fn guardduty_client(&self) -> aws_sdk_guardduty::Client {
        let at = self.clone();
        let http = infallible_client_fn(move |req: http::Request<SdkBody>| {
            let (path, body) = posted(&req);
            if !(path.starts_with("/detector/") && path.ends_with("/findings/get")) {
                return answer(400, json!({"message": format!("not GetFindings: {path}")}));
            }
            let ids: Vec<String> = body["findingIds"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect();
            at.asked.lock().unwrap().extend(ids.iter().cloned());
            if *at.failing.lock().unwrap() {
                return answer(500, json!({"message": "internal failure"}));
            }
            let held = at.guardduty.lock().unwrap();
            let findings: Vec<Value> = ids
                .iter()
                .filter_map(|id| held.get(id))
                .map(guardduty_api_shape)
                .collect();
            answer(200, json!({ "findings": findings }))
        });
        aws_sdk_guardduty::Client::new(&stand_in(http))
    }

    /// A Security Hub client whose `GetFindings` answers from the registry by the `Id` and
    /// `ProductArn` filters, read off the wire: the request must be `POST /findings`.
    pub fn securityhub_client(&self) -> aws_sdk_securityhub::Client {
        let at = self.clone();
        let http = infallible_client_fn(move |req: http::Request<SdkBody>| {
            let (path, body) = posted(&req);
            if path != "/findings" {
                return answer(400, json!({"message": format!("not GetFindings: {path}")}));
            }
            let equal_to = |name: &str| -> Vec<String> {
                body["Filters"][name]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|f| f["Comparison"] == "EQUALS")
                    .filter_map(|f| f["Value"].as_str().map(str::to_string))
                    .collect()
            };
            let ids = equal_to("Id");
            let products = equal_to("ProductArn");
            at.asked.lock().unwrap().extend(ids.iter().cloned());
            if *at.failing.lock().unwrap() {
                return answer(500, json!({"message": "internal failure"}));
            }
            let held = at.securityhub.lock().unwrap();
            let findings: Vec<Value> = ids
                .iter()
                .filter_map(|id| held.get(id))
                .filter(|f| {
                    products.is_empty()
                        || products.iter().any(|p| f["ProductArn"].as_str() == Some(p))
                })
                .map(asff_api_shape)
                .collect();
            answer(200, json!({ "Findings": findings }))
        });
        aws_sdk_securityhub::Client::new(&stand_in(http))
    }

    pub fn reader(&self) -> reflex_shared::confirm::read::SourceReader {
        reflex_shared::confirm::read::SourceReader {
            guardduty: self.guardduty_client(),
            securityhub: self.securityhub_client(),
        }
    }
}

/// A client configuration answered by `http`, with test credentials and no SDK retries (one
/// call is one request).
fn stand_in(http: aws_smithy_runtime_api::client::http::SharedHttpClient) -> aws_types::SdkConfig {
    aws_types::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_types::region::Region::new("us-east-1"))
        .credentials_provider(
            aws_credential_types::provider::SharedCredentialsProvider::new(
                aws_credential_types::Credentials::new(
                    "AKIDREADBACK",
                    "secret",
                    None,
                    None,
                    "test",
                ),
            ),
        )
        .retry_config(aws_types::sdk_config::RetryConfig::disabled())
        .http_client(http)
        .build()
}

/// A request's path and JSON body; `Null` where it has none, and an empty path unless a POST.
fn posted(req: &http::Request<SdkBody>) -> (String, Value) {
    if req.method() != http::Method::POST {
        return (String::new(), Value::Null);
    }
    let body = req
        .body()
        .bytes()
        .and_then(|b| serde_json::from_slice(b).ok())
        .unwrap_or(Value::Null);
    (req.uri().path().to_string(), body)
}

fn answer(status: u16, body: Value) -> http::Response<SdkBody> {
    http::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(SdkBody::from(body.to_string()))
        .unwrap()
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

/// The parts of an event's GuardDuty finding that `GetFindings` answers and Reflex reads: the
/// stand-in answers no more than these, so a read-back that needed some other part of the
/// event's shape would fail here (event details also carry loosely typed extras).
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
