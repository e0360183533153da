//! Which instance a finding names (pure), for every fix aimed at one instance. The rest of the
//! target (its subnet, VPC and interfaces) is read from EC2, never taken from the payload.

use super::{partition_for_region, Finding, ResourceKind};

/// An EC2 instance id: `i-` and 8 or 17 lowercase hex digits. Anything else is hostile input.
pub fn valid_instance_id(id: &str) -> bool {
    id.strip_prefix("i-").is_some_and(|hex| {
        matches!(hex.len(), 8 | 17)
            && hex
                .chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
    })
}

/// The one instance the finding names: its id and ARN (as the finding gives it, or made from
/// the finding's region and account). Exactly one distinct instance, or why not.
pub fn named_instance(finding: &Finding) -> Result<(String, String), String> {
    let mut named: Vec<(String, Option<String>)> = Vec::new();
    for r in finding
        .resources
        .iter()
        .filter(|r| r.kind == ResourceKind::Ec2Instance)
    {
        if !named.iter().any(|(id, _)| *id == r.id) {
            named.push((r.id.clone(), r.arn.clone()));
        }
    }
    if named.is_empty() {
        if let Some(id) = &finding.details.instance_id {
            named.push((id.clone(), None));
        }
    }
    let (id, arn) = match named.as_slice() {
        [one] => one.clone(),
        [] => return Err("the finding names no EC2 instance".into()),
        many => {
            return Err(format!(
                "the finding names {} instances; Reflex acts on exactly one",
                many.len()
            ))
        }
    };
    if !valid_instance_id(&id) {
        return Err(format!("{id:?} is not a valid EC2 instance id"));
    }
    let arn = arn.unwrap_or_else(|| {
        format!(
            "arn:{}:ec2:{}:{}:instance/{id}",
            partition_for_region(&finding.region),
            finding.region,
            finding.account
        )
    });
    let ours = arn.starts_with("arn:")
        && arn.split(':').nth(2) == Some("ec2")
        && arn.split(':').nth(3) == Some(finding.region.as_str())
        && arn.split(':').nth(4) == Some(finding.account.as_str())
        && arn.ends_with(&format!(":instance/{id}"));
    if !ours {
        return Err(format!(
            "instance ARN {arn} does not name instance {id} in {} of account {}",
            finding.region, finding.account
        ));
    }
    Ok((id, arn))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::Resource;

    #[test]
    fn instance_ids() {
        let cases = [
            ("i-0123456789abcdef0", true),
            ("i-12345678", true),
            ("i-0123456789ABCDEF0", false),
            ("i-0123456789abcdef", false),
            ("i-../../etc", false),
            ("vol-0123456789abcdef0", false),
            ("", false),
        ];
        for (id, want) in cases {
            assert_eq!(valid_instance_id(id), want, "{id}");
        }
    }

    fn finding(resources: Vec<Resource>, instance_id: Option<&str>) -> Finding {
        let raw = include_str!(
            "../../../events/ec2-quarantine-instance/guardduty-backdoor-c-and-c-activity.json"
        );
        let mut f = crate::finding::parse_event(&serde_json::from_str(raw).unwrap())
            .unwrap()
            .remove(0);
        f.resources = resources;
        f.details.instance_id = instance_id.map(str::to_string);
        f
    }

    fn instance(id: &str, arn: Option<&str>) -> Resource {
        Resource {
            kind: ResourceKind::Ec2Instance,
            id: id.into(),
            arn: arn.map(str::to_string),
        }
    }

    #[test]
    fn named_instance_table() {
        const ID: &str = "i-0badc0ffee1234567";
        const ARN: &str = "arn:aws:ec2:us-east-1:123456789012:instance/i-0badc0ffee1234567";
        let bucket = Resource {
            kind: ResourceKind::S3Bucket,
            id: "b".into(),
            arn: None,
        };
        type Want = Result<(&'static str, &'static str), &'static str>;
        let cases: Vec<(&str, Finding, Want)> = vec![
            ("one instance", finding(vec![instance(ID, Some(ARN))], None), Ok((ID, ARN))),
            (
                "named twice, the same instance",
                finding(vec![instance(ID, Some(ARN)), instance(ID, Some(ARN))], None),
                Ok((ID, ARN)),
            ),
            ("no ARN: made from the finding", finding(vec![instance(ID, None)], None), Ok((ID, ARN))),
            ("only in the details", finding(vec![bucket.clone()], Some(ID)), Ok((ID, ARN))),
            ("none", finding(vec![bucket], None), Err("the finding names no EC2 instance")),
            (
                "two instances",
                finding(vec![instance(ID, None), instance("i-12345678", None)], None),
                Err("the finding names 2 instances; Reflex acts on exactly one"),
            ),
            (
                "a hostile id",
                finding(vec![instance("i-../x", None)], None),
                Err("\"i-../x\" is not a valid EC2 instance id"),
            ),
            (
                "an ARN of another account",
                finding(
                    vec![instance(ID, Some("arn:aws:ec2:us-east-1:999999999999:instance/i-0badc0ffee1234567"))],
                    None,
                ),
                Err("instance ARN arn:aws:ec2:us-east-1:999999999999:instance/i-0badc0ffee1234567 does not name instance i-0badc0ffee1234567 in us-east-1 of account 123456789012"),
            ),
            (
                "an ARN of another service",
                finding(vec![instance(ID, Some("arn:aws:s3:us-east-1:123456789012:instance/i-0badc0ffee1234567"))], None),
                Err("instance ARN arn:aws:s3:us-east-1:123456789012:instance/i-0badc0ffee1234567 does not name instance i-0badc0ffee1234567 in us-east-1 of account 123456789012"),
            ),
            (
                "a GovCloud instance",
                {
                    let mut f = finding(vec![instance(ID, None)], None);
                    f.region = "us-gov-west-1".into();
                    f
                },
                Ok((ID, "arn:aws-us-gov:ec2:us-gov-west-1:123456789012:instance/i-0badc0ffee1234567")),
            ),
        ];
        for (name, f, want) in cases {
            let got = named_instance(&f);
            let want = want
                .map(|(i, a)| (i.to_string(), a.to_string()))
                .map_err(str::to_string);
            assert_eq!(got, want, "{name}");
        }
    }
}
