//! One record in the report, in full: the finding, the decision and its reason, the changes,
//! before and after, verification, approval and rollback. Every value from the record is
//! escaped: findings are attacker-influenced (a bucket name, a title).

use super::{escape, status_class};
use crate::render_record::{action, kind, verification};
use reflex_shared::ledger::OutcomeRecord;
use serde_json::Value;
use std::fmt::Write;

/// A term and its description, both escaped.
fn item(html: &mut String, term: &str, text: &str) {
    let _ = write!(
        html,
        "<dt>{}</dt><dd>{}</dd>",
        escape(term),
        escape(if text.is_empty() { "-" } else { text })
    );
}

fn state(v: Option<&Value>) -> String {
    match v {
        None => "-".into(),
        Some(v) => serde_json::to_string_pretty(v).unwrap_or_default(),
    }
}

/// The record's article; `anchor` is the id the overview table links to.
pub fn article(html: &mut String, anchor: &str, r: &OutcomeRecord) {
    let _ = write!(
        html,
        "<article class=\"record\" id=\"{}\">\n<h3><span class=\"{}\">{}</span> {} \
         <span class=\"muted\">{}</span></h3>\n<p class=\"muted\">record {} · created {} · \
         updated {} · attempts {} · deliveries {}</p>\n<div class=\"two\">",
        escape(anchor),
        status_class(r.status),
        escape(r.status.as_str()),
        escape(&r.remediation),
        escape(r.resource_arn.as_deref().unwrap_or("")),
        escape(&r.record_id),
        escape(&r.created_at),
        escape(&r.updated_at),
        r.attempts,
        r.deliveries,
    );

    html.push_str("<section><h4>Finding</h4><dl>");
    match &r.finding {
        None => item(html, "finding", "none: the event yielded no finding"),
        Some(f) => {
            item(html, "type", &kind(&f.kind));
            item(html, "title", &f.title);
            item(html, "source", &format!("{} {}", f.source.as_str(), f.id));
            item(
                html,
                "severity",
                &format!(
                    "{} ({})",
                    format!("{:?}", f.severity.label).to_uppercase(),
                    f.severity.normalized
                ),
            );
            item(html, "account", &format!("{} in {}", f.account, f.region));
            item(html, "observed", f.observed_at.as_deref().unwrap_or(""));
            if let Some(by) = &f.requested_by {
                item(html, "requested by", by);
            }
        }
    }
    if let Some(id) = &r.resource_identity {
        item(html, "identity", id);
    }
    html.push_str("</dl></section>\n<section><h4>Decision</h4><dl>");
    item(
        html,
        "mode",
        &r.mode.map(|m| m.to_string()).unwrap_or_default(),
    );
    item(
        html,
        "status",
        &format!("{} ({})", r.status.as_str(), r.reason.as_str()),
    );
    item(html, "why", &r.detail);
    item(html, "verified", &verification(r));
    let approved = match (&r.approved_by, &r.approved_at) {
        (Some(by), Some(at)) => format!("{by} at {at}"),
        (Some(by), None) => by.clone(),
        (None, _) => String::new(),
    };
    item(html, "approved by", &approved);
    let rollback = match &r.rollback {
        Some(rb) => {
            let mut t = format!(
                "by {} at {}; held until {}",
                rb.by, rb.at, rb.suppressed_until
            );
            if let Some(l) = &rb.hold_lifted {
                let _ = write!(t, " (hold lifted by {} at {})", l.by, l.at);
            }
            t
        }
        None if r.reversible == Some(false) => "no (not reversible)".into(),
        None => "no".into(),
    };
    item(html, "rolled back", &rollback);
    html.push_str("</dl></section></div>\n");

    let steps: Vec<String> = r
        .actions
        .iter()
        .chain(r.rollback.iter().flat_map(|rb| rb.actions.iter()))
        .map(action)
        .collect();
    if !steps.is_empty() {
        html.push_str("<section><h4>Steps (planned, made, and any undo)</h4><ul class=\"steps\">");
        for s in &steps {
            let _ = write!(html, "<li><code>{}</code></li>", escape(s));
        }
        html.push_str("</ul></section>\n");
    }
    if r.pre_state.is_some() || r.post_state.is_some() {
        let _ = writeln!(
            html,
            "<div class=\"two\"><section><h4>Before</h4><pre>{}</pre></section>\
             <section><h4>After</h4><pre>{}</pre></section></div>",
            escape(&state(r.pre_state.as_ref())),
            escape(&state(r.post_state.as_ref())),
        );
    }
    if !r.history.is_empty() {
        html.push_str("<section><h4>Earlier outcomes</h4><ul>");
        for p in &r.history {
            let _ = write!(
                html,
                "<li>{}</li>",
                escape(&format!(
                    "attempt {}: {} ({}) at {}: {}",
                    p.attempt, p.status, p.reason, p.updated_at, p.detail
                ))
            );
        }
        html.push_str("</ul></section>\n");
    }
    html.push_str("</article>\n");
}
