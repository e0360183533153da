//! Crashes at every boundary of a fix, for real: the function's own binary (as deployed) runs
//! as a child process, served one event by the fake Lambda Runtime API, talking to the emulator
//! through the fault proxy. The proxy's tripwire stops the exact call that marks a boundary and
//! the test kills the process there with SIGKILL:
//!
//! | boundary            | the call                                         | when          |
//! |---------------------|--------------------------------------------------|---------------|
//! | after the claim     | the claim's `PutItem`                            | after answer  |
//! | after the checkpoint| the `UpdateItem` storing pre-state and plan      | after answer  |
//! | right after change  | `PutPublicAccessBlock`                           | after answer  |
//! | after verify        | the second `GetPublicAccessBlock` (the re-read)  | after answer  |
//! | before complete     | the completing `UpdateItem`                      | before it     |
//!
//! Then the event is delivered again as Lambda would (a new process each time, again only after
//! an error, at most 3 deliveries, Lambda's 1- and 2-minute retry delays scaled to a 5 s
//! lease). Expected: one change, one record, `succeeded`, the original pre-state, nothing left
//! in progress, and Security Hub told only after the outcome was stored.

use reflex_shared::status::Status;
use reflex_tests::fault_proxy::{FaultProxy, Faults, Seen, Tripwire, When};
use reflex_tests::lambda_api::FakeRuntimeApi;
use reflex_tests::*;
use s3_block_public_access::BlockConfig;
use serde_json::{json, Value};
use std::process::Stdio;
use std::time::Duration;

const S3_8: &str = "s3-block-public-access/securityhub-s3.8-imported.json";
const LEASE_SECONDS: u64 = 5;

/// What one delivery to a fresh function process came to.
#[derive(Debug)]
enum Delivery {
    /// The process was killed at the tripwire.
    Killed(#[allow(dead_code)] Seen),
    /// The function answered (`response`) or reported an error (`error`, `init-error`).
    Posted { kind: String, body: Value },
}

/// Start the function binary for one event, wait for its answer or the tripwire, and kill it.
async fn deliver(h: &Harness, proxy: &mut FaultProxy, event: Value) -> Delivery {
    let mut api = FakeRuntimeApi::start(vec![event]).await;
    let mut child = tokio::process::Command::new(binary("s3-block-public-access"))
        .env("AWS_LAMBDA_RUNTIME_API", &api.address)
        .env("AWS_LAMBDA_FUNCTION_NAME", "reflex-s3-block-public-access")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "crash-test")
        .env("AWS_ENDPOINT_URL", &proxy.endpoint)
        .env("REFLEX_TABLE", h.setup.ledger.table())
        .env("REFLEX_LEASE_SECONDS", LEASE_SECONDS.to_string())
        .env_remove("REFLEX_POLICY_FILE")
        .env_remove("REFLEX_POLICY_PARAMETER")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start the function binary");
    let result = tokio::select! {
        seen = proxy.tripped.recv() => Delivery::Killed(seen.expect("tripwire")),
        posted = api.posted.recv() => {
            let p = posted.expect("the function answers");
            Delivery::Posted { kind: p.kind, body: p.body }
        }
        _ = tokio::time::sleep(Duration::from_secs(60)) => panic!("the function neither answered nor tripped"),
    };
    // SIGKILL: nothing more of this process runs, as when Lambda's host dies.
    child.kill().await.ok();
    result
}

/// Kill at the tripwire, deliver again as Lambda would, and check the end state. Returns a
/// line of figures for the record.
async fn crash_and_recover(name: &'static str, wire: Tripwire) -> String {
    let h = Harness::new().await;
    let bucket = h.bucket(Some(ALL_OFF), &[]).await;
    let event = sample_for(S3_8, &bucket);
    let mut proxy = FaultProxy::start(
        &endpoint(),
        Faults {
            tripwire: Some(wire.clone()),
            ..Default::default()
        },
    )
    .await;

    let mut deliveries = Vec::new();
    for n in 1..=3u64 {
        let d = deliver(&h, &mut proxy, event.clone()).await;
        let done = matches!(&d, Delivery::Posted { kind, .. } if kind == "response");
        deliveries.push(d);
        if done {
            break;
        }
        // Lambda retries after about 1, then 2 minutes against a 120 s lease; scaled.
        tokio::time::sleep(Duration::from_millis(LEASE_SECONDS * 500 * n)).await;
    }
    let what = format!("{wire:?}: {deliveries:#?}");
    assert!(
        matches!(deliveries[0], Delivery::Killed(_)),
        "the first delivery dies at the boundary: {what}"
    );
    let Some(Delivery::Posted { kind, body }) = deliveries.last() else {
        panic!("a later delivery finishes the finding: {what}");
    };
    assert_eq!(kind, "response", "{what}");
    let outcome = &body[0];
    assert_eq!(outcome["status"], "succeeded", "{what}");

    // One change, one record, the original pre-state.
    assert_eq!(h.pab(&bucket).await, Some(BlockConfig::ALL_ON));
    let changes = proxy.logical_calls_per_bucket("PutPublicAccessBlock");
    assert_eq!(changes.get(&bucket), Some(&1), "{what}\n{changes:?}");
    let records = h.records_of(&bucket).await;
    assert_eq!(records.len(), 1, "{what}");
    let r = &records[0];
    assert_eq!(r.status, Status::Succeeded);
    assert_eq!(r.pre_state, Some(json!({ "public_access_block": ALL_OFF })));
    assert_eq!(
        r.post_state,
        Some(json!({ "public_access_block": BlockConfig::ALL_ON }))
    );
    assert_eq!(r.verified, Some(true));
    assert_eq!(r.lease_expires_at, None);
    assert!(r.attempts >= 2, "{r:?}");
    assert_eq!(
        r.history[0].attempt, 1,
        "the crashed attempt is kept: {r:?}"
    );
    assert_eq!(r.actions.len(), 1, "{:?}", r.actions);
    assert_eq!(r.actions[0].result, "ok");

    // Security Hub hears of it only after the outcome is stored: no feedback call before the
    // completing write.
    let seen = proxy.seen();
    let first_feedback = seen
        .iter()
        .position(|s| s.operation.contains("findings/batchupdate"));
    let completed = seen.iter().position(|s| {
        s.operation == "UpdateItem"
            && s.body.contains("REMOVE lease_expires_at")
            && matches!(s.fate, reflex_tests::fault_proxy::Fate::Forwarded)
    });
    let first_feedback = first_feedback.expect("Security Hub is told of the outcome");
    assert!(
        completed.is_some_and(|c| c < first_feedback),
        "Security Hub was told before the record was stored: {seen:#?}"
    );
    // Which attempt made the change: credited to the crashed one when its change took effect.
    let change_took_effect =
        wire.operation != "PutItem" && !wire.containing.is_some_and(|c| c.contains("pre_state"));
    if change_took_effect {
        assert_eq!(
            r.actions[0].attempt,
            Some(1),
            "credited to attempt 1: {r:?}"
        );
    }
    let kinds: Vec<String> = deliveries
        .iter()
        .map(|d| match d {
            Delivery::Killed(_) => "killed".to_string(),
            Delivery::Posted { kind, body } => match body["errorType"].as_str() {
                Some(t) => format!("{kind} {t}"),
                None => kind.clone(),
            },
        })
        .collect();
    format!(
        "{name}: deliveries [{}], changes 1, status {}, attempts {}, change made by attempt {}",
        kinds.join(", "),
        r.status,
        r.attempts,
        r.actions[0].attempt.unwrap_or(r.attempts)
    )
}

fn wire(
    operation: &'static str,
    containing: Option<&'static str>,
    nth: usize,
    when: When,
) -> Tripwire {
    Tripwire {
        operation,
        containing,
        nth,
        when,
    }
}

/// The five boundaries run concurrently (each has its own table, bucket, proxy and processes);
/// a failure names its boundary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_every_boundary_then_redelivered_changes_once() {
    let scenarios = [
        ("after the claim", wire("PutItem", None, 1, When::After)),
        (
            "after the checkpoint",
            wire(
                "UpdateItem",
                Some("if_not_exists(pre_state"),
                1,
                When::After,
            ),
        ),
        (
            "right after the change",
            wire("PutPublicAccessBlock", None, 1, When::After),
        ),
        (
            "after verify",
            wire("GetPublicAccessBlock", None, 2, When::After),
        ),
        (
            "before complete",
            wire(
                "UpdateItem",
                Some("REMOVE lease_expires_at"),
                1,
                When::Before,
            ),
        ),
    ];
    let tasks: Vec<_> = scenarios
        .into_iter()
        .map(|(name, w)| (name, tokio::spawn(crash_and_recover(name, w))))
        .collect();
    let mut failures = Vec::new();
    for (name, task) in tasks {
        match task.await {
            Ok(figures) => println!("crash {figures}"),
            Err(e) => failures.push(format!("killed {name}: {e}")),
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
