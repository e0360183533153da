use super::*;
use crate::finding::{Finding, FindingDetails, FindingKind, Intent, Severity, Source};
use crate::status::Reason;

mod context;

const OWN: &str = "123456789012";
const BUCKET: &str = "arn:aws:s3:::data-bucket";

fn finding(kind: FindingKind, severity: u8) -> Finding {
    Finding {
        source: Source::Securityhub,
        id: "f-1".into(),
        kind,
        title: "t".into(),
        severity: Severity::from_normalized(severity),
        product_arn: "arn:aws:securityhub:us-east-1::product/aws/securityhub".into(),
        account: OWN.into(),
        region: "us-east-1".into(),
        observed_at: None,
        generation: "g".into(),
        resources: vec![],
        details: FindingDetails::default(),
        inactive: None,
        intent: None,
        sample: false,
        requested_by: None,
        requested_at: None,
        securityhub_finding: None,
    }
}

fn control(id: &str) -> Finding {
    finding(FindingKind::Control(id.into()), 70)
}

fn eval(policy: &Policy, risk: Risk, f: &Finding) -> Verdict {
    policy.evaluate("s3-block-public-access", risk, f, BUCKET, OWN)
}

fn mode_of(v: Verdict) -> Mode {
    match v {
        Verdict::Act(d) => d.mode,
        Verdict::Skip { reason, detail } => panic!("skipped: {reason} {detail}"),
    }
}

fn reason_of(v: Verdict) -> Reason {
    match v {
        Verdict::Skip { reason, .. } => reason,
        Verdict::Act(d) => panic!("acts in {}", d.mode),
    }
}

#[test]
fn invalid_documents_name_the_bad_key() {
    let cases: &[(&str, &str)] = &[
        ("version: 2", "`version`"),
        ("version: 1\ndefaults:\n  modee: enforce", "unknown field `modee`"),
        ("version: 1\ndefaults:\n  mode: yolo", "unknown variant `yolo`"),
        ("version: 1\ndefaults:\n  severity_threshold: 101", "`defaults.severity_threshold`"),
        ("version: 1\ntrusted_products: []", "`trusted_products`"),
        ("version: 1\naccounts:\n  '12345':\n    mode: dry-run", "`accounts.12345`"),
        ("version: 1\nremediations:\n  s3-block-pubic-access:\n    mode: enforce", "`remediations.s3-block-pubic-access`"),
        ("version: 1\nremediations:\n  s3-block-public-access:\n    max_changes_per_hour: 0", "`remediations.s3-block-public-access.max_changes_per_hour`"),
        ("version: 1\nremediations:\n  s3-block-public-access:\n    max_attempts: 0", "`remediations.s3-block-public-access.max_attempts`"),
        ("version: 1\nremediations:\n  s3-block-public-access:\n    max_attempts: 11", "`remediations.s3-block-public-access.max_attempts`"),
        ("version: 1\nremediations:\n  s3-block-public-access:\n    overrides:\n      - match: {}\n        set: {mode: approve}", "`remediations.s3-block-public-access.overrides[0].match`"),
        ("version: 1\nremediations:\n  s3-block-public-access:\n    overrides:\n      - match: {accounts: ['1']}\n        set: {mode: approve}", "`remediations.s3-block-public-access.overrides[0].match.accounts[0]`"),
        ("version: 1\nexemptions:\n  tag: ''", "`exemptions.tag`"),
        ("version: 1\nexemptions:\n  rules:\n    - match: {arns: ['']}\n      reason: r\n      owner: o\n      expires: 2030-01-01", "`exemptions.rules[0].match.arns[0]`"),
        // The old bare list has no owner and no end: refused, pointing at the new form.
        ("version: 1\nexemptions:\n  arns: ['arn:aws:s3:::x']", "`exemptions.arns`: an exemption needs a reason, an owner and an end"),
        ("version: [1", "not valid YAML"),
        ("", "not valid YAML"),
    ];
    for (doc, want) in cases {
        let err = Policy::from_yaml(doc).expect_err(doc).to_string();
        assert!(
            err.contains(want),
            "{doc:?}: {err:?} should contain {want:?}"
        );
    }
}

#[test]
fn a_full_document_parses() {
    let doc = r#"
version: 1
defaults: {severity_threshold: 40}
trusted_products: ["arn:aws:securityhub:*::product/aws/*"]
exemptions:
  tag: team:keep-public
  rules:
    - match: {arns: ["arn:aws:s3:::public-website-*"]}
      reason: a public website
      owner: web-team@example.com
      expires: 2030-06-30
  protected_principals: ["arn:aws:iam::*:role/BreakGlass"]
accounts:
  "111122223333": {mode: dry-run}
remediations:
  s3-block-public-access:
    mode: enforce
    max_changes_per_hour: 5
    max_attempts: 5
    overrides:
      - match: {types: ["S3.8"], accounts: ["123456789012"]}
        set: {mode: approve}
"#;
    let p = Policy::from_yaml(doc).unwrap();
    assert_eq!(p.exemptions.tag, "team:keep-public");
    assert_eq!(p.max_changes_per_hour("s3-block-public-access"), 5);
    assert_eq!(p.max_attempts("s3-block-public-access"), 5);
    assert_eq!(
        p.max_attempts("s3-enforce-encryption"),
        DEFAULT_MAX_ATTEMPTS
    );
    assert_eq!(
        p.max_changes_per_hour("s3-enforce-encryption"),
        DEFAULT_MAX_CHANGES_PER_HOUR
    );
}

#[test]
fn default_modes_follow_risk_and_finding_kind() {
    let p = Policy::default();
    let threat = finding(
        FindingKind::GuarddutyType("Policy:S3/BucketAnonymousAccessGranted".into()),
        50,
    );
    let hygiene = control("S3.8");
    let cases = [
        (Risk::Low, &threat, Mode::Enforce),
        (Risk::Low, &hygiene, Mode::Enforce),
        (Risk::Medium, &threat, Mode::Enforce),
        (Risk::Medium, &hygiene, Mode::Approve),
        (Risk::High, &threat, Mode::Approve),
        (Risk::High, &hygiene, Mode::Approve),
    ];
    for (risk, f, want) in cases {
        assert_eq!(mode_of(eval(&p, risk, f)), want, "{risk:?} {:?}", f.kind);
    }
}

#[test]
fn layers_apply_from_defaults_to_overrides() {
    let p = Policy::from_yaml(
        r#"
version: 1
defaults: {mode: dry-run}
accounts:
  "123456789012": {mode: approve}
remediations:
  s3-block-public-access:
    overrides:
      - match: {types: ["S3.8"]}
        set: {mode: enforce}
      - match: {types: ["s3-bucket-public-read-prohibited"]}
        set: {enabled: false}
"#,
    )
    .unwrap();
    assert_eq!(
        mode_of(eval(&p, Risk::Low, &control("S3.8"))),
        Mode::Enforce
    );
    assert_eq!(
        mode_of(eval(&p, Risk::Low, &control("S3.2"))),
        Mode::Approve
    );
    let mut other = control("S3.2");
    other.account = "111122223333".into();
    // Another account is untrusted before any layer applies.
    assert_eq!(
        reason_of(p.evaluate("s3-block-public-access", Risk::Low, &other, BUCKET, OWN)),
        Reason::Untrusted
    );
    // Config rule base names match deployed, decorated names.
    let rule = finding(
        FindingKind::ConfigRule("securityhub-s3-bucket-public-read-prohibited-8fa6bd2a".into()),
        40,
    );
    assert_eq!(reason_of(eval(&p, Risk::Low, &rule)), Reason::Disabled);
    match eval(&p, Risk::Low, &control("S3.2")) {
        Verdict::Act(d) => assert_eq!(d.because, "accounts.123456789012"),
        v => panic!("{v:?}"),
    }
}

/// A Config finding as the pipeline evaluates it: resolved through `config:DescribeConfigRules`,
/// so its kind is the managed-rule identifier and `details.config_rule` the deployed name.
fn resolved_config_rule(identifier: &str, deployed: &str) -> Finding {
    let mut f = finding(FindingKind::ConfigRule(identifier.into()), 40);
    f.source = Source::Config;
    f.details.config_rule = Some(deployed.into());
    f
}

#[test]
fn overrides_name_a_config_rule_by_any_name_it_goes_by() {
    const READ: &str = "S3_BUCKET_PUBLIC_READ_PROHIBITED";
    const WRITE: &str = "S3_BUCKET_PUBLIC_WRITE_PROHIBITED";
    const PACK: &str = "s3-bucket-public-read-prohibited-conformance-pack-kuyoa3x8n";
    const HUB: &str = "securityhub-s3-bucket-public-read-prohibited-8fa6bd2a";
    const TEAM: &str = "team-x-no-public-buckets";
    // (override pattern, identifier, deployed name, does the override apply)
    let cases: &[(&str, &str, &str, bool)] = &[
        // the base name, whatever decoration the deployment added
        ("s3-bucket-public-read-prohibited", READ, PACK, true),
        ("s3-bucket-public-read-prohibited", READ, HUB, true),
        (
            "s3-bucket-public-read-prohibited",
            READ,
            "s3-bucket-public-read-prohibited",
            true,
        ),
        ("s3-bucket-public-*", READ, HUB, true),
        // the full deployed name, decorated or chosen by a team
        (PACK, READ, PACK, true),
        (HUB, READ, HUB, true),
        (TEAM, READ, TEAM, true),
        ("team-x-*", READ, TEAM, true),
        // the managed-rule identifier, under any name
        (READ, READ, TEAM, true),
        (READ, READ, PACK, true),
        ("S3_BUCKET_PUBLIC_*", READ, TEAM, true),
        // other rules, other words
        (
            "s3-bucket-public-read-prohibited",
            WRITE,
            "s3-bucket-public-write-prohibited-conformance-pack-x1",
            false,
        ),
        (READ, WRITE, "s3-bucket-public-write-prohibited", false),
        ("s3-bucket-public-read", READ, PACK, false),
        (
            "s3-bucket-public-read-prohibited",
            READ,
            "s3-bucket-public-read-prohibited-custom",
            false,
        ),
        // a base name is read from the deployed name, never made up from the identifier
        ("s3-bucket-public-read-prohibited", READ, TEAM, false),
        ("S3.8", READ, PACK, false),
    ];
    for (pattern, identifier, deployed, applies) in cases {
        let p = Policy::from_yaml(&format!(
            "version: 1\nremediations:\n  s3-block-public-access:\n    mode: enforce\n    overrides:\n      - match: {{types: [\"{pattern}\"]}}\n        set: {{mode: dry-run}}"
        ))
        .unwrap();
        let verdict = eval(&p, Risk::Low, &resolved_config_rule(identifier, deployed));
        let Verdict::Act(d) = verdict else {
            panic!("{pattern} / {deployed}: {verdict:?}");
        };
        let want = if *applies {
            (
                Mode::DryRun,
                "remediations.s3-block-public-access.overrides[0]",
            )
        } else {
            (Mode::Enforce, "remediations.s3-block-public-access")
        };
        assert_eq!(
            (d.mode, d.because.as_str()),
            want,
            "override {pattern:?} on {identifier} deployed as {deployed}"
        );
    }
    // `enabled` and `severity_threshold` overrides reach a resolved rule the same way.
    let off = Policy::from_yaml(
        "version: 1\nremediations:\n  s3-block-public-access:\n    overrides:\n      - match: {types: [s3-bucket-public-read-prohibited]}\n        set: {enabled: false}",
    )
    .unwrap();
    assert_eq!(
        reason_of(eval(&off, Risk::Low, &resolved_config_rule(READ, PACK))),
        Reason::Disabled
    );
}

#[test]
fn skips_fail_closed_in_order() {
    let p = Policy::from_yaml(
        r#"
version: 1
defaults: {severity_threshold: 50}
exemptions:
  rules:
    - match: {arns: ["arn:aws:s3:::data-*"]}
      reason: data sharing
      owner: data-team
      expires: 2999-12-31
  protected_principals: ["arn:aws:iam::*:role/BreakGlass"]
"#,
    )
    .unwrap();
    let mut inactive = control("S3.8");
    inactive.inactive = Some("record state ARCHIVED".into());
    let mut untrusted = control("S3.8");
    untrusted.product_arn =
        "arn:aws:securityhub:us-east-1:999999999999:product/999999999999/default".into();
    let mut foreign = control("S3.8");
    foreign.account = "999999999999".into();
    let low = finding(FindingKind::Control("S3.8".into()), 30);
    let cases = [
        (&inactive, Reason::FindingInactive),
        (&untrusted, Reason::Untrusted),
        (&foreign, Reason::Untrusted),
        (&low, Reason::BelowThreshold),
        (&control("S3.8"), Reason::Exempt),
    ];
    for (f, want) in cases {
        assert_eq!(reason_of(eval(&p, Risk::Low, f)), want, "{f:?}");
    }
    let protected = p.evaluate(
        "iam-disable-access-key",
        Risk::Medium,
        &control("IAM.3"),
        "arn:aws:iam::123456789012:role/BreakGlass",
        OWN,
    );
    assert_eq!(reason_of(protected), Reason::Protected);
}

#[test]
fn custom_actions_approve_but_never_override_dry_run() {
    let p =
        Policy::from_yaml("version: 1\nremediations:\n  s3-block-public-access: {mode: approve}")
            .unwrap();
    let mut f = control("S3.8");
    assert_eq!(mode_of(eval(&p, Risk::Low, &f)), Mode::Approve);
    f.intent = Some(Intent::Approve);
    assert_eq!(mode_of(eval(&p, Risk::Low, &f)), Mode::Enforce);
    // "Reflex: remediate" runs the fix under the policy: approve mode still waits.
    f.intent = Some(Intent::Remediate);
    assert_eq!(mode_of(eval(&p, Risk::Low, &f)), Mode::Approve);
    let dry = Policy::from_yaml("version: 1\ndefaults: {mode: dry-run}").unwrap();
    assert_eq!(mode_of(eval(&dry, Risk::Low, &f)), Mode::DryRun);
}

#[test]
fn policy_source_refuses_ambiguity() {
    // One test touches these variables, so no other test races on them.
    std::env::set_var(load::POLICY_FILE_ENV, "/tmp/p.yaml");
    std::env::set_var(load::POLICY_PARAMETER_ENV, "/reflex/policy");
    assert_eq!(PolicySource::from_env(), Err(PolicyError::Ambiguous));
    std::env::remove_var(load::POLICY_PARAMETER_ENV);
    assert_eq!(
        PolicySource::from_env(),
        Ok(PolicySource::File("/tmp/p.yaml".into()))
    );
    std::env::remove_var(load::POLICY_FILE_ENV);
    assert_eq!(PolicySource::from_env(), Ok(PolicySource::BuiltIn));
}

#[tokio::test]
async fn policies_load_from_a_file_and_fail_closed_on_a_bad_one() {
    let ssm = aws_sdk_ssm::Client::from_conf(
        aws_sdk_ssm::Config::builder()
            .behavior_version(aws_sdk_ssm::config::BehaviorVersion::latest())
            .build(),
    );
    let dir = std::env::temp_dir().join(format!("reflex-policy-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.yaml");
    std::fs::write(&good, "version: 1\ndefaults: {mode: dry-run}\n").unwrap();
    let bad = dir.join("bad.yaml");
    std::fs::write(&bad, "version: 1\ndefaults: {mod: dry-run}\n").unwrap();
    let path = |p: &std::path::Path| PolicySource::File(p.display().to_string());

    let p = load_policy(&path(&good), &ssm).await.unwrap();
    assert_eq!(p.defaults.mode, Some(Mode::DryRun));
    let e = load_policy(&path(&bad), &ssm)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("unknown field `mod`"), "{e}");
    let e = load_policy(&path(&dir.join("absent.yaml")), &ssm)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("cannot read policy file") && e.contains("absent.yaml"),
        "{e}"
    );
    assert_eq!(
        load_policy(&PolicySource::BuiltIn, &ssm).await.unwrap(),
        Policy::default()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn sample_findings_are_skipped_unless_the_policy_opts_in() {
    let mut f = finding(
        FindingKind::GuarddutyType("Policy:S3/BucketAnonymousAccessGranted".into()),
        50,
    );
    f.sample = true;
    let off = Policy::default();
    match off.evaluate("s3-block-public-access", Risk::Low, &f, BUCKET, OWN) {
        Verdict::Skip { reason, detail } => {
            assert_eq!(reason, Reason::SampleFinding);
            assert!(detail.contains("act_on_sample_findings"), "{detail}");
        }
        other => panic!("{other:?}"),
    }
    let on = Policy::from_yaml("version: 1\nact_on_sample_findings: true").unwrap();
    assert!(matches!(
        on.evaluate("s3-block-public-access", Risk::Low, &f, BUCKET, OWN),
        Verdict::Act(_)
    ));
}

/// The kill switch and the first-deploy policy turn every remediation that would act into
/// dry-run, whatever its mode (an approval included: the pipeline refuses approvals under
/// dry-run), and say so in the decision; a skip still decides first.
#[test]
fn the_kill_switch_and_the_first_deploy_force_dry_run() {
    let yaml = |y: &str| Policy::from_yaml(y).unwrap();
    // (policy, risk, intent, mode, a part of the reason)
    let cases: Vec<(Policy, Risk, Option<Intent>, Mode, &str)> = vec![
        (yaml("version: 1"), Risk::Low, None, Mode::Enforce, "the default for low risk"),
        (yaml("version: 1\nkill_switch: false"), Risk::Low, None, Mode::Enforce, "the default"),
        (yaml("version: 1\nkill_switch: true"), Risk::Low, None, Mode::DryRun, "kill switch on"),
        (
            yaml("version: 1\nkill_switch: true\nremediations:\n  s3-block-public-access: {mode: enforce}"),
            Risk::Low,
            None,
            Mode::DryRun,
            "kill switch on",
        ),
        (
            yaml("version: 1\nkill_switch: true\ndefaults: {mode: approve}"),
            Risk::High,
            Some(Intent::Approve),
            Mode::DryRun,
            "kill switch on",
        ),
        (
            yaml("version: 1\ndefaults: {mode: approve}"),
            Risk::High,
            Some(Intent::Approve),
            Mode::Enforce,
            "approved by",
        ),
        (
            Policy::first_deploy("/reflex/policy"),
            Risk::Low,
            None,
            Mode::DryRun,
            "the first-deploy policy (no policy at /reflex/policy yet: every remediation runs in dry-run; `reflex policy push` sets one)",
        ),
        (
            Policy::first_deploy("/staging/policy"),
            Risk::High,
            Some(Intent::Approve),
            Mode::DryRun,
            "no policy at /staging/policy yet",
        ),
        (
            Policy::first_deploy("/p"),
            Risk::Medium,
            Some(Intent::Remediate),
            Mode::DryRun,
            "first-deploy",
        ),
    ];
    for (policy, risk, intent, want, because) in cases {
        let mut f = control("S3.8");
        f.intent = intent;
        match eval(&policy, risk, &f) {
            Verdict::Act(d) => {
                assert_eq!(d.mode, want, "{policy:?}");
                assert!(d.because.contains(because), "{}", d.because);
                assert_eq!(
                    d.approval,
                    want == Mode::Enforce && intent == Some(Intent::Approve)
                );
            }
            other => panic!("{other:?}"),
        }
        // The sweep's mode (no approval in it): forced to dry-run exactly when the decision is.
        assert_eq!(
            policy.mode_for("s3-block-public-access", risk, &f) == Mode::DryRun,
            want == Mode::DryRun
        );
    }
    // A skip decides before the mode: disabled stays disabled under the switch.
    let off = yaml(
        "version: 1\nkill_switch: true\nremediations:\n  s3-block-public-access: {enabled: false}",
    );
    assert_eq!(
        reason_of(eval(&off, Risk::Low, &control("S3.8"))),
        Reason::Disabled
    );
    // The first-deploy policy is valid, and no document can claim to be it.
    assert_eq!(Policy::first_deploy("/p").validate(), Ok(()));
    assert!(Policy::from_yaml("version: 1\nfirst_deploy: x").is_err());
}

#[test]
fn the_kill_switch_is_a_boolean() {
    let cases: &[(&str, Option<bool>)] = &[
        ("version: 1", Some(false)),
        ("version: 1\nkill_switch: true", Some(true)),
        ("version: 1\nkill_switch: false", Some(false)),
        ("version: 1\nkill_switch: 1", None),
        ("version: 1\nkill_switch: on please", None),
        ("version: 1\nkill_switch: [true]", None),
    ];
    for (yaml, want) in cases {
        match (Policy::from_yaml(yaml), want) {
            (Ok(p), Some(w)) => assert_eq!(p.kill_switch, *w, "{yaml}"),
            (Err(e), None) => assert!(e.to_string().contains("kill_switch"), "{yaml}: {e}"),
            (got, _) => panic!("{yaml}: {got:?}"),
        }
    }
}

/// The key each of the policy's problems names, in order.
fn problem_keys(p: &Policy) -> Vec<String> {
    p.problems()
        .into_iter()
        .map(|e| match e {
            PolicyError::Invalid { key, .. } => key,
            other => panic!("{other:?}"),
        })
        .collect()
}

/// `problems` lists every failed check, in document order; `validate` the first.
#[test]
fn every_problem_is_listed() {
    let p: Policy = serde_norway::from_str(
        "version: 2\ndefaults: {severity_threshold: 200}\noperators: [alice]\nremediations:\n  nope: {}\n  s3-block-public-access: {max_attempts: 0}\n",
    )
    .unwrap();
    let keys = problem_keys(&p);
    assert_eq!(
        keys,
        [
            "version",
            "defaults.severity_threshold",
            "operators[0]",
            "remediations.nope",
            "remediations.s3-block-public-access.max_attempts"
        ]
    );
    assert!(matches!(p.validate(), Err(PolicyError::Invalid { key, .. }) if key == "version"));
}
