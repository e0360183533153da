//! What a finding names, decided from the finding alone (the pure half of `resolve`).

use reflex_shared::finding::{Finding, FindingKind, ResourceKind};
use reflex_shared::principal::{PrincipalArn, PrincipalKind};
use reflex_shared::status::Reason;

/// The control that names a user (the others name a policy).
pub const USER_CONTROL: &str = "IAM.2";
pub const POLICY_CONTROL: &str = "IAM.1";

/// What `resolve` must read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wanted {
    /// A policy by ARN (Security Hub names it so).
    PolicyArn(String),
    /// A policy by unique id (AWS Config names it so).
    PolicyId(String),
    /// A user by name (IAM.2).
    User(String),
}

/// Why a finding is refused before any read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    NoTarget(String),
    Skip(Reason, String),
}

pub fn wanted(finding: &Finding) -> Result<Wanted, Refused> {
    let of = |kind: ResourceKind| finding.resources.iter().find(|r| r.kind == kind);
    match &finding.kind {
        FindingKind::Control(c) if c == USER_CONTROL => {
            let user = of(ResourceKind::IamUser)
                .ok_or_else(|| Refused::NoTarget("the finding names no IAM user".into()))?;
            match &user.arn {
                Some(arn) => PrincipalArn::parse(arn)
                    .filter(|p| p.kind == PrincipalKind::User)
                    .map(|p| Wanted::User(p.name))
                    .ok_or_else(|| Refused::NoTarget(format!("{arn} is not an IAM user's ARN"))),
                None => Ok(Wanted::User(user.id.clone())),
            }
        }
        FindingKind::Control(c) if c == POLICY_CONTROL => policy(finding),
        FindingKind::ConfigRule(_) => policy(finding),
        other => Err(Refused::NoTarget(format!(
            "{} {:?} names no policy this function detaches",
            finding.source,
            other.name()
        ))),
    }
}

fn policy(finding: &Finding) -> Result<Wanted, Refused> {
    let p = finding
        .resources
        .iter()
        .find(|r| r.kind == ResourceKind::IamPolicy)
        .ok_or_else(|| Refused::NoTarget("the finding names no IAM policy".into()))?;
    let arn = p
        .arn
        .clone()
        .or_else(|| p.id.starts_with("arn:").then(|| p.id.clone()));
    match arn {
        // AWS's own policies (AdministratorAccess) are not the controls' concern, and cannot be
        // changed; IAM.2 detaches them from a user.
        Some(arn) if arn.split(':').nth(4) == Some("aws") => Err(Refused::Skip(
            Reason::NotApplicable,
            format!("{arn} is an AWS managed policy: IAM.1 and the Config rule judge customer managed policies"),
        )),
        Some(arn) => Ok(Wanted::PolicyArn(arn)),
        None if !p.id.is_empty() => Ok(Wanted::PolicyId(p.id.clone())),
        None => Err(Refused::NoTarget("the finding's IAM policy has no id".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reflex_shared::finding::{FindingDetails, Resource, Severity, Source};

    fn finding(kind: FindingKind, resources: Vec<Resource>) -> Finding {
        Finding {
            source: Source::Securityhub,
            id: "f".into(),
            kind,
            title: String::new(),
            severity: Severity::from_normalized(40),
            product_arn: String::new(),
            account: "123456789012".into(),
            region: "us-east-1".into(),
            observed_at: None,
            generation: "g".into(),
            resources,
            details: FindingDetails::default(),
            inactive: None,
            intent: None,
            sample: false,
            requested_by: None,
            securityhub_finding: None,
            requested_at: None,
        }
    }

    fn r(kind: ResourceKind, id: &str, arn: Option<&str>) -> Resource {
        Resource {
            kind,
            id: id.into(),
            arn: arn.map(str::to_string),
        }
    }

    #[test]
    fn what_each_finding_names() {
        let policy_arn = "arn:aws:iam::123456789012:policy/ops/legacy-admin";
        let control = |c: &str| FindingKind::Control(c.into());
        let rule = FindingKind::ConfigRule("IAM_POLICY_NO_STATEMENTS_WITH_ADMIN_ACCESS".into());
        let cases = [
            (
                finding(
                    control("IAM.1"),
                    vec![r(ResourceKind::IamPolicy, "legacy-admin", Some(policy_arn))],
                ),
                Ok(Wanted::PolicyArn(policy_arn.into())),
            ),
            (
                finding(
                    rule.clone(),
                    vec![r(ResourceKind::IamPolicy, "ANPAEXAMPLE", None)],
                ),
                Ok(Wanted::PolicyId("ANPAEXAMPLE".into())),
            ),
            (
                finding(rule, vec![r(ResourceKind::IamPolicy, policy_arn, None)]),
                Ok(Wanted::PolicyArn(policy_arn.into())),
            ),
            (
                finding(
                    control("IAM.2"),
                    vec![r(
                        ResourceKind::IamUser,
                        "alice",
                        Some("arn:aws:iam::123456789012:user/ops/alice"),
                    )],
                ),
                Ok(Wanted::User("alice".into())),
            ),
        ];
        for (f, want) in cases {
            assert_eq!(wanted(&f), want, "{f:?}");
        }
        let aws_managed = finding(
            control("IAM.1"),
            vec![r(
                ResourceKind::IamPolicy,
                "AdministratorAccess",
                Some("arn:aws:iam::aws:policy/AdministratorAccess"),
            )],
        );
        assert!(matches!(
            wanted(&aws_managed),
            Err(Refused::Skip(Reason::NotApplicable, _))
        ));
        for f in [
            finding(
                control("IAM.1"),
                vec![r(ResourceKind::IamUser, "alice", None)],
            ),
            finding(
                control("IAM.2"),
                vec![r(ResourceKind::IamPolicy, "p", None)],
            ),
            finding(
                control("IAM.2"),
                vec![r(ResourceKind::IamUser, "r", Some("arn:aws:iam::1:role/r"))],
            ),
            finding(control("IAM.4"), vec![]),
        ] {
            assert!(matches!(wanted(&f), Err(Refused::NoTarget(_))), "{f:?}");
        }
    }
}
