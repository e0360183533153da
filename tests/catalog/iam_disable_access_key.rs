//! iam-disable-access-key end to end against the emulator, through the real IAM SDK: each test
//! makes IAM users of its own (unique names). moto's IAM answers GetAccessKeyLastUsed (with the
//! key's user), GetUser (ARN with path, unique id), ListAccessKeys, ListUserTags and
//! UpdateAccessKey as AWS does; what it cannot do is hold an old key, so the IAM.3 and IAM.8
//! tests move dates into the past with an interceptor (`KeyDates`, see its module).

use iam_disable_access_key::{IamDisableAccessKey, KeyStep, KeyTarget, Rule};
use reflex_shared::pipeline::{self, Handled, PipelineError};
use reflex_shared::policy::Policy;
use reflex_shared::status::{Reason, Status};
use reflex_tests::iam_disable_access_key::{
    event_for, logged_iam, set_status, statuses, user, Dates, KeyDates, User, EXFILTRATION, IAM3,
    IAM8, IAM8_CUSTOM_ACTION, MALICIOUS_IP, ROLE_SESSION, SH_MALICIOUS_IP, TOR,
};
use reflex_tests::{common_cases, Harness, HarnessOptions};
use serde_json::{json, Value};

common_cases!(IamDisableAccessKey);

/// The protected-principals pattern of the acceptance case: break-glass users, by path.
pub const BREAKGLASS: &str = "arn:aws:iam::*:user/breakglass/*";

struct World {
    h: Harness,
    f: IamDisableAccessKey,
    dates: KeyDates,
}

async fn world(policy: &str) -> World {
    let h = Harness::with(HarnessOptions {
        policy: Policy::from_yaml(policy),
        ..Default::default()
    })
    .await;
    let dates = KeyDates::default();
    let f = IamDisableAccessKey::from_client(logged_iam(&h, Some(&dates)));
    World { h, f, dates }
}

impl World {
    async fn deliver(&self, event: Value) -> Handled {
        self.h
            .deliver_to(&self.f, event)
            .await
            .expect("handled")
            .remove(0)
    }

    async fn statuses(&self, u: &User) -> Vec<bool> {
        let live = statuses(&self.h, &u.name).await;
        u.keys.iter().map(|k| live[k]).collect()
    }

    async fn rollback(&self, record_id: &str) -> Result<Handled, PipelineError> {
        let until = chrono::Utc::now() + chrono::Duration::hours(1);
        pipeline::rollback(
            &self.h.setup,
            &self.f,
            record_id,
            "arn:aws:iam::123456789012:user/operator",
            false,
            until,
        )
        .await
    }
}

fn steps(r: &reflex_shared::ledger::OutcomeRecord) -> Vec<KeyStep> {
    r.actions
        .iter()
        .map(|a| serde_json::from_value(a.step.clone().unwrap()).unwrap())
        .collect()
}

#[tokio::test]
async fn two_keys_the_named_one_disabled_and_rollback_reactivates_only_it() {
    let w = world("version: 1").await;
    let u = user(&w.h, "/", 2, &[]).await;
    let (named, other) = (&u.keys[0], &u.keys[1]);
    let o = w.deliver(event_for(MALICIOUS_IP, &u, named, "-two")).await;
    // A threat finding: enforced by medium risk's default.
    assert_eq!(
        (o.status, o.reason),
        (Status::Succeeded, Reason::Remediated),
        "{o:?}"
    );
    assert_eq!(
        w.statuses(&u).await,
        [false, true],
        "the other key stays active"
    );
    let r = w.h.record(&o.record_id).await;
    assert_eq!(r.resource_arn.as_deref(), Some(u.arn.as_str()));
    assert_eq!(r.resource_identity.as_deref(), Some(u.id.as_str()));
    assert_eq!(r.verified, Some(true));
    assert_eq!(r.actions.len(), 1);
    assert_eq!(r.actions[0].api, "iam:UpdateAccessKey");
    assert_eq!(r.actions[0].parameters["AccessKeyId"], json!(named));
    assert_eq!(r.actions[0].parameters["Status"], json!("Inactive"));
    let t: KeyTarget = serde_json::from_value(r.target.clone().unwrap()).unwrap();
    assert_eq!(
        t.rule,
        Rule::Named {
            access_key_id: named.clone()
        }
    );
    assert_eq!(
        (t.user_id.as_str(), t.user_arn.as_str()),
        (u.id.as_str(), u.arn.as_str())
    );
    assert_eq!(w.h.calls.writes(), ["UpdateAccessKey"]);

    // Meanwhile the owner sets the other key inactive too: the rollback gives back exactly
    // the key the fix disabled, and leaves the owner's own change alone.
    set_status(&w.h, &u, other, false).await;
    let rolled = w.rollback(&o.record_id).await.unwrap();
    assert_eq!(rolled.status, Status::RolledBack, "{rolled:?}");
    assert_eq!(w.statuses(&u).await, [true, false]);
    assert_eq!(w.h.calls.writes(), ["UpdateAccessKey", "UpdateAccessKey"]);
}

#[tokio::test]
async fn a_role_sessions_asia_key_is_not_applicable_and_points_to_iam_contain_principal() {
    let w = world("version: 1").await;
    let u = user(&w.h, "/", 1, &[]).await;
    // The committed sample: instance credentials (ASIA…) used outside AWS.
    let o = w
        .deliver(event_for(ROLE_SESSION, &u, &u.keys[0], "-asia"))
        .await;
    assert_eq!(
        (o.status, o.reason),
        (Status::Skipped, Reason::NotApplicable),
        "{o:?}"
    );
    assert!(o.detail.contains("ASIAZ3EXAMPLESESS042"), "{}", o.detail);
    assert!(
        o.detail
            .contains("a role session: see iam-contain-principal"),
        "{}",
        o.detail
    );
    // Decided from the finding alone: not one IAM call, and every key as it was.
    assert!(w.h.calls.calls().is_empty(), "{:?}", w.h.calls.calls());
    assert_eq!(w.statuses(&u).await, [true]);
}

#[tokio::test]
async fn a_protected_user_with_a_path_is_untouched() {
    let policy = format!("version: 1\nexemptions:\n  protected_principals: ['{BREAKGLASS}']");
    let w = world(&policy).await;
    let u = user(&w.h, "/breakglass/", 1, &[]).await;
    assert!(u.arn.contains(":user/breakglass/"), "{}", u.arn);
    let o = w
        .deliver(event_for(MALICIOUS_IP, &u, &u.keys[0], "-bg"))
        .await;
    assert_eq!(
        (o.status, o.reason),
        (Status::Skipped, Reason::Protected),
        "{o:?}"
    );
    assert!(o.detail.contains(BREAKGLASS), "{}", o.detail);
    assert_eq!(w.statuses(&u).await, [true]);
    assert!(w.h.calls.writes().is_empty(), "{:?}", w.h.calls.calls());

    // The same user's stale key under IAM.3, approved: still untouched.
    w.dates.set(
        &u.keys[0],
        Dates {
            created_days_ago: Some(400),
            used_days_ago: None,
        },
    );
    let o = w.deliver(event_for(IAM3, &u, &u.keys[0], "-bg3")).await;
    assert_eq!(
        (o.status, o.reason),
        (Status::Skipped, Reason::Protected),
        "{o:?}"
    );
    assert_eq!(w.statuses(&u).await, [true]);
    assert!(w.h.calls.writes().is_empty(), "{:?}", w.h.calls.calls());
}

#[tokio::test]
async fn a_finding_naming_another_principal_is_not_acted_on() {
    let w = world("version: 1").await;
    let u = user(&w.h, "/", 1, &[]).await;
    let mut e = event_for(MALICIOUS_IP, &u, &u.keys[0], "-other");
    e["detail"]["resource"]["accessKeyDetails"]["principalId"] = json!("AIDAZ3SOMEONEELSE0001");
    let o = w.deliver(e).await;
    assert_eq!(
        (o.status, o.reason),
        (Status::Skipped, Reason::Unconfirmed),
        "{o:?}"
    );
    assert!(
        o.detail.contains("AIDAZ3SOMEONEELSE0001") && o.detail.contains(&u.id),
        "{}",
        o.detail
    );
    assert_eq!(w.statuses(&u).await, [true]);
    assert!(w.h.calls.writes().is_empty());
}

#[tokio::test]
async fn the_user_is_iams_answer_never_the_payloads() {
    let w = world("version: 1").await;
    let owner = user(&w.h, "/team/", 1, &[]).await;
    let bystander = user(&w.h, "/", 1, &[]).await;
    // The payload names the bystander by name; the key is the owner's, and so is the id.
    let mut e = event_for(MALICIOUS_IP, &owner, &owner.keys[0], "-payload");
    e["detail"]["resource"]["accessKeyDetails"]["userName"] = json!(bystander.name);
    let o = w.deliver(e).await;
    assert_eq!(o.status, Status::Succeeded, "{o:?}");
    let r = w.h.record(&o.record_id).await;
    assert_eq!(r.resource_arn.as_deref(), Some(owner.arn.as_str()));
    assert_eq!(w.statuses(&owner).await, [false]);
    assert_eq!(w.statuses(&bystander).await, [true]);
}

#[tokio::test]
async fn every_guardduty_trigger_kind_disables_the_named_key() {
    // Straight from GuardDuty (three families), and GuardDuty's finding through Security Hub.
    for path in [MALICIOUS_IP, TOR, EXFILTRATION, SH_MALICIOUS_IP] {
        let w = world("version: 1").await;
        let u = user(&w.h, "/", 2, &[]).await;
        let o = w.deliver(event_for(path, &u, &u.keys[1], "-kind")).await;
        assert_eq!(
            (o.status, o.reason),
            (Status::Succeeded, Reason::Remediated),
            "{path}: {o:?}"
        );
        assert_eq!(w.statuses(&u).await, [true, false], "{path}");
    }
}

#[tokio::test]
async fn a_key_deleted_since_the_finding_is_gone() {
    let w = world("version: 1").await;
    let u = user(&w.h, "/", 1, &[]).await;
    reflex_tests::iam_disable_access_key::observer(&w.h)
        .delete_access_key()
        .user_name(&u.name)
        .access_key_id(&u.keys[0])
        .send()
        .await
        .unwrap();
    let o = w
        .deliver(event_for(MALICIOUS_IP, &u, &u.keys[0], "-gone"))
        .await;
    assert_eq!(
        (o.status, o.reason),
        (Status::Skipped, Reason::ResourceGone),
        "{o:?}"
    );
    assert!(w.h.calls.writes().is_empty());
}

#[tokio::test]
async fn iam3_waits_for_approval_then_disables_only_the_stale_key() {
    let w = world("version: 1").await;
    let u = user(&w.h, "/", 2, &[]).await;
    let (stale, fresh) = (&u.keys[0], &u.keys[1]);
    w.dates.set(
        stale,
        Dates {
            created_days_ago: Some(120),
            used_days_ago: Some(1),
        },
    );
    w.dates.set(
        fresh,
        Dates {
            created_days_ago: Some(10),
            used_days_ago: Some(1),
        },
    );
    let held = w.deliver(event_for(IAM3, &u, stale, "-iam3")).await;
    // A hygiene control: medium risk's default holds it for approval.
    assert_eq!(
        (held.status, held.reason),
        (Status::PendingApproval, Reason::AwaitingApproval),
        "{held:?}"
    );
    assert_eq!(w.statuses(&u).await, [true, true]);
    let shown = steps(&w.h.record(&held.record_id).await);
    assert_eq!(shown.len(), 1);
    assert_eq!(shown[0].access_key_id(), stale);
    let KeyStep::Deactivate { why, .. } = &shown[0] else {
        panic!("{shown:?}")
    };
    assert!(
        why.contains("120 days ago") && why.contains("IAM.3"),
        "{why}"
    );
    let by = "arn:aws:iam::123456789012:user/approver";
    let o = pipeline::approve(&w.h.setup, &w.f, &held.record_id, by)
        .await
        .unwrap();
    assert_eq!(o.status, Status::Succeeded, "{o:?}");
    assert_eq!(w.statuses(&u).await, [false, true]);
    // IAM.3 reads no last-use dates: they change with every use, and would make an approval
    // ask again for nothing.
    assert_eq!(w.h.calls.count("GetAccessKeyLastUsed"), 0);
    let rolled = w.rollback(&held.record_id).await.unwrap();
    assert_eq!(rolled.status, Status::RolledBack, "{rolled:?}");
    assert_eq!(w.statuses(&u).await, [true, true]);
}

#[tokio::test]
async fn iam8_disables_only_the_unused_key_and_leaves_the_password_named() {
    let w = world("version: 1\nremediations:\n  iam-disable-access-key: {mode: enforce}").await;
    let u = user(&w.h, "/", 2, &[]).await;
    let (unused, used) = (&u.keys[0], &u.keys[1]);
    // Unused for 100 days; the other made 400 days ago but used yesterday.
    w.dates.set(
        unused,
        Dates {
            created_days_ago: Some(400),
            used_days_ago: Some(100),
        },
    );
    w.dates.set(
        used,
        Dates {
            created_days_ago: Some(400),
            used_days_ago: Some(1),
        },
    );
    let o = w.deliver(event_for(IAM8, &u, unused, "-iam8")).await;
    assert_eq!(o.status, Status::Succeeded, "{o:?}");
    assert_eq!(w.statuses(&u).await, [false, true]);
    assert!(o.detail.contains("console password"), "{}", o.detail);
    let r = w.h.record(&o.record_id).await;
    assert_eq!(r.actions.len(), 1);
    assert!(
        r.actions[0].parameters["Reason"]
            .as_str()
            .unwrap()
            .starts_with("last used"),
        "{:?}",
        r.actions[0].parameters
    );
}

#[tokio::test]
async fn iam8_never_used_keys_count_from_their_creation() {
    let w = world("version: 1\nremediations:\n  iam-disable-access-key: {mode: enforce}").await;
    let u = user(&w.h, "/", 2, &[]).await;
    // Never used: one made 200 days ago, one made last week.
    w.dates.set(
        &u.keys[0],
        Dates {
            created_days_ago: Some(200),
            used_days_ago: None,
        },
    );
    w.dates.set(
        &u.keys[1],
        Dates {
            created_days_ago: Some(7),
            used_days_ago: None,
        },
    );
    // "Reflex: remediate" on the IAM.8 finding.
    let mut e = event_for(IAM8_CUSTOM_ACTION, &u, &u.keys[0], "-iam8ca");
    e["time"] = json!(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    let o = w.deliver(e).await;
    assert_eq!(o.status, Status::Succeeded, "{o:?}");
    assert_eq!(w.statuses(&u).await, [false, true]);
}

#[tokio::test]
async fn a_control_finding_with_no_stale_key_is_compliant() {
    let w = world("version: 1\nremediations:\n  iam-disable-access-key: {mode: enforce}").await;
    let u = user(&w.h, "/", 1, &[]).await;
    // moto's key is brand new: nothing breaks IAM.3.
    let o = w.deliver(event_for(IAM3, &u, &u.keys[0], "-fresh")).await;
    assert_eq!(
        (o.status, o.reason),
        (Status::Skipped, Reason::AlreadyCompliant),
        "{o:?}"
    );
    assert!(w.h.calls.writes().is_empty());
}

#[tokio::test]
async fn a_user_created_again_under_the_same_name_is_not_rolled_back() {
    let w = world("version: 1").await;
    let u = user(&w.h, "/", 1, &[]).await;
    let o = w
        .deliver(event_for(MALICIOUS_IP, &u, &u.keys[0], "-again"))
        .await;
    assert_eq!(o.status, Status::Succeeded, "{o:?}");
    let iam = reflex_tests::iam_disable_access_key::observer(&w.h);
    iam.delete_access_key()
        .user_name(&u.name)
        .access_key_id(&u.keys[0])
        .send()
        .await
        .unwrap();
    iam.delete_user().user_name(&u.name).send().await.unwrap();
    iam.create_user().user_name(&u.name).send().await.unwrap();
    let writes = w.h.calls.writes();
    match w.rollback(&o.record_id).await {
        Err(PipelineError::Refused(why)) => assert!(!why.is_empty()),
        other => panic!("another user under the same name must be refused: {other:?}"),
    }
    assert_eq!(w.h.calls.writes(), writes, "nothing was changed");
}

#[tokio::test]
async fn the_demo_disables_the_samples_key_and_keeps_the_other() {
    let h = Harness::new().await;
    reflex_cli::demo_iam_disable_access_key::show(&h.setup)
        .await
        .expect("the demo runs");
    let records = h
        .setup
        .ledger
        .query(
            reflex_shared::ledger::Lookup::Remediation("iam-disable-access-key"),
            None,
        )
        .await
        .unwrap();
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0].status, Status::Succeeded, "{:?}", records[0]);
    let steps = steps(&records[0]);
    assert_eq!(steps.len(), 1, "{steps:?}");
    // The demo's user: its other key is still active.
    let user = steps[0].user_name();
    let live = statuses(&h, user).await;
    assert_eq!(live.len(), 2);
    assert!(!live[steps[0].access_key_id()]);
    assert_eq!(live.values().filter(|active| **active).count(), 1);
}
