//! Which instance a finding asks to patch, and whether Reflex may: pure, from the finding and
//! what SSM says of the instance.

use crate::model::PatchTarget;
use crate::params::Params;
use reflex_shared::finding::{named_instance, Finding, FindingKind, ResourceKind};
use reflex_shared::remediation::ResourceRef;

/// Why a finding starts no patch run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The finding names no one valid EC2 instance, or no vulnerability (`rejected / no-target`).
    NoTarget(String),
    /// Its severity is below the parameters' `min_severity` (`skipped / below-threshold`).
    BelowThreshold(String),
}

/// The one instance and the vulnerabilities a finding names, if its severity calls for a patch.
pub fn target_of(finding: &Finding, params: &Params) -> Result<PatchTarget, Refusal> {
    let no = |why: String| Err(Refusal::NoTarget(why));
    let vulnerability = match &finding.kind {
        FindingKind::Vulnerability(id) if !id.is_empty() => id.clone(),
        other => return no(format!("the finding names no vulnerability ({other:?})")),
    };
    if finding.severity.label < params.min_severity {
        return Err(Refusal::BelowThreshold(format!(
            "severity {:?} is below the parameters' min_severity {:?}",
            finding.severity.label, params.min_severity
        )));
    }
    let (id, arn) = named_instance(finding).map_err(Refusal::NoTarget)?;
    // Every CVE the finding names (Inspector lists them in `Vulnerabilities`), the kind's first.
    let mut vulnerabilities = vec![vulnerability];
    for v in &finding.details.vulnerabilities {
        if !vulnerabilities.contains(v) {
            vulnerabilities.push(v.clone());
        }
    }
    Ok(PatchTarget {
        instance: ResourceRef {
            kind: ResourceKind::Ec2Instance,
            id,
            arn,
            account: finding.account.clone(),
        },
        vulnerabilities,
    })
}

/// Whether SSM can run a command on the instance, from `DescribeInstanceInformation`: `None`
/// when SSM does not know it, else its agent's ping status. An instance whose agent is not
/// `Online` (stopped, agent lost) would hold the command pending until it times out, so it is
/// not managed as far as a patch run goes.
pub fn managed(instance_id: &str, ping_status: Option<&str>) -> Result<(), String> {
    match ping_status {
        Some("Online") => Ok(()),
        None => Err(format!(
            "instance {instance_id} is not managed by SSM (DescribeInstanceInformation does not list it)"
        )),
        Some(status) => Err(format!(
            "instance {instance_id}'s SSM agent is not reachable (ping status {status})"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reflex_shared::finding::{FindingDetails, Resource, Severity, SeverityLabel, Source};

    const ACCT: &str = "123456789012";
    const ID: &str = "i-0abc1234def567890";

    /// A resource as the finding names it: kind, id, ARN if given.
    type Named = (ResourceKind, &'static str, Option<String>);

    fn finding(kind: FindingKind, severity: u8, resources: Vec<Named>) -> Finding {
        Finding {
            source: Source::Securityhub,
            id: "f".into(),
            kind,
            title: "t".into(),
            severity: Severity::from_normalized(severity),
            product_arn: "arn:aws:securityhub:us-east-1::product/aws/inspector".into(),
            account: ACCT.into(),
            region: "us-east-1".into(),
            observed_at: None,
            generation: "g".into(),
            resources: resources
                .into_iter()
                .map(|(kind, id, arn)| Resource {
                    kind,
                    id: id.into(),
                    arn,
                })
                .collect(),
            details: FindingDetails::default(),
            inactive: None,
            intent: None,
            sample: false,
            requested_by: None,
            requested_at: None,
            securityhub_finding: None,
        }
    }

    fn inst(id: &'static str, arn: Option<String>) -> Named {
        (ResourceKind::Ec2Instance, id, arn)
    }

    fn cve() -> FindingKind {
        FindingKind::Vulnerability("CVE-2024-6387".into())
    }

    fn arn(id: &str) -> String {
        format!("arn:aws:ec2:us-east-1:{ACCT}:instance/{id}")
    }

    #[test]
    fn targets() {
        let other_account = format!("arn:aws:ec2:us-east-1:999999999999:instance/{ID}");
        let other_instance = arn("i-0000000000000000f");
        let not_ec2 = format!("arn:aws:s3:::{ID}");
        let cases: Vec<(Finding, Result<&str, &str>)> = vec![
            // CRITICAL, the instance by its ARN
            (finding(cve(), 90, vec![inst(ID, Some(arn(ID)))]), Ok(ID)),
            // no ARN given: built from the finding's partition, region and account
            (finding(cve(), 95, vec![inst(ID, None)]), Ok(ID)),
            // another kind of resource beside the instance does not matter
            (
                finding(
                    cve(),
                    90,
                    vec![(ResourceKind::S3Bucket, "b", None), inst(ID, None)],
                ),
                Ok(ID),
            ),
            (finding(cve(), 70, vec![inst(ID, None)]), Err("below")),
            (finding(cve(), 90, vec![]), Err("no EC2 instance")),
            (
                finding(
                    cve(),
                    90,
                    vec![inst(ID, None), inst("i-0000000000000000f", None)],
                ),
                Err("2 instances"),
            ),
            (
                finding(cve(), 90, vec![inst("i-../../x", None)]),
                Err("not a valid"),
            ),
            (
                finding(cve(), 90, vec![inst(ID, Some(other_account))]),
                Err("not name instance"),
            ),
            (
                finding(cve(), 90, vec![inst(ID, Some(other_instance))]),
                Err("not name instance"),
            ),
            (
                finding(cve(), 90, vec![inst(ID, Some(not_ec2))]),
                Err("not name instance"),
            ),
            (
                finding(
                    FindingKind::Control("EC2.8".into()),
                    90,
                    vec![inst(ID, None)],
                ),
                Err("no vulnerability"),
            ),
        ];
        for (f, want) in cases {
            let got = target_of(&f, &Params::default());
            match (got, want) {
                (Ok(t), Ok(id)) => {
                    assert_eq!(t.instance.id, id);
                    assert_eq!(t.instance.arn, arn(id));
                    assert_eq!(t.instance.account, ACCT);
                    assert_eq!(t.vulnerabilities, vec!["CVE-2024-6387".to_string()]);
                }
                (Err(Refusal::BelowThreshold(why)), Err(w)) => {
                    assert!(w == "below" && why.contains("below"), "{why}")
                }
                (Err(Refusal::NoTarget(why)), Err(w)) => assert!(why.contains(w), "{why} / {w}"),
                (got, want) => panic!("{got:?}, wanted {want:?} for {:?}", f.resources),
            }
        }
    }

    #[test]
    fn every_vulnerability_the_finding_names_is_kept_once() {
        let mut f = finding(cve(), 90, vec![inst(ID, None)]);
        f.details.vulnerabilities = vec!["CVE-2024-6387".into(), "CVE-2023-38408".into()];
        let t = target_of(&f, &Params::default()).unwrap();
        assert_eq!(t.vulnerabilities, vec!["CVE-2024-6387", "CVE-2023-38408"]);
    }

    #[test]
    fn the_threshold_is_the_parameters() {
        let f = finding(cve(), 70, vec![inst(ID, None)]);
        let at = |label| Params {
            min_severity: label,
            ..Params::default()
        };
        for (label, patched) in [
            (SeverityLabel::Critical, false),
            (SeverityLabel::High, true),
            (SeverityLabel::Low, true),
        ] {
            assert_eq!(target_of(&f, &at(label)).is_ok(), patched, "{label:?}");
        }
    }

    #[test]
    fn managed_only_when_online() {
        let cases = [
            (Some("Online"), Ok(())),
            (None, Err("not managed by SSM")),
            (Some("ConnectionLost"), Err("ping status ConnectionLost")),
            (Some("Inactive"), Err("ping status Inactive")),
        ];
        for (ping, want) in cases {
            match (managed(ID, ping), want) {
                (Ok(()), Ok(())) => {}
                (Err(why), Err(w)) => assert!(why.contains(w) && why.contains(ID), "{why}"),
                (got, want) => panic!("{ping:?}: {got:?}, wanted {want:?}"),
            }
        }
    }
}
