//! `remediations.s3-enforce-encryption.parameters`: checked when the policy is read (an invalid
//! value is `policy-invalid`, naming it), never when a finding arrives.

use serde::Deserialize;

/// The words the README and error messages use for this section.
pub const PARAMETERS: &str = "kms_key_id — the KMS key (key id, key ARN or alias ARN) for default \
encryption, SSE-KMS with an S3 Bucket Key (default: none, SSE-S3 with AES256). A bucket that \
already encrypts by default, with any algorithm or key, is left as it is";

/// The parameters, checked.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "Raw")]
pub struct Params {
    pub kms_key_id: Option<String>,
}

/// As written in the policy.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    #[serde(default)]
    kms_key_id: Option<String>,
}

impl TryFrom<Raw> for Params {
    type Error = String;

    fn try_from(raw: Raw) -> Result<Params, String> {
        if let Some(key) = &raw.kms_key_id {
            // KMS's own bounds for a key id (1–2048 characters); no spaces in any of its forms.
            if key.is_empty() || key.len() > 2048 || key.chars().any(char::is_whitespace) {
                return Err(format!(
                    "kms_key_id {key:?} must be a KMS key id, key ARN or alias ARN"
                ));
            }
        }
        Ok(Params {
            kms_key_id: raw.kms_key_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parameters_table() {
        let key = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
        let cases: &[(serde_json::Value, Result<Option<&str>, &str>)] = &[
            (json!({}), Ok(None)),
            (json!({"kms_key_id": key}), Ok(Some(key))),
            (
                json!({"kms_key_id": "alias/reflex"}),
                Ok(Some("alias/reflex")),
            ),
            (json!({"kms_key_id": ""}), Err("kms_key_id")),
            (json!({"kms_key_id": "a key"}), Err("kms_key_id")),
            (json!({"kms_key_id": 7}), Err("")),
            (json!({"kms_key": key}), Err("unknown field `kms_key`")),
        ];
        for (input, want) in cases {
            let got = serde_json::from_value::<Params>(input.clone());
            match (want, got) {
                (Ok(k), Ok(p)) => assert_eq!(p.kms_key_id.as_deref(), *k, "{input}"),
                (Err(word), Err(e)) => assert!(e.to_string().contains(word), "{input}: {e}"),
                (want, got) => panic!("{input}: want {want:?}, got {got:?}"),
            }
        }
    }
}
