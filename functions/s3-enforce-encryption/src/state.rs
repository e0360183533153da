//! What the function reads, plans and restores: the bucket's default encryption and its bucket
//! policy, each read only when the finding's control asks about it. Pure.

use crate::tls;
use reflex_shared::finding::FindingKind;
use reflex_shared::remediation::Plan;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What the triggering control asks, and nothing more: a TLS finding never changes encryption.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Fix {
    /// S3.4, S3_BUCKET_SERVER_SIDE_ENCRYPTION_ENABLED: default encryption.
    DefaultEncryption,
    /// S3.5, S3_BUCKET_SSL_REQUESTS_ONLY: a deny-non-TLS statement in the bucket policy.
    DenyInsecureTransport,
}

impl Fix {
    /// The fix a finding's kind asks for (`None`: not one of ours).
    pub fn of(kind: &FindingKind) -> Option<Fix> {
        match kind {
            FindingKind::Control(c) if c == "S3.4" => Some(Fix::DefaultEncryption),
            FindingKind::Control(c) if c == "S3.5" => Some(Fix::DenyInsecureTransport),
            FindingKind::ConfigRule(r) if r == "S3_BUCKET_SERVER_SIDE_ENCRYPTION_ENABLED" => {
                Some(Fix::DefaultEncryption)
            }
            FindingKind::ConfigRule(r) if r == "S3_BUCKET_SSL_REQUESTS_ONLY" => {
                Some(Fix::DenyInsecureTransport)
            }
            _ => None,
        }
    }
}

/// One rule of a bucket's default encryption, as S3 names its parts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EncryptionRule {
    /// `AES256` (SSE-S3), `aws:kms`, `aws:kms:dsse`; `None`: a rule with no default.
    #[serde(
        rename = "SSEAlgorithm",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub sse_algorithm: Option<String>,
    #[serde(
        rename = "KMSMasterKeyID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub kms_master_key_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket_key_enabled: Option<bool>,
    /// Encryption types S3 refuses for new objects (`SSE-C`), kept so a restore is exact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked_encryption_types: Option<Vec<String>>,
}

impl EncryptionRule {
    /// SSE-S3, or SSE-KMS with `kms_key` (and an S3 Bucket Key, which cuts KMS requests).
    pub fn default_for(kms_key: Option<&str>) -> EncryptionRule {
        match kms_key {
            None => EncryptionRule {
                sse_algorithm: Some("AES256".into()),
                kms_master_key_id: None,
                bucket_key_enabled: None,
                blocked_encryption_types: None,
            },
            Some(key) => EncryptionRule {
                sse_algorithm: Some("aws:kms".into()),
                kms_master_key_id: Some(key.into()),
                bucket_key_enabled: Some(true),
                blocked_encryption_types: None,
            },
        }
    }
}

/// The bucket's default encryption.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Encryption {
    /// No configuration (S3 answers `ServerSideEncryptionConfigurationNotFoundError`).
    None,
    Rules {
        rules: Vec<EncryptionRule>,
    },
}

impl Encryption {
    /// Some rule encrypts new objects by default: what S3.4 checks.
    pub fn on(&self) -> bool {
        match self {
            Encryption::None => false,
            Encryption::Rules { rules } => rules.iter().any(|r| r.sse_algorithm.is_some()),
        }
    }
}

/// A bucket policy document: the text S3 returned (restored byte for byte) and its meaning.
/// Two documents are equal when they mean the same JSON, whatever their layout.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Document {
    pub text: String,
    /// The parsed document (`None`: the text is not JSON, which S3 itself never keeps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json: Option<Value>,
}

impl Document {
    pub fn from_text(text: impl Into<String>) -> Document {
        let text = text.into();
        let json = serde_json::from_str(&text).ok();
        Document { text, json }
    }

    pub fn from_json(json: Value) -> Document {
        Document {
            text: json.to_string(),
            json: Some(json),
        }
    }
}

impl PartialEq for Document {
    fn eq(&self, other: &Self) -> bool {
        match (&self.json, &other.json) {
            (Some(a), Some(b)) => a == b,
            _ => self.text == other.text,
        }
    }
}

/// The bucket's policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum BucketPolicy {
    /// No policy (S3 answers `NoSuchBucketPolicy`).
    None,
    Document {
        document: Document,
    },
}

/// The parts of the bucket the finding's control is about (the other is not read: a TLS fix
/// is not held back by someone changing encryption, nor the reverse).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct BucketState {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<Encryption>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<BucketPolicy>,
}

/// One change to the bucket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum BucketStep {
    /// Set the default encryption (the fix; or the previous rules, to undo).
    PutEncryption { rules: Vec<EncryptionRule> },
    /// Remove the default encryption (to undo a fix where there was none).
    DeleteEncryption,
    /// Set the bucket policy (the merged document; or the previous one, to undo).
    PutPolicy { document: Document },
    /// Remove the bucket policy (to undo a fix where there was none).
    DeletePolicy,
}

impl BucketStep {
    fn is_encryption(&self) -> bool {
        matches!(
            self,
            BucketStep::PutEncryption { .. } | BucketStep::DeleteEncryption
        )
    }
}

/// The steps that make the bucket do what `fix` asks; none when it does already.
pub fn plan(
    fix: Fix,
    state: &BucketState,
    bucket_arn: &str,
    kms_key: Option<&str>,
) -> Plan<BucketStep> {
    match fix {
        Fix::DefaultEncryption => match &state.encryption {
            Some(e) if e.on() => Plan::of(vec![]),
            _ => Plan::of(vec![BucketStep::PutEncryption {
                rules: vec![EncryptionRule::default_for(kms_key)],
            }]),
        },
        Fix::DenyInsecureTransport => {
            let current = match &state.policy {
                Some(BucketPolicy::Document { document }) => match &document.json {
                    Some(json) => Some(json),
                    None => {
                        return Plan {
                            steps: vec![],
                            untouched: vec![
                                "the bucket policy is not JSON: left as it is, no statement merged"
                                    .into(),
                            ],
                        }
                    }
                },
                _ => None,
            };
            if current.is_some_and(|doc| tls::denies_insecure_transport(doc, bucket_arn)) {
                return Plan::of(vec![]);
            }
            match tls::merge(current, bucket_arn) {
                Ok(merged) => Plan::of(vec![BucketStep::PutPolicy {
                    document: Document::from_json(merged),
                }]),
                Err(why) => Plan {
                    steps: vec![],
                    untouched: vec![format!("{why}: left as it is, no statement merged")],
                },
            }
        }
    }
}

/// The steps that put back what the applied steps changed, from the pre-state.
pub fn undo(pre: &BucketState, applied: &[BucketStep]) -> Vec<BucketStep> {
    let mut steps = Vec::new();
    if applied.iter().any(BucketStep::is_encryption) {
        match &pre.encryption {
            Some(Encryption::Rules { rules }) => steps.push(BucketStep::PutEncryption {
                rules: rules.clone(),
            }),
            Some(Encryption::None) => steps.push(BucketStep::DeleteEncryption),
            None => {}
        }
    }
    if applied.iter().any(|s| !s.is_encryption()) {
        match &pre.policy {
            Some(BucketPolicy::Document { document }) => steps.push(BucketStep::PutPolicy {
                document: document.clone(),
            }),
            Some(BucketPolicy::None) => steps.push(BucketStep::DeletePolicy),
            None => {}
        }
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const B: &str = "arn:aws:s3:::logs";

    fn enc(e: Encryption) -> BucketState {
        BucketState {
            encryption: Some(e),
            policy: None,
        }
    }

    fn pol(p: BucketPolicy) -> BucketState {
        BucketState {
            encryption: None,
            policy: Some(p),
        }
    }

    fn doc(v: Value) -> BucketPolicy {
        BucketPolicy::Document {
            document: Document::from_json(v),
        }
    }

    #[test]
    fn fixes_by_finding_kind() {
        let cases = [
            (
                FindingKind::Control("S3.4".into()),
                Some(Fix::DefaultEncryption),
            ),
            (
                FindingKind::Control("S3.5".into()),
                Some(Fix::DenyInsecureTransport),
            ),
            (
                FindingKind::ConfigRule("S3_BUCKET_SERVER_SIDE_ENCRYPTION_ENABLED".into()),
                Some(Fix::DefaultEncryption),
            ),
            (
                FindingKind::ConfigRule("S3_BUCKET_SSL_REQUESTS_ONLY".into()),
                Some(Fix::DenyInsecureTransport),
            ),
            (FindingKind::Control("S3.8".into()), None),
            // A rule's deployed name is not its identity.
            (
                FindingKind::ConfigRule("s3-bucket-ssl-requests-only".into()),
                None,
            ),
        ];
        for (kind, want) in cases {
            assert_eq!(Fix::of(&kind), want, "{kind:?}");
        }
    }

    #[test]
    fn encryption_plans() {
        let sse_s3 = vec![EncryptionRule::default_for(None)];
        let kms = "arn:aws:kms:us-east-1:123456789012:key/k";
        let cases: Vec<(BucketState, Option<&str>, Vec<BucketStep>)> = vec![
            (
                enc(Encryption::None),
                None,
                vec![BucketStep::PutEncryption {
                    rules: sse_s3.clone(),
                }],
            ),
            (
                enc(Encryption::None),
                Some(kms),
                vec![BucketStep::PutEncryption {
                    rules: vec![EncryptionRule {
                        sse_algorithm: Some("aws:kms".into()),
                        kms_master_key_id: Some(kms.into()),
                        bucket_key_enabled: Some(true),
                        blocked_encryption_types: None,
                    }],
                }],
            ),
            // Encrypted already, with whatever algorithm or key: S3.4 passes, nothing to do.
            (
                enc(Encryption::Rules {
                    rules: sse_s3.clone(),
                }),
                Some(kms),
                vec![],
            ),
            (
                enc(Encryption::Rules {
                    rules: vec![EncryptionRule::default_for(Some("other"))],
                }),
                None,
                vec![],
            ),
            // A rule with only a bucket key setting encrypts nothing by default.
            (
                enc(Encryption::Rules {
                    rules: vec![EncryptionRule {
                        sse_algorithm: None,
                        kms_master_key_id: None,
                        bucket_key_enabled: Some(true),
                        blocked_encryption_types: None,
                    }],
                }),
                None,
                vec![BucketStep::PutEncryption {
                    rules: sse_s3.clone(),
                }],
            ),
        ];
        for (state, key, want) in cases {
            let p = plan(Fix::DefaultEncryption, &state, B, key);
            assert_eq!(p.steps, want, "{state:?}");
        }
    }

    #[test]
    fn tls_plans() {
        let ours = tls::statement(tls::SID, B);
        let fresh = tls::merge(None, B).unwrap();
        let allow = json!({"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": format!("{B}/*")});
        let one = json!({"Version": "2012-10-17", "Statement": [allow]});
        let put = |v: Value| {
            vec![BucketStep::PutPolicy {
                document: Document::from_json(v),
            }]
        };
        let cases: Vec<(BucketState, Vec<BucketStep>)> = vec![
            (pol(BucketPolicy::None), put(fresh.clone())),
            (
                pol(doc(one.clone())),
                put(tls::merge(Some(&one), B).unwrap()),
            ),
            (pol(doc(json!({"Statement": [allow, ours]}))), vec![]),
            (pol(doc(fresh.clone())), vec![]),
        ];
        for (state, want) in cases {
            let p = plan(Fix::DenyInsecureTransport, &state, B, None);
            assert_eq!(p.steps, want, "{state:?}");
            assert!(p.untouched.is_empty());
        }
        // A TLS finding never plans encryption, whatever the encryption is.
        let p = plan(
            Fix::DenyInsecureTransport,
            &BucketState {
                encryption: Some(Encryption::None),
                policy: Some(BucketPolicy::None),
            },
            B,
            None,
        );
        assert!(p.steps.iter().all(|s| !s.is_encryption()));
        // A document that is not JSON is left alone, saying so.
        let p = plan(
            Fix::DenyInsecureTransport,
            &pol(BucketPolicy::Document {
                document: Document::from_text("not json"),
            }),
            B,
            None,
        );
        assert!(p.steps.is_empty() && p.untouched.len() == 1);
    }

    #[test]
    fn documents_compare_by_meaning() {
        let a = Document::from_text(r#"{"Version":"2012-10-17","Statement":[]}"#);
        let b = Document::from_text("{ \"Statement\" : [ ],\n \"Version\": \"2012-10-17\" }");
        assert_eq!(a, b);
        assert_ne!(
            a,
            Document::from_text(r#"{"Version":"2008-10-17","Statement":[]}"#)
        );
        assert_eq!(Document::from_text("x"), Document::from_text("x"));
        assert_ne!(Document::from_text("x"), Document::from_text("y"));
    }

    #[test]
    fn undo_restores_only_what_changed() {
        let text = "{ \"Statement\": [] }";
        let pre = BucketState {
            encryption: Some(Encryption::None),
            policy: Some(BucketPolicy::Document {
                document: Document::from_text(text),
            }),
        };
        let put_enc = BucketStep::PutEncryption {
            rules: vec![EncryptionRule::default_for(None)],
        };
        let put_pol = BucketStep::PutPolicy {
            document: Document::from_json(json!({})),
        };
        assert_eq!(
            undo(&pre, std::slice::from_ref(&put_enc)),
            vec![BucketStep::DeleteEncryption]
        );
        let back = undo(&pre, std::slice::from_ref(&put_pol));
        // The exact text, byte for byte.
        assert!(matches!(&back[..], [BucketStep::PutPolicy { document }] if document.text == text));
        let none = BucketState {
            encryption: None,
            policy: Some(BucketPolicy::None),
        };
        assert_eq!(undo(&none, &[put_pol]), vec![BucketStep::DeletePolicy]);
        let rules = vec![EncryptionRule::default_for(Some("k"))];
        let was = enc(Encryption::Rules {
            rules: rules.clone(),
        });
        assert_eq!(
            undo(&was, &[put_enc]),
            vec![BucketStep::PutEncryption { rules }]
        );
        assert!(undo(&was, &[]).is_empty());
    }

    #[test]
    fn state_reads_in_the_record() {
        let s = BucketState {
            encryption: Some(Encryption::Rules {
                rules: vec![EncryptionRule::default_for(Some("k"))],
            }),
            policy: Some(BucketPolicy::None),
        };
        let v = json!(s);
        assert_eq!(
            v,
            json!({
                "encryption": {"kind": "rules", "rules": [{"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": "k", "BucketKeyEnabled": true}]},
                "policy": {"kind": "none"}
            })
        );
        assert_eq!(serde_json::from_value::<BucketState>(v).unwrap(), s);
        assert_eq!(json!(BucketState::default()), json!({}));
    }
}
