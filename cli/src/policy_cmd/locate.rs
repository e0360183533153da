//! Where a policy key is in the document: the line an error names. Pure.
//!
//! Validation errors name keys as paths (`remediations.s3-block-pubic-access`,
//! `remediations.x.overrides[1].match`); this finds that path's line in block-style YAML. A
//! key inside a flow mapping (`{mode: dry-run}`) is given the line of the nearest block key
//! above it on the path, which is where the operator looks anyway.

/// A meaningful line: its 1-based number, its indent, and its text after the indent. A block
/// sequence item `- key: v` is two entries on the same line: the item (`-`) and, two columns
/// deeper, its first key.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Line<'a> {
    no: usize,
    indent: usize,
    text: &'a str,
}

fn lines(doc: &str) -> Vec<Line<'_>> {
    let mut out = Vec::new();
    for (i, raw) in doc.lines().enumerate() {
        let text = raw.trim_start();
        if text.is_empty() || text.starts_with('#') || text == "---" {
            continue;
        }
        let mut indent = raw.len() - text.len();
        let mut text = text;
        // `- - x` nests items; each `- ` opens one.
        loop {
            let rest = match text.strip_prefix("- ") {
                Some(rest) => rest,
                None if text == "-" => "",
                None => break,
            };
            out.push(Line {
                no: i + 1,
                indent,
                text: "-",
            });
            let inner = rest.trim_start();
            indent += 2 + (rest.len() - inner.len());
            text = inner;
            if text.is_empty() {
                break;
            }
        }
        if !text.is_empty() {
            out.push(Line {
                no: i + 1,
                indent,
                text,
            });
        }
    }
    out
}

/// The mapping key a line starts with, unquoted: `key: v`, `"key": v`, `key:`.
fn key_of(text: &str) -> Option<String> {
    if let Some(q) = text.chars().next().filter(|c| *c == '"' || *c == '\'') {
        let end = text[1..].find(q)? + 1;
        let after = &text[end + 1..];
        return after
            .trim_start()
            .starts_with(':')
            .then(|| text[1..end].to_string());
    }
    let colon = text
        .match_indices(':')
        .find(|(i, _)| {
            let after = &text[i + 1..];
            after.is_empty() || after.starts_with(' ') || after.starts_with('\t')
        })
        .map(|(i, _)| i)?;
    Some(text[..colon].trim_end().to_string())
}

/// The child (of those at `at_level`) that `path` goes into first, and the rest of the path.
fn step<'p>(all: &[Line<'_>], at_level: &[usize], path: &'p str) -> Option<(usize, &'p str)> {
    if let Some(index) = path.strip_prefix('[') {
        let close = index.find(']')?;
        let n: usize = index[..close].parse().ok()?;
        let item = at_level
            .iter()
            .copied()
            .filter(|&i| all[i].text == "-")
            .nth(n)?;
        return Some((item, &index[close + 1..]));
    }
    // The longest key that the path goes on from: keys may hold dots (an ARN).
    let (item, key_len) = at_level
        .iter()
        .filter_map(|&i| key_of(all[i].text).map(|k| (i, k)))
        .filter(|(_, k)| {
            path.strip_prefix(k.as_str())
                .is_some_and(|r| r.is_empty() || r.starts_with('.') || r.starts_with('['))
        })
        .map(|(i, k)| (i, k.len()))
        .max_by_key(|(_, len)| *len)?;
    Some((item, &path[key_len..]))
}

/// The line (1-based) of `path` in `doc`, or of the deepest key of it found there.
pub fn line_of(doc: &str, path: &str) -> Option<usize> {
    let all = lines(doc);
    // The current node's children are `all[start..end]`.
    let (mut start, mut end) = (0, all.len());
    let mut rest = path;
    let mut found = None;
    while !rest.is_empty() && start < end {
        let children = &all[start..end];
        let indent = children.iter().map(|l| l.indent).min()?;
        let at_level: Vec<usize> = (start..end).filter(|&i| all[i].indent == indent).collect();
        let Some((chosen, after)) = step(&all, &at_level, rest) else {
            break;
        };
        rest = after;
        rest = rest.strip_prefix('.').unwrap_or(rest);
        found = Some(all[chosen].no);
        start = chosen + 1;
        end = (start..end)
            .find(|&i| all[i].indent <= all[chosen].indent)
            .unwrap_or(end);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = r#"version: 1
# a comment
defaults:
  severity_threshold: 101
accounts:
  "111122223333": {mode: dry-run}
trusted_config_rules:
  "arn:aws:config:us-east-1:1:config-rule/a.b": S3_X
remediations:
  s3-block-pubic-access:
    mode: enforce
  network-block-ip:
    mode: enforce
    overrides:
      - match: {types: [X]}
        set: {mode: approve}
      - match:
          accounts: ["1", "2"]
        set:
          severity_threshold: 200
operators:
  - alice
  - 'arn:aws:iam::1:user/b'
"#;

    #[test]
    fn keys_are_found_on_their_lines() {
        let cases = [
            ("version", Some(1)),
            ("defaults.severity_threshold", Some(4)),
            ("accounts.111122223333", Some(6)),
            // Inside a flow mapping: the line of the key that holds it.
            ("accounts.111122223333.mode", Some(6)),
            (
                "trusted_config_rules.arn:aws:config:us-east-1:1:config-rule/a.b",
                Some(8),
            ),
            ("remediations.s3-block-pubic-access", Some(10)),
            ("remediations.network-block-ip.overrides[0]", Some(15)),
            ("remediations.network-block-ip.overrides[0].match", Some(15)),
            ("remediations.network-block-ip.overrides[0].set", Some(16)),
            ("remediations.network-block-ip.overrides[1].match", Some(17)),
            (
                "remediations.network-block-ip.overrides[1].match.accounts[1]",
                Some(18),
            ),
            (
                "remediations.network-block-ip.overrides[1].set.severity_threshold",
                Some(20),
            ),
            ("operators[0]", Some(22)),
            ("operators[1]", Some(23)),
            // Not in the document at all: no line, rather than a wrong one.
            ("exemptions.tag", None),
            // Found in part: the deepest key found.
            ("remediations.network-block-ip.max_attempts", Some(12)),
        ];
        for (path, want) in cases {
            assert_eq!(line_of(DOC, path), want, "{path}");
        }
    }

    #[test]
    fn keys_are_read_as_yaml_writes_them() {
        let cases = [
            ("mode: x", Some("mode")),
            ("mode:", Some("mode")),
            ("\"1111\": {a: b}", Some("1111")),
            ("'k': v", Some("k")),
            ("arn:aws:x: v", Some("arn:aws:x")),
            ("- x", None),
            ("plain", None),
        ];
        for (text, want) in cases {
            assert_eq!(key_of(text).as_deref(), want, "{text}");
        }
    }
}
