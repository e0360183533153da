//! What a finding comes down to, resolved once and stored in the record: the one security group
//! it names and the ports that must not be open to the world. Approval and rollback work from
//! this stored target, never from the finding again.

use crate::offending::Offending;
use reflex_shared::finding::{partition_for_region, Finding, ResourceKind};
use reflex_shared::remediation::ResourceRef;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SgTarget {
    /// The group, as the record, exemptions and suppressions name it.
    pub resource: ResourceRef,
    pub group_id: String,
    pub offending: Offending,
}

/// A security group id: `sg-` and 8 or 17 lowercase hex digits. Anything else is hostile input.
pub fn valid_group_id(id: &str) -> bool {
    id.strip_prefix("sg-").is_some_and(|hex| {
        matches!(hex.len(), 8 | 17)
            && hex
                .chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
    })
}

pub fn group_arn(region: &str, account: &str, group_id: &str) -> String {
    format!(
        "arn:{}:ec2:{region}:{account}:security-group/{group_id}",
        partition_for_region(region)
    )
}

/// The one security group the finding names, in the finding's own account and region.
pub fn named_group(finding: &Finding) -> Result<ResourceRef, String> {
    let mut named: Vec<(String, Option<String>)> = Vec::new();
    for r in finding
        .resources
        .iter()
        .filter(|r| r.kind == ResourceKind::Ec2SecurityGroup)
    {
        if !named.iter().any(|(id, _)| *id == r.id) {
            named.push((r.id.clone(), r.arn.clone()));
        }
    }
    let (id, arn) = match named.as_slice() {
        [one] => one.clone(),
        [] => return Err("the finding names no security group".into()),
        many => {
            return Err(format!(
                "the finding names {} security groups; Reflex acts on exactly one",
                many.len()
            ))
        }
    };
    if !valid_group_id(&id) {
        return Err(format!("{id:?} is not a valid security group id"));
    }
    let ours = group_arn(&finding.region, &finding.account, &id);
    match arn {
        Some(arn) if arn != ours => Err(format!(
            "the security group {arn} is not in the finding's account {} and region {}",
            finding.account, finding.region
        )),
        _ => Ok(ResourceRef {
            kind: ResourceKind::Ec2SecurityGroup,
            id,
            arn: ours,
            account: finding.account.clone(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reflex_shared::finding::Resource;

    fn finding(resources: Vec<(&str, Option<&str>)>) -> Finding {
        let raw =
            include_str!("../../../events/sg-revoke-open-ingress/securityhub-ec2.13-ssh-open.json");
        let mut f = reflex_shared::finding::parse_event(&serde_json::from_str(raw).unwrap())
            .unwrap()
            .remove(0);
        f.resources = resources
            .into_iter()
            .map(|(id, arn)| Resource {
                kind: ResourceKind::Ec2SecurityGroup,
                id: id.into(),
                arn: arn.map(str::to_string),
            })
            .collect();
        f
    }

    #[test]
    fn the_group_a_finding_names() {
        let arn = "arn:aws:ec2:us-east-1:123456789012:security-group/sg-0123456789abcdef0";
        type Case<'a> = (Vec<(&'a str, Option<&'a str>)>, Result<&'a str, &'a str>);
        let cases: Vec<Case> = vec![
            (vec![("sg-0123456789abcdef0", Some(arn))], Ok(arn)),
            (vec![("sg-0123456789abcdef0", None)], Ok(arn)),
            (
                vec![
                    ("sg-0123456789abcdef0", Some(arn)),
                    ("sg-0123456789abcdef0", None),
                ],
                Ok(arn),
            ),
            (vec![], Err("no security group")),
            (
                vec![("sg-0123456789abcdef0", None), ("sg-01234567", None)],
                Err("2 security groups"),
            ),
            (vec![("sg-../../x", None)], Err("not a valid")),
            (
                vec![(
                    "sg-0123456789abcdef0",
                    Some("arn:aws:ec2:us-east-1:999999999999:security-group/sg-0123456789abcdef0"),
                )],
                Err("not in the finding's account"),
            ),
        ];
        for (resources, want) in cases {
            let got = named_group(&finding(resources.clone()));
            match (want, got) {
                (Ok(arn), Ok(r)) => {
                    assert_eq!(r.arn, arn);
                    assert_eq!(r.id, "sg-0123456789abcdef0");
                }
                (Err(word), Err(e)) => assert!(e.contains(word), "{resources:?}: {e}"),
                (want, got) => panic!("{resources:?}: want {want:?}, got {got:?}"),
            }
        }
    }
}
