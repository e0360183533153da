//! Confirming a finding at its source before a fix that can lock someone out. Anyone allowed to
//! invoke a function can hand it a made-up finding; a disabled key or a contained principal is
//! an outage. So such a fix reads the finding back (GuardDuty `GetFindings` by detector and id,
//! or Security Hub `GetFindings` by `Id`), parses it with the same parser as events, and acts
//! only if it exists, is active, and names the same type and resource.
//!
//! The comparison is pure (here); the reads are small adapters ([`read`], [`wire`]).

pub mod read;
pub mod wire;

use crate::finding::{guardduty_arn_parts, Finding, Source};

/// What the read-back said, for one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confirmation {
    /// The policy does not ask for it.
    NotAsked,
    Confirmed,
    /// The source does not confirm the event, and what differed.
    Unconfirmed(String),
}

/// Where a finding is read back from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// GuardDuty `GetFindings`.
    Guardduty { detector: String, id: String },
    /// Security Hub `GetFindings`, filtered by `Id` and `ProductArn`.
    SecurityHub { id: String, product_arn: String },
}

/// Where `event` can be read back from, or why it cannot.
pub fn origin(event: &Finding) -> Result<Origin, String> {
    if let Some(sh) = &event.securityhub_finding {
        return Ok(Origin::SecurityHub {
            id: sh.id.clone(),
            product_arn: sh.product_arn.clone(),
        });
    }
    match event.source {
        Source::Guardduty => {
            let arn = event
                .details
                .guardduty_arn
                .as_deref()
                .ok_or("the GuardDuty event carries no finding ARN, so it cannot be read back")?;
            let (detector, id) = guardduty_arn_parts(arn)
                .ok_or_else(|| format!("{arn:?} is not a GuardDuty finding ARN"))?;
            if id != event.id {
                return Err(format!(
                    "the finding ARN names finding {id}, the event finding {}",
                    event.id
                ));
            }
            Ok(Origin::Guardduty {
                detector: detector.to_string(),
                id: id.to_string(),
            })
        }
        Source::Config => Err(
            "an AWS Config evaluation is not read back; set confirm_at_source: false for this remediation to act on Config findings"
                .into(),
        ),
        Source::Securityhub | Source::CustomAction => {
            Err("the Security Hub event names no finding identifier".into())
        }
    }
}

/// Whether the finding read back (`None`: the source has no such finding) confirms `event`:
/// `Err` says what differed.
pub fn compare(event: &Finding, at_source: Option<&Finding>) -> Result<(), String> {
    let Some(source) = at_source else {
        return Err(format!(
            "the source has no finding {} (read back by its id)",
            event.id
        ));
    };
    if let Some(why) = &source.inactive {
        return Err(format!(
            "at its source the finding is no longer active: {why}"
        ));
    }
    if source.account != event.account {
        return Err(format!(
            "the event says account {}, the source {}",
            event.account, source.account
        ));
    }
    if source.kind != event.kind {
        return Err(format!(
            "the event says {} {:?}, the source {} {:?}",
            kind_word(&event.kind),
            event.kind.name(),
            kind_word(&source.kind),
            source.kind.name()
        ));
    }
    for r in &event.resources {
        if !source
            .resources
            .iter()
            .any(|s| s.kind == r.kind && s.id == r.id)
        {
            return Err(format!(
                "the event names {} {}, the finding at its source does not",
                r.kind.as_str(),
                r.id
            ));
        }
    }
    let (e, s) = (&event.details, &source.details);
    // The parameters a control was evaluated with decide what a fix changes (an access key's
    // age limit): the event's must be the source's.
    if e.control_parameters != s.control_parameters {
        return Err(format!(
            "the event's control parameters {:?} are not the source's {:?}",
            e.control_parameters, s.control_parameters
        ));
    }
    for (what, event_value, source_value) in [
        ("access key", &e.access_key_id, &s.access_key_id),
        ("instance", &e.instance_id, &s.instance_id),
        ("principal id", &e.principal_id, &s.principal_id),
        ("user name", &e.user_name, &s.user_name),
        ("user type", &e.user_type, &s.user_type),
    ] {
        if event_value.is_some() && event_value != source_value {
            return Err(format!(
                "the event names {what} {}, the source {}",
                event_value.as_deref().unwrap_or("none"),
                source_value.as_deref().unwrap_or("none")
            ));
        }
    }
    Ok(())
}

fn kind_word(kind: &crate::finding::FindingKind) -> &'static str {
    use crate::finding::FindingKind::*;
    match kind {
        GuarddutyType(_) => "type",
        Control(_) => "control",
        ConfigRule(_) => "rule",
        Vulnerability(_) => "vulnerability",
        Unrecognised(_) => "kind",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::{parse_event, FindingKind, Resource, ResourceKind};

    fn sample(path: &str) -> Finding {
        let raw =
            std::fs::read_to_string(format!("{}/../events/{path}", env!("CARGO_MANIFEST_DIR")))
                .unwrap();
        parse_event(&serde_json::from_str(&raw).unwrap())
            .unwrap()
            .remove(0)
    }

    fn guardduty() -> Finding {
        sample("real-shapes/guardduty-iam-access-key-user-type.json")
    }

    #[test]
    fn origins() {
        let gd = guardduty();
        let (detector, id) =
            guardduty_arn_parts(gd.details.guardduty_arn.as_deref().unwrap()).unwrap();
        assert_eq!(
            origin(&gd),
            Ok(Origin::Guardduty {
                detector: detector.into(),
                id: id.into()
            })
        );
        let sh = sample("real-shapes/securityhub-guardduty-iam-access-key-user-type.json");
        assert!(
            matches!(origin(&sh), Ok(Origin::SecurityHub { id, .. }) if id.contains("/finding/"))
        );
        let mut no_arn = gd.clone();
        no_arn.details.guardduty_arn = None;
        assert!(origin(&no_arn).unwrap_err().contains("no finding ARN"));
        let mut other = gd.clone();
        other.id = "another".into();
        assert!(origin(&other).unwrap_err().contains("names finding"));
        let mut config = gd;
        config.source = Source::Config;
        assert!(origin(&config).unwrap_err().contains("Config"));
    }

    #[test]
    fn what_the_source_must_say() {
        let event = guardduty();
        type Change = fn(&mut Finding);
        let cases: Vec<(&str, Option<Change>, Option<&str>)> = vec![
            ("the same finding", Some(|_| {}), None),
            ("missing at its source", None, Some("has no finding")),
            (
                "archived since",
                Some(|f| f.inactive = Some("archived in GuardDuty".into())),
                Some("no longer active"),
            ),
            (
                "another type",
                Some(|f| {
                    f.kind = FindingKind::GuarddutyType("Recon:IAMUser/UserPermissions".into())
                }),
                Some("the source type"),
            ),
            (
                "another key",
                Some(|f| {
                    f.details.access_key_id = Some("AKIAOTHER".into());
                    for r in &mut f.resources {
                        if r.kind == ResourceKind::IamAccessKey {
                            r.id = "AKIAOTHER".into();
                        }
                    }
                }),
                Some("the finding at its source does not"),
            ),
            (
                "another principal",
                Some(|f| f.details.principal_id = Some("AIDAOTHER".into())),
                Some("principal id"),
            ),
            (
                "other control parameters",
                Some(|f| {
                    f.details
                        .control_parameters
                        .insert("maxAccessKeyAge".into(), vec!["1".into()]);
                }),
                Some("control parameters"),
            ),
            (
                "another account",
                Some(|f| f.account = "999999999999".into()),
                Some("account"),
            ),
            (
                "more resources at the source is fine",
                Some(|f| {
                    f.resources.push(Resource {
                        kind: ResourceKind::Ec2Instance,
                        id: "i-0abc1234".into(),
                        arn: None,
                    })
                }),
                None,
            ),
        ];
        for (name, change, want) in cases {
            let source = change.map(|c| {
                let mut s = event.clone();
                c(&mut s);
                s
            });
            let got = compare(&event, source.as_ref());
            match want {
                None => assert_eq!(got, Ok(()), "{name}"),
                Some(w) => assert!(
                    got.as_ref().is_err_and(|e| e.contains(w)),
                    "{name}: {got:?}"
                ),
            }
        }
    }
}
