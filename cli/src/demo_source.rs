//! The demo's word on `confirm_at_source`: the emulator keeps no GuardDuty findings (moto has
//! no GuardDuty `GetFindings`), so a function that reads its findings back before acting would
//! find none there and rightly change nothing. The demo runs those functions with the read-back
//! off, and says so on screen; the tests read findings back from a stand-in of both sources.

use reflex_shared::policy::{Policy, PolicyCache, RemediationPolicy};
use reflex_shared::Setup;
use std::sync::Arc;

/// `setup` with `remediation`'s read-back turned off (the built-in policy otherwise).
pub fn without_read_back(setup: &Setup, remediation: &str) -> Setup {
    println!(
        "   (the emulator keeps no GuardDuty findings, so {remediation} runs here with \
         confirm_at_source off; in AWS it reads each finding back before acting)"
    );
    let mut policy = Policy::default();
    policy.remediations.insert(
        remediation.to_string(),
        RemediationPolicy {
            confirm_at_source: Some(false),
            ..Default::default()
        },
    );
    let mut setup = setup.clone();
    setup.policy = Arc::new(PolicyCache::fixed(Ok(policy)));
    setup
}
