//! A scripted fake remediation for testing the pipeline once, for every function: its resource
//! is an in-memory flag (compliant or not), and each step fails as its script says. The ledger
//! it runs against is the real one, in the emulator; only the remediation is fake.

use reflex_shared::aws_error::Fault;
use reflex_shared::finding::{Finding, ResourceKind};
use reflex_shared::ledger::{Ledger, Lookup, OutcomeRecord};
use reflex_shared::policy::Risk;
use reflex_shared::remediation::{
    Applied, Context, Plan, Remediation, RemediationError, ResourceRef as Target, Spec, StepRecord,
    Tags, Unresolved,
};
use reflex_shared::trigger::Trigger;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::VecDeque;
use std::sync::Mutex;

pub static SCRIPTED_SPEC: Spec = Spec {
    name: "scripted-fake",
    risk: Risk::Low,
    triggers: &[Trigger::Control("S3.8")],
    iam_actions: &[],
    reversible: true,
    config_resource_types: &[],
    parameters: None,
    schedule: None,
    completion_events: &[],
    completion_timeout_seconds: 0,
    confirm_at_source: false,
};

/// The fake resource's state: fixed or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FakeState {
    pub fixed: bool,
}

/// The fake's one change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FakeStep {
    Fix,
    /// Undo.
    Unfix,
}

pub const FIX: &str = "fake:Fix";

/// How one call of a step goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Go {
    Ok,
    Transient,
    Permanent,
    /// The resource was deleted since the finding.
    Gone,
    /// `act` only: the change takes effect, then the answer is lost (a transient error).
    TransientAfterChange,
    /// `verify` only (a read after a change): this read still shows the old state (eventual
    /// consistency).
    Stale,
    /// A read that shows the resource fixed, whatever it is (a read that lags behind an undo).
    Fixed,
}

/// Per step, how each successive call goes; an empty queue means `Ok`.
#[derive(Debug, Default)]
pub struct Script {
    pub tags: VecDeque<Go>,
    pub inspect: VecDeque<Go>,
    pub act: VecDeque<Go>,
    /// Reads once a change was tried (verification, and reads by later attempts).
    pub verify: VecDeque<Go>,
}

pub struct Scripted {
    pub compliant: Mutex<bool>,
    pub script: Mutex<Script>,
    /// Changes that took effect.
    pub changes: Mutex<u32>,
    /// The record as the ledger held it when `act` was called (the checkpoint, seen from
    /// outside).
    pub seen_at_act: Mutex<Option<OutcomeRecord>>,
    /// A change was tried: later reads follow the `verify` script.
    tried: Mutex<bool>,
    /// The principals the fix would change (for `protected_principals`).
    pub principals: Mutex<Vec<String>>,
    /// Parts the plan leaves alone on purpose.
    pub untouched: Mutex<Vec<String>>,
    /// Sweeps run (scheduled invocations).
    ledger: Ledger,
}

fn fail(go: Go, api: &'static str) -> Result<(), RemediationError> {
    match go {
        Go::Ok | Go::Stale | Go::Fixed => Ok(()),
        Go::Transient | Go::TransientAfterChange => Err(RemediationError::Aws {
            api,
            message: "ThrottlingException: Rate exceeded (scripted)".into(),
            fault: Fault::Transient,
        }),
        Go::Permanent => Err(RemediationError::Aws {
            api,
            message: "AccessDenied: not allowed (scripted)".into(),
            fault: Fault::Permanent,
        }),
        Go::Gone => Err(RemediationError::Gone(
            "the resource is gone (scripted)".into(),
        )),
    }
}

impl Scripted {
    pub fn new(ledger: Ledger, script: Script) -> Scripted {
        Scripted {
            compliant: Mutex::new(false),
            script: Mutex::new(script),
            changes: Mutex::new(0),
            seen_at_act: Mutex::new(None),
            tried: Mutex::new(false),
            principals: Mutex::new(Vec::new()),
            untouched: Mutex::new(Vec::new()),
            ledger,
        }
    }

    fn next(&self, pick: impl Fn(&mut Script) -> &mut VecDeque<Go>) -> Go {
        pick(&mut self.script.lock().unwrap())
            .pop_front()
            .unwrap_or(Go::Ok)
    }

    pub fn changes(&self) -> u32 {
        *self.changes.lock().unwrap()
    }

    fn state(&self) -> FakeState {
        FakeState {
            fixed: *self.compliant.lock().unwrap(),
        }
    }
}

impl Remediation for Scripted {
    type Params = ();
    type Target = Target;
    type State = FakeState;
    type Step = FakeStep;
    type Output = ();

    fn spec(&self) -> &'static Spec {
        &SCRIPTED_SPEC
    }

    async fn resolve(&self, finding: &Finding, _params: &()) -> Result<Target, Unresolved> {
        let r = finding
            .resources
            .first()
            .ok_or_else(|| Unresolved::NoTarget("no resource".into()))?;
        Ok(Target {
            kind: ResourceKind::S3Bucket,
            id: r.id.clone(),
            arn: format!("arn:aws:s3:::{}", r.id),
            account: finding.account.clone(),
        })
    }

    async fn tags(&self, _target: &Target) -> Result<Tags, RemediationError> {
        fail(self.next(|s| &mut s.tags), "fake:GetTags").map(|_| Tags::new())
    }

    async fn inspect(
        &self,
        _ctx: &Context<'_>,
        _target: &Target,
    ) -> Result<FakeState, RemediationError> {
        let tried = *self.tried.lock().unwrap();
        let go = if tried {
            self.next(|s| &mut s.verify)
        } else {
            self.next(|s| &mut s.inspect)
        };
        fail(go, "fake:Read")?;
        if go == Go::Stale {
            return Ok(FakeState { fixed: false });
        }
        if go == Go::Fixed {
            return Ok(FakeState { fixed: true });
        }
        Ok(self.state())
    }

    fn plan(
        &self,
        _ctx: &Context<'_>,
        _target: &Target,
        state: &FakeState,
        _params: &(),
    ) -> Plan<FakeStep> {
        Plan {
            steps: if state.fixed {
                vec![]
            } else {
                vec![FakeStep::Fix]
            },
            untouched: self.untouched.lock().unwrap().clone(),
        }
    }

    fn principals(&self, _target: &Target, _step: &FakeStep) -> Vec<String> {
        self.principals.lock().unwrap().clone()
    }

    async fn apply(
        &self,
        _ctx: &Context<'_>,
        target: &Target,
        step: &FakeStep,
        _earlier: &[Applied<FakeStep, ()>],
    ) -> Result<(), RemediationError> {
        let seen = self
            .ledger
            .query(Lookup::Resource(&target.arn), None)
            .await
            .ok()
            .and_then(|mut rs| rs.pop());
        *self.seen_at_act.lock().unwrap() = seen;
        if *step == FakeStep::Unfix {
            *self.compliant.lock().unwrap() = false;
            return Ok(());
        }
        *self.tried.lock().unwrap() = true;
        let go = self.next(|s| &mut s.act);
        if matches!(go, Go::Ok | Go::TransientAfterChange) {
            *self.compliant.lock().unwrap() = true;
            *self.changes.lock().unwrap() += 1;
        }
        fail(go, FIX)
    }

    fn describe(&self, target: &Target, _step: &FakeStep) -> StepRecord {
        StepRecord {
            api: FIX,
            parameters: json!({ "Resource": target.id }),
        }
    }

    fn undo(
        &self,
        _target: &Target,
        _pre: &FakeState,
        _applied: &[Applied<FakeStep, ()>],
    ) -> Vec<FakeStep> {
        vec![FakeStep::Unfix]
    }
}
