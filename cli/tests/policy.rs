//! `reflex policy …`, `--stack` and the AWS edge, as an operator meets them: the `reflex`
//! binary against the local AWS emulator (`AWS_ENDPOINT_URL`, set by scripts/test). Each test
//! works on a policy parameter (and a stack) of its own.

use std::process::{Command, Output};

fn reflex(args: &[&str], env: &[(&str, &str)], unset: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_reflex"));
    c.args(args);
    for k in unset {
        c.env_remove(k);
    }
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run reflex")
}

fn ok(args: &[&str]) -> String {
    let o = reflex(args, &[], &[]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{args:?}: {out}\n{err}");
    out
}

/// Run, assert success, and return stdout and stderr.
fn ok_both(args: &[&str]) -> (String, String) {
    let o = reflex(args, &[], &[]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{args:?}: {out}\n{err}");
    (out, err)
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn endpoint() {
    assert!(
        std::env::var("AWS_ENDPOINT_URL").is_ok_and(|e| !e.is_empty()),
        "AWS_ENDPOINT_URL is not set: run the tests with scripts/test"
    );
}

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

/// A policy file in a directory of the test's own.
fn file(name: &str, body: &str) -> String {
    let dir = std::env::temp_dir().join(unique("reflex-policy-test"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, body).unwrap();
    path.display().to_string()
}

async fn ssm() -> aws_sdk_ssm::Client {
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    aws_sdk_ssm::Client::new(&sdk)
}

/// The parameter's version and value, or `None` where it does not exist.
async fn stored(name: &str) -> Option<(i64, String)> {
    match ssm().await.get_parameter().name(name).send().await {
        Ok(o) => o
            .parameter
            .map(|p| (p.version, p.value.unwrap_or_default())),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_parameter_not_found()) =>
        {
            None
        }
        Err(e) => panic!("{e:?}"),
    }
}

const GOOD: &str =
    "# staging\nversion: 1\nremediations:\n  s3-block-public-access: {mode: dry-run}\n";
const GOOD_TOO: &str = "version: 1\nremediations:\n  s3-block-public-access:\n    mode: enforce\n";
/// Two errors, on lines 3 and 5.
const BAD: &str = "version: 1\nremediations:\n  s3-block-pubic-access: {mode: enforce}\n  network-block-ip:\n    max_attempts: 0\n";

#[test]
fn validate_names_every_error_with_its_line_and_reads_no_aws() {
    let bad = file("bad.yaml", BAD);
    // No AWS at all: no region, no credentials.
    let o = reflex(
        &["policy", "validate", &bad],
        &[],
        &["AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_ENDPOINT_URL"],
    );
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert!(
        lines[0].starts_with(&format!(
            "{bad}:3: policy key `remediations.s3-block-pubic-access`: unknown remediation"
        )),
        "{err}"
    );
    assert!(
        lines[1].starts_with(&format!(
            "{bad}:5: policy key `remediations.network-block-ip.max_attempts`"
        )),
        "{err}"
    );
    assert!(err.contains("2 error(s)"), "{err}");

    // A remediation's own parameters, checked by its type as its cold start would.
    let params = file(
        "params.yaml",
        "version: 1\nremediations:\n  network-block-ip:\n    parameters:\n      ttl_hour: 3\n",
    );
    let o = reflex(&["policy", "validate", &params], &[], &[]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.starts_with(&format!(
            "{params}:4: policy key `remediations.network-block-ip.parameters`"
        )) && err.contains("ttl_hour"),
        "{err}"
    );

    let good = file("good.yaml", GOOD);
    let o = reflex(&["policy", "validate", &good], &[], &[]);
    assert!(o.status.success(), "{:?}", text(&o));
    assert!(text(&o)
        .0
        .contains("valid (1 remediation(s) configured; kill switch off)"));
}

/// A push with an error is refused: nothing is written, the version in force stays.
#[tokio::test]
async fn a_push_with_an_error_is_refused_and_writes_nothing() {
    endpoint();
    let p = format!("/{}/policy", unique("refused"));
    let bad = file("bad.yaml", BAD);
    // Nothing there yet: still nothing after the refusal.
    let o = reflex(
        &["policy", "push", &bad, "--policy-parameter", &p],
        &[],
        &[],
    );
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("refused: nothing was written"), "{err}");
    assert!(err.contains(":3: policy key"), "{err}");
    assert_eq!(stored(&p).await, None);

    ok(&[
        "policy",
        "push",
        &file("good.yaml", GOOD),
        "--policy-parameter",
        &p,
    ]);
    assert_eq!(stored(&p).await, Some((1, GOOD.to_string())));
    let o = reflex(
        &["policy", "push", &bad, "--policy-parameter", &p],
        &[],
        &[],
    );
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stored(&p).await,
        Some((1, GOOD.to_string())),
        "version unchanged"
    );
}

/// Push, show, push again, revert: each says its version; revert puts the previous policy
/// back as a new version, and the history keeps them all.
#[tokio::test]
async fn push_show_and_revert_round_trip() {
    endpoint();
    let p = format!("/{}/policy", unique("roundtrip"));
    let at = ["--policy-parameter", p.as_str()];

    // Where it came from on stderr; on stdout a document to start from (show > policy.yaml).
    let (doc, shown) = ok_both(&[&["policy", "show"][..], &at].concat());
    assert!(
        shown.contains(&format!("none at {p} (absent): first-deploy dry-run"))
            && shown.contains("every remediation runs in dry-run"),
        "{shown}"
    );
    let start = reflex_shared::policy::Policy::from_yaml(&doc).unwrap();
    assert_eq!(
        (start.defaults.mode, start.kill_switch),
        (Some(reflex_shared::policy::Mode::DryRun), false),
        "{doc}"
    );
    let first = ok(&[&["policy", "push", &file("a.yaml", GOOD)][..], &at].concat());
    assert!(
        first.contains(&format!("to {p}: version 1 (previous: none")),
        "{first}"
    );
    let second = ok(&[&["policy", "push", &file("b.yaml", GOOD_TOO)][..], &at].concat());
    assert!(
        second.contains("version 2 (previous: version 1; `reflex policy revert` puts it back)"),
        "{second}"
    );
    let (doc, shown) = ok_both(&[&["policy", "show"][..], &at].concat());
    assert!(
        shown.contains(&format!(
            "policy in force: SSM parameter {p}, version 2, last modified 20"
        )),
        "{shown}"
    );
    assert_eq!(doc, GOOD_TOO, "stdout is the document alone");

    let reverted = ok(&[&["policy", "revert"][..], &at].concat());
    assert!(
        reverted.contains("to version 1's policy: written as version 3"),
        "{reverted}"
    );
    assert_eq!(stored(&p).await, Some((3, GOOD.to_string())));
    let (doc, shown) = ok_both(&[&["policy", "show"][..], &at].concat());
    assert!(shown.contains("version 3"), "{shown}");
    assert_eq!(doc, GOOD);
    // Reverting again goes back to version 2's policy: nothing is lost.
    ok(&[&["policy", "revert"][..], &at].concat());
    assert_eq!(stored(&p).await, Some((4, GOOD_TOO.to_string())));
}

/// The kill switch through the binary: on and off, each a new version; off where no policy
/// exists is refused (the first-deploy policy has no switch to lift), on writes one that keeps
/// every remediation in dry-run.
#[tokio::test]
async fn the_kill_switch_is_pushed_as_a_new_version() {
    endpoint();
    let p = format!("/{}/policy", unique("switch"));
    let at = ["--policy-parameter", p.as_str()];
    let o = reflex(
        &[&["policy", "kill-switch", "off"][..], &at].concat(),
        &[],
        &[],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).1.contains("first-deploy policy is in force"));
    assert_eq!(stored(&p).await, None);

    let on = ok(&[&["policy", "kill-switch", "on"][..], &at].concat());
    assert!(
        on.contains("kill switch on: wrote")
            && on.contains(
                "Warm functions obey within REFLEX_POLICY_MAX_AGE_SECONDS (60 s by default)"
            ),
        "{on}"
    );
    let (v, value) = stored(&p).await.unwrap();
    let policy = reflex_shared::policy::Policy::from_yaml(&value).unwrap();
    assert!(policy.kill_switch);
    assert_eq!(
        policy.defaults.mode,
        Some(reflex_shared::policy::Mode::DryRun)
    );
    let again = ok(&[&["policy", "kill-switch", "on"][..], &at].concat());
    assert!(again.contains("already on"), "{again}");
    assert_eq!(stored(&p).await.unwrap().0, v, "nothing written");
    ok(&[&["policy", "kill-switch", "off"][..], &at].concat());
    let (v2, value) = stored(&p).await.unwrap();
    assert_eq!(v2, v + 1);
    assert!(
        !reflex_shared::policy::Policy::from_yaml(&value)
            .unwrap()
            .kill_switch
    );
}

/// `--stack NAME` reads the table and the policy parameter from the stack's outputs: a stack
/// made in the emulator with those two outputs (and a queue: a stack needs a resource).
#[tokio::test]
async fn a_deployment_is_found_by_its_stack() {
    endpoint();
    let stack = unique("reflex-stack");
    let table = format!("{stack}-outcomes");
    let parameter = format!("/{stack}/policy");
    let body = serde_json::json!({
        "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {
            "OutcomeTableName": {"Value": table},
            "PolicyParameterName": {"Value": parameter},
        }
    });
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    aws_sdk_cloudformation::Client::new(&sdk)
        .create_stack()
        .stack_name(&stack)
        .template_body(body.to_string())
        .send()
        .await
        .unwrap();

    let s = ["--stack", stack.as_str()];
    let init = ok(&[&["init"][..], &s].concat());
    assert!(init.contains(&format!("table {table}: created")), "{init}");
    let audit = ok(&[&["audit"][..], &s].concat());
    assert!(audit.contains("no outcome records"), "{audit}");
    let pushed = ok(&[&["policy", "push", &file("p.yaml", GOOD)][..], &s].concat());
    assert!(
        pushed.contains(&format!("to {parameter}: version 1")),
        "{pushed}"
    );
    assert_eq!(stored(&parameter).await, Some((1, GOOD.to_string())));

    // `--stack` names both: with --table, --policy-parameter or --policy it is refused, and
    // for a command that reads no deployment.
    let o = reflex(&[&["audit", "--table", "t"][..], &s].concat(), &[], &[]);
    assert_eq!(o.status.code(), Some(1), "{:?}", text(&o));
    assert!(text(&o).1.contains("--stack names the outcome table"));
    let o = reflex(
        &[&["policy", "show", "--policy-parameter", "/x"][..], &s].concat(),
        &[],
        &[],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o)
        .1
        .contains("--stack applies the deployment's policy"));
    let o = reflex(
        &[&["retry", "no-such#record", "--policy", "p.yaml"][..], &s].concat(),
        &[],
        &[],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o)
        .1
        .contains("--stack applies the deployment's policy"));
    for args in [&["template"][..], &["policy", "validate", "p.yaml"]] {
        let o = reflex(&[args, &s[..]].concat(), &[], &[]);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        assert!(
            text(&o).1.contains("this command reads none: drop --stack"),
            "{args:?}: {:?}",
            text(&o)
        );
    }
    // An exported REFLEX_TABLE (or policy variables) yield to --stack: its deployment wins.
    let o = reflex(
        &[&["audit"][..], &s].concat(),
        &[
            ("REFLEX_TABLE", "some-other-table"),
            ("REFLEX_POLICY_PARAMETER", "/some/other/policy"),
        ],
        &[],
    );
    assert!(o.status.success(), "{:?}", text(&o));
    assert!(text(&o).0.contains("no outcome records"), "{:?}", text(&o));
    let o = reflex(&["audit", "--stack", "no-such-stack-here"], &[], &[]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        text(&o).1.trim(),
        "error: no stack named no-such-stack-here in this account and region (--stack)"
    );
}

/// No region, or no credentials: one line naming the setting, before any call, for every
/// command that talks to AWS.
#[test]
fn a_missing_region_or_credentials_is_one_clear_line() {
    // No profile or metadata service may supply either.
    let isolated = [
        ("AWS_CONFIG_FILE", "/nonexistent/reflex/config"),
        (
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/reflex/credentials",
        ),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ];
    for args in [
        &["audit"][..],
        &["init"],
        &["policy", "show"],
        &["policy", "kill-switch", "on"],
    ] {
        let o = reflex(
            args,
            &isolated,
            &["AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"],
        );
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        let (_, err) = text(&o);
        assert_eq!(
            err,
            "error: no AWS region: set AWS_REGION (or AWS_DEFAULT_REGION), or a region in the profile AWS_PROFILE names (~/.aws/config)\n",
            "{args:?}"
        );
        let o = reflex(
            args,
            &[isolated.as_slice(), &[("AWS_REGION", "us-east-1")]].concat(),
            &[
                "AWS_ACCESS_KEY_ID",
                "AWS_SECRET_ACCESS_KEY",
                "AWS_SESSION_TOKEN",
                "AWS_PROFILE",
            ],
        );
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        let (_, err) = text(&o);
        assert!(
            err.starts_with(
                "error: no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
            ) && err.lines().count() == 1,
            "{args:?}: {err}"
        );
    }
}
