//! The blast-radius budget's counter items: one per remediation, account and clock hour, in the
//! outcome table (they carry no `remediation`/`created_at`, so the indexes never list them).
//! Pure key derivation.

use chrono::{DateTime, Utc};

/// Counter items expire (DynamoDB TTL) two days after their window.
pub const COUNTER_TTL_SECONDS: i64 = 2 * 86_400;

/// The window a change at `now` counts in: its UTC hour, `2026-11-27T17`.
pub fn window(now: DateTime<Utc>) -> String {
    now.format("%Y-%m-%dT%H").to_string()
}

/// The counter item's key.
pub fn counter_key(remediation: &str, account: &str, window: &str) -> String {
    format!("budget#{remediation}#{account}#{window}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_and_keys() {
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        let cases = [
            ("2026-11-27T17:00:00Z", "2026-11-27T17"),
            ("2026-11-27T17:59:59.999Z", "2026-11-27T17"),
            ("2026-11-27T18:00:00Z", "2026-11-27T18"),
            ("2026-11-27T23:30:00-02:00", "2026-11-28T01"),
        ];
        for (t, want) in cases {
            assert_eq!(window(at(t)), want, "{t}");
        }
        assert_eq!(
            counter_key("s3-block-public-access", "123456789012", "2026-11-27T17"),
            "budget#s3-block-public-access#123456789012#2026-11-27T17"
        );
    }
}
