//! Lifting a rollback's hold early (`reflex unhold`): the suppression goes, and the rollback's
//! record says who lifted it and when, in one transaction (never one without the other).

use super::{s, Ledger, LedgerError, Suppression};
use crate::aws_error;
use aws_sdk_dynamodb::types::{Delete, TransactWriteItem, Update};

/// What an attempt to lift a hold found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lifted {
    /// The suppression was deleted and the lift written on its rollback's record.
    Lifted(Suppression),
    /// No suppression is stored for the resource and remediation.
    NoHold,
}

impl Ledger {
    /// Delete the suppression `held` (as read; only if it is still the same hold, from the same
    /// rollback) and write `lifted` onto its rollback's record (`rollback.hold_lifted`), in one
    /// transaction. A hold gone meanwhile is `NoHold`.
    pub async fn lift_hold(
        &self,
        held: &Suppression,
        lifted: &super::HoldLifted,
    ) -> Result<Lifted, LedgerError> {
        let codec = |e: String| LedgerError::Codec(held.rollback_record.clone(), e);
        let value = serde_dynamo::to_attribute_value(lifted).map_err(|e| codec(e.to_string()))?;
        let delete = Delete::builder()
            .table_name(&self.table)
            .key("record_id", s(&held.record_id))
            .condition_expression("rollback_record = :rb AND created_at = :created")
            .expression_attribute_values(":rb", s(&held.rollback_record))
            .expression_attribute_values(":created", s(&held.created_at))
            .build()
            .map_err(|e| codec(e.to_string()))?;
        let update = Update::builder()
            .table_name(&self.table)
            .key("record_id", s(&held.rollback_record))
            .update_expression("SET #rb.hold_lifted = :h")
            .condition_expression("attribute_exists(#rb)")
            .expression_attribute_names("#rb", "rollback")
            .expression_attribute_values(":h", value)
            .build()
            .map_err(|e| codec(e.to_string()))?;
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().delete(delete).build())
            .transact_items(TransactWriteItem::builder().update(update).build())
            .send()
            .await;
        match result {
            Ok(_) => Ok(Lifted::Lifted(held.clone())),
            Err(e) if aws_error::code(&e) == Some("TransactionCanceledException") => {
                // Which condition failed: the hold gone (or replaced) is "no hold"; a rollback
                // record without its rollback is a record Reflex did not write.
                match self
                    .suppression(held.remediation_name(), &held.resource)
                    .await?
                {
                    None => Ok(Lifted::NoHold),
                    Some(now) if now != *held => Err(LedgerError::LeaseLost(format!(
                        "{} (the hold was replaced by another rollback meanwhile: try again)",
                        held.record_id
                    ))),
                    Some(_) => Err(codec(format!(
                        "the hold's rollback record {} holds no rollback: the hold was not lifted",
                        held.rollback_record
                    ))),
                }
            }
            Err(e) => Err(self.aws("TransactWriteItems", e)),
        }
    }
}

impl Suppression {
    /// The remediation this suppression holds the resource back from.
    pub fn remediation_name(&self) -> &str {
        self.remediation
            .strip_prefix("suppression:")
            .unwrap_or(&self.remediation)
    }
}
