//! iam-detach-admin-policy end to end against the emulator, through the real IAM SDK: each test
//! makes its own policies and principals (unique names). moto's IAM lists a policy's holders,
//! keeps its versions, and attaches and detaches as AWS does: nothing is mocked here.

use iam_detach_admin_policy::{AdminStep, IamDetachAdminPolicy};
use reflex_shared::pipeline::{self, Handled};
use reflex_shared::policy::Policy as ReflexPolicy;
use reflex_shared::principal::PrincipalKind;
use reflex_shared::status::{Reason, Status};
use reflex_tests::iam_detach_admin_policy::{
    attached_to_user, event_for, holders, policy, principal, ADMIN, CONFIG, CONFIG_IDENTIFIER,
    CONFIG_RULE, IAM1, IAM1_CUSTOM_ACTION, IAM2, READ_ONLY,
};
use reflex_tests::iam_disable_access_key::logged_iam;
use reflex_tests::{common_cases, Harness, HarnessOptions};
use serde_json::{json, Value};

common_cases!(IamDetachAdminPolicy);

const BREAKGLASS: &str = "arn:aws:iam::*:user/breakglass/*";

struct World {
    h: Harness,
    f: IamDetachAdminPolicy,
}

async fn world(policy: &str) -> World {
    let h = Harness::with(HarnessOptions {
        policy: ReflexPolicy::from_yaml(policy),
        ..Default::default()
    })
    .await;
    let f = IamDetachAdminPolicy::from_client(logged_iam(&h, None));
    World { h, f }
}

impl World {
    async fn deliver(&self, event: Value) -> Handled {
        self.h
            .deliver_to(&self.f, event)
            .await
            .expect("handled")
            .remove(0)
    }
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[tokio::test]
async fn detached_from_two_holders_and_kept_on_a_protected_one() {
    let w = world(&format!(
        "version: 1\nremediations:\n  iam-detach-admin-policy: {{mode: enforce}}\nexemptions:\n  protected_principals: ['{BREAKGLASS}']"
    ))
    .await;
    let p = policy(&w.h, ADMIN, &[]).await;
    let group = principal(&w.h, PrincipalKind::Group, "/teams/", &[&p]).await;
    let role = principal(&w.h, PrincipalKind::Role, "/svc/", &[&p]).await;
    let kept = principal(&w.h, PrincipalKind::User, "/breakglass/", &[&p]).await;
    assert!(kept.arn.contains(":user/breakglass/"), "{}", kept.arn);
    let o = w.deliver(event_for(IAM1, Some(&p), None, "-two")).await;
    assert_eq!(
        (o.status, o.reason),
        (Status::Succeeded, Reason::Remediated),
        "{o:?}"
    );
    assert_eq!(
        holders(&w.h, &p.arn).await,
        std::slice::from_ref(&kept.name)
    );
    // The record names the holder it kept, and why.
    assert!(
        o.detail.contains("left as it is")
            && o.detail.contains(&kept.arn)
            && o.detail.contains(BREAKGLASS),
        "{}",
        o.detail
    );
    let r = w.h.record(&o.record_id).await;
    assert_eq!(r.resource_arn.as_deref(), Some(p.arn.as_str()));
    assert_eq!(r.resource_identity.as_deref(), Some(p.id.as_str()));
    assert_eq!(r.verified, Some(true));
    let apis = sorted(r.actions.iter().map(|a| a.api.clone()).collect());
    assert_eq!(apis, ["iam:DetachGroupPolicy", "iam:DetachRolePolicy"]);
    let detached: Vec<String> = r
        .actions
        .iter()
        .map(|a| {
            serde_json::from_value::<AdminStep>(a.step.clone().unwrap())
                .unwrap()
                .holder()
                .id
                .clone()
        })
        .collect();
    assert_eq!(
        sorted(detached),
        sorted(vec![group.id.clone(), role.id.clone()])
    );
    assert_eq!(
        sorted(w.h.calls.writes()),
        ["DetachGroupPolicy", "DetachRolePolicy"]
    );

    // Rollback attaches exactly the two again.
    let until = chrono::Utc::now() + chrono::Duration::hours(1);
    let rolled = pipeline::rollback(
        &w.h.setup,
        &w.f,
        &o.record_id,
        "arn:aws:iam::123456789012:user/operator",
        false,
        until,
    )
    .await
    .unwrap();
    assert_eq!(rolled.status, Status::RolledBack, "{rolled:?}");
    assert_eq!(
        holders(&w.h, &p.arn).await,
        sorted(vec![group.name, role.name, kept.name])
    );
}

#[tokio::test]
async fn a_protected_user_with_a_path_is_untouched_under_iam2() {
    let w = world(&format!(
        "version: 1\nremediations:\n  iam-detach-admin-policy: {{mode: enforce}}\nexemptions:\n  protected_principals: ['{BREAKGLASS}']"
    ))
    .await;
    let p = policy(&w.h, ADMIN, &[]).await;
    let user = principal(&w.h, PrincipalKind::User, "/breakglass/", &[&p]).await;
    let o = w
        .deliver(event_for(IAM2, None, Some(&user.arn), "-bg"))
        .await;
    assert_eq!(
        (o.status, o.reason),
        (Status::Skipped, Reason::Protected),
        "{o:?}"
    );
    assert_eq!(
        attached_to_user(&w.h, &user.name).await,
        std::slice::from_ref(&p.name)
    );
    assert!(w.h.calls.writes().is_empty(), "{:?}", w.h.calls.calls());
}

#[tokio::test]
async fn iam2_waits_for_approval_then_detaches_only_the_full_admin_policy() {
    let w = world("version: 1").await;
    let admin = policy(&w.h, ADMIN, &[]).await;
    let read = policy(&w.h, READ_ONLY, &[]).await;
    let user = principal(&w.h, PrincipalKind::User, "/", &[&admin, &read]).await;
    let held = w
        .deliver(event_for(IAM2, None, Some(&user.arn), "-iam2"))
        .await;
    assert_eq!(
        (held.status, held.reason),
        (Status::PendingApproval, Reason::AwaitingApproval),
        "{held:?}"
    );
    assert!(
        held.detail
            .contains(&format!("{} stays attached", read.name)),
        "{}",
        held.detail
    );
    let by = "arn:aws:iam::123456789012:user/approver";
    let o = pipeline::approve(&w.h.setup, &w.f, &held.record_id, by)
        .await
        .unwrap();
    assert_eq!(o.status, Status::Succeeded, "{o:?}");
    assert_eq!(
        attached_to_user(&w.h, &user.name).await,
        std::slice::from_ref(&read.name)
    );
    assert_eq!(w.h.calls.writes(), ["DetachUserPolicy"]);
    let r = w.h.record(&held.record_id).await;
    assert_eq!(r.resource_arn.as_deref(), Some(user.arn.as_str()));
    assert_eq!(r.resource_identity.as_deref(), Some(user.id.as_str()));
}

#[tokio::test]
async fn the_config_rule_names_the_policy_by_its_id() {
    let w = world("version: 1\nremediations:\n  iam-detach-admin-policy: {mode: enforce}").await;
    w.h.managed_config_rule(CONFIG_RULE, CONFIG_IDENTIFIER)
        .await;
    let p = policy(&w.h, ADMIN, &[]).await;
    let user = principal(&w.h, PrincipalKind::User, "/", &[&p]).await;
    let o = w.deliver(event_for(CONFIG, Some(&p), None, "")).await;
    assert_eq!(o.status, Status::Succeeded, "{o:?}");
    assert!(holders(&w.h, &p.arn).await.is_empty());
    assert!(attached_to_user(&w.h, &user.name).await.is_empty());
}

#[tokio::test]
async fn remediate_on_iam1_and_a_policy_that_is_no_longer_full_admin() {
    let w = world("version: 1\nremediations:\n  iam-detach-admin-policy: {mode: enforce}").await;
    let p = policy(&w.h, ADMIN, &[]).await;
    let role = principal(&w.h, PrincipalKind::Role, "/", &[&p]).await;
    let mut e = event_for(IAM1_CUSTOM_ACTION, Some(&p), None, "-ca");
    e["time"] = json!(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    let o = w.deliver(e).await;
    assert_eq!(o.status, Status::Succeeded, "{o:?}");
    assert!(
        holders(&w.h, &p.arn).await.is_empty(),
        "{} still holds it",
        role.name
    );

    // A policy whose default version no longer allows `*` on `*`: nothing to detach.
    let tamed = policy(&w.h, READ_ONLY, &[]).await;
    let user = principal(&w.h, PrincipalKind::User, "/", &[&tamed]).await;
    let o = w
        .deliver(event_for(IAM1, Some(&tamed), None, "-tamed"))
        .await;
    assert_eq!(
        (o.status, o.reason),
        (Status::Skipped, Reason::AlreadyCompliant),
        "{o:?}"
    );
    assert_eq!(attached_to_user(&w.h, &user.name).await, [tamed.name]);
}

#[tokio::test]
async fn the_demo_detaches_the_samples_policy() {
    let h = Harness::new().await;
    reflex_cli::demo_iam_detach_admin_policy::show(&h.setup)
        .await
        .expect("the demo runs");
    let records = h
        .setup
        .ledger
        .query(
            reflex_shared::ledger::Lookup::Remediation("iam-detach-admin-policy"),
            None,
        )
        .await
        .unwrap();
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0].status, Status::Succeeded, "{:?}", records[0]);
    assert_eq!(records[0].actions.len(), 2, "{:?}", records[0].actions);
    let arn = records[0].resource_arn.clone().unwrap();
    assert!(holders(&h, &arn).await.is_empty());
}
