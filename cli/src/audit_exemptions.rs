//! `reflex audit --exemptions`: the exemptions of the policy in force, those ending within 14
//! days first and those that have ended flagged, as a table, JSON lines or CSV.
//!
//! Exemptions carried as a resource tag (the policy's `exemptions.tag`) live on the resources,
//! not in the policy: listing them would mean reading every resource of the account, so the
//! listing says how to find them instead (the Resource Groups Tagging API, one AWS CLI call).

use crate::policy_choice;
use crate::render::Format;
use anyhow::{Context, Result};
use comfy_table::{presets::UTF8_FULL_CONDENSED, Cell, Color, ContentArrangement, Table};
use reflex_shared::policy::{ListedExemption, Policy};

/// The policy `request` names, as the functions would apply it (the first-deploy policy where
/// the deployment's parameter does not exist: it has no exemptions), said on stderr.
pub async fn policy_in_force(
    sdk: &aws_config::SdkConfig,
    request: policy_choice::Request,
) -> Result<Policy> {
    let ssm = aws_sdk_ssm::Client::new(sdk);
    let (chosen, read) = policy_choice::choose_and_read(request, &ssm).await?;
    eprintln!("{chosen}");
    if chosen.fallback {
        return Ok(Policy::default());
    }
    read.context("cannot read the policy in force")
}

/// How to find the exemptions carried as a tag, which no policy lists.
pub fn tag_hint(tag: &str) -> String {
    format!(
        "exemptions carried as the tag {tag} are on the resources themselves: `aws resourcegroupstaggingapi get-resources --tag-filters Key={tag}` lists them (per region)"
    )
}

/// The listing, in `format`.
pub fn render(list: &[ListedExemption], tag: &str, format: Format) -> Result<String> {
    match format {
        Format::Json => Ok(list
            .iter()
            .map(serde_json::to_string)
            .collect::<Result<Vec<_>, _>>()?
            .join("\n")),
        Format::Csv => {
            let mut w = csv::Writer::from_writer(Vec::new());
            w.write_record(COLUMNS)?;
            for l in list {
                w.write_record(row(l))?;
            }
            let text = String::from_utf8(w.into_inner().map_err(|e| e.into_error())?)?;
            Ok(text.trim_end().to_string())
        }
        Format::Human => {
            if list.is_empty() {
                return Ok(format!("no exemptions in the policy\n{}", tag_hint(tag)));
            }
            let mut t = Table::new();
            t.load_preset(UTF8_FULL_CONDENSED)
                .set_content_arrangement(ContentArrangement::Dynamic);
            t.set_header(COLUMNS);
            for l in list {
                let cells = row(l);
                let color = match l.state {
                    "expired" => Color::Red,
                    "expires-soon" => Color::Yellow,
                    _ => Color::Reset,
                };
                t.add_row(cells.into_iter().enumerate().map(|(i, c)| {
                    if i == 0 {
                        Cell::new(c).fg(color)
                    } else {
                        Cell::new(c)
                    }
                }));
            }
            let soon = list.iter().filter(|l| l.state == "expires-soon").count();
            let ended = list.iter().filter(|l| l.state == "expired").count();
            Ok(format!(
                "{t}\n{} exemption(s): {soon} ending within 14 days, {ended} ended (no longer applied: renew or delete them)\n{}",
                list.len(),
                tag_hint(tag)
            ))
        }
    }
}

const COLUMNS: [&str; 7] = [
    "state",
    "expires",
    "days left",
    "owner",
    "rule",
    "match",
    "reason",
];

fn row(l: &ListedExemption) -> [String; 7] {
    [
        l.state.to_string(),
        l.expires.clone(),
        l.days_left.to_string(),
        l.owner.clone(),
        l.rule.clone(),
        l.matches.clone(),
        l.reason.clone(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn listed() -> Vec<ListedExemption> {
        let p = Policy::from_yaml(
            "version: 1\nexemptions:\n  rules:\n    - {match: {arns: ['arn:aws:s3:::a']}, reason: far off, owner: o1, expires: 2027-06-01}\n    - {match: {accounts: ['123456789012']}, reason: 'ended, long ago', owner: o2, expires: 2026-11-01}\n    - {match: {tags: {k: v}}, reason: soon, owner: o3, expires: 2026-12-10}\n",
        )
        .unwrap();
        p.exemption_list(NaiveDate::from_ymd_opt(2026, 12, 3).unwrap())
    }

    #[test]
    fn each_format_lists_those_ending_soon_first() {
        let l = listed();
        let csv = render(&l, "reflex:exempt", Format::Csv).unwrap();
        assert_eq!(
            csv,
            "state,expires,days left,owner,rule,match,reason\n\
             expires-soon,2026-12-10,7,o3,exemptions.rules[2],tags: k=v,soon\n\
             active,2027-06-01,180,o1,exemptions.rules[0],arns: arn:aws:s3:::a,far off\n\
             expired,2026-11-01,-32,o2,exemptions.rules[1],accounts: 123456789012,\"ended, long ago\""
        );
        let json = render(&l, "reflex:exempt", Format::Json).unwrap();
        let first: serde_json::Value = serde_json::from_str(json.lines().next().unwrap()).unwrap();
        assert_eq!(first["rule"], "exemptions.rules[2]");
        assert_eq!(first["match"], "tags: k=v");
        assert_eq!(first["state"], "expires-soon");
        let text = render(&l, "reflex:exempt", Format::Human).unwrap();
        let soon = text.find("exemptions.rules[2]").unwrap();
        let far = text.find("exemptions.rules[0]").unwrap();
        let ended = text.find("exemptions.rules[1]").unwrap();
        assert!(soon < far && far < ended, "{text}");
        assert!(
            text.contains("3 exemption(s): 1 ending within 14 days, 1 ended"),
            "{text}"
        );
        assert!(text.contains("--tag-filters Key=reflex:exempt"), "{text}");
        assert!(render(&[], "team:keep", Format::Human)
            .unwrap()
            .starts_with("no exemptions in the policy\nexemptions carried as the tag team:keep"));
    }
}
