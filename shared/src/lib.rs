//! Reflex's common crate: findings, policy, the outcome ledger, the pipeline and AWS setup.
//! A remediation crate implements [`remediation::Remediation`] and hands it to
//! [`pipeline::handle`]; everything else lives here, once.

pub mod aws_error;
pub mod catalog;
pub mod clock;
pub mod config_rules;
pub mod confirm;
pub mod finding;
pub mod ledger;
pub mod logging;
pub mod metrics;
pub mod notify;
pub mod operator;
pub mod pipeline;
pub mod policy;
pub mod principal;
pub mod remediation;
pub mod securityhub;
#[cfg(test)]
mod sent;
pub mod serve;
pub mod setup;
pub mod status;
pub mod trigger;

pub use serve::serve;
pub use setup::Setup;
