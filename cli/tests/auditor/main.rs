//! The auditor's report against the local AWS emulator (`AWS_ENDPOINT_URL`, set by
//! scripts/test): `reflex audit` answers through the table's indexes and never scans
//! (`indexes.rs`), and `reflex audit --html` writes a page that a real headless browser renders
//! with every record, nothing fetched and nothing overflowing at 1280 px (`browser.rs`).
//!
//! Both read a demo-like table (`table.rs`): a record for every sample finding of every
//! function, in every outcome an auditor meets, and records whose finding text is markup.

mod browser;
mod indexes;
mod table;
