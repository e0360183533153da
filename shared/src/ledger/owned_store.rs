//! The ledger's side of [`super::owned`]: the resource lease, Reflex-owned entries, and the
//! handles of long operations, as conditional DynamoDB writes.

use super::owned::{
    handle_key, handle_partition, resource_key, resource_partition, Awaited, Owned,
};
use super::{is_condition_failure, n, s, table, Item, Ledger, LedgerError, OutcomeRecord};
use crate::status::Status;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};
use chrono::{DateTime, SecondsFormat, Utc};
use std::collections::HashMap;

/// The answer to a request for a resource's lease.
#[derive(Debug, Clone, PartialEq)]
pub enum ResourceLease {
    /// Held by the caller now, with what Reflex owns there.
    Held(Owned),
    /// Another record holds it until `until` (epoch seconds).
    Busy { until: i64, record_id: String },
}

/// Epoch seconds as the index's sort key: the records' own timestamp format, which sorts as
/// text in time order.
fn sort_time(epoch: i64) -> String {
    DateTime::<Utc>::from_timestamp(epoch, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn text(item: &Item, name: &str) -> Option<String> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Some(v.clone()),
        _ => None,
    }
}

fn number(item: &Item, name: &str) -> Option<i64> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v.parse().ok(),
        _ => None,
    }
}

fn owned_of(key: &str, item: &Item) -> Result<Owned, LedgerError> {
    match text(item, "owned") {
        None => Ok(Owned::default()),
        Some(json) => {
            serde_json::from_str(&json).map_err(|e| LedgerError::Codec(key.into(), e.to_string()))
        }
    }
}

impl Ledger {
    /// Take `resource`'s lease for `record_id` (free, run out, or already ours under `token`)
    /// until `now + seconds`; one round, which also returns what Reflex owns there.
    pub async fn lease_resource(
        &self,
        remediation: &str,
        resource: &str,
        token: &str,
        record_id: &str,
        now: i64,
        seconds: i64,
    ) -> Result<ResourceLease, LedgerError> {
        self.check_clock()?;
        let key = resource_key(remediation, resource);
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("record_id", s(&key))
            .update_expression(
                "SET lease_token = :t, lease_expires_at = :e, lease_record = :r, #res = :res",
            )
            .condition_expression(
                "attribute_not_exists(lease_token) OR lease_expires_at <= :now OR lease_token = :t",
            )
            .expression_attribute_values(":t", s(token))
            .expression_attribute_values(":e", n(now + seconds))
            .expression_attribute_values(":r", s(record_id))
            .expression_attribute_names("#res", "resource")
            .expression_attribute_values(":res", s(resource))
            .expression_attribute_values(":now", n(now))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match out {
            Ok(o) => Ok(ResourceLease::Held(owned_of(
                &key,
                &o.attributes.unwrap_or_default(),
            )?)),
            Err(e) if is_condition_failure(&e) => {
                let old = e
                    .as_service_error()
                    .and_then(|se| match se {
                        aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(c) => c.item.clone(),
                        _ => None,
                    })
                    .unwrap_or_default();
                Ok(ResourceLease::Busy {
                    until: number(&old, "lease_expires_at").unwrap_or(now + seconds),
                    record_id: text(&old, "lease_record").unwrap_or_default(),
                })
            }
            Err(e) => Err(self.aws("UpdateItem", e)),
        }
    }

    /// Store what Reflex owns on `resource`, under the lease `token` holds (else `LeaseLost`).
    /// An item with entries is listed in the by-time index by its earliest expiry.
    pub async fn write_owned(
        &self,
        remediation: &str,
        resource: &str,
        token: &str,
        owned: &Owned,
    ) -> Result<(), LedgerError> {
        let key = resource_key(remediation, resource);
        let json = serde_json::to_string(owned)
            .map_err(|e| LedgerError::Codec(key.clone(), e.to_string()))?;
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("record_id", s(&key))
            .condition_expression("lease_token = :t")
            .expression_attribute_values(":t", s(token))
            .expression_attribute_values(":o", s(json));
        req = match owned.next_expiry() {
            Some(t) => req
                .update_expression("SET owned = :o, remediation = :p, created_at = :x")
                .expression_attribute_values(":p", s(resource_partition(remediation)))
                .expression_attribute_values(":x", s(sort_time(t))),
            // Nothing expires: out of the sweep's index.
            None => req.update_expression("SET owned = :o REMOVE remediation, created_at"),
        };
        match req.send().await {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failure(&e) => Err(LedgerError::LeaseLost(key)),
            Err(e) => Err(self.aws("UpdateItem", e)),
        }
    }

    /// End the lease `token` holds on `resource` (nothing if it holds none any more).
    pub async fn release_resource(
        &self,
        remediation: &str,
        resource: &str,
        token: &str,
    ) -> Result<(), LedgerError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("record_id", s(resource_key(remediation, resource)))
            .update_expression("REMOVE lease_token, lease_expires_at, lease_record")
            .condition_expression("lease_token = :t")
            .expression_attribute_values(":t", s(token))
            .send()
            .await;
        self.unless_condition_failed(result)
    }

    /// `remediation`'s resources with an entry expired at `now`, with what Reflex owns there
    /// (the by-time index: a query, never a scan).
    pub async fn owned_expired(
        &self,
        remediation: &str,
        now: i64,
    ) -> Result<Vec<(String, Owned)>, LedgerError> {
        let items = self
            .index_items(&resource_partition(remediation), Some(now))
            .await?;
        items
            .into_iter()
            .map(|item| {
                let key = text(&item, "record_id").unwrap_or_default();
                let resource = text(&item, "resource").unwrap_or_default();
                Ok((resource, owned_of(&key, &item)?))
            })
            .collect()
    }

    /// Items of one by-time partition, sorted by time, optionally up to `until` (epoch s).
    async fn index_items(
        &self,
        partition: &str,
        until: Option<i64>,
    ) -> Result<Vec<Item>, LedgerError> {
        let mut req = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(table::BY_TIME_INDEX)
            .expression_attribute_values(":p", s(partition));
        req = match until {
            Some(t) => req
                .key_condition_expression("remediation = :p AND created_at <= :t")
                .expression_attribute_values(":t", s(sort_time(t))),
            None => req.key_condition_expression("remediation = :p"),
        };
        let mut pages = req.into_paginator().send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            out.extend(
                page.map_err(|e| self.aws("Query", e))?
                    .items
                    .unwrap_or_default(),
            );
        }
        Ok(out)
    }

    /// `record_id` awaits the long operation `handle`, until `deadline` (epoch s; the first
    /// record's deadline stands).
    pub async fn await_handle(
        &self,
        remediation: &str,
        handle: &str,
        record_id: &str,
        deadline: i64,
    ) -> Result<(), LedgerError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("record_id", s(handle_key(remediation, handle)))
            .update_expression(
                "ADD record_ids :r SET remediation = :p, handle = :h, \
                 created_at = if_not_exists(created_at, :x), deadline = if_not_exists(deadline, :d)",
            )
            .expression_attribute_values(":r", AttributeValue::Ss(vec![record_id.to_string()]))
            .expression_attribute_values(":p", s(handle_partition(remediation)))
            .expression_attribute_values(":h", s(handle))
            .expression_attribute_values(":x", s(sort_time(deadline)))
            .expression_attribute_values(":d", n(deadline))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| self.aws("UpdateItem", e))
    }

    /// The records awaiting `handle`, if any.
    pub async fn awaited(
        &self,
        remediation: &str,
        handle: &str,
    ) -> Result<Option<Awaited>, LedgerError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("record_id", s(handle_key(remediation, handle)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.aws("GetItem", e))?;
        Ok(out.item.as_ref().and_then(awaited_of))
    }

    /// Every long operation of `remediation` still awaited (the sweep polls them).
    pub async fn awaiting(&self, remediation: &str) -> Result<Vec<Awaited>, LedgerError> {
        let items = self
            .index_items(&handle_partition(remediation), None)
            .await?;
        Ok(items.iter().filter_map(awaited_of).collect())
    }

    /// `record_id` no longer awaits `handle`; a handle no record awaits leaves the index.
    pub async fn end_awaiting(
        &self,
        remediation: &str,
        handle: &str,
        record_id: &str,
    ) -> Result<(), LedgerError> {
        let key = handle_key(remediation, handle);
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("record_id", s(&key))
            .update_expression("DELETE record_ids :r")
            .expression_attribute_values(":r", AttributeValue::Ss(vec![record_id.to_string()]))
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map_err(|e| self.aws("UpdateItem", e))?;
        let left = out
            .attributes
            .as_ref()
            .is_some_and(|a| a.contains_key("record_ids"));
        if left {
            return Ok(());
        }
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("record_id", s(&key))
            .update_expression("REMOVE remediation, created_at")
            .condition_expression("attribute_not_exists(record_ids)")
            .send()
            .await;
        self.unless_condition_failed(result)
    }
}

impl Ledger {
    /// Store the outcome of a record that awaited a long operation, if it still does (another
    /// completion, an event and the sweep at once, may have ended it first: then `false`).
    pub async fn complete_awaited(&self, record: &OutcomeRecord) -> Result<bool, LedgerError> {
        let mut fields = Self::to_item(record)?;
        fields.remove("record_id");
        fields.remove("deliveries");
        let mut names = HashMap::from([("#st".to_string(), "status".to_string())]);
        let mut values = HashMap::from([(
            ":awaiting".to_string(),
            s(Status::AwaitingCompletion.as_str()),
        )]);
        let mut sets = Vec::with_capacity(fields.len());
        for (i, (name, value)) in fields.into_iter().enumerate() {
            sets.push(format!("#a{i} = :v{i}"));
            names.insert(format!("#a{i}"), name);
            values.insert(format!(":v{i}"), value);
        }
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("record_id", s(&record.record_id))
            .update_expression(format!("SET {} REMOVE lease_expires_at", sets.join(", ")))
            .condition_expression("#st = :awaiting")
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failure(&e) => Ok(false),
            Err(e) => Err(self.aws("UpdateItem", e)),
        }
    }
}

fn awaited_of(item: &Item) -> Option<Awaited> {
    let record_ids = match item.get("record_ids") {
        Some(AttributeValue::Ss(ids)) => ids.clone(),
        _ => return None,
    };
    Some(Awaited {
        handle: text(item, "handle")?,
        record_ids,
        deadline: number(item, "deadline")?,
    })
}
