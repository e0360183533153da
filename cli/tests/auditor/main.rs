//! The auditor's report against the local AWS emulator (`AWS_ENDPOINT_URL`, set by
//! scripts/test): `reflex audit` answers through the table's indexes and never scans
//! (`indexes.rs`).
//!
//! Both read a demo-like table (`table.rs`): a record for every sample finding of every
//! function, in every outcome an auditor meets, and records whose finding text is markup.

mod indexes;
mod table;
