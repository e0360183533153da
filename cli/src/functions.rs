//! Every remediation function, by name: what `reflex replay --function` runs in-process. Adding
//! a function is one line in [`FUNCTIONS`].

use futures::future::BoxFuture;
use reflex_shared::pipeline::{self, Handled, PipelineError};
use reflex_shared::remediation::{Remediation, Spec};
use reflex_shared::Setup;

/// Any remediation, behind one interface the CLI can hold.
pub trait Function: Send + Sync {
    fn spec(&self) -> &'static Spec;

    /// Run the handler on one raw event, exactly as Lambda would.
    fn replay<'a>(
        &'a self,
        setup: &'a Setup,
        raw: &'a [u8],
        request_id: &'a str,
    ) -> BoxFuture<'a, Result<Vec<Handled>, PipelineError>>;

    /// Approve a record held for approval, as `by`.
    fn approve<'a>(
        &'a self,
        setup: &'a Setup,
        record_id: &'a str,
        by: &'a str,
    ) -> BoxFuture<'a, Result<Handled, PipelineError>>;

    /// Why the remediation's `parameters` in `policy` cannot be read by its own type (a
    /// required key missing, an unknown key), if they cannot: `reflex policy validate`.
    fn parameters_problem(&self, policy: &reflex_shared::policy::Policy) -> Option<String>;

    /// Roll a succeeded fix back, as `by`, holding its resource back until `hold_until`.
    fn rollback<'a>(
        &'a self,
        setup: &'a Setup,
        record_id: &'a str,
        by: &'a str,
        dry_run: bool,
        hold_until: chrono::DateTime<chrono::Utc>,
    ) -> BoxFuture<'a, Result<Handled, PipelineError>>;

    /// Run a finished, non-successful record's stored finding again, as requested by `by`.
    fn retry<'a>(
        &'a self,
        setup: &'a Setup,
        record_id: &'a str,
        by: &'a str,
    ) -> BoxFuture<'a, Result<Handled, PipelineError>>;
}

impl<R: Remediation + 'static> Function for R {
    fn spec(&self) -> &'static Spec {
        Remediation::spec(self)
    }

    fn replay<'a>(
        &'a self,
        setup: &'a Setup,
        raw: &'a [u8],
        request_id: &'a str,
    ) -> BoxFuture<'a, Result<Vec<Handled>, PipelineError>> {
        Box::pin(pipeline::handle_bytes(setup, self, raw, request_id))
    }

    fn approve<'a>(
        &'a self,
        setup: &'a Setup,
        record_id: &'a str,
        by: &'a str,
    ) -> BoxFuture<'a, Result<Handled, PipelineError>> {
        Box::pin(pipeline::approve(setup, self, record_id, by))
    }

    fn parameters_problem(&self, policy: &reflex_shared::policy::Policy) -> Option<String> {
        pipeline::parameters_in::<R::Params>(&Ok(policy.clone()), Remediation::spec(self).name)
            .err()
    }

    fn rollback<'a>(
        &'a self,
        setup: &'a Setup,
        record_id: &'a str,
        by: &'a str,
        dry_run: bool,
        hold_until: chrono::DateTime<chrono::Utc>,
    ) -> BoxFuture<'a, Result<Handled, PipelineError>> {
        Box::pin(pipeline::rollback(
            setup, self, record_id, by, dry_run, hold_until,
        ))
    }

    fn retry<'a>(
        &'a self,
        setup: &'a Setup,
        record_id: &'a str,
        by: &'a str,
    ) -> BoxFuture<'a, Result<Handled, PipelineError>> {
        Box::pin(pipeline::retry(setup, self, record_id, by))
    }
}

/// A function's spec, and how to build it with its clients (once, as a cold start does).
pub struct Entry {
    pub spec: &'static Spec,
    pub build: fn(&aws_config::SdkConfig) -> Box<dyn Function>,
}

/// `entry!(crate_name, Type)`: the function crate's `SPEC`, built with `Type::new(&SdkConfig)`.
macro_rules! entry {
    ($krate:ident, $remediation:ident) => {
        Entry {
            spec: &$krate::SPEC,
            build: |sdk| Box::new($krate::$remediation::new(sdk)),
        }
    };
}

/// Every function this workspace builds, one line each. `reflex template` generates each one's
/// section of the SAM template from its spec; the policy's catalog
/// (`reflex_shared::catalog::REMEDIATIONS`) must name it.
pub const FUNCTIONS: &[Entry] = &[
    entry!(s3_block_public_access, S3BlockPublicAccess),
    entry!(ec2_patch_instance, Ec2PatchInstance),
    entry!(ec2_quarantine_instance, Ec2QuarantineInstance),
    entry!(network_block_ip, NetworkBlockIp),
    entry!(sg_revoke_open_ingress, SgRevokeOpenIngress),
    entry!(network_block_domain, NetworkBlockDomain),
    entry!(s3_enforce_encryption, S3EnforceEncryption),
    entry!(cloudtrail_restore_logging, CloudTrailRestoreLogging),
    entry!(iam_contain_principal, IamContainPrincipal),
    entry!(iam_disable_access_key, IamDisableAccessKey),
    entry!(iam_detach_admin_policy, IamDetachAdminPolicy),
];

/// The specs of every function.
pub fn specs() -> impl Iterator<Item = &'static Spec> {
    FUNCTIONS.iter().map(|f| f.spec)
}

pub fn names() -> Vec<&'static str> {
    specs().map(|s| s.name).collect()
}

/// The function called `name`, its clients built from `setup`, or `None` if there is none.
pub fn build(name: &str, setup: &Setup) -> Option<Box<dyn Function>> {
    FUNCTIONS
        .iter()
        .find(|f| f.spec.name == name)
        .map(|f| (f.build)(&setup.sdk))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_registry_entry_has_a_distinct_name_in_the_catalog() {
        let mut names = names();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), FUNCTIONS.len());
        for name in names {
            assert!(
                reflex_shared::catalog::REMEDIATIONS.contains(&name),
                "{name}"
            );
        }
    }
}
