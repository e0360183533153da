//! The decision for one finding: act (in which mode) or skip (and why). Pure.

use super::context::{tags_hold, Exempted, Tags};
use super::{Mode, Policy, Risk, Settings, DEFAULT_SEVERITY_THRESHOLD};
use crate::finding::{Finding, FindingKind, Intent};
use crate::status::Reason;
use crate::trigger::config_rule_base_names;
use chrono::NaiveDate;
use wildmatch::WildMatch;

/// The policy's word on one finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Act(Decision),
    Skip { reason: Reason, detail: String },
}

/// What the remediation may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub mode: Mode,
    /// Why this mode: which layer of the policy set it.
    pub because: String,
    /// The policy's mode was `approve`, and this run is an analyst's or operator's approval:
    /// it may carry out only a plan that was shown for approval.
    pub approval: bool,
    pub exemption_tag: String,
    pub max_changes_per_hour: u32,
    pub max_attempts: u32,
    /// `exemptions.protected_principals`: checked against every principal a fix would change.
    pub protected_principals: Vec<String>,
    /// Read the finding back from its source before acting: the pipeline sets it from the
    /// policy's `confirm_at_source` or the remediation's spec.
    pub confirm_at_source: bool,
    /// Set when the mode is dry-run whatever the policy says (the kill switch, the first-deploy
    /// policy): the dry-run record's reason, which is not final.
    pub forced: Option<Reason>,
}

impl Decision {
    /// Why `principal` (an ARN or a unique id) must not be changed, if it must not: a
    /// `protected_principals` pattern, one of Reflex's own roles, or `approver` (the identity
    /// approving this run).
    pub fn protects(&self, principal: &str, approver: Option<&str>) -> Option<String> {
        crate::principal::protection(&self.protected_principals, approver, principal)
    }
}

fn glob(pattern: &str, text: &str) -> bool {
    WildMatch::new(pattern).matches(text)
}

impl Policy {
    /// The checks that need no target and no AWS read: is the finding live, real, trusted,
    /// ours, wanted and severe enough? `Some(skip)` decides; `None` lets `evaluate` go on.
    pub fn screen(
        &self,
        remediation: &str,
        finding: &Finding,
        own_account: &str,
    ) -> Option<Verdict> {
        if let Some(verdict) = self.screen_source(finding, own_account) {
            return Some(verdict);
        }
        let (settings, because) = self.settings_for(remediation, finding, None);
        screen_settings(&settings, &because, finding)
    }
}

/// The layered settings' word on a finding: disabled, or below the threshold.
fn screen_settings(settings: &Settings, because: &str, finding: &Finding) -> Option<Verdict> {
    let skip = |reason, detail: String| Some(Verdict::Skip { reason, detail });
    if settings.enabled == Some(false) {
        return skip(Reason::Disabled, format!("disabled by {because}"));
    }
    let threshold = settings
        .severity_threshold
        .unwrap_or(DEFAULT_SEVERITY_THRESHOLD);
    if finding.severity.normalized < threshold {
        return skip(
            Reason::BelowThreshold,
            format!(
                "severity {} is below threshold {threshold}",
                finding.severity.normalized
            ),
        );
    }
    None
}

impl Policy {
    /// The checks that depend on nothing the policy says per finding kind: is the finding
    /// live, real, from a trusted product and for this account? What a Config rule is must be
    /// known before its overrides (enabled, threshold) can be judged, so a Config finding
    /// meets only these before its rule is identified.
    pub fn screen_source(&self, finding: &Finding, own_account: &str) -> Option<Verdict> {
        let skip = |reason, detail: String| Some(Verdict::Skip { reason, detail });
        if let Some(why) = &finding.inactive {
            return skip(Reason::FindingInactive, why.clone());
        }
        if finding.sample && !self.act_on_sample_findings {
            return skip(
                Reason::SampleFinding,
                "a GuardDuty sample finding (Generate sample findings); the policy's act_on_sample_findings is off".into(),
            );
        }
        if !self
            .trusted_products
            .iter()
            .any(|p| glob(p, &finding.product_arn))
        {
            return skip(
                Reason::Untrusted,
                format!("product {} is not in trusted_products", finding.product_arn),
            );
        }
        if finding.account != own_account {
            return skip(
                Reason::Untrusted,
                format!(
                    "finding is for account {}, this function runs in {own_account}",
                    finding.account
                ),
            );
        }
        None
    }

    /// Decide for `finding`, which names `target_arn`, in this function's `own_account`, today,
    /// before the resource's tags are read.
    pub fn evaluate(
        &self,
        remediation: &str,
        risk: Risk,
        finding: &Finding,
        target_arn: &str,
        own_account: &str,
    ) -> Verdict {
        let today = chrono::Utc::now().date_naive();
        self.evaluate_at(
            remediation,
            risk,
            finding,
            target_arn,
            own_account,
            None,
            today,
        )
    }

    /// Decide for `finding`, which names `target_arn`, in this function's `own_account`, on
    /// `today` (UTC), with the resource's `tags` once they are read (`None` before: overrides
    /// and exemptions by tag, the exemption tag and infrastructure as code wait for them).
    /// Checks run from the most fundamental (is the finding real and ours?) to the most
    /// specific; the first that fails decides.
    #[allow(clippy::too_many_arguments)]
    pub fn evaluate_at(
        &self,
        remediation: &str,
        risk: Risk,
        finding: &Finding,
        target_arn: &str,
        own_account: &str,
        tags: Option<&Tags>,
        today: NaiveDate,
    ) -> Verdict {
        let skip = |reason, detail: String| Verdict::Skip { reason, detail };
        if let Some(verdict) = self.screen(remediation, finding, own_account) {
            return verdict;
        }
        let (settings, because) = self.settings_for(remediation, finding, tags);
        // An override by tag may disable or raise the threshold too.
        if let Some(verdict) = screen_settings(&settings, &because, finding) {
            return verdict;
        }
        let (ended, doubt) = match self.exempted(target_arn, &finding.account, tags, today) {
            Exempted::Yes(why) => return skip(Reason::Exempt, why),
            Exempted::Tagged(why) if !finding.is_threat() => return skip(Reason::Exempt, why),
            // On a threat finding the resource may be in other hands: its own tag is no
            // exemption a person answers for, so a person approves or not.
            Exempted::Tagged(why) => (
                Vec::new(),
                Some(format!(
                    "{why}; but on a threat finding the resource's own tag is not trusted to exempt it (whoever controls the resource can set it), so the fix waits for approval"
                )),
            ),
            Exempted::Unhonoured(why) => (Vec::new(), Some(why)),
            Exempted::No(ended) => (ended, None),
        };
        if let Some(why) =
            crate::principal::protection(&self.exemptions.protected_principals, None, target_arn)
        {
            return skip(Reason::Protected, why);
        }
        let forced = self.forced_dry_run();
        let (mut mode, mut because) = match (&forced, settings.mode) {
            // The kill switch and the first-deploy policy win over every mode: an approval
            // under them is refused like any approval under dry-run.
            (Some((_, why)), _) => (Mode::DryRun, why.clone()),
            (None, Some(mode)) => (mode, because),
            (None, None) => (
                risk.default_mode(finding.is_threat()),
                format!("the default for {risk} risk"),
            ),
        };
        // Infrastructure as code owns the resource: enforce would fight it (its next deploy
        // puts the change back), so the policy's `iac.mode` instead. Before the approval
        // below, so that an approval approves what this held.
        if let Some(owner) = tags
            .filter(|_| mode == Mode::Enforce && self.iac.mode != Mode::Enforce)
            .and_then(|t| self.iac_owner(t))
        {
            because = format!("{owner} ({} over enforce by {because})", self.iac.mode);
            mode = self.iac.mode;
        }
        // An exemption tag that cannot be honoured stops nothing by itself, and acts on nothing
        // by itself either: a person decides (dry-run stays dry-run).
        if let Some(why) = doubt {
            if mode == Mode::Enforce {
                because = format!("{why} (approve over enforce by {because})");
                mode = Mode::Approve;
            } else {
                because = format!("{because}; {why}");
            }
        }
        // "Reflex: approve" is the approval an `approve` mode waits for. "Reflex: remediate" runs
        // the fix under the policy (approve mode still waits), and a dry-run policy stays
        // dry-run: no button overrides the operator's choice.
        let approval = mode == Mode::Approve && finding.intent == Some(Intent::Approve);
        if approval {
            mode = Mode::Enforce;
            because = format!(
                "approved by {}",
                finding
                    .requested_by
                    .as_deref()
                    .unwrap_or("the Reflex: approve custom action")
            );
        }
        if !ended.is_empty() {
            because = format!("{because}; {}", ended.join("; "));
        }
        Verdict::Act(Decision {
            mode,
            because,
            approval,
            exemption_tag: self.exemptions.tag.clone(),
            max_changes_per_hour: self.max_changes_per_hour(remediation),
            max_attempts: self.max_attempts(remediation),
            protected_principals: self.exemptions.protected_principals.clone(),
            confirm_at_source: false,
            forced: forced.map(|(reason, _)| reason),
        })
    }

    /// The mode for `remediation` on `finding` (an override's, or the risk's default): what the
    /// sweep honours for the finding whose change it ends.
    pub fn mode_for(&self, remediation: &str, risk: Risk, finding: &Finding) -> Mode {
        if self.forced_dry_run().is_some() {
            return Mode::DryRun;
        }
        let (settings, _) = self.settings_for(remediation, finding, None);
        settings
            .mode
            .unwrap_or_else(|| risk.default_mode(finding.is_threat()))
    }

    /// The layered settings for one remediation and finding, and the most specific layer that
    /// set anything (for the record's reason).
    /// An override with `tags` holds only once `tags` are known and hold.
    fn settings_for(
        &self,
        remediation: &str,
        finding: &Finding,
        tags: Option<&Tags>,
    ) -> (Settings, String) {
        let mut settings = self.defaults.clone();
        let mut because = "defaults".to_string();
        let mut layer = |over: &Settings, name: String| {
            if *over != Settings::default() {
                settings = over.over(&settings);
                because = name;
            }
        };
        if let Some(acct) = self.accounts.get(&finding.account) {
            layer(acct, format!("accounts.{}", finding.account));
        }
        if let Some(rp) = self.remediations.get(remediation) {
            layer(&rp.settings(), format!("remediations.{remediation}"));
            for (i, o) in rp.overrides.iter().enumerate() {
                let types_ok =
                    o.when.types.is_empty() || o.when.types.iter().any(|t| types_match(t, finding));
                let accounts_ok =
                    o.when.accounts.is_empty() || o.when.accounts.contains(&finding.account);
                let by_tag = match (o.when.tags.is_empty(), tags) {
                    (true, _) => Some(String::new()),
                    (false, Some(tags)) => {
                        tags_hold(&o.when.tags, tags).map(|t| format!(" (tag {t})"))
                    }
                    (false, None) => None,
                };
                if let Some(by_tag) = by_tag.filter(|_| types_ok && accounts_ok) {
                    layer(
                        &o.set,
                        format!("remediations.{remediation}.overrides[{i}]{by_tag}"),
                    );
                }
            }
        }
        (settings, because)
    }
}

/// Does an override's `types` pattern (`*` allowed) name this finding? A GuardDuty type or a
/// control id by itself. A Config rule by every name it goes by, so an override written for a
/// rule holds however the pipeline came to know it: the managed-rule identifier the pipeline
/// resolved (`S3_BUCKET_PUBLIC_READ_PROHIBITED`), the name it is deployed under (kept in
/// `details.config_rule` once resolved; the kind itself before), and the base name inside a
/// Security Hub or conformance-pack deployed name (`s3-bucket-public-read-prohibited`).
fn types_match(pattern: &str, finding: &Finding) -> bool {
    if glob(pattern, finding.kind.name()) {
        return true;
    }
    let FindingKind::ConfigRule(name) = &finding.kind else {
        return false;
    };
    let deployed = finding.details.config_rule.as_deref().unwrap_or(name);
    glob(pattern, deployed) || config_rule_base_names(deployed).any(|base| glob(pattern, base))
}
