//! Metrics as CloudWatch embedded metric format (EMF): one JSON line on stdout per stored
//! outcome, which CloudWatch Logs turns into metrics. No `PutMetricData` call, so no AWS call on
//! any path and no permission to grant.
//!
//! Namespace `Reflex/<stack>` (`REFLEX_METRICS_NAMESPACE`, set by the template; unset, as in the
//! CLI, no lines are written). Per stored outcome:
//! - `Outcomes` (Count, 1), by `Remediation` and `Status`, and by `Status` alone;
//! - by `Remediation`: `Failures` (1 for `failed` and `verification-failed`: what the template's
//!   alarms count), `TimeToFix` (Seconds, from the finding's observation to the verified fix),
//!   `BudgetUsed` and `BudgetMax` (Count: the units of the hour's blast-radius budget taken,
//!   this change's included, and the budget), `RateLimited` (1 when the budget held a fix back).
//!
//! And `NotificationsFailed` (Count, by `Remediation`) for a notification SNS did not take.
//! The document builders are pure; [`Metrics`] only writes their lines.

use crate::ledger::OutcomeRecord;
use crate::status::{Reason, Status};
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};
use std::sync::{Arc, Mutex};

/// The namespace's environment variable; unset, metrics are off.
pub const NAMESPACE_ENV: &str = "REFLEX_METRICS_NAMESPACE";

/// Where EMF lines go.
#[derive(Debug, Clone, Default)]
enum Sink {
    /// Metrics off.
    #[default]
    Off,
    /// The process's stdout: Lambda sends it to CloudWatch Logs.
    Stdout,
    /// Kept in memory, for a test to read.
    Captured(Arc<Mutex<Vec<String>>>),
}

/// The metrics writer of one function instance.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    namespace: String,
    sink: Sink,
}

/// Lines a captured writer kept.
#[derive(Debug, Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<String>>>);

impl Captured {
    /// Every line written so far, parsed.
    pub fn documents(&self) -> Vec<Value> {
        self.0
            .lock()
            .map(|lines| {
                lines
                    .iter()
                    .filter_map(|l| serde_json::from_str(l).ok())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Metrics {
    pub fn off() -> Self {
        Metrics::default()
    }

    /// EMF lines on stdout, under `namespace`.
    pub fn stdout(namespace: impl Into<String>) -> Self {
        Metrics {
            namespace: namespace.into(),
            sink: Sink::Stdout,
        }
    }

    /// EMF lines kept in memory (tests).
    pub fn captured(namespace: impl Into<String>) -> (Self, Captured) {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let metrics = Metrics {
            namespace: namespace.into(),
            sink: Sink::Captured(lines.clone()),
        };
        (metrics, Captured(lines))
    }

    fn write(&self, document: Option<Value>) {
        let Some(document) = document else { return };
        let line = document.to_string();
        match &self.sink {
            Sink::Off => {}
            Sink::Stdout => {
                use std::io::Write;
                // One write of one whole line: CloudWatch reads each line as one document.
                let mut out = std::io::stdout().lock();
                let _ = out.write_all(format!("{line}\n").as_bytes());
                let _ = out.flush();
            }
            Sink::Captured(lines) => {
                if let Ok(mut lines) = lines.lock() {
                    lines.push(line);
                }
            }
        }
    }

    /// The metrics of an outcome this invocation stored.
    pub fn outcome(&self, record: &OutcomeRecord) {
        if matches!(self.sink, Sink::Off) {
            return;
        }
        self.write(outcome_document(&self.namespace, record, Utc::now()));
    }

    /// A notification SNS did not take.
    pub fn notification_failed(&self, remediation: &str) {
        if matches!(self.sink, Sink::Off) {
            return;
        }
        self.write(Some(notification_failed_document(
            &self.namespace,
            remediation,
            Utc::now(),
        )));
    }
}

/// Seconds from the finding's observation to the verified fix, for a verified success.
pub fn time_to_fix(record: &OutcomeRecord) -> Option<f64> {
    if record.status != Status::Succeeded || record.verified != Some(true) {
        return None;
    }
    let parse = |t: &str| DateTime::parse_from_rfc3339(t).ok();
    let observed = parse(record.finding.as_ref()?.observed_at.as_deref()?)?;
    let verified = parse(record.verified_at.as_deref()?)?;
    let ms = (verified - observed).num_milliseconds();
    // A clock that puts the fix before the finding says nothing about the time it took.
    (ms >= 0).then(|| ms as f64 / 1000.0)
}

fn directive(namespace: &str, dimensions: Value, metrics: &[(&str, &str)]) -> Value {
    json!({
        "Namespace": namespace,
        "Dimensions": dimensions,
        "Metrics": metrics
            .iter()
            .map(|(name, unit)| json!({"Name": name, "Unit": unit}))
            .collect::<Vec<_>>(),
    })
}

/// The EMF document for a stored outcome; `None` for a record still in progress (a handed-back
/// attempt is not an outcome).
pub fn outcome_document(
    namespace: &str,
    record: &OutcomeRecord,
    now: DateTime<Utc>,
) -> Option<Value> {
    if record.status.in_progress() && record.status != Status::AwaitingCompletion {
        return None;
    }
    let mut root = Map::new();
    root.insert("Remediation".into(), json!(record.remediation));
    root.insert("Status".into(), json!(record.status.as_str()));
    // Not dimensions (each value would be a metric of its own): context for a log search.
    root.insert("Reason".into(), json!(record.reason));
    root.insert("record_id".into(), json!(record.record_id));
    root.insert("Outcomes".into(), json!(1));
    let mut by_remediation: Vec<(&str, &str)> = Vec::new();
    let mut put = |name: &'static str, unit: &'static str, value: Value| {
        root.insert(name.into(), value);
        by_remediation.push((name, unit));
    };
    let failure = matches!(record.status, Status::Failed | Status::VerificationFailed);
    put("Failures", "Count", json!(u8::from(failure)));
    if let Some(seconds) = time_to_fix(record) {
        put("TimeToFix", "Seconds", json!(seconds));
    }
    if let Some(budget) = record.budget.as_ref().filter(|b| !b.given_back) {
        put("BudgetUsed", "Count", json!(budget.count));
        put("BudgetMax", "Count", json!(budget.max));
    }
    if record.status == Status::Skipped && record.reason == Reason::RateLimited {
        put("RateLimited", "Count", json!(1));
    }
    root.insert(
        "_aws".into(),
        json!({
            "Timestamp": now.timestamp_millis(),
            "CloudWatchMetrics": [
                directive(
                    namespace,
                    json!([["Remediation", "Status"], ["Status"]]),
                    &[("Outcomes", "Count")],
                ),
                directive(namespace, json!([["Remediation"]]), &by_remediation),
            ],
        }),
    );
    Some(Value::Object(root))
}

/// The EMF document for a notification that was not sent.
pub fn notification_failed_document(
    namespace: &str,
    remediation: &str,
    now: DateTime<Utc>,
) -> Value {
    json!({
        "_aws": {
            "Timestamp": now.timestamp_millis(),
            "CloudWatchMetrics": [directive(
                namespace,
                json!([["Remediation"]]),
                &[("NotificationsFailed", "Count")],
            )],
        },
        "Remediation": remediation,
        "NotificationsFailed": 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{BudgetUse, RecordMeta};

    fn record(status: Status, reason: Reason) -> OutcomeRecord {
        let meta = RecordMeta {
            function_version: "1".into(),
            request_id: "r".into(),
            event_digest: "d".into(),
            claim_token: "t".into(),
        };
        let mut r = OutcomeRecord::new("s3#1".into(), "s3-block-public-access", &meta, "now");
        r.set_outcome(status, reason, "why");
        r
    }

    fn with_finding(mut r: OutcomeRecord, observed_at: &str) -> OutcomeRecord {
        let event: Value = serde_json::from_str(include_str!(
            "../../events/s3-block-public-access/securityhub-s3.8-imported.json"
        ))
        .unwrap();
        let mut f = crate::finding::parse_event(&event).unwrap().remove(0);
        f.observed_at = Some(observed_at.into());
        r.finding = Some(f);
        r
    }

    /// Every metric a document declares, with its directive's dimension sets: each must have
    /// a number at the root, and each dimension a string (CloudWatch drops the rest).
    fn declared(doc: &Value) -> Vec<(String, Value)> {
        let mut out = Vec::new();
        for d in doc["_aws"]["CloudWatchMetrics"].as_array().unwrap() {
            assert_eq!(d["Namespace"], "Reflex/test");
            for set in d["Dimensions"].as_array().unwrap() {
                for dim in set.as_array().unwrap() {
                    assert!(doc[dim.as_str().unwrap()].is_string(), "{dim} in {doc}");
                }
            }
            for m in d["Metrics"].as_array().unwrap() {
                let name = m["Name"].as_str().unwrap().to_string();
                assert!(doc[&name].is_number(), "{name} has no value in {doc}");
                out.push((name, d["Dimensions"].clone()));
            }
        }
        out
    }

    #[test]
    fn an_outcome_is_counted_by_remediation_and_status() {
        let now = DateTime::parse_from_rfc3339("2026-12-03T08:00:00Z")
            .unwrap()
            .to_utc();
        // (status, reason, Failures, RateLimited present)
        let cases = [
            (Status::Succeeded, Reason::Remediated, 0, false),
            (Status::Failed, Reason::ActionError, 1, false),
            (Status::Failed, Reason::TimedOut, 1, false),
            (
                Status::VerificationFailed,
                Reason::StillNonCompliant,
                1,
                false,
            ),
            (Status::PendingApproval, Reason::AwaitingApproval, 0, false),
            (Status::Skipped, Reason::RateLimited, 0, true),
            (Status::Skipped, Reason::Exempt, 0, false),
            (Status::Rejected, Reason::MalformedEvent, 0, false),
            (
                Status::AwaitingCompletion,
                Reason::AwaitingOperation,
                0,
                false,
            ),
        ];
        for (status, reason, failures, rate_limited) in cases {
            let doc = outcome_document("Reflex/test", &record(status, reason), now).unwrap();
            assert_eq!(doc["_aws"]["Timestamp"], now.timestamp_millis());
            assert_eq!(doc["Remediation"], "s3-block-public-access");
            assert_eq!(doc["Status"], status.as_str());
            assert_eq!(doc["Outcomes"], 1);
            assert_eq!(doc["Failures"], failures, "{status}");
            assert_eq!(
                doc.get("RateLimited").is_some(),
                rate_limited,
                "{status} {reason}"
            );
            let metrics = declared(&doc);
            assert!(metrics.contains(&(
                "Outcomes".into(),
                json!([["Remediation", "Status"], ["Status"]])
            )));
            assert!(metrics.contains(&("Failures".into(), json!([["Remediation"]]))));
            // No fix verified, no budget taken: neither is declared.
            assert!(!metrics
                .iter()
                .any(|(m, _)| m == "TimeToFix" || m == "BudgetUsed"));
        }
        // Still in progress (handed back for a retry): no outcome yet.
        for status in [Status::Claimed, Status::Acting] {
            assert!(
                outcome_document("Reflex/test", &record(status, Reason::RetryPending), now)
                    .is_none()
            );
        }
    }

    #[test]
    fn a_verified_fix_says_how_long_it_took_and_what_budget_it_used() {
        let now = Utc::now();
        let mut r = with_finding(
            record(Status::Succeeded, Reason::Remediated),
            "2026-12-03T07:58:30.000+00:00",
        );
        r.verified = Some(true);
        r.verified_at = Some("2026-12-03T08:00:00.250Z".into());
        r.budget = Some(BudgetUse {
            window: "2026-12-03T08".into(),
            count: 3,
            token: "t".into(),
            max: 20,
            given_back: false,
        });
        let doc = outcome_document("Reflex/test", &r, now).unwrap();
        assert_eq!(doc["TimeToFix"], 90.25);
        assert_eq!(doc["BudgetUsed"], 3);
        assert_eq!(doc["BudgetMax"], 20);
        let metrics = declared(&doc);
        for name in ["TimeToFix", "BudgetUsed", "BudgetMax"] {
            assert!(
                metrics.contains(&(name.into(), json!([["Remediation"]]))),
                "{name}"
            );
        }
        let units: Vec<&Value> = doc["_aws"]["CloudWatchMetrics"][1]["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["Name"] == "TimeToFix")
            .map(|m| &m["Unit"])
            .collect();
        assert_eq!(units, vec!["Seconds"]);

        // Not verified, not a success, a unit given back, a clock gone backwards: none.
        let mut unverified = r.clone();
        unverified.verified = Some(false);
        assert_eq!(time_to_fix(&unverified), None);
        let mut backwards = r.clone();
        backwards.verified_at = Some("2026-12-03T07:00:00Z".into());
        assert_eq!(time_to_fix(&backwards), None);
        let mut given_back = r.clone();
        given_back.budget.as_mut().unwrap().given_back = true;
        let doc = outcome_document("Reflex/test", &given_back, now).unwrap();
        assert!(doc.get("BudgetUsed").is_none());
        declared(&doc);
    }

    #[test]
    fn the_writer_keeps_whole_lines_and_is_silent_when_off() {
        let (metrics, captured) = Metrics::captured("Reflex/test");
        metrics.outcome(&record(Status::Failed, Reason::ActionError));
        metrics.outcome(&record(Status::Acting, Reason::InProgress));
        metrics.notification_failed("s3-block-public-access");
        let docs = captured.documents();
        assert_eq!(docs.len(), 2, "{docs:?}");
        assert_eq!(docs[0]["Failures"], 1);
        assert_eq!(docs[1]["NotificationsFailed"], 1);
        declared(&docs[1]);
        // Off: nothing written, nothing panics.
        Metrics::off().outcome(&record(Status::Failed, Reason::ActionError));
    }
}
