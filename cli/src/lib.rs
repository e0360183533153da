//! `reflex`, the operator's and auditor's tool. The library half holds what tests reuse: the
//! registry of functions, the audit query and the renderers.

pub mod audit;
pub mod audit_exemptions;
pub mod demo;
pub mod demo_backlog;
pub mod demo_catalog;
pub mod demo_cloudtrail_restore_logging;
pub mod demo_feedback;
pub mod demo_iam_contain_principal;
pub mod demo_iam_detach_admin_policy;
pub mod demo_iam_disable_access_key;
pub mod demo_network_block_domain;
pub mod demo_network_block_ip;
pub mod demo_operator;
pub mod demo_s3;
pub mod demo_s3_enforce_encryption;
pub mod demo_sg_revoke_open_ingress;
pub mod demo_source;
pub mod emulator;
pub mod functions;
pub mod ops;
pub mod policy_choice;
pub mod policy_cmd;
pub mod render;
pub mod render_record;
pub mod report_html;
pub mod samples;
pub mod template;
