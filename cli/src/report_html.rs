//! The outcome records as one self-contained HTML page (no scripts, no external assets): the
//! report the demo writes, for a person or an auditor to open in a browser.

use reflex_shared::ledger::OutcomeRecord;
use reflex_shared::status::Status;
use std::collections::BTreeMap;
use std::fmt::Write;

/// Text made safe for HTML element content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn status_class(s: Status) -> &'static str {
    match s {
        Status::Succeeded => "ok",
        Status::Failed | Status::VerificationFailed => "bad",
        Status::PendingApproval | Status::DryRun => "wait",
        Status::Rejected => "rejected",
        _ => "plain",
    }
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;color:#222}\
table{border-collapse:collapse;width:100%;font-size:13px}\
th,td{border:1px solid #ccc;padding:4px 6px;text-align:left;vertical-align:top}\
th{background:#f3f3f3}td.detail{max-width:40em}\
.ok{color:#0a7a2f;font-weight:600}.bad{color:#b00020;font-weight:600}\
.wait{color:#a15c00;font-weight:600}.rejected{color:#7a1fa2}\
.summary span{margin-right:1.5em}";

/// The page: a title, when it was written, a count per status, and one row per record.
pub fn page(title: &str, generated_at: &str, records: &[OutcomeRecord]) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for r in records {
        *counts.entry(r.status.as_str()).or_default() += 1;
    }
    let mut html = String::new();
    // Writing to a String cannot fail.
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>{t}</title><style>{STYLE}</style></head><body>\n<h1>{t}</h1>\n\
         <p>Written {g}: {n} outcome record(s).</p>\n<p class=\"summary\">",
        t = escape(title),
        g = escape(generated_at),
        n = records.len()
    );
    for (status, n) in &counts {
        let _ = write!(html, "<span>{}: {n}</span>", escape(status));
    }
    html.push_str(
        "</p>\n<table>\n<thead><tr><th>created</th><th>remediation</th><th>status</th>\
         <th>reason</th><th>mode</th><th>resource</th><th>verified</th><th>changes</th>\
         <th>detail</th><th>record</th></tr></thead>\n<tbody>\n",
    );
    for r in records {
        let changes = r.actions.iter().filter(|a| a.took_effect()).count();
        let verified = match r.verified {
            Some(true) => "yes",
            Some(false) => "NO",
            None => "-",
        };
        let _ = writeln!(
            html,
            "<tr><td>{}</td><td>{}</td><td class=\"{}\">{}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{verified}</td><td>{changes}</td><td class=\"detail\">{}</td>\
             <td>{}</td></tr>",
            escape(&r.created_at),
            escape(&r.remediation),
            status_class(r.status),
            escape(r.status.as_str()),
            escape(r.reason.as_str()),
            r.mode.map(|m| m.to_string()).unwrap_or_else(|| "-".into()),
            escape(r.resource_arn.as_deref().unwrap_or("-")),
            escape(&r.detail),
            escape(&r.record_id),
        );
    }
    html.push_str("</tbody></table>\n</body></html>\n");
    html
}

#[cfg(test)]
mod tests {
    use super::*;
    use reflex_shared::ledger::RecordMeta;
    use reflex_shared::status::Reason;

    #[test]
    fn escapes_what_html_would_read_as_markup() {
        let cases = [
            ("plain", "plain"),
            (
                "<script>alert(1)</script>",
                "&lt;script&gt;alert(1)&lt;/script&gt;",
            ),
            ("a & b", "a &amp; b"),
            ("\"q\" 'q'", "&quot;q&quot; &#39;q&#39;"),
            ("", ""),
        ];
        for (input, want) in cases {
            assert_eq!(escape(input), want, "{input}");
        }
    }

    #[test]
    fn a_page_has_a_row_per_record_and_escapes_every_field() {
        let meta = RecordMeta {
            function_version: "1".into(),
            request_id: "r".into(),
            event_digest: "d".into(),
            claim_token: "t".into(),
        };
        let mut r = OutcomeRecord::new(
            "s3-block-public-access#1".into(),
            "s3-block-public-access",
            &meta,
            "2026-12-02T10:00:00Z",
        );
        r.set_outcome(Status::Succeeded, Reason::Remediated, "<b>fixed</b>");
        r.resource_arn = Some("arn:aws:s3:::a<b".into());
        let mut skipped = r.clone();
        skipped.record_id = "s3-block-public-access#2".into();
        skipped.status = Status::Skipped;
        let html = page("Reflex <demo>", "now", &[r, skipped]);
        assert_eq!(html.matches("<tr><td>").count(), 2, "{html}");
        assert!(html.contains("Reflex &lt;demo&gt;"));
        assert!(html.contains("&lt;b&gt;fixed&lt;/b&gt;"));
        assert!(html.contains("arn:aws:s3:::a&lt;b"));
        assert!(!html.contains("<b>fixed"));
        assert!(html.contains("<span>skipped: 1</span><span>succeeded: 1</span>"));
        assert!(html.contains("class=\"ok\">succeeded"));
    }
}
