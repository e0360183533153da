//! The deployed artifact itself: the function's binary (thin `main.rs`) started as Lambda starts
//! it, with the runtime environment variables set, served events by a fake Runtime API (see
//! `support/lambda_api.rs`), and talking to the emulator. Its policy comes from an SSM parameter,
//! as in the template.

use aws_sdk_ssm::types::ParameterType;
use reflex_shared::ledger::Lookup;
use reflex_shared::status::{Reason, Status};
use reflex_tests::lambda_api::{serve_binary, serve_binary_as, Posted};
use reflex_tests::*;
use s3_block_public_access::BlockConfig;
use serde_json::Value;

const ENFORCE: &str = "version: 1\nremediations:\n  s3-block-public-access: {mode: enforce}\n";

#[tokio::test]
async fn the_function_binary_serves_invocations_like_lambda() {
    let h = Harness::new().await;
    let fixed = h.bucket(Some(ALL_OFF), &[]).await;
    let dry = h.bucket(Some(ALL_OFF), &[]).await;

    // The policy lives in SSM: S3.2 findings are dry-run, everything else enforced.
    let parameter = format!("/reflex-it/{}", unique("policy"));
    let ssm = aws_sdk_ssm::Client::new(&sdk_config().await);
    ssm.put_parameter()
        .name(&parameter)
        .r#type(ParameterType::String)
        .value("version: 1\nremediations:\n  s3-block-public-access:\n    overrides:\n      - match: {types: [S3.2]}\n        set: {mode: dry-run}\n")
        .send()
        .await
        .unwrap();

    let events = vec![
        sample_for(
            "s3-block-public-access/securityhub-s3.8-imported.json",
            &fixed,
        ),
        sample_for(
            "s3-block-public-access/securityhub-s3.2-legacy-control-id.json",
            &dry,
        ),
        serde_json::from_str(&sample("hostile/not-an-eventbridge-event.json")).unwrap(),
    ];
    let served = serve_binary(
        &binary("s3-block-public-access"),
        &[
            ("AWS_LAMBDA_FUNCTION_NAME", "reflex-s3-block-public-access"),
            ("AWS_LAMBDA_FUNCTION_VERSION", "7"),
            ("REFLEX_TABLE", h.setup.ledger.table()),
            ("REFLEX_POLICY_PARAMETER", &parameter),
            ("REFLEX_METRICS_NAMESPACE", "Reflex/reflex-it"),
        ],
        events,
    )
    .await;
    let posted = &served.posted;

    assert!(posted.iter().all(|p| p.kind == "response"), "{posted:?}");
    let outcome = |i: usize| -> &Value { &posted[i].body[0] };
    assert_eq!(posted[0].request_id, "req-0");
    assert_eq!(outcome(0)["status"], "succeeded", "{:?}", posted[0]);
    assert_eq!(
        outcome(1)["status"],
        "dry-run",
        "the SSM policy applies: {:?}",
        posted[1]
    );
    assert_eq!(outcome(2)["status"], "rejected");
    assert_eq!(outcome(2)["reason"], "malformed-event");

    assert_eq!(h.pab(&fixed).await, Some(BlockConfig::ALL_ON));
    assert_eq!(h.pab(&dry).await, Some(ALL_OFF));
    let record = h.record(outcome(0)["record_id"].as_str().unwrap()).await;
    assert_eq!(record.function_version, "7");
    assert_eq!(record.request_id, "req-0");

    // One JSON log line per decision, each naming its record.
    let decisions = served.logged("decision");
    assert_eq!(decisions.len(), 3, "stdout: {}", served.stdout);
    for (d, p) in decisions.iter().zip(posted) {
        assert_eq!(d["record_id"], p.body[0]["record_id"]);
        assert_eq!(d["status"], p.body[0]["status"]);
    }

    // One embedded-metric-format line per stored outcome, beside the logs on stdout, as
    // CloudWatch reads them: `_aws` names the namespace, dimensions and metrics of the line.
    let emf: Vec<Value> = served
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l.get("_aws").is_some())
        .collect();
    assert_eq!(emf.len(), 3, "stdout: {}", served.stdout);
    for (m, p) in emf.iter().zip(posted) {
        assert_eq!(m["record_id"], p.body[0]["record_id"]);
        assert_eq!(m["Status"], p.body[0]["status"]);
        assert_eq!(m["Remediation"], "s3-block-public-access");
        assert_eq!(m["Outcomes"], 1);
        let directives = m["_aws"]["CloudWatchMetrics"].as_array().unwrap();
        assert!(m["_aws"]["Timestamp"].is_i64());
        for d in directives {
            assert_eq!(d["Namespace"], "Reflex/reflex-it");
            for metric in d["Metrics"].as_array().unwrap() {
                let name = metric["Name"].as_str().unwrap();
                assert!(m[name].is_number(), "{name} has a value: {m}");
            }
        }
    }
    assert_eq!(emf[0]["Failures"], 0);
    assert!(
        emf[0]["TimeToFix"].as_f64().is_some_and(|s| s > 0.0),
        "{}",
        emf[0]
    );
    assert_eq!(emf[0]["BudgetUsed"], 1);
    assert!(emf[1].get("TimeToFix").is_none(), "a dry run fixed nothing");
}

/// The account is the invoked function's (Lambda's Runtime API header), never the event's: an
/// invoked-function ARN that is malformed or names no account leaves the function not ready,
/// changes nothing, records nothing, and the event is handed back as `Reflex.NotReady` for Lambda
/// to retry. The same event, served by a new process under a good ARN, is then fixed.
#[tokio::test]
async fn a_function_arn_that_names_no_account_is_not_ready_and_changes_nothing() {
    let h = Harness::new().await;
    let case = PublicBucket::new(&h, ENFORCE).await;
    let env = case.env(&h);
    for arn in [
        "arn:aws:lambda:us-east-1:not-an-account:function:reflex-test",
        "arn:aws:lambda:us-east-1:123456789012",
        "reflex-test",
    ] {
        let served = serve_binary_as(
            &binary("s3-block-public-access"),
            arn,
            &env,
            vec![case.event()],
        )
        .await;
        case.not_ready(&h, &served.posted, "names no account", arn)
            .await;
    }
    case.fixed_by_a_new_process(&h).await;
}

/// A policy whose parameters for this remediation it cannot read (here an unknown key: the
/// fix takes none) leaves the function not ready: nothing is changed, the event is handed back
/// as `Reflex.NotReady` for Lambda to retry, and the reason is on the record once per error
/// (`failed / policy-invalid`, naming the key), however many events meet it. Once the
/// parameter is fixed, a new process fixes the same finding.
#[tokio::test]
async fn unusable_parameters_are_recorded_once_and_change_nothing() {
    let h = Harness::new().await;
    let case = PublicBucket::new(
        &h,
        "version: 1\nremediations:\n  s3-block-public-access:\n    mode: enforce\n    parameters: {bogus_key: 1}\n",
    )
    .await;
    let served = serve_binary(
        &binary("s3-block-public-access"),
        &case.env(&h),
        vec![case.event(), case.event()],
    )
    .await;
    assert_eq!(served.posted.len(), 2, "{:?}", served.posted);
    case.not_ready(&h, &served.posted, "bogus_key", "an unknown parameter")
        .await;
    let records = h
        .setup
        .ledger
        .query(Lookup::Remediation("s3-block-public-access"), None)
        .await
        .unwrap();
    assert_eq!(records.len(), 1, "once per error: {records:?}");
    let record = &records[0];
    assert!(
        record
            .record_id
            .starts_with("s3-block-public-access#parameters#"),
        "{}",
        record.record_id
    );
    assert_eq!(
        (record.status, record.reason),
        (Status::Failed, Reason::PolicyInvalid),
        "{record:?}"
    );
    assert!(
        record.detail.contains("bogus_key"),
        "the record names the key: {record:?}"
    );

    aws_sdk_ssm::Client::new(&sdk_config().await)
        .put_parameter()
        .name(&case.parameter)
        .r#type(ParameterType::String)
        .overwrite(true)
        .value(ENFORCE)
        .send()
        .await
        .unwrap();
    case.fixed_by_a_new_process(&h).await;
}

/// A public bucket, its S3.8 finding, and `s3-block-public-access`'s environment with `policy`
/// in an SSM parameter of its own.
struct PublicBucket {
    bucket: String,
    parameter: String,
}

impl PublicBucket {
    async fn new(h: &Harness, policy: &str) -> PublicBucket {
        PublicBucket {
            bucket: h.bucket(Some(ALL_OFF), &[]).await,
            parameter: policy_parameter(policy).await,
        }
    }

    fn event(&self) -> Value {
        sample_for(
            "s3-block-public-access/securityhub-s3.8-imported.json",
            &self.bucket,
        )
    }

    fn env<'a>(&'a self, h: &'a Harness) -> [(&'static str, &'a str); 3] {
        [
            ("AWS_LAMBDA_FUNCTION_NAME", "reflex-s3-block-public-access"),
            ("REFLEX_TABLE", h.setup.ledger.table()),
            ("REFLEX_POLICY_PARAMETER", self.parameter.as_str()),
        ]
    }

    /// Every event was answered `Reflex.NotReady` with a message that says `says`; the bucket
    /// is as it was and the finding has no record.
    async fn not_ready(&self, h: &Harness, posted: &[Posted], says: &str, case: &str) {
        assert!(!posted.is_empty(), "{case}: nothing posted");
        for p in posted {
            assert_eq!(p.kind, "error", "{case}: {p:?}");
            assert_eq!(p.body["errorType"], "Reflex.NotReady", "{case}: {p:?}");
            assert!(
                p.body["errorMessage"]
                    .as_str()
                    .is_some_and(|m| m.contains(says)),
                "{case}: the message says {says:?}: {p:?}"
            );
        }
        assert_eq!(
            h.pab(&self.bucket).await,
            Some(ALL_OFF),
            "{case}: nothing changed"
        );
        assert!(
            h.records_of(&self.bucket).await.is_empty(),
            "{case}: no record of the finding"
        );
    }

    /// Served again by a new process: the finding is fixed.
    async fn fixed_by_a_new_process(&self, h: &Harness) {
        let served = serve_binary(
            &binary("s3-block-public-access"),
            &self.env(h),
            vec![self.event()],
        )
        .await;
        assert_eq!(
            served.posted[0].body[0]["status"], "succeeded",
            "{:?}",
            served.posted
        );
        assert_eq!(h.pab(&self.bucket).await, Some(BlockConfig::ALL_ON));
    }
}
