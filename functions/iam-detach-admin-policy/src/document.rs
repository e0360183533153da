//! Whether a policy document grants full administrative access: an `Allow` statement of every
//! action (`*`) on every resource (`*`), as IAM.1 and the managed Config rule
//! IAM_POLICY_NO_STATEMENTS_WITH_ADMIN_ACCESS judge it (a condition does not make it less so).
//! Pure.

use serde_json::Value;

/// The document as IAM returns it: URL-encoded JSON (RFC 3986) on AWS; moto returns it plain.
pub fn parse(text: &str) -> Option<Value> {
    serde_json::from_str(text)
        .ok()
        .or_else(|| serde_json::from_str(&percent_decode(text)?).ok())
}

/// `%XX` sequences decoded (a `+` stays a `+`: RFC 3986, not form encoding).
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// A string or a list of strings, as a policy writes `Action` and `Resource`.
fn names(v: Option<&Value>) -> Vec<&str> {
    match v {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// Some statement allows every action on every resource.
pub fn grants_full_admin(document: &Value) -> bool {
    let statements: Vec<&Value> = match document.get("Statement") {
        Some(Value::Array(a)) => a.iter().collect(),
        Some(s @ Value::Object(_)) => vec![s],
        _ => Vec::new(),
    };
    statements.iter().any(|s| {
        s.get("Effect").and_then(Value::as_str) == Some("Allow")
            && names(s.get("Action"))
                .iter()
                .any(|a| *a == "*" || *a == "*:*")
            && names(s.get("Resource")).contains(&"*")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn full_admin_table() {
        let cases = [
            (
                json!({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}),
                true,
            ),
            (
                json!({"Statement": {"Effect": "Allow", "Action": ["*"], "Resource": ["*"]}}),
                true,
            ),
            (
                json!({"Statement": [{"Effect": "Allow", "Action": "*:*", "Resource": "*"}]}),
                true,
            ),
            // A condition does not make it less than full admin (as the control judges it).
            (
                json!({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*",
                    "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}}}]}),
                true,
            ),
            (
                json!({"Statement": [
                    {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
                    {"Effect": "Allow", "Action": ["ec2:*", "*"], "Resource": ["arn:aws:s3:::b", "*"]}
                ]}),
                true,
            ),
            (
                json!({"Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*"}]}),
                false,
            ),
            (
                json!({"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}),
                false,
            ),
            (
                json!({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "arn:aws:s3:::b"}]}),
                false,
            ),
            (
                json!({"Statement": [{"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}]}),
                false,
            ),
            (json!({"Statement": []}), false),
            (json!({}), false),
        ];
        for (doc, want) in cases {
            assert_eq!(grants_full_admin(&doc), want, "{doc}");
        }
    }

    #[test]
    fn documents_as_aws_and_moto_return_them() {
        let plain = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;
        // AWS URL-encodes the document (RFC 3986).
        let encoded = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Action%22%3A%22%2A%22%2C%22Resource%22%3A%22%2A%22%7D%5D%7D";
        for text in [plain, encoded] {
            let doc = parse(text).unwrap();
            assert!(grants_full_admin(&doc), "{text}");
        }
        assert_eq!(parse("%7Bnot json"), None);
        assert_eq!(parse("%ZZ"), None);
        assert_eq!(parse("%7"), None);
    }
}
