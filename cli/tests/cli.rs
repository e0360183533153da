//! The `reflex` binary as an operator meets it: exit codes, messages, replay and audit against
//! the local AWS emulator (`AWS_ENDPOINT_URL`, set by scripts/test).

use serde_json::Value;
use std::process::{Command, Output};

fn reflex(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_reflex"))
        .args(args)
        .output()
        .expect("run reflex")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn sample(path: &str) -> String {
    format!("{}/../events/{path}", env!("CARGO_MANIFEST_DIR"))
}

fn endpoint() {
    assert!(
        std::env::var("AWS_ENDPOINT_URL").is_ok_and(|e| !e.is_empty()),
        "AWS_ENDPOINT_URL is not set: run the tests with scripts/test"
    );
}

#[test]
fn usage_errors_are_clear_and_non_zero() {
    let help = reflex(&["--help"]);
    assert!(help.status.success());
    let (out, _) = text(&help);
    for command in ["init", "replay", "audit", "demo"] {
        assert!(out.contains(command), "{out}");
    }
    let bad_status = reflex(&["audit", "--status", "bogus"]);
    assert_eq!(bad_status.status.code(), Some(2));
    assert!(text(&bad_status).1.contains("unknown status \"bogus\""));
    let no_function = reflex(&["replay", &sample("hostile/truncated.json")]);
    assert_eq!(no_function.status.code(), Some(2));
    let bad_function = reflex(&[
        "replay",
        &sample("hostile/truncated.json"),
        "--function",
        "nope",
    ]);
    assert_eq!(bad_function.status.code(), Some(2));
    let (_, err) = text(&bad_function);
    // Every registered function, in the registry's order.
    let names: Vec<&str> = reflex_cli::functions::specs().map(|s| s.name).collect();
    assert!(
        err.contains("invalid value 'nope'")
            && err.contains(&format!("[possible values: {}]", names.join(", "))),
        "{err}"
    );
    let bad_since = reflex(&["audit", "--since", "last tuesday", "--table", "none"]);
    assert_eq!(bad_since.status.code(), Some(1));
    assert!(text(&bad_since).1.contains("--since"));
}

#[test]
fn init_replay_and_audit_against_the_emulator() {
    endpoint();
    let table = format!(
        "reflex-cli-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    let t = ["--table", table.as_str()];

    // Before `init`: a short, actionable error, not an HTTP dump.
    let missing_table = reflex(&[&["audit"][..], &t].concat());
    assert_eq!(missing_table.status.code(), Some(1));
    let (_, err) = text(&missing_table);
    assert_eq!(err.trim(), format!("error: outcome table {table} does not exist (run `reflex init`, or check REFLEX_TABLE / --table)"));

    let init = reflex(&[&["init"][..], &t].concat());
    assert!(init.status.success(), "{:?}", text(&init));
    assert!(text(&init).0.contains("created"));
    let again = reflex(&[&["init"][..], &t].concat());
    assert!(text(&again).0.contains("already exists"));

    // Hostile and non-actionable events need no bucket: all handled, so exit 0.
    let files = [
        sample("hostile/truncated.json"),
        sample("non-actionable/securityhub-s3.8-other-account.json"),
    ];
    let mut args = vec!["replay", "--function", "s3-block-public-access", "--json"];
    args.extend(files.iter().map(String::as_str));
    args.extend(t);
    let replay = reflex(&args);
    let (out, err) = text(&replay);
    assert!(replay.status.success(), "{err}");
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["outcome"]["status"], "rejected");
    assert_eq!(lines[1]["outcome"]["status"], "skipped");
    assert_eq!(lines[1]["outcome"]["reason"], "untrusted");

    // A missing file is the operator's error: non-zero, and it says which.
    let missing = reflex(
        &[
            &[
                "replay",
                "nope.json",
                "--function",
                "s3-block-public-access",
            ][..],
            &t,
        ]
        .concat(),
    );
    assert_eq!(missing.status.code(), Some(1));
    assert!(text(&missing).1.contains("cannot read nope.json"));

    let all = reflex(&[&["audit", "--json"][..], &t].concat());
    assert_eq!(text(&all).0.lines().count(), 2);
    let rejected = reflex(&[&["audit", "--json", "--status", "rejected"][..], &t].concat());
    let rec: Value = serde_json::from_str(text(&rejected).0.trim()).unwrap();
    assert_eq!(rec["reason"], "malformed-event");
    assert_eq!(rec["event_digest"].as_str().map(str::len), Some(64));
    let by_resource = reflex(
        &[
            &[
                "audit",
                "--json",
                "--resource",
                "arn:aws:s3:::reflex-demo-public",
            ][..],
            &t,
        ]
        .concat(),
    );
    assert_eq!(text(&by_resource).0.lines().count(), 1);
    let recent = reflex(&[&["audit", "--csv", "--since", "1h"][..], &t].concat());
    let (csv, _) = text(&recent);
    assert!(
        csv.starts_with(
            "created,remediation,status,reason,mode,resource,verified,changes,record,detail"
        ),
        "{csv}"
    );
    assert_eq!(csv.lines().count(), 3);
    let future = reflex(&[&["audit", "--since", "2999-01-01"][..], &t].concat());
    assert!(text(&future).0.contains("no outcome records match"));
    let table_view = reflex(&[&["audit"][..], &t].concat());
    assert!(text(&table_view).0.contains("2 record(s)"));
}

fn unique_table() -> String {
    format!(
        "reflex-cli-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

fn reflex_with_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_reflex"));
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run reflex")
}

/// A role in another moto account: moto keeps what its temporary credentials create apart, in
/// that account. Tests that need an account-wide name of their own (the fixed `/reflex/policy`)
/// run the CLI there, so they race no other test on the one emulator.
struct Account {
    /// For the test's own clients.
    sdk: aws_config::SdkConfig,
    creds: aws_sdk_sts::types::Credentials,
    account: String,
}

impl Account {
    async fn assume(account: &str) -> Account {
        let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        let creds = aws_sdk_sts::Client::new(&sdk)
            .assume_role()
            .role_arn(format!("arn:aws:iam::{account}:role/reflex-cli-test"))
            .role_session_name("reflex-cli-test")
            .send()
            .await
            .expect("AssumeRole")
            .credentials
            .expect("credentials");
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .credentials_provider(aws_sdk_sts::config::Credentials::new(
                creds.access_key_id(),
                creds.secret_access_key(),
                Some(creds.session_token().to_string()),
                None,
                "assumed",
            ))
            .load()
            .await;
        Account {
            sdk,
            creds,
            account: account.to_string(),
        }
    }

    /// The child process's environment: the same credentials.
    fn env(&self) -> [(&str, &str); 3] {
        [
            ("AWS_ACCESS_KEY_ID", self.creds.access_key_id()),
            ("AWS_SECRET_ACCESS_KEY", self.creds.secret_access_key()),
            ("AWS_SESSION_TOKEN", self.creds.session_token()),
        ]
    }

    fn s3(&self) -> aws_sdk_s3::Client {
        aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&self.sdk)
                .force_path_style(true)
                .build(),
        )
    }
}

/// The demo turns Block Public Access off on two buckets: it must refuse anything but the
/// emulator's default account on loopback, before any change or table write.
#[tokio::test]
async fn the_demo_refuses_anything_but_the_local_emulator() {
    endpoint();
    // Not loopback: refused before any connection is attempted (.invalid never resolves).
    let remote = reflex_with_env(
        &["demo", "--table", "reflex-demo-refused"],
        &[(
            "AWS_ENDPOINT_URL",
            "https://dynamodb.us-east-1.example.invalid",
        )],
    );
    assert_eq!(remote.status.code(), Some(1));
    let (out, err) = text(&remote);
    assert!(
        err.contains("refusing to run the demo against https://dynamodb.us-east-1.example.invalid"),
        "{err}"
    );
    assert!(!out.contains("Handled table"), "{out}");

    // Loopback, but credentials of another account (an assumed role in account 111111111111,
    // which moto honours): refused after STS, before anything is written.
    let other = Account::assume("111111111111").await;
    let table = unique_table();
    let refused = reflex_with_env(&["demo", "--table", &table], &other.env());
    assert_eq!(refused.status.code(), Some(1));
    let (out, err) = text(&refused);
    assert!(
        err.contains("account 111111111111, not the emulator's default account 123456789012"),
        "{err}"
    );
    assert!(err.contains("nothing was changed or written"), "{err}");
    assert!(!out.contains("Handled table"), "{out}");
    // Nothing written in that account: no table, no demo bucket.
    let assumed = &other.sdk;
    let tables = aws_sdk_dynamodb::Client::new(assumed)
        .list_tables()
        .send()
        .await
        .unwrap();
    assert!(!tables.table_names().contains(&table), "{tables:?}");
    let s3 = other.s3();
    assert!(s3
        .head_bucket()
        .bucket("reflex-demo-public")
        .send()
        .await
        .is_err());
}

/// `replay --policy FILE` and `--policy-parameter NAME` apply that policy, not the
/// environment's (an operator replaying dead-lettered events under the deployed policy).
#[tokio::test]
async fn replay_applies_the_policy_it_is_given() {
    endpoint();
    let table = unique_table();
    let t = ["--table", table.as_str()];
    assert!(reflex(&[&["init"][..], &t].concat()).status.success());
    let off = "version: 1\nremediations:\n  s3-block-public-access: {enabled: false}\n";
    let file = std::env::temp_dir().join(format!("{table}.yaml"));
    std::fs::write(&file, off).unwrap();
    let parameter = format!("/reflex-cli/{table}");
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    aws_sdk_ssm::Client::new(&sdk)
        .put_parameter()
        .name(&parameter)
        .value(off)
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .send()
        .await
        .unwrap();
    let event = sample("s3-block-public-access/securityhub-s3.8-imported.json");
    let file = file.display().to_string();
    for how in [
        ["--policy", file.as_str()],
        ["--policy-parameter", &parameter],
    ] {
        let out = reflex(
            &[
                &["replay", "--json", "--function", "s3-block-public-access"][..],
                &how,
                &[event.as_str()],
                &t,
            ]
            .concat(),
        );
        let (stdout, err) = text(&out);
        assert!(out.status.success(), "{how:?}: {err}");
        let line: Value = serde_json::from_str(stdout.trim()).unwrap();
        assert_eq!(line["outcome"]["reason"], "disabled", "{how:?}: {line}");
        let said = match how[0] {
            "--policy" => format!("policy: file {}", how[1]),
            _ => format!("policy: SSM parameter {}", how[1]),
        };
        assert!(err.contains(&said), "{how:?}: {err}");
    }
    let both = reflex(
        &[
            &["replay", "--function", "s3-block-public-access"][..],
            &["--policy", file.as_str(), "--policy-parameter", &parameter],
            &[event.as_str()],
            &t,
        ]
        .concat(),
    );
    assert_eq!(both.status.code(), Some(2), "one policy source at a time");
}

/// Replays `s3-block-public-access/securityhub-s3.8-imported.json` in `account` (its bucket and
/// account swapped for the test's), on a fresh public bucket and table there, with no policy
/// named by flag or variable. Returns the outcome line, the CLI's stderr, and whether the
/// bucket still has Block Public Access off afterwards.
async fn replay_with_no_policy_named(account: &Account) -> (Value, String, bool) {
    let s3 = account.s3();
    let table = unique_table();
    let t = ["--table", table.as_str()];
    let env = account.env();
    let init = reflex_with_env(&[&["init"][..], &t].concat(), &env);
    assert!(init.status.success(), "{:?}", text(&init));
    let bucket = unique_table();
    reflex_cli::demo::make_public_bucket(&s3, &bucket, false)
        .await
        .unwrap();
    let event = std::fs::read_to_string(sample(
        "s3-block-public-access/securityhub-s3.8-imported.json",
    ))
    .unwrap()
    .replace("reflex-demo-public", &bucket)
    .replace("123456789012", &account.account);
    let event_file = std::env::temp_dir().join(format!("{table}-event.json"));
    std::fs::write(&event_file, event).unwrap();
    let replay = reflex_with_env(
        &[
            &["replay", "--json", "--function", "s3-block-public-access"][..],
            &[event_file.to_str().unwrap()],
            &t,
        ]
        .concat(),
        &env,
    );
    let (out, err) = text(&replay);
    assert!(replay.status.success(), "{err}");
    let line: Value = serde_json::from_str(out.trim()).unwrap();
    let still_public = acls_blocked(&s3, &bucket).await == Some(false);
    (line, err, still_public)
}

/// With nothing named, `replay` applies the deployment's `/reflex/policy`: its kill switch to
/// `dry-run` holds for an operator's replay too, and stderr says which policy was used.
#[tokio::test]
async fn replay_applies_the_deployed_policy_by_default() {
    endpoint();
    // Its own account: `/reflex/policy` is a fixed name, and no other test may see it.
    let account = Account::assume("222222222222").await;
    aws_sdk_ssm::Client::new(&account.sdk)
        .put_parameter()
        .name("/reflex/policy")
        .value("version: 1\nremediations:\n  s3-block-public-access: {mode: dry-run}\n")
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .overwrite(true)
        .send()
        .await
        .unwrap();
    let (line, err, still_public) = replay_with_no_policy_named(&account).await;
    assert_eq!(line["outcome"]["status"], "dry-run", "{line}");
    assert!(still_public, "dry-run changes nothing");
    assert!(
        err.contains("policy: SSM parameter /reflex/policy"),
        "{err}"
    );
}

/// Where the deployment's parameter does not exist, `replay` applies what the functions apply
/// then: the first-deploy policy, every remediation in dry-run (nothing changes), and says so.
#[tokio::test]
async fn replay_without_a_deployed_policy_applies_the_first_deploy_dry_run() {
    endpoint();
    // Its own account, where nothing creates `/reflex/policy`.
    let account = Account::assume("333333333333").await;
    let (line, err, still_public) = replay_with_no_policy_named(&account).await;
    assert_eq!(line["outcome"]["status"], "dry-run", "{line}");
    assert!(
        line["outcome"]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("no policy at /reflex/policy yet")),
        "{line}"
    );
    assert!(still_public, "the first deploy changes nothing");
    assert!(
        err.contains("policy: the first-deploy policy, every remediation in dry-run")
            && err.contains("no SSM parameter /reflex/policy"),
        "{err}"
    );
}

/// `audit --stuck` lists records left `claimed` or `acting` past their lease, and nothing else.
#[tokio::test]
async fn audit_lists_stuck_records() {
    use reflex_shared::ledger::{Ledger, OutcomeRecord, RecordMeta, Takeover};
    endpoint();
    let table = unique_table();
    let t = ["--table", table.as_str()];
    assert!(reflex(&[&["init"][..], &t].concat()).status.success());
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let ledger = Ledger::new(aws_sdk_dynamodb::Client::new(&sdk), &table);
    let now = chrono::Utc::now();
    let stamp = now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    for (id, status, lease) in [
        ("stuck-claimed", reflex_shared::status::Status::Claimed, -10),
        ("stuck-acting", reflex_shared::status::Status::Acting, -10),
        ("live", reflex_shared::status::Status::Claimed, 600),
    ] {
        let meta = RecordMeta {
            function_version: "t".into(),
            request_id: id.into(),
            event_digest: "0".repeat(64),
            claim_token: id.into(),
        };
        let mut r = OutcomeRecord::new(
            format!("s3-block-public-access#{id}"),
            "s3-block-public-access",
            &meta,
            &stamp,
        );
        r.status = status;
        r.lease_expires_at = Some(now.timestamp() + lease);
        r.resource_arn = Some(format!("arn:aws:s3:::{id}"));
        ledger
            .claim(r, now.timestamp(), Takeover::ExpiredLease)
            .await
            .unwrap();
    }
    let out = reflex(&[&["audit", "--stuck", "--json"][..], &t].concat());
    let (stdout, err) = text(&out);
    assert!(out.status.success(), "{err}");
    let mut ids: Vec<String> = stdout
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["request_id"].to_string())
        .collect();
    ids.sort();
    assert_eq!(ids, ["\"stuck-acting\"", "\"stuck-claimed\""]);
    let help = text(&reflex(&["audit", "--help"])).0;
    assert!(help.contains("--stuck"), "{help}");
}

/// `reflex approve RECORD_ID`: a GuardDuty finding held for approval is carried out as shown,
/// with the operator's STS identity recorded; a second approval is refused, changing nothing.
#[tokio::test]
async fn approve_carries_out_a_held_fix_and_records_the_operator() {
    endpoint();
    let table = unique_table();
    let t = ["--table", table.as_str()];
    assert!(reflex(&[&["init"][..], &t].concat()).status.success());
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .build(),
    );
    let bucket = format!(
        "reflex-cli-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    reflex_cli::demo::make_public_bucket(&s3, &bucket, false)
        .await
        .unwrap();
    let acls_blocked = || acls_blocked(&s3, &bucket);
    let event = std::fs::read_to_string(sample(
        "s3-block-public-access/guardduty-bucket-block-public-access-disabled.json",
    ))
    .unwrap()
    .replace("reflex-demo-public", &bucket);
    let dir = std::env::temp_dir();
    let event_file = dir.join(format!("{table}-event.json"));
    std::fs::write(&event_file, event).unwrap();
    let policy = dir.join(format!("{table}-policy.yaml"));
    std::fs::write(
        &policy,
        "version: 1\nremediations:\n  s3-block-public-access: {mode: approve}\n",
    )
    .unwrap();
    let p = ["--policy", policy.to_str().unwrap()];

    let replay = reflex(
        &[
            &["replay", "--json", "--function", "s3-block-public-access"][..],
            &p,
            &[event_file.to_str().unwrap()],
            &t,
        ]
        .concat(),
    );
    let line: Value = serde_json::from_str(text(&replay).0.trim()).unwrap();
    assert_eq!(line["outcome"]["status"], "pending-approval", "{line}");
    let record_id = line["outcome"]["record_id"].as_str().unwrap().to_string();

    let approve = reflex(&[&["approve", &record_id, "--json"][..], &p, &t].concat());
    let (out, err) = text(&approve);
    assert!(approve.status.success(), "{err}");
    let line: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(line["outcome"]["status"], "succeeded", "{line}");
    let record: Value = serde_json::from_str(
        text(&reflex(
            &[
                &[
                    "audit",
                    "--json",
                    "--resource",
                    &format!("arn:aws:s3:::{bucket}"),
                ][..],
                &t,
            ]
            .concat(),
        ))
        .0
        .trim(),
    )
    .unwrap();
    let by = record["approved_by"].as_str().unwrap_or_default();
    assert!(
        by.starts_with("arn:aws:") && by.contains("123456789012"),
        "{record}"
    );
    assert_eq!(acls_blocked().await, Some(true));

    let again = reflex(&[&["approve", &record_id][..], &p, &t].concat());
    assert_eq!(again.status.code(), Some(1));
    assert!(
        text(&again).1.contains("not pending approval"),
        "{:?}",
        text(&again)
    );
    let unknown = reflex(&[&["approve", "no-such-function#abc"][..], &t].concat());
    assert_eq!(unknown.status.code(), Some(1));
    assert!(text(&unknown).1.contains("names no Reflex function"));

    // Rolled back: a dry-run first, then for real, held back for a day.
    let dry = reflex(&[&["rollback", &record_id, "--dry-run"][..], &p, &t].concat());
    let (out, err) = text(&dry);
    assert!(dry.status.success(), "{err}");
    assert!(
        out.contains("dry-run: the rollback would make 1 change(s)"),
        "{out}"
    );
    let rolled = reflex(
        &[
            &["rollback", &record_id, "--hold-for", "24h", "--json"][..],
            &p,
            &t,
        ]
        .concat(),
    );
    let (out, err) = text(&rolled);
    assert!(rolled.status.success(), "{err}");
    let line: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(line["outcome"]["status"], "rolled-back", "{line}");
    assert_eq!(acls_blocked().await, Some(false), "the pre-state is back");
    let listed = reflex(&[&["audit", "--suppressions"][..], &t].concat());
    let (out, _) = text(&listed);
    assert!(
        out.contains(&format!("arn:aws:s3:::{bucket}")) && out.contains("1 live suppression(s)"),
        "{out}"
    );
    let twice = reflex(&[&["rollback", &record_id][..], &p, &t].concat());
    assert_eq!(twice.status.code(), Some(1));
    assert!(
        text(&twice).1.contains("already rolled back"),
        "{:?}",
        text(&twice)
    );
    let bad_hold = reflex(&[&["rollback", &record_id, "--hold-for", "soon"][..], &t].concat());
    assert_eq!(bad_hold.status.code(), Some(2));
}

/// A rollback's hold is at most 90 days; `--command-for-function` prints the command signed
/// with the operator's credentials, bound to the record, table and parameters, naming no one.
#[test]
fn holds_are_bounded_and_commands_for_functions_are_signed() {
    endpoint();
    let record_id = "s3-block-public-access#0123456789abcdef0123456789abcdef";
    let t = ["--table", "reflex-signed"];
    let too_long = reflex(&[&["rollback", record_id, "--hold-for", "91d"][..], &t].concat());
    assert_eq!(too_long.status.code(), Some(2));
    let (_, err) = text(&too_long);
    assert!(err.contains("--hold-for is at most 90 days"), "{err}");
    let far_too_long = reflex(&["rollback", record_id, "--hold-for", "100000h"]);
    assert_eq!(far_too_long.status.code(), Some(2));
    assert!(text(&far_too_long).1.contains("at most 90 days"));

    let signed = reflex(
        &[
            &["rollback", record_id, "--hold-for", "90d", "--dry-run"][..],
            &["--command-for-function"],
            &t,
        ]
        .concat(),
    );
    let (out, err) = text(&signed);
    assert!(signed.status.success(), "{err}");
    let payload: Value = serde_json::from_str(out.trim()).unwrap();
    let command = &payload["reflex"];
    assert_eq!(command["command"], "rollback");
    assert_eq!(command["record_id"], record_id);
    assert_eq!(command["dry_run"], true);
    assert_eq!(command["hold_for_hours"], 2160);
    assert!(command.get("by").is_none(), "{payload}");
    let order = reflex_shared::operator::Order::Rollback {
        dry_run: true,
        hold_for_hours: 2160,
    };
    let headers = &command["proof"]["headers"];
    assert_eq!(
        headers["x-reflex-command"],
        reflex_shared::operator::digest(order, record_id, "reflex-signed")
    );
    let authorization = headers["authorization"].as_str().unwrap_or_default();
    assert!(
        authorization.contains("SignedHeaders=content-type;host;x-amz-date;x-reflex-command"),
        "{authorization}"
    );
    assert_eq!(
        command["proof"]["body"],
        "Action=GetCallerIdentity&Version=2011-06-15"
    );

    let approve = reflex(&[&["approve", record_id, "--command-for-function"][..], &t].concat());
    let (out, err) = text(&approve);
    assert!(approve.status.success(), "{err}");
    let payload: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(payload["reflex"]["command"], "approve");
    assert!(
        payload["reflex"].get("hold_for_hours").is_none(),
        "{payload}"
    );

    let minutes = reflex(
        &[
            &["rollback", record_id, "--hold-for", "90m"][..],
            &["--command-for-function"],
            &t,
        ]
        .concat(),
    );
    assert_eq!(minutes.status.code(), Some(1));
    assert!(
        text(&minutes).1.contains("whole hours"),
        "{:?}",
        text(&minutes)
    );
}

/// Block Public Access's first setting of `bucket`, read through the emulator.
async fn acls_blocked(s3: &aws_sdk_s3::Client, bucket: &str) -> Option<bool> {
    s3.get_public_access_block()
        .bucket(bucket)
        .send()
        .await
        .unwrap()
        .public_access_block_configuration()
        .and_then(|c| c.block_public_acls())
}

/// `reflex audit --exemptions` lists the exemptions of the policy in force (here
/// REFLEX_POLICY_FILE): those ending within 14 days first, then the others, the ended flagged.
#[test]
fn audit_lists_the_exemptions_ending_soon_first() {
    endpoint();
    let day = |offset: i64| {
        (chrono::Utc::now() + chrono::Duration::days(offset))
            .format("%Y-%m-%d")
            .to_string()
    };
    let dir = std::env::temp_dir().join(format!("reflex-exemptions-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("policy.yaml");
    std::fs::write(
        &file,
        format!(
            "version: 1\nexemptions:\n  rules:\n    - {{match: {{arns: ['arn:aws:s3:::far']}}, reason: far off, owner: o1, expires: {}}}\n    - {{match: {{accounts: ['123456789012']}}, reason: ended, owner: o2, expires: {}}}\n    - {{match: {{tags: {{team: web}}}}, reason: soon, owner: o3, expires: {}}}\n",
            day(100),
            day(-2),
            day(5)
        ),
    )
    .unwrap();
    let env = [("REFLEX_POLICY_FILE", file.to_str().unwrap())];
    let csv = reflex_with_env(&["audit", "--exemptions", "--csv"], &env);
    let (out, err) = text(&csv);
    assert!(csv.status.success(), "{err}");
    let rows: Vec<(&str, &str)> = out
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[0], f[4])
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("expires-soon", "exemptions.rules[2]"),
            ("active", "exemptions.rules[0]"),
            ("expired", "exemptions.rules[1]"),
        ],
        "{out}"
    );
    let json = text(&reflex_with_env(&["audit", "--exemptions", "--json"], &env)).0;
    let first: Value = serde_json::from_str(json.lines().next().unwrap()).unwrap();
    assert_eq!(
        (first["owner"].as_str(), first["days_left"].as_i64()),
        (Some("o3"), Some(5))
    );
    let (table, _) = text(&reflex_with_env(&["audit", "--exemptions"], &env));
    assert!(
        table.contains("1 ending within 14 days, 1 ended"),
        "{table}"
    );
    assert!(table.contains("--tag-filters Key=reflex:exempt"), "{table}");
    std::fs::remove_dir_all(&dir).ok();
}

/// A table an earlier `reflex init` made, before the by-status index existed: `init` adds the
/// index, and `audit --status` (which answers only through it) works on that table.
#[tokio::test]
async fn init_adds_an_index_an_older_table_lacks() {
    endpoint();
    let table = unique_table();
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let db = aws_sdk_dynamodb::Client::new(&sdk);
    reflex_shared::ledger::table::create_table(&db, &table)
        .unwrap()
        .send()
        .await
        .unwrap();
    db.update_table()
        .table_name(&table)
        .global_secondary_index_updates(
            aws_sdk_dynamodb::types::GlobalSecondaryIndexUpdate::builder()
                .delete(
                    aws_sdk_dynamodb::types::DeleteGlobalSecondaryIndexAction::builder()
                        .index_name("by-status")
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    let indexes = |db: aws_sdk_dynamodb::Client, table: String| async move {
        let out = db.describe_table().table_name(table).send().await.unwrap();
        let mut names: Vec<String> = out
            .table()
            .unwrap()
            .global_secondary_indexes()
            .iter()
            .filter_map(|g| g.index_name().map(str::to_string))
            .collect();
        names.sort();
        names
    };
    assert_eq!(
        indexes(db.clone(), table.clone()).await,
        ["by-resource", "by-time"]
    );

    let t = ["--table", table.as_str()];
    let init = reflex(&[&["init"][..], &t].concat());
    assert!(init.status.success(), "{:?}", text(&init));
    assert!(
        text(&init)
            .0
            .contains("already exists; index by-status added"),
        "{:?}",
        text(&init)
    );
    assert_eq!(
        indexes(db.clone(), table.clone()).await,
        ["by-resource", "by-status", "by-time"]
    );
    let again = reflex(&[&["init"][..], &t].concat());
    assert_eq!(
        text(&again).0.trim(),
        format!("table {table}: already exists")
    );
    let audit = reflex(&[&["audit", "--status", "failed"][..], &t].concat());
    assert!(audit.status.success(), "{:?}", text(&audit));
}
