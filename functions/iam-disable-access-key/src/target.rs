//! What a finding comes down to, resolved once and stored in the record: the IAM user (read
//! from IAM, never taken from the payload) and which of its keys the fix is about. Approval and
//! rollback work from this stored target.
//!
//! The pure half of `resolve` lives here: which rule a finding asks for, the refusals that need
//! no AWS read (a temporary key, a root key), the control's threshold, the user a control
//! finding names, and whether the finding's principal is the live user.

use crate::params::{days, Params};
use reflex_shared::finding::{Finding, FindingKind, ResourceKind};
use reflex_shared::principal::PrincipalArn;
use reflex_shared::remediation::ResourceRef;
use reflex_shared::status::Reason;
use serde::{Deserialize, Serialize};

/// The Security Hub controls this function fixes.
pub const ROTATION_CONTROL: &str = "IAM.3";
pub const UNUSED_CONTROL: &str = "IAM.8";
/// Their parameters, as Security Hub names them in `SecurityControlParameters`.
pub const ROTATION_PARAMETER: &str = "maxAccessKeyAge";
pub const UNUSED_PARAMETER: &str = "maxCredentialUsageAge";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyTarget {
    /// The user, as the record, the exemptions and the suppressions name it (its ARN, path
    /// included). An access key has no ARN and no tags; its user has both.
    pub resource: ResourceRef,
    pub user_name: String,
    /// The user's unique id (`AIDA…`): a user re-created under the same name is another user.
    pub user_id: String,
    /// The user's ARN, path included, as IAM answered it.
    pub user_arn: String,
    pub rule: Rule,
}

/// Which keys of the user the fix is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "kebab-case")]
pub enum Rule {
    /// A threat finding (GuardDuty) named this key: exactly it, never the user's others.
    Named { access_key_id: String },
    /// IAM.3: every active key created more than `max_age_days` ago.
    Rotation { max_age_days: u32 },
    /// IAM.8: every active key last used (never used: created) more than `max_unused_days` ago.
    Unused { max_unused_days: u32 },
}

/// What `resolve` must read from IAM, decided from the finding alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wanted {
    /// The owner of this key (GetAccessKeyLastUsed), then the user.
    KeyOwner {
        access_key_id: String,
        /// The principal id the finding names (`AIDA…`), checked against the live user's.
        principal_id: Option<String>,
    },
    /// The user by name, for a control's rule.
    User { name: String, rule: Rule },
}

/// Why a finding is refused before any AWS read: `NoTarget` words, or a skip with its reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    NoTarget(String),
    Skip(Reason, String),
}

/// An `ASIA…` key: temporary credentials of a role session (an instance profile, an assumed
/// role, a federated user), which IAM cannot set inactive.
pub fn is_temporary(access_key_id: &str) -> bool {
    access_key_id.starts_with("ASIA")
}

/// What the finding asks for, and what must be read to resolve it.
pub fn wanted(finding: &Finding, params: &Params) -> Result<Wanted, Refused> {
    match &finding.kind {
        FindingKind::GuarddutyType(_) => named_key(finding),
        FindingKind::Control(c) if c == ROTATION_CONTROL => Ok(Wanted::User {
            name: user_name(finding)?,
            rule: Rule::Rotation {
                max_age_days: threshold(
                    finding,
                    ROTATION_PARAMETER,
                    params.max_access_key_age_days,
                )?,
            },
        }),
        FindingKind::Control(c) if c == UNUSED_CONTROL => Ok(Wanted::User {
            name: user_name(finding)?,
            rule: Rule::Unused {
                max_unused_days: threshold(
                    finding,
                    UNUSED_PARAMETER,
                    params.max_credential_usage_age_days,
                )?,
            },
        }),
        other => Err(Refused::NoTarget(format!(
            "{} {:?} names no access key this function disables",
            finding.source,
            other.name()
        ))),
    }
}

fn named_key(finding: &Finding) -> Result<Wanted, Refused> {
    let d = &finding.details;
    let key = d
        .access_key_id
        .clone()
        .ok_or_else(|| Refused::NoTarget("the finding names no access key".into()))?;
    if is_temporary(&key) {
        let who = match (&d.user_type, &d.principal_id) {
            (Some(t), Some(p)) => format!(" ({t} {p})"),
            (Some(t), None) => format!(" ({t})"),
            (None, Some(p)) => format!(" ({p})"),
            (None, None) => String::new(),
        };
        return Err(Refused::Skip(
            Reason::NotApplicable,
            format!(
                "access key {key} is temporary (ASIA…): its credentials belong to a role \
                 session{who}, not to an IAM user's key that could be set inactive; a role \
                 session: see iam-contain-principal"
            ),
        ));
    }
    if d.user_type.as_deref() == Some("Root") {
        return Err(Refused::Skip(
            Reason::NotApplicable,
            format!(
                "access key {key} is the root user's: only the root user can deactivate it \
                 (IAM's UpdateAccessKey names IAM users)"
            ),
        ));
    }
    Ok(Wanted::KeyOwner {
        access_key_id: key,
        principal_id: d.principal_id.clone(),
    })
}

/// The user a control finding names: its `AwsIamUser` resource, by ARN (Security Hub's `Id`)
/// or, failing that, by its short id.
pub fn user_name(finding: &Finding) -> Result<String, Refused> {
    let user = finding
        .resources
        .iter()
        .find(|r| r.kind == ResourceKind::IamUser)
        .ok_or_else(|| Refused::NoTarget("the finding names no IAM user".into()))?;
    match &user.arn {
        Some(arn) => PrincipalArn::parse(arn)
            .filter(|p| p.kind == reflex_shared::principal::PrincipalKind::User)
            .map(|p| p.name)
            .ok_or_else(|| Refused::NoTarget(format!("{arn} is not an IAM user's ARN"))),
        None if !user.id.is_empty() => Ok(user.id.clone()),
        None => Err(Refused::NoTarget(
            "the finding's IAM user has no name".into(),
        )),
    }
}

/// The control's threshold in days: the finding's own parameter (what the control was
/// evaluated with), else the policy's.
fn threshold(finding: &Finding, parameter: &str, default: u32) -> Result<u32, Refused> {
    let Some(values) = finding.details.control_parameters.get(parameter) else {
        return Ok(default);
    };
    let value = values
        .first()
        .and_then(|v| v.trim().parse::<i64>().ok())
        .ok_or_else(|| {
            Refused::NoTarget(format!(
                "the finding's {parameter} {values:?} is not a number of days"
            ))
        })?;
    days(parameter, value).map_err(Refused::NoTarget)
}

/// A finding naming principal `claimed` is about the live user (`live_id`) only if they are
/// the same unique id: GuardDuty names the key's owner by `principalId`, and an access key id is
/// never reused, so a mismatch means the finding does not describe this key's owner (made up,
/// or corrupted). No claim at all is no mismatch: the owner is IAM's answer either way.
pub fn principal_mismatch(claimed: Option<&str>, live_id: &str, live_arn: &str) -> Option<String> {
    let claimed = claimed?;
    // An assumed role's principal id is `AROA…:session`; a user's is its id alone.
    let id = claimed.split(':').next().unwrap_or(claimed);
    (id != live_id).then(|| {
        format!(
            "the finding names principal {claimed}, but the key belongs to {live_arn}, whose \
             unique id is {live_id}: the finding does not describe this key's owner, so it is \
             not acted on"
        )
    })
}

/// The user as the record names it.
pub fn user_ref(account: &str, name: &str, arn: &str) -> ResourceRef {
    ResourceRef {
        kind: ResourceKind::IamUser,
        id: name.to_string(),
        arn: arn.to_string(),
        account: account.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reflex_shared::finding::{FindingDetails, Resource, Severity, Source};
    use std::collections::BTreeMap;

    fn finding(kind: FindingKind, details: FindingDetails, resources: Vec<Resource>) -> Finding {
        Finding {
            source: Source::Guardduty,
            id: "f".into(),
            kind,
            title: String::new(),
            severity: Severity::from_normalized(50),
            product_arn: String::new(),
            account: "123456789012".into(),
            region: "us-east-1".into(),
            observed_at: None,
            generation: "g".into(),
            resources,
            details,
            inactive: None,
            intent: None,
            sample: false,
            requested_by: None,
            securityhub_finding: None,
            requested_at: None,
        }
    }

    fn gd(key: Option<&str>, user_type: Option<&str>, principal: Option<&str>) -> Finding {
        finding(
            FindingKind::GuarddutyType("UnauthorizedAccess:IAMUser/MaliciousIPCaller".into()),
            FindingDetails {
                access_key_id: key.map(str::to_string),
                user_type: user_type.map(str::to_string),
                principal_id: principal.map(str::to_string),
                user_name: Some("payload-says-so".into()),
                ..Default::default()
            },
            vec![],
        )
    }

    fn control(id: &str, user_arn: Option<&str>, parameters: &[(&str, &str)]) -> Finding {
        let resources = user_arn
            .map(|arn| Resource {
                kind: ResourceKind::IamUser,
                id: arn.rsplit('/').next().unwrap().to_string(),
                arn: Some(arn.to_string()),
            })
            .into_iter()
            .collect();
        let control_parameters: BTreeMap<String, Vec<String>> = parameters
            .iter()
            .map(|(k, v)| (k.to_string(), vec![v.to_string()]))
            .collect();
        let mut f = finding(
            FindingKind::Control(id.into()),
            FindingDetails {
                control_parameters,
                ..Default::default()
            },
            resources,
        );
        f.source = Source::Securityhub;
        f
    }

    #[test]
    fn what_each_finding_asks_for() {
        let p = Params {
            max_access_key_age_days: 60,
            max_credential_usage_age_days: 45,
        };
        let user = Some("arn:aws:iam::123456789012:user/ops/alice");
        let skip = |r: Result<Wanted, Refused>| match r {
            Err(Refused::Skip(reason, why)) => Some((reason, why)),
            _ => None,
        };
        // A GuardDuty key: its owner is read from IAM; the payload's user name is not used.
        assert_eq!(
            wanted(&gd(Some("AKIAEXAMPLE"), Some("IAMUser"), Some("AIDAX")), &p),
            Ok(Wanted::KeyOwner {
                access_key_id: "AKIAEXAMPLE".into(),
                principal_id: Some("AIDAX".into())
            })
        );
        // A role session's key: not applicable, pointing to iam-contain-principal.
        let (reason, why) = skip(wanted(
            &gd(Some("ASIAEXAMPLE"), Some("AssumedRole"), Some("AROAX:i-1")),
            &p,
        ))
        .unwrap();
        assert_eq!(reason, Reason::NotApplicable);
        assert!(
            why.contains("a role session: see iam-contain-principal"),
            "{why}"
        );
        assert!(why.contains("AssumedRole AROAX:i-1"), "{why}");
        // The root user's key.
        let (reason, why) = skip(wanted(&gd(Some("AKIAROOT"), Some("Root"), None), &p)).unwrap();
        assert_eq!(reason, Reason::NotApplicable);
        assert!(why.contains("root"), "{why}");
        // No key at all.
        assert!(matches!(
            wanted(&gd(None, Some("IAMUser"), None), &p),
            Err(Refused::NoTarget(_))
        ));
        // IAM.3 and IAM.8: the policy's thresholds, or the finding's own parameters.
        assert_eq!(
            wanted(&control("IAM.3", user, &[]), &p),
            Ok(Wanted::User {
                name: "alice".into(),
                rule: Rule::Rotation { max_age_days: 60 }
            })
        );
        assert_eq!(
            wanted(&control("IAM.3", user, &[("maxAccessKeyAge", "30")]), &p),
            Ok(Wanted::User {
                name: "alice".into(),
                rule: Rule::Rotation { max_age_days: 30 }
            })
        );
        assert_eq!(
            wanted(&control("IAM.8", user, &[]), &p),
            Ok(Wanted::User {
                name: "alice".into(),
                rule: Rule::Unused {
                    max_unused_days: 45
                }
            })
        );
        assert_eq!(
            wanted(
                &control("IAM.8", user, &[("maxCredentialUsageAge", "90")]),
                &p
            ),
            Ok(Wanted::User {
                name: "alice".into(),
                rule: Rule::Unused {
                    max_unused_days: 90
                }
            })
        );
        for bad in ["0", "ninety", "-1"] {
            assert!(
                matches!(
                    wanted(
                        &control("IAM.8", user, &[("maxCredentialUsageAge", bad)]),
                        &p
                    ),
                    Err(Refused::NoTarget(_))
                ),
                "{bad}"
            );
        }
        // A control finding naming no user, or a role.
        assert!(matches!(
            wanted(&control("IAM.3", None, &[]), &p),
            Err(Refused::NoTarget(_))
        ));
        let mut role = control("IAM.3", user, &[]);
        role.resources[0].arn = Some("arn:aws:iam::123456789012:role/ops".into());
        assert!(matches!(wanted(&role, &p), Err(Refused::NoTarget(_))));
        // Another control.
        assert!(matches!(
            wanted(&control("IAM.4", user, &[]), &p),
            Err(Refused::NoTarget(_))
        ));
    }

    #[test]
    fn principal_ids_must_be_the_live_users() {
        let arn = "arn:aws:iam::1:user/alice";
        assert_eq!(principal_mismatch(Some("AIDA1"), "AIDA1", arn), None);
        assert_eq!(principal_mismatch(None, "AIDA1", arn), None);
        let why = principal_mismatch(Some("AIDA2"), "AIDA1", arn).unwrap();
        assert!(why.contains("AIDA2") && why.contains("AIDA1"), "{why}");
        assert!(principal_mismatch(Some("AROA1:session"), "AIDA1", arn).is_some());
    }

    #[test]
    fn temporary_keys() {
        assert!(is_temporary("ASIAZ3EXAMPLE"));
        assert!(!is_temporary("AKIAZ3EXAMPLE"));
        assert!(!is_temporary("asia"));
    }
}
