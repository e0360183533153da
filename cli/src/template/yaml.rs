//! Writing YAML text by hand, safely: the generated template keeps its comments and reads like
//! the hand-written one, and every value from a Spec is quoted where YAML would misread it.

/// `s` as a YAML scalar: plain where that reads back as the same string, else double-quoted
/// (a JSON string is a valid YAML double-quoted scalar).
pub fn scalar(s: &str) -> String {
    if plain_is_safe(s) {
        s.to_string()
    } else {
        serde_json::Value::String(s.to_string()).to_string()
    }
}

fn plain_is_safe(s: &str) -> bool {
    // Words YAML 1.1 or 1.2 readers take for booleans or null.
    const SPECIAL: &[&str] = &[
        "true", "false", "yes", "no", "on", "off", "y", "n", "null", "~",
    ];
    let first = match s.chars().next() {
        Some(c) => c,
        None => return false,
    };
    first.is_ascii_alphabetic()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-/:".contains(c))
        && !s.ends_with(':')
        && !SPECIAL.contains(&s.to_ascii_lowercase().as_str())
}

/// `s` as a flow sequence of scalars: `[a, b]`.
pub fn flow(items: &[String]) -> String {
    format!(
        "[{}]",
        items
            .iter()
            .map(|i| scalar(i))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// A CloudFormation logical id from a kebab-case name: `s3-block-public-access` →
/// `S3BlockPublicAccess` (letters and digits only, each word capitalised).
pub fn pascal(name: &str) -> String {
    name.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut chars = w.chars();
            match chars.next() {
                Some(c) => {
                    c.to_ascii_uppercase().to_string() + &chars.as_str().to_ascii_lowercase()
                }
                None => String::new(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_read_back_as_themselves() {
        let cases: &[(&str, &str)] = &[
            ("S3.8", "S3.8"),
            ("AWS::S3::Bucket", "AWS::S3::Bucket"),
            (
                "Policy:S3/BucketAnonymousAccessGranted",
                "Policy:S3/BucketAnonymousAccessGranted",
            ),
            ("Backdoor:EC2/*", "\"Backdoor:EC2/*\""),
            ("rate(15 minutes)", "\"rate(15 minutes)\""),
            (
                "EC2 Command Status-change Notification",
                "\"EC2 Command Status-change Notification\"",
            ),
            ("aws.ssm", "aws.ssm"),
            ("no", "\"no\""),
            ("Off", "\"Off\""),
            ("", "\"\""),
            ("1.5", "\"1.5\""),
            ("key:", "\"key:\""),
            ("a: b", "\"a: b\""),
            ("say \"hi\"", "\"say \\\"hi\\\"\""),
        ];
        for (input, want) in cases {
            assert_eq!(scalar(input), *want, "{input}");
        }
    }

    #[test]
    fn logical_ids() {
        let cases: &[(&str, &str)] = &[
            ("s3-block-public-access", "S3BlockPublicAccess"),
            ("network-block-ip", "NetworkBlockIp"),
            (
                "EC2 Command Status-change Notification",
                "Ec2CommandStatusChangeNotification",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(pascal(input), *want, "{input}");
        }
    }
}
