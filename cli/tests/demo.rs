//! `reflex demo` end to end, as a newcomer runs it: the binary starts its own emulator (so the
//! demo's fixed bucket names meet no other test's), tells the operator's story step by step,
//! and writes its HTML report.

use std::process::Command;

#[test]
fn the_demo_tells_the_operators_story_and_writes_its_report() {
    let dir = std::env::temp_dir().join(format!("reflex-demo-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    let report = dir.join("report.html");
    let out = Command::new(env!("CARGO_BIN_EXE_reflex"))
        .args(["demo", "--report"])
        .arg(&report)
        // No endpoint: the demo installs nothing (scripts/test did) and starts its own moto.
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_PROFILE")
        .env_remove("REFLEX_TABLE")
        .env_remove("REFLEX_POLICY_FILE")
        .env_remove("REFLEX_POLICY_PARAMETER")
        .current_dir(&dir)
        .output()
        .expect("run reflex demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");

    // A progress line per step, in order.
    let mut at = 0;
    for step in 1..=10 {
        let line = format!("[{step}/10] ");
        let found = stdout[at..]
            .find(&line)
            .unwrap_or_else(|| panic!("no step {line} after byte {at}:\n{stdout}"));
        at += found + line.len();
    }
    for story in [
        // every S3 sample fixed on its own bucket, the exempt one left alone
        "9 samples: 7 buckets fixed and verified by a fresh read; 1 left alone",
        // held, then approved by the caller STS names
        "approved by arn:aws:sts::123456789012:",
        // dry-run records the plan and changes nothing; the retry enforces
        "reflex-demo-dry-run: Block Public Access 0 of 4 on (a fresh read: nothing changed)",
        "dry-run / would-change → succeeded / remediated",
        // the rollback restores, its echo is held back
        "rolled-back",
        "skipped                        rolled-back",
        // the burst meets the budget
        "held back by the budget",
        // the backlog: five imported findings fixed once, a second run all duplicates
        "a fresh read: 5 of 5 buckets have Block Public Access 4 of 4 on",
        "the second run: 5 duplicates, nothing done twice",
        // the second delivery is a no-op
        "recognised as duplicates, 0 new records; outcomes and changes unchanged",
        // Security Hub updates, answered by the stand-in
        "update(s) sent",
    ] {
        assert!(stdout.contains(story), "missing {story:?} in:\n{stdout}");
    }
    assert!(!stdout.contains("CHANGED"), "{stdout}");

    let html = std::fs::read_to_string(&report).expect("the report was written");
    assert!(
        stdout.contains(&format!("HTML report: {}", report.display())),
        "{stdout}"
    );
    assert!(html.starts_with("<!DOCTYPE html>"), "{html}");
    assert!(html.matches("<tr><td>").count() >= 30, "{html}");
    assert!(html.contains("class=\"ok\">succeeded"), "{html}");
    let _ = std::fs::remove_dir_all(&dir);
}
