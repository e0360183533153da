//! The SAM template held to the code: the outcome table to the ledger's definition, each role to
//! the actions its function declares, each function's EventBridge rules to its triggers, checked
//! against the sample events with quamina, a faithful EventBridge-pattern engine (moto's
//! TestEventPattern always answers "no match" and its PutEvents cannot see into arrays of objects,
//! so it cannot judge these patterns). Pure: no emulator needed.

use aws_sdk_securityhub::operation::batch_update_findings::BatchUpdateFindingsInput;
use quamina::Quamina;
use reflex_cli::functions;
use reflex_shared::finding::{action_intent, Intent, APPROVE_ACTION_ID, REMEDIATE_ACTION_ID};
use reflex_shared::ledger::key_prefixes;
use reflex_shared::ledger::table::{DEFINITION, TTL_ATTRIBUTE};
use reflex_shared::pipeline::PIPELINE_IAM_ACTIONS;
use reflex_shared::policy::DEFAULT_TRUSTED_PRODUCTS;
use reflex_shared::remediation::Spec;
use reflex_shared::securityhub::SecurityHubFeedback;
use reflex_shared::status::Status;
use reflex_shared::trigger::Trigger;
use reflex_tests::{events_dir, mocked_security_hub, ACCOUNT};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

const REGION: &str = "us-east-1";
/// The stack the template is resolved for: the default name, and an id as CloudFormation makes
/// them (its UUID's first group, `1a2b3c4d`, scopes the custom actions' ids).
const STACK_NAME: &str = "reflex";
const STACK_ID: &str =
    "arn:aws:cloudformation:us-east-1:123456789012:stack/reflex/1a2b3c4d-0b4a-11ef-8f26-0afff63e8d41";
/// The stack's custom actions, as its resources resolve them.
const REMEDIATE_ID: &str = "ReflexFix1a2b3c4d";
const APPROVE_ID: &str = "ReflexAllow1a2b3c4d";

/// The template as JSON, with the intrinsics the patterns and tests need resolved for the
/// emulator's account and region and the stack above (`!Ref AWS::AccountId`, `!Sub …`,
/// `!Select`, `!Split`, a custom action's `ActionTargetArn`); other intrinsics become
/// `{"!Tag": value}`.
fn template() -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../infra/template.yaml");
    let yaml: serde_norway::Value =
        serde_norway::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    resolve_template(&yaml)
}

/// A whole template resolved: its intrinsics (see `resolve`), then the custom actions' ARNs.
fn resolve_template(yaml: &serde_norway::Value) -> Value {
    let mut t = resolve(yaml);
    let arns: BTreeMap<String, Value> = t["Resources"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, r)| r["Type"] == "AWS::SecurityHub::ActionTarget")
        .map(|(name, r)| {
            let id = r["Properties"]["Id"].as_str().expect("a resolved Id");
            let arn = format!("arn:aws:securityhub:{REGION}:{ACCOUNT}:action/custom/{id}");
            (format!("{name}.ActionTargetArn"), json!(arn))
        })
        .collect();
    fn attributes(v: &mut Value, arns: &BTreeMap<String, Value>) {
        match v {
            Value::Object(m) => {
                if let Some(arn) = m
                    .get("!GetAtt")
                    .and_then(Value::as_str)
                    .and_then(|a| arns.get(a))
                {
                    *v = arn.clone();
                    return;
                }
                m.values_mut().for_each(|c| attributes(c, arns));
            }
            Value::Array(items) => items.iter_mut().for_each(|c| attributes(c, arns)),
            _ => {}
        }
    }
    attributes(&mut t, &arns);
    t
}

fn substitute(s: &str) -> String {
    s.replace("${AWS::AccountId}", ACCOUNT)
        .replace("${AWS::Region}", REGION)
        .replace("${AWS::Partition}", "aws")
        .replace("${AWS::StackName}", STACK_NAME)
}

fn resolve(v: &serde_norway::Value) -> Value {
    use serde_norway::Value as Y;
    match v {
        Y::Null => Value::Null,
        Y::Bool(b) => json!(b),
        Y::Number(n) => serde_json::to_value(n).unwrap(),
        Y::String(s) => json!(s),
        Y::Sequence(items) => Value::Array(items.iter().map(resolve).collect()),
        Y::Mapping(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.as_str().unwrap_or_default().to_string(), resolve(v)))
                .collect(),
        ),
        Y::Tagged(t) => {
            let inner = resolve(&t.value);
            match (t.tag.to_string().as_str(), inner.as_str()) {
                ("!Ref", Some("AWS::AccountId")) => json!(ACCOUNT),
                ("!Ref", Some("AWS::Region")) => json!(REGION),
                ("!Ref", Some("AWS::StackName")) => json!(STACK_NAME),
                ("!Ref", Some("AWS::StackId")) => json!(STACK_ID),
                ("!Sub", Some(s)) => json!(substitute(s)),
                // `!Sub [text, {name: value}]`, `!Split [delimiter, text]`, `!Select [i, list]`,
                // once their arguments are resolved to plain values.
                ("!Sub", None) => match (&inner[0], inner[1].as_object()) {
                    (Value::String(text), Some(vars)) if vars.values().all(Value::is_string) => {
                        let text = vars.iter().fold(text.clone(), |acc, (k, v)| {
                            acc.replace(&format!("${{{k}}}"), v.as_str().unwrap())
                        });
                        json!(substitute(&text))
                    }
                    _ => json!({ "!Sub": inner }),
                },
                ("!Split", None) => match (inner[0].as_str(), inner[1].as_str()) {
                    (Some(d), Some(text)) => json!(text.split(d).collect::<Vec<_>>()),
                    _ => json!({ "!Split": inner }),
                },
                ("!Select", None) => match (inner[0].as_u64(), inner[1].as_array()) {
                    (Some(i), Some(list)) => list[i as usize].clone(),
                    _ => json!({ "!Select": inner }),
                },
                (tag, _) => json!({ tag: inner }),
            }
        }
    }
}

/// Each Reflex function in the template, with its spec (found by the binary it builds).
fn functions(t: &Value) -> Vec<(String, &Value, &'static Spec)> {
    let mut out = Vec::new();
    for (name, r) in t["Resources"].as_object().unwrap() {
        if r["Type"] == "AWS::Serverless::Function" {
            let binary = r["Metadata"]["BuildProperties"]["Binary"]
                .as_str()
                .expect("BuildProperties.Binary");
            let spec = functions::specs()
                .find(|s| s.name == binary)
                .unwrap_or_else(|| panic!("{name}: no spec for {binary}"));
            assert_eq!(r["Metadata"]["BuildMethod"], "rust-cargolambda", "{name}");
            out.push((name.clone(), r, spec));
        }
    }
    out
}

/// The function's EventBridge rule patterns (its schedules aside: see `schedules`).
fn patterns(function: &Value) -> Vec<(String, Value)> {
    function["Properties"]["Events"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(name, e)| {
            assert!(
                e["Type"] == "EventBridgeRule" || e["Type"] == "Schedule",
                "{name}: {}",
                e["Type"]
            );
            e["Type"] == "EventBridgeRule"
        })
        .map(|(name, e)| (name.clone(), e["Properties"]["Pattern"].clone()))
        .collect()
}

/// The function's schedule expressions (SAM `Schedule` events).
fn schedules(function: &Value) -> Vec<String> {
    function["Properties"]["Events"]
        .as_object()
        .unwrap()
        .values()
        .filter(|e| e["Type"] == "Schedule")
        .map(|e| e["Properties"]["Schedule"].as_str().unwrap().to_string())
        .collect()
}

/// The sample events of `events/<dir>`, their custom actions made this stack's own (the
/// samples name the unscoped ids, `ReflexRemediate` and `ReflexApprove`).
fn samples(dir: &str) -> Vec<(PathBuf, String)> {
    let mut files: Vec<_> = std::fs::read_dir(events_dir().join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            (
                p.clone(),
                as_this_stacks(&std::fs::read_to_string(&p).unwrap()),
            )
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no samples in events/{dir}");
    files
}

fn as_this_stacks(raw: &str) -> String {
    raw.replace(
        &format!("action/custom/{REMEDIATE_ACTION_ID}\""),
        &format!("action/custom/{REMEDIATE_ID}\""),
    )
    .replace(
        &format!("action/custom/{APPROVE_ACTION_ID}\""),
        &format!("action/custom/{APPROVE_ID}\""),
    )
}

fn matcher(function: &Value) -> Quamina {
    let mut q = Quamina::new();
    for (name, pattern) in patterns(function) {
        q.add_pattern(name.clone(), &pattern.to_string())
            .unwrap_or_else(|e| panic!("pattern {name}: {e:?}"));
    }
    q
}

#[test]
fn the_committed_template_is_the_generated_one() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../infra/template.yaml");
    let committed = std::fs::read_to_string(path).unwrap();
    let generated = reflex_cli::template::generate().unwrap();
    // Not assert_eq!: a diff of two whole templates helps less than the one command that mends it.
    if committed != generated {
        let line = committed
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| committed.lines().count().min(generated.lines().count()));
        panic!(
            "infra/template.yaml is not what `reflex template` prints (first difference at line {}); \
             run `reflex template > infra/template.yaml` (cargo run -p reflex-cli -- template > infra/template.yaml)",
            line + 1
        );
    }
}

#[test]
fn every_catalog_function_is_in_the_template() {
    let t = template();
    let deployed: BTreeSet<_> = functions(&t).iter().map(|(_, _, s)| s.name).collect();
    let built: BTreeSet<_> = functions::specs().map(|s| s.name).collect();
    assert_eq!(deployed, built);
    for (name, f, _) in functions(&t) {
        let p = &f["Properties"];
        let g = &t["Globals"]["Function"];
        assert_eq!(
            p.get("Runtime").unwrap_or(&g["Runtime"]),
            "provided.al2023",
            "{name}"
        );
        assert_eq!(
            p.get("Architectures").unwrap_or(&g["Architectures"]),
            &json!(["arm64"]),
            "{name}"
        );
    }
}

#[test]
fn actionable_samples_select_their_function_and_the_rest_do_not() {
    let t = template();
    for (name, function, spec) in functions(&t) {
        let q = matcher(function);
        for (path, raw) in samples(spec.name) {
            let hits = q.matches_for_event(raw.as_bytes()).unwrap();
            assert!(!hits.is_empty(), "{name}: {path:?} should select it");
        }
        for (path, raw) in samples("non-actionable") {
            let hits = q.matches_for_event(raw.as_bytes()).unwrap();
            assert!(
                hits.is_empty(),
                "{name}: {path:?} must not select it, but {hits:?} do"
            );
        }
    }
}

#[test]
fn a_pattern_change_is_noticed() {
    // Guard against a matcher that matches everything: a resolved finding must fall out of the
    // Security Hub rule, and the same finding NEW must fall in.
    let t = template();
    let (_, function, spec) = functions(&t).into_iter().next().unwrap();
    let q = matcher(function);
    let (_, raw) = samples(spec.name)
        .into_iter()
        .find(|(p, _)| p.ends_with("securityhub-s3.8-imported.json"))
        .unwrap();
    let mut event: Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(
        q.matches_for_event(event.to_string().as_bytes()).unwrap(),
        vec!["SecurityHubControls".to_string()]
    );
    event["detail"]["findings"][0]["Compliance"]["SecurityControlId"] = json!("S3.9");
    assert!(q
        .matches_for_event(event.to_string().as_bytes())
        .unwrap()
        .is_empty());
}

#[test]
fn a_custom_action_on_another_products_finding_is_not_routed() {
    // "Reflex: remediate" on a finding that names S3.3 both ways (SecurityControlId, and the
    // per-standard ProductFields.ControlId): routed when the finding is AWS's own, and not when
    // another product's finding names the same control.
    let t = template();
    let (_, function, spec) = functions(&t).into_iter().next().unwrap();
    let q = matcher(function);
    let (_, raw) = samples(spec.name)
        .into_iter()
        .find(|(p, _)| p.ends_with("securityhub-custom-action-remediate-s3.3.json"))
        .unwrap();
    let mut event: Value = serde_json::from_str(&raw).unwrap();
    event["detail"]["findings"][0]["ProductFields"]["ControlId"] = json!("S3.3");
    let routed = |e: &Value| {
        let mut hits = q.matches_for_event(e.to_string().as_bytes()).unwrap();
        hits.sort();
        hits
    };
    assert_eq!(
        routed(&event),
        vec![
            "SecurityHubCustomAction".to_string(),
            "SecurityHubCustomActionLegacy".to_string()
        ]
    );
    for other in [
        // A partner integration, and a customer's own product.
        "arn:aws:securityhub:us-east-1::product/prowler/prowler",
        "arn:aws:securityhub:us-east-1:123456789012:product/123456789012/default",
    ] {
        event["detail"]["findings"][0]["ProductArn"] = json!(other);
        assert_eq!(routed(&event), Vec::<String>::new(), "{other}");
    }
}

#[test]
fn every_security_hub_rule_selects_only_aws_products() {
    // Custom-action rules included: the rules and the policy's default trusted products agree.
    let t = template();
    let mut custom_actions = 0;
    for (name, function, _) in functions(&t) {
        for (rule, p) in patterns(function) {
            if p["source"] != json!(["aws.securityhub"]) {
                continue;
            }
            if p["detail-type"] == json!(["Security Hub Findings - Custom Action"]) {
                custom_actions += 1;
            }
            let arns = p["detail"]["findings"]["ProductArn"]
                .as_array()
                .filter(|a| !a.is_empty())
                .unwrap_or_else(|| panic!("{name}.{rule}: no ProductArn restriction"));
            for arn in arns {
                let w = arn["wildcard"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{name}.{rule}: {arn} is not a wildcard"));
                // A trusted pattern itself, or one of its products named outright.
                let trusted = DEFAULT_TRUSTED_PRODUCTS.iter().any(|t| {
                    w == *t
                        || t.strip_suffix('*').is_some_and(|stem| {
                            w.strip_prefix(stem)
                                .is_some_and(|product| !product.contains(['*', '?']))
                        })
                });
                assert!(
                    trusted,
                    "{name}.{rule}: {w} is not one of AWS's own products"
                );
            }
        }
    }
    assert!(custom_actions > 0, "no custom-action rule was checked");
}

/// Every value listed under `key` anywhere in the patterns (plain strings and prefixes).
fn listed(patterns: &[(String, Value)], key: &str) -> BTreeSet<String> {
    fn walk(v: &Value, key: &str, out: &mut BTreeSet<String>) {
        if let Value::Object(m) = v {
            for (k, child) in m {
                if k == key {
                    for item in child.as_array().into_iter().flatten() {
                        match item {
                            Value::String(s) => out.insert(s.clone()),
                            Value::Object(o) => match o.iter().next() {
                                Some((k, v)) => {
                                    out.insert(format!("{k}:{}", v.as_str().unwrap_or("?")))
                                }
                                None => out.insert("?".into()),
                            },
                            other => out.insert(other.to_string()),
                        };
                    }
                } else {
                    walk(child, key, out);
                }
            }
        }
    }
    let mut out = BTreeSet::new();
    patterns.iter().for_each(|(_, p)| walk(p, key, &mut out));
    out
}

#[test]
fn rule_patterns_list_exactly_the_declared_triggers() {
    let t = template();
    for (name, function, spec) in functions(&t) {
        let ps = patterns(function);
        let (mut controls, mut types, mut rules, mut vulnerabilities) = (
            BTreeSet::new(),
            BTreeSet::new(),
            BTreeSet::new(),
            BTreeSet::new(),
        );
        for trigger in spec.triggers {
            match trigger {
                Trigger::Control(c) => {
                    controls.insert(c.to_string());
                }
                Trigger::GuarddutyType(g) => {
                    types.insert(g.to_string());
                }
                Trigger::ConfigRule(r) => {
                    rules.insert(r.to_string());
                }
                // Inspector findings through Security Hub, by the vulnerability's id (a
                // trailing `*` is a prefix match).
                Trigger::Vulnerability(v) => {
                    vulnerabilities.insert(match v.strip_suffix('*') {
                        Some(stem) => format!("prefix:{stem}"),
                        None => v.to_string(),
                    });
                }
            }
        }
        // Config rules are routed by the resource types they evaluate (their identity is
        // resolved at run time, never their name): in Config's own events and in Security
        // Hub's Config findings alike.
        let config_types: BTreeSet<String> = if rules.is_empty() {
            BTreeSet::new()
        } else {
            spec.config_resource_types
                .iter()
                .map(|t| t.to_string())
                .collect()
        };
        assert!(
            rules.is_empty() || !config_types.is_empty(),
            "{name}: Config triggers need config_resource_types"
        );
        assert_eq!(listed(&ps, "resourceType"), config_types, "{name}");
        let asff_types: BTreeSet<String> = config_types
            .iter()
            .map(|t| {
                reflex_shared::finding::ResourceKind::parse(t)
                    .as_str()
                    .to_string()
            })
            .collect();
        assert_eq!(listed(&ps, "Type"), asff_types, "{name}");
        assert!(
            listed(&ps, "configRuleName").is_empty(),
            "{name}: never by rule name"
        );
        // GuardDuty types as Security Hub writes them (custom actions on GuardDuty findings).
        let in_types: BTreeSet<String> = types
            .iter()
            .map(|t| match t.split_once('/') {
                Some((head, tail)) => format!("wildcard:*/{head}-{tail}"),
                None => t.clone(),
            })
            .collect();
        assert_eq!(listed(&ps, "Types"), in_types, "{name}");
        assert_eq!(listed(&ps, "SecurityControlId"), controls, "{name}");
        assert_eq!(listed(&ps, "ControlId"), controls, "{name}");
        // A trailing `*` (`Backdoor:EC2/*`) is a prefix match in the GuardDuty rule.
        let gd_types: BTreeSet<String> = types
            .iter()
            .map(|t| match t.strip_suffix('*') {
                Some(stem) => format!("prefix:{stem}"),
                None => t.clone(),
            })
            .collect();
        assert_eq!(listed(&ps, "type"), gd_types, "{name}");
        assert_eq!(listed(&ps, "Id"), vulnerabilities, "{name}");

        // Every rule is pinned to this account's findings.
        for (rule, p) in &ps {
            let d = &p["detail"];
            let pinned = [
                &p["account"],
                &d["accountId"],
                &d["awsAccountId"],
                &d["findings"]["AwsAccountId"],
            ]
            .iter()
            .any(|v| **v == json!([ACCOUNT]));
            assert!(
                pinned,
                "{name}.{rule} is not pinned to the deploying account"
            );
        }
    }
}

#[test]
fn each_role_holds_exactly_the_declared_actions() {
    let t = template();
    for (name, function, spec) in functions(&t) {
        let mut granted = BTreeSet::new();
        for st in statements(&t, function) {
            assert_eq!(st["Effect"], "Allow");
            for a in st["Action"].as_array().unwrap() {
                let a = a.as_str().unwrap();
                assert!(!a.contains('*'), "{name}: wildcard action {a}");
                granted.insert(a.to_string());
            }
        }
        let declared: BTreeSet<String> = spec
            .iam_actions
            .iter()
            .chain(PIPELINE_IAM_ACTIONS)
            .map(|s| s.to_string())
            .collect();
        assert_eq!(granted, declared, "{name}");
        assert!(
            !granted.iter().any(|a| a.starts_with("dynamodb:Delete")),
            "{name} may not delete outcomes"
        );
    }
}

#[test]
fn the_outcome_table_matches_the_ledgers_definition() {
    let t = template();
    let p = &t["Resources"]["OutcomeTable"]["Properties"];
    let attrs: BTreeSet<_> = p["AttributeDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            assert_eq!(a["AttributeType"], "S");
            a["AttributeName"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(
        attrs,
        DEFINITION
            .attributes
            .iter()
            .map(|s| s.to_string())
            .collect()
    );
    assert_eq!(
        p["KeySchema"],
        json!([{ "AttributeName": DEFINITION.key, "KeyType": "HASH" }])
    );
    let indexes: Vec<_> = p["GlobalSecondaryIndexes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            assert_eq!(i["Projection"]["ProjectionType"], "ALL");
            let keys = i["KeySchema"].as_array().unwrap();
            assert_eq!(
                (keys[0]["KeyType"].as_str(), keys[1]["KeyType"].as_str()),
                (Some("HASH"), Some("RANGE"))
            );
            (
                i["IndexName"].as_str().unwrap(),
                keys[0]["AttributeName"].as_str().unwrap(),
                keys[1]["AttributeName"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(indexes, DEFINITION.indexes.to_vec());
    assert_eq!(p["BillingMode"], DEFINITION.billing_mode);
    assert_eq!(
        p["DeletionProtectionEnabled"],
        json!(DEFINITION.deletion_protection)
    );
    assert_eq!(
        p["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"],
        json!(true)
    );
    assert_eq!(p["TimeToLiveSpecification"]["AttributeName"], TTL_ATTRIBUTE);
    assert_eq!(t["Resources"]["OutcomeTable"]["DeletionPolicy"], "Retain");
}

#[test]
fn the_custom_actions_are_the_stacks_own_and_the_parser_knows_them() {
    let t = template();
    let actions: BTreeMap<_, _> = t["Resources"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, r)| r["Type"] == "AWS::SecurityHub::ActionTarget")
        .map(|(name, r)| (name.as_str(), r["Properties"]["Id"].as_str().unwrap()))
        .collect();
    // Scoped by the stack's id: another stack in the account and region has its own.
    assert_eq!(
        actions,
        BTreeMap::from([
            ("ApproveAction", APPROVE_ID),
            ("RemediateAction", REMEDIATE_ID)
        ])
    );
    for id in actions.values() {
        assert!(
            id.len() <= 20 && id.chars().all(|c| c.is_ascii_alphanumeric()),
            "{id}: Security Hub takes at most 20 alphanumerics"
        );
    }
    assert_eq!(action_intent(REMEDIATE_ID), Some(Intent::Remediate));
    assert_eq!(action_intent(APPROVE_ID), Some(Intent::Approve));
    // Every custom-action rule names exactly this stack's two actions.
    let mut rules = 0;
    for (name, function, _) in functions(&t) {
        for (rule, p) in patterns(function) {
            if p["detail-type"] == json!(["Security Hub Findings - Custom Action"]) {
                rules += 1;
                assert_eq!(
                    p["resources"],
                    json!([
                        format!(
                            "arn:aws:securityhub:{REGION}:{ACCOUNT}:action/custom/{REMEDIATE_ID}"
                        ),
                        format!(
                            "arn:aws:securityhub:{REGION}:{ACCOUNT}:action/custom/{APPROVE_ID}"
                        )
                    ]),
                    "{name}.{rule}"
                );
            }
        }
    }
    assert!(rules > 0);
}

#[test]
fn another_stacks_custom_action_is_not_routed() {
    let t = template();
    let (_, function, spec) = functions(&t).into_iter().next().unwrap();
    let q = matcher(function);
    let (_, raw) = samples(spec.name)
        .into_iter()
        .find(|(p, _)| p.ends_with("securityhub-custom-action-remediate-s3.3.json"))
        .unwrap();
    assert!(!q.matches_for_event(raw.as_bytes()).unwrap().is_empty());
    for other in ["ReflexFix99999999", REMEDIATE_ACTION_ID] {
        let theirs = raw.replace(REMEDIATE_ID, other);
        assert!(
            q.matches_for_event(theirs.as_bytes()).unwrap().is_empty(),
            "{other}"
        );
    }
}

/// The stack does not own the policy's value: no parameter resource, no template parameter to
/// squeeze a document into; the functions read `/<stack>/policy`, the name the output gives,
/// and may read exactly that parameter.
#[test]
fn the_policy_is_the_stacks_parameter_and_not_the_stacks_resource() {
    let t = template();
    let resources = t["Resources"].as_object().unwrap();
    assert!(
        resources
            .values()
            .all(|r| r["Type"] != "AWS::SSM::Parameter"),
        "the stack must not own the policy parameter"
    );
    assert!(t["Parameters"].get("PolicyDocument").is_none());
    let name = "/reflex/policy";
    assert_eq!(t["Outputs"]["PolicyParameterName"]["Value"], name);
    assert_eq!(
        t["Globals"]["Function"]["Environment"]["Variables"]["REFLEX_POLICY_PARAMETER"],
        name
    );
    let arn = format!("arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/reflex/policy");
    for (function, f, _) in functions(&t) {
        assert_eq!(
            env_var(&t, f, "REFLEX_POLICY_PARAMETER"),
            name,
            "{function}"
        );
        let ssm = granting(&t, f, "ssm:GetParameter");
        assert_eq!(ssm.len(), 1, "{function}");
        assert_eq!(ssm[0]["Action"], json!(["ssm:GetParameter"]), "{function}");
        assert_eq!(ssm[0]["Resource"], arn, "{function}");
    }
}

/// Two stacks share an account and region: the names they give are their own. The default
/// stack name gives what the CLI uses with no flags.
#[test]
fn named_resources_are_scoped_by_the_stack() {
    // Derived from the stack's name, not written out: as the template says it, unresolved.
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../infra/template.yaml");
    let raw: serde_norway::Value =
        serde_norway::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let sub = |v: &serde_norway::Value| match v {
        serde_norway::Value::Tagged(t) if t.tag == "!Sub" => t.value.as_str().map(str::to_string),
        _ => None,
    };
    assert_eq!(
        sub(&raw["Resources"]["OutcomeTable"]["Properties"]["TableName"]).as_deref(),
        Some("${AWS::StackName}-outcomes")
    );
    assert_eq!(
        sub(&raw["Outputs"]["PolicyParameterName"]["Value"]).as_deref(),
        Some("/${AWS::StackName}/policy")
    );
    assert_eq!(
        sub(&raw["Globals"]["Function"]["Environment"]["Variables"]["REFLEX_POLICY_PARAMETER"])
            .as_deref(),
        Some("/${AWS::StackName}/policy")
    );
    let t = template();
    let table = &t["Resources"]["OutcomeTable"]["Properties"]["TableName"];
    assert_eq!(table, "reflex-outcomes");
    assert_eq!(table, reflex_shared::ledger::table::DEFAULT_TABLE);
    assert_eq!(
        t["Outputs"]["PolicyParameterName"]["Value"],
        reflex_cli::policy_choice::DEPLOYED_PARAMETER
    );
    // Everything else named by CloudFormation (unique per stack): no fixed name anywhere.
    for (name, r) in t["Resources"].as_object().unwrap() {
        for key in [
            "FunctionName",
            "RoleName",
            "LogGroupName",
            "QueueName",
            "AlarmName",
            "Name",
            "ManagedPolicyName",
            "TableName",
        ] {
            let Some(v) = r["Properties"].get(key) else {
                continue;
            };
            let scoped = match key {
                "TableName" => v == "reflex-outcomes",
                // A custom action's display name (its Id is scoped, above).
                "Name" => r["Type"] == "AWS::SecurityHub::ActionTarget",
                _ => false,
            };
            assert!(scoped, "{name}.{key} = {v} is a fixed name");
        }
    }
}

/// A function's property, its own or from `Globals.Function`.
fn property<'a>(t: &'a Value, function: &'a Value, key: &str) -> &'a Value {
    match &function["Properties"][key] {
        Value::Null => &t["Globals"]["Function"][key],
        own => own,
    }
}

fn env_var<'a>(t: &'a Value, function: &'a Value, name: &str) -> &'a Value {
    match &function["Properties"]["Environment"]["Variables"][name] {
        Value::Null => &t["Globals"]["Function"]["Environment"]["Variables"][name],
        own => own,
    }
}

#[test]
fn every_function_times_out_before_its_claim_lease_ends() {
    let t = template();
    for (name, function, _) in functions(&t) {
        let timeout = property(&t, function, "Timeout")
            .as_i64()
            .unwrap_or_else(|| panic!("{name}: Timeout"));
        let lease: i64 = env_var(&t, function, "REFLEX_LEASE_SECONDS")
            .as_str()
            .unwrap_or_else(|| panic!("{name}: REFLEX_LEASE_SECONDS is set as a string"))
            .parse()
            .unwrap();
        assert!(
            reflex_shared::setup::LEASE_SECONDS_RANGE.contains(&lease),
            "{name}: lease {lease} is outside what a cold start accepts"
        );
        assert!(
            timeout < lease,
            "{name}: Timeout {timeout} s must be below the lease {lease} s, or a live invocation could be taken over"
        );
    }
}

#[test]
fn failed_invocations_land_in_an_encrypted_alarmed_queue_the_role_may_send_to() {
    let t = template();
    let resources = &t["Resources"];
    for (name, function, _) in functions(&t) {
        let config = property(&t, function, "EventInvokeConfig");
        let retries = config["MaximumRetryAttempts"]
            .as_i64()
            .expect("bounded retries");
        assert!((0..=2).contains(&retries), "{name}: {retries} retries");
        let on_failure = &config["DestinationConfig"]["OnFailure"];
        assert_eq!(on_failure["Type"], "SQS", "{name}");
        let queue = on_failure["Destination"]["!GetAtt"]
            .as_str()
            .and_then(|a| a.strip_suffix(".Arn"))
            .unwrap_or_else(|| panic!("{name}: destination is a queue of this stack"));
        assert_eq!(resources[queue]["Type"], "AWS::SQS::Queue", "{name}");
        // Encrypted: with the customer's key when one is given, else by SQS.
        let q = &resources[queue]["Properties"];
        assert_eq!(
            (&q["KmsMasterKeyId"], &q["SqsManagedSseEnabled"]),
            (
                &if_kms(json!({"!Ref": "KmsKeyArn"})),
                &if_kms_else(json!(true))
            ),
            "{queue} is encrypted"
        );
        let alarmed = resources.as_object().unwrap().values().any(|r| {
            r["Type"] == "AWS::CloudWatch::Alarm"
                && r["Properties"]["Dimensions"][0]["Value"]["!GetAtt"]
                    == json!(format!("{queue}.QueueName"))
        });
        assert!(alarmed, "{queue} has an alarm");
        // The role may send exactly there.
        let may_send = statements(&t, function).into_iter().any(|st| {
            st["Action"]
                .as_array()
                .unwrap()
                .contains(&json!("sqs:SendMessage"))
                && st["Resource"]["!GetAtt"] == json!(format!("{queue}.Arn"))
        });
        assert!(may_send, "{name}'s role may send to {queue}");
    }
}

/// The policy documents of a function's role: its inline ones, and those of the managed
/// policies of this stack it attaches (`!Ref PipelinePolicy`).
fn documents<'a>(t: &'a Value, function: &'a Value) -> Vec<&'a Value> {
    function["Properties"]["Policies"]
        .as_array()
        .expect("Policies")
        .iter()
        .map(|p| match p["!Ref"].as_str() {
            Some(id) => {
                let managed = &t["Resources"][id];
                assert_eq!(managed["Type"], "AWS::IAM::ManagedPolicy", "{id}");
                &managed["Properties"]["PolicyDocument"]
            }
            None => p,
        })
        .collect()
}

/// Every statement of a function's role, except those only a deployment option adds
/// (`!If [UseKmsKey, …]`: see `a_customer_key_is_used_everywhere_it_is_given`).
fn statements<'a>(t: &'a Value, function: &'a Value) -> Vec<&'a Value> {
    documents(t, function)
        .into_iter()
        .flat_map(|d| d["Statement"].as_array().unwrap())
        .filter(|st| st.get("!If").is_none())
        .collect()
}

/// The statements granting any action that starts with `prefix`.
fn granting<'a>(t: &'a Value, function: &'a Value, prefix: &str) -> Vec<&'a Value> {
    statements(t, function)
        .into_iter()
        .filter(|st| {
            st["Action"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a.as_str().unwrap().starts_with(prefix))
        })
        .collect()
}

#[test]
fn each_role_touches_only_its_own_items_of_the_outcome_table() {
    let t = template();
    for (name, function, spec) in functions(&t) {
        let ledger = granting(&t, function, "dynamodb:");
        // Item reads and writes on the table; queries (if the pipeline makes any) on its
        // indexes; nothing else, and never in the shared managed policy (it cannot name this
        // function's keys).
        let inline: Vec<&Value> = function["Properties"]["Policies"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p.get("!Ref").is_none())
            .flat_map(|p| p["Statement"].as_array().unwrap())
            .collect();
        assert!(!ledger.is_empty(), "{name}: no outcome table statement");
        for st in &ledger {
            assert!(inline.contains(st), "{name}: a shared policy grants {st}");
            let want = if st["Action"] == json!(["dynamodb:Query"]) {
                json!("${OutcomeTable.Arn}/index/by-time")
            } else {
                json!({ "!GetAtt": "OutcomeTable.Arn" })
            };
            assert_eq!(st["Resource"], want, "{name}: {st}");
        }
        // Its records, budget counters and suppressions, by the ledger's own key prefixes; and
        // the key must be in the request (ForAllValues alone holds for a request without it).
        let own: Vec<String> = key_prefixes(spec.name)
            .iter()
            .map(|p| format!("{p}*"))
            .collect();
        for st in &ledger {
            assert_eq!(
                st["Condition"],
                json!({
                    "ForAllValues:StringLike": { "dynamodb:LeadingKeys": own },
                    "Null": { "dynamodb:LeadingKeys": "false" },
                }),
                "{name}"
            );
        }
    }
}

/// The `securityhub:ASFFSyntaxPath/…` keys a `BatchUpdateFindings` request puts in IAM's request
/// context: each field it sets, as a whole and by its parts, with the value of a plain one.
fn asff_context(input: &BatchUpdateFindingsInput) -> BTreeMap<String, Option<String>> {
    let mut fields: Vec<(&str, Option<String>)> = Vec::new();
    if let Some(n) = &input.note {
        fields.push(("Note", None));
        fields.extend(n.text().map(|v| ("Note.Text", Some(v.to_string()))));
        fields.extend(
            n.updated_by()
                .map(|v| ("Note.UpdatedBy", Some(v.to_string()))),
        );
    }
    if let Some(w) = &input.workflow {
        fields.push(("Workflow", None));
        fields.extend(
            w.status()
                .map(|v| ("Workflow.Status", Some(v.as_str().to_string()))),
        );
    }
    if let Some(s) = &input.severity {
        fields.push(("Severity", None));
        fields.extend(
            s.label()
                .map(|v| ("Severity.Label", Some(v.as_str().to_string()))),
        );
        fields.extend(
            s.normalized()
                .map(|v| ("Severity.Normalized", Some(v.to_string()))),
        );
        fields.extend(
            s.product()
                .map(|v| ("Severity.Product", Some(v.to_string()))),
        );
    }
    if let Some(v) = &input.verification_state {
        fields.push(("VerificationState", Some(v.as_str().to_string())));
    }
    if let Some(v) = input.confidence {
        fields.push(("Confidence", Some(v.to_string())));
    }
    if let Some(v) = input.criticality {
        fields.push(("Criticality", Some(v.to_string())));
    }
    if input.types.is_some() {
        fields.push(("Types", None));
    }
    if let Some(u) = &input.user_defined_fields {
        fields.push(("UserDefinedFields", None));
        if !u.is_empty() {
            fields.extend([
                ("UserDefinedFields.key", None),
                ("UserDefinedFields.value", None),
            ]);
        }
    }
    if let Some(r) = &input.related_findings {
        fields.push(("RelatedFindings", None));
        if !r.is_empty() {
            fields.extend([
                ("RelatedFindings.Id", None),
                ("RelatedFindings.ProductArn", None),
            ]);
        }
    }
    fields
        .into_iter()
        .map(|(path, v)| (format!("securityhub:ASFFSyntaxPath/{path}"), v))
        .collect()
}

/// IAM's judgement of a statement's `Condition` on a request context, for the operators the
/// Security Hub statement uses (any other operator fails the test: teach it here first).
fn allows(condition: &Value, context: &BTreeMap<String, Option<String>>) -> bool {
    condition.as_object().unwrap().iter().all(|(op, tests)| {
        tests
            .as_object()
            .unwrap()
            .iter()
            .all(|(key, want)| match op.as_str() {
                "Null" => *want == json!((!context.contains_key(key)).to_string()),
                "StringEqualsIfExists" => match context.get(key) {
                    None => true,
                    Some(value) => {
                        let wanted: Vec<&Value> = match want {
                            Value::Array(items) => items.iter().collect(),
                            one => vec![one],
                        };
                        wanted.iter().any(|w| w.as_str() == value.as_deref())
                    }
                },
                other => panic!("the test does not know the condition operator {other}"),
            })
    })
}

#[tokio::test]
async fn security_hub_feedback_may_set_only_the_note_and_the_workflow_status_reflex_sends() {
    use aws_sdk_securityhub::types::{
        RelatedFinding, SeverityLabel, SeverityUpdate, VerificationState, WorkflowStatus,
        WorkflowUpdate,
    };
    // Every request Reflex sends: one report per outcome (moto lacks BatchUpdateFindings, so
    // an aws-smithy-mocks client records them).
    let raw = std::fs::read_to_string(
        events_dir().join("s3-block-public-access/securityhub-custom-action-remediate-s3.3.json"),
    )
    .unwrap();
    let finding = reflex_shared::finding::parse_bytes(raw.as_bytes())
        .unwrap()
        .remove(0);
    let (client, sent) = mocked_security_hub(true);
    let feedback = SecurityHubFeedback::new(client);
    for status in Status::ALL {
        feedback.report(&finding, status, "record r#1").await;
    }
    let sent = sent.lock().unwrap().clone();
    assert!(sent.iter().any(|i| i.workflow.is_some()) && sent.iter().any(|i| i.workflow.is_none()));
    let sent_statuses: BTreeSet<String> = sent
        .iter()
        .filter_map(|i| i.workflow.as_ref()?.status())
        .map(|s| s.as_str().to_string())
        .collect();

    // What Reflex never sends, one field at a time.
    let base = sent[0].clone();
    let forge = |change: &dyn Fn(&mut BatchUpdateFindingsInput)| {
        let mut input = base.clone();
        change(&mut input);
        input
    };
    let forged = [
        forge(&|i| {
            i.workflow = Some(
                WorkflowUpdate::builder()
                    .status(WorkflowStatus::Suppressed)
                    .build(),
            )
        }),
        forge(&|i| {
            i.severity = Some(
                SeverityUpdate::builder()
                    .label(SeverityLabel::Informational)
                    .build(),
            )
        }),
        forge(&|i| i.severity = Some(SeverityUpdate::builder().normalized(0).build())),
        forge(&|i| i.confidence = Some(0)),
        forge(&|i| i.criticality = Some(0)),
        forge(&|i| i.types = Some(vec!["Software and Configuration Checks".into()])),
        forge(&|i| i.user_defined_fields = Some([("k".into(), "v".into())].into())),
        forge(&|i| i.verification_state = Some(VerificationState::FalsePositive)),
        forge(&|i| i.related_findings = Some(vec![RelatedFinding::builder().id("x").build()])),
    ];

    let t = template();
    for (name, function, _) in functions(&t) {
        // The read-back (`securityhub:GetFindings`) has a statement of its own; what may
        // change a finding is in exactly one.
        let statements = granting(&t, function, "securityhub:BatchUpdateFindings");
        assert_eq!(
            statements.len(),
            1,
            "{name}: one Security Hub feedback statement"
        );
        assert_eq!(
            statements[0]["Action"],
            serde_json::json!(["securityhub:BatchUpdateFindings"]),
            "{name}: the feedback statement grants nothing else"
        );
        let condition = &statements[0]["Condition"];
        let allowed: BTreeSet<String> = condition["StringEqualsIfExists"]
            ["securityhub:ASFFSyntaxPath/Workflow.Status"]
            .as_array()
            .unwrap_or_else(|| panic!("{name}: no Workflow.Status condition"))
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        assert_eq!(
            allowed, sent_statuses,
            "{name}: exactly the statuses Reflex sets"
        );
        // Every other field BatchUpdateFindings can change must be absent, named as a whole and
        // by its parts.
        let never_set: &[(&str, &[&str])] = &[
            ("Confidence", &[]),
            ("Criticality", &[]),
            ("RelatedFindings", &["Id", "ProductArn"]),
            ("Severity", &["Label", "Normalized", "Product"]),
            ("Types", &[]),
            ("UserDefinedFields", &["key", "value"]),
            ("VerificationState", &[]),
        ];
        let absent: serde_json::Map<String, Value> = never_set
            .iter()
            .flat_map(|(field, parts)| {
                std::iter::once(field.to_string())
                    .chain(parts.iter().map(move |p| format!("{field}.{p}")))
            })
            .map(|path| (format!("securityhub:ASFFSyntaxPath/{path}"), json!("true")))
            .collect();
        assert_eq!(condition["Null"], Value::Object(absent), "{name}");
        for input in &sent {
            assert!(
                allows(condition, &asff_context(input)),
                "{name}: refuses what Reflex sends: {input:?}"
            );
        }
        for input in &forged {
            assert!(
                !allows(condition, &asff_context(input)),
                "{name}: allows what Reflex never sends: {input:?}"
            );
        }
    }
}

/// `!If [UseKmsKey, value, !Ref AWS::NoValue]`: the customer's key setting, only when one is given.
fn if_kms(value: Value) -> Value {
    json!({ "!If": ["UseKmsKey", value, { "!Ref": "AWS::NoValue" }] })
}

/// `!If [UseKmsKey, !Ref AWS::NoValue, value]`: the setting that serves when no key is given.
fn if_kms_else(value: Value) -> Value {
    json!({ "!If": ["UseKmsKey", { "!Ref": "AWS::NoValue" }, value] })
}

#[test]
fn each_function_has_its_schedule_and_its_completion_rules() {
    let t = template();
    for (name, function, spec) in functions(&t) {
        // A schedule rule exactly when the spec has scheduled work, with its expression.
        let want: Vec<String> = spec.schedule.iter().map(|s| s.to_string()).collect();
        assert_eq!(schedules(function), want, "{name}");
        // A function that waits for long operations has a sweep: a lost completion event is
        // then found by polling, and a deadline is enforced.
        assert!(
            spec.completion_events.is_empty() || spec.schedule.is_some(),
            "{name}: completion events but no schedule to poll and time out its operations"
        );
        // One rule per completion event, by exactly its source and detail type, pinned to
        // this account; and no rule names a source the spec does not route.
        for e in spec.completion_events {
            let rules: Vec<_> = patterns(function)
                .into_iter()
                .filter(|(_, p)| {
                    p["source"] == json!([e.source]) && p["detail-type"] == json!([e.detail_type])
                })
                .collect();
            assert_eq!(rules.len(), 1, "{name}: {e:?}");
            assert_eq!(
                rules[0].1,
                json!({ "source": [e.source], "detail-type": [e.detail_type], "account": [ACCOUNT] }),
                "{name}"
            );
        }
        let sources: BTreeSet<String> = patterns(function)
            .into_iter()
            .map(|(_, p)| p["source"].to_string())
            .collect();
        let known: BTreeSet<String> = ["aws.guardduty", "aws.securityhub", "aws.config"]
            .into_iter()
            .chain(spec.completion_events.iter().map(|e| e.source))
            .map(|s| json!([s]).to_string())
            .collect();
        assert!(sources.is_subset(&known), "{name}: {sources:?}");
    }
    // No registered function declares either yet: the generator's own case is the next test.
}

#[test]
fn the_generator_writes_schedules_completion_rules_and_wildcard_types() {
    use reflex_shared::policy::Risk;
    use reflex_shared::remediation::EventSource;
    // A spec such as the catalog's coming functions declare, through the real generator.
    static SPEC: Spec = Spec {
        name: "network-block-ip",
        risk: Risk::Low,
        triggers: &[
            Trigger::GuarddutyType("Recon:EC2/PortProbeUnprotectedPort"),
            Trigger::GuarddutyType("UnauthorizedAccess:EC2/MaliciousIPCaller*"),
        ],
        iam_actions: &["ec2:DescribeNetworkAcls", "ec2:CreateNetworkAclEntry"],
        reversible: true,
        config_resource_types: &[],
        parameters: None,
        schedule: Some("rate(15 minutes)"),
        completion_events: &[EventSource {
            source: "aws.ssm",
            detail_type: "EC2 Command Status-change Notification",
        }],
        completion_timeout_seconds: 3600,
        confirm_at_source: false,
    };
    let yaml = reflex_cli::template::render([&SPEC]).unwrap();
    let t = resolve_template(&serde_norway::from_str(&yaml).unwrap());
    let f = &t["Resources"]["NetworkBlockIpFunction"];
    assert_eq!(schedules(f), vec!["rate(15 minutes)".to_string()]);
    let ps = patterns(f);
    assert_eq!(
        listed(&ps, "type"),
        BTreeSet::from([
            "Recon:EC2/PortProbeUnprotectedPort".to_string(),
            "prefix:UnauthorizedAccess:EC2/MaliciousIPCaller".to_string()
        ])
    );
    let q = matcher(f);
    let gd = |t: &str| {
        json!({"source": "aws.guardduty", "detail-type": "GuardDuty Finding", "account": ACCOUNT,
               "detail": {"accountId": ACCOUNT, "type": t, "service": {"archived": false}}})
        .to_string()
    };
    for (event, hits) in [
        (gd("UnauthorizedAccess:EC2/MaliciousIPCaller.Custom"), 1),
        (gd("Recon:EC2/PortProbeUnprotectedPort"), 1),
        (gd("Recon:EC2/Portscan"), 0),
        (
            json!({"source": "aws.ssm", "detail-type": "EC2 Command Status-change Notification",
                   "account": ACCOUNT, "detail": {"status": "Success"}})
            .to_string(),
            1,
        ),
        (
            json!({"source": "aws.ssm", "detail-type": "EC2 Command Status-change Notification",
                   "account": "999999999999", "detail": {"status": "Success"}})
            .to_string(),
            0,
        ),
    ] {
        assert_eq!(
            q.matches_for_event(event.as_bytes()).unwrap().len(),
            hits,
            "{event}"
        );
    }
    // The role: the spec's actions, the pipeline's, nothing else.
    let granted: BTreeSet<String> = statements(&t, f)
        .into_iter()
        .flat_map(|st| st["Action"].as_array().unwrap().clone())
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    let declared: BTreeSet<String> = SPEC
        .iam_actions
        .iter()
        .chain(PIPELINE_IAM_ACTIONS)
        .map(|s| s.to_string())
        .collect();
    assert_eq!(granted, declared);
}

#[test]
fn a_customer_key_is_used_everywhere_it_is_given() {
    // checkov CKV_AWS_119 (table), CKV_AWS_27 (queues), CKV_AWS_173 (environment): the
    // optional KmsKeyArn parameter, AWS-owned or AWS-managed keys when it is empty.
    let t = template();
    let r = &t["Resources"];
    assert_eq!(t["Parameters"]["KmsKeyArn"]["Default"], "");
    assert_eq!(
        t["Conditions"]["UseKmsKey"],
        json!({ "!Not": [{ "!Equals": [{ "!Ref": "KmsKeyArn" }, ""] }] })
    );
    let sse = &r["OutcomeTable"]["Properties"]["SSESpecification"];
    assert_eq!(sse["SSEEnabled"], true);
    assert_eq!(sse["SSEType"], if_kms(json!("KMS")));
    assert_eq!(
        sse["KMSMasterKeyId"],
        if_kms(json!({ "!Ref": "KmsKeyArn" }))
    );
    let key = if_kms(json!({ "!Ref": "KmsKeyArn" }));
    for (name, function, _) in functions(&t) {
        let p = &function["Properties"];
        assert_eq!(p["KmsKeyArn"], key, "{name}: environment");
        let logs = p["LoggingConfig"]["LogGroup"]["!Ref"].as_str().unwrap();
        assert_eq!(r[logs]["Type"], "AWS::Logs::LogGroup", "{name}");
        assert_eq!(r[logs]["Properties"]["KmsKeyId"], key, "{name}: logs");
        // With the key, the on-failure queue needs it to send there.
        let conditional: Vec<&Value> = documents(&t, function)
            .into_iter()
            .flat_map(|d| d["Statement"].as_array().unwrap())
            .filter_map(|st| st.get("!If"))
            .collect();
        assert_eq!(
            conditional,
            vec![&json!([
                "UseKmsKey",
                {
                    "Sid": "OnFailureDestinationKey",
                    "Effect": "Allow",
                    "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
                    "Resource": { "!Ref": "KmsKeyArn" }
                },
                { "!Ref": "AWS::NoValue" }
            ])],
            "{name}"
        );
    }
}

#[test]
fn each_function_has_reserved_concurrency_and_the_shared_pipeline_policy() {
    // checkov CKV_AWS_115: a misfiring rule cannot fan a remediation out across the account.
    let t = template();
    let reserved = &t["Parameters"]["ReservedConcurrency"];
    assert!(reserved["Default"].as_i64().is_some_and(|n| n >= 1));
    for (name, function, _) in functions(&t) {
        let p = &function["Properties"];
        assert_eq!(
            p["ReservedConcurrentExecutions"],
            json!({ "!Ref": "ReservedConcurrency" }),
            "{name}"
        );
        assert!(
            p["Policies"]
                .as_array()
                .unwrap()
                .contains(&json!({ "!Ref": reflex_cli::template::POLICY_ID })),
            "{name}: attaches the pipeline policy"
        );
    }
}

/// Notifications and alarms: one encrypted topic of the stack's, every alarm telling it, the
/// failure alarms counting the outcomes the functions' EMF lines write (not invocation errors,
/// which `Reflex.RecordBusy` retries make on purpose), and each role publishing there only.
#[test]
fn alarms_and_notifications_go_to_the_stacks_encrypted_topic() {
    let t = template();
    let r = &t["Resources"];
    let topic = &r["NotificationTopic"];
    assert_eq!(topic["Type"], "AWS::SNS::Topic");
    // checkov CKV_AWS_26; alarms cannot publish under the AWS managed key, so the stack's own.
    assert_eq!(
        topic["Properties"]["KmsMasterKeyId"],
        json!({ "!If": ["UseKmsKey", { "!Ref": "KmsKeyArn" }, { "!GetAtt": "NotificationKey.Arn" }] })
    );
    let key = &r["NotificationKey"];
    assert_eq!(key["Type"], "AWS::KMS::Key");
    assert_eq!(key["Condition"], "OwnNotificationKey");
    assert_eq!(
        t["Conditions"]["OwnNotificationKey"],
        json!({ "!Equals": [{ "!Ref": "KmsKeyArn" }, ""] })
    );
    assert_eq!(key["Properties"]["EnableKeyRotation"], true);
    let key_statements = key["Properties"]["KeyPolicy"]["Statement"]
        .as_array()
        .unwrap();
    assert!(key_statements
        .iter()
        .any(|s| s["Principal"]["Service"] == "cloudwatch.amazonaws.com"));
    assert_eq!(
        t["Outputs"]["NotificationTopicArn"]["Value"],
        json!({ "!Ref": "NotificationTopic" })
    );

    let alarms: Vec<(&String, &Value)> = r
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, v)| v["Type"] == "AWS::CloudWatch::Alarm")
        .collect();
    for (name, alarm) in &alarms {
        let p = &alarm["Properties"];
        assert_eq!(
            p["AlarmActions"],
            json!([{ "!Ref": "NotificationTopic" }]),
            "{name} tells the topic"
        );
        assert_ne!(
            (&p["Namespace"], &p["MetricName"]),
            (&json!("AWS/Lambda"), &json!("Errors")),
            "{name} would fire on every RecordBusy retry"
        );
    }
    let namespace = format!("Reflex/{STACK_NAME}");
    for (name, function, spec) in functions(&t) {
        assert_eq!(
            env_var(&t, function, reflex_shared::metrics::NAMESPACE_ENV),
            &json!(namespace),
            "{name}"
        );
        assert_eq!(
            env_var(&t, function, reflex_shared::notify::TOPIC_ENV),
            &json!({ "!Ref": "NotificationTopic" }),
            "{name}"
        );
        let failures = alarms.iter().find(|(_, a)| {
            let p = &a["Properties"];
            p["MetricName"] == "Failures"
                && p["Dimensions"] == json!([{ "Name": "Remediation", "Value": spec.name }])
        });
        let (_, failures) = failures.unwrap_or_else(|| panic!("{name}: no Failures alarm"));
        let p = &failures["Properties"];
        assert_eq!(p["Namespace"], json!(namespace), "{name}");
        assert_eq!(
            (&p["Statistic"], &p["Threshold"]),
            (&json!("Sum"), &json!(0))
        );
        assert_eq!(p["ComparisonOperator"], "GreaterThanThreshold");
        // The metric the alarm reads is the one a failed outcome writes.
        let mut record = reflex_shared::ledger::OutcomeRecord::new(
            "r".into(),
            spec.name,
            &reflex_shared::ledger::RecordMeta {
                function_version: "1".into(),
                request_id: "r".into(),
                event_digest: "d".into(),
                claim_token: "t".into(),
            },
            "now",
        );
        record.set_outcome(
            Status::Failed,
            reflex_shared::status::Reason::ActionError,
            "x",
        );
        let doc = reflex_shared::metrics::outcome_document(&namespace, &record, chrono::Utc::now())
            .unwrap();
        assert_eq!(doc["Failures"], 1);
        assert_eq!(doc["Remediation"], spec.name);
        assert!(doc["_aws"]["CloudWatchMetrics"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["Namespace"] == json!(namespace)
                && d["Dimensions"] == json!([["Remediation"]])
                && d["Metrics"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|m| m["Name"] == "Failures")));

        // The role publishes to that topic alone, and uses its key only through SNS.
        let publish = granting(&t, function, "sns:");
        assert_eq!(publish.len(), 1, "{name}");
        assert_eq!(publish[0]["Action"], json!(["sns:Publish"]));
        assert_eq!(
            publish[0]["Resource"],
            json!({ "!Ref": "NotificationTopic" })
        );
        let keys: Vec<&Value> = granting(&t, function, "kms:");
        assert_eq!(keys.len(), 1, "{name}");
        assert_eq!(
            keys[0]["Resource"],
            json!({ "!If": ["UseKmsKey", { "!Ref": "KmsKeyArn" }, { "!GetAtt": "NotificationKey.Arn" }] })
        );
        assert_eq!(
            keys[0]["Condition"]["StringEquals"]["kms:ViaService"],
            json!(format!("sns.{REGION}.amazonaws.com"))
        );
    }
}
