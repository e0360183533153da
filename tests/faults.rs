//! Faults on every AWS call: 20 findings at 20 % faults (503s, resets, answers lost after the
//! emulator acted, requests held and dropped) on STS, S3 and DynamoDB alike, injected by the
//! fault proxy (support/fault_proxy.rs) between Reflex and the emulator. Each finding is
//! delivered as Lambda delivers asynchronous events: again only after an error, at most 3
//! times, each delivery a cold start. Expected: every bucket fixed, each changed exactly once,
//! every record `succeeded`, none left `claimed` or `acting`, the budget counted once a change.

use futures::future::join_all;
use reflex_shared::pipeline::{self, Handled};
use reflex_shared::policy::PolicySource;
use reflex_shared::setup::Settings;
use reflex_shared::status::Status;
use reflex_shared::Setup;
use reflex_tests::fault_proxy::{FaultProxy, Faults, ALL_FAULTS};
use reflex_tests::*;
use s3_block_public_access::{BlockConfig, S3BlockPublicAccess};
use std::time::Duration;

const S3_8: &str = "s3-block-public-access/securityhub-s3.8-imported.json";
const FINDINGS: usize = 20;
const MAX_DELIVERIES: usize = 3;
/// The claim lease in this test; Lambda's retry delays (about 1 and 2 minutes against a 120 s
/// lease in production) are scaled to it.
const LEASE_SECONDS: i64 = 5;

/// What happened to one finding.
#[derive(Debug)]
struct Delivered {
    bucket: String,
    deliveries: usize,
    errors: Vec<String>,
    outcome: Option<Handled>,
}

/// Lambda's asynchronous delivery of one event: a cold start and an invocation; again only
/// after an error (a failed cold start included), at most `MAX_DELIVERIES` times.
async fn lambda(
    sdk: &aws_config::SdkConfig,
    settings: &Settings,
    h: &Harness,
    bucket: String,
) -> Delivered {
    let event = sample_for(S3_8, &bucket);
    let mut errors = Vec::new();
    for delivery in 1..=MAX_DELIVERIES {
        let attempt = async {
            let mut setup =
                Setup::cold_start(sdk.clone(), settings.clone(), Ok(PolicySource::BuiltIn))
                    .await
                    .map_err(|e| format!("cold start: {e}"))?;
            // moto lacks BatchUpdateFindings: the Security Hub feedback goes to the mock.
            setup.securityhub = h.setup.securityhub.clone();
            let remediation = S3BlockPublicAccess::new(sdk);
            let mut context = lambda_runtime::Context::default();
            context.request_id = format!("{bucket}-{delivery}");
            pipeline::handle(
                &setup,
                &remediation,
                lambda_runtime::LambdaEvent::new(event.clone(), context),
            )
            .await
            .map_err(|e| e.to_string())
        };
        match attempt.await {
            Ok(mut outcomes) => {
                return Delivered {
                    bucket,
                    deliveries: delivery,
                    errors,
                    outcome: Some(outcomes.remove(0)),
                }
            }
            Err(e) => {
                errors.push(e);
                // Lambda's retry schedule, scaled: half a lease, then a whole one.
                let pause = LEASE_SECONDS as u64 * 500 * delivery as u64;
                tokio::time::sleep(Duration::from_millis(pause)).await;
            }
        }
    }
    Delivered {
        bucket,
        deliveries: MAX_DELIVERIES,
        errors,
        outcome: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_findings_at_twenty_percent_faults_are_all_fixed_exactly_once() {
    let h = Harness::new().await;
    let proxy = FaultProxy::start(
        &endpoint(),
        Faults {
            rate: 0.2,
            kinds: ALL_FAULTS.to_vec(),
            seed: 20_261_127,
            ..Default::default()
        },
    )
    .await;
    let sdk = sdk_config_via(&proxy.endpoint).await;
    let settings = Settings {
        table: h.setup.ledger.table().to_string(),
        lease_seconds: LEASE_SECONDS,
        ..Default::default()
    };
    let mut buckets = Vec::new();
    for _ in 0..FINDINGS {
        buckets.push(h.bucket(Some(ALL_OFF), &[]).await);
    }

    let results: Vec<Delivered> = join_all(
        buckets
            .iter()
            .map(|b| lambda(&sdk, &settings, &h, b.clone())),
    )
    .await;

    // Every bucket fixed, by exactly one logical change (SDK retries of one call share an
    // invocation id: a lost answer's retry is the same call, not a second change).
    let changes = proxy.logical_calls_per_bucket("PutPublicAccessBlock");
    let mut fixed = 0;
    let mut changed_twice = 0;
    let mut stuck_or_lost = 0;
    let mut succeeded = 0;
    for d in &results {
        if h.pab(&d.bucket).await == Some(BlockConfig::ALL_ON) {
            fixed += 1;
        }
        if changes.get(&d.bucket).copied().unwrap_or(0) > 1 {
            changed_twice += 1;
        }
        let id = reflex_shared::ledger::record_id(
            "s3-block-public-access",
            &finding_of(&sample_for(S3_8, &d.bucket)),
        );
        match h.setup.ledger.get(&id).await.unwrap() {
            Some(r) if r.status == Status::Succeeded => succeeded += 1,
            Some(r) if r.status.in_progress() => stuck_or_lost += 1,
            None => stuck_or_lost += 1,
            Some(_) => {}
        }
    }
    let deliveries: usize = results.iter().map(|d| d.deliveries).sum();
    let redelivered = results.iter().filter(|d| d.deliveries > 1).count();
    let faults = proxy.faults();
    let requests = proxy.seen().len();
    let total_changes: usize = changes.values().sum();
    // The figures, for the record (scripts/test prints test output only on failure; run
    // `cargo test -p reflex-tests --test faults -- --nocapture` to see them).
    println!(
        "fault run: {FINDINGS} findings, {requests} AWS requests, faults injected {faults:?}, \
         {deliveries} deliveries ({redelivered} findings redelivered), {total_changes} changes, \
         {changed_twice} changed twice, {stuck_or_lost} stuck or lost, {succeeded} succeeded"
    );
    for d in results.iter().filter(|d| !d.errors.is_empty()) {
        println!("  {}: {:?}", d.bucket, d.errors);
    }

    assert!(
        ALL_FAULTS
            .iter()
            .all(|k| faults.get(k).copied().unwrap_or(0) > 0),
        "every kind of fault was injected: {faults:?}"
    );
    assert!(
        results.iter().all(|d| d.outcome.is_some()),
        "every finding was handled within {MAX_DELIVERIES} deliveries: {results:#?}"
    );
    assert_eq!(fixed, FINDINGS, "{results:#?}");
    assert_eq!(succeeded, FINDINGS);
    assert_eq!(changed_twice, 0, "{changes:?}");
    assert_eq!(total_changes, FINDINGS, "{changes:?}");
    assert_eq!(stuck_or_lost, 0);
    assert_eq!(
        h.budget_count("s3-block-public-access").await,
        FINDINGS as u32,
        "the budget counted each change once"
    );
}

/// A lost answer on each ledger write: the emulator applied it, the connection was reset, the
/// SDK sent it again and met the write it had made. Each is recognised as the invocation's own
/// (claim token, attempt), so the first delivery succeeds, with one change and one budget unit.
#[tokio::test]
async fn a_lost_answer_on_each_ledger_write_is_recognised_as_our_own() {
    use reflex_tests::fault_proxy::{Fault, Rule};
    let writes = [
        ("the claim", "PutItem", None),
        (
            "the checkpoint",
            "UpdateItem",
            Some("if_not_exists(pre_state"),
        ),
        ("the budget reservation", "UpdateItem", Some("ADD n :one")),
        (
            "the completion",
            "UpdateItem",
            Some("REMOVE lease_expires_at"),
        ),
    ];
    for (name, operation, containing) in writes {
        let h = Harness::new().await;
        let proxy = FaultProxy::start(&endpoint(), Faults::default()).await;
        proxy.add_rule(Rule {
            operation,
            containing,
            fault: Fault::LostResponse,
            times: 1,
        });
        let sdk = sdk_config_via(&proxy.endpoint).await;
        let settings = Settings {
            table: h.setup.ledger.table().to_string(),
            ..Default::default()
        };
        let bucket = h.bucket(Some(ALL_OFF), &[]).await;
        let d = lambda(&sdk, &settings, &h, bucket.clone()).await;
        assert_eq!(d.deliveries, 1, "{name}: {d:?}");
        let o = d.outcome.expect(name);
        assert_eq!(o.status, Status::Succeeded, "{name}: {o:?}");
        assert_eq!(
            proxy.faults().get(&Fault::LostResponse),
            Some(&1),
            "{name}: the answer was lost once"
        );
        let changes = proxy.logical_calls_per_bucket("PutPublicAccessBlock");
        assert_eq!(changes.get(&bucket), Some(&1), "{name}");
        assert_eq!(h.budget_count("s3-block-public-access").await, 1, "{name}");
        let r = h.record(&o.record_id).await;
        assert_eq!((r.attempts, r.errors.len()), (1, 0), "{name}: {r:?}");
    }
}

/// The policy's source is unavailable: the first read fails the set-up (Lambda retries; it
/// is not recorded as `policy-invalid`); on a warm function's re-read the last good policy
/// stands in for the grace period, then invocations fail closed until a read succeeds.
#[tokio::test]
async fn an_unreadable_policy_fails_the_cold_start_and_a_stale_one_fails_closed() {
    use aws_sdk_ssm::types::ParameterType;
    use reflex_shared::pipeline::PipelineError;
    use reflex_shared::policy::PolicyError;
    use reflex_tests::fault_proxy::{Fault, Rule};
    let h = Harness::new().await;
    let proxy = FaultProxy::start(&endpoint(), Faults::default()).await;
    let sdk = sdk_config_via(&proxy.endpoint).await;
    let parameter = format!("/reflex-it/{}", unique("policy"));
    aws_sdk_ssm::Client::new(&h.sdk)
        .put_parameter()
        .name(&parameter)
        .r#type(ParameterType::String)
        .value("version: 1")
        .send()
        .await
        .unwrap();
    let settings = Settings {
        table: h.setup.ledger.table().to_string(),
        policy_max_age: Duration::from_secs(1),
        ..Default::default()
    };
    let source = || Ok(PolicySource::Parameter(parameter.clone()));
    let ssm_down = || Rule {
        operation: "GetParameter",
        containing: None,
        fault: Fault::Unavailable,
        times: usize::MAX,
    };

    proxy.add_rule(ssm_down());
    match Setup::cold_start(sdk.clone(), settings.clone(), source()).await {
        Err(reflex_shared::setup::SetupError::Policy(PolicyError::Unavailable {
            name, ..
        })) => {
            assert_eq!(name, parameter)
        }
        other => panic!("the cold start must fail: {other:?}"),
    }
    proxy.clear_rules();

    let mut setup = Setup::cold_start(sdk.clone(), settings, source())
        .await
        .unwrap();
    setup.securityhub = h.setup.securityhub.clone();
    setup.policy = std::sync::Arc::new(
        std::sync::Arc::try_unwrap(setup.policy)
            .unwrap()
            .with_grace(Duration::from_secs(2)),
    );
    let remediation = S3BlockPublicAccess::new(&sdk);
    let deliver = |bucket: String| {
        let (setup, remediation) = (&setup, &remediation);
        async move {
            pipeline::handle(
                setup,
                remediation,
                lambda_runtime::LambdaEvent::new(
                    sample_for(S3_8, &bucket),
                    lambda_runtime::Context::default(),
                ),
            )
            .await
        }
    };
    proxy.add_rule(ssm_down());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // Older than its bound, not re-readable, within the grace period: the last good one acts.
    let bucket = h.bucket(Some(ALL_OFF), &[]).await;
    let o = deliver(bucket)
        .await
        .expect("the last good policy stands in");
    assert_eq!(o[0].status, Status::Succeeded);
    // Past the grace period: fail closed, nothing changed.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let bucket = h.bucket(Some(ALL_OFF), &[]).await;
    match deliver(bucket.clone()).await {
        Err(PipelineError::PolicyUnavailable(_)) => {}
        other => panic!("fail closed: {other:?}"),
    }
    assert_eq!(h.pab(&bucket).await, Some(ALL_OFF));
    // SSM back: the next invocation reads it and acts.
    proxy.clear_rules();
    let o = deliver(bucket.clone())
        .await
        .expect("policy readable again");
    assert_eq!(o[0].status, Status::Succeeded);
}
