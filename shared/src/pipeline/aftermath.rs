//! After an outcome is stored: its metrics, and the notification the policy's `notify` asks
//! for, told once per record and outcome. Both come after the record is complete (and after
//! Security Hub's update), so neither adds a call to the path of a fix; and neither can change
//! the outcome: a notification that cannot be sent is logged and counted, and the invocation
//! succeeds as it would have.
//!
//! **Once, not at least once.** The record's `notified` set is claimed (a conditional write
//! only the first writer wins) *before* publishing. A process that dies between the claim and
//! the publish — or whose claim's answer is lost and retried — loses that notification; it
//! never sends one twice. The choice: a duplicate teaches people to ignore the topic, while a
//! lost one is still on record (`reflex audit --status pending-approval`, the `Failures`
//! metric and its alarm count every failure whether told or not). A publish that fails (SNS
//! refused or out of reach) gives its claim back, so a later delivery of the event tells it.
//!
//! A process that dies after storing the outcome and before claiming the notification is
//! covered the other way: Lambda delivers the event again, the delivery finds the record
//! finished (a duplicate), and tells what is not yet in `notified`. A duplicate that finds it
//! there makes no call at all.

use crate::ledger::OutcomeRecord;
use crate::notify::{self, NotifyOn};
use crate::setup::Setup;
use tracing::{info, warn};

/// `stored_now`: this invocation stored the outcome (its metrics are written once, by it); a
/// duplicate that found it stored only tells what was not told yet.
pub(super) async fn after_outcome(setup: &Setup, record: &OutcomeRecord, stored_now: bool) {
    if stored_now {
        setup.metrics.outcome(record);
    }
    notify_once(setup, record).await;
}

/// The outcome to tell for `record` under the policy in force, unless already told.
async fn to_tell(setup: &Setup, record: &OutcomeRecord) -> Option<NotifyOn> {
    // The policy this invocation decided by (cached); an invalid or unreadable one tells
    // the defaults, so a `failed / policy-invalid` is heard too.
    let notify = match setup.policy.current().await {
        Ok(policy) => match policy.as_ref() {
            Ok(p) => p.notify.clone(),
            Err(_) => notify::default_notify(),
        },
        Err(_) => notify::default_notify(),
    };
    let on = notify::selected(&notify, record.status, record.reason)?;
    let key = told_as(record, on);
    (!record.notified.contains(&key)).then_some(on)
}

/// The mark in the record's `notified` set for telling `on`. A plan held for approval is told
/// once per run that shows it (`pending-approval@<attempt>`): a plan shown anew (the resource
/// changed before the approval, a new press) is a new question for a person, while a
/// redelivery of the same run (the same attempt) stays silent. Any other outcome is told once
/// per record, however often it is run again.
fn told_as(record: &OutcomeRecord, on: NotifyOn) -> String {
    match on {
        NotifyOn::PendingApproval => format!("{}@{}", on.as_str(), record.attempts),
        _ => on.as_str().to_string(),
    }
}

async fn notify_once(setup: &Setup, record: &OutcomeRecord) {
    let Some(topic) = setup.notifier.topic() else {
        return;
    };
    let Some(on) = to_tell(setup, record).await else {
        return;
    };
    let id = &record.record_id;
    let ledger = &setup.ledger;
    let key = told_as(record, on);
    match ledger.claim_notification(id, record.status, &key).await {
        Ok(true) => {}
        Ok(false) => return, // Told (or being told) by another invocation.
        Err(e) => {
            warn!(record_id = %id, outcome = %on, error = %e, "notification not claimed: not sent");
            setup.metrics.notification_failed(&record.remediation);
            return;
        }
    }
    let message = notify::render(record, on, ledger.table());
    match setup
        .notifier
        .publish(&message, on.as_str(), &record.remediation)
        .await
    {
        Ok(message_id) => info!(
            record_id = %id,
            outcome = %on,
            topic,
            message_id = message_id.as_deref().unwrap_or(""),
            "notified"
        ),
        Err(e) => {
            warn!(record_id = %id, outcome = %on, error = %e, "notification not sent");
            setup.metrics.notification_failed(&record.remediation);
            if let Err(e) = ledger.release_notification(id, &key).await {
                warn!(record_id = %id, outcome = %on, error = %e, "notification claim not given back");
            }
        }
    }
}
