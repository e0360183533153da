//! `remediations.network-block-domain.parameters`: every key optional, each checked when the
//! policy is read (an invalid value is `policy-invalid`, naming it), never when a finding
//! arrives.

use crate::domain::Domain;
use serde::Deserialize;

/// The words the README and error messages use for this section.
pub const PARAMETERS: &str = "ttl_hours — how long a domain stays blocked before the sweep \
removes it (default 24, more than 0, at most 8760); priority — the priority of the association \
of Reflex's rule group with a VPC (100–9900, lowest first; default 101); allowlist — domains \
never blocked, each covering itself and every name below it (default none)";

/// The default time a block stands.
pub const DEFAULT_TTL_HOURS: f64 = 24.0;
/// A block stands at most a year: longer is a permanent block, which is a person's decision.
pub const MAX_TTL_HOURS: f64 = 8760.0;
/// AWS's range for an association's priority (DNS Firewall evaluates the lowest first).
pub const PRIORITIES: std::ops::RangeInclusive<i32> = 100..=9900;
/// The default: as early as AWS lets a rule group run, one above the lowest value, as AWS
/// advises ("leave space between the numbers"), so a team can still put a group before it.
pub const DEFAULT_PRIORITY: i32 = 101;

/// The parameters, checked.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "Raw")]
pub struct Params {
    pub ttl_seconds: i64,
    pub priority: i32,
    pub allowlist: Vec<Domain>,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            ttl_seconds: ttl_seconds(DEFAULT_TTL_HOURS),
            priority: DEFAULT_PRIORITY,
            allowlist: Vec::new(),
        }
    }
}

/// As written in the policy.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    #[serde(default)]
    ttl_hours: Option<f64>,
    #[serde(default)]
    priority: Option<i64>,
    #[serde(default)]
    allowlist: Vec<Domain>,
}

fn ttl_seconds(hours: f64) -> i64 {
    // At least one second: a block that expires as it is made would never be seen standing.
    ((hours * 3600.0).round() as i64).max(1)
}

impl TryFrom<Raw> for Params {
    type Error = String;

    fn try_from(raw: Raw) -> Result<Params, String> {
        let hours = raw.ttl_hours.unwrap_or(DEFAULT_TTL_HOURS);
        if !(hours.is_finite() && hours > 0.0 && hours <= MAX_TTL_HOURS) {
            return Err(format!(
                "ttl_hours {hours} must be more than 0 and at most {MAX_TTL_HOURS}"
            ));
        }
        let priority = raw.priority.unwrap_or(i64::from(DEFAULT_PRIORITY));
        let priority = i32::try_from(priority)
            .ok()
            .filter(|p| PRIORITIES.contains(p))
            .ok_or_else(|| {
                format!(
                    "priority {priority} must be from {} to {}",
                    PRIORITIES.start(),
                    PRIORITIES.end()
                )
            })?;
        Ok(Params {
            ttl_seconds: ttl_seconds(hours),
            priority,
            allowlist: raw.allowlist,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parameters_table() {
        // (input, Ok((ttl seconds, priority, allowlist length)) or Err(a word of the error))
        type Want = Result<(i64, i32, usize), &'static str>;
        let cases: &[(serde_json::Value, Want)] = &[
            (json!({}), Ok((86_400, 101, 0))),
            (json!({"ttl_hours": 1}), Ok((3_600, 101, 0))),
            (json!({"ttl_hours": 0.5}), Ok((1_800, 101, 0))),
            (json!({"ttl_hours": 0.00001}), Ok((1, 101, 0))),
            (json!({"priority": 100}), Ok((86_400, 100, 0))),
            (json!({"priority": 9900}), Ok((86_400, 9900, 0))),
            (
                json!({"allowlist": ["corp.example", "Partner.Example."]}),
                Ok((86_400, 101, 2)),
            ),
            (json!({"ttl_hours": 0}), Err("ttl_hours")),
            (json!({"ttl_hours": -1}), Err("ttl_hours")),
            (json!({"ttl_hours": 10000}), Err("ttl_hours")),
            (json!({"priority": 99}), Err("priority")),
            (json!({"priority": 9901}), Err("priority")),
            (json!({"priority": 5000000000_i64}), Err("priority")),
            (json!({"priority": "high"}), Err("")),
            (
                json!({"allowlist": ["*.corp.example"]}),
                Err("not a domain"),
            ),
            (json!({"allowlist": "corp.example"}), Err("")),
            (json!({"ttl": 1}), Err("unknown field `ttl`")),
        ];
        for (input, want) in cases {
            let got = serde_json::from_value::<Params>(input.clone());
            match (want, got) {
                (Ok((ttl, priority, n)), Ok(p)) => {
                    assert_eq!(p.ttl_seconds, *ttl, "{input}");
                    assert_eq!(p.priority, *priority, "{input}");
                    assert_eq!(p.allowlist.len(), *n, "{input}");
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
