//! The normalised finding and its parts.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

/// Where a finding came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    Guardduty,
    Securityhub,
    Config,
    CustomAction,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Guardduty => "guardduty",
            Source::Securityhub => "securityhub",
            Source::Config => "config",
            Source::CustomAction => "custom-action",
        }
    }

    /// Findings that live in Security Hub and can take a workflow update and a note.
    pub fn in_security_hub(self) -> bool {
        matches!(self, Source::Securityhub | Source::CustomAction)
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// What the finding says is wrong, in the vocabulary a remediation declares its triggers in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "name", rename_all = "kebab-case")]
pub enum FindingKind {
    /// A GuardDuty finding type, e.g. `Policy:S3/BucketBlockPublicAccessDisabled`.
    GuarddutyType(String),
    /// A Security Hub control id, e.g. `S3.2`.
    Control(String),
    /// An AWS Config rule: as parsed, its name as deployed; once the pipeline has resolved it
    /// through `config:DescribeConfigRules`, its managed-rule identifier
    /// (`S3_BUCKET_PUBLIC_READ_PROHIBITED`).
    ConfigRule(String),
    /// A software vulnerability (Amazon Inspector), by its id: `CVE-2024-1234`.
    Vulnerability(String),
    /// A real finding of a kind Reflex does not act on (a third-party product, a per-standard
    /// control id with no known security control): handled by no remediation, with this
    /// description as the reason.
    Unrecognised(String),
}

impl FindingKind {
    pub fn name(&self) -> &str {
        match self {
            FindingKind::GuarddutyType(s)
            | FindingKind::Control(s)
            | FindingKind::ConfigRule(s)
            | FindingKind::Vulnerability(s)
            | FindingKind::Unrecognised(s) => s,
        }
    }
}

/// Severity label, as Security Hub names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SeverityLabel {
    Informational,
    Low,
    Medium,
    High,
    Critical,
}

impl SeverityLabel {
    /// The label for a normalised 0–100 score (Security Hub's bands).
    pub fn from_normalized(n: u8) -> Self {
        match n {
            0 => SeverityLabel::Informational,
            1..=39 => SeverityLabel::Low,
            40..=69 => SeverityLabel::Medium,
            70..=89 => SeverityLabel::High,
            _ => SeverityLabel::Critical,
        }
    }

    /// A representative score for a label given without a number.
    pub fn normalized(self) -> u8 {
        match self {
            SeverityLabel::Informational => 0,
            SeverityLabel::Low => 1,
            SeverityLabel::Medium => 40,
            SeverityLabel::High => 70,
            SeverityLabel::Critical => 90,
        }
    }
}

/// Severity normalised to 0–100, with its label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Severity {
    pub normalized: u8,
    pub label: SeverityLabel,
}

impl Severity {
    pub fn from_normalized(n: u8) -> Self {
        let n = n.min(100);
        Severity {
            normalized: n,
            label: SeverityLabel::from_normalized(n),
        }
    }

    /// GuardDuty scores 1.0–10.0 with its own bands (Low < 4, Medium < 7, High < 9, Critical).
    pub fn from_guardduty(score: f64) -> Self {
        let normalized = (score * 10.0).round().clamp(0.0, 100.0) as u8;
        let label = if score < 1.0 {
            SeverityLabel::Informational
        } else if score < 4.0 {
            SeverityLabel::Low
        } else if score < 7.0 {
            SeverityLabel::Medium
        } else if score < 9.0 {
            SeverityLabel::High
        } else {
            SeverityLabel::Critical
        };
        Severity { normalized, label }
    }

    /// AWS Config compliance changes carry no severity. Reflex rates them MEDIUM (40), so that a
    /// policy threshold above 40 is needed to ignore them; written down in the README.
    pub fn unrated_config() -> Self {
        Severity::from_normalized(40)
    }
}

/// Resource types Reflex knows by name (ASFF type names); anything else is kept verbatim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum ResourceKind {
    S3Bucket,
    Ec2Instance,
    Ec2SecurityGroup,
    IamAccessKey,
    IamUser,
    IamRole,
    IamGroup,
    IamPolicy,
    CloudTrailTrail,
    Other(String),
}

impl ResourceKind {
    pub fn as_str(&self) -> &str {
        match self {
            ResourceKind::S3Bucket => "AwsS3Bucket",
            ResourceKind::Ec2Instance => "AwsEc2Instance",
            ResourceKind::Ec2SecurityGroup => "AwsEc2SecurityGroup",
            ResourceKind::IamAccessKey => "AwsIamAccessKey",
            ResourceKind::IamUser => "AwsIamUser",
            ResourceKind::IamRole => "AwsIamRole",
            ResourceKind::IamGroup => "AwsIamGroup",
            ResourceKind::IamPolicy => "AwsIamPolicy",
            ResourceKind::CloudTrailTrail => "AwsCloudTrailTrail",
            ResourceKind::Other(s) => s,
        }
    }

    /// From any of the three vocabularies: ASFF (`AwsS3Bucket`), AWS Config / CloudFormation
    /// (`AWS::S3::Bucket`) and GuardDuty (`S3Bucket`, `Instance`, `AccessKey`).
    pub fn parse(name: &str) -> Self {
        match name {
            "AwsS3Bucket" | "AWS::S3::Bucket" | "S3Bucket" => ResourceKind::S3Bucket,
            "AwsEc2Instance" | "AWS::EC2::Instance" | "Instance" => ResourceKind::Ec2Instance,
            "AwsEc2SecurityGroup" | "AWS::EC2::SecurityGroup" => ResourceKind::Ec2SecurityGroup,
            "AwsIamAccessKey" | "AccessKey" => ResourceKind::IamAccessKey,
            "AwsIamUser" | "AWS::IAM::User" => ResourceKind::IamUser,
            "AwsIamRole" | "AWS::IAM::Role" => ResourceKind::IamRole,
            "AwsIamGroup" | "AWS::IAM::Group" => ResourceKind::IamGroup,
            "AwsIamPolicy" | "AWS::IAM::Policy" | "AWS::IAM::ManagedPolicy" => {
                ResourceKind::IamPolicy
            }
            "AwsCloudTrailTrail" | "AWS::CloudTrail::Trail" => ResourceKind::CloudTrailTrail,
            other => ResourceKind::Other(other.to_string()),
        }
    }
}

impl From<String> for ResourceKind {
    fn from(s: String) -> Self {
        ResourceKind::parse(&s)
    }
}

impl From<ResourceKind> for String {
    fn from(k: ResourceKind) -> Self {
        k.as_str().to_string()
    }
}

/// A resource a finding names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resource {
    #[serde(rename = "type")]
    pub kind: ResourceKind,
    /// The short id: bucket name, instance id, access key id…
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
}

/// Fields some remediations need, lifted out of the source-specific shapes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FindingDetails {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
    /// The type of the principal that used the access key (GuardDuty `accessKeyDetails.userType`,
    /// ASFF `AwsIamAccessKey.PrincipalType`): `IAMUser`, `AssumedRole`, `Root`, `Federated`…
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_type: Option<String>,
    /// The principal's id (GuardDuty `accessKeyDetails.principalId`, ASFF
    /// `AwsIamAccessKey.PrincipalId`): `AIDA…`, or `AROA…:session` for a role session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal_id: Option<String>,
    /// Every remote address the finding names (network connection, API call, each port probe,
    /// RDP login attempt, Kubernetes API call), v4 and v6, in that order, each once. Text that
    /// is not an address is left out, never guessed at. Records written before this field held
    /// one `remote_ip` string: it is read into this list.
    #[serde(
        default,
        alias = "remote_ip",
        deserialize_with = "stored_remote_ips",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub remote_ips: Vec<IpAddr>,
    /// The domain a DNS finding names (GuardDuty `service.action.dnsRequestAction.domain`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_domain: Option<String>,
    /// The resources an API call touched, by CloudFormation type (GuardDuty
    /// `awsApiCallAction.affectedResources`): `AWS::CloudTrail::Trail` → the trail's ARN.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub affected_resources: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
    /// The role of the finding's resource in the activity (GuardDuty `service.resourceRole`,
    /// ProductFields `aws/guardduty/service/resourceRole`): `TARGET` (attacked) or `ACTOR`
    /// (attacking). A fix aimed at an attacker never treats an `ACTOR` resource as the victim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_role: Option<String>,
    /// The GuardDuty finding's ARN (`arn:aws:guardduty:REGION:ACCOUNT:detector/D/finding/F`):
    /// where it can be read back (GuardDuty `GetFindings` by detector and id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guardduty_arn: Option<String>,
    /// The Config rule's name as deployed (the finding's kind names its identity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_rule: Option<String>,
    /// The parameters the Security Hub control was evaluated with (ASFF
    /// `Compliance.SecurityControlParameters`): `authorizedTcpPorts` → `["80", "443"]`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub control_parameters: BTreeMap<String, Vec<String>>,
    /// The vulnerability ids (`CVE-…`) of an Inspector finding (ASFF `Vulnerabilities[].Id`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vulnerabilities: Vec<String>,
}

/// `remote_ips` as stored: a list of addresses, or the one `remote_ip` string of a record
/// written before the list. Read as text and parsed here, so that an entry that is not an
/// address is dropped rather than failing the whole record.
fn stored_remote_ips<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<IpAddr>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Stored {
        One(String),
        Many(Vec<String>),
    }
    let texts = match Stored::deserialize(d)? {
        Stored::One(ip) => vec![ip],
        Stored::Many(ips) => ips,
    };
    Ok(texts.iter().filter_map(|t| t.parse().ok()).collect())
}

/// The identifiers Security Hub knows a finding by (`AwsSecurityFindingIdentifier`): where
/// `BatchUpdateFindings` must send Reflex's note and workflow status. For a GuardDuty finding
/// imported into Security Hub, `id` is the GuardDuty finding's ARN, not the GuardDuty id the
/// record is keyed on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityHubIdentifier {
    /// The ASFF `Id`.
    pub id: String,
    /// The ASFF `ProductArn`.
    pub product_arn: String,
}

/// What an analyst asked for with a Security Hub custom action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Intent {
    /// "Reflex: remediate" — run the fix now (policy and exemptions still apply).
    Remediate,
    /// "Reflex: approve" — approve a fix the policy holds for approval.
    Approve,
}

/// Custom action ids of a stack made before ids were scoped by stack (`action/custom/<id>` in
/// the ARN); still recognised.
pub const REMEDIATE_ACTION_ID: &str = "ReflexRemediate";
pub const APPROVE_ACTION_ID: &str = "ReflexApprove";
/// The SAM template's custom action ids: these prefixes and 8 hex digits from the stack's id,
/// so two stacks in one account and region each have their own (an id is at most 20
/// alphanumerics). Each stack's rules route only its own actions' ARNs.
pub const REMEDIATE_ACTION_PREFIX: &str = "ReflexFix";
pub const APPROVE_ACTION_PREFIX: &str = "ReflexAllow";

/// Which Reflex custom action an id (`action/custom/<id>`) is, if it is one.
pub fn action_intent(id: &str) -> Option<Intent> {
    let scoped = |prefix: &str| {
        id.strip_prefix(prefix)
            .is_some_and(|s| s.len() == 8 && s.bytes().all(|b| b.is_ascii_hexdigit()))
    };
    if id == REMEDIATE_ACTION_ID || scoped(REMEDIATE_ACTION_PREFIX) {
        Some(crate::finding::Intent::Remediate)
    } else if id == APPROVE_ACTION_ID || scoped(APPROVE_ACTION_PREFIX) {
        Some(crate::finding::Intent::Approve)
    } else {
        None
    }
}

/// The normalised finding: every source parses into this.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub source: Source,
    /// The source's own finding id (GuardDuty id, ASFF `Id`, or rule/type/resource for Config).
    pub id: String,
    pub kind: FindingKind,
    pub title: String,
    pub severity: Severity,
    pub product_arn: String,
    pub account: String,
    pub region: String,
    /// When the source last observed the problem, as the source wrote it.
    pub observed_at: Option<String>,
    /// What distinguishes one occurrence of this finding from the next (the source's update
    /// time). A redelivered event has the same generation; a recurrence has a new one.
    pub generation: String,
    pub resources: Vec<Resource>,
    pub details: FindingDetails,
    /// `Some(why)` when the finding no longer asks for action: archived, resolved, suppressed,
    /// passed or compliant.
    pub inactive: Option<String>,
    /// Set for custom-action events.
    pub intent: Option<Intent>,
    /// A GuardDuty sample finding ("Generate sample findings"): never acted on unless the
    /// policy opts in.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sample: bool,
    /// Who asked for this run: the custom action and its time, or the operator's STS identity
    /// (`reflex approve`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_by: Option<String>,
    /// Set for every finding that came through Security Hub (imported or custom action): the
    /// Security Hub finding to report to. `None` for findings straight from GuardDuty or Config,
    /// and in records stored before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub securityhub_finding: Option<SecurityHubIdentifier>,
    /// When it was asked for (RFC 3339): the custom action's event time, the time an operator's
    /// proof was signed, or the CLI's now. An approval approves only a plan shown before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_at: Option<String>,
}

/// A timestamp in one canonical form (RFC 3339, UTC, milliseconds), whatever form the source
/// wrote (`+00:00`, microseconds, no fraction): so one finding generation has one key, however
/// it arrives. Text that is no timestamp is kept as it is.
pub fn canonical_time(text: &str) -> String {
    match chrono::DateTime::parse_from_rfc3339(text.trim()) {
        Ok(t) => t
            .with_timezone(&chrono::Utc)
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        Err(_) => text.to_string(),
    }
}

/// The detector and finding id of a GuardDuty finding ARN
/// (`arn:aws:guardduty:REGION:ACCOUNT:detector/D/finding/F`).
pub fn guardduty_arn_parts(arn: &str) -> Option<(&str, &str)> {
    let rest = arn.split(':').nth(5)?;
    let rest = rest.strip_prefix("detector/")?;
    let (detector, finding) = rest.split_once("/finding/")?;
    (!detector.is_empty() && !finding.is_empty() && !finding.contains('/'))
        .then_some((detector, finding))
}

impl Finding {
    /// Threat findings (GuardDuty) act faster by default than hygiene findings (controls, rules).
    pub fn is_threat(&self) -> bool {
        matches!(self.kind, FindingKind::GuarddutyType(_))
    }

    /// The family whose ids this finding's id belongs to, for its record key: a GuardDuty
    /// finding has one identity whether it arrives from GuardDuty or through Security Hub.
    pub fn family(&self) -> &'static str {
        match (&self.kind, self.source) {
            (FindingKind::GuarddutyType(_), _) => "guardduty",
            (_, Source::Config) => "config",
            _ => "securityhub",
        }
    }
}

#[cfg(test)]
mod guardduty_arn_tests {
    use super::guardduty_arn_parts;

    #[test]
    fn guardduty_arns_split_into_detector_and_finding() {
        let cases = [
            (
                "arn:aws:guardduty:us-east-1:1:detector/d1/finding/f1",
                Some(("d1", "f1")),
            ),
            (
                "arn:aws-us-gov:guardduty:us-gov-west-1:1:detector/d/finding/f",
                Some(("d", "f")),
            ),
            ("arn:aws:guardduty:us-east-1:1:detector/d1", None),
            ("arn:aws:guardduty:us-east-1:1:detector//finding/f1", None),
            ("arn:aws:guardduty:us-east-1:1:detector/d1/finding/", None),
            (
                "arn:aws:guardduty:us-east-1:1:detector/d1/finding/f/x",
                None,
            ),
            ("f1", None),
        ];
        for (arn, want) in cases {
            assert_eq!(guardduty_arn_parts(arn), want, "{arn}");
        }
    }

    #[test]
    fn reflex_actions_by_id_scoped_or_not() {
        let cases = [
            ("ReflexRemediate", Some(crate::finding::Intent::Remediate)),
            ("ReflexApprove", Some(crate::finding::Intent::Approve)),
            ("ReflexFix1a2b3c4d", Some(crate::finding::Intent::Remediate)),
            ("ReflexAllowdeadbeef", Some(crate::finding::Intent::Approve)),
            ("ReflexFix1a2b3c4", None),
            ("ReflexFix1a2b3c4d5", None),
            ("ReflexAllowzzzzzzzz", None),
            ("ReflexFix", None),
            ("OtherTeamAction", None),
            ("reflexremediate", None),
        ];
        for (id, want) in cases {
            assert_eq!(crate::finding::action_intent(id), want, "{id}");
        }
    }
}
