//! `reflex show RECORD_ID`: one outcome record as a person reads it, section by section: the
//! finding, the decision, the plan, what changed, before and after, verification, approval,
//! rollback, budget, Security Hub, errors and history.

use crate::render::planned_step;
use reflex_shared::finding::FindingKind;
use reflex_shared::ledger::{Action, OutcomeRecord};
use serde_json::Value;
use std::fmt::Write;

/// Width of the field names in a section.
const KEY: usize = 14;

/// The record, readable.
pub fn record(r: &OutcomeRecord) -> String {
    let mut out = String::new();
    let line = |out: &mut String, key: &str, value: &str| {
        let _ = writeln!(out, "  {key:<KEY$}{value}");
    };
    let _ = writeln!(out, "record {}", r.record_id);
    line(
        &mut out,
        "function",
        &format!("{} (version {})", r.remediation, r.function_version),
    );
    line(&mut out, "created", &r.created_at);
    line(&mut out, "updated", &r.updated_at);
    line(
        &mut out,
        "attempts",
        &format!("{} (deliveries seen: {})", r.attempts, r.deliveries),
    );

    section(&mut out, "Finding");
    match &r.finding {
        None => line(&mut out, "finding", "none (the event yielded no finding)"),
        Some(f) => {
            line(&mut out, "type", &kind(&f.kind));
            line(&mut out, "title", &f.title);
            line(
                &mut out,
                "source",
                &format!("{} finding {}", f.source.as_str(), f.id),
            );
            line(&mut out, "generation", &f.generation);
            line(
                &mut out,
                "account",
                &format!("{} in {}", f.account, f.region),
            );
            line(
                &mut out,
                "severity",
                &format!(
                    "{} ({})",
                    format!("{:?}", f.severity.label).to_uppercase(),
                    f.severity.normalized
                ),
            );
            if let Some(why) = &f.inactive {
                line(&mut out, "inactive", why);
            }
            if let Some(by) = &f.requested_by {
                let at = f.requested_at.as_deref().unwrap_or("-");
                line(&mut out, "requested by", &format!("{by} at {at}"));
            }
        }
    }
    let resource = match (&r.resource_arn, &r.resource) {
        (Some(arn), Some(res)) => format!("{arn} ({})", res.kind.as_str()),
        (Some(arn), None) => arn.clone(),
        (None, Some(res)) => res.id.clone(),
        (None, None) => "-".into(),
    };
    line(&mut out, "resource", &resource);
    if let Some(identity) = &r.resource_identity {
        line(&mut out, "identity", identity);
    }

    section(&mut out, "Decision");
    line(
        &mut out,
        "mode",
        &r.mode.map(|m| m.to_string()).unwrap_or_else(|| "-".into()),
    );
    line(&mut out, "status", &format!("{} ({})", r.status, r.reason));
    line(&mut out, "why", &r.detail);

    let planned: Vec<&Action> = r.actions.iter().filter(|a| a.is_planned()).collect();
    let done: Vec<&Action> = r.actions.iter().filter(|a| !a.is_planned()).collect();
    section(&mut out, "Plan");
    if r.actions.is_empty() {
        line(&mut out, "steps", "none");
    }
    for a in &r.actions {
        let _ = writeln!(out, "  {}", planned_step(&a.api, &a.parameters));
    }
    section(&mut out, "What changed");
    if done.is_empty() {
        let why = if planned.is_empty() {
            "nothing"
        } else {
            "nothing: the plan above was not carried out"
        };
        line(&mut out, "changes", why);
    }
    for a in &done {
        let _ = writeln!(out, "  {}", action(a));
    }

    section(&mut out, "Before and after");
    state(&mut out, "before", r.pre_state.as_ref());
    state(&mut out, "after", r.post_state.as_ref());

    section(&mut out, "Verification");
    line(&mut out, "verified", &verification(r));
    if let Some(a) = &r.awaiting {
        line(
            &mut out,
            "awaiting",
            &format!("{} (deadline {})", a.handle, epoch(a.deadline)),
        );
    }

    section(&mut out, "Approval");
    match (&r.approved_by, &r.approved_at) {
        (Some(by), at) => line(
            &mut out,
            "approved by",
            &format!("{by} at {}", at.as_deref().unwrap_or("-")),
        ),
        (None, _) => line(&mut out, "approved by", "-"),
    }

    section(&mut out, "Rollback");
    match &r.rollback {
        None => line(
            &mut out,
            "rolled back",
            if r.reversible == Some(false) {
                "no (not reversible)"
            } else {
                "no"
            },
        ),
        Some(rb) => {
            line(
                &mut out,
                "rolled back",
                &format!("by {} at {}", rb.by, rb.at),
            );
            line(&mut out, "held until", &rb.suppressed_until);
            if let Some(l) = &rb.hold_lifted {
                line(&mut out, "hold lifted", &format!("by {} at {}", l.by, l.at));
            }
            for a in &rb.actions {
                let _ = writeln!(out, "  {}", action(a));
            }
        }
    }
    if let Some(p) = &r.rollback_pending {
        line(
            &mut out,
            "in progress",
            &format!(
                "by {} since {} (lease until {})",
                p.by,
                p.started_at,
                epoch(p.lease_expires_at)
            ),
        );
    }

    section(&mut out, "Budget");
    match &r.budget {
        None => line(&mut out, "unit", "none used"),
        Some(b) => line(
            &mut out,
            "unit",
            &format!(
                "change {} of at most {} in window {}{}",
                b.count,
                b.max,
                b.window,
                if b.given_back {
                    " (given back: no change was made)"
                } else {
                    ""
                }
            ),
        ),
    }

    section(&mut out, "Security Hub");
    match &r.securityhub {
        None => line(&mut out, "update", "none"),
        Some(f) => line(
            &mut out,
            "update",
            &format!(
                "{}{}: {}",
                f.result.as_str(),
                f.workflow_status
                    .as_deref()
                    .map(|w| format!(" (workflow {w})"))
                    .unwrap_or_default(),
                f.detail
            ),
        ),
    }

    section(&mut out, "Errors");
    if r.errors.is_empty() {
        line(&mut out, "errors", "none");
    }
    for e in &r.errors {
        let _ = writeln!(
            out,
            "  attempt {} at {} ({}): {}",
            e.attempt, e.step, e.at, e.message
        );
    }

    section(&mut out, "History");
    if r.history.is_empty() {
        line(&mut out, "earlier", "none");
    }
    for (i, p) in r.history.iter().enumerate() {
        let _ = writeln!(
            out,
            "  {}. attempt {} {} ({}) at {}, request {}",
            i + 1,
            p.attempt,
            p.status,
            p.reason,
            p.updated_at,
            p.request_id
        );
        let _ = writeln!(out, "     {}", p.detail);
        for a in &p.actions {
            let _ = writeln!(out, "     {}", action(a));
        }
    }
    if let Some(t) = &r.trimmed {
        section(&mut out, "Trimmed to fit one item");
        let _ = writeln!(out, "  {}", serde_json::to_string(t).unwrap_or_default());
    }
    out.trim_end().to_string()
}

/// Whether the fix was verified, and when, in words (`reflex show` and the HTML report).
pub fn verification(r: &OutcomeRecord) -> String {
    match (r.verified, &r.verified_at) {
        (Some(true), Some(at)) => format!("yes, by a fresh read at {at}"),
        (Some(true), None) => "yes".into(),
        (Some(false), at) => format!(
            "NO: the resource did not read as fixed{}",
            at.as_deref()
                .map(|a| format!(" (at {a})"))
                .unwrap_or_default()
        ),
        (None, _) => "not verified (nothing was changed)".into(),
    }
}

fn section(out: &mut String, title: &str) {
    let _ = writeln!(out, "\n{title}");
}

pub fn kind(k: &FindingKind) -> String {
    match k {
        FindingKind::GuarddutyType(t) => format!("GuardDuty {t}"),
        FindingKind::Control(c) => format!("Security Hub control {c}"),
        FindingKind::ConfigRule(r) => format!("Config rule {r}"),
        FindingKind::Vulnerability(v) => format!("vulnerability {v}"),
        FindingKind::Unrecognised(u) => format!("not handled: {u}"),
    }
}

/// A step as carried out: its result, API, parameters, when, and what it produced.
pub fn action(a: &Action) -> String {
    let mut text = format!(
        "{:<7} {}",
        a.result.as_str(),
        planned_step(&a.api, &a.parameters).trim_start_matches("plan: ")
    );
    if let Some(at) = &a.at {
        text.push_str(&format!(" at {at}"));
    }
    if let Some(n) = a.attempt {
        text.push_str(&format!(" (by attempt {n})"));
    }
    if let Some(o) = &a.output {
        text.push_str(&format!(" → {o}"));
    }
    text
}

fn state(out: &mut String, key: &str, v: Option<&Value>) {
    match v {
        None => {
            let _ = writeln!(out, "  {key:<KEY$}-");
        }
        Some(v) => {
            let pretty = serde_json::to_string_pretty(v).unwrap_or_default();
            let _ = writeln!(out, "  {key}:");
            for l in pretty.lines() {
                let _ = writeln!(out, "    {l}");
            }
        }
    }
}

fn epoch(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| t.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use reflex_shared::ledger::{
        AttemptError, BudgetUse, HoldLifted, PriorOutcome, RecordMeta, Rollback,
    };
    use reflex_shared::policy::Mode;
    use reflex_shared::status::{Reason, Status};
    use serde_json::json;

    fn base() -> OutcomeRecord {
        let event: Value = serde_json::from_str(include_str!(
            "../../events/s3-block-public-access/securityhub-s3.8-imported.json"
        ))
        .unwrap();
        let finding = reflex_shared::finding::parse_event(&event)
            .unwrap()
            .remove(0);
        let meta = RecordMeta {
            function_version: "7".into(),
            request_id: "req-1".into(),
            event_digest: "d".into(),
            claim_token: "c".into(),
        };
        let mut r = OutcomeRecord::new(
            "s3-block-public-access#abc".into(),
            "s3-block-public-access",
            &meta,
            "2026-12-01T10:00:00.000Z",
        );
        r.resource_arn = Some("arn:aws:s3:::reflex-demo-public".into());
        r.finding = Some(finding);
        r
    }

    fn put_pab(result: &str) -> Action {
        let mut a = Action::planned(
            "s3:PutPublicAccessBlock",
            json!({"Bucket": "reflex-demo-public", "BlockPublicAcls": true}),
        );
        if result != "planned" {
            a = a.carried_out(if result == "ok" {
                Ok(())
            } else {
                Err(result.into())
            });
        }
        a
    }

    #[test]
    fn each_kind_of_record_reads_as_it_should() {
        let mut dry = base();
        dry.mode = Some(Mode::DryRun);
        dry.set_outcome(
            Status::DryRun,
            Reason::WouldChange,
            "dry-run by the policy: the planned change was not made",
        );
        dry.actions = vec![put_pab("planned")];
        dry.pre_state = Some(json!({"public_access_block": null}));

        let mut fixed = base();
        fixed.mode = Some(Mode::Enforce);
        fixed.set_outcome(
            Status::Succeeded,
            Reason::Remediated,
            "enforced by the default for low risk; verified by a fresh read",
        );
        fixed.actions = vec![put_pab("ok")];
        fixed.pre_state = Some(json!({"public_access_block": null}));
        fixed.post_state = Some(json!({"public_access_block": {"block_public_acls": true}}));
        fixed.verified = Some(true);
        fixed.verified_at = Some("2026-12-01T10:00:02.000Z".into());
        fixed.budget = Some(BudgetUse {
            window: "2026-12-01T10".into(),
            count: 3,
            token: "t".into(),
            max: 20,
            given_back: false,
        });
        fixed.history = vec![PriorOutcome {
            status: Status::DryRun,
            reason: Reason::WouldChange,
            detail: "dry-run by the policy".into(),
            attempt: 1,
            request_id: "req-0".into(),
            updated_at: "2026-12-01T09:00:00.000Z".into(),
            actions: vec![put_pab("planned")],
            pre_state: None,
            post_state: None,
            resource_identity: None,
        }];
        fixed.approved_by = Some("arn:aws:iam::123456789012:user/approver".into());
        fixed.approved_at = Some("2026-12-01T10:00:01.000Z".into());

        let mut rolled = fixed.clone();
        rolled.set_outcome(Status::RolledBack, Reason::Undone, "rolled back by ops");
        rolled.rollback = Some(Rollback {
            by: "arn:aws:iam::123456789012:user/ops".into(),
            at: "2026-12-01T11:00:00.000Z".into(),
            actions: vec![Action::planned(
                "s3:DeletePublicAccessBlock",
                json!({"Bucket": "reflex-demo-public"}),
            )
            .carried_out(Ok(()))],
            suppressed_until: "2026-12-08T11:00:00.000Z".into(),
            hold_lifted: Some(HoldLifted {
                by: "arn:aws:iam::123456789012:user/lead".into(),
                at: "2026-12-02T08:00:00.000Z".into(),
            }),
        });

        let mut broken = base();
        broken.set_outcome(Status::Failed, Reason::ActionError, "AccessDenied");
        broken.actions = vec![put_pab("AccessDenied: no")];
        broken.errors = vec![AttemptError {
            attempt: 1,
            step: "act".into(),
            message: "throttled".into(),
            at: "2026-12-01T10:00:00.000Z".into(),
        }];

        let mut rejected = base();
        rejected.finding = None;
        rejected.resource_arn = None;
        rejected.set_outcome(
            Status::Rejected,
            Reason::MalformedEvent,
            "event is not valid JSON",
        );

        let cases: Vec<(&str, OutcomeRecord, Vec<&str>, Vec<&str>)> = vec![
            (
                "dry-run",
                dry,
                vec![
                    "type          Security Hub control S3.8",
                    "resource      arn:aws:s3:::reflex-demo-public",
                    "account       123456789012 in us-east-1",
                    "severity      HIGH (70)",
                    "mode          dry-run",
                    "status        dry-run (would-change)",
                    "plan: s3:PutPublicAccessBlock {",
                    "nothing: the plan above was not carried out",
                    "before:\n    {\n      \"public_access_block\": null\n    }",
                    "not verified",
                    "earlier       none",
                ],
                vec!["hold lifted"],
            ),
            (
                "succeeded",
                fixed,
                vec![
                    "status        succeeded (remediated)",
                    "ok      s3:PutPublicAccessBlock",
                    "after:",
                    "\"block_public_acls\": true",
                    "yes, by a fresh read at 2026-12-01T10:00:02.000Z",
                    "approved by   arn:aws:iam::123456789012:user/approver at 2026-12-01T10:00:01.000Z",
                    "change 3 of at most 20 in window 2026-12-01T10",
                    "1. attempt 1 dry-run (would-change) at 2026-12-01T09:00:00.000Z, request req-0",
                    "rolled back   no",
                ],
                vec!["nothing: the plan"],
            ),
            (
                "rolled back",
                rolled,
                vec![
                    "rolled back   by arn:aws:iam::123456789012:user/ops at 2026-12-01T11:00:00.000Z",
                    "held until    2026-12-08T11:00:00.000Z",
                    "hold lifted   by arn:aws:iam::123456789012:user/lead at 2026-12-02T08:00:00.000Z",
                    "ok      s3:DeletePublicAccessBlock",
                ],
                vec![],
            ),
            (
                "failed",
                broken,
                vec![
                    "status        failed (action-error)",
                    "AccessDenied: no s3:PutPublicAccessBlock",
                    "attempt 1 at act (2026-12-01T10:00:00.000Z): throttled",
                ],
                vec!["errors        none"],
            ),
            (
                "rejected",
                rejected,
                vec![
                    "finding       none (the event yielded no finding)",
                    "resource      -",
                    "steps         none",
                    "changes       nothing",
                ],
                vec!["severity"],
            ),
        ];
        for (name, r, present, absent) in cases {
            let text = record(&r);
            for p in present {
                assert!(text.contains(p), "{name}: missing {p:?} in\n{text}");
            }
            for a in absent {
                assert!(!text.contains(a), "{name}: unexpected {a:?} in\n{text}");
            }
            for s in [
                "Finding",
                "Decision",
                "Plan",
                "What changed",
                "Before and after",
                "Verification",
                "Approval",
                "Rollback",
                "Budget",
                "History",
            ] {
                assert!(text.contains(&format!("\n{s}\n")), "{name}: section {s}");
            }
        }
    }
}
