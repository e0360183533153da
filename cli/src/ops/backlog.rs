//! `reflex backlog`: the findings that already exist in Security Hub (`GetFindings`, paginated),
//! each run through the function(s) whose triggers handle it, exactly as EventBridge would have
//! delivered it: wrapped in the "Security Hub Findings - Imported" envelope and handed to the
//! handler in process (as `reflex replay` does). A finding already handled is a duplicate (its
//! record id comes from the finding's id and generation), so a second backlog changes nothing.
//!
//! The findings are read exactly as Security Hub answers them: the raw JSON of each page (kept
//! by an interceptor) is what is wrapped, never a re-serialisation of the SDK's types, so every
//! field the parser reads arrives as AWS wrote it.

use crate::functions::{self, Function};
use aws_sdk_securityhub::config::interceptors::AfterDeserializationInterceptorContextRef;
use aws_sdk_securityhub::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_securityhub::types::{AwsSecurityFindingFilters, StringFilter, StringFilterComparison};
use comfy_table::{presets::UTF8_FULL_CONDENSED, ContentArrangement, Table};
use reflex_shared::config_rules::RuleIdentity;
use reflex_shared::finding::{self, Finding, FindingKind};
use reflex_shared::ledger;
use reflex_shared::pipeline::Handled;
use reflex_shared::remediation::Spec;
use reflex_shared::status::Status;
use reflex_shared::trigger::Trigger;
use reflex_shared::Setup;
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Which findings a backlog runs.
#[derive(Debug, Clone, Default)]
pub struct BacklogFilter {
    /// Only findings of this Security Hub control (`S3.8`).
    pub control: Option<String>,
    /// Only this function's findings, run only through it.
    pub function: Option<String>,
    /// At most this many findings (those some function handles).
    pub limit: Option<usize>,
    /// Say what would run; run nothing, write nothing.
    pub dry_run: bool,
}

/// Security Hub's largest page.
const PAGE_SIZE: i32 = 100;

/// What became of one finding in one function.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "result", rename_all = "kebab-case")]
pub enum LineResult {
    /// `--dry-run`: this function would run it.
    WouldRun,
    Outcome {
        outcome: Handled,
    },
    /// The invocation failed (Lambda would retry it): the record says why, if one was written.
    Error {
        error: String,
    },
    /// No function handles it (or not the one asked for).
    NotHandled {
        why: String,
    },
}

/// One progress line: a finding, the function it went to, and the result.
#[derive(Debug, Clone, Serialize)]
pub struct BacklogLine {
    /// 1-based, in the order Security Hub answered.
    pub index: usize,
    pub finding_id: String,
    /// `control S3.8`, `guardduty-type …`, `config-rule …`, `vulnerability CVE-…`.
    pub kind: String,
    pub resource: String,
    pub function: Option<String>,
    #[serde(flatten)]
    pub result: LineResult,
}

/// Per function, what the backlog did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Findings run (or, in a dry run, that would be).
    pub handled: usize,
    pub succeeded: usize,
    pub dry_run: usize,
    pub pending_approval: usize,
    pub skipped: usize,
    /// Findings already handled before: nothing was done again.
    pub duplicates: usize,
    /// Failed outcomes and failed invocations.
    pub failed: usize,
    /// Rejected, awaiting completion, rolled back.
    pub other: usize,
}

impl Counts {
    fn add(&mut self, result: &LineResult) {
        self.handled += 1;
        match result {
            LineResult::WouldRun | LineResult::NotHandled { .. } => {}
            LineResult::Error { .. } => self.failed += 1,
            LineResult::Outcome { outcome } if outcome.duplicate => self.duplicates += 1,
            LineResult::Outcome { outcome } => match outcome.status {
                Status::Succeeded => self.succeeded += 1,
                Status::DryRun => self.dry_run += 1,
                Status::PendingApproval => self.pending_approval += 1,
                Status::Skipped => self.skipped += 1,
                Status::Failed | Status::VerificationFailed => self.failed += 1,
                _ => self.other += 1,
            },
        }
    }
}

/// What a backlog did, in all.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BacklogSummary {
    /// Findings Security Hub answered.
    pub fetched: usize,
    /// Of those, not active, not failed, not `NEW`/`NOTIFIED`, of another account or another
    /// control: passed over without a line (Security Hub is asked to filter them, and the
    /// answer is checked, never trusted to be filtered).
    pub passed_over: usize,
    /// Findings no function handles (or not the one asked for).
    pub not_handled: usize,
    /// Failed invocations (not outcomes): Lambda would have retried them.
    pub errors: usize,
    pub dry_run: bool,
    pub functions: BTreeMap<String, Counts>,
}

/// Fetch the findings, route each, run it (or, in a dry run, say what would run), calling
/// `progress` once per finding and function.
pub async fn backlog(
    setup: &Setup,
    filter: &BacklogFilter,
    progress: &mut (dyn FnMut(&BacklogLine) + Send),
) -> anyhow::Result<BacklogSummary> {
    let selected: Vec<&'static Spec> = match &filter.function {
        Some(name) => vec![functions::specs().find(|s| s.name == name).ok_or_else(|| {
            anyhow::anyhow!(
                "unknown function {name:?} (one of: {})",
                functions::names().join(", ")
            )
        })?],
        None => functions::specs().collect(),
    };
    let raw = RawBody::default();
    let client = aws_sdk_securityhub::Client::from_conf(
        aws_sdk_securityhub::config::Builder::from(&setup.sdk)
            .interceptor(raw.clone())
            .build(),
    );
    let filters = server_filters(filter, &selected, &setup.account_id);
    let mut summary = BacklogSummary {
        dry_run: filter.dry_run,
        ..Default::default()
    };
    for spec in &selected {
        summary
            .functions
            .insert(spec.name.to_string(), Counts::default());
    }
    let mut built: BTreeMap<&'static str, Box<dyn Function>> = BTreeMap::new();
    let mut token: Option<String> = None;
    let mut taken = 0;
    let mut index = 0;
    'pages: loop {
        let page = fetch_page(&client, &raw, &filters, token.take()).await?;
        for asff in page.findings {
            summary.fetched += 1;
            if wanted(&asff, &setup.account_id).is_err() {
                summary.passed_over += 1;
                continue;
            }
            let envelope = envelope(&asff);
            let mut parsed = match finding::parse_event(&envelope) {
                Ok(parsed) if !parsed.is_empty() => parsed,
                unreadable => {
                    // Said, not passed over: a finding Reflex cannot read is one an operator
                    // should know about (the live path records it as rejected).
                    summary.not_handled += 1;
                    index += 1;
                    let why = match unreadable {
                        Err(e) => format!("unreadable: {e}"),
                        Ok(_) => "unreadable: no finding in it".to_string(),
                    };
                    progress(&BacklogLine {
                        index,
                        finding_id: text_of(&asff, "Id"),
                        kind: String::new(),
                        resource: String::new(),
                        function: None,
                        result: LineResult::NotHandled { why },
                    });
                    continue;
                }
            };
            let finding = parsed.remove(0);
            if let Some(control) = &filter.control {
                if finding.kind != FindingKind::Control(control.clone()) {
                    summary.passed_over += 1;
                    continue;
                }
            }
            if filter.limit.is_some_and(|l| taken >= l) {
                break 'pages;
            }
            index += 1;
            let kind = match routing_kind(setup, &finding).await {
                Ok(kind) => kind,
                Err(e) => {
                    // A passing failure (a Config rule's description, say): this finding's
                    // line says so, and the run goes on; running the backlog again retries it.
                    summary.errors += 1;
                    progress(&BacklogLine {
                        index,
                        finding_id: finding.id.clone(),
                        kind: kind_text(&finding.kind),
                        resource: resource_of(&finding),
                        function: None,
                        result: LineResult::Error {
                            error: format!("{e:#}"),
                        },
                    });
                    continue;
                }
            };
            let targets: Vec<&'static Spec> = route(&kind, &selected);
            let line = |function: Option<&str>, result: LineResult| BacklogLine {
                index,
                finding_id: finding.id.clone(),
                kind: kind_text(&finding.kind),
                resource: resource_of(&finding),
                function: function.map(str::to_string),
                result,
            };
            if targets.is_empty() {
                summary.not_handled += 1;
                let why = match &filter.function {
                    Some(f) => format!("{f} does not handle {}", kind_text(&kind)),
                    None => format!("no Reflex function handles {}", kind_text(&kind)),
                };
                progress(&line(None, LineResult::NotHandled { why }));
                continue;
            }
            taken += 1;
            let raw_event = serde_json::to_vec(&envelope)?;
            for spec in targets {
                let result = if filter.dry_run {
                    LineResult::WouldRun
                } else {
                    let function = match built.get(spec.name) {
                        Some(f) => f,
                        None => {
                            let f = functions::build(spec.name, setup).ok_or_else(|| {
                                anyhow::anyhow!("function {} is not in the registry", spec.name)
                            })?;
                            built.entry(spec.name).or_insert(f)
                        }
                    };
                    let request_id = format!("backlog-{}-{index}", std::process::id());
                    // Boxed: the pipeline's future is large.
                    match Box::pin(function.replay(setup, &raw_event, &request_id)).await {
                        Ok(mut outcomes) if !outcomes.is_empty() => LineResult::Outcome {
                            outcome: outcomes.remove(0),
                        },
                        Ok(_) => {
                            summary.errors += 1;
                            LineResult::Error {
                                error: "the handler answered no outcome".into(),
                            }
                        }
                        Err(e) => {
                            summary.errors += 1;
                            LineResult::Error {
                                error: e.to_string(),
                            }
                        }
                    }
                };
                if let Some(c) = summary.functions.get_mut(spec.name) {
                    c.add(&result);
                }
                progress(&line(Some(spec.name), result));
            }
        }
        match page.next_token {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    Ok(summary)
}

/// One page of findings, as Security Hub's JSON wrote them, and the token of the next.
struct Page {
    findings: Vec<Value>,
    next_token: Option<String>,
}

async fn fetch_page(
    client: &aws_sdk_securityhub::Client,
    raw: &RawBody,
    filters: &AwsSecurityFindingFilters,
    token: Option<String>,
) -> anyhow::Result<Page> {
    let request = client
        .get_findings()
        .filters(filters.clone())
        .max_results(PAGE_SIZE)
        .set_next_token(token)
        .send();
    // A task of its own: the SDK's deserializer for whole findings takes large stack frames,
    // more so unoptimised. (The functions' read-back does not use it: shared/src/confirm/wire.rs.)
    tokio::spawn(request).await?.map_err(|e| {
        anyhow::anyhow!(
            "Security Hub GetFindings failed: {}",
            reflex_shared::aws_error::describe(&e)
        )
    })?;
    let body = raw
        .0
        .lock()
        .map_err(|_| anyhow::anyhow!("the GetFindings answer was not kept"))?
        .take()
        .ok_or_else(|| anyhow::anyhow!("the GetFindings answer was not kept"))?;
    let page: Value = serde_json::from_slice(&body)?;
    Ok(Page {
        findings: page["Findings"].as_array().cloned().unwrap_or_default(),
        next_token: page["NextToken"]
            .as_str()
            .filter(|t| !t.is_empty())
            .map(str::to_string),
    })
}

/// Keeps the raw body of the last answer (after the SDK read it whole).
#[derive(Debug, Clone, Default)]
struct RawBody(Arc<Mutex<Option<Vec<u8>>>>);

impl Intercept for RawBody {
    fn name(&self) -> &'static str {
        "BacklogRawBody"
    }

    fn read_after_deserialization(
        &self,
        ctx: &AfterDeserializationInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), aws_sdk_securityhub::error::BoxError> {
        if let (Some(bytes), Ok(mut kept)) = (ctx.response().body().bytes(), self.0.lock()) {
            *kept = Some(bytes.to_vec());
        }
        Ok(())
    }
}

/// What Security Hub is asked for: active findings of this account whose workflow is `NEW` or
/// `NOTIFIED`; of a control (`--control`, or every trigger of the one function asked for is a
/// control), only those controls' `FAILED` findings. (moto 5.2 ignores every filter: the answer
/// is checked again by [`wanted`].)
pub fn server_filters(
    filter: &BacklogFilter,
    selected: &[&'static Spec],
    account: &str,
) -> AwsSecurityFindingFilters {
    let equals = |v: &str| {
        StringFilter::builder()
            .value(v)
            .comparison(StringFilterComparison::Equals)
            .build()
    };
    let controls: Vec<&str> = match &filter.control {
        Some(c) => vec![c.as_str()],
        None if filter.function.is_some() => {
            let triggers: Vec<&Trigger> = selected.iter().flat_map(|s| s.triggers).collect();
            let controls: Vec<&str> = triggers
                .iter()
                .filter_map(|t| match t {
                    Trigger::Control(c) => Some(*c),
                    _ => None,
                })
                .collect();
            if controls.len() == triggers.len() {
                controls
            } else {
                Vec::new()
            }
        }
        None => Vec::new(),
    };
    let mut f = AwsSecurityFindingFilters::builder()
        .record_state(equals("ACTIVE"))
        .workflow_status(equals("NEW"))
        .workflow_status(equals("NOTIFIED"))
        .aws_account_id(equals(account));
    if !controls.is_empty() {
        f = f.compliance_status(equals("FAILED"));
        for c in controls {
            f = f.compliance_security_control_id(equals(c));
        }
    }
    f.build()
}

/// Whether an ASFF finding is one the backlog runs: active, workflow `NEW` or `NOTIFIED`
/// (`Workflow.Status` over the older `WorkflowState`), `FAILED` when it has a compliance status,
/// and of `account`. `Err` says why not.
pub fn wanted(asff: &Value, account: &str) -> Result<(), String> {
    let text = |p: &str| asff.pointer(p).and_then(Value::as_str);
    if text("/RecordState") != Some("ACTIVE") {
        return Err(format!("record state {:?}", text("/RecordState")));
    }
    let workflow = text("/Workflow/Status").or(text("/WorkflowState"));
    if !matches!(workflow, Some("NEW" | "NOTIFIED")) {
        return Err(format!("workflow {workflow:?}"));
    }
    if let Some(status) = text("/Compliance/Status") {
        if status != "FAILED" {
            return Err(format!("compliance {status}"));
        }
    }
    if text("/AwsAccountId") != Some(account) {
        return Err(format!("account {:?}", text("/AwsAccountId")));
    }
    // As the live rules route: findings of AWS's own integrations only, whatever the policy's
    // trusted_products allows (a finding anyone may import with BatchImportFindings is not
    // run from the backlog).
    if !text("/ProductArn").is_some_and(aws_product) {
        return Err(format!("product {:?}", text("/ProductArn")));
    }
    Ok(())
}

/// `arn:aws*:securityhub:*::product/aws/*`, as the template's rules match it.
fn aws_product(arn: &str) -> bool {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    matches!(parts.as_slice(), ["arn", partition, "securityhub", _, "", resource]
        if partition.starts_with("aws") && resource.starts_with("product/aws/"))
}

fn text_of(asff: &Value, key: &str) -> String {
    asff.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// The finding as EventBridge delivers it: the "Security Hub Findings - Imported" envelope
/// (design, "Real event shapes"), one finding per event. Its id is derived from the finding's
/// id and generation, so the same finding makes the same event.
pub fn envelope(asff: &Value) -> Value {
    let text = |k: &str| asff.get(k).and_then(Value::as_str).unwrap_or_default();
    let digest = ledger::digest_hex(format!("{}\n{}", text("Id"), text("UpdatedAt")).as_bytes());
    let id = format!(
        "{}-{}-{}-{}-{}",
        &digest[0..8],
        &digest[8..12],
        &digest[12..16],
        &digest[16..20],
        &digest[20..32]
    );
    let time = chrono::DateTime::parse_from_rfc3339(text("UpdatedAt"))
        .map(|t| t.with_timezone(&chrono::Utc))
        .unwrap_or_else(|_| chrono::Utc::now())
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    json!({
        "version": "0",
        "id": id,
        "detail-type": "Security Hub Findings - Imported",
        "source": "aws.securityhub",
        "account": text("AwsAccountId"),
        "time": time,
        "region": text("Region"),
        "resources": [text("Id")],
        "detail": { "findings": [asff] }
    })
}

/// The functions (of `selected`) whose triggers handle a finding of `kind`: the specs' own pure
/// matching, no list of ours.
pub fn route(kind: &FindingKind, selected: &[&'static Spec]) -> Vec<&'static Spec> {
    selected
        .iter()
        .filter(|s| s.triggers.iter().any(|t| t.matches(kind)))
        .copied()
        .collect()
}

/// The kind to route by: a Config rule by its identity (as the pipeline resolves it: a managed
/// rule's identifier; a custom rule's only when the policy trusts its ARN), every other kind as
/// parsed. A rule that cannot be resolved routes nowhere.
async fn routing_kind(setup: &Setup, finding: &Finding) -> anyhow::Result<FindingKind> {
    let FindingKind::ConfigRule(name) = &finding.kind else {
        return Ok(finding.kind.clone());
    };
    let identity = setup
        .config_rules
        .identify(name)
        .await
        .map_err(|e| anyhow::anyhow!("cannot resolve Config rule {name}: {e}"))?;
    Ok(match identity {
        Some(RuleIdentity::Managed { identifier, .. }) => FindingKind::ConfigRule(identifier),
        Some(RuleIdentity::Custom { arn, .. }) => {
            let policy = setup.policy.current().await?;
            match policy.as_ref() {
                Ok(p) => match p.trusted_config_rules.get(&arn) {
                    Some(identifier) => FindingKind::ConfigRule(identifier.clone()),
                    None => FindingKind::Unrecognised(format!(
                        "custom Config rule {name} (not trusted)"
                    )),
                },
                Err(_) => FindingKind::Unrecognised(format!("custom Config rule {name}")),
            }
        }
        None => FindingKind::Unrecognised(format!(
            "Config rule {name} (not in this account and region)"
        )),
    })
}

fn kind_text(kind: &FindingKind) -> String {
    match kind {
        FindingKind::GuarddutyType(t) => format!("GuardDuty {t}"),
        FindingKind::Control(c) => format!("control {c}"),
        FindingKind::ConfigRule(r) => format!("Config rule {r}"),
        FindingKind::Vulnerability(v) => format!("vulnerability {v}"),
        FindingKind::Unrecognised(u) => u.clone(),
    }
}

fn resource_of(f: &Finding) -> String {
    f.resources
        .iter()
        .find_map(|r| r.arn.clone())
        .or_else(|| f.resources.first().map(|r| r.id.clone()))
        .unwrap_or_else(|| "-".into())
}

/// One progress line, for people.
pub fn render_line(l: &BacklogLine) -> String {
    let to = l.function.as_deref().unwrap_or("-");
    let result = match &l.result {
        LineResult::WouldRun => "would run".to_string(),
        LineResult::Outcome { outcome } if outcome.duplicate => format!(
            "duplicate: already {} ({}) in {}",
            outcome.status, outcome.reason, outcome.record_id
        ),
        LineResult::Outcome { outcome } => format!(
            "{} ({}) in {}",
            outcome.status, outcome.reason, outcome.record_id
        ),
        LineResult::Error { error } => format!("error: {error}"),
        LineResult::NotHandled { why } => format!("not handled: {why}"),
    };
    format!(
        "[{}] {} {} → {to}: {result}\n      finding {}",
        l.index, l.kind, l.resource, l.finding_id
    )
}

/// The summary table: one row per function that handled anything (or was asked for), and a total.
pub fn render_summary(s: &BacklogSummary) -> String {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic);
    let header = if s.dry_run {
        vec!["function", "would be run"]
    } else {
        vec![
            "function",
            "handled",
            "succeeded",
            "dry-run",
            "pending-approval",
            "skipped",
            "duplicates",
            "failed",
            "other",
        ]
    };
    t.set_header(header);
    let mut total = Counts::default();
    for (name, c) in &s.functions {
        if c.handled == 0 && s.functions.len() > 1 {
            continue;
        }
        total.handled += c.handled;
        total.succeeded += c.succeeded;
        total.dry_run += c.dry_run;
        total.pending_approval += c.pending_approval;
        total.skipped += c.skipped;
        total.duplicates += c.duplicates;
        total.failed += c.failed;
        total.other += c.other;
        t.add_row(row(name, c, s.dry_run));
    }
    t.add_row(row("total", &total, s.dry_run));
    format!(
        "{t}\n{} finding(s) fetched from Security Hub; {} passed over (not active, not failed, not NEW/NOTIFIED, another account or control); {} handled by no function{}",
        s.fetched,
        s.passed_over,
        s.not_handled,
        if s.dry_run {
            "; dry run: nothing was run or written".to_string()
        } else {
            String::new()
        }
    )
}

fn row(name: &str, c: &Counts, dry_run: bool) -> Vec<String> {
    if dry_run {
        return vec![name.to_string(), c.handled.to_string()];
    }
    [
        c.handled,
        c.succeeded,
        c.dry_run,
        c.pending_approval,
        c.skipped,
        c.duplicates,
        c.failed,
        c.other,
    ]
    .iter()
    .map(usize::to_string)
    .fold(vec![name.to_string()], |mut v, n| {
        v.push(n);
        v
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(path: &str) -> Value {
        let text =
            std::fs::read_to_string(format!("{}/../events/{path}", env!("CARGO_MANIFEST_DIR")))
                .unwrap();
        serde_json::from_str(&text).unwrap()
    }

    fn asff(path: &str) -> Value {
        sample(path)["detail"]["findings"][0].clone()
    }

    #[test]
    fn which_findings_are_wanted() {
        let base = asff("s3-block-public-access/securityhub-s3.8-imported.json");
        let set = |p: &str, v: Value| {
            let mut f = base.clone();
            *f.pointer_mut(p).unwrap() = v;
            f
        };
        let mut no_workflow_status = base.clone();
        no_workflow_status["Workflow"] = json!({});
        no_workflow_status["WorkflowState"] = json!("NEW");
        let mut no_compliance = base.clone();
        no_compliance.as_object_mut().unwrap().remove("Compliance");
        let cases: Vec<(Value, bool)> = vec![
            (base.clone(), true),
            (set("/RecordState", json!("ARCHIVED")), false),
            (set("/Workflow/Status", json!("NOTIFIED")), true),
            (set("/Workflow/Status", json!("RESOLVED")), false),
            (set("/Workflow/Status", json!("SUPPRESSED")), false),
            (no_workflow_status, true),
            (set("/Compliance/Status", json!("PASSED")), false),
            (set("/Compliance/Status", json!("WARNING")), false),
            (no_compliance, true),
            (set("/AwsAccountId", json!("999999999999")), false),
            (
                set(
                    "/ProductArn",
                    json!(
                        "arn:aws:securityhub:us-east-1:123456789012:product/123456789012/default"
                    ),
                ),
                false,
            ),
            (
                set(
                    "/ProductArn",
                    json!("arn:aws-us-gov:securityhub:us-gov-west-1::product/aws/guardduty"),
                ),
                true,
            ),
            (
                set(
                    "/ProductArn",
                    json!("arn:aws:securityhub:us-east-1::product/evil/aws/x"),
                ),
                false,
            ),
        ];
        for (f, want) in cases {
            assert_eq!(wanted(&f, "123456789012").is_ok(), want, "{f}");
        }
    }

    /// The envelope parses as the committed sample does, to the same finding (and record).
    #[test]
    fn the_envelope_is_what_eventbridge_delivers() {
        for path in [
            "s3-block-public-access/securityhub-s3.8-imported.json",
            "real-shapes/securityhub-guardduty-finding.json",
            "real-shapes/securityhub-inspector-ec2-cve.json",
            "real-shapes/securityhub-config-finding.json",
        ] {
            let event = sample(path);
            let wrapped = envelope(&event["detail"]["findings"][0]);
            let from_sample = finding::parse_event(&event).unwrap();
            let from_backlog = finding::parse_event(&wrapped).unwrap();
            assert_eq!(from_backlog, from_sample, "{path}");
            assert_eq!(
                wrapped,
                envelope(&event["detail"]["findings"][0]),
                "{path}: stable"
            );
        }
    }

    #[test]
    fn routing_uses_the_specs_triggers() {
        let all: Vec<&'static Spec> = functions::specs().collect();
        let names = |kind: FindingKind| -> Vec<&str> {
            route(&kind, &all).iter().map(|s| s.name).collect()
        };
        let cases: Vec<(FindingKind, Vec<&str>)> = vec![
            (
                FindingKind::Control("S3.8".into()),
                vec!["s3-block-public-access"],
            ),
            (
                FindingKind::Control("S3.5".into()),
                vec!["s3-enforce-encryption"],
            ),
            (
                FindingKind::Control("EC2.13".into()),
                vec!["sg-revoke-open-ingress"],
            ),
            (FindingKind::Control("S3.99".into()), vec![]),
            (
                FindingKind::GuarddutyType("UnauthorizedAccess:EC2/SSHBruteForce".into()),
                vec!["network-block-ip"],
            ),
            (
                FindingKind::ConfigRule("S3_BUCKET_PUBLIC_READ_PROHIBITED".into()),
                vec!["s3-block-public-access"],
            ),
            (
                FindingKind::ConfigRule("s3-bucket-public-read-prohibited".into()),
                vec![],
            ),
            (
                FindingKind::Vulnerability("CVE-2024-6387".into()),
                vec!["ec2-patch-instance"],
            ),
            (FindingKind::Unrecognised("a third party".into()), vec![]),
        ];
        for (kind, want) in cases {
            assert_eq!(names(kind.clone()), want, "{kind:?}");
        }
        // A finding two functions handle goes to both.
        let both = names(FindingKind::GuarddutyType(
            "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS".into(),
        ));
        assert!(
            both.contains(&"iam-disable-access-key") && both.contains(&"iam-contain-principal"),
            "{both:?}"
        );
    }

    #[test]
    fn a_function_of_controls_only_is_filtered_by_its_controls() {
        let s3: Vec<&'static Spec> = functions::specs()
            .filter(|s| s.name == "s3-block-public-access")
            .collect();
        let f = BacklogFilter {
            control: Some("S3.8".into()),
            ..Default::default()
        };
        let filters = server_filters(&f, &s3, "123456789012");
        let ids: Vec<_> = filters
            .compliance_security_control_id()
            .iter()
            .filter_map(|s| s.value())
            .collect();
        assert_eq!(ids, vec!["S3.8"]);
        assert_eq!(filters.compliance_status().len(), 1);
        // s3-block-public-access also has GuardDuty and Config triggers: no control filter.
        let f = BacklogFilter {
            function: Some("s3-block-public-access".into()),
            ..Default::default()
        };
        assert!(server_filters(&f, &s3, "123456789012")
            .compliance_security_control_id()
            .is_empty());
        let all = server_filters(&f, &s3, "1");
        let workflow: Vec<_> = all
            .workflow_status()
            .iter()
            .filter_map(|s| s.value())
            .collect();
        assert_eq!(workflow, vec!["NEW", "NOTIFIED"]);
    }
}
