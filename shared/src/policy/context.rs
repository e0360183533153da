//! Context: what a resource's tags and the calendar add to the decision. Pure.
//!
//! The tags are the ones the pipeline reads beside the claim (no extra AWS call): overrides may
//! match them, infrastructure as code owns a resource by them, and exemptions (declared in the
//! policy with an owner and an end, or carried as the exemption tag) apply by them until their
//! end. The approval tier (a step that cannot be undone waits for approval) is decided here too.

use super::{Exemption, Mode, Policy, PolicyError};
use chrono::NaiveDate;
use std::collections::BTreeMap;
use wildmatch::WildMatch;

/// A resource's tags, key to value.
pub type Tags = BTreeMap<String, String>;

/// Exemptions ending within this many days are listed first by `reflex audit --exemptions`.
pub const EXPIRING_SOON_DAYS: i64 = 14;

fn glob(pattern: &str, text: &str) -> bool {
    WildMatch::new(pattern).matches(text)
}

/// Whether `tags` hold every key of `want`, each with a value its pattern matches: the tags
/// that matched (`k=v, …`, for the record), if they all do.
pub fn tags_hold(want: &BTreeMap<String, String>, tags: &Tags) -> Option<String> {
    let mut seen = Vec::new();
    for (key, pattern) in want {
        let value = tags.get(key)?;
        if !glob(pattern, value) {
            return None;
        }
        seen.push(format!("{key}={value}"));
    }
    Some(seen.join(", "))
}

/// A policy date: `YYYY-MM-DD`.
pub fn parse_date(text: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").ok()
}

/// The exemption tag's value, `<YYYY-MM-DD>;<reason>`: its last day and its reason, or what is
/// wrong with it.
pub fn parse_exemption_tag(value: &str) -> Result<(NaiveDate, String), String> {
    let Some((until, reason)) = value.split_once(';') else {
        return Err("no `;` between the date and the reason".into());
    };
    let Some(until) = parse_date(until) else {
        return Err(format!("{:?} is not a date YYYY-MM-DD", until.trim()));
    };
    let reason = reason.trim();
    if reason.is_empty() {
        return Err("no reason after the `;`".into());
    }
    Ok((until, reason.to_string()))
}

/// What the exemptions say about one resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exempted {
    /// It is exempt by a policy rule: which one, its owner, its end and its reason.
    Yes(String),
    /// It carries an exemption tag in force: its end and reason. The resource's own tag, so
    /// the decision weighs who could have set it (see `Policy::evaluate_at`).
    Tagged(String),
    /// Its exemption tag cannot be honoured (malformed, or ending beyond `tag_max_days`): it
    /// exempts nothing, and the fix waits for a person's approval instead; the record says why.
    Unhonoured(String),
    /// It is not exempt; each exemption that matched but has ended, said.
    No(Vec<String>),
}

/// One exemption of the policy, as `reflex audit --exemptions` lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ListedExemption {
    /// `exemptions.rules[i]`.
    pub rule: String,
    /// What it matches, in words (`arns: …; accounts: …; tags: k=v`).
    #[serde(rename = "match")]
    pub matches: String,
    pub owner: String,
    pub expires: String,
    pub reason: String,
    /// `expired`, `expires-soon` (within 14 days) or `active`.
    pub state: &'static str,
    /// Days from today to its last day (negative once it has ended).
    pub days_left: i64,
}

impl Policy {
    /// The exemptions' word on the resource `arn` of `account`, on `today` (UTC). With `tags`
    /// `None` (before they are read) only the exemptions that need no tag are judged; with the
    /// tags, all of them and the exemption tag. A policy exemption applies through its
    /// `expires` day.
    pub fn exempted(
        &self,
        arn: &str,
        account: &str,
        tags: Option<&Tags>,
        today: NaiveDate,
    ) -> Exempted {
        let mut ended = Vec::new();
        for (i, e) in self.exemptions.rules.iter().enumerate() {
            let m = &e.when;
            if !m.tags.is_empty() && tags.is_none() {
                continue; // judged once the tags are read
            }
            let holds = (m.arns.is_empty() || m.arns.iter().any(|p| glob(p, arn)))
                && (m.accounts.is_empty() || m.accounts.iter().any(|a| a == account))
                && (m.tags.is_empty() || tags.and_then(|t| tags_hold(&m.tags, t)).is_some());
            if !holds {
                continue;
            }
            let what = describe(i, e);
            match e.expires.as_deref().and_then(parse_date) {
                Some(until) if today > until => {
                    ended.push(format!("{what} ended and no longer applies"))
                }
                // An end that cannot be read (validation refuses it) exempts: fail closed.
                _ => return Exempted::Yes(format!("{arn} is exempt by {what}")),
            }
        }
        let tag = &self.exemptions.tag;
        if let Some(value) = tags.and_then(|t| t.get(tag)) {
            if !value.eq_ignore_ascii_case("false") {
                match parse_exemption_tag(value) {
                    Err(why) => {
                        return Exempted::Unhonoured(format!(
                            "the exemption tag {tag}={value:?} is malformed ({why}; the form is <YYYY-MM-DD>;<reason>): it exempts nothing, so the fix waits for approval; correct the tag or remove it"
                        ))
                    }
                    Ok((until, _)) if (until - today).num_days() > i64::from(self.exemptions.tag_max_days) => {
                        return Exempted::Unhonoured(format!(
                            "the exemption tag {tag}={value:?} ends {until}, beyond exemptions.tag_max_days ({} days from today): it exempts nothing, so the fix waits for approval; shorten it, or declare the exemption in the policy",
                            self.exemptions.tag_max_days
                        ))
                    }
                    Ok((until, reason)) if today <= until => {
                        return Exempted::Tagged(format!(
                            "exempt by the exemption tag {tag} (until {until}): {reason:?}"
                        ))
                    }
                    Ok((until, reason)) => ended.push(format!(
                        "the exemption tag {tag} (until {until}: {reason}) ended and no longer applies"
                    )),
                }
            }
        }
        Exempted::No(ended)
    }

    /// Whether an override of `remediation` matches tags, so its mode is known only once the
    /// resource's tags are read.
    pub fn modes_by_tag(&self, remediation: &str) -> bool {
        self.remediations
            .get(remediation)
            .is_some_and(|r| r.overrides.iter().any(|o| !o.when.tags.is_empty()))
    }

    /// The IaC tag the resource carries, if the policy's `iac.tags` name one: `iac: tag K=V`.
    pub fn iac_owner(&self, tags: &Tags) -> Option<String> {
        self.iac.tags.iter().find_map(|t| {
            let (key, pattern) = t.split_once('=').unwrap_or((t.as_str(), "*"));
            let value = tags.get(key)?;
            glob(pattern, value).then(|| format!("iac: tag {key}={value}"))
        })
    }

    /// The approval tier: a fix of `remediation` in `mode` whose plan holds a step that cannot
    /// be undone (`irreversible`, as the record writes it) waits for approval, unless the
    /// policy opts the remediation out. Only `enforce` is raised: dry-run stays dry-run. The
    /// new mode and why, if it changes.
    pub fn tier(
        &self,
        remediation: &str,
        mode: Mode,
        because: &str,
        irreversible: Option<&str>,
    ) -> Option<(Mode, String)> {
        let step = irreversible?;
        if mode != Mode::Enforce || !self.approve_irreversible(remediation) {
            return None;
        }
        Some((
            Mode::Approve,
            format!(
                "the approval tier: {step} cannot be undone, so it waits for approval over enforce by {because} (remediations.{remediation}.approve_irreversible: false lets enforce carry it out)"
            ),
        ))
    }

    /// Every exemption of the policy, for `reflex audit --exemptions`: those ending within 14
    /// days first (soonest first), then the others in force by their end, then those that
    /// have ended (flagged `expired`: to renew or delete).
    pub fn exemption_list(&self, today: NaiveDate) -> Vec<ListedExemption> {
        let mut out: Vec<ListedExemption> = self
            .exemptions
            .rules
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let until = e.expires.as_deref().and_then(parse_date);
                let days_left = until.map_or(i64::MAX, |u| (u - today).num_days());
                let state = match days_left {
                    d if d < 0 => "expired",
                    d if d <= EXPIRING_SOON_DAYS => "expires-soon",
                    _ => "active",
                };
                ListedExemption {
                    rule: format!("exemptions.rules[{i}]"),
                    matches: match_text(e),
                    owner: e.owner.clone().unwrap_or_default(),
                    expires: e.expires.clone().unwrap_or_default(),
                    reason: e.reason.clone().unwrap_or_default(),
                    state,
                    days_left,
                }
            })
            .collect();
        let group = |l: &ListedExemption| match l.state {
            "expires-soon" => 0,
            "active" => 1,
            _ => 2,
        };
        out.sort_by_key(|l| (group(l), l.days_left));
        out
    }
}

/// An exemption as the record names it: rule, owner, end, reason.
fn describe(i: usize, e: &Exemption) -> String {
    format!(
        "exemptions.rules[{i}] (owner {}, until {}): {}",
        e.owner.as_deref().unwrap_or("?"),
        e.expires.as_deref().unwrap_or("?"),
        e.reason.as_deref().unwrap_or("?")
    )
}

/// What an exemption matches, in words.
fn match_text(e: &Exemption) -> String {
    let m = &e.when;
    let mut parts = Vec::new();
    if !m.arns.is_empty() {
        parts.push(format!("arns: {}", m.arns.join(", ")));
    }
    if !m.accounts.is_empty() {
        parts.push(format!("accounts: {}", m.accounts.join(", ")));
    }
    if !m.tags.is_empty() {
        let tags: Vec<String> = m.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
        parts.push(format!("tags: {}", tags.join(", ")));
    }
    parts.join("; ")
}

/// The checks serde cannot make on one exemption: something to match, and its reason, owner
/// and end. Each error names its key (`exemptions.rules[0].owner`), so `reflex policy validate`
/// gives its line.
pub(super) fn check_exemption(key: &str, e: &Exemption) -> Vec<PolicyError> {
    let mut out = Vec::new();
    let invalid = |k: String, message: String| PolicyError::Invalid { key: k, message };
    let m = &e.when;
    if m.arns.is_empty() && m.accounts.is_empty() && m.tags.is_empty() {
        out.push(invalid(
            format!("{key}.match"),
            "names no arns, accounts or tags".into(),
        ));
    }
    out.extend(super::document::check_patterns(&format!("{key}.match.arns"), &m.arns).err());
    for (j, a) in m.accounts.iter().enumerate() {
        out.extend(super::document::check_account(&format!("{key}.match.accounts[{j}]"), a).err());
    }
    let blank = |v: &Option<String>| v.as_deref().is_none_or(|s| s.trim().is_empty());
    if blank(&e.reason) {
        out.push(invalid(
            format!("{key}.reason"),
            "missing: every exemption says why".into(),
        ));
    }
    if blank(&e.owner) {
        out.push(invalid(
            format!("{key}.owner"),
            "missing: every exemption names who answers for it".into(),
        ));
    }
    match e.expires.as_deref() {
        None => out.push(invalid(
            format!("{key}.expires"),
            "missing: every exemption ends (YYYY-MM-DD, its last day)".into(),
        )),
        Some(d) if parse_date(d).is_none() => out.push(invalid(
            format!("{key}.expires"),
            format!("{d:?} is not a date YYYY-MM-DD"),
        )),
        Some(_) => {}
    }
    out
}
