//! `reflex policy validate`: every error in a policy document, each with its line. Pure.

use super::locate::line_of;
use reflex_shared::policy::{Policy, PolicyError};
use std::fmt;

/// One error in a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based; none when the error names no place in the document (a key left out).
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "line {line}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// Why a remediation's `parameters` cannot be read by its own type: (remediation, message).
pub type ParametersCheck<'a> = &'a dyn Fn(&Policy) -> Vec<(String, String)>;

/// The document as the functions would read it, or every error in it. A YAML or type error
/// (an unknown key, a wrong type, a mode that does not exist) stops the parser, so it comes
/// alone, at its line; a document that parses gets every check, every remediation it names is
/// checked against the functions this `reflex` knows, and each one's `parameters` by its own
/// type (`parameters`), as its cold start would.
pub fn check(
    text: &str,
    known_functions: &[&str],
    parameters: ParametersCheck<'_>,
) -> Result<Policy, Vec<Problem>> {
    let policy: Policy = match serde_norway::from_str(text) {
        Ok(p) => p,
        Err(e) => {
            return Err(vec![Problem {
                line: e.location().map(|l| l.line()),
                message: PolicyError::Syntax(e.to_string()).to_string(),
            }])
        }
    };
    let mut problems: Vec<Problem> = policy
        .problems()
        .into_iter()
        .map(|e| Problem {
            line: match &e {
                PolicyError::Invalid { key, .. } => line_of(text, key),
                _ => None,
            },
            message: e.to_string(),
        })
        .collect();
    for name in policy.remediations.keys() {
        let key = format!("remediations.{name}");
        // The catalog's unknown names are reported above; a catalog name no function is built
        // for would be read by nothing.
        if reflex_shared::catalog::REMEDIATIONS.contains(&name.as_str())
            && !known_functions.contains(&name.as_str())
        {
            problems.push(Problem {
                line: line_of(text, &key),
                message: format!(
                    "policy key `{key}`: no Reflex function is built for it (functions: {})",
                    known_functions.join(", ")
                ),
            });
        }
    }
    for (name, message) in parameters(&policy) {
        let key = format!("remediations.{name}.parameters");
        problems.push(Problem {
            line: line_of(text, &key),
            message,
        });
    }
    problems.sort_by_key(|p| p.line.unwrap_or(usize::MAX));
    if problems.is_empty() {
        Ok(policy)
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KNOWN: &[&str] = &["s3-block-public-access", "network-block-ip"];

    /// An expected error: its line, and a part of its message.
    type Want = (Option<usize>, &'static str);

    /// network-block-ip's parameters take `ttl_hours` only, in this stand-in.
    fn parameters(policy: &Policy) -> Vec<(String, String)> {
        match policy.parameters("network-block-ip") {
            Some(serde_json::Value::Object(m)) if m.keys().any(|k| k != "ttl_hours") => vec![(
                "network-block-ip".into(),
                "policy key `remediations.network-block-ip.parameters`: unknown field".into(),
            )],
            _ => Vec::new(),
        }
    }

    fn lines_of(text: &str) -> Vec<(Option<usize>, String)> {
        match check(text, KNOWN, &parameters) {
            Ok(_) => Vec::new(),
            Err(problems) => problems.into_iter().map(|p| (p.line, p.message)).collect(),
        }
    }

    #[test]
    fn every_error_with_its_line() {
        // (document, expected (line, a part of the message) for each error, in order)
        let cases: &[(&str, &[Want])] = &[
            ("version: 1\nkill_switch: true\n", &[]),
            (
                "version: 1\nremediations:\n  s3-block-public-access: {mode: dry-run}\n",
                &[],
            ),
            // Three errors: each named, each at its line.
            (
                "version: 2\ndefaults:\n  severity_threshold: 101\nremediations:\n  s3-block-pubic-access:\n    mode: enforce\n  network-block-ip:\n    max_attempts: 11\n",
                &[
                    (Some(1), "`version`: only version 1 exists"),
                    (Some(3), "`defaults.severity_threshold`"),
                    (Some(5), "`remediations.s3-block-pubic-access`: unknown remediation"),
                    (Some(8), "`remediations.network-block-ip.max_attempts`"),
                ],
            ),
            // A catalog remediation with no function built here.
            (
                "version: 1\nremediations:\n  ec2-patch-instance: {mode: enforce}\n",
                &[(Some(3), "no Reflex function is built for it")],
            ),
            // Parser errors come alone, at the parser's line.
            (
                "version: 1\nremediations:\n  s3-block-public-access:\n    mode: yolo\n",
                &[(Some(4), "unknown variant `yolo`")],
            ),
            (
                "version: 1\nkill_switch: yes please\n",
                &[(Some(2), "kill_switch")],
            ),
            ("version: 1\ndefaults: a: b\n", &[(Some(2), "not valid YAML")]),
            // A remediation's own parameters, checked by its type, at their line.
            (
                "version: 1\nremediations:\n  network-block-ip:\n    parameters:\n      ttl_hour: 3\n",
                &[(Some(4), "`remediations.network-block-ip.parameters`: unknown field")],
            ),
            (
                "version: 1\nremediations:\n  network-block-ip:\n    parameters: {ttl_hours: 3}\n",
                &[],
            ),
            ("defaults: {}\n", &[(Some(1), "missing field `version`")]),
            // An exemption without its reason, owner or end: each named, at the exemption's
            // line (a key that is not there has the line of the entry that lacks it).
            (
                "version: 1\nexemptions:\n  rules:\n    - match: {arns: ['arn:aws:s3:::a']}\n      reason: a website\n      owner: web-team\n      expires: 2030-01-01\n    - match: {accounts: ['123456789012']}\n      expires: 2030-13-01\n",
                &[
                    (Some(8), "`exemptions.rules[1].reason`: missing"),
                    (Some(8), "`exemptions.rules[1].owner`: missing"),
                    (Some(9), "`exemptions.rules[1].expires`: \"2030-13-01\" is not a date"),
                ],
            ),
        ];
        for (doc, want) in cases {
            let got = lines_of(doc);
            assert_eq!(got.len(), want.len(), "{doc}: {got:?}");
            for ((line, message), (want_line, part)) in got.iter().zip(want.iter()) {
                assert_eq!(line, want_line, "{doc}: {message}");
                assert!(message.contains(part), "{doc}: {message} lacks {part}");
            }
        }
    }
}
