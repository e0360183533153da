//! cloudtrail-restore-logging end to end against the emulator. (The common cases run on
//! GuardDuty's CloudTrailLoggingDisabled: tests/support/cloudtrail_restore_logging.rs.)

use cloudtrail_restore_logging::{CloudTrailRestoreLogging, TrailTarget};
use reflex_shared::ledger::Action;
use reflex_shared::pipeline::{self, Handled};
use reflex_shared::status::{Reason, Status};
use reflex_tests::cloudtrail_restore_logging::{
    cloudtrail_in, event_for, function, trail, trail_arn, trail_state, GUARDDUTY,
};
use reflex_tests::{common_cases, sample, Harness, HarnessOptions};
use serde_json::{json, Value};

common_cases!(CloudTrailRestoreLogging);

const SH_GUARDDUTY: &str =
    "cloudtrail-restore-logging/securityhub-guardduty-cloudtrail-logging-disabled.json";
const CLOUDTRAIL_4: &str = "cloudtrail-restore-logging/securityhub-cloudtrail.4-imported.json";
const CUSTOM_ACTION: &str =
    "cloudtrail-restore-logging/securityhub-custom-action-remediate-cloudtrail.4.json";
const CONFIG_ENABLED: &str =
    "cloudtrail-restore-logging/config-securityhub-cloudtrail-enabled.json";
const CONFIG_MULTI_REGION: &str =
    "cloudtrail-restore-logging/config-conformance-pack-multi-region-cloudtrail-enabled.json";

async fn world() -> (Harness, CloudTrailRestoreLogging) {
    let h = Harness::with(HarnessOptions {
        policy: reflex_shared::policy::Policy::from_yaml("version: 1"),
        ..Default::default()
    })
    .await;
    let f = function(&h);
    (h, f)
}

async fn deliver(h: &Harness, f: &CloudTrailRestoreLogging, event: Value) -> Handled {
    h.deliver_to(f, event).await.expect("handled").remove(0)
}

fn apis(actions: &[Action]) -> Vec<&str> {
    actions.iter().map(|a| a.api.as_str()).collect()
}

/// The function with its CloudTrail client in `region` (the function's own region).
fn function_in(h: &Harness, region: &str) -> CloudTrailRestoreLogging {
    CloudTrailRestoreLogging::from_config(
        aws_sdk_cloudtrail::config::Builder::from(&h.sdk)
            .region(aws_sdk_cloudtrail::config::Region::new(region.to_string()))
            .interceptor(h.calls.clone())
            .build(),
    )
}

/// By name, in its home region: moto's DeleteTrail ignores an ARN (and answers success).
async fn delete_trail(h: &Harness, region: &str, name: &str) {
    cloudtrail_in(h, region)
        .delete_trail()
        .name(name)
        .send()
        .await
        .expect("delete the trail");
}

#[tokio::test]
async fn a_stopped_trail_logs_again_with_validation_on() {
    let (h, f) = world().await;
    let name = trail(&h, "us-east-1", false, false, false, &[]).await;
    let o = deliver(&h, &f, event_for(GUARDDUTY, "us-east-1", &name)).await;
    assert_eq!(
        (o.status, o.reason),
        (Status::Succeeded, Reason::Remediated),
        "{o:?}"
    );
    assert_eq!(trail_state(&h, "us-east-1", &name).await, (true, true));
    let r = h.record(&o.record_id).await;
    assert_eq!(
        apis(&r.actions),
        ["cloudtrail:StartLogging", "cloudtrail:UpdateTrail"]
    );
    assert_eq!(
        r.pre_state,
        Some(json!({"logging": false, "log_file_validation": false}))
    );
    assert_eq!(
        r.resource_arn.as_deref(),
        Some(trail_arn("us-east-1", &name).as_str())
    );
}

/// Through Security Hub, GuardDuty's finding does the same; CloudTrail.4 (and the custom
/// action on it) turns validation on and leaves a stopped trail stopped.
#[tokio::test]
async fn every_named_trigger() {
    let (h, f) = world().await;
    for (path, logging_after) in [
        (SH_GUARDDUTY, true),
        (CLOUDTRAIL_4, false),
        (CUSTOM_ACTION, false),
    ] {
        let name = trail(&h, "us-east-1", false, false, false, &[]).await;
        let o = deliver(&h, &f, event_for(path, "us-east-1", &name)).await;
        assert_eq!(o.status, Status::Succeeded, "{path}: {o:?}");
        assert_eq!(
            trail_state(&h, "us-east-1", &name).await,
            (logging_after, true),
            "{path}"
        );
    }
}

/// Rollback turns off only what Reflex turned on: a logging trail whose validation was off
/// gets validation back off, and keeps logging.
#[tokio::test]
async fn rollback_undoes_only_what_reflex_turned_on() {
    let (h, f) = world().await;
    let name = trail(&h, "us-east-1", false, true, false, &[]).await;
    let o = deliver(&h, &f, event_for(GUARDDUTY, "us-east-1", &name)).await;
    assert_eq!(o.status, Status::Succeeded, "{o:?}");
    assert_eq!(h.calls.writes(), ["UpdateTrail"]);
    let until = chrono::Utc::now() + chrono::Duration::hours(1);
    let rolled = pipeline::rollback(
        &h.setup,
        &f,
        &o.record_id,
        "arn:aws:iam::123456789012:user/op",
        false,
        until,
    )
    .await
    .unwrap();
    assert_eq!(rolled.status, Status::RolledBack, "{rolled:?}");
    assert_eq!(trail_state(&h, "us-east-1", &name).await, (true, false));
    assert_eq!(h.calls.writes(), ["UpdateTrail", "UpdateTrail"]);
    let r = h.record(&o.record_id).await;
    let undo = &r.rollback.expect("rollback recorded").actions;
    assert_eq!(undo.len(), 1, "{undo:?}");
    assert_eq!(
        undo[0].parameters["EnableLogFileValidation"],
        json!(false),
        "{undo:?}"
    );
}

/// A trail deleted since the finding: `skipped / no-target` (the wording), no write.
#[tokio::test]
async fn a_deleted_trail_is_skipped_for_want_of_a_target() {
    let (h, f) = world().await;
    let name = trail(&h, "us-east-1", false, false, false, &[]).await;
    delete_trail(&h, "us-east-1", &name).await;
    let o = deliver(&h, &f, event_for(GUARDDUTY, "us-east-1", &name)).await;
    assert_eq!(
        (o.status, o.reason),
        (Status::Skipped, Reason::NoTarget),
        "{o:?}"
    );
    assert!(o.detail.contains("no longer exists"), "{}", o.detail);
    assert!(h.calls.writes().is_empty(), "{:?}", h.calls.calls());
}

/// The rules that evaluate the account, and a multi-region trail whose home is another region,
/// in one test: a multi-region trail shows in every region's listing, so these scenarios run
/// one after the other, each deleting what it made, in regions no other test uses (sa-east-1
/// for the function, eu-west-1 for the multi-region trail's home).
#[tokio::test]
async fn account_level_rules_and_the_home_region() {
    let (h, _) = world().await;
    h.managed_config_rule(
        "securityhub-cloudtrail-enabled-a1b2c3d4",
        "CLOUD_TRAIL_ENABLED",
    )
    .await;
    h.managed_config_rule(
        "multi-region-cloudtrail-enabled-conformance-pack-m4r5g6h7",
        "MULTI_REGION_CLOUD_TRAIL_ENABLED",
    )
    .await;
    let f = function_in(&h, "sa-east-1");
    let config = |path: &str, tag: &str| {
        let mut e: Value = serde_json::from_str(&sample(path)).unwrap();
        // A new evaluation each time: its own record.
        e["detail"]["newEvaluationResult"]["resultRecordedTime"] =
            json!(format!("2026-11-22T11:0{tag}:00.000Z"));
        e
    };

    // No trail at all: nothing to start (creating one is a person's decision).
    let o = deliver(&h, &f, config(CONFIG_ENABLED, "0")).await;
    assert_eq!(
        (o.status, o.reason),
        (Status::Rejected, Reason::NoTarget),
        "{o:?}"
    );

    // One stopped trail: started, validation on.
    let a = trail(&h, "sa-east-1", false, false, false, &[]).await;
    let o = deliver(&h, &f, config(CONFIG_ENABLED, "1")).await;
    assert_eq!(o.status, Status::Succeeded, "{o:?}");
    assert_eq!(trail_state(&h, "sa-east-1", &a).await, (true, true));

    // Two stopped trails: skipped, naming both; neither touched.
    let writes = h.calls.writes();
    let b = trail(&h, "sa-east-1", false, false, false, &[]).await;
    let c = trail(&h, "sa-east-1", false, false, false, &[]).await;
    let o = deliver(&h, &f, config(CONFIG_ENABLED, "2")).await;
    assert_eq!(
        (o.status, o.reason),
        (Status::Skipped, Reason::NotApplicable),
        "{o:?}"
    );
    for t in [&b, &c] {
        assert!(
            o.detail.contains(&trail_arn("sa-east-1", t)),
            "{}",
            o.detail
        );
        assert_eq!(trail_state(&h, "sa-east-1", t).await, (false, false));
    }
    assert_eq!(h.calls.writes(), writes);
    for t in [&a, &b, &c] {
        delete_trail(&h, "sa-east-1", t).await;
    }

    // MULTI_REGION_CLOUD_TRAIL_ENABLED: a stopped multi-region trail whose home is eu-west-1,
    // seen from sa-east-1. CloudTrail (and moto) answer StartLogging, UpdateTrail and GetTrail
    // for it only in eu-west-1: the fix and its verification go there.
    let m = trail(&h, "eu-west-1", true, false, false, &[]).await;
    let o = deliver(&h, &f, config(CONFIG_MULTI_REGION, "3")).await;
    assert_eq!(o.status, Status::Succeeded, "{o:?}");
    assert_eq!(trail_state(&h, "eu-west-1", &m).await, (true, true));
    let r = h.record(&o.record_id).await;
    let target: TrailTarget = serde_json::from_value(r.target.clone().unwrap()).unwrap();
    assert_eq!(
        (target.home_region.as_str(), target.multi_region),
        ("eu-west-1", true)
    );
    assert!(r
        .actions
        .iter()
        .all(|a| a.parameters["Region"] == json!("eu-west-1")));
    // Its rollback goes there too.
    let until = chrono::Utc::now() + chrono::Duration::hours(1);
    let rolled = pipeline::rollback(
        &h.setup,
        &f,
        &o.record_id,
        "arn:aws:iam::123456789012:user/op",
        false,
        until,
    )
    .await
    .unwrap();
    assert_eq!(rolled.status, Status::RolledBack, "{rolled:?}");
    assert_eq!(trail_state(&h, "eu-west-1", &m).await, (false, false));
    delete_trail(&h, "eu-west-1", &m).await;
}
