//! Notifications and metrics against the emulator, through the real AWS SDK: the stack's topic
//! (SNS) with an SQS queue subscribed to it, whose messages the test reads back. moto delivers
//! SNS to SQS within the `Publish` call, so a queue found empty after a run holds nothing more.

use aws_sdk_sqs::types::QueueAttributeName;
use reflex_shared::metrics::{Captured, Metrics};
use reflex_shared::notify::Notifier;
use reflex_shared::policy::Policy;
use reflex_shared::status::Status;
use reflex_tests::*;
use serde_json::Value;

const APPROVE: &str = "version: 1\nremediations:\n  s3-block-public-access: {mode: approve}\n";

/// A topic of the test's own, with a queue subscribed to it.
struct Topic {
    sns: aws_sdk_sns::Client,
    sqs: aws_sdk_sqs::Client,
    arn: String,
    queue_url: String,
}

/// One message the queue received: SNS's envelope, parsed.
#[derive(Debug)]
struct Received {
    subject: String,
    body: String,
    status: String,
}

async fn topic() -> Topic {
    let sdk = sdk_config().await;
    let sns = aws_sdk_sns::Client::new(&sdk);
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let arn = sns
        .create_topic()
        .name(unique("reflex-notify"))
        .send()
        .await
        .expect("create the topic")
        .topic_arn
        .expect("its ARN");
    let queue_url = sqs
        .create_queue()
        .queue_name(unique("reflex-notified"))
        .send()
        .await
        .expect("create the queue")
        .queue_url
        .expect("its URL");
    let queue_arn = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("the queue's ARN")
        .attributes
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .expect("QueueArn");
    sns.subscribe()
        .topic_arn(&arn)
        .protocol("sqs")
        .endpoint(queue_arn)
        .send()
        .await
        .expect("subscribe the queue");
    Topic {
        sns,
        sqs,
        arn,
        queue_url,
    }
}

impl Topic {
    fn notifier(&self) -> Notifier {
        Notifier::sns(self.sns.clone(), &self.arn)
    }

    /// Every message the queue holds now, each deleted once read.
    async fn drain(&self) -> Vec<Received> {
        let mut out = Vec::new();
        loop {
            let got = self
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .send()
                .await
                .expect("receive");
            let messages = got.messages.unwrap_or_default();
            if messages.is_empty() {
                return out;
            }
            for m in messages {
                let envelope: Value =
                    serde_json::from_str(m.body().expect("a body")).expect("SNS's JSON envelope");
                out.push(Received {
                    subject: envelope["Subject"].as_str().unwrap_or_default().into(),
                    body: envelope["Message"].as_str().unwrap_or_default().into(),
                    status: envelope["MessageAttributes"]["reflex.status"]["Value"]
                        .as_str()
                        .unwrap_or_default()
                        .into(),
                });
                self.sqs
                    .delete_message()
                    .queue_url(&self.queue_url)
                    .receipt_handle(m.receipt_handle().expect("a receipt handle"))
                    .send()
                    .await
                    .expect("delete");
            }
        }
    }
}

/// A harness whose notifications go to `topic` and whose metrics are kept for the test.
async fn harness(options: HarnessOptions, topic: &Topic) -> (Harness, Captured) {
    let mut h = Harness::with(options).await;
    h.setup.notifier = topic.notifier();
    let (metrics, captured) = Metrics::captured("Reflex/test");
    h.setup.metrics = metrics;
    (h, captured)
}

fn approve_mode() -> HarnessOptions {
    HarnessOptions {
        policy: Policy::from_yaml(APPROVE),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_plan_held_for_approval_is_told_once_with_the_command_to_approve_it() {
    let t = topic().await;
    let (h, metrics) = harness(approve_mode(), &t).await;
    let table = h.setup.ledger.table().to_string();
    let bucket = h.bucket(Some(ALL_OFF), &[]).await;
    let event = sample_for(
        "s3-block-public-access/securityhub-s3.8-imported.json",
        &bucket,
    );

    let held = h.deliver_one(event.clone()).await;
    assert_eq!(held.status, Status::PendingApproval, "{held:?}");
    let id = &held.record_id;
    let told = t.drain().await;
    assert_eq!(told.len(), 1, "{told:?}");
    let m = &told[0];
    assert_eq!(
        m.subject,
        format!("Reflex: approval needed: s3-block-public-access on {bucket}")
    );
    assert_eq!(m.status, "pending-approval");
    for part in [
        // what, where, why, the record, the command
        "S3.8".to_string(),
        format!("arn:aws:s3:::{bucket} in account {ACCOUNT}"),
        "approve mode by remediations.s3-block-public-access".to_string(),
        "s3:PutPublicAccessBlock".to_string(),
        format!("Record: {id} (table {table}"),
        format!("reflex --table {table} approve {id}"),
    ] {
        assert!(m.body.contains(&part), "{part:?} missing from\n{}", m.body);
    }
    let r = h.record(id).await;
    assert_eq!(r.notified, vec![format!("pending-approval@{}", r.attempts)]);

    // The same event again (EventBridge's redelivery, Lambda's retry): a duplicate, not told.
    let again = h.deliver_one(event).await;
    assert!(again.duplicate, "{again:?}");
    // Another finding's plan is told: the queue works, and it holds that message alone.
    let other = h.bucket(Some(ALL_OFF), &[]).await;
    let second = h
        .deliver_one(sample_for(
            "s3-block-public-access/securityhub-s3.8-imported.json",
            &other,
        ))
        .await;
    let told = t.drain().await;
    assert_eq!(told.len(), 1, "{told:?}");
    assert!(told[0].body.contains(&second.record_id), "{}", told[0].body);
    assert!(!told[0].body.contains(id.as_str()));

    // Metrics: one outcome each, written by the invocation that stored it (not the duplicate).
    let docs = metrics.documents();
    let outcomes: Vec<(&Value, &Value)> = docs
        .iter()
        .map(|d| (&d["record_id"], &d["Status"]))
        .collect();
    assert_eq!(
        outcomes,
        vec![
            (&Value::from(id.as_str()), &Value::from("pending-approval")),
            (
                &Value::from(second.record_id.as_str()),
                &Value::from("pending-approval")
            ),
        ]
    );

    // Approved and fixed: a success is not among the default `notify`.
    let approved = reflex_shared::pipeline::approve(&h.setup, &h.remediation, id, MOTO_CALLER)
        .await
        .expect("approve");
    assert_eq!(approved.status, Status::Succeeded, "{approved:?}");
    assert!(t.drain().await.is_empty());
}

#[tokio::test]
async fn a_publish_that_fails_changes_no_outcome_and_a_redelivery_tells_it() {
    let t = topic().await;
    let (mut h, metrics) = harness(approve_mode(), &t).await;
    // A topic that is gone: SNS refuses the publish.
    let gone = t
        .sns
        .create_topic()
        .name(unique("reflex-gone"))
        .send()
        .await
        .unwrap()
        .topic_arn
        .unwrap();
    t.sns.delete_topic().topic_arn(&gone).send().await.unwrap();
    h.setup.notifier = Notifier::sns(t.sns.clone(), &gone);
    let bucket = h.bucket(Some(ALL_OFF), &[]).await;
    let event = sample_for(
        "s3-block-public-access/securityhub-s3.8-imported.json",
        &bucket,
    );

    let held = h.deliver_one(event.clone()).await;
    assert_eq!(held.status, Status::PendingApproval, "{held:?}");
    let record = h.record(&held.record_id).await;
    assert_eq!(record.status, Status::PendingApproval, "the outcome stands");
    assert!(record.notified.is_empty(), "the claim was given back");
    let docs = metrics.documents();
    assert!(
        docs.iter()
            .any(|d| d["NotificationsFailed"] == 1 && d["Remediation"] == "s3-block-public-access"),
        "{docs:?}"
    );

    // The topic back: the next delivery of the event, a duplicate, tells what was not told.
    h.setup.notifier = t.notifier();
    let again = h.deliver_one(event.clone()).await;
    assert!(again.duplicate, "{again:?}");
    let told = t.drain().await;
    assert_eq!(told.len(), 1, "{told:?}");
    assert!(told[0].body.contains(&held.record_id), "{}", told[0].body);
    let r = h.record(&held.record_id).await;
    assert_eq!(r.notified, vec![format!("pending-approval@{}", r.attempts)]);
    // And once only.
    h.deliver_one(event).await;
    assert!(t.drain().await.is_empty());
}

#[tokio::test]
async fn a_failure_is_told_once_even_when_it_is_run_again() {
    let t = topic().await;
    // A policy that cannot be read: every finding is `failed / policy-invalid`.
    let invalid = HarnessOptions {
        policy: Policy::from_yaml("version: 1\nremediations:\n  s3-block-pubic-access: {}\n"),
        ..Default::default()
    };
    let (h, metrics) = harness(invalid, &t).await;
    let bucket = h.bucket(Some(ALL_OFF), &[]).await;
    let event = sample_for(
        "s3-block-public-access/securityhub-s3.8-imported.json",
        &bucket,
    );

    let failed = h.deliver_one(event.clone()).await;
    assert_eq!(failed.status, Status::Failed, "{failed:?}");
    let told = t.drain().await;
    assert_eq!(told.len(), 1, "{told:?}");
    assert_eq!(
        told[0].subject,
        format!("Reflex: fix failed: s3-block-public-access on {bucket}")
    );
    assert_eq!(told[0].status, "failed");
    assert!(
        told[0].body.contains("s3-block-pubic-access"),
        "{}",
        told[0].body
    );
    let table = h.setup.ledger.table();
    assert!(told[0].body.contains(&format!(
        "reflex --table {table} retry {}",
        failed.record_id
    )));
    assert!(metrics
        .documents()
        .iter()
        .any(|d| d["Status"] == "failed" && d["Failures"] == 1));

    // An invalid policy is no verdict on the finding: the next delivery runs it again (a
    // takeover, a new attempt), and it fails again. Told once all the same.
    let again = h.deliver_one(event).await;
    assert!(!again.duplicate, "{again:?}");
    assert_eq!(again.status, Status::Failed);
    let record = h.record(&failed.record_id).await;
    assert_eq!(record.attempts, 2);
    assert_eq!(record.notified, vec!["failed"]);
    assert!(t.drain().await.is_empty());
}

#[tokio::test]
async fn a_verified_fix_writes_its_metrics_and_is_not_told_by_default() {
    let t = topic().await;
    let (h, metrics) = harness(HarnessOptions::default(), &t).await;
    let bucket = h.bucket(Some(ALL_OFF), &[]).await;
    let fixed = h
        .deliver_one(sample_for(
            "s3-block-public-access/securityhub-s3.8-imported.json",
            &bucket,
        ))
        .await;
    assert_eq!(fixed.status, Status::Succeeded, "{fixed:?}");
    assert!(t.drain().await.is_empty());
    let record = h.record(&fixed.record_id).await;
    let docs = metrics.documents();
    assert_eq!(docs.len(), 1, "{docs:?}");
    let d = &docs[0];
    assert_eq!(d["Remediation"], "s3-block-public-access");
    assert_eq!(d["Status"], "succeeded");
    assert_eq!(d["Outcomes"], 1);
    assert_eq!(d["Failures"], 0);
    assert_eq!(d["BudgetUsed"], 1);
    assert_eq!(d["BudgetMax"], 20);
    let observed = record
        .finding
        .as_ref()
        .unwrap()
        .observed_at
        .clone()
        .unwrap();
    let at = |t: &str| chrono::DateTime::parse_from_rfc3339(t).unwrap();
    let took = at(record.verified_at.as_deref().unwrap()) - at(&observed);
    assert_eq!(d["TimeToFix"], took.num_milliseconds() as f64 / 1000.0);
    let directives = d["_aws"]["CloudWatchMetrics"].as_array().unwrap();
    assert_eq!(directives[0]["Namespace"], "Reflex/test");
    assert_eq!(
        directives[0]["Dimensions"],
        serde_json::json!([["Remediation", "Status"], ["Status"]])
    );
    let by_remediation: Vec<&str> = directives[1]["Metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["Name"].as_str().unwrap())
        .collect();
    assert_eq!(
        by_remediation,
        ["Failures", "TimeToFix", "BudgetUsed", "BudgetMax"]
    );
}

#[tokio::test]
async fn concurrent_deliveries_tell_one_message() {
    let t = topic().await;
    let (h, _) = harness(approve_mode(), &t).await;
    let bucket = h.bucket(Some(ALL_OFF), &[]).await;
    let event = sample_for(
        "s3-block-public-access/securityhub-s3.8-imported.json",
        &bucket,
    );
    // Five instances at once; one held back while another holds the record retries, as
    // Lambda would, until every delivery has its answer.
    let deliveries = (0..5).map(|_| {
        let (h, event) = (&h, event.clone());
        async move {
            loop {
                match h.try_deliver(event.clone()).await {
                    Ok(o) => return o,
                    Err(reflex_shared::pipeline::PipelineError::Busy { .. }) => {
                        tokio::time::sleep(std::time::Duration::from_millis(20)).await
                    }
                    Err(e) => panic!("{e}"),
                }
            }
        }
    });
    let outcomes: Vec<_> = futures::future::join_all(deliveries)
        .await
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(outcomes.len(), 5);
    assert!(outcomes.iter().all(|o| o.status == Status::PendingApproval));
    assert_eq!(outcomes.iter().filter(|o| !o.duplicate).count(), 1);
    let told = t.drain().await;
    assert_eq!(told.len(), 1, "{told:?}");
}

/// The claim itself: only the first writer wins, only while the record has the status told.
#[tokio::test]
async fn a_notification_is_claimed_by_one_writer_only() {
    let t = topic().await;
    let (mut h, _) = harness(approve_mode(), &t).await;
    // No topic: the pipeline claims nothing, so the test's claims are the only ones.
    h.setup.notifier = Notifier::none();
    let bucket = h.bucket(Some(ALL_OFF), &[]).await;
    let held = h
        .deliver_one(sample_for(
            "s3-block-public-access/securityhub-s3.8-imported.json",
            &bucket,
        ))
        .await;
    let id = held.record_id.as_str();
    assert!(h.record(id).await.notified.is_empty());
    let ledger = &h.setup.ledger;
    let claim = || ledger.claim_notification(id, Status::PendingApproval, "pending-approval");
    let (a, b) = tokio::join!(claim(), claim());
    let won = [a.unwrap(), b.unwrap()];
    assert_eq!(won.iter().filter(|w| **w).count(), 1, "{won:?}");
    assert!(!claim().await.unwrap(), "told already");
    // Another outcome of the record is its own; a status the record no longer has is refused.
    assert!(!ledger
        .claim_notification(id, Status::Failed, "failed")
        .await
        .unwrap());
    assert!(!ledger
        .claim_notification(
            "no-such-record",
            Status::PendingApproval,
            "pending-approval"
        )
        .await
        .unwrap());
    assert_eq!(h.record(id).await.notified, vec!["pending-approval"]);
    // Given back (a publish failed): the next claim wins again.
    ledger
        .release_notification(id, "pending-approval")
        .await
        .unwrap();
    assert!(h.record(id).await.notified.is_empty());
    assert!(claim().await.unwrap());
}

/// A plan shown anew (the resource changed before the approval came) is a new question for a
/// person: told again, once, while a redelivery of the same run stays silent.
#[tokio::test]
async fn a_plan_shown_anew_is_told_again() {
    let t = topic().await;
    let (h, _) = harness(approve_mode(), &t).await;
    let bucket = h.bucket(Some(ALL_OFF), &[]).await;
    let event = sample_for(
        "s3-block-public-access/securityhub-s3.8-imported.json",
        &bucket,
    );
    let held = h.deliver_one(event.clone()).await;
    assert_eq!(held.status, Status::PendingApproval, "{held:?}");
    assert_eq!(t.drain().await.len(), 1);
    // Someone changes the bucket before the approval: the plan shown is no longer the plan.
    h.observer_client()
        .put_public_access_block()
        .bucket(&bucket)
        .public_access_block_configuration(
            aws_sdk_s3::types::PublicAccessBlockConfiguration::builder()
                .block_public_acls(true)
                .ignore_public_acls(false)
                .block_public_policy(false)
                .restrict_public_buckets(false)
                .build(),
        )
        .send()
        .await
        .expect("change the bucket");
    let asked =
        reflex_shared::pipeline::approve(&h.setup, &h.remediation, &held.record_id, MOTO_CALLER)
            .await
            .expect("approve");
    assert_eq!(asked.status, Status::PendingApproval, "{asked:?}");
    let told = t.drain().await;
    assert_eq!(told.len(), 1, "{told:?}");
    assert!(
        told[0].body.contains("changed since the plan was shown"),
        "{}",
        told[0].body
    );
    let r = h.record(&held.record_id).await;
    assert_eq!(r.notified.len(), 2, "{:?}", r.notified);
    // Its redelivery: silent.
    assert!(h.deliver_one(event).await.duplicate);
    assert!(t.drain().await.is_empty());
}
