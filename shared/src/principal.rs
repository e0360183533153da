//! IAM principals as identity fixes name them, and which of them Reflex never changes. Pure.
//!
//! A principal is named by its ARN (path included: `arn:aws:iam::1:user/ops/alice`) and by its
//! unique id (`AIDA…` for a user, `AROA…` for a role, `AGPA…` for a group): a user deleted and
//! re-created under the same name has a new unique id, so it is a different principal.

/// The path every Reflex role is created under (the template's `RolePath`): Reflex never
/// changes its own roles, whatever a finding says.
pub const REFLEX_ROLE_PATH: &str = "/reflex/";

/// The kind of an IAM principal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PrincipalKind {
    User,
    Role,
    Group,
}

impl PrincipalKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PrincipalKind::User => "user",
            PrincipalKind::Role => "role",
            PrincipalKind::Group => "group",
        }
    }
}

/// An IAM principal's ARN, in parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrincipalArn {
    pub partition: String,
    pub account: String,
    pub kind: PrincipalKind,
    /// `/` or `/ops/`: always starts and ends with `/`.
    pub path: String,
    pub name: String,
}

impl PrincipalArn {
    /// `arn:PARTITION:iam::ACCOUNT:user|role|group/PATH…/NAME`; anything else is `None`.
    pub fn parse(arn: &str) -> Option<PrincipalArn> {
        let mut parts = arn.splitn(6, ':');
        let (prefix, partition, service, region, account, resource) = (
            parts.next()?,
            parts.next()?,
            parts.next()?,
            parts.next()?,
            parts.next()?,
            parts.next()?,
        );
        if prefix != "arn" || service != "iam" || !region.is_empty() || account.is_empty() {
            return None;
        }
        let (kind, rest) = resource.split_once('/')?;
        let kind = match kind {
            "user" => PrincipalKind::User,
            "role" => PrincipalKind::Role,
            "group" => PrincipalKind::Group,
            _ => return None,
        };
        let (path, name) = match rest.rsplit_once('/') {
            Some((path, name)) => (format!("/{path}/"), name),
            None => ("/".to_string(), rest),
        };
        if name.is_empty() || path.contains("//") {
            return None;
        }
        Some(PrincipalArn {
            partition: partition.to_string(),
            account: account.to_string(),
            kind,
            path,
            name: name.to_string(),
        })
    }

    /// The ARN IAM gives it.
    pub fn arn(&self) -> String {
        iam_arn(
            &self.partition,
            &self.account,
            self.kind,
            &self.path,
            &self.name,
        )
    }
}

/// `arn:PARTITION:iam::ACCOUNT:KIND/PATH…/NAME` (`path` as IAM returns it: `/` or `/ops/`).
pub fn iam_arn(
    partition: &str,
    account: &str,
    kind: PrincipalKind,
    path: &str,
    name: &str,
) -> String {
    let path = if path.is_empty() { "/" } else { path };
    let path = if path.ends_with('/') {
        path.to_string()
    } else {
        format!("{path}/")
    };
    format!(
        "arn:{partition}:iam::{account}:{}{path}{name}",
        kind.as_str()
    )
}

/// Whether `principal` (an IAM ARN) is one of Reflex's own roles.
pub fn is_reflex_role(principal: &str) -> bool {
    PrincipalArn::parse(principal)
        .is_some_and(|p| p.kind == PrincipalKind::Role && p.path.starts_with(REFLEX_ROLE_PATH))
}

/// Whether `principal` (an IAM ARN) is the identity STS answered for `caller`: the same user
/// (`arn:aws:iam::1:user/PATH/NAME`), or the role a session was assumed from
/// (`arn:aws:sts::1:assumed-role/NAME/SESSION`: STS leaves the role's path out, so any path).
pub fn is_caller(caller: &str, principal: &str) -> bool {
    let Some(p) = PrincipalArn::parse(principal) else {
        return false;
    };
    if let Some(user) = PrincipalArn::parse(caller) {
        return user == p;
    }
    let mut parts = caller.splitn(6, ':');
    let (Some("arn"), Some(partition), Some("sts"), Some(""), Some(account), Some(resource)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return false;
    };
    let Some(role) = resource
        .strip_prefix("assumed-role/")
        .and_then(|r| r.split('/').next())
    else {
        return false;
    };
    p.kind == PrincipalKind::Role
        && p.partition == partition
        && p.account == account
        && p.name == role
}

/// Why `principal` (an ARN or a unique id) must not be changed, if it must not: a policy
/// pattern it matches (ARN patterns, paths included, or unique ids), one of Reflex's own
/// roles, or the identity approving this run.
pub fn protection(patterns: &[String], approver: Option<&str>, principal: &str) -> Option<String> {
    if let Some(p) = patterns
        .iter()
        .find(|p| wildmatch::WildMatch::new(p).matches(principal))
    {
        return Some(format!(
            "{principal} matches exemptions.protected_principals {p:?}"
        ));
    }
    if is_reflex_role(principal) {
        return Some(format!(
            "{principal} is one of Reflex's own roles (path {REFLEX_ROLE_PATH})"
        ));
    }
    if let Some(approver) = approver.filter(|a| is_caller(a, principal)) {
        return Some(format!(
            "{principal} is the approver of this run ({approver})"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsing_principal_arns() {
        let cases = [
            (
                "arn:aws:iam::111122223333:user/alice",
                Some((PrincipalKind::User, "/", "alice")),
            ),
            (
                "arn:aws:iam::111122223333:user/ops/break/alice",
                Some((PrincipalKind::User, "/ops/break/", "alice")),
            ),
            (
                "arn:aws:iam::111122223333:role/reflex/ReflexS3",
                Some((PrincipalKind::Role, "/reflex/", "ReflexS3")),
            ),
            (
                "arn:aws-cn:iam::111122223333:group/Admins",
                Some((PrincipalKind::Group, "/", "Admins")),
            ),
            ("arn:aws:iam::111122223333:policy/AdministratorAccess", None),
            ("arn:aws:sts::111122223333:assumed-role/Admin/s", None),
            ("arn:aws:iam::111122223333:user/", None),
            ("arn:aws:iam::111122223333:user/a//b", None),
            ("arn:aws:iam:us-east-1:111122223333:user/alice", None),
            ("AIDAEXAMPLE", None),
        ];
        for (arn, want) in cases {
            let got = PrincipalArn::parse(arn).map(|p| (p.kind, p.path.clone(), p.name.clone()));
            let want = want.map(|(k, p, n)| (k, p.to_string(), n.to_string()));
            assert_eq!(got, want, "{arn}");
            if let Some(p) = PrincipalArn::parse(arn) {
                assert_eq!(p.arn(), arn, "round trip");
            }
        }
    }

    #[test]
    fn iam_arns_with_paths() {
        assert_eq!(
            iam_arn("aws", "1", PrincipalKind::User, "/ops/", "a"),
            "arn:aws:iam::1:user/ops/a"
        );
        assert_eq!(
            iam_arn("aws", "1", PrincipalKind::Role, "", "r"),
            "arn:aws:iam::1:role/r"
        );
        assert_eq!(
            iam_arn("aws", "1", PrincipalKind::Group, "/g", "x"),
            "arn:aws:iam::1:group/g/x"
        );
    }

    #[test]
    fn callers() {
        let cases = [
            (
                "arn:aws:iam::1:user/ops/alice",
                "arn:aws:iam::1:user/ops/alice",
                true,
            ),
            (
                "arn:aws:iam::1:user/alice",
                "arn:aws:iam::1:user/ops/alice",
                false,
            ),
            (
                "arn:aws:iam::1:user/alice",
                "arn:aws:iam::2:user/alice",
                false,
            ),
            (
                "arn:aws:sts::1:assumed-role/Admin/alice",
                "arn:aws:iam::1:role/Admin",
                true,
            ),
            (
                "arn:aws:sts::1:assumed-role/Admin/alice",
                "arn:aws:iam::1:role/team/Admin",
                true,
            ),
            (
                "arn:aws:sts::1:assumed-role/Admin/alice",
                "arn:aws:iam::2:role/Admin",
                false,
            ),
            (
                "arn:aws:sts::1:assumed-role/Admin/alice",
                "arn:aws:iam::1:user/Admin",
                false,
            ),
            (
                "arn:aws:sts::1:assumed-role/Admin/alice",
                "arn:aws:iam::1:role/Admins",
                false,
            ),
            (
                "Security Hub custom action ReflexApprove",
                "arn:aws:iam::1:role/Admin",
                false,
            ),
            (
                "arn:aws:sts::1:federated-user/alice",
                "arn:aws:iam::1:user/alice",
                false,
            ),
        ];
        for (caller, principal, want) in cases {
            assert_eq!(is_caller(caller, principal), want, "{caller} / {principal}");
        }
    }

    #[test]
    fn protections() {
        let patterns = vec![
            "arn:aws:iam::*:user/breakglass/*".to_string(),
            "AIDAPROTECTED*".to_string(),
        ];
        let approver = Some("arn:aws:sts::1:assumed-role/SecOps/bob");
        let cases = [
            (
                "arn:aws:iam::1:user/breakglass/alice",
                Some("protected_principals"),
            ),
            ("arn:aws:iam::1:user/alice", None),
            ("AIDAPROTECTED123", Some("protected_principals")),
            ("AIDAOTHER", None),
            (
                "arn:aws:iam::1:role/reflex/ReflexIamDisableAccessKey",
                Some("Reflex's own roles"),
            ),
            ("arn:aws:iam::1:role/reflexive", None),
            ("arn:aws:iam::1:role/SecOps", Some("approver")),
            ("arn:aws:iam::1:role/Other", None),
        ];
        for (principal, want) in cases {
            let got = protection(&patterns, approver, principal);
            match want {
                Some(w) => assert!(
                    got.as_deref().is_some_and(|g| g.contains(w)),
                    "{principal}: {got:?}"
                ),
                None => assert_eq!(got, None, "{principal}"),
            }
        }
    }
}
