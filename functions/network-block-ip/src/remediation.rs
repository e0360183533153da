//! The remediation on the core's trait: each part a few lines over the pure modules and the
//! EC2 adapter.

use crate::address::Refusal;
use crate::aws::{CreateError, CREATE_ENTRY, DELETE_ENTRY};
use crate::nacl::NaclState;
use crate::params::Params;
use crate::plan::{self, BlockStep, Held};
use crate::target::{self, BlockTarget};
use crate::{NetworkBlockIp, SPEC};
use reflex_shared::finding::{named_instance, Finding};
use reflex_shared::remediation::{
    Applied, Context, Owned, OwnedChange, OwnedEntry, Plan, Remediation, RemediationError,
    ResourceRef, Spec, StepRecord, Subject, Tags, Unresolved,
};
use reflex_shared::status::Reason;
use serde::{Deserialize, Serialize};
use serde_json::json;

/// The record's API name of an extension: no AWS call, Reflex's own entry moves.
const EXTEND: &str = "reflex:ExtendBlock";

/// The value of Reflex's owned entry for a block (its key is the CIDR).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnedBlock {
    pub rule_number: i32,
    pub cidr: crate::Cidr,
}

impl Subject for BlockTarget {
    fn resource(&self) -> &ResourceRef {
        &self.resource
    }
}

/// Reflex's blocks on the ACL, from its owned entries. An entry that does not read as a block
/// is not one of ours to reason about.
fn held(owned: &Owned) -> Vec<Held> {
    owned.entries.values().filter_map(held_from).collect()
}

fn held_from(entry: &OwnedEntry) -> Option<Held> {
    let block: OwnedBlock = serde_json::from_value(entry.value.clone()).ok()?;
    Some(Held {
        cidr: block.cidr,
        rule_number: block.rule_number,
        record_id: entry.record_id.clone(),
        created_at: entry.created_at,
        expires_at: entry.expires_at,
    })
}

fn put(rule_number: i32, cidr: &crate::Cidr, expires_at: i64) -> OwnedChange {
    OwnedChange::Put {
        key: cidr.to_string(),
        value: json!(OwnedBlock {
            rule_number,
            cidr: *cidr
        }),
        expires_at: Some(expires_at),
    }
}

fn time(epoch: Option<i64>) -> serde_json::Value {
    epoch
        .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
        .map(|t| json!(t.to_rfc3339()))
        .unwrap_or(serde_json::Value::Null)
}

impl Remediation for NetworkBlockIp {
    type Params = Params;
    type Target = BlockTarget;
    type State = NaclState;
    type Step = BlockStep;
    type Output = ();

    fn spec(&self) -> &'static Spec {
        &SPEC
    }

    /// The addresses first (a refusal needs no AWS read), then the instance's subnet and its
    /// ACL, read from EC2: never taken from the finding.
    async fn resolve(&self, finding: &Finding, params: &Params) -> Result<BlockTarget, Unresolved> {
        let addresses = target::remote_addresses(finding);
        if addresses.is_empty() {
            return Err(Unresolved::NoTarget(
                "the finding names no remote IP address".into(),
            ));
        }
        if finding.details.resource_role.as_deref() == Some("ACTOR") {
            // The instance is the one calling out (the attacker side): the remote address is
            // its victim, and blocking it at the instance's subnet would protect no one.
            return Err(Unresolved::Skip(
                Reason::NotApplicable,
                "GuardDuty names the instance as the ACTOR (service.resourceRole): the remote \
                 address is the one attacked, not an attacker to block"
                    .into(),
            ));
        }
        let (cidrs, refused) = target::split(&addresses, &params.allowlist);
        let whys: Vec<String> = refused.iter().map(|r| r.why().to_string()).collect();
        if cidrs.is_empty() {
            let reason = if refused.iter().all(|r| matches!(r, Refusal::Allowlisted(_))) {
                Reason::Allowlisted
            } else {
                Reason::NotBlockable
            };
            return Err(Unresolved::Skip(reason, whys.join("; ")));
        }
        let (instance_id, _) = named_instance(finding).map_err(Unresolved::NoTarget)?;
        let placement = self.ec2.placement(&instance_id).await?;
        let nacl = self.ec2.nacl_of_subnet(&placement.subnet_id).await?;
        Ok(BlockTarget {
            resource: target::nacl_ref(finding, &nacl.id),
            instance_id,
            subnet_id: placement.subnet_id,
            vpc_id: placement.vpc_id,
            nacl_id: nacl.id,
            cidrs,
            refused: whys,
        })
    }

    /// The ACL's tags: the ACL is what changes, so its owner exempts it there.
    async fn tags(&self, t: &BlockTarget) -> Result<Tags, RemediationError> {
        Ok(self.ec2.nacl(&t.nacl_id).await?.tags)
    }

    /// One finding at a time per ACL: rule numbers are the ACL's.
    fn shared_resource(&self, t: &BlockTarget) -> Option<String> {
        Some(t.nacl_id.clone())
    }

    async fn inspect(
        &self,
        _ctx: &Context<'_>,
        t: &BlockTarget,
    ) -> Result<NaclState, RemediationError> {
        let nacl = self.ec2.nacl(&t.nacl_id).await?;
        Ok(NaclState::new(nacl.id, t.cidrs.clone(), nacl.inbound))
    }

    fn plan(
        &self,
        ctx: &Context<'_>,
        t: &BlockTarget,
        s: &NaclState,
        p: &Params,
    ) -> Plan<BlockStep> {
        let d = plan::plan(&t.cidrs, s, &held(ctx.owned), p, ctx.now.timestamp());
        Plan {
            steps: d.steps,
            untouched: t.refused.iter().cloned().chain(d.untouched).collect(),
        }
    }

    async fn apply(
        &self,
        _ctx: &Context<'_>,
        t: &BlockTarget,
        step: &BlockStep,
        _earlier: &[Applied<BlockStep, ()>],
    ) -> Result<(), RemediationError> {
        let ours_at = |nacl: &crate::Nacl, n: i32, cidr: &crate::Cidr| {
            nacl.inbound
                .iter()
                .any(|e| e.rule_number == n && e.is_block_of(cidr))
        };
        match step {
            BlockStep::Block {
                rule_number, cidr, ..
            } => match self.ec2.create_block(&t.nacl_id, *rule_number, cidr).await {
                Ok(()) => Ok(()),
                // An earlier attempt made it (a crash after the call): done. Anyone else's
                // entry at the number stays, and the step fails saying so.
                Err(CreateError::Taken) => {
                    if ours_at(&self.ec2.nacl(&t.nacl_id).await?, *rule_number, cidr) {
                        Ok(())
                    } else {
                        Err(RemediationError::Invalid(format!(
                            "inbound rule {rule_number} of {} holds another entry",
                            t.nacl_id
                        )))
                    }
                }
                Err(CreateError::Other(e)) => Err(e),
            },
            BlockStep::Extend { .. } => Ok(()),
            // Read first: a block already gone is done (moto answers a missing entry with a
            // 500), and an entry someone else put at the number since is not ours to delete.
            BlockStep::Unblock {
                rule_number, cidr, ..
            } => {
                let nacl = match self.ec2.nacl(&t.nacl_id).await {
                    Ok(nacl) => nacl,
                    Err(RemediationError::Gone(_)) => return Ok(()),
                    Err(e) => return Err(e),
                };
                if ours_at(&nacl, *rule_number, cidr) {
                    self.ec2.delete_entry(&t.nacl_id, *rule_number).await
                } else {
                    Ok(())
                }
            }
        }
    }

    fn describe(&self, t: &BlockTarget, step: &BlockStep) -> StepRecord {
        let family = |c: &crate::Cidr| {
            if c.is_v6() {
                "Ipv6CidrBlock"
            } else {
                "CidrBlock"
            }
        };
        match step {
            BlockStep::Block {
                rule_number,
                cidr,
                expires_at,
            } => StepRecord {
                api: CREATE_ENTRY,
                parameters: json!({
                    "NetworkAclId": t.nacl_id,
                    "RuleNumber": rule_number,
                    "Egress": false,
                    "Protocol": "-1",
                    "RuleAction": "deny",
                    family(cidr): cidr.to_string(),
                    "ExpiresAt": time(Some(*expires_at)),
                }),
            },
            BlockStep::Extend {
                rule_number,
                cidr,
                from,
                to,
            } => StepRecord {
                api: EXTEND,
                parameters: json!({
                    "NetworkAclId": t.nacl_id,
                    "RuleNumber": rule_number,
                    family(cidr): cidr.to_string(),
                    "ExpiresAt": time(Some(*to)),
                    "ExpiredAt": time(*from),
                }),
            },
            BlockStep::Unblock {
                rule_number,
                cidr,
                why,
                made_by,
                expires_at,
            } => StepRecord {
                api: DELETE_ENTRY,
                parameters: json!({
                    "NetworkAclId": t.nacl_id,
                    "RuleNumber": rule_number,
                    "Egress": false,
                    family(cidr): cidr.to_string(),
                    "Reason": why,
                    "BlockedByRecord": made_by,
                    "ExpiresAt": time(*expires_at),
                }),
            },
        }
    }

    /// Each block is Reflex's entry on the ACL, written with the checkpoint before the change:
    /// a crash after it still leaves the entry for the sweep.
    fn owned_changes(&self, _t: &BlockTarget, step: &BlockStep) -> Vec<OwnedChange> {
        match step {
            BlockStep::Block {
                rule_number,
                cidr,
                expires_at,
            } => vec![put(*rule_number, cidr, *expires_at)],
            BlockStep::Extend {
                rule_number,
                cidr,
                to,
                ..
            } => vec![put(*rule_number, cidr, *to)],
            BlockStep::Unblock { cidr, .. } => vec![OwnedChange::Remove {
                key: cidr.to_string(),
            }],
        }
    }

    fn undoable(&self, step: &BlockStep) -> bool {
        step.undoable()
    }

    fn undo(
        &self,
        _t: &BlockTarget,
        _pre: &NaclState,
        applied: &[Applied<BlockStep, ()>],
    ) -> Vec<BlockStep> {
        let steps: Vec<BlockStep> = applied.iter().map(|a| a.step.clone()).collect();
        plan::undo(&steps)
    }

    fn as_left(&self, post: &NaclState, live: &NaclState) -> bool {
        NaclState::as_left(post, live)
    }

    fn restored(&self, pre: &NaclState, live: &NaclState) -> bool {
        NaclState::restored(pre, live)
    }

    fn expire(&self, _t: &BlockTarget, _key: &str, entry: &OwnedEntry) -> Vec<BlockStep> {
        held_from(entry)
            .map(|h| vec![plan::expire(&h)])
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Removal;

    #[test]
    fn removal_reasons_read_in_the_record() {
        assert_eq!(json!(Removal::Evicted), json!("evicted"));
        assert_eq!(json!(Removal::Expired), json!("expired"));
    }
}
