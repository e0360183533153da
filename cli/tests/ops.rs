//! The operator's commands on what already exists, through the `reflex` binary against the
//! local AWS emulator (`AWS_ENDPOINT_URL`, set by scripts/test): retry, backlog, show, unhold,
//! dry-run lines that show the plan, and `audit --resource` by name.
//!
//! Each test has its own table and buckets. The backlog test runs in a moto account of its own
//! (a role assumed in a fresh account: moto keeps what its credentials make apart): Security
//! Hub's findings are per account in the emulator, and moto's `GetFindings` ignores every
//! filter, so findings another test imports never reach this test's backlog (nor this test's
//! findings another's).

use aws_sdk_s3::config::Region;
use aws_sdk_securityhub::types::{
    AwsSecurityFinding, Compliance, ComplianceStatus, Partition, RecordState, Resource, Severity,
    SeverityLabel, Workflow, WorkflowStatus,
};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const ACCOUNT: &str = "123456789012";
/// Who the emulator's STS says the test credentials are.
const MOTO_CALLER: &str = "arn:aws:sts::123456789012:user/moto";
const REGION: &str = "us-east-1";
const SAMPLE_BUCKET: &str = "reflex-demo-public";
const S3_8: &str = "s3-block-public-access/securityhub-s3.8-imported.json";

fn reflex(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_reflex"));
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run reflex")
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn ok(o: Output) -> Output {
    assert!(
        o.status.success(),
        "stdout:\n{}\nstderr:\n{}",
        out(&o),
        err(&o)
    );
    o
}

fn json_lines(o: &Output) -> Vec<Value> {
    out(o)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

/// A table of the test's own, created with `reflex init` (as `env` says: another account's
/// credentials).
fn table(env: &[(&str, &str)]) -> String {
    assert!(
        std::env::var("AWS_ENDPOINT_URL").is_ok_and(|e| !e.is_empty()),
        "AWS_ENDPOINT_URL is not set: run the tests with scripts/test"
    );
    let t = unique("reflex-ops");
    ok(reflex(&["init", "--table", &t], env));
    t
}

/// A policy file giving s3-block-public-access `mode`.
fn policy(mode: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("{}.yaml", unique("reflex-ops-policy")));
    std::fs::write(
        &path,
        format!("version: 1\nremediations:\n  s3-block-public-access: {{mode: {mode}}}\n"),
    )
    .unwrap();
    path
}

async fn default_sdk() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(Region::new(REGION))
        .load()
        .await
}

fn s3_of(sdk: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(true)
            .build(),
    )
}

/// A bucket with no Block Public Access at all (moto's new buckets have none).
async fn public_bucket() -> String {
    public_bucket_in(&s3_of(&default_sdk().await)).await
}

async fn public_bucket_in(s3: &aws_sdk_s3::Client) -> String {
    let name = unique("reflex-ops");
    s3.create_bucket().bucket(&name).send().await.unwrap();
    name
}

/// Whether all four Block Public Access settings are on.
async fn blocked(bucket: &str) -> bool {
    blocked_in(&s3_of(&default_sdk().await), bucket).await
}

async fn blocked_in(s3: &aws_sdk_s3::Client, bucket: &str) -> bool {
    match s3.get_public_access_block().bucket(bucket).send().await {
        Ok(o) => o.public_access_block_configuration().is_some_and(|c| {
            c.block_public_acls() == Some(true)
                && c.ignore_public_acls() == Some(true)
                && c.block_public_policy() == Some(true)
                && c.restrict_public_buckets() == Some(true)
        }),
        Err(_) => false,
    }
}

/// The committed S3.8 sample naming `bucket`, generation `updated_at`, as a file.
fn s3_8_event(bucket: &str, updated_at: &str) -> PathBuf {
    let text = std::fs::read_to_string(format!("{}/../events/{S3_8}", env!("CARGO_MANIFEST_DIR")))
        .unwrap()
        .replace(SAMPLE_BUCKET, bucket);
    let mut v: Value = serde_json::from_str(&text).unwrap();
    let f = &mut v["detail"]["findings"][0];
    f["Id"] = Value::from(format!("{}-{bucket}", f["Id"].as_str().unwrap()));
    f["UpdatedAt"] = Value::from(updated_at);
    let path = std::env::temp_dir().join(format!("{}.json", unique("reflex-ops-event")));
    std::fs::write(&path, v.to_string()).unwrap();
    path
}

fn replay(t: &str, policy: &Path, event: &Path) -> Value {
    let o = ok(reflex(
        &[
            "replay",
            "--function",
            "s3-block-public-access",
            "--json",
            "--policy",
            policy.to_str().unwrap(),
            event.to_str().unwrap(),
            "--table",
            t,
        ],
        &[],
    ));
    json_lines(&o).remove(0)["outcome"].clone()
}

fn record(t: &str, id: &str) -> Value {
    let o = ok(reflex(&["show", id, "--json", "--table", t], &[]));
    serde_json::from_str(&out(&o)).unwrap()
}

/// A retry obeys the kill switch like every run: under a policy whose switch is on, it records
/// `dry-run / kill-switch` and changes nothing; that dry-run is no verdict, so a later retry
/// (the switch off) fixes the bucket.
#[tokio::test]
async fn a_retry_under_the_kill_switch_changes_nothing() {
    let t = table(&[]);
    let bucket = public_bucket().await;
    let event = s3_8_event(&bucket, "2026-12-01T11:00:00.000Z");
    let o = replay(&t, &policy("dry-run"), &event);
    let id = o["record_id"].as_str().unwrap().to_string();
    let killed = std::env::temp_dir().join(format!("{}.yaml", unique("reflex-ops-kill")));
    std::fs::write(
        &killed,
        "version: 1\nkill_switch: true\nremediations:\n  s3-block-public-access: {mode: enforce}\n",
    )
    .unwrap();
    let retried = ok(reflex(
        &[
            "retry",
            &id,
            "--json",
            "--policy",
            killed.to_str().unwrap(),
            "--table",
            &t,
        ],
        &[],
    ));
    let line: Value = serde_json::from_str(out(&retried).trim()).unwrap();
    assert_eq!(
        (
            line["outcome"]["status"].as_str(),
            line["outcome"]["reason"].as_str()
        ),
        (Some("dry-run"), Some("kill-switch")),
        "{line}"
    );
    assert!(!blocked(&bucket).await, "the kill switch changes nothing");
    let fixed = ok(reflex(
        &[
            "retry",
            &id,
            "--json",
            "--policy",
            policy("enforce").to_str().unwrap(),
            "--table",
            &t,
        ],
        &[],
    ));
    let line: Value = serde_json::from_str(out(&fixed).trim()).unwrap();
    assert_eq!(
        line["outcome"]["status"].as_str(),
        Some("succeeded"),
        "{line}"
    );
    assert!(blocked(&bucket).await);
}

#[tokio::test]
async fn a_dry_run_record_retried_under_enforce_is_fixed_and_keeps_its_history() {
    let t = table(&[]);
    let bucket = public_bucket().await;
    let event = s3_8_event(&bucket, "2026-12-01T10:00:00.000Z");
    let (dry, enforce) = (policy("dry-run"), policy("enforce"));

    let o = replay(&t, &dry, &event);
    assert_eq!(
        (o["status"].as_str(), o["reason"].as_str()),
        (Some("dry-run"), Some("would-change")),
        "{o}"
    );
    let id = o["record_id"].as_str().unwrap().to_string();
    assert_eq!(o["planned"][0]["api"], "s3:PutPublicAccessBlock", "{o}");
    assert!(!blocked(&bucket).await, "a dry run changes nothing");
    // The line for people shows the planned change (a redelivery: a duplicate of the dry run).
    let line = ok(reflex(
        &[
            "replay",
            "--function",
            "s3-block-public-access",
            "--policy",
            dry.to_str().unwrap(),
            event.to_str().unwrap(),
            "--table",
            &t,
        ],
        &[],
    ));
    let text = out(&line);
    assert!(text.contains("dry-run (duplicate)"), "{text}");
    assert!(
        text.contains("plan: s3:PutPublicAccessBlock {") && text.contains(&bucket),
        "{text}"
    );

    // The policy moved to enforce: the retry fixes the bucket, as the CLI's STS caller.
    let retried = ok(reflex(
        &[
            "retry",
            &id,
            "--json",
            "--policy",
            enforce.to_str().unwrap(),
            "--table",
            &t,
        ],
        &[],
    ));
    let line: Value = serde_json::from_str(out(&retried).trim()).unwrap();
    assert_eq!(
        (
            line["outcome"]["status"].as_str(),
            line["outcome"]["duplicate"].as_bool()
        ),
        (Some("succeeded"), Some(false)),
        "{line}"
    );
    assert!(blocked(&bucket).await, "the retry fixed the bucket");
    let r = record(&t, &id);
    assert_eq!(r["status"], "succeeded");
    assert_eq!(r["verified"], true);
    assert_eq!(r["attempts"], 2);
    assert_eq!(r["finding"]["requested_by"], MOTO_CALLER);
    let history = r["history"].as_array().unwrap();
    assert_eq!(history.len(), 1, "{r}");
    assert_eq!(
        (history[0]["status"].as_str(), history[0]["reason"].as_str()),
        (Some("dry-run"), Some("would-change"))
    );
    assert_eq!(history[0]["actions"][0]["result"], "planned");

    // `show` reads it section by section.
    let shown = out(&ok(reflex(&["show", &id, "--table", &t], &[])));
    for part in [
        &format!("record {id}"),
        "type          Security Hub control S3.8",
        &format!("resource      arn:aws:s3:::{bucket}"),
        "status        succeeded (remediated)",
        "ok      s3:PutPublicAccessBlock",
        "before:",
        "after:",
        "verified      yes, by a fresh read",
        "1. attempt 1 dry-run (would-change)",
        &format!("requested by  {MOTO_CALLER}"),
    ] {
        assert!(shown.contains(part), "missing {part:?} in\n{shown}");
    }

    // A success is never redone: refused, nothing changed.
    let again = reflex(
        &[
            "retry",
            &id,
            "--policy",
            enforce.to_str().unwrap(),
            "--table",
            &t,
        ],
        &[],
    );
    assert_eq!(again.status.code(), Some(1));
    assert!(
        err(&again).contains("is succeeded (remediated): only a finished, non-successful outcome"),
        "{}",
        err(&again)
    );
    assert_eq!(record(&t, &id), r, "a refused retry writes nothing");
    // Unknown records and ids that name no function are refused too.
    let unknown = reflex(
        &[
            "retry",
            "s3-block-public-access#0000",
            "--policy",
            enforce.to_str().unwrap(),
            "--table",
            &t,
        ],
        &[],
    );
    assert_eq!(unknown.status.code(), Some(1));
    assert!(
        err(&unknown).contains("no record s3-block-public-access#0000"),
        "{}",
        err(&unknown)
    );
    let nobody = reflex(&["retry", "nobody#0000", "--table", &t], &[]);
    assert_eq!(nobody.status.code(), Some(1));
    assert!(
        err(&nobody).contains("names no Reflex function"),
        "{}",
        err(&nobody)
    );
    let missing = reflex(&["show", "s3-block-public-access#0000", "--table", &t], &[]);
    assert_eq!(missing.status.code(), Some(1));
}

#[tokio::test]
async fn unhold_lifts_a_rollbacks_hold_on_the_record_and_a_later_finding_is_acted_on() {
    let t = table(&[]);
    let bucket = public_bucket().await;
    let arn = format!("arn:aws:s3:::{bucket}");
    let enforce = policy("enforce");
    let fixed = replay(
        &t,
        &enforce,
        &s3_8_event(&bucket, "2026-12-01T10:00:00.000Z"),
    );
    assert_eq!(fixed["status"], "succeeded", "{fixed}");
    let id = fixed["record_id"].as_str().unwrap().to_string();
    ok(reflex(
        &[
            "rollback",
            &id,
            "--hold-for",
            "1d",
            "--policy",
            enforce.to_str().unwrap(),
            "--table",
            &t,
        ],
        &[],
    ));
    assert!(!blocked(&bucket).await, "rolled back");

    // The echo is held back.
    let echo = replay(
        &t,
        &enforce,
        &s3_8_event(&bucket, "2026-12-01T11:00:00.000Z"),
    );
    assert_eq!(
        (echo["status"].as_str(), echo["reason"].as_str()),
        (Some("skipped"), Some("rolled-back")),
        "{echo}"
    );
    assert!(!blocked(&bucket).await);

    let lifted = ok(reflex(&["unhold", &arn, "--table", &t], &[]));
    assert!(
        out(&lifted).contains(&format!(
            "hold lifted: {arn} is no longer held back from s3-block-public-access"
        )),
        "{}",
        out(&lifted)
    );
    let r = record(&t, &id);
    assert_eq!(r["status"], "rolled-back");
    assert_eq!(r["rollback"]["hold_lifted"]["by"], MOTO_CALLER, "{r}");
    assert!(r["rollback"]["hold_lifted"]["at"].is_string());
    assert!(out(&ok(reflex(&["show", &id, "--table", &t], &[])))
        .contains(&format!("hold lifted   by {MOTO_CALLER}")));
    let holds = ok(reflex(
        &["audit", "--suppressions", "--json", "--table", &t],
        &[],
    ));
    assert!(!out(&holds).contains(&arn), "{}", out(&holds));

    // No hold any more: refused, and said so.
    let again = reflex(&["unhold", &arn, "--table", &t], &[]);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        err(&again).contains(&format!("no hold on {arn}")),
        "{}",
        err(&again)
    );

    // A later finding is acted on again.
    let later = replay(
        &t,
        &enforce,
        &s3_8_event(&bucket, "2026-12-01T12:00:00.000Z"),
    );
    assert_eq!(later["status"], "succeeded", "{later}");
    assert!(blocked(&bucket).await);

    // `audit --resource` takes the bucket's name, and says which ARN it searched.
    let audit = ok(reflex(
        &["audit", "--json", "--resource", &bucket, "--table", &t],
        &[],
    ));
    assert!(
        err(&audit).contains(&format!("searching resource {arn}")),
        "{}",
        err(&audit)
    );
    assert_eq!(json_lines(&audit).len(), 3, "{}", out(&audit));
}

/// An S3.8 finding for `bucket` as Security Hub's controls write it (the committed sample's
/// fields), imported with `BatchImportFindings`.
fn s3_8_finding(bucket: &str, account: &str, compliance: ComplianceStatus) -> AwsSecurityFinding {
    let id = format!(
        "arn:aws:securityhub:{REGION}:{account}:security-control/S3.8/finding/{}",
        uuid::Uuid::new_v4()
    );
    let arn = format!("arn:aws:s3:::{bucket}");
    AwsSecurityFinding::builder()
        .schema_version("2018-10-08")
        .id(&id)
        .product_arn(format!(
            "arn:aws:securityhub:{REGION}::product/aws/securityhub"
        ))
        .product_name("Security Hub")
        .company_name("AWS")
        .region(REGION)
        .generator_id("security-control/S3.8")
        .aws_account_id(account)
        .types("Software and Configuration Checks/Industry and Regulatory Standards")
        .first_observed_at("2026-11-20T10:14:51.000Z")
        .last_observed_at("2026-11-20T10:14:55.000Z")
        .created_at("2026-11-20T10:14:51.000Z")
        .updated_at("2026-11-20T10:14:55.000Z")
        .severity(
            Severity::builder()
                .label(SeverityLabel::High)
                .normalized(70)
                .original("HIGH")
                .build(),
        )
        .title("S3 general purpose buckets should block public access")
        .description("This control checks whether the S3 bucket blocks public access.")
        .resources(
            Resource::builder()
                .r#type("AwsS3Bucket")
                .id(&arn)
                .partition(Partition::Aws)
                .region(REGION)
                .build(),
        )
        .compliance(
            Compliance::builder()
                .status(compliance)
                .security_control_id("S3.8")
                .build(),
        )
        .workflow(Workflow::builder().status(WorkflowStatus::New).build())
        .record_state(RecordState::Active)
        .product_fields("aws/securityhub/ProductName", "Security Hub")
        .product_fields("aws/securityhub/CompanyName", "AWS")
        .product_fields("Resources:0/Id", &arn)
        .build()
}

fn summary(o: &Output) -> Value {
    json_lines(o)
        .into_iter()
        .find_map(|l| l.get("summary").cloned())
        .expect("a summary line")
}

#[tokio::test]
async fn a_backlog_of_five_imported_findings_is_handled_once() {
    let account = Account::fresh().await;
    let env = account.env();
    let s3 = s3_of(&account.sdk);
    let t = table(&env);
    let enforce = policy("enforce");
    let p = enforce.to_str().unwrap();
    let mut buckets = Vec::new();
    for _ in 0..5 {
        buckets.push(public_bucket_in(&s3).await);
    }
    // Passed over: a passed control, and a finding of another account.
    let passed = public_bucket_in(&s3).await;
    let mut findings: Vec<AwsSecurityFinding> = buckets
        .iter()
        .map(|b| s3_8_finding(b, &account.id, ComplianceStatus::Failed))
        .collect();
    findings.push(s3_8_finding(&passed, &account.id, ComplianceStatus::Passed));
    findings.push(s3_8_finding(&passed, ACCOUNT, ComplianceStatus::Failed));
    let imported = aws_sdk_securityhub::Client::new(&account.sdk)
        .batch_import_findings()
        .set_findings(Some(findings))
        .send()
        .await
        .expect("BatchImportFindings");
    assert_eq!(imported.success_count(), Some(7), "{imported:?}");

    // A dry run lists what would run, and writes nothing.
    let dry = ok(reflex(
        &[
            "backlog",
            "--dry-run",
            "--json",
            "--policy",
            p,
            "--table",
            &t,
        ],
        &env,
    ));
    let lines = json_lines(&dry);
    let would: Vec<&Value> = lines
        .iter()
        .filter(|l| l["result"] == "would-run")
        .collect();
    assert_eq!(would.len(), 5, "{}", out(&dry));
    for b in &buckets {
        assert!(
            would
                .iter()
                .any(|l| l["resource"] == format!("arn:aws:s3:::{b}")
                    && l["function"] == "s3-block-public-access"
                    && l["kind"] == "control S3.8"),
            "{b}"
        );
    }
    assert_eq!(summary(&dry)["passed_over"], 2);
    assert!(
        json_lines(&ok(reflex(&["audit", "--json", "--table", &t], &env))).is_empty(),
        "a dry run writes nothing"
    );
    for b in buckets.iter().chain([&passed]) {
        assert!(!blocked_in(&s3, b).await, "{b}: a dry run changes nothing");
    }
    let text = out(&ok(reflex(
        &[
            "backlog",
            "--dry-run",
            "--limit",
            "2",
            "--policy",
            p,
            "--table",
            &t,
        ],
        &env,
    )));
    assert_eq!(text.matches("would run").count(), 2, "{text}");
    assert!(
        text.contains("dry run: nothing was run or written"),
        "{text}"
    );

    // The backlog: each finding handled once, by its function.
    let run = ok(reflex(
        &["backlog", "--json", "--policy", p, "--table", &t],
        &env,
    ));
    let s = summary(&run);
    let counts = &s["functions"]["s3-block-public-access"];
    assert_eq!(
        (
            counts["handled"].as_u64(),
            counts["succeeded"].as_u64(),
            counts["duplicates"].as_u64()
        ),
        (Some(5), Some(5), Some(0)),
        "{}",
        out(&run)
    );
    for b in &buckets {
        assert!(blocked_in(&s3, b).await, "{b}: fixed");
    }
    assert!(
        !blocked_in(&s3, &passed).await,
        "a passed or foreign finding is not acted on"
    );
    let records = json_lines(&ok(reflex(&["audit", "--json", "--table", &t], &env)));
    assert_eq!(records.len(), 5);
    let text = out(&ok(reflex(
        &["backlog", "--policy", p, "--table", &t],
        &env,
    )));
    assert!(
        text.contains("duplicate: already succeeded (remediated)"),
        "{text}"
    );

    // Run again (twice now): all duplicates, nothing changed.
    let again = ok(reflex(
        &[
            "backlog",
            "--json",
            "--policy",
            p,
            "--control",
            "S3.8",
            "--table",
            &t,
        ],
        &env,
    ));
    let counts = &summary(&again)["functions"]["s3-block-public-access"];
    assert_eq!(
        (
            counts["handled"].as_u64(),
            counts["succeeded"].as_u64(),
            counts["duplicates"].as_u64()
        ),
        (Some(5), Some(0), Some(5)),
        "{}",
        out(&again)
    );
    let after = json_lines(&ok(reflex(&["audit", "--json", "--table", &t], &env)));
    assert_eq!(after.len(), 5);
    for (before, now) in records.iter().zip(&after) {
        assert_eq!(before["record_id"], now["record_id"]);
        assert_eq!(
            (now["status"].as_str(), now["attempts"].as_u64()),
            (Some("succeeded"), Some(1))
        );
        assert_eq!(before["updated_at"], now["updated_at"], "outcome unchanged");
        assert_eq!(
            now["deliveries"], 3,
            "each later backlog counted as a delivery"
        );
    }
    // Another control's backlog runs none of them.
    let other = ok(reflex(
        &[
            "backlog",
            "--json",
            "--control",
            "S3.9",
            "--policy",
            p,
            "--table",
            &t,
        ],
        &env,
    ));
    assert_eq!(
        summary(&other)["functions"]["s3-block-public-access"]["handled"],
        0
    );
}

/// A role in a fresh moto account: moto keeps what its temporary credentials create apart, in
/// that account (its buckets, its table, its Security Hub findings).
struct Account {
    id: String,
    sdk: aws_config::SdkConfig,
    creds: aws_sdk_sts::types::Credentials,
}

impl Account {
    async fn fresh() -> Account {
        let digits: String = uuid::Uuid::new_v4()
            .as_u128()
            .to_string()
            .chars()
            .take(11)
            .collect();
        let id = format!("4{digits}");
        let creds = aws_sdk_sts::Client::new(&default_sdk().await)
            .assume_role()
            .role_arn(format!("arn:aws:iam::{id}:role/reflex-ops-test"))
            .role_session_name("reflex-ops-test")
            .send()
            .await
            .expect("AssumeRole")
            .credentials
            .expect("credentials");
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(Region::new(REGION))
            .credentials_provider(aws_sdk_sts::config::Credentials::new(
                creds.access_key_id(),
                creds.secret_access_key(),
                Some(creds.session_token().to_string()),
                None,
                "assumed",
            ))
            .load()
            .await;
        Account { id, sdk, creds }
    }

    /// The child process's environment: the same credentials.
    fn env(&self) -> [(&str, &str); 3] {
        [
            ("AWS_ACCESS_KEY_ID", self.creds.access_key_id()),
            ("AWS_SECRET_ACCESS_KEY", self.creds.secret_access_key()),
            ("AWS_SESSION_TOKEN", self.creds.session_token()),
        ]
    }
}
