//! The deny-non-TLS statement and the bucket policy it is merged into, as JSON values: S3 keeps
//! a document in its own normal form (whitespace, key order), so documents are compared by
//! meaning, never as strings. Pure.

use serde_json::{json, Map, Value};

/// The statement id Reflex gives its statement (another is chosen if the policy uses it).
pub const SID: &str = "ReflexDenyInsecureTransport";
/// The policy language version of a policy Reflex writes from nothing.
pub const VERSION: &str = "2012-10-17";

/// Deny every S3 action on the bucket and its objects to any request not made over TLS, as
/// AWS's S3.5 remediation and the Config rule S3_BUCKET_SSL_REQUESTS_ONLY describe it.
pub fn statement(sid: &str, bucket_arn: &str) -> Value {
    json!({
        "Sid": sid,
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [bucket_arn, format!("{bucket_arn}/*")],
        "Condition": { "Bool": { "aws:SecureTransport": "false" } },
    })
}

/// Why a document cannot take the statement (it is not a policy Reflex can read).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unmergeable {
    #[error("the bucket policy is not a JSON object")]
    NotAnObject,
    #[error("the bucket policy's Statement is neither a statement nor a list of them")]
    BadStatement,
}

/// The statements of a policy: one object or a list of them (IAM accepts both).
fn statements(doc: &Value) -> Vec<&Value> {
    match doc.get("Statement") {
        Some(Value::Array(list)) => list.iter().collect(),
        Some(one @ Value::Object(_)) => vec![one],
        _ => Vec::new(),
    }
}

/// Whether `doc` already denies every request over plain HTTP to the bucket and to all its
/// objects (possibly in two statements). A deny narrowed by other conditions, to some actions,
/// to some principals, or written with `Not…` elements does not count.
pub fn denies_insecure_transport(doc: &Value, bucket_arn: &str) -> bool {
    let objects = format!("{bucket_arn}/");
    let mut bucket = false;
    let mut all_objects = false;
    for s in statements(doc).into_iter().filter(|s| full_tls_deny(s)) {
        for pattern in strings(s.get("Resource")) {
            bucket |= glob(pattern, bucket_arn);
            all_objects |= pattern.ends_with('*') && glob(pattern, &objects);
        }
    }
    bucket && all_objects
}

/// A Deny for everyone of every S3 action, conditioned only on `aws:SecureTransport` false.
fn full_tls_deny(s: &Value) -> bool {
    let has = |k: &str| s.get(k).is_some();
    if s.get("Effect").and_then(Value::as_str) != Some("Deny")
        || has("NotPrincipal")
        || has("NotAction")
        || has("NotResource")
    {
        return false;
    }
    let everyone = match s.get("Principal") {
        Some(Value::String(p)) => p == "*",
        Some(Value::Object(p)) => p.len() == 1 && strings(p.get("AWS")).contains(&"*"),
        _ => false,
    };
    let every_action = strings(s.get("Action"))
        .iter()
        .any(|a| *a == "*" || a.eq_ignore_ascii_case("s3:*"));
    everyone && every_action && only_insecure_transport(s.get("Condition"))
}

/// `{"Bool" | "BoolIfExists": {"aws:SecureTransport": false}}` and nothing else: any other
/// condition narrows the deny.
fn only_insecure_transport(condition: Option<&Value>) -> bool {
    let Some(Value::Object(ops)) = condition else {
        return false;
    };
    let [(op, Value::Object(keys))] = ops.iter().collect::<Vec<_>>()[..] else {
        return false;
    };
    let [(key, value)] = keys.iter().collect::<Vec<_>>()[..] else {
        return false;
    };
    let is_false = |v: &Value| match v {
        Value::Bool(b) => !b,
        Value::String(s) => s.eq_ignore_ascii_case("false"),
        _ => false,
    };
    let values: Vec<&Value> = match value {
        Value::Array(list) => list.iter().collect(),
        one => vec![one],
    };
    (op == "Bool" || op == "BoolIfExists")
        && key.eq_ignore_ascii_case("aws:SecureTransport")
        && !values.is_empty()
        && values.iter().all(|v| is_false(v))
}

/// A string or a list of strings (anything else: none).
fn strings(v: Option<&Value>) -> Vec<&str> {
    match v {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// IAM's ARN wildcards: `*` any run of characters, `?` any one.
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// `doc` (or no policy at all) with the deny-non-TLS statement added after its own statements,
/// which are kept exactly as they are, as is every other element of the document.
pub fn merge(doc: Option<&Value>, bucket_arn: &str) -> Result<Value, Unmergeable> {
    let Some(doc) = doc else {
        return Ok(json!({ "Version": VERSION, "Statement": [statement(SID, bucket_arn)] }));
    };
    let mut out: Map<String, Value> = doc.as_object().ok_or(Unmergeable::NotAnObject)?.clone();
    let mut list = match out.remove("Statement") {
        None => Vec::new(),
        Some(Value::Array(list)) => list,
        Some(one @ Value::Object(_)) => vec![one],
        Some(_) => return Err(Unmergeable::BadStatement),
    };
    let taken = |sid: &str| list.iter().any(|s| s.get("Sid") == Some(&json!(sid)));
    let sid = std::iter::once(SID.to_string())
        .chain((2..).map(|n| format!("{SID}{n}")))
        .find(|sid| !taken(sid))
        .unwrap_or_else(|| SID.to_string());
    list.push(statement(&sid, bucket_arn));
    out.insert("Statement".into(), Value::Array(list));
    out.entry("Version").or_insert_with(|| json!(VERSION));
    Ok(Value::Object(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: &str = "arn:aws:s3:::logs";

    fn deny(resource: Value, condition: Value) -> Value {
        json!({"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": resource, "Condition": condition})
    }

    fn doc(statements: Vec<Value>) -> Value {
        json!({"Version": "2012-10-17", "Statement": statements})
    }

    #[test]
    fn what_counts_as_denying_plain_http() {
        let tls = json!({"Bool": {"aws:SecureTransport": "false"}});
        let both = json!([B, format!("{B}/*")]);
        let cases: Vec<(&str, Value, bool)> = vec![
            ("ours", doc(vec![statement(SID, B)]), true),
            (
                "both resources",
                doc(vec![deny(both.clone(), tls.clone())]),
                true,
            ),
            (
                "one statement per resource",
                doc(vec![
                    deny(json!(B), tls.clone()),
                    deny(json!(format!("{B}/*")), tls.clone()),
                ]),
                true,
            ),
            (
                "a single statement, not a list",
                json!({"Statement": deny(both.clone(), tls.clone())}),
                true,
            ),
            (
                "a wildcard resource",
                doc(vec![deny(json!("*"), tls.clone())]),
                true,
            ),
            (
                "a bucket-prefix wildcard",
                doc(vec![deny(json!("arn:aws:s3:::log*"), tls.clone())]),
                true,
            ),
            (
                "boolean false, BoolIfExists, key in another case",
                doc(vec![deny(
                    both.clone(),
                    json!({"BoolIfExists": {"AWS:SecureTransport": false}}),
                )]),
                true,
            ),
            (
                "principal AWS *, action *",
                doc(vec![
                    json!({"Effect": "Deny", "Principal": {"AWS": ["*"]}, "Action": ["*"], "Resource": both, "Condition": tls}),
                ]),
                true,
            ),
            ("no policy statements", doc(vec![]), false),
            (
                "the bucket only",
                doc(vec![deny(json!(B), tls.clone())]),
                false,
            ),
            (
                "the objects only",
                doc(vec![deny(json!(format!("{B}/*")), tls.clone())]),
                false,
            ),
            (
                "some objects only",
                doc(vec![deny(
                    json!([B, format!("{B}/private/*")]),
                    tls.clone(),
                )]),
                false,
            ),
            (
                "another bucket",
                doc(vec![deny(
                    json!(["arn:aws:s3:::other", "arn:aws:s3:::other/*"]),
                    tls.clone(),
                )]),
                false,
            ),
            (
                "secure transport true",
                doc(vec![deny(
                    both.clone(),
                    json!({"Bool": {"aws:SecureTransport": "true"}}),
                )]),
                false,
            ),
            (
                "narrowed by another condition",
                doc(vec![deny(
                    both.clone(),
                    json!({"Bool": {"aws:SecureTransport": "false"}, "StringEquals": {"aws:PrincipalAccount": "1"}}),
                )]),
                false,
            ),
            (
                "no condition",
                doc(vec![deny(both.clone(), json!(null))]),
                false,
            ),
            (
                "an allow",
                doc(vec![
                    json!({"Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": both, "Condition": tls}),
                ]),
                false,
            ),
            (
                "some actions only",
                doc(vec![
                    json!({"Effect": "Deny", "Principal": "*", "Action": "s3:GetObject", "Resource": both, "Condition": tls}),
                ]),
                false,
            ),
            (
                "one principal only",
                doc(vec![
                    json!({"Effect": "Deny", "Principal": {"AWS": "arn:aws:iam::1:root"}, "Action": "s3:*", "Resource": both, "Condition": tls}),
                ]),
                false,
            ),
            (
                "NotPrincipal",
                doc(vec![
                    json!({"Effect": "Deny", "NotPrincipal": {"AWS": "arn:aws:iam::1:root"}, "Principal": "*", "Action": "s3:*", "Resource": both, "Condition": tls}),
                ]),
                false,
            ),
        ];
        for (name, d, want) in cases {
            assert_eq!(denies_insecure_transport(&d, B), want, "{name}");
        }
    }

    #[test]
    fn merging_keeps_every_statement_and_element() {
        let three = json!({
            "Version": "2008-10-17",
            "Id": "team-policy",
            "Statement": [
                {"Sid": "A", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::1:root"}, "Action": "s3:GetObject", "Resource": format!("{B}/*")},
                {"Sid": "B", "Effect": "Deny", "Principal": "*", "Action": "s3:DeleteBucket", "Resource": B},
                {"Sid": SID, "Effect": "Allow", "Principal": "*", "Action": "s3:ListBucket", "Resource": B},
            ]
        });
        let merged = merge(Some(&three), B).unwrap();
        let list = merged["Statement"].as_array().unwrap();
        assert_eq!(list.len(), 4);
        assert_eq!(
            &list[..3],
            three["Statement"].as_array().unwrap().as_slice()
        );
        // Its own Sid is taken: the next free one.
        assert_eq!(list[3], statement(&format!("{SID}2"), B));
        assert_eq!(merged["Version"], "2008-10-17");
        assert_eq!(merged["Id"], "team-policy");
        assert!(denies_insecure_transport(&merged, B));
        assert!(!denies_insecure_transport(&three, B));
    }

    #[test]
    fn merging_into_nothing_and_odd_shapes() {
        let fresh = merge(None, B).unwrap();
        assert_eq!(
            fresh,
            json!({"Version": VERSION, "Statement": [statement(SID, B)]})
        );
        let single = json!({"Statement": {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": B}});
        let merged = merge(Some(&single), B).unwrap();
        assert_eq!(merged["Statement"][0], single["Statement"]);
        assert_eq!(merged["Version"], VERSION);
        assert_eq!(merge(Some(&json!([1])), B), Err(Unmergeable::NotAnObject));
        assert_eq!(
            merge(Some(&json!({"Statement": "x"})), B),
            Err(Unmergeable::BadStatement)
        );
    }

    #[test]
    fn globs() {
        for (p, t, want) in [
            ("*", "anything", true),
            ("arn:aws:s3:::b/*", "arn:aws:s3:::b/", true),
            ("arn:aws:s3:::b?", "arn:aws:s3:::bx", true),
            ("arn:aws:s3:::b", "arn:aws:s3:::bx", false),
            ("arn:aws:s3:::*/*", "arn:aws:s3:::b/", true),
            ("a*c", "abbbc", true),
            ("a*c", "abbbd", false),
        ] {
            assert_eq!(glob(p, t), want, "{p} {t}");
        }
    }
}
