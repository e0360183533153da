//! Operator identity for commands sent to a function: an operator is who AWS says, never who a
//! payload says (see the README's "Operator identity").
//!
//! A command sent to a function (`{"reflex": {"command": …, "proof": …}}`) carries a proof in
//! the style of Vault's AWS IAM auth: an `sts:GetCallerIdentity` request signed (SigV4) with the
//! operator's own credentials, whose signed headers include `x-reflex-command`, the digest of
//! the command ([`digest`]: its kind, record, parameters and this deployment's table). The
//! function checks the proof here ([`check`]: the digest matches the command it received and is
//! signed, the request is fresh, the host is its own STS endpoint), then sends the signed request
//! to STS itself ([`sts::identify`]) and takes the operator's ARN and account from STS's answer.
//! Only STS can tell whether the signature is good; nothing in a payload becomes the operator.
//!
//! This module holds the pure parts (the canonical command, header parsing, freshness, the
//! signing an operator's tooling does); [`sts`] holds the one AWS call.

pub mod sts;

use aws_sigv4::http_request::{sign as sigv4_sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_types::SdkConfig;
use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::time::SystemTime;

/// The signed header that binds a proof to one command.
pub const COMMAND_HEADER: &str = "x-reflex-command";
/// The only request a proof may be: `sts:GetCallerIdentity`, which needs no permission.
pub const GET_CALLER_IDENTITY_BODY: &str = "Action=GetCallerIdentity&Version=2011-06-15";
pub const FORM_CONTENT_TYPE: &str = "application/x-www-form-urlencoded";
/// How far a proof's `x-amz-date` may be from the function's clock, either way. STS itself
/// allows 15 minutes; a proof is meant to be used at once.
pub const MAX_PROOF_SKEW: TimeDelta = TimeDelta::minutes(5);
/// The longest a rollback may hold a resource back from its remediation: 90 days.
pub const MAX_HOLD_HOURS: u32 = 2160;
pub const MAX_HOLD: TimeDelta = TimeDelta::hours(MAX_HOLD_HOURS as i64);
/// A rollback's hold when the command names none: a week.
pub const DEFAULT_HOLD_HOURS: u32 = 168;

/// Headers a proof may carry; the function sends no other header of a proof to STS.
const PROOF_HEADERS: &[&str] = &[
    "authorization",
    "content-type",
    "host",
    "x-amz-date",
    "x-amz-security-token",
    COMMAND_HEADER,
];
/// Headers the signature must cover: the command's digest, the time and the STS host.
const REQUIRED_SIGNED: &[&str] = &["host", "x-amz-date", COMMAND_HEADER];

/// Why a command cannot be carried out, or a proof cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OperatorError {
    /// The command or its proof does not hold: nothing is done.
    #[error("{0}")]
    Refused(String),
    /// STS (or the policy) could not be asked for now: try again later.
    #[error("cannot check the operator now: {0}")]
    Unavailable(String),
    /// The operator's tooling could not sign a proof.
    #[error("cannot sign the command: {0}")]
    Signing(String),
}

/// What a command asks: approval, or a rollback with its parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    Approve,
    Rollback { dry_run: bool, hold_for_hours: u32 },
}

impl Order {
    pub fn kind(self) -> &'static str {
        match self {
            Order::Approve => "approve",
            Order::Rollback { .. } => "rollback",
        }
    }
}

/// The command as the proof binds it: a JSON array (unambiguous, whatever the record id holds)
/// of a version tag, the kind, the record, the table, and the rollback's parameters.
pub fn canonical(order: Order, record_id: &str, table: &str) -> String {
    let (dry_run, hold) = match order {
        Order::Approve => (false, None),
        Order::Rollback {
            dry_run,
            hold_for_hours,
        } => (dry_run, Some(hold_for_hours)),
    };
    json!([
        "reflex-command/1",
        order.kind(),
        record_id,
        table,
        dry_run,
        hold
    ])
    .to_string()
}

/// The hex SHA-256 of [`canonical`]: the value of `x-reflex-command`.
pub fn digest(order: Order, record_id: &str, table: &str) -> String {
    hex::encode(Sha256::digest(
        canonical(order, record_id, table).as_bytes(),
    ))
}

/// A signed `sts:GetCallerIdentity` request: its headers (lowercase names) and body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Proof {
    pub headers: BTreeMap<String, String>,
    pub body: String,
}

impl Proof {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

/// The operator, as STS answered for the proof's signer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operator {
    pub arn: String,
    pub account: String,
}

/// The STS endpoint, computed the same way by the operator's tooling and by the function from
/// their SDK config: the configured endpoint (`AWS_ENDPOINT_URL`) if any, else the region's.
pub fn sts_url(sdk: &SdkConfig) -> Result<String, String> {
    if let Some(url) = sdk.endpoint_url() {
        return Ok(url.trim_end_matches('/').to_string());
    }
    let region = sdk
        .region()
        .ok_or("no AWS region is configured (AWS_REGION)")?;
    let suffix = if region.as_ref().starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    Ok(format!("https://sts.{region}.{suffix}"))
}

/// The `host` a URL is signed with: its authority, lowercase, without a default port.
pub fn host_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit('@').next()?.to_ascii_lowercase();
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "https" => ":443",
        "http" => ":80",
        _ => return None,
    };
    let host = authority
        .strip_suffix(default_port)
        .unwrap_or(&authority)
        .to_string();
    (!host.is_empty()).then_some(host)
}

/// The `SignedHeaders` of a SigV4 `Authorization` header.
pub fn signed_headers(authorization: &str) -> Result<Vec<String>, String> {
    let rest = authorization
        .strip_prefix("AWS4-HMAC-SHA256 ")
        .ok_or("the Authorization header is not a SigV4 (AWS4-HMAC-SHA256) signature")?;
    // Exactly one of each part, nothing else: a header STS might read differently from us
    // (a second SignedHeaders, say) is refused rather than interpreted.
    let parts: Vec<&str> = rest.split(',').map(str::trim).collect();
    let one = |prefix: &str| -> Result<&str, String> {
        let found: Vec<&str> = parts
            .iter()
            .filter_map(|p| p.strip_prefix(prefix))
            .collect();
        match found.as_slice() {
            [one] => Ok(one),
            [] => Err(format!(
                "the Authorization header names no {}",
                prefix.trim_end_matches('=')
            )),
            _ => Err(format!(
                "the Authorization header names {} more than once",
                prefix.trim_end_matches('=')
            )),
        }
    };
    let credential = one("Credential=")?;
    let list = one("SignedHeaders=")?;
    one("Signature=")?;
    if parts.len() != 3 {
        return Err(
            "the Authorization header has parts other than Credential, SignedHeaders and Signature"
                .into(),
        );
    }
    // Credential=<key>/<date>/<region>/sts/aws4_request: signed for STS, nothing else.
    let scope: Vec<&str> = credential.split('/').collect();
    if scope.len() != 5 || scope[3] != "sts" || scope[4] != "aws4_request" {
        return Err(format!(
            "the signature's credential scope {credential:?} is not for STS"
        ));
    }
    let headers: Vec<String> = list.split(';').map(str::to_string).collect();
    if headers.iter().any(String::is_empty) {
        return Err(format!("SignedHeaders {list:?} is malformed"));
    }
    Ok(headers)
}

/// Whether a SigV4 `x-amz-date` (`20261127T180000Z`) is within [`MAX_PROOF_SKEW`] of `now`.
pub fn check_fresh(amz_date: &str, now: DateTime<Utc>) -> Result<(), String> {
    let signed = NaiveDateTime::parse_from_str(amz_date, "%Y%m%dT%H%M%SZ")
        .map_err(|_| format!("x-amz-date {amz_date:?} is not a SigV4 time (YYYYMMDDTHHMMSSZ)"))?
        .and_utc();
    let skew = (now - signed).abs();
    if skew > MAX_PROOF_SKEW {
        return Err(format!(
            "the proof was signed at {signed}, {} s from now; at most {} s are allowed: sign a new one",
            skew.num_seconds(),
            MAX_PROOF_SKEW.num_seconds()
        ));
    }
    Ok(())
}

/// What the function expects of a proof: the digest of the command it received (with its own
/// table), its own STS host, and its clock.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    pub digest: &'a str,
    pub host: &'a str,
    pub now: DateTime<Utc>,
}

/// Everything about a proof that can be judged without STS. STS then judges the signature.
pub fn check(proof: &Proof, expected: &Expected<'_>) -> Result<(), String> {
    if proof.body != GET_CALLER_IDENTITY_BODY {
        return Err(format!(
            "the proof's body is not {GET_CALLER_IDENTITY_BODY:?}"
        ));
    }
    if let Some(other) = proof
        .headers
        .keys()
        .find(|k| !PROOF_HEADERS.contains(&k.as_str()))
    {
        return Err(format!(
            "the proof carries the header {other:?}; only {} are taken",
            PROOF_HEADERS.join(", ")
        ));
    }
    let header = |name: &str| {
        proof
            .header(name)
            .ok_or_else(|| format!("the proof has no {name} header"))
    };
    let signed = signed_headers(header("authorization")?)?;
    for required in REQUIRED_SIGNED {
        if !signed.iter().any(|s| s == required) {
            return Err(format!(
                "the proof's signature does not cover {required} (SignedHeaders {})",
                signed.join(";")
            ));
        }
    }
    for name in &signed {
        if name == "authorization" || !PROOF_HEADERS.contains(&name.as_str()) {
            return Err(format!(
                "the proof signs the header {name:?}, which it cannot carry"
            ));
        }
        header(name)?;
    }
    if header(COMMAND_HEADER)? != expected.digest {
        return Err(
            "the proof was signed for another command (its x-reflex-command is not this command's digest: kind, record, table and parameters)"
                .into(),
        );
    }
    let host = header("host")?;
    if host != expected.host {
        return Err(format!(
            "the proof is signed for host {host:?}, not this function's STS endpoint {:?}",
            expected.host
        ));
    }
    if let Some(ct) = proof.header("content-type") {
        if ct != FORM_CONTENT_TYPE {
            return Err(format!(
                "the proof's content-type is {ct:?}, not {FORM_CONTENT_TYPE:?}"
            ));
        }
    }
    check_fresh(header("x-amz-date")?, expected.now)
}

/// Whether STS's answer names someone allowed to command this function: an identity of the
/// function's own account, matched by a pattern of the policy's `operators`.
pub fn authorise(
    operator: &Operator,
    own_account: &str,
    operators: &[String],
) -> Result<(), String> {
    if operator.account != own_account {
        return Err(format!(
            "{} is of account {}, not this function's account {own_account}",
            operator.arn, operator.account
        ));
    }
    if operators.is_empty() {
        return Err(format!(
            "the policy's `operators` is empty: no one may command a function ({} asked); use the reflex CLI in process",
            operator.arn
        ));
    }
    if !operators
        .iter()
        .any(|p| wildmatch::WildMatch::new(p).matches(&operator.arn))
    {
        return Err(format!(
            "{} matches no pattern of the policy's `operators`",
            operator.arn
        ));
    }
    Ok(())
}

/// Sign a proof for one command (the operator's side): `sts:GetCallerIdentity` to `url`, signed
/// at `at` with `credentials` for `region`, with the command's digest as a signed header.
pub fn sign(
    order: Order,
    record_id: &str,
    table: &str,
    credentials: &aws_sdk_sts::config::Credentials,
    region: &str,
    url: &str,
    at: SystemTime,
) -> Result<Proof, OperatorError> {
    let fail = |e: &dyn std::fmt::Display| OperatorError::Signing(e.to_string());
    let host = host_of(url).ok_or_else(|| fail(&format!("{url:?} is not an http(s) URL")))?;
    let mut headers = BTreeMap::from([
        ("content-type".to_string(), FORM_CONTENT_TYPE.to_string()),
        ("host".to_string(), host),
        (COMMAND_HEADER.to_string(), digest(order, record_id, table)),
    ]);
    let identity = credentials.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("sts")
        .time(at)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| fail(&e))?
        .into();
    let request = SignableRequest::new(
        "POST",
        format!("{url}/"),
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Bytes(GET_CALLER_IDENTITY_BODY.as_bytes()),
    )
    .map_err(|e| fail(&e))?;
    let (instructions, _signature) = sigv4_sign(request, &params)
        .map_err(|e| fail(&e))?
        .into_parts();
    for (name, value) in instructions.headers() {
        headers.insert(name.to_ascii_lowercase(), value.to_string());
    }
    Ok(Proof {
        headers,
        body: GET_CALLER_IDENTITY_BODY.to_string(),
    })
}

/// The payload for `aws lambda invoke --payload`: the command and its proof.
pub fn payload(order: Order, record_id: &str, proof: &Proof) -> Value {
    let mut command = json!({ "command": order.kind(), "record_id": record_id, "proof": proof });
    if let Order::Rollback {
        dry_run,
        hold_for_hours,
    } = order
    {
        command["dry_run"] = json!(dry_run);
        command["hold_for_hours"] = json!(hold_for_hours);
    }
    json!({ "reflex": command })
}

/// A signed command for a function in `table`'s deployment, with the credentials and STS
/// endpoint of `sdk` (the operator's own SDK config).
pub async fn signed_command(
    sdk: &SdkConfig,
    order: Order,
    record_id: &str,
    table: &str,
) -> Result<Value, OperatorError> {
    use aws_sdk_sts::config::ProvideCredentials;
    let fail = |e: String| OperatorError::Signing(e);
    let provider = sdk
        .credentials_provider()
        .ok_or_else(|| fail("no AWS credentials are configured".into()))?;
    let credentials = provider
        .provide_credentials()
        .await
        .map_err(|e| fail(format!("cannot load AWS credentials: {e}")))?;
    let region = sdk
        .region()
        .ok_or_else(|| fail("no AWS region is configured (AWS_REGION)".into()))?;
    let url = sts_url(sdk).map_err(fail)?;
    let proof = sign(
        order,
        record_id,
        table,
        &credentials,
        region.as_ref(),
        &url,
        SystemTime::now(),
    )?;
    Ok(payload(order, record_id, &proof))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sts::config::Credentials;

    const TABLE: &str = "reflex-outcomes";
    const RECORD: &str = "s3-block-public-access#93058f4da62be81a2aed4ca43754e35d";
    const URL: &str = "https://sts.us-east-1.amazonaws.com";
    const HOST: &str = "sts.us-east-1.amazonaws.com";
    const ROLLBACK: Order = Order::Rollback {
        dry_run: false,
        hold_for_hours: 168,
    };

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    fn signed(order: Order, record_id: &str, when: DateTime<Utc>, token: Option<&str>) -> Proof {
        let creds = Credentials::new(
            "AKIAALICE",
            "alice-secret",
            token.map(str::to_string),
            None,
            "test",
        );
        sign(
            order,
            record_id,
            TABLE,
            &creds,
            "us-east-1",
            URL,
            when.into(),
        )
        .unwrap()
    }

    fn expected(order: Order, record_id: &str, now: DateTime<Utc>) -> (String, DateTime<Utc>) {
        (digest(order, record_id, TABLE), now)
    }

    #[test]
    fn the_digest_binds_kind_record_table_and_parameters() {
        let base = digest(ROLLBACK, RECORD, TABLE);
        assert_eq!(base.len(), 64);
        assert_eq!(base, digest(ROLLBACK, RECORD, TABLE), "deterministic");
        let others = [
            digest(Order::Approve, RECORD, TABLE),
            digest(ROLLBACK, "s3-block-public-access#other", TABLE),
            digest(ROLLBACK, RECORD, "another-deployment"),
            digest(
                Order::Rollback {
                    dry_run: true,
                    hold_for_hours: 168,
                },
                RECORD,
                TABLE,
            ),
            digest(
                Order::Rollback {
                    dry_run: false,
                    hold_for_hours: 169,
                },
                RECORD,
                TABLE,
            ),
        ];
        for (i, other) in others.iter().enumerate() {
            assert_ne!(&base, other, "case {i}");
        }
        // Field boundaries cannot be shifted: the record id cannot swallow the table.
        assert_ne!(
            canonical(Order::Approve, "a\",\"b", "c"),
            canonical(Order::Approve, "a", "b\",\"c")
        );
    }

    #[test]
    fn signed_headers_are_parsed_from_the_authorization_header() {
        let cases: &[(&str, Result<&[&str], &str>)] = &[
            (
                "AWS4-HMAC-SHA256 Credential=AKID/20261127/us-east-1/sts/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-reflex-command, Signature=abc",
                Ok(&["content-type", "host", "x-amz-date", "x-reflex-command"]),
            ),
            (
                "AWS4-HMAC-SHA256 Credential=AKID/20261127/us-east-1/sts/aws4_request,SignedHeaders=host;x-amz-date,Signature=abc",
                Ok(&["host", "x-amz-date"]),
            ),
            ("Basic YWxpY2U6c2VjcmV0", Err("not a SigV4")),
            (
                "AWS4-HMAC-SHA256 Credential=AKID/20261127/us-east-1/sts/aws4_request, Signature=abc",
                Err("no SignedHeaders"),
            ),
            (
                "AWS4-HMAC-SHA256 Credential=AKID/20261127/us-east-1/sts/aws4_request, SignedHeaders=host;;x-amz-date, Signature=abc",
                Err("malformed"),
            ),
            (
                "AWS4-HMAC-SHA256 Credential=AKID/20261127/us-east-1/sts/aws4_request, SignedHeaders=host;x-amz-date, SignedHeaders=host;x-amz-date;x-reflex-command, Signature=abc",
                Err("more than once"),
            ),
            (
                "AWS4-HMAC-SHA256 SignedHeaders=host;x-amz-date, Signature=abc",
                Err("no Credential"),
            ),
            (
                "AWS4-HMAC-SHA256 Credential=AKID/20261127/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc",
                Err("not for STS"),
            ),
            (
                "AWS4-HMAC-SHA256 Credential=AKID/20261127/us-east-1/sts/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc, Extra=1",
                Err("parts other than"),
            ),
        ];
        for (header, want) in cases {
            match (signed_headers(header), want) {
                (Ok(got), Ok(want)) => assert_eq!(got, *want, "{header}"),
                (Err(e), Err(want)) => assert!(e.contains(want), "{header}: {e}"),
                (got, want) => panic!("{header}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn a_proof_is_fresh_for_five_minutes_either_way() {
        let now = at("2026-11-27T18:00:00Z");
        let cases = [
            ("20261127T180000Z", true),
            ("20261127T175500Z", true),
            ("20261127T180500Z", true),
            ("20261127T175459Z", false),
            ("20261127T180501Z", false),
            ("20261126T180000Z", false),
            ("2026-11-27T18:00:00Z", false),
            ("", false),
        ];
        for (date, fresh) in cases {
            assert_eq!(check_fresh(date, now).is_ok(), fresh, "{date}");
        }
    }

    #[test]
    fn hosts_are_taken_as_sigv4_signs_them() {
        let cases = [
            (
                "https://sts.us-east-1.amazonaws.com",
                Some("sts.us-east-1.amazonaws.com"),
            ),
            (
                "https://STS.us-east-1.amazonaws.com:443/",
                Some("sts.us-east-1.amazonaws.com"),
            ),
            ("http://127.0.0.1:5000", Some("127.0.0.1:5000")),
            ("http://localhost:80/x", Some("localhost")),
            ("ftp://example.com", None),
            ("sts.us-east-1.amazonaws.com", None),
            ("https://", None),
        ];
        for (url, want) in cases {
            assert_eq!(host_of(url).as_deref(), want, "{url}");
        }
    }

    #[test]
    fn a_signed_proof_passes_and_every_tampering_is_refused() {
        let now = at("2026-11-27T18:00:00Z");
        let proof = signed(ROLLBACK, RECORD, now, None);
        let (want, _) = expected(ROLLBACK, RECORD, now);
        let ok = Expected {
            digest: &want,
            host: HOST,
            now,
        };
        assert_eq!(check(&proof, &ok), Ok(()));
        let auth = proof.header("authorization").unwrap();
        assert!(
            auth.contains("SignedHeaders=content-type;host;x-amz-date;x-reflex-command,"),
            "{auth}"
        );
        // With a session token, the token is signed and carried too.
        let with_token = signed(ROLLBACK, RECORD, now, Some("session"));
        assert_eq!(with_token.header("x-amz-security-token"), Some("session"));
        assert_eq!(check(&with_token, &ok), Ok(()));

        let other_record = digest(ROLLBACK, "s3-block-public-access#other", TABLE);
        let other_table = digest(ROLLBACK, RECORD, "elsewhere");
        let later = now + TimeDelta::minutes(6);
        type Tamper = fn(&mut Proof);
        let cases: &[(&str, Expected<'_>, Tamper, &str)] = &[
            (
                "another record",
                Expected {
                    digest: &other_record,
                    ..ok
                },
                |_| {},
                "another command",
            ),
            (
                "another table",
                Expected {
                    digest: &other_table,
                    ..ok
                },
                |_| {},
                "another command",
            ),
            (
                "another host",
                Expected {
                    host: "127.0.0.1:5000",
                    ..ok
                },
                |_| {},
                "not this function's STS endpoint",
            ),
            (
                "stale",
                Expected { now: later, ..ok },
                |_| {},
                "at most 300 s",
            ),
            (
                "other body",
                ok,
                |p| p.body = "Action=AssumeRole&Version=2011-06-15".into(),
                "body",
            ),
            (
                "extra header",
                ok,
                |p| {
                    p.headers.insert("x-forwarded-host".into(), "evil".into());
                },
                "x-forwarded-host",
            ),
            (
                "no authorization",
                ok,
                |p| {
                    p.headers.remove("authorization");
                },
                "no authorization",
            ),
            (
                "no command header",
                ok,
                |p| {
                    p.headers.remove(COMMAND_HEADER);
                },
                "no x-reflex-command",
            ),
            (
                "command header not signed",
                ok,
                |p| {
                    let a = p.headers["authorization"].replace(";x-reflex-command", "");
                    p.headers.insert("authorization".into(), a);
                },
                "does not cover x-reflex-command",
            ),
            (
                "signs a header it cannot carry",
                ok,
                |p| {
                    let a = p.headers["authorization"]
                        .replace("x-amz-date;", "x-amz-date;x-amz-target;");
                    p.headers.insert("authorization".into(), a);
                },
                "x-amz-target",
            ),
            (
                "json content",
                ok,
                |p| {
                    p.headers
                        .insert("content-type".into(), "application/json".into());
                },
                "content-type",
            ),
        ];
        for (name, expect, tamper, why) in cases {
            let mut p = proof.clone();
            tamper(&mut p);
            match check(&p, expect) {
                Err(e) => assert!(e.contains(why), "{name}: {e}"),
                Ok(()) => panic!("{name}: accepted"),
            }
        }
    }

    #[test]
    fn only_operators_of_the_own_account_are_authorised() {
        let alice = Operator {
            arn: "arn:aws:iam::123456789012:user/alice".into(),
            account: "123456789012".into(),
        };
        let oncall = Operator {
            arn: "arn:aws:sts::123456789012:assumed-role/Oncall/alice".into(),
            account: "123456789012".into(),
        };
        let foreign = Operator {
            arn: "arn:aws:iam::999999999999:user/alice".into(),
            account: "999999999999".into(),
        };
        let patterns = |p: &[&str]| p.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let cases = [
            (
                &alice,
                patterns(&["arn:aws:iam::123456789012:user/alice"]),
                None,
            ),
            (
                &oncall,
                patterns(&["arn:aws:sts::*:assumed-role/Oncall/*"]),
                None,
            ),
            (&alice, patterns(&[]), Some("`operators` is empty")),
            (
                &alice,
                patterns(&["arn:aws:iam::123456789012:user/bob"]),
                Some("matches no pattern"),
            ),
            (
                &foreign,
                patterns(&["arn:aws:iam::*:user/alice"]),
                Some("not this function's account"),
            ),
        ];
        for (who, ops, want) in cases {
            match (authorise(who, "123456789012", &ops), want) {
                (Ok(()), None) => {}
                (Err(e), Some(w)) => assert!(e.contains(w), "{}: {e}", who.arn),
                (got, want) => panic!("{} {ops:?}: got {got:?}, want {want:?}", who.arn),
            }
        }
    }

    #[test]
    fn the_payload_carries_the_command_and_its_proof_and_no_operator() {
        let proof = signed(ROLLBACK, RECORD, Utc::now(), None);
        let p = payload(ROLLBACK, RECORD, &proof);
        assert_eq!(p["reflex"]["command"], "rollback");
        assert_eq!(p["reflex"]["record_id"], RECORD);
        assert_eq!(p["reflex"]["dry_run"], false);
        assert_eq!(p["reflex"]["hold_for_hours"], 168);
        assert_eq!(p["reflex"]["proof"]["body"], GET_CALLER_IDENTITY_BODY);
        assert!(p["reflex"].get("by").is_none());
        let a = payload(Order::Approve, RECORD, &proof);
        assert!(a["reflex"].get("hold_for_hours").is_none(), "{a}");
    }
}
