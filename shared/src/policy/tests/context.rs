//! Tables for what tags and the calendar add to the decision: modes by tag, infrastructure as
//! code, exemptions with an owner and an end, the approval tier, the exemptions listing.

use super::{control, problem_keys, BUCKET, OWN};
use crate::finding::Intent;
use crate::policy::{parse_exemption_tag, Exempted, Mode, Policy, Risk, Tags, Verdict};
use crate::status::Reason;
use chrono::NaiveDate;

const S3: &str = "s3-block-public-access";

fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn tags(pairs: &[(&str, &str)]) -> Tags {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn yaml(y: &str) -> Policy {
    Policy::from_yaml(y).unwrap_or_else(|e| panic!("{y}: {e}"))
}

/// The decision with `tags` (or before they are read), on 2026-12-03, for S3.8.
fn decide(p: &Policy, intent: Option<Intent>, t: Option<&Tags>) -> Verdict {
    let mut f = control("S3.8");
    f.intent = intent;
    p.evaluate_at(S3, Risk::Low, &f, BUCKET, OWN, t, day("2026-12-03"))
}

/// What the verdict says, in one comparable line: `mode: because` or `skip reason: detail`.
fn said(v: Verdict) -> String {
    match v {
        Verdict::Act(d) => format!("{}: {}", d.mode, d.because),
        Verdict::Skip { reason, detail } => format!("skip {reason}: {detail}"),
    }
}

const BY_TAG: &str = r#"
version: 1
remediations:
  s3-block-public-access:
    mode: enforce
    overrides:
      - match: {tags: {environment: prod}}
        set: {mode: approve}
      - match: {tags: {environment: "dev*"}, types: ["S3.8"]}
        set: {mode: dry-run}
"#;

#[test]
fn overrides_by_tag_choose_the_mode_once_the_tags_are_read() {
    let p = yaml(BY_TAG);
    let prod = tags(&[("environment", "prod")]);
    let dev = tags(&[("environment", "dev-2")]);
    let other = tags(&[("environment", "staging")]);
    // (tags, intent, what the decision says)
    let cases: Vec<(Option<&Tags>, Option<Intent>, &str)> = vec![
        // Before the tags are read, no override by tag holds.
        (None, None, "enforce: remediations.s3-block-public-access"),
        (
            Some(&prod),
            None,
            "approve: remediations.s3-block-public-access.overrides[0] (tag environment=prod)",
        ),
        (
            Some(&dev),
            None,
            "dry-run: remediations.s3-block-public-access.overrides[1] (tag environment=dev-2)",
        ),
        (
            Some(&other),
            None,
            "enforce: remediations.s3-block-public-access",
        ),
        // The approval an approve mode chosen by tag waits for.
        (
            Some(&prod),
            Some(Intent::Approve),
            "enforce: approved by the Reflex: approve custom action",
        ),
        // An approval cannot lift a dry-run chosen by tag.
        (
            Some(&dev),
            Some(Intent::Approve),
            "dry-run: remediations.s3-block-public-access.overrides[1] (tag environment=dev-2)",
        ),
    ];
    for (t, intent, want) in cases {
        assert_eq!(said(decide(&p, intent, t)), want, "{t:?} {intent:?}");
    }
    // Whoever may tag chooses the overrides by tag: they may choose a mode, never stop the fix
    // (that is an exemption, with a reason, an owner and an end).
    for set in ["{enabled: false}", "{severity_threshold: 90}"] {
        let stop = format!(
            "version: 1\nremediations:\n  s3-block-public-access:\n    overrides:\n      - match: {{tags: {{team: sandbox}}}}\n        set: {set}\n"
        );
        let p = Policy::from_yaml(&stop).map(|_| ()).unwrap_err();
        assert!(
            p.to_string()
                .contains("overrides[0].set`: an override that matches tags may set only `mode`"),
            "{set}: {p}"
        );
    }
}

#[test]
fn infrastructure_as_code_waits_for_approval_unless_the_policy_says_otherwise() {
    let stack = tags(&[("aws:cloudformation:stack-name", "web")]);
    let terraform = tags(&[("managed-by", "terraform")]);
    let prod_stack = tags(&[
        ("aws:cloudformation:stack-name", "web"),
        ("environment", "prod"),
    ]);
    let enforce = "version: 1\nremediations:\n  s3-block-public-access: {mode: enforce}\n";
    let named = format!(
        "{enforce}iac:\n  tags: ['aws:cloudformation:stack-name', 'managed-by=terraform']\n"
    );
    // (policy, tags, intent, what the decision says)
    let cases: Vec<(String, &Tags, Option<Intent>, &str)> = vec![
        (
            enforce.into(),
            &stack,
            None,
            "approve: iac: tag aws:cloudformation:stack-name=web (approve over enforce by remediations.s3-block-public-access)",
        ),
        // Terraform's tag only where the policy names it.
        (enforce.into(), &terraform, None, "enforce: remediations.s3-block-public-access"),
        (
            named.clone(),
            &terraform,
            None,
            "approve: iac: tag managed-by=terraform (approve over enforce by remediations.s3-block-public-access)",
        ),
        // An approval approves what IaC held.
        (
            enforce.into(),
            &stack,
            Some(Intent::Approve),
            "enforce: approved by the Reflex: approve custom action",
        ),
        // Switched off, or another mode chosen.
        (
            format!("{enforce}iac: {{mode: enforce}}\n"),
            &stack,
            None,
            "enforce: remediations.s3-block-public-access",
        ),
        (format!("{enforce}iac: {{tags: []}}\n"), &stack, None, "enforce: remediations.s3-block-public-access"),
        (
            format!("{enforce}iac: {{mode: dry-run}}\n"),
            &stack,
            None,
            "dry-run: iac: tag aws:cloudformation:stack-name=web (dry-run over enforce by remediations.s3-block-public-access)",
        ),
        // Dry-run stays dry-run; approve stays approve (by its own rule).
        (
            "version: 1\nremediations:\n  s3-block-public-access: {mode: dry-run}\n".into(),
            &stack,
            None,
            "dry-run: remediations.s3-block-public-access",
        ),
        (
            BY_TAG.into(),
            &prod_stack,
            None,
            "approve: remediations.s3-block-public-access.overrides[0] (tag environment=prod)",
        ),
        // The kill switch wins over everything.
        (
            format!("{enforce}kill_switch: true\n"),
            &stack,
            None,
            "dry-run: kill switch on (the policy's kill_switch: true; `reflex policy kill-switch off` lifts it)",
        ),
    ];
    for (policy, t, intent, want) in cases {
        assert_eq!(
            said(decide(&yaml(&policy), intent, Some(t))),
            want,
            "{policy}"
        );
    }
    // The first-deploy policy too.
    let first = Policy::first_deploy("/reflex/policy");
    assert!(
        said(decide(&first, None, Some(&stack))).starts_with("dry-run: the first-deploy policy")
    );
}

const EXEMPT: &str = r#"
version: 1
remediations:
  s3-block-public-access: {mode: enforce}
exemptions:
  rules:
    - match: {arns: ["arn:aws:s3:::data-*"]}
      reason: partner data exchange
      owner: data-team@example.com
      expires: 2026-12-31
    - match: {accounts: ["123456789012"], tags: {purpose: website}}
      reason: static website
      owner: web-team
      expires: 2026-12-02
    - match: {tags: {purpose: website, tier: "gold*"}}
      reason: gold websites reviewed
      owner: web-lead
      expires: 2027-03-01
"#;

#[test]
fn exemptions_apply_until_their_last_day_and_name_themselves() {
    let p = yaml(EXEMPT);
    let none = Tags::new();
    let website = tags(&[("purpose", "website")]);
    let gold = tags(&[("purpose", "website"), ("tier", "gold-1")]);
    // (resource, tags, today, the exemptions' word)
    let cases: Vec<(&str, Option<&Tags>, &str, Exempted)> = vec![
        (
            "arn:aws:s3:::data-bucket",
            None,
            "2026-12-31",
            Exempted::Yes("arn:aws:s3:::data-bucket is exempt by exemptions.rules[0] (owner data-team@example.com, until 2026-12-31): partner data exchange".into()),
        ),
        (
            "arn:aws:s3:::data-bucket",
            None,
            "2027-01-01",
            Exempted::No(vec!["exemptions.rules[0] (owner data-team@example.com, until 2026-12-31): partner data exchange ended and no longer applies".into()]),
        ),
        ("arn:aws:s3:::logs", Some(&none), "2026-12-01", Exempted::No(vec![])),
        // Before the tags are read, an exemption by tag is not judged.
        ("arn:aws:s3:::site", None, "2026-12-01", Exempted::No(vec![])),
        (
            "arn:aws:s3:::site",
            Some(&website),
            "2026-12-02",
            Exempted::Yes("arn:aws:s3:::site is exempt by exemptions.rules[1] (owner web-team, until 2026-12-02): static website".into()),
        ),
        (
            "arn:aws:s3:::site",
            Some(&website),
            "2026-12-03",
            Exempted::No(vec!["exemptions.rules[1] (owner web-team, until 2026-12-02): static website ended and no longer applies".into()]),
        ),
        // One ended, a later one still applies.
        (
            "arn:aws:s3:::site",
            Some(&gold),
            "2026-12-03",
            Exempted::Yes("arn:aws:s3:::site is exempt by exemptions.rules[2] (owner web-lead, until 2027-03-01): gold websites reviewed".into()),
        ),
    ];
    for (arn, t, today, want) in cases {
        assert_eq!(
            p.exempted(arn, OWN, t, day(today)),
            want,
            "{arn} {t:?} {today}"
        );
    }
}

#[test]
fn the_exemption_tag_names_its_end_and_reason_and_a_malformed_one_fails_closed() {
    let p = yaml("version: 1\nremediations:\n  s3-block-public-access: {mode: enforce}");
    // (tag value, what the decision says)
    let cases = [
        (
            "2026-12-03;legacy website, ticket SEC-12",
            "skip exempt: exempt by the exemption tag reflex:exempt (until 2026-12-03): \"legacy website, ticket SEC-12\"",
        ),
        (
            "2026-12-02;legacy website",
            "enforce: remediations.s3-block-public-access; the exemption tag reflex:exempt (until 2026-12-02: legacy website) ended and no longer applies",
        ),
        ("false", "enforce: remediations.s3-block-public-access"),
        ("FALSE", "enforce: remediations.s3-block-public-access"),
        // A tag that cannot be honoured exempts nothing, and acts on nothing by itself: the
        // fix waits for a person.
        (
            "true",
            "approve: the exemption tag reflex:exempt=\"true\" is malformed (no `;` between the date and the reason; the form is <YYYY-MM-DD>;<reason>): it exempts nothing, so the fix waits for approval; correct the tag or remove it (approve over enforce by remediations.s3-block-public-access)",
        ),
        (
            "2026-02-30;x",
            "approve: the exemption tag reflex:exempt=\"2026-02-30;x\" is malformed (\"2026-02-30\" is not a date YYYY-MM-DD; the form is <YYYY-MM-DD>;<reason>): it exempts nothing, so the fix waits for approval; correct the tag or remove it (approve over enforce by remediations.s3-block-public-access)",
        ),
        (
            "2027-01-01; ",
            "approve: the exemption tag reflex:exempt=\"2027-01-01; \" is malformed (no reason after the `;`; the form is <YYYY-MM-DD>;<reason>): it exempts nothing, so the fix waits for approval; correct the tag or remove it (approve over enforce by remediations.s3-block-public-access)",
        ),
        // Within exemptions.tag_max_days (90) of today, and beyond it: no tag exempts for ever.
        (
            "2027-03-03;quarter",
            "skip exempt: exempt by the exemption tag reflex:exempt (until 2027-03-03): \"quarter\"",
        ),
        (
            "2999-12-31;for ever",
            "approve: the exemption tag reflex:exempt=\"2999-12-31;for ever\" ends 2999-12-31, beyond exemptions.tag_max_days (90 days from today): it exempts nothing, so the fix waits for approval; shorten it, or declare the exemption in the policy (approve over enforce by remediations.s3-block-public-access)",
        ),
    ];
    for (value, want) in cases {
        let t = tags(&[("reflex:exempt", value)]);
        assert_eq!(said(decide(&p, None, Some(&t))), want, "{value}");
    }
    // The policy names its own tag key.
    let own = yaml("version: 1\nexemptions: {tag: 'team:keep'}");
    let t = tags(&[("team:keep", "2026-12-31;kept"), ("reflex:exempt", "junk")]);
    assert_eq!(
        said(decide(&own, None, Some(&t))),
        "skip exempt: exempt by the exemption tag team:keep (until 2026-12-31): \"kept\""
    );
    // On a threat finding the resource may be in other hands: its own tag holds the fix for
    // approval instead of exempting it; under dry-run it stays dry-run, saying so.
    let mut threat = super::finding(
        crate::finding::FindingKind::GuarddutyType(
            "Policy:S3/BucketBlockPublicAccessDisabled".into(),
        ),
        50,
    );
    let t = tags(&[("reflex:exempt", "2026-12-31;kept")]);
    let v = p.evaluate_at(
        S3,
        Risk::Low,
        &threat,
        BUCKET,
        OWN,
        Some(&t),
        day("2026-12-03"),
    );
    assert_eq!(
        said(v),
        "approve: exempt by the exemption tag reflex:exempt (until 2026-12-31): \"kept\"; but on a threat finding the resource's own tag is not trusted to exempt it (whoever controls the resource can set it), so the fix waits for approval (approve over enforce by remediations.s3-block-public-access)"
    );
    threat.intent = Some(Intent::Approve);
    let v = p.evaluate_at(
        S3,
        Risk::Low,
        &threat,
        BUCKET,
        OWN,
        Some(&t),
        day("2026-12-03"),
    );
    assert!(
        said(v).starts_with("enforce: approved by"),
        "a person's approval acts"
    );
    let dry = yaml("version: 1\ndefaults: {mode: dry-run}");
    threat.intent = None;
    let v = dry.evaluate_at(
        S3,
        Risk::Low,
        &threat,
        BUCKET,
        OWN,
        Some(&t),
        day("2026-12-03"),
    );
    assert!(
        said(v).starts_with("dry-run: defaults; exempt by"),
        "dry-run stays"
    );
    assert_eq!(
        parse_exemption_tag(" 2027-06-30 ; owner said so "),
        Ok((day("2027-06-30"), "owner said so".into()))
    );
}

#[test]
fn an_exemption_by_arn_skips_before_any_tag_is_read() {
    let p = yaml(EXEMPT);
    let mut f = control("S3.8");
    f.intent = None;
    let v = p.evaluate_at(
        S3,
        Risk::Low,
        &f,
        "arn:aws:s3:::data-x",
        OWN,
        None,
        day("2026-12-03"),
    );
    assert!(
        matches!(
            v,
            Verdict::Skip {
                reason: Reason::Exempt,
                ..
            }
        ),
        "{v:?}"
    );
}

#[test]
fn irreversible_steps_wait_for_approval_unless_the_remediation_opts_out() {
    let default = yaml("version: 1");
    let out =
        yaml("version: 1\nremediations:\n  iam-contain-principal: {approve_irreversible: false}");
    const C: &str = "iam-contain-principal";
    // (policy, remediation, mode, irreversible step, the new mode if it changes)
    type Case<'a> = (&'a Policy, &'a str, Mode, Option<&'a str>, Option<Mode>);
    let cases: Vec<Case> = vec![
        (
            &default,
            C,
            Mode::Enforce,
            Some("iam:DeleteLoginProfile"),
            Some(Mode::Approve),
        ),
        (&default, C, Mode::Enforce, None, None),
        (
            &default,
            C,
            Mode::DryRun,
            Some("iam:DeleteLoginProfile"),
            None,
        ),
        (
            &default,
            C,
            Mode::Approve,
            Some("iam:DeleteLoginProfile"),
            None,
        ),
        (&out, C, Mode::Enforce, Some("iam:DeleteLoginProfile"), None),
        // Opting one remediation out leaves the others in the tier.
        (
            &out,
            "ec2-patch-instance",
            Mode::Enforce,
            Some("ssm:SendCommand"),
            Some(Mode::Approve),
        ),
    ];
    for (p, r, mode, step, want) in cases {
        let got = p.tier(r, mode, "defaults", step);
        assert_eq!(got.as_ref().map(|(m, _)| *m), want, "{r} {mode} {step:?}");
        if let Some((_, why)) = got {
            assert_eq!(
                why,
                format!("the approval tier: {} cannot be undone, so it waits for approval over enforce by defaults (remediations.{r}.approve_irreversible: false lets enforce carry it out)", step.unwrap())
            );
        }
    }
}

#[test]
fn the_exemptions_list_puts_those_ending_soon_first_and_flags_the_ended() {
    let p = yaml(
        r#"
version: 1
exemptions:
  rules:
    - {match: {arns: ["arn:aws:s3:::a"]}, reason: far, owner: o1, expires: 2027-06-01}
    - {match: {accounts: ["123456789012"]}, reason: ended, owner: o2, expires: 2026-11-01}
    - {match: {tags: {k: v}}, reason: in ten days, owner: o3, expires: 2026-12-13}
    - {match: {arns: ["arn:aws:s3:::b"]}, reason: in fourteen days, owner: o4, expires: 2026-12-17}
    - {match: {arns: ["arn:aws:s3:::c"]}, reason: in fifteen days, owner: o5, expires: 2026-12-18}
    - {match: {arns: ["arn:aws:s3:::d"]}, reason: today, owner: o6, expires: 2026-12-03}
"#,
    );
    let listed = p.exemption_list(day("2026-12-03"));
    let got: Vec<(&str, &str, i64)> = listed
        .iter()
        .map(|l| (l.reason.as_str(), l.state, l.days_left))
        .collect();
    assert_eq!(
        got,
        [
            ("today", "expires-soon", 0),
            ("in ten days", "expires-soon", 10),
            ("in fourteen days", "expires-soon", 14),
            ("in fifteen days", "active", 15),
            ("far", "active", 180),
            ("ended", "expired", -32),
        ]
    );
    assert_eq!(listed[1].rule, "exemptions.rules[2]");
    assert_eq!(listed[1].matches, "tags: k=v");
    assert_eq!(listed[1].owner, "o3");
}

#[test]
fn every_exemption_needs_a_match_a_reason_an_owner_and_an_end() {
    let base = "version: 1\nexemptions:\n  rules:\n    - ";
    // (the exemption, the keys of its errors)
    let cases: &[(&str, &[&str])] = &[
        (
            "{match: {arns: [x]}, reason: r, owner: o, expires: 2030-01-01}",
            &[],
        ),
        (
            "{match: {}, reason: r, owner: o, expires: 2030-01-01}",
            &["exemptions.rules[0].match"],
        ),
        (
            "{match: {arns: [x]}}",
            &[
                "exemptions.rules[0].reason",
                "exemptions.rules[0].owner",
                "exemptions.rules[0].expires",
            ],
        ),
        (
            "{match: {accounts: ['1']}, reason: ' ', owner: o, expires: 30/01/2030}",
            &[
                "exemptions.rules[0].match.accounts[0]",
                "exemptions.rules[0].reason",
                "exemptions.rules[0].expires",
            ],
        ),
    ];
    for (exemption, want) in cases {
        let p: Policy = serde_norway::from_str(&format!("{base}{exemption}")).unwrap();
        assert_eq!(problem_keys(&p), *want, "{exemption}");
    }
    // An override by tag alone is a valid match.
    yaml("version: 1\nremediations:\n  s3-block-public-access:\n    overrides:\n      - {match: {tags: {a: b}}, set: {mode: approve}}");
}
