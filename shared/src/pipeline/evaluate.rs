//! Evaluation: the Config rule a finding names known by its identity, the finding and its
//! target judged by the policy, and the remediation's parameters.

use super::finding_run::{sort_error, Flow, Run, Stop, Work};
use crate::config_rules::RuleIdentity;
use crate::finding::{Finding, FindingKind};
use crate::ledger::OutcomeRecord;
use crate::policy::{Decision, Policy, PolicyError, Tags, Verdict};
use crate::remediation::{Remediation, Subject, Unresolved};
use crate::status::{Reason, Status};
use serde_json::Value;

impl<R: Remediation> Run<'_, R> {
    /// A Config finding names its rule by the name its owner chose. Resolve the rule through
    /// `config:DescribeConfigRules`: an AWS-managed rule becomes its identifier, whatever its
    /// name; a custom rule is `untrusted` unless the policy names its ARN (with the identifier
    /// it stands for). Finding-level checks come first, so an inactive or foreign finding
    /// costs no AWS read.
    pub(super) async fn identify_config_rule(
        &self,
        finding: &mut Finding,
        policy: &Result<Policy, PolicyError>,
        record: &mut OutcomeRecord,
    ) -> Flow {
        let FindingKind::ConfigRule(name) = &finding.kind else {
            return Ok(());
        };
        if finding.details.config_rule.is_some() {
            // Resolved already: a stored finding (an approval of a record), whose kind is the
            // rule's identity, not a name to look up again.
            return Ok(());
        }
        let name = name.clone();
        let Ok(policy) = policy else {
            return Ok(()); // `evaluate` records the invalid policy.
        };
        // Only what needs no rule identity: an override by the rule's identifier (enabled, a
        // threshold) can be judged only once the rule is known, in `evaluate`.
        if let Some(Verdict::Skip { reason, detail }) =
            policy.screen_source(finding, &self.setup.account_id)
        {
            record.set_outcome(Status::Skipped, reason, detail);
            return Err(Stop::Decided);
        }
        let untrusted = |record: &mut OutcomeRecord, detail: String| {
            record.set_outcome(Status::Skipped, Reason::Untrusted, detail);
            Err(Stop::Decided)
        };
        let identifier = match self.setup.config_rules.identify(&name).await {
            Ok(Some(RuleIdentity::Managed { identifier, .. })) => identifier,
            Ok(Some(RuleIdentity::Custom { owner, arn })) => {
                match policy.trusted_config_rules.get(&arn) {
                    Some(identifier) => identifier.clone(),
                    None => {
                        return untrusted(
                            record,
                            format!(
                                "Config rule {name} ({arn}) is a {owner} rule, not AWS-managed, whatever its name; name its ARN under trusted_config_rules to act on it"
                            ),
                        )
                    }
                }
            }
            Ok(None) => {
                return untrusted(
                    record,
                    format!("no Config rule named {name} in this account and region"),
                )
            }
            Err(e) => return Err(sort_error(record, "identify", e, Reason::InspectError)),
        };
        finding.details.config_rule = Some(name);
        finding.kind = FindingKind::ConfigRule(identifier);
        record.finding = Some(finding.clone());
        Ok(())
    }

    /// Detect and evaluate: the finding-level checks first (no AWS read for a finding that is
    /// inactive, untrusted or unwanted), then the remediation's parameters, its target
    /// (`resolve`, which may read AWS), and the checks on the target.
    pub(super) async fn evaluate(
        &self,
        finding: &Finding,
        policy: &Result<Policy, PolicyError>,
        record: &mut OutcomeRecord,
        stored: Option<Value>,
    ) -> Flow<(R::Target, Decision, R::Params)> {
        let spec = self.remediation.spec();
        if !spec.triggers.iter().any(|t| t.matches(&finding.kind)) {
            let detail = match &finding.kind {
                FindingKind::Unrecognised(what) => format!("{what}: not handled by Reflex"),
                kind => format!(
                    "{} {:?} is not handled by {}",
                    finding.source,
                    kind.name(),
                    spec.name
                ),
            };
            record.set_outcome(Status::Rejected, Reason::NotHandled, detail);
            return Err(Stop::Decided);
        }
        let policy = match policy {
            Ok(p) => p,
            Err(e) => {
                record.set_outcome(Status::Failed, Reason::PolicyInvalid, e.to_string());
                return Err(Stop::Decided);
            }
        };
        if let Some(Verdict::Skip { reason, detail }) =
            policy.screen(spec.name, finding, &self.setup.account_id)
        {
            record.set_outcome(Status::Skipped, reason, detail);
            return Err(Stop::Decided);
        }
        let params = match parameters::<R::Params>(spec.name, policy.parameters(spec.name)) {
            Ok(p) => p,
            Err(e) => {
                record.set_outcome(Status::Failed, Reason::PolicyInvalid, e);
                return Err(Stop::Decided);
            }
        };
        // A stored target (an approval of a record) is the one the plan was made for.
        let stored = stored.map(serde_json::from_value::<R::Target>);
        let resolved = match stored {
            Some(Ok(t)) => Ok(t),
            Some(Err(e)) => {
                record.set_outcome(
                    Status::Failed,
                    Reason::ActionError,
                    format!("the record's stored target cannot be read: {e}"),
                );
                return Err(Stop::Decided);
            }
            None => self.remediation.resolve(finding, &params).await,
        };
        let target = match resolved {
            Ok(t) => t,
            Err(Unresolved::NoTarget(why)) => {
                record.set_outcome(Status::Rejected, Reason::NoTarget, why);
                return Err(Stop::Decided);
            }
            Err(Unresolved::Skip(reason, why)) => {
                record.set_outcome(Status::Skipped, reason, why);
                return Err(Stop::Decided);
            }
            Err(Unresolved::Aws(e)) => {
                return Err(sort_error(record, "resolve", e, Reason::InspectError))
            }
        };
        let named = target.resource();
        record.resource_arn = Some(named.arn.clone());
        record.resource = finding.resources.iter().find(|r| r.id == named.id).cloned();
        match policy.evaluate(
            spec.name,
            spec.risk,
            finding,
            &target.resource().arn,
            &self.setup.account_id,
        ) {
            Verdict::Skip { reason, detail } => {
                record.set_outcome(Status::Skipped, reason, detail);
                Err(Stop::Decided)
            }
            Verdict::Act(mut d) => {
                d.confirm_at_source = policy.confirm_at_source(spec.name, spec.confirm_at_source);
                Ok((target, d, params))
            }
        }
    }
}

impl<R: Remediation> Run<'_, R> {
    /// The decision again, now that the resource's tags are read (beside the claim: no extra
    /// call), by the same pure policy code: an override by tag, infrastructure as code, an
    /// exemption by tag or the exemption tag (a malformed one fails closed). The kill switch
    /// and the first-deploy policy still win: they force dry-run before any of these.
    pub(super) fn decide_with_tags(&self, w: &mut Work<R>, tags: &Tags) -> Flow {
        let Ok(policy) = w.policy.as_ref() else {
            return Ok(()); // `evaluate` stopped an invalid policy before the claim
        };
        let spec = self.remediation.spec();
        let arn = w.target.resource().arn.clone();
        let today = chrono::Utc::now().date_naive();
        let account = &self.setup.account_id;
        let verdict = policy.evaluate_at(
            spec.name,
            spec.risk,
            &w.finding,
            &arn,
            account,
            Some(tags),
            today,
        );
        match verdict {
            Verdict::Skip { reason, detail } => Err(w.decide(Status::Skipped, reason, detail)),
            Verdict::Act(mut d) => {
                d.confirm_at_source = w.decision.confirm_at_source;
                w.record.mode = Some(d.mode);
                w.decision = d;
                Ok(())
            }
        }
    }

    /// The approval tier: under enforce, a plan with a step that cannot be undone waits for
    /// approval, unless the policy opts this remediation out (the policy's `tier`).
    pub(super) fn tier(&self, w: &mut Work<R>, steps: &[R::Step]) {
        let Ok(policy) = w.policy.as_ref() else {
            return;
        };
        let r = self.remediation;
        let step = steps
            .iter()
            .find(|s| r.irreversible(s))
            .map(|s| r.describe(&w.target, s).api);
        if let Some((mode, because)) =
            policy.tier(r.spec().name, w.decision.mode, &w.decision.because, step)
        {
            w.decision.mode = mode;
            w.decision.because = because;
            w.record.mode = Some(mode);
        }
    }
}

/// The remediation's parameters from the policy (`remediations.<name>.parameters`); none
/// given reads as `{}`, so a required parameter missing is an error. An error names the key.
fn parameters<P: serde::de::DeserializeOwned>(
    remediation: &str,
    value: Option<&Value>,
) -> Result<P, String> {
    let key =
        |e: serde_json::Error| format!("policy key `remediations.{remediation}.parameters`: {e}");
    match value {
        // None given: read as `{}`, so a required key missing is named (a remediation taking
        // no parameters at all, `()`, reads as null).
        None | Some(Value::Null) => serde_json::from_value(Value::Object(Default::default()))
            .or_else(|e| serde_json::from_value(Value::Null).map_err(|_| key(e))),
        Some(v) => serde_json::from_value(v.clone()).map_err(key),
    }
}

/// The remediation's parameters under `policy`, or why there are none to be had (the policy
/// is invalid, or its parameters section is). Public for `reflex policy validate`.
pub fn parameters_in<P: serde::de::DeserializeOwned>(
    policy: &Result<Policy, PolicyError>,
    remediation: &str,
) -> Result<P, String> {
    match policy {
        Ok(p) => parameters(remediation, p.parameters(remediation)),
        Err(e) => Err(e.to_string()),
    }
}
