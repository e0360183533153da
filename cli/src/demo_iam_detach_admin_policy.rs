//! The demo's iam-detach-admin-policy part: a customer managed policy allowing every action on
//! every resource, held by a group and a role, made in the emulator; the committed IAM.1
//! finding replayed against it (hygiene: held for approval, then approved as the demo
//! operator); and the policy's holders read again.

use anyhow::{anyhow, Context, Result};
use iam_disable_access_key::aws_sdk_iam;
use reflex_shared::Setup;
use serde_json::Value;

const FUNCTION: &str = "iam-detach-admin-policy";
/// Compiled in: the demo runs wherever the binary is, not only beside the sources.
const SAMPLE: &str =
    include_str!("../../events/iam-detach-admin-policy/securityhub-iam.1-full-admin-policy.json");
const SAMPLE_NAME: &str = "iam-detach-admin-policy/securityhub-iam.1-full-admin-policy.json";
/// What the committed sample names; the demo swaps in the policy it makes.
const SAMPLE_POLICY_ARN: &str = "arn:aws:iam::123456789012:policy/ops/legacy-admin";
const SAMPLE_POLICY_ID: &str = "ANPAZ3EXAMPLEPOLICY42";
const ADMIN: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;

pub async fn show(setup: &Setup) -> Result<()> {
    let iam = aws_sdk_iam::Client::new(&setup.sdk);
    let suffix = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
    let made = iam
        .create_policy()
        .policy_name(format!("reflex-demo-legacy-admin-{suffix}"))
        .path("/ops/")
        .policy_document(ADMIN)
        .send()
        .await?;
    let policy = made.policy().context("CreatePolicy made no policy")?;
    let (arn, id) = (
        policy.arn().context("no policy ARN")?.to_string(),
        policy.policy_id().context("no policy id")?.to_string(),
    );
    let group = format!("reflex-demo-admins-{suffix}");
    iam.create_group().group_name(&group).send().await?;
    iam.attach_group_policy()
        .group_name(&group)
        .policy_arn(&arn)
        .send()
        .await?;
    let role = format!("reflex-demo-deploy-{suffix}");
    iam.create_role()
        .role_name(&role)
        .assume_role_policy_document(r#"{"Version":"2012-10-17","Statement":[]}"#)
        .send()
        .await?;
    iam.attach_role_policy()
        .role_name(&role)
        .policy_arn(&arn)
        .send()
        .await?;
    println!("\niam-detach-admin-policy: policy {arn} allows * on *, held by:");
    show_holders(&iam, &arn).await?;

    let mut event: Value = serde_json::from_str(
        &SAMPLE
            .replace(SAMPLE_POLICY_ARN, &arn)
            .replace(SAMPLE_POLICY_ID, &id),
    )
    .context("the committed sample is JSON")?;
    // A finding id of this policy's own: a second run of the demo is a new finding.
    let finding_id = event["detail"]["findings"][0]["Id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    event["detail"]["findings"][0]["Id"] = Value::from(format!("{finding_id}-{suffix}"));
    let raw = serde_json::to_vec(&event)?;

    let function = crate::functions::build(FUNCTION, setup)
        .ok_or_else(|| anyhow!("{FUNCTION} is not in the registry"))?;
    println!("\nReplaying {SAMPLE_NAME} (IAM.1), as Lambda would:\n");
    crate::demo::replay_approving(
        setup,
        function.as_ref(),
        SAMPLE_NAME,
        &raw,
        "demo-iam-detach-admin-policy",
    )
    .await?;

    println!("\nThe policy's holders now (a fresh read):");
    show_holders(&iam, &arn).await
}

async fn show_holders(iam: &aws_sdk_iam::Client, arn: &str) -> Result<()> {
    let out = iam
        .list_entities_for_policy()
        .policy_arn(arn)
        .send()
        .await?;
    let rows: Vec<String> = out
        .policy_groups()
        .iter()
        .filter_map(|g| g.group_name().map(|n| format!("group {n}")))
        .chain(
            out.policy_roles()
                .iter()
                .filter_map(|r| r.role_name().map(|n| format!("role  {n}"))),
        )
        .chain(
            out.policy_users()
                .iter()
                .filter_map(|u| u.user_name().map(|n| format!("user  {n}"))),
        )
        .collect();
    if rows.is_empty() {
        println!("  (nobody)");
    }
    for row in rows {
        println!("  {row}");
    }
    Ok(())
}
