//! The policy document as written by operators, and its validation.

use super::{Mode, PolicyError};
use crate::catalog::REMEDIATIONS;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The exemption tag when the policy names none.
pub const DEFAULT_EXEMPTION_TAG: &str = "reflex:exempt";
/// How far ahead an exemption tag may end when the policy does not say (`exemptions.tag_max_days`).
pub const DEFAULT_TAG_MAX_DAYS: u32 = 90;
/// Security Hub product ARNs trusted when the policy names none: AWS's own integrations
/// (GuardDuty, Security Hub controls, Config, Inspector…), in every partition and region.
pub const DEFAULT_TRUSTED_PRODUCTS: &[&str] = &["arn:aws*:securityhub:*::product/aws/*"];
/// The blast-radius budget when the policy names none: changes per remediation per hour.
pub const DEFAULT_MAX_CHANGES_PER_HOUR: u32 = 20;
/// Attempts (claims taken) a finding gets before its record ends `failed / retries-exhausted`,
/// when the policy names none. Matches Lambda's asynchronous delivery: one try and 2 retries.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;
/// Findings below this normalised severity are skipped when the policy names no threshold.
pub const DEFAULT_SEVERITY_THRESHOLD: u8 = 1;

/// The whole policy document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Format version; only 1 exists.
    pub version: u32,
    /// Settings for every remediation.
    #[serde(default)]
    pub defaults: Settings,
    /// Product ARN patterns (`*`, `?`) whose findings may be acted on.
    #[serde(default = "default_trusted_products")]
    pub trusted_products: Vec<String>,
    #[serde(default)]
    pub exemptions: Exemptions,
    /// Resources owned by infrastructure as code: an `enforce` on them becomes `iac.mode`.
    #[serde(default)]
    pub iac: Iac,
    /// Settings per AWS account id, over `defaults`.
    #[serde(default)]
    pub accounts: BTreeMap<String, Settings>,
    /// Settings per remediation, over `accounts`.
    #[serde(default)]
    pub remediations: BTreeMap<String, RemediationPolicy>,
    /// Act on GuardDuty sample findings ("Generate sample findings"), e.g. to rehearse in a
    /// sandbox account. Off by default: they describe resources that were never at risk.
    #[serde(default)]
    pub act_on_sample_findings: bool,
    /// Custom Config rules to trust, by ARN, each with the managed-rule identifier it stands
    /// for (`S3_BUCKET_PUBLIC_READ_PROHIBITED`). Any other custom rule is `untrusted`,
    /// whatever its name.
    #[serde(default)]
    pub trusted_config_rules: BTreeMap<String, String>,
    /// Who may send a function a command (approve, rollback): patterns (`*`, `?`) of the ARN
    /// STS answers for the command's signed proof (`arn:aws:iam::ACCOUNT:user/NAME`,
    /// `arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`), of the function's own account. Empty
    /// (the default): no one may; operators use the `reflex` CLI in process.
    #[serde(default)]
    pub operators: Vec<String>,
    /// The kill switch: every remediation that would act runs in dry-run instead (records its
    /// plan, changes nothing), whatever its mode. `reflex policy kill-switch on|off` sets it;
    /// warm functions obey within `REFLEX_POLICY_MAX_AGE_SECONDS`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub kill_switch: bool,
    /// The outcomes told to the stack's notification topic, each once per record (see
    /// `crate::notify`); `[]` tells none.
    #[serde(default = "crate::notify::default_notify")]
    pub notify: Vec<crate::notify::NotifyOn>,
    /// Set only on the built-in first-deploy policy (the deployment's parameter does not exist
    /// yet): why every remediation runs in dry-run, said in every dry-run record. Never read from
    /// a document.
    #[serde(skip)]
    pub first_deploy: Option<String>,
}

/// Settings that can be layered; an absent field leaves the layer below in force.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    /// Normalised severity (0–100) a finding must reach.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity_threshold: Option<u8>,
}

impl Settings {
    /// This layer over `below`.
    pub fn over(&self, below: &Settings) -> Settings {
        Settings {
            enabled: self.enabled.or(below.enabled),
            mode: self.mode.or(below.mode),
            severity_threshold: self.severity_threshold.or(below.severity_threshold),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exemptions {
    /// A resource carrying this tag key is exempt until the date its value names:
    /// `<YYYY-MM-DD>;<reason>`. The value `false` is no exemption. A tag that cannot be honoured
    /// (malformed, ending beyond `tag_max_days`, or on a threat finding, where whoever controls
    /// the resource may have set it) exempts nothing and holds the fix for approval instead.
    #[serde(default = "default_exemption_tag")]
    pub tag: String,
    /// The furthest end an exemption tag may name, in days from today: a tag that ends later
    /// is not honoured (the fix waits for approval), so a tag cannot exempt a resource for ever.
    #[serde(default = "default_tag_max_days")]
    pub tag_max_days: u32,
    /// Exemptions declared in advance, each with its owner, its reason and its end.
    #[serde(default)]
    pub rules: Vec<Exemption>,
    /// The old form, bare ARN patterns with no owner and no end: refused, naming `rules`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub arns: Vec<String>,
    /// Principal ARN patterns never to be changed (break-glass roles, automation users).
    #[serde(default)]
    pub protected_principals: Vec<String>,
}

impl Default for Exemptions {
    fn default() -> Self {
        Exemptions {
            tag: default_exemption_tag(),
            tag_max_days: DEFAULT_TAG_MAX_DAYS,
            rules: Vec::new(),
            arns: Vec::new(),
            protected_principals: Vec::new(),
        }
    }
}

/// One exemption: what it matches, why, who answers for it, and until when (inclusive, UTC).
/// `reason`, `owner` and `expires` are optional to serde only so that validation can name the
/// one missing at its line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exemption {
    #[serde(rename = "match")]
    pub when: ExemptionMatch,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// `YYYY-MM-DD`: the last day the exemption applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
}

/// Every listed field must hold; within a field, any listed value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExemptionMatch {
    /// Resource ARN patterns (`*`, `?`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub arns: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accounts: Vec<String>,
    /// Resource tags, each key with a value pattern (`*`, `?`); all must be present.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

/// The tags that say infrastructure as code owns a resource, and what `enforce` becomes there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Iac {
    /// `KEY` (any value) or `KEY=VALUE` (`*`, `?` in the value). Default: CloudFormation's
    /// `aws:cloudformation:stack-name`, which CDK stacks carry too. Terraform has no standard
    /// tag: name the one your modules set (`managed-by=terraform`).
    #[serde(default = "default_iac_tags")]
    pub tags: Vec<String>,
    /// What `enforce` becomes on such a resource: `approve` (default), `dry-run`, or `enforce`
    /// (the switch off: IaC-owned resources are fixed like any other).
    #[serde(default = "default_iac_mode")]
    pub mode: Mode,
}

impl Default for Iac {
    fn default() -> Self {
        Iac {
            tags: default_iac_tags(),
            mode: default_iac_mode(),
        }
    }
}

/// The tag CloudFormation puts on every resource of a stack (CDK's included).
pub const CLOUDFORMATION_STACK_TAG: &str = "aws:cloudformation:stack-name";

fn default_iac_tags() -> Vec<String> {
    vec![CLOUDFORMATION_STACK_TAG.to_string()]
}

fn default_iac_mode() -> Mode {
    Mode::Approve
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemediationPolicy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity_threshold: Option<u8>,
    /// Blast-radius budget: at most this many changes in any hour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_changes_per_hour: Option<u32>,
    /// Attempts before a finding that keeps meeting transient errors is given up as
    /// `failed / retries-exhausted` (1-10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
    /// Read the finding back from its source before acting (see the spec's
    /// `confirm_at_source`); absent: the remediation's own default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirm_at_source: Option<bool>,
    /// A fix with a step that cannot be undone (a deleted login profile, a patch) waits for
    /// approval whatever the mode (default `true`); `false` lets `enforce` carry it out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approve_irreversible: Option<bool>,
    /// The remediation's own settings (a KMS key, a rule-number range…), validated by the
    /// remediation's `Params` type: an unknown key is an error naming it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<serde_json::Value>,
    /// Applied in order over the remediation's settings when their `match` holds.
    #[serde(default)]
    pub overrides: Vec<Override>,
}

impl RemediationPolicy {
    pub fn settings(&self) -> Settings {
        Settings {
            enabled: self.enabled,
            mode: self.mode,
            severity_threshold: self.severity_threshold,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Override {
    #[serde(rename = "match")]
    pub when: Match,
    pub set: Settings,
}

/// Every listed field must hold; within a field, any listed value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Match {
    /// Finding types, control ids or Config rule base names (`*` and `?` allowed).
    #[serde(default)]
    pub types: Vec<String>,
    #[serde(default)]
    pub accounts: Vec<String>,
    /// Resource tags, each key with a value pattern (`*`, `?`): judged once the tags are read
    /// (beside the claim), so an override by tag chooses the mode, never whether to read.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

fn default_exemption_tag() -> String {
    DEFAULT_EXEMPTION_TAG.to_string()
}

fn default_tag_max_days() -> u32 {
    DEFAULT_TAG_MAX_DAYS
}

fn default_trusted_products() -> Vec<String> {
    DEFAULT_TRUSTED_PRODUCTS
        .iter()
        .map(|s| s.to_string())
        .collect()
}

impl Default for Policy {
    /// The built-in policy: risk-based modes, default trust, exemption tag and budget.
    fn default() -> Self {
        Policy {
            version: 1,
            defaults: Settings::default(),
            trusted_products: default_trusted_products(),
            exemptions: Exemptions::default(),
            iac: Iac::default(),
            accounts: BTreeMap::new(),
            remediations: BTreeMap::new(),
            act_on_sample_findings: false,
            trusted_config_rules: BTreeMap::new(),
            operators: Vec::new(),
            kill_switch: false,
            notify: crate::notify::default_notify(),
            first_deploy: None,
        }
    }
}

/// Why every remediation is in dry-run when the deployment's policy parameter does not exist.
pub fn first_deploy_note(parameter: &str) -> String {
    format!(
        "no policy at {parameter} yet: every remediation runs in dry-run; `reflex policy push` sets one"
    )
}

/// The decision's reason when the kill switch is on.
pub const KILL_SWITCH_ON: &str =
    "kill switch on (the policy's kill_switch: true; `reflex policy kill-switch off` lifts it)";

impl Policy {
    /// The first-deploy policy: applied where the deployment's policy parameter does not exist
    /// (a stack just deployed, before anyone pushed a policy). The built-in defaults, with every
    /// remediation in dry-run: nothing changes until an operator chooses, and each record says
    /// why (see [`first_deploy_note`]).
    pub fn first_deploy(parameter: &str) -> Policy {
        Policy {
            defaults: Settings {
                mode: Some(super::Mode::DryRun),
                ..Settings::default()
            },
            first_deploy: Some(first_deploy_note(parameter)),
            ..Policy::default()
        }
    }

    /// Why every remediation runs in dry-run whatever its mode, if it does: the first-deploy
    /// policy, or the kill switch.
    /// The record's reason says which (`first-deploy`, `kill-switch`): such a dry-run is not
    /// final, so the next delivery runs again under the policy then in force.
    pub fn forced_dry_run(&self) -> Option<(crate::status::Reason, String)> {
        use crate::status::Reason;
        match (&self.first_deploy, self.kill_switch) {
            (Some(note), _) => Some((
                Reason::FirstDeploy,
                format!("the first-deploy policy ({note})"),
            )),
            (None, true) => Some((Reason::KillSwitch, KILL_SWITCH_ON.to_string())),
            (None, false) => None,
        }
    }

    /// Parse and validate a YAML document.
    pub fn from_yaml(text: &str) -> Result<Policy, PolicyError> {
        let policy: Policy =
            serde_norway::from_str(text).map_err(|e| PolicyError::Syntax(e.to_string()))?;
        policy.validate()?;
        Ok(policy)
    }

    /// The checks serde cannot make. Each error names the offending key; the first one found.
    pub fn validate(&self) -> Result<(), PolicyError> {
        match self.problems().into_iter().next() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Every check serde cannot make that fails, each naming its key, in document order (for
    /// `reflex policy validate`, which shows them all).
    pub fn problems(&self) -> Vec<PolicyError> {
        let mut out: Vec<PolicyError> = Vec::new();
        let invalid = |key: String, message: &str| PolicyError::Invalid {
            key,
            message: message.to_string(),
        };
        if self.version != 1 {
            out.push(invalid("version".into(), "only version 1 exists"));
        }
        out.extend(check_settings("defaults", &self.defaults).err());
        if self.trusted_products.is_empty() {
            out.push(invalid(
                "trusted_products".into(),
                "empty: no finding could ever be trusted",
            ));
        }
        out.extend(check_patterns("trusted_products", &self.trusted_products).err());
        if self.exemptions.tag.trim().is_empty() {
            out.push(invalid("exemptions.tag".into(), "must not be empty"));
        }
        if !(1..=3650).contains(&self.exemptions.tag_max_days) {
            out.push(invalid(
                "exemptions.tag_max_days".into(),
                "must be from 1 to 3650",
            ));
        }
        if !self.exemptions.arns.is_empty() {
            out.push(invalid(
                "exemptions.arns".into(),
                "an exemption needs a reason, an owner and an end: write each pattern as an entry of exemptions.rules (match: {arns: [...]}, reason, owner, expires: YYYY-MM-DD)",
            ));
        }
        for (i, e) in self.exemptions.rules.iter().enumerate() {
            out.extend(super::context::check_exemption(
                &format!("exemptions.rules[{i}]"),
                e,
            ));
        }
        out.extend(check_patterns("iac.tags", &self.iac.tags).err());
        out.extend(
            check_patterns(
                "exemptions.protected_principals",
                &self.exemptions.protected_principals,
            )
            .err(),
        );
        out.extend(check_patterns("operators", &self.operators).err());
        if let Some(i) = self.operators.iter().position(|p| !p.starts_with("arn:")) {
            out.push(invalid(
                format!("operators[{i}]"),
                "not an ARN pattern (arn:aws:iam::ACCOUNT:user/NAME, arn:aws:sts::ACCOUNT:assumed-role/ROLE/*)",
            ));
        }
        for (arn, identifier) in &self.trusted_config_rules {
            let key = format!("trusted_config_rules.{arn}");
            if !(arn.starts_with("arn:") && arn.contains(":config-rule/")) {
                out.push(invalid(
                    key.clone(),
                    "not a Config rule ARN (arn:aws:config:REGION:ACCOUNT:config-rule/…)",
                ));
            }
            if identifier.is_empty()
                || !identifier
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
            {
                out.push(invalid(
                    key,
                    "the value must be a managed-rule identifier such as S3_BUCKET_PUBLIC_READ_PROHIBITED",
                ));
            }
        }
        for (account, settings) in &self.accounts {
            out.extend(check_account(&format!("accounts.{account}"), account).err());
            out.extend(check_settings(&format!("accounts.{account}"), settings).err());
        }
        for (name, rp) in &self.remediations {
            let key = format!("remediations.{name}");
            if !REMEDIATIONS.contains(&name.as_str()) {
                out.push(invalid(
                    key.clone(),
                    &format!("unknown remediation; known: {}", REMEDIATIONS.join(", ")),
                ));
            }
            out.extend(check_settings(&key, &rp.settings()).err());
            if rp.max_changes_per_hour == Some(0) {
                out.push(invalid(
                    format!("{key}.max_changes_per_hour"),
                    "0 would block every change; use enabled: false",
                ));
            }
            if rp.max_attempts.is_some_and(|n| !(1..=10).contains(&n)) {
                out.push(invalid(
                    format!("{key}.max_attempts"),
                    "must be from 1 to 10",
                ));
            }
            for (i, o) in rp.overrides.iter().enumerate() {
                let key = format!("{key}.overrides[{i}]");
                if o.when.types.is_empty() && o.when.accounts.is_empty() && o.when.tags.is_empty() {
                    out.push(invalid(
                        format!("{key}.match"),
                        "names no types, accounts or tags",
                    ));
                }
                out.extend(check_patterns(&format!("{key}.match.types"), &o.when.types).err());
                for (j, a) in o.when.accounts.iter().enumerate() {
                    out.extend(check_account(&format!("{key}.match.accounts[{j}]"), a).err());
                }
                out.extend(check_settings(&format!("{key}.set"), &o.set).err());
                // Whoever may tag a resource chooses the overrides that match its tags: such an
                // override may choose a mode, never stop the fix (that is an exemption, which has
                // a reason, an owner and an end).
                if !o.when.tags.is_empty()
                    && (o.set.enabled.is_some() || o.set.severity_threshold.is_some())
                {
                    out.push(invalid(
                        format!("{key}.set"),
                        "an override that matches tags may set only `mode`; to stop fixes by tag, declare an exemption (exemptions.rules with match: {tags: ...}, reason, owner, expires)",
                    ));
                }
            }
        }
        out
    }

    /// The parameters section of one remediation, if the policy has one.
    pub fn parameters(&self, remediation: &str) -> Option<&serde_json::Value> {
        self.remediations
            .get(remediation)
            .and_then(|r| r.parameters.as_ref())
    }

    /// Attempts for one remediation before `retries-exhausted`.
    /// Whether `remediation` reads its findings back from their source before acting: the
    /// policy's word, else the remediation's `default`.
    pub fn confirm_at_source(&self, remediation: &str, default: bool) -> bool {
        self.remediations
            .get(remediation)
            .and_then(|r| r.confirm_at_source)
            .unwrap_or(default)
    }

    /// Whether a fix of `remediation` with a step that cannot be undone waits for approval.
    pub fn approve_irreversible(&self, remediation: &str) -> bool {
        self.remediations
            .get(remediation)
            .and_then(|r| r.approve_irreversible)
            .unwrap_or(true)
    }

    pub fn max_attempts(&self, remediation: &str) -> u32 {
        self.remediations
            .get(remediation)
            .and_then(|r| r.max_attempts)
            .unwrap_or(DEFAULT_MAX_ATTEMPTS)
    }

    /// The budget for one remediation.
    pub fn max_changes_per_hour(&self, remediation: &str) -> u32 {
        self.remediations
            .get(remediation)
            .and_then(|r| r.max_changes_per_hour)
            .unwrap_or(DEFAULT_MAX_CHANGES_PER_HOUR)
    }
}

fn check_settings(key: &str, s: &Settings) -> Result<(), PolicyError> {
    match s.severity_threshold {
        Some(t) if t > 100 => Err(PolicyError::Invalid {
            key: format!("{key}.severity_threshold"),
            message: format!("{t} is over 100 (thresholds are normalised severities 0-100)"),
        }),
        _ => Ok(()),
    }
}

pub(super) fn check_account(key: &str, account: &str) -> Result<(), PolicyError> {
    if account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(PolicyError::Invalid {
            key: key.to_string(),
            message: format!("{account:?} is not a 12-digit AWS account id"),
        })
    }
}

pub(super) fn check_patterns(key: &str, patterns: &[String]) -> Result<(), PolicyError> {
    match patterns.iter().position(|p| p.trim().is_empty()) {
        Some(i) => Err(PolicyError::Invalid {
            key: format!("{key}[{i}]"),
            message: "empty pattern".into(),
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operators_are_arn_patterns_and_none_by_default() {
        assert!(Policy::default().operators.is_empty());
        let p = Policy::from_yaml("version: 1\noperators: ['arn:aws:iam::123456789012:user/alice', 'arn:aws:sts::*:assumed-role/Oncall/*']").unwrap();
        assert_eq!(p.operators.len(), 2);
        for (yaml, key) in [
            ("version: 1\noperators: ['alice']", "`operators[0]`"),
            (
                "version: 1\noperators: ['arn:aws:iam::1:user/a', ' ']",
                "`operators[1]`",
            ),
            (
                "version: 1\noperators: 'arn:aws:iam::1:user/a'",
                "operators",
            ),
        ] {
            let e = Policy::from_yaml(yaml).unwrap_err().to_string();
            assert!(e.contains(key), "{yaml}: {e}");
        }
    }
}
