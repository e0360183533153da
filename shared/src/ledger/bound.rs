//! Bounds on what one outcome record stores, so that DynamoDB can always take it. Pure: no AWS
//! types.
//!
//! DynamoDB refuses, with a `ValidationException` on every try, an item over 400 KB and a key
//! over its limit. A record refused like that is never written, and its finding is retried for
//! ever. A record grows with every takeover and re-run (`history`, `errors`), and it holds text
//! from outside verbatim (the finding's title, error messages). So the ledger checks the keys of
//! every record it writes ([`check_keys`]) and bounds its contents ([`bound`]):
//! - text that only informs (details, error messages, the finding's title…) is cut to a limit,
//!   with a visible marker, `…[truncated N bytes]`;
//! - `history` and `errors` keep their oldest entry and the newest ones; `trimmed` counts the
//!   entries dropped;
//! - if the item is still over [`ITEM_BUDGET`], optional parts go whole, in a fixed order
//!   ([`OMISSIONS`]), each named in `trimmed.omitted`.
//!
//! What the pipeline acts or undoes by is never cut: the finding's identity, resources and
//! details, the pre- and post-state, the steps and their parameters. If those alone do not fit,
//! [`bound`] fails, and the record must be replaced by one that can be stored.

use super::record::{Action, ActionResult, OutcomeRecord};
use crate::finding::{Finding, FindingKind};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// DynamoDB's item size limit.
pub const ITEM_LIMIT: usize = 400 * 1024;
/// The size a bounded record stays within: below [`ITEM_LIMIT`], leaving room for the estimate's
/// error and for what updates add to an item (`deliveries`, `securityhub`).
pub const ITEM_BUDGET: usize = 350 * 1000;
/// The record's `detail`, each history entry's, and the Security Hub feedback's.
pub const DETAIL_MAX: usize = 4 * 1024;
/// Each error message: `errors[].message` and a failed action's `result`.
pub const ERROR_TEXT_MAX: usize = 2 * 1024;
/// Text that only names or describes: the finding's title, its `observed_at`, `inactive` and
/// `requested_by`, an unrecognised kind's description, `approved_by`, the rollback's `by`.
pub const TEXT_MAX: usize = 1024;
/// Entries kept in `errors`: the oldest and the newest.
pub const ERRORS_KEPT: usize = 20;
/// Entries kept in `history`: the oldest (the first outcome) and the newest.
pub const HISTORY_KEPT: usize = 10;
/// DynamoDB's limit for a partition key value: the table's and each index's.
pub const PARTITION_KEY_MAX: usize = 2048;
/// DynamoDB's limit for a sort key value.
pub const SORT_KEY_MAX: usize = 1024;

// Compaction keeps the oldest entry and at least one newest; the budget leaves headroom.
const _: () = assert!(ERRORS_KEPT >= 2 && HISTORY_KEPT >= 2 && ITEM_BUDGET < ITEM_LIMIT);

/// What [`bound`] left out of a record to fit one item.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trimmed {
    /// Earlier outcomes dropped from `history` (between its oldest entry and the newest).
    #[serde(default)]
    pub history_dropped: u32,
    /// Transient errors dropped from `errors` (between the oldest and the newest).
    #[serde(default)]
    pub errors_dropped: u32,
    /// Parts omitted whole because the item was still too large, in the order of
    /// [`OMISSIONS`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub omitted: Vec<String>,
}

/// Why a record cannot be stored even bounded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BoundError {
    #[error(
        "the record is {bytes} bytes without its optional parts, over the {budget}-byte budget \
         of one DynamoDB item: its finding, pre- or post-state or steps are too large to store"
    )]
    TooLarge { bytes: usize, budget: usize },
    #[error("the record cannot be measured: {0}")]
    Unmeasurable(String),
}

/// A key DynamoDB would refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("{attribute} is {bytes} bytes, over DynamoDB's {max}-byte limit for {role}")]
    TooLong {
        attribute: &'static str,
        role: &'static str,
        bytes: usize,
        max: usize,
    },
    #[error("{attribute} is empty, and DynamoDB takes no empty value for {role}")]
    Empty {
        attribute: &'static str,
        role: &'static str,
    },
}

/// Whether DynamoDB takes the record's keys: `record_id` (the table's key), `resource_arn` (the
/// by-resource index's partition key, and part of the key a rollback's suppression of the
/// resource is read and written under), `remediation` (the by-time index's partition key) and
/// `created_at` (both indexes' sort key).
pub fn check_keys(record: &OutcomeRecord) -> Result<(), KeyError> {
    let mut keys = vec![
        (
            "record_id",
            "the table's key",
            record.record_id.len(),
            PARTITION_KEY_MAX,
        ),
        (
            "remediation",
            "the by-time index's partition key",
            record.remediation.len(),
            PARTITION_KEY_MAX,
        ),
        (
            "created_at",
            "the indexes' sort key",
            record.created_at.len(),
            SORT_KEY_MAX,
        ),
    ];
    if let Some(arn) = &record.resource_arn {
        keys.push((
            "resource_arn",
            "the by-resource index's partition key",
            arn.len(),
            PARTITION_KEY_MAX,
        ));
        keys.push((
            "resource_arn",
            "the key of its suppression (suppress#<remediation>#<resource ARN>)",
            super::Suppression::key(&record.remediation, arn).len(),
            PARTITION_KEY_MAX,
        ));
    }
    for (attribute, role, bytes, max) in keys {
        if bytes == 0 {
            return Err(KeyError::Empty { attribute, role });
        }
        if bytes > max {
            return Err(KeyError::TooLong {
                attribute,
                role,
                bytes,
                max,
            });
        }
    }
    Ok(())
}

/// Bound `record` to fit one DynamoDB item (see the module's documentation). Idempotent: a
/// bounded record is left as it is. On error the record is bounded as far as it could be, and
/// is still too large.
pub fn bound(record: &mut OutcomeRecord) -> Result<(), BoundError> {
    cut_texts(record);
    let dropped = compact(&mut record.history, HISTORY_KEPT);
    trimmed(record, |t| t.history_dropped += dropped);
    let dropped = compact(&mut record.errors, ERRORS_KEPT);
    trimmed(record, |t| t.errors_dropped += dropped);
    for (name, omit) in OMISSIONS {
        if item_size(record)? <= ITEM_BUDGET {
            return Ok(());
        }
        if omit(record) {
            trimmed(record, |t| {
                if !t.omitted.iter().any(|o| o == name) {
                    t.omitted.push(name.to_string());
                }
            });
        }
    }
    match item_size(record)? {
        bytes if bytes <= ITEM_BUDGET => Ok(()),
        bytes => Err(BoundError::TooLarge {
            bytes,
            budget: ITEM_BUDGET,
        }),
    }
}

/// `text` cut to at most `max` bytes (for `max` of at least 32), on a character boundary, with
/// a marker saying how many bytes were cut: `…[truncated N bytes]`. Unchanged if it fits.
pub fn truncated(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    // The marker for the whole text is at least as long as the one for the part cut.
    let mut keep = max.saturating_sub(marker(text.len()).len());
    while !text.is_char_boundary(keep) {
        keep -= 1;
    }
    format!("{}{}", &text[..keep], marker(text.len() - keep))
}

fn marker(cut: usize) -> String {
    format!("…[truncated {cut} bytes]")
}

fn cut(text: &mut String, max: usize) {
    if text.len() > max {
        *text = truncated(text, max);
    }
}

fn cut_texts(r: &mut OutcomeRecord) {
    cut(&mut r.detail, DETAIL_MAX);
    if let Some(f) = &mut r.finding {
        cut_finding(f);
    }
    cut_results(&mut r.actions);
    for e in &mut r.errors {
        cut(&mut e.message, ERROR_TEXT_MAX);
    }
    for h in &mut r.history {
        cut(&mut h.detail, DETAIL_MAX);
        cut_results(&mut h.actions);
    }
    if let Some(feedback) = &mut r.securityhub {
        cut(&mut feedback.detail, DETAIL_MAX);
    }
    if let Some(by) = &mut r.approved_by {
        cut(by, TEXT_MAX);
    }
    if let Some(rollback) = &mut r.rollback {
        cut(&mut rollback.by, TEXT_MAX);
        cut_results(&mut rollback.actions);
    }
}

/// Only the text that describes: the finding's id, generation, kind, resources and details are
/// what its record key, approval and rollback are derived from.
fn cut_finding(f: &mut Finding) {
    cut(&mut f.title, TEXT_MAX);
    for text in [&mut f.observed_at, &mut f.inactive, &mut f.requested_by]
        .into_iter()
        .flatten()
    {
        cut(text, TEXT_MAX);
    }
    if let FindingKind::Unrecognised(description) = &mut f.kind {
        cut(description, TEXT_MAX);
    }
}

/// A failed step's error text; never the step, its API or its parameters.
fn cut_results(actions: &mut [Action]) {
    for a in actions {
        if let ActionResult::Failed(error) = &mut a.result {
            cut(error, ERROR_TEXT_MAX);
        }
    }
}

/// Keep the oldest entry and the newest `kept - 1`; the number dropped.
fn compact<T>(list: &mut Vec<T>, kept: usize) -> u32 {
    if list.len() <= kept {
        return 0;
    }
    let dropped = list.len() - kept;
    list.drain(1..=dropped);
    u32::try_from(dropped).unwrap_or(u32::MAX)
}

/// Change `record.trimmed`, kept absent while nothing was left out.
fn trimmed(record: &mut OutcomeRecord, change: impl FnOnce(&mut Trimmed)) {
    let mut t = record.trimmed.take().unwrap_or_default();
    change(&mut t);
    if t != Trimmed::default() {
        record.trimmed = Some(t);
    }
}

/// Leaves one part out of a record; whether there was anything to leave out.
pub type Omit = fn(&mut OutcomeRecord) -> bool;

/// The parts left out whole, by name, while the item is over budget: the earlier outcomes'
/// particulars first, the live record's finding, states and steps never.
pub const OMISSIONS: [(&str, Omit); 4] = [
    ("history pre/post states", omit_history_states),
    ("history actions", omit_history_actions),
    ("history", omit_history),
    ("errors", omit_errors),
];

fn omit_history_states(r: &mut OutcomeRecord) -> bool {
    let mut any = false;
    for h in &mut r.history {
        any |= h.pre_state.take().is_some() | h.post_state.take().is_some();
    }
    any
}

fn omit_history_actions(r: &mut OutcomeRecord) -> bool {
    let mut any = false;
    for h in &mut r.history {
        any |= !h.actions.is_empty();
        h.actions.clear();
    }
    any
}

fn omit_history(r: &mut OutcomeRecord) -> bool {
    let dropped = u32::try_from(std::mem::take(&mut r.history).len()).unwrap_or(u32::MAX);
    trimmed(r, |t| t.history_dropped += dropped);
    dropped > 0
}

fn omit_errors(r: &mut OutcomeRecord) -> bool {
    let dropped = u32::try_from(std::mem::take(&mut r.errors).len()).unwrap_or(u32::MAX);
    trimmed(r, |t| t.errors_dropped += dropped);
    dropped > 0
}

/// The record's size as DynamoDB counts an item: attribute names and values, 3 bytes for each
/// map or list and 1 for each of its elements. Measured on the record's serde form, the data
/// model serde_dynamo writes; a number counts as its text plus one byte, never less than
/// DynamoDB's count.
pub fn item_size(record: &OutcomeRecord) -> Result<usize, BoundError> {
    let value =
        serde_json::to_value(record).map_err(|e| BoundError::Unmeasurable(e.to_string()))?;
    Ok(match &value {
        // The item itself is no map attribute: its names and values only.
        Value::Object(attributes) => attributes.iter().map(|(k, v)| k.len() + size(v)).sum(),
        other => size(other),
    })
}

fn size(value: &Value) -> usize {
    match value {
        Value::Null | Value::Bool(_) => 1,
        Value::Number(n) => n.to_string().len() + 1,
        Value::String(s) => s.len(),
        Value::Array(items) => 3 + items.iter().map(|v| 1 + size(v)).sum::<usize>(),
        Value::Object(map) => {
            3 + map
                .iter()
                .map(|(k, v)| 1 + k.len() + size(v))
                .sum::<usize>()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::{FindingDetails, Resource, ResourceKind, Severity, Source};
    use crate::ledger::{AttemptError, Feedback, FeedbackResult, PriorOutcome, RecordMeta};
    use crate::status::{Reason, Status};
    use serde_json::json;

    const ARN: &str = "arn:aws:s3:::reflex-bound";

    fn finding() -> Finding {
        Finding {
            source: Source::Securityhub,
            id: "arn:aws:securityhub:us-east-1:123456789012:finding/f-1".into(),
            kind: FindingKind::Control("S3.8".into()),
            title: "S3 general purpose buckets should block public access".into(),
            severity: Severity::from_normalized(70),
            product_arn: "arn:aws:securityhub:us-east-1::product/aws/securityhub".into(),
            account: "123456789012".into(),
            region: "us-east-1".into(),
            observed_at: Some("2026-11-20T00:00:00.000Z".into()),
            generation: "2026-11-20T00:00:00.000Z".into(),
            resources: vec![Resource {
                kind: ResourceKind::S3Bucket,
                id: "reflex-bound".into(),
                arn: Some(ARN.into()),
            }],
            details: FindingDetails::default(),
            inactive: None,
            intent: None,
            securityhub_finding: None,
            sample: false,
            requested_by: None,
            requested_at: None,
        }
    }

    fn record() -> OutcomeRecord {
        let meta = RecordMeta {
            function_version: "1".into(),
            request_id: "req".into(),
            event_digest: "0".repeat(64),
            claim_token: "token".into(),
        };
        let mut r = OutcomeRecord::new(
            "s3-block-public-access#0123456789abcdef0123456789abcdef".into(),
            "s3-block-public-access",
            &meta,
            "2026-11-20T00:00:00.000Z",
        );
        r.finding = Some(finding());
        r.resource_arn = Some(ARN.into());
        r.pre_state = Some(json!({"public_access_block": null}));
        let mut step =
            Action::planned("s3:PutPublicAccessBlock", json!({"Bucket": "reflex-bound"}));
        step.step = Some(json!({"block_all": true}));
        r.actions = vec![step];
        r
    }

    fn prior(i: usize, state_bytes: usize) -> PriorOutcome {
        PriorOutcome {
            status: Status::Failed,
            reason: Reason::ActionError,
            detail: format!("outcome {i}"),
            attempt: u32::try_from(i).unwrap(),
            request_id: format!("req-{i}"),
            updated_at: "2026-11-20T00:00:00.000Z".into(),
            actions: vec![Action::planned("s3:PutPublicAccessBlock", json!({}))],
            pre_state: Some(json!("p".repeat(state_bytes))),
            post_state: Some(json!("q".repeat(state_bytes))),
            resource_identity: None,
        }
    }

    fn error(i: usize, bytes: usize) -> AttemptError {
        AttemptError {
            attempt: u32::try_from(i).unwrap(),
            step: "act".into(),
            message: format!("error {i}: {}", "e".repeat(bytes)),
            at: "2026-11-20T00:00:00.000Z".into(),
        }
    }

    fn is_marked(text: &str, max: usize) -> bool {
        text.len() <= max && text.contains("…[truncated ") && text.ends_with(" bytes]")
    }

    #[test]
    fn truncation_marks_what_it_cut_and_keeps_the_start() {
        // (text, max, expected): None = cut with a marker, within max.
        let long = "a".repeat(5000);
        let accents = "é".repeat(3000); // two bytes each: the cut must fall between them
        let cases: [(&str, usize, Option<&str>); 5] = [
            ("", 100, Some("")),
            ("short", 100, Some("short")),
            (&long[..100], 100, Some(&long[..100])),
            (&long, 1024, None),
            (&accents, 1025, None),
        ];
        for (text, max, expected) in cases {
            let out = truncated(text, max);
            match expected {
                Some(same) => assert_eq!(out, same, "{max}"),
                None => {
                    assert!(is_marked(&out, max), "{out}");
                    let kept = out.find("…[truncated").unwrap();
                    assert!(text.starts_with(&out[..kept]));
                    assert!(out.ends_with(&format!("[truncated {} bytes]", text.len() - kept)));
                    // Bounding again changes nothing.
                    assert_eq!(truncated(&out, max), out);
                }
            }
        }
    }

    #[test]
    fn compaction_keeps_the_oldest_and_the_newest() {
        // (entries, kept, entries left, dropped)
        for (len, kept, left, dropped) in [
            (0, 10, 0, 0),
            (10, 10, 10, 0),
            (11, 10, 10, 1),
            (200, 10, 10, 190),
            (3, 2, 2, 1),
        ] {
            let mut list: Vec<usize> = (0..len).collect();
            assert_eq!(compact(&mut list, kept), dropped, "{len}/{kept}");
            assert_eq!(list.len(), left);
            if len > kept {
                assert_eq!(list[0], 0, "the oldest stays");
                let newest: Vec<usize> = (len - (kept - 1)..len).collect();
                assert_eq!(&list[1..], &newest[..], "the newest stay, in order");
            }
        }
    }

    #[test]
    fn item_size_counts_as_dynamodb_does() {
        // map 3 + ("a": 1 + 1 + 2) + ("b": 1 + 1 + list 3 + (1 + "1"+1) + (1 + 1)) = 17
        assert_eq!(size(&json!({"a": "xy", "b": [1, true]})), 17);
        assert_eq!(size(&json!([])), 3);
        assert_eq!(size(&json!("ü")), 2, "UTF-8 bytes");
    }

    type Build = fn(&mut OutcomeRecord);
    type Case = (&'static str, Build, fn(&OutcomeRecord));

    #[test]
    fn bound_caps_each_part() {
        let cases: Vec<Case> = vec![
            (
                "a small record is left as it is",
                |_| {},
                |r| assert_eq!(*r, record()),
            ),
            (
                "detail",
                |r| r.detail = "d".repeat(100_000),
                |r| assert!(is_marked(&r.detail, DETAIL_MAX)),
            ),
            (
                "the finding's descriptive text, not its identity or resources",
                |r| {
                    let f = r.finding.as_mut().unwrap();
                    f.title = "t".repeat(1_000_000);
                    f.inactive = Some("i".repeat(5000));
                    f.requested_by = Some("b".repeat(5000));
                    f.kind = FindingKind::Unrecognised("k".repeat(5000));
                    f.id = "x".repeat(5000);
                    f.resources[0].id = "y".repeat(5000);
                },
                |r| {
                    let f = r.finding.as_ref().unwrap();
                    assert!(is_marked(&f.title, TEXT_MAX));
                    assert!(is_marked(f.inactive.as_deref().unwrap(), TEXT_MAX));
                    assert!(is_marked(f.requested_by.as_deref().unwrap(), TEXT_MAX));
                    assert!(is_marked(f.kind.name(), TEXT_MAX));
                    assert_eq!(f.id, "x".repeat(5000));
                    assert_eq!(f.resources[0].id, "y".repeat(5000));
                },
            ),
            (
                "a failed step's error text, not the step",
                |r| {
                    r.actions[0].result = ActionResult::Failed("f".repeat(50_000));
                    r.history.push(prior(0, 10));
                    r.history[0].actions[0].result = ActionResult::Failed("g".repeat(50_000));
                },
                |r| {
                    assert!(is_marked(r.actions[0].result.as_str(), ERROR_TEXT_MAX));
                    assert_eq!(r.actions[0].step, Some(json!({"block_all": true})));
                    assert_eq!(r.actions[0].parameters, json!({"Bucket": "reflex-bound"}));
                    assert!(is_marked(
                        r.history[0].actions[0].result.as_str(),
                        ERROR_TEXT_MAX
                    ));
                },
            ),
            (
                "feedback, approver and rollback text",
                |r| {
                    r.securityhub = Some(Feedback {
                        result: FeedbackResult::Failed,
                        workflow_status: None,
                        detail: "s".repeat(10_000),
                    });
                    r.approved_by = Some("a".repeat(10_000));
                },
                |r| {
                    assert!(is_marked(
                        &r.securityhub.as_ref().unwrap().detail,
                        DETAIL_MAX
                    ));
                    assert!(is_marked(r.approved_by.as_deref().unwrap(), TEXT_MAX));
                },
            ),
            (
                "200 earlier outcomes: the first and the newest 9, 190 counted",
                |r| r.history = (0..200).map(|i| prior(i, 10)).collect(),
                |r| {
                    let details: Vec<&str> = r.history.iter().map(|h| h.detail.as_str()).collect();
                    assert_eq!(details[0], "outcome 0");
                    assert_eq!(details[1], "outcome 191");
                    assert_eq!(details[9], "outcome 199");
                    assert_eq!(details.len(), HISTORY_KEPT);
                    let t = r.trimmed.as_ref().unwrap();
                    assert_eq!((t.history_dropped, t.errors_dropped), (190, 0));
                    assert!(t.omitted.is_empty(), "{t:?}");
                    assert!(r.history.iter().all(|h| h.pre_state.is_some()));
                },
            ),
            (
                "a count already stored grows",
                |r| {
                    r.history = (0..11).map(|i| prior(i, 10)).collect();
                    r.trimmed = Some(Trimmed {
                        history_dropped: 5,
                        ..Default::default()
                    });
                },
                |r| assert_eq!(r.trimmed.as_ref().unwrap().history_dropped, 6),
            ),
            (
                "50 long errors: 20 kept, each cut, 30 counted",
                |r| r.errors = (0..50).map(|i| error(i, 100_000)).collect(),
                |r| {
                    assert_eq!(r.errors.len(), ERRORS_KEPT);
                    assert!(r.errors[0].message.starts_with("error 0:"));
                    assert!(r.errors[19].message.starts_with("error 49:"));
                    assert!(r
                        .errors
                        .iter()
                        .all(|e| is_marked(&e.message, ERROR_TEXT_MAX)));
                    assert_eq!(r.trimmed.as_ref().unwrap().errors_dropped, 30);
                },
            ),
            (
                "large earlier states go first, the live pre-state stays",
                |r| {
                    r.history = (0..3).map(|i| prior(i, 100_000)).collect();
                    r.pre_state = Some(json!("s".repeat(100_000)));
                },
                |r| {
                    assert_eq!(r.history.len(), 3);
                    assert!(r
                        .history
                        .iter()
                        .all(|h| h.pre_state.is_none() && h.post_state.is_none()));
                    assert_eq!(r.history[0].actions.len(), 1, "only as much as needed goes");
                    assert_eq!(r.pre_state, Some(json!("s".repeat(100_000))));
                    let t = r.trimmed.as_ref().unwrap();
                    assert_eq!(t.omitted, vec!["history pre/post states"]);
                    assert_eq!(t.history_dropped, 0);
                },
            ),
            (
                "then the earlier outcomes' actions, then the history, then the errors",
                |r| {
                    let mut h = prior(0, 0);
                    h.actions = (0..100)
                        .map(|_| Action::planned("s3:Put", json!("a".repeat(2000))))
                        .collect();
                    r.history = vec![h.clone(), h];
                    r.history[1].detail = "z".repeat(DETAIL_MAX);
                    r.history.extend((0..8).map(|i| {
                        let mut p = prior(i, 0);
                        p.detail = "z".repeat(DETAIL_MAX);
                        p
                    }));
                    r.errors = (0..20).map(|i| error(i, 2000)).collect();
                    r.pre_state = Some(json!("s".repeat(ITEM_BUDGET - 30_000)));
                },
                |r| {
                    let t = r.trimmed.as_ref().unwrap();
                    assert_eq!(
                        t.omitted,
                        vec![
                            "history pre/post states",
                            "history actions",
                            "history",
                            "errors"
                        ]
                    );
                    assert_eq!((t.history_dropped, t.errors_dropped), (10, 20));
                    assert!(r.history.is_empty() && r.errors.is_empty());
                    assert_eq!(r.actions.len(), 1);
                    assert!(item_size(r).unwrap() <= ITEM_BUDGET);
                },
            ),
        ];
        for (name, build, check) in cases {
            let mut r = record();
            build(&mut r);
            bound(&mut r).unwrap_or_else(|e| panic!("{name}: {e}"));
            check(&r);
            assert!(item_size(&r).unwrap() <= ITEM_BUDGET, "{name}");
            let once = r.clone();
            bound(&mut r).unwrap();
            assert_eq!(r, once, "{name}: bounding again changes nothing");
        }
    }

    #[test]
    fn what_the_pipeline_acts_by_is_never_cut() {
        let cases: Vec<(&str, Build)> = vec![
            ("pre-state", |r| {
                r.pre_state = Some(json!("p".repeat(ITEM_BUDGET)))
            }),
            ("post-state", |r| {
                r.post_state = Some(json!("p".repeat(ITEM_BUDGET)))
            }),
            ("a step", |r| {
                r.actions[0].step = Some(json!("p".repeat(ITEM_BUDGET)))
            }),
            ("the finding's resources", |r| {
                r.finding.as_mut().unwrap().resources[0].id = "p".repeat(ITEM_BUDGET)
            }),
        ];
        for (name, build) in cases {
            let mut r = record();
            build(&mut r);
            r.history = (0..50).map(|i| prior(i, 1000)).collect();
            let essential = (
                r.pre_state.clone(),
                r.post_state.clone(),
                r.actions.clone(),
                r.finding.clone().unwrap().resources,
            );
            match bound(&mut r) {
                Err(BoundError::TooLarge { bytes, budget }) => {
                    assert!(bytes > budget, "{name}");
                    assert_eq!(budget, ITEM_BUDGET);
                }
                other => panic!("{name}: {other:?}"),
            }
            assert_eq!(
                essential,
                (
                    r.pre_state.clone(),
                    r.post_state.clone(),
                    r.actions.clone(),
                    r.finding.clone().unwrap().resources
                ),
                "{name}"
            );
        }
    }

    #[test]
    fn keys_within_dynamodb_limits() {
        // (what, change, expected failing attribute and limit)
        type KeyCase = (&'static str, Build, Option<(&'static str, usize)>);
        let cases: Vec<KeyCase> = vec![
            ("a normal record", |_| {}, None),
            (
                "no resource (a rejected event)",
                |r| r.resource_arn = None,
                None,
            ),
            (
                "record_id at the limit",
                |r| r.record_id = "r".repeat(PARTITION_KEY_MAX),
                None,
            ),
            (
                "record_id over the limit",
                |r| r.record_id = "r".repeat(PARTITION_KEY_MAX + 1),
                Some(("record_id", PARTITION_KEY_MAX)),
            ),
            (
                "a 3 KB resource ARN",
                |r| r.resource_arn = Some(format!("arn:aws:s3:::{}", "b".repeat(3000))),
                Some(("resource_arn", PARTITION_KEY_MAX)),
            ),
            (
                "a resource ARN that fits, but not in its suppression's key",
                |r| r.resource_arn = Some("b".repeat(PARTITION_KEY_MAX - 10)),
                Some(("resource_arn", PARTITION_KEY_MAX)),
            ),
            (
                "an empty resource ARN",
                |r| r.resource_arn = Some(String::new()),
                Some(("resource_arn", 0)),
            ),
            (
                "remediation over the limit",
                |r| r.remediation = "m".repeat(PARTITION_KEY_MAX + 1),
                Some(("remediation", PARTITION_KEY_MAX)),
            ),
            (
                "created_at over the sort key limit",
                |r| r.created_at = "c".repeat(SORT_KEY_MAX + 1),
                Some(("created_at", SORT_KEY_MAX)),
            ),
            (
                "an empty record_id",
                |r| r.record_id = String::new(),
                Some(("record_id", 0)),
            ),
        ];
        for (name, change, expected) in cases {
            let mut r = record();
            change(&mut r);
            let got = check_keys(&r).map_err(|e| match e {
                KeyError::TooLong { attribute, max, .. } => (attribute, max),
                KeyError::Empty { attribute, .. } => (attribute, 0),
            });
            assert_eq!(got.err(), expected, "{name}");
        }
        let mut long = record();
        long.resource_arn = Some("b".repeat(3000));
        assert!(check_keys(&long)
            .unwrap_err()
            .to_string()
            .starts_with("resource_arn is 3000 bytes, over DynamoDB's 2048-byte limit"));
    }
}
