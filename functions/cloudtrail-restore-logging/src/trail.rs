//! The trail's state, what a finding asks of it, the plan and the undo. Pure.

use reflex_shared::finding::FindingKind;
use reflex_shared::remediation::Plan;
use serde::{Deserialize, Serialize};

/// What the finding asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Ask {
    /// Logging stopped (GuardDuty's CloudTrailLoggingDisabled, CLOUD_TRAIL_ENABLED,
    /// MULTI_REGION_CLOUD_TRAIL_ENABLED): logging on, and log-file validation on.
    Logging,
    /// CloudTrail.4: log-file validation on, and nothing else.
    Validation,
}

impl Ask {
    pub fn of(kind: &FindingKind) -> Option<Ask> {
        match kind {
            FindingKind::GuarddutyType(t) if t == "Stealth:IAMUser/CloudTrailLoggingDisabled" => {
                Some(Ask::Logging)
            }
            FindingKind::ConfigRule(r)
                if r == "CLOUD_TRAIL_ENABLED" || r == "MULTI_REGION_CLOUD_TRAIL_ENABLED" =>
            {
                Some(Ask::Logging)
            }
            FindingKind::Control(c) if c == "CloudTrail.4" => Some(Ask::Validation),
            _ => None,
        }
    }
}

/// The trail as it stands, read in its home region.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrailState {
    pub logging: bool,
    pub log_file_validation: bool,
}

/// One change to the trail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TrailStep {
    StartLogging,
    /// Undo only: logging that Reflex started.
    StopLogging,
    /// `UpdateTrail` with `EnableLogFileValidation` as given (off: undo only).
    SetValidation(bool),
}

pub fn plan(ask: Ask, s: &TrailState) -> Plan<TrailStep> {
    let mut steps = Vec::new();
    if ask == Ask::Logging && !s.logging {
        steps.push(TrailStep::StartLogging);
    }
    if !s.log_file_validation {
        steps.push(TrailStep::SetValidation(true));
    }
    Plan::of(steps)
}

/// Off again only what Reflex turned on: the applied steps, reversed.
pub fn undo(applied: &[TrailStep]) -> Vec<TrailStep> {
    applied
        .iter()
        .rev()
        .filter_map(|s| match s {
            TrailStep::StartLogging => Some(TrailStep::StopLogging),
            TrailStep::SetValidation(true) => Some(TrailStep::SetValidation(false)),
            TrailStep::StopLogging | TrailStep::SetValidation(false) => None,
        })
        .collect()
}

/// A trail in the account, as listed for a Config rule that evaluates the account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub arn: String,
    pub multi_region: bool,
    pub logging: bool,
}

/// The one stopped trail an account-level rule's finding comes down to, or why there is none:
/// `Err((none_stopped, why))`. MULTI_REGION_CLOUD_TRAIL_ENABLED looks only at multi-region
/// trails. More than one stopped: none is picked (a person chooses which should log).
pub fn stopped_trail(
    trails: &[Listed],
    multi_region_only: bool,
) -> Result<&Listed, (bool, String)> {
    let candidates: Vec<&Listed> = trails
        .iter()
        .filter(|t| t.multi_region || !multi_region_only)
        .collect();
    let what = if multi_region_only {
        "multi-region trail"
    } else {
        "trail"
    };
    if candidates.is_empty() {
        return Err((
            true,
            format!("the account has no {what} to start: creating one is a person's decision"),
        ));
    }
    let stopped: Vec<&Listed> = candidates.into_iter().filter(|t| !t.logging).collect();
    match stopped.as_slice() {
        [one] => Ok(one),
        [] => Err((
            false,
            format!(
                "every {what} of the account is logging: the rule fails for something else than a stopped trail"
            ),
        )),
        many => Err((
            false,
            format!(
                "{} {what}s are stopped ({}): Reflex starts one named trail per finding, and which of these should log is a person's choice",
                many.len(),
                many.iter().map(|t| t.arn.as_str()).collect::<Vec<_>>().join(", ")
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(logging: bool, log_file_validation: bool) -> TrailState {
        TrailState {
            logging,
            log_file_validation,
        }
    }

    #[test]
    fn plans() {
        use TrailStep::*;
        let cases = [
            (
                Ask::Logging,
                st(false, false),
                vec![StartLogging, SetValidation(true)],
            ),
            (Ask::Logging, st(false, true), vec![StartLogging]),
            (Ask::Logging, st(true, false), vec![SetValidation(true)]),
            (Ask::Logging, st(true, true), vec![]),
            // CloudTrail.4 asks for validation only: a stopped trail stays stopped.
            (Ask::Validation, st(false, false), vec![SetValidation(true)]),
            (Ask::Validation, st(false, true), vec![]),
        ];
        for (ask, s, want) in cases {
            assert_eq!(plan(ask, &s).steps, want, "{ask:?} {s:?}");
        }
    }

    #[test]
    fn undo_turns_off_only_what_was_turned_on() {
        use TrailStep::*;
        assert_eq!(
            undo(&[StartLogging, SetValidation(true)]),
            vec![SetValidation(false), StopLogging]
        );
        assert_eq!(undo(&[SetValidation(true)]), vec![SetValidation(false)]);
        assert!(undo(&[]).is_empty());
    }

    #[test]
    fn asks_by_kind() {
        let cases = [
            (
                FindingKind::GuarddutyType("Stealth:IAMUser/CloudTrailLoggingDisabled".into()),
                Some(Ask::Logging),
            ),
            (
                FindingKind::GuarddutyType("Stealth:IAMUser/PasswordPolicyChange".into()),
                None,
            ),
            (
                FindingKind::ConfigRule("CLOUD_TRAIL_ENABLED".into()),
                Some(Ask::Logging),
            ),
            (
                FindingKind::ConfigRule("MULTI_REGION_CLOUD_TRAIL_ENABLED".into()),
                Some(Ask::Logging),
            ),
            (
                FindingKind::Control("CloudTrail.4".into()),
                Some(Ask::Validation),
            ),
            (FindingKind::Control("CloudTrail.1".into()), None),
        ];
        for (kind, want) in cases {
            assert_eq!(Ask::of(&kind), want, "{kind:?}");
        }
    }

    #[test]
    fn the_stopped_trail_of_an_account() {
        let t = |arn: &str, multi_region, logging| Listed {
            arn: arn.into(),
            multi_region,
            logging,
        };
        let one = [t("a", true, true), t("b", false, false)];
        assert_eq!(stopped_trail(&one, false).unwrap().arn, "b");
        // Only multi-region trails count for MULTI_REGION_CLOUD_TRAIL_ENABLED.
        let (none, why) = stopped_trail(&one, true).unwrap_err();
        assert!(!none && why.contains("logging"), "{why}");
        let two = [t("a", true, false), t("b", false, false)];
        let (none, why) = stopped_trail(&two, false).unwrap_err();
        assert!(
            !none && why.contains("a, b") && why.contains("2 trails"),
            "{why}"
        );
        assert_eq!(stopped_trail(&two, true).unwrap().arn, "a");
        let (none, why) = stopped_trail(&[], false).unwrap_err();
        assert!(none && why.contains("no trail"), "{why}");
    }
}
