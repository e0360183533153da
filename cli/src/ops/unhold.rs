//! `reflex unhold RESOURCE_ARN [--function NAME]`: lift a rollback's hold before it ends. The
//! suppression is deleted and the rollback's record says who lifted it and when
//! (`rollback.hold_lifted`), in one transaction; the next finding for the resource is acted on
//! again under the policy.

use crate::functions;
use chrono::{DateTime, SecondsFormat, Utc};
use reflex_shared::ledger::{HoldLifted, Ledger, Suppression};

/// Lift the live hold on `resource_arn` (from `function`, or from whichever function holds it),
/// as `by` (the operator's STS identity), at `now`. Refused with the reason (nothing changed)
/// when there is no live hold, or when several functions hold the resource and none is named.
pub async fn unhold(
    ledger: &Ledger,
    by: &str,
    resource_arn: &str,
    function: Option<&str>,
    now: DateTime<Utc>,
) -> anyhow::Result<Suppression> {
    let names: Vec<&str> = match function {
        Some(f) if functions::names().contains(&f) => vec![f],
        Some(f) => anyhow::bail!(
            "unknown function {f:?} (one of: {})",
            functions::names().join(", ")
        ),
        None => functions::names(),
    };
    let reads = names.iter().map(|n| ledger.suppression(n, resource_arn));
    let stored: Vec<Suppression> = futures::future::try_join_all(reads)
        .await?
        .into_iter()
        .flatten()
        .collect();
    let held = choose(resource_arn, &stored, now).map_err(anyhow::Error::msg)?;
    let lifted = HoldLifted {
        by: by.to_string(),
        at: now.to_rfc3339_opts(SecondsFormat::Millis, true),
    };
    match ledger.lift_hold(&held, &lifted).await? {
        reflex_shared::ledger::Lifted::Lifted(s) => Ok(s),
        reflex_shared::ledger::Lifted::NoHold => anyhow::bail!(
            "no hold on {resource_arn} any more (it was lifted or ended meanwhile); nothing was changed"
        ),
    }
}

/// The one live hold to lift among those stored for the resource, or why none is lifted.
pub fn choose(
    resource_arn: &str,
    stored: &[Suppression],
    now: DateTime<Utc>,
) -> Result<Suppression, String> {
    let live: Vec<&Suppression> = stored
        .iter()
        .filter(|s| s.expires_at > now.timestamp())
        .collect();
    match live.as_slice() {
        [one] => Ok((*one).clone()),
        [] => match stored.first() {
            Some(s) => Err(format!(
                "no live hold on {resource_arn}: {}'s hold (rollback record {}) ended at {}; nothing was changed",
                s.remediation_name(),
                s.rollback_record,
                s.until
            )),
            None => Err(format!(
                "no hold on {resource_arn}: no rollback holds it back from any function (`reflex audit --suppressions` lists the holds); nothing was changed"
            )),
        },
        several => Err(format!(
            "{resource_arn} is held back from {} functions ({}): name one with --function; nothing was changed",
            several.len(),
            several
                .iter()
                .map(|s| s.remediation_name())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// What `reflex unhold` prints.
pub fn render(s: &Suppression, by: &str) -> String {
    format!(
        "hold lifted: {} is no longer held back from {} (rollback record {}, held until {}); lifted by {by}, written on the rollback's record",
        s.resource,
        s.remediation_name(),
        s.rollback_record,
        s.until
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(function: &str, expires_at: i64) -> Suppression {
        let arn = "arn:aws:s3:::b";
        Suppression {
            record_id: Suppression::key(function, arn),
            remediation: Suppression::partition(function),
            created_at: "2026-12-01T00:00:00.000Z".into(),
            resource: arn.into(),
            rollback_record: format!("{function}#abc"),
            by: "arn:aws:iam::123456789012:user/ops".into(),
            until: "2026-12-08T00:00:00.000Z".into(),
            expires_at,
        }
    }

    #[test]
    fn which_hold_is_lifted() {
        let now = DateTime::from_timestamp(1_000, 0).unwrap();
        let s3 = "s3-block-public-access";
        let enc = "s3-enforce-encryption";
        let cases: Vec<(Vec<Suppression>, Result<&str, &str>)> = vec![
            (vec![held(s3, 2_000)], Ok(s3)),
            (vec![held(s3, 2_000), held(enc, 500)], Ok(s3)),
            (vec![], Err("no rollback holds it back")),
            (vec![held(s3, 1_000)], Err("ended at")),
            (
                vec![held(s3, 2_000), held(enc, 2_000)],
                Err("name one with --function"),
            ),
        ];
        for (stored, want) in cases {
            let got = choose("arn:aws:s3:::b", &stored, now);
            match want {
                Ok(f) => assert_eq!(
                    got.map(|s| s.remediation_name().to_string()),
                    Ok(f.to_string())
                ),
                Err(text) => assert!(got.as_ref().is_err_and(|e| e.contains(text)), "{got:?}"),
            }
        }
    }
}
