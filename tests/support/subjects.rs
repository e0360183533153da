//! Each function as a [`Subject`] of the common cases: how to make its resource, name it in a
//! finding, and read whether it is fixed. (Here, in the support crate that owns the trait, so
//! each function's test file only says `common_cases!(ItsType);`.)
//!
//! s3-block-public-access is reversible and has an already-compliant state (all four settings
//! on): it opts out of no case.

use crate::common::Subject;
use crate::{sample_for, Harness, ALL_OFF};
use s3_block_public_access::{BlockConfig, S3BlockPublicAccess};
use serde_json::{json, Value};

const S3_8: &str = "s3-block-public-access/securityhub-s3.8-imported.json";

impl Subject for S3BlockPublicAccess {
    const SPEC: &'static reflex_shared::remediation::Spec = &s3_block_public_access::SPEC;

    fn new(h: &Harness) -> Self {
        S3BlockPublicAccess::from_client(aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&h.sdk)
                .force_path_style(true)
                .interceptor(h.calls.clone())
                .build(),
        ))
    }

    async fn noncompliant(h: &Harness, tags: &[(&str, &str)]) -> String {
        h.bucket(Some(ALL_OFF), tags).await
    }

    async fn compliant(h: &Harness) -> String {
        h.bucket(Some(BlockConfig::ALL_ON), &[]).await
    }

    fn event(id: &str) -> Value {
        sample_for(S3_8, id)
    }

    fn recurrence(id: &str) -> Value {
        let mut e = sample_for(S3_8, id);
        e["detail"]["findings"][0]["UpdatedAt"] = json!("2026-12-01T00:00:00.000Z");
        e
    }

    async fn arn(_h: &Harness, id: &str) -> String {
        format!("arn:aws:s3:::{id}")
    }

    async fn fixed(h: &Harness, id: &str) -> bool {
        h.pab(id).await == Some(BlockConfig::ALL_ON)
    }
}

/// ec2-patch-instance is not reversible (a patch stays: `ROLLBACK = false`) and has no cheap
/// "already compliant" state to make (Inspector closes the finding once the package is fixed:
/// `ALREADY_COMPLIANT = false`). Its SSM client is scripted where moto's SSM is not AWS's
/// (`crate::ssm_script`): every instance asked about is managed, and commands are `Success` at
/// once as moto has them.
mod ec2_patch_instance_subject {
    use super::*;
    use crate::ssm_script::{sent_to, SsmScript};
    use ec2_patch_instance::{Ec2PatchInstance, DOCUMENT};
    use reflex_shared::pipeline::Handled;

    /// The instance id the committed samples name.
    const SAMPLE_INSTANCE: &str = "i-0abc1234def567890";
    const CRITICAL: &str = "ec2-patch-instance/securityhub-inspector-cve-critical.json";
    const COMPLETION: &str = "ec2-patch-instance/ssm-command-status-change-success.json";

    /// The critical sample naming `instance`, its finding id unique to it.
    pub fn patch_event(instance: &str) -> Value {
        let mut v: Value =
            serde_json::from_str(&crate::sample(CRITICAL).replace(SAMPLE_INSTANCE, instance))
                .expect("sample is JSON");
        let f = &mut v["detail"]["findings"][0];
        f["Id"] = json!(format!(
            "{}-{instance}",
            f["Id"].as_str().unwrap_or_default()
        ));
        v
    }

    impl Subject for Ec2PatchInstance {
        const SPEC: &'static reflex_shared::remediation::Spec = &ec2_patch_instance::SPEC;
        const ROLLBACK: bool = false;
        const ALREADY_COMPLIANT: bool = false;

        fn new(h: &Harness) -> Self {
            let ssm = aws_sdk_ssm::Client::from_conf(
                aws_sdk_ssm::config::Builder::from(&h.sdk)
                    .interceptor(h.calls.clone())
                    .interceptor(SsmScript::default())
                    .build(),
            );
            Ec2PatchInstance::from_clients(h.ec2(), ssm)
        }

        async fn noncompliant(h: &Harness, tags: &[(&str, &str)]) -> String {
            h.instance(false, tags).await.instance_id
        }

        fn event(id: &str) -> Value {
            patch_event(id)
        }

        fn recurrence(id: &str) -> Value {
            let mut e = patch_event(id);
            e["detail"]["findings"][0]["UpdatedAt"] = json!("2026-12-01T00:00:00.000Z");
            e
        }

        async fn arn(_h: &Harness, id: &str) -> String {
            format!("arn:aws:ec2:us-east-1:{}:instance/{id}", crate::ACCOUNT)
        }

        /// A patch run was sent to the instance, as moto holds it: AWS-RunPatchBaseline,
        /// Install.
        async fn fixed(h: &Harness, id: &str) -> bool {
            let sent = sent_to(id);
            if sent.is_empty() {
                return false;
            }
            let listed = h
                .ssm_observer()
                .list_commands()
                .instance_id(id)
                .send()
                .await
                .expect("list commands");
            listed.commands().iter().any(|c| {
                c.command_id().is_some_and(|c| sent.iter().any(|s| s == c))
                    && c.document_name() == Some(DOCUMENT)
                    && c.parameters().and_then(|p| p.get("Operation"))
                        == Some(&vec!["Install".to_string()])
            })
        }

        /// A run awaiting completion is ended by SSM's status-change event for its command
        /// (moto: Success at once).
        async fn settle(h: &Harness, s: &Self, o: Handled) -> Handled {
            if o.status != reflex_shared::status::Status::AwaitingCompletion {
                return o;
            }
            let record = h.record(&o.record_id).await;
            let instance = record
                .resource_arn
                .as_deref()
                .and_then(|a| a.rsplit('/').next())
                .expect("the record names the instance")
                .to_string();
            let command = sent_to(&instance).pop().expect("a command was sent");
            let mut event: Value =
                serde_json::from_str(&crate::sample(COMPLETION)).expect("sample is JSON");
            event["detail"]["command-id"] = json!(command);
            let ended = h
                .deliver_to(s, event)
                .await
                .expect("the completion is handled");
            ended
                .into_iter()
                .find(|e| e.record_id == o.record_id)
                .expect("the completion ends the record")
        }
    }
}
