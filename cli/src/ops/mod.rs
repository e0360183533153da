//! The operator's commands on records and findings that already exist: `retry`, `backlog`,
//! `show`, `unhold`. Each is a library function (the demo calls them) over a [`Setup`] or a
//! [`Ledger`]; `main.rs` only parses flags and prints.

pub mod backlog;
pub mod retry;
pub mod show;
pub mod unhold;

use crate::functions::{self, Function};
use reflex_shared::Setup;

/// The function a record belongs to: its id starts with the function's name (`<name>#…`).
pub fn function_for_record(setup: &Setup, record_id: &str) -> anyhow::Result<Box<dyn Function>> {
    let name = record_id.split('#').next().unwrap_or_default();
    functions::build(name, setup).ok_or_else(|| {
        anyhow::anyhow!(
            "record id {record_id:?} names no Reflex function (a record id starts with its function's name: {})",
            functions::names().join(", ")
        )
    })
}
