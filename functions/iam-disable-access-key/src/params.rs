//! `remediations.iam-disable-access-key.parameters`: every key optional, each checked when the
//! policy is read (an invalid value is `policy-invalid`, naming it), never when a finding
//! arrives.
//!
//! The thresholds are those of the hygiene controls, for findings that do not carry their own
//! (Security Hub sends `SecurityControlParameters` only for controls whose parameters a team
//! can customise; IAM.3 and IAM.8 have fixed ones, 90 days each).

use serde::Deserialize;

/// The words the README and error messages use for this section.
pub const PARAMETERS: &str = "max_access_key_age_days — IAM.3: an active key older than this \
many days is disabled (default 90, the control's maxAccessKeyAge; 1–3650); \
max_credential_usage_age_days — IAM.8: an active key unused (never used: since it was created) \
for more than this many days is disabled (default 90, the control's maxCredentialUsageAge; \
1–3650). A finding's own SecurityControlParameters, when it has them, come first.";

/// The default of both thresholds: AWS's for IAM.3 (`maxAccessKeyAge`) and IAM.8
/// (`maxCredentialUsageAge`). (IAM.22, the CIS control, uses 45 days for unused credentials.)
pub const DEFAULT_DAYS: u32 = 90;
/// Ten years: longer would never fire, which is a person's decision to switch the control off.
pub const MAX_DAYS: u32 = 3650;

/// The parameters, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "Raw")]
pub struct Params {
    pub max_access_key_age_days: u32,
    pub max_credential_usage_age_days: u32,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            max_access_key_age_days: DEFAULT_DAYS,
            max_credential_usage_age_days: DEFAULT_DAYS,
        }
    }
}

/// As written in the policy.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    #[serde(default)]
    max_access_key_age_days: Option<i64>,
    #[serde(default)]
    max_credential_usage_age_days: Option<i64>,
}

/// A number of days from 1 to [`MAX_DAYS`], or why not.
pub fn days(key: &str, value: i64) -> Result<u32, String> {
    if (1..=i64::from(MAX_DAYS)).contains(&value) {
        // In range by the check above.
        Ok(value as u32)
    } else {
        Err(format!(
            "{key} {value} must be a whole number of days from 1 to {MAX_DAYS}"
        ))
    }
}

impl TryFrom<Raw> for Params {
    type Error = String;

    fn try_from(raw: Raw) -> Result<Params, String> {
        let or_default = |key: &str, v: Option<i64>| v.map_or(Ok(DEFAULT_DAYS), |v| days(key, v));
        Ok(Params {
            max_access_key_age_days: or_default(
                "max_access_key_age_days",
                raw.max_access_key_age_days,
            )?,
            max_credential_usage_age_days: or_default(
                "max_credential_usage_age_days",
                raw.max_credential_usage_age_days,
            )?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parameters_table() {
        // (input, Ok((rotation days, unused days)) or Err(a word of the error))
        type Want = Result<(u32, u32), &'static str>;
        let cases: &[(serde_json::Value, Want)] = &[
            (json!({}), Ok((90, 90))),
            (json!({"max_access_key_age_days": 30}), Ok((30, 90))),
            (json!({"max_credential_usage_age_days": 45}), Ok((90, 45))),
            (json!({"max_access_key_age_days": 1}), Ok((1, 90))),
            (json!({"max_access_key_age_days": 3650}), Ok((3650, 90))),
            (
                json!({"max_access_key_age_days": 0}),
                Err("max_access_key_age_days"),
            ),
            (
                json!({"max_credential_usage_age_days": -5}),
                Err("max_credential_usage_age_days"),
            ),
            (json!({"max_access_key_age_days": 3651}), Err("3650")),
            (json!({"max_access_key_age_days": 1.5}), Err("")),
            (json!({"max_access_key_age_days": "90"}), Err("")),
            (json!({"max_age": 90}), Err("unknown field `max_age`")),
        ];
        for (input, want) in cases {
            let got = serde_json::from_value::<Params>(input.clone());
            match (want, got) {
                (Ok((rotation, unused)), Ok(p)) => {
                    assert_eq!(
                        (p.max_access_key_age_days, p.max_credential_usage_age_days),
                        (*rotation, *unused),
                        "{input}"
                    );
                }
                (Err(word), Err(e)) => assert!(e.to_string().contains(word), "{input}: {e}"),
                (want, got) => panic!("{input}: want {want:?}, got {got:?}"),
            }
        }
    }

    #[test]
    fn default_equals_empty_section() {
        assert_eq!(
            serde_json::from_value::<Params>(json!({})).unwrap(),
            Params::default()
        );
    }
}
