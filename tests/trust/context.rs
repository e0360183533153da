//! Context-aware modes, exemptions with an owner and an end, and the approval tier, through the
//! real pipeline against the local AWS emulator: the tags are the ones the pipeline reads beside
//! the claim, and each record names the rule that chose what happened.

use ::iam_contain_principal::IamContainPrincipal;
use ::sg_revoke_open_ingress::SgRevokeOpenIngress;
use chrono::{Duration, Utc};
use reflex_shared::pipeline::{self, Handled};
use reflex_shared::policy::Mode;
use reflex_shared::remediation::Remediation;
use reflex_shared::status::{Reason, Status};
use reflex_tests::common::Subject;
use reflex_tests::iam_contain_principal::{
    console_login, event_for, function, user, Made, LOGIN, PATH,
};
use reflex_tests::*;
use s3_block_public_access::BlockConfig;

const S3_8: &str = "s3-block-public-access/securityhub-s3.8-imported.json";
const APPROVER: &str = "arn:aws:iam::123456789012:user/approver";

/// The one outcome of delivering `event` to the function `f`.
async fn one<R: Remediation>(h: &Harness, f: &R, event: serde_json::Value) -> Handled {
    h.deliver_to(f, event).await.expect("handled").remove(0)
}

/// A day relative to today (UTC), as a policy or a tag writes it.
fn day(offset: i64) -> String {
    (Utc::now() + Duration::days(offset))
        .format("%Y-%m-%d")
        .to_string()
}

#[tokio::test]
async fn a_prod_tag_chooses_approve_and_the_record_names_the_rule() {
    let h = Harness::with_policy(
        "version: 1\nremediations:\n  s3-block-public-access:\n    mode: enforce\n    overrides:\n      - match: {tags: {environment: prod}}\n        set: {mode: approve}",
    )
    .await;
    let prod = h.bucket(Some(ALL_OFF), &[("environment", "prod")]).await;
    let dev = h.bucket(Some(ALL_OFF), &[("environment", "dev")]).await;

    let held = h.deliver_one(sample_for(S3_8, &prod)).await;
    assert_eq!(
        (held.status, held.reason, held.mode),
        (
            Status::PendingApproval,
            Reason::AwaitingApproval,
            Some(Mode::Approve)
        ),
        "{held:?}"
    );
    assert!(
        held.detail.contains(
            "approve mode by remediations.s3-block-public-access.overrides[0] (tag environment=prod)"
        ),
        "{}",
        held.detail
    );
    assert_eq!(h.pab(&prod).await, Some(ALL_OFF), "nothing changed yet");
    assert!(h.calls.writes().is_empty(), "{:?}", h.calls.writes());

    // The approval it waits for carries out the plan shown.
    let f = <s3_block_public_access::S3BlockPublicAccess as Subject>::new(&h);
    let o = pipeline::approve(&h.setup, &f, &held.record_id, APPROVER)
        .await
        .unwrap();
    assert_eq!(o.status, Status::Succeeded, "{o:?}");
    assert_eq!(h.pab(&prod).await, Some(BlockConfig::ALL_ON));
    assert_eq!(
        h.record(&held.record_id).await.approved_by.as_deref(),
        Some(APPROVER)
    );

    // Another environment: the remediation's own enforce.
    let o = h.deliver_one(sample_for(S3_8, &dev)).await;
    assert_eq!(
        (o.status, o.mode),
        (Status::Succeeded, Some(Mode::Enforce)),
        "{o:?}"
    );
    assert_eq!(h.pab(&dev).await, Some(BlockConfig::ALL_ON));
}

/// moto, like AWS, refuses a caller's `aws:` tags on a bucket, but keeps them on EC2 resources:
/// a security group carries the stack tag CloudFormation would have put there.
#[tokio::test]
async fn an_iac_owned_resource_waits_for_approval_under_enforce() {
    const STACK: (&str, &str) = ("aws:cloudformation:stack-name", "web");
    let enforce = "version: 1\nremediations:\n  sg-revoke-open-ingress: {mode: enforce}";
    let h = Harness::with_policy(enforce).await;
    let f = <SgRevokeOpenIngress as Subject>::new(&h);
    let group = SgRevokeOpenIngress::noncompliant(&h, &[STACK]).await;

    let o = one(&h, &f, SgRevokeOpenIngress::event(&group)).await;
    assert_eq!(
        (o.status, o.mode),
        (Status::PendingApproval, Some(Mode::Approve)),
        "{o:?}"
    );
    assert!(
        o.detail.contains("iac: tag aws:cloudformation:stack-name=web (approve over enforce by remediations.sg-revoke-open-ingress)"),
        "{}",
        o.detail
    );
    assert!(!SgRevokeOpenIngress::fixed(&h, &group).await);
    assert!(h.calls.writes().is_empty(), "{:?}", h.calls.writes());

    // The policy switches it off: enforced like any other resource.
    let h = Harness::with_policy(&format!("{enforce}\niac: {{mode: enforce}}")).await;
    let f = <SgRevokeOpenIngress as Subject>::new(&h);
    let group = SgRevokeOpenIngress::noncompliant(&h, &[STACK]).await;
    let o = one(&h, &f, SgRevokeOpenIngress::event(&group)).await;
    assert_eq!(o.status, Status::Succeeded, "{o:?}");
    assert!(SgRevokeOpenIngress::fixed(&h, &group).await);
}

#[tokio::test]
async fn an_ended_exemption_no_longer_applies_and_one_in_force_skips_naming_itself() {
    let h = Harness::new().await;
    let ended = h.bucket(Some(ALL_OFF), &[]).await;
    let exempt = h.bucket(Some(ALL_OFF), &[]).await;
    let policy = format!(
        "version: 1\nremediations:\n  s3-block-public-access: {{mode: enforce}}\nexemptions:\n  rules:\n    - match: {{arns: ['arn:aws:s3:::{ended}']}}\n      reason: migration window\n      owner: data-team\n      expires: {}\n    - match: {{arns: ['arn:aws:s3:::{exempt}']}}\n      reason: public website, reviewed\n      owner: web-team\n      expires: {}",
        day(-1),
        day(30)
    );
    let h = Harness::with_policy(&policy).await;

    let o = h.deliver_one(sample_for(S3_8, &ended)).await;
    assert_eq!(o.status, Status::Succeeded, "{o:?}");
    assert!(
        o.detail.contains(&format!(
            "exemptions.rules[0] (owner data-team, until {}): migration window ended and no longer applies",
            day(-1)
        )),
        "{}",
        o.detail
    );
    assert_eq!(h.pab(&ended).await, Some(BlockConfig::ALL_ON));

    let o = h.deliver_one(sample_for(S3_8, &exempt)).await;
    assert_eq!(
        (o.status, o.reason),
        (Status::Skipped, Reason::Exempt),
        "{o:?}"
    );
    assert_eq!(
        o.detail,
        format!(
            "arn:aws:s3:::{exempt} is exempt by exemptions.rules[1] (owner web-team, until {}): public website, reviewed",
            day(30)
        )
    );
    assert_eq!(h.pab(&exempt).await, Some(ALL_OFF));
    assert_eq!(
        h.calls.count("PutPublicAccessBlock"),
        1,
        "only the ended one"
    );
}

#[tokio::test]
async fn the_exemption_tag_ends_too_and_a_malformed_one_changes_nothing() {
    let h = Harness::with_policy(
        "version: 1\nremediations:\n  s3-block-public-access: {mode: enforce}",
    )
    .await;
    let until = format!("{};legacy site", day(-1));
    let ended = h
        .bucket(Some(ALL_OFF), &[("reflex:exempt", until.as_str())])
        .await;
    let until = format!("{};legacy site", day(3));
    let exempt = h
        .bucket(Some(ALL_OFF), &[("reflex:exempt", until.as_str())])
        .await;
    let malformed = h
        .bucket(Some(ALL_OFF), &[("reflex:exempt", "until next week")])
        .await;

    let o = h.deliver_one(sample_for(S3_8, &ended)).await;
    assert_eq!(o.status, Status::Succeeded, "{o:?}");
    assert!(
        o.detail.contains("the exemption tag reflex:exempt"),
        "{}",
        o.detail
    );
    assert!(
        o.detail.contains("ended and no longer applies"),
        "{}",
        o.detail
    );

    let o = h.deliver_one(sample_for(S3_8, &exempt)).await;
    assert_eq!(
        (o.status, o.reason),
        (Status::Skipped, Reason::Exempt),
        "{o:?}"
    );
    assert_eq!(
        o.detail,
        format!(
            "exempt by the exemption tag reflex:exempt (until {}): \"legacy site\"",
            day(3)
        )
    );

    // A malformed tag exempts nothing and acts on nothing by itself: a person approves.
    let o = h.deliver_one(sample_for(S3_8, &malformed)).await;
    assert_eq!(
        (o.status, o.reason),
        (Status::PendingApproval, Reason::AwaitingApproval),
        "{o:?}"
    );
    assert!(o.detail.contains("is malformed"), "{}", o.detail);
    assert!(
        o.detail
            .contains("it exempts nothing, so the fix waits for approval"),
        "{}",
        o.detail
    );
    assert_eq!(h.pab(&exempt).await, Some(ALL_OFF));
    assert_eq!(h.pab(&malformed).await, Some(ALL_OFF));
    assert_eq!(
        h.calls.count("PutPublicAccessBlock"),
        1,
        "only the ended one"
    );
}

/// A world under `policy`, and a user with a console password.
async fn with_console_password(policy: &str) -> (Harness, IamContainPrincipal, Made) {
    let h = Harness::with_policy(policy).await;
    let f = function(&h);
    let u = user(&h, PATH, true, &[]).await;
    (h, f, u)
}

/// Deleting a console password cannot be undone: under enforce the fix waits for approval,
/// unless the policy opts iam-contain-principal out by name.
#[tokio::test]
async fn an_irreversible_step_waits_for_approval_under_enforce_unless_opted_out() {
    let (h, f, u) = with_console_password(
        "version: 1\nremediations:\n  iam-contain-principal: {mode: enforce}",
    )
    .await;
    let held = one(&h, &f, event_for(LOGIN, &u, "-tier")).await;
    assert_eq!(
        (held.status, held.mode),
        (Status::PendingApproval, Some(Mode::Approve)),
        "{held:?}"
    );
    assert!(
        held.detail.contains("the approval tier: iam:DeleteLoginProfile cannot be undone, so it waits for approval over enforce by remediations.iam-contain-principal"),
        "{}",
        held.detail
    );
    assert!(
        console_login(&h, &u.name).await,
        "the password is still there"
    );
    assert!(h.calls.writes().is_empty(), "{:?}", h.calls.writes());
    // Approved, it acts.
    let o = pipeline::approve(&h.setup, &f, &held.record_id, APPROVER)
        .await
        .unwrap();
    assert_eq!(o.status, Status::Succeeded, "{o:?}");
    assert!(!console_login(&h, &u.name).await);

    // A user with no console password: nothing irreversible, enforced at once.
    let quiet = user(&h, PATH, false, &[]).await;
    let o = one(&h, &f, event_for(LOGIN, &quiet, "-tier-none")).await;
    assert_eq!(
        (o.status, o.mode),
        (Status::Succeeded, Some(Mode::Enforce)),
        "{o:?}"
    );

    // Opted out by name: enforce carries it out.
    let (h, f, u) = with_console_password(
        "version: 1\nremediations:\n  iam-contain-principal: {mode: enforce, approve_irreversible: false}",
    )
    .await;
    let o = one(&h, &f, event_for(LOGIN, &u, "-tier-out")).await;
    assert_eq!(o.status, Status::Succeeded, "{o:?}");
    assert!(!console_login(&h, &u.name).await);

    // Dry-run stays dry-run.
    let (h, f, u) = with_console_password(
        "version: 1\nremediations:\n  iam-contain-principal: {mode: dry-run}",
    )
    .await;
    let o = one(&h, &f, event_for(LOGIN, &u, "-tier-dry")).await;
    assert_eq!(
        (o.status, o.mode),
        (Status::DryRun, Some(Mode::DryRun)),
        "{o:?}"
    );
    assert!(console_login(&h, &u.name).await);
}
