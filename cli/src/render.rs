//! How results look: one line per replayed event, and the audit table, CSV or JSON lines.

use comfy_table::{presets::UTF8_FULL_CONDENSED, Cell, Color, ContentArrangement, Table};
use reflex_shared::ledger::OutcomeRecord;
use reflex_shared::pipeline::Handled;
use reflex_shared::status::Status;
use serde_json::json;

/// Output format for `replay` and `audit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Human,
    Json,
    Csv,
}

impl Format {
    /// JSON lines when asked for, text for people otherwise.
    pub fn lines(json: bool) -> Format {
        if json {
            Format::Json
        } else {
            Format::Human
        }
    }
}

fn status_color(s: Status) -> Color {
    match s {
        Status::Succeeded => Color::Green,
        Status::Failed | Status::VerificationFailed => Color::Red,
        Status::Rejected => Color::Magenta,
        Status::PendingApproval | Status::DryRun => Color::Yellow,
        Status::Claimed | Status::Acting | Status::AwaitingCompletion => Color::Cyan,
        Status::Skipped | Status::RolledBack => Color::Reset,
    }
}

/// One replay result, as a line a person can scan or a JSON line a program can read.
pub fn outcome_line(file: &str, o: &Handled, format: Format) -> String {
    match format {
        Format::Json | Format::Csv => json!({ "file": file, "outcome": o }).to_string(),
        Format::Human => {
            let status = if o.duplicate {
                format!("{} (duplicate)", o.status)
            } else {
                o.status.to_string()
            };
            let mut text = format!(
                "{status:<30} {:<18} {file}\n{:49}{}\n{:49}{}",
                o.reason, "", o.detail, "", o.record_id
            );
            // A dry run (or a plan awaiting approval) shows the change it would make.
            for step in &o.planned {
                text.push_str(&format!(
                    "\n{:49}{}",
                    "",
                    planned_step(&step.api, &step.parameters)
                ));
            }
            text
        }
    }
}

/// The longest a step's parameters are shown on one line.
const PARAMETERS_SHOWN: usize = 160;

/// A planned step as one line: `plan: s3:PutPublicAccessBlock {"Bucket":"b",…}`.
pub fn planned_step(api: &str, parameters: &serde_json::Value) -> String {
    // The key parameters first: the short values that name what is changed (a bucket, a group
    // id) before nested documents, so a long step still shows what it acts on.
    let text = match parameters.as_object() {
        Some(fields) => {
            let (names, nested): (Vec<_>, Vec<_>) = fields
                .iter()
                .partition(|(_, v)| !(v.is_object() || v.is_array()));
            let parts: Vec<String> = names
                .into_iter()
                .chain(nested)
                .map(|(k, v)| format!("{}:{v}", serde_json::Value::from(k.as_str())))
                .collect();
            format!("{{{}}}", parts.join(","))
        }
        None => parameters.to_string(),
    };
    let shown = if text.chars().count() > PARAMETERS_SHOWN {
        format!(
            "{}…",
            text.chars().take(PARAMETERS_SHOWN).collect::<String>()
        )
    } else {
        text
    };
    format!("plan: {api} {shown}")
}

const COLUMNS: [&str; 9] = [
    "created",
    "remediation",
    "status",
    "reason",
    "mode",
    "resource",
    "verified",
    "changes",
    "record",
];

fn row(r: &OutcomeRecord) -> [String; 9] {
    let changed = r.actions.iter().filter(|a| a.result == "ok").count();
    [
        r.created_at.clone(),
        r.remediation.clone(),
        r.status.to_string(),
        r.reason.to_string(),
        r.mode.map(|m| m.to_string()).unwrap_or_else(|| "-".into()),
        r.resource_arn.clone().unwrap_or_else(|| "-".into()),
        match r.verified {
            Some(true) => "yes".into(),
            Some(false) => "NO".into(),
            None => "-".into(),
        },
        changed.to_string(),
        r.record_id.clone(),
    ]
}

/// The audit listing in the chosen format.
pub fn records(records: &[OutcomeRecord], format: Format) -> Result<String, String> {
    match format {
        Format::Json => records
            .iter()
            .map(|r| serde_json::to_string(r).map_err(|e| e.to_string()))
            .collect::<Result<Vec<_>, _>>()
            .map(|lines| lines.join("\n")),
        Format::Csv => {
            let mut w = csv::Writer::from_writer(Vec::new());
            let err = |e: csv::Error| e.to_string();
            w.write_record(COLUMNS.iter().chain(["detail"].iter()))
                .map_err(err)?;
            for r in records {
                let mut fields = row(r).to_vec();
                fields.push(r.detail.clone());
                w.write_record(&fields).map_err(err)?;
            }
            let text = String::from_utf8(w.into_inner().map_err(|e| e.to_string())?)
                .map_err(|e| e.to_string())?;
            Ok(text.trim_end().to_string())
        }
        Format::Human => {
            if records.is_empty() {
                return Ok("no outcome records match".into());
            }
            let mut t = Table::new();
            t.load_preset(UTF8_FULL_CONDENSED)
                .set_content_arrangement(ContentArrangement::Dynamic);
            t.set_header(
                COLUMNS
                    .iter()
                    .map(|c| Cell::new(c).add_attribute(comfy_table::Attribute::Bold)),
            );
            for r in records {
                let cells = row(r);
                t.add_row(cells.iter().enumerate().map(|(i, c)| {
                    let cell = Cell::new(c);
                    if i == 2 {
                        cell.fg(status_color(r.status))
                    } else {
                        cell
                    }
                }));
            }
            Ok(format!("{t}\n{} record(s)", records.len()))
        }
    }
}

/// Live suppressions as a table, or JSON lines.
pub fn suppressions(list: &[reflex_shared::ledger::Suppression], json: bool) -> String {
    if json {
        return list
            .iter()
            .filter_map(|s| serde_json::to_string(s).ok())
            .collect::<Vec<_>>()
            .join("\n");
    }
    if list.is_empty() {
        return "no live suppressions".into();
    }
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic);
    t.set_header([
        "remediation",
        "resource",
        "held until",
        "by",
        "rollback record",
    ]);
    for s in list {
        t.add_row([
            s.remediation.trim_start_matches("suppression:"),
            s.resource.as_str(),
            s.until.as_str(),
            s.by.as_str(),
            s.rollback_record.as_str(),
        ]);
    }
    format!("{t}\n{} live suppression(s)", list.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_planned_step_shows_what_it_acts_on_first() {
        let long = "x".repeat(300);
        let cases = [
            (json!({"Bucket": "b"}), "plan: s3:Put {\"Bucket\":\"b\"}"),
            (
                json!({"Config": {"A": true}, "Bucket": "b"}),
                "plan: s3:Put {\"Bucket\":\"b\",\"Config\":{\"A\":true}}",
            ),
            (json!("text"), "plan: s3:Put \"text\""),
        ];
        for (parameters, want) in cases {
            assert_eq!(planned_step("s3:Put", &parameters), want);
        }
        let shown = planned_step("s3:Put", &json!({"Doc": {"Long": long}, "Bucket": "b"}));
        assert!(
            shown.starts_with("plan: s3:Put {\"Bucket\":\"b\",") && shown.ends_with('…'),
            "{shown}"
        );
    }

    #[test]
    fn a_dry_run_line_lists_its_planned_steps() {
        let o = Handled {
            record_id: "s3-block-public-access#1".into(),
            status: Status::DryRun,
            reason: reflex_shared::status::Reason::WouldChange,
            detail: "dry-run".into(),
            duplicate: false,
            resource: None,
            mode: None,
            planned: vec![reflex_shared::pipeline::PlannedStep {
                api: "s3:PutPublicAccessBlock".into(),
                parameters: json!({"Bucket": "b"}),
            }],
        };
        let line = outcome_line("f.json", &o, Format::Human);
        assert!(
            line.ends_with("plan: s3:PutPublicAccessBlock {\"Bucket\":\"b\"}"),
            "{line}"
        );
        let json: serde_json::Value =
            serde_json::from_str(&outcome_line("f.json", &o, Format::Json)).unwrap();
        assert_eq!(
            json["outcome"]["planned"][0]["api"],
            "s3:PutPublicAccessBlock"
        );
    }
}
