//! Which principal a finding is about, from what GuardDuty says of the credentials it saw
//! (`accessKeyDetails.userType` and `principalId`; Security Hub's `PrincipalType` and
//! `PrincipalId`). Pure: the live principal is read from IAM afterwards and must carry the same
//! unique id. A guess is never made: a finding that does not say plainly which IAM user or role
//! it is about is left alone, with why.

use reflex_shared::finding::Finding;
use reflex_shared::remediation::Unresolved;
use reflex_shared::status::Reason;

/// The remediation that owns a user's long-term access key.
pub const KEY_FIX: &str = "iam-disable-access-key";

/// GuardDuty's instance-credential exfiltration findings (`.OutsideAWS`, `.InsideAWS`): shared
/// with iam-disable-access-key, which takes a user's long-term key; a role session is ours.
const EXFILTRATION: &str = "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration";

/// The principal a finding names, as it names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// An IAM user (`userType` `IAMUser`), by name and unique id (`AIDA…`).
    User { name: String, user_id: String },
    /// A session of an IAM role (`userType` `AssumedRole`): the role's name (GuardDuty's
    /// `userName` for an assumed role, as CloudTrail's `sessionIssuer.userName`), the role's
    /// unique id and the session name (`principalId` is `AROA…:session`).
    Role {
        name: String,
        role_id: String,
        session: String,
    },
}

fn no_target(why: impl Into<String>) -> Unresolved {
    Unresolved::NoTarget(why.into())
}

fn not_applicable(why: impl Into<String>) -> Unresolved {
    Unresolved::Skip(Reason::NotApplicable, why.into())
}

/// The principal `finding` names, or why it names none this remediation may contain.
pub fn claim(finding: &Finding) -> Result<Claim, Unresolved> {
    let d = &finding.details;
    let user_type = d.user_type.as_deref();
    let key = d.access_key_id.as_deref().unwrap_or_default();
    if finding.kind.name().starts_with(EXFILTRATION)
        && (user_type != Some("AssumedRole") || key.starts_with("AKIA"))
    {
        return Err(not_applicable(format!(
            "instance credential exfiltration by {} (key {}): a user's long-term access key is \
             {KEY_FIX}'s to disable; this remediation contains assumed-role sessions",
            user_type.unwrap_or("an unnamed principal type"),
            if key.is_empty() { "not named" } else { key }
        )));
    }
    let principal_id = || {
        d.principal_id.clone().ok_or_else(|| {
            no_target("the finding names no principal id (principalId): a guess is never made")
        })
    };
    let name = |what: &str| {
        d.user_name.clone().ok_or_else(|| {
            no_target(format!(
                "the finding names no {what} name (userName): a guess is never made"
            ))
        })
    };
    match user_type {
        None => Err(no_target(
            "the finding names no principal type (userType): whether it is about a user or a \
             role is never guessed",
        )),
        Some("IAMUser") => {
            let user_id = principal_id()?;
            if user_id.contains(':') {
                return Err(Unresolved::Skip(
                    Reason::Unconfirmed,
                    format!(
                        "the finding says IAMUser but its principal id {user_id} is a session's \
                         (id:session): type and id disagree, so it is not acted on"
                    ),
                ));
            }
            Ok(Claim::User {
                name: name("user")?,
                user_id,
            })
        }
        Some("AssumedRole") => {
            let id = principal_id()?;
            let Some((role_id, session)) = id
                .split_once(':')
                .filter(|(r, s)| !r.is_empty() && !s.is_empty())
            else {
                return Err(no_target(format!(
                    "the finding says AssumedRole but its principal id {id} is not ROLEID:SESSION"
                )));
            };
            Ok(Claim::Role {
                name: name("role")?,
                role_id: role_id.to_string(),
                session: session.to_string(),
            })
        }
        Some("Root") => Err(not_applicable(
            "the account's root user: no IAM policy applies to it; secure it by hand (password, \
             MFA, root access keys)",
        )),
        Some("Federated") => Err(not_applicable(
            "a federated user's session (GetFederationToken) is no IAM principal of its own; \
             contain the IAM user that issued it",
        )),
        Some(other) => Err(not_applicable(format!(
            "principal type {other} is neither an IAM user nor an assumed-role session"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reflex_shared::finding::{FindingDetails, FindingKind, Severity, Source};

    fn finding(kind: &str, user_type: Option<&str>, id: Option<&str>, key: &str) -> Finding {
        Finding {
            source: Source::Guardduty,
            id: "f".into(),
            kind: FindingKind::GuarddutyType(kind.into()),
            title: String::new(),
            severity: Severity::from_normalized(50),
            product_arn: String::new(),
            account: "123456789012".into(),
            region: "us-east-1".into(),
            observed_at: None,
            generation: String::new(),
            resources: Vec::new(),
            details: FindingDetails {
                access_key_id: Some(key.to_string()).filter(|k| !k.is_empty()),
                user_name: Some("alice".into()),
                user_type: user_type.map(str::to_string),
                principal_id: id.map(str::to_string),
                ..Default::default()
            },
            inactive: None,
            intent: None,
            sample: false,
            requested_by: None,
            securityhub_finding: None,
            requested_at: None,
        }
    }

    #[test]
    fn claims() {
        const LOGIN: &str = "UnauthorizedAccess:IAMUser/ConsoleLoginSuccess.B";
        const OUTSIDE: &str =
            "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS";
        const INSIDE: &str = "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.InsideAWS";
        let user = || {
            Ok(Claim::User {
                name: "alice".into(),
                user_id: "AIDAEXAMPLE".into(),
            })
        };
        let role = || {
            Ok(Claim::Role {
                name: "alice".into(),
                role_id: "AROAEXAMPLE".into(),
                session: "i-0123".into(),
            })
        };
        let skip = |r: Reason, word: &str| Err((Some(r), word.to_string()));
        let none = |word: &str| Err((None, word.to_string()));
        type Want = Result<Claim, (Option<Reason>, String)>;
        type Case = (
            &'static str,
            Option<&'static str>,
            Option<&'static str>,
            &'static str,
            Want,
        );
        let cases: Vec<Case> = vec![
            (LOGIN, Some("IAMUser"), Some("AIDAEXAMPLE"), "", user()),
            (
                "Persistence:IAMUser/AnomalousBehavior",
                Some("IAMUser"),
                Some("AIDAEXAMPLE"),
                "AKIAEXAMPLE",
                user(),
            ),
            (
                "PrivilegeEscalation:IAMUser/AnomalousBehavior",
                Some("AssumedRole"),
                Some("AROAEXAMPLE:i-0123"),
                "ASIAEXAMPLE",
                role(),
            ),
            (
                OUTSIDE,
                Some("AssumedRole"),
                Some("AROAEXAMPLE:i-0123"),
                "ASIAEXAMPLE",
                role(),
            ),
            (
                INSIDE,
                Some("AssumedRole"),
                Some("AROAEXAMPLE:i-0123"),
                "ASIAEXAMPLE",
                role(),
            ),
            // A user's long-term key is iam-disable-access-key's.
            (
                OUTSIDE,
                Some("IAMUser"),
                Some("AIDAEXAMPLE"),
                "AKIAEXAMPLE",
                skip(Reason::NotApplicable, KEY_FIX),
            ),
            (
                INSIDE,
                None,
                None,
                "AKIAEXAMPLE",
                skip(Reason::NotApplicable, KEY_FIX),
            ),
            (
                OUTSIDE,
                Some("AssumedRole"),
                Some("AROAEXAMPLE:s"),
                "AKIAEXAMPLE",
                skip(Reason::NotApplicable, KEY_FIX),
            ),
            // Never a guess.
            (LOGIN, None, Some("AIDAEXAMPLE"), "", none("userType")),
            (LOGIN, Some("IAMUser"), None, "", none("principalId")),
            (
                LOGIN,
                Some("AssumedRole"),
                Some("AROAEXAMPLE"),
                "",
                none("ROLEID:SESSION"),
            ),
            (
                LOGIN,
                Some("AssumedRole"),
                Some(":s"),
                "",
                none("ROLEID:SESSION"),
            ),
            (
                LOGIN,
                Some("IAMUser"),
                Some("AROAEXAMPLE:s"),
                "",
                skip(Reason::Unconfirmed, "disagree"),
            ),
            (
                LOGIN,
                Some("Root"),
                Some("123456789012"),
                "",
                skip(Reason::NotApplicable, "root"),
            ),
            (
                LOGIN,
                Some("Federated"),
                Some("123456789012:bob"),
                "",
                skip(Reason::NotApplicable, "federated"),
            ),
            (
                LOGIN,
                Some("AWSService"),
                None,
                "",
                skip(Reason::NotApplicable, "AWSService"),
            ),
        ];
        for (kind, user_type, id, key, want) in cases {
            let got = claim(&finding(kind, user_type, id, key));
            match (&got, &want) {
                (Ok(g), Ok(w)) => assert_eq!(g, w, "{kind} {user_type:?} {id:?}"),
                (Err(Unresolved::Skip(r, why)), Err((Some(wr), word))) => {
                    assert_eq!(r, wr, "{kind} {user_type:?} {id:?}");
                    assert!(why.contains(word.as_str()), "{why}");
                }
                (Err(Unresolved::NoTarget(why)), Err((None, word))) => {
                    assert!(why.contains(word.as_str()), "{why}")
                }
                _ => panic!("{kind} {user_type:?} {id:?} {key}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn a_missing_name_is_no_target() {
        let mut f = finding(
            "Persistence:IAMUser/AnomalousBehavior",
            Some("IAMUser"),
            Some("AIDAEXAMPLE"),
            "",
        );
        f.details.user_name = None;
        assert!(matches!(claim(&f), Err(Unresolved::NoTarget(w)) if w.contains("userName")));
    }
}
