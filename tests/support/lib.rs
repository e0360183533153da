//! The integration-test harness. Every test talks to the real AWS emulator (moto server, started
//! by `scripts/test` and found through the standard `AWS_ENDPOINT_URL`) through the real AWS SDK.
//!
//! Isolation: each test has its own outcome table and its own buckets (unique names), so tests
//! run in parallel on one emulator.
//!
//! The one exception is Security Hub's `BatchUpdateFindings`, which moto 5.2 does not implement
//! (it answers 404): that call goes to an `aws-smithy-mocks` client that records each request,
//! so tests assert exactly what Reflex would have sent.

pub mod cloudtrail_restore_logging;
pub mod common;
pub mod ec2;
pub mod fault_proxy;
pub mod iam;
pub mod iam_contain_principal;
pub mod iam_detach_admin_policy;
pub mod iam_disable_access_key;
pub mod lambda_api;
pub mod network_block_domain;
pub mod network_block_ip;
pub mod quarantine;
pub mod s3_enforce_encryption;
pub mod scripted;
pub mod sg_revoke_open_ingress;
pub mod source;
pub mod ssm_script;
pub mod subjects;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_s3::types::{PublicAccessBlockConfiguration, Tag, Tagging};
use aws_sdk_securityhub::operation::batch_update_findings::{
    BatchUpdateFindingsInput, BatchUpdateFindingsOutput,
};
use aws_smithy_mocks::{mock, mock_client, RuleMode};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use aws_types::sdk_config::SharedCredentialsProvider;
use reflex_shared::ledger::{Ledger, OutcomeRecord};
use reflex_shared::pipeline::{self, Handled, PipelineError};
use reflex_shared::policy::{Policy, PolicyCache, PolicyError};
use reflex_shared::securityhub::SecurityHubFeedback;
use reflex_shared::Setup;
use s3_block_public_access::{BlockConfig, BucketState, S3BlockPublicAccess};
use serde_json::Value;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// The account moto answers as.
pub const ACCOUNT: &str = "123456789012";
/// The policy that holds every s3-block-public-access fix for approval.
pub const APPROVE_MODE: &str =
    "version: 1\nremediations:\n  s3-block-public-access: {mode: approve}";
/// The bucket name the committed sample events use; tests swap in their own.
pub const SAMPLE_BUCKET: &str = "reflex-demo-public";

/// The emulator's endpoint. Without it the tests fail (never skip): run them with `scripts/test`.
pub fn endpoint() -> String {
    std::env::var("AWS_ENDPOINT_URL").ok().filter(|e| !e.is_empty()).unwrap_or_else(|| {
        panic!("AWS_ENDPOINT_URL is not set: run the tests with scripts/test, which starts the local AWS emulator")
    })
}

/// The SDK config every test client uses: the standard chain (so `AWS_ENDPOINT_URL` is honoured
/// exactly as in production), with a fixed region and test credentials.
pub async fn sdk_config() -> SdkConfig {
    endpoint();
    test_loader(aws_config::defaults(BehaviorVersion::latest()))
        .load()
        .await
}

/// Reflex's own SDK config (production retries and timeouts), pointed at `endpoint` (a fault
/// proxy in front of the emulator).
pub async fn sdk_config_via(endpoint: &str) -> SdkConfig {
    test_loader(reflex_shared::setup::resilient(aws_config::defaults(
        BehaviorVersion::latest(),
    )))
    .endpoint_url(endpoint)
    .load()
    .await
}

/// The standard chain, as [`sdk_config`], with someone's own credentials (an operator's).
pub async fn sdk_config_as(credentials: aws_sdk_s3::config::Credentials) -> SdkConfig {
    endpoint();
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(SharedCredentialsProvider::new(credentials))
        .load()
        .await
}

/// Who the emulator's STS says the test credentials (`testing`) are: no IAM user owns them.
pub const MOTO_CALLER: &str = "arn:aws:sts::123456789012:user/moto";

/// A policy (YAML) in an SSM parameter of its own, as the template deploys it; its name.
pub async fn policy_parameter(yaml: &str) -> String {
    let name = format!("/reflex-it/{}", unique("policy"));
    aws_sdk_ssm::Client::new(&sdk_config().await)
        .put_parameter()
        .name(&name)
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .value(yaml)
        .send()
        .await
        .expect("put the policy parameter");
    name
}

/// A fixed region and test credentials (the emulator takes any).
fn test_loader(loader: aws_config::ConfigLoader) -> aws_config::ConfigLoader {
    let creds =
        aws_sdk_s3::config::Credentials::new("testing", "testing", None, None, "reflex-tests");
    loader
        .region(Region::new("us-east-1"))
        .credentials_provider(SharedCredentialsProvider::new(creds))
}

/// The binary `cargo build --workspace` put beside the test executables (scripts/test builds
/// it before the tests run).
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace` first (scripts/test does)",
        path.display()
    );
    path
}

/// A unique, valid bucket or table name.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

pub fn events_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../events")
}

/// A committed sample event, as text.
pub fn sample(path: &str) -> String {
    std::fs::read_to_string(events_dir().join(path))
        .unwrap_or_else(|e| panic!("sample {path}: {e}"))
}

/// A committed sample event naming `bucket` instead of the sample bucket, with finding ids made
/// unique to that bucket (so two tests' findings never share a record).
pub fn sample_for(path: &str, bucket: &str) -> Value {
    let mut v: Value =
        serde_json::from_str(&sample(path).replace(SAMPLE_BUCKET, bucket)).expect("sample is JSON");
    if let Some(findings) = v
        .pointer_mut("/detail/findings")
        .and_then(Value::as_array_mut)
    {
        for f in findings {
            let id = format!("{}-{bucket}", f["Id"].as_str().unwrap_or_default());
            f["Id"] = Value::from(id);
        }
    } else if let Some(id) = v.pointer("/detail/id").and_then(Value::as_str) {
        let id = format!("{id}-{bucket}");
        set_guardduty_id(&mut v, &id);
    }
    v
}

/// A GuardDuty event's finding id, set to `id`: its `detail.id`, and the tail of its finding ARN
/// (`…/detector/D/finding/ID`), which is where the finding is read back from.
pub fn set_guardduty_id(event: &mut Value, id: &str) {
    event["detail"]["id"] = Value::from(id);
    let arn = event["detail"]["arn"]
        .as_str()
        .and_then(|a| a.rsplit_once("/finding/"));
    if let Some((head, _)) = arn {
        event["detail"]["arn"] = Value::from(format!("{head}/finding/{id}"));
    }
}

/// The one finding a sample event carries.
pub fn finding_of(event: &Value) -> reflex_shared::finding::Finding {
    reflex_shared::finding::parse_event(event)
        .expect("the sample parses")
        .remove(0)
}

/// A Config compliance change for `bucket` from the rule deployed as `rule`.
pub fn config_event(bucket: &str, rule: &str) -> Value {
    let mut e = sample_for(
        "s3-block-public-access/config-securityhub-s3-bucket-public-read-prohibited.json",
        bucket,
    );
    e["detail"]["configRuleName"] = Value::from(rule);
    e
}

/// A `Security Hub Findings - Imported` event carrying `findings` (ASFF), in the committed
/// sample's envelope.
pub fn security_hub_imported(findings: Vec<Value>) -> Value {
    let mut e: Value = serde_json::from_str(&sample(
        "s3-block-public-access/securityhub-s3.8-imported.json",
    ))
    .expect("sample is JSON");
    e["detail"]["findings"] = Value::from(findings);
    e
}

/// A Security Hub custom-action event (`action` is ReflexApprove or ReflexRemediate) carrying
/// one ASFF finding; `id` is the EventBridge event id (one per press).
pub fn custom_action(action: &str, finding: Value, id: &str) -> Value {
    let mut e: Value = serde_json::from_str(&sample(
        "s3-block-public-access/securityhub-custom-action-remediate-s3.3.json",
    ))
    .expect("sample is JSON");
    e["id"] = Value::from(id);
    // Pressed now: an approval approves only a plan shown before it.
    e["time"] = Value::from(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    e["resources"] = serde_json::json!([format!(
        "arn:aws:securityhub:us-east-1:{ACCOUNT}:action/custom/{action}"
    )]);
    e["detail"]["actionName"] = Value::from(action);
    e["detail"]["findings"] = serde_json::json!([finding]);
    e
}

/// The GuardDuty finding of `direct` (a GuardDuty event about `bucket`) as Security Hub
/// carries it: its ASFF `Id` is the GuardDuty finding's ARN.
pub fn guardduty_in_security_hub(direct: &Value, bucket: &str) -> Value {
    use serde_json::json;
    let d = &direct["detail"];
    let mut e: Value =
        serde_json::from_str(&sample("real-shapes/securityhub-guardduty-finding.json"))
            .expect("sample is JSON");
    let mut f = e["detail"]["findings"][0].take();
    f["Id"] = json!(format!(
        "arn:aws:guardduty:us-east-1:{ACCOUNT}:detector/6cb5b3f3d1a2e4f5a6b7c8d9e0f1a2b3/finding/{}",
        d["id"].as_str().unwrap_or_default()
    ));
    f["Types"] = json!(["Effects/Data Exposure/Policy:S3-BucketBlockPublicAccessDisabled"]);
    f["UpdatedAt"] = d["updatedAt"].clone();
    f["Resources"] = json!([{ "Type": "AwsS3Bucket", "Id": format!("arn:aws:s3:::{bucket}"), "Region": "us-east-1" }]);
    f["Workflow"] = json!({ "Status": "NOTIFIED" });
    f
}

/// The finding identifiers (`Id`, `ProductArn`) of every `BatchUpdateFindings` request sent.
pub fn sent_identifiers(sent: &SentFeedback) -> Vec<Vec<(String, String)>> {
    sent.lock()
        .unwrap()
        .iter()
        .map(|input| {
            input
                .finding_identifiers()
                .iter()
                .map(|i| {
                    (
                        i.id().unwrap_or_default().to_string(),
                        i.product_arn().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .collect()
}

/// A record as a crashed invocation leaves it: `status` with a lease ending at
/// `lease_expires_at`, held by request `crashed-request` (claim token `crashed-token`).
pub fn crashed_record(
    record_id: &str,
    remediation: &str,
    finding: reflex_shared::finding::Finding,
    status: reflex_shared::status::Status,
    lease_expires_at: i64,
) -> OutcomeRecord {
    let meta = reflex_shared::ledger::RecordMeta {
        function_version: "crashed".into(),
        request_id: "crashed-request".into(),
        event_digest: "0".repeat(64),
        claim_token: "crashed-token".into(),
    };
    let mut r = OutcomeRecord::new(
        record_id.to_string(),
        remediation,
        &meta,
        "2026-11-26T00:00:00.000Z",
    );
    r.finding = Some(finding);
    r.resource_arn = Some("arn:aws:s3:::crashed".into());
    r.status = status;
    r.lease_expires_at = Some(lease_expires_at);
    r
}

/// Records the operation name of every request a client sends.
#[derive(Debug, Clone, Default)]
pub struct CallLog(Arc<Mutex<Vec<String>>>);

impl CallLog {
    pub fn calls(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    pub fn count(&self, operation: &str) -> usize {
        self.calls().iter().filter(|c| *c == operation).count()
    }

    /// Calls that change something: everything but reads (see [`is_read`]).
    pub fn writes(&self) -> Vec<String> {
        self.calls().into_iter().filter(|c| !is_read(c)).collect()
    }

    /// Calls that only read.
    pub fn reads(&self) -> Vec<String> {
        self.calls().into_iter().filter(|c| is_read(c)).collect()
    }
}

/// Whether an operation only reads, told by the API's kind, the verb its name starts with:
/// `Describe*` (EC2, SSM), `Get*`, `List*`, `Head*` (S3). Everything else (`Put*`, `Create*`,
/// `Modify*`, `SendCommand`, …) counts as a write, so an unknown verb is never taken for a
/// harmless read.
pub fn is_read(operation: &str) -> bool {
    ["Describe", "Get", "List", "Head"].iter().any(|verb| {
        operation
            .strip_prefix(verb)
            .and_then(|rest| rest.chars().next())
            .is_some_and(|c| c.is_ascii_uppercase())
    })
}

impl Intercept for CallLog {
    fn name(&self) -> &'static str {
        "CallLog"
    }

    fn read_before_serialization(
        &self,
        _ctx: &BeforeSerializationInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let name = cfg
            .load::<Metadata>()
            .map(|m| m.name().to_string())
            .unwrap_or_else(|| "?".into());
        self.0.lock().unwrap().push(name);
        Ok(())
    }
}

/// Rewrites the `Date` of every answer to AWS's time plus `seconds`: stands in for a machine
/// whose clock is off AWS's by `-seconds` (the emulator cannot be told to send another time).
#[derive(Debug, Clone)]
pub struct SkewedDate(pub i64);

impl Intercept for SkewedDate {
    fn name(&self) -> &'static str {
        "SkewedDate"
    }

    fn modify_before_deserialization(
        &self,
        ctx: &mut aws_smithy_runtime_api::client::interceptors::context::BeforeDeserializationInterceptorContextMut<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let at = chrono::Utc::now() + chrono::Duration::seconds(self.0);
        ctx.response_mut()
            .headers_mut()
            .insert("date", at.format("%a, %d %b %Y %H:%M:%S GMT").to_string());
        Ok(())
    }
}

/// What Security Hub would have been sent.
pub type SentFeedback = Arc<Mutex<Vec<BatchUpdateFindingsInput>>>;

/// A Security Hub client whose `BatchUpdateFindings` is answered by aws-smithy-mocks (moto
/// lacks it): `ok` accepts every update, otherwise every call fails with an HTTP 500.
pub fn mocked_security_hub(ok: bool) -> (aws_sdk_securityhub::Client, SentFeedback) {
    let sent: SentFeedback = Arc::default();
    let log = sent.clone();
    let rule =
        mock!(aws_sdk_securityhub::Client::batch_update_findings).match_requests(move |input| {
            log.lock().unwrap().push(input.clone());
            true
        });
    let rule = if ok {
        rule.then_output(|| {
            BatchUpdateFindingsOutput::builder()
                .set_processed_findings(Some(vec![]))
                .set_unprocessed_findings(Some(vec![]))
                .build()
        })
    } else {
        rule.then_http_response(|| {
            aws_smithy_runtime_api::http::Response::new(
                aws_smithy_runtime_api::http::StatusCode::try_from(500).unwrap(),
                aws_smithy_types::body::SdkBody::from("{\"message\":\"internal failure\"}"),
            )
        })
    };
    let client = mock_client!(aws_sdk_securityhub, RuleMode::MatchAny, [&rule], |c| c
        .retry_config(aws_sdk_securityhub::config::retry::RetryConfig::disabled()));
    (client, sent)
}

/// One test's world: its own table, an S3 client that logs its calls, and the function's setup.
pub struct Harness {
    pub sdk: SdkConfig,
    /// The test's own view of S3 (not logged): setting up buckets and reading their state.
    observer: S3BlockPublicAccess,
    observer_s3: aws_sdk_s3::Client,
    /// Every S3 call Reflex made.
    pub calls: CallLog,
    pub feedback: SentFeedback,
    pub setup: Setup,
    pub remediation: S3BlockPublicAccess,
    /// What GuardDuty and Security Hub hold, for reading findings back (`confirm_at_source`).
    pub at_source: source::AtSource,
    /// Every delivered finding is also held at its source (see [`source`]).
    pub mirror_source: bool,
}

pub struct HarnessOptions {
    pub policy: Result<Policy, PolicyError>,
    pub security_hub_ok: bool,
    /// Every delivered finding is also held at its source (default): off for tests of the
    /// read-back, which say what the source holds.
    pub mirror_source: bool,
}

impl Default for HarnessOptions {
    fn default() -> Self {
        HarnessOptions {
            policy: Ok(Policy::default()),
            security_hub_ok: true,
            mirror_source: true,
        }
    }
}

impl Harness {
    pub async fn new() -> Harness {
        Harness::with(HarnessOptions::default()).await
    }

    pub async fn with_policy(yaml: &str) -> Harness {
        Harness::with(HarnessOptions {
            policy: Policy::from_yaml(yaml),
            ..Default::default()
        })
        .await
    }

    pub async fn with(options: HarnessOptions) -> Harness {
        let sdk = sdk_config().await;
        let calls = CallLog::default();
        let s3_conf = aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .interceptor(calls.clone())
            .build();
        let s3 = aws_sdk_s3::Client::from_conf(s3_conf);
        let observer_s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&sdk)
                .force_path_style(true)
                .build(),
        );
        // DynamoDB applies each conditional write atomically; moto does not (two concurrent
        // updates can both pass one condition). The ledger talks to the emulator through a
        // fault proxy that injects no fault and forwards DynamoDB writes one at a time.
        let atomic =
            fault_proxy::FaultProxy::start(&endpoint(), fault_proxy::Faults::default()).await;
        let ledger = Ledger::new(
            aws_sdk_dynamodb::Client::new(
                &test_loader(aws_config::defaults(BehaviorVersion::latest()))
                    .endpoint_url(&atomic.endpoint)
                    .load()
                    .await,
            ),
            unique("reflex-test"),
        );
        assert!(ledger
            .create_table_if_absent()
            .await
            .expect("create the outcome table"));
        let (sh, feedback) = mocked_security_hub(options.security_hub_ok);
        let at_source = source::AtSource::default();
        let setup = Setup {
            sdk: sdk.clone(),
            account_id: ACCOUNT.into(),
            caller_arn: format!("arn:aws:iam::{ACCOUNT}:user/analyst"),
            policy: Arc::new(PolicyCache::fixed(options.policy)),
            ledger,
            securityhub: SecurityHubFeedback::new(sh),
            source: at_source.reader(),
            config_rules: reflex_shared::config_rules::ConfigRules::new(
                aws_sdk_config::Client::new(&sdk),
            ),
            function_version: "test".into(),
            lease_seconds: 120,
            record_ttl_days: None,
            verify_delays: reflex_shared::setup::VERIFY_DELAYS.to_vec(),
            notifier: reflex_shared::notify::Notifier::none(),
            metrics: reflex_shared::metrics::Metrics::off(),
        };
        let remediation = S3BlockPublicAccess::from_client(s3);
        let observer = S3BlockPublicAccess::from_client(observer_s3.clone());
        Harness {
            sdk,
            observer,
            observer_s3,
            calls,
            feedback,
            setup,
            remediation,
            at_source,
            mirror_source: options.mirror_source,
        }
    }

    /// A bucket with Block Public Access as given (`None`: no configuration at all), optionally
    /// tagged. Created with the observer client, so `calls` holds only Reflex's calls.
    pub async fn bucket(&self, pab: Option<BlockConfig>, tags: &[(&str, &str)]) -> String {
        let name = unique("reflex-it");
        let s3 = &self.observer_s3;
        s3.create_bucket()
            .bucket(&name)
            .send()
            .await
            .expect("create bucket");
        if let Some(c) = pab {
            let conf = PublicAccessBlockConfiguration::builder()
                .block_public_acls(c.block_public_acls)
                .ignore_public_acls(c.ignore_public_acls)
                .block_public_policy(c.block_public_policy)
                .restrict_public_buckets(c.restrict_public_buckets)
                .build();
            s3.put_public_access_block()
                .bucket(&name)
                .public_access_block_configuration(conf)
                .send()
                .await
                .expect("put PAB");
        }
        if !tags.is_empty() {
            let mut tagging = Tagging::builder();
            for (k, v) in tags {
                tagging = tagging.tag_set(Tag::builder().key(*k).value(*v).build().unwrap());
            }
            s3.put_bucket_tagging()
                .bucket(&name)
                .tagging(tagging.build().unwrap())
                .send()
                .await
                .expect("tag bucket");
        }
        name
    }

    /// An AWS-managed Config rule (`identifier`, e.g. `S3_BUCKET_PUBLIC_READ_PROHIBITED`)
    /// deployed under `name`, in the emulator.
    pub async fn managed_config_rule(&self, name: &str, identifier: &str) {
        use aws_sdk_config::types::{ConfigRule, Owner, Source};
        let rule = ConfigRule::builder()
            .config_rule_name(name)
            .source(
                Source::builder()
                    .owner(Owner::Aws)
                    .source_identifier(identifier)
                    .build()
                    .unwrap(),
            )
            .build();
        aws_sdk_config::Client::new(&self.sdk)
            .put_config_rule()
            .config_rule(rule)
            .send()
            .await
            .expect("put the managed Config rule");
    }

    /// The Config rules the committed Config samples name, as the managed rules they are.
    pub async fn sample_config_rules(&self) {
        self.managed_config_rule(
            "securityhub-s3-bucket-public-read-prohibited-8fa6bd2a",
            "S3_BUCKET_PUBLIC_READ_PROHIBITED",
        )
        .await;
        self.managed_config_rule(
            "s3-bucket-public-write-prohibited-conformance-pack-kuyoa3x8n",
            "S3_BUCKET_PUBLIC_WRITE_PROHIBITED",
        )
        .await;
    }

    /// An S3 client for the emulator that logs nothing (for a second function instance).
    /// Delete `bucket` and create it again under the same name, with Block Public Access as
    /// given: another bucket (another creation date, whole seconds apart), as AWS would have it.
    pub async fn recreate_bucket(&self, bucket: &str, pab: Option<BlockConfig>) {
        let s3 = &self.observer_s3;
        s3.delete_public_access_block()
            .bucket(bucket)
            .send()
            .await
            .expect("delete the configuration");
        s3.delete_bucket()
            .bucket(bucket)
            .send()
            .await
            .expect("delete the bucket");
        // Creation dates have whole seconds.
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        s3.create_bucket()
            .bucket(bucket)
            .send()
            .await
            .expect("create the bucket again");
        if let Some(c) = pab {
            s3.put_public_access_block()
                .bucket(bucket)
                .public_access_block_configuration(
                    PublicAccessBlockConfiguration::builder()
                        .block_public_acls(c.block_public_acls)
                        .ignore_public_acls(c.ignore_public_acls)
                        .block_public_policy(c.block_public_policy)
                        .restrict_public_buckets(c.restrict_public_buckets)
                        .build(),
                )
                .send()
                .await
                .expect("configure the new bucket");
        }
    }

    pub fn observer_client(&self) -> aws_sdk_s3::Client {
        self.observer_s3.clone()
    }

    /// The bucket's Block Public Access configuration, read through the emulator.
    pub async fn pab(&self, bucket: &str) -> Option<BlockConfig> {
        let target = target(bucket);
        let state: BucketState = self.observer.read_state(&target).await.unwrap();
        state.public_access_block
    }

    /// Deliver one event to the handler, exactly as the Lambda runtime would; an error is what
    /// Lambda would retry.
    pub async fn try_deliver(&self, event: Value) -> Result<Vec<Handled>, PipelineError> {
        if self.mirror_source {
            self.at_source.mirror(&event);
        }
        let mut context = lambda_runtime::Context::default();
        context.request_id = uuid::Uuid::new_v4().to_string();
        // Boxed: the pipeline's future is large, and a test's own future lives on its stack.
        Box::pin(pipeline::handle(
            &self.setup,
            &self.remediation,
            lambda_runtime::LambdaEvent::new(event, context),
        ))
        .await
    }

    /// Deliver one event to `remediation` (another than the harness's own) with this setup.
    pub async fn deliver_to<R: reflex_shared::remediation::Remediation>(
        &self,
        remediation: &R,
        event: Value,
    ) -> Result<Vec<Handled>, PipelineError> {
        if self.mirror_source {
            self.at_source.mirror(&event);
        }
        let mut context = lambda_runtime::Context::default();
        context.request_id = uuid::Uuid::new_v4().to_string();
        // Boxed: the pipeline's future is large, and a test's own future lives on its stack.
        Box::pin(pipeline::handle(
            &self.setup,
            remediation,
            lambda_runtime::LambdaEvent::new(event, context),
        ))
        .await
    }

    /// An operator's command for a function of this harness's table, signed now with the test
    /// credentials (STS names them [`MOTO_CALLER`]).
    pub async fn signed_command(
        &self,
        order: reflex_shared::operator::Order,
        record_id: &str,
    ) -> Value {
        reflex_shared::operator::signed_command(
            &self.sdk,
            order,
            record_id,
            self.setup.ledger.table(),
        )
        .await
        .expect("sign the command")
    }

    /// The blast-radius counter of `remediation` for the current hour.
    pub async fn budget_count(&self, remediation: &str) -> u32 {
        let key = reflex_shared::ledger::counter_key(
            remediation,
            ACCOUNT,
            &reflex_shared::ledger::window(chrono::Utc::now()),
        );
        let item = self
            .setup
            .ledger
            .client()
            .get_item()
            .table_name(self.setup.ledger.table())
            .key("record_id", aws_sdk_dynamodb::types::AttributeValue::S(key))
            .consistent_read(true)
            .send()
            .await
            .unwrap();
        match item.item().and_then(|i| i.get("n")) {
            Some(aws_sdk_dynamodb::types::AttributeValue::N(n)) => n.parse().unwrap(),
            _ => 0,
        }
    }

    /// Deliver one event that must be handled without an error.
    pub async fn deliver(&self, event: Value) -> Vec<Handled> {
        self.try_deliver(event)
            .await
            .expect("the pipeline handles the event")
    }

    /// Deliver one event that must yield exactly one outcome.
    pub async fn deliver_one(&self, event: Value) -> Handled {
        let mut outcomes = self.deliver(event).await;
        assert_eq!(outcomes.len(), 1, "{outcomes:?}");
        outcomes.remove(0)
    }

    /// Store `record` as it is, behind the pipeline's back (a crashed attempt's leftovers).
    pub async fn store(&self, record: &OutcomeRecord) {
        self.setup
            .ledger
            .client()
            .put_item()
            .table_name(self.setup.ledger.table())
            .set_item(Some(serde_dynamo::to_item(record).unwrap()))
            .send()
            .await
            .expect("store the record");
    }

    /// Set one attribute of a stored record, behind the pipeline's back.
    pub async fn set_attribute(
        &self,
        record_id: &str,
        name: &str,
        value: aws_sdk_dynamodb::types::AttributeValue,
    ) {
        use aws_sdk_dynamodb::types::AttributeValue;
        self.setup
            .ledger
            .client()
            .update_item()
            .table_name(self.setup.ledger.table())
            .key("record_id", AttributeValue::S(record_id.to_string()))
            .update_expression("SET #a = :v")
            .expression_attribute_names("#a", name)
            .expression_attribute_values(":v", value)
            .send()
            .await
            .expect("set the attribute");
    }

    /// Every record of one bucket (the by-resource index).
    pub async fn records_of(&self, bucket: &str) -> Vec<OutcomeRecord> {
        self.setup
            .ledger
            .query(
                reflex_shared::ledger::Lookup::Resource(&format!("arn:aws:s3:::{bucket}")),
                None,
            )
            .await
            .expect("query by resource")
    }

    pub async fn record(&self, record_id: &str) -> OutcomeRecord {
        self.setup
            .ledger
            .get(record_id)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("no record {record_id}"))
    }
}

pub fn target(bucket: &str) -> reflex_shared::remediation::ResourceRef {
    reflex_shared::remediation::ResourceRef {
        kind: reflex_shared::finding::ResourceKind::S3Bucket,
        id: bucket.into(),
        arn: format!("arn:aws:s3:::{bucket}"),
        account: ACCOUNT.into(),
    }
}

/// Block Public Access with every setting off: what the findings complain about.
pub const ALL_OFF: BlockConfig = BlockConfig {
    block_public_acls: false,
    ignore_public_acls: false,
    block_public_policy: false,
    restrict_public_buckets: false,
};

#[cfg(test)]
mod tests {
    use super::is_read;

    #[test]
    fn reads_are_told_from_writes_by_the_apis_kind() {
        let cases = [
            ("GetPublicAccessBlock", true),
            ("GetBucketTagging", true),
            ("ListBuckets", true),
            ("HeadBucket", true),
            ("DescribeInstances", true),
            ("DescribeNetworkAcls", true),
            ("DescribeInstanceInformation", true),
            ("GetCommandInvocation", true),
            ("PutPublicAccessBlock", false),
            ("DeletePublicAccessBlock", false),
            ("CreateSecurityGroup", false),
            ("ModifyNetworkInterfaceAttribute", false),
            ("CreateSnapshot", false),
            ("CreateNetworkAclEntry", false),
            ("SendCommand", false),
            ("CreateTags", false),
            // A verb only looks like a read's: a write.
            ("Getaway", false),
            ("Listen", false),
            ("Describe", false),
            ("?", false),
        ];
        for (operation, read) in cases {
            assert_eq!(is_read(operation), read, "{operation}");
        }
    }
}
