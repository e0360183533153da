//! The policy's `remediations.ec2-patch-instance.parameters`: both optional, so a policy with
//! no section patches CRITICAL findings and lets the baseline reboot when it must.

use reflex_shared::finding::SeverityLabel;
use serde::{Deserialize, Serialize};

/// `AWS-RunPatchBaseline`'s `RebootOption`, by its SSM name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Reboot {
    /// Reboot when the installed patches need it (the document's own default).
    #[default]
    RebootIfNeeded,
    /// Never reboot: patches that need one stay pending until someone reboots.
    NoReboot,
}

impl Reboot {
    pub fn as_str(self) -> &'static str {
        match self {
            Reboot::RebootIfNeeded => "RebootIfNeeded",
            Reboot::NoReboot => "NoReboot",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Findings below this label are skipped (`below-threshold`). Default CRITICAL: a patch run
    /// can reboot a production instance, so only the worst findings start one unasked.
    #[serde(default = "critical")]
    pub min_severity: SeverityLabel,
    #[serde(default)]
    pub reboot: Reboot,
}

fn critical() -> SeverityLabel {
    SeverityLabel::Critical
}

impl Default for Params {
    fn default() -> Self {
        Params {
            min_severity: critical(),
            reboot: Reboot::default(),
        }
    }
}

/// The spec's words for the parameters section.
pub const DESCRIBED: &str = "min_severity: the lowest Inspector severity label to patch for \
    (INFORMATIONAL, LOW, MEDIUM, HIGH, CRITICAL; default CRITICAL); reboot: RebootIfNeeded \
    (default) or NoReboot, passed to AWS-RunPatchBaseline as RebootOption";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_parse_strictly_with_defaults() {
        let cases: &[(&str, Option<Params>)] = &[
            ("{}", Some(Params::default())),
            (
                r#"{"min_severity": "HIGH"}"#,
                Some(Params {
                    min_severity: SeverityLabel::High,
                    reboot: Reboot::RebootIfNeeded,
                }),
            ),
            (
                r#"{"reboot": "NoReboot"}"#,
                Some(Params {
                    min_severity: SeverityLabel::Critical,
                    reboot: Reboot::NoReboot,
                }),
            ),
            // an unknown key, an unknown label, an unknown reboot option: refused
            (r#"{"min_severity": "HIGH", "reboot_window": 3}"#, None),
            (r#"{"min_severity": "SEVERE"}"#, None),
            (r#"{"reboot": "RebootAlways"}"#, None),
            (r#"{"reboot": "noreboot"}"#, None),
        ];
        for (text, want) in cases {
            let got = serde_json::from_str::<Params>(text).ok();
            assert_eq!(&got, want, "{text}");
        }
        assert_eq!(
            Params::default(),
            Params {
                min_severity: SeverityLabel::Critical,
                reboot: Reboot::RebootIfNeeded
            }
        );
    }
}
