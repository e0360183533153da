//! The policy the functions read, changed through `reflex policy` (the CLI's own code, at
//! library level): the kill switch reaching a warm function, and a first deploy (no policy
//! parameter yet) recording every remediation in dry-run. Against the local AWS emulator.

use reflex_shared::pipeline::{self, Handled};
use reflex_shared::policy::{Mode, Policy, PolicySource};
use reflex_shared::setup::Settings;
use reflex_shared::status::{Reason, Status};
use reflex_shared::Setup;
use reflex_tests::common::Subject;
use reflex_tests::{unique, Harness};
use s3_block_public_access::S3BlockPublicAccess as S;
use std::time::Duration;

/// A function's cold start reading `parameter`, re-read after 1 s (REFLEX_POLICY_MAX_AGE_SECONDS),
/// with the harness's table, Security Hub and finding sources.
async fn cold_start(h: &Harness, parameter: &str) -> Setup {
    let settings = Settings {
        table: h.setup.ledger.table().to_string(),
        policy_max_age: Duration::from_secs(1),
        ..Default::default()
    };
    let mut setup = Setup::cold_start(
        h.sdk.clone(),
        settings,
        Ok(PolicySource::Parameter(parameter.to_string())),
    )
    .await
    .unwrap();
    setup.securityhub = h.setup.securityhub.clone();
    setup.source = h.setup.source.clone();
    setup
}

/// A finding for a new public bucket, delivered to the function `setup` serves.
async fn deliver_new_finding(h: &Harness, setup: &Setup, s: &S) -> (String, Handled) {
    let bucket = S::noncompliant(h, &[]).await;
    let o = deliver(h, setup, s, &bucket).await;
    (bucket, o)
}

/// The finding for `bucket`, delivered (again) to the function `setup` serves.
async fn deliver(h: &Harness, setup: &Setup, s: &S, bucket: &str) -> Handled {
    let event = S::event(bucket);
    h.at_source.mirror(&event);
    let event = lambda_runtime::LambdaEvent::new(event, lambda_runtime::Context::default());
    Box::pin(pipeline::handle(setup, s, event))
        .await
        .unwrap()
        .remove(0)
}

/// `reflex policy kill-switch on` reaches a function that is already warm: its next delivery
/// after REFLEX_POLICY_MAX_AGE_SECONDS is recorded dry-run, saying why, and changes nothing;
/// `off` and the next delivery enforces again. History keeps each version.
#[tokio::test]
async fn the_kill_switch_reaches_a_warm_function() {
    let h = Harness::new().await;
    let s = <S as Subject>::new(&h);
    let ssm = aws_sdk_ssm::Client::new(&h.sdk);
    let parameter = format!("/reflex-it/{}/policy", unique("kill"));
    let policy = "# the team's policy\nversion: 1\nremediations:\n  s3-block-public-access: {mode: enforce}\n";
    let v1 = reflex_cli::policy_cmd::store::put(&ssm, &parameter, policy, None)
        .await
        .unwrap();
    let setup = cold_start(&h, &parameter).await;

    // Warm, enforcing.
    let (bucket, o) = deliver_new_finding(&h, &setup, &s).await;
    assert_eq!(o.status, Status::Succeeded, "{o:?}");
    assert!(S::fixed(&h, &bucket).await);

    reflex_cli::policy_cmd::kill_switch(&ssm, &parameter, true)
        .await
        .unwrap();
    let on = reflex_cli::policy_cmd::store::current(&ssm, &parameter)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(on.version, v1 + 1);
    assert!(
        on.value.starts_with("# the team's policy\n") && on.value.contains("kill_switch: true"),
        "the policy kept as written, the switch added: {}",
        on.value
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (stopped, o) = deliver_new_finding(&h, &setup, &s).await;
    assert_eq!(
        (o.status, o.reason, o.mode),
        (Status::DryRun, Reason::KillSwitch, Some(Mode::DryRun)),
        "{o:?}"
    );
    assert!(o.detail.contains("kill switch on"), "{}", o.detail);
    assert!(!S::fixed(&h, &stopped).await, "dry-run changes nothing");
    let stopped_record = o.record_id;

    // An ordinary push (the team's policy, without the switch) does not end the emergency.
    let file = std::env::temp_dir().join(format!("{}.yaml", unique("push")));
    std::fs::write(&file, policy).unwrap();
    let refused = reflex_cli::policy_cmd::push(&ssm, &parameter, &file, false)
        .await
        .unwrap_err();
    assert!(
        format!("{refused:#}").contains("--lift-kill-switch"),
        "{refused:#}"
    );
    let still = reflex_cli::policy_cmd::store::current(&ssm, &parameter)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(still.version, v1 + 1, "nothing was written");
    assert!(Policy::from_yaml(&still.value).unwrap().kill_switch);

    reflex_cli::policy_cmd::kill_switch(&ssm, &parameter, false)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (bucket, o) = deliver_new_finding(&h, &setup, &s).await;
    assert_eq!(o.status, Status::Succeeded, "{o:?}");
    assert!(S::fixed(&h, &bucket).await);
    // The kill switch's dry-run was no verdict: the stopped finding's next delivery acts, on
    // the same record, the dry-run kept in its history.
    let o = deliver(&h, &setup, &s, &stopped).await;
    assert_eq!(
        (o.status, o.record_id.as_str()),
        (Status::Succeeded, stopped_record.as_str()),
        "{o:?}"
    );
    assert!(S::fixed(&h, &stopped).await);
    let record = h.record(&stopped_record).await;
    assert!(
        record
            .history
            .iter()
            .any(|p| (p.status, p.reason) == (Status::DryRun, Reason::KillSwitch)),
        "{:?}",
        record.history
    );
    let off = reflex_cli::policy_cmd::store::current(&ssm, &parameter)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(off.version, v1 + 2);
    assert!(off.value.contains("kill_switch: false"), "{}", off.value);
}

/// A first deploy: the stack made no policy parameter, so the functions apply the first-deploy
/// policy. A finding every default would enforce (low risk) is recorded dry-run with its plan,
/// the record says why in plain words, and nothing changes; once a policy is pushed, the warm
/// function enforces.
#[tokio::test]
async fn with_no_policy_parameter_every_remediation_runs_in_dry_run() {
    let h = Harness::new().await;
    let s = <S as Subject>::new(&h);
    let ssm = aws_sdk_ssm::Client::new(&h.sdk);
    let parameter = format!("/reflex-it/{}/policy", unique("first"));
    let setup = cold_start(&h, &parameter).await;

    let (bucket, o) = deliver_new_finding(&h, &setup, &s).await;
    assert_eq!(
        (o.status, o.reason, o.mode),
        (Status::DryRun, Reason::FirstDeploy, Some(Mode::DryRun)),
        "{o:?}"
    );
    let first = o.record_id.clone();
    assert!(
        o.detail.contains(&format!(
            "no policy at {parameter} yet: every remediation runs in dry-run; `reflex policy push` sets one"
        )),
        "{}",
        o.detail
    );
    assert!(
        !S::fixed(&h, &bucket).await,
        "a first deploy changes nothing"
    );
    let record = h.record(&o.record_id).await;
    assert!(
        !record.actions.is_empty() && record.actions.iter().all(|a| a.is_planned()),
        "the plan is recorded: {:?}",
        record.actions
    );

    // The operator pushes a policy; the warm function reads it within the bound.
    reflex_cli::policy_cmd::store::put(&ssm, &parameter, "version: 1\n", None)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (fixed, o) = deliver_new_finding(&h, &setup, &s).await;
    assert_eq!(o.status, Status::Succeeded, "{o:?}");
    assert!(S::fixed(&h, &fixed).await);
    // The finding first met in dry-run is not left behind: its next delivery acts.
    let o = deliver(&h, &setup, &s, &bucket).await;
    assert_eq!((o.status, o.record_id), (Status::Succeeded, first));
    assert!(S::fixed(&h, &bucket).await);
}
