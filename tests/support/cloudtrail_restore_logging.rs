//! cloudtrail-restore-logging as a [`Subject`] of the common cases, and the trails its tests
//! make. The common cases run on GuardDuty's `Stealth:IAMUser/CloudTrailLoggingDisabled`: a
//! stopped trail without log-file validation needs the fix, a logging one with validation is
//! compliant.
//!
//! moto 5.2's CloudTrail has every call this function makes (StartLogging, StopLogging,
//! GetTrailStatus, GetTrail, UpdateTrail with EnableLogFileValidation, ListTags, AddTags) and,
//! like AWS, answers StartLogging, GetTrail and UpdateTrail for a trail only in its home region
//! (elsewhere: TrailNotFoundException), so the home-region client is tested against it as it
//! is. One difference: moto's DescribeTrails ignores `trailNameList` and lists every trail;
//! the function filters by ARN itself, and the tests run with other tests' trails present.

use crate::common::Subject;
use crate::{sample, unique, Harness, ACCOUNT};
use cloudtrail_restore_logging::{CloudTrailRestoreLogging, SPEC};
use serde_json::{json, Value};

pub const GUARDDUTY: &str = "cloudtrail-restore-logging/guardduty-cloudtrail-logging-disabled.json";
/// The trail the committed samples name; tests swap in their own.
pub const SAMPLE_TRAIL: &str = "reflex-demo-trail";

/// The function under test, its CloudTrail calls (in every region) logged in `h.calls`.
pub fn function(h: &Harness) -> CloudTrailRestoreLogging {
    CloudTrailRestoreLogging::from_config(
        aws_sdk_cloudtrail::config::Builder::from(&h.sdk)
            .interceptor(h.calls.clone())
            .build(),
    )
}

/// The test's own CloudTrail client in `region` (not logged).
pub fn cloudtrail_in(h: &Harness, region: &str) -> aws_sdk_cloudtrail::Client {
    aws_sdk_cloudtrail::Client::from_conf(
        aws_sdk_cloudtrail::config::Builder::from(&h.sdk)
            .region(aws_sdk_cloudtrail::config::Region::new(region.to_string()))
            .build(),
    )
}

pub fn trail_arn(region: &str, name: &str) -> String {
    format!("arn:aws:cloudtrail:{region}:{ACCOUNT}:trail/{name}")
}

/// A trail in `region` (multi-region or not), stopped or logging, validation as given, tagged
/// as given, with its own log bucket; its name.
pub async fn trail(
    h: &Harness,
    region: &str,
    multi_region: bool,
    logging: bool,
    validation: bool,
    tags: &[(&str, &str)],
) -> String {
    let name = unique("reflex-trail");
    let bucket = unique("reflex-trail-logs");
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&h.sdk)
            .force_path_style(true)
            .region(aws_sdk_s3::config::Region::new(region.to_string()))
            .build(),
    );
    let mut create = s3.create_bucket().bucket(&bucket);
    if region != "us-east-1" {
        create = create.create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(region))
                .build(),
        );
    }
    create.send().await.expect("the log bucket");
    let ct = cloudtrail_in(h, region);
    let mut req = ct
        .create_trail()
        .name(&name)
        .s3_bucket_name(&bucket)
        .is_multi_region_trail(multi_region)
        .enable_log_file_validation(validation);
    for (k, v) in tags {
        req = req.tags_list(
            aws_sdk_cloudtrail::types::Tag::builder()
                .key(*k)
                .value(*v)
                .build()
                .unwrap(),
        );
    }
    req.send().await.expect("create the trail");
    if logging {
        ct.start_logging().name(&name).send().await.expect("start");
    }
    name
}

/// (logging, log-file validation) of a trail, read in its home region.
pub async fn trail_state(h: &Harness, region: &str, name: &str) -> (bool, bool) {
    let ct = cloudtrail_in(h, region);
    let status = ct
        .get_trail_status()
        .name(trail_arn(region, name))
        .send()
        .await
        .expect("trail status");
    let trail = ct
        .get_trail()
        .name(trail_arn(region, name))
        .send()
        .await
        .expect("the trail");
    (
        status.is_logging().unwrap_or(false),
        trail
            .trail()
            .and_then(|t| t.log_file_validation_enabled())
            .unwrap_or(false),
    )
}

/// A committed sample naming trail `name` in `region`, its finding ids made unique by the name.
pub fn event_for(path: &str, region: &str, name: &str) -> Value {
    let text = sample(path).replace(
        &trail_arn("us-east-1", SAMPLE_TRAIL),
        &trail_arn(region, name),
    );
    let mut v: Value = serde_json::from_str(&text).expect("sample is JSON");
    if let Some(findings) = v
        .pointer_mut("/detail/findings")
        .and_then(Value::as_array_mut)
    {
        for f in findings {
            let id = f["Id"].as_str().unwrap_or_default().to_string();
            f["Id"] = json!(format!("{id}-{name}"));
        }
    } else if let Some(id) = v.pointer_mut("/detail/id") {
        *id = json!(format!("{}-{name}", id.as_str().unwrap_or_default()));
    }
    v
}

impl Subject for CloudTrailRestoreLogging {
    const SPEC: &'static reflex_shared::remediation::Spec = &SPEC;

    fn new(h: &Harness) -> Self {
        function(h)
    }

    async fn noncompliant(h: &Harness, tags: &[(&str, &str)]) -> String {
        trail(h, "us-east-1", false, false, false, tags).await
    }

    async fn compliant(h: &Harness) -> String {
        trail(h, "us-east-1", false, true, true, &[]).await
    }

    fn event(id: &str) -> Value {
        event_for(GUARDDUTY, "us-east-1", id)
    }

    fn recurrence(id: &str) -> Value {
        let mut e = Self::event(id);
        e["detail"]["updatedAt"] = json!("2026-12-01T00:00:00.000Z");
        e
    }

    async fn arn(_h: &Harness, id: &str) -> String {
        trail_arn("us-east-1", id)
    }

    async fn fixed(h: &Harness, id: &str) -> bool {
        trail_state(h, "us-east-1", id).await == (true, true)
    }
}
