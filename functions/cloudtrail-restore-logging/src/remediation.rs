//! The remediation on the core's trait: each part a few lines over the pure module and the
//! CloudTrail adapter.

use crate::aws::{START_LOGGING, STOP_LOGGING, UPDATE_TRAIL};
use crate::target::{named_trail, TrailTarget};
use crate::trail::{self, Ask, Listed, TrailState, TrailStep};
use crate::{CloudTrailRestoreLogging, Params, SPEC};
use reflex_shared::finding::{Finding, FindingKind};
use reflex_shared::remediation::{
    Applied, Context, Plan, Remediation, RemediationError, ResourceRef, Spec, StepRecord, Subject,
    Tags, Unresolved,
};
use reflex_shared::status::Reason;
use serde_json::json;

impl Subject for TrailTarget {
    fn resource(&self) -> &ResourceRef {
        &self.resource
    }
}

impl CloudTrailRestoreLogging {
    /// An account-level Config rule: the account's one stopped trail.
    async fn stopped_trail(
        &self,
        finding: &Finding,
        rule: &str,
    ) -> Result<TrailTarget, Unresolved> {
        let trails = self.cloudtrail.list().await?;
        // Each trail's status is its own read: all at once, one round.
        let listed: Vec<Listed> = futures::future::try_join_all(trails.iter().map(|t| async {
            Ok::<_, RemediationError>(Listed {
                arn: t.arn.clone(),
                multi_region: t.multi_region,
                logging: self.cloudtrail.logging(&t.arn, &t.home_region).await?,
            })
        }))
        .await?;
        let multi_region_only = rule == "MULTI_REGION_CLOUD_TRAIL_ENABLED";
        match trail::stopped_trail(&listed, multi_region_only) {
            Ok(l) => match trails.iter().find(|t| t.arn == l.arn) {
                Some(t) => Ok(TrailTarget::new(finding, t, Ask::Logging)),
                None => Err(Unresolved::NoTarget(format!(
                    "trail {} is not among the trails listed",
                    l.arn
                ))),
            },
            Err((true, why)) => Err(Unresolved::NoTarget(why)),
            Err((false, why)) => Err(Unresolved::Skip(Reason::NotApplicable, why)),
        }
    }
}

impl Remediation for CloudTrailRestoreLogging {
    type Params = Params;
    type Target = TrailTarget;
    type State = TrailState;
    type Step = TrailStep;
    type Output = ();

    fn spec(&self) -> &'static Spec {
        &SPEC
    }

    /// The trail the finding names (read from CloudTrail for its home region), or, for a rule
    /// that evaluates the account, the account's one stopped trail.
    async fn resolve(&self, finding: &Finding, _p: &Params) -> Result<TrailTarget, Unresolved> {
        let ask = Ask::of(&finding.kind).ok_or_else(|| {
            Unresolved::NoTarget(format!("{} asks nothing of a trail", finding.kind.name()))
        })?;
        if let FindingKind::ConfigRule(rule) = &finding.kind {
            return self.stopped_trail(finding, rule).await;
        }
        let arn = named_trail(finding)
            .ok_or_else(|| Unresolved::NoTarget("the finding names no CloudTrail trail".into()))?;
        match self.cloudtrail.find(&arn).await? {
            Some(t) => Ok(TrailTarget::new(finding, &t, ask)),
            // The wording: a deleted trail is skipped, for want of a target.
            None => Err(Unresolved::Skip(
                Reason::NoTarget,
                format!("trail {arn} no longer exists: nothing to start"),
            )),
        }
    }

    async fn tags(&self, t: &TrailTarget) -> Result<Tags, RemediationError> {
        self.cloudtrail.tags(t.arn(), &t.home_region).await
    }

    /// Read in the trail's home region, as AWS has it.
    async fn inspect(
        &self,
        _ctx: &Context<'_>,
        t: &TrailTarget,
    ) -> Result<TrailState, RemediationError> {
        let (logging, validation) = tokio::join!(
            self.cloudtrail.logging(t.arn(), &t.home_region),
            self.cloudtrail.validation(t.arn(), &t.home_region)
        );
        Ok(TrailState {
            logging: logging?,
            log_file_validation: validation?,
        })
    }

    fn plan(
        &self,
        _ctx: &Context<'_>,
        t: &TrailTarget,
        s: &TrailState,
        _p: &Params,
    ) -> Plan<TrailStep> {
        trail::plan(t.ask, s)
    }

    async fn apply(
        &self,
        _ctx: &Context<'_>,
        t: &TrailTarget,
        step: &TrailStep,
        _earlier: &[Applied<TrailStep, ()>],
    ) -> Result<(), RemediationError> {
        let (arn, home) = (t.arn(), t.home_region.as_str());
        match step {
            TrailStep::StartLogging => self.cloudtrail.start(arn, home).await,
            TrailStep::StopLogging => self.cloudtrail.stop(arn, home).await,
            TrailStep::SetValidation(on) => self.cloudtrail.set_validation(arn, home, *on).await,
        }
    }

    fn describe(&self, t: &TrailTarget, step: &TrailStep) -> StepRecord {
        let (arn, region) = (t.arn(), &t.home_region);
        match step {
            TrailStep::StartLogging => StepRecord {
                api: START_LOGGING,
                parameters: json!({ "Name": arn, "Region": region }),
            },
            TrailStep::StopLogging => StepRecord {
                api: STOP_LOGGING,
                parameters: json!({ "Name": arn, "Region": region }),
            },
            TrailStep::SetValidation(on) => StepRecord {
                api: UPDATE_TRAIL,
                parameters: json!({ "Name": arn, "Region": region, "EnableLogFileValidation": on }),
            },
        }
    }

    fn undo(
        &self,
        _t: &TrailTarget,
        _pre: &TrailState,
        applied: &[Applied<TrailStep, ()>],
    ) -> Vec<TrailStep> {
        let steps: Vec<TrailStep> = applied.iter().map(|a| a.step).collect();
        trail::undo(&steps)
    }
}
