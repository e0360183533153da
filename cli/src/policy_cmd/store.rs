//! The policy parameter in SSM: read, write (SSM keeps every version), and the history a
//! revert reads. A small adapter; its errors are sentences for the operator.

use aws_sdk_ssm::primitives::DateTimeFormat;
use aws_sdk_ssm::types::{ParameterTier, ParameterType};
use reflex_shared::aws_error;

/// One stored version of the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub value: String,
    pub version: i64,
    /// RFC 3339, as SSM says it.
    pub last_modified: Option<String>,
    pub kind: ParameterType,
}

/// Standard parameters hold 4 KB; a longer policy needs the advanced tier.
const STANDARD_TIER_BYTES: usize = 4096;

fn when(t: Option<&aws_sdk_ssm::primitives::DateTime>) -> Option<String> {
    t.and_then(|t| t.fmt(DateTimeFormat::DateTime).ok())
}

/// The parameter's current version, or `None` where it does not exist (SSM's
/// `ParameterNotFound`: the first-deploy policy is in force). Any other failure is an error.
pub async fn current(ssm: &aws_sdk_ssm::Client, name: &str) -> anyhow::Result<Option<Stored>> {
    match ssm
        .get_parameter()
        .name(name)
        .with_decryption(true)
        .send()
        .await
    {
        Ok(out) => {
            let p = out
                .parameter
                .ok_or_else(|| anyhow::anyhow!("SSM answered no parameter for {name}"))?;
            Ok(Some(Stored {
                value: p.value.clone().unwrap_or_default(),
                version: p.version,
                last_modified: when(p.last_modified_date.as_ref()),
                kind: p.r#type.clone().unwrap_or(ParameterType::String),
            }))
        }
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_parameter_not_found()) =>
        {
            Ok(None)
        }
        Err(e) => anyhow::bail!(
            "cannot read the policy parameter {name}: {}",
            aws_error::describe(&e)
        ),
    }
}

/// Write `value` as the parameter's next version, keeping what the current version has: its
/// type (`String` when new), its KMS key (a `SecureString` under a customer key stays under
/// it) and its tier (Intelligent-Tiering: standard while it fits, never a downgrade of an
/// advanced parameter, which SSM refuses). The version written; a warning on stderr when
/// someone else wrote in between (what is in force is then this write, theirs in the history).
pub async fn put(
    ssm: &aws_sdk_ssm::Client,
    name: &str,
    value: &str,
    current: Option<&Stored>,
) -> anyhow::Result<i64> {
    let kind = current.map_or(ParameterType::String, |c| c.kind.clone());
    let key_id = if kind == ParameterType::SecureString {
        key_id(ssm, name).await?
    } else {
        None
    };
    let tier = if value.len() > STANDARD_TIER_BYTES {
        ParameterTier::Advanced
    } else {
        ParameterTier::IntelligentTiering
    };
    let out = ssm
        .put_parameter()
        .name(name)
        .value(value)
        .r#type(kind)
        .set_key_id(key_id)
        .tier(tier)
        .overwrite(true)
        .description("Reflex policy (YAML), written by `reflex policy`")
        .send()
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot write the policy parameter {name}: {}",
                aws_error::describe(&e)
            )
        })?;
    let expected = current.map_or(1, |c| c.version + 1);
    if out.version != expected {
        eprintln!(
            "warning: {name} was written by someone else since it was read (version {} became {}): this write is in force now, theirs is in the history; `reflex policy show` shows it",
            expected - 1,
            out.version
        );
    }
    Ok(out.version)
}

/// The KMS key a `SecureString` parameter is encrypted under, as SSM describes it.
async fn key_id(ssm: &aws_sdk_ssm::Client, name: &str) -> anyhow::Result<Option<String>> {
    let filter = aws_sdk_ssm::types::ParameterStringFilter::builder()
        .key("Name")
        .option("Equals")
        .values(name)
        .build()
        .map_err(|e| anyhow::anyhow!("cannot describe {name}: {e}"))?;
    let out = ssm
        .describe_parameters()
        .parameter_filters(filter)
        .send()
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot learn the KMS key of {name} (ssm:DescribeParameters): {}",
                aws_error::describe(&e)
            )
        })?;
    Ok(out
        .parameters()
        .iter()
        .find(|p| p.name() == Some(name))
        .and_then(|p| p.key_id().map(str::to_string)))
}

/// The version before `version`, as SSM's history keeps it.
pub async fn before(
    ssm: &aws_sdk_ssm::Client,
    name: &str,
    version: i64,
) -> anyhow::Result<Option<Stored>> {
    let mut pages = ssm
        .get_parameter_history()
        .name(name)
        .with_decryption(true)
        .into_paginator()
        .send();
    let mut best: Option<Stored> = None;
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| {
            anyhow::anyhow!(
                "cannot read the history of {name}: {}",
                aws_error::describe(&e)
            )
        })?;
        for p in page.parameters() {
            if p.version < version && best.as_ref().is_none_or(|b| p.version > b.version) {
                best = Some(Stored {
                    value: p.value.clone().unwrap_or_default(),
                    version: p.version,
                    last_modified: when(p.last_modified_date.as_ref()),
                    kind: p.r#type.clone().unwrap_or(ParameterType::String),
                });
            }
        }
    }
    Ok(best)
}
