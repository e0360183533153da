//! `remediations.network-block-ip.parameters`: every key optional, each checked when the policy
//! is read (an invalid value is `policy-invalid`, naming it), never when a finding arrives.

use crate::address::Cidr;
use serde::Deserialize;

/// The words the README and error messages use for this section.
pub const PARAMETERS: &str = "rule_range: [first, last] — the inbound rule numbers Reflex may use \
(1–32766; default: the 20 numbers right below the network ACL's lowest rule that is not Reflex's, \
80–99 in a default ACL); ttl_hours — how long a block stands before the sweep removes it \
(default 24, more than 0, at most 8760); allowlist — CIDRs never blocked (default none)";

/// The default time a block stands.
pub const DEFAULT_TTL_HOURS: f64 = 24.0;
/// A block stands at most a year: longer is a permanent rule, which is a person's decision.
pub const MAX_TTL_HOURS: f64 = 8760.0;
/// The highest rule number a NACL entry may have (32767 is the default `*` rule).
pub const MAX_RULE: i32 = 32766;

/// Inbound rule numbers `first..=last`, reserved for Reflex's blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleRange {
    pub first: i32,
    pub last: i32,
}

impl RuleRange {
    pub fn numbers(self) -> impl Iterator<Item = i32> {
        self.first..=self.last
    }

    pub fn contains(self, n: i32) -> bool {
        (self.first..=self.last).contains(&n)
    }
}

impl std::fmt::Display for RuleRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}–{}", self.first, self.last)
    }
}

/// The parameters, checked.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "Raw")]
pub struct Params {
    /// `None`: the default range, found from the ACL itself.
    pub rule_range: Option<RuleRange>,
    pub ttl_seconds: i64,
    pub allowlist: Vec<Cidr>,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            rule_range: None,
            ttl_seconds: ttl_seconds(DEFAULT_TTL_HOURS),
            allowlist: Vec::new(),
        }
    }
}

/// As written in the policy.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    #[serde(default)]
    rule_range: Option<[i64; 2]>,
    #[serde(default)]
    ttl_hours: Option<f64>,
    #[serde(default)]
    allowlist: Vec<Cidr>,
}

fn ttl_seconds(hours: f64) -> i64 {
    // At least one second: a block that expires as it is made would never be seen standing.
    ((hours * 3600.0).round() as i64).max(1)
}

impl TryFrom<Raw> for Params {
    type Error = String;

    fn try_from(raw: Raw) -> Result<Params, String> {
        let rule_range = match raw.rule_range {
            None => None,
            Some([first, last]) => {
                let ok = |n: i64| (1..=i64::from(MAX_RULE)).contains(&n);
                if !ok(first) || !ok(last) || first > last {
                    return Err(format!(
                        "rule_range [{first}, {last}] must be two rule numbers from 1 to {MAX_RULE}, the first not above the last"
                    ));
                }
                // In range by the check above.
                Some(RuleRange {
                    first: first as i32,
                    last: last as i32,
                })
            }
        };
        let hours = raw.ttl_hours.unwrap_or(DEFAULT_TTL_HOURS);
        if !(hours.is_finite() && hours > 0.0 && hours <= MAX_TTL_HOURS) {
            return Err(format!(
                "ttl_hours {hours} must be more than 0 and at most {MAX_TTL_HOURS}"
            ));
        }
        Ok(Params {
            rule_range,
            ttl_seconds: ttl_seconds(hours),
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
        // (input, Ok((range, ttl seconds, allowlist length)) or Err(a word of the error))
        type Want = Result<(Option<(i32, i32)>, i64, usize), &'static str>;
        let cases: &[(serde_json::Value, Want)] = &[
            (json!({}), Ok((None, 86_400, 0))),
            (
                json!({"rule_range": [80, 99]}),
                Ok((Some((80, 99)), 86_400, 0)),
            ),
            (json!({"rule_range": [5, 5]}), Ok((Some((5, 5)), 86_400, 0))),
            (json!({"ttl_hours": 1}), Ok((None, 3_600, 0))),
            (json!({"ttl_hours": 0.5}), Ok((None, 1_800, 0))),
            (json!({"ttl_hours": 0.00001}), Ok((None, 1, 0))),
            (
                json!({"allowlist": ["8.8.8.8", "2600::/16"]}),
                Ok((None, 86_400, 2)),
            ),
            (json!({"rule_range": [99, 80]}), Err("rule_range")),
            (json!({"rule_range": [0, 10]}), Err("rule_range")),
            (json!({"rule_range": [1, 32767]}), Err("rule_range")),
            (json!({"rule_range": [1]}), Err("")),
            (json!({"rule_range": "80-99"}), Err("")),
            (json!({"ttl_hours": 0}), Err("ttl_hours")),
            (json!({"ttl_hours": -1}), Err("ttl_hours")),
            (json!({"ttl_hours": 10000}), Err("ttl_hours")),
            (json!({"allowlist": ["not-a-cidr"]}), Err("not-a-cidr")),
            (json!({"ttl": 1}), Err("unknown field `ttl`")),
        ];
        for (input, want) in cases {
            let got = serde_json::from_value::<Params>(input.clone());
            match (want, got) {
                (Ok((range, ttl, n)), Ok(p)) => {
                    assert_eq!(p.rule_range.map(|r| (r.first, r.last)), *range, "{input}");
                    assert_eq!(p.ttl_seconds, *ttl, "{input}");
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
