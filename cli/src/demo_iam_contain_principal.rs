//! The demo's iam-contain-principal part: a user with a console password in the emulator, the
//! committed "unusual console login" GuardDuty sample replayed against it, held for approval
//! (high risk), approved, and the user read again: Reflex's revocation policy with the moment of
//! acting, and no console password.

use anyhow::{anyhow, Context, Result};
use iam_contain_principal::aws_sdk_iam;
use iam_contain_principal::POLICY_NAME;
use reflex_shared::Setup;
use serde_json::Value;

const FUNCTION: &str = "iam-contain-principal";
/// Compiled in: the demo runs wherever the binary is, not only beside the sources.
const SAMPLE: &str =
    include_str!("../../events/iam-contain-principal/guardduty-console-login-success-b.json");
const SAMPLE_NAME: &str = "iam-contain-principal/guardduty-console-login-success-b.json";
/// The user the committed sample names; the demo swaps in the one it makes.
const SAMPLE_USER: &str = "mallory";
const SAMPLE_USER_ID: &str = "AIDAZ3EXAMPLEUSER5678";

pub async fn show(setup: &Setup) -> Result<()> {
    let setup = &crate::demo_source::without_read_back(setup, FUNCTION);
    let iam = aws_sdk_iam::Client::new(&setup.sdk);
    let (name, user_id) = make_user(&iam).await?;
    println!("\niam-contain-principal: IAM user {name} ({user_id}) with a console password:");
    show_user(&iam, &name).await?;

    // The sample, naming this user by name and unique id; its finding id made this user's own
    // so that a second run of the demo is a new finding, not a duplicate of the first.
    let text = SAMPLE
        .replace(SAMPLE_USER_ID, &user_id)
        .replace(&format!("\"{SAMPLE_USER}\""), &format!("\"{name}\""));
    let mut event: Value = serde_json::from_str(&text).context("the committed sample is JSON")?;
    let id = event["detail"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    event["detail"]["id"] = Value::from(format!("{id}-{name}"));
    let raw = serde_json::to_vec(&event)?;

    let function = crate::functions::build(FUNCTION, setup)
        .ok_or_else(|| anyhow!("{FUNCTION} is not in the registry"))?;
    println!("\nReplaying {SAMPLE_NAME} (an unusual console login), as Lambda would:\n");
    crate::demo::replay_approving(
        setup,
        function.as_ref(),
        SAMPLE_NAME,
        &raw,
        "demo-iam-contain-principal",
    )
    .await?;

    println!("\nThe user now (a fresh read):");
    show_user(&iam, &name).await
}

/// A user under /staff/ with a console password; its name and unique id.
async fn make_user(iam: &aws_sdk_iam::Client) -> Result<(String, String)> {
    let name = format!(
        "mallory-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let user = iam
        .create_user()
        .user_name(&name)
        .path("/staff/")
        .send()
        .await?;
    let user_id = user
        .user()
        .map(|u| u.user_id().to_string())
        .context("CreateUser named no user")?;
    iam.create_login_profile()
        .user_name(&name)
        .password("Demo-Horse-4-Battery")
        .send()
        .await?;
    Ok((name, user_id))
}

/// The user's console password (present or not) and Reflex's revocation policy on it.
async fn show_user(iam: &aws_sdk_iam::Client, name: &str) -> Result<()> {
    let login = iam.get_login_profile().user_name(name).send().await.is_ok();
    println!(
        "  console password: {}",
        if login { "present" } else { "none" }
    );
    match iam
        .get_user_policy()
        .user_name(name)
        .policy_name(POLICY_NAME)
        .send()
        .await
    {
        Ok(out) => {
            let document = iam_contain_principal::document::decode(out.policy_document())
                .map_err(|e| anyhow!(e))?;
            let cutoff =
                &document["Statement"][0]["Condition"]["DateLessThan"]["aws:TokenIssueTime"];
            println!(
                "  inline policy {POLICY_NAME}: {} {} for sessions issued before {}",
                document["Statement"][0]["Effect"].as_str().unwrap_or("?"),
                document["Statement"][0]["Action"].as_str().unwrap_or("?"),
                cutoff.as_str().unwrap_or("?")
            );
        }
        Err(_) => println!("  inline policy {POLICY_NAME}: none"),
    }
    Ok(())
}
