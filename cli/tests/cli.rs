//! The `reflex` binary as an operator meets it: exit codes, messages, replay and audit against
//! the local AWS emulator (`AWS_ENDPOINT_URL`, set by scripts/test).

use serde_json::Value;
use std::process::{Command, Output};

fn reflex(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_reflex"))
        .args(args)
        .output()
        .expect("run reflex")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn sample(path: &str) -> String {
    format!("{}/../events/{path}", env!("CARGO_MANIFEST_DIR"))
}

fn endpoint() {
    assert!(
        std::env::var("AWS_ENDPOINT_URL").is_ok_and(|e| !e.is_empty()),
        "AWS_ENDPOINT_URL is not set: run the tests with scripts/test"
    );
}

#[test]
fn usage_errors_are_clear_and_non_zero() {
    let help = reflex(&["--help"]);
    assert!(help.status.success());
    let (out, _) = text(&help);
    for command in ["init", "replay", "audit", "demo"] {
        assert!(out.contains(command), "{out}");
    }
    let bad_status = reflex(&["audit", "--status", "bogus"]);
    assert_eq!(bad_status.status.code(), Some(2));
    assert!(text(&bad_status).1.contains("unknown status \"bogus\""));
    let no_function = reflex(&["replay", &sample("hostile/truncated.json")]);
    assert_eq!(no_function.status.code(), Some(2));
    let bad_function = reflex(&[
        "replay",
        &sample("hostile/truncated.json"),
        "--function",
        "nope",
    ]);
    assert_eq!(bad_function.status.code(), Some(2));
    let (_, err) = text(&bad_function);
    assert!(
        err.contains("invalid value 'nope'")
            && err.contains("[possible values: s3-block-public-access]"),
        "{err}"
    );
    let bad_since = reflex(&["audit", "--since", "last tuesday", "--table", "none"]);
    assert_eq!(bad_since.status.code(), Some(1));
    assert!(text(&bad_since).1.contains("--since"));
}

#[test]
fn init_replay_and_audit_against_the_emulator() {
    endpoint();
    let table = format!(
        "reflex-cli-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    let t = ["--table", table.as_str()];

    // Before `init`: a short, actionable error, not an HTTP dump.
    let missing_table = reflex(&[&["audit"][..], &t].concat());
    assert_eq!(missing_table.status.code(), Some(1));
    let (_, err) = text(&missing_table);
    assert_eq!(err.trim(), format!("error: outcome table {table} does not exist (run `reflex init`, or check REFLEX_TABLE / --table)"));

    let init = reflex(&[&["init"][..], &t].concat());
    assert!(init.status.success(), "{:?}", text(&init));
    assert!(text(&init).0.contains("created"));
    let again = reflex(&[&["init"][..], &t].concat());
    assert!(text(&again).0.contains("already exists"));

    // Hostile and non-actionable events need no bucket: all handled, so exit 0.
    let files = [
        sample("hostile/truncated.json"),
        sample("non-actionable/securityhub-s3.8-other-account.json"),
    ];
    let mut args = vec!["replay", "--function", "s3-block-public-access", "--json"];
    args.extend(files.iter().map(String::as_str));
    args.extend(t);
    let replay = reflex(&args);
    let (out, err) = text(&replay);
    assert!(replay.status.success(), "{err}");
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["outcome"]["status"], "rejected");
    assert_eq!(lines[1]["outcome"]["status"], "skipped");
    assert_eq!(lines[1]["outcome"]["reason"], "untrusted");

    // A missing file is the operator's error: non-zero, and it says which.
    let missing = reflex(
        &[
            &[
                "replay",
                "nope.json",
                "--function",
                "s3-block-public-access",
            ][..],
            &t,
        ]
        .concat(),
    );
    assert_eq!(missing.status.code(), Some(1));
    assert!(text(&missing).1.contains("cannot read nope.json"));

    let all = reflex(&[&["audit", "--json"][..], &t].concat());
    assert_eq!(text(&all).0.lines().count(), 2);
    let rejected = reflex(&[&["audit", "--json", "--status", "rejected"][..], &t].concat());
    let rec: Value = serde_json::from_str(text(&rejected).0.trim()).unwrap();
    assert_eq!(rec["reason"], "malformed-event");
    assert_eq!(rec["event_digest"].as_str().map(str::len), Some(64));
    let by_resource = reflex(
        &[
            &[
                "audit",
                "--json",
                "--resource",
                "arn:aws:s3:::reflex-demo-public",
            ][..],
            &t,
        ]
        .concat(),
    );
    assert_eq!(text(&by_resource).0.lines().count(), 1);
    let recent = reflex(&[&["audit", "--csv", "--since", "1h"][..], &t].concat());
    let (csv, _) = text(&recent);
    assert!(
        csv.starts_with(
            "created,remediation,status,reason,mode,resource,verified,changes,record,detail"
        ),
        "{csv}"
    );
    assert_eq!(csv.lines().count(), 3);
    let future = reflex(&[&["audit", "--since", "2999-01-01"][..], &t].concat());
    assert!(text(&future).0.contains("no outcome records match"));
    let table_view = reflex(&[&["audit"][..], &t].concat());
    assert!(text(&table_view).0.contains("2 record(s)"));
}
