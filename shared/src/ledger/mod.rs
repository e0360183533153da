//! Claim, Record: the idempotent outcome ledger in DynamoDB.
//!
//! A record is claimed by a conditional put, free when absent or when its lease has run out
//! (a crashed or timed-out invocation), as Powertools' idempotency utility does. It is completed
//! by a put conditioned on still holding that claim. Duplicates see the claim or the outcome and
//! stop; they only count themselves in `deliveries`.

mod key;
mod record;
pub mod table;

pub use key::{digest_hex, record_id, rejected_record_id};
pub use record::{Action, Feedback, OutcomeRecord, PriorOutcome, RecordMeta};

use crate::aws_error;
use crate::outcome::Status;
use aws_sdk_dynamodb::client::Waiters;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, PointInTimeRecoverySpecification, ReturnValuesOnConditionCheckFailure, Select,
    TimeToLiveSpecification,
};
use std::collections::HashMap;

type Item = HashMap<String, AttributeValue>;

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error(
        "outcome table {0} does not exist (run `reflex init`, or check REFLEX_TABLE / --table)"
    )]
    TableMissing(String),
    #[error("DynamoDB {op} on table {table} failed: {message}")]
    Aws {
        op: &'static str,
        table: String,
        message: String,
    },
    #[error("record {0} cannot be stored or read: {1}")]
    Codec(String, String),
    #[error("record {0}: the claim was taken over by another invocation before this one finished")]
    LeaseLost(String),
}

/// The result of trying to write a new record.
#[derive(Debug)]
pub enum Claim {
    /// This invocation owns the record (as written, with attempts and history carried over).
    Acquired(Box<OutcomeRecord>),
    /// Another invocation has it or finished it: the existing record. Nothing more to do.
    Held(Box<OutcomeRecord>),
}

/// When an existing record may be taken over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Takeover {
    /// Only a `claimed` record whose lease has run out (automatic deliveries).
    ExpiredLease,
    /// Also any outcome an analyst may ask to run again (custom actions).
    OnRequest,
}

#[derive(Debug, Clone)]
pub struct Ledger {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl Ledger {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Ledger {
            client,
            table: table.into(),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    pub fn client(&self) -> &aws_sdk_dynamodb::Client {
        &self.client
    }

    fn aws<E, R>(&self, op: &'static str, e: SdkError<E, R>) -> LedgerError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        if aws_error::code(&e) == Some("ResourceNotFoundException") {
            return LedgerError::TableMissing(self.table.clone());
        }
        LedgerError::Aws {
            op,
            table: self.table.clone(),
            message: aws_error::describe(&e),
        }
    }

    fn to_item(record: &OutcomeRecord) -> Result<Item, LedgerError> {
        serde_dynamo::to_item(record)
            .map_err(|e| LedgerError::Codec(record.record_id.clone(), e.to_string()))
    }

    fn from_item(item: Item) -> Result<OutcomeRecord, LedgerError> {
        let id = match item.get("record_id") {
            Some(AttributeValue::S(s)) => s.clone(),
            _ => "?".into(),
        };
        serde_dynamo::from_item(item).map_err(|e| LedgerError::Codec(id, e.to_string()))
    }

    /// Write `record` as new. If a record with its id exists, take it over when `takeover` and
    /// `now` allow (carrying over attempts, deliveries, created_at and the prior outcome), or
    /// else count the delivery and hand back the existing record.
    pub async fn claim(
        &self,
        mut record: OutcomeRecord,
        now_epoch: i64,
        takeover: Takeover,
    ) -> Result<Claim, LedgerError> {
        let existing = match self
            .put_if(&record, "attribute_not_exists(record_id)", HashMap::new())
            .await?
        {
            None => return Ok(Claim::Acquired(Box::new(record))),
            Some(existing) => existing,
        };
        let expired = existing.status == Status::Claimed
            && existing.lease_expires_at.is_some_and(|t| t < now_epoch);
        // A new analyst request (a new custom-action event, so a new digest) may run a finished
        // outcome again; a redelivery of the same request may not.
        let requested = takeover == Takeover::OnRequest
            && existing.status.rerunnable_on_request()
            && existing.event_digest != record.event_digest;
        if !(expired || requested) {
            self.count_delivery(&existing.record_id).await?;
            return Ok(Claim::Held(Box::new(existing)));
        }
        record.attempts = existing.attempts + 1;
        record.deliveries = existing.deliveries + 1;
        record.created_at = existing.created_at.clone();
        record.history = existing.history.clone();
        record.history.push(existing.prior());
        // Optimistic: only if nobody else took it over since we read it.
        let values = HashMap::from([
            (
                ":s".to_string(),
                AttributeValue::S(existing.status.as_str().into()),
            ),
            (
                ":a".to_string(),
                AttributeValue::N(existing.attempts.to_string()),
            ),
        ]);
        match self
            .put_if(&record, "#status = :s AND attempts = :a", values)
            .await?
        {
            None => Ok(Claim::Acquired(Box::new(record))),
            Some(now_existing) => {
                self.count_delivery(&now_existing.record_id).await?;
                Ok(Claim::Held(Box::new(now_existing)))
            }
        }
    }

    /// Store the final state of a record this invocation claimed. Fails with `LeaseLost` if
    /// another invocation took the claim over meanwhile (then its outcome stands, not ours).
    ///
    /// An update, not a put: duplicates may have counted themselves in `deliveries` while this
    /// invocation worked, and a put would erase their marks.
    pub async fn complete(&self, record: &OutcomeRecord) -> Result<(), LedgerError> {
        let mut item = Self::to_item(record)?;
        item.remove("record_id");
        item.remove("deliveries");
        let mut names = HashMap::from([("#st".to_string(), "status".to_string())]);
        let mut values = HashMap::from([
            (
                ":claimed".to_string(),
                AttributeValue::S(Status::Claimed.as_str().into()),
            ),
            (
                ":attempt".to_string(),
                AttributeValue::N(record.attempts.to_string()),
            ),
        ]);
        let mut sets = Vec::with_capacity(item.len());
        for (i, (name, value)) in item.into_iter().enumerate() {
            sets.push(format!("#a{i} = :v{i}"));
            names.insert(format!("#a{i}"), name);
            values.insert(format!(":v{i}"), value);
        }
        let mut expression = format!("SET {}", sets.join(", "));
        if record.lease_expires_at.is_none() {
            expression.push_str(" REMOVE lease_expires_at");
        }
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("record_id", AttributeValue::S(record.record_id.clone()))
            .update_expression(expression)
            .condition_expression("#st = :claimed AND attempts = :attempt")
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
                Err(LedgerError::LeaseLost(record.record_id.clone()))
            }
            Err(e) => Err(self.aws("UpdateItem", e)),
        }
    }

    /// Conditional put. `Ok(None)` when written; `Ok(Some(existing))` when the condition failed.
    async fn put_if(
        &self,
        record: &OutcomeRecord,
        condition: &str,
        values: HashMap<String, AttributeValue>,
    ) -> Result<Option<OutcomeRecord>, LedgerError> {
        let mut req = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(Self::to_item(record)?))
            .condition_expression(condition)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        if condition.contains("#status") {
            req = req.expression_attribute_names("#status", "status");
        }
        if !values.is_empty() {
            req = req.set_expression_attribute_values(Some(values));
        }
        match req.send().await {
            Ok(_) => Ok(None),
            Err(SdkError::ServiceError(e))
                if matches!(e.err(), PutItemError::ConditionalCheckFailedException(_)) =>
            {
                let old = match e.err() {
                    PutItemError::ConditionalCheckFailedException(c) => c.item().cloned(),
                    _ => None,
                };
                let old = match old {
                    Some(item) => Some(Self::from_item(item)?),
                    // Not every DynamoDB implementation returns the old item: read it.
                    None => self.get(&record.record_id).await?,
                };
                // Vanished between the failed put and the read: report as held by nobody.
                Ok(Some(old.unwrap_or_else(|| record.clone())))
            }
            Err(e) => Err(self.aws("PutItem", e)),
        }
    }

    /// A duplicate delivery leaves its mark on the record it found.
    async fn count_delivery(&self, record_id: &str) -> Result<(), LedgerError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("record_id", AttributeValue::S(record_id.to_string()))
            .update_expression("ADD deliveries :one")
            .condition_expression("attribute_exists(record_id)")
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .send()
            .await
            .map(|_| ())
            .or_else(|e| match &e {
                SdkError::ServiceError(s) if s.err().is_conditional_check_failed_exception() => {
                    Ok(())
                }
                _ => Err(self.aws("UpdateItem", e)),
            })
    }

    pub async fn get(&self, record_id: &str) -> Result<Option<OutcomeRecord>, LedgerError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("record_id", AttributeValue::S(record_id.to_string()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.aws("GetItem", e))?;
        out.item.map(Self::from_item).transpose()
    }

    /// Changes made by `remediation` since `since` (RFC 3339): the blast-radius budget's count.
    pub async fn changes_since(&self, remediation: &str, since: &str) -> Result<u32, LedgerError> {
        let mut pages = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(table::BY_TIME_INDEX)
            .key_condition_expression("remediation = :r AND created_at >= :since")
            .filter_expression("#status = :succeeded")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":r", AttributeValue::S(remediation.into()))
            .expression_attribute_values(":since", AttributeValue::S(since.into()))
            .expression_attribute_values(
                ":succeeded",
                AttributeValue::S(Status::Succeeded.as_str().into()),
            )
            .select(Select::Count)
            .into_paginator()
            .send();
        let mut count = 0;
        while let Some(page) = pages.next().await {
            count += page.map_err(|e| self.aws("Query", e))?.count().max(0) as u32;
        }
        Ok(count)
    }

    /// Records of one resource (by-resource index) or one remediation (by-time index), oldest
    /// first, optionally from `since` on. Never a table scan.
    pub async fn query(
        &self,
        by: Lookup<'_>,
        since: Option<&str>,
    ) -> Result<Vec<OutcomeRecord>, LedgerError> {
        let (index, attr, value) = match by {
            Lookup::Resource(arn) => (table::BY_RESOURCE_INDEX, "resource_arn", arn),
            Lookup::Remediation(name) => (table::BY_TIME_INDEX, "remediation", name),
        };
        let mut req = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(index)
            .expression_attribute_names("#k", attr)
            .expression_attribute_values(":k", AttributeValue::S(value.to_string()));
        req = match since {
            Some(t) => req
                .key_condition_expression("#k = :k AND created_at >= :since")
                .expression_attribute_values(":since", AttributeValue::S(t.to_string())),
            None => req.key_condition_expression("#k = :k"),
        };
        let mut pages = req.into_paginator().send();
        let mut records = Vec::new();
        while let Some(page) = pages.next().await {
            for item in page
                .map_err(|e| self.aws("Query", e))?
                .items
                .unwrap_or_default()
            {
                records.push(Self::from_item(item)?);
            }
        }
        Ok(records)
    }

    /// Create the table with `table::DEFINITION` if it does not exist: keys, indexes, billing,
    /// deletion protection and encryption at creation; then, once it is active, point-in-time
    /// recovery and TTL (separate APIs). `Ok(true)` if created.
    pub async fn create_table_if_absent(&self) -> Result<bool, LedgerError> {
        match self
            .client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
        {
            Ok(_) => return Ok(false),
            Err(SdkError::ServiceError(e)) if e.err().is_resource_not_found_exception() => {}
            Err(e) => return Err(self.aws("DescribeTable", e)),
        }
        let req = table::create_table(&self.client, &self.table)
            .map_err(|e| LedgerError::Codec(self.table.clone(), e.to_string()))?;
        match req.send().await {
            Ok(_) => {}
            // Someone created it meanwhile: fine, that is what we wanted.
            Err(SdkError::ServiceError(e)) if e.err().is_resource_in_use_exception() => {
                return Ok(false)
            }
            Err(e) => return Err(self.aws("CreateTable", e)),
        }
        self.client
            .wait_until_table_exists()
            .table_name(&self.table)
            .wait(std::time::Duration::from_secs(300))
            .await
            .map_err(|e| LedgerError::Aws {
                op: "DescribeTable",
                table: self.table.clone(),
                message: e.to_string(),
            })?;
        let ttl = self
            .client
            .update_time_to_live()
            .table_name(&self.table)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name(table::DEFINITION.ttl_attribute)
                    .enabled(true)
                    .build()
                    .map_err(|e| LedgerError::Codec(self.table.clone(), e.to_string()))?,
            );
        let pitr = self
            .client
            .update_continuous_backups()
            .table_name(&self.table)
            .point_in_time_recovery_specification(
                PointInTimeRecoverySpecification::builder()
                    .point_in_time_recovery_enabled(table::DEFINITION.point_in_time_recovery)
                    .build()
                    .map_err(|e| LedgerError::Codec(self.table.clone(), e.to_string()))?,
            );
        let (ttl, pitr) = tokio::join!(ttl.send(), pitr.send());
        ttl.map_err(|e| self.aws("UpdateTimeToLive", e))?;
        pitr.map_err(|e| self.aws("UpdateContinuousBackups", e))?;
        Ok(true)
    }
}

/// How to list records without scanning.
#[derive(Debug, Clone, Copy)]
pub enum Lookup<'a> {
    Resource(&'a str),
    Remediation(&'a str),
}
