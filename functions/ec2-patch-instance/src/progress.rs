//! How a patch run stands, pure: SSM's invocation status mapped to running, succeeded or failed
//! with a short summary of its output; and which completion events are about a patch run.

use crate::model::DOCUMENT;
use serde_json::Value;

/// The SSM event that says a command's status changed.
pub const COMPLETION_SOURCE: &str = "aws.ssm";
pub const COMPLETION_DETAIL_TYPE: &str = "EC2 Command Status-change Notification";

/// The longest summary kept in the record (the output itself stays in SSM, up to 24,000
/// characters, and in the command's S3 or CloudWatch output if configured).
pub const SUMMARY_MAX: usize = 1000;

/// How a run stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    Running,
    Succeeded(String),
    Failed(String),
}

/// `ssm:GetCommandInvocation`'s answer, as far as it matters here.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Invocation {
    pub status: String,
    pub status_details: String,
    pub stdout: String,
    pub stderr: String,
}

/// The end of `text` (a patch run's output ends with its summary), at most `max` characters,
/// marked `…` where cut.
pub fn tail(text: &str, max: usize) -> String {
    let text = text.trim();
    let count = text.chars().count();
    if count <= max {
        return text.to_string();
    }
    let skip = count - (max - 1);
    let start = text
        .char_indices()
        .nth(skip)
        .map(|(i, _)| i)
        .unwrap_or(text.len());
    format!("…{}", &text[start..])
}

/// Where the run stands. Unknown statuses count as running: the record's deadline ends a run
/// that never reports an end (`failed / timed-out`), and no new status is taken for success.
pub fn standing(inv: &Invocation) -> Standing {
    let details = if inv.status_details.is_empty() || inv.status_details == inv.status {
        String::new()
    } else {
        format!(" ({})", inv.status_details)
    };
    match inv.status.as_str() {
        "Success" => Standing::Succeeded(format!(
            "Success{details}: {}",
            tail(&inv.stdout, SUMMARY_MAX)
        )),
        "Failed" | "Cancelled" | "TimedOut" => {
            let output = if inv.stderr.trim().is_empty() {
                &inv.stdout
            } else {
                &inv.stderr
            };
            Standing::Failed(format!(
                "{}{details}: {}",
                inv.status,
                tail(output, SUMMARY_MAX)
            ))
        }
        // Pending, InProgress, Delayed, Cancelling (on its way to Cancelled), anything new
        _ => Standing::Running,
    }
}

/// Right after `SendCommand`, `GetCommandInvocation` can answer `InvocationDoesNotExist` for a
/// short while: the invocation is not created yet. That is a run just started, not an error.
pub fn not_yet_created(error_code: Option<&str>) -> bool {
    error_code == Some("InvocationDoesNotExist")
}

/// The command id a completion event names, if it is SSM's status change of a patch run.
/// Only the id is taken: how the run went is read from SSM, never from the event.
pub fn completion_handle(event: &Value) -> Option<String> {
    if event.get("source").and_then(Value::as_str) != Some(COMPLETION_SOURCE)
        || event.get("detail-type").and_then(Value::as_str) != Some(COMPLETION_DETAIL_TYPE)
    {
        return None;
    }
    let detail = event.get("detail")?;
    if let Some(document) = detail.get("document-name").and_then(Value::as_str) {
        if document != DOCUMENT {
            return None;
        }
    }
    detail
        .get("command-id")
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty() && id.len() <= 36)
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn inv(status: &str, details: &str, stdout: &str, stderr: &str) -> Invocation {
        Invocation {
            status: status.into(),
            status_details: details.into(),
            stdout: stdout.into(),
            stderr: stderr.into(),
        }
    }

    #[test]
    fn statuses() {
        let cases = [
            (
                inv("Success", "Success", "Installed: 3\n", ""),
                Standing::Succeeded("Success: Installed: 3".into()),
            ),
            (
                inv("Failed", "Failed", "partial", "yum: lock held"),
                Standing::Failed("Failed: yum: lock held".into()),
            ),
            // no stderr: the output says what happened
            (
                inv("Failed", "Undeliverable", "", "  "),
                Standing::Failed("Failed (Undeliverable): ".into()),
            ),
            (
                inv("TimedOut", "ExecutionTimedOut", "still running yum", ""),
                Standing::Failed("TimedOut (ExecutionTimedOut): still running yum".into()),
            ),
            (
                inv("Cancelled", "Cancelled", "", ""),
                Standing::Failed("Cancelled: ".into()),
            ),
            (inv("Pending", "Pending", "", ""), Standing::Running),
            (
                inv("InProgress", "InProgress", "half", ""),
                Standing::Running,
            ),
            (inv("Delayed", "Delayed", "", ""), Standing::Running),
            (inv("Cancelling", "Cancelling", "", ""), Standing::Running),
            (inv("SomethingNew", "", "", ""), Standing::Running),
        ];
        for (i, want) in cases {
            assert_eq!(standing(&i), want, "{i:?}");
        }
    }

    #[test]
    fn a_long_output_keeps_its_end() {
        let out = format!("{}\nInstalled: 12, Failed: 0", "x".repeat(5000));
        match standing(&inv("Success", "Success", &out, "")) {
            Standing::Succeeded(s) => {
                assert!(s.ends_with("Installed: 12, Failed: 0"), "{s}");
                assert!(s.contains('…'));
                assert!(s.chars().count() <= SUMMARY_MAX + "Success: ".len());
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn tails() {
        let cases = [
            ("abc", 5, "abc"),
            ("abcdef", 5, "…cdef"),
            ("  abc \n", 3, "abc"),
            ("ééééé", 3, "…éé"),
            ("", 3, ""),
        ];
        for (text, max, want) in cases {
            assert_eq!(tail(text, max), want, "{text:?}");
        }
    }

    #[test]
    fn invocation_not_created_yet_is_running() {
        assert!(not_yet_created(Some("InvocationDoesNotExist")));
        assert!(!not_yet_created(Some("InvalidCommandId")));
        assert!(!not_yet_created(None));
    }

    #[test]
    fn completion_handles() {
        let event = |source: &str, kind: &str, detail: Value| json!({"source": source, "detail-type": kind, "detail": detail});
        let id = "e8d3c0e4-71f7-4491-898f-c9b35bee5f3b";
        let patch = json!({"command-id": id, "document-name": DOCUMENT, "status": "Success"});
        let cases = [
            (
                event(COMPLETION_SOURCE, COMPLETION_DETAIL_TYPE, patch.clone()),
                Some(id),
            ),
            // no document name: the id is still the one to look up
            (
                event(
                    COMPLETION_SOURCE,
                    COMPLETION_DETAIL_TYPE,
                    json!({"command-id": id}),
                ),
                Some(id),
            ),
            (
                event(
                    COMPLETION_SOURCE,
                    COMPLETION_DETAIL_TYPE,
                    json!({"command-id": id, "document-name": "AWS-RunShellScript"}),
                ),
                None,
            ),
            (
                event(
                    COMPLETION_SOURCE,
                    "EC2 Command Invocation Status-change Notification",
                    patch.clone(),
                ),
                None,
            ),
            (
                event("aws.securityhub", COMPLETION_DETAIL_TYPE, patch),
                None,
            ),
            (
                event(
                    COMPLETION_SOURCE,
                    COMPLETION_DETAIL_TYPE,
                    json!({"command-id": ""}),
                ),
                None,
            ),
            (
                event(
                    COMPLETION_SOURCE,
                    COMPLETION_DETAIL_TYPE,
                    json!({"command-id": 7}),
                ),
                None,
            ),
            (
                event(
                    COMPLETION_SOURCE,
                    COMPLETION_DETAIL_TYPE,
                    json!({"command-id": "x".repeat(37)}),
                ),
                None,
            ),
            (json!({"source": COMPLETION_SOURCE}), None),
        ];
        for (e, want) in cases {
            assert_eq!(completion_handle(&e).as_deref(), want, "{e}");
        }
    }
}
