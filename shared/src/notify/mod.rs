//! Notifications: an outcome a person must hear about (by default `failed`,
//! `verification-failed`, `pending-approval`, `rate-limited` and a long operation `timed-out`,
//! the policy's `notify`), told once per record and status to the stack's SNS topic, after the
//! outcome is stored.
//!
//! `select` (which outcomes) and `message` (what a person reads) are pure; `publish` is the SNS
//! adapter. The once-per-record-and-status claim is a conditional write on the record
//! (`Ledger::claim_notification`), made by the pipeline (`pipeline::aftermath`).

mod message;
mod publish;
mod select;

pub use message::{cli_prefix, render, Message, SUBJECT_MAX};
pub use publish::{Notifier, PublishError, TOPIC_ENV};
pub use select::{default_notify, selected, NotifyOn};
