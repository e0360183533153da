//! The outcome records as one self-contained HTML page (no scripts, no external assets, no
//! network: the style is inline): the report the demo writes and `reflex audit --html` writes,
//! for a person or an auditor to open in a browser. Counts by remediation and status, a
//! timeline, a row per record, then each record in full.

mod record;
mod timeline;

use anyhow::Context;
use reflex_shared::ledger::OutcomeRecord;
use reflex_shared::status::Status;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::path::Path;

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

/// Long ARNs, ids and JSON wrap anywhere (`overflow-wrap:anywhere` also lets a table shrink
/// to its container), and grid columns may shrink below their content (`minmax(0,1fr)`): so
/// nothing is wider than the page at 1280 px. Only the long columns (`td.long`) wrap anywhere:
/// the short ones keep their words whole (breaking only at a hyphen), or the table would crush
/// them to a letter a line.
const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:100%}\
h2{margin-top:1.6em;border-bottom:1px solid #ddd}\
table{border-collapse:collapse;width:100%;font-size:13px}\
th,td{border:1px solid #ccc;padding:4px 6px;text-align:left;vertical-align:top}\
th{background:#f3f3f3}td.long{overflow-wrap:anywhere}td.n{text-align:right}\
td.id{min-width:13em;font-size:12px}\
.ok{color:#0a7a2f;font-weight:600}.bad{color:#b00020;font-weight:600}\
.wait{color:#a15c00;font-weight:600}.rejected{color:#7a1fa2}.muted{color:#666;font-weight:400}\
.summary span{margin-right:1.5em}\
.timeline{display:flex;align-items:flex-end;gap:2px;height:140px;border-bottom:1px solid #999;padding-top:4px}\
.col{flex:1 1 0;min-width:0;height:100%;display:flex;flex-direction:column-reverse}\
.bar{display:block;width:100%}\
.bg-ok{background:#2e9e55}.bg-bad{background:#d0344c}.bg-wait{background:#e0a030}\
.bg-rejected{background:#9a5cc0}.bg-plain{background:#a8a8a8}\
.legend span{margin-right:1.5em;font-size:13px}\
.legend i{display:inline-block;width:.9em;height:.9em;margin-right:.4em;vertical-align:middle}\
.record{border:1px solid #ddd;border-radius:4px;padding:.4em 1em;margin:1em 0}\
.record h3{font-size:15px;margin:.4em 0;overflow-wrap:anywhere}.record p{font-size:12px;overflow-wrap:anywhere}\
.two{display:grid;grid-template-columns:minmax(0,1fr) minmax(0,1fr);gap:1em}\
h4{margin:.6em 0 .3em;font-size:13px}\
dl{display:grid;grid-template-columns:8em minmax(0,1fr);gap:2px 8px;margin:0;font-size:13px}\
dt{color:#555}dd{margin:0;overflow-wrap:anywhere}\
pre{white-space:pre-wrap;overflow-wrap:anywhere;background:#f7f7f7;padding:6px;margin:0;\
font-size:12px;max-height:24em;overflow:auto}\
ul.steps{font-size:12px;padding-left:1.2em;margin:0}code{overflow-wrap:anywhere}";

/// Records per remediation and status: a row per remediation, a column per status present.
fn counts(records: &[OutcomeRecord]) -> String {
    let mut by: BTreeMap<&str, BTreeMap<&str, usize>> = BTreeMap::new();
    let mut statuses: BTreeSet<(&str, &str)> = BTreeSet::new();
    for r in records {
        *by.entry(r.remediation.as_str())
            .or_default()
            .entry(r.status.as_str())
            .or_default() += 1;
        statuses.insert((r.status.as_str(), status_class(r.status)));
    }
    let mut html = String::from("<table class=\"counts\">\n<thead><tr><th>remediation</th>");
    for (s, class) in &statuses {
        let _ = write!(html, "<th class=\"{class}\">{}</th>", escape(s));
    }
    html.push_str("<th>total</th></tr></thead>\n<tbody>\n");
    for (remediation, n) in &by {
        let _ = write!(html, "<tr><th scope=\"row\">{}</th>", escape(remediation));
        for (s, _) in &statuses {
            match n.get(s) {
                Some(k) => {
                    let _ = write!(html, "<td class=\"n\">{k}</td>");
                }
                None => html.push_str("<td class=\"n\"></td>"),
            }
        }
        let _ = writeln!(
            html,
            "<td class=\"n\">{}</td></tr>",
            n.values().sum::<usize>()
        );
    }
    html.push_str("</tbody></table>\n");
    html
}

/// The page: a title, when it was written, a count per status, counts by remediation and
/// status, the timeline, a row per record, and each record in full.
pub fn page(title: &str, generated_at: &str, records: &[OutcomeRecord]) -> String {
    let mut counts_by_status: BTreeMap<&str, usize> = BTreeMap::new();
    for r in records {
        *counts_by_status.entry(r.status.as_str()).or_default() += 1;
    }
    let mut html = String::new();
    // Writing to a String cannot fail.
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <title>{t}</title><style>{STYLE}</style></head><body>\n<h1>{t}</h1>\n\
         <p>Written {g}: {n} outcome record(s).</p>\n<p class=\"summary\">",
        t = escape(title),
        g = escape(generated_at),
        n = records.len()
    );
    for (status, n) in &counts_by_status {
        let _ = write!(html, "<span>{}: {n}</span>", escape(status));
    }
    html.push_str("</p>\n<h2 id=\"counts\">By remediation and status</h2>\n");
    html.push_str(&counts(records));
    html.push_str("<h2 id=\"timeline\">Timeline</h2>\n");
    html.push_str(&timeline::timeline(records));
    html.push_str(
        "<h2 id=\"records\">Records</h2>\n<table>\n<thead><tr><th>created</th><th>remediation</th>\
         <th>status</th><th>reason</th><th>mode</th><th>resource</th><th>verified</th>\
         <th>changes</th><th>detail</th><th>record</th></tr></thead>\n<tbody>\n",
    );
    for (i, r) in records.iter().enumerate() {
        let changes = r.actions.iter().filter(|a| a.took_effect()).count();
        let verified = match r.verified {
            Some(true) => "yes",
            Some(false) => "NO",
            None => "-",
        };
        let _ = writeln!(
            html,
            "<tr><td>{}</td><td>{}</td><td class=\"{}\">{}</td><td>{}</td><td>{}</td>\
             <td class=\"long\">{}</td><td>{verified}</td><td>{changes}</td>\
             <td class=\"long\">{}</td><td class=\"long id\"><a href=\"#r{i}\">{}</a></td></tr>",
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
    html.push_str("</tbody></table>\n<h2 id=\"details\">Each record</h2>\n");
    for (i, r) in records.iter().enumerate() {
        record::article(&mut html, &format!("r{i}"), r);
    }
    html.push_str("</body></html>\n");
    html
}

/// Write the page to `path` (`reflex audit --html`, the demo's report).
pub fn write(path: &Path, title: &str, records: &[OutcomeRecord]) -> anyhow::Result<()> {
    let generated = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    std::fs::write(path, page(title, &generated, records))
        .with_context(|| format!("cannot write the report to {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reflex_shared::ledger::RecordMeta;
    use reflex_shared::status::Reason;

    /// The bookkeeping every test record shares.
    pub(crate) fn meta() -> RecordMeta {
        RecordMeta {
            function_version: "1".into(),
            request_id: "r".into(),
            event_digest: "d".into(),
            claim_token: "t".into(),
        }
    }

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
        let meta = meta();
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

    /// A record whose every attacker-influenced text is markup, and every section filled.
    fn hostile() -> OutcomeRecord {
        let event: serde_json::Value = serde_json::from_str(include_str!(
            "../../events/s3-block-public-access/securityhub-s3.8-imported.json"
        ))
        .unwrap();
        let mut finding = reflex_shared::finding::parse_event(&event)
            .unwrap()
            .remove(0);
        finding.title = "<script>alert('title')</script>".into();
        finding.id = "<img src=x onerror=alert(1)>".into();
        let meta = meta();
        let mut r = OutcomeRecord::new(
            "s3-block-public-access#<i>".into(),
            "s3-block-public-access",
            &meta,
            "2026-12-02T10:00:00.000Z",
        );
        r.finding = Some(finding);
        r.resource_arn = Some("arn:aws:s3:::<script>bucket</script>".into());
        r.mode = Some(reflex_shared::policy::Mode::Approve);
        r.set_outcome(
            Status::Succeeded,
            Reason::Remediated,
            "\"><script>x</script>",
        );
        r.actions = vec![reflex_shared::ledger::Action::planned(
            "s3:PutPublicAccessBlock",
            serde_json::json!({"Bucket": "<script>bucket</script>"}),
        )
        .carried_out(Ok(()))];
        r.pre_state = Some(serde_json::json!({"policy": "<script>before</script>"}));
        r.post_state = Some(serde_json::json!({"policy": "</pre><script>after</script>"}));
        r.verified = Some(true);
        r.verified_at = Some("2026-12-02T10:00:02.000Z".into());
        r.approved_by = Some("arn:aws:sts::1:assumed-role/<b>approver</b>/x".into());
        r.approved_at = Some("2026-12-02T09:59:00.000Z".into());
        r.rollback = Some(reflex_shared::ledger::Rollback {
            by: "<u>operator</u>".into(),
            at: "2026-12-02T11:00:00.000Z".into(),
            actions: vec![],
            suppressed_until: "2026-12-09T11:00:00.000Z".into(),
            hold_lifted: None,
        });
        r
    }

    #[test]
    fn each_record_is_shown_in_full_and_its_text_never_becomes_markup() {
        let html = page("Reflex audit", "now", &[hostile()]);
        // Nothing from the record became an element: the page has no script, image, link or
        // element the record named.
        for tag in ["<script", "<img", "<i>", "<b>", "<u>", "</pre><script"] {
            assert!(!html.contains(tag), "{tag} in {html}");
        }
        for shown in [
            "&lt;script&gt;alert(&#39;title&#39;)&lt;/script&gt;",
            "&lt;img src=x onerror=alert(1)&gt;",
            "arn:aws:s3:::&lt;script&gt;bucket&lt;/script&gt;",
            "&quot;&gt;&lt;script&gt;x&lt;/script&gt;",
            "&lt;script&gt;before&lt;/script&gt;",
            "&lt;/pre&gt;&lt;script&gt;after&lt;/script&gt;",
            "arn:aws:sts::1:assumed-role/&lt;b&gt;approver&lt;/b&gt;/x at 2026-12-02T09:59:00.000Z",
            "by &lt;u&gt;operator&lt;/u&gt; at 2026-12-02T11:00:00.000Z; held until 2026-12-09T11:00:00.000Z",
            "yes, by a fresh read at 2026-12-02T10:00:02.000Z",
            "Security Hub control S3.8",
            "<dt>mode</dt><dd>approve</dd>",
            "<dt>status</dt><dd>succeeded (remediated)</dd>",
            "ok      s3:PutPublicAccessBlock",
            "<h2 id=\"counts\">",
            "<tr><th scope=\"row\">s3-block-public-access</th><td class=\"n\">1</td><td class=\"n\">1</td></tr>",
            "<h2 id=\"timeline\">",
            "<a href=\"#r0\">s3-block-public-access#&lt;i&gt;</a>",
            "<article class=\"record\" id=\"r0\">",
        ] {
            assert!(html.contains(shown), "{shown} not in {html}");
        }
        // Self-contained: no attribute names anything outside the page.
        for outside in ["src=\"", "href=\"http", "url(", "@import", "<link"] {
            assert!(!html.contains(outside), "{outside} in {html}");
        }
    }
}
