//! Reflex's session-revocation policy: one inline policy, under a fixed name, denying every
//! action to credentials issued before a moment, as the IAM console's "Revoke active sessions"
//! does for a role (`AWSRevokeOlderSessions`). Pure.
//!
//! `aws:TokenIssueTime` is present only on temporary credentials (console sessions, STS
//! sessions, role sessions): the policy ends every session issued before the moment and
//! leaves later ones alone. A user's long-term access keys carry no issue time, so the
//! condition never matches them: a leaked key is iam-disable-access-key's.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};

/// The inline policy's name, on a user or a role.
pub const POLICY_NAME: &str = "ReflexRevokeOlderSessions";
const SID: &str = "ReflexRevokeOlderSessions";

/// The moment written into the policy for an action taken at `now`: the next whole second, so
/// a session issued in the very second of acting (before the change) is revoked too. A
/// session its owner starts right after acting may be refused for under a second.
pub fn cutoff_for(now: DateTime<Utc>) -> DateTime<Utc> {
    let whole = DateTime::from_timestamp(now.timestamp(), 0).unwrap_or(now);
    if whole == now {
        whole
    } else {
        whole + chrono::Duration::seconds(1)
    }
}

/// A time as the policy writes it (`2026-12-02T16:00:01Z`).
pub fn text(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The policy denying every action to credentials issued before `cutoff`.
pub fn document(cutoff: DateTime<Utc>) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": SID,
            "Effect": "Deny",
            "Action": "*",
            "Resource": "*",
            "Condition": {"DateLessThan": {"aws:TokenIssueTime": text(cutoff)}}
        }]
    })
}

/// The cutoff of a document that is exactly Reflex's revocation (one statement, denying
/// everything before a readable time); `None` for anything else under the name, which then
/// counts as no revocation at all.
pub fn cutoff(document: &Value) -> Option<DateTime<Utc>> {
    let time = document
        .pointer("/Statement/0/Condition/DateLessThan/aws:TokenIssueTime")?
        .as_str()?;
    let cutoff = DateTime::parse_from_rfc3339(time).ok()?.with_timezone(&Utc);
    (document == &document_with(time)).then_some(cutoff)
}

/// Our document with the time exactly as written (a document written with another format of
/// the same time is still ours).
fn document_with(time: &str) -> Value {
    let mut d = document(Utc::now());
    d["Statement"][0]["Condition"]["DateLessThan"]["aws:TokenIssueTime"] = json!(time);
    d
}

/// A policy document as IAM returns it: URL-encoded JSON (RFC 3986), which the SDK hands over
/// as it came.
pub fn decode(text: &str) -> Result<Value, String> {
    let decoded = percent_decode(text)?;
    serde_json::from_str(&decoded).map_err(|e| format!("the policy document is not JSON: {e}"))
}

fn percent_decode(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| format!("a bad escape at byte {i} of the policy document"))?;
                out.push(hex);
                i += 3;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| "the policy document is not UTF-8".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn cutoffs_round_up_to_the_second() {
        let cases = [
            ("2026-12-02T16:00:00Z", "2026-12-02T16:00:00Z"),
            ("2026-12-02T16:00:00.001Z", "2026-12-02T16:00:01Z"),
            ("2026-12-02T16:00:59.999Z", "2026-12-02T16:01:00Z"),
        ];
        for (now, want) in cases {
            assert_eq!(text(cutoff_for(at(now))), want, "{now}");
        }
    }

    #[test]
    fn only_our_exact_document_has_a_cutoff() {
        let t = at("2026-12-02T16:00:01Z");
        assert_eq!(cutoff(&document(t)), Some(t));
        let mut millis = document(t);
        millis["Statement"][0]["Condition"]["DateLessThan"]["aws:TokenIssueTime"] =
            json!("2026-12-02T16:00:01.000Z");
        assert_eq!(
            cutoff(&millis),
            Some(t),
            "another spelling of the same time"
        );
        let mut allow = document(t);
        allow["Statement"][0]["Effect"] = json!("Allow");
        let mut narrower = document(t);
        narrower["Statement"][0]["Action"] = json!("s3:*");
        let mut more = document(t);
        more["Statement"]
            .as_array_mut()
            .unwrap()
            .push(json!({"Effect": "Allow", "Action": "*", "Resource": "*"}));
        let mut unreadable = document(t);
        unreadable["Statement"][0]["Condition"]["DateLessThan"]["aws:TokenIssueTime"] =
            json!("yesterday");
        for other in [allow, narrower, more, unreadable, json!({}), json!("x")] {
            assert_eq!(cutoff(&other), None, "{other}");
        }
    }

    #[test]
    fn documents_decode_as_iam_returns_them() {
        let t = at("2026-12-02T16:00:01Z");
        let plain = document(t).to_string();
        let encoded: String = plain
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    (b as char).to_string()
                }
                other => format!("%{other:02X}"),
            })
            .collect();
        assert_eq!(decode(&encoded).unwrap(), document(t));
        assert_eq!(decode(&plain).unwrap(), document(t), "unencoded JSON too");
        assert!(decode("%7").is_err());
        assert!(decode("%7Bnot json").is_err());
    }
}
