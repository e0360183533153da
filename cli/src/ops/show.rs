//! `reflex show RECORD_ID`: one record, read consistently from the outcome table.

use reflex_shared::ledger::{Ledger, OutcomeRecord};

/// The record `record_id`, or an error saying it does not exist.
pub async fn show(ledger: &Ledger, record_id: &str) -> anyhow::Result<OutcomeRecord> {
    ledger.get(record_id).await?.ok_or_else(|| {
        anyhow::anyhow!(
            "no record {record_id:?} in table {} (`reflex audit` lists the record ids)",
            ledger.table()
        )
    })
}
