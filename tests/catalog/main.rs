//! The catalog's functions end to end against the local AWS emulator, one module each, in one
//! test binary (each test binary links the whole AWS SDK: one link, not one per function).

mod cloudtrail_restore_logging;
mod ec2_patch_instance;
mod ec2_quarantine_instance;
mod iam_contain_principal;
mod iam_detach_admin_policy;
mod iam_disable_access_key;
mod network_block_domain;
mod network_block_ip;
mod network_block_ip_adapter;
mod s3_enforce_encryption;
mod sg_revoke_open_ingress;
