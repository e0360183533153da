//! Claim, checkpoint, complete: the idempotent outcome ledger in DynamoDB, as a state machine.
//!
//! ```text
//!   (none) ──claim──▶ claimed ──checkpoint──▶ acting ──complete──▶ succeeded | failed | …
//!                       │  ▲                    │  ▲
//!                       │  └──release (transient error: lease ends now, error listed)
//!                       └──complete──▶ skipped | dry-run | pending-approval | …
//! ```
//!
//! Every transition is a conditional write on what the writer expects to find: the status, the
//! attempt number and the writer's own claim token. A claim is free when absent, or when a
//! `claimed`/`acting` record's lease has run out (a crashed, timed-out or released invocation);
//! taking over `acting` carries its pre-state and planned steps to the new attempt. When an
//! answer is lost on the way back and the SDK retries, the retry meets the invocation's own
//! write; it is recognised by the claim token and accepted.

mod bound;
mod budget;
mod hold;
pub use hold::Lifted;
mod key;
mod notified;
mod owned;
mod owned_store;
mod prefixes;
mod record;
pub mod table;

pub use bound::{
    bound, check_keys, item_size, truncated, BoundError, KeyError, Trimmed, DETAIL_MAX,
    ERRORS_KEPT, ERROR_TEXT_MAX, HISTORY_KEPT, ITEM_BUDGET, ITEM_LIMIT, PARTITION_KEY_MAX,
    SORT_KEY_MAX, TEXT_MAX,
};
pub use budget::{counter_key, window, COUNTER_TTL_SECONDS};
pub use key::{digest_hex, record_id, rejected_record_id};
pub use owned::{
    handle_key, handle_partition, resource_key, resource_partition, Awaited, Owned, OwnedChange,
    OwnedEntry,
};
pub use owned_store::ResourceLease;
pub use prefixes::key_prefixes;
pub use record::{
    Action, ActionResult, AttemptError, Awaiting, BudgetUse, Feedback, FeedbackResult, HoldLifted,
    OutcomeRecord, PriorOutcome, RecordMeta, Rollback, RollbackPending, Suppression,
};

use crate::aws_error::{self, Fault};
use crate::clock::{ClockSkew, SkewedClock};
use crate::status::Status;
use aws_sdk_dynamodb::client::Waiters;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, PointInTimeRecoverySpecification, ReturnValue,
    ReturnValuesOnConditionCheckFailure, TimeToLiveSpecification,
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
        fault: Fault,
    },
    #[error("record {0} cannot be stored or read: {1}")]
    Codec(String, String),
    #[error("record {0}: the claim was taken over by another invocation before this one finished")]
    LeaseLost(String),
    #[error(transparent)]
    ClockSkewed(#[from] SkewedClock),
}

impl LedgerError {
    /// Worth another delivery: DynamoDB throttled, failed or could not be reached.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            LedgerError::Aws {
                fault: Fault::Transient,
                ..
            }
        )
    }
}

/// The result of trying to write a new record.
#[derive(Debug)]
pub enum Claim {
    /// This invocation owns the record (as written, with attempts and history carried over;
    /// `acting` when it resumes a crashed attempt's change).
    Acquired(Box<OutcomeRecord>),
    /// Another invocation has it or finished it: the existing record. Nothing more to do.
    Held(Box<OutcomeRecord>),
}

/// When an existing record may be taken over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Takeover {
    /// Only a `claimed` or `acting` record whose lease has run out (automatic deliveries).
    ExpiredLease,
    /// Also any outcome an analyst may ask to run again (custom actions).
    OnRequest,
}

/// How long a record's history may grow by refused rollbacks (each at most `DETAIL_MAX`).
pub const REFUSALS_NOTED_MAX: usize = 2 * HISTORY_KEPT;

#[derive(Debug, Clone)]
pub struct Ledger {
    client: aws_sdk_dynamodb::Client,
    table: String,
    /// This process's clock against DynamoDB's, from every answer's `Date`.
    clock: ClockSkew,
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn is_condition_failure<E: ProvideErrorMetadata>(
    e: &SdkError<E, aws_smithy_runtime_api::http::Response>,
) -> bool {
    aws_error::code(e) == Some("ConditionalCheckFailedException")
}

impl Ledger {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        let clock = ClockSkew::default();
        let client = aws_sdk_dynamodb::Client::from_conf(
            client
                .config()
                .to_builder()
                .interceptor(clock.clone())
                .build(),
        );
        Ledger {
            client,
            table: table.into(),
            clock,
        }
    }

    /// `Err` when this machine's clock disagrees with DynamoDB's: it must not take over a
    /// record or act, since leases are judged by the clock.
    pub fn check_clock(&self) -> Result<(), LedgerError> {
        self.clock.check().map_err(LedgerError::from)
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    pub fn client(&self) -> &aws_sdk_dynamodb::Client {
        &self.client
    }

    fn aws<E>(
        &self,
        op: &'static str,
        e: SdkError<E, aws_smithy_runtime_api::http::Response>,
    ) -> LedgerError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        if aws_error::code(&e) == Some("ResourceNotFoundException") {
            return LedgerError::TableMissing(self.table.clone());
        }
        LedgerError::Aws {
            op,
            table: self.table.clone(),
            message: aws_error::describe(&e),
            fault: aws_error::classify(&e),
        }
    }

    /// An `UpdateItem` whose condition failing means "nothing to do" (already given back, the
    /// record gone): only other errors are errors.
    fn unless_condition_failed<T>(
        &self,
        result: Result<
            T,
            SdkError<
                aws_sdk_dynamodb::operation::update_item::UpdateItemError,
                aws_smithy_runtime_api::http::Response,
            >,
        >,
    ) -> Result<(), LedgerError> {
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failure(&e) => Ok(()),
            Err(e) => Err(self.aws("UpdateItem", e)),
        }
    }

    /// Every record the ledger writes passes here: keys DynamoDB would refuse are refused
    /// before any call, and the contents are bounded to fit one item (`bound`).
    fn to_item(record: &OutcomeRecord) -> Result<Item, LedgerError> {
        let codec = |e: String| LedgerError::Codec(truncated(&record.record_id, 256), e);
        check_keys(record).map_err(|e| codec(e.to_string()))?;
        let mut bounded = record.clone();
        bound(&mut bounded).map_err(|e| codec(e.to_string()))?;
        serde_dynamo::to_item(&bounded).map_err(|e| codec(e.to_string()))
    }

    /// Some of a record's attributes, exactly as its item holds them (absent ones stay absent).
    fn fields(record: &OutcomeRecord, names: &[&str]) -> Result<Item, LedgerError> {
        let mut item = Self::to_item(record)?;
        item.retain(|k, _| names.contains(&k.as_str()));
        Ok(item)
    }

    fn from_item(item: Item) -> Result<OutcomeRecord, LedgerError> {
        let id = match item.get("record_id") {
            Some(AttributeValue::S(s)) => s.clone(),
            _ => "?".into(),
        };
        serde_dynamo::from_item(item).map_err(|e| LedgerError::Codec(id, e.to_string()))
    }

    /// Write `record` as new. If a record with its id exists, take it over when `takeover` and
    /// `now` allow (carrying over attempts, deliveries, created_at, errors and the prior
    /// outcome in full; for an `acting` record also its pre-state, planned steps and mode), or
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
        if existing.claim_token == record.claim_token && existing.attempts == record.attempts {
            // Our own write, whose answer was lost: the SDK retried and met it.
            return Ok(Claim::Acquired(Box::new(existing)));
        }
        let expired = existing.status.in_progress()
            && existing.lease_expires_at.is_some_and(|t| t <= now_epoch);
        // A new analyst request (a new custom-action event, so a new digest) may run a finished
        // outcome again; a redelivery of the same request may not. A stop by the operator's
        // configuration (invalid policy, kill switch) is no verdict on the finding: any
        // delivery runs it again under the policy now in force.
        let requested = (takeover == Takeover::OnRequest
            && existing.status.rerunnable_on_request()
            && existing.event_digest != record.event_digest)
            || existing.stopped_by_configuration();
        if !(expired || requested) {
            self.count_delivery(&existing.record_id).await?;
            return Ok(Claim::Held(Box::new(existing)));
        }
        if expired {
            // The lease was judged by this machine's clock: it must agree with AWS's.
            self.check_clock()?;
        }
        record.attempts = existing.attempts + 1;
        // Only unfinished attempts count toward max_attempts; a new run starts at 1.
        record.tries = if existing.status.in_progress() {
            existing.tries() + 1
        } else {
            1
        };
        record.deliveries = existing.deliveries + 1;
        record.created_at = existing.created_at.clone();
        record.errors = existing.errors.clone();
        record.history = existing.history.clone();
        record.trimmed = existing.trimmed.clone();
        record.history.push(existing.prior());
        // Each outcome is told once per record, whichever attempt reaches it again.
        record.notified = existing.notified.clone();
        if matches!(existing.status, Status::Acting | Status::PendingApproval) {
            // The plan (being carried out, or shown for approval) was made for this target.
            if existing.target.is_some() {
                record.target = existing.target.clone();
            }
        }
        // The resource this finding's record was made for: a later run (a retry, a redelivery
        // after the kill switch) refuses another resource under the same name.
        record.resource_identity = existing.resource_identity.clone();
        if existing.status == Status::Acting {
            // The crashed attempt may have changed the resource. Its pre-state is the one to
            // keep (never overwritten) and its plan says what it was about to do.
            record.pre_state = existing.pre_state.clone();
            record.actions = existing.actions.clone();
            record.budget = existing.budget.clone();
            record.approved_by = existing.approved_by.clone();
            record.approved_at = existing.approved_at.clone();
            if record.status.in_progress() {
                // Resume: the pipeline reads the resource and credits or completes the change.
                record.status = Status::Acting;
            } else {
                // Decided before any read (the policy now says skip, say): say plainly that
                // the earlier attempt's change was not checked.
                record.detail = format!(
                    "{}; attempt {} had stopped after its checkpoint (planned steps and pre-state kept here): whether its change took effect was not checked",
                    record.detail, existing.attempts
                );
            }
        }
        // Optimistic: only if nobody else took it over since we read it, and (for a record in
        // progress) only if its lease has run out, checked by DynamoDB itself.
        let values = HashMap::from([
            (":s".to_string(), s(existing.status.as_str())),
            (":a".to_string(), n(existing.attempts)),
            (":now".to_string(), n(now_epoch)),
        ]);
        match self
            .put_if(
                &record,
                "#status = :s AND attempts = :a AND \
                 (attribute_not_exists(lease_expires_at) OR lease_expires_at <= :now)",
                values,
            )
            .await?
        {
            None => Ok(Claim::Acquired(Box::new(record))),
            Some(now_existing) if now_existing.claim_token == record.claim_token => {
                Ok(Claim::Acquired(Box::new(record)))
            }
            Some(now_existing) => {
                self.count_delivery(&now_existing.record_id).await?;
                Ok(Claim::Held(Box::new(now_existing)))
            }
        }
    }

    /// The checkpoint before the first change: `claimed` (or a resumed `acting`) → `acting`,
    /// storing the decision, the pre-state (only if none is stored: a stored pre-state is never
    /// overwritten), the planned steps and a fresh lease.
    pub async fn checkpoint(&self, record: &OutcomeRecord) -> Result<(), LedgerError> {
        let mut fields = Self::fields(
            record,
            &[
                "reason",
                "detail",
                "updated_at",
                "actions",
                "mode",
                "lease_expires_at",
                "pre_state",
                "budget",
                "resource_identity",
                "approved_by",
                "approved_at",
            ],
        )?;
        fields.insert("status".into(), s(Status::Acting.as_str()));
        // Written only if none is stored yet: see `update_owned`.
        let pre_state = fields.remove("pre_state");
        self.update_owned(record, fields, pre_state, &[], |stored| {
            stored.status == Status::Acting
        })
        .await
    }

    /// Hand the record back after a transient error: its lease ends now, so the next delivery
    /// takes it over at once; its status stays (`claimed`, or `acting` with its plan) and the
    /// error joins `errors`.
    pub async fn release(&self, record: &OutcomeRecord, now_epoch: i64) -> Result<(), LedgerError> {
        let mut fields = Self::fields(
            record,
            &[
                "reason",
                "detail",
                "updated_at",
                "actions",
                "errors",
                "budget",
                "trimmed",
            ],
        )?;
        fields.insert("lease_expires_at".into(), n(now_epoch));
        // The stored list is compacted (see `bound`): this write is recognised by its newest
        // error, not by the count.
        let newest = record.errors.last().cloned();
        self.update_owned(record, fields, None, &[], move |stored| {
            stored.errors.last().map(|e| (&e.at, &e.message))
                == newest.as_ref().map(|e| (&e.at, &e.message))
        })
        .await
    }

    /// Store the final state of a record this invocation holds. Fails with `LeaseLost` if
    /// another invocation took the claim over meanwhile (then its outcome stands, not ours).
    ///
    /// An update, not a put: duplicates may have counted themselves in `deliveries` while this
    /// invocation worked, and a put would erase their marks.
    pub async fn complete(&self, record: &OutcomeRecord) -> Result<(), LedgerError> {
        let mut fields = Self::to_item(record)?;
        fields.remove("record_id");
        fields.remove("deliveries");
        // Only `claim_notification` adds to it (a stale copy must not erase a mark).
        fields.remove("notified");
        // Absent optional fields are not written by an update: remove what the checkpoint may
        // have stored and the outcome no longer holds.
        let mut remove = Vec::new();
        if record.lease_expires_at.is_none() {
            remove.push("lease_expires_at");
        }
        if record.budget.is_none() {
            remove.push("budget");
        }
        if record.approved_by.is_none() {
            remove.extend(["approved_by", "approved_at"]);
        }
        let remove = remove.as_slice();
        let status = record.status;
        self.update_owned(record, fields, None, remove, move |stored| {
            stored.status == status
        })
        .await
    }

    /// A conditional update of a record this invocation holds: the record must still be in
    /// progress, at this attempt, under this invocation's claim token. If the condition fails
    /// because an earlier try of this very write took effect (its answer was lost and the SDK
    /// sent it again), `already_done` recognises the stored record and the write counts.
    async fn update_owned(
        &self,
        record: &OutcomeRecord,
        fields: Item,
        pre_state_if_absent: Option<AttributeValue>,
        remove: &[&str],
        already_done: impl Fn(&OutcomeRecord) -> bool,
    ) -> Result<(), LedgerError> {
        let mut names = HashMap::from([("#st".to_string(), "status".to_string())]);
        let mut values = HashMap::from([
            (":claimed".to_string(), s(Status::Claimed.as_str())),
            (":acting".to_string(), s(Status::Acting.as_str())),
            (":attempt".to_string(), n(record.attempts)),
            (":token".to_string(), s(&record.claim_token)),
        ]);
        let mut sets = Vec::with_capacity(fields.len() + 1);
        for (i, (name, value)) in fields.into_iter().enumerate() {
            sets.push(format!("#a{i} = :v{i}"));
            names.insert(format!("#a{i}"), name);
            values.insert(format!(":v{i}"), value);
        }
        if let Some(pre) = pre_state_if_absent {
            sets.push("pre_state = if_not_exists(pre_state, :pre)".into());
            values.insert(":pre".into(), pre);
        }
        let mut expression = format!("SET {}", sets.join(", "));
        if !remove.is_empty() {
            expression.push_str(&format!(" REMOVE {}", remove.join(", ")));
        }
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("record_id", s(&record.record_id))
            .update_expression(expression)
            .condition_expression(
                "#st IN (:claimed, :acting) AND attempts = :attempt AND claim_token = :token",
            )
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failure(&e) => match self.get(&record.record_id).await? {
                Some(stored)
                    if stored.claim_token == record.claim_token
                        && stored.attempts == record.attempts
                        && already_done(&stored) =>
                {
                    Ok(())
                }
                _ => Err(LedgerError::LeaseLost(record.record_id.clone())),
            },
            Err(e) => Err(self.aws("UpdateItem", e)),
        }
    }

    /// Reserve one change in the blast-radius budget: `ADD n 1` on the window's counter, only if
    /// `n < max`. `Some(count)`, this change's number in the window; `None` when the budget is
    /// spent. Atomic, so concurrent findings cannot all read "0 < max" and all act; idempotent
    /// per `token` (the record id), so neither an SDK retry after a lost answer nor a later
    /// attempt at the same record counts the change twice (the counter keeps the tokens in a
    /// set).
    pub async fn reserve_change(
        &self,
        counter: &str,
        token: &str,
        max: u32,
        expires_at: i64,
    ) -> Result<Option<u32>, LedgerError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("record_id", s(counter))
            .update_expression(
                "ADD n :one, tokens :token SET expires_at = if_not_exists(expires_at, :exp)",
            )
            .condition_expression(
                "(attribute_not_exists(n) OR n < :max) AND NOT contains(tokens, :t)",
            )
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":max", n(max))
            .expression_attribute_values(":exp", n(expires_at))
            .expression_attribute_values(":token", AttributeValue::Ss(vec![token.to_string()]))
            .expression_attribute_values(":t", s(token))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await;
        match result {
            Ok(out) => Ok(Some(count_of(out.attributes(), max))),
            Err(e) if is_condition_failure(&e) => {
                // Spent, or this very reservation already made (its answer lost).
                let item = self
                    .client
                    .get_item()
                    .table_name(&self.table)
                    .key("record_id", s(counter))
                    .consistent_read(true)
                    .send()
                    .await
                    .map_err(|e| self.aws("GetItem", e))?;
                let mine = matches!(
                    item.item().and_then(|i| i.get("tokens")),
                    Some(AttributeValue::Ss(tokens)) if tokens.iter().any(|t| t == token)
                );
                Ok(mine.then(|| count_of(item.item(), max)))
            }
            Err(e) => Err(self.aws("UpdateItem", e)),
        }
    }

    /// Give a reserved unit back: the reservation made no change. Idempotent like the
    /// reservation: only a token still in the set is taken out and uncounted.
    pub async fn give_back_change(&self, counter: &str, token: &str) -> Result<(), LedgerError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("record_id", s(counter))
            .update_expression("ADD n :minus DELETE tokens :token")
            .condition_expression("contains(tokens, :t)")
            .expression_attribute_values(":minus", n(-1))
            .expression_attribute_values(":token", AttributeValue::Ss(vec![token.to_string()]))
            .expression_attribute_values(":t", s(token))
            .send()
            .await;
        self.unless_condition_failed(result)
    }

    /// Take a record's rollback lease (a succeeded fix, or one that failed part-way): only
    /// while it is still the record
    /// `read` (status and attempt) and no other rollback holds a live lease on it. `Ok(false)`:
    /// another rollback holds it. A lost answer met by the SDK's retry is recognised by the
    /// token.
    pub async fn begin_rollback(
        &self,
        read: &OutcomeRecord,
        pending: &RollbackPending,
        now_epoch: i64,
    ) -> Result<bool, LedgerError> {
        if read
            .rollback_pending
            .as_ref()
            .is_some_and(|p| p.lease_expires_at <= now_epoch)
        {
            // Taking over an expired rollback lease, judged by this machine's clock.
            self.check_clock()?;
        }
        let value = serde_dynamo::to_attribute_value(pending)
            .map_err(|e| LedgerError::Codec(read.record_id.clone(), e.to_string()))?;
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("record_id", s(&read.record_id))
            .update_expression("SET rollback_pending = :p")
            .condition_expression(
                "#st = :was AND attempts = :a AND \
                 (attribute_not_exists(rollback_pending) OR rollback_pending.lease_expires_at <= :now)",
            )
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":p", value)
            .expression_attribute_values(":was", s(read.status.as_str()))
            .expression_attribute_values(":a", n(read.attempts))
            .expression_attribute_values(":now", n(now_epoch))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failure(&e) => Ok(self
                .get(&read.record_id)
                .await?
                .and_then(|r| r.rollback_pending)
                .is_some_and(|p| p.token == pending.token)),
            Err(e) => Err(self.aws("UpdateItem", e)),
        }
    }

    /// The rollback's checkpoint: its planned steps, under its lease, before the first change.
    pub async fn checkpoint_rollback(
        &self,
        record_id: &str,
        pending: &RollbackPending,
    ) -> Result<(), LedgerError> {
        let value = serde_dynamo::to_attribute_value(pending)
            .map_err(|e| LedgerError::Codec(record_id.to_string(), e.to_string()))?;
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("record_id", s(record_id))
            .update_expression("SET rollback_pending = :p")
            .condition_expression("rollback_pending.#tk = :t")
            .expression_attribute_names("#tk", "token")
            .expression_attribute_values(":p", value)
            .expression_attribute_values(":t", s(&pending.token))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failure(&e) => Err(LedgerError::LeaseLost(record_id.into())),
            Err(e) => Err(self.aws("UpdateItem", e)),
        }
    }

    /// A rollback that was refused or stopped: its account joins the record's `history` (a
    /// refusal only while the history holds fewer than [`REFUSALS_NOTED_MAX`] entries), the
    /// record's outcome stays. With `token`, the rollback's own lease ends now, while its
    /// checkpoint stays, so the next rollback can take over at once and finish what it shows.
    pub async fn note_rollback(
        &self,
        record_id: &str,
        entry: &PriorOutcome,
        token: Option<&str>,
    ) -> Result<(), LedgerError> {
        let mut entry = entry.clone();
        entry.detail = truncated(&entry.detail, DETAIL_MAX);
        let value = serde_dynamo::to_attribute_value(vec![entry])
            .map_err(|e| LedgerError::Codec(record_id.to_string(), e.to_string()))?;
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("record_id", s(record_id))
            .expression_attribute_values(":e", value)
            .expression_attribute_values(":empty", AttributeValue::L(Vec::new()));
        let set = "SET history = list_append(if_not_exists(history, :empty), :e)";
        req = match token {
            Some(t) => req
                .update_expression(format!("{set}, rollback_pending.#le = :zero"))
                .condition_expression("rollback_pending.#tk = :t")
                .expression_attribute_names("#tk", "token")
                .expression_attribute_names("#le", "lease_expires_at")
                .expression_attribute_values(":zero", n(0))
                .expression_attribute_values(":t", s(t)),
            // Refusals cost nothing to ask for: they stop being noted once the history is
            // long, so they cannot grow the item past DynamoDB's limit.
            None => req
                .update_expression(set)
                .condition_expression(
                    "attribute_exists(record_id) AND \
                     (attribute_not_exists(history) OR size(history) < :cap)",
                )
                .expression_attribute_values(":cap", n(REFUSALS_NOTED_MAX)),
        };
        self.unless_condition_failed(req.send().await)
    }

    /// A rolled-back record: conditional on still being the
    /// record this rollback read (status and attempt) and on the rollback's own lease
    /// (`token`), its earlier outcome kept in `history`.
    pub async fn mark_rolled_back(
        &self,
        record: &OutcomeRecord,
        read: &OutcomeRecord,
        token: &str,
    ) -> Result<(), LedgerError> {
        let codec =
            |e: serde_dynamo::Error| LedgerError::Codec(record.record_id.clone(), e.to_string());
        // Bounded like every write (`to_item`): history grows with each rollback tried.
        let mut bounded = record.clone();
        bound(&mut bounded)
            .map_err(|e| LedgerError::Codec(record.record_id.clone(), e.to_string()))?;
        let record = &bounded;
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("record_id", s(&record.record_id))
            .update_expression(
                "SET #st = :rolled, #rs = :reason, #dt = :detail, #rb = :rollback, \
                 #ua = :now, #hi = :history, #rq = :request, #tr = :trimmed REMOVE rollback_pending",
            )
            .condition_expression(
                "#st = :was AND attempts = :attempt AND rollback_pending.#tk = :token",
            )
            .expression_attribute_names("#tk", "token")
            .expression_attribute_values(":token", s(token))
            .expression_attribute_names("#st", "status")
            .expression_attribute_names("#rs", "reason")
            .expression_attribute_names("#dt", "detail")
            .expression_attribute_names("#rb", "rollback")
            .expression_attribute_names("#ua", "updated_at")
            .expression_attribute_names("#hi", "history")
            .expression_attribute_names("#rq", "request_id")
            .expression_attribute_names("#tr", "trimmed")
            .expression_attribute_values(
                ":trimmed",
                serde_dynamo::to_attribute_value(&record.trimmed).map_err(codec)?,
            )
            .expression_attribute_values(":rolled", s(Status::RolledBack.as_str()))
            .expression_attribute_values(":was", s(read.status.as_str()))
            .expression_attribute_values(":attempt", n(read.attempts))
            .expression_attribute_values(":reason", s(record.reason.as_str()))
            .expression_attribute_values(":detail", s(&record.detail))
            .expression_attribute_values(":now", s(&record.updated_at))
            .expression_attribute_values(":request", s(&record.request_id))
            .expression_attribute_values(
                ":rollback",
                serde_dynamo::to_attribute_value(&record.rollback).map_err(codec)?,
            )
            .expression_attribute_values(
                ":history",
                serde_dynamo::to_attribute_value(&record.history).map_err(codec)?,
            )
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failure(&e) => match self.get(&record.record_id).await? {
                // This very write, whose answer was lost: the SDK retried and met it.
                Some(stored)
                    if stored.status == Status::RolledBack
                        && stored.request_id == record.request_id =>
                {
                    Ok(())
                }
                _ => Err(LedgerError::LeaseLost(record.record_id.clone())),
            },
            Err(e) => Err(self.aws("UpdateItem", e)),
        }
    }

    pub async fn put_suppression(&self, suppression: &Suppression) -> Result<(), LedgerError> {
        let item = serde_dynamo::to_item(suppression)
            .map_err(|e| LedgerError::Codec(suppression.record_id.clone(), e.to_string()))?;
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| self.aws("PutItem", e))
    }

    /// The suppression holding `resource_arn` back from `remediation`, if one is stored (it may
    /// have expired: DynamoDB's TTL removes items late).
    pub async fn suppression(
        &self,
        remediation: &str,
        resource_arn: &str,
    ) -> Result<Option<Suppression>, LedgerError> {
        let key = Suppression::key(remediation, resource_arn);
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("record_id", s(&key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.aws("GetItem", e))?;
        out.item
            .map(|item| {
                serde_dynamo::from_item(item)
                    .map_err(|e| LedgerError::Codec(key.clone(), e.to_string()))
            })
            .transpose()
    }

    /// Every stored suppression of `remediation` (through the by-time index, never a scan).
    pub async fn suppressions(&self, remediation: &str) -> Result<Vec<Suppression>, LedgerError> {
        let mut pages = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(table::BY_TIME_INDEX)
            .key_condition_expression("remediation = :r")
            .expression_attribute_values(":r", s(Suppression::partition(remediation)))
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            for item in page
                .map_err(|e| self.aws("Query", e))?
                .items
                .unwrap_or_default()
            {
                out.push(
                    serde_dynamo::from_item(item)
                        .map_err(|e| LedgerError::Codec(remediation.to_string(), e.to_string()))?,
                );
            }
        }
        Ok(out)
    }

    /// Write the Security Hub feedback onto a completed record (a follow-up to `complete`:
    /// Security Hub is told only once the outcome is stored).
    pub async fn set_feedback(
        &self,
        record_id: &str,
        feedback: &Feedback,
    ) -> Result<(), LedgerError> {
        let mut feedback = feedback.clone();
        feedback.detail = truncated(&feedback.detail, DETAIL_MAX);
        let value = serde_dynamo::to_attribute_value(&feedback)
            .map_err(|e| LedgerError::Codec(record_id.to_string(), e.to_string()))?;
        self.client
            .update_item()
            .table_name(&self.table)
            .key("record_id", s(record_id))
            .update_expression("SET securityhub = :f")
            .condition_expression("attribute_exists(record_id)")
            .expression_attribute_values(":f", value)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| self.aws("UpdateItem", e))
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
    pub async fn count_delivery(&self, record_id: &str) -> Result<(), LedgerError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("record_id", AttributeValue::S(record_id.to_string()))
            .update_expression("ADD deliveries :one")
            .condition_expression("attribute_exists(record_id)")
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .send()
            .await;
        self.unless_condition_failed(result)
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

    /// Records of one resource (by-resource index), one remediation (by-time index) or one
    /// status (by-status index), oldest first, optionally from `since` on. Never a table scan.
    pub async fn query(
        &self,
        by: Lookup<'_>,
        since: Option<&str>,
    ) -> Result<Vec<OutcomeRecord>, LedgerError> {
        let (index, attr, value) = match by {
            Lookup::Resource(arn) => (table::BY_RESOURCE_INDEX, "resource_arn", arn),
            Lookup::Remediation(name) => (table::BY_TIME_INDEX, "remediation", name),
            Lookup::Status(status) => (table::BY_STATUS_INDEX, "status", status.as_str()),
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
    /// Add the indexes the table's definition names that an existing table lacks (one made by
    /// an earlier `reflex init`, before `by-status`): the names added. A deployed stack's table
    /// gets them from its template instead.
    pub async fn add_missing_indexes(&self) -> Result<Vec<&'static str>, LedgerError> {
        let out = self
            .client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
            .map_err(|e| self.aws("DescribeTable", e))?;
        let have: Vec<&str> = out
            .table()
            .map(|t| {
                t.global_secondary_indexes()
                    .iter()
                    .filter_map(|g| g.index_name())
                    .collect()
            })
            .unwrap_or_default();
        let mut added = Vec::new();
        for &(index, hash, range) in table::DEFINITION.indexes {
            if have.contains(&index) {
                continue;
            }
            table::add_index(&self.client, &self.table, (index, hash, range))
                .map_err(|e| LedgerError::Codec(self.table.clone(), e.to_string()))?
                .send()
                .await
                .map_err(|e| self.aws("UpdateTable", e))?;
            added.push(index);
        }
        Ok(added)
    }

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
                fault: Fault::Transient,
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

fn count_of(item: Option<&Item>, max: u32) -> u32 {
    match item.and_then(|a| a.get("n")) {
        Some(AttributeValue::N(v)) => v.parse().unwrap_or(max),
        _ => max,
    }
}

/// How to list records without scanning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup<'a> {
    Resource(&'a str),
    Remediation(&'a str),
    Status(Status),
}
