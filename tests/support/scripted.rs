//! A scripted fake remediation for testing the pipeline once, for every function: its resource
//! is an in-memory flag (compliant or not), and each step fails as its script says. The ledger
//! it runs against is the real one, in the emulator; only the remediation is fake.

use reflex_shared::aws_error::Fault;
use reflex_shared::finding::{Finding, ResourceKind};
use reflex_shared::ledger::{Action, Ledger, Lookup, OutcomeRecord};
use reflex_shared::policy::Risk;
use reflex_shared::remediation::{
    ActError, Inspection, Remediation, RemediationError, Spec, Tags, Target,
};
use reflex_shared::trigger::Trigger;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::sync::Mutex;

pub static SCRIPTED_SPEC: Spec = Spec {
    name: "scripted-fake",
    risk: Risk::Low,
    triggers: &[Trigger::Control("S3.8")],
    iam_actions: &[],
    reversible: true,
};

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
    /// `verify` only: this read still shows the old state (eventual consistency).
    Stale,
}

/// Per step, how each successive call goes; an empty queue means `Ok`.
#[derive(Debug, Default)]
pub struct Script {
    pub tags: VecDeque<Go>,
    pub inspect: VecDeque<Go>,
    pub act: VecDeque<Go>,
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
    ledger: Ledger,
}

fn fail(go: Go, api: &'static str) -> Result<(), RemediationError> {
    match go {
        Go::Ok | Go::Stale => Ok(()),
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

    fn state(&self) -> Inspection {
        let compliant = *self.compliant.lock().unwrap();
        Inspection {
            compliant,
            state: json!({ "fixed": compliant }),
        }
    }
}

impl Remediation for Scripted {
    fn spec(&self) -> &'static Spec {
        &SCRIPTED_SPEC
    }

    fn target(&self, finding: &Finding) -> Result<Target, String> {
        let r = finding.resources.first().ok_or("no resource")?;
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

    async fn inspect(&self, _target: &Target) -> Result<Inspection, RemediationError> {
        fail(self.next(|s| &mut s.inspect), "fake:Read")?;
        Ok(self.state())
    }

    fn plan(&self, target: &Target, _inspection: &Inspection) -> Vec<Action> {
        vec![Action::planned(FIX, json!({ "Resource": target.id }))]
    }

    async fn act(&self, target: &Target, plan: &[Action]) -> Result<Vec<Action>, ActError> {
        let seen = self
            .ledger
            .query(Lookup::Resource(&target.arn), None)
            .await
            .ok()
            .and_then(|mut rs| rs.pop());
        *self.seen_at_act.lock().unwrap() = seen;
        let go = self.next(|s| &mut s.act);
        let mut done = Vec::new();
        for step in plan {
            if matches!(go, Go::Ok | Go::TransientAfterChange) {
                *self.compliant.lock().unwrap() = true;
                *self.changes.lock().unwrap() += 1;
            }
            let result = fail(go, FIX);
            done.push(step.carried_out(result.clone().map_err(|e| e.to_string())));
            if let Err(source) = result {
                return Err(ActError { done, source });
            }
        }
        Ok(done)
    }

    async fn verify(&self, _target: &Target) -> Result<Inspection, RemediationError> {
        let go = self.next(|s| &mut s.verify);
        fail(go, "fake:Read")?;
        if go == Go::Stale {
            return Ok(Inspection {
                compliant: false,
                state: json!({ "fixed": false }),
            });
        }
        Ok(self.state())
    }

    async fn undo(&self, _target: &Target, _pre_state: &Value) -> Result<Vec<Action>, ActError> {
        *self.compliant.lock().unwrap() = false;
        Ok(vec![])
    }
}
