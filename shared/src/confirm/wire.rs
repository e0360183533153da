//! The read-back's two requests, GuardDuty `GetFindings` and Security Hub `GetFindings`, with
//! their answers kept as the APIs' own JSON for Reflex's finding parser.
//!
//! Why not the SDK's `get_findings()`: its answers are the SDK's types for a whole GuardDuty
//! finding and a whole ASFF finding (hundreds of resource types): with them, `aws_sdk_securityhub`
//! and `aws_sdk_guardduty` were 2.3 MB (1,835 + 456 KB) of the 9.07 MB of code and data in
//! s3-block-public-access's arm64 binary, 6.4 MB without (docs/benchmarks.md, "The package, tuned
//! again"), to read the dozen fields Reflex's own parser reads anyway.
//!
//! So each request goes through a small operation of the same client and the same protocol
//! (REST JSON, `POST`), its *carrier*: the SDK still resolves the endpoint, signs (SigV4, after
//! the change below), retries, times out and reads an error answer. Before signing, [`Rewrite`]
//! puts the `GetFindings` path and body in place of the carrier's, and refuses to send anything
//! if the carrier's request is not the one expected (an SDK that changed its shape fails closed:
//! nothing is read, nothing is confirmed). After the carrier's deserializer has read past the
//! answer (unknown fields are skipped), the interceptor keeps the answer's body.
//!
//! The IAM action checked is the request's, `GetFindings`: the roles keep exactly that action.

use crate::remediation::RemediationError;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    AfterDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextMut,
    BeforeTransmitInterceptorContextRef,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::SensitiveOutput;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::ConfigBag;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

/// GuardDuty `GetFindings` for one finding id: the answer's JSON (`{"findings": [...]}`).
pub async fn guardduty_get_findings(
    client: &aws_sdk_guardduty::Client,
    detector: &str,
    id: &str,
) -> Result<Value, RemediationError> {
    const API: &str = "guardduty:GetFindings";
    let rewrite = Rewrite::new(API, guardduty_path, json!({ "findingIds": [id] }));
    let answer = client
        .list_findings()
        .detector_id(detector)
        .customize()
        .interceptor(rewrite.clone())
        .send()
        .await;
    rewrite.answer(answer.map(|_| ()))
}

/// Security Hub `GetFindings` filtered to one `Id` and `ProductArn`, one page (from `token`):
/// the answer's JSON (`{"Findings": [...], "NextToken": ...}`).
pub async fn securityhub_get_findings(
    client: &aws_sdk_securityhub::Client,
    id: &str,
    product_arn: &str,
    token: Option<&str>,
) -> Result<Value, RemediationError> {
    const API: &str = "securityhub:GetFindings";
    let equals = |v: &str| json!([{ "Value": v, "Comparison": "EQUALS" }]);
    let mut body = json!({ "Filters": { "Id": equals(id), "ProductArn": equals(product_arn) } });
    if let Some(t) = token {
        body["NextToken"] = t.into();
    }
    let rewrite = Rewrite::new(API, securityhub_path, body);
    let answer = client
        .describe_action_targets()
        .customize()
        .interceptor(rewrite.clone())
        .send()
        .await;
    rewrite.answer(answer.map(|_| ()))
}

/// GetFindings' path from its carrier's: ListFindings is `POST /detector/{detectorId}/findings`,
/// GetFindings the same path (the detector id encoded by the SDK) with `/get` after it.
fn guardduty_path(carrier: &str) -> Option<String> {
    (carrier.contains("/detector/") && carrier.ends_with("/findings"))
        .then(|| format!("{carrier}/get"))
}

/// GetFindings' path from its carrier's: DescribeActionTargets is `POST /actionTargets/get`,
/// GetFindings `POST /findings` (after the endpoint's own path, if it has one).
fn securityhub_path(carrier: &str) -> Option<String> {
    carrier
        .strip_suffix("/actionTargets/get")
        .map(|stem| format!("{stem}/findings"))
}

/// Puts a request's path and JSON body in place of its carrier's before signing, and keeps the
/// answer's body.
#[derive(Clone)]
struct Rewrite {
    api: &'static str,
    /// The request's path from the carrier's, or `None` when the carrier's is not the expected.
    path: fn(&str) -> Option<String>,
    body: Arc<String>,
    /// Why the request was not sent (an SDK error would hide the reason).
    refused: Arc<Mutex<Option<String>>>,
    /// The body of the last attempt's answer, when it succeeded (emptied before each attempt).
    kept: Arc<Mutex<Option<Vec<u8>>>>,
}

impl std::fmt::Debug for Rewrite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rewrite").field("api", &self.api).finish()
    }
}

impl Rewrite {
    fn new(api: &'static str, path: fn(&str) -> Option<String>, body: Value) -> Rewrite {
        Rewrite {
            api,
            path,
            body: Arc::new(body.to_string()),
            refused: Arc::default(),
            kept: Arc::default(),
        }
    }

    fn apply(&self, request: &mut aws_smithy_runtime_api::http::Request) -> Result<(), String> {
        if request.method() != "POST" {
            return Err(format!(
                "the carrier of {} is a {}, not a POST",
                self.api,
                request.method()
            ));
        }
        let full = request.uri().to_string();
        let uri = request.uri_mut();
        if uri.query().is_some() {
            return Err(format!("the carrier of {} carries a query", self.api));
        }
        let carrier = uri.path().to_string();
        let path = (self.path)(&carrier).ok_or_else(|| {
            format!(
                "the carrier of {} is not the request expected ({carrier})",
                self.api
            )
        })?;
        let origin = full
            .strip_suffix(carrier.as_str())
            .ok_or_else(|| format!("the carrier of {} has an unusual URI ({full})", self.api))?;
        request
            .set_uri(format!("{origin}{path}"))
            .map_err(|e| format!("{}: {e}", self.api))?;
        let headers = request.headers_mut();
        headers.insert("content-type", "application/json");
        headers.insert("content-length", self.body.len().to_string());
        *request.body_mut() = SdkBody::from(self.body.as_str().to_owned());
        Ok(())
    }

    /// The answer's JSON, or the error of the call, the carrier's refusal, or an answer that is
    /// not JSON.
    fn answer<E>(
        &self,
        sent: Result<
            (),
            aws_smithy_runtime_api::client::result::SdkError<
                E,
                aws_smithy_runtime_api::http::Response,
            >,
        >,
    ) -> Result<Value, RemediationError>
    where
        E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
    {
        if let Some(why) = self.refused.lock().ok().and_then(|mut r| r.take()) {
            return Err(RemediationError::Invalid(why));
        }
        sent.map_err(|e| RemediationError::aws(self.api, e))?;
        let body = self
            .kept
            .lock()
            .ok()
            .and_then(|mut k| k.take())
            .ok_or_else(|| {
                RemediationError::Invalid(format!("{}: the answer was not kept", self.api))
            })?;
        serde_json::from_slice(&body).map_err(|e| {
            RemediationError::Invalid(format!(
                "{} answered something that is not JSON: {e}",
                self.api
            ))
        })
    }
}

impl Intercept for Rewrite {
    fn name(&self) -> &'static str {
        "ReflexReadBack"
    }

    fn read_before_attempt(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Ok(mut kept) = self.kept.lock() {
            *kept = None;
        }
        Ok(())
    }

    fn modify_before_signing(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        // A finding names keys, principals and addresses: the SDK redacts GetFindings' answer
        // from its trace logs, and would not know to for the carrier's.
        cfg.interceptor_state().store_put(SensitiveOutput);
        self.apply(context.request_mut()).map_err(|why| {
            if let Ok(mut r) = self.refused.lock() {
                *r = Some(why.clone());
            }
            BoxError::from(why)
        })
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let response = context.response();
        if response.status().is_success() && context.output_or_error().is_ok() {
            if let (Some(bytes), Ok(mut kept)) = (response.body().bytes(), self.kept.lock()) {
                *kept = Some(bytes.to_vec());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn carrier(method: &str, uri: &str) -> aws_smithy_runtime_api::http::Request {
        let mut r = aws_smithy_runtime_api::http::Request::new(SdkBody::from("{}"));
        r.set_method(method).unwrap();
        r.set_uri(uri).unwrap();
        r.headers_mut().insert("content-length", "2");
        r
    }

    fn guardduty() -> Rewrite {
        Rewrite::new(
            "guardduty:GetFindings",
            guardduty_path,
            json!({"findingIds": ["f1"]}),
        )
    }

    #[test]
    fn the_carrier_becomes_get_findings_with_its_body() {
        let rewrite = guardduty();
        let mut r = carrier(
            "POST",
            "https://guardduty.us-east-1.amazonaws.com/detector/d1/findings",
        );
        rewrite.apply(&mut r).unwrap();
        assert_eq!(
            r.uri(),
            "https://guardduty.us-east-1.amazonaws.com/detector/d1/findings/get"
        );
        assert_eq!(
            r.body().bytes(),
            Some(br#"{"findingIds":["f1"]}"#.as_slice())
        );
        assert_eq!(r.headers().get("content-length"), Some("21"));
        assert_eq!(r.headers().get("content-type"), Some("application/json"));
    }

    #[test]
    fn an_endpoint_with_a_path_keeps_it() {
        let rewrite = Rewrite::new("securityhub:GetFindings", securityhub_path, json!({}));
        let mut r = carrier("POST", "http://127.0.0.1:5000/prefix/actionTargets/get");
        rewrite.apply(&mut r).unwrap();
        assert_eq!(r.uri(), "http://127.0.0.1:5000/prefix/findings");
    }

    #[test]
    fn a_carrier_not_as_expected_is_refused_and_left_alone() {
        let cases = [
            (
                "GET",
                "https://guardduty.us-east-1.amazonaws.com/detector/d1/findings",
                "not a POST",
            ),
            (
                "POST",
                "https://guardduty.us-east-1.amazonaws.com/detector/d1/findings?x=1",
                "query",
            ),
            (
                "POST",
                "https://guardduty.us-east-1.amazonaws.com/detector/d1/filters",
                "not the request expected",
            ),
        ];
        for (method, uri, why) in cases {
            let mut r = carrier(method, uri);
            let err = guardduty().apply(&mut r).unwrap_err();
            assert!(err.contains(why), "{uri}: {err}");
            assert_eq!(r.uri(), uri);
            assert_eq!(r.body().bytes(), Some(b"{}".as_slice()));
        }
    }
}

#[cfg(test)]
mod retried {
    //! The read through the SDK's retries, answered by aws-smithy-mocks (HTTP answers, so the
    //! request is still built, rewritten and signed on each attempt).
    use super::*;
    use crate::sent::Sent;
    use aws_sdk_guardduty::config::retry::RetryConfig;
    use aws_sdk_guardduty::config::{BehaviorVersion, Credentials, Region};
    use aws_smithy_mocks::{create_mock_http_client, mock, MockResponseInterceptor};
    use std::time::Duration;

    #[tokio::test]
    async fn each_attempt_sends_get_findings_signed_and_the_last_answer_is_kept() {
        let rule = mock!(aws_sdk_guardduty::Client::list_findings)
            .sequence()
            .http_status(503, Some(r#"{"message":"unavailable"}"#.into()))
            .http_status(200, Some(r#"{"findings":[{"id":"f1"}]}"#.into()))
            .build();
        let sent = Sent::default();
        let config = aws_sdk_guardduty::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("AKIDTEST", "secret", None, None, "test"))
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(2)
                    .with_initial_backoff(Duration::from_millis(1)),
            )
            .http_client(create_mock_http_client())
            .interceptor(MockResponseInterceptor::new().with_rule(&rule))
            .interceptor(sent.clone())
            .build();
        let client = aws_sdk_guardduty::Client::from_conf(config);
        let answer = guardduty_get_findings(&client, "d1", "f1").await.unwrap();
        assert_eq!(answer["findings"][0]["id"], "f1");
        assert_eq!(rule.num_calls(), 2);
        let sent = sent.attempts();
        assert_eq!(sent.len(), 2, "{sent:?}");
        for a in sent.iter() {
            assert_eq!(
                a.uri,
                "https://guardduty.us-east-1.amazonaws.com/detector/d1/findings/get"
            );
            assert_eq!(a.body, r#"{"findingIds":["f1"]}"#);
            let authorization = a.header("authorization").unwrap_or_default();
            assert!(
                authorization.contains("/guardduty/aws4_request")
                    && authorization.contains("content-length"),
                "{a:?}"
            );
            assert!(a.sensitive, "{a:?}");
        }
    }

    #[tokio::test]
    async fn an_answer_that_never_succeeds_is_the_calls_error_and_nothing_is_kept() {
        let rule = mock!(aws_sdk_guardduty::Client::list_findings)
            .sequence()
            .http_status(
                400,
                Some(r#"{"__type":"BadRequestException","message":"no"}"#.into()),
            )
            .build();
        let config = aws_sdk_guardduty::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("AKIDTEST", "secret", None, None, "test"))
            .retry_config(RetryConfig::disabled())
            .http_client(create_mock_http_client())
            .interceptor(MockResponseInterceptor::new().with_rule(&rule))
            .build();
        let client = aws_sdk_guardduty::Client::from_conf(config);
        let err = guardduty_get_findings(&client, "d1", "f1")
            .await
            .unwrap_err();
        assert!(
            matches!(
                &err,
                RemediationError::Aws {
                    api: "guardduty:GetFindings",
                    fault: crate::aws_error::Fault::Permanent,
                    ..
                }
            ),
            "{err:?}"
        );
    }
}
