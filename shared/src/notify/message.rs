//! What a person reads: a subject that says it at a glance, and a body that says what, where
//! and why, names the record, and gives the exact command to run next. Pure.

use super::NotifyOn;
use crate::ledger::table::DEFAULT_TABLE;
use crate::ledger::{self, OutcomeRecord};

/// SNS wants a subject of less than 100 characters (ASCII, one line).
pub const SUBJECT_MAX: usize = 99;
/// A planned step's parameters are shown up to this many bytes (the record has them whole).
const STEP_SHOWN_MAX: usize = 300;
/// Steps listed in a message (the record lists every one).
const STEPS_SHOWN: usize = 10;

/// One notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub subject: String,
    pub body: String,
}

/// How the `reflex` CLI reaches the deployment whose table is `table`: the default stack's
/// table needs no option; `<stack>-outcomes` is that stack's (`--stack` also finds its
/// policy); any other table is named as it is.
pub fn cli_prefix(table: &str) -> String {
    if table == DEFAULT_TABLE {
        return "reflex".into();
    }
    match table.strip_suffix("-outcomes") {
        Some(stack) if !stack.is_empty() => format!("reflex --stack {stack}"),
        _ => format!("reflex --table {table}"),
    }
}

/// The subject's words for an outcome.
fn headline(on: NotifyOn) -> &'static str {
    match on {
        NotifyOn::PendingApproval => "approval needed",
        NotifyOn::Failed => "fix failed",
        NotifyOn::VerificationFailed => "fix not verified",
        NotifyOn::RateLimited => "fix held back by the budget",
        NotifyOn::TimedOut => "operation timed out",
        NotifyOn::Succeeded => "fixed",
        NotifyOn::DryRun => "would fix (dry-run)",
        NotifyOn::Skipped => "skipped",
        NotifyOn::Rejected => "event rejected",
        NotifyOn::RolledBack => "rolled back",
    }
}

/// The resource's short name: the part of its ARN after the last `:` or `/`, else the
/// finding's resource id.
fn short_name(record: &OutcomeRecord) -> Option<String> {
    if let Some(arn) = record.resource_arn.as_deref() {
        let tail = arn.rsplit([':', '/']).next().unwrap_or(arn);
        if !tail.is_empty() {
            return Some(tail.to_string());
        }
    }
    record
        .resource
        .as_ref()
        .map(|r| r.id.clone())
        .filter(|id| !id.is_empty())
}

/// One line of printable ASCII, at most `max` characters (SNS's rules for a subject).
fn subject_line(text: &str, max: usize) -> String {
    let clean: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect();
    if clean.chars().count() <= max {
        return clean;
    }
    let mut cut: String = clean.chars().take(max.saturating_sub(3)).collect();
    cut.push_str("...");
    cut
}

/// The commands that fit this outcome, each with what it does.
fn next_steps(record: &OutcomeRecord, on: NotifyOn, cli: &str) -> Vec<String> {
    let id = &record.record_id;
    let reversible = record.reversible == Some(true);
    let mut steps = Vec::new();
    match on {
        NotifyOn::PendingApproval => {
            steps.push(format!("approve:   {cli} approve {id}"));
            steps.push(
                "           (or press \"Reflex: approve\" on the finding in Security Hub)".into(),
            );
        }
        NotifyOn::Succeeded | NotifyOn::Failed if reversible && record.changed_anything() => {
            steps.push(format!("roll back: {cli} rollback {id}"));
        }
        _ => {}
    }
    if matches!(
        on,
        NotifyOn::Failed
            | NotifyOn::VerificationFailed
            | NotifyOn::RateLimited
            | NotifyOn::TimedOut
            | NotifyOn::DryRun
    ) {
        let when = match on {
            NotifyOn::RateLimited => "once the budget allows (it counts changes per clock hour)",
            NotifyOn::DryRun => "under enforce, once the policy allows it",
            _ => "once the cause is fixed",
        };
        steps.push(format!("retry:     {cli} retry {id}   ({when})"));
    }
    steps.push(format!("show:      {cli} show {id}"));
    steps
}

/// `text` on one line: control characters (line breaks, tabs, escapes) shown as `\u{..}`.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// The notification for `record`, told as `on`, from the deployment whose table is `table`.
pub fn render(record: &OutcomeRecord, on: NotifyOn, table: &str) -> Message {
    let cli = cli_prefix(table);
    let name = short_name(record).unwrap_or_else(|| "no resource".into());
    let subject = subject_line(
        &format!("Reflex: {}: {} on {name}", headline(on), record.remediation),
        SUBJECT_MAX,
    );

    let mut body = format!(
        "Reflex {}: {} ({} / {}).\n\n",
        record.remediation,
        headline(on),
        record.status,
        record.reason
    );
    // Every field is one line: a finding's title, a tag value or a detail that quotes one
    // is written by whoever controls the resource, and must not add lines (a forged "Next:").
    let mut field = |label: &str, text: &str| {
        body.push_str(&format!("{label:<8}{}\n", one_line(text)));
    };
    match &record.finding {
        Some(f) => {
            let title = if f.title.is_empty() {
                String::new()
            } else {
                format!(" \"{}\"", ledger::truncated(&f.title, 200))
            };
            field(
                "What:",
                &format!(
                    "{}{title}, severity {:?} ({}), from {}",
                    f.kind.name(),
                    f.severity.label,
                    f.severity.normalized,
                    f.source.as_str()
                ),
            );
            field("", &format!("finding {}", f.id));
            let resource = record.resource_arn.as_deref().unwrap_or(&name);
            field(
                "Where:",
                &format!("{resource} in account {}, {}", f.account, f.region),
            );
        }
        None => {
            field("What:", "an event that yielded no finding");
            if let Some(arn) = &record.resource_arn {
                field("Where:", arn);
            }
        }
    }
    field("Why:", &record.detail);
    let planned: Vec<String> = record
        .actions
        .iter()
        .map(|a| {
            format!(
                "{} {} [{}]",
                a.api,
                ledger::truncated(&a.parameters.to_string(), STEP_SHOWN_MAX),
                a.result.as_str()
            )
        })
        .collect();
    let label = if matches!(on, NotifyOn::PendingApproval | NotifyOn::DryRun) {
        "Plan:"
    } else {
        "Steps:"
    };
    for (i, step) in planned.iter().take(STEPS_SHOWN).enumerate() {
        field(if i == 0 { label } else { "" }, step);
    }
    if planned.len() > STEPS_SHOWN {
        field(
            "",
            &format!("… and {} more in the record", planned.len() - STEPS_SHOWN),
        );
    }
    field(
        "Record:",
        &format!(
            "{} (table {table}, attempt {})",
            record.record_id, record.attempts
        ),
    );
    body.push_str("\nNext:\n");
    for step in next_steps(record, on, &cli) {
        body.push_str("  ");
        body.push_str(&step);
        body.push('\n');
    }
    Message { subject, body }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::parse_event;
    use crate::ledger::{Action, ActionResult, RecordMeta};
    use crate::status::{Reason, Status};

    fn record(status: Status, reason: Reason, detail: &str) -> OutcomeRecord {
        let event: serde_json::Value = serde_json::from_str(include_str!(
            "../../../events/s3-block-public-access/securityhub-s3.8-imported.json"
        ))
        .unwrap();
        let finding = parse_event(&event).unwrap().remove(0);
        let meta = RecordMeta {
            function_version: "7".into(),
            request_id: "req".into(),
            event_digest: "d".into(),
            claim_token: "t".into(),
        };
        let mut r = OutcomeRecord::new(
            "s3-block-public-access#7a1a63".into(),
            "s3-block-public-access",
            &meta,
            "2026-12-03T08:00:00.000Z",
        );
        r.resource_arn = finding.resources.iter().find_map(|r| r.arn.clone());
        r.finding = Some(finding);
        r.reversible = Some(true);
        r.set_outcome(status, reason, detail);
        r
    }

    fn step(result: ActionResult) -> Action {
        Action {
            result,
            ..Action::planned(
                "s3:PutPublicAccessBlock",
                serde_json::json!({"Bucket": "b", "BlockPublicAcls": true}),
            )
        }
    }

    #[test]
    fn the_cli_reaches_the_deployment_by_its_table() {
        let cases = [
            ("reflex-outcomes", "reflex"),
            ("reflex-staging-outcomes", "reflex --stack reflex-staging"),
            ("my-table", "reflex --table my-table"),
            ("-outcomes", "reflex --table -outcomes"),
        ];
        for (table, want) in cases {
            assert_eq!(cli_prefix(table), want, "{table}");
        }
    }

    #[test]
    fn each_outcome_names_what_where_why_the_record_and_the_command() {
        // (outcome, status, reason, detail, steps, commands the body must give, ones it must not)
        type Case = (
            NotifyOn,
            Status,
            Reason,
            &'static str,
            Vec<Action>,
            Vec<&'static str>,
            Vec<&'static str>,
        );
        let cases: Vec<Case> = vec![
            (
                NotifyOn::PendingApproval,
                Status::PendingApproval,
                Reason::AwaitingApproval,
                "approve mode by remediations.s3-block-public-access",
                vec![step(ActionResult::Planned)],
                vec![
                    "reflex approve s3-block-public-access#7a1a63",
                    "Reflex: approve",
                    "Plan:",
                ],
                vec!["rollback", "retry"],
            ),
            (
                NotifyOn::Failed,
                Status::Failed,
                Reason::ActionError,
                "AccessDenied: not allowed",
                vec![step(ActionResult::Failed("AccessDenied".into()))],
                vec![
                    "reflex retry s3-block-public-access#7a1a63",
                    "Steps:",
                    "AccessDenied",
                ],
                vec!["approve", "rollback"],
            ),
            (
                // A fix that failed part-way can be rolled back.
                NotifyOn::Failed,
                Status::Failed,
                Reason::ActionError,
                "the second step failed",
                vec![
                    step(ActionResult::Ok),
                    step(ActionResult::Failed("boom".into())),
                ],
                vec![
                    "reflex rollback s3-block-public-access#7a1a63",
                    "reflex retry",
                ],
                vec!["approve"],
            ),
            (
                NotifyOn::VerificationFailed,
                Status::VerificationFailed,
                Reason::StillNonCompliant,
                "fresh reads show the resource still non-compliant",
                vec![step(ActionResult::Ok)],
                vec!["reflex retry", "reflex show s3-block-public-access#7a1a63"],
                vec!["approve", "rollback"],
            ),
            (
                NotifyOn::RateLimited,
                Status::Skipped,
                Reason::RateLimited,
                "the budget of 20 changes per hour is spent",
                vec![],
                vec!["reflex retry", "once the budget allows"],
                vec!["approve", "rollback", "Steps:"],
            ),
            (
                NotifyOn::TimedOut,
                Status::Failed,
                Reason::TimedOut,
                "cmd-1 was still running at its deadline",
                vec![],
                vec!["reflex retry", "reflex show"],
                vec!["approve"],
            ),
            (
                NotifyOn::Succeeded,
                Status::Succeeded,
                Reason::Remediated,
                "enforced; verified by a fresh read",
                vec![step(ActionResult::Ok)],
                vec!["reflex rollback s3-block-public-access#7a1a63"],
                vec!["approve", "retry"],
            ),
        ];
        for (on, status, reason, detail, actions, must, must_not) in cases {
            let mut r = record(status, reason, detail);
            r.actions = actions;
            let m = render(&r, on, "reflex-outcomes");
            let b = &m.body;
            assert!(m.subject.starts_with("Reflex: "), "{on}: {}", m.subject);
            assert!(
                m.subject.contains("s3-block-public-access"),
                "{on}: {}",
                m.subject
            );
            assert!(m.subject.len() <= SUBJECT_MAX, "{on}");
            assert!(!m.subject.contains('\n'), "{on}");
            let status_reason = format!("{status} / {reason}");
            for part in [
                "What:",
                "S3.8",
                "Where:",
                "123456789012",
                "Why:",
                detail,
                "Record:",
                "s3-block-public-access#7a1a63",
                "table reflex-outcomes",
                status_reason.as_str(),
            ] {
                assert!(b.contains(part), "{on}: {part:?} missing from\n{b}");
            }
            for part in must {
                assert!(b.contains(part), "{on}: {part:?} missing from\n{b}");
            }
            for part in must_not {
                assert!(!b.contains(part), "{on}: {part:?} unexpected in\n{b}");
            }
        }
    }

    /// A tag value or title quoted in the record cannot add lines to the body: a forged
    /// "Next:" with another record's command stays inside its own line.
    #[test]
    fn record_text_cannot_forge_lines_in_the_body() {
        let forged = "exempt by the exemption tag (until 2027-01-01): \"x\n\nNext:\n  approve: reflex approve iam-contain-principal#0\"";
        let r = record(Status::PendingApproval, Reason::AwaitingApproval, forged);
        let m = render(&r, NotifyOn::PendingApproval, "reflex-outcomes");
        assert_eq!(m.body.matches("\nNext:\n").count(), 1, "{}", m.body);
        assert!(
            !m.body
                .contains("\n  approve: reflex approve iam-contain-principal#0"),
            "{}",
            m.body
        );
        assert!(m.body.contains("x\\u{a}\\u{a}Next:"), "{}", m.body);
    }

    #[test]
    fn subjects_say_it_at_a_glance_within_snss_rules() {
        let r = record(Status::PendingApproval, Reason::AwaitingApproval, "d");
        let m = render(&r, NotifyOn::PendingApproval, "reflex-outcomes");
        let bucket = r
            .resource_arn
            .as_deref()
            .unwrap()
            .rsplit(':')
            .next()
            .unwrap();
        assert_eq!(
            m.subject,
            format!("Reflex: approval needed: s3-block-public-access on {bucket}")
        );
        // Another stack's commands name it.
        let m = render(&r, NotifyOn::PendingApproval, "reflex-staging-outcomes");
        assert!(m
            .body
            .contains("reflex --stack reflex-staging approve s3-block-public-access#7a1a63"));
        // Long and non-ASCII names are cut and replaced, never refused by SNS.
        let mut long = r.clone();
        long.resource_arn = Some(format!("arn:aws:s3:::{}\u{e9}\nx", "b".repeat(200)));
        let m = render(&long, NotifyOn::Failed, "reflex-outcomes");
        assert_eq!(m.subject.chars().count(), SUBJECT_MAX, "{}", m.subject);
        assert!(m.subject.ends_with("..."));
        assert!(m.subject.chars().all(|c| c.is_ascii_graphic() || c == ' '));
        let short = subject_line("caf\u{e9}\tbar", SUBJECT_MAX);
        assert_eq!(short, "caf??bar");
        // No resource: said so.
        let mut none = r.clone();
        none.resource_arn = None;
        none.resource = None;
        assert!(render(&none, NotifyOn::Failed, "t")
            .subject
            .ends_with("on no resource"));
    }

    #[test]
    fn a_record_without_a_finding_still_names_itself() {
        let mut r = record(
            Status::Failed,
            Reason::PolicyInvalid,
            "policy key `x`: unknown",
        );
        r.finding = None;
        let m = render(&r, NotifyOn::Failed, "reflex-outcomes");
        assert!(
            m.body.contains("an event that yielded no finding"),
            "{}",
            m.body
        );
        assert!(m.body.contains("policy key `x`: unknown"));
        assert!(m.body.contains("reflex show s3-block-public-access#7a1a63"));
    }
}
