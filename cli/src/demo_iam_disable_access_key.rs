//! The demo's iam-disable-access-key part: an IAM user with two access keys in the emulator,
//! the committed GuardDuty sample (one of its keys used from an address on a threat list)
//! replayed against it, and the user's keys read again: the named key inactive, the other
//! still active.

use anyhow::{anyhow, Context, Result};
use iam_disable_access_key::aws_sdk_iam;
use reflex_shared::Setup;
use serde_json::Value;

const FUNCTION: &str = "iam-disable-access-key";
/// Compiled in: the demo runs wherever the binary is, not only beside the sources.
const SAMPLE: &str =
    include_str!("../../events/iam-disable-access-key/guardduty-malicious-ip-caller.json");
const SAMPLE_NAME: &str = "iam-disable-access-key/guardduty-malicious-ip-caller.json";
/// What the committed sample names; the demo swaps in the user and key it makes.
const SAMPLE_KEY: &str = "AKIAZ3EXAMPLEKEY0042";
const SAMPLE_PRINCIPAL: &str = "AIDAZ3EXAMPLEUSER0042";
const SAMPLE_USER: &str = "build-bot";

pub async fn show(setup: &Setup) -> Result<()> {
    let setup = &crate::demo_source::without_read_back(setup, FUNCTION);
    let iam = aws_sdk_iam::Client::new(&setup.sdk);
    let (user, user_id, keys) = make_user(&iam).await?;
    let named = keys.first().context("the user has no key")?;
    println!("\niam-disable-access-key: IAM user {user} ({user_id}) with two access keys:");
    show_keys(&iam, &user).await?;

    // The sample, naming this user's first key; its finding id made this key's own so that a
    // second run of the demo is a new finding, not a duplicate of the first.
    let text = SAMPLE
        .replace(SAMPLE_KEY, named)
        .replace(SAMPLE_PRINCIPAL, &user_id)
        .replace(SAMPLE_USER, &user);
    let mut event: Value = serde_json::from_str(&text).context("the committed sample is JSON")?;
    for field in ["id", "arn"] {
        let value = event["detail"][field]
            .as_str()
            .unwrap_or_default()
            .to_string();
        event["detail"][field] = Value::from(format!("{value}-{named}"));
    }
    let raw = serde_json::to_vec(&event)?;

    let function = crate::functions::build(FUNCTION, setup)
        .ok_or_else(|| anyhow!("{FUNCTION} is not in the registry"))?;
    println!(
        "\nReplaying {SAMPLE_NAME} (key {named} used from 198.51.100.23, on a threat list), as Lambda would:\n"
    );
    crate::demo::replay_approving(
        setup,
        function.as_ref(),
        SAMPLE_NAME,
        &raw,
        "demo-iam-disable-access-key",
    )
    .await?;

    println!("\nThe user's access keys now (a fresh read):");
    show_keys(&iam, &user).await
}

/// A user of the demo's own with two access keys; its name, unique id and keys.
async fn make_user(iam: &aws_sdk_iam::Client) -> Result<(String, String, Vec<String>)> {
    let name = format!(
        "reflex-demo-build-bot-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let made = iam.create_user().user_name(&name).send().await?;
    let id = made
        .user()
        .map(|u| u.user_id().to_string())
        .context("CreateUser named no user")?;
    let mut keys = Vec::new();
    for _ in 0..2 {
        let key = iam.create_access_key().user_name(&name).send().await?;
        keys.push(
            key.access_key()
                .map(|k| k.access_key_id().to_string())
                .context("CreateAccessKey made no key")?,
        );
    }
    Ok((name, id, keys))
}

/// The user's keys and their status.
async fn show_keys(iam: &aws_sdk_iam::Client, user: &str) -> Result<()> {
    let out = iam.list_access_keys().user_name(user).send().await?;
    for k in out.access_key_metadata() {
        println!(
            "  {}  {}",
            k.access_key_id().unwrap_or_default(),
            k.status().map(|s| s.as_str()).unwrap_or("?")
        );
    }
    Ok(())
}
