//! What a user reads and installs: the README's example policy works with every sample finding
//! of every function, and `reflex demo --help` shows nothing of the machine it was built on.
//! Neither needs the emulator.

use reflex_shared::finding::parse_bytes;
use reflex_shared::policy::{Policy, Verdict};
use reflex_shared::status::Reason;
use std::path::{Path, PathBuf};
use std::process::Command;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("cli/ is inside the workspace")
        .to_path_buf()
}

/// The fenced YAML block that follows `marker` in `text`.
fn yaml_after(text: &str, marker: &str) -> String {
    let (_, after) = text
        .split_once(marker)
        .unwrap_or_else(|| panic!("no {marker}"));
    let (_, block) = after
        .split_once("```yaml\n")
        .expect("a ```yaml block after the marker");
    let (yaml, _) = block.split_once("\n```").expect("the yaml block's end");
    yaml.to_string()
}

const MARKER: &str = "<!-- example-policy: cli/tests/docs.rs evaluates it against events/ -->";

/// The example policies users copy: the README's, and the reference's in docs/policy.md.
const EXAMPLES: &[&str] = &["README.md", "docs/policy.md"];

fn example_policy(file: &str) -> Policy {
    let text = std::fs::read_to_string(workspace().join(file)).expect(file);
    Policy::from_yaml(&yaml_after(&text, MARKER))
        .unwrap_or_else(|e| panic!("{file}'s example policy is invalid: {e}"))
}

#[test]
fn example_policies_skip_no_sample_finding_below_their_threshold() {
    for file in EXAMPLES {
        every_sample_finding_reaches_the_threshold(file, &example_policy(file));
    }
}

fn every_sample_finding_reaches_the_threshold(file: &str, policy: &Policy) {
    let events = workspace().join("events");
    let mut checked = 0;
    for function in reflex_cli::functions::names() {
        let mut of_function = 0;
        let dir = events.join(function);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.expect("dir entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        for path in files {
            let raw = std::fs::read(&path).expect("sample");
            // A function's directory also holds the events that end its long operations (an
            // SSM command's status change): not findings, so no threshold applies.
            let Ok(findings) = parse_bytes(&raw) else {
                continue;
            };
            for finding in findings {
                let name = format!("{function}/{}", path.file_name().unwrap().to_string_lossy());
                // Inactive findings and GuardDuty's sample findings are skipped before any
                // threshold: the threshold is not what decides them.
                if policy.screen_source(&finding, &finding.account).is_some() {
                    continue;
                }
                match policy.screen(function, &finding, &finding.account) {
                    None => {}
                    Some(Verdict::Skip {
                        reason: Reason::BelowThreshold,
                        detail,
                    }) => panic!("{file}'s example policy skips {name}: {detail}"),
                    Some(other) => panic!("{file}: {name}: unexpected {other:?}"),
                }
                of_function += 1;
            }
        }
        assert!(
            of_function > 0,
            "no sample finding of {function} was checked"
        );
        checked += of_function;
    }
    assert!(checked > 50, "{file}: only {checked} findings checked");
}

/// The same check fails for the threshold the README once had: the test can see the problem.
#[test]
fn a_threshold_of_40_would_skip_a_guardduty_s3_finding() {
    let policy = Policy::from_yaml("version: 1\ndefaults:\n  severity_threshold: 40\n").unwrap();
    let raw =
        std::fs::read(workspace().join(
            "events/s3-block-public-access/guardduty-bucket-block-public-access-disabled.json",
        ))
        .unwrap();
    let finding = parse_bytes(&raw).unwrap().remove(0);
    let verdict = policy.screen("s3-block-public-access", &finding, &finding.account);
    assert!(
        matches!(
            verdict,
            Some(Verdict::Skip {
                reason: Reason::BelowThreshold,
                ..
            })
        ),
        "{verdict:?}"
    );
}

#[test]
fn demo_help_shows_no_path_of_the_build_machine() {
    let out = Command::new(env!("CARGO_BIN_EXE_reflex"))
        .args(["demo", "--help"])
        .output()
        .expect("run reflex");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("--events <DIR>"), "{help}");
    let root = workspace();
    let root = root.to_string_lossy();
    assert!(!help.contains(root.as_ref()), "{help}");
    assert!(!help.contains("[default: /"), "{help}");
    // No word of the help names a file or directory on this machine.
    for word in help.split(|c: char| c.is_whitespace() || "[]()'\"`,".contains(c)) {
        if word.starts_with('/') && word.len() > 1 {
            assert!(!Path::new(word).exists(), "{word} in {help}");
        }
    }
}
