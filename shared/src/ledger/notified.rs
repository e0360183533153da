//! Telling an outcome once: a conditional write on the record claims the notification of one
//! (record, outcome) before it is published. Only the first writer wins, whichever invocation,
//! retry or redelivery it is.

use super::{is_condition_failure, s, Ledger, LedgerError};
use crate::status::Status;
use aws_sdk_dynamodb::types::AttributeValue;

impl Ledger {
    /// Claim the notification of `outcome` (`pending-approval`, `timed-out`…) for the record,
    /// while it still stands at `status`: `true` for the one caller that added it to the
    /// record's `notified` set, `false` when it was there already (or the record moved on).
    ///
    /// A claim whose answer was lost and that the SDK sent again meets its own mark and answers
    /// `false`: that notification is lost, never sent twice (see `pipeline::aftermath`).
    pub async fn claim_notification(
        &self,
        record_id: &str,
        status: Status,
        outcome: &str,
    ) -> Result<bool, LedgerError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("record_id", s(record_id))
            .update_expression("ADD notified :one")
            .condition_expression(
                "attribute_exists(record_id) AND #st = :status AND NOT contains(notified, :outcome)",
            )
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":one", AttributeValue::Ss(vec![outcome.to_string()]))
            .expression_attribute_values(":outcome", s(outcome))
            .expression_attribute_values(":status", s(status.as_str()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failure(&e) => Ok(false),
            Err(e) => Err(self.aws("UpdateItem", e)),
        }
    }

    /// Give a claimed notification back after its publish failed, so a later delivery of the
    /// event may tell it (best effort: the caller logs a failure).
    pub async fn release_notification(
        &self,
        record_id: &str,
        outcome: &str,
    ) -> Result<(), LedgerError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("record_id", s(record_id))
            .update_expression("DELETE notified :one")
            .condition_expression("attribute_exists(record_id)")
            .expression_attribute_values(":one", AttributeValue::Ss(vec![outcome.to_string()]))
            .send()
            .await;
        self.unless_condition_failed(result)
    }
}
