//! Reading the outcome table for `reflex audit`: by resource, or by remediation and time,
//! through the table's indexes (never a scan).

use crate::functions;
use chrono::{DateTime, Duration, NaiveDate, SecondsFormat, Utc};
use reflex_shared::ledger::{Ledger, LedgerError, Lookup, OutcomeRecord};
use reflex_shared::status::Status;

#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub status: Option<Status>,
    pub resource: Option<String>,
    /// RFC 3339, inclusive.
    pub since: Option<String>,
    /// Only records still in progress whose lease ran out before this time (epoch seconds).
    pub stuck_at: Option<i64>,
    /// Only records whose finding or target names this access key id (searched through every
    /// function's records: a key is not a resource ARN the by-resource index knows).
    pub access_key: Option<String>,
}

/// What `audit --resource` searches, from what the operator typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResourceQuery {
    /// Records of this resource ARN (the by-resource index).
    Arn(String),
    /// Records whose finding or target names this access key id.
    AccessKey(String),
}

impl std::fmt::Display for ResourceQuery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ResourceQuery::Arn(arn) => write!(f, "resource {arn}"),
            ResourceQuery::AccessKey(k) => write!(
                f,
                "records whose finding or target names access key {k} (their resource is the key's user)"
            ),
        }
    }
}

/// Where a name is resolved: the region and account of the operator's credentials (the
/// account is asked of STS only for an EC2 id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    pub region: String,
    pub account: Option<String>,
}

/// The EC2 resource type of an id (`i-`, `sg-` or `acl-` and 8 or 17 hex digits, as EC2 makes
/// them); `None` for anything else (a bucket named `sg-logs` is a bucket).
fn ec2_kind(t: &str) -> Option<&'static str> {
    let (kind, hex) = [
        ("i-", "instance"),
        ("sg-", "security-group"),
        ("acl-", "network-acl"),
    ]
    .iter()
    .find_map(|(prefix, kind)| t.strip_prefix(prefix).map(|hex| (*kind, hex)))?;
    let is_id = matches!(hex.len(), 8 | 17)
        && hex
            .chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c));
    is_id.then_some(kind)
}

/// Whether resolving `input` needs the account (an EC2 id: its ARN names the account). A
/// bucket's ARN needs only the region (its partition).
pub fn needs_account(input: &str) -> bool {
    let t = input.trim();
    !t.starts_with("arn:") && ec2_kind(t).is_some()
}

fn is_access_key(t: &str) -> bool {
    (t.starts_with("AKIA") || t.starts_with("ASIA"))
        && t.len() >= 16
        && t.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

/// An ARN, or a name: an ARN as it is; `i-…` an EC2 instance, `sg-…` a security group,
/// `acl-…` a network ACL (in `place`); `AKIA…`/`ASIA…` an access key (searched by the records
/// that name it); anything else a bucket (`arn:aws:s3:::NAME`).
pub fn resolve_resource(input: &str, place: Option<&Place>) -> ResourceQuery {
    let t = input.trim();
    if t.starts_with("arn:") {
        return ResourceQuery::Arn(t.to_string());
    }
    if is_access_key(t) {
        return ResourceQuery::AccessKey(t.to_string());
    }
    let partition = place.map_or("aws", |p| {
        reflex_shared::finding::partition_for_region(&p.region)
    });
    if let (
        Some(kind),
        Some(Place {
            region,
            account: Some(account),
        }),
    ) = (ec2_kind(t), place)
    {
        return ResourceQuery::Arn(format!("arn:{partition}:ec2:{region}:{account}:{kind}/{t}"));
    }
    ResourceQuery::Arn(format!("arn:{partition}:s3:::{t}"))
}

/// Whether a JSON value holds `text` as a whole string anywhere in it.
fn names(v: &serde_json::Value, text: &str) -> bool {
    match v {
        serde_json::Value::String(s) => s == text,
        serde_json::Value::Array(a) => a.iter().any(|v| names(v, text)),
        serde_json::Value::Object(o) => o.values().any(|v| names(v, text)),
        _ => false,
    }
}

/// Whether a record's finding or target names the access key `key`.
pub fn names_access_key(r: &OutcomeRecord, key: &str) -> bool {
    let finding = r
        .finding
        .as_ref()
        .and_then(|f| serde_json::to_value(f).ok())
        .is_some_and(|f| names(&f, key));
    finding || r.target.as_ref().is_some_and(|t| names(t, key))
}

/// The index queries that answer `filter`, never a scan: one resource's partition when a
/// resource is named; else the status's partition (a stuck record is `claimed` or `acting`);
/// else every remediation's. `--since` narrows each to a range of its sort key, `created_at`.
pub fn lookups(filter: &Filter) -> Vec<Lookup<'_>> {
    if let (Some(arn), None) = (&filter.resource, &filter.access_key) {
        return vec![Lookup::Resource(arn)];
    }
    if let Some(status) = filter.status {
        return vec![Lookup::Status(status)];
    }
    if filter.stuck_at.is_some() {
        return vec![
            Lookup::Status(Status::Claimed),
            Lookup::Status(Status::Acting),
        ];
    }
    functions::specs()
        .map(|s| Lookup::Remediation(s.name))
        .collect()
}

/// Records matching `filter`, oldest first.
pub async fn records(ledger: &Ledger, filter: &Filter) -> Result<Vec<OutcomeRecord>, LedgerError> {
    let since = filter.since.as_deref();
    let queries = lookups(filter).into_iter().map(|l| ledger.query(l, since));
    let mut records = Vec::new();
    for part in futures::future::try_join_all(queries).await? {
        records.extend(part);
    }
    if let Some(status) = filter.status {
        records.retain(|r| r.status == status);
    }
    if let Some(key) = &filter.access_key {
        records.retain(|r| names_access_key(r, key));
    }
    if let Some(now) = filter.stuck_at {
        records.retain(|r| is_stuck(r, now));
    }
    records.sort_by(|a, b| {
        a.created_at
            .cmp(&b.created_at)
            .then(a.record_id.cmp(&b.record_id))
    });
    Ok(records)
}

/// The HTML report's title: what was asked for, so a saved page says what it covers.
pub fn title(filter: &Filter) -> String {
    let mut scope = Vec::new();
    if let Some(s) = filter.status {
        scope.push(format!("status {s}"));
    }
    if let Some(r) = &filter.resource {
        scope.push(format!("resource {r}"));
    }
    if let Some(k) = &filter.access_key {
        scope.push(format!("access key {k}"));
    }
    if let Some(t) = &filter.since {
        scope.push(format!("since {t}"));
    }
    if filter.stuck_at.is_some() {
        scope.push("stuck".into());
    }
    match scope.is_empty() {
        true => "Reflex audit: every outcome record".into(),
        false => format!("Reflex audit: outcome records, {}", scope.join(", ")),
    }
}

/// A record some invocation claimed and left: still in progress, its lease run out.
pub fn is_stuck(r: &OutcomeRecord, now_epoch: i64) -> bool {
    r.status.in_progress() && r.lease_expires_at.is_some_and(|t| t <= now_epoch)
}

/// The longest `--since` duration: a century.
const MAX_SINCE_DAYS: i64 = 36_500;

/// A duration written `90m`, `24h` or `7d`, from 0 up to a century. `None` when `text` is not
/// of that form at all; `Some(Err)` when it is, but out of range.
pub fn parse_duration(text: &str) -> Option<Result<Duration, String>> {
    let t = text.trim();
    let (n, unit) = t.char_indices().last().map(|(i, c)| (&t[..i], c))?;
    let n = n.parse::<i64>().ok()?;
    let per_day = match unit {
        'm' => 24 * 60,
        'h' => 24,
        'd' => 1,
        _ => return None,
    };
    let max = MAX_SINCE_DAYS * per_day;
    let d = match unit {
        'm' => Duration::try_minutes(n),
        'h' => Duration::try_hours(n),
        _ => Duration::try_days(n),
    };
    Some(match d {
        Some(d) if (0..=max).contains(&n) => Ok(d),
        _ => Err(format!(
            "{text:?}: a duration must be from 0 to {max}{unit} ({MAX_SINCE_DAYS} days)"
        )),
    })
}

/// Live suppressions (rollbacks holding a resource back from its remediation), oldest first.
pub async fn suppressions(
    ledger: &Ledger,
    now: DateTime<Utc>,
) -> Result<Vec<reflex_shared::ledger::Suppression>, LedgerError> {
    let mut all = Vec::new();
    for s in functions::specs() {
        all.extend(ledger.suppressions(s.name).await?);
    }
    all.retain(|s| s.expires_at > now.timestamp());
    all.sort_by(|a, b| a.created_at.cmp(&b.created_at));
    Ok(all)
}

/// `--since` accepts a duration back from now (`90m`, `24h`, `7d`), a date (`2026-11-20`) or an
/// RFC 3339 time. The answer is the RFC 3339 form the table stores.
pub fn parse_since(text: &str, now: DateTime<Utc>) -> Result<String, String> {
    let t = text.trim();
    let fmt = |d: DateTime<Utc>| d.to_rfc3339_opts(SecondsFormat::Millis, true);
    if let Some(d) = parse_duration(t) {
        // Checked: a huge count is a clear error, not an overflow inside chrono.
        return match d.map(|d| now.checked_sub_signed(d)) {
            Ok(Some(t)) => Ok(fmt(t)),
            Ok(None) => Err(format!("--since {text:?}: too far back")),
            Err(e) => Err(format!("--since {e}")),
        };
    }
    if let Ok(date) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        if let Some(start) = date.and_hms_opt(0, 0, 0) {
            return Ok(fmt(start.and_utc()));
        }
    }
    DateTime::parse_from_rfc3339(t)
        .map(|d| fmt(d.with_timezone(&Utc)))
        .map_err(|_| format!("--since {text:?}: use a duration (90m, 24h, 7d), a date (2026-11-20) or an RFC 3339 time"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_names_resolve_to_what_audit_searches() {
        let place = Place {
            region: "eu-west-1".into(),
            account: Some("111122223333".into()),
        };
        let arn = |s: &str| ResourceQuery::Arn(s.into());
        let cases = [
            (
                "arn:aws:s3:::my-bucket",
                Some(&place),
                arn("arn:aws:s3:::my-bucket"),
            ),
            ("my-bucket", Some(&place), arn("arn:aws:s3:::my-bucket")),
            (" my-bucket ", None, arn("arn:aws:s3:::my-bucket")),
            // A bucket whose name starts like an EC2 id is a bucket.
            ("sg-logs", Some(&place), arn("arn:aws:s3:::sg-logs")),
            ("i-1", Some(&place), arn("arn:aws:s3:::i-1")),
            (
                "i-0abc1234def567890",
                Some(&place),
                arn("arn:aws:ec2:eu-west-1:111122223333:instance/i-0abc1234def567890"),
            ),
            (
                "sg-0123456789abcdef0",
                Some(&place),
                arn("arn:aws:ec2:eu-west-1:111122223333:security-group/sg-0123456789abcdef0"),
            ),
            (
                "acl-0123abcd",
                Some(&place),
                arn("arn:aws:ec2:eu-west-1:111122223333:network-acl/acl-0123abcd"),
            ),
            (
                "AKIAIOSFODNN7EXAMPLE",
                None,
                ResourceQuery::AccessKey("AKIAIOSFODNN7EXAMPLE".into()),
            ),
            (
                "ASIAIOSFODNN7EXAMPLE",
                None,
                ResourceQuery::AccessKey("ASIAIOSFODNN7EXAMPLE".into()),
            ),
            // Lower case is no access key id: a bucket may be named so.
            (
                "akiaiosfodnn7example",
                None,
                arn("arn:aws:s3:::akiaiosfodnn7example"),
            ),
            (
                "arn:aws:ec2:us-east-1:123456789012:instance/i-1",
                Some(&place),
                arn("arn:aws:ec2:us-east-1:123456789012:instance/i-1"),
            ),
        ];
        for (input, place, want) in cases {
            assert_eq!(resolve_resource(input, place), want, "{input}");
        }
        let cn = Place {
            region: "cn-north-1".into(),
            account: Some("111122223333".into()),
        };
        assert_eq!(
            resolve_resource("i-0abc1234", Some(&cn)),
            arn("arn:aws-cn:ec2:cn-north-1:111122223333:instance/i-0abc1234")
        );
        assert_eq!(
            resolve_resource("logs", Some(&cn)),
            arn("arn:aws-cn:s3:::logs")
        );
        assert!(
            needs_account("i-0abc1234")
                && needs_account("sg-0123456789abcdef0")
                && !needs_account("sg-logs")
                && !needs_account("bucket")
                && !needs_account("arn:aws:ec2:x")
        );
    }

    #[test]
    fn every_filter_is_answered_by_an_index() {
        let arn = "arn:aws:s3:::b".to_string();
        let filter = |status, resource: Option<&String>, stuck, key: Option<&str>| Filter {
            status,
            resource: resource.cloned(),
            since: Some("2026-12-01T00:00:00.000Z".into()),
            stuck_at: stuck,
            access_key: key.map(str::to_string),
        };
        let every: Vec<Lookup> = functions::specs()
            .map(|s| Lookup::Remediation(s.name))
            .collect();
        let failed = vec![Lookup::Status(Status::Failed)];
        let cases: Vec<(Filter, Vec<Lookup>)> = vec![
            (filter(None, None, None, None), every.clone()),
            (
                filter(Some(Status::Failed), Some(&arn), None, None),
                vec![Lookup::Resource(&arn)],
            ),
            (
                filter(Some(Status::Failed), None, None, None),
                failed.clone(),
            ),
            // An access key is no resource ARN: its records are found by status, or among all.
            (
                filter(Some(Status::Failed), None, None, Some("AKIA0")),
                failed.clone(),
            ),
            (filter(None, None, None, Some("AKIA0")), every.clone()),
            (
                filter(None, None, Some(1), None),
                vec![
                    Lookup::Status(Status::Claimed),
                    Lookup::Status(Status::Acting),
                ],
            ),
        ];
        assert_eq!(every.len(), functions::specs().count());
        for (f, want) in &cases {
            assert_eq!(&lookups(f), want, "{f:?}");
        }
    }

    #[test]
    fn since_forms() {
        let now = DateTime::parse_from_rfc3339("2026-11-26T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let cases = [
            ("90m", Ok("2026-11-26T10:30:00.000Z")),
            ("24h", Ok("2026-11-25T12:00:00.000Z")),
            ("7d", Ok("2026-11-19T12:00:00.000Z")),
            ("2026-11-20", Ok("2026-11-20T00:00:00.000Z")),
            ("2026-11-20T08:00:00+02:00", Ok("2026-11-20T06:00:00.000Z")),
            ("yesterday", Err(())),
            ("5y", Err(())),
            ("36500d", Ok("1926-12-21T12:00:00.000Z")),
            ("36501d", Err(())),
            ("100000000d", Err(())),
            ("9223372036854775807m", Err(())),
            ("-5d", Err(())),
        ];
        for (input, want) in cases {
            let got = parse_since(input, now);
            match want {
                Ok(w) => assert_eq!(got.as_deref(), Ok(w), "{input}"),
                Err(()) => assert!(got.is_err(), "{input}: {got:?}"),
            }
        }
    }
}
