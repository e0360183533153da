//! The tests of trust and correctness (issue 9's items), one module per concern, in one test
//! binary: every test binary links the whole AWS SDK, so one link instead of six keeps the
//! clean build short.

mod approval;
mod bounded_records;
mod confirm;
mod context;
mod operator_commands;
mod policy_overrides;
mod rollback;
mod securityhub_feedback;
