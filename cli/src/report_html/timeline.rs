//! The report's timeline: records per interval, stacked by how they ended, drawn with CSS
//! alone (no script, no image), so the page stays one self-contained file.

use super::{escape, status_class};
use chrono::{DateTime, SecondsFormat, Utc};
use reflex_shared::ledger::OutcomeRecord;
use std::collections::BTreeMap;
use std::fmt::Write;

/// At most this many columns: a 1280 px page shows each at a readable width.
const MAX_COLUMNS: i64 = 60;

/// Interval widths to choose from, in seconds, with their names: the smallest that fits the
/// span in `MAX_COLUMNS` columns.
const INTERVALS: [(i64, &str); 12] = [
    (1, "1 second"),
    (5, "5 seconds"),
    (15, "15 seconds"),
    (60, "1 minute"),
    (300, "5 minutes"),
    (900, "15 minutes"),
    (3600, "1 hour"),
    (21_600, "6 hours"),
    (86_400, "1 day"),
    (604_800, "1 week"),
    (2_592_000, "30 days"),
    (31_536_000, "365 days"),
];

/// The stacking order, bottom up, with each class's legend.
const CLASSES: [(&str, &str); 5] = [
    ("ok", "succeeded"),
    ("bad", "failed or not verified"),
    ("wait", "dry-run or awaiting approval"),
    ("rejected", "rejected"),
    ("plain", "skipped and the rest"),
];

/// One column's records: a count per class (its bars), and per status (its tooltip).
type Column<'a> = (BTreeMap<&'static str, usize>, BTreeMap<&'a str, usize>);

fn parse(t: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(t)
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

fn fmt(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The timeline's HTML: one column per interval from the first record to the last.
pub fn timeline(records: &[OutcomeRecord]) -> String {
    let times: Vec<(DateTime<Utc>, &'static str, &str)> = records
        .iter()
        .filter_map(|r| {
            parse(&r.created_at).map(|t| (t, status_class(r.status), r.status.as_str()))
        })
        .collect();
    let unreadable = records.len() - times.len();
    let (Some(first), Some(last)) = (
        times.iter().map(|t| t.0).min(),
        times.iter().map(|t| t.0).max(),
    ) else {
        return "<p>No records to place in time.</p>\n".into();
    };
    let span = (last - first).num_seconds();
    let (width, name) = INTERVALS
        .iter()
        .copied()
        .find(|(w, _)| span / w < MAX_COLUMNS)
        .unwrap_or(INTERVALS[INTERVALS.len() - 1]);
    let start = first.timestamp() - first.timestamp().rem_euclid(width);
    let columns = ((last.timestamp() - start) / width + 1).clamp(1, MAX_COLUMNS) as usize;
    let mut cells: Vec<Column> = vec![Default::default(); columns];
    for (t, class, status) in &times {
        let i = (((t.timestamp() - start) / width) as usize).min(columns - 1);
        *cells[i].0.entry(class).or_default() += 1;
        *cells[i].1.entry(status).or_default() += 1;
    }
    let busiest = cells
        .iter()
        .map(|c| c.0.values().sum::<usize>())
        .max()
        .unwrap_or(1)
        .max(1);
    let mut html = String::new();
    let _ = writeln!(
        html,
        "<p>{n} record(s) from {a} to {b}, one column per {name}; the tallest column holds {busiest}.{u}</p>",
        n = times.len(),
        a = escape(&fmt(first)),
        b = escape(&fmt(last)),
        u = if unreadable > 0 {
            format!(" {unreadable} record(s) with an unreadable time are left out.")
        } else {
            String::new()
        }
    );
    html.push_str("<div class=\"timeline\">");
    for (i, (classes, statuses)) in cells.iter().enumerate() {
        let at = DateTime::from_timestamp(start + i as i64 * width, 0)
            .map(fmt)
            .unwrap_or_default();
        let what: Vec<String> = statuses.iter().map(|(s, n)| format!("{s} {n}")).collect();
        let tip = if what.is_empty() {
            format!("{at}: none")
        } else {
            format!("{at}: {}", what.join(", "))
        };
        let _ = write!(html, "<div class=\"col\" title=\"{}\">", escape(&tip));
        for (class, _) in CLASSES {
            if let Some(n) = classes.get(class) {
                let _ = write!(
                    html,
                    "<span class=\"bar bg-{class}\" style=\"height:{:.1}%\"></span>",
                    *n as f64 * 100.0 / busiest as f64
                );
            }
        }
        html.push_str("</div>");
    }
    html.push_str("</div>\n<p class=\"legend\">");
    for (class, label) in CLASSES {
        let _ = write!(
            html,
            "<span><i class=\"bg-{class}\"></i>{}</span>",
            escape(label)
        );
    }
    html.push_str("</p>\n");
    html
}

#[cfg(test)]
mod tests {
    use super::*;
    use reflex_shared::status::{Reason, Status};

    fn at(t: &str, status: Status) -> OutcomeRecord {
        let mut r =
            OutcomeRecord::new(format!("f#{t}"), "f", &crate::report_html::tests::meta(), t);
        r.set_outcome(status, Reason::Remediated, "x");
        r
    }

    #[test]
    fn columns_cover_the_span_at_the_smallest_interval_that_fits() {
        let cases = [
            // (first, last, columns, interval named)
            (
                "2026-12-02T10:00:00Z",
                "2026-12-02T10:00:09Z",
                10,
                "1 second",
            ),
            (
                "2026-12-02T10:00:00Z",
                "2026-12-02T10:30:00Z",
                31,
                "1 minute",
            ),
            (
                "2026-12-01T00:00:00Z",
                "2026-12-08T00:00:00Z",
                29,
                "6 hours",
            ),
            (
                "2026-12-02T10:00:00Z",
                "2026-12-02T10:00:00Z",
                1,
                "1 second",
            ),
            (
                "2020-01-01T00:00:00Z",
                "2026-12-02T00:00:00Z",
                7,
                "365 days",
            ),
        ];
        for (a, b, columns, name) in cases {
            let html = timeline(&[at(a, Status::Succeeded), at(b, Status::Failed)]);
            assert_eq!(
                html.matches("<div class=\"col\"").count(),
                columns,
                "{a}..{b}"
            );
            assert!(html.contains(&format!("one column per {name};")), "{html}");
        }
    }

    #[test]
    fn a_column_stacks_its_records_by_class_against_the_busiest() {
        let t = "2026-12-02T10:00:00Z";
        let html = timeline(&[
            at(t, Status::Succeeded),
            at(t, Status::Succeeded),
            at(t, Status::Failed),
            at("2026-12-02T10:00:05Z", Status::DryRun),
            at("not a time", Status::Skipped),
        ]);
        assert!(html.contains("bg-ok\" style=\"height:66.7%"), "{html}");
        assert!(html.contains("bg-bad\" style=\"height:33.3%"), "{html}");
        assert!(html.contains("bg-wait\" style=\"height:33.3%"), "{html}");
        assert!(html.contains("title=\"2026-12-02T10:00:00Z: failed 1, succeeded 2\""));
        assert!(html.contains("1 record(s) with an unreadable time are left out"));
        assert!(timeline(&[]).contains("No records"));
    }
}
