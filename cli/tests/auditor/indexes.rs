//! `reflex audit` reads through the table's indexes and never scans. Its DynamoDB client here
//! carries an SDK interceptor that lets only Query through and fails anything else (a Scan
//! above all) before it is sent, and writes down each query's index and key condition: every
//! filter must be answered, with the right records, by queries on the index that fits it.

use crate::table;
use aws_sdk_dynamodb::config::interceptors::BeforeSerializationInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept};
use aws_sdk_dynamodb::error::BoxError;
use aws_sdk_dynamodb::operation::query::QueryInput;
use aws_sdk_dynamodb::operation::scan::ScanInput;
use reflex_cli::audit::{self, Filter};
use reflex_cli::functions;
use reflex_shared::ledger::{Ledger, OutcomeRecord};
use reflex_shared::status::Status;
use std::sync::{Arc, Mutex};

/// Lets Query through, writing down `index: key condition`; refuses every other call.
#[derive(Debug, Default, Clone)]
struct QueriesOnly(Arc<Mutex<Vec<String>>>);

impl Intercept for QueriesOnly {
    fn name(&self) -> &'static str {
        "QueriesOnly"
    }

    fn read_before_execution(
        &self,
        ctx: &BeforeSerializationInterceptorContextRef<'_>,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let input = ctx.input();
        if let Some(q) = input.downcast_ref::<QueryInput>() {
            self.0.lock().unwrap().push(format!(
                "{}: {}",
                q.index_name().unwrap_or("(the table itself)"),
                q.key_condition_expression().unwrap_or("")
            ));
            return Ok(());
        }
        let what = match input.downcast_ref::<ScanInput>() {
            Some(_) => "a Scan",
            None => "a call other than Query",
        };
        Err(format!("refused {what}: the audit must read through the indexes").into())
    }
}

impl QueriesOnly {
    fn take(&self) -> Vec<String> {
        let mut seen = std::mem::take(&mut *self.0.lock().unwrap());
        seen.sort();
        seen
    }
}

fn ids(records: &[OutcomeRecord]) -> Vec<String> {
    let mut v: Vec<String> = records.iter().map(|r| r.record_id.clone()).collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread")]
async fn every_audit_filter_is_answered_by_index_queries_never_a_scan() {
    let all = table::records();
    let (client, table) = table::create("reflex-audit-index", &all).await;
    let guard = QueriesOnly::default();
    let guarded = aws_sdk_dynamodb::Client::from_conf(
        client
            .config()
            .to_builder()
            .interceptor(guard.clone())
            .build(),
    );
    // The guard can fail: a Scan through this client never reaches the table.
    let scan = guarded.scan().table_name(&table).send().await;
    let refused = format!("{:?}", scan.expect_err("the guard let a Scan through"));
    assert!(refused.contains("refused a Scan"), "{refused}");
    guard.take();

    let ledger = Ledger::new(guarded, &table);
    let since = "2026-12-01T12:00:00.000Z".to_string();
    let some_arn = all[0].resource_arn.clone().unwrap();
    let by_time = |cond: &str| -> Vec<String> {
        let mut v: Vec<String> = functions::specs()
            .map(|_| format!("by-time: {cond}"))
            .collect();
        v.sort();
        v
    };
    let want = |keep: &dyn Fn(&OutcomeRecord) -> bool| -> Vec<String> {
        let kept: Vec<OutcomeRecord> = all.iter().filter(|r| keep(r)).cloned().collect();
        ids(&kept)
    };
    let filter = |status, resource: Option<&String>, since: Option<&String>, stuck| Filter {
        status,
        resource: resource.cloned(),
        since: since.cloned(),
        stuck_at: stuck,
        access_key: None,
    };
    let cases: Vec<(&str, Filter, Vec<String>, Vec<String>)> = vec![
        (
            "everything",
            filter(None, None, None, None),
            by_time("#k = :k"),
            want(&|_| true),
        ),
        (
            "a time range",
            filter(None, None, Some(&since), None),
            by_time("#k = :k AND created_at >= :since"),
            want(&|r| r.created_at >= since),
        ),
        (
            "every failure",
            filter(Some(Status::Failed), None, None, None),
            vec!["by-status: #k = :k".into()],
            want(&|r| r.status == Status::Failed),
        ),
        (
            "every failure in a time range",
            filter(Some(Status::Failed), None, Some(&since), None),
            vec!["by-status: #k = :k AND created_at >= :since".into()],
            want(&|r| r.status == Status::Failed && r.created_at >= since),
        ),
        (
            "one resource",
            filter(None, Some(&some_arn), None, None),
            vec!["by-resource: #k = :k".into()],
            want(&|r| r.resource_arn.as_ref() == Some(&some_arn)),
        ),
        (
            "one resource's successes",
            filter(Some(Status::Succeeded), Some(&some_arn), None, None),
            vec!["by-resource: #k = :k".into()],
            want(&|r| r.resource_arn.as_ref() == Some(&some_arn) && r.status == Status::Succeeded),
        ),
        (
            "the stuck",
            filter(None, None, None, Some(chrono::Utc::now().timestamp())),
            vec!["by-status: #k = :k".into(), "by-status: #k = :k".into()],
            want(&|r| r.status == Status::Acting),
        ),
    ];
    for (what, f, queries, records) in cases {
        assert!(!records.is_empty(), "{what}: the table has none to find");
        let got = audit::records(&ledger, &f)
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(ids(&got), records, "{what}");
        assert_eq!(guard.take(), queries, "{what}");
    }
}
