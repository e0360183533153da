//! ec2-patch-instance end to end: an Inspector CVE finding for an instance, through the real
//! pipeline, against the emulator (EC2 instances, SSM commands, the outcome table in moto).
//!
//! moto's SSM differs from AWS in ways each of these tests would pass through for the wrong
//! reason, so the SSM client's answers are partly scripted by an interceptor
//! (`reflex_tests::ssm_script::SsmScript`), and every test that relies on it says so:
//! - `DescribeInstanceInformation` is not implemented (500): the script answers it, listing the
//!   instances asked about as managed, agent Online (or only those a test calls managed);
//! - every command is `Success` at once: the script shows `ListCommands` statuses and
//!   `GetCommandInvocation` answers as the test sets them (InProgress, then Success or Failed);
//! - `SendCommand` runs on every instance in the region, whatever `InstanceIds` says, so
//!   `ListCommands` for one instance lists every test's commands: the script keeps only the
//!   commands sent through its own clients to that instance, as AWS would list them.
//!
//! Every other call (SendCommand, ListCommands, GetCommandInvocation themselves, EC2) reaches
//! moto through the real SDK.

use aws_sdk_ssm::types::CommandInvocationStatus;
use reflex_tests::ssm_script::SsmScript;
use reflex_tests::{sample, Harness, ACCOUNT};
use serde_json::Value;

/// The instance id the committed samples name; each test swaps in its own.
const SAMPLE_INSTANCE: &str = "i-0abc1234def567890";
const CRITICAL: &str = "ec2-patch-instance/securityhub-inspector-cve-critical.json";
const SECOND_CVE: &str = "ec2-patch-instance/securityhub-inspector-second-cve-same-instance.json";
const HIGH: &str = "ec2-patch-instance/securityhub-inspector-cve-high-below-threshold.json";
const COMPLETION: &str = "ec2-patch-instance/ssm-command-status-change-success.json";
/// Enforce, with the approval tier opted out of (tests/trust/context.rs holds the tier).
const ENFORCE: &str =
    "version: 1\nremediations:\n  ec2-patch-instance: {mode: enforce, approve_irreversible: false}";

/// The remediation under test: its EC2 and SSM calls logged in `h.calls`, SSM partly scripted.
pub fn remediation(h: &Harness, script: &SsmScript) -> ec2_patch_instance::Ec2PatchInstance {
    let ec2 = aws_sdk_ec2::Client::from_conf(
        aws_sdk_ec2::config::Builder::from(&h.sdk)
            .interceptor(h.calls.clone())
            .build(),
    );
    let ssm = aws_sdk_ssm::Client::from_conf(
        aws_sdk_ssm::config::Builder::from(&h.sdk)
            .interceptor(h.calls.clone())
            .interceptor(script.clone())
            .build(),
    );
    ec2_patch_instance::Ec2PatchInstance::from_clients(ec2, ssm)
}

/// An instance in the emulator (a VPC of its own), tagged as given; its id.
pub async fn instance(h: &Harness, tags: &[(&str, &str)]) -> String {
    h.instance(false, tags).await.instance_id
}

/// A committed sample naming `instance`, its finding id made unique to it.
pub fn finding_for(path: &str, instance: &str) -> Value {
    let mut v: Value = serde_json::from_str(&sample(path).replace(SAMPLE_INSTANCE, instance))
        .expect("sample is JSON");
    for f in v["detail"]["findings"].as_array_mut().unwrap() {
        let id = format!("{}-{instance}", f["Id"].as_str().unwrap());
        f["Id"] = Value::from(id);
    }
    v
}

/// SSM's status-change event for `command_id` (its status says nothing Reflex reads).
pub fn completion(command_id: &str) -> Value {
    let mut v: Value = serde_json::from_str(&sample(COMPLETION)).unwrap();
    v["detail"]["command-id"] = Value::from(command_id);
    v
}

/// The EventBridge schedule's event: the function's sweep.
pub fn scheduled() -> Value {
    serde_json::json!({
        "version": "0", "id": uuid::Uuid::new_v4().to_string(),
        "detail-type": "Scheduled Event", "source": "aws.events", "account": ACCOUNT,
        "time": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "region": "us-east-1",
        "resources": [format!("arn:aws:events:us-east-1:{ACCOUNT}:rule/reflex-ec2-patch-instance-sweep")],
        "detail": {}
    })
}

/// The patch-baseline commands moto holds for `instance` (not logged, not scripted).
pub async fn commands(h: &Harness, instance: &str) -> Vec<aws_sdk_ssm::types::Command> {
    aws_sdk_ssm::Client::new(&h.sdk)
        .list_commands()
        .instance_id(instance)
        .send()
        .await
        .expect("list commands")
        .commands()
        .iter()
        .filter(|c| c.document_name() == Some(ec2_patch_instance::DOCUMENT))
        .cloned()
        .collect()
}

/// The AWS adapters against the emulator, each call through the real SDK. moto lacks
/// `DescribeInstanceInformation` and reports every command `Success` at once: those answers are
/// scripted ([`SsmScript`]), and the test says where.
#[tokio::test]
async fn adapters_read_and_send_through_the_sdk() {
    use ec2_patch_instance::aws::Clients;
    use ec2_patch_instance::plan::in_flight;
    use ec2_patch_instance::progress::{standing, Standing};
    use ec2_patch_instance::Reboot;
    use reflex_shared::remediation::RemediationError;

    let h = Harness::new().await;
    let script = SsmScript::default();
    let id = instance(&h, &[("team", "web"), ("reflex:exempt", "no")]).await;
    let other = instance(&h, &[]).await;
    // Scripted: SSM manages `id` only (moto answers DescribeInstanceInformation with a 500).
    script.manage_only(&[&id]);
    let ssm = aws_sdk_ssm::Client::from_conf(
        aws_sdk_ssm::config::Builder::from(&h.sdk)
            .interceptor(script.clone())
            .build(),
    );
    let aws = Clients {
        ec2: aws_sdk_ec2::Client::new(&h.sdk),
        ssm,
    };
    assert_eq!(
        aws.ping_status(&id).await.unwrap().as_deref(),
        Some("Online")
    );
    assert_eq!(aws.ping_status(&other).await.unwrap(), None);

    let tags = aws.instance_tags(&id).await.unwrap();
    assert_eq!(tags.get("team").map(String::as_str), Some("web"));
    assert_eq!(tags.get("reflex:exempt").map(String::as_str), Some("no"));

    let since = (chrono::Utc::now() - chrono::Duration::hours(3))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    assert!(aws.patch_commands(&id, &since).await.unwrap().is_empty());
    let comment = ec2_patch_instance::plan::comment("ec2-patch-instance#abc");
    let command = aws
        .send_patch_baseline(&id, Reboot::NoReboot, &comment)
        .await
        .unwrap();
    // Sent to exactly this instance (moto then names every instance in the region).
    assert_eq!(script.sent(), vec![(command.clone(), vec![id.clone()])]);
    // What moto holds: the command as sent.
    let sent: Vec<_> = commands(&h, &id)
        .await
        .into_iter()
        .filter(|c| c.command_id() == Some(command.as_str()))
        .collect();
    assert_eq!(sent.len(), 1);
    let c = &sent[0];
    assert_eq!(c.comment(), Some(comment.as_str()));
    let params = c.parameters().unwrap();
    assert_eq!(params["Operation"], vec!["Install".to_string()]);
    assert_eq!(params["RebootOption"], vec!["NoReboot".to_string()]);

    // moto: Success at once, so nothing is under way...
    let listed = aws.patch_commands(&id, &since).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].status, "Success");
    assert_eq!(in_flight(&listed), None);
    // ...scripted InProgress (moto never reports it): the run is under way, then ends.
    script.in_progress();
    let listed = aws.patch_commands(&id, &since).await.unwrap();
    assert_eq!(
        in_flight(&listed).map(|r| r.command_id),
        Some(command.clone())
    );
    let running = aws.invocation(&command, &id).await.unwrap().unwrap();
    assert_eq!(standing(&running), Standing::Running);
    script.ended(CommandInvocationStatus::Failed, "", "dnf: no space left");
    let failed = aws.invocation(&command, &id).await.unwrap().unwrap();
    assert_eq!(
        standing(&failed),
        Standing::Failed("Failed: dnf: no space left".into())
    );
    // An instance the command has no invocation on (moto answers InvocationDoesNotExist, as
    // AWS does for a moment right after SendCommand): not an error. (moto runs every command
    // on every instance it has, so the instance is one that does not exist.)
    let fresh = SsmScript::default();
    let unscripted = Clients {
        ec2: aws_sdk_ec2::Client::new(&h.sdk),
        ssm: aws_sdk_ssm::Client::from_conf(
            aws_sdk_ssm::config::Builder::from(&h.sdk)
                .interceptor(fresh)
                .build(),
        ),
    };
    assert_eq!(
        unscripted
            .invocation(&command, "i-0fedcba9876543210")
            .await
            .unwrap(),
        None
    );

    // A terminated instance is gone: nothing to patch.
    aws_sdk_ec2::Client::new(&h.sdk)
        .terminate_instances()
        .instance_ids(&other)
        .send()
        .await
        .unwrap();
    assert!(matches!(
        aws.instance_tags(&other).await,
        Err(RemediationError::Gone(_))
    ));
    assert!(matches!(
        aws.instance_tags("i-0123456789abcdef0").await,
        Err(RemediationError::Gone(_))
    ));
}

reflex_tests::common_cases!(ec2_patch_instance::Ec2PatchInstance);

/// The pipeline cases: long-running steps, completion events, the sweep.
mod pipeline_cases {
    use super::*;
    use reflex_shared::status::{Reason, Status};
    use serde_json::json;

    struct World {
        h: Harness,
        script: SsmScript,
        r: ec2_patch_instance::Ec2PatchInstance,
        instance: String,
    }

    /// A managed instance (scripted: moto has no DescribeInstanceInformation) and the function
    /// under `policy`.
    async fn world(policy: &str) -> World {
        let h = Harness::with_policy(policy).await;
        let script = SsmScript::default();
        let instance = instance(&h, &[]).await;
        let r = remediation(&h, &script);
        World {
            h,
            script,
            r,
            instance,
        }
    }

    async fn deliver(w: &World, event: Value) -> reflex_shared::pipeline::Handled {
        let mut o = w.h.deliver_to(&w.r, event).await.expect("handled");
        assert_eq!(o.len(), 1, "{o:?}");
        o.remove(0)
    }

    fn sends(w: &World) -> usize {
        w.h.calls.count("SendCommand")
    }

    /// In progress, then success (scripted: moto's commands are Success at once).
    #[tokio::test]
    async fn in_progress_then_success() {
        let w = world(ENFORCE).await;
        w.script.in_progress();
        let o = deliver(&w, finding_for(CRITICAL, &w.instance)).await;
        assert_eq!(
            (o.status, o.reason),
            (Status::AwaitingCompletion, Reason::AwaitingOperation),
            "{o:?}"
        );
        let sent = w.script.sent();
        assert_eq!(sent.len(), 1);
        let (command, named) = &sent[0];
        assert_eq!(named, &vec![w.instance.clone()]);
        let listed = commands(&w.h, &w.instance).await;
        let c = listed
            .iter()
            .find(|c| c.command_id() == Some(command.as_str()))
            .unwrap();
        assert_eq!(
            c.comment(),
            Some(format!("Reflex record {}", o.record_id).as_str())
        );
        assert_eq!(
            c.parameters().unwrap()["RebootOption"],
            vec!["RebootIfNeeded".to_string()]
        );
        // The status event while still running changes nothing.
        w.h.deliver_to(&w.r, completion(command)).await.unwrap();
        assert_eq!(
            w.h.record(&o.record_id).await.status,
            Status::AwaitingCompletion
        );
        w.script.ended(
            CommandInvocationStatus::Success,
            "Installed: 2\nFailed: 0",
            "",
        );
        w.h.deliver_to(&w.r, completion(command)).await.unwrap();
        let r = w.h.record(&o.record_id).await;
        assert_eq!(r.status, Status::Succeeded, "{r:?}");
        assert!(r.detail.contains("Installed: 2"), "{}", r.detail);
        assert_eq!(sends(&w), 1);
    }

    /// In progress, then failure (scripted, as above).
    #[tokio::test]
    async fn in_progress_then_failure() {
        let w = world(ENFORCE).await;
        w.script.in_progress();
        let o = deliver(&w, finding_for(CRITICAL, &w.instance)).await;
        assert_eq!(o.status, Status::AwaitingCompletion, "{o:?}");
        let (command, _) = w.script.sent().remove(0);
        w.script.ended(
            CommandInvocationStatus::Failed,
            "",
            "dnf: no space left on device",
        );
        w.h.deliver_to(&w.r, completion(&command)).await.unwrap();
        let r = w.h.record(&o.record_id).await;
        assert_eq!(
            (r.status, r.reason),
            (Status::Failed, Reason::OperationFailed),
            "{r:?}"
        );
        assert!(r.detail.contains("no space left"), "{}", r.detail);
    }

    /// A redelivery while awaiting sends no second command (commands scripted in progress).
    #[tokio::test]
    async fn redelivery_while_awaiting_sends_nothing() {
        let w = world(ENFORCE).await;
        w.script.in_progress();
        let event = finding_for(CRITICAL, &w.instance);
        let first = deliver(&w, event.clone()).await;
        assert_eq!(first.status, Status::AwaitingCompletion);
        let again = deliver(&w, event).await;
        assert!(again.duplicate, "{again:?}");
        assert_eq!(again.record_id, first.record_id);
        assert_eq!(sends(&w), 1);
        assert_eq!(w.script.sent().len(), 1);
    }

    /// N findings (CVEs) for one instance make one run; the others follow it (in progress:
    /// scripted, so the second finding sees the first's run under way as AWS would show it).
    #[tokio::test]
    async fn n_findings_for_one_instance_make_one_run() {
        let w = world(ENFORCE).await;
        w.script.in_progress();
        let first = deliver(&w, finding_for(CRITICAL, &w.instance)).await;
        let second = deliver(&w, finding_for(SECOND_CVE, &w.instance)).await;
        assert_ne!(first.record_id, second.record_id);
        for o in [&first, &second] {
            assert_eq!(o.status, Status::AwaitingCompletion, "{o:?}");
        }
        assert_eq!(sends(&w), 1);
        let (command, _) = w.script.sent().remove(0);
        let followed = w.h.record(&second.record_id).await;
        assert_eq!(followed.actions.len(), 1);
        assert_eq!(
            followed.actions[0].output,
            Some(json!({"command_id": command}))
        );
        w.script
            .ended(CommandInvocationStatus::Success, "Installed: 5", "");
        w.h.deliver_to(&w.r, completion(&command)).await.unwrap();
        for o in [&first, &second] {
            assert_eq!(w.h.record(&o.record_id).await.status, Status::Succeeded);
        }
    }

    /// A run still under way past its deadline ends failed / timed-out at the sweep (in
    /// progress: scripted, moto's commands never run long).
    #[tokio::test]
    async fn a_run_past_its_deadline_times_out() {
        use aws_sdk_dynamodb::types::AttributeValue;
        let w = world(ENFORCE).await;
        w.script.in_progress();
        let o = deliver(&w, finding_for(CRITICAL, &w.instance)).await;
        assert_eq!(o.status, Status::AwaitingCompletion);
        let r = w.h.record(&o.record_id).await;
        let awaiting = r.awaiting.clone().expect("the record names what it awaits");
        let deadline = awaiting.deadline - chrono::Utc::now().timestamp();
        assert!(
            (3 * 3600 - 60..=3 * 3600).contains(&deadline),
            "the spec's deadline: {deadline}"
        );
        // The sweep before the deadline: still running, the record waits.
        let swept = w.h.deliver_to(&w.r, scheduled()).await.unwrap();
        assert!(
            swept.iter().all(|s| s.record_id != o.record_id),
            "{swept:?}"
        );
        assert_eq!(
            w.h.record(&o.record_id).await.status,
            Status::AwaitingCompletion
        );
        // The deadline moved into the past, behind the pipeline's back: three hours later.
        let past = chrono::Utc::now().timestamp() - 1;
        w.h.set_attribute(
            &o.record_id,
            "awaiting",
            AttributeValue::M(
                [
                    (
                        "handle".to_string(),
                        AttributeValue::S(awaiting.handle.clone()),
                    ),
                    ("deadline".to_string(), AttributeValue::N(past.to_string())),
                ]
                .into(),
            ),
        )
        .await;
        w.h.deliver_to(&w.r, scheduled()).await.unwrap();
        let r = w.h.record(&o.record_id).await;
        assert_eq!(
            (r.status, r.reason),
            (Status::Failed, Reason::TimedOut),
            "{r:?}"
        );
        assert_eq!(sends(&w), 1, "never started again");
    }

    /// Not managed by SSM (scripted: moto has no DescribeInstanceInformation): skipped.
    #[tokio::test]
    async fn an_instance_ssm_does_not_manage_is_skipped() {
        let h = Harness::with_policy(ENFORCE).await;
        let script = SsmScript::default();
        let id = instance(&h, &[]).await;
        script.manage_only(&[]);
        let r = remediation(&h, &script);
        let o = h
            .deliver_to(&r, finding_for(CRITICAL, &id))
            .await
            .unwrap()
            .remove(0);
        assert_eq!(
            (o.status, o.reason),
            (Status::Skipped, Reason::NotManaged),
            "{o:?}"
        );
        assert!(o.detail.contains(&id), "{}", o.detail);
        assert_eq!(h.calls.count("SendCommand"), 0);
    }

    #[tokio::test]
    async fn below_the_parameters_severity_is_skipped() {
        let w = world(ENFORCE).await;
        let o = deliver(&w, finding_for(HIGH, &w.instance)).await;
        assert_eq!(
            (o.status, o.reason),
            (Status::Skipped, Reason::BelowThreshold),
            "{o:?}"
        );
        assert_eq!(sends(&w), 0);
        let w = world("version: 1\nremediations:\n  ec2-patch-instance:\n    mode: enforce\n    approve_irreversible: false\n    parameters: {min_severity: HIGH, reboot: NoReboot}").await;
        w.script.in_progress();
        let o = deliver(&w, finding_for(HIGH, &w.instance)).await;
        assert_eq!(o.status, Status::AwaitingCompletion, "{o:?}");
        let (command, _) = w.script.sent().remove(0);
        let c = commands(&w.h, &w.instance)
            .await
            .into_iter()
            .find(|c| c.command_id() == Some(command.as_str()))
            .unwrap();
        assert_eq!(
            c.parameters().unwrap()["RebootOption"],
            vec!["NoReboot".to_string()]
        );
    }

    /// Medium risk, hygiene: approve by default.
    #[tokio::test]
    async fn approval_is_the_default() {
        let w = world("version: 1").await;
        let o = deliver(&w, finding_for(CRITICAL, &w.instance)).await;
        assert_eq!(o.status, Status::PendingApproval, "{o:?}");
        assert_eq!(sends(&w), 0);
    }

    /// Not reversible: rollback refuses, changing nothing.
    #[tokio::test]
    async fn rollback_is_refused() {
        let w = world(ENFORCE).await;
        let o = deliver(&w, finding_for(CRITICAL, &w.instance)).await;
        let (command, _) = w.script.sent().remove(0);
        w.h.deliver_to(&w.r, completion(&command)).await.unwrap();
        assert_eq!(w.h.record(&o.record_id).await.status, Status::Succeeded);
        let until = chrono::Utc::now() + chrono::Duration::hours(1);
        let refused = reflex_shared::pipeline::rollback(
            &w.h.setup,
            &w.r,
            &o.record_id,
            "arn:aws:iam::123456789012:user/op",
            false,
            until,
        )
        .await;
        assert!(
            matches!(
                refused,
                Err(reflex_shared::pipeline::PipelineError::Refused(_))
            ),
            "{refused:?}"
        );
        assert_eq!(sends(&w), 1);
    }
}
